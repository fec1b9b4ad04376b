// ConcurrencyLimiter (bulkhead): at most `max_in_flight` calls to one provider at a time.
// Non-blocking: TryAcquire() either hands out a permit or refuses at once; the caller
// schedules the work for later instead of blocking a thread.
//
// Thread-safety: all methods are thread-safe and lock-free (one atomic counter). The limiter
// must outlive its permits.
#pragma once

#include <atomic>
#include <memory>

#include "enrichd/status.h"

namespace enrichd::resilience {

struct ConcurrencyLimiterConfig {
  int max_in_flight = 8;  // >= 1

  // Ok, or kInvalidArgument naming the field (concurrency).
  Status Validate() const;
};

class ConcurrencyLimiter {
 public:
  // One slot, released when destroyed (or by Release()). Move-only.
  class Permit {
   public:
    Permit() = default;
    Permit(Permit&& other) noexcept : limiter_(other.limiter_) { other.limiter_ = nullptr; }
    Permit& operator=(Permit&& other) noexcept;
    Permit(const Permit&) = delete;
    Permit& operator=(const Permit&) = delete;
    ~Permit() { Release(); }

    // Whether this permit holds a slot (false: refused, or already released).
    bool valid() const { return limiter_ != nullptr; }
    explicit operator bool() const { return valid(); }
    // Gives the slot back now (idempotent).
    void Release();

   private:
    friend class ConcurrencyLimiter;
    explicit Permit(ConcurrencyLimiter* limiter) : limiter_(limiter) {}
    ConcurrencyLimiter* limiter_ = nullptr;
  };

  // Rejects an invalid config (kInvalidArgument naming the field).
  static Result<std::unique_ptr<ConcurrencyLimiter>> Create(const ConcurrencyLimiterConfig& config);

  ConcurrencyLimiter(const ConcurrencyLimiter&) = delete;
  ConcurrencyLimiter& operator=(const ConcurrencyLimiter&) = delete;

  // A valid permit if fewer than max_in_flight are held, else an invalid one.
  Permit TryAcquire();

  // Calls holding a permit now (a snapshot: may change immediately).
  int InFlight() const { return in_flight_.load(std::memory_order_relaxed); }
  int max_in_flight() const { return max_; }

 private:
  explicit ConcurrencyLimiter(int max) : max_(max) {}
  void ReleaseOne() { in_flight_.fetch_sub(1, std::memory_order_acq_rel); }

  const int max_;
  std::atomic<int> in_flight_{0};
};

}  // namespace enrichd::resilience

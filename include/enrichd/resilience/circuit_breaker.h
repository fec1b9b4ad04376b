// CircuitBreaker: stops calling a provider that keeps failing, then probes it carefully.
//
// States (resilience4j / Polly v8 semantics, docs RESILIENCE.md):
//  - CLOSED: every call is admitted. The outcomes of the last `window` recorded calls are
//    kept (count-based sliding window). Once at least `min_calls` are in the window and
//    failures / calls >= `failure_rate` (>=: exactly 50 % trips a 0.5 threshold), the
//    breaker OPENS.
//  - OPEN: nothing is admitted for `open_for` plus jitter rand[0, open_for * open_jitter).
//    A rejected caller learns `retry_after` = the time until the breaker half-opens.
//  - HALF_OPEN: at most `half_open_calls` probes are admitted, scored in a fresh window: all
//    succeed -> CLOSED (with an empty window); any failure -> OPEN again for a full (jittered)
//    duration. Each probe has its own `probe_timeout`: a probe that never reports stops
//    holding its slot after that long, and a new probe is admitted (no wedged half-open).
//    A late report from a timed-out probe is ignored.
//
// What counts (enrichd/outcome.h, RecordsInBreaker / IsBreakerFailure): ok and no_data are
// successes, transient is a failure; everything else (permanent/404, auth, rate_limited/429,
// cancelled, skipped, circuit_open) is ignored: the permit is released and counts for nothing.
// A permit dropped without Record() is likewise released as ignored. A permit admitted in an
// earlier state (e.g. before the breaker opened) is ignored when it reports.
//
// The breaker belongs inside the retry loop: record every attempt, not every task.
//
// Thread-safety: all methods are thread-safe (one mutex). The Clock must outlive the
// breaker; the breaker must outlive its permits. The Random is used only under the breaker's
// mutex: give the breaker its own Random or one no other thread uses concurrently.
// Units: Duration/MonoTime on the injected monotonic clock.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string_view>
#include <vector>

#include "enrichd/clock.h"
#include "enrichd/outcome.h"
#include "enrichd/random.h"
#include "enrichd/status.h"

namespace enrichd::resilience {

enum class BreakerState { kClosed, kOpen, kHalfOpen };
// "closed", "open", "half_open".
std::string_view BreakerStateName(BreakerState state);

struct CircuitBreakerConfig {
  double failure_rate = 0.5;                     // in (0, 1]
  int window = 20;                               // calls kept, >= 1
  int min_calls = 10;                            // 1 .. window
  Duration open_for = std::chrono::seconds(30);  // > 0
  double open_jitter = 0.2;  // in [0, 1]: open for open_for * (1 + rand[0, open_jitter))
  int half_open_calls = 3;   // >= 1
  Duration probe_timeout = std::chrono::seconds(30);  // > 0

  // Ok, or kInvalidArgument naming the offending field (circuit_breaker.window, ...).
  Status Validate() const;
};

// What the status display shows.
struct BreakerSnapshot {
  BreakerState state = BreakerState::kClosed;
  int calls_in_window = 0;     // CLOSED: recorded calls in the sliding window
  int failures_in_window = 0;  // CLOSED: failures among them
  int probes_in_flight = 0;    // HALF_OPEN: admitted probes that have not reported or timed out
  int probe_successes = 0;     // HALF_OPEN: successful probes so far
  uint64_t openings = 0;       // how many times the breaker has opened since creation
  Duration retry_after{};      // OPEN: time until half-open; zero otherwise
};

class CircuitBreaker {
 public:
  // The right to make one call. Move-only. Destroying an unrecorded permit releases it as
  // ignored (as if Record(Outcome::kCancelled)).
  class Permit {
   public:
    Permit() = default;
    Permit(Permit&& other) noexcept;
    Permit& operator=(Permit&& other) noexcept;
    Permit(const Permit&) = delete;
    Permit& operator=(const Permit&) = delete;
    ~Permit();

    // Whether this permit admits a call (false: the breaker refused, or already recorded).
    bool valid() const { return breaker_ != nullptr; }
    // Whether this call is a half-open probe.
    bool is_probe() const { return probe_id_ != 0; }
    // Same as breaker.Record(std::move(*this), outcome).
    void Record(Outcome outcome);

   private:
    friend class CircuitBreaker;
    Permit(CircuitBreaker* breaker, uint64_t epoch, uint64_t probe_id)
        : breaker_(breaker), epoch_(epoch), probe_id_(probe_id) {}
    CircuitBreaker* breaker_ = nullptr;
    uint64_t epoch_ = 0;
    uint64_t probe_id_ = 0;  // 0: a CLOSED-state call
  };

  struct Admission {
    Permit permit;           // valid() when admitted
    Duration retry_after{};  // when refused: how long until a call may be admitted
    bool admitted() const { return permit.valid(); }
  };

  // Rejects an invalid config (kInvalidArgument naming the field). `clock` and `random` must
  // outlive the breaker.
  static Result<std::unique_ptr<CircuitBreaker>> Create(const CircuitBreakerConfig& config,
                                                        const Clock& clock, Random& random);

  CircuitBreaker(const CircuitBreaker&) = delete;
  CircuitBreaker& operator=(const CircuitBreaker&) = delete;

  // Asks to make one call. Refused while OPEN (retry_after: until half-open) and in
  // HALF_OPEN when every probe slot is taken (retry_after: until the earliest probe times
  // out; probes may report sooner).
  Admission TryAdmit();

  // Reports how the admitted call ended; consumes the permit (an invalid permit is a no-op).
  void Record(Permit&& permit, Outcome outcome);

  BreakerState state() const;
  BreakerSnapshot Snapshot() const;
  const CircuitBreakerConfig& config() const { return config_; }

 private:
  CircuitBreaker(const CircuitBreakerConfig& config, const Clock& clock, Random& random);

  struct ProbeSlot {
    uint64_t id;
    MonoTime expires_at;
  };

  // Moves OPEN -> HALF_OPEN when due, and frees timed-out probe slots.
  void AdvanceLocked(MonoTime now);
  void OpenLocked(MonoTime now);
  void CloseLocked();
  void RecordLocked(const Permit& permit, Outcome outcome);

  const CircuitBreakerConfig config_;
  const Clock& clock_;
  Random& random_;

  mutable std::mutex mu_;
  BreakerState state_ = BreakerState::kClosed;
  uint64_t epoch_ = 1;  // bumped on every state change; permits from older epochs are ignored
  uint64_t openings_ = 0;
  // CLOSED: ring buffer of the last `window` outcomes (1 = failure).
  std::vector<uint8_t> ring_;
  int ring_next_ = 0;
  int calls_ = 0;
  int failures_ = 0;
  // OPEN.
  MonoTime open_until_{};
  // HALF_OPEN.
  std::vector<ProbeSlot> probes_;
  int probe_successes_ = 0;
  uint64_t next_probe_id_ = 1;
};

}  // namespace enrichd::resilience

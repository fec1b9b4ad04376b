// TokenBucket: paces calls to one provider to `rate_per_second` on average with at most
// `burst` at once, on the injected monotonic clock.
//
// Semantics (docs RESILIENCE.md, after golang.org/x/time/rate):
//  - The bucket starts full (burst tokens) and refills continuously:
//    tokens = min(burst, tokens + elapsed * rate). There is no timer: every call reads
//    Clock::Now() INSIDE the lock and credits only the time since the last reading it saw.
//    A reading older than the last one (a clock stepping backwards, or two threads racing)
//    credits nothing, so no interval is ever credited twice.
//  - Callers pace rather than fail: Reserve() spends tokens now and tells the caller how long
//    to wait before going (tokens may go negative: a debt later callers queue behind).
//    A reservation whose wait would pass the caller's deadline fails at once and spends
//    nothing. A request for more than `burst` tokens can never be satisfied and is refused.
//  - PauseUntil(t) is for 429 / Retry-After / quota-exhausted signals: it drains the bucket
//    and admits nothing (for every caller) until t; refill restarts from empty at t. A pause
//    is never shortened by a later, earlier PauseUntil().
//
// Units: rate in tokens per second, times on the monotonic clock (MonoTime), waits as
// Duration (nanoseconds). Internally tokens are kept as integer nano-tokens, so integer
// rates are exact (rate 10/s: one token per 100 ms exactly).
//
// Thread-safety: every method is thread-safe (one mutex; the clock is read under it). The
// Clock must outlive the bucket.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>

#include "enrichd/clock.h"
#include "enrichd/resilience/deadline.h"
#include "enrichd/status.h"

namespace enrichd::resilience {

struct TokenBucketConfig {
  // Average admission rate, tokens per second. Must be finite, > 0 and <= 1e9.
  double rate_per_second = 10.0;
  // Capacity: the most tokens that can be spent at once. 1 .. 1'000'000'000.
  int64_t burst = 20;
  // Tokens in the bucket when it is made: 0 .. burst, or -1 for a full bucket.
  int64_t initial_tokens = -1;

  // Ok, or kInvalidArgument naming the offending field.
  Status Validate() const;
};

class TokenBucket {
 public:
  // The only way to build one: rejects an invalid config (kInvalidArgument naming the
  // field). `clock` must outlive the bucket.
  static Result<std::unique_ptr<TokenBucket>> Create(const TokenBucketConfig& config,
                                                     const Clock& clock);

  TokenBucket(const TokenBucket&) = delete;
  TokenBucket& operator=(const TokenBucket&) = delete;

  // Takes n tokens if they exist now; false (nothing spent) otherwise, also while paused,
  // when n > burst, and when n < 1.
  bool TryAcquire(int64_t n = 1);

  // Reserves n tokens now and returns how long the caller must wait before using them
  // (zero: go now). Failures spend nothing:
  //  - kInvalidArgument: n < 1 or n > burst (can never be satisfied);
  //  - kDeadlineExceeded: the wait would end after `deadline` (includes a pause that lasts
  //    past the deadline, and a wait too long to represent);
  //  - kResourceExhausted: the queue of reservations is absurdly long (billions of tokens).
  // A reservation granted before a later PauseUntil() is not revoked: a caller that slept
  // may check PausedUntil() before sending.
  Result<Duration> Reserve(int64_t n = 1, Deadline deadline = Deadline::Infinite());

  // How long until n tokens would exist, without spending anything (zero: available now).
  // Duration::max() when n < 1 or n > burst (never).
  Duration TimeUntilAvailable(int64_t n = 1);

  // Drains the bucket and admits nothing until `until` (monotonic). Never shortens a pause
  // already in force. Drains even when `until` is not in the future (a quota signal with no
  // reset time still means the provider's allowance is spent).
  void PauseUntil(MonoTime until);
  // The end of the current pause, or a time <= Now() when not paused.
  MonoTime PausedUntil() const;

  // Whole tokens available now (negative while reservations are queued). For display.
  double TokensApprox();

  double rate_per_second() const { return rate_; }
  int64_t burst() const { return burst_; }

 private:
  TokenBucket(const TokenBucketConfig& config, const Clock& clock);

  // Reads the clock (under mu_) and credits the time since last_, never backwards.
  // Returns the effective now (never earlier than last_).
  MonoTime RefillLocked();
  // Time until `nano` nano-tokens exist, from effective time `now`; tokens_ may be < nano.
  Duration WaitForLocked(int64_t nano_needed, MonoTime now) const;

  const Clock& clock_;
  const double rate_;            // tokens per second == nano-tokens per nanosecond
  const int64_t burst_;          // tokens
  const int64_t capacity_nano_;  // burst_ * 1e9
  mutable std::mutex mu_;
  int64_t tokens_nano_;    // may be negative (outstanding reservations)
  MonoTime last_;          // latest clock reading credited
  MonoTime paused_until_;  // no credit and no admission before this
};

}  // namespace enrichd::resilience

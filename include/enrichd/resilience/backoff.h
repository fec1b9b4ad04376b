// Backoff: how long to wait before retry number n (AWS "exponential backoff and jitter").
//
//  - kFull (default): rand[0, min(cap, base * 2^(n-1))). Retry 1 waits under `base`, retry 3
//    under 4*base. At the cap the wait is still uniform over [0, cap): clients never
//    synchronise on exactly `cap`.
//  - kDecorrelated: rand[base, min(cap, 3 * previous)] — the upper end is clamped, not the
//    result, so the wait keeps varying at the cap (aws-sdk-go-v2#3091).
//  - kEqual: half the exponential ceiling plus rand[0, half).
//  - kNone: exactly min(cap, base * 2^(n-1)) (deterministic; for tests and local sources).
// The exponent saturates: attempt 10'000 (or INT_MAX) gives the cap, never an overflow.
//
// `max_attempts` counts the first call (gRPC A6): max_attempts 5 = 1 call + 4 retries.
//
// Units: Duration (nanoseconds). Backoff is an immutable value: thread-safe for concurrent
// const use; the Random passed in must not be shared across threads without a lock.
#pragma once

#include <string_view>

#include "enrichd/clock.h"
#include "enrichd/random.h"
#include "enrichd/status.h"

namespace enrichd::resilience {

enum class JitterMode { kFull, kDecorrelated, kEqual, kNone };

// "full", "decorrelated", "equal", "none".
std::string_view JitterModeName(JitterMode mode);
// Parses the names above; kInvalidArgument otherwise.
Result<JitterMode> JitterModeFromName(std::string_view name);

struct BackoffConfig {
  int max_attempts = 5;                                  // >= 1; includes the first call
  Duration base_delay = std::chrono::milliseconds(200);  // > 0
  Duration max_delay = std::chrono::seconds(30);         // >= base_delay
  JitterMode jitter = JitterMode::kFull;

  // Ok, or kInvalidArgument naming the offending field (retry.max_attempts, ...).
  Status Validate() const;
};

class Backoff {
 public:
  // Rejects an invalid config (kInvalidArgument naming the field).
  static Result<Backoff> Create(const BackoffConfig& config);

  // The delay before retry number `retry` (1 = the retry after the first failed call).
  // `previous` is the delay returned for the retry before (only kDecorrelated uses it; pass
  // zero for the first retry). retry < 1 is treated as 1. Always in [0, max_delay].
  Duration NextDelay(int retry, Duration previous, Random& random) const;

  // The un-jittered ceiling for retry n: min(max_delay, base * 2^(n-1)), saturating.
  Duration Ceiling(int retry) const;

  // Whether another attempt may follow `attempts_made` calls (attempts_made < max_attempts).
  bool AttemptsRemain(int attempts_made) const { return attempts_made < config_.max_attempts; }

  const BackoffConfig& config() const { return config_; }

 private:
  explicit Backoff(const BackoffConfig& config) : config_(config) {}
  BackoffConfig config_;
};

}  // namespace enrichd::resilience

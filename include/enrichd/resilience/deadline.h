// Deadline: one point on the monotonic clock by which a piece of work must be done, or
// "infinite". One deadline spans every attempt of a call (gRPC A6): retries, waits for a
// rate-limit token and backoff sleeps all draw on the same remaining time.
//
// Also: saturating time arithmetic (never overflows, never UB), and DecideRetry(), which
// turns "the backoff would end after the deadline" into "give up now" instead of sleeping.
//
// Units: MonoTime (monotonic clock), Duration (nanoseconds). Values; thread-compatible
// (copy freely, share const).
#pragma once

#include <algorithm>

#include "enrichd/clock.h"

namespace enrichd::resilience {

// a + b clamped to [Duration::min(), Duration::max()].
Duration SaturatingAdd(Duration a, Duration b);
// t + d clamped to [MonoTime::min(), MonoTime::max()].
MonoTime SaturatingAdd(MonoTime t, Duration d);
// later - earlier clamped to [Duration::min(), Duration::max()].
Duration SaturatingSub(MonoTime later, MonoTime earlier);

class Deadline {
 public:
  // Infinite.
  constexpr Deadline() = default;
  static constexpr Deadline Infinite() { return Deadline(); }
  // At `t`; MonoTime::max() means infinite.
  static constexpr Deadline At(MonoTime t) { return Deadline(t); }
  // `timeout` after `now` (saturating; a negative timeout gives an already-expired deadline,
  // Duration::max() an infinite one).
  static Deadline After(MonoTime now, Duration timeout);

  bool is_infinite() const { return at_ == MonoTime::max(); }
  // The deadline's time; MonoTime::max() when infinite.
  MonoTime time() const { return at_; }

  // Time left at `now`: Duration::max() when infinite, zero once passed (never negative).
  Duration Remaining(MonoTime now) const;
  // Whether `now` is at or after the deadline (never true when infinite).
  bool Expired(MonoTime now) const { return !is_infinite() && now >= at_; }
  // Whether work that starts at `now` and waits `wait` is still within the deadline
  // (now + wait <= deadline). A negative wait counts as zero.
  bool Allows(MonoTime now, Duration wait) const;

  // The earlier of two deadlines.
  static Deadline Earlier(Deadline a, Deadline b) { return Deadline(std::min(a.at_, b.at_)); }

  friend bool operator==(const Deadline&, const Deadline&) = default;

 private:
  constexpr explicit Deadline(MonoTime at) : at_(at) {}
  MonoTime at_ = MonoTime::max();
};

// What to do about a failed attempt, given the backoff chosen for it.
struct RetryDecision {
  enum class Verdict {
    kRetry,          // sleep `delay`, then retry at `retry_at`
    kGiveUpDeadline  // the backoff would end after the deadline: fail now, do not sleep
  };
  Verdict verdict = Verdict::kGiveUpDeadline;
  Duration delay{};     // the backoff (clamped to >= 0) when retrying
  MonoTime retry_at{};  // now + delay when retrying

  bool retry() const { return verdict == Verdict::kRetry; }
};

// A retry whose backoff would end after `deadline` gives up now (instead of sleeping only to
// fail); otherwise retry at now + backoff. A backoff ending exactly at the deadline is
// allowed. Negative backoff counts as zero.
RetryDecision DecideRetry(MonoTime now, Duration backoff, Deadline deadline);

}  // namespace enrichd::resilience

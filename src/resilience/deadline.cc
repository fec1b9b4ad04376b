#include "enrichd/resilience/deadline.h"

namespace enrichd::resilience {

Duration SaturatingAdd(Duration a, Duration b) {
  Duration::rep out;
  if (__builtin_add_overflow(a.count(), b.count(), &out)) {
    return b.count() > 0 ? Duration::max() : Duration::min();
  }
  return Duration(out);
}

MonoTime SaturatingAdd(MonoTime t, Duration d) {
  return MonoTime(SaturatingAdd(t.time_since_epoch(), d));
}

Duration SaturatingSub(MonoTime later, MonoTime earlier) {
  Duration::rep out;
  if (__builtin_sub_overflow(later.time_since_epoch().count(), earlier.time_since_epoch().count(),
                             &out)) {
    return later > earlier ? Duration::max() : Duration::min();
  }
  return Duration(out);
}

Deadline Deadline::After(MonoTime now, Duration timeout) {
  if (timeout == Duration::max()) return Infinite();
  return Deadline(SaturatingAdd(now, timeout));
}

Duration Deadline::Remaining(MonoTime now) const {
  if (is_infinite()) return Duration::max();
  if (now >= at_) return Duration::zero();
  return SaturatingSub(at_, now);
}

bool Deadline::Allows(MonoTime now, Duration wait) const {
  if (is_infinite()) return true;
  if (wait < Duration::zero()) wait = Duration::zero();
  return SaturatingAdd(now, wait) <= at_;
}

RetryDecision DecideRetry(MonoTime now, Duration backoff, Deadline deadline) {
  RetryDecision decision;
  if (backoff < Duration::zero()) backoff = Duration::zero();
  if (!deadline.Allows(now, backoff)) return decision;  // give up now
  decision.verdict = RetryDecision::Verdict::kRetry;
  decision.delay = backoff;
  decision.retry_at = SaturatingAdd(now, backoff);
  return decision;
}

}  // namespace enrichd::resilience

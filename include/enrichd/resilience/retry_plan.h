// PlanRetry: the one place that turns "this attempt failed with outcome X" into "retry after
// D" or "give up, because ...", combining the pieces of this layer in the order of
// RESILIENCE.md:
//
//   1. the outcome must be worth retrying now: transient, rate_limited, circuit_open
//      (ok/no_data/skipped/permanent/auth and cancelled are not; a cancelled task goes back
//      to pending, which is the caller's business);
//   2. attempts remain (max_attempts counts the first call);
//   3. for transient failures, the retry budget allows it (rate_limited and circuit_open are
//      paced by the bucket pause and the breaker, not charged to the budget);
//   4. the delay: the provider's Retry-After / reset time when it gave one (plus 0-50 %
//      jitter), else the backoff;
//   5. the delay must end within the deadline, else give up now rather than sleep.
//
// Pure (no clock reading, no sleeping); thread-safe for distinct Random objects. The caller
// records the attempt in the RetryBudget (budget.Record(outcome)) BEFORE planning.
#pragma once

#include <optional>
#include <string_view>

#include "enrichd/clock.h"
#include "enrichd/outcome.h"
#include "enrichd/random.h"
#include "enrichd/resilience/backoff.h"
#include "enrichd/resilience/deadline.h"
#include "enrichd/resilience/retry_budget.h"

namespace enrichd::resilience {

struct RetryInputs {
  Outcome outcome = Outcome::kTransient;
  int attempts_made = 1;                // calls made for this task so far, the failed one included
  Duration previous_delay{};            // the delay before the failed attempt (zero at first)
  std::optional<Duration> retry_after;  // parsed Retry-After / reset / time until half-open
  MonoTime now{};
  Deadline deadline;  // spans all attempts
};

enum class RetryVerdict {
  kRetry,
  kNotRetryable,       // the outcome is final (or a cancellation)
  kAttemptsExhausted,  // max_attempts reached
  kBudgetExhausted,    // the retry budget is below half: the provider looks sick
  kDeadlineExceeded,   // the wait would end after the deadline
};
// "retry", "not_retryable", "attempts_exhausted", "budget_exhausted", "deadline_exceeded".
std::string_view RetryVerdictName(RetryVerdict verdict);

struct RetryPlan {
  RetryVerdict verdict = RetryVerdict::kNotRetryable;
  Duration delay{};     // when retrying: how long to wait (>= 0)
  MonoTime retry_at{};  // when retrying: now + delay
  bool retry() const { return verdict == RetryVerdict::kRetry; }
};

// `budget` may be null (no budget).
RetryPlan PlanRetry(const RetryInputs& inputs, const Backoff& backoff, const RetryBudget* budget,
                    Random& random);

}  // namespace enrichd::resilience

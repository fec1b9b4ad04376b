#include "enrichd/resilience/retry_plan.h"

#include "enrichd/resilience/retry_after.h"

namespace enrichd::resilience {

std::string_view RetryVerdictName(RetryVerdict verdict) {
  switch (verdict) {
    case RetryVerdict::kRetry:
      return "retry";
    case RetryVerdict::kNotRetryable:
      return "not_retryable";
    case RetryVerdict::kAttemptsExhausted:
      return "attempts_exhausted";
    case RetryVerdict::kBudgetExhausted:
      return "budget_exhausted";
    case RetryVerdict::kDeadlineExceeded:
      return "deadline_exceeded";
  }
  return "unknown";
}

RetryPlan PlanRetry(const RetryInputs& inputs, const Backoff& backoff, const RetryBudget* budget,
                    Random& random) {
  RetryPlan plan;
  const Outcome o = inputs.outcome;
  if (o != Outcome::kTransient && o != Outcome::kRateLimited && o != Outcome::kCircuitOpen) {
    plan.verdict = RetryVerdict::kNotRetryable;
    return plan;
  }
  if (!backoff.AttemptsRemain(inputs.attempts_made)) {
    plan.verdict = RetryVerdict::kAttemptsExhausted;
    return plan;
  }
  if (o == Outcome::kTransient && budget != nullptr && !budget->RetryAllowed()) {
    plan.verdict = RetryVerdict::kBudgetExhausted;
    return plan;
  }
  const Duration delay =
      inputs.retry_after.has_value()
          ? JitterRetryAfter(*inputs.retry_after, random)
          : backoff.NextDelay(inputs.attempts_made, inputs.previous_delay, random);
  const RetryDecision decision = DecideRetry(inputs.now, delay, inputs.deadline);
  if (!decision.retry()) {
    plan.verdict = RetryVerdict::kDeadlineExceeded;
    return plan;
  }
  plan.verdict = RetryVerdict::kRetry;
  plan.delay = decision.delay;
  plan.retry_at = decision.retry_at;
  return plan;
}

}  // namespace enrichd::resilience

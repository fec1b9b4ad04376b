#include "enrichd/resilience/retry_plan.h"

#include <gtest/gtest.h>

namespace enrichd::resilience {
namespace {

using namespace std::chrono_literals;

class RetryPlanTest : public ::testing::Test {
 protected:
  RetryInputs Inputs(Outcome outcome, int attempts_made) {
    RetryInputs in;
    in.outcome = outcome;
    in.attempts_made = attempts_made;
    in.now = clock_.Now();
    return in;
  }
  FakeClock clock_;
  FixedRandom half_{0.5};
  // max 3 attempts, 100 ms base, 1 s cap, full jitter (half of the ceiling with half_).
  Backoff backoff_ =
      Backoff::Create({.max_attempts = 3, .base_delay = 100ms, .max_delay = 1s}).value();
};

TEST_F(RetryPlanTest, TransientRetriesWithBackoffUntilAttemptsRunOut) {
  RetryPlan plan = PlanRetry(Inputs(Outcome::kTransient, 1), backoff_, nullptr, half_);
  ASSERT_TRUE(plan.retry());
  EXPECT_EQ(plan.delay, 50ms);
  EXPECT_EQ(plan.retry_at, clock_.Now() + 50ms);
  plan = PlanRetry(Inputs(Outcome::kTransient, 2), backoff_, nullptr, half_);
  ASSERT_TRUE(plan.retry());
  EXPECT_EQ(plan.delay, 100ms);
  plan = PlanRetry(Inputs(Outcome::kTransient, 3), backoff_, nullptr, half_);
  EXPECT_EQ(plan.verdict, RetryVerdict::kAttemptsExhausted);
}

TEST_F(RetryPlanTest, FinalOutcomesAndCancellationAreNotRetried) {
  for (Outcome o : {Outcome::kOk, Outcome::kNoData, Outcome::kSkipped, Outcome::kPermanent,
                    Outcome::kAuth, Outcome::kCancelled}) {
    EXPECT_EQ(PlanRetry(Inputs(o, 1), backoff_, nullptr, half_).verdict,
              RetryVerdict::kNotRetryable)
        << OutcomeName(o);
  }
}

TEST_F(RetryPlanTest, RetryAfterWinsOverBackoffWithJitter) {
  RetryInputs in = Inputs(Outcome::kRateLimited, 1);
  in.retry_after = 7s;
  const RetryPlan plan = PlanRetry(in, backoff_, nullptr, half_);
  ASSERT_TRUE(plan.retry());
  EXPECT_EQ(plan.delay, 8750ms);  // 7 s + half of 50 %
}

TEST_F(RetryPlanTest, BudgetStopsTransientRetriesOnly) {
  auto budget = RetryBudget::Create({.max_tokens = 2, .token_ratio = 0.1}).value();
  (void)budget->RecordFailure();  // 1: not > 1
  EXPECT_EQ(PlanRetry(Inputs(Outcome::kTransient, 1), backoff_, budget.get(), half_).verdict,
            RetryVerdict::kBudgetExhausted);
  RetryInputs limited = Inputs(Outcome::kRateLimited, 1);
  limited.retry_after = 1s;
  EXPECT_TRUE(PlanRetry(limited, backoff_, budget.get(), half_).retry());
  RetryInputs open = Inputs(Outcome::kCircuitOpen, 1);
  open.retry_after = 30s;
  EXPECT_TRUE(PlanRetry(open, backoff_, budget.get(), half_).retry());
}

TEST_F(RetryPlanTest, BackoffPastTheDeadlineGivesUpNow) {
  RetryInputs in = Inputs(Outcome::kRateLimited, 1);
  in.retry_after = 7s;
  in.deadline = Deadline::After(clock_.Now(), 5s);
  EXPECT_EQ(PlanRetry(in, backoff_, nullptr, half_).verdict, RetryVerdict::kDeadlineExceeded);
  in.deadline = Deadline::After(clock_.Now(), 10s);
  EXPECT_TRUE(PlanRetry(in, backoff_, nullptr, half_).retry());
}

TEST_F(RetryPlanTest, VerdictNames) {
  EXPECT_EQ(RetryVerdictName(RetryVerdict::kRetry), "retry");
  EXPECT_EQ(RetryVerdictName(RetryVerdict::kBudgetExhausted), "budget_exhausted");
  EXPECT_EQ(RetryVerdictName(RetryVerdict::kDeadlineExceeded), "deadline_exceeded");
}

}  // namespace
}  // namespace enrichd::resilience

#include "enrichd/resilience/retry_budget.h"

#include <gtest/gtest.h>

#include <limits>
#include <thread>
#include <vector>

namespace enrichd::resilience {
namespace {

std::unique_ptr<RetryBudget> Make(double max, double ratio) {
  auto budget = RetryBudget::Create({.max_tokens = max, .token_ratio = ratio});
  EXPECT_TRUE(budget.ok()) << budget.status();
  return std::move(budget).value();
}

// Acceptance 14: gRPC throttle (max 4, ratio 1.6): F -> 3 retry; S -> 4; F -> 3 retry;
// F -> 2 no retry.
TEST(RetryBudgetAcceptanceTest, Case14GrpcThrottle) {
  auto budget = Make(4, 1.6);
  EXPECT_TRUE(budget->RetryAllowed());
  EXPECT_TRUE(budget->RecordFailure());
  EXPECT_DOUBLE_EQ(budget->Tokens(), 3.0);
  budget->RecordSuccess();
  EXPECT_DOUBLE_EQ(budget->Tokens(), 4.0);  // capped at max
  EXPECT_TRUE(budget->RecordFailure());
  EXPECT_DOUBLE_EQ(budget->Tokens(), 3.0);
  EXPECT_FALSE(budget->RecordFailure());
  EXPECT_DOUBLE_EQ(budget->Tokens(), 2.0);
  EXPECT_FALSE(budget->RetryAllowed());
  budget->RecordSuccess();  // 3.6 > 2
  EXPECT_DOUBLE_EQ(budget->Tokens(), 3.6);
  EXPECT_TRUE(budget->RetryAllowed());
}

TEST(RetryBudgetTest, TokensNeverGoBelowZero) {
  auto budget = Make(2, 0.5);
  for (int i = 0; i < 10; ++i) EXPECT_FALSE(budget->RecordFailure());  // 1 is not > 1
  EXPECT_DOUBLE_EQ(budget->Tokens(), 0.0);
  budget->RecordSuccess();
  budget->RecordSuccess();
  budget->RecordSuccess();
  EXPECT_DOUBLE_EQ(budget->Tokens(), 1.5);
  EXPECT_TRUE(budget->RetryAllowed());
}

TEST(RetryBudgetTest, ZeroRatioNeverRecovers) {
  auto budget = Make(2, 0);
  EXPECT_FALSE(budget->RecordFailure());  // 1 is not > 1
  budget->RecordSuccess();
  EXPECT_FALSE(budget->RetryAllowed());
}

TEST(RetryBudgetTest, RecordsOutcomesByKind) {
  auto budget = Make(4, 1);
  EXPECT_TRUE(budget->Record(Outcome::kTransient));   // 3
  EXPECT_FALSE(budget->Record(Outcome::kTransient));  // 2
  for (Outcome ignored : {Outcome::kPermanent, Outcome::kCancelled, Outcome::kRateLimited,
                          Outcome::kAuth, Outcome::kSkipped, Outcome::kCircuitOpen}) {
    EXPECT_FALSE(budget->Record(ignored));
  }
  EXPECT_DOUBLE_EQ(budget->Tokens(), 2.0);
  EXPECT_TRUE(budget->Record(Outcome::kNoData));  // 3
  EXPECT_TRUE(budget->Record(Outcome::kOk));      // 4
  EXPECT_DOUBLE_EQ(budget->Tokens(), 4.0);
}

TEST(RetryBudgetTest, RejectsInvalidConfigNamingTheField) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (double max : {0.0, -1.0, nan, 1e7}) {
    auto budget = RetryBudget::Create({.max_tokens = max, .token_ratio = 0.1});
    ASSERT_FALSE(budget.ok()) << max;
    EXPECT_NE(budget.status().message().find("retry_budget.max_tokens"), std::string::npos);
  }
  for (double ratio : {-0.1, nan}) {
    auto budget = RetryBudget::Create({.max_tokens = 10, .token_ratio = ratio});
    ASSERT_FALSE(budget.ok()) << ratio;
    EXPECT_NE(budget.status().message().find("retry_budget.token_ratio"), std::string::npos);
  }
  EXPECT_FALSE(RetryBudget::Create({.max_tokens = 0.0001, .token_ratio = 0}).ok());
}

TEST(RetryBudgetTest, ConcurrentUpdatesStayWithinBounds) {
  auto budget = Make(10, 0.5);
  std::vector<std::thread> threads;
  threads.reserve(8);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10000; ++i) {
        if ((i + t) % 3 == 0) {
          (void)budget->RecordFailure();
        } else {
          budget->RecordSuccess();
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_GE(budget->Tokens(), 0.0);
  EXPECT_LE(budget->Tokens(), 10.0);
}

}  // namespace
}  // namespace enrichd::resilience

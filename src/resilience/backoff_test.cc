#include "enrichd/resilience/backoff.h"

#include <gtest/gtest.h>

#include <climits>
#include <set>

namespace enrichd::resilience {
namespace {

using namespace std::chrono_literals;

Backoff MakeBackoff(Duration base, Duration cap, JitterMode mode, int max_attempts = 5) {
  auto backoff = Backoff::Create(
      {.max_attempts = max_attempts, .base_delay = base, .max_delay = cap, .jitter = mode});
  EXPECT_TRUE(backoff.ok()) << backoff.status();
  return std::move(backoff).value();
}

// Acceptance 7: base 100 ms, cap 1 s, full jitter: retry 1 in [0, 100 ms), retry 3 in
// [0, 400 ms), retry 20: 1000 samples all <= cap with spread > 0; retry 10 000 does not
// overflow.
TEST(BackoffAcceptanceTest, Case7FullJitterRangesCapAndNoOverflow) {
  const Backoff backoff = MakeBackoff(100ms, 1s, JitterMode::kFull);
  SeededRandom random(7);
  Duration max1{}, max3{};
  for (int i = 0; i < 1000; ++i) {
    const Duration d1 = backoff.NextDelay(1, Duration::zero(), random);
    ASSERT_GE(d1, Duration::zero());
    ASSERT_LT(d1, 100ms);
    max1 = std::max(max1, d1);
    const Duration d3 = backoff.NextDelay(3, Duration::zero(), random);
    ASSERT_GE(d3, Duration::zero());
    ASSERT_LT(d3, 400ms);
    max3 = std::max(max3, d3);
  }
  EXPECT_GT(max3, 100ms);  // retry 3 really reaches beyond retry 1's range
  // The top of each range with the largest random fraction.
  FixedRandom top(0.999999);
  EXPECT_GT(backoff.NextDelay(1, Duration::zero(), top), 99ms);
  EXPECT_GT(backoff.NextDelay(3, Duration::zero(), top), 399ms);

  std::set<int64_t> distinct;
  Duration lo = Duration::max(), hi = Duration::min();
  for (int i = 0; i < 1000; ++i) {
    const Duration d = backoff.NextDelay(20, Duration::zero(), random);
    ASSERT_LE(d, 1s);
    ASSERT_GE(d, Duration::zero());
    lo = std::min(lo, d);
    hi = std::max(hi, d);
    distinct.insert(d.count());
  }
  EXPECT_GT(hi - lo, 500ms);  // jitter still spreads the clients at the cap
  EXPECT_GT(distinct.size(), 900u);

  EXPECT_EQ(backoff.Ceiling(10'000), 1s);
  const Duration far = backoff.NextDelay(10'000, Duration::zero(), random);
  EXPECT_GE(far, Duration::zero());
  EXPECT_LE(far, 1s);
  EXPECT_EQ(backoff.Ceiling(INT_MAX), 1s);
  EXPECT_LE(backoff.NextDelay(INT_MAX, Duration::zero(), random), 1s);
}

TEST(BackoffTest, NoJitterDoublesUpToTheCap) {
  const Backoff backoff = MakeBackoff(100ms, 1s, JitterMode::kNone);
  FixedRandom random(0.5);
  EXPECT_EQ(backoff.NextDelay(1, {}, random), 100ms);
  EXPECT_EQ(backoff.NextDelay(2, {}, random), 200ms);
  EXPECT_EQ(backoff.NextDelay(3, {}, random), 400ms);
  EXPECT_EQ(backoff.NextDelay(4, {}, random), 800ms);
  EXPECT_EQ(backoff.NextDelay(5, {}, random), 1s);
  EXPECT_EQ(backoff.NextDelay(0, {}, random), 100ms);  // below 1 counts as 1
  EXPECT_EQ(backoff.NextDelay(-5, {}, random), 100ms);
}

TEST(BackoffTest, FullJitterIsAFractionOfTheCeiling) {
  const Backoff backoff = MakeBackoff(100ms, 1s, JitterMode::kFull);
  FixedRandom half(0.5);
  EXPECT_EQ(backoff.NextDelay(3, {}, half), 200ms);
  FixedRandom zero(0.0);
  EXPECT_EQ(backoff.NextDelay(3, {}, zero), Duration::zero());
}

TEST(BackoffTest, HugeDelaysSaturateWithoutOverflow) {
  // The largest representable cap, and a base near it.
  const Backoff backoff = MakeBackoff(Duration::max() / 2, Duration::max(), JitterMode::kNone);
  FixedRandom random(0.5);
  EXPECT_EQ(backoff.NextDelay(2, {}, random), Duration::max() / 2 * 2);
  EXPECT_EQ(backoff.NextDelay(3, {}, random), Duration::max());
  EXPECT_EQ(backoff.NextDelay(10'000, {}, random), Duration::max());
  const Backoff one_ns = MakeBackoff(Duration(1), Duration::max(), JitterMode::kNone);
  EXPECT_EQ(one_ns.NextDelay(63, {}, random), Duration(int64_t{1} << 62));
  EXPECT_EQ(one_ns.NextDelay(64, {}, random), Duration::max());
}

TEST(BackoffTest, DecorrelatedStaysInRangeAndStillVariesAtTheCap) {
  const Backoff backoff = MakeBackoff(100ms, 1s, JitterMode::kDecorrelated);
  FixedRandom half(0.5);
  // First retry: previous = base -> rand[100 ms, 300 ms) -> 200 ms at one half.
  EXPECT_EQ(backoff.NextDelay(1, Duration::zero(), half), 200ms);
  EXPECT_EQ(backoff.NextDelay(2, 200ms, half), 350ms);

  SeededRandom random(11);
  Duration previous = Duration::zero();
  std::set<int64_t> at_cap;
  for (int retry = 1; retry <= 2000; ++retry) {
    const Duration d = backoff.NextDelay(retry, previous, random);
    ASSERT_GE(d, 100ms);
    ASSERT_LE(d, 1s);
    if (retry > 50) at_cap.insert(d.count());
    previous = d;
  }
  EXPECT_GT(at_cap.size(), 1000u);  // never pinned to exactly the cap
  // Even with the previous delay far above the cap, and saturating 3 * previous.
  const Duration d = backoff.NextDelay(7, Duration::max(), half);
  EXPECT_GE(d, 100ms);
  EXPECT_LT(d, 1s);
}

TEST(BackoffTest, EqualJitterKeepsHalfTheCeiling) {
  const Backoff backoff = MakeBackoff(100ms, 1s, JitterMode::kEqual);
  FixedRandom zero(0.0);
  EXPECT_EQ(backoff.NextDelay(3, {}, zero), 200ms);
  FixedRandom half(0.5);
  EXPECT_EQ(backoff.NextDelay(3, {}, half), 300ms);
}

TEST(BackoffTest, MaxAttemptsCountsTheFirstCall) {
  const Backoff backoff = MakeBackoff(100ms, 1s, JitterMode::kFull, 3);
  EXPECT_TRUE(backoff.AttemptsRemain(1));
  EXPECT_TRUE(backoff.AttemptsRemain(2));
  EXPECT_FALSE(backoff.AttemptsRemain(3));
  const Backoff single = MakeBackoff(100ms, 1s, JitterMode::kFull, 1);
  EXPECT_FALSE(single.AttemptsRemain(1));
}

TEST(BackoffTest, RejectsInvalidConfigNamingTheField) {
  struct Case {
    BackoffConfig config;
    const char* field;
  };
  const Case cases[] = {
      {{.max_attempts = 0}, "retry.max_attempts"},
      {{.max_attempts = -1}, "retry.max_attempts"},
      {{.base_delay = Duration::zero()}, "retry.base_delay"},
      {{.base_delay = -5ms}, "retry.base_delay"},
      {{.base_delay = 2s, .max_delay = 1s}, "retry.max_delay"},
      {{.max_delay = -1s}, "retry.max_delay"},
      {{.jitter = static_cast<JitterMode>(42)}, "retry.jitter"},
  };
  for (const Case& c : cases) {
    auto backoff = Backoff::Create(c.config);
    ASSERT_FALSE(backoff.ok()) << c.field;
    EXPECT_EQ(backoff.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(backoff.status().message().find(c.field), std::string::npos)
        << backoff.status().message();
  }
  EXPECT_TRUE(Backoff::Create({}).ok());
}

TEST(BackoffTest, JitterModeNamesRoundTrip) {
  for (JitterMode mode :
       {JitterMode::kFull, JitterMode::kDecorrelated, JitterMode::kEqual, JitterMode::kNone}) {
    auto parsed = JitterModeFromName(JitterModeName(mode));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, mode);
  }
  auto bad = JitterModeFromName("exponential");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("retry.jitter"), std::string::npos);
}

}  // namespace
}  // namespace enrichd::resilience

#include "enrichd/resilience/deadline.h"

#include <gtest/gtest.h>

namespace enrichd::resilience {
namespace {

using namespace std::chrono_literals;

TEST(DeadlineTest, InfiniteNeverExpires) {
  const Deadline d = Deadline::Infinite();
  const MonoTime now = FakeClock().Now();
  EXPECT_TRUE(d.is_infinite());
  EXPECT_EQ(d, Deadline());
  EXPECT_EQ(d.Remaining(now), Duration::max());
  EXPECT_FALSE(d.Expired(MonoTime::max()));
  EXPECT_TRUE(d.Allows(now, Duration::max()));
}

TEST(DeadlineTest, RemainingCountsDownAndStopsAtZero) {
  FakeClock clock;
  const Deadline d = Deadline::After(clock.Now(), 2s);
  EXPECT_FALSE(d.is_infinite());
  EXPECT_EQ(d.Remaining(clock.Now()), 2s);
  clock.Advance(1500ms);
  EXPECT_EQ(d.Remaining(clock.Now()), 500ms);
  EXPECT_FALSE(d.Expired(clock.Now()));
  clock.Advance(500ms);
  EXPECT_TRUE(d.Expired(clock.Now()));
  EXPECT_EQ(d.Remaining(clock.Now()), Duration::zero());
  clock.Advance(1h);
  EXPECT_EQ(d.Remaining(clock.Now()), Duration::zero());
}

TEST(DeadlineTest, AfterSaturates) {
  const MonoTime now = FakeClock().Now();
  EXPECT_TRUE(Deadline::After(now, Duration::max()).is_infinite());
  EXPECT_EQ(Deadline::After(now, Duration::max() - 1ns).time(), MonoTime::max());
  EXPECT_TRUE(Deadline::After(now, -1s).Expired(now));
  EXPECT_EQ(Deadline::After(MonoTime::min(), Duration::min()).time(), MonoTime::min());
}

TEST(DeadlineTest, EarlierPicksTheSoonest) {
  const MonoTime now = FakeClock().Now();
  const Deadline a = Deadline::At(now + 1s);
  const Deadline b = Deadline::At(now + 2s);
  EXPECT_EQ(Deadline::Earlier(a, b), a);
  EXPECT_EQ(Deadline::Earlier(Deadline::Infinite(), b), b);
}

TEST(DeadlineTest, RetryWhoseBackoffEndsAfterTheDeadlineGivesUpNow) {
  FakeClock clock;
  const Deadline deadline = Deadline::After(clock.Now(), 1s);
  const RetryDecision late = DecideRetry(clock.Now(), 1001ms, deadline);
  EXPECT_FALSE(late.retry());
  EXPECT_EQ(late.verdict, RetryDecision::Verdict::kGiveUpDeadline);

  const RetryDecision exact = DecideRetry(clock.Now(), 1s, deadline);
  ASSERT_TRUE(exact.retry());
  EXPECT_EQ(exact.delay, 1s);
  EXPECT_EQ(exact.retry_at, clock.Now() + 1s);

  const RetryDecision negative = DecideRetry(clock.Now(), -5s, deadline);
  ASSERT_TRUE(negative.retry());
  EXPECT_EQ(negative.delay, Duration::zero());

  clock.Advance(2s);  // the deadline has passed: even an immediate retry gives up
  EXPECT_FALSE(DecideRetry(clock.Now(), Duration::zero(), deadline).retry());
  EXPECT_TRUE(DecideRetry(clock.Now(), 1h, Deadline::Infinite()).retry());
}

TEST(DeadlineTest, SaturatingArithmetic) {
  EXPECT_EQ(SaturatingAdd(Duration::max(), 1ns), Duration::max());
  EXPECT_EQ(SaturatingAdd(Duration::min(), -1ns), Duration::min());
  EXPECT_EQ(SaturatingAdd(1s, 2s), 3s);
  EXPECT_EQ(SaturatingAdd(MonoTime::max() - 1s, 2s), MonoTime::max());
  EXPECT_EQ(SaturatingSub(MonoTime::max(), MonoTime::min()), Duration::max());
  EXPECT_EQ(SaturatingSub(MonoTime::min(), MonoTime::max()), Duration::min());
}

}  // namespace
}  // namespace enrichd::resilience

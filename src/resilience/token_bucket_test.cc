#include "enrichd/resilience/token_bucket.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <limits>
#include <thread>
#include <vector>

namespace enrichd::resilience {
namespace {

using namespace std::chrono_literals;

std::unique_ptr<TokenBucket> MakeBucket(double rate, int64_t burst, const Clock& clock) {
  auto bucket = TokenBucket::Create({.rate_per_second = rate, .burst = burst}, clock);
  EXPECT_TRUE(bucket.ok()) << bucket.status();
  return std::move(bucket).value();
}

// Acceptance 1: rate 10/s, burst 1: allowed at t0, refused again at t0, allowed at t0+100 ms.
TEST(TokenBucketAcceptanceTest, Case1BurstOneRefillsAfterOneInterval) {
  FakeClock clock;
  auto bucket = MakeBucket(10, 1, clock);
  EXPECT_TRUE(bucket->TryAcquire());
  EXPECT_FALSE(bucket->TryAcquire());
  clock.Advance(99ms);
  EXPECT_FALSE(bucket->TryAcquire());
  clock.Advance(1ms);
  EXPECT_TRUE(bucket->TryAcquire());
  EXPECT_FALSE(bucket->TryAcquire());
}

// Acceptance 2: rate 10/s, burst 3: take 2, take 2 refused, take 1 ok; 4 refused outright;
// after 500 ms idle exactly 3 tokens.
TEST(TokenBucketAcceptanceTest, Case2MultiTokenTakesAndCapacity) {
  FakeClock clock;
  auto bucket = MakeBucket(10, 3, clock);
  EXPECT_TRUE(bucket->TryAcquire(2));
  EXPECT_FALSE(bucket->TryAcquire(2));
  EXPECT_TRUE(bucket->TryAcquire(1));
  EXPECT_FALSE(bucket->TryAcquire(4));
  auto too_big = bucket->Reserve(4);
  EXPECT_EQ(too_big.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bucket->TimeUntilAvailable(4), Duration::max());
  clock.Advance(500ms);
  EXPECT_DOUBLE_EQ(bucket->TokensApprox(), 3.0);
  EXPECT_TRUE(bucket->TryAcquire(3));
  EXPECT_FALSE(bucket->TryAcquire(1));
}

// Acceptance 3: rate 10/s, burst 5: 100 requests at t0 -> exactly 5 admitted; with
// reservations the k-th (k > 5) is scheduled at (k-5)*100 ms.
TEST(TokenBucketAcceptanceTest, Case3HundredAtOnceAdmitsBurstAndSchedulesTheRest) {
  FakeClock clock;
  auto bucket = MakeBucket(10, 5, clock);
  int admitted = 0;
  for (int i = 0; i < 100; ++i) admitted += bucket->TryAcquire() ? 1 : 0;
  EXPECT_EQ(admitted, 5);

  FakeClock clock2;
  auto paced = MakeBucket(10, 5, clock2);
  for (int k = 1; k <= 100; ++k) {
    auto wait = paced->Reserve(1);
    ASSERT_TRUE(wait.ok()) << wait.status();
    const Duration expected = k <= 5 ? Duration::zero() : (k - 5) * Duration(100ms);
    EXPECT_EQ(*wait, expected) << "k=" << k;
  }
  // The schedule is real: nothing else is admitted before the queue has drained.
  clock2.Advance(9500ms);
  EXPECT_FALSE(paced->TryAcquire());
  clock2.Advance(100ms);
  EXPECT_TRUE(paced->TryAcquire());
}

// Acceptance 4: rate 100/s, burst 100, one attempt every 2 ms for 5 s -> admitted in
// [599, 601].
TEST(TokenBucketAcceptanceTest, Case4SteadyAttemptsAdmitBurstPlusRateTimesDuration) {
  FakeClock clock;
  auto bucket = MakeBucket(100, 100, clock);
  int admitted = 0;
  for (int i = 0; i < 2500; ++i) {
    admitted += bucket->TryAcquire() ? 1 : 0;
    clock.Advance(2ms);
  }
  EXPECT_GE(admitted, 599);
  EXPECT_LE(admitted, 601);
}

// Acceptance 5: clock presented t1, t0, t1 again -> no token credited twice.
TEST(TokenBucketAcceptanceTest, Case5BackwardsClockCreditsNothingTwice) {
  FakeClock clock;
  const MonoTime t0 = clock.Now();
  const MonoTime t1 = t0 + 100ms;
  auto bucket = MakeBucket(10, 1, clock);
  ASSERT_TRUE(bucket->TryAcquire());  // empty at t0
  clock.SetMonotonic(t1);
  EXPECT_TRUE(bucket->TryAcquire());  // the token of [t0, t1]
  clock.SetMonotonic(t0);
  EXPECT_FALSE(bucket->TryAcquire());
  clock.SetMonotonic(t1);
  EXPECT_FALSE(bucket->TryAcquire());  // [t0, t1] already credited
  EXPECT_DOUBLE_EQ(bucket->TokensApprox(), 0.0);
  clock.SetMonotonic(t1 + 100ms);
  EXPECT_TRUE(bucket->TryAcquire());
}

// Acceptance 6: a wait longer than the caller's deadline fails at once, tokens unchanged.
TEST(TokenBucketAcceptanceTest, Case6WaitPastDeadlineFailsAtOnceAndSpendsNothing) {
  FakeClock clock;
  auto bucket = MakeBucket(10, 2, clock);
  ASSERT_TRUE(bucket->TryAcquire(2));
  clock.Advance(50ms);  // half a token
  const double before = bucket->TokensApprox();
  auto refused = bucket->Reserve(1, Deadline::At(clock.Now() + 49ms));
  EXPECT_EQ(refused.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_DOUBLE_EQ(bucket->TokensApprox(), before);
  EXPECT_EQ(bucket->TimeUntilAvailable(1), 50ms);
  // A wait ending exactly at the deadline is allowed.
  auto granted = bucket->Reserve(1, Deadline::At(clock.Now() + 50ms));
  ASSERT_TRUE(granted.ok()) << granted.status();
  EXPECT_EQ(*granted, 50ms);
}

TEST(TokenBucketTest, RejectsInvalidConfigNamingTheField) {
  FakeClock clock;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  for (double rate : {0.0, -1.0, nan, inf, 2e9}) {
    auto bucket = TokenBucket::Create({.rate_per_second = rate, .burst = 5}, clock);
    ASSERT_FALSE(bucket.ok()) << rate;
    EXPECT_EQ(bucket.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(bucket.status().message().find("per_second"), std::string::npos);
  }
  for (int64_t burst : {int64_t{0}, int64_t{-3}, int64_t{2'000'000'000}}) {
    auto bucket = TokenBucket::Create({.rate_per_second = 1, .burst = burst}, clock);
    ASSERT_FALSE(bucket.ok()) << burst;
    EXPECT_NE(bucket.status().message().find("burst"), std::string::npos);
  }
}

TEST(TokenBucketTest, InitialTokensStartsPartlyFilledAndRefillsAtTheRate) {
  FakeClock clock;
  auto bucket =
      TokenBucket::Create({.rate_per_second = 10, .burst = 5, .initial_tokens = 1}, clock);
  ASSERT_TRUE(bucket.ok()) << bucket.status().ToString();
  EXPECT_TRUE((*bucket)->TryAcquire(1));
  EXPECT_FALSE((*bucket)->TryAcquire(1));  // not the burst of 5: one token only
  clock.Advance(std::chrono::milliseconds(100));
  EXPECT_TRUE((*bucket)->TryAcquire(1));
  clock.Advance(std::chrono::seconds(10));
  EXPECT_DOUBLE_EQ((*bucket)->TokensApprox(), 5.0);  // refills up to the burst as usual

  for (int64_t bad : {int64_t{-2}, int64_t{6}}) {
    auto refused =
        TokenBucket::Create({.rate_per_second = 10, .burst = 5, .initial_tokens = bad}, clock);
    ASSERT_FALSE(refused.ok()) << bad;
    EXPECT_NE(refused.status().message().find("initial_tokens"), std::string::npos);
  }
}

TEST(TokenBucketTest, InvalidRequestSizesAreRefusedWithoutSpending) {
  FakeClock clock;
  auto bucket = MakeBucket(10, 3, clock);
  EXPECT_FALSE(bucket->TryAcquire(0));
  EXPECT_FALSE(bucket->TryAcquire(-1));
  EXPECT_EQ(bucket->Reserve(0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bucket->TimeUntilAvailable(0), Duration::max());
  EXPECT_DOUBLE_EQ(bucket->TokensApprox(), 3.0);
}

TEST(TokenBucketTest, LongIdleRefillsOnlyToBurst) {
  FakeClock clock;
  auto bucket = MakeBucket(1000, 4, clock);
  ASSERT_TRUE(bucket->TryAcquire(4));
  clock.Advance(std::chrono::hours(24 * 365));
  EXPECT_DOUBLE_EQ(bucket->TokensApprox(), 4.0);
  EXPECT_TRUE(bucket->TryAcquire(4));
  EXPECT_FALSE(bucket->TryAcquire(1));
}

TEST(TokenBucketTest, NonIntegerIntervalRoundsWaitUpSoTheTokenExists) {
  FakeClock clock;
  auto bucket = MakeBucket(3, 1, clock);  // one token every 333333333.3 ns
  ASSERT_TRUE(bucket->TryAcquire());
  const Duration wait = bucket->TimeUntilAvailable(1);
  EXPECT_EQ(wait, Duration(333'333'334));
  clock.Advance(wait - Duration(1));
  EXPECT_FALSE(bucket->TryAcquire());
  clock.Advance(Duration(1));
  EXPECT_TRUE(bucket->TryAcquire());
}

TEST(TokenBucketTest, FractionalRate) {
  FakeClock clock;
  auto bucket = MakeBucket(0.5, 1, clock);
  ASSERT_TRUE(bucket->TryAcquire());
  EXPECT_EQ(bucket->TimeUntilAvailable(1), 2s);
  clock.Advance(1999ms);
  EXPECT_FALSE(bucket->TryAcquire());
  clock.Advance(1ms);
  EXPECT_TRUE(bucket->TryAcquire());
}

TEST(TokenBucketTest, UnrepresentablyLongWaitIsRefusedEvenWithoutDeadline) {
  FakeClock clock;
  auto bucket = MakeBucket(1e-12, 1, clock);
  ASSERT_TRUE(bucket->TryAcquire());
  EXPECT_EQ(bucket->TimeUntilAvailable(1), Duration::max());
  EXPECT_EQ(bucket->Reserve(1).status().code(), StatusCode::kDeadlineExceeded);
}

TEST(TokenBucketTest, PauseDrainsAndAdmitsNothingUntilItEnds) {
  FakeClock clock;
  auto bucket = MakeBucket(10, 5, clock);
  const MonoTime until = clock.Now() + 1s;
  bucket->PauseUntil(until);
  EXPECT_EQ(bucket->PausedUntil(), until);
  EXPECT_FALSE(bucket->TryAcquire());  // drained although it was full
  clock.Advance(999ms);
  EXPECT_FALSE(bucket->TryAcquire());
  clock.Advance(1ms);
  // Refill restarts from empty at the end of the pause: no credit for the paused time.
  EXPECT_FALSE(bucket->TryAcquire());
  EXPECT_EQ(bucket->TimeUntilAvailable(1), 100ms);
  clock.Advance(100ms);
  EXPECT_TRUE(bucket->TryAcquire());
  EXPECT_FALSE(bucket->TryAcquire());
}

TEST(TokenBucketTest, PauseIsNeverShortened) {
  FakeClock clock;
  auto bucket = MakeBucket(10, 5, clock);
  const MonoTime long_until = clock.Now() + 2s;
  bucket->PauseUntil(long_until);
  bucket->PauseUntil(clock.Now() + 1s);
  EXPECT_EQ(bucket->PausedUntil(), long_until);
  clock.Advance(1500ms);
  EXPECT_FALSE(bucket->TryAcquire());
  EXPECT_EQ(bucket->TimeUntilAvailable(1), 500ms + 100ms);
  // A longer pause extends it.
  bucket->PauseUntil(clock.Now() + 3s);
  EXPECT_EQ(bucket->PausedUntil(), clock.Now() + 3s);
}

TEST(TokenBucketTest, PauseInThePastStillDrains) {
  FakeClock clock;
  auto bucket = MakeBucket(10, 5, clock);
  bucket->PauseUntil(clock.Now() - 1s);
  EXPECT_FALSE(bucket->TryAcquire());
  clock.Advance(100ms);
  EXPECT_TRUE(bucket->TryAcquire());
}

TEST(TokenBucketTest, ReserveDuringPauseWaitsForPausePlusRefill) {
  FakeClock clock;
  auto bucket = MakeBucket(10, 5, clock);
  bucket->PauseUntil(clock.Now() + 30s);
  // Past the caller's deadline: refused at once, nothing spent.
  EXPECT_EQ(bucket->Reserve(1, Deadline::At(clock.Now() + 10s)).status().code(),
            StatusCode::kDeadlineExceeded);
  auto first = bucket->Reserve(1);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(*first, 30s + 100ms);
  auto second = bucket->Reserve(1);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(*second, 30s + 200ms);
}

TEST(TokenBucketTest, PauseKeepsTheDebtOfQueuedReservations) {
  FakeClock clock;
  auto bucket = MakeBucket(10, 1, clock);
  ASSERT_TRUE(bucket->Reserve(1).ok());
  ASSERT_EQ(*bucket->Reserve(1), 100ms);  // one token of debt
  bucket->PauseUntil(clock.Now() + 1s);
  // The debt is still owed after the pause: next token at 1 s + 200 ms.
  EXPECT_EQ(bucket->TimeUntilAvailable(1), 1s + 200ms);
}

// Invariant under contention on the real clock: 8 threads for ~0.5 s never get more than
// burst + rate * elapsed tokens in total. (Not a speed assertion: a slow machine admits
// fewer, never more.)
TEST(TokenBucketTest, ConcurrentAcquireNeverExceedsBurstPlusRateTimesElapsed) {
  const Clock& clock = SystemClock::Instance();
  constexpr double kRate = 2000;
  constexpr int64_t kBurst = 50;
  const MonoTime start = clock.Now();
  auto bucket = MakeBucket(kRate, kBurst, clock);
  const MonoTime stop_at = start + 500ms;
  std::atomic<int64_t> admitted{0};
  std::vector<std::thread> threads;
  threads.reserve(8);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      int64_t mine = 0;
      do {
        if (bucket->TryAcquire()) ++mine;
        if (bucket->Reserve(1, Deadline::At(clock.Now())).ok()) ++mine;
      } while (clock.Now() < stop_at);
      admitted.fetch_add(mine);
    });
  }
  for (auto& thread : threads) thread.join();
  const double elapsed_s = std::chrono::duration<double>(clock.Now() - start).count();
  const double bound = static_cast<double>(kBurst) + kRate * elapsed_s;
  EXPECT_LE(static_cast<double>(admitted.load()), bound);
  EXPECT_GT(admitted.load(), 0);  // the bucket started full: the threads did get tokens
}

}  // namespace
}  // namespace enrichd::resilience

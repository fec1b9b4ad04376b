#include "enrichd/clock.h"

#include <gtest/gtest.h>

namespace enrichd {
namespace {

using namespace std::chrono_literals;

TEST(FakeClockTest, MovesOnlyWhenAdvanced) {
  FakeClock clock;
  const MonoTime t0 = clock.Now();
  const WallTime w0 = clock.WallNow();
  EXPECT_EQ(clock.Now(), t0);
  clock.Advance(250ms);
  EXPECT_EQ(clock.Now() - t0, 250ms);
  EXPECT_EQ(clock.WallNow() - w0, 250ms);
  EXPECT_EQ(FormatRfc3339(w0), "2026-01-01T00:00:00.000Z");
}

TEST(FakeClockTest, MonotonicReadingCanBeSetBackwardsForGuardTests) {
  FakeClock clock;
  const MonoTime t1 = clock.Now() + 1s;
  clock.SetMonotonic(t1);
  clock.SetMonotonic(t1 - 500ms);
  EXPECT_EQ(clock.Now(), t1 - 500ms);
}

TEST(ClockFormatTest, UnixMillisRoundTrip) {
  WallTime t = FromUnixMillis(1'700'000'000'123);
  EXPECT_EQ(ToUnixMillis(t), 1'700'000'000'123);
  EXPECT_EQ(FormatRfc3339(t), "2023-11-14T22:13:20.123Z");
}

TEST(ClockFormatTest, DurationsReadLikeConfig) {
  EXPECT_EQ(FormatDuration(0s), "0s");
  EXPECT_EQ(FormatDuration(250ms), "250ms");
  EXPECT_EQ(FormatDuration(2s), "2s");
  EXPECT_EQ(FormatDuration(90s), "1m30s");
  EXPECT_EQ(FormatDuration(1500ms), "1.5s");
  EXPECT_EQ(FormatDuration(std::chrono::hours(24 * 7)), "7d");
}

TEST(SystemClockTest, MonotonicReadingDoesNotGoBack) {
  auto& clock = SystemClock::Instance();
  MonoTime a = clock.Now();
  MonoTime b = clock.Now();
  EXPECT_LE(a, b);
}

}  // namespace
}  // namespace enrichd

#include "enrichd/resilience/retry_after.h"

#include <gtest/gtest.h>

namespace enrichd::resilience {
namespace {

using namespace std::chrono_literals;

// FakeClock's wall starts at 2026-01-01T00:00:00Z, a Thursday.
WallTime Now() { return FakeClock().WallNow(); }

// Acceptance 8: `7` -> 7 s (7-10.5 s with jitter); HTTP-date parsed; 301 s ignored; `-1` and
// `abc` ignored.
TEST(RetryAfterAcceptanceTest, Case8SecondsDatesCapAndGarbage) {
  auto seven = ParseRetryAfter("7", Now());
  ASSERT_TRUE(seven.has_value());
  EXPECT_EQ(*seven, 7s);
  FixedRandom none(0.0);
  EXPECT_EQ(JitterRetryAfter(*seven, none), 7s);
  FixedRandom half(0.5);
  EXPECT_EQ(JitterRetryAfter(*seven, half), 8750ms);
  SeededRandom random(3);
  for (int i = 0; i < 1000; ++i) {
    const Duration d = JitterRetryAfter(*seven, random);
    ASSERT_GE(d, 7s);
    ASSERT_LT(d, 10500ms);
  }

  auto date = ParseRetryAfter("Thu, 01 Jan 2026 00:02:00 GMT", Now());
  ASSERT_TRUE(date.has_value());
  EXPECT_EQ(*date, 120s);

  EXPECT_EQ(ParseRetryAfter("300", Now()), std::optional<Duration>(300s));
  EXPECT_FALSE(ParseRetryAfter("301", Now()).has_value());
  EXPECT_FALSE(ParseRetryAfter("-1", Now()).has_value());
  EXPECT_FALSE(ParseRetryAfter("abc", Now()).has_value());
}

TEST(RetryAfterTest, ObsoleteDateFormsAreAccepted) {
  EXPECT_EQ(ParseRetryAfter("Thursday, 01-Jan-26 00:02:00 GMT", Now()),
            std::optional<Duration>(120s));
  EXPECT_EQ(ParseRetryAfter("Thu Jan  1 00:02:00 2026", Now()), std::optional<Duration>(120s));
  EXPECT_EQ(ParseRetryAfter("Thu Jan 01 00:02:00 2026", Now()), std::optional<Duration>(120s));
}

TEST(RetryAfterTest, HttpDateToWallTime) {
  auto t = ParseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT", Now());
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(ToUnixMillis(*t), 784111777000);
  auto rfc850 = ParseHttpDate("Sunday, 06-Nov-94 08:49:37 GMT", Now());
  ASSERT_TRUE(rfc850.has_value());
  EXPECT_EQ(*rfc850, *t);  // '94 is more than 50 years ahead of 2026 as 2094: so 1994
  auto asctime = ParseHttpDate("Sun Nov  6 08:49:37 1994", Now());
  ASSERT_TRUE(asctime.has_value());
  EXPECT_EQ(*asctime, *t);
  auto leap = ParseHttpDate("Thu, 29 Feb 2024 12:00:00 GMT", Now());
  ASSERT_TRUE(leap.has_value());
  EXPECT_EQ(FormatRfc3339(*leap), "2024-02-29T12:00:00.000Z");
}

TEST(RetryAfterTest, DateInThePastMeansRetryNow) {
  EXPECT_EQ(ParseRetryAfter("Wed, 31 Dec 2025 23:59:00 GMT", Now()),
            std::optional<Duration>(Duration::zero()));
  EXPECT_EQ(ParseRetryAfter("Sun, 06 Nov 1994 08:49:37 GMT", Now()),
            std::optional<Duration>(Duration::zero()));
}

TEST(RetryAfterTest, DateBeyondTheCapIsIgnored) {
  EXPECT_EQ(ParseRetryAfter("Thu, 01 Jan 2026 00:05:00 GMT", Now()), std::optional<Duration>(300s));
  EXPECT_FALSE(ParseRetryAfter("Thu, 01 Jan 2026 00:05:01 GMT", Now()).has_value());
  EXPECT_FALSE(ParseRetryAfter("Fri, 31 Dec 9999 23:59:59 GMT", Now()).has_value());
  // A caller may choose another cap.
  EXPECT_EQ(ParseRetryAfter("3600", Now(), std::chrono::hours(1)), std::optional<Duration>(1h));
  EXPECT_FALSE(ParseRetryAfter("8", Now(), 7s).has_value());
}

TEST(RetryAfterTest, GarbageMeansDoNotRetryOnThisBasis) {
  for (const char* value :
       {"", " ", "7.5", "+7", "7s", "0x10", "1e3", "7 7", "99999999999999999999999999",
        "Thu, 01 Jan 2026 00:02:00 UTC", "Thu, 31 Feb 2026 00:02:00 GMT",
        "Thu, 01 Jan 2026 24:00:00 GMT", "Thu, 1 Jan 2026 00:02:00 GMT",
        "Xyz, 01 Jan 2026 00:02:00 GMT", "Thu, 01 Foo 2026 00:02:00 GMT",
        "Thu, 01 Jan 2026 00:02:00 GMT trailing", "Thursday, 01-Jan-2026 00:02:00 GMT"}) {
    EXPECT_FALSE(ParseRetryAfter(value, Now()).has_value()) << "'" << value << "'";
  }
}

TEST(RetryAfterTest, WhitespaceAroundTheValueIsTolerated) {
  EXPECT_EQ(ParseRetryAfter(" 7 ", Now()), std::optional<Duration>(7s));
  EXPECT_EQ(ParseRetryAfter("\t0", Now()), std::optional<Duration>(Duration::zero()));
}

TEST(RetryAfterTest, JitterOfZeroAndNegativeDelays) {
  FixedRandom half(0.5);
  EXPECT_EQ(JitterRetryAfter(Duration::zero(), half), Duration::zero());
  EXPECT_EQ(JitterRetryAfter(-5s, half), Duration::zero());
  EXPECT_EQ(JitterRetryAfter(Duration::max(), half), Duration::max());
}

}  // namespace
}  // namespace enrichd::resilience

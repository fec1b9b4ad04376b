#include "enrichd/random.h"

#include <gtest/gtest.h>

namespace enrichd {
namespace {

using namespace std::chrono_literals;

TEST(SeededRandomTest, SameSeedSameSequence) {
  SeededRandom a(42), b(42), c(43);
  for (int i = 0; i < 100; ++i) {
    uint64_t va = a.Next64();
    EXPECT_EQ(va, b.Next64());
    (void)c;
  }
  SeededRandom d(42);
  EXPECT_NE(d.Next64(), c.Next64());
}

TEST(SeededRandomTest, UniformStaysInRangeAndSpreads) {
  SeededRandom r(7);
  double lo = 1, hi = 0;
  for (int i = 0; i < 10000; ++i) {
    double x = r.UniformDouble();
    ASSERT_GE(x, 0.0);
    ASSERT_LT(x, 1.0);
    lo = std::min(lo, x);
    hi = std::max(hi, x);
    Duration d = r.UniformDuration(100ms, 200ms);
    ASSERT_GE(d, 100ms);
    ASSERT_LT(d, 200ms);
  }
  EXPECT_LT(lo, 0.01);
  EXPECT_GT(hi, 0.99);
}

TEST(FixedRandomTest, ReturnsTheFractionOfEveryRange) {
  FixedRandom r(0.5);
  EXPECT_DOUBLE_EQ(r.UniformDouble(), 0.5);
  EXPECT_EQ(r.UniformDuration(0ms, 100ms), 50ms);
  FixedRandom top(1.0);
  EXPECT_LT(top.UniformDouble(), 1.0);
  EXPECT_LT(top.UniformDuration(0ms, 100ms), 100ms);
  EXPECT_EQ(r.UniformDuration(5ms, 5ms), 5ms);
}

}  // namespace
}  // namespace enrichd

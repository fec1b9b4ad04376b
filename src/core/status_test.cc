#include "enrichd/status.h"

#include <gtest/gtest.h>

namespace enrichd {
namespace {

Result<int> Half(int x) {
  if (x % 2 != 0) return InvalidArgumentError("odd: " + std::to_string(x));
  return x / 2;
}

Result<int> Quarter(int x) {
  ENRICHD_ASSIGN_OR_RETURN(int half, Half(x));
  ENRICHD_ASSIGN_OR_RETURN(int quarter, Half(half));
  return quarter;
}

TEST(StatusTest, OkAndErrorsPrintTheirCode) {
  EXPECT_TRUE(Status::Ok().ok());
  EXPECT_EQ(Status::Ok().ToString(), "OK");
  Status s = UnavailableError("database is locked");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_EQ(s.ToString(), "UNAVAILABLE: database is locked");
  EXPECT_EQ(s.WithContext("claim").message(), "claim: database is locked");
}

TEST(ResultTest, HoldsValueOrError) {
  auto r = Quarter(8);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 2);
  auto e = Quarter(6);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(e.status().message(), "odd: 3");
  EXPECT_EQ(e.value_or(-1), -1);
}

}  // namespace
}  // namespace enrichd

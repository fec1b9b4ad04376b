#include "enrichd/http.h"

#include <gtest/gtest.h>

namespace enrichd {
namespace {

TEST(HttpHeaderTest, NamesCompareWithoutCase) {
  EXPECT_TRUE(EqualsIgnoreCase("Content-Length", "content-length"));
  EXPECT_FALSE(EqualsIgnoreCase("Content-Length", "content-lengt"));
  EXPECT_FALSE(EqualsIgnoreCase("keep-alive", "keep_alive"));
  HttpResponse r;
  r.headers = {{"retry-after", "5"}, {"Retry-After", "7"}};
  ASSERT_NE(r.Header("RETRY-AFTER"), nullptr);
  EXPECT_EQ(*r.Header("RETRY-AFTER"), "5");  // the first one
  EXPECT_EQ(r.Header("x-rl"), nullptr);
}

TEST(HttpHeaderTest, TokensAreFoundInCommaSeparatedValues) {
  EXPECT_TRUE(HeaderHasToken("close", "close"));
  EXPECT_TRUE(HeaderHasToken("Keep-Alive, Upgrade", "keep-alive"));
  EXPECT_TRUE(HeaderHasToken("upgrade,\t CLOSE ", "close"));
  EXPECT_FALSE(HeaderHasToken("closed", "close"));
  EXPECT_FALSE(HeaderHasToken("", "close"));
  EXPECT_FALSE(HeaderHasToken("keep-alive", "close"));
}

}  // namespace
}  // namespace enrichd

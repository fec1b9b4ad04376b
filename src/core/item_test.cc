#include "enrichd/item.h"

#include <gtest/gtest.h>

namespace enrichd {
namespace {

TEST(ItemTest, IpItemsAreCanonical) {
  auto a = Item::Make("ip", " 2001:DB8:0::1\r\n");
  auto b = Item::Make("ip", "2001:db8::1");
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(a->key, "2001:db8::1");
  EXPECT_EQ(*a, *b);
  ASSERT_TRUE(a->ip.has_value());
}

TEST(ItemTest, InvalidValuesSayWhy) {
  auto r = Item::Make("ip", "01.2.3.4");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(Item::Make("ip", "   ").ok());
  EXPECT_FALSE(Item::Make("domain",
                          "a\x01"
                          "b")
                   .ok());
  EXPECT_FALSE(Item::Make("", "x").ok());
}

TEST(ItemTest, OtherLabelsKeepTheirKey) {
  auto r = Item::Make("domain", "  example.org ");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->key, "example.org");
  EXPECT_FALSE(r->ip.has_value());
}

}  // namespace
}  // namespace enrichd

#include "cli/args.h"

#include <gtest/gtest.h>

#include <cstdlib>

namespace enrichd::cli {
namespace {

TEST(ArgsTest, ParsesValuesFlagsAndPositionals) {
  auto a = Args::Parse({"--store", "sqlite://x.db", "--json", "ip", "--label=domain", "-"},
                       {"store", "label"}, {"json"});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->Get("store"), "sqlite://x.db");
  EXPECT_EQ(a->Get("label"), "domain");
  EXPECT_TRUE(a->Has("json"));
  EXPECT_EQ(a->positionals(), (std::vector<std::string>{"ip", "-"}));
}

TEST(ArgsTest, UnknownOrIncompleteOptionsAreErrors) {
  EXPECT_FALSE(Args::Parse({"--nope"}, {}, {}).ok());
  EXPECT_FALSE(Args::Parse({"--store"}, {"store"}, {}).ok());
  EXPECT_FALSE(Args::Parse({"--json=1"}, {}, {"json"}).ok());
  EXPECT_FALSE(Args::Parse({"-x"}, {}, {}).ok());
  auto r = Args::Parse({"--", "--not-an-option"}, {}, {});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->positionals().front(), "--not-an-option");
}

}  // namespace
}  // namespace enrichd::cli

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

TEST(ArgsTest, StoreUrlPrecedence) {
  ::unsetenv("ENRICHD_STORE");
  EXPECT_EQ(ResolveStoreUrl(std::nullopt, std::nullopt), "sqlite://enrichd.db");
  ::setenv("ENRICHD_STORE", "sqlite://env.db", 1);
  EXPECT_EQ(ResolveStoreUrl(std::nullopt, std::nullopt), "sqlite://env.db");
  EXPECT_EQ(ResolveStoreUrl(std::nullopt, std::string("sqlite://cfg.db")), "sqlite://cfg.db");
  EXPECT_EQ(ResolveStoreUrl(std::string("sqlite://flag.db"), std::string("sqlite://cfg.db")),
            "sqlite://flag.db");
  ::unsetenv("ENRICHD_STORE");
}

}  // namespace
}  // namespace enrichd::cli

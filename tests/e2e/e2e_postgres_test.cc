// End to end on PostgreSQL: the real `enrichd run` with the store on the server named by
// ENRICHD_TEST_PG_URL (a fresh schema per test; skipped when the variable is unset).
#include <gtest/gtest.h>

#include "e2e_util.h"
#include "mock_provider/mock_provider.h"
#include "store/postgres/pg_test_util.h"

namespace enrichd::e2e {
namespace {

using mock::MockProvider;
using mock::MockProviderOptions;

// 9. Two providers, a few hundred addresses: every pair done, one enrichment each, and the
// provider asked exactly once per address.
TEST(E2ePostgres, RunCompletesWithOneEnrichmentEach) {
  const std::string server = pg::TestServerUrl();
  if (server.empty()) GTEST_SKIP() << "ENRICHD_TEST_PG_URL is not set";
  auto schema = pg::TestSchema::Create(server);
  ASSERT_TRUE(schema.ok()) << schema.status().ToString();
  const std::string store = (*schema)->url();

  constexpr int kItems = 200;
  TempDir dir;
  MockProviderOptions o;
  o.ipapi_requests_per_window = 1'000'000;
  auto mock = MockProvider::Start(o);
  ASSERT_TRUE(mock.ok()) << mock.status().ToString();
  const auto ips = PublicIps(kItems);
  ASSERT_TRUE(SeedIps(store, ips).ok());
  const std::string config = dir.Write(
      "enrichd.yaml",
      ConfigYaml({ProviderYaml("ipinfo", "ipinfo", (*mock)->ipinfo_url(), "    concurrency: 8\n"),
                  ProviderYaml("ip-api", "ip-api", (*mock)->ipapi_url(),
                               "    concurrency: 4\n    batch: { max_items: 50 }\n")}));

  RunResult run = RunOnce(dir.path(), "run", config, store);
  ASSERT_TRUE(run.exited) << run.err;
  ASSERT_EQ(run.code, 0) << run.err;

  auto counts = ReadCounts(store);
  ASSERT_TRUE(counts.ok()) << counts.status().ToString();
  for (const std::string provider : {"ipinfo", "ip-api"}) {
    ASSERT_TRUE(counts->providers.count(provider)) << provider;
    const ProviderCounts& c = counts->providers.at(provider);
    EXPECT_EQ(c.done + c.no_data, kItems) << provider;
    EXPECT_EQ(c.pending + c.running + c.dead + c.skipped, 0) << provider;
  }
  auto census = Census(store);
  ASSERT_TRUE(census.ok()) << census.status().ToString();
  ExpectOneEnrichmentEach(*census, ips, {"ipinfo", "ip-api"});

  const auto stats = (*mock)->Snapshot();
  for (const auto& ip : ips) {
    auto it = stats.by_ip.find(ip);
    ASSERT_NE(it, stats.by_ip.end()) << ip << " never asked";
    EXPECT_EQ(it->second, 2u) << ip << ": once per provider";
  }
  EXPECT_GT(stats.by_route.count("ipapi.batch") ? stats.by_route.at("ipapi.batch") : 0u, 0u);
}

}  // namespace
}  // namespace enrichd::e2e

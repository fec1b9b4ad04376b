// End to end: the real `enrichd run` against a failing mock provider — an outage (circuit
// breaker), random transient errors (retries), and items that must never be sent (skipped).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "e2e_util.h"
#include "mock_provider/mock_provider.h"

namespace enrichd::e2e {
namespace {

using mock::MockProvider;
using mock::MockProviderOptions;

ProviderCounts CountsOf(const std::string& store_url, const std::string& provider) {
  auto counts = ReadCounts(store_url);
  EXPECT_TRUE(counts.ok()) << counts.status().ToString();
  if (!counts.ok() || !counts->providers.count(provider)) return {};
  return counts->providers.at(provider);
}

// 4. Outage with a circuit breaker (min_calls 5, open_for 1 s, half_open_calls 1): while the
// provider is down it receives at most min_calls + concurrency calls before the breaker
// opens, then one probe per open period (plus one for the period cut by recovery); after
// recovery every item completes.
TEST(E2eFaults, OutageOpensTheBreakerThenEverythingCompletes) {
  constexpr int kItems = 100;
  constexpr int kMinCalls = 5;
  constexpr int kConcurrency = 4;
  constexpr auto kOpenFor = seconds(1);
  constexpr auto kOutage = seconds(3);
  TempDir dir;
  auto mock = MockProvider::Start(MockProviderOptions{});
  ASSERT_TRUE(mock.ok()) << mock.status().ToString();
  (*mock)->SetOutage(true);
  const std::string store = "sqlite://" + (dir.path() / "graph.db").string();
  const auto ips = PublicIps(kItems);
  ASSERT_TRUE(SeedIps(store, ips).ok());
  const std::string config = dir.Write(
      "enrichd.yaml",
      ConfigYaml({ProviderYaml(
          "ipinfo", "ipinfo", (*mock)->ipinfo_url(),
          "    concurrency: 4\n"
          "    retry: { max_attempts: 30, base_delay: 50ms, max_delay: 500ms }\n"
          "    circuit_breaker: { failure_rate: 0.5, window: 10, min_calls: 5, open_for: 1s, "
          "half_open_calls: 1 }\n")}));

  Child child(dir.path(), "run", RunArgs(config, store));
  ASSERT_GT(child.pid(), 0);
  // The outage lasts kOutage from the first request the provider receives.
  ASSERT_TRUE(PollUntil([&] { return (*mock)->Snapshot().total_requests > 0 || !child.Running(); },
                        seconds(30)));
  const auto first = SteadyClock::now();
  while (SteadyClock::now() < first + kOutage && child.Running()) {
    std::this_thread::sleep_for(milliseconds(20));
  }
  (*mock)->SetOutage(false);
  const auto during = (*mock)->Snapshot();
  RunResult run = Finish(child, seconds(60));
  ASSERT_TRUE(run.exited) << run.err;
  ASSERT_EQ(run.code, 0) << run.err;

  const uint64_t outage_calls = during.events.count("outage") ? during.events.at("outage") : 0;
  const int periods = static_cast<int>(std::ceil(Secs(kOutage) / Secs(kOpenFor)));
  const uint64_t bound = kMinCalls + kConcurrency + periods + 1;
  EXPECT_GE(outage_calls, static_cast<uint64_t>(kMinCalls));
  EXPECT_LE(outage_calls, bound) << "calls during a " << Secs(kOutage) << " s outage";
  RecordProperty("outage_calls", std::to_string(outage_calls));
  EXPECT_GE(run.Field("ipinfo", "breaker_openings"), 1);

  const ProviderCounts c = CountsOf(store, "ipinfo");
  EXPECT_EQ(c.done + c.no_data, kItems);
  EXPECT_EQ(c.dead, 0);
  EXPECT_EQ(c.pending + c.running, 0);
}

// 5. 10 % transient errors (503) with max_attempts 8: every item ends done, none dead.
TEST(E2eFaults, TransientErrorsAreRetriedToCompletion) {
  constexpr int kItems = 200;
  TempDir dir;
  MockProviderOptions o;
  o.error_rate = 0.1;
  o.seed = 7;
  auto mock = MockProvider::Start(o);
  ASSERT_TRUE(mock.ok()) << mock.status().ToString();
  const std::string store = "sqlite://" + (dir.path() / "graph.db").string();
  const auto ips = PublicIps(kItems);
  ASSERT_TRUE(SeedIps(store, ips).ok());
  const std::string config = dir.Write(
      "enrichd.yaml", ConfigYaml({ProviderYaml(
                          "ipinfo", "ipinfo", (*mock)->ipinfo_url(),
                          "    concurrency: 8\n"
                          "    retry: { max_attempts: 8, base_delay: 20ms, max_delay: 1s }\n")}));

  RunResult run = RunOnce(dir.path(), "run", config, store);
  ASSERT_TRUE(run.exited) << run.err;
  ASSERT_EQ(run.code, 0) << run.err;

  const auto stats = (*mock)->Snapshot();
  const uint64_t errors = stats.events.count("error") ? stats.events.at("error") : 0;
  EXPECT_GT(errors, 0u) << "the scenario must inject errors";
  EXPECT_EQ(stats.total_requests, static_cast<uint64_t>(kItems) + errors)
      << "one request per item plus one per injected error";
  EXPECT_EQ(run.Field("ipinfo", "retries"), static_cast<int64_t>(errors));
  EXPECT_EQ(run.Field("ipinfo", "dead"), 0);
  const ProviderCounts c = CountsOf(store, "ipinfo");
  EXPECT_EQ(c.done + c.no_data, kItems);
  EXPECT_EQ(c.dead, 0);
  EXPECT_EQ(c.pending + c.running, 0);
  auto census = Census(store);
  ASSERT_TRUE(census.ok()) << census.status().ToString();
  ExpectOneEnrichmentEach(*census, ips, {"ipinfo"});
}

// 8. Invalid and non-public addresses end `skipped` and are never sent to any provider.
TEST(E2eFaults, InvalidAndPrivateAddressesAreSkippedWithoutARequest) {
  TempDir dir;
  MockProviderOptions o;
  o.ipapi_requests_per_window = 1000;
  auto mock = MockProvider::Start(o);
  ASSERT_TRUE(mock.ok()) << mock.status().ToString();
  const std::string store = "sqlite://" + (dir.path() / "graph.db").string();
  const std::vector<std::string> unsendable = {"10.0.0.1",        "192.168.1.1", "100.64.0.1",
                                               "::ffff:10.0.0.1", "999.1.1.1",   "127.0.0.1",
                                               "fe80::1"};
  const std::vector<std::string> publics = {"8.8.8.8", "1.1.1.1", "2001:4860:4860::8888"};
  std::vector<std::string> all = unsendable;
  all.insert(all.end(), publics.begin(), publics.end());
  ASSERT_TRUE(SeedIps(store, all).ok());
  const std::string config = dir.Write(
      "enrichd.yaml", ConfigYaml({ProviderYaml("ipinfo", "ipinfo", (*mock)->ipinfo_url(), ""),
                                  ProviderYaml("ip-api", "ip-api", (*mock)->ipapi_url(), "")}));

  RunResult run = RunOnce(dir.path(), "run", config, store);
  ASSERT_TRUE(run.exited) << run.err;
  ASSERT_EQ(run.code, 0) << run.err;

  for (const std::string provider : {"ipinfo", "ip-api"}) {
    const ProviderCounts c = CountsOf(store, provider);
    EXPECT_EQ(c.skipped, static_cast<int64_t>(unsendable.size())) << provider;
    EXPECT_EQ(c.done + c.no_data, static_cast<int64_t>(publics.size())) << provider;
    EXPECT_EQ(c.dead + c.pending + c.running, 0) << provider;
    EXPECT_EQ(run.Field(provider, "skipped"), static_cast<int64_t>(unsendable.size())) << provider;
  }
  const auto stats = (*mock)->Snapshot();
  for (const auto& ip : unsendable) {
    EXPECT_EQ(stats.by_ip.count(ip), 0u) << ip << " was sent to the provider";
  }
  for (const auto& [ip, n] : stats.by_ip) {
    EXPECT_TRUE(std::find(publics.begin(), publics.end(), ip) != publics.end())
        << "unexpected lookup of " << ip;
  }
  EXPECT_EQ(stats.total_requests, 2 * publics.size());
}

}  // namespace
}  // namespace enrichd::e2e

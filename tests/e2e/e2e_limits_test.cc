// End to end: the real `enrichd run` against the mock provider on loopback, checking from the
// provider's side that the limits hold — the client's own token bucket, a server's 429 +
// Retry-After, and ip-api's X-Rl / X-Ttl windows.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "e2e_util.h"
#include "mock_provider/mock_provider.h"

namespace enrichd::e2e {
namespace {

using mock::MockProvider;
using mock::MockProviderOptions;
using mock::MockRequestRecord;

std::vector<MockRequestRecord> SortedRequests(const mock::MockProviderStats& s) {
  auto r = s.requests;
  std::sort(r.begin(), r.end(), [](const auto& a, const auto& b) { return a.arrival < b.arrival; });
  return r;
}

void ExpectAllDone(const std::string& store_url, const std::string& provider, int n) {
  auto counts = ReadCounts(store_url);
  ASSERT_TRUE(counts.ok()) << counts.status().ToString();
  ASSERT_TRUE(counts->providers.count(provider)) << "no tasks for " << provider;
  const ProviderCounts& c = counts->providers.at(provider);
  EXPECT_EQ(c.done + c.no_data, n) << provider << ": done " << c.done << ", no_data " << c.no_data;
  EXPECT_EQ(c.pending, 0) << provider;
  EXPECT_EQ(c.running, 0) << provider;
  EXPECT_EQ(c.dead, 0) << provider;
  EXPECT_EQ(c.skipped, 0) << provider;
}

// 1. The client-side token bucket (rate_limit per_second R, burst B): the provider never sees
// more than B + R*t (+1) requests in any window t, and the sustained rate reaches 0.95 R.
TEST(E2eLimits, ClientRateLimitHoldsAtTheProvider) {
  constexpr double kRate = 50;
  constexpr int kBurst = 10;
  constexpr int kItems = 300;
  constexpr auto kStampJitter = milliseconds(40);
  TempDir dir;
  auto mock = MockProvider::Start(MockProviderOptions{});
  ASSERT_TRUE(mock.ok()) << mock.status().ToString();
  const std::string store = "sqlite://" + (dir.path() / "graph.db").string();
  const auto ips = PublicIps(kItems);
  ASSERT_TRUE(SeedIps(store, ips).ok());
  const std::string config =
      dir.Write("enrichd.yaml",
                ConfigYaml({ProviderYaml("ipinfo", "ipinfo", (*mock)->ipinfo_url(),
                                         "    concurrency: 8\n"
                                         "    rate_limit: { per_second: 50, burst: 10 }\n")}));

  RunResult run = RunOnce(dir.path(), "run", config, store);
  ASSERT_TRUE(run.exited) << run.err;
  ASSERT_EQ(run.code, 0) << run.err;
  ExpectAllDone(store, "ipinfo", kItems);

  const auto stats = (*mock)->Snapshot();
  EXPECT_EQ(stats.total_requests, static_cast<uint64_t>(kItems));
  EXPECT_EQ(stats.by_status.count(429), 0u);
  ASSERT_GE(stats.arrivals.size(), static_cast<std::size_t>(kItems));
  for (auto window : {milliseconds(50), milliseconds(100), milliseconds(200), milliseconds(500),
                      milliseconds(1000), milliseconds(2000), milliseconds(4000)}) {
    // The mock stamps arrivals when its handler runs, so on a loaded machine a request can
    // be stamped late and bunch up with the next ones: allow kStampJitter of slack.
    const double allowed = kBurst + kRate * Secs(window + kStampJitter) + 1;
    EXPECT_LE(static_cast<double>(stats.MaxInWindow(window)), allowed)
        << "window " << window.count() << " ms";
  }
  auto arrivals = stats.arrivals;
  std::sort(arrivals.begin(), arrivals.end());
  const auto [first, last] = std::minmax_element(arrivals.begin(), arrivals.end());
  ASSERT_NE(first, arrivals.end());
  const double span = Secs(*last - *first);
  ASSERT_GT(span, 0);
  const double rate = (static_cast<double>(arrivals.size()) - kBurst) / span;
  RecordProperty("provider_side_rate", std::to_string(rate));
  EXPECT_GE(rate, 0.95 * kRate) << "span " << span << " s for " << arrivals.size() << " requests";
}

// 2. A provider that answers 429 + Retry-After (the engine has no rate limit of its own):
// after each 429 sent at t with Retry-After r, nothing arrives before t + r except requests
// already in flight when the answer left (at most concurrency - 1, right after t), and every
// item ends done.
TEST(E2eLimits, RetryAfterIsHonouredProviderWide) {
  constexpr int kItems = 150;
  constexpr int kConcurrency = 4;
  TempDir dir;
  MockProviderOptions o;
  o.rate_limit_rps = 40;
  o.rate_limit_burst = 40;
  auto mock = MockProvider::Start(o);
  ASSERT_TRUE(mock.ok()) << mock.status().ToString();
  const std::string store = "sqlite://" + (dir.path() / "graph.db").string();
  const auto ips = PublicIps(kItems);
  ASSERT_TRUE(SeedIps(store, ips).ok());
  const std::string config = dir.Write(
      "enrichd.yaml", ConfigYaml({ProviderYaml(
                          "ipinfo", "ipinfo", (*mock)->ipinfo_url(),
                          "    concurrency: 4\n"
                          "    retry: { max_attempts: 5, base_delay: 20ms, max_delay: 2s }\n")}));

  RunResult run = RunOnce(dir.path(), "run", config, store);
  ASSERT_TRUE(run.exited) << run.err;
  ASSERT_EQ(run.code, 0) << run.err;
  ExpectAllDone(store, "ipinfo", kItems);

  const auto requests = SortedRequests((*mock)->Snapshot());
  int rate_limited = 0, violations = 0;
  // Requests that arrive this soon after a 429 may have been sent before it was received.
  const auto in_flight_slack = milliseconds(250);
  const auto tolerance = milliseconds(5);
  for (std::size_t i = 0; i < requests.size(); ++i) {
    const auto& r = requests[i];
    if (r.status != 429) continue;
    ++rate_limited;
    ASSERT_GE(r.retry_after_s, 1);
    const auto reset = r.arrival + seconds(r.retry_after_s) - tolerance;
    int excused = 0;
    for (std::size_t j = i + 1; j < requests.size() && requests[j].arrival < reset; ++j) {
      if (requests[j].arrival - r.arrival <= in_flight_slack && excused < kConcurrency - 1) {
        ++excused;
        continue;
      }
      if (++violations <= 5) {
        ADD_FAILURE() << "request at " << Secs(requests[j].arrival) << " s (status "
                      << requests[j].status << ") before the reset of the 429 at "
                      << Secs(r.arrival) << " s with Retry-After " << r.retry_after_s;
      }
    }
  }
  EXPECT_GT(rate_limited, 0) << "the scenario must provoke 429s";
  EXPECT_EQ(violations, 0);
  EXPECT_EQ(run.Field("ipinfo", "http_429"), rate_limited);
  EXPECT_EQ(run.Field("ipinfo", "dead"), 0);
}

// 3. ip-api's X-Rl / X-Ttl: with 20 requests per 1 s window and `concurrency` requests in
// flight, the provider never receives a request after a window's allowance is used (no
// overrun, no 429), and every item ends done.
void IpApiWindowScenario(int concurrency) {
  constexpr int kItems = 80;
  TempDir dir;
  MockProviderOptions o;
  o.ipapi_requests_per_window = 20;
  o.ipapi_window = seconds(1);
  auto mock = MockProvider::Start(o);
  ASSERT_TRUE(mock.ok()) << mock.status().ToString();
  const std::string store = "sqlite://" + (dir.path() / "graph.db").string();
  const auto ips = PublicIps(kItems);
  ASSERT_TRUE(SeedIps(store, ips).ok());
  const std::string config = dir.Write(
      "enrichd.yaml",
      ConfigYaml({ProviderYaml("ip-api", "ip-api", (*mock)->ipapi_url(),
                               "    concurrency: " + std::to_string(concurrency) + "\n")}));

  RunResult run = RunOnce(dir.path(), "run", config, store);
  ASSERT_TRUE(run.exited) << run.err;
  ASSERT_EQ(run.code, 0) << run.err;
  ExpectAllDone(store, "ip-api", kItems);

  const auto stats = (*mock)->Snapshot();
  EXPECT_EQ(stats.events.count("ipapi_overrun") ? stats.events.at("ipapi_overrun") : 0u, 0u);
  EXPECT_EQ(stats.by_status.count(429), 0u);
  EXPECT_EQ(stats.total_requests, static_cast<uint64_t>(kItems));
  // The allowance was used up at least once (otherwise the test proves nothing).
  const auto requests = SortedRequests(stats);
  if (::testing::Test::HasFailure()) {
    std::string trace;
    for (const auto& r : requests) {
      trace += std::to_string(Secs(r.arrival)) + " " + std::to_string(r.status) +
               " rl=" + std::to_string(r.x_rl) + " ttl=" + std::to_string(r.x_ttl) + "\n";
    }
    ADD_FAILURE() << "arrival (s), status, X-Rl, X-Ttl:\n" << trace;
  }
  EXPECT_TRUE(
      std::any_of(requests.begin(), requests.end(), [](const auto& r) { return r.x_rl == 0; }));
}

TEST(E2eLimits, IpApiWindowIsNeverOverrunOneAtATime) { IpApiWindowScenario(1); }

// With several requests in flight the engine must spend the allowance each answer states
// (X-Rl), not just stop after X-Rl: 0 arrives.
TEST(E2eLimits, IpApiWindowIsNeverOverrunWithConcurrency) { IpApiWindowScenario(4); }

}  // namespace
}  // namespace enrichd::e2e

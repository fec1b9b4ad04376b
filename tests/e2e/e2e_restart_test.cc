// End to end: `enrichd run` interrupted mid-run — killed with SIGKILL (no chance to clean up)
// or stopped with SIGTERM (graceful) — and run again: nothing lost, nothing doubled.
#include <gtest/gtest.h>

#include "e2e_util.h"
#include "mock_provider/mock_provider.h"

namespace enrichd::e2e {
namespace {

using mock::MockProvider;
using mock::MockProviderOptions;

constexpr int kItems = 300;
const std::vector<std::string> kProviders = {"ipinfo", "ip-api"};

// Two providers, each held to 100 requests/s so that a run lasts a few seconds.
std::string TwoProviderConfig(const TempDir& dir, const MockProvider& mock) {
  const std::string limits =
      "    concurrency: 4\n"
      "    rate_limit: { per_second: 100, burst: 10 }\n";
  return dir.Write("enrichd.yaml",
                   ConfigYaml({ProviderYaml("ipinfo", "ipinfo", mock.ipinfo_url(), limits),
                               ProviderYaml("ip-api", "ip-api", mock.ipapi_url(), limits)}));
}

MockProviderOptions RoomyOptions() {
  MockProviderOptions o;
  o.ipapi_requests_per_window = 1'000'000;
  o.latency = milliseconds(2);
  return o;
}

int64_t Finished(const StoreCounts& c) {
  int64_t n = 0;
  for (const auto& [name, p] : c.providers) n += p.done + p.no_data;
  return n;
}

void ExpectEverythingDone(const std::string& store) {
  auto counts = ReadCounts(store);
  ASSERT_TRUE(counts.ok()) << counts.status().ToString();
  for (const auto& provider : kProviders) {
    ASSERT_TRUE(counts->providers.count(provider)) << provider;
    const ProviderCounts& c = counts->providers.at(provider);
    EXPECT_EQ(c.done + c.no_data, kItems)
        << provider << ": done " << c.done << " no_data " << c.no_data;
    EXPECT_EQ(c.pending + c.running + c.dead + c.skipped, 0) << provider;
  }
}

// 6. SIGKILL mid-run, then `run --once` again: every pair done exactly once, one current
// enrichment per (source, provider), no duplicate enrichment nodes.
TEST(E2eRestart, SigkillMidRunThenRerunCompletesWithoutDuplicates) {
  TempDir dir;
  auto mock = MockProvider::Start(RoomyOptions());
  ASSERT_TRUE(mock.ok()) << mock.status().ToString();
  const std::string store = "sqlite://" + (dir.path() / "graph.db").string();
  const auto ips = PublicIps(kItems);
  ASSERT_TRUE(SeedIps(store, ips).ok());
  const std::string config = TwoProviderConfig(dir, **mock);

  int64_t finished_at_kill = 0;
  {
    Child child(dir.path(), "first", RunArgs(config, store));
    ASSERT_GT(child.pid(), 0);
    ASSERT_TRUE(PollUntil(
        [&] {
          auto c = ReadCounts(store);
          return (c.ok() && Finished(*c) >= 60) || !child.Running();
        },
        seconds(60)));
    ASSERT_TRUE(child.Running()) << "the first run ended before it could be killed: "
                                 << child.err();
    child.Signal(SIGKILL);
    auto st = child.Wait(seconds(10));
    ASSERT_TRUE(st.has_value());
    EXPECT_TRUE(WIFSIGNALED(*st) && WTERMSIG(*st) == SIGKILL);
    auto c = ReadCounts(store);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    finished_at_kill = Finished(*c);
  }
  EXPECT_LT(finished_at_kill, 2 * kItems) << "killed too late to test anything";
  RecordProperty("finished_at_kill", std::to_string(finished_at_kill));

  RunResult second = RunOnce(dir.path(), "second", config, store);
  ASSERT_TRUE(second.exited) << second.err;
  ASSERT_EQ(second.code, 0) << second.err;
  ExpectEverythingDone(store);
  auto census = Census(store);
  ASSERT_TRUE(census.ok()) << census.status().ToString();
  ExpectOneEnrichmentEach(*census, ips, kProviders);
  // The rerun did the rest: at least everything not finished at the kill.
  int64_t rerun_finished = 0;
  for (const auto& p : kProviders) {
    rerun_finished += second.Field(p, "ok") + second.Field(p, "no_data");
  }
  EXPECT_GE(rerun_finished, 2 * kItems - finished_at_kill);
}

// 7. SIGTERM mid-run: exit status 130, no task left running, and a rerun completes the rest.
TEST(E2eRestart, SigtermStopsGracefullyAndRerunCompletes) {
  TempDir dir;
  auto mock = MockProvider::Start(RoomyOptions());
  ASSERT_TRUE(mock.ok()) << mock.status().ToString();
  const std::string store = "sqlite://" + (dir.path() / "graph.db").string();
  const auto ips = PublicIps(kItems);
  ASSERT_TRUE(SeedIps(store, ips).ok());
  const std::string config = TwoProviderConfig(dir, **mock);

  Child child(dir.path(), "first", RunArgs(config, store));
  ASSERT_GT(child.pid(), 0);
  ASSERT_TRUE(PollUntil(
      [&] {
        auto c = ReadCounts(store);
        return (c.ok() && Finished(*c) >= 60) || !child.Running();
      },
      seconds(60)));
  ASSERT_TRUE(child.Running()) << "the first run ended before it could be stopped: " << child.err();
  child.Signal(SIGTERM);
  RunResult first = Finish(child, seconds(30));
  ASSERT_TRUE(first.exited) << first.err;
  EXPECT_EQ(first.code, 130) << first.err;
  EXPECT_TRUE(first.summary.is_object() && first.summary.value("interrupted", false)) << first.out;

  auto after_stop = ReadCounts(store);
  ASSERT_TRUE(after_stop.ok()) << after_stop.status().ToString();
  int64_t left = 0;
  for (const auto& provider : kProviders) {
    ASSERT_TRUE(after_stop->providers.count(provider)) << provider;
    const ProviderCounts& c = after_stop->providers.at(provider);
    EXPECT_EQ(c.running, 0) << provider << ": tasks left running after a graceful stop";
    EXPECT_EQ(c.dead, 0) << provider;
    left += c.pending;
  }
  EXPECT_GT(left, 0) << "stopped too late to test anything";

  RunResult second = RunOnce(dir.path(), "second", config, store);
  ASSERT_TRUE(second.exited) << second.err;
  ASSERT_EQ(second.code, 0) << second.err;
  ExpectEverythingDone(store);
  auto census = Census(store);
  ASSERT_TRUE(census.ok()) << census.status().ToString();
  ExpectOneEnrichmentEach(*census, ips, kProviders);
}

}  // namespace
}  // namespace enrichd::e2e

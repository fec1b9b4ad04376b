// enrichd demo: the whole pipeline on a local simulated provider, with no network.
//
// An embedded SQLite graph in a fresh folder, a few thousand sample IPs, the mock provider
// started in-process with realistic trouble (latency, a strict rate limit, occasional
// 5xx, a short outage), the two providers of examples/demo.yaml (compiled in), the live
// progress display, the summary, and one enriched IP shown with its provenance.
#include <stdlib.h>

#include <filesystem>
#include <iostream>
#include <set>

#include "cli/command.h"
#include "cli/data_commands.h"
#include "cli/demo_config.h"  // generated: kDemoConfigYaml
#include "cli/run_support.h"
#include "enrichd/config.h"
#include "enrichd/graph_store.h"
#include "enrichd/item.h"
#include "enrichd/random.h"
#include "mock_provider/mock_provider.h"

namespace enrichd::cli {
namespace {

constexpr char kUsage[] =
    "enrichd demo [--dir DIR] [--ips N] [--seed N] [--progress auto|terminal|plain|none]";

// Sample sources: mostly public IPv4, some IPv6, a few private addresses (they must end
// `skipped` without a request), and the two famous resolvers.
std::vector<SourceNode> SampleIps(int count, uint64_t seed) {
  SeededRandom random(seed);
  std::set<std::string> seen;
  std::vector<SourceNode> out;
  auto add = [&](const std::string& key) {
    if (seen.insert(key).second)
      out.push_back({std::string(kIpLabel), key, "{\"source\":\"demo\"}"});
  };
  add("8.8.8.8");
  add("1.1.1.1");
  while (static_cast<int>(out.size()) < count) {
    const uint64_t r = random.Next64();
    const int kind = static_cast<int>(r % 100);
    if (kind < 3) {  // private: never sent out
      add("10." + std::to_string((r >> 8) & 255) + "." + std::to_string((r >> 16) & 255) + "." +
          std::to_string((r >> 24) & 255));
      continue;
    }
    if (kind < 6) {  // IPv6 in Google's and Cloudflare's space
      std::array<uint8_t, 16> b{};
      b[0] = 0x26;
      b[1] = (r & 1) ? 0x06 : 0x00;
      b[2] = 0x47;
      b[3] = 0x00;
      for (int i = 4; i < 16; ++i) b[i] = static_cast<uint8_t>(random.Next64());
      add(IpAddress::V6(b).ToString());
      continue;
    }
    IpAddress ip = IpAddress::V4(static_cast<uint32_t>(r >> 32));
    if (!ip.IsGloballyRoutable()) continue;
    add(ip.ToString());
  }
  return out;
}

int RunDemo(const std::vector<std::string>& argv) {
  auto args = ParseCommandArgs("demo", kUsage, argv, {"dir", "ips", "seed", "progress"}, {});
  if (!args) return kExitUsage;
  int ips = 3000;
  uint64_t seed = 2026;
  try {
    ips = std::stoi(args->GetOr("ips", "3000"));
    seed = std::stoull(args->GetOr("seed", "2026"));
  } catch (...) {
    return UsageError("demo", kUsage, "--ips and --seed take whole numbers");
  }
  if (ips < 10 || ips > 1'000'000) return UsageError("demo", kUsage, "--ips must be 10..1000000");

  SignalWatcher signals;  // before any thread starts

  std::string dir = args->GetOr("dir", "");
  if (dir.empty()) {
    char tmpl[] = "/tmp/enrichd-demo.XXXXXX";
    if (mkdtemp(tmpl) == nullptr) {
      std::cerr << "enrichd demo: cannot create a temporary folder\n";
      return kExitFailure;
    }
    dir = tmpl;
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  const std::string db = (std::filesystem::path(dir) / "demo.db").string();
  std::filesystem::remove(db, ec);
  std::filesystem::remove(db + "-wal", ec);
  std::filesystem::remove(db + "-shm", ec);
  const std::string store_url = "sqlite://" + db;

  std::cout << "enrichd demo: the whole pipeline against a simulated provider on loopback\n"
            << "  graph   " << store_url << "\n";

  // 1. The simulated provider, with realistic trouble.
  mock::MockProviderOptions trouble;
  trouble.latency = std::chrono::milliseconds(15);
  trouble.latency_jitter = std::chrono::milliseconds(50);
  trouble.error_rate = 0.03;                       // occasional 503
  trouble.outage_start = std::chrono::seconds(2);  // a short outage
  trouble.outage_end = std::chrono::seconds(5);
  trouble.ipapi_requests_per_window = 12;  // ip-api's strict window
  trouble.ipapi_batch_requests_per_window = 12;
  trouble.ipapi_window = std::chrono::seconds(2);
  trouble.seed = seed;
  auto provider = mock::MockProvider::Start(trouble);
  if (!provider.ok()) {
    std::cerr << "enrichd demo: cannot start the mock provider: " << provider.status() << "\n";
    return kExitFailure;
  }
  std::cout << "  mock    " << (*provider)->base_url()
            << " (latency 15-65 ms, 3% 503, ip-api window 12 requests / 2 s, outage at 2-5 s)\n";

  // 2. The providers, from the example configuration compiled into the binary.
  setenv("MOCK_URL", (*provider)->base_url().c_str(), 1);
  auto config = ParseConfig(kDemoConfigYaml, "examples/demo.yaml");
  if (!config.ok()) {
    std::cerr << "enrichd demo: " << config.status().message() << "\n";
    return kExitFailure;
  }
  for (const auto& p : config->providers) {
    std::cout << "  provider " << p.name << " (" << p.adapter << ", " << p.kind << ")";
    if (!p.rate_limit.unlimited()) {
      std::cout << " rate " << *p.rate_limit.per_second << "/s burst " << p.rate_limit.burst;
    }
    std::cout << ", concurrency " << p.concurrency << ", batch " << p.batch.max_items << "\n";
  }

  // 3. The graph and its sample records.
  auto store = OpenStoreForCommand(store_url, /*must_exist=*/false);
  if (!store.ok()) return Fail("demo", store.status());
  const auto nodes = SampleIps(ips, seed);
  auto upserted = (*store)->UpsertSourceNodes(nodes);
  if (!upserted.ok()) return Fail("demo", upserted.status());
  std::cout << "  ingested " << upserted->added << " sample IPs\n\n";

  // 4. Enrich until done.
  EngineRunOptions options;
  options.once = true;
  options.store_url = store_url;
  const std::string progress = args->GetOr("progress", "auto");
  options.progress = progress == "auto"       ? ProgressDisplay::DetectMode(stdout)
                     : progress == "terminal" ? ProgressDisplay::Mode::kTerminal
                     : progress == "none"     ? ProgressDisplay::Mode::kNone
                                              : ProgressDisplay::Mode::kPlain;
  const int rc = RunEngine(*config, **store, signals, options);
  const auto seen = (*provider)->Snapshot();
  (*provider)->Stop();
  std::cout << "\nthe provider's side: " << seen.total_requests << " requests on "
            << seen.connections_accepted << " connections";
  for (const auto& [status, n] : seen.by_status) std::cout << ", " << n << " x " << status;
  std::cout << "\n";
  if (rc != kExitOk) return rc;

  // 5. One enriched IP, as a graph snippet with its provenance.
  std::cout << "\none enriched record:\n";
  store->reset();  // release the connection before `show` opens its own
  const Command* show = FindCommand("show");
  if (show != nullptr) show->run({"--store", store_url, "ip", "8.8.8.8"});
  std::cout << "\nexplore it: enrichd status --store " << store_url << "\n"
            << "            enrichd export --store " << store_url << " --format jsonl\n";
  return kExitOk;
}

}  // namespace

ENRICHD_COMMAND({.name = "demo",
                 .usage = kUsage,
                 .summary = "the whole pipeline on a local simulated provider (no network)",
                 .run = RunDemo,
                 .order = 90});

}  // namespace enrichd::cli

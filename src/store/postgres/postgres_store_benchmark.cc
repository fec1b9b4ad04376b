// Throughput of the PostgreSQL GraphStore on a real server: ingest, planning, and the
// claim + complete loop. Server from ENRICHD_BENCH_PG_URL, else ENRICHD_TEST_PG_URL; each
// benchmark works in a fresh schema that is dropped afterwards. Build with
// -DCMAKE_BUILD_TYPE=Release. Run e.g. (one line):
//   ENRICHD_TEST_PG_URL=postgresql://postgres@127.0.0.1:55432/postgres
//   build/release/src/store/postgres/postgres_store_benchmark
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "enrichd/clock.h"
#include "enrichd/graph_store.h"
#include "store/postgres/pg_test_util.h"
#include "store/postgres/postgres_store.h"

namespace enrichd {
namespace {

std::string ServerUrl() {
  std::string url = pg::TestServerUrl("ENRICHD_BENCH_PG_URL");
  return url.empty() ? pg::TestServerUrl() : url;
}

// i-th distinct IPv4 address from 11.0.0.0 on.
std::string Ip(int64_t i) {
  return std::to_string(11 + (i >> 24)) + "." + std::to_string((i >> 16) & 255) + "." +
         std::to_string((i >> 8) & 255) + "." + std::to_string(i & 255);
}

struct Fixture {
  std::unique_ptr<pg::TestSchema> schema;
  std::unique_ptr<GraphStore> store;
  std::string app;  // the store's application_name, to find its server processes
};

// CPU seconds (user + system) the store's server processes (its connection, and the
// second one planning opens) have used so far; 0 when the server is not on this machine.
// On a shared machine wall time depends on everyone else's load, this does not (much).
double BackendCpuSeconds(const Fixture& f) {
  if (f.schema == nullptr) return 0;
  auto pids = f.schema->admin().Exec("SELECT pid FROM pg_stat_activity WHERE application_name = '" +
                                     f.app + "'");
  if (!pids.ok()) return 0;
  double ticks = 0;
  for (int r = 0; r < pids->rows(); ++r) {
    std::ifstream in("/proc/" + std::to_string(pids->Int(r, 0)) + "/stat");
    std::string line;
    if (!std::getline(in, line)) continue;
    std::istringstream fields(line.substr(line.rfind(')') + 2));
    std::string v;
    for (int i = 3; i <= 15 && fields >> v; ++i) {
      if (i == 14 || i == 15) ticks += std::stod(v);
    }
  }
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

bool Setup(benchmark::State& state, Fixture& f) {
  const std::string url = ServerUrl();
  if (url.empty()) {
    state.SkipWithError("set ENRICHD_BENCH_PG_URL or ENRICHD_TEST_PG_URL");
    return false;
  }
  auto schema = pg::TestSchema::Create(url);
  if (!schema.ok()) {
    state.SkipWithError(schema.status().ToString().c_str());
    return false;
  }
  f.schema = std::move(schema).value();
  const std::string app = "enrichd_bench_" + f.schema->name();
  auto store = OpenPostgresStore(f.schema->url() + "&application_name=" + app);
  if (!store.ok()) {
    state.SkipWithError(store.status().ToString().c_str());
    return false;
  }
  f.store = std::move(store).value();
  f.app = app;
  return true;
}

bool Ingest(benchmark::State& state, GraphStore& store, int64_t n, int64_t batch) {
  std::vector<SourceNode> nodes;
  nodes.reserve(batch);
  for (int64_t start = 0; start < n; start += batch) {
    nodes.clear();
    for (int64_t i = start; i < std::min(n, start + batch); ++i) nodes.push_back({"ip", Ip(i)});
    auto stats = store.UpsertSourceNodes(nodes);
    if (!stats.ok()) {
      state.SkipWithError(stats.status().ToString().c_str());
      return false;
    }
  }
  return true;
}

const std::vector<ProviderPlan> kPlans = {{"asn", {"ip"}}, {"geo", {"ip"}}};

// Upsert range(0) IPs in batches of range(1).
void BM_UpsertIps(benchmark::State& state) {
  for (auto _ : state) {
    state.PauseTiming();
    Fixture f;
    bool ok = Setup(state, f);
    const double cpu0 = BackendCpuSeconds(f);
    state.ResumeTiming();
    if (!ok || !Ingest(state, *f.store, state.range(0), state.range(1))) break;
    state.PauseTiming();
    state.counters["server_cpu_s"] = BackendCpuSeconds(f) - cpu0;
    f = Fixture();  // drop the schema outside the timing
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_UpsertIps)
    ->Args({1'000'000, 50'000})
    ->Args({1'000'000, 5'000})
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// Plan range(0) nodes x 2 providers (tasks created in one call).
void BM_PlanNodesTimesTwoProviders(benchmark::State& state) {
  for (auto _ : state) {
    state.PauseTiming();
    Fixture f;
    bool ok = Setup(state, f) && Ingest(state, *f.store, state.range(0), 50'000);
    FakeClock clock;
    const double cpu0 = BackendCpuSeconds(f);
    state.ResumeTiming();
    if (!ok) break;
    auto planned = f.store->PlanDueTasks(kPlans, clock.WallNow());
    state.PauseTiming();
    state.counters["server_cpu_s"] = BackendCpuSeconds(f) - cpu0;
    state.ResumeTiming();
    if (!planned.ok() || *planned != 2 * state.range(0)) {
      state.SkipWithError(planned.ok() ? "wrong task count" : planned.status().ToString().c_str());
      break;
    }
    // Planning again with nothing due (the steady state of `enrichd run`).
    state.PauseTiming();
    auto t0 = std::chrono::steady_clock::now();
    auto again = f.store->PlanDueTasks(kPlans, clock.WallNow());
    state.counters["replan_ms"] =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (!again.ok() || *again != 0) state.SkipWithError("replanning found work");
    f = Fixture();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * 2 * state.range(0));
}
BENCHMARK(BM_PlanNodesTimesTwoProviders)
    ->Arg(1'000'000)
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// Drain range(0) nodes x 2 providers with claim + complete in batches of range(1).
void BM_ClaimComplete(benchmark::State& state) {
  int64_t tasks = 0;
  for (auto _ : state) {
    state.PauseTiming();
    Fixture f;
    FakeClock clock;
    bool ok = Setup(state, f) && Ingest(state, *f.store, state.range(0), 50'000) &&
              f.store->PlanDueTasks(kPlans, clock.WallNow()).ok();
    const double cpu0 = BackendCpuSeconds(f);
    state.ResumeTiming();
    if (!ok) break;
    const WallTime now = clock.WallNow();
    std::vector<TaskCompletion> completions;
    for (;;) {
      ClaimRequest request;
      request.max_tasks = static_cast<std::size_t>(state.range(1));
      request.lease_owner = "bench";
      request.now = now;
      auto claimed = f.store->ClaimTasks(request);
      if (!claimed.ok()) {
        state.SkipWithError(claimed.status().ToString().c_str());
        break;
      }
      if (claimed->empty()) break;
      completions.clear();
      for (const ClaimedTask& t : *claimed) {
        TaskCompletion c;
        c.task_id = t.task_id;
        c.claim_seq = t.claim_seq;
        c.provider = t.provider;
        c.result.outcome = Outcome::kOk;
        c.result.kind = t.provider;
        c.result.data_json =
            R"({"asn":15169,"org":"Google LLC","prefix":"8.8.8.0/24","country_code":"US"})";
        Provenance& p = c.result.provenance;
        p.adapter = t.provider;
        p.adapter_version = "1";
        p.endpoint = "http://127.0.0.1:8080/lookup/";
        p.endpoint += t.key;
        p.http_status = 200;
        p.fetched_at = now;
        p.expires_at = now + std::chrono::hours(24 * 7);
        p.attempts = t.attempts + 1;
        p.latency = std::chrono::milliseconds(12);
        p.response_digest = "0123456789abcdef";
        p.run_id = "bench";
        completions.push_back(std::move(c));
      }
      auto done = f.store->CompleteTasks(completions);
      if (!done.ok()) {
        state.SkipWithError(done.status().ToString().c_str());
        break;
      }
      tasks += *done;
    }
    state.PauseTiming();
    state.counters["server_cpu_s"] = BackendCpuSeconds(f) - cpu0;
    f = Fixture();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(tasks);
}
BENCHMARK(BM_ClaimComplete)
    ->Args({100'000, 500})
    ->Args({100'000, 100})
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
}  // namespace enrichd

BENCHMARK_MAIN();

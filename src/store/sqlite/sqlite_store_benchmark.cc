// Throughput of the SQLite GraphStore on a temporary file (Release build):
//   ingest:   UpsertSourceNodes of N IPv4 keys in batches of 10,000
//   plan:     PlanDueTasks for N nodes x 2 providers (set-based INSERT ... SELECT)
//   work:     ClaimTasks + CompleteTasks in batches of 500 until the queue is empty
// Run: sqlite_store_benchmark [--benchmark_filter=...]; ENRICHD_BENCH_NODES overrides N
// (default 1,000,000).
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "enrichd/graph_store.h"
#include "store/sqlite/sqlite_store.h"

namespace enrichd {
namespace {

namespace fs = std::filesystem;

int64_t NodeCount() {
  const char* env = std::getenv("ENRICHD_BENCH_NODES");
  return env != nullptr ? std::atoll(env) : 1'000'000;
}

std::string Ip(int64_t i) {
  return std::to_string(1 + (i >> 24) % 223) + "." + std::to_string((i >> 16) & 0xff) + "." +
         std::to_string((i >> 8) & 0xff) + "." + std::to_string(i & 0xff);
}

// A database file in a fresh temp dir; removed (with -wal and -shm) on destruction.
class TempDb {
 public:
  TempDb() {
    std::string pattern = (fs::temp_directory_path() / "enrichd-bench-XXXXXX").string();
    dir_ = mkdtemp(pattern.data()) != nullptr ? pattern : "";
  }
  ~TempDb() {
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }
  std::string Path() const { return dir_ + "/graph.db"; }

 private:
  std::string dir_;
};

std::unique_ptr<GraphStore> MustOpen(const std::string& path, benchmark::State& state) {
  auto store = OpenSqliteStore(path);
  if (!store.ok()) {
    state.SkipWithError(store.status().ToString().c_str());
    return nullptr;
  }
  return std::move(store).value();
}

bool Ingest(GraphStore& store, int64_t n, benchmark::State& state) {
  constexpr int64_t kBatch = 10'000;
  std::vector<SourceNode> batch;
  batch.reserve(kBatch);
  for (int64_t i = 0; i < n; i += kBatch) {
    batch.clear();
    for (int64_t j = i; j < std::min(n, i + kBatch); ++j) batch.push_back({"ip", Ip(j), "{}"});
    auto stats = store.UpsertSourceNodes(batch);
    if (!stats.ok()) {
      state.SkipWithError(stats.status().ToString().c_str());
      return false;
    }
  }
  return true;
}

const std::vector<ProviderPlan> kPlans = {{"asn", {"ip"}}, {"geo", {"ip"}}};

void BM_UpsertIps(benchmark::State& state) {
  const int64_t n = NodeCount();
  for (auto _ : state) {
    state.PauseTiming();
    TempDb db;
    auto store = MustOpen(db.Path(), state);
    if (!store) return;
    state.ResumeTiming();
    if (!Ingest(*store, n, state)) return;
    // Re-ingesting the same values only counts them as existing.
    state.PauseTiming();
    store.reset();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_UpsertIps)->Iterations(1)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_PlanDueTasks(benchmark::State& state) {
  const int64_t n = NodeCount();
  for (auto _ : state) {
    state.PauseTiming();
    TempDb db;
    auto store = MustOpen(db.Path(), state);
    if (!store || !Ingest(*store, n, state)) return;
    FakeClock clock;
    state.ResumeTiming();
    auto planned = store->PlanDueTasks(kPlans, clock.WallNow());
    state.PauseTiming();
    if (!planned.ok() || *planned != 2 * n) {
      state.SkipWithError("PlanDueTasks failed or planned the wrong count");
      return;
    }
    // A second plan over the same graph finds nothing new (the steady-state cost).
    state.counters["replan_ms"] = [&] {
      auto start = std::chrono::steady_clock::now();
      auto again = store->PlanDueTasks(kPlans, clock.WallNow());
      auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                    .count();
      return again.ok() && *again == 0 ? ms : -1.0;
    }();
    store.reset();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * 2 * n);
}
BENCHMARK(BM_PlanDueTasks)->Iterations(1)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_ClaimComplete(benchmark::State& state) {
  const int64_t n = NodeCount() / 4;  // n x 2 tasks
  const std::size_t batch = static_cast<std::size_t>(state.range(0));
  int64_t completed = 0;
  for (auto _ : state) {
    state.PauseTiming();
    TempDb db;
    auto store = MustOpen(db.Path(), state);
    if (!store || !Ingest(*store, n, state)) return;
    FakeClock clock;
    if (!store->PlanDueTasks(kPlans, clock.WallNow()).ok()) return;
    state.ResumeTiming();
    for (;;) {
      ClaimRequest request;
      request.max_tasks = batch;
      request.lease_owner = "bench";
      request.now = clock.WallNow();
      auto claimed = store->ClaimTasks(request);
      if (!claimed.ok()) {
        state.SkipWithError(claimed.status().ToString().c_str());
        return;
      }
      if (claimed->empty()) break;
      std::vector<TaskCompletion> completions;
      completions.reserve(claimed->size());
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
        p.endpoint = "http://127.0.0.1:8080/lookup";
        p.http_status = 200;
        p.fetched_at = clock.WallNow();
        p.expires_at = clock.WallNow() + std::chrono::hours(24);
        p.attempts = 1;
        p.response_digest = "0123456789abcdef";
        p.run_id = "bench";
        completions.push_back(std::move(c));
      }
      auto done = store->CompleteTasks(completions);
      if (!done.ok()) {
        state.SkipWithError(done.status().ToString().c_str());
        return;
      }
      completed += *done;
    }
    state.PauseTiming();
    store.reset();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(completed);
}
BENCHMARK(BM_ClaimComplete)->Arg(500)->Iterations(1)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace enrichd

BENCHMARK_MAIN();

// Engine: the provider runtimes and the scheduler — pending work flows out of the graph,
// through each provider's limits, to the adapters and back into the graph.
//
// One engine thread owns all scheduling state (no locks on the hot path): it claims
// tasks from the store in bounded batches, dispatches them per provider under that
// provider's concurrency limit, token bucket, circuit breaker and retry budget, hands
// asynchronous adapters' requests to the HttpClient (one I/O thread, many transfers) and
// synchronous adapters' lookups to a small worker pool, and writes results back in
// batches. Other threads only post completions to it. When the HttpClient is driven
// (HttpClient::driven(), e.g. CurlHttpClientOptions::own_io_thread = false), the engine
// thread is its I/O thread too: it polls the client every turn, so an answer is read and
// the next request sent without a hand-off between threads. Such a client must outlive
// the engine and be driven by nothing else; destroy the engine first.
//
// Use:
//   auto engine = Engine::Create(config, {.http = &client});
//   engine->Run(store, {.once = true});                  // the scheduler, blocking
//   auto result = engine->EnrichNow("ipinfo", item).get();  // one item, no store
// Thread safety: Create/Run/destruction from one thread; Stop(), EnrichNow() and
// Snapshot() from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "enrichd/adapter.h"
#include "enrichd/clock.h"
#include "enrichd/config.h"
#include "enrichd/enrichment.h"
#include "enrichd/graph_store.h"
#include "enrichd/http.h"
#include "enrichd/item.h"
#include "enrichd/status.h"

namespace enrichd {

// What one provider did in this run (and its live state, for the progress display).
struct ProviderStats {
  std::string name;
  std::string kind;
  // Tasks to do at the start of the run (pending + running, once planned); counted only
  // for a run with RunOptions::on_progress (0 otherwise).
  int64_t total = 0;
  int64_t ok = 0;  // answers stored
  int64_t no_data = 0;
  int64_t skipped = 0;
  int64_t dead = 0;
  int64_t requests = 0;  // HTTP requests sent (or local lookups made)
  int64_t retries = 0;   // attempts scheduled again after a transient failure
  int64_t http_429 = 0;  // rate-limit answers received
  int64_t breaker_openings = 0;
  double latency_p50_ms = 0;
  double latency_p99_ms = 0;
  std::string breaker_state;        // "closed", "open", "half_open"
  bool waiting_rate_limit = false;  // the last dispatch waited for a token or a pause
  bool auth_failed = false;         // paused for the rest of the run: credentials refused
  int64_t in_flight = 0;            // items in calls now
  int64_t queued = 0;               // items claimed, waiting to be sent

  int64_t finished() const { return ok + no_data + skipped + dead; }
};

struct RunSummary {
  std::vector<ProviderStats> providers;
  Duration elapsed{};
  bool interrupted = false;  // stopped by Stop() before the work was done
  std::string run_id;
};

struct RunOptions {
  // Stop when no work is left (pending or running) for the configured providers;
  // otherwise keep polling the store for new work until Stop().
  bool once = false;
  std::string run_id;       // empty: generated
  std::string lease_owner;  // empty: "<host>:<pid>:<random>"
  // After Stop(): how long in-flight calls may take to finish before the rest is
  // returned to pending.
  Duration grace_period = std::chrono::seconds(10);
  // Called on the engine thread every progress_interval (and once at the end).
  std::function<void(const std::vector<ProviderStats>&, Duration elapsed)> on_progress;
  Duration progress_interval = std::chrono::milliseconds(500);
  // Loud, one-off problems (auth refused, store errors): one line each.
  std::function<void(const std::string&)> on_alert;
  // Optional: a second connection to the same store (not used by anyone else during the
  // run). With it, claims and result writes run on a store thread of their own, so the
  // engine thread never waits for the database while calls are in flight (commits and
  // checkpoints no longer idle the providers' slots). Without it, everything runs on the
  // engine thread through the store given to Run().
  GraphStore* worker_store = nullptr;
};

struct EngineDeps {
  HttpClient* http = nullptr;    // required when any provider's adapter is asynchronous
  const Clock* clock = nullptr;  // default: SystemClock
  const AdapterRegistry* registry = nullptr;  // default: AdapterRegistry::Builtin()
  uint64_t seed = 0;                          // jitter seed; 0: from the clock
};

class Engine {
 public:
  // Builds every provider's adapter and resilience state. Errors name the provider
  // (its config origin) and what is wrong.
  static Result<std::unique_ptr<Engine>> Create(const EnrichdConfig& config, EngineDeps deps);
  virtual ~Engine() = default;

  // Runs the scheduler on `store` until done (options.once) or Stop(). Returns the summary;
  // an error only when the store failed (work in flight is then left to lease expiry).
  virtual Result<RunSummary> Run(GraphStore& store, const RunOptions& options) = 0;

  // Asks Run() to finish gracefully: stop claiming, let calls in flight finish within the
  // grace period, return the rest to pending. Safe from any thread (not from a signal
  // handler: use a signal-waiting thread).
  virtual void Stop() = 0;

  // Enriches one item now through the same provider runtime (limits, breaker, retries in
  // memory), without the store. The future is always fulfilled (kCancelled at shutdown).
  virtual std::future<EnrichmentResult> EnrichNow(std::string_view provider, Item item) = 0;

  // Live statistics, as the progress display sees them. Safe from any thread.
  virtual std::vector<ProviderStats> Snapshot() const = 0;
};

}  // namespace enrichd

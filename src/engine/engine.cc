// The engine: provider runtimes and the scheduler. See enrichd/engine.h for the contract
// and docs/ARCHITECTURE.md for the path of one item.
//
// Threads: the engine thread runs Loop() and owns every ProviderRuntime, Call and the
// store. The HTTP client's I/O thread and the worker pool's threads only Post() closures
// back to it. Closures that arrive after the loop ended are dropped unexecuted, so a late
// callback never touches freed state.
#include "enrichd/engine.h"

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "engine/latency_histogram.h"
#include "engine/worker_pool.h"
#include "enrichd/random.h"
#include "enrichd/resilience/backoff.h"
#include "enrichd/resilience/circuit_breaker.h"
#include "enrichd/resilience/retry_budget.h"
#include "enrichd/resilience/token_bucket.h"

namespace enrichd {
namespace {

using std::chrono::milliseconds;
namespace res = resilience;

constexpr size_t kFlushBatch = 512;
constexpr Duration kFlushInterval = milliseconds(50);
constexpr size_t kSyncChunk = 64;  // items per worker-pool job
constexpr Duration kDefault429Pause = std::chrono::seconds(1);
// Share of rate_limit.per_second the engine paces at (see where the bucket is made).
constexpr double kRateLimitPace = 0.99;

// The mailbox between other threads and the engine thread.
class Inbox {
 public:
  // With a driven HTTP client the engine thread waits in the client's Poll(), not here:
  // posts from other threads wake it through `waker` (the client's Wake()). Call before
  // the engine thread starts.
  void SetWaker(std::function<void()> waker) { waker_ = std::move(waker); }
  // The engine thread: its own posts need no wake-up.
  void SetOwner(std::thread::id owner) {
    std::lock_guard<std::mutex> lock(mu_);
    owner_ = owner;
  }

  void Post(std::function<void()> fn) {
    bool was_empty = false;
    bool own = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (closed_) return;
      was_empty = items_.empty();
      items_.push_back(std::move(fn));
      own = owner_ == std::this_thread::get_id();
    }
    // Only the first post into an empty mailbox wakes the engine thread: it takes the whole
    // mailbox at once, so a burst of HTTP completions costs one wake-up, not one each.
    if (was_empty) Notify(own);
  }
  // Driven: whether something was posted or Wake() called since the last check (the
  // engine then polls without waiting).
  bool TakeReady() {
    std::lock_guard<std::mutex> lock(mu_);
    const bool ready = !items_.empty() || woken_;
    woken_ = false;
    return ready;
  }
  // Waits until something is posted or `deadline` (steady clock) passes.
  void WaitUntil(std::chrono::steady_clock::time_point deadline) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_until(lock, deadline, [this] { return !items_.empty() || woken_; });
    woken_ = false;
  }
  std::vector<std::function<void()>> Take() {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::function<void()>> out;
    out.swap(items_);
    return out;
  }
  void Wake() {
    bool own = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      woken_ = true;
      own = owner_ == std::this_thread::get_id();
    }
    Notify(own);
  }
  void Close() {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    items_.clear();
  }

 private:
  void Notify(bool own) {
    if (!waker_) {
      cv_.notify_one();
    } else if (!own) {
      waker_();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::function<void()> waker_;  // set before the engine thread starts, then read-only
  std::thread::id owner_;
  std::vector<std::function<void()>> items_;
  bool woken_ = false;
  bool closed_ = false;
};

// Runs store jobs, in order, on a thread of its own with a connection of its own
// (RunOptions::worker_store), so that the engine thread never waits for the database
// while calls are in flight. The first failing job's status is kept for the engine.
class StoreWorker {
 public:
  using Job = std::function<Status(GraphStore&)>;

  explicit StoreWorker(GraphStore& store) : store_(store) {
    thread_ = std::thread([this] {
      pthread_setname_np(pthread_self(), "enrichd-store");  // for top -H, perf, gdb
      Loop();
    });
  }
  ~StoreWorker() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  // Jobs run in the order submitted, except that an urgent job (a claim: the engine runs
  // dry without it) runs before every queued ordinary one (result writes, which can wait;
  // one of them may also be running a 30-40 ms WAL checkpoint).
  void Submit(Job job, bool urgent = false) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      (urgent ? urgent_ : jobs_).push_back(std::move(job));
    }
    cv_.notify_all();
  }
  // Blocks until every job has run; returns the first error of any job so far (and
  // forgets it).
  Status Drain() {
    std::unique_lock<std::mutex> lock(mu_);
    idle_cv_.wait(lock, [this] { return urgent_.empty() && jobs_.empty() && !busy_; });
    return TakeErrorLocked();
  }
  // Called on every turn of the engine loop: without an error it takes no lock.
  Status TakeError() {
    if (!failed_.load(std::memory_order_acquire)) return Status::Ok();
    std::lock_guard<std::mutex> lock(mu_);
    return TakeErrorLocked();
  }

 private:
  Status TakeErrorLocked() {
    Status s = std::move(error_);
    error_ = Status::Ok();
    failed_.store(false, std::memory_order_relaxed);
    return s;
  }
  void Loop() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      cv_.wait(lock, [this] { return stop_ || !urgent_.empty() || !jobs_.empty(); });
      if (urgent_.empty() && jobs_.empty()) return;  // stopping, and everything was run
      std::deque<Job>& from = urgent_.empty() ? jobs_ : urgent_;
      Job job = std::move(from.front());
      from.pop_front();
      busy_ = true;
      lock.unlock();
      Status s = job(store_);
      lock.lock();
      busy_ = false;
      if (!s.ok() && error_.ok()) {
        error_ = std::move(s);
        failed_.store(true, std::memory_order_release);
      }
      if (urgent_.empty() && jobs_.empty()) idle_cv_.notify_all();
    }
  }

  GraphStore& store_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable idle_cv_;
  std::deque<Job> urgent_;
  std::deque<Job> jobs_;
  bool busy_ = false;
  bool stop_ = false;
  Status error_;
  std::atomic<bool> failed_{false};  // error_ holds an error (read without the lock)
  std::thread thread_;
};

// One unit of work: a claimed task, or an EnrichNow request.
struct Work {
  std::optional<ClaimedTask> task;
  std::shared_ptr<std::promise<EnrichmentResult>> promise;
  Item item;
  int attempts = 0;  // attempts already made (EnrichNow counts in memory)
  Duration previous_delay{};
};

class ProviderRuntime;

// One call to a provider: one or more items, one or more HTTP requests (or a local
// lookup on the worker pool).
struct Call {
  int64_t id = 0;
  ProviderRuntime* runtime = nullptr;
  std::vector<Work> works;
  std::unique_ptr<AdapterCall> adapter_call;
  std::optional<HttpRequest> next_request;
  res::CircuitBreaker::Permit permit;
  MonoTime request_started{};
};

res::JitterMode ToJitter(JitterMode mode) {
  return mode == JitterMode::kDecorrelated ? res::JitterMode::kDecorrelated
                                           : res::JitterMode::kFull;
}

// Everything about one provider, owned by the engine thread.
class ProviderRuntime {
 public:
  ProviderConfig config;
  std::unique_ptr<Adapter> adapter;
  SyncAdapter* sync = nullptr;
  AsyncAdapter* async = nullptr;
  std::unique_ptr<res::TokenBucket> bucket;  // null: unlimited
  std::unique_ptr<res::CircuitBreaker> breaker;
  std::unique_ptr<res::RetryBudget> budget;
  std::optional<res::Backoff> backoff;
  std::unique_ptr<SeededRandom> random;          // jitter for backoff
  std::unique_ptr<SeededRandom> breaker_random;  // the breaker's own

  std::deque<Work> ready;                 // claimed, waiting to be sent
  std::deque<Call*> waiting_token;        // calls whose next request waits for a token
  std::multimap<MonoTime, Work> delayed;  // EnrichNow retries waiting in memory
  std::unordered_map<int64_t, std::unique_ptr<Call>> calls;      // by id, in flight
  std::unordered_map<std::string, std::vector<Work>> followers;  // coalesced by key
  std::unordered_set<std::string> keys_in_flight;
  int64_t next_call_id = 1;
  int calls_in_flight = 0;
  int64_t items_in_flight = 0;

  MonoTime no_claim_before{};  // the store had nothing due: look again after this
  bool store_exhausted = false;
  bool planned = false;          // this run planned its tasks (claims wait for it)
  bool plan_in_flight = false;   // its planning is running on the store thread
  bool claim_in_flight = false;  // a claim is running on the store thread
  bool auth_failed = false;
  int consecutive_429 = 0;
  MonoTime rate_paused_until{};  // for providers without a bucket
  // The provider's own quota window, when its answers state one (AdapterCall::QuotaLeft).
  std::optional<int64_t> quota_remaining;
  MonoTime quota_resets_at{};
  int64_t requests_in_flight = 0;

  ProviderStats stats;
  LatencyHistogram latency;
  uint64_t breaker_openings_at_start = 0;  // stats count this run's openings only

  bool Idle() const {
    return ready.empty() && calls.empty() && delayed.empty() && followers.empty();
  }
  int64_t HeldItems() const {
    return static_cast<int64_t>(ready.size()) + items_in_flight +
           static_cast<int64_t>(delayed.size());
  }
};

class EngineImpl final : public Engine {
 public:
  EngineImpl(const EnrichdConfig& config, EngineDeps deps)
      : config_(config),
        deps_(deps),
        clock_(deps.clock ? *deps.clock : SystemClock::Instance()),
        inbox_(std::make_shared<Inbox>()) {}

  ~EngineImpl() override { StopLoop(); }

  Status Init() {
    const AdapterRegistry& registry = deps_.registry ? *deps_.registry : AdapterRegistry::Builtin();
    uint64_t seed =
        deps_.seed ? deps_.seed : static_cast<uint64_t>(clock_.Now().time_since_epoch().count());
    bool needs_pool = false;
    for (const auto& pc : config_.providers) {
      if (!pc.enabled) continue;
      const std::string where =
          (pc.origin.empty() ? "" : pc.origin + ": ") + "provider '" + pc.name + "'";
      auto rt = std::make_unique<ProviderRuntime>();
      rt->config = pc;
      auto adapter = registry.Create(pc.ToAdapterSpec());
      if (!adapter.ok()) return adapter.status().WithContext(where);
      rt->adapter = std::move(adapter).value();
      rt->sync = dynamic_cast<SyncAdapter*>(rt->adapter.get());
      rt->async = dynamic_cast<AsyncAdapter*>(rt->adapter.get());
      if (rt->sync == nullptr && rt->async == nullptr) {
        return InternalError(where + ": adapter is neither synchronous nor asynchronous");
      }
      if (rt->async != nullptr && deps_.http == nullptr) {
        return InvalidArgumentError(where + ": an HTTP adapter needs an HTTP client");
      }
      needs_pool = needs_pool || rt->sync != nullptr;
      if (!pc.rate_limit.unlimited()) {
        // Paced just under the provider's own limit: a request leaves here on time but
        // reaches the provider after a network delay that varies, so two requests sent
        // 1/R apart can arrive closer together; at exactly R with the provider's bucket
        // empty, that alone earns a 429 (and a Retry-After pause far costlier than the
        // margin). 1 % of the rate and one token of the burst are kept in reserve.
        // The bucket starts with one token, not full: the first requests open new
        // connections, and while those handshakes delay the burst, paced requests catch up
        // with it and arrive together; nor does a fresh run know how much of the
        // provider's burst a run just before it (or another process) has used.
        res::TokenBucketConfig tb;
        tb.rate_per_second = *pc.rate_limit.per_second * kRateLimitPace;
        tb.burst = std::max<int64_t>(1, static_cast<int64_t>(pc.rate_limit.burst) - 1);
        tb.initial_tokens = 1;
        auto bucket = res::TokenBucket::Create(tb, clock_);
        if (!bucket.ok()) return bucket.status().WithContext(where + ": rate_limit");
        rt->bucket = std::move(bucket).value();
      }
      rt->random = std::make_unique<SeededRandom>(seed++);
      rt->breaker_random = std::make_unique<SeededRandom>(seed++);
      res::CircuitBreakerConfig cb;
      cb.failure_rate = pc.circuit_breaker.failure_rate;
      cb.window = pc.circuit_breaker.window;
      cb.min_calls = pc.circuit_breaker.min_calls;
      cb.open_for = pc.circuit_breaker.open_for;
      cb.half_open_calls = pc.circuit_breaker.half_open_calls;
      cb.probe_timeout = pc.circuit_breaker.probe_timeout;
      auto breaker = res::CircuitBreaker::Create(cb, clock_, *rt->breaker_random);
      if (!breaker.ok()) return breaker.status().WithContext(where + ": circuit_breaker");
      rt->breaker = std::move(breaker).value();
      res::BackoffConfig bc;
      bc.max_attempts = pc.retry.max_attempts;
      bc.base_delay = pc.retry.base_delay;
      bc.max_delay = pc.retry.max_delay;
      bc.jitter = ToJitter(pc.retry.jitter);
      auto backoff = res::Backoff::Create(bc);
      if (!backoff.ok()) return backoff.status().WithContext(where + ": retry");
      rt->backoff = *backoff;
      // gRPC-style throttle: retries stop while more than about a third of calls fail.
      res::RetryBudgetConfig rb;
      rb.max_tokens = 10;
      rb.token_ratio = 0.5;
      auto budget = res::RetryBudget::Create(rb);
      if (!budget.ok()) return budget.status().WithContext(where);
      rt->budget = std::move(budget).value();
      rt->stats.name = pc.name;
      rt->stats.kind = pc.kind.empty() ? std::string(rt->adapter->kind()) : pc.kind;
      rt->stats.breaker_state = "closed";
      index_[pc.name] = runtimes_.size();
      runtimes_.push_back(std::move(rt));
    }
    if (needs_pool)
      pool_ = std::make_unique<WorkerPool>(std::max(1, config_.engine.worker_threads));
    // A driven HTTP client runs on the engine thread: an answer is taken and the next
    // request sent without a hand-off between threads (see Loop()).
    driven_http_ = deps_.http != nullptr && deps_.http->driven();
    if (driven_http_) inbox_->SetWaker([http = deps_.http] { http->Wake(); });
    loop_thread_ = std::thread([this] {
      pthread_setname_np(pthread_self(), "enrichd-engine");
      inbox_->SetOwner(std::this_thread::get_id());
      Loop();
    });
    return Status::Ok();
  }

  // ---- Engine interface (any thread) ----

  Result<RunSummary> Run(GraphStore& store, const RunOptions& options) override {
    auto done = std::make_shared<std::promise<Result<RunSummary>>>();
    auto future = done->get_future();
    stop_requested_.store(false);
    inbox_->Post([this, &store, options, done] { StartRun(store, options, done); });
    return future.get();
  }

  void Stop() override {
    stop_requested_.store(true);
    inbox_->Wake();
  }

  std::future<EnrichmentResult> EnrichNow(std::string_view provider, Item item) override {
    auto promise = std::make_shared<std::promise<EnrichmentResult>>();
    auto future = promise->get_future();
    std::string name(provider);
    inbox_->Post([this, name, item = std::move(item), promise]() mutable {
      auto it = index_.find(name);
      if (it == index_.end()) {
        EnrichmentResult r;
        r.outcome = Outcome::kPermanent;
        r.reason = "unknown provider '" + name + "'";
        promise->set_value(std::move(r));
        return;
      }
      Work w;
      w.item = std::move(item);
      w.promise = promise;
      runtimes_[it->second]->ready.push_back(std::move(w));
    });
    return future;
  }

  std::vector<ProviderStats> Snapshot() const override {
    std::lock_guard<std::mutex> lock(snapshot_mu_);
    return snapshot_;
  }

 private:
  struct ActiveRun {
    GraphStore* store = nullptr;
    // Claims and result writes, when RunOptions::worker_store is given; else on `store`.
    std::unique_ptr<StoreWorker> worker;
    uint64_t generation = 0;  // tells a worker's late answer from a later run's
    RunOptions options;
    std::shared_ptr<std::promise<Result<RunSummary>>> done;
    MonoTime started{};
    MonoTime last_progress{};
    MonoTime last_flush{};
    MonoTime last_lease_renewal{};
    MonoTime last_reclaim{};
    MonoTime last_plan{};
    MonoTime last_count_check{};
    MonoTime stop_deadline{};
    bool stopping = false;
    std::vector<TaskCompletion> completions;
    std::vector<TaskRetry> retries;
    std::vector<TaskFinal> finals;
    std::unordered_set<int64_t> held;  // task ids we hold a lease on
  };

  // ---- the engine thread ----

  void Loop() {
    while (!loop_exit_.load()) {
      for (auto& fn : inbox_->Take()) fn();
      const MonoTime now = clock_.Now();
      MonoTime wake = now + milliseconds(200);
      if (run_) StepRun(now, wake);
      for (auto& rt : runtimes_) DispatchProvider(*rt, now, wake);
      if (run_) FinishRunIfDone(clock_.Now());
      if (now - last_snapshot_ >= milliseconds(100)) {
        last_snapshot_ = now;
        PublishSnapshot();
      }
      if (loop_exit_.load()) break;
      const MonoTime after = clock_.Now();
      // Our monotonic clock may be a fake in tests: wait in real time for the same span.
      const Duration span =
          wake <= after ? Duration::zero() : std::min<Duration>(wake - after, milliseconds(200));
      if (driven_http_) {
        // Every turn polls the HTTP client (its callbacks post answers into the inbox);
        // it waits only when nothing was posted meanwhile.
        deps_.http->Poll(inbox_->TakeReady() ? Duration::zero() : span);
      } else if (span > Duration::zero()) {
        inbox_->WaitUntil(std::chrono::steady_clock::now() +
                          std::chrono::duration_cast<std::chrono::steady_clock::duration>(span));
      }
    }
    // Anything still waiting gets an answer.
    for (auto& fn : inbox_->Take()) fn();
    for (auto& rt : runtimes_) {
      for (auto& w : rt->ready) CancelWork(w);
      for (auto& [t, w] : rt->delayed) CancelWork(w);
      rt->ready.clear();
      rt->delayed.clear();
    }
  }

  void StopLoop() {
    if (!loop_thread_.joinable()) return;
    loop_exit_.store(true);
    inbox_->Wake();
    loop_thread_.join();
    inbox_->Close();
    pool_.reset();  // finishes queued lookups (their posts are dropped)
  }

  static void CancelWork(Work& w) {
    if (!w.promise) return;
    EnrichmentResult r;
    r.outcome = Outcome::kCancelled;
    r.reason = "engine shut down";
    w.promise->set_value(std::move(r));
    w.promise.reset();
  }

  void Alert(const std::string& line) {
    if (run_ && run_->options.on_alert) run_->options.on_alert(line);
  }

  // ---- runs ----

  void StartRun(GraphStore& store, const RunOptions& options,
                std::shared_ptr<std::promise<Result<RunSummary>>> done) {
    if (run_) {
      done->set_value(FailedPreconditionError("a run is already in progress"));
      return;
    }
    auto run = std::make_unique<ActiveRun>();
    run->store = &store;
    run->options = options;
    run->generation = ++run_generation_;
    for (auto& rt : runtimes_) rt->claim_in_flight = false;
    if (options.worker_store != nullptr && options.worker_store != &store) {
      run->worker = std::make_unique<StoreWorker>(*options.worker_store);
    }
    run->done = std::move(done);
    const MonoTime now = clock_.Now();
    run->started = now;
    run->last_progress = now;
    run->last_flush = now;
    run->last_lease_renewal = now;
    run->last_reclaim = now;
    run->last_plan = now;
    if (run->options.run_id.empty()) run->options.run_id = MakeId("run");
    if (run->options.lease_owner.empty()) run->options.lease_owner = MakeId("worker");
    run_ = std::move(run);
    for (auto& rt : runtimes_) {
      ProviderStats fresh;
      fresh.name = rt->stats.name;
      fresh.kind = rt->stats.kind;
      rt->stats = std::move(fresh);
      rt->latency = LatencyHistogram();
      rt->breaker_openings_at_start = rt->breaker->Snapshot().openings;
      rt->store_exhausted = false;
      rt->planned = false;
      rt->plan_in_flight = false;
      rt->auth_failed = false;
      rt->no_claim_before = now;
    }
    const WallTime wall = clock_.WallNow();
    if (auto r = store.ReclaimExpiredLeases(wall); !r.ok()) return FailRun(r.status());
    if (run_->worker) {
      // Planned on the store thread one provider at a time, each followed by that
      // provider's first claim: the first provider's calls start while the next one is
      // being planned (20,000 nodes x 2 providers: ~90 ms sooner).
      PlanNextOnStoreThread();
    } else {
      if (auto s = Plan(wall); !s.ok()) return FailRun(s);
      for (auto& rt : runtimes_) rt->planned = true;
    }
    // The totals only feed the progress display (none: not counted); with a store thread
    // each provider's is counted there, right after its planning.
    if (run_->options.on_progress && !run_->worker) {
      auto open = store.CountOpenTasks(ProviderNames());
      if (!open.ok()) return FailRun(open.status());
      SetTotals(*open);
    }
  }

  // Plans the first provider this run has not planned yet on the store thread; its
  // answer marks it planned, queues its first claim, then plans the next one.
  void PlanNextOnStoreThread() {
    ProviderRuntime* next = nullptr;
    for (auto& rt : runtimes_) {
      if (!rt->planned && !rt->plan_in_flight) {
        next = rt.get();
        break;
      }
    }
    if (next == nullptr) return;
    next->plan_in_flight = true;
    std::vector<ProviderPlan> plan = {{next->config.name, next->config.applies_to}};
    run_->worker->Submit(
        [this, next, plan = std::move(plan), generation = run_->generation, wall = clock_.WallNow(),
         count_total = static_cast<bool>(run_->options.on_progress)](GraphStore& store) -> Status {
          auto planned = store.PlanDueTasks(plan, wall);
          if (!planned.ok()) return planned.status();  // the engine fails the run
          std::map<std::string, int64_t> total;
          if (count_total) {
            auto open = store.CountOpenTasks(std::vector<std::string>{plan[0].provider});
            if (!open.ok()) return open.status();
            total = std::move(open).value();
          }
          inbox_->Post([this, next, generation, total = std::move(total)] {
            if (!run_ || run_->generation != generation) return;  // the flags are a later run's
            next->plan_in_flight = false;
            if (run_->stopping) return;
            next->planned = true;
            SetTotals(total);
            const MonoTime now = clock_.Now();
            MonoTime ignored = now;
            if (auto s = Claim(*next, now, clock_.WallNow(), ignored); !s.ok()) return FailRun(s);
            PlanNextOnStoreThread();
          });
          return Status::Ok();
        });
  }

  std::vector<std::string> ProviderNames() const {
    std::vector<std::string> names;
    for (const auto& rt : runtimes_) names.push_back(rt->config.name);
    return names;
  }

  void SetTotals(const std::map<std::string, int64_t>& open) {
    for (auto& rt : runtimes_) {
      auto it = open.find(rt->config.name);
      if (it != open.end()) rt->stats.total = it->second;
    }
  }

  Status Plan(WallTime wall) {
    std::vector<ProviderPlan> plans;
    for (auto& rt : runtimes_) plans.push_back({rt->config.name, rt->config.applies_to});
    auto planned = run_->store->PlanDueTasks(plans, wall);
    return planned.status();
  }

  std::string MakeId(std::string_view prefix) {
    char host[64] = {0};
    gethostname(host, sizeof host - 1);
    SeededRandom r(static_cast<uint64_t>(clock_.WallNow().time_since_epoch().count()) ^
                   (static_cast<uint64_t>(getpid()) << 32));
    char buf[160];
    std::snprintf(buf, sizeof buf, "%.*s-%s-%d-%08llx", static_cast<int>(prefix.size()),
                  prefix.data(), host, static_cast<int>(getpid()),
                  static_cast<unsigned long long>(r.Next64() & 0xffffffffULL));
    return buf;
  }

  void FailRun(const Status& status) {
    auto run = std::move(run_);
    Alert("store error: " + status.ToString());
    for (auto& rt : runtimes_) {
      rt->ready.clear();  // leases expire; another run picks them up
    }
    run->done->set_value(status);
  }

  void StepRun(MonoTime now, MonoTime& wake) {
    ActiveRun& run = *run_;
    const WallTime wall = clock_.WallNow();
    if (run.worker) {
      if (Status s = run.worker->TakeError(); !s.ok()) return FailRun(s);
    }
    if (stop_requested_.load() && !run.stopping) BeginStop(now);
    if (!run.stopping) {
      if (now - run.last_reclaim >= config_.engine.lease / 2) {
        run.last_reclaim = now;
        auto r = run.store->ReclaimExpiredLeases(wall);
        if (!r.ok()) return FailRun(r.status());
      }
      if (!run.options.once && now - run.last_plan >= std::chrono::seconds(30)) {
        run.last_plan = now;
        if (auto s = Plan(wall); !s.ok()) return FailRun(s);
      }
      for (auto& rt : runtimes_) {
        if (auto s = Claim(*rt, now, wall, wake); !s.ok()) return FailRun(s);
      }
    }
    if (now - run.last_lease_renewal >= config_.engine.lease / 3) {
      run.last_lease_renewal = now;
      if (!run.held.empty()) {
        std::vector<int64_t> ids(run.held.begin(), run.held.end());
        auto r = run.store->RenewLeases(run.options.lease_owner, ids, wall + config_.engine.lease);
        if (!r.ok()) return FailRun(r.status());
      }
    }
    const size_t pending_writes = run.completions.size() + run.retries.size() + run.finals.size();
    if (pending_writes >= kFlushBatch ||
        (pending_writes > 0 && now - run.last_flush >= kFlushInterval)) {
      if (auto s = Flush(now); !s.ok()) return FailRun(s);
    } else if (pending_writes > 0) {
      wake = std::min(wake, run.last_flush + kFlushInterval);
    }
    if (run.options.on_progress && now - run.last_progress >= run.options.progress_interval) {
      run.last_progress = now;
      run.options.on_progress(CollectStats(), now - run.started);
    }
  }

  // Claims more work for one provider when its queue runs low.
  Status Claim(ProviderRuntime& rt, MonoTime now, WallTime wall, MonoTime& wake) {
    if (rt.auth_failed || !rt.planned) return Status::Ok();
    const int64_t batch = static_cast<int64_t>(std::max<size_t>(1, rt.config.batch.max_items));
    const int64_t per_claim = std::max<int64_t>(static_cast<int64_t>(config_.engine.claim_batch),
                                                2 * rt.config.concurrency * batch);
    // A claim's worth stays in hand while the next claim is on its way: on the store
    // thread a claim may wait for the write in progress (a WAL checkpoint: 30-40 ms), and
    // with half a claim in hand (as before) a fast provider ran dry meanwhile.
    const int64_t target = 2 * per_claim;
    const int64_t room = target - rt.HeldItems();
    if (room < per_claim) return Status::Ok();
    if (now < rt.no_claim_before) {
      wake = std::min(wake, rt.no_claim_before);
      return Status::Ok();
    }
    if (rt.claim_in_flight) return Status::Ok();
    ClaimRequest req;
    req.providers = {rt.config.name};
    req.max_tasks = static_cast<size_t>(room);
    req.lease_owner = run_->options.lease_owner;
    req.now = wall;
    req.lease_for = config_.engine.lease;
    if (run_->worker) {
      // Claimed on the store thread; the tasks come back through the mailbox.
      rt.claim_in_flight = true;
      run_->worker->Submit(
          [this, runtime = &rt, req = std::move(req), room,
           generation = run_->generation](GraphStore& store) -> Status {
            auto claimed = store.ClaimTasks(req);
            if (!claimed.ok()) return claimed.status();  // the engine fails the run
            inbox_->Post(
                [this, runtime, room, generation, tasks = std::move(claimed).value()]() mutable {
                  runtime->claim_in_flight = false;
                  // A run that has ended released these leases (ReleaseLeases, or they expire);
                  // a stopping run releases them as it ends: none of them is started.
                  if (!run_ || run_->generation != generation || run_->stopping) return;
                  const MonoTime t = clock_.Now();
                  MonoTime ignored = t;
                  TakeClaimed(*runtime, std::move(tasks), room, t, ignored);
                });
            return Status::Ok();
          },
          /*urgent=*/true);
      return Status::Ok();
    }
    auto claimed = run_->store->ClaimTasks(req);
    if (!claimed.ok()) return claimed.status();
    TakeClaimed(rt, std::move(claimed).value(), room, now, wake);
    return Status::Ok();
  }

  // Queues claimed tasks for dispatch (or finishes those that cannot be sent).
  void TakeClaimed(ProviderRuntime& rt, std::vector<ClaimedTask> claimed, int64_t room,
                   MonoTime now, MonoTime& wake) {
    for (auto& task : claimed) {
      run_->held.insert(task.task_id);
      auto item = Item::Make(task.label, task.key);
      if (!item.ok()) {
        Finish(rt, task, TaskStatus::kSkipped,
               "invalid " + task.label + ": " + item.status().message());
        continue;
      }
      item->node_id = task.node_id;
      if (!rt.adapter->Accepts(*item)) {
        Finish(
            rt, task, TaskStatus::kSkipped,
            "adapter " + std::string(rt.adapter->name()) + " does not handle label " + task.label);
        continue;
      }
      Work w;
      w.attempts = task.attempts;
      w.item = std::move(item).value();
      w.task = std::move(task);
      rt.ready.push_back(std::move(w));
    }
    if (static_cast<int64_t>(claimed.size()) < room) {
      rt.store_exhausted = true;
      const Duration poll = std::min<Duration>(config_.engine.poll_interval, milliseconds(250));
      rt.no_claim_before = now + poll;
      wake = std::min(wake, rt.no_claim_before);
    } else {
      rt.store_exhausted = false;
    }
  }

  Status Flush(MonoTime now) {
    ActiveRun& run = *run_;
    run.last_flush = now;
    if (run.completions.empty() && run.retries.empty() && run.finals.empty()) {
      return Status::Ok();
    }
    if (run.worker) {  // written on the store thread, in order; the engine goes on
      run.worker->Submit([completions = std::exchange(run.completions, {}),
                          retries = std::exchange(run.retries, {}),
                          finals = std::exchange(run.finals, {})](GraphStore& store) {
        return WriteResults(store, completions, retries, finals);
      });
      return Status::Ok();
    }
    ENRICHD_RETURN_IF_ERROR(WriteResults(*run.store, run.completions, run.retries, run.finals));
    run.completions.clear();
    run.retries.clear();
    run.finals.clear();
    return Status::Ok();
  }

  // One flush's results, each kind in one batch: answers, then retries, then final states.
  static Status WriteResults(GraphStore& store, const std::vector<TaskCompletion>& completions,
                             const std::vector<TaskRetry>& retries,
                             const std::vector<TaskFinal>& finals) {
    if (!completions.empty()) {
      if (auto r = store.CompleteTasks(completions); !r.ok()) return r.status();
    }
    if (!retries.empty()) {
      if (auto r = store.ScheduleRetries(retries); !r.ok()) return r.status();
    }
    if (!finals.empty()) {
      if (auto r = store.FinishTasks(finals); !r.ok()) return r.status();
    }
    return Status::Ok();
  }

  void BeginStop(MonoTime now) {
    ActiveRun& run = *run_;
    run.stopping = true;
    run.stop_deadline = now + run.options.grace_period;
    // Nothing new starts: queued work goes back to pending now.
    for (auto& rt : runtimes_) {
      for (auto& w : rt->ready) Release(*rt, w, "shutdown");
      rt->ready.clear();
      for (auto& [t, w] : rt->delayed) Release(*rt, w, "shutdown");
      rt->delayed.clear();
      // Calls that have not sent their next request yet never will.
      for (Call* call : rt->waiting_token) {
        for (auto& w : call->works) {
          rt->keys_in_flight.erase(w.item.key);
          Release(*rt, w, "shutdown");
        }
        --rt->calls_in_flight;
        rt->items_in_flight -= static_cast<int64_t>(call->works.size());
        rt->calls.erase(call->id);
      }
      rt->waiting_token.clear();
    }
  }

  void FinishRunIfDone(MonoTime now) {
    ActiveRun& run = *run_;
    bool idle = true;
    for (auto& rt : runtimes_) {
      if (!rt->Idle()) idle = false;
    }
    if (run.stopping) {
      if (!idle && now < run.stop_deadline) return;
      // Whatever is still in flight is returned to pending; a late answer is stale.
      for (auto& rt : runtimes_) {
        for (auto& [id, call] : rt->calls) {
          for (auto& w : call->works) Release(*rt, w, "shutdown");
        }
        for (auto& [key, ws] : rt->followers) {
          for (auto& w : ws) Release(*rt, w, "shutdown");
        }
        rt->followers.clear();
      }
      EndRun(now, /*interrupted=*/true);
      return;
    }
    if (!run.options.once || !idle) return;
    for (auto& rt : runtimes_) {
      if (!rt->auth_failed && !rt->store_exhausted) return;
    }
    if (!run.completions.empty() || !run.retries.empty() || !run.finals.empty()) {
      if (auto s = Flush(now); !s.ok()) return FailRun(s);
    }
    // The store's counts decide, not the store thread's state: a task is pending, running
    // (claimed, its result not yet written) or final, so nothing pending or running means
    // every result is written and no claim in flight can bring more. (Waiting for the
    // store thread to be idle instead could livelock: a fresh claim is queued every poll
    // interval while the provider has no work.)
    if (now - run.last_count_check < milliseconds(200)) return;
    run.last_count_check = now;
    // Nothing is in flight: let the last writes land (a short wait) so the counts below
    // see them now rather than one count interval later.
    if (run.worker) {
      if (Status s = run.worker->Drain(); !s.ok()) return FailRun(s);
    }
    // Everything claimed is finished; is anything left in the store (retries not due yet,
    // tasks leased by another worker)?
    auto open = run.store->CountOpenTasks(ProviderNames());
    if (!open.ok()) return FailRun(open.status());
    for (auto& rt : runtimes_) {
      if (rt->auth_failed) continue;
      auto it = open->find(rt->config.name);
      if (it != open->end() && it->second > 0) return;
    }
    EndRun(now, /*interrupted=*/false);
  }

  void EndRun(MonoTime now, bool interrupted) {
    ActiveRun& run = *run_;
    Status s = Flush(now);
    // Every write lands before leases are released: a completion written after its task
    // went back to pending would be refused as stale, and the answer lost.
    if (s.ok() && run.worker) s = run.worker->Drain();
    if (s.ok() && interrupted) {
      auto r = run.store->ReleaseLeases(run.options.lease_owner);
      if (!r.ok()) s = r.status();
    }
    if (!s.ok()) return FailRun(s);
    RunSummary summary;
    summary.providers = CollectStats();
    summary.elapsed = now - run.started;
    summary.interrupted = interrupted;
    summary.run_id = run.options.run_id;
    if (run.options.on_progress) run.options.on_progress(summary.providers, summary.elapsed);
    auto done = std::move(run.done);
    for (auto& rt : runtimes_) {
      rt->calls.clear();  // late answers find no call and are dropped
      rt->calls_in_flight = 0;
      rt->items_in_flight = 0;
      rt->keys_in_flight.clear();
      rt->waiting_token.clear();
      rt->requests_in_flight = 0;
    }
    run_.reset();
    done->set_value(std::move(summary));
  }

  // ---- results ----

  void Finish(ProviderRuntime& rt, const ClaimedTask& task, TaskStatus status, std::string reason) {
    if (status == TaskStatus::kSkipped) ++rt.stats.skipped;
    if (status == TaskStatus::kDead) ++rt.stats.dead;
    run_->finals.push_back({.task_id = task.task_id,
                            .claim_seq = task.claim_seq,
                            .status = status,
                            .reason = std::move(reason),
                            .count_attempt = status == TaskStatus::kDead});
    run_->held.erase(task.task_id);
  }

  // Returns a claimed task to pending without counting an attempt.
  void Release(ProviderRuntime& rt, Work& w, const std::string& why) {
    (void)rt;
    if (w.promise) return CancelWork(w);
    if (!w.task || !run_) return;
    run_->retries.push_back({.task_id = w.task->task_id,
                             .claim_seq = w.task->claim_seq,
                             .next_attempt_at = clock_.WallNow(),
                             .last_error = why,
                             .count_attempt = false});
    run_->held.erase(w.task->task_id);
  }

  void HandleResult(ProviderRuntime& rt, Work& w, EnrichmentResult result, MonoTime now) {
    const int attempts_made = w.attempts + 1;
    if (w.promise) return HandleInMemory(rt, w, std::move(result), now);
    if (!w.task || !run_) return;
    const ClaimedTask& task = *w.task;
    switch (result.outcome) {
      case Outcome::kOk:
      case Outcome::kNoData: {
        const WallTime fetched = clock_.WallNow();
        result.provenance.fetched_at = fetched;
        result.provenance.expires_at =
            fetched + (result.outcome == Outcome::kOk ? rt.config.ttl : rt.config.no_data_ttl);
        result.provenance.attempts = attempts_made;
        result.provenance.run_id = run_->options.run_id;
        if (result.kind.empty()) result.kind = rt.stats.kind;
        if (result.outcome == Outcome::kOk)
          ++rt.stats.ok;
        else
          ++rt.stats.no_data;
        run_->completions.push_back({.task_id = task.task_id,
                                     .claim_seq = task.claim_seq,
                                     .provider = rt.config.name,
                                     .result = std::move(result)});
        run_->held.erase(task.task_id);
        return;
      }
      case Outcome::kSkipped:
        return Finish(rt, task, TaskStatus::kSkipped, result.reason);
      case Outcome::kPermanent:
        return Finish(rt, task, TaskStatus::kDead, result.reason);
      case Outcome::kTransient: {
        if (!rt.backoff->AttemptsRemain(attempts_made)) {
          return Finish(
              rt, task, TaskStatus::kDead,
              "gave up after " + std::to_string(attempts_made) + " attempts: " + result.reason);
        }
        Duration delay = rt.backoff->NextDelay(attempts_made, w.previous_delay, *rt.random);
        if (result.retry_after) delay = std::max(delay, *result.retry_after);
        // A sick provider gets no extra load from retries: when the budget is spent the
        // retry waits the longest backoff instead of coming back soon.
        if (!rt.budget->RetryAllowed()) delay = rt.config.retry.max_delay;
        ++rt.stats.retries;
        run_->retries.push_back({.task_id = task.task_id,
                                 .claim_seq = task.claim_seq,
                                 .next_attempt_at = clock_.WallNow() + delay,
                                 .last_error = result.reason,
                                 .count_attempt = true});
        run_->held.erase(task.task_id);
        return;
      }
      case Outcome::kAuth:
        FailAuth(rt, result.reason);
        return Release(rt, w, "auth: " + result.reason);
      case Outcome::kRateLimited:
      case Outcome::kCircuitOpen:
        if (run_->stopping) return Release(rt, w, "shutdown");
        rt.ready.push_front(std::move(w));  // no attempt counted; the pause paces it
        return;
      case Outcome::kCancelled:
        return Release(rt, w, "cancelled");
    }
  }

  // EnrichNow: retries happen in memory on the same runtime.
  void HandleInMemory(ProviderRuntime& rt, Work& w, EnrichmentResult result, MonoTime now) {
    const int attempts_made = w.attempts + 1;
    result.provenance.attempts = attempts_made;
    if (result.outcome == Outcome::kRateLimited || result.outcome == Outcome::kCircuitOpen) {
      rt.ready.push_front(std::move(w));
      return;
    }
    if (result.outcome == Outcome::kTransient && rt.backoff->AttemptsRemain(attempts_made)) {
      Duration delay = rt.backoff->NextDelay(attempts_made, w.previous_delay, *rt.random);
      if (result.retry_after) delay = std::max(delay, *result.retry_after);
      w.attempts = attempts_made;
      w.previous_delay = delay;
      ++rt.stats.retries;
      rt.delayed.emplace(now + delay, std::move(w));
      return;
    }
    if (IsAnswer(result.outcome)) {
      const WallTime fetched = clock_.WallNow();
      result.provenance.fetched_at = fetched;
      result.provenance.expires_at =
          fetched + (result.outcome == Outcome::kOk ? rt.config.ttl : rt.config.no_data_ttl);
      if (result.kind.empty()) result.kind = rt.stats.kind;
    }
    w.promise->set_value(std::move(result));
    w.promise.reset();
  }

  void FailAuth(ProviderRuntime& rt, const std::string& reason) {
    if (rt.auth_failed) return;
    rt.auth_failed = true;
    rt.stats.auth_failed = true;
    Alert("provider " + rt.config.name + ": credentials refused (" + reason +
          "); it is paused for the rest of this run and its tasks stay pending");
    for (auto& w : rt.ready) Release(rt, w, "auth: " + reason);
    rt.ready.clear();
  }

  // ---- dispatch ----

  bool TakeToken(ProviderRuntime& rt, MonoTime now, MonoTime& wake) {
    if (rt.quota_remaining) {
      if (now >= rt.quota_resets_at) {
        rt.quota_remaining.reset();  // a new window: its allowance is unknown until answered
      } else if (*rt.quota_remaining <= 0) {
        wake = std::min(wake, rt.quota_resets_at);
        rt.stats.waiting_rate_limit = true;
        return false;
      }
    }
    if (!TakeBucketToken(rt, now, wake)) return false;
    if (rt.quota_remaining) --*rt.quota_remaining;
    return true;
  }

  bool TakeBucketToken(ProviderRuntime& rt, MonoTime now, MonoTime& wake) {
    if (rt.bucket) {
      if (rt.bucket->TryAcquire(1)) return true;
      const Duration wait = rt.bucket->TimeUntilAvailable(1);
      wake = std::min(wake, now + std::max<Duration>(wait, milliseconds(1)));
      rt.stats.waiting_rate_limit = true;
      return false;
    }
    if (now < rt.rate_paused_until) {
      wake = std::min(wake, rt.rate_paused_until);
      rt.stats.waiting_rate_limit = true;
      return false;
    }
    return true;
  }

  void PauseProvider(ProviderRuntime& rt, MonoTime until) {
    if (rt.bucket) {
      rt.bucket->PauseUntil(until);
    } else {
      rt.rate_paused_until = std::max(rt.rate_paused_until, until);
    }
  }

  void DispatchProvider(ProviderRuntime& rt, MonoTime now, MonoTime& wake) {
    rt.stats.waiting_rate_limit = false;
    // EnrichNow retries that are due.
    while (!rt.delayed.empty() && rt.delayed.begin()->first <= now) {
      rt.ready.push_front(std::move(rt.delayed.begin()->second));
      rt.delayed.erase(rt.delayed.begin());
    }
    if (!rt.delayed.empty()) wake = std::min(wake, rt.delayed.begin()->first);
    if (rt.auth_failed) {
      for (auto& w : rt.ready) {
        if (w.promise) {
          EnrichmentResult r;
          r.outcome = Outcome::kAuth;
          r.reason = "provider paused: credentials refused";
          w.promise->set_value(std::move(r));
        } else {
          Release(rt, w, "auth");
        }
      }
      rt.ready.clear();
      return;
    }
    if (run_ && run_->stopping) {
      // Only calls already started may go on.
      for (auto& w : rt.ready) Release(rt, w, "shutdown");
      rt.ready.clear();
    }
    while (true) {
      if (!rt.waiting_token.empty()) {
        if (!TakeToken(rt, now, wake)) return;
        Call* call = rt.waiting_token.front();
        rt.waiting_token.pop_front();
        Send(rt, *call, now);
        continue;
      }
      if (rt.ready.empty() || rt.calls_in_flight >= rt.config.concurrency) return;
      if (rt.async) {
        // Pace before building: no breaker permit is taken while waiting for a token.
        if (rt.bucket && rt.bucket->TimeUntilAvailable(1) > Duration::zero()) {
          TakeToken(rt, now, wake);
          return;
        }
        if (!rt.bucket && now < rt.rate_paused_until) {
          TakeToken(rt, now, wake);
          return;
        }
        if (rt.quota_remaining && *rt.quota_remaining <= 0 && now < rt.quota_resets_at) {
          wake = std::min(wake, rt.quota_resets_at);
          rt.stats.waiting_rate_limit = true;
          return;
        }
      }
      auto admission = rt.breaker->TryAdmit();
      if (!admission.admitted()) {
        wake = std::min(wake, now + std::max<Duration>(admission.retry_after, milliseconds(1)));
        return;
      }
      std::vector<Work> works = TakeBatch(rt);
      if (works.empty()) return;  // permit released as ignored
      StartCall(rt, std::move(works), std::move(admission.permit), now, wake);
    }
  }

  // Up to the adapter's batch size of distinct keys; identical keys already in flight are
  // parked as followers and answered with the same result.
  std::vector<Work> TakeBatch(ProviderRuntime& rt) {
    size_t max_items = 1;
    if (rt.async) {
      max_items = std::max<size_t>(1, std::min(rt.config.batch.max_items, rt.async->max_batch()));
    } else {
      max_items = rt.bucket ? 1 : kSyncChunk;
    }
    std::vector<Work> works;
    std::unordered_set<std::string> keys_in_batch;  // only for batches of more than one
    while (!rt.ready.empty() && works.size() < max_items) {
      Work w = std::move(rt.ready.front());
      rt.ready.pop_front();
      const std::string& key = w.item.key;
      if (rt.keys_in_flight.count(key) || keys_in_batch.count(key)) {
        rt.followers[key].push_back(std::move(w));
        continue;
      }
      if (max_items > 1) keys_in_batch.insert(key);
      works.push_back(std::move(w));
    }
    return works;
  }

  void StartCall(ProviderRuntime& rt, std::vector<Work> works, res::CircuitBreaker::Permit permit,
                 MonoTime now, MonoTime& wake) {
    const int64_t id = rt.next_call_id++;
    auto owned = std::make_unique<Call>();
    Call* call = owned.get();
    call->id = id;
    call->runtime = &rt;
    call->works = std::move(works);
    call->permit = std::move(permit);
    for (auto& w : call->works) rt.keys_in_flight.insert(w.item.key);
    rt.items_in_flight += static_cast<int64_t>(call->works.size());
    ++rt.calls_in_flight;
    rt.calls.emplace(id, std::move(owned));
    if (rt.sync) {
      std::vector<Item> items;
      items.reserve(call->works.size());
      for (auto& w : call->works) items.push_back(w.item);
      ++rt.stats.requests;
      SyncAdapter* adapter = rt.sync;
      std::weak_ptr<Inbox> inbox = inbox_;
      ProviderRuntime* rtp = &rt;
      call->request_started = now;
      pool_->Submit([this, adapter, items = std::move(items), inbox, rtp, id]() {
        auto results = std::make_shared<std::vector<EnrichmentResult>>();
        results->reserve(items.size());
        for (const auto& item : items) results->push_back(adapter->Lookup(item));
        if (auto in = inbox.lock()) {
          in->Post([this, rtp, id, results] { OnSyncDone(*rtp, id, std::move(*results)); });
        }
      });
      return;
    }
    std::vector<Item> items;
    items.reserve(call->works.size());
    for (auto& w : call->works) items.push_back(w.item);
    call->adapter_call = rt.async->Begin(std::move(items));
    call->next_request = call->adapter_call->NextRequest();
    if (!call->next_request) return FinishCall(rt, id, now);
    if (!TakeToken(rt, now, wake)) {
      rt.waiting_token.push_back(call);
      return;
    }
    Send(rt, *call, now);
  }

  void Send(ProviderRuntime& rt, Call& call, MonoTime now) {
    const int64_t id = call.id;
    HttpRequest request = std::move(*call.next_request);
    call.next_request.reset();
    call.request_started = now;
    ++rt.stats.requests;
    ++rt.requests_in_flight;
    std::weak_ptr<Inbox> inbox = inbox_;
    ProviderRuntime* rtp = &rt;
    deps_.http->Submit(std::move(request), [this, inbox, rtp, id](HttpResponse&& response) {
      auto shared = std::make_shared<HttpResponse>(std::move(response));
      if (auto in = inbox.lock()) {
        in->Post([this, rtp, id, shared] { OnHttpDone(*rtp, id, *shared); });
      }
    });
  }

  void OnHttpDone(ProviderRuntime& rt, int64_t id, const HttpResponse& response) {
    auto it = rt.calls.find(id);
    if (it == rt.calls.end()) return;  // the run ended; the answer is stale
    Call& call = *it->second;
    const MonoTime now = clock_.Now();
    rt.latency.Record(now - call.request_started);
    if (response.transport_ok() && response.status == 429) {
      ++rt.stats.http_429;
      ++rt.consecutive_429;
    } else if (response.transport_ok()) {
      rt.consecutive_429 = 0;
    }
    --rt.requests_in_flight;
    call.adapter_call->OnResponse(response);
    if (auto pause = call.adapter_call->ProviderPause()) PauseProvider(rt, now + *pause);
    if (auto quota = call.adapter_call->QuotaLeft()) {
      // Requests still in flight may not have been counted in this answer: they spend the
      // same allowance. Answers can arrive out of order, so within one window the
      // allowance only ever goes down.
      const int64_t remaining = quota->remaining - rt.requests_in_flight;
      const MonoTime resets_at = now + quota->resets_in;
      const bool same_window = rt.quota_remaining && now < rt.quota_resets_at &&
                               resets_at <= rt.quota_resets_at + std::chrono::seconds(1);
      if (same_window) {
        rt.quota_remaining = std::min(*rt.quota_remaining, remaining);
        rt.quota_resets_at = std::max(rt.quota_resets_at, resets_at);
      } else {
        rt.quota_remaining = remaining;
        rt.quota_resets_at = resets_at;
      }
    }
    call.next_request = call.adapter_call->NextRequest();
    if (call.next_request) {
      MonoTime wake = now;
      if (TakeToken(rt, now, wake)) {
        Send(rt, call, now);
      } else {
        rt.waiting_token.push_front(&call);
      }
      return;
    }
    FinishCall(rt, id, now);
  }

  void OnSyncDone(ProviderRuntime& rt, int64_t id, std::vector<EnrichmentResult> results) {
    auto it = rt.calls.find(id);
    if (it == rt.calls.end()) return;
    const MonoTime now = clock_.Now();
    rt.latency.Record(now - it->second->request_started);
    CompleteCall(rt, id, std::move(results), now);
  }

  void FinishCall(ProviderRuntime& rt, int64_t id, MonoTime now) {
    auto it = rt.calls.find(id);
    if (it == rt.calls.end()) return;
    std::vector<EnrichmentResult> results = it->second->adapter_call->TakeResults();
    CompleteCall(rt, id, std::move(results), now);
  }

  void CompleteCall(ProviderRuntime& rt, int64_t id, std::vector<EnrichmentResult> results,
                    MonoTime now) {
    auto it = rt.calls.find(id);
    std::unique_ptr<Call> call = std::move(it->second);
    rt.calls.erase(it);
    --rt.calls_in_flight;
    rt.items_in_flight -= static_cast<int64_t>(call->works.size());
    // The breaker and the retry budget score the call as a whole.
    bool any_transient = false, any_answer = false;
    std::optional<Duration> rate_limited_for;
    bool rate_limited = false;
    for (const auto& r : results) {
      any_transient = any_transient || r.outcome == Outcome::kTransient;
      any_answer = any_answer || IsAnswer(r.outcome);
      if (r.outcome == Outcome::kRateLimited) {
        rate_limited = true;
        if (r.retry_after)
          rate_limited_for = std::max(rate_limited_for.value_or(Duration{}), *r.retry_after);
      }
    }
    const Outcome call_outcome = any_transient ? Outcome::kTransient
                                 : any_answer  ? Outcome::kOk
                                               : Outcome::kCancelled;  // counts for nothing
    call->permit.Record(call_outcome);
    rt.budget->Record(call_outcome);
    if (rate_limited) {
      // Obey the provider: nobody calls it until the reset it named (or a growing pause).
      Duration pause = rate_limited_for.value_or(
          kDefault429Pause * std::min(1 << std::min(rt.consecutive_429, 6), 60));
      PauseProvider(rt, now + pause);
    }
    if (results.size() != call->works.size()) {
      EnrichmentResult bad;
      bad.outcome = Outcome::kTransient;
      bad.reason = "adapter returned " + std::to_string(results.size()) + " results for " +
                   std::to_string(call->works.size()) + " items";
      results.assign(call->works.size(), bad);
    }
    for (size_t i = 0; i < call->works.size(); ++i) {
      Work& w = call->works[i];
      const std::string key = w.item.key;
      rt.keys_in_flight.erase(key);
      auto f = rt.followers.find(key);
      if (f != rt.followers.end()) {
        std::vector<Work> followers = std::move(f->second);
        rt.followers.erase(f);
        for (auto& fw : followers) {
          // A follower whose lookup failed goes back to the queue on its own.
          if (IsAnswer(results[i].outcome) || results[i].outcome == Outcome::kSkipped ||
              results[i].outcome == Outcome::kPermanent) {
            HandleResult(rt, fw, results[i], now);
          } else {
            rt.ready.push_back(std::move(fw));
          }
        }
      }
      HandleResult(rt, w, std::move(results[i]), now);
    }
  }

  // ---- statistics ----

  std::vector<ProviderStats> CollectStats() {
    std::vector<ProviderStats> out;
    out.reserve(runtimes_.size());
    for (auto& rt : runtimes_) {
      ProviderStats s = rt->stats;
      s.latency_p50_ms = rt->latency.QuantileMs(0.5);
      s.latency_p99_ms = rt->latency.QuantileMs(0.99);
      const auto snap = rt->breaker->Snapshot();
      s.breaker_state = std::string(res::BreakerStateName(snap.state));
      s.breaker_openings = static_cast<int64_t>(snap.openings - rt->breaker_openings_at_start);
      s.in_flight = rt->items_in_flight;
      s.queued = static_cast<int64_t>(rt->ready.size());
      out.push_back(std::move(s));
    }
    return out;
  }

  void PublishSnapshot() {
    auto stats = CollectStats();
    std::lock_guard<std::mutex> lock(snapshot_mu_);
    snapshot_ = std::move(stats);
  }

  const EnrichdConfig config_;
  EngineDeps deps_;
  const Clock& clock_;
  std::shared_ptr<Inbox> inbox_;
  std::vector<std::unique_ptr<ProviderRuntime>> runtimes_;
  std::unordered_map<std::string, size_t> index_;
  std::unique_ptr<WorkerPool> pool_;
  std::unique_ptr<ActiveRun> run_;
  uint64_t run_generation_ = 0;
  std::atomic<bool> stop_requested_{false};
  std::atomic<bool> loop_exit_{false};
  bool driven_http_ = false;  // deps_.http is driven by the engine thread
  std::thread loop_thread_;
  mutable std::mutex snapshot_mu_;
  std::vector<ProviderStats> snapshot_;
  MonoTime last_snapshot_{};
};

}  // namespace

Result<std::unique_ptr<Engine>> Engine::Create(const EnrichdConfig& config, EngineDeps deps) {
  auto engine = std::make_unique<EngineImpl>(config, deps);
  ENRICHD_RETURN_IF_ERROR(engine->Init());
  return std::unique_ptr<Engine>(std::move(engine));
}

}  // namespace enrichd

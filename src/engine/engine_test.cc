// Engine unit tests: the scheduler and provider runtime over a real SQLite store, with a
// test adapter and a fake HttpClient that answers at once. Time is a FakeClock that this
// test advances while the engine runs (the engine never sleeps on it), so retries,
// pauses and breaker timings are checked on the fake clock's readings.
#include "enrichd/engine.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "enrichd/graph_store.h"

namespace enrichd {
namespace {

using namespace std::chrono_literals;

// GET {endpoint}/{key}; the answer's status decides the outcome.
class EchoCall final : public AdapterCall {
 public:
  EchoCall(std::string endpoint, std::vector<Item> items)
      : endpoint_(std::move(endpoint)), items_(std::move(items)) {}
  std::optional<HttpRequest> NextRequest() override {
    if (sent_) return std::nullopt;
    sent_ = true;
    HttpRequest r;
    r.url = endpoint_ + "/" + items_[0].key;
    return r;
  }
  void OnResponse(const HttpResponse& resp) override {
    EnrichmentResult r;
    r.kind = "asn";
    r.provenance.adapter = "echo";
    r.provenance.http_status = resp.status;
    if (!resp.transport_ok()) {
      r.outcome = Outcome::kTransient;
      r.reason = "transport";
    } else if (resp.status == 200) {
      r.outcome = Outcome::kOk;
      r.data_json = R"({"asn":64500})";
    } else if (resp.status == 204) {
      r.outcome = Outcome::kNoData;
      r.data_json = "{}";
    } else if (resp.status == 429) {
      r.outcome = Outcome::kRateLimited;
      if (auto* ra = resp.Header("retry-after"))
        r.retry_after = std::chrono::seconds(std::stoi(*ra));
    } else if (resp.status == 401) {
      r.outcome = Outcome::kAuth;
      r.reason = "HTTP 401";
    } else if (resp.status == 404) {
      r.outcome = Outcome::kPermanent;
      r.reason = "HTTP 404";
    } else {
      r.outcome = Outcome::kTransient;
      r.reason = "HTTP " + std::to_string(resp.status);
    }
    result_ = std::move(r);
  }
  std::vector<EnrichmentResult> TakeResults() override { return {result_}; }

 private:
  std::string endpoint_;
  std::vector<Item> items_;
  bool sent_ = false;
  EnrichmentResult result_;
};

class EchoAdapter final : public AsyncAdapter {
 public:
  explicit EchoAdapter(std::string endpoint) : endpoint_(std::move(endpoint)) {}
  std::string_view name() const override { return "echo"; }
  std::string_view version() const override { return "1"; }
  std::string_view kind() const override { return "asn"; }
  bool external() const override { return true; }

 protected:
  std::unique_ptr<AdapterCall> BeginSendable(std::vector<Item> items) override {
    return std::make_unique<EchoCall>(endpoint_, std::move(items));
  }

 private:
  std::string endpoint_;
};

// Answers every request through `respond`, recording the fake clock's reading: at once,
// or, when `driven` is set, in the next Poll() on the thread that drives it (a driven
// client, as the CLI gives the engine).
class FakeHttp final : public HttpClient {
 public:
  explicit FakeHttp(const Clock& clock) : clock_(clock) {}
  std::function<HttpResponse(const HttpRequest&)> respond;
  bool driven_mode = false;

  void Submit(HttpRequest request, Callback done) override {
    HttpResponse resp;
    {
      std::lock_guard<std::mutex> lock(mu_);
      sent_.push_back({request.url, clock_.Now()});
      resp = respond(request);
      if (driven_mode) {
        submit_threads_.insert(std::this_thread::get_id());
        answers_.push_back({std::move(done), std::move(resp)});
        cv_.notify_all();
        return;
      }
    }
    done(std::move(resp));
  }
  bool driven() const override { return driven_mode; }
  void Poll(Duration max_wait) override {
    std::vector<std::pair<Callback, HttpResponse>> answers;
    {
      std::unique_lock<std::mutex> lock(mu_);
      poll_threads_.insert(std::this_thread::get_id());
      cv_.wait_for(lock, max_wait, [this] { return !answers_.empty() || woken_; });
      woken_ = false;
      answers.swap(answers_);
    }
    for (auto& [done, resp] : answers) done(std::move(resp));
  }
  void Wake() override {
    std::lock_guard<std::mutex> lock(mu_);
    woken_ = true;
    ++wakes_;
    cv_.notify_all();
  }

  std::vector<std::pair<std::string, MonoTime>> sent() {
    std::lock_guard<std::mutex> lock(mu_);
    return sent_;
  }
  std::set<std::thread::id> submit_threads() {
    std::lock_guard<std::mutex> lock(mu_);
    return submit_threads_;
  }
  std::set<std::thread::id> poll_threads() {
    std::lock_guard<std::mutex> lock(mu_);
    return poll_threads_;
  }
  int wakes() {
    std::lock_guard<std::mutex> lock(mu_);
    return wakes_;
  }

 private:
  const Clock& clock_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::pair<std::string, MonoTime>> sent_;
  std::vector<std::pair<Callback, HttpResponse>> answers_;
  std::set<std::thread::id> submit_threads_;
  std::set<std::thread::id> poll_threads_;
  bool woken_ = false;
  int wakes_ = 0;
};

HttpResponse Answer(int status, std::vector<HttpHeader> headers = {}) {
  HttpResponse r;
  r.status = status;
  r.headers = std::move(headers);
  r.body = "{}";
  return r;
}

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("enrichd-engine-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    auto store = OpenGraphStore("sqlite://" + (dir_ / "graph.db").string());
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(store).value();
    registry_.Register("echo", [](const AdapterSpec& spec) -> Result<std::unique_ptr<Adapter>> {
      return std::unique_ptr<Adapter>(std::make_unique<EchoAdapter>(spec.endpoint));
    });
    http_.respond = [](const HttpRequest&) { return Answer(200); };
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  ProviderConfig Provider(std::string name = "echo") {
    ProviderConfig p;
    p.name = std::move(name);
    p.adapter = "echo";
    p.kind = "asn";
    p.endpoint = "http://provider.test";
    p.concurrency = 4;
    p.retry.max_attempts = 3;
    p.retry.base_delay = 100ms;
    p.retry.max_delay = 1s;
    p.circuit_breaker.window = 10;
    p.circuit_breaker.min_calls = 5;
    p.circuit_breaker.open_for = 10s;
    p.circuit_breaker.half_open_calls = 1;
    return p;
  }

  void Ingest(const std::vector<std::string>& keys) {
    std::vector<SourceNode> nodes;
    for (const auto& k : keys) nodes.push_back({"ip", k, "{}"});
    ASSERT_TRUE(store_->UpsertSourceNodes(nodes).ok());
  }

  // Runs the engine to completion while a helper thread advances the fake clock in
  // `step`s (the engine itself never sleeps on the fake clock).
  RunSummary RunOnce(const EnrichdConfig& config, Duration step = 10ms,
                     std::vector<std::string>* alerts = nullptr,
                     GraphStore* worker_store = nullptr) {
    auto engine = Engine::Create(
        config, {.http = &http_, .clock = &clock_, .registry = &registry_, .seed = 7});
    EXPECT_TRUE(engine.ok()) << engine.status();
    std::atomic<bool> done{false};
    std::thread ticker([&] {
      while (!done.load()) {
        clock_.Advance(step);
        std::this_thread::yield();
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
    });
    RunOptions options;
    options.once = true;
    options.worker_store = worker_store;
    options.on_progress = [](const std::vector<ProviderStats>&, Duration) {};  // totals too
    std::mutex alerts_mu;
    options.on_alert = [&](const std::string& line) {
      std::lock_guard<std::mutex> lock(alerts_mu);
      if (alerts) alerts->push_back(line);
    };
    auto summary = (*engine)->Run(*store_, options);
    done.store(true);
    ticker.join();
    EXPECT_TRUE(summary.ok()) << summary.status();
    return summary.ok() ? *summary : RunSummary{};
  }

  ProviderCounts Counts(const std::string& provider) {
    auto c = store_->Counts();
    EXPECT_TRUE(c.ok());
    return c->providers[provider];
  }

  std::filesystem::path dir_;
  FakeClock clock_;
  FakeHttp http_{clock_};
  AdapterRegistry registry_;
  std::unique_ptr<GraphStore> store_;
};

TEST_F(EngineTest, EveryItemIsStoredOnceWithProvenance) {
  Ingest({"8.8.8.8", "1.1.1.1", "9.9.9.9"});
  EnrichdConfig config;
  config.providers = {Provider()};
  RunSummary s = RunOnce(config);
  ASSERT_EQ(s.providers.size(), 1u);
  EXPECT_EQ(s.providers[0].total, 3);  // what the progress display counts down from
  EXPECT_EQ(s.providers[0].ok, 3);
  EXPECT_EQ(s.providers[0].requests, 3);
  EXPECT_EQ(Counts("echo").done, 3);
  EXPECT_EQ(Counts("echo").pending + Counts("echo").running, 0);
  auto node = store_->GetNode("ip", "8.8.8.8");
  ASSERT_TRUE(node.ok() && node->has_value());
  ASSERT_EQ((*node)->enrichments.size(), 1u);
  const std::string& props = (*node)->enrichments[0].props_json;
  EXPECT_NE(props.find("\"asn\":64500"), std::string::npos) << props;
  EXPECT_NE(props.find("\"run_id\""), std::string::npos) << props;
  EXPECT_NE(props.find("\"attempts\":1"), std::string::npos) << props;
}

TEST_F(EngineTest, TransientFailuresAreRetriedThroughTheStoreUntilDone) {
  Ingest({"8.8.8.8", "1.1.1.1"});
  std::map<std::string, int> calls;
  http_.respond = [&](const HttpRequest& r) {
    // Each key fails twice, then answers.
    return ++calls[r.url] <= 2 ? Answer(503) : Answer(200);
  };
  EnrichdConfig config;
  config.providers = {Provider()};
  config.providers[0].circuit_breaker.min_calls = 10;  // keep the breaker out of it
  RunSummary s = RunOnce(config);
  EXPECT_EQ(s.providers[0].ok, 2);
  EXPECT_EQ(s.providers[0].retries, 4);
  EXPECT_EQ(s.providers[0].requests, 6);
  EXPECT_EQ(Counts("echo").done, 2);
  auto node = store_->GetNode("ip", "1.1.1.1");
  ASSERT_TRUE(node.ok() && node->has_value());
  EXPECT_NE((*node)->enrichments[0].props_json.find("\"attempts\":3"), std::string::npos);
}

TEST_F(EngineTest, AStoreThreadOnASecondConnectionClaimsAndWritesEveryResultOnce) {
  std::vector<std::string> keys;
  for (int i = 1; i <= 250; ++i)
    keys.push_back("8.8." + std::to_string(i / 200) + "." + std::to_string(i % 200 + 1));
  Ingest(keys);
  std::map<std::string, int> calls;
  std::mutex calls_mu;
  http_.respond = [&](const HttpRequest& r) {
    std::lock_guard<std::mutex> lock(calls_mu);
    return ++calls[r.url] == 1 && calls.size() % 10 == 0 ? Answer(503) : Answer(200);
  };
  auto second = OpenGraphStore("sqlite://" + (dir_ / "graph.db").string());
  ASSERT_TRUE(second.ok()) << second.status();
  EnrichdConfig config;
  // Two providers: planned one after the other on the store thread, each then claimed.
  config.providers = {Provider(), Provider("echo2")};
  for (auto& p : config.providers) p.circuit_breaker.failure_rate = 1.0;  // no breaker
  config.engine.claim_batch = 16;  // many claims, each on the store thread
  RunSummary s = RunOnce(config, 10ms, nullptr, second->get());
  ASSERT_EQ(s.providers.size(), 2u);
  for (const auto& p : s.providers) {
    EXPECT_EQ(p.total, 250) << p.name;  // counted on the store thread, once both planned
    EXPECT_EQ(p.ok, 250) << p.name;
    EXPECT_EQ(p.dead, 0) << p.name;
    EXPECT_EQ(Counts(p.name).done, 250) << p.name;
    EXPECT_EQ(Counts(p.name).pending + Counts(p.name).running, 0) << p.name;
  }
  // Exactly one enrichment per address and provider, the retried ones included.
  for (const std::string& key : {std::string("8.8.0.11"), std::string("8.8.1.51")}) {
    auto node = store_->GetNode("ip", key);
    ASSERT_TRUE(node.ok() && node->has_value()) << key;
    EXPECT_EQ((*node)->enrichments.size(), 2u) << key;  // one per provider
  }
  auto counts = store_->Counts();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(counts->edges, 500);
}

TEST_F(EngineTest, ADrivenHttpClientIsPolledOnTheEngineThreadAndEveryResultIsStoredOnce) {
  std::vector<std::string> keys;
  for (int i = 1; i <= 200; ++i)
    keys.push_back("9.9." + std::to_string(i / 100) + "." + std::to_string(i % 100 + 1));
  Ingest(keys);
  std::map<std::string, int> calls;
  http_.driven_mode = true;
  http_.respond = [&](const HttpRequest& r) {  // under FakeHttp's lock
    return ++calls[r.url] == 1 && calls.size() % 8 == 0 ? Answer(503) : Answer(200);
  };
  // The store thread's posts (claims, counts) come from another thread: they must wake
  // the engine out of the client's Poll().
  auto second = OpenGraphStore("sqlite://" + (dir_ / "graph.db").string());
  ASSERT_TRUE(second.ok()) << second.status();
  EnrichdConfig config;
  config.providers = {Provider(), Provider("echo2")};
  config.providers[1].endpoint = "http://other.test";
  for (auto& p : config.providers) p.circuit_breaker.failure_rate = 1.0;  // no breaker
  config.engine.claim_batch = 16;
  RunSummary s = RunOnce(config, 10ms, nullptr, second->get());
  ASSERT_EQ(s.providers.size(), 2u);
  int64_t retries = 0;
  for (const auto& p : s.providers) {
    EXPECT_EQ(p.ok, 200) << p.name;
    EXPECT_EQ(p.dead, 0) << p.name;
    retries += p.retries;
    EXPECT_EQ(Counts(p.name).done, 200) << p.name;
    EXPECT_EQ(Counts(p.name).pending + Counts(p.name).running, 0) << p.name;
  }
  EXPECT_EQ(retries, 50);  // every 8th of the 400 URLs failed once
  auto counts = store_->Counts();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(counts->edges, 400);
  // One thread, the engine's, both sent the requests and drove the client.
  EXPECT_EQ(http_.poll_threads().size(), 1u);
  EXPECT_EQ(http_.submit_threads(), http_.poll_threads());
  EXPECT_EQ(http_.poll_threads().count(std::this_thread::get_id()), 0u);
  EXPECT_GT(http_.wakes(), 0);
}

TEST_F(EngineTest, AttemptsExhaustedOrPermanentErrorsEndDead) {
  Ingest({"8.8.8.8", "1.1.1.1"});
  http_.respond = [](const HttpRequest& r) {
    return r.url.ends_with("8.8.8.8") ? Answer(500) : Answer(404);
  };
  EnrichdConfig config;
  config.providers = {Provider()};
  config.providers[0].circuit_breaker.min_calls = 10;
  RunSummary s = RunOnce(config);
  EXPECT_EQ(s.providers[0].dead, 2);
  EXPECT_EQ(Counts("echo").dead, 2);
  // 8.8.8.8: max_attempts calls; 1.1.1.1: one call (404 is not retried).
  int calls_888 = 0, calls_111 = 0;
  for (auto& [url, t] : http_.sent()) (url.ends_with("8.8.8.8") ? calls_888 : calls_111)++;
  EXPECT_EQ(calls_888, 3);
  EXPECT_EQ(calls_111, 1);
}

TEST_F(EngineTest, PrivateAndInvalidAddressesAreSkippedWithoutARequest) {
  Ingest({"8.8.8.8", "10.1.2.3", "192.168.0.1", "not-an-ip", "01.2.3.4"});
  EnrichdConfig config;
  config.providers = {Provider()};
  RunSummary s = RunOnce(config);
  EXPECT_EQ(s.providers[0].ok, 1);
  EXPECT_EQ(s.providers[0].skipped, 4);
  EXPECT_EQ(Counts("echo").skipped, 4);
  ASSERT_EQ(http_.sent().size(), 1u);
  EXPECT_TRUE(http_.sent()[0].first.ends_with("/8.8.8.8"));
}

TEST_F(EngineTest, TokenBucketPacesRequestsInsteadOfFailingThem) {
  std::vector<std::string> keys;
  for (int i = 1; i <= 30; ++i) keys.push_back("8.8.8." + std::to_string(i));
  Ingest(keys);
  EnrichdConfig config;
  config.providers = {Provider()};
  config.providers[0].rate_limit.per_second = 10;
  config.providers[0].rate_limit.burst = 5;
  RunSummary s = RunOnce(config, 5ms);
  EXPECT_EQ(s.providers[0].ok, 30);
  EXPECT_EQ(s.providers[0].dead, 0);
  // On the fake clock: never more than burst + rate * t in any window t.
  auto sent = http_.sent();
  ASSERT_EQ(sent.size(), 30u);
  for (size_t i = 0; i < sent.size(); ++i) {
    for (size_t j = i; j < sent.size(); ++j) {
      const double t = std::chrono::duration<double>(sent[j].second - sent[i].second).count();
      EXPECT_LE(static_cast<double>(j - i + 1), 5 + 10 * t + 1e-9) << "window " << i << ".." << j;
    }
  }
}

TEST_F(EngineTest, RetryAfterPausesTheWholeProvider) {
  std::vector<std::string> keys;
  for (int i = 1; i <= 8; ++i) keys.push_back("8.8.8." + std::to_string(i));
  Ingest(keys);
  std::atomic<int> n{0};
  http_.respond = [&](const HttpRequest&) {
    return ++n == 3 ? Answer(429, {{"retry-after", "5"}}) : Answer(200);
  };
  EnrichdConfig config;
  config.providers = {Provider()};
  config.providers[0].concurrency = 1;  // one at a time: the order is the arrival order
  RunSummary s = RunOnce(config);
  EXPECT_EQ(s.providers[0].ok, 8);
  EXPECT_EQ(s.providers[0].http_429, 1);
  auto sent = http_.sent();
  ASSERT_EQ(sent.size(), 9u);
  // Nothing was sent in the 5 s after the 429 (the third request).
  EXPECT_GE(sent[3].second - sent[2].second, 5s);
}

TEST_F(EngineTest, OpenBreakerStopsCallsUntilItsProbeSucceeds) {
  std::vector<std::string> keys;
  for (int i = 1; i <= 20; ++i) keys.push_back("8.8.8." + std::to_string(i));
  Ingest(keys);
  MonoTime outage_ends = clock_.Now() + 30s;
  http_.respond = [&](const HttpRequest&) {
    return clock_.Now() < outage_ends ? Answer(503) : Answer(200);
  };
  EnrichdConfig config;
  config.providers = {Provider()};
  config.providers[0].retry.max_attempts = 100;
  config.providers[0].retry.max_delay = 2s;
  RunSummary s = RunOnce(config, 20ms);
  EXPECT_EQ(s.providers[0].ok, 20);
  EXPECT_GE(s.providers[0].breaker_openings, 1);
  // While the provider was down, the breaker let through at most a window of calls plus
  // one probe per open period (10 s, jittered up to 12 s): far fewer than the retries.
  int during_outage = 0;
  for (auto& [url, t] : http_.sent()) during_outage += t < outage_ends;
  EXPECT_LE(during_outage, 10 + 4) << "calls while down";
}

TEST_F(EngineTest, RefusedCredentialsPauseTheProviderAndKeepItsTasksPending) {
  Ingest({"8.8.8.8", "1.1.1.1", "9.9.9.9"});
  http_.respond = [](const HttpRequest&) { return Answer(401); };
  EnrichdConfig config;
  config.providers = {Provider("locked"), Provider("open")};
  config.providers[1].endpoint = "http://open.test";
  http_.respond = [](const HttpRequest& r) {
    return r.url.starts_with("http://provider.test") ? Answer(401) : Answer(200);
  };
  std::vector<std::string> alerts;
  RunSummary s = RunOnce(config, 10ms, &alerts);
  EXPECT_TRUE(s.providers[0].auth_failed);
  EXPECT_EQ(s.providers[1].ok, 3);
  EXPECT_EQ(Counts("locked").pending, 3);
  EXPECT_EQ(Counts("locked").dead, 0);
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_NE(alerts[0].find("credentials refused"), std::string::npos);
}

TEST_F(EngineTest, EnrichNowUsesTheSameRuntimeWithoutAStore) {
  EnrichdConfig config;
  config.providers = {Provider()};
  auto engine = Engine::Create(config, {.http = &http_, .clock = &clock_, .registry = &registry_});
  ASSERT_TRUE(engine.ok()) << engine.status();
  auto item = Item::Make("ip", "8.8.8.8");
  ASSERT_TRUE(item.ok());
  EnrichmentResult r = (*engine)->EnrichNow("echo", *item).get();
  EXPECT_EQ(r.outcome, Outcome::kOk);
  EXPECT_EQ(r.data_json, R"({"asn":64500})");
  auto priv = Item::Make("ip", "10.0.0.1");
  EXPECT_EQ((*engine)->EnrichNow("echo", *priv).get().outcome, Outcome::kSkipped);
  EXPECT_EQ((*engine)->EnrichNow("nope", *item).get().outcome, Outcome::kPermanent);
  EXPECT_EQ(http_.sent().size(), 1u);
}

TEST_F(EngineTest, StopReturnsUnfinishedWorkToPending) {
  std::vector<std::string> keys;
  for (int i = 1; i <= 50; ++i) keys.push_back("8.8.8." + std::to_string(i));
  Ingest(keys);
  EnrichdConfig config;
  config.providers = {Provider()};
  config.providers[0].rate_limit.per_second = 1;  // slow: most work is still queued
  config.providers[0].rate_limit.burst = 1;
  auto engine = Engine::Create(config, {.http = &http_, .clock = &clock_, .registry = &registry_});
  ASSERT_TRUE(engine.ok());
  std::thread stopper([&] {
    while (http_.sent().size() < 3) std::this_thread::sleep_for(1ms), clock_.Advance(100ms);
    (*engine)->Stop();
  });
  RunOptions options;
  options.once = true;
  auto s = (*engine)->Run(*store_, options);
  stopper.join();
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE(s->interrupted);
  ProviderCounts c = Counts("echo");
  EXPECT_EQ(c.running, 0);
  EXPECT_EQ(c.done + c.pending, 50);
  EXPECT_GE(c.done, 3);
}

}  // namespace
}  // namespace enrichd

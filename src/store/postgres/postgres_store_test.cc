// PostgreSQL-specific tests of the GraphStore backend, plus the shared conformance suite
// (postgres_conformance_test.cc). Needs a server: ENRICHD_TEST_PG_URL (see
// scripts/pg-test-server.sh); without it every server test reports SKIPPED. Each test
// works in its own fresh schema. The URL tests that need no server always run.
#include "store/postgres/postgres_store.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "enrichd/clock.h"
#include "enrichd/graph_store.h"
#include "store/postgres/migrations.h"
#include "store/postgres/pg_connection.h"
#include "store/postgres/pg_test_util.h"

namespace enrichd {
namespace {

using pg::TestSchema;

// n distinct "ip" source nodes: prefix + "a.b" (e.g. "10.1." -> 10.1.0.0 ... 10.1.3.231).
std::vector<SourceNode> IpNodes(const std::string& prefix, int n) {
  std::vector<SourceNode> nodes;
  for (int i = 0; i < n; ++i) {
    nodes.push_back({"ip", prefix + std::to_string(i / 256) + "." + std::to_string(i % 256)});
  }
  return nodes;
}

class PostgresStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = pg::TestServerUrl();
    if (server_.empty()) GTEST_SKIP() << "ENRICHD_TEST_PG_URL is not set";
    auto schema = TestSchema::Create(server_);
    ASSERT_TRUE(schema.ok()) << schema.status();
    schema_ = std::move(schema).value();
  }

  std::unique_ptr<GraphStore> Open() {
    auto store = OpenPostgresStore(schema_->url());
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? std::move(store).value() : nullptr;
  }

  int64_t Scalar(const std::string& sql) {
    auto r = schema_->admin().Exec(sql);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() && r->rows() > 0 ? r->Int(0, 0) : -1;
  }

  std::string server_;
  std::unique_ptr<TestSchema> schema_;
  FakeClock clock_;
};

TEST_F(PostgresStoreTest, OpenAppliesEveryEmbeddedMigrationOnce) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  const auto migrations = pg::Migrations();
  ASSERT_FALSE(migrations.empty());
  const std::string s = schema_->name();
  EXPECT_EQ(Scalar("SELECT max(version) FROM " + s + ".schema_version"), migrations.back().version);
  EXPECT_EQ(Scalar("SELECT count(*) FROM " + s + ".schema_version"),
            static_cast<int64_t>(migrations.size()));
  for (const char* table : {"nodes", "edges", "tasks"}) {
    EXPECT_EQ(Scalar("SELECT count(*) FROM pg_tables WHERE schemaname = '" + s +
                     "' AND tablename = '" + table + "'"),
              1)
        << table;
  }
  // Claims read the queue table in (provider slot, next_attempt_at, first id) order.
  EXPECT_EQ(Scalar("SELECT count(*) FROM pg_indexes WHERE schemaname = '" + s +
                   "' AND tablename = 'task_queue' AND indexdef LIKE "
                   "'%(slot, next_attempt_at, first_id)%'"),
            1);
  // No index of tasks names a column a claim or completion changes (status included, as
  // a partial index predicate would), so those updates can be HOT.
  EXPECT_EQ(Scalar("SELECT count(*) FROM pg_indexes WHERE schemaname = '" + s +
                   "' AND tablename = 'tasks' AND (indexdef ~ '(status|lease|attempt|expires|"
                   "claim_seq|updated_at|last_error)')"),
            0);
}

TEST_F(PostgresStoreTest, ConcurrentOpenersMigrateOnce) {
  constexpr int kOpeners = 4;
  std::vector<std::thread> threads;
  std::vector<Status> results(kOpeners);
  for (int i = 0; i < kOpeners; ++i) {
    threads.emplace_back([&, i] { results[i] = OpenPostgresStore(schema_->url()).status(); });
  }
  for (auto& t : threads) t.join();
  for (const Status& s : results) EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(Scalar("SELECT count(*) FROM " + schema_->name() + ".schema_version"),
            static_cast<int64_t>(pg::Migrations().size()));
}

TEST_F(PostgresStoreTest, NewerSchemaIsRefused) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(schema_->admin()
                  .Exec("INSERT INTO " + schema_->name() +
                        ".schema_version (version, name) VALUES (9999, 'from the future')")
                  .ok());
  Status migrate = store->Migrate();
  EXPECT_EQ(migrate.code(), StatusCode::kFailedPrecondition) << migrate;
  auto reopened = OpenPostgresStore(schema_->url());
  ASSERT_FALSE(reopened.ok());
  EXPECT_EQ(reopened.status().code(), StatusCode::kFailedPrecondition) << reopened.status();
  EXPECT_NE(reopened.status().message().find("9999"), std::string::npos) << reopened.status();
}

TEST_F(PostgresStoreTest, SchemaThatDoesNotExistIsAFailedPrecondition) {
  auto store = OpenPostgresStore(pg::UrlWithSchema(server_, "enrichd_no_such_schema_x"));
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kFailedPrecondition) << store.status();
}

TEST_F(PostgresStoreTest, ReconnectsAfterTheServerDropsTheConnection) {
  const std::string app = "enrichd_" + schema_->name();
  auto opened = OpenPostgresStore(schema_->url() + "&application_name=" + app);
  ASSERT_TRUE(opened.ok()) << opened.status();
  auto store = std::move(opened).value();
  ASSERT_TRUE(store->UpsertSourceNodes(std::vector<SourceNode>{{"ip", "8.8.8.8", "{}"}}).ok());
  // The server drops the store's session (admin shutdown, failover, idle timeout...).
  ASSERT_TRUE(schema_->admin()
                  .Exec("SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                        "WHERE application_name = '" +
                        app + "'")
                  .ok());
  // The call that finds the connection gone fails as retryable; the next one reconnects.
  auto first = store->Counts();
  ASSERT_FALSE(first.ok());
  EXPECT_EQ(first.status().code(), StatusCode::kUnavailable) << first.status();
  auto second = store->Counts();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->nodes, 1);
}

TEST_F(PostgresStoreTest, ExportedPropsAreCompactWithSortedKeys) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store
                  ->UpsertSourceNodes(std::vector<SourceNode>{
                      {"ip", "8.8.8.8", R"({"zeta": 1, "alpha": {"b": [1, 2.5], "a": "é"}})"}})
                  .ok());
  auto view = store->GetNode("ip", "8.8.8.8");
  ASSERT_TRUE(view.ok() && view->has_value());
  EXPECT_EQ((*view)->node.props_json, R"({"alpha":{"a":"é","b":[1,2.5]},"zeta":1})");
}

TEST_F(PostgresStoreTest, KeysWithQuotesBackslashesAndTabsRoundTrip) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  const std::string odd = "a\"b\\c\td\ne,f{g}";
  auto stats = store->UpsertSourceNodes(std::vector<SourceNode>{{"domain", odd, "{}"}});
  ASSERT_TRUE(stats.ok()) << stats.status();
  ASSERT_TRUE(
      store->PlanDueTasks(std::vector<ProviderPlan>{{"whois", {"domain"}}}, clock_.WallNow()).ok());
  ClaimRequest request;
  request.lease_owner = "w\"1";
  request.providers = {"who\"is", "whois"};
  request.now = clock_.WallNow();
  auto claimed = store->ClaimTasks(request);
  ASSERT_TRUE(claimed.ok()) << claimed.status();
  ASSERT_EQ(claimed->size(), 1u);
  EXPECT_EQ((*claimed)[0].key, odd);
  auto view = store->GetNode("domain", odd);
  ASSERT_TRUE(view.ok() && view->has_value());
  EXPECT_EQ((*view)->node.key, odd);
}

// A fresh store object starts out copying batches straight into nodes; a batch that
// holds keys already stored (by another store object) is redone with the check, and the
// counts and the first-stored props stay right.
TEST_F(PostgresStoreTest, IngestIntoAPopulatedGraphCountsExistingKeys) {
  auto first = Open();
  ASSERT_NE(first, nullptr);
  auto stats = first->UpsertSourceNodes(
      std::vector<SourceNode>{{"ip", "10.0.0.2", R"({"v":1})"}, {"ip", "10.0.0.4", "{}"}});
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->added, 2);

  auto second = Open();
  ASSERT_NE(second, nullptr);
  stats = second->UpsertSourceNodes(std::vector<SourceNode>{{"ip", "10.0.0.3", "{}"},
                                                            {"ip", "10.0.0.2", R"({"v":2})"},
                                                            {"ip", "10.0.0.1", "{}"},
                                                            {"ip", "10.0.0.3", "{}"}});
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->added, 2);     // .1 and .3
  EXPECT_EQ(stats->existing, 2);  // .2, and the repeated .3
  // All new again: counted as such on the checked path too.
  stats = second->UpsertSourceNodes(std::vector<SourceNode>{{"ip", "10.0.0.5", "{}"}});
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->added, 1);
  EXPECT_EQ(stats->existing, 0);

  const std::string s = schema_->name();
  EXPECT_EQ(Scalar("SELECT count(*) FROM " + s + ".nodes"), 5);
  EXPECT_EQ(Scalar("SELECT (props->>'v')::int FROM " + s + ".nodes WHERE key = '10.0.0.2'"), 1);
}

// One store object ingesting batches that repeat keys of its own earlier batches (looked
// up through its filter of stored keys) and, later, a key another object stored (the
// unchecked copy fails, the batch is redone with every key looked up).
TEST_F(PostgresStoreTest, IngestCountsRepeatsOfEarlierBatchesAndOfOtherIngesters) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  auto stats = store->UpsertSourceNodes(
      std::vector<SourceNode>{{"ip", "10.0.0.1", R"({"v":1})"}, {"ip", "10.0.0.2", "{}"}});
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->added, 2);
  stats = store->UpsertSourceNodes(std::vector<SourceNode>{
      {"ip", "10.0.0.3", "{}"}, {"ip", "10.0.0.1", R"({"v":2})"}, {"domain", "10.0.0.1", "{}"}});
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->added, 2);  // .3, and the same key under another label
  EXPECT_EQ(stats->existing, 1);

  auto other = Open();
  ASSERT_NE(other, nullptr);
  ASSERT_TRUE(other->UpsertSourceNodes(std::vector<SourceNode>{{"ip", "10.0.0.9", "{}"}}).ok());
  stats = store->UpsertSourceNodes(std::vector<SourceNode>{
      {"ip", "10.0.0.9", "{}"}, {"ip", "10.0.0.2", "{}"}, {"ip", "10.0.0.4", "{}"}});
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->added, 1);
  EXPECT_EQ(stats->existing, 2);
  stats = store->UpsertSourceNodes(std::vector<SourceNode>{{"ip", "10.0.0.5", "{}"}});
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->added, 1);

  const std::string s = schema_->name();
  EXPECT_EQ(Scalar("SELECT count(*) FROM " + s + ".nodes"), 7);
  EXPECT_EQ(Scalar("SELECT (props->>'v')::int FROM " + s +
                   ".nodes WHERE label = 'ip' AND key = '10.0.0.1'"),
            1);
}

// Within a batch, node ids follow the (label, key) order, compared bytewise.
TEST_F(PostgresStoreTest, IngestAssignsIdsInLabelKeyOrder) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  auto stats =
      store->UpsertSourceNodes(std::vector<SourceNode>{{"ip", "9.9.9.9", "{}"},
                                                       {"domain", "b.example", "{}"},
                                                       {"ip", "10.0.0.1", "{}"},
                                                       {"ip", "Z", "{}"},
                                                       {"ip", "2001:db8:0:0:0:0:0:2", "{}"},
                                                       {"ip", "2001:db8:0:0:0:0:0:10", "{}"},
                                                       {"domain", "a.example", "{}"}});
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->added, 7);
  auto r = schema_->admin().Exec("SELECT string_agg(label || ':' || key, ' ' ORDER BY id) FROM " +
                                 schema_->name() + ".nodes");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->Text(0, 0),
            "domain:a.example domain:b.example ip:10.0.0.1 ip:2001:db8:0:0:0:0:0:10 "
            "ip:2001:db8:0:0:0:0:0:2 ip:9.9.9.9 ip:Z");
}

// Three ingesters adding the same keys at the same time: every key stored once, and
// each key counted as added by exactly one of them.
TEST_F(PostgresStoreTest, ConcurrentIngestersAddEachKeyOnce) {
  constexpr int kKeys = 3000;
  constexpr int kIngesters = 3;
  std::vector<int64_t> added(kIngesters, 0);
  std::vector<std::string> errors(kIngesters);
  std::vector<std::thread> threads;
  for (int w = 0; w < kIngesters; ++w) {
    threads.emplace_back([&, w] {
      auto opened = OpenPostgresStore(schema_->url());
      if (!opened.ok()) {
        errors[w] = opened.status().ToString();
        return;
      }
      // All walk the same keys in batches of 250, one of them from the other end.
      for (int start = 0; start < kKeys; start += 250) {
        std::vector<SourceNode> batch;
        for (int i = start; i < start + 250; ++i) {
          const int k = w < 2 ? i : kKeys - 1 - i;
          batch.push_back(
              {"ip", "10.2." + std::to_string(k / 256) + "." + std::to_string(k % 256)});
        }
        auto stats = (*opened)->UpsertSourceNodes(batch);
        if (!stats.ok()) {
          errors[w] = stats.status().ToString();
          return;
        }
        if (stats->added + stats->existing != 250) errors[w] = "counts do not add up";
        added[w] += stats->added;
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int w = 0; w < kIngesters; ++w) EXPECT_EQ(errors[w], "") << "ingester " << w;
  EXPECT_EQ(added[0] + added[1] + added[2], kKeys);
  EXPECT_EQ(Scalar("SELECT count(*) FROM " + schema_->name() + ".nodes"), kKeys);
}

// A key another session inserts between our lookup of existing keys and our copy: the
// copy waits for that session, fails on its key once it commits, and the batch is
// inserted skipping the conflict.
TEST_F(PostgresStoreTest, IngestSkipsAKeyCommittedConcurrentlyAfterTheLookup) {
  auto opened = OpenPostgresStore(schema_->url() + "&application_name=enrichd_racer");
  ASSERT_TRUE(opened.ok()) << opened.status();
  GraphStore& store = **opened;
  ASSERT_TRUE(store.UpsertSourceNodes(std::vector<SourceNode>{{"ip", "10.0.0.1"}}).ok());
  // A batch with an existing key: from now on this store looks keys up before copying.
  auto stats =
      store.UpsertSourceNodes(std::vector<SourceNode>{{"ip", "10.0.0.1"}, {"ip", "10.0.0.2"}});
  ASSERT_TRUE(stats.ok()) << stats.status();
  ASSERT_EQ(stats->added, 1);

  pg::Connection& other = schema_->admin();
  ASSERT_TRUE(other.Begin().ok());
  ASSERT_TRUE(
      other.Exec("INSERT INTO " + schema_->name() + ".nodes (label, key) VALUES ('ip', '10.0.0.3')")
          .ok());
  Result<UpsertStats> racing = UpsertStats{};
  std::thread ingester([&] {
    racing =
        store.UpsertSourceNodes(std::vector<SourceNode>{{"ip", "10.0.0.3"}, {"ip", "10.0.0.4"}});
  });
  // Commit once the ingester waits for our uncommitted key (or gave up waiting: 10 s).
  bool waiting = false;
  for (int i = 0; i < 1000 && !waiting; ++i) {
    auto r = other.Exec(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'enrichd_racer' "
        "AND wait_event_type = 'Lock'");
    waiting = r.ok() && r->Int(0, 0) > 0;
    if (!waiting) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(other.Commit().ok());
  ingester.join();
  EXPECT_TRUE(waiting) << "the ingester never waited for the other session's key";
  ASSERT_TRUE(racing.ok()) << racing.status();
  EXPECT_EQ(racing->added, 1);
  EXPECT_EQ(racing->existing, 1);
  EXPECT_EQ(Scalar("SELECT count(*) FROM " + schema_->name() + ".nodes"), 4);
}

// Four workers, each with its own connection, drain 2,000 tasks in batches.
TEST_F(PostgresStoreTest, FourConnectionsClaimAndCompleteEveryTaskExactlyOnce) {
  constexpr int kNodes = 1000;
  constexpr int kWorkers = 4;
  auto store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->UpsertSourceNodes(IpNodes("10.1.", kNodes)).ok());
  auto planned = store->PlanDueTasks(std::vector<ProviderPlan>{{"asn", {"ip"}}, {"geo", {"ip"}}},
                                     clock_.WallNow());
  ASSERT_TRUE(planned.ok()) << planned.status();
  ASSERT_EQ(*planned, 2 * kNodes);

  std::vector<std::vector<int64_t>> claimed(kWorkers);
  std::vector<int64_t> applied(kWorkers, 0);
  std::vector<std::string> errors(kWorkers);
  const WallTime now = clock_.WallNow();
  std::vector<std::thread> threads;
  for (int w = 0; w < kWorkers; ++w) {
    threads.emplace_back([&, w] {
      auto opened = OpenPostgresStore(schema_->url());
      if (!opened.ok()) {
        errors[w] = opened.status().ToString();
        return;
      }
      GraphStore& mine = **opened;
      for (;;) {
        ClaimRequest request;
        request.max_tasks = 37;
        request.lease_owner = "worker-" + std::to_string(w);
        request.now = now;
        auto batch = mine.ClaimTasks(request);
        if (!batch.ok()) {
          errors[w] = batch.status().ToString();
          return;
        }
        if (batch->empty()) return;
        std::vector<TaskCompletion> completions;
        for (const ClaimedTask& t : *batch) {
          claimed[w].push_back(t.task_id);
          TaskCompletion c;
          c.task_id = t.task_id;
          c.claim_seq = t.claim_seq;
          c.provider = t.provider;
          c.result.outcome = Outcome::kOk;
          c.result.kind = t.provider;
          c.result.data_json = R"({"worker":)" + std::to_string(w) + "}";
          c.result.provenance.fetched_at = now;
          c.result.provenance.expires_at = now + std::chrono::hours(1);
          c.result.provenance.attempts = t.attempts + 1;
          completions.push_back(std::move(c));
        }
        // Completing twice (a retried write) must not add anything.
        auto done = mine.CompleteTasks(completions);
        auto again = mine.CompleteTasks(completions);
        if (!done.ok() || !again.ok()) {
          errors[w] = (done.ok() ? again.status() : done.status()).ToString();
          return;
        }
        if (*again != 0) errors[w] = "second completion applied " + std::to_string(*again);
        applied[w] += *done;
      }
    });
  }
  for (auto& t : threads) t.join();

  std::set<int64_t> seen;
  int64_t total_applied = 0;
  int busy_workers = 0;
  for (int w = 0; w < kWorkers; ++w) {
    EXPECT_EQ(errors[w], "") << "worker " << w;
    EXPECT_EQ(applied[w], static_cast<int64_t>(claimed[w].size())) << "worker " << w;
    total_applied += applied[w];
    busy_workers += claimed[w].empty() ? 0 : 1;
    for (int64_t id : claimed[w]) EXPECT_TRUE(seen.insert(id).second) << "claimed twice: " << id;
  }
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(2 * kNodes));
  EXPECT_EQ(total_applied, 2 * kNodes);
  EXPECT_GE(busy_workers, 2);  // the work was actually shared

  const std::string s = schema_->name();
  // Exactly one enrichment (and edge) per (node, provider).
  EXPECT_EQ(Scalar("SELECT count(*) FROM " + s + ".nodes WHERE label = 'enrichment'"), 2 * kNodes);
  EXPECT_EQ(Scalar("SELECT count(*) FROM (SELECT src, props->>'provider' FROM " + s +
                   ".edges GROUP BY 1, 2) g"),
            2 * kNodes);
  EXPECT_EQ(Scalar("SELECT count(*) FROM " + s + ".tasks WHERE status = 'done' AND attempts = 1"),
            2 * kNodes);
}

// A database at schema version 2 (as the previous release left it, with tasks in every
// state) is upgraded in place on open: its data stays, and each task carries on from its
// state through the new queue tables.
TEST_F(PostgresStoreTest, UpgradesAVersion2DatabaseInPlace) {
  const auto migrations = pg::Migrations();
  ASSERT_GE(migrations.size(), 3u);
  ASSERT_EQ(migrations[1].version, 2);
  const std::string s = schema_->name();
  pg::Connection& admin = schema_->admin();
  auto exec = [&](const std::string& sql) {
    auto r = admin.Exec(sql);
    ASSERT_TRUE(r.ok()) << r.status() << "\n" << sql;
  };
  exec("SET search_path = " + s);
  exec(migrations[0].sql);
  exec(migrations[1].sql);
  exec(
      "CREATE TABLE schema_version (version integer PRIMARY KEY, name text NOT NULL, "
      "applied_at timestamptz NOT NULL DEFAULT now()); "
      "INSERT INTO schema_version (version, name) VALUES (1, 'a'), (2, 'b')");
  const int64_t now = ToUnixMillis(clock_.WallNow());
  const std::string n = std::to_string(now);
  // Nodes 1-5 (ip), an enrichment node 6 answering node 4's asn task, its edge.
  exec(
      "INSERT INTO nodes (id, label, key) SELECT g, 'ip', '10.9.0.' || g "
      "FROM generate_series(1, 5) g");
  exec(
      "INSERT INTO nodes (id, label, key, props) VALUES (6, 'enrichment', 'asn/4/1', "
      "'{\"provider\": \"asn\", \"status\": \"ok\"}')");
  exec(
      "INSERT INTO edges (type, src, dst, props) VALUES ('ENRICHED_BY', 4, 6, "
      "'{\"provider\": \"asn\", \"fetched_at\": \"x\"}')");
  exec("SELECT setval('nodes_id_seq', 6)");
  // asn tasks: node 1 pending, 2 running (lease expired by now + 1 s), 3 running under a
  // lease far ahead, 4 done (expired at now + 5 s), 5 dead.
  exec(
      "INSERT INTO tasks (node_id, provider, status, attempts, next_attempt_at, lease_owner, "
      "lease_expires_at, claim_seq, expires_at, updated_at) VALUES "
      "(1, 'asn', 'pending', 0, " +
      n + ", NULL, NULL, 0, NULL, " + n +
      "), "
      "(2, 'asn', 'running', 0, " +
      n + ", 'old', " + std::to_string(now + 500) + ", 1, NULL, " + n +
      "), "
      "(3, 'asn', 'running', 0, " +
      n + ", 'old', " + std::to_string(now + 3600000) + ", 1, NULL, " + n +
      "), "
      "(4, 'asn', 'done', 1, " +
      n + ", NULL, NULL, 1, " + std::to_string(now + 5000) + ", " + n +
      "), "
      "(5, 'asn', 'dead', 3, " +
      n + ", NULL, NULL, 3, NULL, " + n + "), (3, 'geo', 'pending', 0, " + n +
      ", NULL, NULL, 0, NULL, " + n + ")");
  exec("RESET search_path");

  auto store = Open();  // migrates
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(Scalar("SELECT max(version) FROM " + s + ".schema_version"), migrations.back().version);
  auto counts = store->Counts();
  ASSERT_TRUE(counts.ok()) << counts.status();
  EXPECT_EQ(counts->nodes, 6);
  EXPECT_EQ(counts->edges, 1);
  const ProviderCounts asn = counts->providers["asn"];
  EXPECT_EQ(asn.pending, 1);
  EXPECT_EQ(asn.running, 2);
  EXPECT_EQ(asn.done, 1);
  EXPECT_EQ(asn.dead, 1);
  EXPECT_EQ(counts->providers["geo"].pending, 1);
  auto view = store->GetNode("ip", "10.9.0.4");
  ASSERT_TRUE(view.ok() && view->has_value());
  ASSERT_EQ((*view)->enrichments.size(), 1u);
  EXPECT_EQ((*view)->enrichments[0].id, 6);

  // The pending tasks are claimed (and only they: the running ones are leased).
  ClaimRequest request;
  request.lease_owner = "new";
  request.now = clock_.WallNow();
  auto claimed = store->ClaimTasks(request);
  ASSERT_TRUE(claimed.ok()) << claimed.status();
  ASSERT_EQ(claimed->size(), 2u);
  std::set<std::pair<std::string, std::string>> pending;
  for (const ClaimedTask& t : *claimed) pending.insert({t.provider, t.key});
  EXPECT_EQ(pending, (std::set<std::pair<std::string, std::string>>{{"asn", "10.9.0.1"},
                                                                    {"geo", "10.9.0.3"}}));
  // Releasing the old owner's leases returns both of its tasks.
  auto released = store->ReleaseLeases("old");
  ASSERT_TRUE(released.ok()) << released.status();
  EXPECT_EQ(*released, 2);
  // Ten seconds on, the answer of node 4 expired: planning refreshes it.
  clock_.Advance(std::chrono::seconds(10));
  auto planned = store->PlanDueTasks(std::vector<ProviderPlan>{{"asn", {"ip"}}}, clock_.WallNow());
  ASSERT_TRUE(planned.ok()) << planned.status();
  EXPECT_EQ(*planned, 1);
  auto dead = store->Requeue({.provider = std::nullopt, .dead = true}, clock_.WallNow());
  ASSERT_TRUE(dead.ok()) << dead.status();
  EXPECT_EQ(*dead, 1);
  request.now = clock_.WallNow();
  claimed = store->ClaimTasks(request);
  ASSERT_TRUE(claimed.ok()) << claimed.status();
  std::set<std::string> keys;
  for (const ClaimedTask& t : *claimed) keys.insert(t.key);
  EXPECT_EQ(keys, (std::set<std::string>{"10.9.0.2", "10.9.0.3", "10.9.0.4", "10.9.0.5"}));
}

// A lease that was renewed past the earliest expiry of its batch is not reclaimed then,
// but still is once the renewed lease expires.
TEST_F(PostgresStoreTest, ReclaimHonoursRenewedLeasesOfABatch) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store
                  ->UpsertSourceNodes(
                      std::vector<SourceNode>{{"ip", "10.8.0.1", "{}"}, {"ip", "10.8.0.2", "{}"}})
                  .ok());
  ASSERT_TRUE(
      store->PlanDueTasks(std::vector<ProviderPlan>{{"asn", {"ip"}}}, clock_.WallNow()).ok());
  ClaimRequest request;
  request.lease_owner = "w";
  request.now = clock_.WallNow();
  request.lease_for = std::chrono::seconds(30);
  auto claimed = store->ClaimTasks(request);
  ASSERT_TRUE(claimed.ok()) << claimed.status();
  ASSERT_EQ(claimed->size(), 2u);
  // Only the first task's lease is renewed, to 90 s.
  const int64_t renewed_id = (*claimed)[0].task_id;
  auto renewed = store->RenewLeases("w", std::vector<int64_t>{renewed_id},
                                    clock_.WallNow() + std::chrono::seconds(90));
  ASSERT_TRUE(renewed.ok() && *renewed == 1);
  clock_.Advance(std::chrono::seconds(60));
  auto reclaimed = store->ReclaimExpiredLeases(clock_.WallNow());
  ASSERT_TRUE(reclaimed.ok()) << reclaimed.status();
  EXPECT_EQ(*reclaimed, 1);
  reclaimed = store->ReclaimExpiredLeases(clock_.WallNow());
  ASSERT_TRUE(reclaimed.ok());
  EXPECT_EQ(*reclaimed, 0);
  clock_.Advance(std::chrono::seconds(60));
  reclaimed = store->ReclaimExpiredLeases(clock_.WallNow());
  ASSERT_TRUE(reclaimed.ok()) << reclaimed.status();
  EXPECT_EQ(*reclaimed, 1);
  auto counts = store->Counts();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(counts->providers["asn"].pending, 2);
  EXPECT_EQ(counts->providers["asn"].running, 0);
}

// Completion props are written as JSON text by the store itself: bytes that are not
// UTF-8 in a provenance string become U+FFFD (the server refuses such text), and data
// that is not exactly one JSON object is refused before anything is written.
TEST_F(PostgresStoreTest, CompletionPropsReplaceInvalidUtf8AndRefuseDataThatIsNoObject) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->UpsertSourceNodes(std::vector<SourceNode>{{"ip", "10.7.0.1", "{}"}}).ok());
  ASSERT_TRUE(
      store->PlanDueTasks(std::vector<ProviderPlan>{{"asn", {"ip"}}}, clock_.WallNow()).ok());
  ClaimRequest request;
  request.lease_owner = "w";
  request.now = clock_.WallNow();
  auto claimed = store->ClaimTasks(request);
  ASSERT_TRUE(claimed.ok() && claimed->size() == 1u);
  TaskCompletion c;
  c.task_id = (*claimed)[0].task_id;
  c.claim_seq = (*claimed)[0].claim_seq;
  c.provider = "asn";
  c.result.outcome = Outcome::kOk;
  c.result.kind = "asn";
  c.result.provenance.fetched_at = clock_.WallNow();
  c.result.provenance.expires_at = clock_.WallNow() + std::chrono::hours(1);
  for (const char* bad : {"[1, 2]", "{\"a\": 1} {\"b\": 2}", "{\"a\": }", "  "}) {
    c.result.data_json = bad;
    auto done = store->CompleteTasks(std::vector<TaskCompletion>{c});
    EXPECT_EQ(done.status().code(), StatusCode::kInvalidArgument) << bad;
  }
  c.result.data_json = R"({"org": "x"})";
  c.result.provenance.endpoint = std::string(
      "http://127.0.0.1/a\xff"
      "b\xc3");
  c.result.provenance.adapter = "caf\xc3\xa9";
  auto done = store->CompleteTasks(std::vector<TaskCompletion>{c});
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(*done, 1);
  auto view = store->GetNode("ip", "10.7.0.1");
  ASSERT_TRUE(view.ok() && view->has_value());
  ASSERT_EQ((*view)->enrichments.size(), 1u);
  auto props = nlohmann::json::parse((*view)->enrichments[0].props_json);
  EXPECT_EQ(props["endpoint"],
            "http://127.0.0.1/a\xef\xbf\xbd"
            "b\xef\xbf\xbd");
  EXPECT_EQ(props["adapter"], "caf\xc3\xa9");
  EXPECT_EQ(props["data"]["org"], "x");
  EXPECT_EQ(props["provider"], "asn");
}

// Planners in three store objects at once (each also planning on its second
// connection): every (node, provider) gets exactly one task, whoever numbered the
// providers or copied first, and the planned counts add up.
TEST_F(PostgresStoreTest, ConcurrentPlannersCreateEachTaskOnce) {
  constexpr int kNodes = 3000;
  constexpr int kPlanners = 3;
  auto store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->UpsertSourceNodes(IpNodes("10.2.", kNodes)).ok());
  const std::vector<ProviderPlan> plans = {{"asn", {"ip"}}, {"geo", {"ip"}}, {"rdap", {"ip"}}};
  std::vector<int64_t> planned(kPlanners, 0);
  std::vector<std::string> errors(kPlanners);
  std::vector<std::unique_ptr<GraphStore>> planners;
  for (int i = 0; i < kPlanners; ++i) {
    planners.push_back(Open());
    ASSERT_NE(planners.back(), nullptr);
  }
  std::vector<std::thread> threads;
  for (int i = 0; i < kPlanners; ++i) {
    threads.emplace_back([&, i] {
      auto r = planners[i]->PlanDueTasks(plans, clock_.WallNow());
      if (r.ok()) {
        planned[i] = *r;
      } else {
        errors[i] = r.status().ToString();
      }
    });
  }
  for (auto& t : threads) t.join();
  int64_t total = 0;
  for (int i = 0; i < kPlanners; ++i) {
    EXPECT_EQ(errors[i], "") << "planner " << i;
    total += planned[i];
  }
  EXPECT_EQ(total, 3 * kNodes);
  const std::string s = schema_->name();
  EXPECT_EQ(Scalar("SELECT count(*) FROM " + s + ".tasks"), 3 * kNodes);
  EXPECT_EQ(
      Scalar("SELECT count(*) FROM (SELECT DISTINCT provider, node_id FROM " + s + ".tasks) d"),
      3 * kNodes);
  EXPECT_EQ(Scalar("SELECT count(*) FROM " + s + ".providers"), 3);
  // Every task is queued exactly once: claiming drains them all.
  ClaimRequest request;
  request.lease_owner = "w";
  request.now = clock_.WallNow();
  request.max_tasks = 1000;
  std::set<int64_t> seen;
  for (;;) {
    auto claimed = store->ClaimTasks(request);
    ASSERT_TRUE(claimed.ok()) << claimed.status();
    if (claimed->empty()) break;
    for (const ClaimedTask& t : *claimed) EXPECT_TRUE(seen.insert(t.task_id).second);
  }
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(3 * kNodes));
}

// ---- no server needed ------------------------------------------------------------------

TEST(PostgresUrlTest, UnreachableServerIsUnavailableAndNamesHostPortButNotThePassword) {
  // Port 1 on loopback: nothing listens there.
  auto store = OpenPostgresStore("postgresql://enrichd:s3cr3t-pw@127.0.0.1:1/enrichd");
  ASSERT_FALSE(store.ok());
  const Status& s = store.status();
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s;
  EXPECT_NE(s.message().find("127.0.0.1:1"), std::string::npos) << s;
  EXPECT_EQ(s.message().find("s3cr3t-pw"), std::string::npos) << s;
  EXPECT_EQ(s.message().find('\n'), std::string::npos) << s;
}

TEST(PostgresUrlTest, MalformedUrlIsInvalidArgumentWithoutThePassword) {
  auto store = OpenPostgresStore("postgresql://u:s3cr3t-pw@[::1/db");
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kInvalidArgument) << store.status();
  EXPECT_EQ(store.status().message().find("s3cr3t-pw"), std::string::npos) << store.status();
}

TEST(PostgresUrlTest, RedactUrlHidesPasswords) {
  EXPECT_EQ(pg::RedactUrl("postgresql://u:pw@h:5432/db"), "postgresql://u:***@h:5432/db");
  EXPECT_EQ(pg::RedactUrl("postgres://u@h/db"), "postgres://u@h/db");
  EXPECT_EQ(pg::RedactUrl("postgresql://h/db?sslmode=require&password=pw&x=1"),
            "postgresql://h/db?sslmode=require&password=***&x=1");
  EXPECT_EQ(pg::RedactUrl("postgresql://u:p%40ss@h/db?password=pw"),
            "postgresql://u:***@h/db?password=***");
  EXPECT_EQ(pg::RedactUrl("postgresql:///db"), "postgresql:///db");
}

}  // namespace
}  // namespace enrichd

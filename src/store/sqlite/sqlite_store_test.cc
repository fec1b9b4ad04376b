#include "store/sqlite/sqlite_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>

#include "enrichd/graph_store.h"
#include "store/conformance/graph_store_conformance.h"
#include "store/sqlite/sqlite_migrations.h"

namespace enrichd {
namespace {

namespace fs = std::filesystem;

// A fresh temporary directory, removed with everything in it at destruction.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "enrichd-sqlite-XXXXXX").string();
    char* made = mkdtemp(pattern.data());
    if (made == nullptr) {
      ADD_FAILURE() << "mkdtemp failed";
    } else {
      path_ = made;
    }
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string File(const std::string& name) const { return (fs::path(path_) / name).string(); }

 private:
  std::string path_;
};

// The current test's database. A function-local static, so that the last temp dir is
// removed at exit (gtest never destroys its parameter values).
struct SqliteBackendState {
  std::unique_ptr<TempDir> dir;
  std::string path;
};
SqliteBackendState& BackendState() {
  static SqliteBackendState state;
  return state;
}

StoreBackend SqliteBackend() {
  StoreBackend backend;
  backend.name = "sqlite";
  backend.open_fresh = []() {
    SqliteBackendState& state = BackendState();
    state.dir.reset();  // removes the previous test's files
    state.dir = std::make_unique<TempDir>();
    state.path = state.dir->File("graph.db");
    return OpenSqliteStore(state.path);
  };
  backend.open_again = []() { return OpenSqliteStore(BackendState().path); };
  return backend;
}

INSTANTIATE_TEST_SUITE_P(Sqlite, GraphStoreConformance, ::testing::Values(SqliteBackend()),
                         StoreBackendName);

// Runs SQL on a database file with a raw connection (to fake other versions / files).
void RawExec(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  std::string message = err != nullptr ? err : "";
  sqlite3_free(err);
  sqlite3_close(db);
  ASSERT_EQ(rc, SQLITE_OK) << message;
}

int64_t RawCount(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) return -1;
  sqlite3_stmt* stmt = nullptr;
  int64_t n = -1;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK &&
      sqlite3_step(stmt) == SQLITE_ROW) {
    n = sqlite3_column_int64(stmt, 0);
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return n;
}

TEST(SqliteStoreTest, MigrationsAreEmbeddedAndNumberedWithoutGaps) {
  auto migrations = SqliteMigrations();
  ASSERT_FALSE(migrations.empty());
  for (std::size_t i = 0; i < migrations.size(); ++i) {
    EXPECT_EQ(migrations[i].version, static_cast<int>(i + 1));
    EXPECT_NE(std::string(migrations[i].sql).find("CREATE"), std::string::npos);
  }
}

TEST(SqliteStoreTest, CreatesSchemaWithVersionAndWal) {
  TempDir dir;
  const std::string path = dir.File("new.db");
  {
    auto store = OpenSqliteStore(path);
    ASSERT_TRUE(store.ok()) << store.status();
    EXPECT_EQ((*store)->Describe(), "sqlite://" + path);
  }
  const int64_t latest = SqliteMigrations().back().version;
  EXPECT_EQ(RawCount(path, "SELECT max(version) FROM schema_version"), latest);
  EXPECT_EQ(RawCount(path, "SELECT count(*) FROM schema_version"), latest);
  // Opening again and migrating again records nothing new.
  {
    auto store = OpenSqliteStore(path);
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE((*store)->Migrate().ok());
  }
  EXPECT_EQ(RawCount(path, "SELECT count(*) FROM schema_version"), latest);
  EXPECT_EQ(RawCount(path,
                     "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN "
                     "('nodes', 'edges', 'tasks', 'schema_version')"),
            4);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)), "wal");
  sqlite3_finalize(stmt);
  sqlite3_close(db);
}

TEST(SqliteStoreTest, NewerSchemaIsRefused) {
  TempDir dir;
  const std::string path = dir.File("future.db");
  {
    auto store = OpenSqliteStore(path);
    ASSERT_TRUE(store.ok()) << store.status();
  }
  const int future = SqliteMigrations().back().version + 1;
  RawExec(path, "INSERT INTO schema_version (version, name, applied_at) VALUES (" +
                    std::to_string(future) + ", '999_future.sql', 0)");
  auto store = OpenSqliteStore(path);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kFailedPrecondition) << store.status();
  EXPECT_NE(store.status().message().find("schema version " + std::to_string(future)),
            std::string::npos)
      << store.status();
  EXPECT_NE(store.status().message().find("newer"), std::string::npos) << store.status();
}

TEST(SqliteStoreTest, GarbageFileIsDataLoss) {
  TempDir dir;
  const std::string path = dir.File("garbage.db");
  {
    std::ofstream out(path, std::ios::binary);
    std::mt19937 rng(42);
    for (int i = 0; i < 8192; ++i) out.put(static_cast<char>(rng() & 0xff));
  }
  auto store = OpenSqliteStore(path);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kDataLoss) << store.status();
  EXPECT_NE(store.status().message().find(path), std::string::npos) << store.status();
  EXPECT_NE(store.status().message().find("not a usable SQLite database"), std::string::npos)
      << store.status();
}

TEST(SqliteStoreTest, TextFileIsDataLoss) {
  TempDir dir;
  const std::string path = dir.File("notes.txt");
  {
    std::ofstream out(path);
    for (int i = 0; i < 200; ++i) out << "8.8.8.8\n1.1.1.1\n";
  }
  auto store = OpenSqliteStore(path);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kDataLoss) << store.status();
}

TEST(SqliteStoreTest, CorruptPagesAreDataLossNotACrash) {
  TempDir dir;
  const std::string path = dir.File("corrupt.db");
  {
    auto store = OpenSqliteStore(path);
    ASSERT_TRUE(store.ok()) << store.status();
    std::vector<SourceNode> nodes;
    for (int i = 0; i < 2000; ++i) nodes.push_back({"ip", "192.0.2." + std::to_string(i), "{}"});
    ASSERT_TRUE((*store)->UpsertSourceNodes(nodes).ok());
  }
  RawExec(path, "PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode=DELETE;");
  const auto size = fs::file_size(path);
  ASSERT_GT(size, 8192u);
  {
    // Keep the 100-byte header, overwrite the rest of the file with garbage.
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    std::mt19937 rng(7);
    for (std::uintmax_t i = 100; i < size; ++i) f.put(static_cast<char>(rng() & 0xff));
  }
  auto store = OpenSqliteStore(path);
  if (store.ok()) {
    // Some corruption only shows when the data is read: it must be an error, not a crash.
    auto counts = (*store)->Counts();
    auto exported = (*store)->GetNode("ip", "192.0.2.1");
    EXPECT_FALSE(counts.ok() && exported.ok());
    if (!counts.ok()) {
      EXPECT_EQ(counts.status().code(), StatusCode::kDataLoss) << counts.status();
    }
  } else {
    EXPECT_EQ(store.status().code(), StatusCode::kDataLoss) << store.status();
  }
}

TEST(SqliteStoreTest, ForeignSqliteDatabaseIsRefusedAndLeftUnchanged) {
  TempDir dir;
  const std::string path = dir.File("foreign.db");
  RawExec(path,
          "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT);"
          "INSERT INTO customers (name) VALUES ('alice');");
  auto store = OpenSqliteStore(path);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kDataLoss) << store.status();
  EXPECT_NE(store.status().message().find("not an enrichd store"), std::string::npos)
      << store.status();
  EXPECT_NE(store.status().message().find("customers"), std::string::npos) << store.status();
  EXPECT_EQ(RawCount(path, "SELECT count(*) FROM sqlite_master WHERE name = 'nodes'"), 0);
  EXPECT_EQ(RawCount(path, "SELECT count(*) FROM customers"), 1);
}

TEST(SqliteStoreTest, UnopenablePathIsAnErrorWithThePath) {
  TempDir dir;
  const std::string path = dir.File("no/such/dir/graph.db");
  auto store = OpenSqliteStore(path);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kUnavailable) << store.status();
  EXPECT_NE(store.status().message().find(path), std::string::npos) << store.status();
  auto empty = OpenSqliteStore("");
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().code(), StatusCode::kInvalidArgument);
}

// A batch is inserted in (label, key) byte order (one sweep over the unique index), so new
// nodes get their ids in that order, whatever the input order; keys that share their
// first 16 bytes (long IPv6 forms) are ordered by the rest.
TEST(SqliteStoreTest, UpsertAssignsIdsInLabelAndKeyOrder) {
  TempDir dir;
  auto store = OpenSqliteStore(dir.File("order.db"));
  ASSERT_TRUE(store.ok()) << store.status();
  const std::vector<SourceNode> nodes = {
      {"ip", "2001:db8:1:2:3:4:5:9"},
      {"ip", "9.9.9.9"},
      {"domain", "example.org"},
      {"ip", "2001:db8:1:2:3:4:5:10"},
      {"ip", "10.0.0.1"},
      {"domain", "example.com"},
      {"ip", "9.9.9.9"},  // a duplicate inside the batch: one node
      {"ip", "2001:db8:1:2:3:4:5"},
  };
  auto stats = (*store)->UpsertSourceNodes(nodes);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->added, 7);
  std::vector<std::pair<std::string, std::string>> expected = {
      {"domain", "example.com"},
      {"domain", "example.org"},
      {"ip", "10.0.0.1"},
      {"ip", "2001:db8:1:2:3:4:5"},
      {"ip", "2001:db8:1:2:3:4:5:10"},
      {"ip", "2001:db8:1:2:3:4:5:9"},
      {"ip", "9.9.9.9"},
  };
  int64_t previous_id = 0;
  for (const auto& [label, key] : expected) {
    auto view = (*store)->GetNode(label, key);
    ASSERT_TRUE(view.ok() && view->has_value()) << label << " " << key;
    EXPECT_GT((*view)->node.id, previous_id) << label << " " << key;
    previous_id = (*view)->node.id;
  }
}

TEST(SqliteStoreTest, InvalidUtf8InProvenanceStillGivesJsonProps) {
  TempDir dir;
  auto store = OpenSqliteStore(dir.File("utf8.db"));
  ASSERT_TRUE(store.ok()) << store.status();
  FakeClock clock;
  ASSERT_TRUE((*store)->UpsertSourceNodes(std::vector<SourceNode>{{"ip", "192.0.2.1"}}).ok());
  ASSERT_EQ((*store)
                ->PlanDueTasks(std::vector<ProviderPlan>{{"asn", {"ip"}}}, clock.WallNow())
                .value_or(-1),
            1);
  ClaimRequest request;
  request.lease_owner = "w";
  request.now = clock.WallNow();
  auto claimed = (*store)->ClaimTasks(request);
  ASSERT_TRUE(claimed.ok() && claimed->size() == 1u);
  TaskCompletion c;
  c.task_id = (*claimed)[0].task_id;
  c.claim_seq = (*claimed)[0].claim_seq;
  c.result.outcome = Outcome::kOk;
  c.result.kind = "asn";
  c.result.data_json = "{}";
  c.result.provenance.endpoint = "http://127.0.0.1/\xff\xfe\xc3(ok";  // not UTF-8
  ASSERT_EQ((*store)->CompleteTasks(std::vector<TaskCompletion>{c}).value_or(-1), 1);
  auto view = (*store)->GetNode("ip", "192.0.2.1");
  ASSERT_TRUE(view.ok() && view->has_value());
  ASSERT_EQ((*view)->enrichments.size(), 1u);
  auto props = nlohmann::json::parse((*view)->enrichments[0].props_json, nullptr, false);
  ASSERT_FALSE(props.is_discarded()) << (*view)->enrichments[0].props_json;
  EXPECT_EQ(props["endpoint"], "http://127.0.0.1/\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd(ok");
}

// The store validates props/data with its own scanner (no DOM): it must accept exactly
// the JSON objects a conforming parser accepts.
TEST(SqliteStoreTest, PropsValidationAgreesWithAJsonParser) {
  TempDir dir;
  auto store = OpenSqliteStore(dir.File("json.db"));
  ASSERT_TRUE(store.ok()) << store.status();
  const std::vector<std::string> inputs = {
      R"({"a":1})",
      R"( {"a":[1,2.5,-0,1e10,-1.5E-3,true,false,null,{}]} )",
      R"({"s":"\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"})",
      "{\"u\":\"\xc3\xa9\xf0\x9f\x98\x80\"}",
      R"({"a":{"b":{"c":[[[]]]}}})",
      R"([1])",
      R"("x")",
      R"(1)",
      R"({"a":1,})",
      R"({"a" 1})",
      R"({a:1})",
      R"({"a":01})",
      R"({"a":1.})",
      R"({"a":.5})",
      R"({"a":1e})",
      R"({"a":+1})",
      R"({"a":-})",
      R"({"a":tru})",
      R"({"a":"\x"})",
      R"({"a":"\u12"})",
      R"({"a":"\ud800"})",
      R"({"a":"\udc00"})",
      "{\"a\":\"\xff\"}",
      "{\"a\":\"\xc3\"}",
      "{\"a\":\"\t\"}",
      R"({"a":1}{)",
      R"({"a":1} x)",
      R"({"a":[1,]})",
      R"({"a":"unterminated})",
      "{",
      std::string(300, '[') + std::string(300, ']'),
      "{\"d\":" + std::string(100, '[') + std::string(100, ']') + "}"};
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const std::string& text = inputs[i];
    const nlohmann::json parsed = nlohmann::json::parse(text, nullptr, false);
    const bool expected = !parsed.is_discarded() && parsed.is_object();
    const std::vector<SourceNode> nodes = {{"t", "k" + std::to_string(i), text}};
    auto stats = (*store)->UpsertSourceNodes(nodes);
    EXPECT_EQ(stats.ok(), expected) << "input: " << text;
    if (!stats.ok()) {
      EXPECT_EQ(stats.status().code(), StatusCode::kInvalidArgument);
    }
  }
}

// fetched_at / expires_at in the props use the same text as FormatRfc3339 (clock.h),
// across dates that exercise the calendar arithmetic.
TEST(SqliteStoreTest, ProvenanceTimesMatchFormatRfc3339) {
  TempDir dir;
  auto store = OpenSqliteStore(dir.File("times.db"));
  ASSERT_TRUE(store.ok()) << store.status();
  const int64_t times_ms[] = {
      0, -1, -86'400'001, 951'782'400'000, 951'868'799'999, 4'107'542'399'999, 1'700'000'000'123};
  FakeClock clock;
  int seq = 0;
  for (int64_t ms : times_ms) {
    // One label and provider per time: earlier answers (some long expired) stay out of
    // this round's plan and claim.
    const std::string key = "198.51.100." + std::to_string(++seq);
    const std::string label = "ip" + std::to_string(seq);
    const std::string provider = "p" + std::to_string(seq);
    ASSERT_TRUE((*store)->UpsertSourceNodes(std::vector<SourceNode>{{label, key}}).ok());
    ASSERT_TRUE((*store)
                    ->PlanDueTasks(std::vector<ProviderPlan>{{provider, {label}}}, clock.WallNow())
                    .ok());
    ClaimRequest request;
    request.providers = {provider};
    request.lease_owner = "w";
    request.now = clock.WallNow();
    auto claimed = (*store)->ClaimTasks(request);
    ASSERT_TRUE(claimed.ok() && claimed->size() == 1u);
    TaskCompletion c;
    c.task_id = (*claimed)[0].task_id;
    c.claim_seq = (*claimed)[0].claim_seq;
    c.result.outcome = Outcome::kOk;
    c.result.kind = "asn";
    c.result.provenance.fetched_at = FromUnixMillis(ms);
    c.result.provenance.expires_at = FromUnixMillis(ms + 86'400'000);
    ASSERT_EQ((*store)->CompleteTasks(std::vector<TaskCompletion>{c}).value_or(-1), 1);
    auto view = (*store)->GetNode(label, key);
    ASSERT_TRUE(view.ok() && view->has_value());
    ASSERT_EQ((*view)->enrichments.size(), 1u);
    auto props = nlohmann::json::parse((*view)->enrichments[0].props_json, nullptr, false);
    ASSERT_FALSE(props.is_discarded());
    EXPECT_EQ(props["fetched_at"], FormatRfc3339(FromUnixMillis(ms))) << ms;
    EXPECT_EQ(props["expires_at"], FormatRfc3339(FromUnixMillis(ms + 86'400'000))) << ms;
    auto edge = nlohmann::json::parse((*view)->edges[0].props_json, nullptr, false);
    EXPECT_EQ(edge["fetched_at"], FormatRfc3339(FromUnixMillis(ms))) << ms;
  }
}

// The same, with every time in one completion batch: times of one day, of other days
// and out of the 4-digit year range interleave, so a date remembered from an earlier
// answer of the batch must never leak into a later one.
TEST(SqliteStoreTest, ProvenanceTimesInOneBatchMatchFormatRfc3339) {
  TempDir dir;
  auto store = OpenSqliteStore(dir.File("batch-times.db"));
  ASSERT_TRUE(store.ok()) << store.status();
  const int64_t times_ms[] = {1'700'000'000'123,  1'700'000'000'999,
                              1'700'086'400'000,  0,
                              1'700'000'001'000,  -1,
                              -86'400'001,        951'868'799'999,
                              951'868'800'000,    1'700'000'000'124,
                              -62'167'219'200'001};
  constexpr std::size_t kTimes = std::size(times_ms);
  std::vector<SourceNode> nodes;
  for (std::size_t i = 0; i < kTimes; ++i) {
    nodes.push_back({"ip", "198.51.100." + std::to_string(i + 1)});
  }
  ASSERT_TRUE((*store)->UpsertSourceNodes(nodes).ok());
  FakeClock clock;
  ASSERT_EQ((*store)
                ->PlanDueTasks(std::vector<ProviderPlan>{{"asn", {"ip"}}}, clock.WallNow())
                .value_or(-1),
            static_cast<int64_t>(kTimes));
  ClaimRequest request;
  request.max_tasks = kTimes;
  request.lease_owner = "w";
  request.now = clock.WallNow();
  auto claimed = (*store)->ClaimTasks(request);
  ASSERT_TRUE(claimed.ok() && claimed->size() == kTimes);
  std::vector<TaskCompletion> completions;
  std::map<std::string, int64_t> time_of_key;
  for (std::size_t i = 0; i < kTimes; ++i) {
    TaskCompletion c;
    c.task_id = (*claimed)[i].task_id;
    c.claim_seq = (*claimed)[i].claim_seq;
    c.result.outcome = Outcome::kOk;
    c.result.kind = "asn";
    c.result.provenance.fetched_at = FromUnixMillis(times_ms[i]);
    c.result.provenance.expires_at = FromUnixMillis(times_ms[kTimes - 1 - i]);
    completions.push_back(c);
    time_of_key[(*claimed)[i].key] = static_cast<int64_t>(i);
  }
  ASSERT_EQ((*store)->CompleteTasks(completions).value_or(-1), static_cast<int64_t>(kTimes));
  for (const auto& [key, i] : time_of_key) {
    auto view = (*store)->GetNode("ip", key);
    ASSERT_TRUE(view.ok() && view->has_value()) << key;
    ASSERT_EQ((*view)->enrichments.size(), 1u);
    auto props = nlohmann::json::parse((*view)->enrichments[0].props_json, nullptr, false);
    ASSERT_FALSE(props.is_discarded());
    const int64_t fetched = times_ms[i];
    const int64_t expires = times_ms[kTimes - 1 - static_cast<std::size_t>(i)];
    EXPECT_EQ(props["fetched_at"], FormatRfc3339(FromUnixMillis(fetched))) << fetched;
    EXPECT_EQ(props["expires_at"], FormatRfc3339(FromUnixMillis(expires))) << expires;
    auto edge = nlohmann::json::parse((*view)->edges[0].props_json, nullptr, false);
    EXPECT_EQ(edge["fetched_at"], FormatRfc3339(FromUnixMillis(fetched))) << fetched;
  }
}

TEST(SqliteStoreTest, ClaimUsesTheDueIndex) {
  TempDir dir;
  const std::string path = dir.File("plan.db");
  { ASSERT_TRUE(OpenSqliteStore(path).ok()); }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db,
                               "EXPLAIN QUERY PLAN SELECT t.id, n.label, n.key FROM tasks t "
                               "LEFT JOIN nodes n ON n.id = t.node_id WHERE t.status = 'pending' "
                               "AND t.next_attempt_at <= 5 ORDER BY t.next_attempt_at, t.id "
                               "LIMIT 10",
                               -1, &stmt, nullptr),
            SQLITE_OK);
  std::string plan;
  while (sqlite3_step(stmt) == SQLITE_ROW) {
    plan += reinterpret_cast<const char*>(sqlite3_column_text(stmt, 3));
    plan += "\n";
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  EXPECT_NE(plan.find("tasks_due"), std::string::npos) << plan;
  EXPECT_EQ(plan.find("TEMP B-TREE"), std::string::npos) << plan;
}

// A completion batch writes its enrichment nodes, edges and task states with one
// statement each; the new nodes' ids must still follow every node that exists when the
// batch commits, including nodes another connection added after the claim.
TEST(SqliteStoreTest, CompletionBatchLinksNodesEdgesAndTasks) {
  TempDir dir;
  const std::string path = dir.File("batch.db");
  FakeClock clock;
  auto worker = OpenSqliteStore(path);
  ASSERT_TRUE(worker.ok()) << worker.status();
  GraphStore& store = **worker;
  std::vector<SourceNode> nodes;
  for (int i = 0; i < 40; ++i) nodes.push_back({"ip", "10.2.0." + std::to_string(i)});
  ASSERT_EQ(store.UpsertSourceNodes(nodes).value_or({}).added, 40);
  const std::vector<ProviderPlan> plans = {{"asn", {"ip"}}, {"geo", {"ip"}}};
  ASSERT_EQ(store.PlanDueTasks(plans, clock.WallNow()).value_or(-1), 80);
  ClaimRequest request;
  request.max_tasks = 30;
  request.lease_owner = "w";
  request.now = clock.WallNow();
  auto claimed = store.ClaimTasks(request);
  ASSERT_TRUE(claimed.ok()) << claimed.status();
  ASSERT_EQ(claimed->size(), 30u);
  {
    // Another connection adds nodes between the claim and the completion.
    auto other = OpenSqliteStore(path);
    ASSERT_TRUE(other.ok()) << other.status();
    std::vector<SourceNode> more;
    for (int i = 0; i < 5; ++i) more.push_back({"ip", "10.3.0." + std::to_string(i)});
    ASSERT_EQ((*other)->UpsertSourceNodes(more).value_or({}).added, 5);
  }
  std::vector<TaskCompletion> completions;
  for (std::size_t i = 0; i < claimed->size(); ++i) {
    const ClaimedTask& t = (*claimed)[i];
    TaskCompletion c;
    c.task_id = t.task_id;
    c.claim_seq = t.claim_seq;
    c.provider = t.provider;
    c.result.outcome = i % 3 == 0 ? Outcome::kNoData : Outcome::kOk;
    c.result.kind = t.provider;
    c.result.data_json = R"({"i":)" + std::to_string(i) + "}";
    c.result.provenance.fetched_at = clock.WallNow();
    c.result.provenance.expires_at = clock.WallNow() + std::chrono::hours(1);
    completions.push_back(c);
    if (i == 7) completions.push_back(c);  // the same claim twice applies once
  }
  TaskCompletion stale = completions.back();
  stale.claim_seq += 1;
  completions.push_back(stale);  // not the current claim: ignored
  auto done = store.CompleteTasks(completions);
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(*done, 30);
  worker->reset();

  EXPECT_EQ(RawCount(path, "SELECT count(*) FROM nodes WHERE label = 'enrichment'"), 30);
  EXPECT_EQ(RawCount(path, "SELECT count(*) FROM edges"), 30);
  // Every enrichment node comes after every source node, the 5 late ones included.
  EXPECT_EQ(RawCount(path,
                     "SELECT (SELECT min(id) FROM nodes WHERE label = 'enrichment') > "
                     "(SELECT max(id) FROM nodes WHERE label = 'ip')"),
            1);
  // Each finished task names its enrichment node, which is the edge's target from the
  // task's source node and whose key and props tell the task's provider, node and claim.
  EXPECT_EQ(RawCount(path,
                     "SELECT count(*) FROM tasks t JOIN edges e ON e.dst = t.enrichment_id "
                     "JOIN nodes n ON n.id = t.enrichment_id WHERE e.src = t.node_id "
                     "AND n.key = t.provider || '/' || t.node_id || '/' || t.claim_seq "
                     "AND json_extract(n.props, '$.provider') = t.provider "
                     "AND json_extract(e.props, '$.provider') = t.provider "
                     "AND t.attempts = 1 AND t.lease_owner IS NULL "
                     "AND t.status = CASE json_extract(n.props, '$.status') "
                     "WHEN 'ok' THEN 'done' ELSE 'no_data' END"),
            30);
  EXPECT_EQ(RawCount(path, "SELECT count(*) FROM tasks WHERE status = 'no_data'"), 10);
  EXPECT_EQ(RawCount(path, "SELECT count(*) FROM tasks WHERE status = 'pending'"), 50);
}

// Two processes (fork) claim and complete from the same file until no task is left.
// Every task must be claimed by exactly one of them: each (node, provider) ends with
// exactly one enrichment node, and the claim logs never overlap.
TEST(SqliteStoreTest, TwoProcessesNeverClaimTheSameTask) {
  TempDir dir;
  const std::string path = dir.File("shared.db");
  constexpr int kNodes = 1500;
  FakeClock clock;
  {
    auto store = OpenSqliteStore(path);
    ASSERT_TRUE(store.ok()) << store.status();
    std::vector<SourceNode> nodes;
    for (int i = 0; i < kNodes; ++i) {
      nodes.push_back({"ip", "10.1." + std::to_string(i / 256) + "." + std::to_string(i % 256)});
    }
    ASSERT_EQ((*store)->UpsertSourceNodes(nodes).value_or({}).added, kNodes);
    std::vector<ProviderPlan> plans = {{"asn", {"ip"}}, {"geo", {"ip"}}};
    ASSERT_EQ((*store)->PlanDueTasks(plans, clock.WallNow()).value_or(-1), 2 * kNodes);
  }

  // A barrier without sleeping: after its first claim, each child writes a byte to its own
  // pipe and reads one from the other's, so both hold claims at the same time at least once
  // (a child that dies closes its pipe, and the other one's read then returns).
  int pipes[2][2];
  ASSERT_EQ(pipe(pipes[0]), 0);
  ASSERT_EQ(pipe(pipes[1]), 0);
  auto child = [&](int index) -> int {
    const int other = 1 - index;
    close(pipes[index][0]);
    close(pipes[other][1]);
    auto store = OpenSqliteStore(path);
    if (!store.ok()) return 10;
    std::ofstream log(dir.File("claims-" + std::to_string(index) + ".log"));
    bool first = true;
    for (;;) {
      ClaimRequest request;
      request.max_tasks = 25;
      request.lease_owner = "proc-" + std::to_string(index);
      request.now = clock.WallNow();
      auto claimed = (*store)->ClaimTasks(request);
      if (!claimed.ok()) return 11;
      if (first) {
        first = false;
        char byte = 'x';
        if (write(pipes[index][1], &byte, 1) != 1) return 15;
        close(pipes[index][1]);
        if (read(pipes[other][0], &byte, 1) < 0) return 16;
      }
      if (claimed->empty()) break;
      std::vector<TaskCompletion> completions;
      for (const ClaimedTask& t : *claimed) {
        log << t.task_id << "\n";
        TaskCompletion c;
        c.task_id = t.task_id;
        c.claim_seq = t.claim_seq;
        c.provider = t.provider;
        c.result.outcome = Outcome::kOk;
        c.result.kind = t.provider;
        c.result.data_json = R"({"by":)" + std::to_string(index) + "}";
        c.result.provenance.fetched_at = clock.WallNow();
        c.result.provenance.expires_at = clock.WallNow() + std::chrono::hours(1);
        completions.push_back(std::move(c));
      }
      auto done = (*store)->CompleteTasks(completions);
      if (!done.ok()) return 12;
      if (*done != static_cast<int64_t>(completions.size())) return 13;
    }
    log.flush();
    return log.good() ? 0 : 14;
  };

  pid_t pids[2];
  for (int i = 0; i < 2; ++i) {
    pids[i] = fork();
    ASSERT_GE(pids[i], 0) << "fork failed";
    if (pids[i] == 0) _exit(child(i));
  }
  for (auto& p : pipes) {
    close(p[0]);
    close(p[1]);
  }
  for (int i = 0; i < 2; ++i) {
    int wstatus = 0;
    ASSERT_EQ(waitpid(pids[i], &wstatus, 0), pids[i]);
    ASSERT_TRUE(WIFEXITED(wstatus));
    EXPECT_EQ(WEXITSTATUS(wstatus), 0) << "child " << i;
  }

  std::set<int64_t> seen;
  int per_child[2] = {0, 0};
  for (int i = 0; i < 2; ++i) {
    std::ifstream log(dir.File("claims-" + std::to_string(i) + ".log"));
    int64_t id = 0;
    while (log >> id) {
      EXPECT_TRUE(seen.insert(id).second) << "task " << id << " claimed twice";
      ++per_child[i];
    }
  }
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(2 * kNodes));
  EXPECT_GT(per_child[0], 0);
  EXPECT_GT(per_child[1], 0);

  auto store = OpenSqliteStore(path);
  ASSERT_TRUE(store.ok()) << store.status();
  auto counts = (*store)->Counts();
  ASSERT_TRUE(counts.ok()) << counts.status();
  EXPECT_EQ(counts->nodes, 3 * kNodes);
  EXPECT_EQ(counts->edges, 2 * kNodes);
  EXPECT_EQ(counts->providers["asn"].done, kNodes);
  EXPECT_EQ(counts->providers["geo"].done, kNodes);
  EXPECT_EQ(RawCount(path,
                     "SELECT count(*) FROM (SELECT src, json_extract(n.props, '$.provider') p, "
                     "count(*) c FROM edges e JOIN nodes n ON n.id = e.dst GROUP BY 1, 2 "
                     "HAVING c <> 1)"),
            0);
}

}  // namespace
}  // namespace enrichd

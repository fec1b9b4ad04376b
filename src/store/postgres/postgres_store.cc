// PostgreSQL GraphStore: set-based SQL over one libpq connection, plus a second one that
// PlanDueTasks opens on first need to plan half of the (provider, label) pairs
// concurrently (planning is CPU-bound in one server process; each half commits alone).
//
// Every other write is one transaction (a single statement where possible). Claims use
// FOR UPDATE SKIP LOCKED so concurrent workers never block on or double-claim a task;
// every write to a running task is guarded by (id, claim_seq, status = 'running').
#include "store/postgres/postgres_store.h"

#include <algorithm>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <system_error>
#include <thread>
#include <unordered_set>
#include <utility>
#include <vector>

#include "store/common/node_order.h"
#include "store/postgres/migrations.h"
#include "store/postgres/pg_connection.h"

namespace enrichd {
namespace {

using ::nlohmann::json;
using pg::Connection;
using pg::IntArray;
using pg::Params;
using pg::PgResult;
using pg::TextArray;

// Rows fetched per round trip while exporting.
constexpr int kExportFetchRows = 2000;

std::string Num(int64_t v) { return std::to_string(v); }

// Re-serialises stored jsonb text the way the rest of enrichd writes JSON (nlohmann,
// sorted keys, compact), so both backends export byte-identical props.
std::string NormalizeJson(std::string_view text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return std::string(text);
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

bool IsJsonObject(std::string_view text, json* out = nullptr) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return false;
  if (out != nullptr) *out = std::move(j);
  return true;
}

// (label, key) viewing the caller's strings, for de-duplicating a batch.
using LabelKey = std::pair<std::string_view, std::string_view>;
struct LabelKeyHash {
  std::size_t operator()(const LabelKey& k) const {
    const std::hash<std::string_view> h;
    return h(k.first) * 31 + h(k.second);
  }
};

bool HasNul(std::string_view s) { return s.find('\0') != std::string_view::npos; }

// A string constant for SQL text (the session has standard_conforming_strings on, the
// default since PostgreSQL 9.1 and set by every planning transaction).
std::string SqlLiteral(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out.push_back('\'');
    out.push_back(c);
  }
  out.push_back('\'');
  return out;
}

// ---- SQL -------------------------------------------------------------------------------

// Hash tables for set-based ingest and planning of millions of rows stay in memory.
constexpr const char* kBulkWorkMem = "SET LOCAL work_mem = '256MB'";

constexpr const char* kIngestCopy = "COPY nodes (label, key, props) FROM STDIN";

// Session-local staging tables: the keys of a batch to look up, and (after a conflict
// with a concurrent ingester) the batch itself.
constexpr const char* kIngestTempTables =
    "CREATE TEMP TABLE IF NOT EXISTS enrichd_probe "
    "(label text COLLATE \"C\", key text COLLATE \"C\") ON COMMIT DELETE ROWS; "
    "CREATE TEMP TABLE IF NOT EXISTS enrichd_ingest "
    "(label text COLLATE \"C\", key text COLLATE \"C\", props text) ON COMMIT DELETE ROWS";
constexpr const char* kIngestProbeCopy = "COPY enrichd_probe (label, key) FROM STDIN";

// The batch's keys that are stored already. "OFFSET 0" keeps the check a per-row probe
// of the unique index: as a join the planner would hash the whole nodes table for every
// batch, and a batch must cost what it holds.
constexpr const char* kIngestExisting = R"sql(
SELECT p.label, p.key FROM enrichd_probe p
WHERE EXISTS (SELECT 1 FROM nodes n WHERE n.label = p.label AND n.key = p.key OFFSET 0))sql";

// Adds the batch's nodes that are not present yet, in (label, key) order, when a
// concurrent ingester added one of the keys after our probe.
constexpr const char* kIngestInsertRacing = R"sql(
INSERT INTO nodes (label, key, props)
SELECT i.label, i.key, i.props::jsonb FROM enrichd_ingest i
WHERE NOT EXISTS (SELECT 1 FROM nodes n WHERE n.label = i.label AND n.key = i.key OFFSET 0)
ORDER BY i.label, i.key
ON CONFLICT (label, key) DO NOTHING)sql";

// Planning new tasks: one task per node of the label that has none yet for the provider.
// The node ids are read through a cursor in chunks and written back with COPY: COPY
// inserts a page of heap tuples at a time (one WAL record per page), where INSERT ...
// SELECT inserts row by row (1M tasks: 10.3-11.2 s with INSERT ... SELECT, 1.4 s +
// 6.1-8.5 s with SELECT + COPY, busy machine; the index insertions are the same).
// Task ids follow the node ids and the order of the (provider, label) pairs of one
// connection. No conflict handling: a concurrent planner's conflict (23505) redoes the
// transaction with kPlanNewRacing. DECLARE takes no parameters: provider and label are
// SQL literals (SqlLiteral).
std::string PlanNewCursor(std::string_view provider_literal, std::string_view label_literal) {
  return std::string(
             "DECLARE enrichd_plan NO SCROLL CURSOR FOR SELECT n.id FROM nodes n WHERE n.label "
             "= ") +
         std::string(label_literal) +
         " AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.node_id = n.id AND t.provider = " +
         std::string(provider_literal) + ") ORDER BY n.id";
}
constexpr const char* kPlanCopy =
    "COPY tasks (node_id, provider, status, attempts, next_attempt_at, claim_seq, updated_at) "
    "FROM STDIN";
// Rows per FETCH / COPY while planning.
constexpr int kPlanChunkRows = 100000;
constexpr const char* kPlanNewRacing = R"sql(
INSERT INTO tasks (node_id, provider, status, attempts, next_attempt_at, claim_seq, updated_at)
SELECT n.id, $1, 'pending', 0, $3, 0, $3
FROM nodes n
WHERE n.label = $2
  AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.node_id = n.id AND t.provider = $1)
ON CONFLICT (node_id, provider) DO NOTHING)sql";

// $1 providers, $2 now: answers that expired become due again.
constexpr const char* kPlanExpired = R"sql(
UPDATE tasks SET status = 'pending', attempts = 0, next_attempt_at = $2, last_error = NULL,
                 updated_at = $2
WHERE status IN ('done', 'no_data') AND expires_at <= $2 AND provider = ANY($1::text[]))sql";

// $1 now, $2 providers (empty: any), $3 limit, $4 owner, $5 lease expiry.
// Per provider, the oldest due tasks come from the partial index tasks_claim (rows that
// another worker holds locked are skipped, never waited for); the oldest $3 of those
// are claimed. With no provider given, the providers that have pending tasks are found
// by a loose index scan (one index probe per provider). Its ORDER BY is that of
// tasks_claim, so that only this index answers it: the planner would otherwise walk
// tasks_provider_node, filtering out every answered task of the provider on each claim
// (a cost that grew with the queue's progress; 500 tasks after 40k answered: 72 ms -> 17 ms).
constexpr const char* kClaim = R"sql(
WITH RECURSIVE pending_providers AS (
  (SELECT provider FROM tasks WHERE status = 'pending'
   ORDER BY provider, next_attempt_at, id LIMIT 1)
  UNION ALL
  SELECT (SELECT t.provider FROM tasks t WHERE t.status = 'pending' AND t.provider > pp.provider
          ORDER BY t.provider, t.next_attempt_at, t.id LIMIT 1)
  FROM pending_providers pp WHERE pp.provider IS NOT NULL),
wanted AS (
  SELECT DISTINCT w.provider FROM unnest($2::text[]) AS w(provider)
  UNION ALL
  SELECT pp.provider FROM pending_providers pp
  WHERE pp.provider IS NOT NULL AND cardinality($2::text[]) = 0),
c AS (
  SELECT x.id, x.next_attempt_at FROM wanted w CROSS JOIN LATERAL (
    SELECT t.id, t.next_attempt_at FROM tasks t
    WHERE t.status = 'pending' AND t.provider = w.provider AND t.next_attempt_at <= $1
    ORDER BY t.next_attempt_at, t.id LIMIT $3
    FOR UPDATE SKIP LOCKED) x
  ORDER BY x.next_attempt_at, x.id LIMIT $3),
u AS (
  UPDATE tasks t SET status = 'running', lease_owner = $4, lease_expires_at = $5,
                     claim_seq = t.claim_seq + 1, updated_at = $1
  FROM c WHERE t.id = c.id
  RETURNING t.id, t.claim_seq, t.node_id, t.provider, t.attempts, t.next_attempt_at)
SELECT u.id, u.claim_seq, u.node_id, n.label, n.key, u.provider, u.attempts
FROM u JOIN nodes n ON n.id = u.node_id
ORDER BY u.next_attempt_at, u.id)sql";

// $1 task ids, $2 claim seqs, $3 statuses, $4 expires_at, $5 props: a JSON object's text
// up to the value of its last member "provider", which the statement appends (from the
// task row) with the closing brace, so the props are parsed once and never merged. They
// come joined by the control character RS (0x1E), which JSON text never holds unescaped:
// splitting is cheaper than parsing a text[] literal in which every quote is escaped.
// $6 fetched_at (RFC 3339), for the edge. updated_at (diagnostic only) is the server's clock.
// One statement: task status, superseding older answers of the same (node, provider),
// the enrichment node and its edge. The enrichment node ids are drawn up front (in input
// order), so the node and the edge are written side by side from `done` without a
// RETURNING round through the node insert. Only a task claimed before (claim_seq > 1)
// can have an older answer: first answers skip the superseding join altogether.
// The running-check compares with c.running, a value of the materialised CTE and not a
// constant, so the planner cannot answer it from the partial index tasks_running_lease:
// that index holds every dead entry of a busy queue until vacuum, and scanning it (then
// hashing the running tasks) grew with the queue; the update must find its rows by id.
constexpr const char* kComplete = R"sql(
WITH c AS MATERIALIZED (
  SELECT c.*, 'running'::text AS running, nextval('nodes_id_seq') AS enrichment_id
  FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::bigint[],
              string_to_array($5::text, E'\x1e'), $6::text[])
    WITH ORDINALITY AS c(task_id, claim_seq, status, expires_at, props, fetched_at, ord)),
done AS (
  UPDATE tasks t SET status = c.status, attempts = t.attempts + 1, expires_at = c.expires_at,
                     lease_owner = NULL, lease_expires_at = NULL, last_error = NULL,
                     updated_at = (extract(epoch FROM now()) * 1000)::bigint
  FROM c
  WHERE t.id = c.task_id AND t.claim_seq = c.claim_seq AND t.status = c.running
  RETURNING t.node_id, t.provider, t.claim_seq, c.props, c.fetched_at, c.enrichment_id),
superseded AS (
  UPDATE nodes n SET props = n.props || '{"superseded": true}'::jsonb
  FROM done d JOIN edges e ON e.src = d.node_id
  WHERE d.claim_seq > 1 AND e.type = 'ENRICHED_BY' AND e.props ->> 'provider' = d.provider
    AND n.id = e.dst AND n.props -> 'superseded' IS NULL),
ins AS (
  INSERT INTO nodes (id, label, key, props)
  SELECT d.enrichment_id, 'enrichment', d.provider || '/' || d.node_id || '/' || d.claim_seq,
         (d.props || to_json(d.provider)::text || '}')::jsonb
  FROM done d),
edge AS (
  INSERT INTO edges (type, src, dst, props)
  SELECT 'ENRICHED_BY', d.node_id, d.enrichment_id,
         jsonb_build_object('provider', d.provider, 'fetched_at', d.fetched_at)
  FROM done d ORDER BY d.enrichment_id)
SELECT count(*) FROM done)sql";

// $1 ids, $2 claim seqs, $3 next_attempt_at, $4 errors, $5 count attempt.
constexpr const char* kRetry = R"sql(
WITH c AS MATERIALIZED (
  SELECT c.*, 'running'::text AS running
  FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[], $5::bool[])
    AS c(task_id, claim_seq, next_at, err, counts))
UPDATE tasks t SET status = 'pending',
                   attempts = t.attempts + CASE WHEN c.counts THEN 1 ELSE 0 END,
                   next_attempt_at = c.next_at, last_error = c.err,
                   lease_owner = NULL, lease_expires_at = NULL,
                   updated_at = (extract(epoch FROM now()) * 1000)::bigint
FROM c
WHERE t.id = c.task_id AND t.claim_seq = c.claim_seq AND t.status = c.running)sql";

// $1 ids, $2 claim seqs, $3 statuses, $4 reasons, $5 count attempt.
constexpr const char* kFinish = R"sql(
WITH c AS MATERIALIZED (
  SELECT c.*, 'running'::text AS running
  FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::bool[])
    AS c(task_id, claim_seq, status, reason, counts))
UPDATE tasks t SET status = c.status,
                   attempts = t.attempts + CASE WHEN c.counts THEN 1 ELSE 0 END,
                   last_error = c.reason, lease_owner = NULL, lease_expires_at = NULL,
                   updated_at = (extract(epoch FROM now()) * 1000)::bigint
FROM c
WHERE t.id = c.task_id AND t.claim_seq = c.claim_seq AND t.status = c.running)sql";

constexpr const char* kRenew = R"sql(
UPDATE tasks SET lease_expires_at = $3
WHERE status = 'running' AND lease_owner = $1 AND id = ANY($2::bigint[]))sql";

constexpr const char* kRelease = R"sql(
UPDATE tasks SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL
WHERE status = 'running' AND lease_owner = $1)sql";

constexpr const char* kReclaim = R"sql(
UPDATE tasks SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL,
                 updated_at = $1
WHERE status = 'running' AND lease_expires_at < $1)sql";

// $1 now, $2 provider or NULL.
constexpr const char* kRequeueWaiting = R"sql(
UPDATE tasks SET next_attempt_at = $1, updated_at = $1
WHERE status = 'pending' AND next_attempt_at > $1 AND ($2::text IS NULL OR provider = $2))sql";

constexpr const char* kRequeueDead = R"sql(
UPDATE tasks SET status = 'pending', attempts = 0, next_attempt_at = $1, last_error = NULL,
                 updated_at = $1
WHERE (status = 'dead' OR (status = 'pending' AND next_attempt_at > $1))
  AND ($2::text IS NULL OR provider = $2))sql";

constexpr const char* kCountGraph =
    "SELECT (SELECT count(*) FROM nodes), (SELECT count(*) FROM edges)";
constexpr const char* kCountTasks =
    "SELECT provider, status, count(*) FROM tasks GROUP BY provider, status";

constexpr const char* kGetNode =
    "SELECT id, label, key, props::text FROM nodes WHERE label = $1 AND key = $2";
constexpr const char* kGetEnrichments = R"sql(
SELECT e.id, e.type, e.src, e.dst, e.props::text, n.id, n.label, n.key, n.props::text
FROM edges e JOIN nodes n ON n.id = e.dst
WHERE e.src = $1 AND e.type = 'ENRICHED_BY'
ORDER BY n.id DESC, e.id DESC)sql";

// ---- the store -------------------------------------------------------------------------

class PostgresStore final : public GraphStore {
 public:
  PostgresStore(std::unique_ptr<Connection> conn, std::string url)
      : conn_(std::move(conn)), url_(std::move(url)) {}

  Status Migrate() override;
  Result<UpsertStats> UpsertSourceNodes(std::span<const SourceNode> nodes) override;
  Result<int64_t> PlanDueTasks(std::span<const ProviderPlan> providers, WallTime now) override;
  Result<std::vector<ClaimedTask>> ClaimTasks(const ClaimRequest& request) override;
  Result<int64_t> CompleteTasks(std::span<const TaskCompletion> completions) override;
  Result<int64_t> ScheduleRetries(std::span<const TaskRetry> retries) override;
  Result<int64_t> FinishTasks(std::span<const TaskFinal> finals) override;
  Result<int64_t> RenewLeases(std::string_view lease_owner, std::span<const int64_t> task_ids,
                              WallTime until) override;
  Result<int64_t> ReleaseLeases(std::string_view lease_owner) override;
  Result<int64_t> ReclaimExpiredLeases(WallTime now) override;
  Result<int64_t> Requeue(const RequeueRequest& request, WallTime now) override;
  Result<StoreCounts> Counts() override;
  Result<std::optional<NodeView>> GetNode(std::string_view label, std::string_view key) override;
  Status Export(ExportSink& sink) override;
  std::string Describe() const override { return conn_->describe(); }

 private:
  Result<int> SchemaVersion();
  Result<int64_t> Affected(const std::string& name, const char* sql, const Params& params) {
    ENRICHD_ASSIGN_OR_RETURN(PgResult r, conn_->Prepared(name, sql, params));
    return r.Affected();
  }
  Status ExportCursor(const char* cursor_sql, bool nodes, ExportSink& sink);

  // A (provider, label) pair to plan.
  struct PlanPair {
    const std::string* provider;
    const std::string* label;
  };
  // Creates the missing tasks of `pairs` on `conn`, in one transaction of its own.
  static Result<int64_t> PlanNew(Connection& conn, std::span<const PlanPair> pairs,
                                 const std::string& now_ms);
  // The second connection planning uses (opened on first need); nullptr when it cannot
  // be opened (planning then stays on conn_).
  Connection* PlanConnection();

  std::unique_ptr<Connection> conn_;
  std::string url_;  // to open plan_conn_; holds any password, never shown
  std::unique_ptr<Connection> plan_conn_;
  bool plan_conn_failed_ = false;
  // Whether the next ingest batch is copied unchecked: at first, and after a batch in
  // which no key existed (a failed unchecked copy costs up to one batch).
  bool ingest_expect_new_ = true;
};

Result<int> PostgresStore::SchemaVersion() {
  ENRICHD_ASSIGN_OR_RETURN(
      PgResult r, conn_->Exec("SELECT CASE WHEN to_regclass('schema_version') IS NULL THEN -1 "
                              "ELSE 0 END"));
  if (r.Int(0, 0) < 0) return 0;
  ENRICHD_ASSIGN_OR_RETURN(PgResult v,
                           conn_->Exec("SELECT coalesce(max(version), 0) FROM schema_version"));
  return static_cast<int>(v.Int(0, 0));
}

Status PostgresStore::Migrate() {
  const std::span<const pg::Migration> migrations = pg::Migrations();
  const int latest = migrations.empty() ? 0 : migrations.back().version;
  auto too_new = [&](int version) {
    return FailedPreconditionError("the PostgreSQL database at " + conn_->describe() +
                                   " has schema version " + std::to_string(version) +
                                   ", newer than this enrichd understands (" +
                                   std::to_string(latest) + "); upgrade enrichd");
  };
  // Fast path without locking: already current (the common case for every open).
  ENRICHD_ASSIGN_OR_RETURN(int current, SchemaVersion());
  if (current == latest) return Status::Ok();
  if (current > latest) return too_new(current);

  pg::Transaction txn(*conn_);
  ENRICHD_RETURN_IF_ERROR(txn.Begin());
  // Serialises concurrent openers of the same schema; released at commit/rollback.
  ENRICHD_RETURN_IF_ERROR(conn_
                              ->Exec("SELECT pg_advisory_xact_lock(hashtext('enrichd.migrate.' || "
                                     "coalesce(current_schema(), '')))")
                              .status());
  ENRICHD_RETURN_IF_ERROR(
      conn_
          ->Exec("CREATE TABLE IF NOT EXISTS schema_version (version integer PRIMARY KEY, "
                 "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
          .status());
  ENRICHD_ASSIGN_OR_RETURN(current, SchemaVersion());
  if (current > latest) return too_new(current);
  for (const pg::Migration& m : migrations) {
    if (m.version <= current) continue;
    Status applied = conn_->Exec(m.sql).status();
    if (!applied.ok()) return applied.WithContext(std::string("migration ") + m.name);
    ENRICHD_RETURN_IF_ERROR(
        conn_
            ->Prepared("enrichd_record_migration",
                       "INSERT INTO schema_version (version, name) VALUES ($1, $2)",
                       {Num(m.version), std::string(m.name)})
            .status());
  }
  return txn.Commit();
}

Result<UpsertStats> PostgresStore::UpsertSourceNodes(std::span<const SourceNode> nodes) {
  UpsertStats stats;
  if (nodes.empty()) return stats;
  // Validate everything first; drop duplicates within the batch (the first one wins).
  std::unordered_set<LabelKey, LabelKeyHash> seen;
  seen.reserve(nodes.size());
  std::vector<const SourceNode*> unique;
  unique.reserve(nodes.size());
  for (const SourceNode& n : nodes) {
    if (n.label.empty() || n.key.empty()) {
      return InvalidArgumentError("source node with an empty label or key (label '" + n.label +
                                  "', key '" + n.key + "')");
    }
    if (HasNul(n.label) || HasNul(n.key) || HasNul(n.props_json)) {
      return InvalidArgumentError("source node " + n.label + " '" + n.key +
                                  "' contains a NUL character");
    }
    // "{}" is by far the most common: skip the parser for it.
    if (n.props_json != "{}" && !IsJsonObject(n.props_json)) {
      return InvalidArgumentError("source node " + n.label + " '" + n.key +
                                  "': props are not a JSON object");
    }
    if (seen.insert({n.label, n.key}).second) unique.push_back(&n);
  }
  store::SortByLabelAndKey(unique);
  // COPY text of `rows`: label, key and (with_props) props.
  auto copy_text = [](std::span<const SourceNode* const> rows, bool with_props) {
    std::string out;
    out.reserve(rows.size() * 32);
    for (const SourceNode* n : rows) {
      pg::AppendCopyField(out, n->label);
      out.push_back('\t');
      pg::AppendCopyField(out, n->key);
      if (with_props) {
        out.push_back('\t');
        pg::AppendCopyField(out, n->props_json.empty() ? std::string_view("{}") : n->props_json);
      }
      out.push_back('\n');
    }
    return out;
  };
  const int64_t batch_rows = static_cast<int64_t>(unique.size());
  auto done = [&](int64_t added) -> Result<UpsertStats> {
    stats.added = added;
    stats.existing = static_cast<int64_t>(nodes.size()) - added;
    return stats;
  };
  // The new rows are copied straight into nodes, in (label, key) order: COPY inserts a
  // page of heap tuples at a time, where INSERT ... SELECT from a staging table inserts
  // row by row (bench/ingest_bench.sh, server CPU on a busy machine: 14.2-17.6 s ->
  // 10.1 s). While every batch so far was all new (a fresh ingest) the whole batch is
  // copied unchecked; an existing key fails it (23505), and from then on the batch's
  // existing keys are looked up first (one probe of the unique index per key) and left
  // out of the copy.
  std::string copy = copy_text(unique, true);
  if (ingest_expect_new_) {
    pg::Transaction txn(*conn_);
    ENRICHD_RETURN_IF_ERROR(txn.Begin());
    Status copied = conn_->CopyIn(kIngestCopy, copy);
    if (copied.ok()) {
      ENRICHD_RETURN_IF_ERROR(txn.Commit());
      return done(batch_rows);
    }
    if (conn_->last_sqlstate() != "23505") return copied;
    ingest_expect_new_ = false;
  }
  ENRICHD_RETURN_IF_ERROR(conn_->Exec(kIngestTempTables).status());
  {
    pg::Transaction txn(*conn_);
    ENRICHD_RETURN_IF_ERROR(txn.Begin());
    ENRICHD_RETURN_IF_ERROR(conn_->CopyIn(kIngestProbeCopy, copy_text(unique, false)));
    ENRICHD_ASSIGN_OR_RETURN(PgResult existing, conn_->Exec(kIngestExisting));
    std::vector<const SourceNode*> fresh;
    if (existing.rows() > 0) {
      std::unordered_set<LabelKey, LabelKeyHash> found;
      found.reserve(existing.rows());
      for (int i = 0; i < existing.rows(); ++i) {
        found.insert({existing.Text(i, 0), existing.Text(i, 1)});
      }
      fresh.reserve(unique.size() - found.size());
      for (const SourceNode* n : unique) {
        if (!found.contains({n->label, n->key})) fresh.push_back(n);
      }
      copy = copy_text(fresh, true);
    }
    // A batch without existing keys: try the unchecked copy again with the next one.
    ingest_expect_new_ = existing.rows() == 0;
    const int64_t added = existing.rows() > 0 ? static_cast<int64_t>(fresh.size()) : batch_rows;
    Status copied = added > 0 ? conn_->CopyIn(kIngestCopy, copy) : Status::Ok();
    if (copied.ok()) {
      ENRICHD_RETURN_IF_ERROR(txn.Commit());
      return done(added);
    }
    if (conn_->last_sqlstate() != "23505") return copied;
  }
  // A concurrent ingester committed one of these keys after the probe: insert through
  // the staging table, skipping conflicts.
  copy = copy_text(unique, true);
  pg::Transaction txn(*conn_);
  ENRICHD_RETURN_IF_ERROR(txn.Begin());
  ENRICHD_RETURN_IF_ERROR(conn_->Exec(kBulkWorkMem).status());
  ENRICHD_RETURN_IF_ERROR(
      conn_->CopyIn("COPY enrichd_ingest (label, key, props) FROM STDIN", copy));
  ENRICHD_ASSIGN_OR_RETURN(PgResult inserted, conn_->Exec(kIngestInsertRacing));
  ENRICHD_RETURN_IF_ERROR(txn.Commit());
  return done(inserted.Affected());
}

Result<int64_t> PostgresStore::PlanNew(Connection& conn, std::span<const PlanPair> pairs,
                                       const std::string& now_ms) {
  for (bool racing : {false, true}) {
    pg::Transaction txn(conn);
    ENRICHD_RETURN_IF_ERROR(txn.Begin());
    ENRICHD_RETURN_IF_ERROR(conn.Exec(kBulkWorkMem).status());
    // The anti-join reads every node of the label: a hash or merge join at any size. A
    // nested loop (one index probe per node) is what the planner picks when the tables
    // were not analysed since a large ingest or plan, and costs 4x (1M nodes: 4.4 s
    // instead of 1 s); the cursor is also read to its end, not for its first rows.
    ENRICHD_RETURN_IF_ERROR(conn.Exec("SET LOCAL enable_nestloop = off; "
                                      "SET LOCAL cursor_tuple_fraction = 1.0; "
                                      "SET LOCAL standard_conforming_strings = on")
                                .status());
    int64_t planned = 0;
    bool conflict = false;
    for (const PlanPair& p : pairs) {
      if (racing) {
        ENRICHD_ASSIGN_OR_RETURN(PgResult added, conn.Prepared("plan_new_racing", kPlanNewRacing,
                                                               {*p.provider, *p.label, now_ms}));
        planned += added.Affected();
        continue;
      }
      if (HasNul(*p.provider) || HasNul(*p.label)) {
        return InvalidArgumentError("provider or label contains a NUL character");
      }
      ENRICHD_RETURN_IF_ERROR(
          conn.Exec(PlanNewCursor(SqlLiteral(*p.provider), SqlLiteral(*p.label))).status());
      // Every line is "<node id>\t<provider>\tpending\t0\t<now>\t0\t<now>\n".
      std::string suffix = "\t";
      pg::AppendCopyField(suffix, *p.provider);
      suffix += "\tpending\t0\t" + now_ms + "\t0\t" + now_ms + "\n";
      const std::string fetch = "FETCH " + std::to_string(kPlanChunkRows) + " FROM enrichd_plan";
      std::string copy;
      for (;;) {
        ENRICHD_ASSIGN_OR_RETURN(PgResult ids, conn.Exec(fetch));
        if (ids.rows() == 0) break;
        copy.clear();
        for (int i = 0; i < ids.rows(); ++i) {
          copy += ids.Text(i, 0);
          copy += suffix;
        }
        if (Status s = conn.CopyIn(kPlanCopy, copy); !s.ok()) {
          // Another planner committed one of these tasks after our snapshot: redo.
          if (conn.last_sqlstate() == "23505") {
            conflict = true;
            break;
          }
          return s;
        }
        planned += ids.rows();
        if (ids.rows() < kPlanChunkRows) break;
      }
      if (conflict) break;
      ENRICHD_RETURN_IF_ERROR(conn.Exec("CLOSE enrichd_plan").status());
    }
    if (conflict) continue;
    ENRICHD_RETURN_IF_ERROR(txn.Commit());
    return planned;
  }
  return InternalError("unreachable: planning retry loop");
}

Connection* PostgresStore::PlanConnection() {
  if (plan_conn_ == nullptr && !plan_conn_failed_) {
    auto opened = Connection::Open(url_);
    if (opened.ok()) {
      plan_conn_ = std::move(opened).value();
    } else {
      plan_conn_failed_ = true;  // not worth an error: planning works on one connection
    }
  }
  return plan_conn_.get();
}

Result<int64_t> PostgresStore::PlanDueTasks(std::span<const ProviderPlan> providers, WallTime now) {
  std::vector<std::string> names;
  std::vector<PlanPair> pairs;
  for (const ProviderPlan& p : providers) {
    if (!p.applies_to.empty()) names.push_back(p.provider);
    for (const std::string& label : p.applies_to) pairs.push_back({&p.provider, &label});
  }
  if (names.empty()) return int64_t{0};
  const std::string now_ms = Num(ToUnixMillis(now));
  // Creating tasks is CPU-bound in one server process. With several (provider, label)
  // pairs, every other pair is planned on a second connection at the same time (each
  // provider's entries go to their own range of the unique and claim indexes; task ids
  // of the two halves interleave). Each half commits on its own: planning is
  // idempotent, so after a failure the next call completes what is missing.
  Connection* second = pairs.size() > 1 ? PlanConnection() : nullptr;
  std::vector<PlanPair> mine, theirs;
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    (second != nullptr && i % 2 ? theirs : mine).push_back(pairs[i]);
  }
  Result<int64_t> other = int64_t{0};
  std::thread worker;
  if (!theirs.empty()) {
    try {
      worker = std::thread([&] { other = PlanNew(*second, theirs, now_ms); });
    } catch (const std::system_error&) {
      mine = pairs;  // no thread to be had: plan everything here
    }
  }
  Result<int64_t> own = PlanNew(*conn_, mine, now_ms);
  if (worker.joinable()) worker.join();
  ENRICHD_RETURN_IF_ERROR(own.status());
  ENRICHD_RETURN_IF_ERROR(other.status());
  const int64_t planned = *own + *other;
  ENRICHD_ASSIGN_OR_RETURN(int64_t refreshed,
                           Affected("plan_expired", kPlanExpired, {TextArray(names), now_ms}));
  return planned + refreshed;
}

Result<std::vector<ClaimedTask>> PostgresStore::ClaimTasks(const ClaimRequest& request) {
  std::vector<ClaimedTask> out;
  if (request.max_tasks == 0) return out;
  if (request.lease_owner.empty()) return InvalidArgumentError("ClaimTasks: empty lease_owner");
  const int64_t now = ToUnixMillis(request.now);
  const int64_t until = ToUnixMillis(request.now + request.lease_for);
  ENRICHD_ASSIGN_OR_RETURN(PgResult r,
                           conn_->Prepared("claim", kClaim,
                                           {Num(now), TextArray(request.providers),
                                            Num(static_cast<int64_t>(request.max_tasks)),
                                            request.lease_owner, Num(until)}));
  out.reserve(r.rows());
  for (int i = 0; i < r.rows(); ++i) {
    ClaimedTask t;
    t.task_id = r.Int(i, 0);
    t.claim_seq = r.Int(i, 1);
    t.node_id = r.Int(i, 2);
    t.label = r.Text(i, 3);
    t.key = r.Text(i, 4);
    t.provider = r.Text(i, 5);
    t.attempts = static_cast<int>(r.Int(i, 6));
    out.push_back(std::move(t));
  }
  return out;
}

Result<int64_t> PostgresStore::CompleteTasks(std::span<const TaskCompletion> completions) {
  if (completions.empty()) return int64_t{0};
  std::vector<int64_t> ids, seqs, expires;
  std::vector<std::string> statuses, fetched;
  std::string props;  // RS-separated, see kComplete
  ids.reserve(completions.size());
  for (const TaskCompletion& c : completions) {
    const EnrichmentResult& r = c.result;
    if (!IsAnswer(r.outcome)) {
      return InvalidArgumentError("task " + Num(c.task_id) + ": outcome '" +
                                  std::string(OutcomeName(r.outcome)) +
                                  "' is not an answer to store");
    }
    json data;
    if (!IsJsonObject(r.data_json, &data)) {
      return InvalidArgumentError("task " + Num(c.task_id) + ": data is not a JSON object");
    }
    const Provenance& p = r.provenance;
    const std::string fetched_at = FormatRfc3339(p.fetched_at);
    // "provider" is added by the statement (from the task row), see kComplete.
    json j = {
        {"kind", r.kind},
        {"status", OutcomeName(r.outcome)},
        {"data", std::move(data)},
        {"adapter", p.adapter},
        {"adapter_version", p.adapter_version},
        {"endpoint", p.endpoint},
        {"http_status", p.http_status},
        {"expires_at", FormatRfc3339(p.expires_at)},
        {"attempts", p.attempts},
        {"latency_ms", std::chrono::duration_cast<std::chrono::milliseconds>(p.latency).count()},
        {"response_digest", p.response_digest},
        {"run_id", p.run_id},
    };
    ids.push_back(c.task_id);
    seqs.push_back(c.claim_seq);
    expires.push_back(ToUnixMillis(p.expires_at));
    statuses.emplace_back(r.outcome == Outcome::kOk ? "done" : "no_data");
    if (!props.empty()) props.push_back('\x1e');
    props += j.dump(-1, ' ', false, json::error_handler_t::replace);
    props.pop_back();  // the closing brace
    props += ",\"fetched_at\":";
    props += json(fetched_at).dump();
    props += ",\"provider\":";
    fetched.push_back(fetched_at);
  }
  ENRICHD_ASSIGN_OR_RETURN(PgResult r,
                           conn_->Prepared("complete", kComplete,
                                           {IntArray(ids), IntArray(seqs), TextArray(statuses),
                                            IntArray(expires), props, TextArray(fetched)}));
  return r.Int(0, 0);
}

std::string BoolArray(const std::vector<bool>& values) {
  std::string out = "{";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i) out.push_back(',');
    out.push_back(values[i] ? 't' : 'f');
  }
  out.push_back('}');
  return out;
}

Result<int64_t> PostgresStore::ScheduleRetries(std::span<const TaskRetry> retries) {
  if (retries.empty()) return int64_t{0};
  std::vector<int64_t> ids, seqs, next;
  std::vector<std::string> errors;
  std::vector<bool> counts;
  for (const TaskRetry& r : retries) {
    ids.push_back(r.task_id);
    seqs.push_back(r.claim_seq);
    next.push_back(ToUnixMillis(r.next_attempt_at));
    errors.push_back(HasNul(r.last_error) ? std::string("(error text with NUL)") : r.last_error);
    counts.push_back(r.count_attempt);
  }
  return Affected(
      "retry", kRetry,
      {IntArray(ids), IntArray(seqs), IntArray(next), TextArray(errors), BoolArray(counts)});
}

Result<int64_t> PostgresStore::FinishTasks(std::span<const TaskFinal> finals) {
  if (finals.empty()) return int64_t{0};
  std::vector<int64_t> ids, seqs;
  std::vector<std::string> statuses, reasons;
  std::vector<bool> counts;
  for (const TaskFinal& f : finals) {
    if (f.status != TaskStatus::kSkipped && f.status != TaskStatus::kDead) {
      return InvalidArgumentError("task " + Num(f.task_id) +
                                  ": FinishTasks takes skipped or "
                                  "dead, not '" +
                                  std::string(TaskStatusName(f.status)) + "'");
    }
    ids.push_back(f.task_id);
    seqs.push_back(f.claim_seq);
    statuses.emplace_back(TaskStatusName(f.status));
    reasons.push_back(HasNul(f.reason) ? std::string("(reason with NUL)") : f.reason);
    counts.push_back(f.count_attempt);
  }
  return Affected(
      "finish", kFinish,
      {IntArray(ids), IntArray(seqs), TextArray(statuses), TextArray(reasons), BoolArray(counts)});
}

Result<int64_t> PostgresStore::RenewLeases(std::string_view lease_owner,
                                           std::span<const int64_t> task_ids, WallTime until) {
  if (task_ids.empty()) return int64_t{0};
  return Affected(
      "renew", kRenew,
      {std::string(lease_owner), IntArray(std::vector<int64_t>(task_ids.begin(), task_ids.end())),
       Num(ToUnixMillis(until))});
}

Result<int64_t> PostgresStore::ReleaseLeases(std::string_view lease_owner) {
  return Affected("release", kRelease, {std::string(lease_owner)});
}

Result<int64_t> PostgresStore::ReclaimExpiredLeases(WallTime now) {
  return Affected("reclaim", kReclaim, {Num(ToUnixMillis(now))});
}

Result<int64_t> PostgresStore::Requeue(const RequeueRequest& request, WallTime now) {
  Params params = {Num(ToUnixMillis(now)), request.provider};
  if (request.dead) return Affected("requeue_dead", kRequeueDead, params);
  return Affected("requeue_waiting", kRequeueWaiting, params);
}

Result<StoreCounts> PostgresStore::Counts() {
  StoreCounts counts;
  pg::Transaction txn(*conn_);  // one snapshot for both queries
  ENRICHD_RETURN_IF_ERROR(txn.Begin("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"));
  ENRICHD_ASSIGN_OR_RETURN(PgResult g, conn_->Prepared("count_graph", kCountGraph, {}));
  counts.nodes = g.Int(0, 0);
  counts.edges = g.Int(0, 1);
  ENRICHD_ASSIGN_OR_RETURN(PgResult t, conn_->Prepared("count_tasks", kCountTasks, {}));
  for (int i = 0; i < t.rows(); ++i) {
    ProviderCounts& c = counts.providers[std::string(t.Text(i, 0))];
    const int64_t n = t.Int(i, 2);
    switch (TaskStatusFromName(t.Text(i, 1)).value_or(TaskStatus::kDead)) {
      case TaskStatus::kPending:
        c.pending += n;
        break;
      case TaskStatus::kRunning:
        c.running += n;
        break;
      case TaskStatus::kDone:
        c.done += n;
        break;
      case TaskStatus::kNoData:
        c.no_data += n;
        break;
      case TaskStatus::kSkipped:
        c.skipped += n;
        break;
      case TaskStatus::kDead:
        c.dead += n;
        break;
    }
  }
  ENRICHD_RETURN_IF_ERROR(txn.Commit());
  return counts;
}

Result<std::optional<NodeView>> PostgresStore::GetNode(std::string_view label,
                                                       std::string_view key) {
  if (HasNul(label) || HasNul(key)) return std::optional<NodeView>();
  pg::Transaction txn(*conn_);
  ENRICHD_RETURN_IF_ERROR(txn.Begin("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"));
  ENRICHD_ASSIGN_OR_RETURN(
      PgResult n, conn_->Prepared("get_node", kGetNode, {std::string(label), std::string(key)}));
  if (n.rows() == 0) {
    ENRICHD_RETURN_IF_ERROR(txn.Commit());
    return std::optional<NodeView>();
  }
  NodeView view;
  view.node = {n.Int(0, 0), std::string(n.Text(0, 1)), std::string(n.Text(0, 2)),
               NormalizeJson(n.Text(0, 3))};
  ENRICHD_ASSIGN_OR_RETURN(
      PgResult e, conn_->Prepared("get_enrichments", kGetEnrichments, {Num(view.node.id)}));
  for (int i = 0; i < e.rows(); ++i) {
    view.edges.push_back({e.Int(i, 0), std::string(e.Text(i, 1)), e.Int(i, 2), e.Int(i, 3),
                          NormalizeJson(e.Text(i, 4))});
    view.enrichments.push_back({e.Int(i, 5), std::string(e.Text(i, 6)), std::string(e.Text(i, 7)),
                                NormalizeJson(e.Text(i, 8))});
  }
  ENRICHD_RETURN_IF_ERROR(txn.Commit());
  return std::optional<NodeView>(std::move(view));
}

Status PostgresStore::ExportCursor(const char* cursor_sql, bool nodes, ExportSink& sink) {
  ENRICHD_RETURN_IF_ERROR(conn_->Exec(cursor_sql).status());
  const std::string fetch = std::string("FETCH ") + std::to_string(kExportFetchRows) +
                            (nodes ? " FROM enrichd_export_nodes" : " FROM enrichd_export_edges");
  for (;;) {
    ENRICHD_ASSIGN_OR_RETURN(PgResult r, conn_->Exec(fetch));
    for (int i = 0; i < r.rows(); ++i) {
      if (nodes) {
        StoredNode n{r.Int(i, 0), std::string(r.Text(i, 1)), std::string(r.Text(i, 2)),
                     NormalizeJson(r.Text(i, 3))};
        ENRICHD_RETURN_IF_ERROR(sink.OnNode(n));
      } else {
        StoredEdge e{r.Int(i, 0), std::string(r.Text(i, 1)), r.Int(i, 2), r.Int(i, 3),
                     NormalizeJson(r.Text(i, 4))};
        ENRICHD_RETURN_IF_ERROR(sink.OnEdge(e));
      }
    }
    if (r.rows() < kExportFetchRows) return Status::Ok();
  }
}

Status PostgresStore::Export(ExportSink& sink) {
  // One snapshot for the whole export, so every edge's ends are among the nodes exported.
  pg::Transaction txn(*conn_);
  ENRICHD_RETURN_IF_ERROR(txn.Begin("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"));
  ENRICHD_RETURN_IF_ERROR(
      ExportCursor("DECLARE enrichd_export_nodes NO SCROLL CURSOR FOR "
                   "SELECT id, label, key, props::text FROM nodes ORDER BY id",
                   true, sink));
  ENRICHD_RETURN_IF_ERROR(
      ExportCursor("DECLARE enrichd_export_edges NO SCROLL CURSOR FOR "
                   "SELECT id, type, src, dst, props::text FROM edges ORDER BY id",
                   false, sink));
  return txn.Commit();
}

}  // namespace

Result<std::unique_ptr<GraphStore>> OpenPostgresStore(std::string_view url) {
  ENRICHD_ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn, Connection::Open(url));
  auto store = std::make_unique<PostgresStore>(std::move(conn), std::string(url));
  ENRICHD_RETURN_IF_ERROR(store->Migrate());
  return std::unique_ptr<GraphStore>(std::move(store));
}

}  // namespace enrichd

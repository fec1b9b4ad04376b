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
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <unordered_set>
#include <utility>
#include <vector>

#include "enrichd/json_text.h"
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

// Re-serialises stored json text the way the rest of enrichd writes JSON (nlohmann,
// sorted keys, compact), so both backends export byte-identical props.
std::string NormalizeJson(std::string_view text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return std::string(text);
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

// Whether `text` is one JSON object (and nothing else), checked without building a tree.
bool IsJsonObjectText(std::string_view text) {
  const std::size_t first = text.find_first_not_of(" \t\r\n");
  return first != std::string_view::npos && text[first] == '{' && json::accept(text);
}

// (label, key) viewing the caller's strings, for de-duplicating a batch.
using LabelKey = std::pair<std::string_view, std::string_view>;
struct LabelKeyHash {
  std::size_t operator()(const LabelKey& k) const {
    const std::hash<std::string_view> h;
    return h(k.first) * 31 + h(k.second);
  }
};

// A Bloom filter of (label, key) pairs: "maybe" for every pair added, rarely for others.
// 4 MB, allocated on the first Add; 4 probes: ~0.02 % false positives after 1M pairs,
// ~25 % after 10M (a false positive costs one lookup of that key).
class KeyFilter {
 public:
  bool MayContain(std::string_view label, std::string_view key) const {
    if (words_.empty()) return false;
    uint64_t h1, h2;
    Hashes(label, key, h1, h2);
    for (int i = 0; i < kProbes; ++i) {
      const uint64_t bit = (h1 + i * h2) & (kBits - 1);
      if ((words_[bit >> 6] & (uint64_t{1} << (bit & 63))) == 0) return false;
    }
    return true;
  }
  void Add(std::string_view label, std::string_view key) {
    if (words_.empty()) words_.assign(kBits / 64, 0);
    uint64_t h1, h2;
    Hashes(label, key, h1, h2);
    for (int i = 0; i < kProbes; ++i) {
      const uint64_t bit = (h1 + i * h2) & (kBits - 1);
      words_[bit >> 6] |= uint64_t{1} << (bit & 63);
    }
  }

 private:
  static constexpr uint64_t kBits = uint64_t{1} << 25;
  static constexpr int kProbes = 4;
  static void Hashes(std::string_view label, std::string_view key, uint64_t& h1, uint64_t& h2) {
    const std::hash<std::string_view> h;
    uint64_t x = h(key) ^ (h(label) * 0x9E3779B97F4A7C15ULL);
    h1 = x;
    // splitmix64 finaliser: a second, independent-looking hash for the probe stride.
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    h2 = (x ^ (x >> 31)) | 1;
  }
  std::vector<uint64_t> words_;
};

bool HasNul(std::string_view s) { return s.find('\0') != std::string_view::npos; }

// Task ids are a provider's slot << 48 | the node id (schema 3).
constexpr int64_t kNodeIdLimit = int64_t{1} << 48;

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

// The batch's keys that are stored already, one probe of the unique index per key: with
// hash and merge joins off (kIngestProbePlan, in the probing transaction) the semi-join
// is a nested loop over the batch, where the planner would otherwise hash or scan the
// whole nodes table for every batch (a batch must cost what it holds). Cheaper than a
// correlated subquery per row (100k keys against 1M nodes: 420 ms instead of 690 ms).
constexpr const char* kIngestProbePlan =
    "SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off";
constexpr const char* kIngestExisting = R"sql(
SELECT p.label, p.key FROM enrichd_probe p
WHERE EXISTS (SELECT 1 FROM nodes n WHERE n.label = p.label AND n.key = p.key))sql";

// Adds the batch's nodes that are not present yet, in (label, key) order, when a
// concurrent ingester added one of the keys after our probe.
constexpr const char* kIngestInsertRacing = R"sql(
INSERT INTO nodes (label, key, props)
SELECT i.label, i.key, i.props::json FROM enrichd_ingest i
WHERE NOT EXISTS (SELECT 1 FROM nodes n WHERE n.label = i.label AND n.key = i.key OFFSET 0)
ORDER BY i.label, i.key
ON CONFLICT (label, key) DO NOTHING)sql";

// Planning new tasks: one task per node of the label that has none yet for the provider.
// The node ids are read through a cursor in chunks and written back with COPY: COPY
// inserts a page of heap tuples at a time (one WAL record per page), where INSERT ...
// SELECT inserts row by row (1M tasks: 10.3-11.2 s with INSERT ... SELECT, 1.4 s +
// 6.1-8.5 s with SELECT + COPY, busy machine; the index insertions are the same).
// A task's id is its provider's slot << 48 | node id (schema 3), computed here; the
// same chunk is copied into tasks and into task_queue. No conflict handling: a
// concurrent planner's conflict (23505) redoes the transaction with kPlanNewRacing.
// DECLARE takes no parameters: the label is an SQL literal (SqlLiteral), `first_id` the
// provider's slot << 48.
std::string PlanNewCursor(int64_t first_id, std::string_view label_literal) {
  const std::string lo = std::to_string(first_id);
  const std::string hi = std::to_string(first_id + kNodeIdLimit);
  return "DECLARE enrichd_plan NO SCROLL CURSOR FOR SELECT n.id FROM nodes n WHERE n.label = " +
         std::string(label_literal) + " AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.id = " + lo +
         " + n.id AND t.id >= " + lo + " AND t.id < " + hi + ") ORDER BY n.id";
}
constexpr const char* kPlanCopy =
    "COPY tasks (id, node_id, provider, status, attempts, next_attempt_at, claim_seq, "
    "updated_at) FROM STDIN";
constexpr const char* kPlanQueueCopy =
    "COPY task_queue (slot, next_attempt_at, first_id, task_ids) FROM STDIN";
// Rows per FETCH / COPY while planning.
constexpr int kPlanChunkRows = 100000;
// Task ids per row of task_queue, task_leases and task_expiry (as in their statements).
constexpr int kQueueRowIds = 200;
// New tasks after which planning refreshes the statistics of tasks and task_queue.
constexpr int64_t kAnalyzeAfterPlanned = 1000;
// The CTE "q" that files the tasks of relation REL (columns id, next_at) in task_queue:
// up to kQueueRowIds ids a row per provider slot and due time, in id order. A macro, so
// that the statements using it stay string literals.
#define ENRICHD_FILE_IN_QUEUE(REL)                                                           \
  "q AS (\n"                                                                                 \
  "  INSERT INTO task_queue (slot, next_attempt_at, first_id, task_ids)\n"                   \
  "  SELECT k.slot, k.next_at, min(k.id), array_agg(k.id ORDER BY k.id)\n"                   \
  "  FROM (SELECT (id >> 48)::smallint AS slot, next_at, id,\n"                              \
  "               row_number() OVER (PARTITION BY id >> 48, next_at ORDER BY id) - 1 AS i\n" \
  "        FROM " REL                                                                        \
  ") k\n"                                                                                    \
  "  GROUP BY k.slot, k.next_at, k.i / 200)"

// $1 provider, $2 label, $3 now, $4 the provider's slot << 48.
constexpr const char* kPlanNewRacing = R"sql(
WITH ins AS (
  INSERT INTO tasks (id, node_id, provider, status, attempts, next_attempt_at, claim_seq,
                     updated_at)
  SELECT $4::bigint + n.id, n.id, $1, 'pending', 0, $3, 0, $3
  FROM nodes n
  WHERE n.label = $2 AND n.id < 281474976710656
    AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.id = $4::bigint + n.id)
  ORDER BY n.id
  ON CONFLICT (id) DO NOTHING
  RETURNING id, next_attempt_at AS next_at),
)sql" ENRICHD_FILE_IN_QUEUE("ins") R"sql(
SELECT count(*) FROM ins)sql";

// $1 provider names: gives each one without a slot the next free one. A concurrent
// planner may take the same slot for another name (ON CONFLICT: ours is then missing,
// and the caller tries again).
constexpr const char* kAddProviders = R"sql(
INSERT INTO providers (slot, name)
SELECT (SELECT coalesce(max(slot), 0) FROM providers) + row_number() OVER (ORDER BY w.name),
       w.name
FROM (SELECT DISTINCT unnest($1::text[]) AS name) w
WHERE NOT EXISTS (SELECT 1 FROM providers p WHERE p.name = w.name)
ON CONFLICT DO NOTHING)sql";
constexpr const char* kProviderSlots =
    "SELECT name, slot FROM providers WHERE name = ANY($1::text[])";

// The side tables of schema 3 (sql/postgres/0003_task_ids_queues_json.sql): tasks is
// indexed only by its id, so that a status change is a HOT update (no index insertion).
// task_queue holds the pending tasks (up to 200 ids a row sharing a provider slot and a
// next_attempt_at, in the order claims take them), task_leases one row per claimed batch
// (owner, earliest lease expiry, task ids) and task_expiry one row per completed batch
// and provider (earliest expiry, task ids). The task row is the truth: every statement
// that reads a side table re-checks the task, and what a side-table row names may have
// moved on (finished, re-claimed) since. A row holds at most 200 ids: 1.6 kB of array,
// below the size from which PostgreSQL compresses a row (pglz on a 4 kB array of 500 ids
// cost ~4 % of a claim + completion's server time).

// $1 providers, $2 now: answers that expired become due again. The expiry rows due are
// taken; their tasks that are still answered but not yet expired are filed again.
constexpr const char* kPlanExpired = R"sql(
WITH b AS (
  DELETE FROM task_expiry WHERE provider = ANY($1::text[]) AND expires_at <= $2
  RETURNING task_ids),
ids AS MATERIALIZED (SELECT DISTINCT unnest(b.task_ids) AS id FROM b),
r AS (
  UPDATE tasks t SET status = 'pending', attempts = 0, next_attempt_at = $2, last_error = NULL,
                     updated_at = $2
  FROM ids
  WHERE t.id = ids.id AND t.status IN ('done', 'no_data') AND t.expires_at <= $2
  RETURNING t.id, t.provider, t.next_attempt_at AS next_at),
)sql" ENRICHD_FILE_IN_QUEUE("r") R"sql(,
keep AS (
  INSERT INTO task_expiry (provider, expires_at, task_ids)
  SELECT k.provider, min(k.expires_at), array_agg(k.id)
  FROM (SELECT t.provider, t.expires_at, t.id,
               row_number() OVER (PARTITION BY t.provider) - 1 AS i
        FROM ids JOIN tasks t ON t.id = ids.id
        WHERE t.status IN ('done', 'no_data') AND t.expires_at > $2) k
  GROUP BY k.provider, k.i / 200)
SELECT count(*) FROM r)sql";

// $1 now, $2 providers (empty: any), $3 limit, $4 owner, $5 lease expiry.
// Per provider, the oldest due rows of task_queue (rows that another worker holds locked
// are skipped, never waited for) and their ids in order; the oldest $3 ids of those are
// taken: the rows emptied are deleted, the others keep the ids after those taken, the
// tasks are marked running (a HOT update), and the batch is filed in task_leases. With
// no provider given, every provider that ever had tasks (the table providers) is tried.
// A queue row is named by its qid (a serial that never changes), not by its ctid: a row
// that another claim updated after this statement's snapshot is re-checked in its new
// version, whose ctid no longer matches (the ids taken then stayed in the queue, and
// later claims found only tasks that were no longer pending: empty claims while tasks
// were left). first_id (the row's first id when it was filed) only orders rows.
// It runs a generic plan (planned once per session; custom planning was 0.6 ms a claim),
// so every table is reached through an index whatever the estimates: ids as arrays
// (= ANY), the node by a LATERAL subquery the planner cannot turn into a join. (Written
// as plain joins, the generic plan's guess for LIMIT $3 made it hash whole tables: 50-70 s
// of server time for 200k tasks instead of 9 s.)
constexpr const char* kClaim = R"sql(
WITH wanted AS (
  SELECT p.slot FROM providers p
  WHERE cardinality($2::text[]) = 0 OR p.name = ANY($2::text[])),
c AS MATERIALIZED (
  SELECT y.* FROM wanted w CROSS JOIN LATERAL (
    SELECT x.qid, x.next_attempt_at, x.first_id, x.n, e.id, e.ord
    FROM (SELECT q.qid, q.next_attempt_at, q.first_id, q.task_ids,
                 cardinality(q.task_ids) AS n
          FROM task_queue q
          WHERE q.slot = w.slot AND q.next_attempt_at <= $1
          ORDER BY q.next_attempt_at, q.first_id LIMIT $3
          FOR UPDATE SKIP LOCKED) x
    CROSS JOIN LATERAL unnest(x.task_ids) WITH ORDINALITY AS e(id, ord)
    LIMIT $3) y
  ORDER BY y.next_attempt_at, y.first_id, y.ord LIMIT $3),
taken AS (SELECT c.qid, max(c.ord) AS k, max(c.n) AS n FROM c GROUP BY c.qid),
gone AS (
  DELETE FROM task_queue q
  WHERE q.qid = ANY(ARRAY(SELECT taken.qid FROM taken WHERE taken.k >= taken.n))),
rest AS (
  UPDATE task_queue q SET task_ids = q.task_ids[taken.k + 1:]
  FROM taken
  WHERE q.qid = ANY(ARRAY(SELECT taken.qid FROM taken WHERE taken.k < taken.n))
    AND q.qid = taken.qid),
u AS (
  UPDATE tasks t SET status = 'running', lease_owner = $4, lease_expires_at = $5,
                     claim_seq = t.claim_seq + 1, updated_at = $1
  FROM c
  WHERE t.id = ANY(ARRAY(SELECT c.id FROM c)) AND t.id = c.id AND t.status = 'pending'
  RETURNING t.id, t.claim_seq, t.node_id, t.provider, t.attempts, c.next_attempt_at, c.first_id,
            c.ord),
l AS (
  INSERT INTO task_leases (lease_expires_at, lease_owner, task_ids)
  SELECT $5, $4, array_agg(k.id) FROM (SELECT u.id, row_number() OVER () - 1 AS i FROM u) k
  GROUP BY k.i / 200)
SELECT u.id, u.claim_seq, u.node_id, n.label, n.key, u.provider, u.attempts
FROM u CROSS JOIN LATERAL (SELECT n.label, n.key FROM nodes n WHERE n.id = u.node_id OFFSET 0) n
ORDER BY u.next_attempt_at, u.first_id, u.ord)sql";

// $1 task ids, $2 claim seqs, $3 statuses, $4 expires_at, $5 props: a JSON object's text
// up to the value of its last member "provider", which the statement appends (from the
// task row) with the closing brace, so the props are parsed once and never merged. They
// come joined by the control character RS (0x1E), which JSON text never holds unescaped:
// splitting is cheaper than parsing a text[] literal in which every quote is escaped.
// $6 fetched_at (RFC 3339), for the edge. updated_at (diagnostic only) is the server's clock.
// One statement: task status, superseding older answers of the same (node, provider),
// the enrichment node and its edge, and the batch's expiry row per provider. The
// enrichment node ids are drawn up front (in input order), so the node and the edge are
// written side by side from `done` without a RETURNING round through the node insert.
// Only a task claimed before (claim_seq > 1) can have an older answer: first answers
// skip the superseding join altogether. The running-check compares with c.running, a
// value of the materialised CTE and not a constant, so the update finds its rows by id.
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
  RETURNING t.id, t.node_id, t.provider, t.claim_seq, c.props, c.fetched_at, c.enrichment_id,
            c.expires_at),
superseded AS (
  UPDATE nodes n SET props = (n.props::jsonb || '{"superseded": true}'::jsonb)::json
  FROM done d JOIN edges e ON e.src = d.node_id
  WHERE d.claim_seq > 1 AND e.type = 'ENRICHED_BY' AND e.props ->> 'provider' = d.provider
    AND n.id = e.dst AND n.props -> 'superseded' IS NULL),
ins AS (
  INSERT INTO nodes (id, label, key, props)
  SELECT d.enrichment_id, 'enrichment', d.provider || '/' || d.node_id || '/' || d.claim_seq,
         (d.props || to_json(d.provider)::text || '}')::json
  FROM done d),
edge AS (
  INSERT INTO edges (type, src, dst, props)
  SELECT 'ENRICHED_BY', d.node_id, d.enrichment_id,
         ('{"provider":' || to_json(d.provider)::text || ',"fetched_at":' ||
          to_json(d.fetched_at)::text || '}')::json
  FROM done d ORDER BY d.enrichment_id),
exp AS (
  INSERT INTO task_expiry (provider, expires_at, task_ids)
  SELECT k.provider, min(k.expires_at), array_agg(k.id)
  FROM (SELECT d.provider, d.expires_at, d.id,
               row_number() OVER (PARTITION BY d.provider) - 1 AS i FROM done d) k
  GROUP BY k.provider, k.i / 200)
SELECT count(*) FROM done)sql";

// $1 ids, $2 claim seqs, $3 next_attempt_at, $4 errors, $5 count attempt.
constexpr const char* kRetry = R"sql(
WITH c AS MATERIALIZED (
  SELECT c.*, 'running'::text AS running
  FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[], $5::bool[])
    AS c(task_id, claim_seq, next_at, err, counts)),
r AS (
  UPDATE tasks t SET status = 'pending',
                     attempts = t.attempts + CASE WHEN c.counts THEN 1 ELSE 0 END,
                     next_attempt_at = c.next_at, last_error = c.err,
                     lease_owner = NULL, lease_expires_at = NULL,
                     updated_at = (extract(epoch FROM now()) * 1000)::bigint
  FROM c
  WHERE t.id = c.task_id AND t.claim_seq = c.claim_seq AND t.status = c.running
  RETURNING t.id, t.provider, t.next_attempt_at AS next_at),
)sql" ENRICHD_FILE_IN_QUEUE("r") R"sql(
SELECT count(*) FROM r)sql";

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

// The lease rows stay as they are: reclaiming re-files the batch's tasks that are
// still running with a later lease.
constexpr const char* kRenew = R"sql(
UPDATE tasks SET lease_expires_at = $3
WHERE status = 'running' AND lease_owner = $1 AND id = ANY($2::bigint[]))sql";

// $1 owner: the owner's batches are taken, their tasks that are still running under
// this owner go back to the queue.
constexpr const char* kRelease = R"sql(
WITH b AS (DELETE FROM task_leases WHERE lease_owner = $1 RETURNING task_ids),
ids AS MATERIALIZED (SELECT DISTINCT unnest(b.task_ids) AS id FROM b),
r AS (
  UPDATE tasks t SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL
  FROM ids WHERE t.id = ids.id AND t.status = 'running' AND t.lease_owner = $1
  RETURNING t.id, t.provider, t.next_attempt_at AS next_at),
)sql" ENRICHD_FILE_IN_QUEUE("r") R"sql(
SELECT count(*) FROM r)sql";

// $1 now: the batches whose earliest lease expired are taken; their tasks whose lease
// expired go back to the queue, those still running under a renewed lease are filed
// again (per owner, with their earliest lease).
constexpr const char* kReclaim = R"sql(
WITH b AS (DELETE FROM task_leases WHERE lease_expires_at < $1 RETURNING task_ids),
ids AS MATERIALIZED (SELECT DISTINCT unnest(b.task_ids) AS id FROM b),
r AS (
  UPDATE tasks t SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL,
                     updated_at = $1
  FROM ids WHERE t.id = ids.id AND t.status = 'running' AND t.lease_expires_at < $1
  RETURNING t.id, t.provider, t.next_attempt_at AS next_at),
)sql" ENRICHD_FILE_IN_QUEUE("r") R"sql(,
keep AS (
  INSERT INTO task_leases (lease_expires_at, lease_owner, task_ids)
  SELECT min(k.lease_expires_at), k.lease_owner, array_agg(k.id)
  FROM (SELECT t.id, t.lease_owner, t.lease_expires_at,
               row_number() OVER (PARTITION BY t.lease_owner) - 1 AS i
        FROM ids JOIN tasks t ON t.id = ids.id
        WHERE t.status = 'running' AND t.lease_expires_at >= $1 AND t.lease_owner IS NOT NULL) k
  GROUP BY k.lease_owner, k.i / 200)
SELECT count(*) FROM r)sql";

// The CTEs "w" and "wid" that make the queue rows waiting for a retry ($1 now, $2
// provider or NULL) due now; wid holds their task ids.
#define ENRICHD_WAITING_DUE_NOW                                                               \
  "WITH w AS (\n"                                                                             \
  "  UPDATE task_queue SET next_attempt_at = $1\n"                                            \
  "  WHERE next_attempt_at > $1\n"                                                            \
  "    AND ($2::text IS NULL OR slot = (SELECT p.slot FROM providers p WHERE p.name = $2))\n" \
  "  RETURNING task_ids),\n"                                                                  \
  "wid AS (SELECT unnest(w.task_ids) AS task_id FROM w),\n"

// $1 now, $2 provider or NULL: pending tasks waiting for a retry become due now.
constexpr const char* kRequeueWaiting = ENRICHD_WAITING_DUE_NOW R"sql(
r AS (
  UPDATE tasks t SET next_attempt_at = $1, updated_at = $1
  FROM wid WHERE t.id = wid.task_id AND t.status = 'pending'
  RETURNING t.id)
SELECT count(*) FROM r)sql";

// The same, with attempts reset, and dead tasks back to the queue.
constexpr const char* kRequeueDead = ENRICHD_WAITING_DUE_NOW R"sql(
waiting AS (
  UPDATE tasks t SET attempts = 0, next_attempt_at = $1, last_error = NULL, updated_at = $1
  FROM wid WHERE t.id = wid.task_id AND t.status = 'pending'
  RETURNING t.id),
dead AS (
  UPDATE tasks SET status = 'pending', attempts = 0, next_attempt_at = $1, last_error = NULL,
                   updated_at = $1
  WHERE status = 'dead' AND ($2::text IS NULL OR provider = $2)
  RETURNING id, next_attempt_at AS next_at),
)sql" ENRICHD_FILE_IN_QUEUE("dead") R"sql(
SELECT (SELECT count(*) FROM waiting) + (SELECT count(*) FROM dead))sql";
#undef ENRICHD_FILE_IN_QUEUE
#undef ENRICHD_WAITING_DUE_NOW

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
  // For statements that end in SELECT count(*): that count.
  Result<int64_t> Count(const std::string& name, const char* sql, const Params& params) {
    ENRICHD_ASSIGN_OR_RETURN(PgResult r, conn_->Prepared(name, sql, params));
    return r.Int(0, 0);
  }
  Status ExportCursor(const char* cursor_sql, bool nodes, ExportSink& sink);

  // A (provider, label) pair to plan.
  struct PlanPair {
    const std::string* provider;
    const std::string* label;
    int64_t first_id;  // the provider's slot << 48: its tasks' ids are this + node id
  };
  // The providers' slots (schema 3: task ids are slot << 48 | node id), adding those
  // that have none yet.
  Result<std::map<std::string, int64_t>> ProviderSlots(const std::vector<std::string>& names);
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
  // The keys this object stored (or found stored), for the unchecked copy.
  KeyFilter stored_keys_;
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
    if (n.props_json != "{}" && !IsJsonObjectText(n.props_json)) {
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
  auto done = [&](int64_t added) {
    stats.added = added;
    stats.existing = static_cast<int64_t>(nodes.size()) - added;
    return stats;
  };
  // The new rows are copied straight into nodes, in (label, key) order: COPY inserts a
  // page of heap tuples at a time, where INSERT ... SELECT from a staging table inserts
  // row by row (bench/ingest_bench.sh, server CPU on a busy machine: 14.2-17.6 s ->
  // 10.1 s). While no batch met a key stored by someone else (a fresh ingest), only the
  // keys this store object may have stored itself (its filter stored_keys_) are looked
  // up first, and the rest is copied unchecked; a key stored by someone else fails the
  // copy (23505), and from then on every key of a batch is looked up first (one probe of
  // the unique index per key, 2-4 us) and the existing ones are left out of the copy.
  // (1M random IPs hold ~130 repeats: every batch of 100k had one, and was looked up
  // whole, ~35 % of the ingest's server time.)
  auto look_up = [&](std::span<const SourceNode* const> keys,
                     std::unordered_set<LabelKey, LabelKeyHash>& found) -> Status {
    ENRICHD_RETURN_IF_ERROR(conn_->CopyIn(kIngestProbeCopy, copy_text(keys, false)));
    ENRICHD_ASSIGN_OR_RETURN(PgResult existing, conn_->Exec(kIngestExisting));
    found.reserve(existing.rows());
    for (int i = 0; i < existing.rows(); ++i) {
      found.insert({existing.Text(i, 0), existing.Text(i, 1)});
    }
    return Status::Ok();
  };
  auto without = [&](const std::unordered_set<LabelKey, LabelKeyHash>& found) {
    std::vector<const SourceNode*> fresh;
    fresh.reserve(unique.size() - std::min(unique.size(), found.size()));
    for (const SourceNode* n : unique) {
      if (!found.contains({n->label, n->key})) fresh.push_back(n);
    }
    return fresh;
  };
  auto remember = [&] {
    for (const SourceNode* n : unique) stored_keys_.Add(n->label, n->key);
  };
  // One try: look the keys of `probe` up (none: the batch is copied unchecked), copy the
  // rest of the batch, commit. nullopt when a key stored by someone else made the copy
  // fail (23505). With `learn`, what the look-up found decides whether the next batch
  // may again look up only this object's own keys.
  auto attempt = [&](std::span<const SourceNode* const> probe,
                     bool learn) -> Result<std::optional<UpsertStats>> {
    if (!probe.empty()) ENRICHD_RETURN_IF_ERROR(conn_->Exec(kIngestTempTables).status());
    pg::Transaction txn(*conn_);
    ENRICHD_RETURN_IF_ERROR(txn.Begin());
    std::unordered_set<LabelKey, LabelKeyHash> found;
    if (!probe.empty()) {
      ENRICHD_RETURN_IF_ERROR(conn_->Exec(kIngestProbePlan).status());
      ENRICHD_RETURN_IF_ERROR(look_up(probe, found));
    }
    if (learn) {
      // A batch whose existing keys were all stored by this object: look up only those
      // again from the next batch on.
      ingest_expect_new_ = std::all_of(found.begin(), found.end(), [&](const LabelKey& k) {
        return stored_keys_.MayContain(k.first, k.second);
      });
    }
    const std::vector<const SourceNode*> fresh = found.empty() ? unique : without(found);
    Status copied =
        fresh.empty() ? Status::Ok() : conn_->CopyIn(kIngestCopy, copy_text(fresh, true));
    if (!copied.ok()) {
      if (conn_->last_sqlstate() != "23505") return copied;
      return std::optional<UpsertStats>();
    }
    ENRICHD_RETURN_IF_ERROR(txn.Commit());
    remember();
    return std::optional<UpsertStats>(done(static_cast<int64_t>(fresh.size())));
  };
  if (ingest_expect_new_) {
    std::vector<const SourceNode*> suspects;
    for (const SourceNode* n : unique) {
      if (stored_keys_.MayContain(n->label, n->key)) suspects.push_back(n);
    }
    ENRICHD_ASSIGN_OR_RETURN(std::optional<UpsertStats> added, attempt(suspects, false));
    if (added) return *added;
    ingest_expect_new_ = false;
  }
  {
    ENRICHD_ASSIGN_OR_RETURN(std::optional<UpsertStats> added, attempt(unique, true));
    if (added) return *added;
  }
  // A concurrent ingester committed one of these keys after the probe: insert through
  // the staging table, skipping conflicts.
  const std::string copy = copy_text(unique, true);
  pg::Transaction txn(*conn_);
  ENRICHD_RETURN_IF_ERROR(txn.Begin());
  ENRICHD_RETURN_IF_ERROR(conn_->Exec(kBulkWorkMem).status());
  ENRICHD_RETURN_IF_ERROR(
      conn_->CopyIn("COPY enrichd_ingest (label, key, props) FROM STDIN", copy));
  ENRICHD_ASSIGN_OR_RETURN(PgResult inserted, conn_->Exec(kIngestInsertRacing));
  ENRICHD_RETURN_IF_ERROR(txn.Commit());
  remember();
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
      const std::string first_id = Num(p.first_id);
      if (racing) {
        ENRICHD_ASSIGN_OR_RETURN(PgResult added,
                                 conn.Prepared("plan_new_racing", kPlanNewRacing,
                                               {*p.provider, *p.label, now_ms, first_id}));
        planned += added.Int(0, 0);
        continue;
      }
      if (HasNul(*p.provider) || HasNul(*p.label)) {
        return InvalidArgumentError("provider or label contains a NUL character");
      }
      ENRICHD_RETURN_IF_ERROR(conn.Exec(PlanNewCursor(p.first_id, SqlLiteral(*p.label))).status());
      // tasks: "<task id>\t<node id>\t<provider>\tpending\t0\t<now>\t0\t<now>\n";
      // task_queue, a row per kQueueRowIds tasks: "<slot>\t<now>\t<first id>\t{<id>,...}\n".
      std::string provider_field;
      pg::AppendCopyField(provider_field, *p.provider);
      const std::string task_suffix =
          "\t" + provider_field + "\tpending\t0\t" + now_ms + "\t0\t" + now_ms + "\n";
      const std::string queue_prefix = Num(p.first_id >> 48) + "\t" + now_ms + "\t";
      const std::string fetch = "FETCH " + std::to_string(kPlanChunkRows) + " FROM enrichd_plan";
      std::string copy, queue;
      for (;;) {
        ENRICHD_ASSIGN_OR_RETURN(PgResult ids, conn.Exec(fetch));
        if (ids.rows() == 0) break;
        copy.clear();
        queue.clear();
        for (int i = 0; i < ids.rows(); ++i) {
          const int64_t node_id = ids.Int(i, 0);
          if (node_id <= 0 || node_id >= kNodeIdLimit) {
            return FailedPreconditionError("node id " + Num(node_id) +
                                           " is beyond what a task id can name (2^48)");
          }
          const std::string task_id = Num(p.first_id + node_id);
          copy += task_id;
          copy += '\t';
          copy += ids.Text(i, 0);
          copy += task_suffix;
          if (i % kQueueRowIds == 0) {
            if (i > 0) queue += "}\n";
            queue += queue_prefix;
            queue += task_id;
            queue += "\t{";
          } else {
            queue += ',';
          }
          queue += task_id;
        }
        queue += "}\n";
        if (Status s = conn.CopyIn(kPlanCopy, copy); !s.ok()) {
          // Another planner committed one of these tasks after our snapshot: redo.
          if (conn.last_sqlstate() == "23505") {
            conflict = true;
            break;
          }
          return s;
        }
        ENRICHD_RETURN_IF_ERROR(conn.CopyIn(kPlanQueueCopy, queue));
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

Result<std::map<std::string, int64_t>> PostgresStore::ProviderSlots(
    const std::vector<std::string>& names) {
  std::map<std::string, int64_t> slots;
  const std::string array = TextArray(names);
  // Each round adds the missing names or loses their slots to a concurrent planner.
  for (int round = 0; round < 8; ++round) {
    ENRICHD_ASSIGN_OR_RETURN(PgResult r,
                             conn_->Prepared("provider_slots", kProviderSlots, {array}));
    for (int i = 0; i < r.rows(); ++i) slots[std::string(r.Text(i, 0))] = r.Int(i, 1);
    if (std::all_of(names.begin(), names.end(),
                    [&](const std::string& n) { return slots.contains(n); })) {
      return slots;
    }
    ENRICHD_RETURN_IF_ERROR(conn_->Prepared("add_providers", kAddProviders, {array}).status());
  }
  return UnavailableError(
      "could not number the providers (concurrent planners kept taking "
      "the same slots)");
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
    for (const std::string& label : p.applies_to) pairs.push_back({&p.provider, &label, 0});
  }
  if (names.empty()) return int64_t{0};
  for (const std::string& name : names) {
    if (HasNul(name)) return InvalidArgumentError("provider name contains a NUL character");
  }
  ENRICHD_ASSIGN_OR_RETURN(auto slots, ProviderSlots(names));
  for (PlanPair& p : pairs) p.first_id = slots.at(*p.provider) << 48;
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
  // Claims read task_queue by its index only when the planner knows the table is large:
  // right after a big plan its statistics still describe the queue before (often empty),
  // and claims would then sort the whole provider's queue on every call until
  // autovacuum's next analyze (100k tasks: 150 ms a claim instead of 12 ms). tasks gets a
  // small sample (3,000 rows: ~25 ms, where the default 30,000 took 1-1.2 s after 2M
  // tasks): enough for its size, and it replaces the generic plans of completions (in
  // every session) that were made while the table was small.
  if (planned >= kAnalyzeAfterPlanned) {
    ENRICHD_RETURN_IF_ERROR(conn_->Exec("ANALYZE task_queue").status());
    pg::Transaction txn(*conn_);
    ENRICHD_RETURN_IF_ERROR(txn.Begin());
    ENRICHD_RETURN_IF_ERROR(
        conn_->Exec("SET LOCAL default_statistics_target = 10; ANALYZE tasks").status());
    ENRICHD_RETURN_IF_ERROR(txn.Commit());
  }
  ENRICHD_ASSIGN_OR_RETURN(int64_t refreshed,
                           Count("plan_expired", kPlanExpired, {TextArray(names), now_ms}));
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
                                            request.lease_owner, Num(until)},
                                           Connection::PlanMode::kGeneric));
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
  std::string fetched_at, expires_at;
  std::optional<WallTime> last_fetched, last_expires;
  ids.reserve(completions.size());
  for (const TaskCompletion& c : completions) {
    const EnrichmentResult& r = c.result;
    if (!IsAnswer(r.outcome)) {
      return InvalidArgumentError("task " + Num(c.task_id) + ": outcome '" +
                                  std::string(OutcomeName(r.outcome)) +
                                  "' is not an answer to store");
    }
    if (!IsJsonObjectText(r.data_json)) {
      return InvalidArgumentError("task " + Num(c.task_id) + ": data is not a JSON object");
    }
    const Provenance& p = r.provenance;
    // The answers of a batch often share their times: each is formatted once.
    if (p.fetched_at != last_fetched) {
      last_fetched = p.fetched_at;
      fetched_at = FormatRfc3339(p.fetched_at);
    }
    if (p.expires_at != last_expires) {
      last_expires = p.expires_at;
      expires_at = FormatRfc3339(p.expires_at);
    }
    ids.push_back(c.task_id);
    seqs.push_back(c.claim_seq);
    expires.push_back(ToUnixMillis(p.expires_at));
    statuses.emplace_back(r.outcome == Outcome::kOk ? "done" : "no_data");
    if (!props.empty()) props.push_back('\x1e');
    // Written directly (keys in nlohmann's sorted order, then fetched_at): building and
    // dumping a json tree per answer was most of the client's time. The data text is
    // checked above and stored as given; export and GetNode re-serialise every props.
    // "provider" is added by the statement (from the task row), see kComplete.
    props += "{\"adapter\":";
    AppendJsonString(props, p.adapter);
    props += ",\"adapter_version\":";
    AppendJsonString(props, p.adapter_version);
    props += ",\"attempts\":";
    props += std::to_string(p.attempts);
    props += ",\"data\":";
    props += r.data_json;
    props += ",\"endpoint\":";
    AppendJsonString(props, p.endpoint);
    props += ",\"expires_at\":";
    AppendJsonString(props, expires_at);
    props += ",\"http_status\":";
    props += std::to_string(p.http_status);
    props += ",\"kind\":";
    AppendJsonString(props, r.kind);
    props += ",\"latency_ms\":";
    props += Num(std::chrono::duration_cast<std::chrono::milliseconds>(p.latency).count());
    props += ",\"response_digest\":";
    AppendJsonString(props, p.response_digest);
    props += ",\"run_id\":";
    AppendJsonString(props, p.run_id);
    props += ",\"status\":";
    AppendJsonString(props, OutcomeName(r.outcome));
    props += ",\"fetched_at\":";
    AppendJsonString(props, fetched_at);
    props += ",\"provider\":";
    fetched.push_back(fetched_at);
  }
  ENRICHD_ASSIGN_OR_RETURN(PgResult r,
                           conn_->Prepared("complete", kComplete,
                                           {IntArray(ids), IntArray(seqs), TextArray(statuses),
                                            IntArray(expires), props, TextArray(fetched)},
                                           Connection::PlanMode::kGeneric));
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
  return Count(
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
  return Count("release", kRelease, {std::string(lease_owner)});
}

Result<int64_t> PostgresStore::ReclaimExpiredLeases(WallTime now) {
  return Count("reclaim", kReclaim, {Num(ToUnixMillis(now))});
}

Result<int64_t> PostgresStore::Requeue(const RequeueRequest& request, WallTime now) {
  Params params = {Num(ToUnixMillis(now)), request.provider};
  if (request.dead) return Count("requeue_dead", kRequeueDead, params);
  return Count("requeue_waiting", kRequeueWaiting, params);
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
  // Edges have no index on id (schema 3): their order is a sort, kept in memory.
  ENRICHD_RETURN_IF_ERROR(conn_->Exec(kBulkWorkMem).status());
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

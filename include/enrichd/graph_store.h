// GraphStore: the property graph enrichd reads work from and writes answers to, and
// the task queue that lives beside it (DESIGN.md: data model, task lifecycle).
//
// Two backends implement it: SQLite ("sqlite://path", the embedded default) and
// PostgreSQL ("postgresql://..."). Both pass the same behavioural test suite.
//
// Thread safety: a GraphStore object is used by one thread at a time (it holds one
// connection). Several threads or processes open their own; claims never hand the same
// task to two of them.
//
// Times are wall-clock (WallTime) and stored as Unix milliseconds.
//
// Task lifecycle:
//   pending --ClaimTasks--> running --CompleteTasks--> done | no_data
//                              |   --FinishTasks----> skipped | dead
//                              |   --ScheduleRetries-> pending (at next_attempt_at)
//                              |   --ReleaseLeases / ReclaimExpiredLeases--> pending
// Every write to a running task names the claim it holds (task_id + claim_seq). A write
// for a claim that is no longer current (lease expired and the task was claimed again,
// or already completed) changes nothing: completing the same claim twice leaves one
// enrichment node.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "enrichd/clock.h"
#include "enrichd/enrichment.h"
#include "enrichd/status.h"

namespace enrichd {

enum class TaskStatus { kPending, kRunning, kDone, kNoData, kSkipped, kDead };
std::string_view TaskStatusName(TaskStatus s);  // "pending", "running", ...
std::optional<TaskStatus> TaskStatusFromName(std::string_view name);

struct SourceNode {
  std::string label;  // e.g. "ip"
  std::string key;    // canonical (see item.h)
  std::string props_json = "{}";
};

struct UpsertStats {
  int64_t added = 0;
  int64_t existing = 0;
};

// A provider as planning sees it.
struct ProviderPlan {
  std::string provider;
  std::vector<std::string> applies_to;  // labels
};

struct ClaimRequest {
  std::vector<std::string> providers;  // empty: any provider
  std::size_t max_tasks = 100;
  std::string lease_owner;  // unique per process/worker, e.g. "host:pid:rand"
  WallTime now{};
  Duration lease_for = std::chrono::seconds(60);
};

struct ClaimedTask {
  int64_t task_id = 0;
  int64_t claim_seq = 0;  // identifies this claim; pass it back with every write
  int64_t node_id = 0;
  std::string label;
  std::string key;
  std::string provider;
  int attempts = 0;  // attempts already made before this claim
};

// An answer to store: enrichment node + ENRICHED_BY edge + task status, atomically.
struct TaskCompletion {
  int64_t task_id = 0;
  int64_t claim_seq = 0;
  std::string provider;
  EnrichmentResult result;  // outcome kOk or kNoData; provenance.expires_at is set
};

struct TaskRetry {
  int64_t task_id = 0;
  int64_t claim_seq = 0;
  WallTime next_attempt_at{};
  std::string last_error;
  // False for attempts that must not count (rate_limited, circuit_open): attempts stay.
  bool count_attempt = true;
};

struct TaskFinal {
  int64_t task_id = 0;
  int64_t claim_seq = 0;
  TaskStatus status = TaskStatus::kDead;  // kSkipped or kDead
  std::string reason;
  bool count_attempt = true;
};

struct RequeueRequest {
  std::optional<std::string> provider;  // nullopt: all providers
  // false: pending tasks waiting for a retry become due now;
  // true: dead tasks go back to pending with attempts reset (and waiting ones too).
  bool dead = false;
};

struct ProviderCounts {
  int64_t pending = 0;
  int64_t running = 0;
  int64_t done = 0;
  int64_t no_data = 0;
  int64_t skipped = 0;
  int64_t dead = 0;
};

struct StoreCounts {
  int64_t nodes = 0;
  int64_t edges = 0;
  std::map<std::string, ProviderCounts> providers;
};

struct StoredNode {
  int64_t id = 0;
  std::string label;
  std::string key;
  std::string props_json;
};

struct StoredEdge {
  int64_t id = 0;
  std::string type;  // "ENRICHED_BY"
  int64_t src = 0;
  int64_t dst = 0;
  std::string props_json;
};

// A source node with its enrichment nodes (newest first) and the edges to them.
struct NodeView {
  StoredNode node;
  std::vector<StoredNode> enrichments;
  std::vector<StoredEdge> edges;
};

// Receives an export, one record at a time (nodes first, then edges), so memory does
// not grow with the graph. A non-ok Status stops the export and is returned.
class ExportSink {
 public:
  virtual ~ExportSink() = default;
  virtual Status OnNode(const StoredNode& node) = 0;
  virtual Status OnEdge(const StoredEdge& edge) = 0;
};

class GraphStore {
 public:
  virtual ~GraphStore() = default;

  // Creates or upgrades the schema (versioned migrations under sql/<backend>/).
  // Re-running is a no-op; a database from a newer version is kFailedPrecondition.
  virtual Status Migrate() = 0;

  // Inserts source nodes; an existing (label, key) is left as it is and counted.
  virtual Result<UpsertStats> UpsertSourceNodes(std::span<const SourceNode> nodes) = 0;

  // Makes due (source, provider) pairs pending: the provider applies to the source's
  // label and there is no current enrichment, or it expired (expires_at <= now). A
  // refresh marks the older enrichment `superseded` when the new one is stored. Returns
  // how many tasks became pending.
  virtual Result<int64_t> PlanDueTasks(std::span<const ProviderPlan> providers, WallTime now) = 0;

  // Claims up to max_tasks pending tasks whose next_attempt_at <= now, oldest first,
  // leasing them to lease_owner until now + lease_for.
  virtual Result<std::vector<ClaimedTask>> ClaimTasks(const ClaimRequest& request) = 0;

  // Each returns how many of the given claims were current and applied; stale claims
  // are ignored, not errors. One transaction per call.
  virtual Result<int64_t> CompleteTasks(std::span<const TaskCompletion> completions) = 0;
  virtual Result<int64_t> ScheduleRetries(std::span<const TaskRetry> retries) = 0;
  virtual Result<int64_t> FinishTasks(std::span<const TaskFinal> finals) = 0;

  // Extends the leases this owner holds on these tasks.
  virtual Result<int64_t> RenewLeases(std::string_view lease_owner,
                                      std::span<const int64_t> task_ids, WallTime until) = 0;
  // Returns every task this owner holds to pending (shutdown); attempts unchanged.
  virtual Result<int64_t> ReleaseLeases(std::string_view lease_owner) = 0;
  // Returns tasks whose lease expired before now to pending (their worker died).
  virtual Result<int64_t> ReclaimExpiredLeases(WallTime now) = 0;

  // `enrichd retry`: see RequeueRequest. Returns how many tasks were re-queued.
  virtual Result<int64_t> Requeue(const RequeueRequest& request, WallTime now) = 0;

  virtual Result<StoreCounts> Counts() = 0;
  // Pending + running tasks of each of these providers (0 for one with none): what the
  // engine asks when a run starts (its totals) and before it ends. A backend answers it
  // from its queue indexes; the default derives it from Counts(), which scans everything.
  virtual Result<std::map<std::string, int64_t>> CountOpenTasks(
      std::span<const std::string> providers) {
    auto counts = Counts();
    if (!counts.ok()) return counts.status();
    std::map<std::string, int64_t> open;
    for (const auto& name : providers) {
      auto it = counts->providers.find(name);
      open[name] = it == counts->providers.end() ? 0 : it->second.pending + it->second.running;
    }
    return open;
  }
  // nullopt when there is no such node.
  virtual Result<std::optional<NodeView>> GetNode(std::string_view label, std::string_view key) = 0;
  // Streams every node, then every edge.
  virtual Status Export(ExportSink& sink) = 0;

  // The store's URL with any password redacted, for messages.
  virtual std::string Describe() const = 0;
};

// Opens "sqlite://path" (a bare path also means SQLite) or "postgresql://..." /
// "postgres://...", applying migrations when the schema is missing or older.
// Errors: kInvalidArgument (bad URL), kUnavailable (server unreachable),
// kDataLoss (corrupt or foreign file), kFailedPrecondition (newer schema).
Result<std::unique_ptr<GraphStore>> OpenGraphStore(std::string_view url);

}  // namespace enrichd

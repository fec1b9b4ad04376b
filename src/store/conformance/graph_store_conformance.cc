#include "store/conformance/graph_store_conformance.h"

#include <algorithm>
#include <atomic>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(GraphStoreConformance);

namespace enrichd {

using ::nlohmann::json;
using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

void PrintTo(const StoreBackend& backend, std::ostream* os) { *os << backend.name; }

std::string StoreBackendName(const ::testing::TestParamInfo<StoreBackend>& info) {
  return info.param.name;
}

void GraphStoreConformance::SetUp() {
  const StoreBackend& backend = GetParam();
  if (backend.skip_reason) {
    std::string reason = backend.skip_reason();
    if (!reason.empty()) GTEST_SKIP() << reason;
  }
  auto opened = backend.open_fresh();
  ASSERT_TRUE(opened.ok()) << "open_fresh: " << opened.status();
  store_ = std::move(opened).value();
  ASSERT_NE(store_, nullptr);
  plans_ = {{"asn", {"ip"}}, {"geo", {"ip"}}, {"whois", {"domain"}}};
}

void GraphStoreConformance::TearDown() { store_.reset(); }

std::unique_ptr<GraphStore> GraphStoreConformance::OpenAgain() {
  auto opened = GetParam().open_again();
  if (!opened.ok()) {
    ADD_FAILURE() << "open_again: " << opened.status();
    return nullptr;
  }
  return std::move(opened).value();
}

std::vector<std::string> GraphStoreConformance::AddNodes(GraphStore& store,
                                                         const std::string& label, int n) {
  std::vector<SourceNode> nodes;
  std::vector<std::string> keys;
  for (int i = 0; i < n; ++i) {
    std::string key = label == "ip"
                          ? "10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256)
                          : label + "-" + std::to_string(i) + ".example";
    keys.push_back(key);
    nodes.push_back({label, key, "{}"});
  }
  auto stats = store.UpsertSourceNodes(nodes);
  if (!stats.ok()) ADD_FAILURE() << "UpsertSourceNodes: " << stats.status();
  return keys;
}

int64_t GraphStoreConformance::Plan(GraphStore& store, const std::vector<ProviderPlan>& plans) {
  auto planned = store.PlanDueTasks(plans, clock_.WallNow());
  if (!planned.ok()) {
    ADD_FAILURE() << "PlanDueTasks: " << planned.status();
    return -1;
  }
  return *planned;
}

std::vector<ClaimedTask> GraphStoreConformance::Claim(GraphStore& store, std::size_t max,
                                                      const std::string& owner,
                                                      std::vector<std::string> providers,
                                                      Duration lease) {
  ClaimRequest request;
  request.providers = std::move(providers);
  request.max_tasks = max;
  request.lease_owner = owner;
  request.now = clock_.WallNow();
  request.lease_for = lease;
  auto claimed = store.ClaimTasks(request);
  if (!claimed.ok()) {
    ADD_FAILURE() << "ClaimTasks: " << claimed.status();
    return {};
  }
  return std::move(claimed).value();
}

TaskCompletion GraphStoreConformance::MakeCompletion(const ClaimedTask& task, Duration ttl,
                                                     bool no_data) const {
  TaskCompletion c;
  c.task_id = task.task_id;
  c.claim_seq = task.claim_seq;
  c.provider = task.provider;
  c.result.outcome = no_data ? Outcome::kNoData : Outcome::kOk;
  c.result.kind = task.provider == "geo" ? "geo" : "asn";
  c.result.data_json =
      no_data ? R"({"reason":"private range"})"
              : R"({"asn":15169,"org":"Google LLC","prefix":"8.8.8.0/24","extra":{"k":[1,2]}})";
  Provenance& p = c.result.provenance;
  p.adapter = task.provider + "-adapter";
  p.adapter_version = "1";
  p.endpoint = "http://127.0.0.1:1/lookup/" + task.key;
  p.http_status = 200;
  p.fetched_at = clock_.WallNow();
  p.expires_at = clock_.WallNow() + ttl;
  p.attempts = task.attempts + 1;
  p.latency = milliseconds(42);
  p.response_digest = "abcdef0123456789";
  p.run_id = "run-1";
  return c;
}

int64_t GraphStoreConformance::Complete(GraphStore& store,
                                        const std::vector<TaskCompletion>& completions) {
  auto done = store.CompleteTasks(completions);
  if (!done.ok()) {
    ADD_FAILURE() << "CompleteTasks: " << done.status();
    return -1;
  }
  return *done;
}

StoreCounts GraphStoreConformance::Counts(GraphStore& store) {
  auto counts = store.Counts();
  if (!counts.ok()) {
    ADD_FAILURE() << "Counts: " << counts.status();
    return {};
  }
  return std::move(counts).value();
}

ProviderCounts GraphStoreConformance::CountsFor(GraphStore& store, const std::string& provider) {
  StoreCounts counts = Counts(store);
  auto it = counts.providers.find(provider);
  if (it == counts.providers.end()) return {};
  return it->second;
}

namespace {

std::optional<NodeView> MustGetNode(GraphStore& store, std::string_view label,
                                    std::string_view key) {
  auto view = store.GetNode(label, key);
  if (!view.ok()) {
    ADD_FAILURE() << "GetNode: " << view.status();
    return std::nullopt;
  }
  return std::move(view).value();
}

json ParseProps(const std::string& text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) ADD_FAILURE() << "props are not JSON: " << text;
  return j;
}

bool Superseded(const StoredNode& node) {
  json props = ParseProps(node.props_json);
  return props.is_object() && props.value("superseded", false) == true;
}

class CollectingSink : public ExportSink {
 public:
  Status OnNode(const StoredNode& node) override {
    if (!edges.empty()) node_after_edge = true;
    nodes.push_back(node);
    if (fail_after_nodes >= 0 && static_cast<int>(nodes.size()) >= fail_after_nodes) {
      return CancelledError("sink stopped");
    }
    return Status::Ok();
  }
  Status OnEdge(const StoredEdge& edge) override {
    edges.push_back(edge);
    return Status::Ok();
  }
  std::vector<StoredNode> nodes;
  std::vector<StoredEdge> edges;
  bool node_after_edge = false;
  int fail_after_nodes = -1;
};

}  // namespace

// ---------------------------------------------------------------------------------------
// Schema and source nodes

TEST_P(GraphStoreConformance, FreshStoreIsEmpty) {
  StoreCounts counts = Counts(*store_);
  EXPECT_EQ(counts.nodes, 0);
  EXPECT_EQ(counts.edges, 0);
  for (const auto& [provider, c] : counts.providers) {
    EXPECT_EQ(c.pending + c.running + c.done + c.no_data + c.skipped + c.dead, 0) << provider;
  }
  EXPECT_FALSE(store_->Describe().empty());
}

TEST_P(GraphStoreConformance, MigrateAgainIsNoOpAndKeepsData) {
  AddNodes(*store_, "ip", 3);
  ASSERT_EQ(Plan(*store_, plans_), 6);
  ASSERT_TRUE(store_->Migrate().ok());
  ASSERT_TRUE(store_->Migrate().ok());
  auto again = OpenAgain();  // opening applies migrations too
  ASSERT_NE(again, nullptr);
  ASSERT_TRUE(again->Migrate().ok());
  StoreCounts counts = Counts(*again);
  EXPECT_EQ(counts.nodes, 3);
  EXPECT_EQ(counts.providers["asn"].pending, 3);
  EXPECT_EQ(counts.providers["geo"].pending, 3);
  EXPECT_TRUE(MustGetNode(*again, "ip", "10.0.0.1").has_value());
}

TEST_P(GraphStoreConformance, UpsertCountsAddedAndExisting) {
  std::vector<SourceNode> first = {{"ip", "8.8.8.8", R"({"source":"a"})"},
                                   {"ip", "1.1.1.1", "{}"},
                                   {"ip", "8.8.8.8", R"({"source":"dup"})"},
                                   {"domain", "8.8.8.8", "{}"}};  // other label: distinct
  auto stats = store_->UpsertSourceNodes(first);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->added, 3);
  EXPECT_EQ(stats->existing, 1);

  std::vector<SourceNode> second = {{"ip", "1.1.1.1", R"({"source":"b"})"},
                                    {"ip", "9.9.9.9", "{}"}};
  stats = store_->UpsertSourceNodes(second);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->added, 1);
  EXPECT_EQ(stats->existing, 1);

  EXPECT_EQ(Counts(*store_).nodes, 4);
  auto view = MustGetNode(*store_, "ip", "8.8.8.8");
  ASSERT_TRUE(view.has_value());
  EXPECT_EQ(view->node.label, "ip");
  EXPECT_EQ(view->node.key, "8.8.8.8");
  EXPECT_GT(view->node.id, 0);
  EXPECT_EQ(ParseProps(view->node.props_json), json({{"source", "a"}}));  // first one kept
  EXPECT_TRUE(view->enrichments.empty());
  EXPECT_TRUE(view->edges.empty());
}

TEST_P(GraphStoreConformance, UpsertEmptyBatch) {
  auto stats = store_->UpsertSourceNodes({});
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->added, 0);
  EXPECT_EQ(stats->existing, 0);
}

TEST_P(GraphStoreConformance, UpsertRejectsPropsThatAreNotAJsonObjectAndStoresNothing) {
  std::vector<SourceNode> nodes = {{"ip", "8.8.8.8", "{}"}, {"ip", "1.1.1.1", "{not json"}};
  auto stats = store_->UpsertSourceNodes(nodes);
  ASSERT_FALSE(stats.ok());
  EXPECT_EQ(stats.status().code(), StatusCode::kInvalidArgument) << stats.status();
  EXPECT_EQ(Counts(*store_).nodes, 0);
}

TEST_P(GraphStoreConformance, GetNodeOfUnknownKeyIsNullopt) {
  AddNodes(*store_, "ip", 1);
  auto view = store_->GetNode("ip", "192.0.2.1");
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_FALSE(view->has_value());
  view = store_->GetNode("domain", "10.0.0.0");  // right key, wrong label
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_FALSE(view->has_value());
}

// ---------------------------------------------------------------------------------------
// Planning

TEST_P(GraphStoreConformance, PlanCreatesOneTaskPerApplicableProviderOnce) {
  AddNodes(*store_, "ip", 5);
  AddNodes(*store_, "domain", 2);
  EXPECT_EQ(Plan(*store_, plans_), 5 + 5 + 2);
  EXPECT_EQ(Plan(*store_, plans_), 0);  // nothing new is due
  StoreCounts counts = Counts(*store_);
  EXPECT_EQ(counts.providers["asn"].pending, 5);
  EXPECT_EQ(counts.providers["geo"].pending, 5);
  EXPECT_EQ(counts.providers["whois"].pending, 2);

  AddNodes(*store_, "ip", 7);  // 5 existing + 2 new
  EXPECT_EQ(Plan(*store_, plans_), 4);
  EXPECT_EQ(CountsFor(*store_, "asn").pending, 7);
}

TEST_P(GraphStoreConformance, PlanCoversALabelAddedToAProviderLater) {
  AddNodes(*store_, "ip", 3);
  AddNodes(*store_, "domain", 2);
  EXPECT_EQ(Plan(*store_, {{"asn", {"ip"}}}), 3);
  EXPECT_EQ(Plan(*store_, {{"asn", {"ip", "domain"}}}), 2);
  EXPECT_EQ(Plan(*store_, {{"asn", {"ip", "domain"}}}), 0);
  EXPECT_EQ(CountsFor(*store_, "asn").pending, 5);
  // Enrichment nodes added meanwhile are not source nodes of "ip".
  auto claimed = Claim(*store_, 5);
  std::vector<TaskCompletion> completions;
  for (const auto& t : claimed) completions.push_back(MakeCompletion(t));
  ASSERT_EQ(Complete(*store_, completions), 5);
  AddNodes(*store_, "ip", 4);
  EXPECT_EQ(Plan(*store_, {{"asn", {"ip", "domain"}}}), 1);
}

TEST_P(GraphStoreConformance, PlanWithNoProvidersOrUnknownLabelsDoesNothing) {
  AddNodes(*store_, "ip", 3);
  EXPECT_EQ(Plan(*store_, {}), 0);
  EXPECT_EQ(Plan(*store_, {{"rdap", {"asn_entity"}}, {"empty", {}}}), 0);
  StoreCounts counts = Counts(*store_);
  EXPECT_EQ(counts.providers["rdap"].pending, 0);
  EXPECT_EQ(counts.providers["asn"].pending, 0);
}

TEST_P(GraphStoreConformance, PlanDoesNotTouchRunningOrFinishedTasks) {
  AddNodes(*store_, "ip", 4);
  ASSERT_EQ(Plan(*store_, {{"asn", {"ip"}}}), 4);
  auto claimed = Claim(*store_, 4);
  ASSERT_EQ(claimed.size(), 4u);
  // one done, one dead, one skipped, one still running
  ASSERT_EQ(Complete(*store_, {MakeCompletion(claimed[0], hours(1))}), 1);
  std::vector<TaskFinal> finals = {
      {claimed[1].task_id, claimed[1].claim_seq, TaskStatus::kDead, "HTTP 404", true},
      {claimed[2].task_id, claimed[2].claim_seq, TaskStatus::kSkipped, "reserved", false}};
  auto finished = store_->FinishTasks(finals);
  ASSERT_TRUE(finished.ok()) << finished.status();
  EXPECT_EQ(*finished, 2);
  clock_.Advance(minutes(30));
  EXPECT_EQ(Plan(*store_, {{"asn", {"ip"}}}), 0);
  ProviderCounts c = CountsFor(*store_, "asn");
  EXPECT_EQ(c.done, 1);
  EXPECT_EQ(c.dead, 1);
  EXPECT_EQ(c.skipped, 1);
  EXPECT_EQ(c.running, 1);
  EXPECT_EQ(c.pending, 0);
}

// ---------------------------------------------------------------------------------------
// Claiming

TEST_P(GraphStoreConformance, ClaimLeasesTasksAndFillsTheirSource) {
  AddNodes(*store_, "ip", 3);
  ASSERT_EQ(Plan(*store_, {{"asn", {"ip"}}}), 3);
  auto claimed = Claim(*store_, 2, "worker-a");
  ASSERT_EQ(claimed.size(), 2u);
  std::set<std::string> keys = {"10.0.0.0", "10.0.0.1", "10.0.0.2"};
  std::set<int64_t> ids;
  for (const ClaimedTask& t : claimed) {
    EXPECT_GT(t.task_id, 0);
    EXPECT_GT(t.claim_seq, 0);
    EXPECT_GT(t.node_id, 0);
    EXPECT_EQ(t.label, "ip");
    EXPECT_TRUE(keys.count(t.key)) << t.key;
    EXPECT_EQ(t.provider, "asn");
    EXPECT_EQ(t.attempts, 0);
    ids.insert(t.task_id);
    auto view = MustGetNode(*store_, t.label, t.key);
    ASSERT_TRUE(view.has_value());
    EXPECT_EQ(view->node.id, t.node_id);
  }
  EXPECT_EQ(ids.size(), 2u);
  ProviderCounts c = CountsFor(*store_, "asn");
  EXPECT_EQ(c.running, 2);
  EXPECT_EQ(c.pending, 1);

  auto rest = Claim(*store_, 10, "worker-b");
  ASSERT_EQ(rest.size(), 1u);
  EXPECT_FALSE(ids.count(rest[0].task_id));
  EXPECT_TRUE(Claim(*store_, 10, "worker-c").empty());
}

TEST_P(GraphStoreConformance, ClaimFiltersByProvider) {
  AddNodes(*store_, "ip", 2);
  AddNodes(*store_, "domain", 2);
  ASSERT_EQ(Plan(*store_, plans_), 6);
  auto geo = Claim(*store_, 10, "w", {"geo"});
  ASSERT_EQ(geo.size(), 2u);
  for (const auto& t : geo) EXPECT_EQ(t.provider, "geo");
  auto two = Claim(*store_, 10, "w", {"whois", "nosuch"});
  ASSERT_EQ(two.size(), 2u);
  for (const auto& t : two) {
    EXPECT_EQ(t.provider, "whois");
    EXPECT_EQ(t.label, "domain");
  }
  auto any = Claim(*store_, 10, "w");
  ASSERT_EQ(any.size(), 2u);
  for (const auto& t : any) EXPECT_EQ(t.provider, "asn");
}

TEST_P(GraphStoreConformance, CountOpenTasksCountsPendingAndRunningPerProvider) {
  AddNodes(*store_, "ip", 3);
  ASSERT_EQ(Plan(*store_, {{"asn", {"ip"}}, {"geo", {"ip"}}}), 6);
  auto claimed = Claim(*store_, 2, "w", {"asn"});
  ASSERT_EQ(claimed.size(), 2u);
  ASSERT_EQ(Complete(*store_, {MakeCompletion(claimed[0], std::chrono::hours(1))}), 1);
  const std::vector<std::string> providers = {"asn", "geo", "nosuch"};
  auto open = store_->CountOpenTasks(providers);
  ASSERT_TRUE(open.ok()) << open.status();
  EXPECT_EQ((*open)["asn"], 2);  // one running, one pending; the answered one is not open
  EXPECT_EQ((*open)["geo"], 3);
  EXPECT_EQ((*open)["nosuch"], 0);
  EXPECT_EQ(open->size(), 3u);
}

TEST_P(GraphStoreConformance, ClaimTakesOldestFirst) {
  AddNodes(*store_, "ip", 2);
  ASSERT_EQ(Plan(*store_, {{"asn", {"ip"}}}), 2);
  clock_.Advance(seconds(10));
  ASSERT_TRUE(store_->UpsertSourceNodes(std::vector<SourceNode>{{"ip", "192.0.2.7", "{}"}}).ok());
  ASSERT_EQ(Plan(*store_, {{"asn", {"ip"}}}), 1);

  auto first = Claim(*store_, 2);
  ASSERT_EQ(first.size(), 2u);
  for (const auto& t : first) EXPECT_NE(t.key, "192.0.2.7");
  auto second = Claim(*store_, 2);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].key, "192.0.2.7");
}

TEST_P(GraphStoreConformance, ClaimWithZeroMaxClaimsNothing) {
  AddNodes(*store_, "ip", 2);
  ASSERT_EQ(Plan(*store_, {{"asn", {"ip"}}}), 2);
  EXPECT_TRUE(Claim(*store_, 0).empty());
  EXPECT_EQ(CountsFor(*store_, "asn").pending, 2);
}

// ---------------------------------------------------------------------------------------
// Completing

TEST_P(GraphStoreConformance, CompleteStoresEnrichmentEdgeAndStatus) {
  AddNodes(*store_, "ip", 2);
  ASSERT_EQ(Plan(*store_, {{"asn", {"ip"}}}), 2);
  auto claimed = Claim(*store_, 1);
  ASSERT_EQ(claimed.size(), 1u);
  const ClaimedTask& t = claimed[0];
  TaskCompletion c = MakeCompletion(t, hours(24));
  ASSERT_EQ(Complete(*store_, {c}), 1);

  StoreCounts counts = Counts(*store_);
  EXPECT_EQ(counts.nodes, 3);
  EXPECT_EQ(counts.edges, 1);
  EXPECT_EQ(counts.providers["asn"].done, 1);
  EXPECT_EQ(counts.providers["asn"].running, 0);
  EXPECT_EQ(counts.providers["asn"].pending, 1);

  auto view = MustGetNode(*store_, t.label, t.key);
  ASSERT_TRUE(view.has_value());
  ASSERT_EQ(view->enrichments.size(), 1u);
  ASSERT_EQ(view->edges.size(), 1u);
  const StoredNode& e = view->enrichments[0];
  EXPECT_EQ(e.label, "enrichment");
  EXPECT_FALSE(e.key.empty());
  json props = ParseProps(e.props_json);
  EXPECT_EQ(props["provider"], "asn");
  EXPECT_EQ(props["kind"], "asn");
  EXPECT_EQ(props["status"], "ok");
  EXPECT_EQ(props["data"], json::parse(c.result.data_json));
  EXPECT_EQ(props["adapter"], "asn-adapter");
  EXPECT_EQ(props["adapter_version"], "1");
  EXPECT_EQ(props["endpoint"], c.result.provenance.endpoint);
  EXPECT_EQ(props["http_status"], 200);
  EXPECT_EQ(props["fetched_at"], FormatRfc3339(clock_.WallNow()));
  EXPECT_EQ(props["fetched_at"], "2026-01-01T00:00:00.000Z");
  EXPECT_EQ(props["expires_at"], "2026-01-02T00:00:00.000Z");
  EXPECT_EQ(props["attempts"], 1);
  EXPECT_EQ(props["latency_ms"], 42);
  EXPECT_EQ(props["response_digest"], "abcdef0123456789");
  EXPECT_EQ(props["run_id"], "run-1");
  EXPECT_FALSE(Superseded(e));

  const StoredEdge& edge = view->edges[0];
  EXPECT_EQ(edge.type, "ENRICHED_BY");
  EXPECT_EQ(edge.src, view->node.id);
  EXPECT_EQ(edge.dst, e.id);
  json eprops = ParseProps(edge.props_json);
  EXPECT_EQ(eprops["provider"], "asn");
  EXPECT_EQ(eprops["fetched_at"], "2026-01-01T00:00:00.000Z");

  // The enrichment node is a node of its own.
  auto as_node = MustGetNode(*store_, "enrichment", e.key);
  ASSERT_TRUE(as_node.has_value());
  EXPECT_EQ(as_node->node.id, e.id);
}

TEST_P(GraphStoreConformance, CompleteKeepsStringsWithQuotesControlsAndUnicodeIntact) {
  AddNodes(*store_, "ip", 1);
  ASSERT_EQ(Plan(*store_, {{"asn", {"ip"}}}), 1);
  auto claimed = Claim(*store_, 1);
  ASSERT_EQ(claimed.size(), 1u);
  TaskCompletion c = MakeCompletion(claimed[0]);
  const std::string tricky = "http://127.0.0.1/\"q\"\\path\n\t\x01 caf\xc3\xa9 \xe2\x9c\x93";
  c.result.provenance.endpoint = tricky;
  c.result.provenance.run_id = "run \"7\"";
  c.result.data_json = "  {\"org\": \"Caf\\u00e9 \\\"Ltd\\\"\", \"n\": [1, 2.5, null]}  ";
  ASSERT_EQ(Complete(*store_, {c}), 1);
  auto view = MustGetNode(*store_, "ip", claimed[0].key);
  ASSERT_TRUE(view.has_value());
  ASSERT_EQ(view->enrichments.size(), 1u);
  json props = ParseProps(view->enrichments[0].props_json);
  EXPECT_EQ(props["endpoint"], tricky);
  EXPECT_EQ(props["run_id"], "run \"7\"");
  EXPECT_EQ(props["data"], json::parse(c.result.data_json));
  EXPECT_EQ(props["data"]["org"], "Caf\xc3\xa9 \"Ltd\"");
}

TEST_P(GraphStoreConformance, CompleteNoDataIsStoredAsAnAnswer) {
  AddNodes(*store_, "ip", 1);
  ASSERT_EQ(Plan(*store_, {{"geo", {"ip"}}}), 1);
  auto claimed = Claim(*store_, 1);
  ASSERT_EQ(claimed.size(), 1u);
  ASSERT_EQ(Complete(*store_, {MakeCompletion(claimed[0], hours(1), /*no_data=*/true)}), 1);
  ProviderCounts c = CountsFor(*store_, "geo");
  EXPECT_EQ(c.no_data, 1);
  EXPECT_EQ(c.done, 0);
  auto view = MustGetNode(*store_, "ip", claimed[0].key);
  ASSERT_TRUE(view.has_value());
  ASSERT_EQ(view->enrichments.size(), 1u);
  json props = ParseProps(view->enrichments[0].props_json);
  EXPECT_EQ(props["status"], "no_data");
  EXPECT_EQ(props["kind"], "geo");
  EXPECT_EQ(props["data"], json({{"reason", "private range"}}));
  // A no_data answer is current until it expires.
  clock_.Advance(minutes(59));
  EXPECT_EQ(Plan(*store_, {{"geo", {"ip"}}}), 0);
  clock_.Advance(minutes(1));
  EXPECT_EQ(Plan(*store_, {{"geo", {"ip"}}}), 1);
}

TEST_P(GraphStoreConformance, CompletingTheSameClaimTwiceLeavesOneEnrichment) {
  AddNodes(*store_, "ip", 2);
  ASSERT_EQ(Plan(*store_, {{"asn", {"ip"}}}), 2);
  auto claimed = Claim(*store_, 2);
  ASSERT_EQ(claimed.size(), 2u);
  TaskCompletion c = MakeCompletion(claimed[0]);
  // A batch holding the same claim twice applies it once.
  EXPECT_EQ(Complete(*store_, {c, c}), 1);
  EXPECT_EQ(Complete(*store_, {c}), 0);
  // Mixed batch: the stale one is ignored, the current one applied.
  EXPECT_EQ(Complete(*store_, {c, MakeCompletion(claimed[1])}), 1);
  StoreCounts counts = Counts(*store_);
  EXPECT_EQ(counts.nodes, 4);
  EXPECT_EQ(counts.edges, 2);
  EXPECT_EQ(counts.providers["asn"].done, 2);
  auto view = MustGetNode(*store_, "ip", claimed[0].key);
  ASSERT_TRUE(view.has_value());
  EXPECT_EQ(view->enrichments.size(), 1u);
}

TEST_P(GraphStoreConformance, CompleteWithUnknownTaskIsIgnored) {
  AddNodes(*store_, "ip", 1);
  ASSERT_EQ(Plan(*store_, {{"asn", {"ip"}}}), 1);
  auto claimed = Claim(*store_, 1);
  ASSERT_EQ(claimed.size(), 1u);
  ClaimedTask bogus = claimed[0];
  bogus.task_id += 1000;
  EXPECT_EQ(Complete(*store_, {MakeCompletion(bogus)}), 0);
  ClaimedTask wrong_seq = claimed[0];
  wrong_seq.claim_seq += 1;
  EXPECT_EQ(Complete(*store_, {MakeCompletion(wrong_seq)}), 0);
  EXPECT_EQ(Counts(*store_).nodes, 1);
  EXPECT_EQ(CountsFor(*store_, "asn").running, 1);
}

TEST_P(GraphStoreConformance, StaleClaimsAreIgnoredByEveryWrite) {
  AddNodes(*store_, "ip", 1);
  ASSERT_EQ(Plan(*store_, {{"asn", {"ip"}}}), 1);
  auto old_claim = Claim(*store_, 1, "worker-a", {}, seconds(60));
  ASSERT_EQ(old_claim.size(), 1u);
  clock_.Advance(seconds(61));
  auto reclaimed = store_->ReclaimExpiredLeases(clock_.WallNow());
  ASSERT_TRUE(reclaimed.ok()) << reclaimed.status();
  EXPECT_EQ(*reclaimed, 1);
  auto new_claim = Claim(*store_, 1, "worker-b");
  ASSERT_EQ(new_claim.size(), 1u);
  EXPECT_EQ(new_claim[0].task_id, old_claim[0].task_id);
  EXPECT_NE(new_claim[0].claim_seq, old_claim[0].claim_seq);

  // worker-a wakes up and writes with its old claim: nothing changes.
  EXPECT_EQ(Complete(*store_, {MakeCompletion(old_claim[0])}), 0);
  std::vector<TaskRetry> retries = {{old_claim[0].task_id, old_claim[0].claim_seq,
                                     clock_.WallNow() + hours(1), "HTTP 503", true}};
  auto r = store_->ScheduleRetries(retries);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, 0);
  std::vector<TaskFinal> finals = {
      {old_claim[0].task_id, old_claim[0].claim_seq, TaskStatus::kDead, "HTTP 404", true}};
  auto f = store_->FinishTasks(finals);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(*f, 0);
  EXPECT_EQ(Counts(*store_).nodes, 1);
  EXPECT_EQ(CountsFor(*store_, "asn").running, 1);

  // worker-b's claim is current.
  EXPECT_EQ(Complete(*store_, {MakeCompletion(new_claim[0])}), 1);
  EXPECT_EQ(CountsFor(*store_, "asn").done, 1);
  // A completed task cannot be completed again, by anyone.
  EXPECT_EQ(Complete(*store_, {MakeCompletion(new_claim[0])}), 0);
  EXPECT_EQ(Counts(*store_).nodes, 2);
}

TEST_P(GraphStoreConformance, CompleteRejectsOutcomesThatAreNotAnswers) {
  AddNodes(*store_, "ip", 1);
  ASSERT_EQ(Plan(*store_, {{"asn", {"ip"}}}), 1);
  auto claimed = Claim(*store_, 1);
  ASSERT_EQ(claimed.size(), 1u);
  TaskCompletion c = MakeCompletion(claimed[0]);
  c.result.outcome = Outcome::kTransient;
  auto done = store_->CompleteTasks(std::vector<TaskCompletion>{c});
  ASSERT_FALSE(done.ok());
  EXPECT_EQ(done.status().code(), StatusCode::kInvalidArgument) << done.status();
  TaskCompletion bad_json = MakeCompletion(claimed[0]);
  bad_json.result.data_json = "{\"asn\": 1";
  done = store_->CompleteTasks(std::vector<TaskCompletion>{bad_json});
  ASSERT_FALSE(done.ok());
  EXPECT_EQ(done.status().code(), StatusCode::kInvalidArgument) << done.status();
  EXPECT_EQ(Counts(*store_).nodes, 1);
  // The claim is still current and can be completed properly.
  EXPECT_EQ(Complete(*store_, {MakeCompletion(claimed[0])}), 1);
}

// ---------------------------------------------------------------------------------------
// Leases

TEST_P(GraphStoreConformance, ExpiredLeaseReturnsTaskToPending) {
  AddNodes(*store_, "ip", 2);
  ASSERT_EQ(Plan(*store_, {{"asn", {"ip"}}}), 2);
  auto claimed = Claim(*store_, 2, "worker-a", {}, seconds(60));
  ASSERT_EQ(claimed.size(), 2u);
  clock_.Advance(seconds(30));
  auto reclaimed = store_->ReclaimExpiredLeases(clock_.WallNow());
  ASSERT_TRUE(reclaimed.ok()) << reclaimed.status();
  EXPECT_EQ(*reclaimed, 0);
  EXPECT_TRUE(Claim(*store_, 10, "worker-b").empty());

  clock_.Advance(seconds(31));
  reclaimed = store_->ReclaimExpiredLeases(clock_.WallNow());
  ASSERT_TRUE(reclaimed.ok()) << reclaimed.status();
  EXPECT_EQ(*reclaimed, 2);
  ProviderCounts c = CountsFor(*store_, "asn");
  EXPECT_EQ(c.pending, 2);
  EXPECT_EQ(c.running, 0);
  auto again = Claim(*store_, 10, "worker-b");
  ASSERT_EQ(again.size(), 2u);
  for (const auto& t : again) EXPECT_EQ(t.attempts, 0);
}

TEST_P(GraphStoreConformance, RenewLeasesExtendsOnlyTheOwnersLeases) {
  AddNodes(*store_, "ip", 2);
  ASSERT_EQ(Plan(*store_, {{"asn", {"ip"}}}), 2);
  auto a = Claim(*store_, 1, "worker-a", {}, seconds(60));
  auto b = Claim(*store_, 1, "worker-b", {}, seconds(60));
  ASSERT_EQ(a.size(), 1u);
  ASSERT_EQ(b.size(), 1u);
  std::vector<int64_t> both = {a[0].task_id, b[0].task_id};
  auto renewed = store_->RenewLeases("worker-a", both, clock_.WallNow() + minutes(5));
  ASSERT_TRUE(renewed.ok()) << renewed.status();
  EXPECT_EQ(*renewed, 1);
  clock_.Advance(seconds(61));
  auto reclaimed = store_->ReclaimExpiredLeases(clock_.WallNow());
  ASSERT_TRUE(reclaimed.ok()) << reclaimed.status();
  EXPECT_EQ(*reclaimed, 1);  // only worker-b's
  // worker-a's claim is still current.
  EXPECT_EQ(Complete(*store_, {MakeCompletion(a[0])}), 1);
  // Renewing a task that is no longer running changes nothing.
  renewed = store_->RenewLeases("worker-a", both, clock_.WallNow() + minutes(5));
  ASSERT_TRUE(renewed.ok()) << renewed.status();
  EXPECT_EQ(*renewed, 0);
}

TEST_P(GraphStoreConformance, ReleaseLeasesReturnsTheOwnersTasksWithAttemptsUnchanged) {
  AddNodes(*store_, "ip", 5);
  ASSERT_EQ(Plan(*store_, {{"asn", {"ip"}}}), 5);
  auto first = Claim(*store_, 1, "worker-a");
  ASSERT_EQ(first.size(), 1u);
  std::vector<TaskRetry> retry = {
      {first[0].task_id, first[0].claim_seq, clock_.WallNow(), "timeout", true}};
  ASSERT_EQ(store_->ScheduleRetries(retry).value_or(-1), 1);
  auto a = Claim(*store_, 3, "worker-a");
  auto b = Claim(*store_, 2, "worker-b");
  ASSERT_EQ(a.size(), 3u);
  ASSERT_EQ(b.size(), 2u);
  auto released = store_->ReleaseLeases("worker-a");
  ASSERT_TRUE(released.ok()) << released.status();
  EXPECT_EQ(*released, 3);
  ProviderCounts c = CountsFor(*store_, "asn");
  EXPECT_EQ(c.pending, 3);
  EXPECT_EQ(c.running, 2);
  // Released claims are stale.
  EXPECT_EQ(Complete(*store_, {MakeCompletion(a[0])}), 0);
  auto again = Claim(*store_, 10, "worker-c");
  ASSERT_EQ(again.size(), 3u);
  int with_attempt = 0;
  for (const auto& t : again) {
    if (t.task_id == first[0].task_id) {
      EXPECT_EQ(t.attempts, 1);
      ++with_attempt;
    } else {
      EXPECT_EQ(t.attempts, 0);
    }
  }
  int in_a = 0;
  for (const auto& t : a) in_a += t.task_id == first[0].task_id;
  EXPECT_EQ(with_attempt, in_a);
  released = store_->ReleaseLeases("nobody");
  ASSERT_TRUE(released.ok()) << released.status();
  EXPECT_EQ(*released, 0);
}

// ---------------------------------------------------------------------------------------
// Retries and final states

TEST_P(GraphStoreConformance, RetryIsNotDueBeforeNextAttemptAt) {
  AddNodes(*store_, "ip", 1);
  ASSERT_EQ(Plan(*store_, {{"asn", {"ip"}}}), 1);
  auto claimed = Claim(*store_, 1);
  ASSERT_EQ(claimed.size(), 1u);
  std::vector<TaskRetry> retries = {
      {claimed[0].task_id, claimed[0].claim_seq, clock_.WallNow() + seconds(30), "HTTP 503", true}};
  auto r = store_->ScheduleRetries(retries);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, 1);
  ProviderCounts c = CountsFor(*store_, "asn");
  EXPECT_EQ(c.pending, 1);
  EXPECT_EQ(c.running, 0);

  EXPECT_TRUE(Claim(*store_, 10).empty());
  clock_.Advance(seconds(29));
  EXPECT_TRUE(Claim(*store_, 10).empty());
  // Planning does not make a waiting retry due either.
  EXPECT_EQ(Plan(*store_, {{"asn", {"ip"}}}), 0);
  EXPECT_TRUE(Claim(*store_, 10).empty());
  clock_.Advance(seconds(1));
  auto again = Claim(*store_, 10);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].task_id, claimed[0].task_id);
  EXPECT_EQ(again[0].attempts, 1);

  // An attempt that must not count (rate limited) leaves attempts as they are.
  std::vector<TaskRetry> uncounted = {
      {again[0].task_id, again[0].claim_seq, clock_.WallNow() + seconds(5), "rate limited", false}};
  ASSERT_EQ(store_->ScheduleRetries(uncounted).value_or(-1), 1);
  clock_.Advance(seconds(5));
  auto third = Claim(*store_, 10);
  ASSERT_EQ(third.size(), 1u);
  EXPECT_EQ(third[0].attempts, 1);
}

TEST_P(GraphStoreConformance, FinishTasksSetsSkippedAndDead) {
  AddNodes(*store_, "ip", 3);
  ASSERT_EQ(Plan(*store_, {{"asn", {"ip"}}}), 3);
  auto claimed = Claim(*store_, 3);
  ASSERT_EQ(claimed.size(), 3u);
  std::vector<TaskFinal> finals = {
      {claimed[0].task_id, claimed[0].claim_seq, TaskStatus::kSkipped, "reserved range", false},
      {claimed[1].task_id, claimed[1].claim_seq, TaskStatus::kDead, "HTTP 404", true}};
  auto f = store_->FinishTasks(finals);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(*f, 2);
  ProviderCounts c = CountsFor(*store_, "asn");
  EXPECT_EQ(c.skipped, 1);
  EXPECT_EQ(c.dead, 1);
  EXPECT_EQ(c.running, 1);
  EXPECT_EQ(Counts(*store_).nodes, 3);  // no enrichment for final failures

  std::vector<TaskFinal> bad = {
      {claimed[2].task_id, claimed[2].claim_seq, TaskStatus::kDone, "not a final failure", true}};
  f = store_->FinishTasks(bad);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), StatusCode::kInvalidArgument) << f.status();
  EXPECT_EQ(CountsFor(*store_, "asn").running, 1);
}

// ---------------------------------------------------------------------------------------
// TTL expiry and history

TEST_P(GraphStoreConformance, ExpiredAnswerIsReplannedAndSupersededByTheNewOne) {
  AddNodes(*store_, "ip", 2);
  ASSERT_EQ(Plan(*store_, {{"asn", {"ip"}}}), 2);
  auto claimed = Claim(*store_, 2);
  ASSERT_EQ(claimed.size(), 2u);
  ASSERT_EQ(Complete(*store_,
                     {MakeCompletion(claimed[0], hours(1)), MakeCompletion(claimed[1], hours(3))}),
            2);

  clock_.Advance(minutes(59));
  EXPECT_EQ(Plan(*store_, {{"asn", {"ip"}}}), 0);
  clock_.Advance(minutes(1));  // claimed[0]'s answer expires now (expires_at <= now)
  EXPECT_EQ(Plan(*store_, {{"asn", {"ip"}}}), 1);
  EXPECT_EQ(Plan(*store_, {{"asn", {"ip"}}}), 0);
  ProviderCounts c = CountsFor(*store_, "asn");
  EXPECT_EQ(c.pending, 1);
  EXPECT_EQ(c.done, 1);

  auto refresh = Claim(*store_, 10);
  ASSERT_EQ(refresh.size(), 1u);
  EXPECT_EQ(refresh[0].task_id, claimed[0].task_id);
  EXPECT_EQ(refresh[0].attempts, 0);
  TaskCompletion newer = MakeCompletion(refresh[0], hours(1));
  newer.result.data_json = R"({"asn":13335,"org":"Cloudflare"})";
  ASSERT_EQ(Complete(*store_, {newer}), 1);

  auto view = MustGetNode(*store_, "ip", claimed[0].key);
  ASSERT_TRUE(view.has_value());
  ASSERT_EQ(view->enrichments.size(), 2u);
  ASSERT_EQ(view->edges.size(), 2u);
  // Newest first; the older one stays, marked superseded.
  EXPECT_EQ(ParseProps(view->enrichments[0].props_json)["data"]["asn"], 13335);
  EXPECT_FALSE(Superseded(view->enrichments[0]));
  EXPECT_EQ(ParseProps(view->enrichments[1].props_json)["data"]["asn"], 15169);
  EXPECT_TRUE(Superseded(view->enrichments[1]));
  EXPECT_NE(view->enrichments[0].key, view->enrichments[1].key);
  for (const auto& e : view->edges) EXPECT_EQ(e.src, view->node.id);

  // The other node's answer is untouched.
  auto other = MustGetNode(*store_, "ip", claimed[1].key);
  ASSERT_TRUE(other.has_value());
  ASSERT_EQ(other->enrichments.size(), 1u);
  EXPECT_FALSE(Superseded(other->enrichments[0]));
  StoreCounts counts = Counts(*store_);
  EXPECT_EQ(counts.nodes, 5);
  EXPECT_EQ(counts.edges, 3);
  EXPECT_EQ(counts.providers["asn"].done, 2);
}

TEST_P(GraphStoreConformance, SupersedingIsPerProvider) {
  AddNodes(*store_, "ip", 1);
  ASSERT_EQ(Plan(*store_, {{"asn", {"ip"}}, {"geo", {"ip"}}}), 2);
  auto claimed = Claim(*store_, 2);
  ASSERT_EQ(claimed.size(), 2u);
  auto asn = claimed[0].provider == "asn" ? claimed[0] : claimed[1];
  auto geo = claimed[0].provider == "asn" ? claimed[1] : claimed[0];
  ASSERT_EQ(Complete(*store_, {MakeCompletion(asn, hours(1)), MakeCompletion(geo, hours(10))}), 2);
  clock_.Advance(hours(1));
  ASSERT_EQ(Plan(*store_, {{"asn", {"ip"}}, {"geo", {"ip"}}}), 1);
  auto refresh = Claim(*store_, 10);
  ASSERT_EQ(refresh.size(), 1u);
  EXPECT_EQ(refresh[0].provider, "asn");
  ASSERT_EQ(Complete(*store_, {MakeCompletion(refresh[0], hours(1))}), 1);
  auto view = MustGetNode(*store_, "ip", asn.key);
  ASSERT_TRUE(view.has_value());
  ASSERT_EQ(view->enrichments.size(), 3u);
  int superseded = 0;
  for (const auto& e : view->enrichments) {
    json props = ParseProps(e.props_json);
    if (Superseded(e)) {
      ++superseded;
      EXPECT_EQ(props["provider"], "asn");
    }
  }
  EXPECT_EQ(superseded, 1);
}

// ---------------------------------------------------------------------------------------
// Requeue

TEST_P(GraphStoreConformance, RequeueMakesWaitingRetriesDueNow) {
  AddNodes(*store_, "ip", 2);
  ASSERT_EQ(Plan(*store_, {{"asn", {"ip"}}, {"geo", {"ip"}}}), 4);
  auto claimed = Claim(*store_, 4);
  ASSERT_EQ(claimed.size(), 4u);
  std::vector<TaskRetry> retries;
  for (const auto& t : claimed) {
    retries.push_back({t.task_id, t.claim_seq, clock_.WallNow() + hours(1), "HTTP 503", true});
  }
  ASSERT_EQ(store_->ScheduleRetries(retries).value_or(-1), 4);
  EXPECT_TRUE(Claim(*store_, 10).empty());

  RequeueRequest only_geo;
  only_geo.provider = "geo";
  auto n = store_->Requeue(only_geo, clock_.WallNow());
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 2);
  auto due = Claim(*store_, 10);
  ASSERT_EQ(due.size(), 2u);
  for (const auto& t : due) {
    EXPECT_EQ(t.provider, "geo");
    EXPECT_EQ(t.attempts, 1);  // a plain requeue keeps the attempt count
  }
  n = store_->Requeue(RequeueRequest{}, clock_.WallNow());
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 2);
  EXPECT_EQ(Claim(*store_, 10).size(), 2u);
  n = store_->Requeue(RequeueRequest{}, clock_.WallNow());
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 0);
}

TEST_P(GraphStoreConformance, RequeueDeadResetsAttempts) {
  AddNodes(*store_, "ip", 2);
  ASSERT_EQ(Plan(*store_, {{"asn", {"ip"}}, {"geo", {"ip"}}}), 4);
  auto claimed = Claim(*store_, 4);
  ASSERT_EQ(claimed.size(), 4u);
  std::vector<TaskFinal> finals;
  for (const auto& t : claimed) {
    finals.push_back({t.task_id, t.claim_seq, TaskStatus::kDead, "attempts exhausted", true});
  }
  ASSERT_EQ(store_->FinishTasks(finals).value_or(-1), 4);

  auto n = store_->Requeue(RequeueRequest{}, clock_.WallNow());  // dead = false
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 0);
  EXPECT_EQ(CountsFor(*store_, "asn").dead, 2);

  RequeueRequest dead_asn;
  dead_asn.provider = "asn";
  dead_asn.dead = true;
  n = store_->Requeue(dead_asn, clock_.WallNow());
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 2);
  ProviderCounts asn = CountsFor(*store_, "asn");
  EXPECT_EQ(asn.dead, 0);
  EXPECT_EQ(asn.pending, 2);
  EXPECT_EQ(CountsFor(*store_, "geo").dead, 2);
  auto again = Claim(*store_, 10);
  ASSERT_EQ(again.size(), 2u);
  for (const auto& t : again) {
    EXPECT_EQ(t.provider, "asn");
    EXPECT_EQ(t.attempts, 0);
  }
  // Skipped and done tasks are not re-queued.
  std::vector<TaskFinal> skip = {
      {again[0].task_id, again[0].claim_seq, TaskStatus::kSkipped, "reserved", false}};
  ASSERT_EQ(store_->FinishTasks(skip).value_or(-1), 1);
  ASSERT_EQ(Complete(*store_, {MakeCompletion(again[1])}), 1);
  RequeueRequest all_dead;
  all_dead.dead = true;
  n = store_->Requeue(all_dead, clock_.WallNow());
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 2);  // geo's two dead tasks only
  ProviderCounts after = CountsFor(*store_, "asn");
  EXPECT_EQ(after.skipped, 1);
  EXPECT_EQ(after.done, 1);
}

// ---------------------------------------------------------------------------------------
// Counts and export

TEST_P(GraphStoreConformance, CountsReportEveryStatusPerProvider) {
  AddNodes(*store_, "ip", 6);
  ASSERT_EQ(Plan(*store_, {{"asn", {"ip"}}}), 6);
  auto claimed = Claim(*store_, 5);
  ASSERT_EQ(claimed.size(), 5u);
  ASSERT_EQ(Complete(*store_, {MakeCompletion(claimed[0]), MakeCompletion(claimed[1], hours(1),
                                                                          /*no_data=*/true)}),
            2);
  std::vector<TaskFinal> finals = {
      {claimed[2].task_id, claimed[2].claim_seq, TaskStatus::kSkipped, "reserved", false},
      {claimed[3].task_id, claimed[3].claim_seq, TaskStatus::kDead, "HTTP 404", true}};
  ASSERT_EQ(store_->FinishTasks(finals).value_or(-1), 2);
  StoreCounts counts = Counts(*store_);
  EXPECT_EQ(counts.nodes, 8);
  EXPECT_EQ(counts.edges, 2);
  ASSERT_EQ(counts.providers.count("asn"), 1u);
  const ProviderCounts& c = counts.providers["asn"];
  EXPECT_EQ(c.pending, 1);
  EXPECT_EQ(c.running, 1);
  EXPECT_EQ(c.done, 1);
  EXPECT_EQ(c.no_data, 1);
  EXPECT_EQ(c.skipped, 1);
  EXPECT_EQ(c.dead, 1);
  EXPECT_EQ(counts.providers.count("geo"), 0u);  // never planned
}

TEST_P(GraphStoreConformance, ExportStreamsEveryNodeThenEveryEdge) {
  AddNodes(*store_, "ip", 300);
  AddNodes(*store_, "domain", 5);
  ASSERT_EQ(Plan(*store_, {{"asn", {"ip"}}}), 300);
  std::vector<TaskCompletion> completions;
  for (const auto& t : Claim(*store_, 120)) completions.push_back(MakeCompletion(t));
  ASSERT_EQ(Complete(*store_, completions), 120);

  CollectingSink sink;
  Status s = store_->Export(sink);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_FALSE(sink.node_after_edge);
  StoreCounts counts = Counts(*store_);
  EXPECT_EQ(static_cast<int64_t>(sink.nodes.size()), counts.nodes);
  EXPECT_EQ(static_cast<int64_t>(sink.edges.size()), counts.edges);
  EXPECT_EQ(sink.nodes.size(), 300u + 5u + 120u);
  EXPECT_EQ(sink.edges.size(), 120u);

  std::set<int64_t> node_ids;
  std::map<std::string, int> labels;
  for (const auto& n : sink.nodes) {
    EXPECT_TRUE(node_ids.insert(n.id).second) << "node exported twice: " << n.id;
    ++labels[n.label];
    EXPECT_TRUE(ParseProps(n.props_json).is_object());
  }
  EXPECT_EQ(labels["ip"], 300);
  EXPECT_EQ(labels["domain"], 5);
  EXPECT_EQ(labels["enrichment"], 120);
  std::set<int64_t> edge_ids;
  for (const auto& e : sink.edges) {
    EXPECT_TRUE(edge_ids.insert(e.id).second) << "edge exported twice: " << e.id;
    EXPECT_EQ(e.type, "ENRICHED_BY");
    EXPECT_TRUE(node_ids.count(e.src));
    EXPECT_TRUE(node_ids.count(e.dst));
  }
}

TEST_P(GraphStoreConformance, ExportStopsAtTheFirstSinkError) {
  AddNodes(*store_, "ip", 50);
  CollectingSink sink;
  sink.fail_after_nodes = 10;
  Status s = store_->Export(sink);
  EXPECT_EQ(s.code(), StatusCode::kCancelled) << s;
  EXPECT_EQ(sink.nodes.size(), 10u);
  EXPECT_TRUE(sink.edges.empty());
  // The store is still usable afterwards.
  EXPECT_EQ(Counts(*store_).nodes, 50);
  CollectingSink all;
  ASSERT_TRUE(store_->Export(all).ok());
  EXPECT_EQ(all.nodes.size(), 50u);
}

TEST_P(GraphStoreConformance, ExportOfEmptyStore) {
  CollectingSink sink;
  ASSERT_TRUE(store_->Export(sink).ok());
  EXPECT_TRUE(sink.nodes.empty());
  EXPECT_TRUE(sink.edges.empty());
}

// ---------------------------------------------------------------------------------------
// Several connections

TEST_P(GraphStoreConformance, SecondConnectionSeesTheSameStore) {
  auto other = OpenAgain();
  ASSERT_NE(other, nullptr);
  AddNodes(*store_, "ip", 4);
  EXPECT_EQ(Counts(*other).nodes, 4);
  EXPECT_EQ(Plan(*other, {{"asn", {"ip"}}}), 4);
  auto mine = Claim(*store_, 2, "worker-a");
  auto theirs = Claim(*other, 10, "worker-b");
  ASSERT_EQ(mine.size(), 2u);
  ASSERT_EQ(theirs.size(), 2u);
  std::set<int64_t> ids;
  for (const auto& t : mine) ids.insert(t.task_id);
  for (const auto& t : theirs) EXPECT_TRUE(ids.insert(t.task_id).second);
  // Completing through the other connection is fine: a claim is not tied to a connection.
  EXPECT_EQ(Complete(*other, {MakeCompletion(mine[0])}), 1);
  EXPECT_EQ(CountsFor(*store_, "asn").done, 1);
}

TEST_P(GraphStoreConformance, ConcurrentWorkersNeverClaimTheSameTask) {
  constexpr int kNodes = 400;
  AddNodes(*store_, "ip", kNodes);
  ASSERT_EQ(Plan(*store_, {{"asn", {"ip"}}, {"geo", {"ip"}}}), 2 * kNodes);

  constexpr int kWorkers = 3;
  std::vector<std::unique_ptr<GraphStore>> connections;
  for (int i = 0; i < kWorkers; ++i) {
    connections.push_back(OpenAgain());
    ASSERT_NE(connections.back(), nullptr);
  }
  std::vector<std::vector<ClaimedTask>> claimed(kWorkers);
  std::vector<std::string> errors(kWorkers);
  std::vector<int64_t> applied(kWorkers, 0);
  const WallTime now = clock_.WallNow();
  std::vector<std::thread> threads;
  for (int w = 0; w < kWorkers; ++w) {
    threads.emplace_back([&, w] {
      GraphStore& store = *connections[w];
      for (;;) {
        ClaimRequest request;
        request.max_tasks = 13;
        request.lease_owner = "worker-" + std::to_string(w);
        request.now = now;
        auto batch = store.ClaimTasks(request);
        if (!batch.ok()) {
          errors[w] = batch.status().ToString();
          return;
        }
        if (batch->empty()) return;
        std::vector<TaskCompletion> completions;
        for (const auto& t : *batch) {
          claimed[w].push_back(t);
          completions.push_back(MakeCompletion(t));
        }
        auto done = store.CompleteTasks(completions);
        if (!done.ok()) {
          errors[w] = done.status().ToString();
          return;
        }
        applied[w] += *done;
      }
    });
  }
  for (auto& t : threads) t.join();

  std::set<int64_t> seen;
  int64_t total_applied = 0;
  for (int w = 0; w < kWorkers; ++w) {
    EXPECT_EQ(errors[w], "") << "worker " << w;
    EXPECT_EQ(applied[w], static_cast<int64_t>(claimed[w].size())) << "worker " << w;
    total_applied += applied[w];
    for (const auto& t : claimed[w]) {
      EXPECT_TRUE(seen.insert(t.task_id).second) << "task claimed twice: " << t.task_id;
    }
  }
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(2 * kNodes));
  EXPECT_EQ(total_applied, 2 * kNodes);
  StoreCounts counts = Counts(*store_);
  EXPECT_EQ(counts.nodes, 3 * kNodes);  // one enrichment per (node, provider)
  EXPECT_EQ(counts.edges, 2 * kNodes);
  EXPECT_EQ(counts.providers["asn"].done, kNodes);
  EXPECT_EQ(counts.providers["geo"].done, kNodes);
  auto view = MustGetNode(*store_, "ip", "10.0.1.7");
  ASSERT_TRUE(view.has_value());
  EXPECT_EQ(view->enrichments.size(), 2u);
}

}  // namespace enrichd

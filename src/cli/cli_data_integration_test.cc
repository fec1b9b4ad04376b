// Runs the real `enrichd` binary on real SQLite files in a temporary folder.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "enrichd/clock.h"
#include "enrichd/graph_store.h"

namespace {

namespace fs = std::filesystem;

const std::string kBinary = ENRICHD_BINARY_DIR "/src/cli/enrichd";

struct CmdResult {
  bool exited = false;  // false: killed by a signal (a crash)
  int code = -1;
  std::string out;
  std::string err;
};

std::string Slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> Lines(const std::string& s) {
  std::vector<std::string> lines;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  return lines;
}

class CliDataTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("enrichd_cli_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    db_ = (dir_ / "graph.db").string();
    store_ = "sqlite://" + db_;
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Runs `enrichd <args>` in the temp folder (ENRICHD_STORE unset), optional stdin file.
  CmdResult Enrichd(const std::string& args, const std::string& stdin_file = "/dev/null") {
    const fs::path out = dir_ / "stdout", err = dir_ / "stderr";
    const std::string cmd = "cd '" + dir_.string() + "' && env -u ENRICHD_STORE '" + kBinary +
                            "' " + args + " <'" + stdin_file + "' >'" + out.string() + "' 2>'" +
                            err.string() + "'";
    const int rc = std::system(cmd.c_str());
    CmdResult o;
    // The shell reports a child killed by signal N as 128+N.
    o.exited = WIFEXITED(rc) && WEXITSTATUS(rc) < 128;
    o.code = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
    o.out = Slurp(out);
    o.err = Slurp(err);
    return o;
  }

  std::string Write(const std::string& name, const std::string& content) {
    const fs::path p = dir_ / name;
    std::ofstream(p, std::ios::binary) << content;
    return p.string();
  }

  fs::path dir_;
  std::string db_;
  std::string store_;
};

TEST_F(CliDataTest, InitCreatesThenIsANoOp) {
  CmdResult first = Enrichd("init --store " + store_);
  ASSERT_EQ(first.code, 0) << first.err;
  EXPECT_TRUE(fs::exists(db_));
  EXPECT_NE(first.out.find("created"), std::string::npos) << first.out;
  CmdResult second = Enrichd("init --store " + store_);
  ASSERT_EQ(second.code, 0) << second.err;
  EXPECT_NE(second.out.find("up to date"), std::string::npos) << second.out;
  CmdResult status = Enrichd("status --json --store " + store_);
  ASSERT_EQ(status.code, 0) << status.err;
  EXPECT_EQ(nlohmann::json::parse(status.out),
            nlohmann::json::parse(R"({"nodes":0,"edges":0,"providers":{}})"));
}

TEST_F(CliDataTest, IngestCountsAndStatusAgree) {
  ASSERT_EQ(Enrichd("init --store " + store_).code, 0);
  const std::string file = Write("ips.txt",
                                 "# test input\r\n"
                                 "8.8.8.8\r\n"
                                 "2001:DB8::1\r\n"
                                 "01.2.3.4\r\n"  // line 4
                                 "\r\n"
                                 "8.8.8.8\r\n"
                                 "2001:db8:0::1\r\n"
                                 "1.1.1.1\r\n"
                                 "hello\r\n");  // line 9
  CmdResult ingest = Enrichd("ingest --json --store " + store_ + " " + file);
  ASSERT_EQ(ingest.code, 0) << ingest.err;
  auto report = nlohmann::json::parse(ingest.out);
  EXPECT_EQ(report["read"], 7);
  EXPECT_EQ(report["added"], 3);
  EXPECT_EQ(report["existing"], 2);
  EXPECT_EQ(report["rejected"], 2);
  ASSERT_EQ(report["rejected_examples"].size(), 2u);
  EXPECT_EQ(report["rejected_examples"][0]["line"], 4);
  EXPECT_EQ(report["rejected_examples"][0]["value"], "01.2.3.4");
  EXPECT_EQ(report["rejected_examples"][1]["line"], 9);
  EXPECT_FALSE(report["rejected_examples"][0]["reason"].get<std::string>().empty());

  CmdResult status = Enrichd("status --json --store " + store_);
  ASSERT_EQ(status.code, 0) << status.err;
  auto counts = nlohmann::json::parse(status.out);
  EXPECT_EQ(counts["nodes"], 3);
  EXPECT_EQ(counts["edges"], 0);
  EXPECT_TRUE(counts["providers"].is_object());

  // Again, from stdin: everything is already present.
  CmdResult again = Enrichd("ingest --store " + store_ + " -", file);
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_NE(again.out.find("read 7, added 0, already present 5, rejected 2"), std::string::npos)
      << again.out;
  EXPECT_NE(again.out.find("line 4: \"01.2.3.4\""), std::string::npos) << again.out;
  EXPECT_EQ(nlohmann::json::parse(Enrichd("status --json --store " + store_).out)["nodes"], 3);
}

TEST_F(CliDataTest, IngestCsvAndJsonl) {
  const std::string csv = Write("flows.csv", "ts,src_ip\n1,\"9.9.9.9\"\n2,8.8.4.4\n");
  CmdResult c = Enrichd("ingest --json --store " + store_ + " --column src_ip " + csv);
  ASSERT_EQ(c.code, 0) << c.err;
  EXPECT_EQ(nlohmann::json::parse(c.out)["added"], 2);
  const std::string jsonl = Write("alerts.jsonl", "{\"ip\":\"9.9.9.9\"}\n{\"ip\":\"::1\"}\n");
  CmdResult j = Enrichd("ingest --json --store " + store_ + " " + jsonl);
  ASSERT_EQ(j.code, 0) << j.err;
  auto r = nlohmann::json::parse(j.out);
  EXPECT_EQ(r["added"], 1);
  EXPECT_EQ(r["existing"], 1);
}

TEST_F(CliDataTest, IngestWithNothingValidFails) {
  const std::string file = Write("bad.txt", "nope\n300.1.1.1\n");
  CmdResult o = Enrichd("ingest --store " + store_ + " " + file);
  EXPECT_EQ(o.code, 1);
  EXPECT_NE(o.err.find("enrichd ingest: no valid ip values"), std::string::npos) << o.err;
  EXPECT_NE(o.out.find("rejected 2"), std::string::npos) << o.out;
}

TEST_F(CliDataTest, ShowFindsTheCanonicalKey) {
  const std::string file = Write("ips.txt", "2001:db8::1\n");
  ASSERT_EQ(Enrichd("ingest --store " + store_ + " " + file).code, 0);
  CmdResult text = Enrichd("show --store " + store_ + " ip 2001:DB8:0::1");
  ASSERT_EQ(text.code, 0) << text.err;
  EXPECT_NE(text.out.find("(ip 2001:db8::1)"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("no enrichments yet"), std::string::npos) << text.out;
  CmdResult json = Enrichd("show --json --store " + store_ + " ip 2001:DB8::1");
  ASSERT_EQ(json.code, 0) << json.err;
  auto j = nlohmann::json::parse(json.out);
  EXPECT_EQ(j["node"]["label"], "ip");
  EXPECT_EQ(j["node"]["key"], "2001:db8::1");
  EXPECT_TRUE(j["enrichments"].is_array());

  CmdResult missing = Enrichd("show --store " + store_ + " ip 8.8.8.8");
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.err.find("no ip node with key 8.8.8.8"), std::string::npos) << missing.err;
  CmdResult invalid = Enrichd("show --store " + store_ + " ip 01.1.1.1");
  EXPECT_EQ(invalid.code, 2);
  EXPECT_NE(invalid.err.find("enrichd show: invalid ip key"), std::string::npos) << invalid.err;
}

TEST_F(CliDataTest, ExportJsonlLineByLine) {
  const std::string file = Write("ips.txt", "8.8.8.8\n1.1.1.1\n");
  ASSERT_EQ(Enrichd("ingest --store " + store_ + " " + file).code, 0);
  CmdResult o = Enrichd("export --format jsonl --store " + store_);
  ASSERT_EQ(o.code, 0) << o.err;
  std::vector<std::string> keys;
  for (const auto& line : Lines(o.out)) {
    auto j = nlohmann::json::parse(line);
    ASSERT_EQ(j["type"], "node") << line;
    EXPECT_TRUE(j["id"].is_number_integer()) << line;
    EXPECT_EQ(j["label"], "ip");
    EXPECT_TRUE(j["props"].is_object());
    std::vector<std::string> names;
    for (auto it = j.begin(); it != j.end(); ++it) names.push_back(it.key());
    EXPECT_EQ(names.size(), 5u) << line;
    keys.push_back(j["key"]);
  }
  std::sort(keys.begin(), keys.end());
  EXPECT_EQ(keys, (std::vector<std::string>{"1.1.1.1", "8.8.8.8"}));

  // To a file, in the other formats too.
  for (const std::string format : {"jsonl", "graphml", "cypher"}) {
    const std::string out = (dir_ / ("g." + format)).string();
    CmdResult f = Enrichd("export --format " + format + " --output " + out + " --store " + store_);
    ASSERT_EQ(f.code, 0) << f.err;
    const std::string text = Slurp(out);
    EXPECT_NE(text.find("8.8.8.8"), std::string::npos) << format;
    EXPECT_FALSE(fs::exists(out + ".tmp"));
  }
  EXPECT_NE(Slurp(dir_ / "g.cypher").find("CREATE (:ip {_id: "), std::string::npos);
}

// Stores one source node with one enrichment through the store API, as `enrichd run`
// does, so the commands have a real enrichment, edge and task to show.
void SeedEnrichment(const std::string& url) {
  using namespace enrichd;
  auto store = OpenGraphStore(url);
  ASSERT_TRUE(store.ok()) << store.status();
  const std::vector<SourceNode> nodes{{"ip", "8.8.8.8", "{}"}};
  ASSERT_TRUE((*store)->UpsertSourceNodes(nodes).ok());
  FakeClock clock;
  const WallTime now = clock.WallNow();
  const ProviderPlan plan{"ipinfo", {"ip"}};
  auto planned = (*store)->PlanDueTasks(std::span(&plan, 1), now);
  ASSERT_TRUE(planned.ok()) << planned.status();
  ClaimRequest request;
  request.lease_owner = "cli-test";
  request.now = now;
  auto claimed = (*store)->ClaimTasks(request);
  ASSERT_TRUE(claimed.ok()) << claimed.status();
  ASSERT_EQ(claimed->size(), 1u);
  TaskCompletion c;
  c.task_id = claimed->front().task_id;
  c.claim_seq = claimed->front().claim_seq;
  c.provider = "ipinfo";
  c.result.outcome = enrichd::Outcome::kOk;
  c.result.kind = "geo";
  c.result.data_json = R"({"country_code":"US","city":"Mountain View","note":"it's \\ <odd>"})";
  c.result.provenance.adapter = "ipinfo";
  c.result.provenance.adapter_version = "1";
  c.result.provenance.endpoint = "https://ipinfo.io/8.8.8.8";
  c.result.provenance.http_status = 200;
  c.result.provenance.fetched_at = now;
  c.result.provenance.expires_at = now + std::chrono::hours(24 * 7);
  c.result.provenance.attempts = 1;
  c.result.provenance.latency = std::chrono::milliseconds(120);
  c.result.provenance.response_digest = "abcd1234";
  c.result.provenance.run_id = "run-1";
  auto done = (*store)->CompleteTasks(std::span(&c, 1));
  ASSERT_TRUE(done.ok()) << done.status();
  ASSERT_EQ(*done, 1);
}

TEST_F(CliDataTest, EnrichedGraphThroughStatusShowAndExport) {
  ASSERT_NO_FATAL_FAILURE(SeedEnrichment(store_));

  auto counts = nlohmann::json::parse(Enrichd("status --json --store " + store_).out);
  EXPECT_EQ(counts["nodes"], 2);
  EXPECT_EQ(counts["edges"], 1);
  EXPECT_EQ(counts["providers"]["ipinfo"]["done"], 1);
  EXPECT_EQ(counts["providers"]["ipinfo"]["pending"], 0);
  CmdResult table = Enrichd("status --store " + store_);
  EXPECT_NE(table.out.find("ipinfo"), std::string::npos) << table.out;

  CmdResult show = Enrichd("show --store " + store_ + " ip 8.8.8.8");
  ASSERT_EQ(show.code, 0) << show.err;
  EXPECT_NE(show.out.find("-[:ENRICHED_BY]-> (enrichment ipinfo geo ok)"), std::string::npos)
      << show.out;
  EXPECT_NE(show.out.find("country_code: US"), std::string::npos) << show.out;
  EXPECT_NE(show.out.find("https://ipinfo.io/8.8.8.8"), std::string::npos) << show.out;
  EXPECT_NE(show.out.find("abcd1234"), std::string::npos) << show.out;
  auto sj = nlohmann::json::parse(Enrichd("show --json --store " + store_ + " ip 8.8.8.8").out);
  ASSERT_EQ(sj["enrichments"].size(), 1u);
  EXPECT_EQ(sj["enrichments"][0]["props"]["data"]["city"], "Mountain View");
  EXPECT_EQ(sj["enrichments"][0]["edge"]["src"], sj["node"]["id"]);

  CmdResult jsonl = Enrichd("export --store " + store_);
  ASSERT_EQ(jsonl.code, 0) << jsonl.err;
  std::map<int64_t, nlohmann::json> nodes;
  std::vector<nlohmann::json> edges;
  for (const auto& line : Lines(jsonl.out)) {
    auto j = nlohmann::json::parse(line);
    if (j["type"] == "node") {
      nodes[j["id"].get<int64_t>()] = j;
    } else {
      ASSERT_EQ(j["type"], "edge") << line;
      edges.push_back(j);
    }
  }
  ASSERT_EQ(nodes.size(), 2u);
  ASSERT_EQ(edges.size(), 1u);
  const auto& e = edges[0];
  EXPECT_EQ(e["label"], "ENRICHED_BY");
  ASSERT_TRUE(nodes.count(e["src"].get<int64_t>()) && nodes.count(e["dst"].get<int64_t>()));
  EXPECT_EQ(nodes[e["src"].get<int64_t>()]["key"], "8.8.8.8");
  const auto& enrichment = nodes[e["dst"].get<int64_t>()];
  EXPECT_EQ(enrichment["label"], "enrichment");
  EXPECT_EQ(enrichment["props"]["provider"], "ipinfo");
  EXPECT_EQ(enrichment["props"]["kind"], "geo");
  EXPECT_EQ(enrichment["props"]["status"], "ok");
  EXPECT_EQ(enrichment["props"]["data"]["country_code"], "US");

  CmdResult cypher = Enrichd("export --format cypher --store " + store_);
  ASSERT_EQ(cypher.code, 0) << cypher.err;
  const auto statements = Lines(cypher.out);
  ASSERT_EQ(statements.size(), 3u) << cypher.out;
  EXPECT_TRUE(statements[2].starts_with("MATCH (a {_id: ")) << statements[2];
  EXPECT_NE(cypher.out.find("it\\'s \\\\\\\\ <odd>"), std::string::npos) << cypher.out;

  const std::string graphml = (dir_ / "g.graphml").string();
  ASSERT_EQ(Enrichd("export --format graphml --output " + graphml + " --store " + store_).code, 0);
  const std::string check =
      "python3 -c 'import sys, xml.etree.ElementTree as ET\n"
      "ns = {\"g\": \"http://graphml.graphdrawing.org/xmlns\"}\n"
      "g = ET.parse(sys.argv[1]).getroot().find(\"g:graph\", ns)\n"
      "assert len(g.findall(\"g:node\", ns)) == 2 and len(g.findall(\"g:edge\", ns)) == 1' '" +
      graphml + "'";
  if (std::system("command -v python3 >/dev/null") == 0) {
    EXPECT_EQ(std::system(check.c_str()), 0);
  }
}

TEST_F(CliDataTest, CorruptFileIsOneErrorLineNotACrash) {
  const std::string garbage = Write("corrupt.db", std::string(8192, '\x5a') + "not sqlite");
  for (const std::string cmd : {"init", "status --json", "export", "retry"}) {
    CmdResult o = Enrichd(cmd + " --store sqlite://" + garbage);
    EXPECT_TRUE(o.exited) << cmd << ": killed by a signal";
    EXPECT_EQ(o.code, 1) << cmd << ": " << o.err;
    const std::string prefix = "enrichd " + cmd.substr(0, cmd.find(' ')) + ": ";
    EXPECT_TRUE(o.err.starts_with(prefix)) << o.err;
    EXPECT_EQ(Lines(o.err).size(), 1u) << o.err;
    EXPECT_TRUE(o.out.empty()) << o.out;
  }
}

TEST_F(CliDataTest, UsageErrorsExitTwo) {
  CmdResult unknown = Enrichd("status --bogus");
  EXPECT_EQ(unknown.code, 2);
  EXPECT_NE(unknown.err.find("enrichd status: unknown option '--bogus'"), std::string::npos)
      << unknown.err;
  EXPECT_EQ(Enrichd("ingest").code, 2);
  EXPECT_EQ(Enrichd("export --format xml --store " + store_).code, 2);
  EXPECT_EQ(Enrichd("ingest --format csv --field x -").code, 2);
  CmdResult url = Enrichd("init --store mysql://localhost/x");
  EXPECT_EQ(url.code, 2) << url.err;
  EXPECT_TRUE(url.err.starts_with("enrichd init: ")) << url.err;
}

TEST_F(CliDataTest, ReadCommandsDoNotCreateAMissingStore) {
  CmdResult o = Enrichd("status --store sqlite://" + (dir_ / "typo.db").string());
  EXPECT_EQ(o.code, 1);
  EXPECT_NE(o.err.find("enrichd init"), std::string::npos) << o.err;
  EXPECT_FALSE(fs::exists(dir_ / "typo.db"));
}

TEST_F(CliDataTest, RetryOnAnEmptyStore) {
  ASSERT_EQ(Enrichd("init --store " + store_).code, 0);
  CmdResult o = Enrichd("retry --dead --store " + store_);
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_NE(o.out.find("re-queued 0 tasks"), std::string::npos) << o.out;
}

}  // namespace

// Shared helpers for the end-to-end tests: a temporary folder per test, the real `enrichd`
// binary spawned as a child process (posix_spawn, output to files), the store opened from
// the test for seeding and checking, and the graph read back through Export.
//
// Every helper reports problems as gtest failures or Status values; none throws. Not
// thread-safe (one test thread).
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "enrichd/graph_store.h"

extern char** environ;

namespace enrichd::e2e {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;
using SteadyClock = std::chrono::steady_clock;

inline const std::string kEnrichdBinary = ENRICHD_BINARY_DIR "/src/cli/enrichd";

inline std::string Slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A fresh folder under the system temp dir, named after the running test; removed at the end
// unless the test failed (kept for inspection then).
class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = fs::temp_directory_path() /
            ("enrichd_e2e_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    if (!::testing::Test::HasFailure()) {
      std::error_code ec;
      fs::remove_all(path_, ec);
    }
  }
  const fs::path& path() const { return path_; }
  std::string Write(const std::string& name, const std::string& content) const {
    const fs::path p = path_ / name;
    std::ofstream(p, std::ios::binary) << content;
    return p.string();
  }

 private:
  fs::path path_;
};

// A running `enrichd` child process; killed (SIGKILL) and reaped on destruction if still alive.
class Child {
 public:
  // Starts `enrichd <args>` with stdout/stderr into `dir`/<tag>.out/.err, stdin /dev/null and
  // ENRICHD_STORE removed from the environment. pid() is -1 when spawning failed.
  Child(const fs::path& dir, const std::string& tag, const std::vector<std::string>& args)
      : out_(dir / (tag + ".out")), err_(dir / (tag + ".err")) {
    std::vector<std::string> argv_s;
    argv_s.push_back(kEnrichdBinary);
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<char*> envp;
    for (char** e = environ; *e != nullptr; ++e) {
      if (std::string_view(*e).starts_with("ENRICHD_STORE=")) continue;
      envp.push_back(*e);
    }
    envp.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid = -1;
    if (posix_spawn(&pid, kEnrichdBinary.c_str(), &fa, nullptr, argv.data(), envp.data()) != 0) {
      pid = -1;
    }
    posix_spawn_file_actions_destroy(&fa);
    pid_ = pid;
  }
  ~Child() {
    if (pid_ > 0 && !status_) {
      ::kill(pid_, SIGKILL);
      int st = 0;
      ::waitpid(pid_, &st, 0);
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return pid_; }
  bool Running() {
    Poll();
    return pid_ > 0 && !status_;
  }
  void Signal(int sig) {
    if (pid_ > 0 && !Poll()) ::kill(pid_, sig);
  }
  // Waits for the exit, up to `timeout`; then kills the child (SIGKILL) and returns nullopt.
  // On exit: the raw wait status.
  std::optional<int> Wait(std::chrono::seconds timeout) {
    if (pid_ <= 0) return std::nullopt;
    const auto deadline = SteadyClock::now() + timeout;
    while (SteadyClock::now() < deadline) {
      if (Poll()) return status_;
      std::this_thread::sleep_for(milliseconds(20));
    }
    if (Poll()) return status_;
    ::kill(pid_, SIGKILL);
    int st = 0;
    ::waitpid(pid_, &st, 0);
    status_ = st;
    return std::nullopt;
  }
  std::string out() const { return Slurp(out_); }
  std::string err() const { return Slurp(err_); }

 private:
  bool Poll() {
    if (pid_ <= 0) return false;
    if (status_) return true;
    int st = 0;
    if (::waitpid(pid_, &st, WNOHANG) == pid_) status_ = st;
    return status_.has_value();
  }
  fs::path out_, err_;
  pid_t pid_ = -1;
  std::optional<int> status_;
};

// The result of one `enrichd run --once --json` to completion.
struct RunResult {
  bool exited = false;  // false: killed by a signal or timed out
  int code = -1;
  std::string out, err;
  nlohmann::json summary;  // the --json line (null when absent or unparsable)
  // Per-provider field of the summary, 0 when missing.
  int64_t Field(const std::string& provider, const std::string& key) const {
    if (!summary.is_object() || !summary.contains("providers")) return 0;
    const auto& p = summary["providers"];
    if (!p.contains(provider) || !p[provider].contains(key)) return 0;
    return p[provider][key].get<int64_t>();
  }
};

inline nlohmann::json LastJsonLine(const std::string& out) {
  std::istringstream in(out);
  nlohmann::json last;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] != '{') continue;
    auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_discarded()) last = std::move(j);
  }
  return last;
}

inline std::vector<std::string> RunArgs(const std::string& config, const std::string& store_url) {
  std::vector<std::string> args = {"run",    "--config",   config, "--once",
                                   "--json", "--progress", "none"};
  if (!store_url.empty()) {
    args.push_back("--store");
    args.push_back(store_url);
  }
  return args;
}

inline RunResult Finish(Child& child, std::chrono::seconds timeout) {
  RunResult r;
  auto st = child.Wait(timeout);
  r.out = child.out();
  r.err = child.err();
  if (st && WIFEXITED(*st)) {
    r.exited = true;
    r.code = WEXITSTATUS(*st);
  }
  r.summary = LastJsonLine(r.out);
  return r;
}

// `enrichd run --config <config> --once --json --progress none [--store URL]`, to the end
// (killed and reported as not exited after `timeout`).
inline RunResult RunOnce(const fs::path& dir, const std::string& tag, const std::string& config,
                         const std::string& store_url = "",
                         std::chrono::seconds timeout = seconds(60)) {
  Child child(dir, tag, RunArgs(config, store_url));
  if (child.pid() <= 0) return {};
  return Finish(child, timeout);
}

// N distinct public IPv4 addresses, spread over many /24 networks.
inline std::vector<std::string> PublicIps(int n, int first_octet = 45) {
  std::vector<std::string> ips;
  for (int i = 0; i < n; ++i) {
    ips.push_back(std::to_string(first_octet) + "." + std::to_string(1 + i / 200) + "." +
                  std::to_string(i % 200) + "." + std::to_string(1 + (i * 7) % 250));
  }
  return ips;
}

// Inserts `keys` as source nodes with label "ip" (store opened and closed here).
inline Status SeedIps(const std::string& store_url, const std::vector<std::string>& keys) {
  auto store = OpenGraphStore(store_url);
  if (!store.ok()) return store.status();
  std::vector<SourceNode> nodes;
  for (const auto& k : keys) nodes.push_back({"ip", k, "{}"});
  auto r = (*store)->UpsertSourceNodes(nodes);
  return r.ok() ? Status() : r.status();
}

// Opens the store, reads the counts and closes it again (so a child process is never kept
// waiting on this connection).
inline Result<StoreCounts> ReadCounts(const std::string& store_url) {
  auto store = OpenGraphStore(store_url);
  if (!store.ok()) return store.status();
  return (*store)->Counts();
}

// The enrichment side of the graph, read through Export: for every source node key and
// provider, how many enrichment nodes hang off it and how many are current (not superseded).
struct EnrichmentCensus {
  struct Cell {
    int total = 0;
    int current = 0;
  };
  std::map<std::string, std::map<std::string, Cell>> by_source;  // key -> provider -> cell
  int enrichment_nodes = 0;
  int enriched_by_edges = 0;
  int orphan_enrichments = 0;  // enrichment nodes without an ENRICHED_BY edge
};

inline Result<EnrichmentCensus> Census(const std::string& store_url) {
  class Sink : public ExportSink {
   public:
    Status OnNode(const StoredNode& node) override {
      nodes[node.id] = node;
      return Status();
    }
    Status OnEdge(const StoredEdge& edge) override {
      edges.push_back(edge);
      return Status();
    }
    std::map<int64_t, StoredNode> nodes;
    std::vector<StoredEdge> edges;
  } sink;
  auto store = OpenGraphStore(store_url);
  if (!store.ok()) return store.status();
  if (Status s = (*store)->Export(sink); !s.ok()) return s;
  EnrichmentCensus c;
  std::map<int64_t, int> edges_into;
  for (const auto& [id, n] : sink.nodes) {
    if (n.label == "enrichment") ++c.enrichment_nodes;
  }
  for (const auto& e : sink.edges) {
    if (e.type != "ENRICHED_BY") continue;
    ++c.enriched_by_edges;
    ++edges_into[e.dst];
    auto src = sink.nodes.find(e.src);
    auto dst = sink.nodes.find(e.dst);
    if (src == sink.nodes.end() || dst == sink.nodes.end()) continue;
    auto props = nlohmann::json::parse(dst->second.props_json, nullptr, false);
    if (props.is_discarded() || !props.is_object()) continue;
    const std::string provider = props.value("provider", std::string("?"));
    const bool superseded = props.value("superseded", false);
    auto& cell = c.by_source[src->second.key][provider];
    ++cell.total;
    if (!superseded) ++cell.current;
  }
  for (const auto& [id, n] : sink.nodes) {
    if (n.label == "enrichment" && edges_into[id] == 0) ++c.orphan_enrichments;
  }
  return c;
}

// Checks that every key in `keys` has exactly one enrichment node (current) per provider in
// `providers`, and that no enrichment node exists without its edge.
inline void ExpectOneEnrichmentEach(const EnrichmentCensus& c, const std::vector<std::string>& keys,
                                    const std::vector<std::string>& providers) {
  int bad = 0;
  for (const auto& key : keys) {
    for (const auto& provider : providers) {
      auto it = c.by_source.find(key);
      EnrichmentCensus::Cell cell;
      if (it != c.by_source.end() && it->second.count(provider)) cell = it->second.at(provider);
      if (cell.total != 1 || cell.current != 1) {
        if (++bad <= 5) {
          ADD_FAILURE() << key << " / " << provider << ": " << cell.total << " enrichment nodes, "
                        << cell.current << " current (want 1, 1)";
        }
      }
    }
  }
  EXPECT_EQ(bad, 0) << "pairs without exactly one enrichment";
  EXPECT_EQ(c.enrichment_nodes, static_cast<int>(keys.size() * providers.size()));
  EXPECT_EQ(c.orphan_enrichments, 0);
}

// Polls `pred` (every 50 ms) until it is true or `timeout` passes; returns its last value.
inline bool PollUntil(const std::function<bool()>& pred, std::chrono::seconds timeout) {
  const auto deadline = SteadyClock::now() + timeout;
  while (SteadyClock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(milliseconds(50));
  }
  return pred();
}

inline double Secs(std::chrono::nanoseconds d) { return std::chrono::duration<double>(d).count(); }

// The YAML of a run configuration: `engine:` tuned for quick lease recovery, then the given
// provider entries (each a complete "  - name: ..." block).
inline std::string ConfigYaml(const std::vector<std::string>& providers,
                              const std::string& store_url = "") {
  std::string y;
  if (!store_url.empty()) y += "store: " + store_url + "\n";
  y += "engine: { claim_batch: 32, lease: 2s, worker_threads: 2, poll_interval: 100ms }\n";
  y += "providers:\n";
  for (const auto& p : providers) y += p;
  return y;
}

// One provider entry: name, adapter, endpoint, then `extra` lines (each "    key: value\n").
inline std::string ProviderYaml(const std::string& name, const std::string& adapter,
                                const std::string& endpoint, const std::string& extra) {
  return "  - name: " + name + "\n    adapter: " + adapter + "\n    endpoint: " + endpoint + "\n" +
         extra;
}

}  // namespace enrichd::e2e

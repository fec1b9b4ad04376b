// e2e_benchmark: the end-to-end benchmark of enrichd (see bench/README.md).
//
// For each scenario this program
//   1. creates a fresh SQLite store and ingests N deterministic public IPv4 addresses through
//      the store API (OpenGraphStore + UpsertSourceNodes);
//   2. starts two MockProviders in this process on 127.0.0.1:0, one per provider (so each
//      has its own counters and its own rate limiter), with the scenario's knobs;
//   3. writes a YAML configuration with two providers: adapter `ipinfo` (kind geo) on the
//      first mock and adapter `ip-api` (kind asn) on the second, single requests
//      (batch.max_items 1);
//   4. runs the real program `enrichd run --config F --once --json --progress none
//      --store sqlite://...` as a child process (fork/exec), measures its wall time and gets
//      its peak RSS and CPU time from wait4();
//   5. reads the JSON summary line from the child's stdout, the mocks' counters, and the
//      store's Counts(), and prints one table row per run; everything goes to a JSON file.
//
// Everything is reproducible for a given --seed: the addresses, the mocks' fault rolls (in
// arrival order). Timing of course is not.
//
// Exit status: 0 when every run completed (whatever the figures), 1 when a run could not be
// set up or the child failed unexpectedly, 2 for bad arguments.
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "enrichd/graph_store.h"
#include "mock_provider/mock_provider.h"

#ifndef ENRICHD_DEFAULT_BINARY
#define ENRICHD_DEFAULT_BINARY "enrichd"
#endif

namespace {

using enrichd::Duration;
using enrichd::mock::MockProvider;
using enrichd::mock::MockProviderOptions;
using enrichd::mock::MockProviderStats;
using Json = nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;
namespace fs = std::filesystem;

double Secs(Duration d) { return std::chrono::duration<double>(d).count(); }

// ---- command line ----

struct Args {
  std::string enrichd = ENRICHD_DEFAULT_BINARY;
  std::vector<std::string> scenarios = {"a", "a2", "b", "c", "d", "e"};
  int64_t ips = 20'000;         // per scenario (a, b, d, e)
  int64_t big_ips = 1'000'000;  // a2
  int64_t c_ips = 4'000;        // per run of c
  int c_runs = 5;
  double a2_seconds = 10;  // SIGTERM after this long in a2
  uint64_t seed = 42;
  std::string workdir;  // empty: a fresh folder under $TMPDIR
  std::string out;      // JSON results; empty: <workdir>/e2e-results-<utc>.json
  bool keep = false;    // keep the SQLite files and configs
  // Words run before enrichd, e.g. "perf record -g -o /tmp/p.data --" (profiling only: the
  // RSS and CPU figures then include the wrapper).
  std::vector<std::string> child_prefix;
};

constexpr char kUsage[] =
    "usage: e2e_benchmark [--enrichd PATH] [--scenarios a,a2,b,c,d,e] [--ips N]\n"
    "                     [--big-ips N] [--c-ips N] [--c-runs N] [--a2-seconds S]\n"
    "                     [--seed N] [--workdir DIR] [--out FILE] [--keep]\n"
    "                     [--child-prefix \"perf record -g -o F --\"]\n";

std::optional<Args> ParseArgs(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    auto value = [&]() -> std::optional<std::string> {
      if (i + 1 >= argc) return std::nullopt;
      return std::string(argv[++i]);
    };
    auto number = [&](auto& into) -> bool {
      auto v = value();
      if (!v) return false;
      char* end = nullptr;
      errno = 0;
      const double d = std::strtod(v->c_str(), &end);
      if (errno != 0 || end == v->c_str() || *end != '\0' || d < 0) return false;
      into = static_cast<std::remove_reference_t<decltype(into)>>(d);
      return true;
    };
    bool ok = true;
    if (k == "--enrichd") {
      auto v = value();
      ok = v.has_value();
      if (ok) a.enrichd = *v;
    } else if (k == "--scenarios") {
      auto v = value();
      ok = v.has_value();
      if (ok) {
        a.scenarios.clear();
        std::stringstream ss(*v);
        std::string s;
        while (std::getline(ss, s, ',')) {
          if (s != "a" && s != "a2" && s != "b" && s != "c" && s != "d" && s != "e") {
            std::cerr << "e2e_benchmark: unknown scenario '" << s << "'\n";
            return std::nullopt;
          }
          a.scenarios.push_back(s);
        }
      }
    } else if (k == "--ips") {
      ok = number(a.ips) && a.ips > 0;
    } else if (k == "--big-ips") {
      ok = number(a.big_ips) && a.big_ips > 0;
    } else if (k == "--c-ips") {
      ok = number(a.c_ips) && a.c_ips > 0;
    } else if (k == "--c-runs") {
      ok = number(a.c_runs) && a.c_runs > 0;
    } else if (k == "--a2-seconds") {
      ok = number(a.a2_seconds) && a.a2_seconds > 0;
    } else if (k == "--seed") {
      ok = number(a.seed);
    } else if (k == "--workdir") {
      auto v = value();
      ok = v.has_value();
      if (ok) a.workdir = *v;
    } else if (k == "--out") {
      auto v = value();
      ok = v.has_value();
      if (ok) a.out = *v;
    } else if (k == "--child-prefix") {
      auto v = value();
      ok = v.has_value();
      if (ok) {
        std::istringstream ss(*v);
        std::string w;
        while (ss >> w) a.child_prefix.push_back(w);
      }
    } else if (k == "--keep") {
      a.keep = true;
    } else if (k == "--help" || k == "-h") {
      std::cout << kUsage;
      std::exit(0);
    } else {
      ok = false;
    }
    if (!ok) {
      std::cerr << "e2e_benchmark: bad or incomplete argument '" << k << "'\n" << kUsage;
      return std::nullopt;
    }
  }
  return a;
}

// ---- deterministic public addresses ----

// murmur3's 32-bit finaliser: a bijection on uint32, so distinct inputs give distinct outputs.
uint32_t Mix32(uint32_t h) {
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}

bool InPrefix(uint32_t ip, uint32_t net, int bits) {
  const uint32_t mask = bits == 0 ? 0 : ~uint32_t{0} << (32 - bits);
  return (ip & mask) == (net & mask);
}

constexpr uint32_t V4(int a, int b, int c, int d) {
  return (uint32_t(a) << 24) | (uint32_t(b) << 16) | (uint32_t(c) << 8) | uint32_t(d);
}

// Globally routable unicast (IANA special-purpose registry, IPv4).
bool IsPublicV4(uint32_t ip) {
  struct Range {
    uint32_t net;
    int bits;
  };
  static constexpr Range kSpecial[] = {
      {V4(0, 0, 0, 0), 8},      {V4(10, 0, 0, 0), 8},     {V4(100, 64, 0, 0), 10},
      {V4(127, 0, 0, 0), 8},    {V4(169, 254, 0, 0), 16}, {V4(172, 16, 0, 0), 12},
      {V4(192, 0, 0, 0), 24},   {V4(192, 0, 2, 0), 24},   {V4(192, 88, 99, 0), 24},
      {V4(192, 168, 0, 0), 16}, {V4(198, 18, 0, 0), 15},  {V4(198, 51, 100, 0), 24},
      {V4(203, 0, 113, 0), 24}, {V4(224, 0, 0, 0), 3},  // multicast, reserved, broadcast
  };
  for (const auto& r : kSpecial) {
    if (InPrefix(ip, r.net, r.bits)) return false;
  }
  return (ip & 0xff) != 0 && (ip & 0xff) != 255;  // no .0 / .255, to look like hosts
}

std::string V4Text(uint32_t ip) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 0xff, (ip >> 8) & 0xff,
                ip & 0xff);
  return buf;
}

// The first `n` public addresses of the sequence Mix32(seed * K + i), i = 0, 1, ... (all
// distinct). Calls `sink` with chunks of up to `chunk` addresses.
template <typename Sink>
void GenerateIps(int64_t n, uint64_t seed, size_t chunk, Sink&& sink) {
  std::vector<std::string> buf;
  buf.reserve(chunk);
  uint32_t i = static_cast<uint32_t>(seed * 2654435761u);
  for (int64_t made = 0; made < n; ++i) {
    const uint32_t ip = Mix32(i);
    if (!IsPublicV4(ip)) continue;
    buf.push_back(V4Text(ip));
    ++made;
    if (buf.size() == chunk) {
      sink(buf);
      buf.clear();
    }
  }
  if (!buf.empty()) sink(buf);
}

// ---- store ----

std::string StoreUrl(const fs::path& db) { return "sqlite://" + db.string(); }

void RemoveDb(const fs::path& db) {
  std::error_code ec;
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    fs::remove(db.string() + suffix, ec);
  }
}

// Fresh store with `n` source nodes; returns the seconds it took, or an error message.
std::optional<std::string> Ingest(const fs::path& db, int64_t n, uint64_t seed, double* took) {
  RemoveDb(db);
  const auto start = std::chrono::steady_clock::now();
  auto store = enrichd::OpenGraphStore(StoreUrl(db));
  if (!store.ok()) return "open " + db.string() + ": " + store.status().ToString();
  std::optional<std::string> error;
  int64_t added = 0;
  GenerateIps(n, seed, 20'000, [&](const std::vector<std::string>& ips) {
    if (error) return;
    std::vector<enrichd::SourceNode> nodes;
    nodes.reserve(ips.size());
    for (const auto& ip : ips) nodes.push_back({.label = "ip", .key = ip});
    auto r = (*store)->UpsertSourceNodes(nodes);
    if (!r.ok()) {
      error = "UpsertSourceNodes: " + r.status().ToString();
    } else {
      added += r->added;
    }
  });
  if (error) return error;
  if (added != n) return "ingested " + std::to_string(added) + " of " + std::to_string(n);
  *took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return std::nullopt;
}

// ---- scenarios ----

struct EngineSettings {
  int claim_batch = 512;
  std::string lease = "30s";
  std::string poll_interval = "100ms";
  int worker_threads = 1;  // no synchronous adapter here
};

struct Scenario {
  std::string id;     // "a", "a2", ...
  std::string title;  // one line
  int64_t ips = 0;
  int runs = 1;
  MockProviderOptions mock;  // for each of the two mocks
  int concurrency = 64;
  std::optional<double> rate_per_second;  // engine-side, per provider
  int rate_burst = 0;
  int max_attempts = 5;
  std::string base_delay = "100ms";
  std::string max_delay = "2s";
  // Circuit breaker (reported with scenario e).
  double cb_failure_rate = 0.5;
  int cb_window = 20;
  int cb_min_calls = 10;
  std::string cb_open_for = "1s";
  double cb_open_for_s = 1;
  int cb_half_open_calls = 2;
  std::optional<double> sigterm_after_s;  // a2: bounded run
  double timeout_s = 900;                 // SIGKILL after this (a hung child)
};

MockProviderOptions QuietMock(uint64_t seed) {
  MockProviderOptions o;
  // Keep ip-api's quota windows out of the way (the real service allows 45/minute): a huge
  // allowance per window. The window stays short because every ip-api answer carries X-Ttl
  // (seconds to the window's reset) and the ip-api adapter takes X-Ttl as the pause after
  // any 429, including the rate limiter's (scenario c): a 24 h window would pause it 24 h.
  o.ipapi_requests_per_window = 1'000'000'000;
  o.ipapi_batch_requests_per_window = 1'000'000'000;
  o.ipapi_window = std::chrono::seconds(1);
  o.seed = seed;
  return o;
}

std::string ScenarioConfigYaml(const Scenario& s, const EngineSettings& e,
                               const std::string& ipinfo_url, const std::string& ipapi_url) {
  std::ostringstream y;
  y << "# Generated by bench/e2e_benchmark for scenario " << s.id << ".\n"
    << "engine: { claim_batch: " << e.claim_batch << ", lease: " << e.lease
    << ", worker_threads: " << e.worker_threads << ", poll_interval: " << e.poll_interval << " }\n"
    << "providers:\n";
  struct P {
    const char* name;
    const char* adapter;
    const char* kind;
    std::string url;
  };
  for (const P& p :
       {P{"ipinfo", "ipinfo", "geo", ipinfo_url}, P{"ip-api", "ip-api", "asn", ipapi_url}}) {
    y << "  - name: " << p.name << "\n"
      << "    adapter: " << p.adapter << "\n"
      << "    kind: " << p.kind << "\n"
      << "    applies_to: [ip]\n"
      << "    endpoint: " << p.url << "\n"
      << "    concurrency: " << s.concurrency << "\n"
      << "    timeout: 10s\n";
    if (s.rate_per_second) {
      y << "    rate_limit: { per_second: " << *s.rate_per_second << ", burst: " << s.rate_burst
        << " }\n";
    }
    y << "    retry: { max_attempts: " << s.max_attempts << ", base_delay: " << s.base_delay
      << ", max_delay: " << s.max_delay << ", jitter: full }\n"
      << "    circuit_breaker: { failure_rate: " << s.cb_failure_rate << ", window: " << s.cb_window
      << ", min_calls: " << s.cb_min_calls << ", open_for: " << s.cb_open_for
      << ", half_open_calls: " << s.cb_half_open_calls << " }\n"
      << "    batch: { max_items: 1 }\n"
      << "    ttl: 7d\n";
  }
  return y.str();
}

// ---- the child process ----

struct ChildResult {
  bool started = false;
  std::string error;   // setup failure
  int exit_code = -1;  // -1: killed by a signal
  int term_signal = 0;
  double wall_s = 0;
  double peak_rss_mb = 0;
  double user_cpu_s = 0;
  double sys_cpu_s = 0;
  bool sent_sigterm = false;
  bool sent_sigkill = false;
  std::string stdout_text;
  std::string stderr_text;
};

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

double TvSecs(const timeval& tv) { return static_cast<double>(tv.tv_sec) + tv.tv_usec / 1e6; }

ChildResult RunChild(const std::vector<std::string>& argv, const fs::path& out_file,
                     const fs::path& err_file, std::optional<double> sigterm_after_s,
                     double timeout_s) {
  ChildResult r;
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  const int out_fd = ::open(out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  const int err_fd = ::open(err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out_fd < 0 || err_fd < 0) {
    r.error = "cannot create " + out_file.string() + ": " + std::strerror(errno);
    if (out_fd >= 0) ::close(out_fd);
    if (err_fd >= 0) ::close(err_fd);
    return r;
  }
  const auto start = std::chrono::steady_clock::now();
  const pid_t pid = ::fork();
  if (pid < 0) {
    r.error = std::string("fork: ") + std::strerror(errno);
    ::close(out_fd);
    ::close(err_fd);
    return r;
  }
  if (pid == 0) {
    // Child: only async-signal-safe calls until exec.
    ::dup2(out_fd, STDOUT_FILENO);
    ::dup2(err_fd, STDERR_FILENO);
    const int null_fd = ::open("/dev/null", O_RDONLY);
    if (null_fd >= 0) ::dup2(null_fd, STDIN_FILENO);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execvp(cargv[0], cargv.data());
    static const char kMsg[] = "e2e_benchmark: exec failed\n";
    (void)!::write(STDERR_FILENO, kMsg, sizeof kMsg - 1);
    ::_exit(127);
  }
  ::close(out_fd);
  ::close(err_fd);
  r.started = true;

  // Watchdog: SIGTERM at sigterm_after_s (bounded runs), SIGKILL at timeout_s. The main
  // thread waits with WNOWAIT first, so the pid stays a zombie (not reusable) until the
  // watchdog has stopped.
  std::mutex mu;
  std::condition_variable cv;
  bool exited = false;
  std::thread watchdog([&] {
    std::unique_lock<std::mutex> lock(mu);
    if (sigterm_after_s) {
      if (!cv.wait_until(lock, start + std::chrono::duration<double>(*sigterm_after_s),
                         [&] { return exited; })) {
        ::kill(pid, SIGTERM);
        r.sent_sigterm = true;
      }
    }
    if (!cv.wait_until(lock, start + std::chrono::duration<double>(timeout_s),
                       [&] { return exited; })) {
      ::kill(pid, SIGKILL);
      r.sent_sigkill = true;
    }
  });
  siginfo_t info{};
  while (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT) < 0 && errno == EINTR) {
  }
  const auto end = std::chrono::steady_clock::now();
  {
    std::lock_guard<std::mutex> lock(mu);
    exited = true;
  }
  cv.notify_all();
  watchdog.join();
  int status = 0;
  rusage ru{};
  while (::wait4(pid, &status, 0, &ru) < 0 && errno == EINTR) {
  }
  r.wall_s = std::chrono::duration<double>(end - start).count();
  r.peak_rss_mb = static_cast<double>(ru.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
  r.user_cpu_s = TvSecs(ru.ru_utime);
  r.sys_cpu_s = TvSecs(ru.ru_stime);
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.term_signal = WTERMSIG(status);
  r.stdout_text = ReadFile(out_file);
  r.stderr_text = ReadFile(err_file);
  return r;
}

// The last line of `text` that parses as a JSON object.
std::optional<Json> LastJsonLine(const std::string& text) {
  std::istringstream in(text);
  std::string line;
  std::optional<Json> found;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] != '{') continue;
    Json j = Json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_object()) found = std::move(j);
  }
  return found;
}

// ---- measurement of one run ----

struct ProviderFigures {
  std::string name;
  uint64_t requests = 0;      // as the mock counted them (its only route for this provider)
  double req_per_s_wall = 0;  // requests / child wall time
  double req_per_s_span = 0;  // requests / (last arrival - first arrival)
  double span_s = 0;
  uint64_t max_in_1s = 0;  // most requests in any 1-second sliding window
  uint64_t http_429 = 0;   // as sent by the mock
  uint64_t http_503 = 0;
  uint64_t outage_requests = 0;  // requests answered "outage" (scenario e)
  std::map<int64_t, uint64_t> by_second;
  Json mock_stats;  // Snapshot().ToJson() minus the bulky parts
  // From the store after the run.
  int64_t total = 0, done = 0, no_data = 0, pending = 0, running = 0, dead = 0, skipped = 0;
  // From the engine's JSON summary.
  Json engine;
};

struct RunFigures {
  std::string scenario;
  int run_index = 0;
  int64_t ips = 0;
  double ingest_s = 0;
  ChildResult child;
  std::optional<Json> summary;
  std::vector<ProviderFigures> providers;
  int64_t finished = 0;  // every task in a final state (done, no_data, dead, skipped)
  int64_t answered = 0;  // done + no_data
  int64_t total = 0;
  double enrich_per_s = 0;  // finished / wall
  double load1_before = 0, load1_after = 0;
  double mock_cpu_s = 0;  // this process (the two mocks), during the child's run
  std::string problem;    // non-empty: the run could not be measured
};

double Load1() {
  std::ifstream in("/proc/loadavg");
  double l = 0;
  in >> l;
  return l;
}

double SelfCpu() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return TvSecs(ru.ru_utime) + TvSecs(ru.ru_stime);
}

Json TrimmedMockJson(const MockProviderStats& s) {
  Json j = Json::parse(s.ToJson(), nullptr, false);
  if (j.is_object()) {
    j.erase("by_ip");
    j.erase("requests");
  }
  return j;
}

ProviderFigures Measure(const std::string& name, const MockProvider& mock, double wall_s) {
  ProviderFigures f;
  f.name = name;
  const MockProviderStats s = mock.Snapshot();
  f.requests = s.total_requests;
  f.req_per_s_wall = wall_s > 0 ? static_cast<double>(s.total_requests) / wall_s : 0;
  if (s.arrivals.size() >= 2) {
    const auto [lo, hi] = std::minmax_element(s.arrivals.begin(), s.arrivals.end());
    f.span_s = Secs(*hi - *lo);
    if (f.span_s > 0) f.req_per_s_span = static_cast<double>(s.arrivals.size()) / f.span_s;
  }
  f.max_in_1s = s.MaxInWindow(seconds(1));
  auto st = [&](int code) -> uint64_t {
    auto it = s.by_status.find(code);
    return it == s.by_status.end() ? 0 : it->second;
  };
  f.http_429 = st(429);
  f.http_503 = st(503);
  auto ev = s.events.find("outage");
  f.outage_requests = ev == s.events.end() ? 0 : ev->second;
  f.by_second = s.by_second;
  f.mock_stats = TrimmedMockJson(s);
  return f;
}

struct Context {
  Args args;
  EngineSettings engine;
  fs::path workdir;
  int nproc = 1;
};

RunFigures RunOnce(const Context& ctx, const Scenario& sc, int run_index) {
  RunFigures rf;
  rf.scenario = sc.id;
  rf.run_index = run_index;
  rf.ips = sc.ips;
  const std::string tag = sc.id + (sc.runs > 1 ? "-run" + std::to_string(run_index + 1) : "");
  const fs::path db = ctx.workdir / (tag + ".db");
  const fs::path config = ctx.workdir / (tag + ".yaml");
  std::cerr << "[" << tag << "] ingesting " << sc.ips << " addresses..." << std::flush;
  if (auto err = Ingest(db, sc.ips, ctx.args.seed, &rf.ingest_s)) {
    rf.problem = *err;
    std::cerr << " failed: " << *err << "\n";
    return rf;
  }
  std::cerr << " " << rf.ingest_s << " s\n";

  // The mocks start now, so that scheduled windows (the outage) count from the run's start.
  MockProviderOptions mo = sc.mock;
  mo.seed = ctx.args.seed * 2 + 1;
  auto ipinfo_mock = MockProvider::Start(mo);
  mo.seed = ctx.args.seed * 2 + 2;
  auto ipapi_mock = MockProvider::Start(mo);
  if (!ipinfo_mock.ok() || !ipapi_mock.ok()) {
    rf.problem = "mock provider: " +
                 (!ipinfo_mock.ok() ? ipinfo_mock.status() : ipapi_mock.status()).ToString();
    return rf;
  }
  {
    std::ofstream out(config);
    out << ScenarioConfigYaml(sc, ctx.engine, (*ipinfo_mock)->ipinfo_url(),
                              (*ipapi_mock)->ipapi_url());
  }
  std::vector<std::string> argv = ctx.args.child_prefix;
  const std::vector<std::string> enrichd_argv = {
      ctx.args.enrichd, "run",        "--config", config.string(), "--once",
      "--json",         "--progress", "none",     "--store",       StoreUrl(db)};
  argv.insert(argv.end(), enrichd_argv.begin(), enrichd_argv.end());
  std::cerr << "[" << tag << "] running enrichd (" << sc.title << ")..." << std::flush;
  rf.load1_before = Load1();
  const double cpu0 = SelfCpu();
  rf.child = RunChild(argv, ctx.workdir / (tag + ".out"), ctx.workdir / (tag + ".err"),
                      sc.sigterm_after_s, sc.timeout_s);
  rf.mock_cpu_s = SelfCpu() - cpu0;
  rf.load1_after = Load1();
  if (!rf.child.started) {
    rf.problem = rf.child.error;
    std::cerr << " failed: " << rf.problem << "\n";
    return rf;
  }
  std::cerr << " exit " << rf.child.exit_code << ", " << rf.child.wall_s << " s\n";
  const bool expected_exit =
      rf.child.exit_code == 0 ||
      (sc.sigterm_after_s && rf.child.sent_sigterm && rf.child.exit_code == 130);
  if (!expected_exit) {
    rf.problem = "enrichd exited with " +
                 (rf.child.term_signal ? "signal " + std::to_string(rf.child.term_signal)
                                       : "status " + std::to_string(rf.child.exit_code)) +
                 "; stderr: " + rf.child.stderr_text.substr(0, 2000);
  }
  rf.summary = LastJsonLine(rf.child.stdout_text);
  (*ipinfo_mock)->Stop();
  (*ipapi_mock)->Stop();
  rf.providers.push_back(Measure("ipinfo", **ipinfo_mock, rf.child.wall_s));
  rf.providers.push_back(Measure("ip-api", **ipapi_mock, rf.child.wall_s));

  auto store = enrichd::OpenGraphStore(StoreUrl(db));
  if (!store.ok()) {
    rf.problem += (rf.problem.empty() ? "" : "; ") + std::string("reopen store: ") +
                  store.status().ToString();
  } else {
    auto counts = (*store)->Counts();
    if (!counts.ok()) {
      rf.problem +=
          (rf.problem.empty() ? "" : "; ") + std::string("Counts: ") + counts.status().ToString();
    } else {
      for (auto& p : rf.providers) {
        auto it = counts->providers.find(p.name);
        if (it == counts->providers.end()) continue;
        const auto& c = it->second;
        p.pending = c.pending;
        p.running = c.running;
        p.done = c.done;
        p.no_data = c.no_data;
        p.dead = c.dead;
        p.skipped = c.skipped;
        p.total = c.pending + c.running + c.done + c.no_data + c.dead + c.skipped;
        rf.total += p.total;
        rf.answered += c.done + c.no_data;
        rf.finished += c.done + c.no_data + c.dead + c.skipped;
      }
    }
  }
  if (rf.summary && rf.summary->contains("providers")) {
    for (auto& p : rf.providers) {
      if ((*rf.summary)["providers"].contains(p.name))
        p.engine = (*rf.summary)["providers"][p.name];
    }
  }
  // For a bounded run (a2) the store's finished count includes nothing from before: the
  // store was fresh, so it is the work this run finished.
  rf.enrich_per_s = rf.child.wall_s > 0 ? static_cast<double>(rf.finished) / rf.child.wall_s : 0;
  if (!ctx.args.keep) {
    RemoveDb(db);
  }
  return rf;
}

// ---- reporting ----

struct Verdict {
  std::string target;
  std::string measured;
  bool met = false;
};

Json ProviderJson(const ProviderFigures& p) {
  Json by_second = Json::object();
  for (const auto& [s, n] : p.by_second) by_second[std::to_string(s)] = n;
  return {{"requests", p.requests},
          {"req_per_s_wall", p.req_per_s_wall},
          {"req_per_s_span", p.req_per_s_span},
          {"arrival_span_s", p.span_s},
          {"max_in_any_1s", p.max_in_1s},
          {"http_429_sent", p.http_429},
          {"http_503_sent", p.http_503},
          {"outage_answers", p.outage_requests},
          {"by_second", by_second},
          {"store",
           {{"total", p.total},
            {"done", p.done},
            {"no_data", p.no_data},
            {"pending", p.pending},
            {"running", p.running},
            {"dead", p.dead},
            {"skipped", p.skipped}}},
          {"engine_summary", p.engine},
          {"mock", p.mock_stats}};
}

Json RunJson(const RunFigures& r) {
  Json providers = Json::object();
  for (const auto& p : r.providers) providers[p.name] = ProviderJson(p);
  return {{"scenario", r.scenario},
          {"run", r.run_index + 1},
          {"ips", r.ips},
          {"ingest_s", r.ingest_s},
          {"wall_s", r.child.wall_s},
          {"exit_code", r.child.exit_code},
          {"term_signal", r.child.term_signal},
          {"sent_sigterm", r.child.sent_sigterm},
          {"sent_sigkill", r.child.sent_sigkill},
          {"peak_rss_mb", r.child.peak_rss_mb},
          {"child_user_cpu_s", r.child.user_cpu_s},
          {"child_sys_cpu_s", r.child.sys_cpu_s},
          {"mock_process_cpu_s", r.mock_cpu_s},
          {"load1_before", r.load1_before},
          {"load1_after", r.load1_after},
          {"tasks_total", r.total},
          {"tasks_finished", r.finished},
          {"tasks_answered", r.answered},
          {"enrichments_per_s", r.enrich_per_s},
          {"problem", r.problem},
          {"providers", providers}};
}

std::string Fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

const ProviderFigures* Prov(const RunFigures& r, const std::string& name) {
  for (const auto& p : r.providers) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

uint64_t Sum429(const RunFigures& r) {
  uint64_t n = 0;
  for (const auto& p : r.providers) n += p.http_429;
  return n;
}
uint64_t Sum503(const RunFigures& r) {
  uint64_t n = 0;
  for (const auto& p : r.providers) n += p.http_503;
  return n;
}

// Scenario-specific verdicts; `runs` are all runs of the scenario.
std::vector<Verdict> Judge(const Scenario& sc, const std::vector<RunFigures>& runs, Json* extra) {
  std::vector<Verdict> v;
  if (runs.empty()) return v;
  const RunFigures& r = runs.front();
  auto all_done = [&](const RunFigures& x) {
    return Verdict{"every item done (store: done+no_data == total, nothing dead/pending)",
                   std::to_string(x.answered) + "/" + std::to_string(x.total) + " answered, " +
                       std::to_string(x.total - x.finished) + " unfinished, " +
                       std::to_string(x.finished - x.answered) + " dead/skipped",
                   x.total == 2 * x.ips && x.answered == x.total};
  };
  if (sc.id == "a") {
    v.push_back(
        {">= 20,000 enrichments/s", Fmt("%.0f/s", r.enrich_per_s), r.enrich_per_s >= 20'000});
    v.push_back(
        {"peak RSS < 60 MB", Fmt("%.1f MB", r.child.peak_rss_mb), r.child.peak_rss_mb < 60});
    v.push_back(all_done(r));
  } else if (sc.id == "a2") {
    v.push_back({"peak RSS < 150 MB with 1M pending", Fmt("%.1f MB", r.child.peak_rss_mb),
                 r.child.peak_rss_mb < 150});
    v.push_back(
        {"SIGTERM -> exit 130, nothing left running",
         "exit " + std::to_string(r.child.exit_code) + ", running " +
             std::to_string((Prov(r, "ipinfo") ? Prov(r, "ipinfo")->running : 0) +
                            (Prov(r, "ip-api") ? Prov(r, "ip-api")->running : 0)),
         r.child.exit_code == 130 && (Prov(r, "ipinfo") ? Prov(r, "ipinfo")->running : 1) +
                                             (Prov(r, "ip-api") ? Prov(r, "ip-api")->running : 1) ==
                                         0});
  } else if (sc.id == "b") {
    const double ideal = 2.0 * sc.concurrency / Secs(sc.mock.latency);
    const double pct = 100.0 * r.enrich_per_s / ideal;
    (*extra)["ideal_per_s"] = ideal;
    (*extra)["pct_of_ideal"] = pct;
    v.push_back({">= 97 % of ideal " + Fmt("%.0f/s", ideal), Fmt("%.1f %%", pct), pct >= 97});
    v.push_back(all_done(r));
  } else if (sc.id == "c") {
    double worst_pct = 1e9;
    uint64_t total429 = 0;
    Json per_run = Json::array();
    for (const auto& x : runs) {
      Json pr = Json::object();
      for (const auto& p : x.providers) {
        const double pct = 100.0 * p.req_per_s_span / *sc.rate_per_second;
        worst_pct = std::min(worst_pct, pct);
        pr[p.name] = {{"req_per_s_span", p.req_per_s_span},
                      {"pct_of_limit", pct},
                      {"req_per_s_wall", p.req_per_s_wall},
                      {"http_429", p.http_429},
                      {"max_in_any_1s", p.max_in_1s}};
      }
      per_run.push_back(pr);
      total429 += Sum429(x);
    }
    (*extra)["per_run"] = per_run;
    v.push_back({">= 98 % of the limit (provider side, every provider, every run)",
                 Fmt("worst %.1f %%", worst_pct), worst_pct >= 98});
    v.push_back({"zero 429s in " + std::to_string(runs.size()) + " consecutive runs",
                 std::to_string(total429) + " 429s", total429 == 0});
    bool every = true;
    for (const auto& x : runs) every = every && x.answered == x.total && x.total == 2 * x.ips;
    v.push_back({"every item done in every run", every ? "yes" : "no", every});
  } else if (sc.id == "d") {
    v.push_back(all_done(r));
    v.push_back({"(info) 503s received", std::to_string(Sum503(r)), true});
  } else if (sc.id == "e") {
    v.push_back(all_done(r));
    // During the outage: every slot is filled at once (`concurrency` calls), and until
    // min_calls failures are scored each freed slot may start one more (min_calls - 1), then
    // half_open_calls probes per open_for.
    const double outage_s = Secs(sc.mock.outage_end - sc.mock.outage_start);
    const int64_t probes =
        static_cast<int64_t>(outage_s / sc.cb_open_for_s) * sc.cb_half_open_calls;
    const int64_t bound = sc.concurrency + sc.cb_min_calls - 1 + probes;
    Json per = Json::object();
    bool within = true;
    std::string measured;
    for (const auto& p : r.providers) {
      per[p.name] = {{"requests_during_outage", p.outage_requests}, {"expected_at_most", bound}};
      within = within && static_cast<int64_t>(p.outage_requests) <= bound;
      measured += (measured.empty() ? "" : ", ") + p.name + " " + std::to_string(p.outage_requests);
    }
    (*extra)["outage"] = per;
    v.push_back({"during the outage only in-flight calls + probes: <= concurrency " +
                     std::to_string(sc.concurrency) + " + min_calls-1 " +
                     std::to_string(sc.cb_min_calls - 1) + " + " + std::to_string(probes) +
                     " probes = " + std::to_string(bound) + " per provider",
                 measured, within});
  }
  return v;
}

void PrintTable(const std::vector<RunFigures>& all) {
  std::printf("\n%-6s %8s %8s %10s %10s %10s %6s %6s %8s %8s %6s  %s\n", "run", "items", "wall_s",
              "enrich/s", "ipinfo/s", "ip-api/s", "429", "503", "RSS_MB", "cpu_s", "load",
              "done/total");
  for (const auto& r : all) {
    const auto* a = Prov(r, "ipinfo");
    const auto* b = Prov(r, "ip-api");
    const std::string tag =
        r.scenario +
        (r.run_index > 0 || r.scenario == "c" ? "#" + std::to_string(r.run_index + 1) : "");
    std::printf(
        "%-6s %8lld %8.2f %10.0f %10.1f %10.1f %6llu %6llu %8.1f %8.2f %6.1f  %lld/%lld%s\n",
        tag.c_str(), static_cast<long long>(2 * r.ips), r.child.wall_s, r.enrich_per_s,
        a ? a->req_per_s_wall : 0.0, b ? b->req_per_s_wall : 0.0,
        static_cast<unsigned long long>(Sum429(r)), static_cast<unsigned long long>(Sum503(r)),
        r.child.peak_rss_mb, r.child.user_cpu_s + r.child.sys_cpu_s, r.load1_before,
        static_cast<long long>(r.answered), static_cast<long long>(r.total),
        r.problem.empty() ? "" : "  (PROBLEM)");
  }
}

std::string UtcStamp() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

std::vector<Scenario> BuildScenarios(const Args& args) {
  std::vector<Scenario> out;
  for (const auto& id : args.scenarios) {
    Scenario s;
    s.id = id;
    s.mock = QuietMock(args.seed);
    s.ips = args.ips;
    if (id == "a") {
      s.title = "no latency, no limit, concurrency 64";
    } else if (id == "a2") {
      s.title = "as (a) with a big backlog, SIGTERM after " + Fmt("%.0f s", args.a2_seconds);
      s.ips = args.big_ips;
      s.sigterm_after_s = args.a2_seconds;
    } else if (id == "b") {
      s.title = "50 ms latency, concurrency 32";
      s.mock.latency = milliseconds(50);
      s.concurrency = 32;
    } else if (id == "c") {
      s.title = "mock limit 200/s burst 20 per provider, engine 200/s burst 20";
      s.ips = args.c_ips;
      s.runs = args.c_runs;
      s.mock.rate_limit_rps = 200;
      s.mock.rate_limit_burst = 20;
      s.rate_per_second = 200;
      s.rate_burst = 20;
    } else if (id == "d") {
      s.title = "10 % of answers 503, max_attempts 8";
      s.mock.error_rate = 0.1;
      s.max_attempts = 8;
    } else if (id == "e") {
      s.title = "5 s outage at the start (503 + Retry-After), max_attempts 8";
      s.mock.outage_start = seconds(0);
      s.mock.outage_end = seconds(5);
      s.max_attempts = 8;
    }
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  auto parsed = ParseArgs(argc, argv);
  if (!parsed) return 2;
  Context ctx;
  ctx.args = *parsed;
  ctx.nproc = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (::access(ctx.args.enrichd.c_str(), X_OK) != 0) {
    std::cerr << "e2e_benchmark: cannot execute enrichd at '" << ctx.args.enrichd
              << "' (build it, or pass --enrichd PATH)\n";
    return 2;
  }
  ctx.args.enrichd = fs::absolute(ctx.args.enrichd).string();
  if (ctx.args.workdir.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/enrichd-e2e-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (::mkdtemp(buf.data()) == nullptr) {
      std::cerr << "e2e_benchmark: mkdtemp: " << std::strerror(errno) << "\n";
      return 1;
    }
    ctx.workdir = buf.data();
  } else {
    ctx.workdir = ctx.args.workdir;
    std::error_code ec;
    fs::create_directories(ctx.workdir, ec);
    if (ec) {
      std::cerr << "e2e_benchmark: cannot create " << ctx.workdir << ": " << ec.message() << "\n";
      return 1;
    }
  }
  ctx.workdir = fs::absolute(ctx.workdir);
  const std::string stamp = UtcStamp();
  const fs::path out = ctx.args.out.empty() ? ctx.workdir / ("e2e-results-" + stamp + ".json")
                                            : fs::path(ctx.args.out);
  std::cerr << "e2e_benchmark: enrichd " << ctx.args.enrichd << ", seed " << ctx.args.seed
            << ", nproc " << ctx.nproc << ", load " << Load1() << ", workdir " << ctx.workdir
            << "\n";

  Json results;
  results["date_utc"] = stamp;
  results["nproc"] = ctx.nproc;
  results["load1_at_start"] = Load1();
  results["seed"] = ctx.args.seed;
  results["enrichd"] = ctx.args.enrichd;
  results["engine_settings"] = {{"claim_batch", ctx.engine.claim_batch},
                                {"lease", ctx.engine.lease},
                                {"poll_interval", ctx.engine.poll_interval},
                                {"worker_threads", ctx.engine.worker_threads}};
  results["scenarios"] = Json::array();

  std::vector<RunFigures> all;
  std::vector<std::pair<const Scenario*, std::vector<Verdict>>> verdicts;
  const auto scenarios = BuildScenarios(ctx.args);
  bool failed = false;
  for (const auto& sc : scenarios) {
    std::vector<RunFigures> runs;
    for (int i = 0; i < sc.runs; ++i) {
      runs.push_back(RunOnce(ctx, sc, i));
      if (!runs.back().problem.empty()) {
        failed = true;
        std::cerr << "[" << sc.id << "] PROBLEM: " << runs.back().problem << "\n";
      }
    }
    Json extra = Json::object();
    auto v = Judge(sc, runs, &extra);
    Json sj = {{"id", sc.id},
               {"title", sc.title},
               {"ips", sc.ips},
               {"concurrency_per_provider", sc.concurrency},
               {"mock",
                {{"latency_ms", Secs(sc.mock.latency) * 1000},
                 {"error_rate", sc.mock.error_rate},
                 {"rate_limit_rps", sc.mock.rate_limit_rps},
                 {"rate_limit_burst", sc.mock.rate_limit_burst},
                 {"outage_start_s", Secs(sc.mock.outage_start)},
                 {"outage_end_s", Secs(sc.mock.outage_end)}}},
               {"engine_rate_limit", sc.rate_per_second ? Json(*sc.rate_per_second) : Json()},
               {"engine_burst", sc.rate_per_second ? Json(sc.rate_burst) : Json()},
               {"retry_max_attempts", sc.max_attempts},
               {"circuit_breaker",
                {{"failure_rate", sc.cb_failure_rate},
                 {"window", sc.cb_window},
                 {"min_calls", sc.cb_min_calls},
                 {"open_for", sc.cb_open_for},
                 {"half_open_calls", sc.cb_half_open_calls}}},
               {"analysis", extra},
               {"runs", Json::array()},
               {"verdicts", Json::array()}};
    for (const auto& r : runs) sj["runs"].push_back(RunJson(r));
    for (const auto& x : v) {
      sj["verdicts"].push_back({{"target", x.target}, {"measured", x.measured}, {"met", x.met}});
    }
    results["scenarios"].push_back(sj);
    verdicts.emplace_back(&sc, v);
    for (auto& r : runs) all.push_back(std::move(r));
    // Written after every scenario, so a long session leaves partial results.
    std::ofstream(out) << results.dump(2) << "\n";
  }

  PrintTable(all);
  std::printf("\n");
  for (const auto& [sc, v] : verdicts) {
    std::printf("(%s) %s\n", sc->id.c_str(), sc->title.c_str());
    for (const auto& x : v) {
      std::printf("    [%s] %s: %s\n", x.met ? "met " : "MISS", x.target.c_str(),
                  x.measured.c_str());
    }
  }
  std::printf("\nengine: claim_batch %d, lease %s, poll_interval %s; nproc %d\n",
              ctx.engine.claim_batch, ctx.engine.lease.c_str(), ctx.engine.poll_interval.c_str(),
              ctx.nproc);
  std::printf("results: %s\n", out.c_str());
  if (!ctx.args.keep && ctx.args.workdir.empty()) {
    // Keep only the results file (and the children's stdout/stderr) in the temp folder.
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(ctx.workdir, ec)) {
      if (e.path().extension() == ".yaml" && e.path() != out) fs::remove(e.path(), ec);
    }
  }
  return failed ? 1 : 0;
}

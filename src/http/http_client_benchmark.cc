// Throughput of CurlHttpClient against the loopback mock HttpServer (1 event-loop thread,
// a tiny JSON answer, no latency): keeps a fixed number of requests in flight for a while
// and prints requests per second and the connections the server accepted (which should
// equal the number in flight: every connection is reused).
//
//   http_client_benchmark [--seconds S] [--inflight N]    server and client in one process
//   http_client_benchmark --url URL [--seconds S] [--inflight N]    client only
//   ... [--transport native|curl]   native (default): the client as configured by default
//                                   (plain http goes through its own HTTP/1.1 transport);
//                                   curl: CurlHttpClientOptions::native_http = false
//   http_client_benchmark --serve-only PORT SECONDS       server only (for wrk)
//
// A plain main rather than Google Benchmark: the figure is a sustained rate of an
// asynchronous pipeline, not the time of one call.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>

#include "http/curl_http_client.h"
#include "mock_provider/http_server.h"

namespace enrichd {
namespace {

using namespace std::chrono_literals;

mock::HttpServer::Handler TinyJsonHandler() {
  return [](const mock::ServerRequest&) {
    mock::ServerResponse r;
    r.body = R"({"ip":"8.8.8.8","asn":15169,"country":"US"})";
    return r;
  };
}

volatile std::sig_atomic_t g_stop = 0;
volatile std::sig_atomic_t g_report = 0;

// Serves until SECONDS pass or SIGTERM/SIGINT; prints the counters on SIGUSR1 and at the end.
int ServeOnly(uint16_t port, int seconds) {
  mock::ServerOptions options;
  options.port = port;
  auto server = mock::HttpServer::Start(options, TinyJsonHandler());
  if (!server.ok()) {
    std::fprintf(stderr, "cannot start the server: %s\n", server.status().ToString().c_str());
    return 1;
  }
  std::signal(SIGTERM, [](int) { g_stop = 1; });
  std::signal(SIGINT, [](int) { g_stop = 1; });
  std::signal(SIGUSR1, [](int) { g_report = 1; });
  auto report = [&] {
    std::printf("server: requests=%llu connections_accepted=%llu\n",
                static_cast<unsigned long long>((*server)->requests_received()),
                static_cast<unsigned long long>((*server)->connections_accepted()));
    std::fflush(stdout);
  };
  std::printf("serving on %s for %d s\n", (*server)->base_url().c_str(), seconds);
  std::fflush(stdout);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (g_stop == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
    if (g_report != 0) {
      g_report = 0;
      report();
    }
  }
  (*server)->Stop();
  report();
  return 0;
}

struct LoadResult {
  uint64_t ok = 0;
  uint64_t failed = 0;
  double seconds = 0;
};

// Keeps `inflight` requests going against `url` for `seconds`: each callback submits the
// next request from the I/O thread.
LoadResult RunLoad(const std::string& url, int inflight, double seconds, bool native) {
  CurlHttpClientOptions options;
  options.native_http = native;
  auto created = CurlHttpClient::Create(options);
  if (!created.ok()) {
    std::fprintf(stderr, "cannot create the client: %s\n", created.status().ToString().c_str());
    std::exit(1);
  }
  std::unique_ptr<CurlHttpClient> client = std::move(created).value();
  HttpRequest request;
  request.url = url;

  // The callback captures one pointer, so copying it (once per request) never allocates.
  struct State {
    CurlHttpClient* client;
    const HttpRequest* request;
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> ok{0};
    std::atomic<uint64_t> failed{0};
    std::atomic<int> outstanding{0};
    std::mutex mu;
    std::condition_variable drained;

    HttpClient::Callback Next() {
      return [this](HttpResponse&& r) { OnDone(std::move(r)); };
    }
    void OnDone(HttpResponse&& r) {
      if (r.transport_ok() && r.status == 200) {
        ok.fetch_add(1, std::memory_order_relaxed);
      } else if (failed.fetch_add(1, std::memory_order_relaxed) < 5) {
        std::fprintf(stderr, "failure: %s status=%d\n", r.error_message.c_str(), r.status);
      }
      if (!stop.load(std::memory_order_relaxed)) {
        client->Submit(*request, Next());
      } else if (outstanding.fetch_sub(1) == 1) {
        std::lock_guard lock(mu);
        drained.notify_all();
      }
    }
  } state;
  state.client = client.get();
  state.request = &request;
  state.outstanding = inflight;
  auto& stop = state.stop;
  auto& ok = state.ok;
  auto& failed = state.failed;
  auto& outstanding = state.outstanding;
  auto& mu = state.mu;
  auto& drained = state.drained;

  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < inflight; ++i) client->Submit(request, state.Next());
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  const uint64_t ok_at_stop = ok.load();
  const uint64_t failed_at_stop = failed.load();
  const auto stop_time = std::chrono::steady_clock::now();
  {
    std::unique_lock lock(mu);
    drained.wait_for(lock, 30s, [&] { return outstanding.load() == 0; });
  }
  client.reset();
  LoadResult result;
  result.ok = ok_at_stop;
  result.failed = failed_at_stop;
  result.seconds = std::chrono::duration<double>(stop_time - start).count();
  return result;
}

int Main(int argc, char** argv) {
  double seconds = 5;
  int inflight = 64;
  std::string url;
  bool native = true;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--serve-only") == 0 && i + 2 < argc) {
      return ServeOnly(static_cast<uint16_t>(std::atoi(argv[i + 1])), std::atoi(argv[i + 2]));
    } else if (std::strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
      seconds = std::atof(argv[++i]);
    } else if (std::strcmp(argv[i], "--inflight") == 0 && i + 1 < argc) {
      inflight = std::atoi(argv[++i]);
    } else if (std::strcmp(argv[i], "--url") == 0 && i + 1 < argc) {
      url = argv[++i];
    } else if (std::strcmp(argv[i], "--transport") == 0 && i + 1 < argc &&
               (std::strcmp(argv[i + 1], "native") == 0 || std::strcmp(argv[i + 1], "curl") == 0)) {
      native = std::strcmp(argv[++i], "native") == 0;
    } else {
      std::fprintf(stderr,
                   "usage: %s [--seconds S] [--inflight N] [--url URL] [--transport native|curl]"
                   " | --serve-only PORT S\n",
                   argv[0]);
      return 2;
    }
  }

  std::unique_ptr<mock::HttpServer> server;
  if (url.empty()) {
    auto started = mock::HttpServer::Start(mock::ServerOptions{}, TinyJsonHandler());
    if (!started.ok()) {
      std::fprintf(stderr, "cannot start the server: %s\n", started.status().ToString().c_str());
      return 1;
    }
    server = std::move(started).value();
    url = server->base_url() + "/json/8.8.8.8";
  }
  LoadResult r = RunLoad(url, inflight, seconds, native);
  std::printf(
      "client: transport=%s inflight=%d seconds=%.2f ok=%llu failed=%llu "
      "requests_per_second=%.0f\n",
      native ? "native" : "curl", inflight, r.seconds, static_cast<unsigned long long>(r.ok),
      static_cast<unsigned long long>(r.failed), static_cast<double>(r.ok) / r.seconds);
  if (server != nullptr) {
    server->Stop();
    std::printf("server: requests=%llu connections_accepted=%llu\n",
                static_cast<unsigned long long>(server->requests_received()),
                static_cast<unsigned long long>(server->connections_accepted()));
  }
  return r.failed == 0 ? 0 : 1;
}

}  // namespace
}  // namespace enrichd

int main(int argc, char** argv) { return enrichd::Main(argc, argv); }

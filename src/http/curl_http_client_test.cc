// CurlHttpClient against real loopback servers: enrichd::mock::HttpServer for ordinary
// HTTP and its faults, and a few lines of raw socket code for what that server cannot do
// (a chunked body without Content-Length).
#include "http/curl_http_client.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "http/native_http_transport.h"
#include "mock_provider/http_server.h"

namespace enrichd {
namespace {

using mock::HttpServer;
using mock::ServerRequest;
using mock::ServerResponse;
using namespace std::chrono_literals;

// Loopback is never proxied in these tests, whatever proxy the environment names.
[[maybe_unused]] const bool kLoopbackNotProxied = [] {
  setenv("no_proxy", "127.0.0.1,localhost", 1);
  setenv("NO_PROXY", "127.0.0.1,localhost", 1);
  return true;
}();

// Generous upper bound for anything to happen on loopback; tests never rely on speed.
constexpr auto kPatience = 120s;

std::unique_ptr<HttpServer> StartServer(HttpServer::Handler handler) {
  auto server = HttpServer::Start(mock::ServerOptions{}, std::move(handler));
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? std::move(server).value() : nullptr;
}

// A mock server playing an HTTP proxy: answers every request "via proxy" itself (nothing
// leaves loopback) and keeps the request target it last saw.
class RecordingProxy {
 public:
  RecordingProxy()
      : server_(StartServer([this](const ServerRequest& req) {
          std::lock_guard lock(mu_);
          target_seen_ = req.target;
          ServerResponse r;
          r.body = "via proxy";
          return r;
        })) {}
  bool ok() const { return server_ != nullptr; }
  std::string url() const { return server_->base_url(); }
  std::string target_seen() {
    std::lock_guard lock(mu_);
    return target_seen_;
  }

 private:
  std::mutex mu_;
  std::string target_seen_;
  std::unique_ptr<HttpServer> server_;
};

std::unique_ptr<CurlHttpClient> MakeClient(CurlHttpClientOptions options = {}) {
  auto client = CurlHttpClient::Create(std::move(options));
  EXPECT_TRUE(client.ok()) << client.status();
  return client.ok() ? std::move(client).value() : nullptr;
}

HttpRequest Get(std::string url) {
  HttpRequest r;
  r.url = std::move(url);
  return r;
}

// Submits one request and waits for its callback. Records the thread it ran on.
struct Outcome {
  HttpResponse response;
  std::thread::id thread;
};
Outcome Fetch(HttpClient& client, HttpRequest request) {
  std::promise<Outcome> promise;
  auto future = promise.get_future();
  client.Submit(std::move(request), [&promise](HttpResponse&& r) {
    promise.set_value(Outcome{std::move(r), std::this_thread::get_id()});
  });
  if (future.wait_for(kPatience) != std::future_status::ready) {
    ADD_FAILURE() << "no callback within " << kPatience.count() << " s";
    std::abort();  // the promise is referenced by the client: cannot continue safely
  }
  return future.get();
}

// Counts callbacks per request index; waits for a number of them.
class Tally {
 public:
  explicit Tally(size_t n) : calls_(n), responses_(n) {}
  HttpClient::Callback For(size_t i) {
    return [this, i](HttpResponse&& r) {
      std::lock_guard lock(mutex_);
      ++calls_[i];
      responses_[i] = std::move(r);
      threads_.insert(std::this_thread::get_id());
      ++total_;
      cv_.notify_all();
    };
  }
  bool WaitFor(size_t total) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, kPatience, [&] { return total_ >= total; });
  }
  std::vector<int> calls() const {
    std::lock_guard lock(mutex_);
    return calls_;
  }
  const HttpResponse& response(size_t i) const { return responses_[i]; }
  std::set<std::thread::id> threads() const {
    std::lock_guard lock(mutex_);
    return threads_;
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<int> calls_;
  std::vector<HttpResponse> responses_;
  std::set<std::thread::id> threads_;
  size_t total_ = 0;
};

int ThreadsInProcess() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("Threads:", 0) == 0) return std::stoi(line.substr(8));
  }
  return -1;
}

// A loopback port with nothing listening on it.
uint16_t ClosedPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);  // bound but never listening: connecting is refused
  return ntohs(addr.sin_port);
}

// Serves exactly one connection with a fixed byte string, then closes it. For responses
// the mock server does not produce (chunked bodies, folded headers).
class OneShotRawServer {
 public:
  // With `after_first_bytes`, replies as soon as anything arrives instead of after a
  // complete request head.
  explicit OneShotRawServer(std::string reply, bool after_first_bytes = false)
      : reply_(std::move(reply)), after_first_bytes_(after_first_bytes) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(listen(listen_fd_, 4), 0);
    socklen_t len = sizeof addr;
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~OneShotRawServer() {
    shutdown(listen_fd_, SHUT_RDWR);
    thread_.join();
    close(listen_fd_);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/"; }

 private:
  void Serve() {
    int fd = accept(listen_fd_, nullptr, nullptr);
    if (fd < 0) return;
    std::string request;
    char buf[4096];
    while (request.find("\r\n\r\n") == std::string::npos) {
      ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      request.append(buf, static_cast<size_t>(n));
      if (after_first_bytes_) break;
    }
    size_t sent = 0;
    while (sent < reply_.size()) {
      ssize_t n = send(fd, reply_.data() + sent, reply_.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) break;
      sent += static_cast<size_t>(n);
    }
    close(fd);
  }
  std::string reply_;
  bool after_first_bytes_ = false;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
};

// Serves any number of connections, one thread each (tests only), answering each request
// head with what `script` says. Counts connections and requests. For exchanges the mock
// server does not produce: chunked bodies with extensions and trailers, bodies ended by
// closing, interim responses, servers that drop a kept-alive connection.
class ScriptedServer {
 public:
  struct Reply {
    std::string bytes;
    bool close_after = false;     // close the connection once `bytes` are sent
    bool close_silently = false;  // close without sending anything
  };
  // connection: ordinal of the connection (accept order, from 0); request: ordinal of the
  // request on that connection (from 0); head: the request line and headers.
  using Script = std::function<Reply(int connection, int request, const std::string& head)>;

  // On 127.0.0.1, or on [::1] with `ipv6` (then ok() is false when the machine has no
  // IPv6 loopback).
  explicit ScriptedServer(Script script, bool ipv6 = false)
      : script_(std::move(script)), ipv6_(ipv6) {
    listen_fd_ = socket(ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
    sockaddr_storage storage{};
    socklen_t len = 0;
    if (ipv6) {
      auto* addr = reinterpret_cast<sockaddr_in6*>(&storage);
      addr->sin6_family = AF_INET6;
      addr->sin6_addr = in6addr_loopback;
      len = sizeof(sockaddr_in6);
    } else {
      auto* addr = reinterpret_cast<sockaddr_in*>(&storage);
      addr->sin_family = AF_INET;
      addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      len = sizeof(sockaddr_in);
    }
    ok_ = listen_fd_ >= 0 && bind(listen_fd_, reinterpret_cast<sockaddr*>(&storage), len) == 0 &&
          listen(listen_fd_, 64) == 0;
    if (!ipv6) {
      EXPECT_TRUE(ok_);
    }
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&storage), &len);
    port_ = ntohs(ipv6 ? reinterpret_cast<sockaddr_in6*>(&storage)->sin6_port
                       : reinterpret_cast<sockaddr_in*>(&storage)->sin_port);
    accept_thread_ = std::thread([this] { AcceptLoop(); });
  }
  bool ok() const { return ok_; }
  ~ScriptedServer() {
    shutdown(listen_fd_, SHUT_RDWR);
    accept_thread_.join();
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
      for (int fd : open_fds_) shutdown(fd, SHUT_RDWR);
    }
    for (auto& t : connection_threads_) t.join();
    close(listen_fd_);
  }
  std::string url(const std::string& path = "/") const {
    return std::string(ipv6_ ? "http://[::1]:" : "http://127.0.0.1:") + std::to_string(port_) +
           path;
  }
  int connections() const { return connections_.load(); }
  int requests() const { return requests_.load(); }
  std::vector<std::string> heads() const {
    std::lock_guard lock(mu_);
    return heads_;
  }

 private:
  void AcceptLoop() {
    for (int ordinal = 0;; ++ordinal) {
      int fd = accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) return;
      ++connections_;
      std::lock_guard lock(mu_);
      if (stopping_) {
        close(fd);
        return;
      }
      open_fds_.insert(fd);
      connection_threads_.emplace_back([this, fd, ordinal] { Serve(fd, ordinal); });
    }
  }
  void Serve(int fd, int connection) {
    std::string in;
    char buf[4096];
    for (int request = 0;; ++request) {
      size_t end;
      while ((end = in.find("\r\n\r\n")) == std::string::npos) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0) return Close(fd);
        in.append(buf, static_cast<size_t>(n));
      }
      std::string head = in.substr(0, end + 4);
      in.erase(0, end + 4);
      size_t body = 0;  // skip a request body
      std::string lower = head;
      for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (size_t at = lower.find("\r\ncontent-length:"); at != std::string::npos) {
        body = std::stoul(lower.substr(at + 17));
      }
      while (in.size() < body) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0) return Close(fd);
        in.append(buf, static_cast<size_t>(n));
      }
      in.erase(0, body);
      ++requests_;
      {
        std::lock_guard lock(mu_);
        heads_.push_back(head);
      }
      Reply reply = script_(connection, request, head);
      if (reply.close_silently) return Close(fd);
      size_t sent = 0;
      while (sent < reply.bytes.size()) {
        ssize_t n = send(fd, reply.bytes.data() + sent, reply.bytes.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) return Close(fd);
        sent += static_cast<size_t>(n);
      }
      if (reply.close_after) return Close(fd);
    }
  }
  void Close(int fd) {
    std::lock_guard lock(mu_);
    open_fds_.erase(fd);
    close(fd);
  }

  Script script_;
  bool ipv6_ = false;
  bool ok_ = false;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::thread accept_thread_;
  mutable std::mutex mu_;
  bool stopping_ = false;
  std::set<int> open_fds_;
  std::vector<std::thread> connection_threads_;
  std::vector<std::string> heads_;
  std::atomic<int> connections_{0};
  std::atomic<int> requests_{0};
};

std::unique_ptr<CurlHttpClient> MakeNativeClient(CurlHttpClientOptions options = {}) {
  options.native_http = true;
  return MakeClient(std::move(options));
}

const std::string kOkTwo = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

// Every test written as TEST_P runs against both transports: the native HTTP/1.1 one
// (the default for plain http://) and libcurl alone (native_http = false).
class HttpClientTest : public ::testing::TestWithParam<bool> {
 protected:
  bool native() const { return GetParam(); }
  std::unique_ptr<CurlHttpClient> MakeClient(CurlHttpClientOptions options = {}) {
    options.native_http = GetParam();
    return ::enrichd::MakeClient(std::move(options));
  }
};

INSTANTIATE_TEST_SUITE_P(Transports, HttpClientTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& param) {
                           return std::string(param.param ? "Native" : "Curl");
                         });

TEST_P(HttpClientTest, GetReturnsStatusHeadersAndBody) {
  std::mutex mu;
  ServerRequest seen;
  auto server = StartServer([&](const ServerRequest& req) {
    {
      std::lock_guard lock(mu);
      seen = req;
    }
    ServerResponse r;
    r.status = 200;
    r.headers = {{"X-Custom-Thing", "  padded value  "}, {"X-Second", "2"}};
    r.body = R"({"asn":15169})";
    return r;
  });
  ASSERT_NE(server, nullptr);
  auto client = MakeClient();
  ASSERT_NE(client, nullptr);

  HttpRequest req = Get(server->base_url() + "/json/8.8.8.8?fields=asn");
  req.headers = {{"Accept", "application/json"}, {"X-Api-Key", "k123"}};
  Outcome out = Fetch(*client, req);

  ASSERT_TRUE(out.response.transport_ok()) << out.response.error_message;
  EXPECT_EQ(out.response.status, 200);
  EXPECT_EQ(out.response.body, R"({"asn":15169})");
  ASSERT_NE(out.response.Header("x-custom-thing"), nullptr);
  EXPECT_EQ(*out.response.Header("x-custom-thing"), "padded value");
  EXPECT_NE(out.response.Header("content-type"), nullptr);
  for (const auto& h : out.response.headers) {
    for (char c : h.name) EXPECT_FALSE(c >= 'A' && c <= 'Z') << h.name;
  }
  EXPECT_EQ(out.thread, client->io_thread_id());
  EXPECT_NE(out.thread, std::this_thread::get_id());
  EXPECT_GT(out.response.elapsed.count(), 0);
  EXPECT_EQ(client->stats().native_requests, native() ? 1u : 0u);

  std::lock_guard lock(mu);
  EXPECT_EQ(seen.method, "GET");
  EXPECT_EQ(seen.path, "/json/8.8.8.8");
  EXPECT_EQ(seen.query, "fields=asn");
  bool saw_key = false;
  bool saw_agent = false;
  for (const auto& h : seen.headers) {
    if (h.name == "x-api-key" && h.value == "k123") saw_key = true;
    if (h.name == "user-agent" && h.value == "enrichd/0.1") saw_agent = true;
  }
  EXPECT_TRUE(saw_key);
  EXPECT_TRUE(saw_agent);
}

TEST_P(HttpClientTest, PostSendsBodyAndHeaders) {
  std::mutex mu;
  ServerRequest seen;
  auto server = StartServer([&](const ServerRequest& req) {
    {
      std::lock_guard lock(mu);
      seen = req;
    }
    ServerResponse r;
    r.status = 201;
    r.body = "echo:" + req.body;
    return r;
  });
  ASSERT_NE(server, nullptr);
  auto client = MakeClient();
  ASSERT_NE(client, nullptr);

  HttpRequest req = Get(server->base_url() + "/batch");
  req.method = "POST";
  req.body = R"(["1.1.1.1","8.8.8.8"])";
  req.headers = {{"Content-Type", "application/json"}};
  Outcome out = Fetch(*client, req);

  ASSERT_TRUE(out.response.transport_ok()) << out.response.error_message;
  EXPECT_EQ(out.response.status, 201);
  EXPECT_EQ(out.response.body, R"(echo:["1.1.1.1","8.8.8.8"])");
  std::lock_guard lock(mu);
  EXPECT_EQ(seen.method, "POST");
  EXPECT_EQ(seen.body, R"(["1.1.1.1","8.8.8.8"])");
  bool json = false;
  for (const auto& h : seen.headers) {
    if (h.name == "content-type" && h.value == "application/json") json = true;
    EXPECT_NE(h.name, "expect");
  }
  EXPECT_TRUE(json);
}

TEST_P(HttpClientTest, HttpErrorStatusesAreResponsesNotTransportErrors) {
  auto server = StartServer([](const ServerRequest& req) {
    ServerResponse r;
    r.status = std::stoi(req.path.substr(1));
    if (r.status == 429) r.headers = {{"Retry-After", "7"}};
    r.body = "status " + req.path.substr(1);
    return r;
  });
  ASSERT_NE(server, nullptr);
  auto client = MakeClient();
  ASSERT_NE(client, nullptr);
  for (int status : {204, 400, 404, 429, 500, 503}) {
    Outcome out = Fetch(*client, Get(server->base_url() + "/" + std::to_string(status)));
    ASSERT_TRUE(out.response.transport_ok()) << status << ": " << out.response.error_message;
    EXPECT_EQ(out.response.status, status);
    if (status == 429) {
      ASSERT_NE(out.response.Header("Retry-After"), nullptr);
      EXPECT_EQ(*out.response.Header("retry-after"), "7");
    }
  }
}

TEST_P(HttpClientTest, SequentialRequestsReuseOneConnection) {
  auto server = StartServer([](const ServerRequest&) {
    ServerResponse r;
    r.body = "{}";
    return r;
  });
  ASSERT_NE(server, nullptr);
  auto client = MakeClient();
  ASSERT_NE(client, nullptr);
  constexpr int kRequests = 100;
  for (int i = 0; i < kRequests; ++i) {
    Outcome out = Fetch(*client, Get(server->base_url() + "/r" + std::to_string(i)));
    ASSERT_TRUE(out.response.transport_ok()) << out.response.error_message;
    ASSERT_EQ(out.response.status, 200);
  }
  EXPECT_EQ(server->requests_received(), static_cast<uint64_t>(kRequests));
  EXPECT_LE(server->connections_accepted(), 2u);
}

TEST_P(HttpClientTest, ThousandsOfConcurrentRequestsOnOneIoThread) {
  // Each request holds a connection for the server-side delay, so all of them are in flight
  // together: 2 descriptors (client and server side) per request.
  rlimit limit{};
  getrlimit(RLIMIT_NOFILE, &limit);
  constexpr size_t kRequests = 1500;
  if (limit.rlim_cur < 2 * kRequests + 200) {
    limit.rlim_cur = std::min<rlim_t>(limit.rlim_max, 2 * kRequests + 200);
    setrlimit(RLIMIT_NOFILE, &limit);
  }
  if (limit.rlim_cur < 2 * kRequests + 200) GTEST_SKIP() << "file descriptor limit too low";

  auto server = StartServer([](const ServerRequest& req) {
    ServerResponse r;
    r.body = req.path;
    r.delay = 2s;
    return r;
  });
  ASSERT_NE(server, nullptr);
  auto client = MakeClient();
  ASSERT_NE(client, nullptr);
  const int threads_before = ThreadsInProcess();

  Tally tally(kRequests);
  // Sampled in the first callbacks, while (nearly) all the others are still in flight.
  std::atomic<int> max_threads{0};
  std::atomic<uint64_t> max_in_flight{0};
  std::atomic<int> samples{0};
  for (size_t i = 0; i < kRequests; ++i) {
    auto record = tally.For(i);
    HttpRequest req = Get(server->base_url() + "/" + std::to_string(i));
    req.connect_timeout = 60s;  // generous: slow machines and valgrind
    req.timeout = 90s;
    client->Submit(std::move(req), [&, record](HttpResponse&& r) {
      if (samples++ < 10) {
        max_threads = std::max(max_threads.load(), ThreadsInProcess());
        max_in_flight = std::max(max_in_flight.load(), client->stats().in_flight);
      }
      record(std::move(r));
    });
  }
  ASSERT_TRUE(tally.WaitFor(kRequests));
  std::vector<int> calls = tally.calls();
  for (size_t i = 0; i < kRequests; ++i) {
    ASSERT_EQ(calls[i], 1) << i;
    ASSERT_TRUE(tally.response(i).transport_ok()) << i << ": " << tally.response(i).error_message;
    ASSERT_EQ(tally.response(i).status, 200);
    ASSERT_EQ(tally.response(i).body, "/" + std::to_string(i));
  }
  // Every callback ran on the one I/O thread, and no thread was added per request.
  EXPECT_EQ(tally.threads(), std::set<std::thread::id>{client->io_thread_id()});
  EXPECT_LE(max_threads.load(), threads_before);
  // The server holds every answer for 2 s, so the first answers arrive while the bulk of
  // the requests are in flight together.
  EXPECT_GT(max_in_flight.load(), kRequests / 2);
  EXPECT_EQ(client->stats().completed, kRequests);
  EXPECT_EQ(client->stats().in_flight, 0u);
}

TEST_P(HttpClientTest, RefusedConnectionIsConnectError) {
  auto client = MakeClient();
  ASSERT_NE(client, nullptr);
  Outcome out =
      Fetch(*client, Get("http://127.0.0.1:" + std::to_string(ClosedPort()) + "/json/1.1.1.1"));
  EXPECT_EQ(out.response.error, TransportError::kConnect) << out.response.error_message;
  EXPECT_FALSE(out.response.error_message.empty());
  EXPECT_EQ(out.response.status, 0);
  EXPECT_EQ(out.thread, client->io_thread_id());
}

TEST_P(HttpClientTest, SlowServerIsTimeout) {
  auto server = StartServer([](const ServerRequest&) {
    ServerResponse r;
    r.delay = 5s;
    return r;
  });
  ASSERT_NE(server, nullptr);
  auto client = MakeClient();
  ASSERT_NE(client, nullptr);
  HttpRequest req = Get(server->base_url() + "/slow");
  req.timeout = 200ms;
  Outcome out = Fetch(*client, req);
  EXPECT_EQ(out.response.error, TransportError::kTimeout) << out.response.error_message;
  EXPECT_EQ(out.response.status, 0);
}

TEST_P(HttpClientTest, DroppedConnectionIsReceiveError) {
  auto server = StartServer([](const ServerRequest&) {
    ServerResponse r;
    r.fault = ServerResponse::Fault::kDropConnection;
    return r;
  });
  ASSERT_NE(server, nullptr);
  auto client = MakeClient();
  ASSERT_NE(client, nullptr);
  Outcome out = Fetch(*client, Get(server->base_url() + "/drop"));
  EXPECT_EQ(out.response.error, TransportError::kReceive) << out.response.error_message;
}

TEST_P(HttpClientTest, TruncatedBodyIsReceiveError) {
  auto server = StartServer([](const ServerRequest&) {
    ServerResponse r;
    r.body = std::string(10000, 'x');
    r.fault = ServerResponse::Fault::kTruncateBody;
    return r;
  });
  ASSERT_NE(server, nullptr);
  auto client = MakeClient();
  ASSERT_NE(client, nullptr);
  Outcome out = Fetch(*client, Get(server->base_url() + "/truncated"));
  EXPECT_EQ(out.response.error, TransportError::kReceive) << out.response.error_message;
  EXPECT_TRUE(out.response.body.empty());
}

TEST_P(HttpClientTest, BodyOverCapIsResponseTooLarge) {
  auto server = StartServer([](const ServerRequest&) {
    ServerResponse r;
    r.body = std::string(5000, 'x');
    return r;
  });
  ASSERT_NE(server, nullptr);
  auto client = MakeClient();
  ASSERT_NE(client, nullptr);
  HttpRequest req = Get(server->base_url() + "/big");
  req.max_response_bytes = 4999;
  Outcome out = Fetch(*client, req);
  EXPECT_EQ(out.response.error, TransportError::kResponseTooLarge) << out.response.error_message;
  EXPECT_TRUE(out.response.body.empty());

  req.max_response_bytes = 5000;  // exactly at the cap is fine
  out = Fetch(*client, req);
  ASSERT_TRUE(out.response.transport_ok()) << out.response.error_message;
  EXPECT_EQ(out.response.body.size(), 5000u);
}

TEST_P(HttpClientTest, ChunkedBodyOverCapIsResponseTooLarge) {
  // No Content-Length: the cap can only be enforced while the body arrives.
  std::string chunk(1000, 'y');
  std::string reply = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
  for (int i = 0; i < 5; ++i) reply += "3e8\r\n" + chunk + "\r\n";
  reply += "0\r\n\r\n";
  OneShotRawServer raw(reply);
  auto client = MakeClient();
  ASSERT_NE(client, nullptr);
  HttpRequest req = Get(raw.url());
  req.max_response_bytes = 2500;
  Outcome out = Fetch(*client, req);
  EXPECT_EQ(out.response.error, TransportError::kResponseTooLarge) << out.response.error_message;
}

TEST_P(HttpClientTest, ChunkedBodyAndFoldedHeadersAreRead) {
  std::string reply =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Folded: first\r\n  second\r\n"
      "Connection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
  OneShotRawServer raw(reply);
  auto client = MakeClient();
  ASSERT_NE(client, nullptr);
  Outcome out = Fetch(*client, Get(raw.url()));
  ASSERT_TRUE(out.response.transport_ok()) << out.response.error_message;
  EXPECT_EQ(out.response.body, "hello world");
  ASSERT_NE(out.response.Header("x-folded"), nullptr);
  EXPECT_EQ(*out.response.Header("x-folded"), "first second");
}

TEST(CurlHttpClientTest, TlsHandshakeFailureIsTlsError) {
  // https:// to a server that answers the TLS ClientHello in plain HTTP.
  OneShotRawServer raw("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
                       /*after_first_bytes=*/true);
  auto client = MakeClient();
  ASSERT_NE(client, nullptr);
  std::string url = raw.url();
  url.replace(0, 4, "https");
  Outcome out = Fetch(*client, Get(url));
  EXPECT_EQ(out.response.error, TransportError::kTls) << out.response.error_message;
}

TEST_P(HttpClientTest, RedirectsAreFollowedOnlyWhenAsked) {
  auto server = StartServer([](const ServerRequest& req) {
    ServerResponse r;
    if (req.path == "/old") {
      r.status = 301;
      r.headers = {{"Location", "/new"}};
      r.body = "moved";
    } else {
      r.body = "new place";
    }
    return r;
  });
  ASSERT_NE(server, nullptr);
  auto client = MakeClient();
  ASSERT_NE(client, nullptr);

  Outcome out = Fetch(*client, Get(server->base_url() + "/old"));
  ASSERT_TRUE(out.response.transport_ok()) << out.response.error_message;
  EXPECT_EQ(out.response.status, 301);
  ASSERT_NE(out.response.Header("location"), nullptr);
  EXPECT_EQ(*out.response.Header("location"), "/new");
  EXPECT_EQ(server->requests_received(), 1u);

  HttpRequest follow = Get(server->base_url() + "/old");
  follow.follow_redirects = true;
  out = Fetch(*client, follow);
  ASSERT_TRUE(out.response.transport_ok()) << out.response.error_message;
  EXPECT_EQ(out.response.status, 200);
  EXPECT_EQ(out.response.body, "new place");
  EXPECT_EQ(out.response.Header("location"), nullptr);  // only the final response's headers
}

TEST(CurlHttpClientTest, ProxyFromEnvironmentIsHonoured) {
  // The mock server plays the proxy: an http:// request for another host must reach it in
  // absolute form. Nothing leaves loopback (the proxy answers itself).
  RecordingProxy proxy;
  ASSERT_TRUE(proxy.ok());
  ASSERT_EQ(setenv("http_proxy", proxy.url().c_str(), 1), 0);
  {
    auto client = MakeClient();
    ASSERT_NE(client, nullptr);
    Outcome out = Fetch(*client, Get("http://provider.invalid/json/1.1.1.1"));
    ASSERT_TRUE(out.response.transport_ok()) << out.response.error_message;
    EXPECT_EQ(out.response.body, "via proxy");
  }
  unsetenv("http_proxy");
  EXPECT_EQ(proxy.target_seen(), "http://provider.invalid/json/1.1.1.1");
}

TEST_P(HttpClientTest, MalformedRequestsFailWithOther) {
  auto client = MakeClient();
  ASSERT_NE(client, nullptr);
  Outcome out = Fetch(*client, Get("not a url"));
  EXPECT_EQ(out.response.error, TransportError::kOther) << out.response.error_message;
  out = Fetch(*client, Get("ftp://127.0.0.1/file"));
  EXPECT_EQ(out.response.error, TransportError::kOther) << out.response.error_message;
  HttpRequest injected = Get("http://127.0.0.1:1/");
  injected.headers = {{"X-Evil", "a\r\nHost: elsewhere"}};
  out = Fetch(*client, injected);
  EXPECT_EQ(out.response.error, TransportError::kOther) << out.response.error_message;
}

TEST_P(HttpClientTest, SubmitFromManyThreadsAtOnce) {
  auto server = StartServer([](const ServerRequest& req) {
    ServerResponse r;
    r.body = req.query;
    return r;
  });
  ASSERT_NE(server, nullptr);
  auto client = MakeClient();
  ASSERT_NE(client, nullptr);
  constexpr size_t kThreads = 4;
  constexpr size_t kPerThread = 300;
  Tally tally(kThreads * kPerThread);
  std::vector<std::thread> submitters;
  for (size_t t = 0; t < kThreads; ++t) {
    submitters.emplace_back([&, t] {
      for (size_t j = 0; j < kPerThread; ++j) {
        size_t id = t * kPerThread + j;
        client->Submit(Get(server->base_url() + "/?id=" + std::to_string(id)), tally.For(id));
      }
    });
  }
  for (auto& s : submitters) s.join();
  ASSERT_TRUE(tally.WaitFor(kThreads * kPerThread));
  std::vector<int> calls = tally.calls();
  for (size_t id = 0; id < calls.size(); ++id) {
    ASSERT_EQ(calls[id], 1) << id;
    ASSERT_TRUE(tally.response(id).transport_ok()) << tally.response(id).error_message;
    ASSERT_EQ(tally.response(id).body, "id=" + std::to_string(id));
  }
  EXPECT_EQ(tally.threads().size(), 1u);
}

TEST_P(HttpClientTest, CallbacksMaySubmitMoreRequests) {
  auto server = StartServer([](const ServerRequest&) { return ServerResponse{}; });
  ASSERT_NE(server, nullptr);
  auto client = MakeClient();
  ASSERT_NE(client, nullptr);
  constexpr int kChain = 50;
  std::promise<int> finished;
  std::atomic<int> count{0};
  std::function<void(HttpResponse &&)> next = [&](HttpResponse&& r) {
    if (!r.transport_ok() || r.status != 200) {
      finished.set_value(-1);
      return;
    }
    if (++count == kChain) {
      finished.set_value(count);
      return;
    }
    client->Submit(Get(server->base_url() + "/chain"), next);
  };
  client->Submit(Get(server->base_url() + "/chain"), next);
  auto future = finished.get_future();
  ASSERT_EQ(future.wait_for(kPatience), std::future_status::ready);
  EXPECT_EQ(future.get(), kChain);
}

TEST_P(HttpClientTest, ShutdownCancelsEveryRequestExactlyOnce) {
  std::mutex mu;
  std::condition_variable arrived_cv;
  size_t arrived = 0;
  auto server = StartServer([&](const ServerRequest&) {
    {
      std::lock_guard lock(mu);
      ++arrived;
    }
    arrived_cv.notify_all();
    ServerResponse r;
    r.delay = 30s;  // never answers before the client shuts down
    return r;
  });
  ASSERT_NE(server, nullptr);
  CurlHttpClientOptions options;
  options.max_host_connections = 50;
  auto client = MakeClient(options);
  ASSERT_NE(client, nullptr);

  // 200 requests: 50 reach the server (the host limit), 150 wait inside libcurl.
  constexpr size_t kRequests = 200;
  Tally tally(kRequests + 1);
  for (size_t i = 0; i < kRequests; ++i) {
    client->Submit(Get(server->base_url() + "/hang"), tally.For(i));
  }
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(arrived_cv.wait_for(lock, kPatience, [&] { return arrived >= 50; }));
  }
  client->Shutdown();
  ASSERT_TRUE(tally.WaitFor(kRequests));  // already true: Shutdown() returned

  // After shutdown: cancelled at once, on the caller's thread.
  client->Submit(Get(server->base_url() + "/late"), tally.For(kRequests));
  ASSERT_TRUE(tally.WaitFor(kRequests + 1));
  client->Shutdown();  // idempotent
  client.reset();

  std::vector<int> calls = tally.calls();
  for (size_t i = 0; i <= kRequests; ++i) {
    EXPECT_EQ(calls[i], 1) << i;
    EXPECT_EQ(tally.response(i).error, TransportError::kCancelled) << i;
  }
}

TEST_P(HttpClientTest, DestructorCancelsQueuedAndInFlightRequests) {
  auto server = StartServer([](const ServerRequest&) {
    ServerResponse r;
    r.delay = 30s;
    return r;
  });
  ASSERT_NE(server, nullptr);
  constexpr size_t kRequests = 300;
  Tally tally(kRequests);
  {
    auto client = MakeClient();
    ASSERT_NE(client, nullptr);
    for (size_t i = 0; i < kRequests; ++i) {
      client->Submit(Get(server->base_url() + "/hang"), tally.For(i));
    }
  }  // destroyed at once: some requests in flight, some perhaps still queued
  std::vector<int> calls = tally.calls();
  for (size_t i = 0; i < kRequests; ++i) {
    EXPECT_EQ(calls[i], 1) << i;
    EXPECT_EQ(tally.response(i).error, TransportError::kCancelled) << i;
  }
}

TEST_P(HttpClientTest, ShutdownFromACallbackCancelsTheRest) {
  auto server = StartServer([](const ServerRequest& req) {
    ServerResponse r;
    if (req.path == "/hang") r.delay = 30s;
    return r;
  });
  ASSERT_NE(server, nullptr);
  auto client = MakeClient();
  ASSERT_NE(client, nullptr);
  constexpr size_t kHanging = 20;
  Tally tally(kHanging + 1);
  for (size_t i = 0; i < kHanging; ++i) {
    client->Submit(Get(server->base_url() + "/hang"), tally.For(i));
  }
  auto record = tally.For(kHanging);
  client->Submit(Get(server->base_url() + "/quick"), [&, record](HttpResponse&& r) {
    client->Shutdown();  // must neither deadlock nor block
    record(std::move(r));
  });
  ASSERT_TRUE(tally.WaitFor(kHanging + 1));
  client.reset();
  std::vector<int> calls = tally.calls();
  EXPECT_EQ(calls[kHanging], 1);
  EXPECT_EQ(tally.response(kHanging).status, 200);
  for (size_t i = 0; i < kHanging; ++i) {
    EXPECT_EQ(calls[i], 1) << i;
    EXPECT_EQ(tally.response(i).error, TransportError::kCancelled) << i;
  }
}

// ---- driven clients: no I/O thread; the user's thread runs the loop with Poll() ----

std::unique_ptr<CurlHttpClient> MakeDriven(bool native, CurlHttpClientOptions options = {}) {
  options.native_http = native;
  options.own_io_thread = false;
  auto client = MakeClient(std::move(options));
  if (client != nullptr) EXPECT_TRUE(client->driven());
  return client;
}

// Polls on the calling thread until `done` holds; false after kPatience.
bool PollUntil(HttpClient& client, const std::function<bool()>& done) {
  const auto give_up = std::chrono::steady_clock::now() + kPatience;
  while (!done()) {
    if (std::chrono::steady_clock::now() > give_up) return false;
    client.Poll(100ms);
  }
  return true;
}

TEST_P(HttpClientTest, DrivenClientStartsNoThreadAndRunsCallbacksOnTheDriver) {
  auto server = StartServer([](const ServerRequest& req) {
    ServerResponse r;
    r.body = req.path;
    return r;
  });
  ASSERT_NE(server, nullptr);
  const int threads_before = ThreadsInProcess();
  auto client = MakeDriven(native());
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(ThreadsInProcess(), threads_before);

  constexpr size_t kRequests = 100;
  Tally tally(kRequests);
  for (size_t i = 0; i < kRequests; ++i) {
    client->Submit(Get(server->base_url() + "/" + std::to_string(i)), tally.For(i));
  }
  EXPECT_EQ(client->stats().completed, 0u);  // nothing runs until the loop is driven
  ASSERT_TRUE(PollUntil(*client, [&] { return client->stats().completed == kRequests; }));
  std::vector<int> calls = tally.calls();
  for (size_t i = 0; i < kRequests; ++i) {
    ASSERT_EQ(calls[i], 1) << i;
    ASSERT_TRUE(tally.response(i).transport_ok()) << i << ": " << tally.response(i).error_message;
    ASSERT_EQ(tally.response(i).body, "/" + std::to_string(i));
  }
  EXPECT_EQ(tally.threads(), std::set<std::thread::id>{std::this_thread::get_id()});
  EXPECT_EQ(client->io_thread_id(), std::this_thread::get_id());
  EXPECT_EQ(ThreadsInProcess(), threads_before);
}

TEST_P(HttpClientTest, DrivenClientWakesForWakeAndForSubmitsFromOtherThreads) {
  auto server = StartServer([](const ServerRequest&) { return ServerResponse{}; });
  ASSERT_NE(server, nullptr);
  auto client = MakeDriven(native());
  ASSERT_NE(client, nullptr);
  std::atomic<bool> answered{false};
  std::promise<void> driver_started;
  // The driver waits an hour per turn: only Wake() (or I/O) ends a turn early.
  auto driver = std::async(std::launch::async, [&] {
    client->Wake();
    client->Poll(1h);  // returns: Wake() came first
    driver_started.set_value();
    while (!answered.load()) client->Poll(1h);
  });
  ASSERT_EQ(driver_started.get_future().wait_for(kPatience), std::future_status::ready);
  // Submitted from this thread while the driver waits (or is about to): it must wake.
  client->Submit(Get(server->base_url() + "/x"), [&](HttpResponse&& r) {
    EXPECT_EQ(r.status, 200) << r.error_message;
    answered.store(true);
  });
  if (driver.wait_for(kPatience) != std::future_status::ready) {
    ADD_FAILURE() << "the driver was not woken within " << kPatience.count() << " s";
    std::abort();  // the driver references this frame
  }
  EXPECT_TRUE(answered.load());
}

TEST_P(HttpClientTest, DrivenClientShutdownCancelsOnTheCallingThread) {
  std::mutex mu;
  size_t arrived = 0;
  auto server = StartServer([&](const ServerRequest&) {
    std::lock_guard lock(mu);
    ++arrived;
    ServerResponse r;
    r.delay = 30s;  // never answers before the client shuts down
    return r;
  });
  ASSERT_NE(server, nullptr);
  auto client = MakeDriven(native());
  ASSERT_NE(client, nullptr);
  constexpr size_t kInFlight = 20;
  Tally tally(kInFlight + 2);
  for (size_t i = 0; i < kInFlight; ++i) {
    client->Submit(Get(server->base_url() + "/hang"), tally.For(i));
  }
  ASSERT_TRUE(PollUntil(*client, [&] {
    std::lock_guard lock(mu);
    return arrived == kInFlight;
  }));
  client->Submit(Get(server->base_url() + "/queued"), tally.For(kInFlight));  // not started
  client->Shutdown();
  EXPECT_EQ(client->stats().completed, kInFlight + 1);  // all of them, before it returned
  client->Poll(1h);                                     // returns at once after shutdown
  client->Submit(Get(server->base_url() + "/late"), tally.For(kInFlight + 1));
  std::vector<int> calls = tally.calls();
  for (size_t i = 0; i < kInFlight + 2; ++i) {
    EXPECT_EQ(calls[i], 1) << i;
    EXPECT_EQ(tally.response(i).error, TransportError::kCancelled) << i;
  }
  EXPECT_EQ(tally.threads(), std::set<std::thread::id>{std::this_thread::get_id()});
}

TEST(CurlHttpClientTest, RejectsNegativeLimits) {
  CurlHttpClientOptions options;
  options.max_total_connections = -1;
  auto client = CurlHttpClient::Create(options);
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().code(), StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------------------------------
// The native transport's own behaviour.

TEST(NativeHttpTest, ChunkedBodyWithExtensionsAndTrailersKeepsTheConnection) {
  ScriptedServer server([](int, int, const std::string&) {
    return ScriptedServer::Reply{
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n"
        "4;name=value\r\nWiki\r\n5 ; x\r\npedia\r\n0\r\nX-Trailer: t\r\nX-More: u\r\n\r\n"};
  });
  auto client = MakeNativeClient();
  ASSERT_NE(client, nullptr);
  for (int i = 0; i < 3; ++i) {
    Outcome out = Fetch(*client, Get(server.url()));
    ASSERT_TRUE(out.response.transport_ok()) << out.response.error_message;
    EXPECT_EQ(out.response.status, 200);
    EXPECT_EQ(out.response.body, "Wikipedia");
    ASSERT_NE(out.response.Header("x-a"), nullptr);
  }
  EXPECT_EQ(server.connections(), 1);
  EXPECT_EQ(client->stats().native_requests, 3u);
}

TEST(NativeHttpTest, BodyReadUntilCloseAndThatConnectionIsNotReused) {
  ScriptedServer server([](int, int, const std::string&) {
    return ScriptedServer::Reply{"HTTP/1.1 200 OK\r\nX-A: 1\r\n\r\nbody until the end", true};
  });
  auto client = MakeNativeClient();
  ASSERT_NE(client, nullptr);
  for (int i = 0; i < 2; ++i) {
    Outcome out = Fetch(*client, Get(server.url()));
    ASSERT_TRUE(out.response.transport_ok()) << out.response.error_message;
    EXPECT_EQ(out.response.body, "body until the end");
  }
  EXPECT_EQ(server.connections(), 2);
}

TEST(NativeHttpTest, InterimResponsesAreSkipped) {
  ScriptedServer server([](int, int, const std::string&) {
    return ScriptedServer::Reply{
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + kOkTwo};
  });
  auto client = MakeNativeClient();
  ASSERT_NE(client, nullptr);
  Outcome out = Fetch(*client, Get(server.url()));
  ASSERT_TRUE(out.response.transport_ok()) << out.response.error_message;
  EXPECT_EQ(out.response.status, 200);
  EXPECT_EQ(out.response.body, "ok");
  EXPECT_EQ(out.response.Header("link"), nullptr);
}

TEST(NativeHttpTest, HeadAnd204AndNotModifiedHaveNoBody) {
  // The answers to HEAD, 204 and 304 announce a length but carry no body: were one read,
  // the next answer on the same connection would be swallowed and the client would hang.
  ScriptedServer server([](int, int, const std::string& head) {
    if (head.rfind("HEAD ", 0) == 0) {
      return ScriptedServer::Reply{"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"};
    }
    if (head.find(" /204 ") != std::string::npos) {
      return ScriptedServer::Reply{"HTTP/1.1 204 No Content\r\n\r\n"};
    }
    if (head.find(" /304 ") != std::string::npos) {
      return ScriptedServer::Reply{"HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n"};
    }
    return ScriptedServer::Reply{kOkTwo};
  });
  auto client = MakeNativeClient();
  ASSERT_NE(client, nullptr);
  HttpRequest head = Get(server.url());
  head.method = "HEAD";
  for (const HttpRequest& req : {head, Get(server.url("/204")), Get(server.url("/304"))}) {
    Outcome out = Fetch(*client, req);
    ASSERT_TRUE(out.response.transport_ok()) << out.response.error_message;
    EXPECT_TRUE(out.response.body.empty());
    Outcome next = Fetch(*client, Get(server.url()));
    ASSERT_TRUE(next.response.transport_ok()) << next.response.error_message;
    EXPECT_EQ(next.response.body, "ok");
  }
  EXPECT_EQ(server.connections(), 1);
}

TEST(NativeHttpTest, ConnectionCloseAndHttp10AreNotReused) {
  // The server keeps every connection open: only the client's reading of the headers
  // decides whether a connection is used again.
  ScriptedServer server([](int, int, const std::string& head) {
    if (head.find(" /close ") != std::string::npos) {
      return ScriptedServer::Reply{
          "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"};
    }
    if (head.find(" /http10 ") != std::string::npos) {
      return ScriptedServer::Reply{"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"};
    }
    return ScriptedServer::Reply{
        "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok"};
  });
  auto client = MakeNativeClient();
  ASSERT_NE(client, nullptr);
  for (const char* path : {"/close", "/close", "/http10", "/http10"}) {
    Outcome out = Fetch(*client, Get(server.url(path)));
    ASSERT_TRUE(out.response.transport_ok()) << out.response.error_message;
    EXPECT_EQ(out.response.body, "ok");
  }
  EXPECT_EQ(server.connections(), 4);
  for (int i = 0; i < 3; ++i) {  // HTTP/1.0 with keep-alive: reused
    Outcome out = Fetch(*client, Get(server.url("/keep")));
    ASSERT_TRUE(out.response.transport_ok()) << out.response.error_message;
  }
  EXPECT_EQ(server.connections(), 5);
}

TEST(NativeHttpTest, ReusedConnectionClosedByTheServerIsRetriedOnce) {
  // Each connection answers its first request only; the second request on it finds the
  // connection closed without a byte of answer, as when a server drops an idle connection
  // just as the client reuses it.
  ScriptedServer server([](int, int request, const std::string&) {
    if (request == 0) return ScriptedServer::Reply{kOkTwo};
    return ScriptedServer::Reply{"", false, true};
  });
  auto client = MakeNativeClient();
  ASSERT_NE(client, nullptr);
  for (int i = 0; i < 3; ++i) {
    Outcome out = Fetch(*client, Get(server.url()));
    ASSERT_TRUE(out.response.transport_ok()) << i << ": " << out.response.error_message;
    EXPECT_EQ(out.response.body, "ok");
  }
  EXPECT_EQ(server.connections(), 3);
  EXPECT_EQ(server.requests(), 5);  // 3 answered, 2 dropped and retried
}

TEST(NativeHttpTest, RetryHappensOnceAndNotOnAFreshConnection) {
  ScriptedServer server([](int connection, int request, const std::string&) {
    if (connection == 0 && request == 0) return ScriptedServer::Reply{kOkTwo};
    return ScriptedServer::Reply{"", false, true};
  });
  auto client = MakeNativeClient();
  ASSERT_NE(client, nullptr);
  Outcome out = Fetch(*client, Get(server.url()));
  ASSERT_TRUE(out.response.transport_ok()) << out.response.error_message;
  out = Fetch(*client, Get(server.url()));  // reused: dropped; fresh: dropped too
  EXPECT_EQ(out.response.error, TransportError::kReceive) << out.response.error_message;
  EXPECT_EQ(server.requests(), 3);
  EXPECT_EQ(server.connections(), 2);
}

TEST(NativeHttpTest, ServerClosingAnIdleConnectionDoesNotFailTheNextRequest) {
  ScriptedServer server([](int, int, const std::string&) {
    return ScriptedServer::Reply{kOkTwo, true};  // keep-alive announced, then closed anyway
  });
  auto client = MakeNativeClient();
  ASSERT_NE(client, nullptr);
  for (int i = 0; i < 5; ++i) {
    Outcome out = Fetch(*client, Get(server.url()));
    ASSERT_TRUE(out.response.transport_ok()) << i << ": " << out.response.error_message;
  }
  EXPECT_EQ(server.connections(), 5);
}

TEST(NativeHttpTest, HostConnectionLimitQueuesRequests) {
  auto server = StartServer([](const ServerRequest& req) {
    ServerResponse r;
    r.body = req.path;
    r.delay = 20ms;  // keeps connections busy so that requests must queue
    return r;
  });
  ASSERT_NE(server, nullptr);
  CurlHttpClientOptions options;
  options.max_host_connections = 2;
  auto client = MakeNativeClient(options);
  ASSERT_NE(client, nullptr);
  constexpr size_t kRequests = 20;
  Tally tally(kRequests);
  for (size_t i = 0; i < kRequests; ++i) {
    client->Submit(Get(server->base_url() + "/" + std::to_string(i)), tally.For(i));
  }
  ASSERT_TRUE(tally.WaitFor(kRequests));
  for (size_t i = 0; i < kRequests; ++i) {
    ASSERT_TRUE(tally.response(i).transport_ok()) << tally.response(i).error_message;
    EXPECT_EQ(tally.response(i).body, "/" + std::to_string(i));
  }
  EXPECT_LE(server->connections_accepted(), 2u);
}

TEST(NativeHttpTest, TotalConnectionLimitSpansHosts) {
  auto handler = [](const ServerRequest&) {
    ServerResponse r;
    r.body = "x";
    return r;
  };
  auto a = StartServer(handler);
  auto b = StartServer(handler);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  CurlHttpClientOptions options;
  options.max_total_connections = 1;
  auto client = MakeNativeClient(options);
  ASSERT_NE(client, nullptr);
  constexpr size_t kRequests = 20;
  Tally tally(kRequests);
  for (size_t i = 0; i < kRequests; ++i) {
    client->Submit(Get((i % 2 ? a : b)->base_url() + "/"), tally.For(i));
  }
  ASSERT_TRUE(tally.WaitFor(kRequests));
  for (size_t i = 0; i < kRequests; ++i) {
    ASSERT_TRUE(tally.response(i).transport_ok()) << tally.response(i).error_message;
  }
}

TEST(NativeHttpTest, QueuedRequestsTimeOutToo) {
  auto server = StartServer([](const ServerRequest&) {
    ServerResponse r;
    r.delay = 5s;
    return r;
  });
  ASSERT_NE(server, nullptr);
  CurlHttpClientOptions options;
  options.max_host_connections = 1;
  auto client = MakeNativeClient(options);
  ASSERT_NE(client, nullptr);
  Tally tally(2);
  for (size_t i = 0; i < 2; ++i) {  // the second waits for the first's connection
    HttpRequest req = Get(server->base_url() + "/slow");
    req.timeout = 200ms;
    client->Submit(std::move(req), tally.For(i));
  }
  ASSERT_TRUE(tally.WaitFor(2));
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(tally.response(i).error, TransportError::kTimeout) << tally.response(i).error_message;
  }
  EXPECT_EQ(server->connections_accepted(), 1u);
}

TEST(NativeHttpTest, IdleConnectionsBeyondTheLimitAreClosed) {
  // The server answers only once 4 requests are waiting, so each batch of 4 needs 4
  // connections at once. With one idle connection kept, the second batch opens 3 more.
  std::mutex mu;
  std::condition_variable cv;
  int arrived = 0;
  ScriptedServer server([&](int, int, const std::string&) {
    std::unique_lock lock(mu);
    const int batch_end = (arrived / 4 + 1) * 4;
    ++arrived;
    cv.notify_all();
    cv.wait_for(lock, kPatience, [&] { return arrived >= batch_end; });
    return ScriptedServer::Reply{kOkTwo};
  });
  CurlHttpClientOptions options;
  options.max_idle_connections = 1;
  auto client = MakeNativeClient(options);
  ASSERT_NE(client, nullptr);
  for (int batch = 0; batch < 2; ++batch) {
    Tally tally(4);
    for (size_t i = 0; i < 4; ++i) client->Submit(Get(server.url()), tally.For(i));
    ASSERT_TRUE(tally.WaitFor(4));
    for (size_t i = 0; i < 4; ++i) {
      ASSERT_TRUE(tally.response(i).transport_ok()) << tally.response(i).error_message;
    }
  }
  EXPECT_EQ(server.connections(), 7);
}

TEST(NativeHttpTest, IdleConnectionsPastTheirAgeAreNotReused) {
  ScriptedServer server([](int, int, const std::string&) { return ScriptedServer::Reply{kOkTwo}; });
  CurlHttpClientOptions options;
  options.max_idle_connection_age = Duration::zero();  // every idle connection is too old
  auto client = MakeNativeClient(options);
  ASSERT_NE(client, nullptr);
  for (int i = 0; i < 3; ++i) {
    Outcome out = Fetch(*client, Get(server.url()));
    ASSERT_TRUE(out.response.transport_ok()) << out.response.error_message;
  }
  EXPECT_EQ(server.connections(), 3);
}

TEST(NativeHttpTest, Ipv6LiteralIsServed) {
  ScriptedServer server(
      [](int, int, const std::string& head) {
        return ScriptedServer::Reply{head.find("\r\nHost: [::1]:") != std::string::npos
                                         ? kOkTwo
                                         : "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"};
      },
      /*ipv6=*/true);
  if (!server.ok()) GTEST_SKIP() << "no IPv6 loopback on this machine";
  auto client = MakeNativeClient();
  ASSERT_NE(client, nullptr);
  Outcome out = Fetch(*client, Get(server.url("/v6")));
  ASSERT_TRUE(out.response.transport_ok()) << out.response.error_message;
  EXPECT_EQ(out.response.status, 200);
  EXPECT_EQ(client->stats().native_requests, 1u);
}

TEST(NativeHttpTest, OversizedHeaderBlockIsReceiveError) {
  ScriptedServer server([](int, int, const std::string&) {
    return ScriptedServer::Reply{"HTTP/1.1 200 OK\r\nX-Big: " + std::string(70000, 'a') +
                                 "\r\nContent-Length: 2\r\n\r\nok"};
  });
  auto client = MakeNativeClient();
  ASSERT_NE(client, nullptr);
  Outcome out = Fetch(*client, Get(server.url()));
  EXPECT_EQ(out.response.error, TransportError::kReceive);
  EXPECT_NE(out.response.error_message.find("header"), std::string::npos)
      << out.response.error_message;
}

TEST(NativeHttpTest, MalformedResponsesAreReceiveErrors) {
  ScriptedServer server([](int, int, const std::string& head) {
    if (head.find(" /status ") != std::string::npos) {
      return ScriptedServer::Reply{"HTPP/1.1 200 OK\r\n\r\n", true};
    }
    if (head.find(" /length ") != std::string::npos) {
      return ScriptedServer::Reply{"HTTP/1.1 200 OK\r\nContent-Length: 12x\r\n\r\nok", true};
    }
    if (head.find(" /chunk ") != std::string::npos) {
      return ScriptedServer::Reply{
          "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nok\r\n0\r\n\r\n", true};
    }
    // A chunked body cut short by the server.
    return ScriptedServer::Reply{
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nonly part", true};
  });
  auto client = MakeNativeClient();
  ASSERT_NE(client, nullptr);
  for (const char* path : {"/status", "/length", "/chunk", "/cut"}) {
    Outcome out = Fetch(*client, Get(server.url(path)));
    EXPECT_EQ(out.response.error, TransportError::kReceive) << path;
    EXPECT_FALSE(out.response.error_message.empty()) << path;
    EXPECT_EQ(out.response.status, 0) << path;
    EXPECT_TRUE(out.response.body.empty()) << path;
  }
}

TEST(NativeHttpTest, RequestHeadIsWellFormed) {
  ScriptedServer server([](int, int, const std::string&) { return ScriptedServer::Reply{kOkTwo}; });
  auto client = MakeNativeClient();
  ASSERT_NE(client, nullptr);
  HttpRequest post = Get(server.url("/p/a%20th?q=1&r=%2F#fragment"));
  post.method = "POST";
  post.headers = {{"X-Key", "v"}, {"X-Empty", ""}};
  Outcome out = Fetch(*client, post);
  ASSERT_TRUE(out.response.transport_ok()) << out.response.error_message;
  std::vector<std::string> heads = server.heads();
  ASSERT_EQ(heads.size(), 1u);
  const std::string& head = heads[0];
  const std::string port = server.url().substr(17, server.url().size() - 18);
  EXPECT_EQ(head.rfind("POST /p/a%20th?q=1&r=%2F HTTP/1.1\r\n", 0), 0u) << head;
  EXPECT_NE(head.find("\r\nHost: 127.0.0.1:" + port + "\r\n"), std::string::npos) << head;
  EXPECT_NE(head.find("\r\nUser-Agent: enrichd/0.1\r\n"), std::string::npos) << head;
  EXPECT_NE(head.find("\r\nAccept: */*\r\n"), std::string::npos) << head;
  EXPECT_NE(head.find("\r\nX-Key: v\r\n"), std::string::npos) << head;
  EXPECT_NE(head.find("\r\nContent-Length: 0\r\n"), std::string::npos) << head;
}

TEST(NativeHttpTest, ProxyEnvironmentRoutesToLibcurl) {
  RecordingProxy proxy;
  ScriptedServer direct([](int, int, const std::string&) { return ScriptedServer::Reply{kOkTwo}; });
  ASSERT_TRUE(proxy.ok());
  ASSERT_EQ(setenv("http_proxy", proxy.url().c_str(), 1), 0);
  ASSERT_EQ(setenv("no_proxy", "example.com", 1), 0);
  ASSERT_EQ(setenv("NO_PROXY", "example.com", 1), 0);
  {
    auto client = MakeNativeClient();
    ASSERT_NE(client, nullptr);
    Outcome out = Fetch(*client, Get(direct.url("/x")));
    ASSERT_TRUE(out.response.transport_ok()) << out.response.error_message;
    EXPECT_EQ(out.response.body, "via proxy");
    EXPECT_EQ(client->stats().native_requests, 0u);
  }
  for (const char* exempt : {"127.0.0.1", "*", "localhost, 127.0.0.1"}) {
    ASSERT_EQ(setenv("no_proxy", exempt, 1), 0);
    auto client = MakeNativeClient();
    ASSERT_NE(client, nullptr);
    Outcome out = Fetch(*client, Get(direct.url("/x")));
    ASSERT_TRUE(out.response.transport_ok()) << out.response.error_message;
    EXPECT_EQ(out.response.body, "ok") << exempt;
    EXPECT_EQ(client->stats().native_requests, 1u) << exempt;
  }
  unsetenv("http_proxy");
  setenv("no_proxy", "127.0.0.1,localhost", 1);
  setenv("NO_PROXY", "127.0.0.1,localhost", 1);
  EXPECT_EQ(proxy.target_seen(), direct.url("/x"));
}

TEST(NativeHttpTest, OnlyPlainHttpToIpLiteralsWithoutRedirectsIsNative) {
  ScriptedServer server([](int, int, const std::string&) { return ScriptedServer::Reply{kOkTwo}; });
  auto client = MakeNativeClient();
  ASSERT_NE(client, nullptr);
  HttpRequest follow = Get(server.url());
  follow.follow_redirects = true;
  Outcome out = Fetch(*client, follow);
  ASSERT_TRUE(out.response.transport_ok()) << out.response.error_message;
  EXPECT_EQ(client->stats().native_requests, 0u);
  out = Fetch(*client, Get(server.url()));
  ASSERT_TRUE(out.response.transport_ok()) << out.response.error_message;
  EXPECT_EQ(client->stats().native_requests, 1u);

  CurlHttpClientOptions off;
  off.native_http = false;
  auto curl_only = MakeClient(off);
  ASSERT_NE(curl_only, nullptr);
  out = Fetch(*curl_only, Get(server.url()));
  ASSERT_TRUE(out.response.transport_ok()) << out.response.error_message;
  EXPECT_EQ(curl_only->stats().native_requests, 0u);
}

TEST(NativeHttpTest, ParsesOnlyUrlsItCanServe) {
  http_internal::NativeTarget t;
  ASSERT_TRUE(http_internal::ParseNativeTarget("http://10.1.2.3:8080/a/b?c=d#frag", &t));
  EXPECT_EQ(t.host, "10.1.2.3");
  EXPECT_EQ(t.port, 8080);
  EXPECT_EQ(t.path, "/a/b");
  EXPECT_EQ(t.query, "c=d");
  ASSERT_TRUE(http_internal::ParseNativeTarget("HTTP://[::1]?x", &t));
  EXPECT_EQ(t.host, "::1");
  EXPECT_TRUE(t.ipv6);
  EXPECT_EQ(t.port, 80);
  EXPECT_EQ(t.path, "/");
  EXPECT_EQ(t.query, "x");
  ASSERT_TRUE(http_internal::ParseNativeTarget("http://Api.example.com:8080", &t));
  EXPECT_TRUE(t.name);
  EXPECT_EQ(t.host, "Api.example.com");
  EXPECT_EQ(t.path, "/");
  for (const char* url : {"https://1.2.3.4/", "http://user:pw@1.2.3.4/", "http://1.2.3.4:99999/",
                          "http://1.2.3.4/a b", "http://[::1/", "http:///x", "http://1.2.3/",
                          "http://0x7f.1/", "http://exa mple.com/", "http://-x.com/",
                          "http://[example.com]/", "http://ex%41mple.com/"}) {
    EXPECT_FALSE(http_internal::ParseNativeTarget(url, &t)) << url;
  }
}

TEST(NativeHttpTest, HostNamesAreResolvedOnceAndCached) {
  // "localhost" may resolve to ::1 first: the server listens on 127.0.0.1 only, so that
  // address is refused and the next one is tried.
  ScriptedServer server([](int, int, const std::string& head) {
    return ScriptedServer::Reply{head.find("\r\nHost: localhost:") != std::string::npos
                                     ? kOkTwo
                                     : "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"};
  });
  auto client = MakeNativeClient();
  ASSERT_NE(client, nullptr);
  std::string url = server.url("/n");
  url.replace(url.find("127.0.0.1"), 9, "localhost");
  constexpr size_t kRequests = 10;
  Tally tally(kRequests);  // submitted together: all wait for one lookup
  for (size_t i = 0; i < kRequests; ++i) client->Submit(Get(url), tally.For(i));
  ASSERT_TRUE(tally.WaitFor(kRequests));
  for (size_t i = 0; i < kRequests; ++i) {
    ASSERT_TRUE(tally.response(i).transport_ok()) << tally.response(i).error_message;
    EXPECT_EQ(tally.response(i).status, 200);
    EXPECT_EQ(tally.threads(), std::set<std::thread::id>{client->io_thread_id()});
  }
  Outcome out = Fetch(*client, Get(url));
  ASSERT_TRUE(out.response.transport_ok()) << out.response.error_message;
  EXPECT_EQ(client->stats().native_requests, kRequests + 1);
}

TEST(NativeHttpTest, NoProxyForms) {
  setenv("http_proxy", "http://127.0.0.1:9", 1);
  setenv("no_proxy", ".example.com, other.org,[::1]", 1);
  auto rule = http_internal::ProxyRule::FromEnvironment();
  EXPECT_FALSE(rule.Applies("example.com"));
  EXPECT_FALSE(rule.Applies("api.example.com"));
  EXPECT_FALSE(rule.Applies("a.b.other.org"));
  EXPECT_FALSE(rule.Applies("::1"));
  EXPECT_TRUE(rule.Applies("badexample.com"));
  EXPECT_TRUE(rule.Applies("10.0.0.1"));
  unsetenv("http_proxy");
  EXPECT_FALSE(http_internal::ProxyRule::FromEnvironment().Applies("10.0.0.1"));
  setenv("no_proxy", "127.0.0.1,localhost", 1);
}

}  // namespace
}  // namespace enrichd

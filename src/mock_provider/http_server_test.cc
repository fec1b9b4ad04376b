// HttpServer over real loopback sockets, driven by a tiny blocking client written here.
#include "mock_provider/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "mock_provider/test_client.h"

namespace enrichd::mock {
namespace {

using namespace std::chrono_literals;

std::string Get(const std::string& target, const std::string& extra = "") {
  return "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra + "\r\n";
}

// A handler whose behaviour is chosen by the path: /echo, /delay/<ms>, /drop, /truncate,
// /slow/<ms>.
ServerResponse TestHandler(const ServerRequest& req) {
  ServerResponse r;
  if (req.path.rfind("/delay/", 0) == 0) {
    r.delay = std::chrono::milliseconds(std::stoi(req.path.substr(7)));
    r.body = "delayed " + req.path;
  } else if (req.path == "/drop") {
    r.fault = ServerResponse::Fault::kDropConnection;
  } else if (req.path == "/truncate") {
    r.fault = ServerResponse::Fault::kTruncateBody;
    r.body = std::string(100, 'x');
  } else if (req.path.rfind("/slow/", 0) == 0) {
    r.fault = ServerResponse::Fault::kSlowBody;
    r.delay = std::chrono::milliseconds(std::stoi(req.path.substr(6)));
    r.body = std::string(80, 'a') + std::string(80, 'b');
  } else if (req.path == "/status") {
    r.status = 503;
    r.headers.push_back({"Retry-After", "7"});
    r.body = "{}";
  } else {
    std::string body = req.method + " " + req.path + " q=" + req.query + " body=" + req.body;
    for (const auto& h : req.headers) {
      if (h.name.rfind("x-", 0) == 0) body += " " + h.name + "=" + h.value;
    }
    r.body = body;
  }
  return r;
}

std::unique_ptr<HttpServer> StartServer(int threads = 1) {
  ServerOptions options;
  options.threads = threads;
  auto server = HttpServer::Start(options, TestHandler);
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? std::move(server).value() : nullptr;
}

TEST(HttpServerTest, AnswersAndReusesOneConnection) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(server->base_url(), "http://127.0.0.1:" + std::to_string(server->port()));
  RawClient client(server->port());
  ASSERT_TRUE(client.connected());
  for (int i = 0; i < 3; ++i) {
    client.Send(Get("/echo/" + std::to_string(i) + "?a=1&b=%20", "X-Token: abc\r\n"));
    auto r = client.ReadResponse();
    ASSERT_TRUE(r.complete);
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "GET /echo/" + std::to_string(i) + " q=a=1&b=%20 body= x-token=abc");
    EXPECT_EQ(r.headers["connection"], "keep-alive");
    EXPECT_EQ(r.headers["content-type"], "application/json");
  }
  EXPECT_EQ(server->connections_accepted(), 1u);
  EXPECT_EQ(server->requests_received(), 3u);
}

TEST(HttpServerTest, PercentDecodesThePathOnly) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  RawClient client(server->port());
  client.Send(Get("/a%3Ab%2f?x=%3A"));
  auto r = client.ReadResponse();
  ASSERT_TRUE(r.complete);
  EXPECT_EQ(r.body, "GET /a:b/ q=x=%3A body=");
}

TEST(HttpServerTest, ReadsBodiesSplitAcrossWrites) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  RawClient client(server->port());
  client.Send("POST /batch HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello");
  client.Send(" world");
  auto r = client.ReadResponse();
  ASSERT_TRUE(r.complete);
  EXPECT_EQ(r.body, "POST /batch q= body=hello world");
}

TEST(HttpServerTest, PassesStatusAndHeaders) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  RawClient client(server->port());
  client.Send(Get("/status"));
  auto r = client.ReadResponse();
  ASSERT_TRUE(r.complete);
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.headers["retry-after"], "7");
}

TEST(HttpServerTest, RejectsChunkedRequestBodies) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  RawClient client(server->port());
  client.Send("POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
  auto r = client.ReadResponse();
  ASSERT_TRUE(r.complete);
  EXPECT_EQ(r.status, 411);
  EXPECT_TRUE(client.AtEof());
}

TEST(HttpServerTest, RejectsGarbage) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  RawClient client(server->port());
  client.Send("NONSENSE\r\n\r\n");
  auto r = client.ReadResponse();
  ASSERT_TRUE(r.complete);
  EXPECT_EQ(r.status, 400);
  EXPECT_TRUE(client.AtEof());
}

TEST(HttpServerTest, HonoursConnectionClose) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  RawClient client(server->port());
  client.Send(Get("/echo", "Connection: close\r\n"));
  auto r = client.ReadResponse();
  ASSERT_TRUE(r.complete);
  EXPECT_EQ(r.headers["connection"], "close");
  EXPECT_TRUE(client.AtEof());
}

TEST(HttpServerTest, Http10ClosesByDefault) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  RawClient client(server->port());
  client.Send("GET /echo HTTP/1.0\r\n\r\n");
  auto r = client.ReadResponse();
  ASSERT_TRUE(r.complete);
  EXPECT_EQ(r.headers["connection"], "close");
  EXPECT_TRUE(client.AtEof());
}

TEST(HttpServerTest, AnswersPipelinedRequestsInOrderEvenWhenTheFirstIsDelayed) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  RawClient client(server->port());
  client.Send(Get("/delay/30") + Get("/one") + Get("/delay/1") + Get("/two"));
  std::vector<std::string> bodies;
  for (int i = 0; i < 4; ++i) {
    auto r = client.ReadResponse();
    ASSERT_TRUE(r.complete) << i;
    bodies.push_back(r.body);
  }
  EXPECT_EQ(bodies, (std::vector<std::string>{"delayed /delay/30", "GET /one q= body=",
                                              "delayed /delay/1", "GET /two q= body="}));
  EXPECT_EQ(server->requests_received(), 4u);
}

TEST(HttpServerTest, DelayedResponseDoesNotBlockOtherConnections) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  RawClient slow(server->port());
  slow.Send(Get("/delay/600000"));  // ten minutes: only Stop ends it
  RawClient fast(server->port());
  fast.Send(Get("/fast"));
  auto r = fast.ReadResponse();  // would hang (and time out) if the loop were blocked
  ASSERT_TRUE(r.complete);
  EXPECT_EQ(r.body, "GET /fast q= body=");
  EXPECT_FALSE(slow.Readable(0));
  server->Stop();
  auto s = slow.ReadResponse();
  EXPECT_FALSE(s.complete);
  EXPECT_TRUE(slow.AtEof());
}

TEST(HttpServerTest, DropFaultClosesWithoutAnswer) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  RawClient client(server->port());
  client.Send(Get("/before") + Get("/drop") + Get("/after"));
  auto first = client.ReadResponse();
  ASSERT_TRUE(first.complete);
  EXPECT_EQ(first.body, "GET /before q= body=");
  EXPECT_TRUE(client.AtEof());
  EXPECT_EQ(server->requests_received(), 2u);  // /after is never read as a request
}

TEST(HttpServerTest, TruncateFaultSendsHalfTheBodyThenCloses) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  RawClient client(server->port());
  client.Send(Get("/truncate"));
  auto r = client.ReadResponse();
  EXPECT_FALSE(r.complete);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.announced_length, 100u);
  EXPECT_EQ(r.body, std::string(50, 'x'));
}

TEST(HttpServerTest, SlowBodyArrivesInPiecesAndCompletes) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  {
    RawClient client(server->port());
    client.Send(Get("/slow/1") + Get("/after"));
    auto r = client.ReadResponse();
    ASSERT_TRUE(r.complete);
    EXPECT_EQ(r.body, std::string(80, 'a') + std::string(80, 'b'));
    auto after = client.ReadResponse();  // the next pipelined answer waits for the slow one
    ASSERT_TRUE(after.complete);
    EXPECT_EQ(after.body, "GET /after q= body=");
  }
  {
    // With a long interval, only the head and the first piece (1/8 of the body) arrive.
    RawClient client(server->port());
    client.Send(Get("/slow/600000"));
    while (client.buffered().find("\r\n\r\n") == std::string::npos ||
           client.buffered().size() < client.buffered().find("\r\n\r\n") + 4 + 20) {
      ASSERT_TRUE(client.ReadMore());
    }
    std::size_t body_start = client.buffered().find("\r\n\r\n") + 4;
    EXPECT_FALSE(client.Readable(100));
    EXPECT_EQ(client.buffered().substr(body_start), std::string(20, 'a'));
    EXPECT_NE(client.buffered().find("Content-Length: 160"), std::string::npos);
  }
}

TEST(HttpServerTest, StopClosesOpenConnectionsAndIsIdempotent) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  RawClient idle(server->port());
  RawClient busy(server->port());
  RawClient partial(server->port());
  idle.Send(Get("/x"));
  ASSERT_TRUE(idle.ReadResponse().complete);
  busy.Send(Get("/delay/600000"));
  partial.Send("GET /incomplete HTTP/1.1\r\nHost:");
  // Make sure the server has seen the busy request, and accepted the partial one (else it
  // is still in the listen backlog and gets a reset, not a close), before stopping.
  while (server->requests_received() < 2 || server->connections_accepted() < 3) {
    std::this_thread::yield();
  }
  server->Stop();
  EXPECT_TRUE(idle.AtEof());
  EXPECT_TRUE(busy.AtEof());
  EXPECT_TRUE(partial.AtEof());
  server->Stop();
  RawClient after(server->port());
  EXPECT_FALSE(after.connected());
}

TEST(HttpServerTest, RefusesNonLoopbackHosts) {
  for (const char* host : {"0.0.0.0", "192.168.1.10", "8.8.8.8", "::", "example.com", ""}) {
    ServerOptions options;
    options.host = host;
    auto server = HttpServer::Start(options, TestHandler);
    ASSERT_FALSE(server.ok()) << host;
    EXPECT_EQ(server.status().code(), StatusCode::kInvalidArgument) << host;
  }
}

TEST(HttpServerTest, AcceptsLocalhostName) {
  ServerOptions options;
  options.host = "localhost";
  auto server = HttpServer::Start(options, TestHandler);
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_EQ((*server)->base_url(), "http://127.0.0.1:" + std::to_string((*server)->port()));
}

TEST(HttpServerTest, PortInUseIsUnavailable) {
  auto first = StartServer();
  ASSERT_NE(first, nullptr);
  ServerOptions options;
  options.port = first->port();
  auto second = HttpServer::Start(options, TestHandler);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kUnavailable);
}

TEST(HttpServerTest, SeveralThreadsServeManyConnections) {
  auto server = StartServer(/*threads=*/3);
  ASSERT_NE(server, nullptr);
  std::vector<std::unique_ptr<RawClient>> clients;
  for (int i = 0; i < 24; ++i) {
    clients.push_back(std::make_unique<RawClient>(server->port()));
    ASSERT_TRUE(clients.back()->connected());
    clients.back()->Send(Get("/c" + std::to_string(i)));
  }
  for (int i = 0; i < 24; ++i) {
    auto r = clients[i]->ReadResponse();
    ASSERT_TRUE(r.complete);
    EXPECT_EQ(r.body, "GET /c" + std::to_string(i) + " q= body=");
  }
  EXPECT_EQ(server->connections_accepted(), 24u);
  EXPECT_EQ(server->requests_received(), 24u);
}

TEST(HttpServerTest, HandlerExceptionBecomes500) {
  auto server = HttpServer::Start(ServerOptions{}, [](const ServerRequest&) -> ServerResponse {
    throw std::runtime_error("boom");
  });
  ASSERT_TRUE(server.ok());
  RawClient client((*server)->port());
  client.Send(Get("/x"));
  auto r = client.ReadResponse();
  ASSERT_TRUE(r.complete);
  EXPECT_EQ(r.status, 500);
}

}  // namespace
}  // namespace enrichd::mock

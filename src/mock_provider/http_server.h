// HttpServer: a small HTTP/1.1 server for loopback use only (the mock provider, tests,
// benchmarks). Keep-alive, pipelining-tolerant, one epoll event loop per thread, no
// thread per connection. It can misbehave on purpose (see ServerResponse::Fault) so that
// clients' failure handling can be tested over real sockets.
//
// Thread safety: Start/Stop from one thread; the handler runs on the server's I/O
// thread(s) and must be thread-safe when threads > 1. Counters may be read from any
// thread at any time.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "enrichd/clock.h"
#include "enrichd/http.h"
#include "enrichd/status.h"

namespace enrichd::mock {

struct ServerRequest {
  std::string method;               // "GET", "POST"
  std::string target;               // path and query as sent, e.g. "/json/8.8.8.8?fields=..."
  std::string path;                 // target without the query, percent-decoded
  std::string query;                // after '?', raw
  std::vector<HttpHeader> headers;  // names lower-cased
  std::string body;
};

struct ServerResponse {
  enum class Fault {
    kNone,
    kDropConnection,  // close the socket without answering
    kTruncateBody,    // send headers with the full Content-Length, then half the body, close
    kSlowBody,        // send the body in small pieces, `delay` apart
  };
  int status = 200;
  std::vector<HttpHeader> headers;  // Content-Length and Connection are added by the server
  std::string body;
  std::string content_type = "application/json";
  Duration delay{};  // answer after this long (without blocking other connections)
  Fault fault = Fault::kNone;
};

struct ServerOptions {
  std::string host = "127.0.0.1";  // loopback only; anything else is refused
  uint16_t port = 0;               // 0: pick a free port
  int threads = 1;                 // event-loop threads (SO_REUSEPORT)
};

class HttpServer {
 public:
  using Handler = std::function<ServerResponse(const ServerRequest&)>;

  // Binds, listens and starts the event loop(s). kUnavailable when the port is taken;
  // kInvalidArgument for a non-loopback host.
  static Result<std::unique_ptr<HttpServer>> Start(const ServerOptions& options, Handler handler);
  virtual ~HttpServer() = default;

  virtual uint16_t port() const = 0;
  // "http://127.0.0.1:<port>"
  virtual std::string base_url() const = 0;
  // Stops accepting, closes every connection, joins the threads. Idempotent.
  virtual void Stop() = 0;

  // Connections accepted and requests answered (or faulted) since Start.
  virtual uint64_t connections_accepted() const = 0;
  virtual uint64_t requests_received() const = 0;
};

}  // namespace enrichd::mock

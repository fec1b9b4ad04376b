// HTTP vocabulary shared by adapters (which build requests and read responses, with no
// I/O of their own) and the HTTP client (which performs them). Value types.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "enrichd/clock.h"

namespace enrichd {

struct HttpHeader {
  std::string name;
  std::string value;
};

struct HttpRequest {
  std::string method = "GET";
  std::string url;
  std::vector<HttpHeader> headers;
  std::string body;
  Duration connect_timeout = std::chrono::seconds(5);
  // Whole transfer, connect included.
  Duration timeout = std::chrono::seconds(10);
  // A response body larger than this fails with kResponseTooLarge.
  std::size_t max_response_bytes = 8u << 20;
  bool follow_redirects = false;
};

// How a transfer failed below HTTP. kNone means an HTTP status was received.
enum class TransportError {
  kNone,
  kConnect,           // refused, unreachable, DNS failure
  kTimeout,           // connect or total timeout
  kResponseTooLarge,  // body over max_response_bytes
  kReceive,           // connection reset / closed mid-response, truncated body
  kTls,               // certificate or handshake failure
  kCancelled,         // client shut down or request cancelled
  kOther,
};

std::string_view TransportErrorName(TransportError e);

struct HttpResponse {
  TransportError error = TransportError::kNone;
  std::string error_message;  // curl's words when error != kNone
  int status = 0;             // HTTP status when error == kNone
  // Header names lower-cased, values trimmed, in arrival order.
  std::vector<HttpHeader> headers;
  std::string body;
  Duration elapsed{};  // time from submission to completion

  bool transport_ok() const { return error == TransportError::kNone; }
  // First header with this name (case-insensitive), or nullptr.
  const std::string* Header(std::string_view name) const;
};

// ASCII case-insensitive equality, as HTTP compares header names and tokens.
bool EqualsIgnoreCase(std::string_view a, std::string_view b);
// Whether a comma-separated header value (e.g. Connection) holds `token`, each item
// trimmed of spaces and tabs and compared case-insensitively.
bool HeaderHasToken(std::string_view list, std::string_view token);

// Performs HTTP requests asynchronously. Submit() may be called from any thread; the
// callback runs exactly once, on the client's I/O thread (keep it short: hand work off),
// including for requests that fail or are cancelled at shutdown.
//
// A client either runs an I/O thread of its own, or is driven: its user runs the I/O loop
// from one thread of theirs (the driver) by calling Poll() in a loop, and that thread is
// then the I/O thread. A driven client lets a caller that already has an event loop (the
// engine) take answers and send the next requests without a hand-off between threads.
class HttpClient {
 public:
  using Callback = std::function<void(HttpResponse&&)>;
  virtual ~HttpClient() = default;
  virtual void Submit(HttpRequest request, Callback done) = 0;

  // Whether the user must drive the I/O loop with Poll(). False by default.
  virtual bool driven() const { return false; }
  // Driven clients: one turn of the I/O loop on the calling thread (always the same
  // one): starts the requests submitted so far, waits up to `max_wait` for I/O, for a
  // due deadline or for Wake(), and runs the callbacks of the requests that finished.
  // Returns at once, without waiting, when a request was submitted since the last turn.
  // Clients with their own thread ignore it.
  virtual void Poll(Duration max_wait) { (void)max_wait; }
  // Thread-safe: a Poll() that is waiting (or the next one) returns without waiting.
  virtual void Wake() {}
};

}  // namespace enrichd

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
class HttpClient {
 public:
  using Callback = std::function<void(HttpResponse&&)>;
  virtual ~HttpClient() = default;
  virtual void Submit(HttpRequest request, Callback done) = 0;
};

}  // namespace enrichd

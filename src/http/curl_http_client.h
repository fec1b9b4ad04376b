// CurlHttpClient: the HttpClient of enrichd. Two transports share one I/O thread and one
// epoll loop (thousands of requests may be in flight at once; there is no thread per
// request):
// - a native HTTP/1.1 transport (src/http/native_http_transport.h) for plain http://,
//   written for throughput: keep-alive connections per host:port, no per-request set-up
//   beyond building the request bytes;
// - libcurl's multi interface for everything else, its easy handles pooled.
//
// Routing rule, per request: the native transport takes it when options.native_http is set
// (the default), the scheme is http, follow_redirects is false, the URL has no userinfo
// and a plain host (an IPv4 literal, an IPv6 literal in brackets, or a DNS-style name),
// and no proxy applies to the host. Whether a proxy applies is decided once at
// Create() from http_proxy, HTTP_PROXY, all_proxy, ALL_PROXY and no_proxy (or NO_PROXY):
// when one of the proxy variables is set and no_proxy does not exempt the host ("*", the
// host itself, or a domain suffix ".example.com" / "example.com"), libcurl carries the
// request (and then follows the environment as libcurl reads it). Everything else (https,
// redirects, proxies, odd URLs or methods) goes through libcurl. Stats::native_requests counts
// the requests the native transport took.
//
// Behaviour of every request (both transports):
// - Connections are kept alive and reused; each transport has its own pool of them, and
//   each applies the limits below on its own (so with both in use, up to twice
//   max_total_connections may be open at once).
// - TLS certificates and host names are always verified (there is no switch to turn that
//   off); `ca_info` may point at another CA bundle. (TLS is libcurl's only.)
// - Redirects are followed only when HttpRequest::follow_redirects is set (at most
//   `max_redirects`, http and https only). Otherwise a 3xx is returned as it came.
// - HttpRequest::connect_timeout and ::timeout bound the connection set-up and the whole
//   transfer. ::timeout counts from the moment the I/O thread starts the transfer (a
//   request queued behind max_total_connections / max_host_connections, or waiting for a
//   name lookup, waits within its timeout); the native transport counts connect_timeout
//   from the start of the connection attempt.
// - A body over max_response_bytes is abandoned as soon as it is known to be too large
//   (from Content-Length, else while it arrives) and fails with kResponseTooLarge.
// - Response header names are lower-cased, values trimmed, in arrival order; obsolete
//   line folding is joined with one space; with redirects followed or an interim (1xx)
//   response, only the final response's headers are kept.
// - Native transport specifics: sends Host, User-Agent (from the options), Accept: */*,
//   the request's headers, and Content-Length for a body (0 for an empty POST/PUT); reads
//   HTTP/1.0 and 1.1 responses framed by Content-Length, chunked encoding (extensions and
//   trailers accepted, trailers dropped) or the end of the connection; a response head over
//   64 KiB fails with kReceive. "Connection: close" or HTTP/1.0 without keep-alive: the
//   connection is not reused. A request sent on a reused connection that the server closed
//   or reset before any byte of the answer is sent once more on a new connection.
// - Host names are resolved once per ~60 s per host:port: by the native transport's one
//   resolver thread (getaddrinfo, started at the first name; the addresses are tried in
//   turn), or by libcurl's resolver (with the Debian build a short-lived helper thread per
//   uncached lookup). Never a thread per request. IP-literal URLs resolve no name.
//
// Errors map to TransportError: refused / unreachable / DNS -> kConnect; connect or total
// timeout -> kTimeout; reset, closed mid-response, truncated body, empty reply, malformed
// response, response head too large -> kReceive; certificate or handshake failure -> kTls;
// body too large -> kResponseTooLarge; shut down -> kCancelled; anything else (bad URL, too
// many redirects, unsupported scheme, header containing CR/LF) -> kOther. error_message
// holds curl's words, or the native transport's plain words (which name at most the
// host:port, never the URL's userinfo, path or query).
//
// Thread safety: Submit() may be called from any thread, including from a callback.
// Callbacks run on the I/O thread, exactly once per Submit(): keep them short and do not
// block in them. The destructor must not run in a callback (Shutdown() may).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "enrichd/clock.h"
#include "enrichd/http.h"
#include "enrichd/status.h"

namespace enrichd {

struct CurlHttpClientOptions {
  // Connections open at once over all hosts, per transport; 0: no limit. Transfers beyond
  // the limit wait in a queue (libcurl's: CURLMOPT_MAX_TOTAL_CONNECTIONS; the native
  // transport first closes an idle connection to another host to make room).
  int max_total_connections = 0;
  // Connections open at once to one host:port, per transport; 0: no limit
  // (CURLMOPT_MAX_HOST_CONNECTIONS; the native transport queues per host:port).
  int max_host_connections = 0;
  // Idle connections kept for reuse, per transport (CURLMOPT_MAXCONNECTS); the oldest is
  // closed first.
  int max_idle_connections = 256;
  // A connection idle for longer than this is closed rather than reused
  // (CURLOPT_MAXAGE_CONN; whole seconds for libcurl).
  Duration max_idle_connection_age = std::chrono::seconds(60);
  // Redirects followed at most, when a request asks for redirects.
  int max_redirects = 5;
  std::string user_agent = "enrichd/0.1";
  // CA bundle file (PEM) to verify servers with; empty: the system's default bundle.
  std::string ca_info;
  // Finished transfers' easy handles kept for reuse (saves per-request set-up; libcurl).
  std::size_t max_pooled_handles = 1024;
  // Used for HttpResponse::elapsed; nullptr: the system clock. Must outlive the client.
  const Clock* clock = nullptr;
  // Plain http:// requests go through the client's own HTTP/1.1 transport (see the routing
  // rule above); false: every request goes through libcurl.
  bool native_http = true;
  // false: no I/O thread of its own; the client is driven (HttpClient::Poll(), from one
  // thread of the user's, which is then the I/O thread where callbacks run).
  bool own_io_thread = true;
};

class CurlHttpClient final : public HttpClient {
 public:
  struct Stats {
    uint64_t submitted = 0;        // Submit() calls
    uint64_t completed = 0;        // callbacks run (any outcome, cancellations included)
    uint64_t in_flight = 0;        // requests started and not completed (both transports,
                                   // requests waiting for a connection included)
    uint64_t native_requests = 0;  // requests routed to the native transport
  };

  // Initialises libcurl (once per process), reads the proxy environment (for the routing
  // rule) and starts the I/O thread (unless options.own_io_thread is false). kInternal
  // when libcurl or the thread cannot be set up; kInvalidArgument for a negative limit.
  static Result<std::unique_ptr<CurlHttpClient>> Create(CurlHttpClientOptions options = {});

  // Shutdown(), then releases every libcurl resource.
  ~CurlHttpClient() override;

  CurlHttpClient(const CurlHttpClient&) = delete;
  CurlHttpClient& operator=(const CurlHttpClient&) = delete;

  // Queues the request and wakes the I/O thread. After Shutdown() has begun, `done` runs at
  // once on the calling thread with kCancelled (there is no I/O thread left to run it).
  void Submit(HttpRequest request, Callback done) override;

  // Driven clients (own_io_thread false), see HttpClient. Poll() after Shutdown() returns
  // at once.
  bool driven() const override;
  void Poll(Duration max_wait) override;
  void Wake() override;

  // Completes every queued and in-flight request with kCancelled (each callback exactly
  // once, on the I/O thread), then joins the I/O thread. Idempotent; blocks until done.
  // Called from a callback it only begins the shutdown (the rest is cancelled once the
  // callback returns) and does not block. A callback receiving kCancelled must not
  // resubmit in a loop (after shutdown, Submit() calls back at once on the same thread).
  // A driven client cancels on the calling thread, which must be the driver or a thread
  // that runs while no Poll() does (e.g. after the driver has stopped).
  void Shutdown();

  // Approximate counters, readable from any thread.
  Stats stats() const;
  // The id of the I/O thread (where callbacks run).
  std::thread::id io_thread_id() const;

  class Impl;

 private:
  explicit CurlHttpClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace enrichd

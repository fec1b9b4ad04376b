// CurlHttpClient: the HttpClient of enrichd, built on libcurl's multi interface.
//
// One I/O thread drives every transfer (thousands may be in flight at once; there is no
// thread per request). Connections are kept alive and reused through one connection cache
// shared by all requests of a client. libcurl itself stays behind this header (pimpl).
//
// Behaviour of every request:
// - TLS certificates and host names are always verified (there is no switch to turn that
//   off); `ca_info` may point at another CA bundle.
// - Redirects are followed only when HttpRequest::follow_redirects is set (at most
//   `max_redirects`, http and https only). Otherwise a 3xx is returned as it came.
// - Proxies come from the environment, as libcurl reads them: http_proxy, https_proxy
//   (or HTTPS_PROXY), all_proxy and no_proxy. Nothing here overrides them.
// - HttpRequest::connect_timeout and ::timeout bound the connection set-up and the whole
//   transfer; they count from the moment the I/O thread starts the transfer (a request
//   queued behind max_total_connections / max_host_connections waits within its timeout).
// - A body over max_response_bytes is abandoned as soon as it is known to be too large
//   (from Content-Length, else while it arrives) and fails with kResponseTooLarge.
// - Response header names are lower-cased, values trimmed; with redirects followed or a
//   100-continue, only the final response's headers are kept.
// - Host names are resolved by libcurl's resolver (results cached ~60 s by libcurl); with
//   the Debian build that is a short-lived helper thread per uncached name lookup, never
//   per request. IP-literal URLs resolve no name.
//
// Errors map to TransportError: refused / unreachable / DNS -> kConnect; connect or total
// timeout -> kTimeout; reset, closed mid-response, truncated body, empty reply ->
// kReceive; certificate or handshake failure -> kTls; body too large ->
// kResponseTooLarge; shut down -> kCancelled; anything else (bad URL, too many redirects,
// unsupported scheme, header containing CR/LF) -> kOther. error_message holds curl's words.
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
  // Connections open at once over all hosts; 0: no limit. Transfers beyond the limit wait
  // in libcurl's queue (CURLMOPT_MAX_TOTAL_CONNECTIONS).
  int max_total_connections = 0;
  // Connections open at once to one host:port; 0: no limit (CURLMOPT_MAX_HOST_CONNECTIONS).
  int max_host_connections = 0;
  // Idle connections kept for reuse (CURLMOPT_MAXCONNECTS); the oldest is closed first.
  int max_idle_connections = 256;
  // An idle connection older than this is closed rather than reused (CURLOPT_MAXAGE_CONN).
  Duration max_idle_connection_age = std::chrono::seconds(60);
  // Redirects followed at most, when a request asks for redirects.
  int max_redirects = 5;
  std::string user_agent = "enrichd/0.1";
  // CA bundle file (PEM) to verify servers with; empty: the system's default bundle.
  std::string ca_info;
  // Finished transfers' easy handles kept for reuse (saves per-request set-up).
  std::size_t max_pooled_handles = 1024;
  // Used for HttpResponse::elapsed; nullptr: the system clock. Must outlive the client.
  const Clock* clock = nullptr;
};

class CurlHttpClient final : public HttpClient {
 public:
  struct Stats {
    uint64_t submitted = 0;  // Submit() calls
    uint64_t completed = 0;  // callbacks run (any outcome, cancellations included)
    uint64_t in_flight = 0;  // transfers currently handed to libcurl
  };

  // Initialises libcurl (once per process) and starts the I/O thread. kInternal when
  // libcurl or the thread cannot be set up; kInvalidArgument for a negative limit.
  static Result<std::unique_ptr<CurlHttpClient>> Create(CurlHttpClientOptions options = {});

  // Shutdown(), then releases every libcurl resource.
  ~CurlHttpClient() override;

  CurlHttpClient(const CurlHttpClient&) = delete;
  CurlHttpClient& operator=(const CurlHttpClient&) = delete;

  // Queues the request and wakes the I/O thread. After Shutdown() has begun, `done` runs at
  // once on the calling thread with kCancelled (there is no I/O thread left to run it).
  void Submit(HttpRequest request, Callback done) override;

  // Completes every queued and in-flight request with kCancelled (each callback exactly
  // once, on the I/O thread), then joins the I/O thread. Idempotent; blocks until done.
  // Called from a callback it only begins the shutdown (the rest is cancelled once the
  // callback returns) and does not block. A callback receiving kCancelled must not
  // resubmit in a loop (after shutdown, Submit() calls back at once on the same thread).
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

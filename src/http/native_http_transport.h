// NativeHttpTransport: CurlHttpClient's own HTTP/1.1 transport for plain http:// URLs
// (internal to src/http; see curl_http_client.h for when it is used).
//
// It runs entirely on the client's I/O thread, inside the client's epoll loop: every
// connection is registered once (edge-triggered, EPOLLIN | EPOLLOUT | EPOLLRDHUP) with
// epoll data = kEpollTag | pointer, so the loop tells native descriptors from libcurl's
// (whose data is the plain descriptor number) and hands native events to OnEvent().
//
// Connections are kept alive per host:port and reused (most recently used first); limits:
// max_total_connections, max_host_connections (requests beyond them wait in a per-host
// queue, their timeouts running), max_idle_connections (the oldest idle one is closed
// first) and max_idle_connection_age. A request sent on a reused connection that sees the
// connection closed or reset before any byte of the response is retried once on a new
// connection.
//
// Host names (anything but an IP literal) are resolved by ONE resolver thread, started at
// the first name, with getaddrinfo; results are kept ~60 s per host:port and posted back
// to the I/O thread (through the `wake` function and DrainResolved()). Requests wait in
// their host's queue meanwhile, their timeouts running. A connection tries the resolved
// addresses in turn until one accepts (the one that did is tried first next time).
//
// Thread safety: none; every member function is called on the I/O thread only, except
// in_flight().
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "enrichd/clock.h"
#include "enrichd/http.h"

namespace enrichd::http_internal {

// The response handed to a callback, from what a transfer received: a failed transfer
// keeps its error and message and drops any status, headers and body received before.
inline HttpResponse FinishedResponse(HttpResponse&& received, TransportError error,
                                     std::string message, Duration elapsed) {
  HttpResponse response = std::move(received);
  response.error = error;
  if (error != TransportError::kNone) {
    response.error_message = std::move(message);
    response.status = 0;
    response.headers.clear();
    response.body.clear();
  }
  response.elapsed = elapsed;
  return response;
}

// Where an http:// URL points, as the native transport needs it. Views into the URL.
struct NativeTarget {
  std::string_view host;       // without brackets: "127.0.0.1", "::1", "localhost"
  std::string_view authority;  // host as written (brackets kept) and port if written
  uint16_t port = 80;
  std::string_view path;   // "/x/y" (never empty: "/" when the URL has none)
  std::string_view query;  // after '?' (without it); empty when none
  bool has_query = false;
  bool ipv6 = false;
  bool name = false;  // a host name (not an IP literal): to be resolved
};

// Parses `url` for the native transport. False when the URL is not one it takes (another
// scheme, userinfo, a bad port or host, spaces or control characters): such requests go to
// libcurl, which then accepts or rejects them.
bool ParseNativeTarget(std::string_view url, NativeTarget* target);

// The proxy environment, read once: whether a proxy applies to a plain-http host.
class ProxyRule {
 public:
  // Reads http_proxy, HTTP_PROXY, all_proxy, ALL_PROXY and no_proxy (or NO_PROXY).
  static ProxyRule FromEnvironment();
  // True when a proxy is set and no_proxy does not exempt `host` ("*", the host itself, or
  // a domain suffix given as ".example.com" or "example.com").
  bool Applies(std::string_view host) const;

 private:
  bool proxy_set_ = false;
  bool exempt_all_ = false;
  std::vector<std::string> exempt_;  // lower-case, without a leading '.' or brackets
};

struct NativeOptions {
  int max_total_connections = 0;  // 0: no limit
  int max_host_connections = 0;   // 0: no limit
  int max_idle_connections = 256;
  Duration max_idle_connection_age = std::chrono::seconds(60);
  std::string user_agent;
};

class NativeHttpTransport {
 public:
  // Set in epoll_event::data.u64 of every native descriptor; never set in a descriptor
  // number or a user-space pointer.
  static constexpr uint64_t kEpollTag = uint64_t{1} << 63;
  using SteadyTime = std::chrono::steady_clock::time_point;
  // Runs a request's callback (the client counts and guards it).
  using Completer = std::function<void(HttpClient::Callback&, HttpResponse&&)>;

  // `wake` wakes the I/O thread (called from the resolver thread; thread-safe).
  NativeHttpTransport(int epoll_fd, NativeOptions options, const Clock* clock, Completer complete,
                      std::function<void()> wake);
  // Closes every connection; runs no callback (CancelAll() first). Does not wait for a
  // name lookup in progress (the resolver thread finishes it on its own and then ends).
  ~NativeHttpTransport();

  NativeHttpTransport(const NativeHttpTransport&) = delete;
  NativeHttpTransport& operator=(const NativeHttpTransport&) = delete;

  // Starts `request` towards `target` (views into request.url). Headers and method must
  // have been validated. May complete it (run the callback) before returning.
  void Start(HttpRequest&& request, const NativeTarget& target, HttpClient::Callback done,
             MonoTime submitted_at);

  // An epoll event whose data carried kEpollTag.
  void OnEvent(uint64_t data, uint32_t events);

  // Fails requests whose deadline has passed and closes idle connections past their age.
  void CheckDeadlines(SteadyTime now);
  // Takes the name lookups finished since the last call.
  void DrainResolved();
  // Hands queued requests to connections freed since the last call.
  void Pump();
  // Frees connections closed during this loop iteration (after the epoll events batch).
  void Collect();
  // The earliest request deadline, or SteadyTime::max() when none.
  SteadyTime NextDeadline() const;

  // Completes every request with kCancelled and closes every connection.
  void CancelAll(const std::string& message);

  // Requests started and not yet completed (queued ones included). Any thread.
  size_t in_flight() const { return active_.load(std::memory_order_relaxed); }

  struct Connection;
  struct HostPool;
  struct Request;
  struct ResolverState;

 private:
  struct KeyHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  HostPool* PoolFor(const NativeTarget& target);
  Request* NewRequest();
  void Dispatch(Request* r);
  bool CanOpen(const HostPool& host);
  void Open(Request* r, int attempt = 0);
  bool OpenNextAddress(Request* r);
  bool Resolved(const HostPool& host, SteadyTime now) const;
  void Resolve(HostPool* host);
  void Attach(Request* r, Connection* c);
  void Send(Request* r);
  enum class ParseResult { kMore, kDone, kError, kTooLarge };
  void OnReadable(Connection* c);
  ParseResult Parse(Connection* c, Request* r, std::string* error);
  ParseResult EndOfHead(Request* r, std::string* error);
  void OnClosedOrReset(Connection* c, int error);
  bool Retry(Request* r);
  void Succeed(Request* r);
  void Fail(Request* r, TransportError error, std::string message);
  void Complete(Request* r, TransportError error, std::string message);
  void MakeIdle(Connection* c);
  void RemoveIdle(Connection* c);
  void CloseConnection(Connection* c);
  bool CloseOldestIdle();
  void ReleaseRequest(Request* r);

  // Deadline heap (min-heap on Request::deadline_key).
  void HeapPush(Request* r);
  void HeapRemove(Request* r);
  void HeapFix(size_t i);
  bool HeapLess(size_t a, size_t b) const;
  void HeapSwap(size_t a, size_t b);

  const int epoll_fd_;
  const NativeOptions options_;
  const Clock* const clock_;
  Completer complete_;

  std::unordered_map<std::string, std::unique_ptr<HostPool>, KeyHash, std::equal_to<>> hosts_;
  std::string key_scratch_;
  std::vector<std::unique_ptr<Connection>> connections_;  // open ones
  std::vector<std::unique_ptr<Connection>> graveyard_;    // closed this iteration
  std::vector<std::unique_ptr<Request>> requests_;        // every Request ever made
  std::vector<Request*> free_requests_;
  std::vector<Request*> heap_;
  std::atomic<size_t> active_{0};  // read by stats() on other threads
  int open_total_ = 0;
  int idle_total_ = 0;
  bool pump_needed_ = false;
  SteadyTime next_idle_sweep_{};
  // Shared with the resolver thread (which may outlive the transport by one lookup).
  std::shared_ptr<ResolverState> resolver_;
};

}  // namespace enrichd::http_internal

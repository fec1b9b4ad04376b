#include "http/native_http_transport.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <utility>

namespace enrichd::http_internal {
namespace {

// A response head (status line and headers, 1xx heads included) or a trailer section
// larger than this fails with kReceive.
constexpr size_t kMaxHeaderBytes = 64 * 1024;
constexpr size_t kMaxChunkLine = 4096;
constexpr size_t kInitialBuffer = 16 * 1024;
// How long a name lookup's addresses are used before the name is looked up again.
constexpr auto kResolveCacheTime = std::chrono::seconds(60);

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string_view Trim(std::string_view s) {
  size_t begin = 0;
  size_t end = s.size();
  while (begin < end && (s[begin] == ' ' || s[begin] == '\t')) ++begin;
  while (end > begin && (s[end - 1] == ' ' || s[end - 1] == '\t' || s[end - 1] == '\r')) --end;
  return s.substr(begin, end - begin);
}

// The last comma-separated item of a header value.
std::string_view LastToken(std::string_view list) {
  size_t comma = list.rfind(',');
  return Trim(comma == std::string_view::npos ? list : list.substr(comma + 1));
}

std::string ErrnoText(int error) {
  char buf[128];
  // GNU strerror_r returns the message (possibly not in buf).
  const char* text = strerror_r(error, buf, sizeof buf);
  std::string s(text);
  if (!s.empty()) s[0] = Lower(s[0]);
  return s;
}

long long Millis(Duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

NativeHttpTransport::SteadyTime DeadlineAfter(NativeHttpTransport::SteadyTime start, Duration d) {
  if (d <= Duration::zero()) return start + std::chrono::milliseconds(1);
  if (d > std::chrono::hours(24 * 365)) return start + std::chrono::hours(24 * 365);
  return start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(d);
}

}  // namespace

// ---------------------------------------------------------------------------------------
// URL and proxy rules.

bool ParseNativeTarget(std::string_view url, NativeTarget* target) {
  constexpr std::string_view kScheme = "http://";
  if (url.size() <= kScheme.size() || !EqualsIgnoreCase(url.substr(0, kScheme.size()), kScheme)) {
    return false;
  }
  for (char c : url) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) return false;
  }
  std::string_view rest = url.substr(kScheme.size());
  const size_t authority_end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, authority_end);
  std::string_view tail =
      authority_end == std::string_view::npos ? std::string_view() : rest.substr(authority_end);
  if (authority.empty() || authority.find('@') != std::string_view::npos) return false;

  std::string_view host;
  std::string_view port_text;
  bool ipv6 = false;
  if (authority[0] == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return false;
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return false;
      port_text = after.substr(1);
    }
    ipv6 = true;
  } else {
    const size_t colon = authority.find(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
  }
  if (host.empty()) return false;
  bool name = false;
  char host_buf[INET6_ADDRSTRLEN];
  unsigned char addr[sizeof(in6_addr)];
  if (host.size() < sizeof host_buf) {
    std::memcpy(host_buf, host.data(), host.size());
    host_buf[host.size()] = '\0';
  }
  if (host.size() >= sizeof host_buf || inet_pton(ipv6 ? AF_INET6 : AF_INET, host_buf, addr) != 1) {
    // A host name: letters, digits, '-', '_' and dots, not starting with '.' or '-', and a
    // last label not starting with a digit (that would be an odd IPv4 form: libcurl's).
    if (ipv6 || host.size() > 253 || host.front() == '.' || host.front() == '-') return false;
    for (char c : host) {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '.' || c == '_';
      if (!ok) return false;
    }
    std::string_view last = host;
    if (last.back() == '.') last.remove_suffix(1);
    const size_t dot = last.rfind('.');
    if (dot != std::string_view::npos) last = last.substr(dot + 1);
    if (last.empty() || (last[0] >= '0' && last[0] <= '9')) return false;
    name = true;
  }

  uint32_t port = 80;
  if (!port_text.empty()) {
    if (port_text.size() > 5) return false;
    port = 0;
    for (char c : port_text) {
      if (c < '0' || c > '9') return false;
      port = port * 10 + static_cast<uint32_t>(c - '0');
    }
    if (port == 0 || port > 65535) return false;
  }

  const size_t hash = tail.find('#');
  if (hash != std::string_view::npos) tail = tail.substr(0, hash);
  std::string_view path = tail;
  std::string_view query;
  bool has_query = false;
  const size_t question = tail.find('?');
  if (question != std::string_view::npos) {
    path = tail.substr(0, question);
    query = tail.substr(question + 1);
    has_query = true;
  }
  if (path.empty()) path = "/";

  target->host = host;
  target->authority = authority;
  target->port = static_cast<uint16_t>(port);
  target->path = path;
  target->query = query;
  target->has_query = has_query;
  target->ipv6 = ipv6;
  target->name = name;
  return true;
}

ProxyRule ProxyRule::FromEnvironment() {
  ProxyRule rule;
  for (const char* name : {"http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"}) {
    const char* value = std::getenv(name);
    if (value != nullptr && value[0] != '\0') rule.proxy_set_ = true;
  }
  const char* no_proxy = std::getenv("no_proxy");
  if (no_proxy == nullptr || no_proxy[0] == '\0') no_proxy = std::getenv("NO_PROXY");
  if (no_proxy == nullptr) return rule;
  std::string_view list(no_proxy);
  while (!list.empty()) {
    const size_t end = list.find_first_of(", \t");
    std::string_view item = list.substr(0, end);
    list = end == std::string_view::npos ? std::string_view() : list.substr(end + 1);
    if (item.empty()) continue;
    if (item == "*") {
      rule.exempt_all_ = true;
      continue;
    }
    if (item.front() == '[' && item.back() == ']' && item.size() > 2) {
      item = item.substr(1, item.size() - 2);
    }
    while (!item.empty() && item.front() == '.') item.remove_prefix(1);
    if (item.empty()) continue;
    std::string lowered(item);
    for (char& c : lowered) c = Lower(c);
    rule.exempt_.push_back(std::move(lowered));
  }
  return rule;
}

bool ProxyRule::Applies(std::string_view host) const {
  if (!proxy_set_) return false;
  if (exempt_all_) return false;
  for (const std::string& e : exempt_) {
    if (EqualsIgnoreCase(host, e)) return false;
    if (host.size() > e.size() && host[host.size() - e.size() - 1] == '.' &&
        EqualsIgnoreCase(host.substr(host.size() - e.size()), e)) {
      return false;
    }
  }
  return true;
}

// ---------------------------------------------------------------------------------------
// State.

struct NativeHttpTransport::HostPool {
  struct Address {
    sockaddr_storage address{};
    socklen_t length = 0;
  };
  std::string key;
  std::string name;      // "host:port" for messages
  std::string hostname;  // a name to resolve; empty for an IP literal
  std::string port;
  std::vector<Address> addresses;
  size_t preferred = 0;  // index of the address tried first
  bool resolving = false;
  SteadyTime resolved_until{};
  std::vector<Connection*> idle;  // oldest first
  std::deque<Request*> waiting;
  int open = 0;
};

struct NativeHttpTransport::Connection {
  int fd = -1;
  HostPool* host = nullptr;
  size_t index = 0;  // in connections_
  bool connecting = false;
  bool idle = false;
  bool closed = false;
  bool reused = false;  // has carried a complete exchange before
  int attempt = 0;      // which of the host's addresses (counted from `preferred`)
  SteadyTime idle_since{};
  Request* request = nullptr;
  // Received bytes not parsed yet: buffer[begin, end).
  std::unique_ptr<char[]> buffer;
  size_t capacity = 0;
  size_t begin = 0;
  size_t end = 0;
};

struct NativeHttpTransport::Request {
  enum class Phase {
    kStatusLine,
    kHeaders,
    kBody,  // Content-Length bytes left in `remaining`
    kChunkSize,
    kChunkData,  // `remaining` bytes of the chunk left
    kChunkEnd,   // the CRLF after a chunk's data
    kTrailers,
    kUntilClose,  // body ends when the server closes
    kDone,
  };

  HttpClient::Callback done;
  MonoTime submitted_at{};
  SteadyTime deadline{};
  SteadyTime connect_deadline{};
  SteadyTime deadline_key{};  // what the heap orders by
  size_t heap_index = SIZE_MAX;
  Duration timeout{};
  Duration connect_timeout{};
  HostPool* host = nullptr;
  Connection* connection = nullptr;
  bool queued = false;
  bool retried = false;
  bool head = false;  // a HEAD request: no response body
  size_t max_response_bytes = 0;
  std::string wire;  // the request as sent
  size_t sent = 0;

  // Response parsing.
  Phase phase = Phase::kStatusLine;
  bool got_bytes = false;
  bool keep_alive = true;
  bool http10 = false;
  uint64_t remaining = 0;
  size_t head_bytes = 0;
  HttpResponse response;

  void ResetExchange() {
    sent = 0;
    phase = Phase::kStatusLine;
    got_bytes = false;
    keep_alive = true;
    http10 = false;
    remaining = 0;
    head_bytes = 0;
    response.status = 0;
    response.headers.clear();
    response.body.clear();
  }
};

// Name resolution: one thread, started at the first name, looking names up one at a time.
struct NativeHttpTransport::ResolverState {
  struct Result {
    HostPool* host = nullptr;  // a key only: never touched by the resolver thread
    std::vector<HostPool::Address> addresses;
    std::string error;
  };
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::pair<HostPool*, std::pair<std::string, std::string>>> jobs;  // name, port
  std::vector<Result> results;
  std::atomic<bool> has_results{false};
  bool stop = false;
  bool started = false;
  std::function<void()> wake;  // cleared when the transport goes away

  static void Loop(std::shared_ptr<ResolverState> state) {
    for (;;) {
      std::unique_lock lock(state->mu);
      state->cv.wait(lock, [&] { return state->stop || !state->jobs.empty(); });
      if (state->stop) return;
      auto job = std::move(state->jobs.front());
      state->jobs.pop_front();
      lock.unlock();

      Result result;
      result.host = job.first;
      addrinfo hints{};
      hints.ai_family = AF_UNSPEC;
      hints.ai_socktype = SOCK_STREAM;
      hints.ai_flags = AI_NUMERICSERV;
      addrinfo* found = nullptr;
      const int rc =
          getaddrinfo(job.second.first.c_str(), job.second.second.c_str(), &hints, &found);
      if (rc != 0) {
        result.error = gai_strerror(rc);
      } else {
        for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
          if ((a->ai_family != AF_INET && a->ai_family != AF_INET6) ||
              a->ai_addrlen > sizeof(sockaddr_storage)) {
            continue;
          }
          HostPool::Address& address = result.addresses.emplace_back();
          std::memcpy(&address.address, a->ai_addr, a->ai_addrlen);
          address.length = a->ai_addrlen;
        }
        freeaddrinfo(found);
        if (result.addresses.empty()) result.error = "no IPv4 or IPv6 address";
      }

      lock.lock();
      if (state->stop) return;
      state->results.push_back(std::move(result));
      state->has_results.store(true, std::memory_order_release);
      if (state->wake) state->wake();
    }
  }
};

NativeHttpTransport::NativeHttpTransport(int epoll_fd, NativeOptions options, const Clock* clock,
                                         Completer complete, std::function<void()> wake)
    : epoll_fd_(epoll_fd),
      options_(std::move(options)),
      clock_(clock),
      complete_(std::move(complete)),
      resolver_(std::make_shared<ResolverState>()) {
  resolver_->wake = std::move(wake);
}

NativeHttpTransport::~NativeHttpTransport() {
  {
    std::lock_guard lock(resolver_->mu);
    resolver_->stop = true;
    resolver_->wake = nullptr;
  }
  resolver_->cv.notify_all();
  for (auto& c : connections_) {
    if (c->fd >= 0) {
      epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c->fd, nullptr);
      close(c->fd);
    }
  }
}

// ---------------------------------------------------------------------------------------
// Starting requests.

NativeHttpTransport::HostPool* NativeHttpTransport::PoolFor(const NativeTarget& target) {
  key_scratch_.clear();
  key_scratch_.append(target.host);
  key_scratch_.push_back('|');
  key_scratch_.append(std::to_string(target.port));
  auto it = hosts_.find(std::string_view(key_scratch_));
  if (it != hosts_.end()) return it->second.get();
  auto pool = std::make_unique<HostPool>();
  pool->key = key_scratch_;
  std::string host(target.host);
  pool->port = std::to_string(target.port);
  pool->name = (target.ipv6 ? "[" + host + "]" : host) + ":" + pool->port;
  if (target.name) {
    pool->hostname = host;  // resolved when a connection is first needed
  } else {
    HostPool::Address& address = pool->addresses.emplace_back();
    if (target.ipv6) {
      auto* a = reinterpret_cast<sockaddr_in6*>(&address.address);
      a->sin6_family = AF_INET6;
      a->sin6_port = htons(target.port);
      inet_pton(AF_INET6, host.c_str(), &a->sin6_addr);
      address.length = sizeof(sockaddr_in6);
    } else {
      auto* a = reinterpret_cast<sockaddr_in*>(&address.address);
      a->sin_family = AF_INET;
      a->sin_port = htons(target.port);
      inet_pton(AF_INET, host.c_str(), &a->sin_addr);
      address.length = sizeof(sockaddr_in);
    }
    pool->resolved_until = SteadyTime::max();
  }
  HostPool* raw = pool.get();
  hosts_.emplace(pool->key, std::move(pool));
  return raw;
}

NativeHttpTransport::Request* NativeHttpTransport::NewRequest() {
  if (!free_requests_.empty()) {
    Request* r = free_requests_.back();
    free_requests_.pop_back();
    return r;
  }
  requests_.push_back(std::make_unique<Request>());
  return requests_.back().get();
}

void NativeHttpTransport::Start(HttpRequest&& request, const NativeTarget& target,
                                HttpClient::Callback done, MonoTime submitted_at) {
  Request* r = NewRequest();
  ++active_;
  r->done = std::move(done);
  r->submitted_at = submitted_at;
  r->timeout = request.timeout;
  r->connect_timeout = request.connect_timeout;
  const SteadyTime now = std::chrono::steady_clock::now();
  r->deadline = DeadlineAfter(now, request.timeout);
  r->deadline_key = r->deadline;
  r->host = PoolFor(target);
  r->connection = nullptr;
  r->queued = false;
  r->retried = false;
  r->head = request.method == "HEAD";
  r->max_response_bytes = request.max_response_bytes;
  r->ResetExchange();
  r->response.error = TransportError::kNone;
  r->response.error_message.clear();

  // The request, built once into a reused buffer.
  std::string& w = r->wire;
  w.clear();
  w.append(request.method);
  w.push_back(' ');
  w.append(target.path);
  if (target.has_query) {
    w.push_back('?');
    w.append(target.query);
  }
  w.append(" HTTP/1.1\r\n");
  bool user_host = false;
  bool user_agent = false;
  bool user_accept = false;
  for (const HttpHeader& h : request.headers) {
    if (EqualsIgnoreCase(h.name, "host")) user_host = true;
    if (EqualsIgnoreCase(h.name, "user-agent")) user_agent = true;
    if (EqualsIgnoreCase(h.name, "accept")) user_accept = true;
  }
  if (!user_host) {
    w.append("Host: ");
    if (target.ipv6) w.push_back('[');
    w.append(target.host);
    if (target.ipv6) w.push_back(']');
    if (target.port != 80) {
      char port[8];
      const int len = std::snprintf(port, sizeof port, ":%u", static_cast<unsigned>(target.port));
      w.append(port, static_cast<size_t>(len));
    }
    w.append("\r\n");
  }
  if (!user_agent && !options_.user_agent.empty()) {
    w.append("User-Agent: ");
    w.append(options_.user_agent);
    w.append("\r\n");
  }
  if (!user_accept) w.append("Accept: */*\r\n");
  for (const HttpHeader& h : request.headers) {
    if (EqualsIgnoreCase(h.name, "content-length") ||
        EqualsIgnoreCase(h.name, "transfer-encoding")) {
      continue;  // the body's framing is ours to state
    }
    w.append(h.name);
    w.append(": ");
    w.append(h.value);
    w.append("\r\n");
  }
  if (!request.body.empty() || request.method == "POST" || request.method == "PUT") {
    char length[40];
    const int len =
        std::snprintf(length, sizeof length, "Content-Length: %zu\r\n", request.body.size());
    w.append(length, static_cast<size_t>(len));
  }
  w.append("\r\n");
  w.append(request.body);

  HeapPush(r);
  Dispatch(r);
}

bool NativeHttpTransport::CanOpen(const HostPool& host) {
  if (options_.max_host_connections > 0 && host.open >= options_.max_host_connections) {
    return false;
  }
  if (options_.max_total_connections > 0 && open_total_ >= options_.max_total_connections) {
    return CloseOldestIdle();  // an idle connection elsewhere makes room
  }
  return true;
}

// Gives `r` a connection: an idle one of its host, a new one, or a place in the queue.
void NativeHttpTransport::Dispatch(Request* r) {
  HostPool& host = *r->host;
  const SteadyTime now = std::chrono::steady_clock::now();
  while (!host.idle.empty()) {
    Connection* c = host.idle.back();
    RemoveIdle(c);
    if (now - c->idle_since > options_.max_idle_connection_age) {
      CloseConnection(c);
      continue;
    }
    Attach(r, c);
    Send(r);
    return;
  }
  if (!Resolved(host, now)) {
    r->queued = true;
    host.waiting.push_back(r);
    if (!host.resolving) Resolve(&host);
    return;
  }
  if (CanOpen(host)) {
    Open(r);
    return;
  }
  r->queued = true;
  host.waiting.push_back(r);
}

bool NativeHttpTransport::Resolved(const HostPool& host, SteadyTime now) const {
  return !host.addresses.empty() && now < host.resolved_until;
}

void NativeHttpTransport::Open(Request* r, int attempt) {
  HostPool& host = *r->host;
  const HostPool::Address& address =
      host.addresses[(host.preferred + static_cast<size_t>(attempt)) % host.addresses.size()];
  const int fd = socket(address.address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    Fail(r, TransportError::kConnect,
         "cannot connect to " + host.name + ": cannot create a socket: " + ErrnoText(errno));
    return;
  }
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  auto owned = std::make_unique<Connection>();
  Connection* c = owned.get();
  c->fd = fd;
  c->host = &host;
  c->attempt = attempt;
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.u64 = kEpollTag | static_cast<uint64_t>(reinterpret_cast<uintptr_t>(c));
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    const int error = errno;
    close(fd);
    Fail(r, TransportError::kOther, "cannot watch a socket: " + ErrnoText(error));
    return;
  }
  c->index = connections_.size();
  connections_.push_back(std::move(owned));
  ++host.open;
  ++open_total_;
  Attach(r, c);
  const int rc = connect(fd, reinterpret_cast<const sockaddr*>(&address.address), address.length);
  if (rc == 0) {
    host.preferred = (host.preferred + static_cast<size_t>(attempt)) % host.addresses.size();
    Send(r);
    return;
  }
  if (errno == EINPROGRESS) {
    // The connect timeout counts from here (a request may have waited for a free slot).
    c->connecting = true;
    r->connect_deadline =
        std::min(r->deadline, DeadlineAfter(std::chrono::steady_clock::now(), r->connect_timeout));
    r->deadline_key = r->connect_deadline;
    HeapFix(r->heap_index);
    return;
  }
  const int error = errno;
  if (OpenNextAddress(r)) return;
  Fail(r, TransportError::kConnect, "cannot connect to " + host.name + ": " + ErrnoText(error));
}

// After a failed connection attempt: tries the host's next address, if it has one left.
bool NativeHttpTransport::OpenNextAddress(Request* r) {
  Connection* c = r->connection;
  const int next = c->attempt + 1;
  if (static_cast<size_t>(next) >= r->host->addresses.size()) return false;
  c->request = nullptr;
  r->connection = nullptr;
  CloseConnection(c);
  Open(r, next);
  return true;
}

void NativeHttpTransport::Attach(Request* r, Connection* c) {
  r->connection = c;
  r->queued = false;
  c->request = r;
  c->begin = c->end = 0;
}

void NativeHttpTransport::Send(Request* r) {
  Connection* c = r->connection;
  while (r->sent < r->wire.size()) {
    const ssize_t n = send(c->fd, r->wire.data() + r->sent, r->wire.size() - r->sent, MSG_NOSIGNAL);
    if (n > 0) {
      r->sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;  // EPOLLOUT resumes
    const int error = n < 0 ? errno : EPIPE;
    if (Retry(r)) return;
    Fail(r, TransportError::kReceive, "sending the request failed: " + ErrnoText(error));
    return;
  }
}

// ---------------------------------------------------------------------------------------
// Events.

void NativeHttpTransport::OnEvent(uint64_t data, uint32_t events) {
  auto* c = reinterpret_cast<Connection*>(static_cast<uintptr_t>(data & ~kEpollTag));
  if (c->closed) return;  // closed earlier in this batch of events
  if (c->idle || c->request == nullptr) {
    // Anything on an idle connection (the server closing it, or stray bytes) ends it.
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) CloseConnection(c);
    return;
  }
  Request* r = c->request;
  if (c->connecting) {
    if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
    int error = 0;
    socklen_t len = sizeof error;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &error, &len) != 0) error = errno;
    if (error != 0) {
      if (OpenNextAddress(r)) return;
      Fail(r, TransportError::kConnect,
           "cannot connect to " + c->host->name + ": " + ErrnoText(error));
      return;
    }
    c->connecting = false;
    if (c->attempt != 0) {
      c->host->preferred =
          (c->host->preferred + static_cast<size_t>(c->attempt)) % c->host->addresses.size();
    }
    r->deadline_key = r->deadline;
    HeapFix(r->heap_index);
    Send(r);
    if (c->closed || c->request != r) return;
  } else if ((events & EPOLLOUT) && r->sent < r->wire.size()) {
    Send(r);
    if (c->closed || c->request != r) return;
  }
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) OnReadable(c);
}

// Reads until the response is complete or the socket has nothing more (edge-triggered).
void NativeHttpTransport::OnReadable(Connection* c) {
  Request* r = c->request;
  auto fail = [&](TransportError e, std::string message) { Fail(r, e, std::move(message)); };
  for (;;) {
    // Room to read into: drop parsed bytes, grow when an unfinished line fills the buffer.
    if (c->begin == c->end) {
      c->begin = c->end = 0;
    } else if (c->begin > 0 && c->end == c->capacity) {
      std::memmove(c->buffer.get(), c->buffer.get() + c->begin, c->end - c->begin);
      c->end -= c->begin;
      c->begin = 0;
    }
    if (c->end == c->capacity) {
      const size_t grown = c->capacity == 0 ? kInitialBuffer : c->capacity * 2;
      auto bigger = std::make_unique<char[]>(grown);
      if (c->end > 0) std::memcpy(bigger.get(), c->buffer.get(), c->end);
      c->buffer = std::move(bigger);
      c->capacity = grown;
    }
    const ssize_t n = recv(c->fd, c->buffer.get() + c->end, c->capacity - c->end, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      OnClosedOrReset(c, errno);
      return;
    }
    if (n == 0) {
      OnClosedOrReset(c, 0);
      return;
    }
    c->end += static_cast<size_t>(n);
    r->got_bytes = true;

    std::string error;
    const ParseResult result = Parse(c, r, &error);
    switch (result) {
      case ParseResult::kMore:
        continue;  // edge-triggered: read on until EAGAIN
      case ParseResult::kDone:
        Succeed(r);
        return;
      case ParseResult::kError:
        fail(TransportError::kReceive, std::move(error));
        return;
      case ParseResult::kTooLarge:
        fail(TransportError::kResponseTooLarge,
             "response body over " + std::to_string(r->max_response_bytes) + " bytes");
        return;
    }
  }
}

// Consumes what `c` has buffered for `r`: kMore when the response needs more bytes.
NativeHttpTransport::ParseResult NativeHttpTransport::Parse(Connection* c, Request* r,
                                                            std::string* error) {
  ParseResult result = ParseResult::kMore;
  using Phase = Request::Phase;
  HttpResponse& resp = r->response;
  while (result == ParseResult::kMore && c->begin < c->end) {
    const char* data = c->buffer.get() + c->begin;
    const size_t avail = c->end - c->begin;
    const Phase phase = r->phase;
    if (phase == Phase::kBody || phase == Phase::kChunkData || phase == Phase::kUntilClose) {
      size_t take = avail;
      if (phase != Phase::kUntilClose && take > r->remaining) {
        take = static_cast<size_t>(r->remaining);
      }
      if (take > r->max_response_bytes - std::min(resp.body.size(), r->max_response_bytes)) {
        result = ParseResult::kTooLarge;
        break;
      }
      resp.body.append(data, take);
      c->begin += take;
      if (phase != Phase::kUntilClose) {
        r->remaining -= take;
        if (r->remaining == 0) {
          r->phase = phase == Phase::kBody ? Phase::kDone : Phase::kChunkEnd;
          if (r->phase == Phase::kDone) result = ParseResult::kDone;
        }
      }
      continue;
    }
    // Every other phase works on whole lines.
    const char* nl = static_cast<const char*>(std::memchr(data, '\n', avail));
    if (nl == nullptr) {
      const size_t limit = (phase == Phase::kChunkSize || phase == Phase::kChunkEnd)
                               ? kMaxChunkLine
                               : kMaxHeaderBytes - std::min(r->head_bytes, kMaxHeaderBytes);
      if (avail > limit) {
        result = ParseResult::kError;
        *error = phase == Phase::kChunkSize || phase == Phase::kChunkEnd
                     ? "malformed chunked body"
                     : "response header block too large";
      }
      break;
    }
    const size_t line_len = static_cast<size_t>(nl - data) + 1;
    std::string_view line(data, line_len - 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    c->begin += line_len;
    if (phase != Phase::kChunkSize && phase != Phase::kChunkEnd) {
      r->head_bytes += line_len;
      if (r->head_bytes > kMaxHeaderBytes) {
        result = ParseResult::kError;
        *error = "response header block too large";
        break;
      }
    }
    switch (phase) {
      case Phase::kStatusLine: {
        if (line.empty()) break;  // tolerate blank lines before the status line
        // "HTTP/1.x SSS[ reason]"
        if (line.size() < 12 || line.compare(0, 7, "HTTP/1.") != 0 ||
            (line[7] != '0' && line[7] != '1') || line[8] != ' ' || line[9] < '1' ||
            line[9] > '5' || line[10] < '0' || line[10] > '9' || line[11] < '0' || line[11] > '9' ||
            (line.size() > 12 && line[12] != ' ')) {
          result = ParseResult::kError;
          *error = "malformed status line in the response";
          break;
        }
        r->http10 = line[7] == '0';
        resp.status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
        resp.headers.clear();
        r->phase = Phase::kHeaders;
        break;
      }
      case Phase::kHeaders: {
        if (!line.empty()) {
          if (line[0] == ' ' || line[0] == '\t') {  // obsolete line folding
            std::string_view more = Trim(line);
            if (!resp.headers.empty() && !more.empty()) {
              std::string& value = resp.headers.back().value;
              if (!value.empty()) value.push_back(' ');
              value.append(more);
            }
            break;
          }
          const size_t colon = line.find(':');
          if (colon == std::string_view::npos || colon == 0) break;  // garbage: ignored
          std::string_view name = Trim(line.substr(0, colon));
          HttpHeader& h = resp.headers.emplace_back();
          h.name.resize(name.size());
          std::transform(name.begin(), name.end(), h.name.begin(), Lower);
          h.value.assign(Trim(line.substr(colon + 1)));
          break;
        }
        result = EndOfHead(r, error);
        break;
      }
      case Phase::kChunkSize: {
        uint64_t size = 0;
        size_t digits = 0;
        for (char ch : line) {
          int v;
          if (ch >= '0' && ch <= '9') {
            v = ch - '0';
          } else if (ch >= 'a' && ch <= 'f') {
            v = ch - 'a' + 10;
          } else if (ch >= 'A' && ch <= 'F') {
            v = ch - 'A' + 10;
          } else {
            break;
          }
          if (++digits > 15) break;
          size = size * 16 + static_cast<uint64_t>(v);
        }
        std::string_view after = Trim(line.substr(std::min(digits, line.size())));
        if (digits == 0 || digits > 15 || (!after.empty() && after[0] != ';')) {
          result = ParseResult::kError;
          *error = "malformed chunked body";
          break;
        }
        if (size == 0) {
          r->phase = Phase::kTrailers;
          r->head_bytes = 0;
        } else if (size >
                   r->max_response_bytes - std::min(resp.body.size(), r->max_response_bytes)) {
          result = ParseResult::kTooLarge;
        } else {
          r->phase = Phase::kChunkData;
          r->remaining = size;
        }
        break;
      }
      case Phase::kChunkEnd:
        if (!line.empty()) {
          result = ParseResult::kError;
          *error = "malformed chunked body";
          break;
        }
        r->phase = Phase::kChunkSize;
        break;
      case Phase::kTrailers:
        if (line.empty()) {  // trailer fields themselves are not kept
          r->phase = Phase::kDone;
          result = ParseResult::kDone;
        }
        break;
      default:
        break;
    }
  }
  return result;
}

// The blank line ending a response head: decides how the body is framed.
NativeHttpTransport::ParseResult NativeHttpTransport::EndOfHead(Request* r, std::string* error) {
  using Phase = Request::Phase;
  HttpResponse& resp = r->response;
  if (resp.status >= 100 && resp.status < 200) {
    if (resp.status == 101) {
      *error = "unexpected protocol switch in the response";
      return ParseResult::kError;
    }
    r->phase = Phase::kStatusLine;  // an interim response: the real one follows
    resp.headers.clear();
    return ParseResult::kMore;
  }
  const std::string* connection = resp.Header("connection");
  if (r->http10) {
    r->keep_alive = connection != nullptr && HeaderHasToken(*connection, "keep-alive");
  } else {
    r->keep_alive = connection == nullptr || !HeaderHasToken(*connection, "close");
  }
  if (r->head || resp.status == 204 || resp.status == 304) {
    r->phase = Phase::kDone;
    return ParseResult::kDone;
  }
  if (const std::string* te = resp.Header("transfer-encoding")) {
    if (EqualsIgnoreCase(LastToken(*te), "chunked")) {
      r->phase = Phase::kChunkSize;
    } else {
      r->phase = Phase::kUntilClose;
      r->keep_alive = false;
    }
    return ParseResult::kMore;
  }
  if (resp.Header("content-length") == nullptr) {
    r->phase = Phase::kUntilClose;
    r->keep_alive = false;
    return ParseResult::kMore;
  }
  // Digits only; repeated headers (or "n, n" lists) must agree.
  uint64_t length = 0;
  bool seen = false;
  for (const HttpHeader& h : resp.headers) {
    if (h.name != "content-length") continue;
    std::string_view v = h.value;
    for (;;) {
      const size_t comma = v.find(',');
      std::string_view item = Trim(v.substr(0, comma));
      if (item.empty() || item.size() > 18) {
        *error = "malformed Content-Length in the response";
        return ParseResult::kError;
      }
      uint64_t value = 0;
      for (char ch : item) {
        if (ch < '0' || ch > '9') {
          *error = "malformed Content-Length in the response";
          return ParseResult::kError;
        }
        value = value * 10 + static_cast<uint64_t>(ch - '0');
      }
      if (seen && value != length) {
        *error = "conflicting Content-Length values in the response";
        return ParseResult::kError;
      }
      seen = true;
      length = value;
      if (comma == std::string_view::npos) break;
      v.remove_prefix(comma + 1);
    }
  }
  if (length > r->max_response_bytes) return ParseResult::kTooLarge;
  if (length == 0) {
    r->phase = Phase::kDone;
    return ParseResult::kDone;
  }
  r->phase = Phase::kBody;
  r->remaining = length;
  resp.body.reserve(static_cast<size_t>(length));
  return ParseResult::kMore;
}

// The server closed (error == 0) or reset the connection while `c` carried a request.
void NativeHttpTransport::OnClosedOrReset(Connection* c, int error) {
  Request* r = c->request;
  if (error == 0 && r->phase == Request::Phase::kUntilClose) {
    r->keep_alive = false;
    Succeed(r);
    return;
  }
  if (!r->got_bytes && Retry(r)) return;
  std::string message;
  if (!r->got_bytes) {
    message = "the server closed the connection without a response";
  } else if (r->phase == Request::Phase::kStatusLine || r->phase == Request::Phase::kHeaders) {
    message = "the connection ended in the middle of the response headers";
  } else {
    message = "the connection ended before the end of the response body";
  }
  if (error != 0) message += " (" + ErrnoText(error) + ")";
  Fail(r, TransportError::kReceive, std::move(message));
}

// Sends `r` again on a new connection when the reused one it went out on turned out dead.
bool NativeHttpTransport::Retry(Request* r) {
  Connection* c = r->connection;
  if (c == nullptr || !c->reused || r->retried || r->got_bytes) return false;
  r->retried = true;
  c->request = nullptr;
  r->connection = nullptr;
  CloseConnection(c);
  r->ResetExchange();
  Open(r);  // the slot just freed is this host's: no limit stands in the way
  return true;
}

// ---------------------------------------------------------------------------------------
// Completion.

void NativeHttpTransport::Succeed(Request* r) {
  Connection* c = r->connection;
  const bool reusable = r->keep_alive && r->sent == r->wire.size() && c->begin == c->end;
  c->request = nullptr;
  r->connection = nullptr;
  if (reusable) {
    c->reused = true;
    MakeIdle(c);
  } else {
    CloseConnection(c);
  }
  Complete(r, TransportError::kNone, {});
}

void NativeHttpTransport::Fail(Request* r, TransportError error, std::string message) {
  if (Connection* c = r->connection) {  // mid-exchange: the connection cannot be reused
    c->request = nullptr;
    r->connection = nullptr;
    CloseConnection(c);
  }
  Complete(r, error, std::move(message));
}

void NativeHttpTransport::Complete(Request* r, TransportError error, std::string message) {
  HeapRemove(r);
  if (r->queued) {
    auto& waiting = r->host->waiting;
    waiting.erase(std::find(waiting.begin(), waiting.end(), r));
    r->queued = false;
  }
  HttpResponse response = FinishedResponse(std::move(r->response), error, std::move(message),
                                           clock_->Now() - r->submitted_at);
  HttpClient::Callback done = std::move(r->done);
  ReleaseRequest(r);
  complete_(done, std::move(response));
}

void NativeHttpTransport::ReleaseRequest(Request* r) {
  r->done = nullptr;
  r->response = HttpResponse();
  r->host = nullptr;
  r->connection = nullptr;
  if (r->wire.capacity() > 64 * 1024) std::string().swap(r->wire);
  free_requests_.push_back(r);
  --active_;
}

// ---------------------------------------------------------------------------------------
// Connections.

void NativeHttpTransport::MakeIdle(Connection* c) {
  c->idle = true;
  c->idle_since = std::chrono::steady_clock::now();
  c->begin = c->end = 0;
  c->host->idle.push_back(c);
  ++idle_total_;
  pump_needed_ = true;
  while (idle_total_ > options_.max_idle_connections) {
    if (!CloseOldestIdle()) break;
  }
}

void NativeHttpTransport::RemoveIdle(Connection* c) {
  auto& idle = c->host->idle;
  auto it = std::find(idle.rbegin(), idle.rend(), c);
  if (it != idle.rend()) idle.erase(std::next(it).base());
  c->idle = false;
  --idle_total_;
}

bool NativeHttpTransport::CloseOldestIdle() {
  Connection* oldest = nullptr;
  for (auto& [key, host] : hosts_) {
    if (!host->idle.empty() &&
        (oldest == nullptr || host->idle.front()->idle_since < oldest->idle_since)) {
      oldest = host->idle.front();
    }
  }
  if (oldest == nullptr) return false;
  CloseConnection(oldest);
  return true;
}

void NativeHttpTransport::CloseConnection(Connection* c) {
  if (c->closed) return;
  if (c->idle) RemoveIdle(c);
  c->closed = true;
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c->fd, nullptr);
  close(c->fd);
  c->fd = -1;
  --c->host->open;
  --open_total_;
  pump_needed_ = true;
  // Freed after this batch of epoll events (which may still name it).
  const size_t i = c->index;
  std::unique_ptr<Connection> owned = std::move(connections_[i]);
  if (i + 1 != connections_.size()) {
    connections_[i] = std::move(connections_.back());
    connections_[i]->index = i;
  }
  connections_.pop_back();
  graveyard_.push_back(std::move(owned));
}

void NativeHttpTransport::Pump() {
  while (pump_needed_) {
    pump_needed_ = false;
    const SteadyTime now = std::chrono::steady_clock::now();
    for (auto& [key, host] : hosts_) {
      while (!host->waiting.empty() &&
             (!host->idle.empty() || (Resolved(*host, now) && CanOpen(*host)))) {
        Request* r = host->waiting.front();
        host->waiting.pop_front();
        r->queued = false;
        Dispatch(r);
      }
      if (!host->waiting.empty() && !host->resolving && !Resolved(*host, now)) {
        Resolve(host.get());
      }
    }
  }
}

// ---------------------------------------------------------------------------------------
// Name resolution.

void NativeHttpTransport::Resolve(HostPool* host) {
  host->resolving = true;
  ResolverState& state = *resolver_;
  std::lock_guard lock(state.mu);
  if (!state.started) {
    try {
      std::thread(&ResolverState::Loop, resolver_).detach();
      state.started = true;
    } catch (const std::exception&) {
      ResolverState::Result result;
      result.host = host;
      result.error = "cannot start the resolver thread";
      state.results.push_back(std::move(result));
      state.has_results.store(true, std::memory_order_release);
      return;
    }
  }
  state.jobs.emplace_back(host, std::make_pair(host->hostname, host->port));
  state.cv.notify_one();
}

void NativeHttpTransport::DrainResolved() {
  if (!resolver_->has_results.load(std::memory_order_acquire)) return;
  std::vector<ResolverState::Result> results;
  {
    std::lock_guard lock(resolver_->mu);
    results.swap(resolver_->results);
    resolver_->has_results.store(false, std::memory_order_relaxed);
  }
  const SteadyTime now = std::chrono::steady_clock::now();
  for (ResolverState::Result& result : results) {
    HostPool* host = result.host;
    host->resolving = false;
    if (!result.addresses.empty()) {
      host->addresses = std::move(result.addresses);
      host->preferred = 0;
      host->resolved_until = now + kResolveCacheTime;
      pump_needed_ = true;
      continue;
    }
    // Every request waiting for this host needed a new connection: none can be made.
    while (!host->waiting.empty()) {
      Fail(host->waiting.front(), TransportError::kConnect,
           "cannot resolve host name " + host->hostname + ": " + result.error);
    }
  }
}

void NativeHttpTransport::Collect() { graveyard_.clear(); }

void NativeHttpTransport::CheckDeadlines(SteadyTime now) {
  while (!heap_.empty() && heap_.front()->deadline_key <= now) {
    Request* r = heap_.front();
    const bool connecting = r->connection != nullptr && r->connection->connecting;
    std::string message;
    if (connecting && r->connect_deadline < r->deadline) {
      message = "connection to " + r->host->name + " not established within " +
                std::to_string(Millis(r->connect_timeout)) + " ms";
    } else {
      message = "request not complete within " + std::to_string(Millis(r->timeout)) + " ms";
    }
    Fail(r, TransportError::kTimeout, std::move(message));
  }
  if (now >= next_idle_sweep_) {
    next_idle_sweep_ = now + std::chrono::seconds(1);
    for (auto& [key, host] : hosts_) {
      while (!host->idle.empty() &&
             now - host->idle.front()->idle_since > options_.max_idle_connection_age) {
        CloseConnection(host->idle.front());
      }
    }
  }
}

NativeHttpTransport::SteadyTime NativeHttpTransport::NextDeadline() const {
  SteadyTime next = heap_.empty() ? SteadyTime::max() : heap_.front()->deadline_key;
  if (idle_total_ > 0) next = std::min(next, next_idle_sweep_);
  return next;
}

void NativeHttpTransport::CancelAll(const std::string& message) {
  // Every started request, queued or not, is in the deadline heap.
  while (!heap_.empty()) Fail(heap_.front(), TransportError::kCancelled, message);
  while (!connections_.empty()) CloseConnection(connections_.back().get());
  Collect();
}

// ---------------------------------------------------------------------------------------
// Deadline heap.

bool NativeHttpTransport::HeapLess(size_t a, size_t b) const {
  return heap_[a]->deadline_key < heap_[b]->deadline_key;
}

void NativeHttpTransport::HeapSwap(size_t a, size_t b) {
  std::swap(heap_[a], heap_[b]);
  heap_[a]->heap_index = a;
  heap_[b]->heap_index = b;
}

void NativeHttpTransport::HeapFix(size_t i) {
  if (i >= heap_.size()) return;
  while (i > 0 && HeapLess(i, (i - 1) / 2)) {
    HeapSwap(i, (i - 1) / 2);
    i = (i - 1) / 2;
  }
  for (;;) {
    const size_t l = 2 * i + 1;
    const size_t rr = l + 1;
    size_t m = i;
    if (l < heap_.size() && HeapLess(l, m)) m = l;
    if (rr < heap_.size() && HeapLess(rr, m)) m = rr;
    if (m == i) break;
    HeapSwap(i, m);
    i = m;
  }
}

void NativeHttpTransport::HeapPush(Request* r) {
  r->heap_index = heap_.size();
  heap_.push_back(r);
  HeapFix(r->heap_index);
}

void NativeHttpTransport::HeapRemove(Request* r) {
  const size_t i = r->heap_index;
  if (i >= heap_.size() || heap_[i] != r) return;
  const size_t last = heap_.size() - 1;
  if (i != last) HeapSwap(i, last);
  heap_.pop_back();
  r->heap_index = SIZE_MAX;
  if (i < heap_.size()) HeapFix(i);
}

}  // namespace enrichd::http_internal

// HttpServer: epoll event loops (one per thread, SO_REUSEPORT), non-blocking sockets,
// level-triggered. Each connection owns an input buffer (requests are parsed from it in
// order, so pipelining works) and an output buffer (all responses produced by one read are
// appended and written with a single send()). A delayed response blocks only its own
// connection: it is parked on the loop's timer heap and later requests of that connection
// wait behind it so that answers keep their order.
#include "mock_provider/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <ctime>
#include <exception>
#include <queue>
#include <string_view>
#include <thread>
#include <utility>

#include "enrichd/ip_address.h"

namespace enrichd::mock {
namespace {

using SteadyTime = std::chrono::steady_clock::time_point;

constexpr std::size_t kMaxHeaderBytes = 64 * 1024;
constexpr std::size_t kMaxBodyBytes = 64u << 20;
constexpr std::size_t kMaxBufferedInput = 128u << 20;
constexpr std::size_t kSlowBodyPieces = 8;
constexpr Duration kDefaultSlowInterval = std::chrono::milliseconds(50);

std::string_view ReasonPhrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 204:
      return "No Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 411:
      return "Length Required";
    case 413:
      return "Payload Too Large";
    case 414:
      return "URI Too Long";
    case 422:
      return "Unprocessable Entity";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "Unknown";
  }
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void PercentDecode(std::string_view in, std::string* out) {
  out->clear();
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%' && i + 2 < in.size()) {
      int hi = HexValue(in[i + 1]);
      int lo = HexValue(in[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out->push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out->push_back(in[i]);
  }
}

void AppendNumber(std::string* out, uint64_t n) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), n);
  (void)ec;
  out->append(buf, end);
}

struct Conn {
  int fd = -1;
  uint64_t generation = 0;
  std::string in;
  std::size_t in_pos = 0;  // start of the first unparsed byte in `in`
  std::string out;
  std::size_t out_pos = 0;
  bool want_close = false;   // close once `out` is flushed; parse nothing more
  bool read_closed = false;  // the peer sent EOF
  bool blocked = false;      // a delayed response or a slow body is in progress
  bool epollout = false;     // EPOLLOUT currently requested
  bool pending_keep_alive = true;
  ServerResponse pending;  // the delayed response while `blocked`
  // Slow body state.
  bool slow = false;
  std::string slow_body;
  std::size_t slow_pos = 0;
  std::size_t slow_piece = 1;
  Duration slow_interval{};
  ServerRequest request;  // reused for every request of this connection
};

struct Timer {
  SteadyTime when;
  int fd;
  uint64_t generation;
  bool operator>(const Timer& o) const { return when > o.when; }
};

class ServerImpl;

class Loop {
 public:
  Loop(ServerImpl* server, int listen_fd) : server_(server), listen_fd_(listen_fd) {}
  ~Loop() { CloseAll(); }

  Status Init();
  void RunThread() {
    thread_ = std::thread([this] { Run(); });
  }
  void Wake() {
    uint64_t one = 1;
    ssize_t r = ::write(wake_fd_, &one, sizeof(one));
    (void)r;
  }
  void Join() {
    if (thread_.joinable()) thread_.join();
  }
  void CloseAll();

 private:
  void Run();
  void Accept();
  void OnConnEvent(int fd, uint32_t events);
  // Parses and answers complete requests while the connection is not blocked.
  void Process(Conn* c);
  // Handles one request parsed from c->in; returns false when no complete request is there.
  bool ParseOne(Conn* c, bool* keep_alive, int* parse_error);
  void Emit(Conn* c, ServerResponse& r, bool keep_alive);
  void AppendHead(Conn* c, const ServerResponse& r, std::size_t content_length, bool keep_alive);
  void EmitSimple(Conn* c, int status, std::string_view message);
  // Writes as much of c->out as the socket takes; false if the connection was closed.
  bool Flush(Conn* c);
  // Closes the connection when nothing more is due on it; false if it was closed.
  bool MaybeClose(Conn* c);
  void CloseConn(Conn* c);
  void SetWantWrite(Conn* c, bool want);
  void FireTimers();
  void OnTimer(Conn* c);
  void SendSlowPiece(Conn* c);

  ServerImpl* server_;
  int listen_fd_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  std::vector<std::unique_ptr<Conn>> conns_;  // indexed by fd
  uint64_t next_generation_ = 1;
  std::priority_queue<Timer, std::vector<Timer>, std::greater<>> timers_;
  // When epoll last returned: the arrival time of the requests read in this iteration.
  std::chrono::steady_clock::time_point woke_at_ = std::chrono::steady_clock::now();
  std::thread thread_;
  char read_buf_[64 * 1024];
};

class ServerImpl final : public HttpServer {
 public:
  ServerImpl(Handler handler, std::string host, uint16_t port)
      : handler_(std::move(handler)), host_(std::move(host)), port_(port) {}
  ~ServerImpl() override { Stop(); }

  uint16_t port() const override { return port_; }
  std::string base_url() const override {
    if (host_.find(':') != std::string::npos) {
      return "http://[" + host_ + "]:" + std::to_string(port_);
    }
    return "http://" + host_ + ":" + std::to_string(port_);
  }
  void Stop() override {
    if (stopped_.exchange(true)) return;
    stopping_.store(true, std::memory_order_release);
    for (auto& l : loops_) l->Wake();
    for (auto& l : loops_) l->Join();
    loops_.clear();
  }
  uint64_t connections_accepted() const override {
    return connections_.load(std::memory_order_relaxed);
  }
  uint64_t requests_received() const override { return requests_.load(std::memory_order_relaxed); }

  const Handler& handler() const { return handler_; }
  bool stopping() const { return stopping_.load(std::memory_order_acquire); }
  void CountConnection() { connections_.fetch_add(1, std::memory_order_relaxed); }
  void CountRequest() { requests_.fetch_add(1, std::memory_order_relaxed); }

  std::vector<std::unique_ptr<Loop>> loops_;

 private:
  Handler handler_;
  std::string host_;
  uint16_t port_;
  std::atomic<bool> stopped_{false};
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> connections_{0};
  std::atomic<uint64_t> requests_{0};
};

Status Loop::Init() {
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) return InternalError(std::string("epoll_create1: ") + std::strerror(errno));
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) return InternalError(std::string("eventfd: ") + std::strerror(errno));
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = wake_fd_;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev) != 0) {
    return InternalError(std::string("epoll_ctl: ") + std::strerror(errno));
  }
  ev.data.fd = listen_fd_;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev) != 0) {
    return InternalError(std::string("epoll_ctl: ") + std::strerror(errno));
  }
  return Status::Ok();
}

void Loop::CloseAll() {
  for (auto& c : conns_) {
    if (c) {
      ::close(c->fd);
      c.reset();
    }
  }
  if (listen_fd_ >= 0) ::close(listen_fd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
  if (epoll_fd_ >= 0) ::close(epoll_fd_);
  listen_fd_ = wake_fd_ = epoll_fd_ = -1;
}

void Loop::Run() {
  // Wake for a due answer within microseconds, not the default 50 us of timer slack.
  ::prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
  epoll_event events[256];
  while (!server_->stopping()) {
    // Wait until the next delayed answer is due, to the microsecond: epoll_wait's whole
    // milliseconds would add ~0.5 ms to every "50 ms" of latency the mock is asked for.
    // Timers also fire late (on this 2-core VM 110 us at the median, 170 us at p90, even
    // with 1 us of slack), so the loop wakes kWakeEarly before an answer is due and polls
    // the rest of the way: answers leave on time, for ~0.2 ms of CPU per wake-up.
    constexpr int64_t kWakeEarlyNs = 250'000;
    timespec wait{};
    timespec* wait_for = nullptr;  // no timer: wait for events only
    if (!timers_.empty()) {
      auto now = std::chrono::steady_clock::now();
      auto when = timers_.top().when;
      const int64_t until_due =
          std::chrono::duration_cast<std::chrono::nanoseconds>(when - now).count();
      const int64_t ns = until_due <= kWakeEarlyNs ? 0
                                                   : std::min<int64_t>(until_due - kWakeEarlyNs,
                                                                       int64_t{60} * 1'000'000'000);
      wait.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
      wait.tv_nsec = static_cast<long>(ns % 1'000'000'000);
      wait_for = &wait;
    }
    int n = ::epoll_pwait2(epoll_fd_, events, 256, wait_for, nullptr);
    woke_at_ = std::chrono::steady_clock::now();
    if (n < 0 && errno == ENOSYS) {  // kernel before 5.11: whole milliseconds, rounded up
      const int64_t ms = wait_for == nullptr
                             ? -1
                             : (wait.tv_sec * 1'000'000'000LL + wait.tv_nsec + 999'999) / 1'000'000;
      n = ::epoll_wait(epoll_fd_, events, 256, static_cast<int>(ms));
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < n && !server_->stopping(); ++i) {
      int fd = events[i].data.fd;
      if (fd == wake_fd_) {
        uint64_t v;
        ssize_t r = ::read(wake_fd_, &v, sizeof(v));
        (void)r;
      } else if (fd == listen_fd_) {
        Accept();
      } else {
        OnConnEvent(fd, events[i].events);
      }
    }
    if (!timers_.empty()) FireTimers();
  }
  // Descriptors are closed by ~Loop after Join(), so that Wake() never writes to a
  // descriptor this thread already closed.
}

void Loop::Accept() {
  for (;;) {
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return;  // EAGAIN, or out of descriptors (retried on the next readiness)
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (static_cast<std::size_t>(fd) >= conns_.size()) conns_.resize(fd + 64);
    auto c = std::make_unique<Conn>();
    c->fd = fd;
    c->generation = next_generation_++;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.fd = fd;
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
      ::close(fd);
      continue;
    }
    conns_[fd] = std::move(c);
    server_->CountConnection();
  }
}

void Loop::SetWantWrite(Conn* c, bool want) {
  if (c->epollout == want) return;
  epoll_event ev{};
  ev.events = (c->read_closed ? 0u : (EPOLLIN | EPOLLRDHUP)) | (want ? EPOLLOUT : 0u);
  ev.data.fd = c->fd;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c->fd, &ev);
  c->epollout = want;
}

void Loop::CloseConn(Conn* c) {
  int fd = c->fd;
  ::close(fd);  // also removes it from the epoll set
  conns_[fd].reset();
}

void Loop::OnConnEvent(int fd, uint32_t events) {
  if (fd < 0 || static_cast<std::size_t>(fd) >= conns_.size() || !conns_[fd]) return;
  Conn* c = conns_[fd].get();
  if (events & EPOLLERR) {
    CloseConn(c);
    return;
  }
  if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) && !c->read_closed) {
    for (;;) {
      ssize_t r = ::recv(fd, read_buf_, sizeof(read_buf_), 0);
      if (r > 0) {
        if (c->in_pos == c->in.size()) {
          c->in.clear();
          c->in_pos = 0;
        }
        c->in.append(read_buf_, static_cast<std::size_t>(r));
        if (c->in.size() - c->in_pos > kMaxBufferedInput) {
          CloseConn(c);
          return;
        }
        if (static_cast<std::size_t>(r) < sizeof(read_buf_)) break;
        continue;
      }
      if (r == 0) {
        c->read_closed = true;
        epoll_event ev{};
        ev.events = c->epollout ? EPOLLOUT : 0u;
        ev.data.fd = fd;
        ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev);
        break;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      CloseConn(c);
      return;
    }
  }
  Process(c);
  if (!Flush(c)) return;
  if ((events & EPOLLHUP) && c->read_closed) {  // the peer is gone both ways
    CloseConn(c);
    return;
  }
  MaybeClose(c);
}

bool Loop::MaybeClose(Conn* c) {
  if (c->out_pos < c->out.size()) return true;  // still writing
  if (c->blocked) return true;                  // a delayed answer is due
  if (c->want_close || c->read_closed) {
    CloseConn(c);
    return false;
  }
  return true;
}

bool Loop::Flush(Conn* c) {
  while (c->out_pos < c->out.size()) {
    ssize_t w = ::send(c->fd, c->out.data() + c->out_pos, c->out.size() - c->out_pos, MSG_NOSIGNAL);
    if (w > 0) {
      c->out_pos += static_cast<std::size_t>(w);
      continue;
    }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      SetWantWrite(c, true);
      return true;
    }
    CloseConn(c);
    return false;
  }
  c->out.clear();
  c->out_pos = 0;
  SetWantWrite(c, false);
  return true;
}

void Loop::Process(Conn* c) {
  while (!c->blocked && !c->want_close) {
    // Keep the output bounded: wait for the peer to read before answering more.
    if (c->out.size() - c->out_pos > (4u << 20)) break;
    bool keep_alive = true;
    int parse_error = 0;
    if (!ParseOne(c, &keep_alive, &parse_error)) {
      if (parse_error != 0) {
        EmitSimple(c, parse_error, "bad request");
        c->want_close = true;
      }
      break;
    }
    server_->CountRequest();
    ServerResponse response;
    try {
      response = server_->handler()(c->request);
    } catch (const std::exception& e) {
      response = ServerResponse{};
      response.status = 500;
      response.body = std::string("{\"error\":\"handler threw\"}");
    } catch (...) {
      response = ServerResponse{};
      response.status = 500;
      response.body = std::string("{\"error\":\"handler threw\"}");
    }
    if (response.delay > Duration::zero() && response.fault != ServerResponse::Fault::kSlowBody) {
      c->blocked = true;
      c->pending = std::move(response);
      c->pending_keep_alive = keep_alive;
      // Counted from when the request was read, not from when the handler finished, so
      // that "50 ms of latency" is 50 ms as the client sees it.
      timers_.push(Timer{woke_at_ + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                        c->pending.delay),
                         c->fd, c->generation});
      break;
    }
    Emit(c, response, keep_alive);
  }
  if (c->in_pos > 0 && c->in_pos == c->in.size()) {
    c->in.clear();
    c->in_pos = 0;
  } else if (c->in_pos > 64 * 1024) {
    c->in.erase(0, c->in_pos);
    c->in_pos = 0;
  }
}

bool Loop::ParseOne(Conn* c, bool* keep_alive, int* parse_error) {
  std::string_view data(c->in);
  data.remove_prefix(c->in_pos);
  // Tolerate stray CRLFs between requests (RFC 9112 section 2.2).
  std::size_t skip = 0;
  while (skip + 1 < data.size() && data[skip] == '\r' && data[skip + 1] == '\n') skip += 2;
  data.remove_prefix(skip);
  std::size_t head_end = data.find("\r\n\r\n");
  if (head_end == std::string_view::npos) {
    if (data.size() > kMaxHeaderBytes) *parse_error = 431;
    if (c->read_closed && !data.empty()) *parse_error = 400;
    return false;
  }
  std::string_view head = data.substr(0, head_end);
  std::size_t line_end = head.find("\r\n");
  std::string_view line = head.substr(0, line_end);
  std::size_t sp1 = line.find(' ');
  std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp1 == std::string_view::npos || sp2 == std::string_view::npos || sp1 == 0) {
    *parse_error = 400;
    return false;
  }
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (target.empty() || version.size() != 8 || version.substr(0, 7) != "HTTP/1.") {
    *parse_error = 400;
    return false;
  }
  bool http10 = version[7] == '0';

  ServerRequest& req = c->request;
  req.method.assign(method);
  req.target.assign(target);
  std::size_t q = target.find('?');
  if (q == std::string_view::npos) {
    PercentDecode(target, &req.path);
    req.query.clear();
  } else {
    PercentDecode(target.substr(0, q), &req.path);
    req.query.assign(target.substr(q + 1));
  }
  req.headers.clear();
  std::size_t content_length = 0;
  bool chunked = false;
  bool conn_close = false;
  bool conn_keep_alive = false;
  std::string_view rest =
      line_end == std::string_view::npos ? std::string_view() : head.substr(line_end + 2);
  while (!rest.empty()) {
    std::size_t e = rest.find("\r\n");
    std::string_view h = rest.substr(0, e);
    rest = e == std::string_view::npos ? std::string_view() : rest.substr(e + 2);
    std::size_t colon = h.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      *parse_error = 400;
      return false;
    }
    std::string_view name = h.substr(0, colon);
    std::string_view value = h.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
      value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    HttpHeader& hh = req.headers.emplace_back();
    hh.name.assign(name);
    for (char& ch : hh.name) {
      if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
    }
    hh.value.assign(value);
    if (hh.name == "content-length") {
      uint64_t n = 0;
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (ec != std::errc() || p != value.data() + value.size() || value.empty()) {
        *parse_error = 400;
        return false;
      }
      if (n > kMaxBodyBytes) {
        *parse_error = 413;
        return false;
      }
      content_length = static_cast<std::size_t>(n);
    } else if (hh.name == "transfer-encoding") {
      chunked = true;
    } else if (hh.name == "connection") {
      if (HeaderHasToken(value, "close")) conn_close = true;
      if (HeaderHasToken(value, "keep-alive")) conn_keep_alive = true;
    }
  }
  if (chunked) {
    *parse_error = 411;  // request bodies must carry a Content-Length
    return false;
  }
  std::size_t total = skip + head_end + 4 + content_length;
  if (c->in.size() - c->in_pos < total) {
    if (c->read_closed) *parse_error = 400;
    return false;
  }
  req.body.assign(c->in, c->in_pos + skip + head_end + 4, content_length);
  c->in_pos += total;
  *keep_alive = !conn_close && (!http10 || conn_keep_alive);
  return true;
}

void Loop::AppendHead(Conn* c, const ServerResponse& r, std::size_t content_length,
                      bool keep_alive) {
  std::string& out = c->out;
  out.append("HTTP/1.1 ");
  AppendNumber(&out, static_cast<uint64_t>(r.status));
  out.push_back(' ');
  out.append(ReasonPhrase(r.status));
  out.append("\r\n");
  if (!r.content_type.empty()) {
    out.append("Content-Type: ");
    out.append(r.content_type);
    out.append("\r\n");
  }
  out.append("Content-Length: ");
  AppendNumber(&out, content_length);
  out.append(keep_alive ? "\r\nConnection: keep-alive\r\n" : "\r\nConnection: close\r\n");
  for (const auto& h : r.headers) {
    if (EqualsIgnoreCase(h.name, "content-length") || EqualsIgnoreCase(h.name, "connection") ||
        (!r.content_type.empty() && EqualsIgnoreCase(h.name, "content-type"))) {
      continue;
    }
    out.append(h.name);
    out.append(": ");
    out.append(h.value);
    out.append("\r\n");
  }
  out.append("\r\n");
}

void Loop::EmitSimple(Conn* c, int status, std::string_view message) {
  ServerResponse r;
  r.status = status;
  r.body.append("{\"error\":\"");
  r.body.append(message);
  r.body.append("\"}");
  AppendHead(c, r, r.body.size(), false);
  c->out.append(r.body);
}

void Loop::Emit(Conn* c, ServerResponse& r, bool keep_alive) {
  switch (r.fault) {
    case ServerResponse::Fault::kNone:
      AppendHead(c, r, r.body.size(), keep_alive);
      c->out.append(r.body);
      if (!keep_alive) c->want_close = true;
      return;
    case ServerResponse::Fault::kDropConnection:
      c->want_close = true;  // answers before this one are still flushed
      return;
    case ServerResponse::Fault::kTruncateBody: {
      if (r.body.size() < 2) r.body = "{}";
      AppendHead(c, r, r.body.size(), keep_alive);
      c->out.append(r.body, 0, r.body.size() / 2);
      c->want_close = true;
      return;
    }
    case ServerResponse::Fault::kSlowBody: {
      AppendHead(c, r, r.body.size(), keep_alive);
      if (r.body.empty()) {
        if (!keep_alive) c->want_close = true;
        return;
      }
      c->slow = true;
      c->blocked = true;
      c->pending_keep_alive = keep_alive;
      c->slow_body = std::move(r.body);
      c->slow_pos = 0;
      c->slow_piece =
          std::max<std::size_t>(1, (c->slow_body.size() + kSlowBodyPieces - 1) / kSlowBodyPieces);
      c->slow_interval = r.delay > Duration::zero() ? r.delay : kDefaultSlowInterval;
      SendSlowPiece(c);
      return;
    }
  }
}

// Appends the next piece of a slow body and schedules the one after it.
void Loop::SendSlowPiece(Conn* c) {
  std::size_t n = std::min(c->slow_piece, c->slow_body.size() - c->slow_pos);
  c->out.append(c->slow_body, c->slow_pos, n);
  c->slow_pos += n;
  if (c->slow_pos >= c->slow_body.size()) {
    c->slow = false;
    c->blocked = false;
    c->slow_body.clear();
    if (!c->pending_keep_alive) c->want_close = true;
    return;
  }
  timers_.push(
      Timer{std::chrono::steady_clock::now() +
                std::chrono::duration_cast<std::chrono::steady_clock::duration>(c->slow_interval),
            c->fd, c->generation});
}

void Loop::OnTimer(Conn* c) {
  if (c->slow) {
    SendSlowPiece(c);
  } else if (c->blocked) {
    c->blocked = false;
    ServerResponse r = std::move(c->pending);
    c->pending = ServerResponse{};
    Emit(c, r, c->pending_keep_alive);
  }
  Process(c);
  if (!Flush(c)) return;
  MaybeClose(c);
}

void Loop::FireTimers() {
  auto now = std::chrono::steady_clock::now();
  while (!timers_.empty() && timers_.top().when <= now) {
    Timer t = timers_.top();
    timers_.pop();
    if (t.fd < 0 || static_cast<std::size_t>(t.fd) >= conns_.size()) continue;
    Conn* c = conns_[t.fd].get();
    if (c == nullptr || c->generation != t.generation) continue;  // connection gone
    OnTimer(c);
  }
}

// Creates a non-blocking listening socket on host:port.
Result<int> Listen(const IpAddress& ip, uint16_t port, bool reuse_port) {
  int family = ip.is_v4() ? AF_INET : AF_INET6;
  int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return InternalError(std::string("socket: ") + std::strerror(errno));
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (reuse_port) ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  int rc;
  if (ip.is_v4()) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(ip.v4());
    rc = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  } else {
    sockaddr_in6 addr{};
    addr.sin6_family = AF_INET6;
    addr.sin6_port = htons(port);
    std::memcpy(&addr.sin6_addr, ip.bytes().data(), 16);
    rc = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  }
  if (rc != 0) {
    int err = errno;
    ::close(fd);
    std::string msg = "bind port " + std::to_string(port) + ": " + std::strerror(err);
    if (err == EADDRINUSE || err == EACCES) return UnavailableError(msg);
    return InternalError(msg);
  }
  if (::listen(fd, 1024) != 0) {
    int err = errno;
    ::close(fd);
    return UnavailableError(std::string("listen: ") + std::strerror(err));
  }
  return fd;
}

uint16_t BoundPort(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return 0;
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
}

}  // namespace

Result<std::unique_ptr<HttpServer>> HttpServer::Start(const ServerOptions& options,
                                                      Handler handler) {
  if (!handler) return InvalidArgumentError("HttpServer needs a handler");
  if (options.threads < 1 || options.threads > 64) {
    return InvalidArgumentError("HttpServer threads must be in [1, 64]");
  }
  std::string host = options.host == "localhost" ? "127.0.0.1" : options.host;
  auto ip = IpAddress::Parse(host);
  if (!ip.ok()) {
    return InvalidArgumentError("HttpServer host must be a loopback address, got '" + options.host +
                                "'");
  }
  IpAddress addr = ip->Unmapped();
  bool loopback = addr.is_v4() ? (addr.v4() >> 24) == 127 : addr == IpAddress::Parse("::1").value();
  if (!loopback) {
    return InvalidArgumentError("HttpServer listens on loopback only, refused '" + options.host +
                                "'");
  }
  bool reuse_port = options.threads > 1;
  std::vector<int> fds;
  uint16_t port = options.port;
  for (int i = 0; i < options.threads; ++i) {
    auto fd = Listen(addr, port, reuse_port);
    if (!fd.ok()) {
      for (int f : fds) ::close(f);
      return fd.status();
    }
    fds.push_back(*fd);
    if (i == 0) port = BoundPort(*fd);
  }
  auto server = std::make_unique<ServerImpl>(std::move(handler), addr.ToString(), port);
  for (int f : fds) server->loops_.push_back(std::make_unique<Loop>(server.get(), f));
  for (auto& loop : server->loops_) {
    Status s = loop->Init();
    if (!s.ok()) return s;  // ~ServerImpl closes every descriptor
  }
  for (auto& loop : server->loops_) loop->RunThread();
  return std::unique_ptr<HttpServer>(std::move(server));
}

}  // namespace enrichd::mock

#include "http/curl_http_client.h"

#include <curl/curl.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <mutex>
#include <utility>
#include <vector>

#include "http/native_http_transport.h"

namespace enrichd {
namespace {

// libcurl's global state is set up once per process and never torn down (tearing it down
// while another client, or another library, still uses libcurl would be unsafe).
CURLcode GlobalInitOnce() {
  static const CURLcode code = curl_global_init(CURL_GLOBAL_DEFAULT);
  return code;
}

long ToMillisRoundedUp(Duration d) {
  if (d <= Duration::zero()) return 1;  // 0 would mean "no timeout" to libcurl
  auto ms = std::chrono::ceil<std::chrono::milliseconds>(d).count();
  if (ms > 0x7fffffffLL) ms = 0x7fffffffLL;
  return static_cast<long>(ms);
}

bool HasLineBreak(std::string_view s) { return s.find_first_of("\r\n") != std::string_view::npos; }

std::string_view Trim(std::string_view s) {
  size_t begin = 0;
  size_t end = s.size();
  while (begin < end && (s[begin] == ' ' || s[begin] == '\t')) ++begin;
  while (end > begin &&
         (s[end - 1] == ' ' || s[end - 1] == '\t' || s[end - 1] == '\r' || s[end - 1] == '\n')) {
    --end;
  }
  return s.substr(begin, end - begin);
}

TransportError MapCurlError(CURLcode code) {
  switch (code) {
    case CURLE_OK:
      return TransportError::kNone;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
      return TransportError::kConnect;
    case CURLE_OPERATION_TIMEDOUT:
      return TransportError::kTimeout;
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_HTTP3:
    case CURLE_WEIRD_SERVER_REPLY:
      return TransportError::kReceive;
    case CURLE_FILESIZE_EXCEEDED:
      return TransportError::kResponseTooLarge;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CLIENTCERT:
    case CURLE_USE_SSL_FAILED:
      return TransportError::kTls;
    default:
      return TransportError::kOther;
  }
}

struct PendingRequest {
  HttpRequest request;
  HttpClient::Callback done;
  MonoTime submitted_at;
};

// One transfer: a pooled easy handle and what belongs to the request it carries.
struct Transfer {
  CURL* easy = nullptr;
  bool used_before = false;
  HttpClient::Callback done;
  HttpResponse response;
  std::string request_body;  // CURLOPT_POSTFIELDS points into it: lives as long as the transfer
  curl_slist* request_headers = nullptr;
  std::size_t max_response_bytes = 0;
  bool too_large = false;
  MonoTime submitted_at{};
  std::size_t in_flight_index = 0;
  char error_buffer[CURL_ERROR_SIZE] = {};

  ~Transfer() {
    curl_slist_free_all(request_headers);
    if (easy != nullptr) curl_easy_cleanup(easy);
  }
};

// CURLOPT_WRITEFUNCTION. Returning less than `size * nmemb` aborts the transfer.
size_t OnBody(char* data, size_t size, size_t nmemb, void* user) noexcept {
  auto* t = static_cast<Transfer*>(user);
  const size_t n = size * nmemb;
  std::string& body = t->response.body;
  if (n > t->max_response_bytes - std::min(body.size(), t->max_response_bytes)) {
    t->too_large = true;
    return 0;
  }
  try {
    if (body.empty()) {
      curl_off_t length = -1;
      if (curl_easy_getinfo(t->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length) == CURLE_OK &&
          length > 0 && static_cast<uint64_t>(length) <= t->max_response_bytes) {
        body.reserve(static_cast<size_t>(length));
      }
    }
    body.append(data, n);
  } catch (...) {  // out of memory: abort this transfer, never throw into libcurl
    return 0;
  }
  return n;
}

// CURLOPT_HEADERFUNCTION: one complete header line per call, CRLF included.
size_t OnHeader(char* data, size_t size, size_t nmemb, void* user) noexcept {
  auto* t = static_cast<Transfer*>(user);
  const size_t n = size * nmemb;
  std::string_view line(data, n);
  try {
    auto& headers = t->response.headers;
    if (line.size() >= 5 && line.compare(0, 5, "HTTP/") == 0) {
      headers.clear();  // a new response begins (after a 1xx or a followed redirect)
      return n;
    }
    if (!line.empty() && (line[0] == ' ' || line[0] == '\t')) {  // obsolete line folding
      std::string_view more = Trim(line);
      if (!headers.empty() && !more.empty()) {
        auto& value = headers.back().value;
        if (!value.empty()) value.push_back(' ');
        value.append(more);
      }
      return n;
    }
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return n;  // blank line or garbage
    HttpHeader header;
    std::string_view name = Trim(line.substr(0, colon));
    header.name.resize(name.size());
    std::transform(name.begin(), name.end(), header.name.begin(), [](char c) {
      return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    });
    header.value = std::string(Trim(line.substr(colon + 1)));
    headers.push_back(std::move(header));
  } catch (...) {
    return 0;  // out of memory: abort
  }
  return n;
}

}  // namespace

class CurlHttpClient::Impl {
 public:
  explicit Impl(CurlHttpClientOptions options)
      : options_(std::move(options)),
        clock_(options_.clock != nullptr ? options_.clock : &SystemClock::Instance()) {}

  ~Impl() {
    Shutdown();
    native_.reset();  // closes its connections while the epoll descriptor is open
    in_flight_.clear();
    pool_.clear();                                      // easy handles go before the multi handle
    if (multi_ != nullptr) curl_multi_cleanup(multi_);  // may still report sockets: epoll last
    if (wake_fd_ >= 0) close(wake_fd_);
    if (epoll_fd_ >= 0) close(epoll_fd_);
  }

  Status Init() {
    if (options_.max_total_connections < 0 || options_.max_host_connections < 0 ||
        options_.max_idle_connections < 0 || options_.max_redirects < 0) {
      return InvalidArgumentError("http client: connection and redirect limits must be >= 0");
    }
    if (GlobalInitOnce() != CURLE_OK) return InternalError("http client: curl_global_init failed");
    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (epoll_fd_ < 0 || wake_fd_ < 0) return InternalError("http client: epoll/eventfd failed");
    epoll_event wake_event{};
    wake_event.events = EPOLLIN;
    wake_event.data.fd = wake_fd_;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &wake_event) != 0) {
      return InternalError("http client: epoll_ctl failed");
    }
    multi_ = curl_multi_init();
    if (multi_ == nullptr) return InternalError("http client: curl_multi_init failed");
    // libcurl tells which sockets to watch and when its next timer is due; the I/O thread
    // waits on them with epoll and hands back only the sockets that are ready.
    curl_multi_setopt(multi_, CURLMOPT_SOCKETFUNCTION, &Impl::OnSocket);
    curl_multi_setopt(multi_, CURLMOPT_SOCKETDATA, this);
    curl_multi_setopt(multi_, CURLMOPT_TIMERFUNCTION, &Impl::OnTimer);
    curl_multi_setopt(multi_, CURLMOPT_TIMERDATA, this);
    curl_multi_setopt(multi_, CURLMOPT_MAX_TOTAL_CONNECTIONS,
                      static_cast<long>(options_.max_total_connections));
    curl_multi_setopt(multi_, CURLMOPT_MAX_HOST_CONNECTIONS,
                      static_cast<long>(options_.max_host_connections));
    curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS,
                      static_cast<long>(options_.max_idle_connections));
    max_age_seconds_ = std::max<long>(
        1, static_cast<long>(
               std::chrono::duration_cast<std::chrono::seconds>(options_.max_idle_connection_age)
                   .count()));
    if (options_.native_http) {
      proxy_rule_ = http_internal::ProxyRule::FromEnvironment();
      http_internal::NativeOptions native;
      native.max_total_connections = options_.max_total_connections;
      native.max_host_connections = options_.max_host_connections;
      native.max_idle_connections = options_.max_idle_connections;
      native.max_idle_connection_age = options_.max_idle_connection_age;
      native.user_agent = options_.user_agent;
      native_ = std::make_unique<http_internal::NativeHttpTransport>(
          epoll_fd_, std::move(native), clock_,
          [this](Callback& done, HttpResponse&& response) { Invoke(done, std::move(response)); },
          [this] { Wake(); });
    }
    if (!options_.own_io_thread) return Status::Ok();  // driven: Poll() runs the loop
    try {
      thread_ = std::thread([this] { Run(); });
    } catch (const std::exception& e) {
      return InternalError(std::string("http client: cannot start the I/O thread: ") + e.what());
    }
    return Status::Ok();
  }

  void Submit(HttpRequest request, Callback done) {
    submitted_.fetch_add(1, std::memory_order_relaxed);
    const MonoTime now = clock_->Now();
    bool wake = false;
    {
      std::unique_lock lock(mutex_);
      if (!stopping_) {
        pending_.push_back(PendingRequest{std::move(request), std::move(done), now});
        // One wake-up per batch: the I/O thread takes the whole queue at once and checks it
        // again before it waits, so Submit() from a callback needs no wake-up either.
        if (!wake_requested_ && std::this_thread::get_id() != io_thread_id_) {
          wake_requested_ = true;
          wake = true;
        }
        lock.unlock();
        if (wake) Wake();
        return;
      }
    }
    HttpResponse response;
    response.error = TransportError::kCancelled;
    response.error_message = "http client is shut down";
    Invoke(done, std::move(response));
  }

  void Shutdown() {
    {
      std::lock_guard lock(mutex_);
      if (!stopping_) {
        stopping_ = true;
        if (thread_.joinable()) Wake();
      }
      if (!options_.own_io_thread) {
        // Driven: the caller is the driver or no Poll() runs. From a callback (inside
        // Poll()), the rest is cancelled when that turn ends.
        if (in_turn_) return;
      } else if (std::this_thread::get_id() == io_thread_id_) {
        // From a callback: the I/O thread cannot join itself. It cancels the rest as soon
        // as the callback returns; the destructor (called elsewhere) joins it.
        return;
      }
    }
    if (!options_.own_io_thread) {
      CancelEverything();
      return;
    }
    std::lock_guard join_lock(join_mutex_);
    if (thread_.joinable()) thread_.join();
  }

  // Driven clients: one turn of the loop on the caller's thread.
  void Poll(Duration max_wait) {
    if (options_.own_io_thread) return;
    {
      std::lock_guard lock(mutex_);
      io_thread_id_ = std::this_thread::get_id();
      in_turn_ = true;
    }
    const bool more = Turn(std::chrono::steady_clock::now() +
                           std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                               std::max<Duration>(max_wait, Duration::zero())));
    bool stop = false;
    {
      std::lock_guard lock(mutex_);
      in_turn_ = false;
      stop = stopping_;
    }
    if (!more || stop) CancelEverything();
  }

  bool own_io_thread() const { return options_.own_io_thread; }

  Stats stats() const {
    Stats s;
    s.submitted = submitted_.load(std::memory_order_relaxed);
    s.completed = completed_.load(std::memory_order_relaxed);
    s.in_flight = in_flight_count_.load(std::memory_order_relaxed) +
                  (native_ != nullptr ? native_->in_flight() : 0);
    s.native_requests = native_requests_.load(std::memory_order_relaxed);
    return s;
  }

  std::thread::id io_thread_id() const {
    std::lock_guard lock(mutex_);
    return io_thread_id_;
  }

  void Wake() {
    const uint64_t one = 1;
    // EAGAIN (counter saturated) still leaves the eventfd readable: nothing to do.
    [[maybe_unused]] ssize_t n = write(wake_fd_, &one, sizeof one);
  }

 private:
  // CURLMOPT_SOCKETFUNCTION: start, change or stop watching a socket. The events watched
  // per descriptor are remembered, so that a repeated request costs no system call.
  static int OnSocket(CURL* /*easy*/, curl_socket_t fd, int what, void* user,
                      void* /*socketp*/) noexcept {
    auto* self = static_cast<Impl*>(user);
    if (fd < 0) return 0;
    auto& watched = self->watched_events_;
    if (what == CURL_POLL_REMOVE) {
      epoll_ctl(self->epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);  // may be closed already
      if (static_cast<size_t>(fd) < watched.size()) watched[fd] = 0;
      return 0;
    }
    epoll_event ev{};
    ev.data.fd = fd;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT) ev.events |= EPOLLIN;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT) ev.events |= EPOLLOUT;
    try {
      if (static_cast<size_t>(fd) >= watched.size()) watched.resize(fd + 64, 0);
    } catch (...) {
      return -1;  // out of memory: libcurl fails the transfer
    }
    if (watched[fd] == ev.events) return 0;
    int op = watched[fd] == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
    if (epoll_ctl(self->epoll_fd_, op, fd, &ev) != 0) {
      // A descriptor closed and reused behind our back, or registered already: retry.
      op = (errno == EEXIST) ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
      if (epoll_ctl(self->epoll_fd_, op, fd, &ev) != 0) return -1;
    }
    watched[fd] = ev.events;
    return 0;
  }

  // CURLMOPT_TIMERFUNCTION: libcurl wants CURL_SOCKET_TIMEOUT after timeout_ms (-1: never).
  static int OnTimer(CURLM* /*multi*/, long timeout_ms, void* user) noexcept {
    auto* self = static_cast<Impl*>(user);
    if (timeout_ms < 0) {
      self->timer_armed_ = false;
    } else {
      self->timer_armed_ = true;
      self->timer_due_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    }
    return 0;
  }

  // When the loop must next act by itself: libcurl's timer or the native transport's next
  // deadline, at most 1 s from now.
  std::chrono::steady_clock::time_point NextDue(std::chrono::steady_clock::time_point now) const {
    auto due = now + std::chrono::seconds(1);
    if (timer_armed_) due = std::min(due, timer_due_);
    if (native_ != nullptr) due = std::min(due, native_->NextDeadline());
    return due;
  }

  void Run() {
    {
      std::lock_guard lock(mutex_);
      io_thread_id_ = std::this_thread::get_id();
    }
    pthread_setname_np(pthread_self(), "enrichd-http");
    while (Turn(std::chrono::steady_clock::time_point::max())) {
    }
    CancelEverything();
  }

  // One turn of the I/O loop: starts the submitted requests, waits for I/O until the next
  // deadline (or `until`, or a wake-up), handles what is ready and runs the callbacks of
  // the finished transfers. False, at once, when the client is shutting down.
  bool Turn(std::chrono::steady_clock::time_point until) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return false;
      turn_batch_.swap(pending_);
      wake_requested_ = false;
    }
    for (auto& p : turn_batch_) Start(std::move(p));
    turn_batch_.clear();

    const auto now = std::chrono::steady_clock::now();
    int64_t wait_ns = std::max<int64_t>(
        0, std::chrono::duration_cast<std::chrono::nanoseconds>(std::min(NextDue(now), until) - now)
               .count());
    {
      std::lock_guard lock(mutex_);
      if (stopping_ || !pending_.empty()) wait_ns = 0;  // new work arrived: no waiting
    }
    constexpr int kMaxEvents = 256;
    epoll_event events[kMaxEvents];
    // To the microsecond where the kernel can (epoll_pwait2, Linux 5.11): a driven loop
    // also waits for its user's own deadlines (e.g. the next rate-limit token).
    timespec wait{static_cast<time_t>(wait_ns / 1'000'000'000),
                  static_cast<long>(wait_ns % 1'000'000'000)};
    int n = epoll_pwait2(epoll_fd_, events, kMaxEvents, &wait, nullptr);
    if (n < 0 && errno == ENOSYS) {  // older kernels: whole milliseconds, rounded up
      n = epoll_wait(epoll_fd_, events, kMaxEvents,
                     static_cast<int>((wait_ns + 999'999) / 1'000'000));
    }
    int running = 0;
    for (int i = 0; i < n; ++i) {
      const uint64_t data = events[i].data.u64;
      if (data & http_internal::NativeHttpTransport::kEpollTag) {
        native_->OnEvent(data, events[i].events);
        continue;
      }
      const int fd = static_cast<int>(data);
      if (fd == wake_fd_) {
        uint64_t count = 0;
        [[maybe_unused]] ssize_t r = read(wake_fd_, &count, sizeof count);
        continue;
      }
      int flags = 0;
      if (events[i].events & EPOLLIN) flags |= CURL_CSELECT_IN;
      if (events[i].events & EPOLLOUT) flags |= CURL_CSELECT_OUT;
      if (events[i].events & (EPOLLERR | EPOLLHUP)) flags |= CURL_CSELECT_ERR;
      curl_multi_socket_action(multi_, fd, flags, &running);
    }
    if (timer_armed_ && std::chrono::steady_clock::now() >= timer_due_) {
      timer_armed_ = false;
      curl_multi_socket_action(multi_, CURL_SOCKET_TIMEOUT, 0, &running);
    }
    CompleteFinished();
    if (native_ != nullptr) {
      native_->DrainResolved();
      native_->CheckDeadlines(std::chrono::steady_clock::now());
      native_->Pump();
      native_->Collect();
    }
    return true;
  }

  // Takes a pooled transfer, sets it up for `p` and hands it to libcurl. On failure the
  // request completes at once.
  void Start(PendingRequest&& p) {
    for (const auto& h : p.request.headers) {
      if (HasLineBreak(h.name) || HasLineBreak(h.value) || h.name.empty() ||
          h.name.find(':') != std::string::npos) {
        Fail(std::move(p), TransportError::kOther, "invalid request header name or value");
        return;
      }
    }
    if (HasLineBreak(p.request.method) || p.request.method.empty()) {
      Fail(std::move(p), TransportError::kOther, "invalid request method");
      return;
    }
    http_internal::NativeTarget target;
    if (native_ != nullptr && !p.request.follow_redirects &&
        p.request.method.find_first_of(" \t") == std::string::npos &&
        http_internal::ParseNativeTarget(p.request.url, &target) &&
        !proxy_rule_.Applies(target.host)) {
      native_requests_.fetch_add(1, std::memory_order_relaxed);
      native_->Start(std::move(p.request), target, std::move(p.done), p.submitted_at);
      return;
    }
    std::unique_ptr<Transfer> t;
    if (!pool_.empty()) {
      t = std::move(pool_.back());
      pool_.pop_back();
    } else {
      t = std::make_unique<Transfer>();
      t->easy = curl_easy_init();
      if (t->easy == nullptr || ConfigureHandle(*t) != CURLE_OK) {
        Fail(std::move(p), TransportError::kOther, "cannot set up a curl easy handle");
        return;
      }
    }
    t->done = std::move(p.done);
    t->submitted_at = p.submitted_at;
    t->max_response_bytes = p.request.max_response_bytes;
    t->request_body = std::move(p.request.body);
    const CURLcode setup = Configure(*t, p.request);
    if (setup != CURLE_OK) {
      Finish(std::move(t), TransportError::kOther, curl_easy_strerror(setup));
      return;
    }
    if (curl_multi_add_handle(multi_, t->easy) != CURLM_OK) {
      Finish(std::move(t), TransportError::kOther, "curl_multi_add_handle failed");
      return;
    }
    t->in_flight_index = in_flight_.size();
    in_flight_.push_back(std::move(t));
    in_flight_count_.store(in_flight_.size(), std::memory_order_relaxed);
  }

  // Options that stay the same for every request a pooled handle carries: set once.
  CURLcode ConfigureHandle(Transfer& t) {
    CURL* e = t.easy;
    CURLcode rc = CURLE_OK;
    auto set = [&rc](CURLcode c) {
      if (rc == CURLE_OK) rc = c;
    };
    set(curl_easy_setopt(e, CURLOPT_PRIVATE, &t));
    set(curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t.error_buffer));
    set(curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https"));
    set(curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https"));
    set(curl_easy_setopt(e, CURLOPT_MAXREDIRS, static_cast<long>(options_.max_redirects)));
    set(curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L));
    set(curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &OnBody));
    set(curl_easy_setopt(e, CURLOPT_WRITEDATA, &t));
    set(curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &OnHeader));
    set(curl_easy_setopt(e, CURLOPT_HEADERDATA, &t));
    set(curl_easy_setopt(e, CURLOPT_MAXAGE_CONN, max_age_seconds_));
    set(curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L));
    // Verification stays on (libcurl's default); said explicitly, and never turned off.
    set(curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L));
    set(curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L));
    if (!options_.ca_info.empty())
      set(curl_easy_setopt(e, CURLOPT_CAINFO, options_.ca_info.c_str()));
    if (!options_.user_agent.empty()) {
      set(curl_easy_setopt(e, CURLOPT_USERAGENT, options_.user_agent.c_str()));
    }
    // Proxy options are left alone: libcurl then reads http_proxy/https_proxy/no_proxy.
    return rc;
  }

  // Per-request options. Every option a request may change is set (or undone) here, so
  // nothing of a handle's previous request carries over; the handle is not curl_easy_reset.
  CURLcode Configure(Transfer& t, const HttpRequest& request) {
    CURL* e = t.easy;
    t.error_buffer[0] = '\0';
    CURLcode rc = CURLE_OK;
    auto set = [&rc](CURLcode c) {
      if (rc == CURLE_OK) rc = c;
    };
    set(curl_easy_setopt(e, CURLOPT_URL, request.url.c_str()));
    set(curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, ToMillisRoundedUp(request.connect_timeout)));
    set(curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, ToMillisRoundedUp(request.timeout)));
    const curl_off_t max_file_size =
        request.max_response_bytes <= static_cast<uint64_t>(INT64_MAX)
            ? static_cast<curl_off_t>(request.max_response_bytes)
            : 0;  // 0: no limit from Content-Length; OnBody still counts
    set(curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, max_file_size));
    set(curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, request.follow_redirects ? 1L : 0L));

    if (t.used_before) {  // undo the previous request's method, body and headers
      set(curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, nullptr));
      set(curl_easy_setopt(e, CURLOPT_POSTFIELDS, nullptr));
      set(curl_easy_setopt(e, CURLOPT_HTTPHEADER, nullptr));
      set(curl_easy_setopt(e, CURLOPT_HTTPGET, 1L));  // GET, no body, no upload
    }
    t.used_before = true;

    // Method and body.
    const std::string& method = request.method;
    const bool has_body = !t.request_body.empty();
    if (method == "GET" && !has_body) {
      set(curl_easy_setopt(e, CURLOPT_HTTPGET, 1L));
      set(curl_easy_setopt(e, CURLOPT_NOBODY, 0L));
    } else if (method == "HEAD" && !has_body) {
      set(curl_easy_setopt(e, CURLOPT_NOBODY, 1L));
    } else {
      if (method == "POST" || has_body) {
        set(curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                             static_cast<curl_off_t>(t.request_body.size())));
        set(curl_easy_setopt(e, CURLOPT_POSTFIELDS, t.request_body.data()));
      }
      if (method != "POST") set(curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method.c_str()));
    }

    // Request headers. "Expect:" stops libcurl from waiting for a 100-continue.
    curl_slist_free_all(t.request_headers);
    t.request_headers = nullptr;
    std::string line;
    for (const auto& h : request.headers) {
      line.assign(h.name);
      if (h.value.empty()) {
        line.push_back(';');  // libcurl's way to send a header with an empty value
      } else {
        line.append(": ");
        line.append(h.value);
      }
      curl_slist* next = curl_slist_append(t.request_headers, line.c_str());
      if (next == nullptr) return CURLE_OUT_OF_MEMORY;
      t.request_headers = next;
    }
    if (has_body) {
      curl_slist* next = curl_slist_append(t.request_headers, "Expect:");
      if (next == nullptr) return CURLE_OUT_OF_MEMORY;
      t.request_headers = next;
    }
    if (t.request_headers != nullptr) {
      set(curl_easy_setopt(e, CURLOPT_HTTPHEADER, t.request_headers));
    }
    return rc;
  }

  void CompleteFinished() {
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi_, &left)) {
      if (msg->msg != CURLMSG_DONE) continue;
      CURL* easy = msg->easy_handle;
      const CURLcode result = msg->data.result;
      Transfer* raw = nullptr;
      curl_easy_getinfo(easy, CURLINFO_PRIVATE, &raw);
      if (raw == nullptr) continue;
      std::unique_ptr<Transfer> t = TakeInFlight(raw);
      if (result == CURLE_OK) {
        long status = 0;
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
        t->response.status = static_cast<int>(status);
        Finish(std::move(t), TransportError::kNone, {});
      } else {
        TransportError error = MapCurlError(result);
        if (t->too_large) error = TransportError::kResponseTooLarge;
        std::string message = t->error_buffer[0] != '\0' ? std::string(t->error_buffer)
                                                         : std::string(curl_easy_strerror(result));
        if (error == TransportError::kResponseTooLarge) {
          message = "response body over " + std::to_string(t->max_response_bytes) + " bytes";
        }
        Finish(std::move(t), error, std::move(message));
      }
    }
  }

  // Removes a transfer from libcurl and from the in-flight list; the caller owns it.
  std::unique_ptr<Transfer> TakeInFlight(Transfer* raw) {
    curl_multi_remove_handle(multi_, raw->easy);
    const std::size_t i = raw->in_flight_index;
    std::unique_ptr<Transfer> t = std::move(in_flight_[i]);
    if (i + 1 != in_flight_.size()) {
      in_flight_[i] = std::move(in_flight_.back());
      in_flight_[i]->in_flight_index = i;
    }
    in_flight_.pop_back();
    in_flight_count_.store(in_flight_.size(), std::memory_order_relaxed);
    return t;
  }

  // Completes a transfer: builds the response, returns the handle to the pool, then runs
  // the callback.
  void Finish(std::unique_ptr<Transfer> t, TransportError error, std::string message) {
    HttpResponse response = http_internal::FinishedResponse(
        std::move(t->response), error, std::move(message), clock_->Now() - t->submitted_at);
    Callback done = std::move(t->done);
    Recycle(std::move(t));
    Invoke(done, std::move(response));
  }

  void Fail(PendingRequest&& p, TransportError error, std::string message) {
    HttpResponse response;
    response.error = error;
    response.error_message = std::move(message);
    response.elapsed = clock_->Now() - p.submitted_at;
    Invoke(p.done, std::move(response));
  }

  void Recycle(std::unique_ptr<Transfer> t) {
    t->done = nullptr;
    t->response = HttpResponse();
    t->too_large = false;
    std::string().swap(t->request_body);
    if (pool_.size() < options_.max_pooled_handles) pool_.push_back(std::move(t));
  }

  void Invoke(Callback& done, HttpResponse&& response) {
    completed_.fetch_add(1, std::memory_order_relaxed);
    if (!done) return;
    try {
      done(std::move(response));
    } catch (const std::exception& e) {
      std::fprintf(stderr, "enrichd http: a completion callback threw: %s\n", e.what());
    } catch (...) {
      std::fprintf(stderr, "enrichd http: a completion callback threw\n");
    }
  }

  // On the I/O thread at shutdown: everything in flight or queued ends with kCancelled.
  void CancelEverything() {
    if (native_ != nullptr) native_->CancelAll("http client shut down");
    while (!in_flight_.empty()) {
      Transfer* raw = in_flight_.back().get();
      Finish(TakeInFlight(raw), TransportError::kCancelled, "http client shut down");
    }
    for (;;) {
      std::vector<PendingRequest> batch;
      {
        std::lock_guard lock(mutex_);
        batch.swap(pending_);
      }
      if (batch.empty()) break;
      for (auto& p : batch) {
        Fail(std::move(p), TransportError::kCancelled, "http client shut down");
      }
    }
  }

  const CurlHttpClientOptions options_;
  const Clock* const clock_;
  CURLM* multi_ = nullptr;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;  // eventfd: Submit() and Shutdown() wake the I/O thread through it
  std::vector<uint32_t> watched_events_;  // by descriptor; I/O thread only
  bool timer_armed_ = false;              // I/O thread only (libcurl calls OnTimer on it)
  std::chrono::steady_clock::time_point timer_due_{};
  long max_age_seconds_ = 60;
  std::thread thread_;
  std::mutex join_mutex_;

  mutable std::mutex mutex_;  // guards the fields below
  std::vector<PendingRequest> pending_;
  bool stopping_ = false;
  bool wake_requested_ = false;
  bool in_turn_ = false;  // a driven client's Poll() is running
  std::thread::id io_thread_id_;

  // I/O thread only.
  std::vector<PendingRequest> turn_batch_;  // the requests a turn starts
  std::vector<std::unique_ptr<Transfer>> in_flight_;
  std::vector<std::unique_ptr<Transfer>> pool_;

  std::atomic<uint64_t> submitted_{0};
  std::atomic<uint64_t> completed_{0};
  std::atomic<uint64_t> in_flight_count_{0};
  std::atomic<uint64_t> native_requests_{0};

  // Plain-http transport (nullptr when options_.native_http is off); I/O thread only,
  // apart from in_flight().
  std::unique_ptr<http_internal::NativeHttpTransport> native_;
  http_internal::ProxyRule proxy_rule_;
};

Result<std::unique_ptr<CurlHttpClient>> CurlHttpClient::Create(CurlHttpClientOptions options) {
  auto impl = std::make_unique<Impl>(std::move(options));
  Status status = impl->Init();
  if (!status.ok()) return status;
  return std::unique_ptr<CurlHttpClient>(new CurlHttpClient(std::move(impl)));
}

CurlHttpClient::CurlHttpClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

CurlHttpClient::~CurlHttpClient() = default;

void CurlHttpClient::Submit(HttpRequest request, Callback done) {
  impl_->Submit(std::move(request), std::move(done));
}

void CurlHttpClient::Shutdown() { impl_->Shutdown(); }

bool CurlHttpClient::driven() const { return !impl_->own_io_thread(); }

void CurlHttpClient::Poll(Duration max_wait) { impl_->Poll(max_wait); }

void CurlHttpClient::Wake() { impl_->Wake(); }

CurlHttpClient::Stats CurlHttpClient::stats() const { return impl_->stats(); }

std::thread::id CurlHttpClient::io_thread_id() const { return impl_->io_thread_id(); }

}  // namespace enrichd

// RawClient: a tiny blocking HTTP/1.1 client over one loopback TCP connection, for the
// mock provider's own tests (no libcurl). Test-only; failures surface as gtest failures or
// as Response::complete == false.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdint>
#include <map>
#include <string>

#include "gtest/gtest.h"

namespace enrichd::mock {

// A blocking test client: one TCP connection to 127.0.0.1:port.
class RawClient {
 public:
  explicit RawClient(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    timeval tv{};
    tv.tv_sec = 20;  // a hung server fails the test instead of hanging it
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  ~RawClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool connected() const { return connected_; }

  void Send(const std::string& data) {
    std::size_t off = 0;
    while (off < data.size()) {
      ssize_t w = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      ASSERT_GT(w, 0);
      off += static_cast<std::size_t>(w);
    }
  }

  // Reads more bytes into buf_; false on EOF or error.
  bool ReadMore() {
    char tmp[65536];
    ssize_t r = ::recv(fd_, tmp, sizeof(tmp), 0);
    if (r <= 0) return false;
    buf_.append(tmp, static_cast<std::size_t>(r));
    return true;
  }

  // True when data (or EOF) is ready within `ms`.
  bool Readable(int ms) {
    pollfd p{fd_, POLLIN, 0};
    return ::poll(&p, 1, ms) > 0;
  }

  struct Response {
    bool complete = false;  // false: the connection ended before a whole response
    int status = 0;
    std::map<std::string, std::string> headers;  // lower-cased names
    std::string body;
    std::size_t announced_length = 0;
  };

  // Reads exactly one response (Content-Length framed).
  Response ReadResponse() {
    Response r;
    std::size_t head_end;
    while ((head_end = buf_.find("\r\n\r\n")) == std::string::npos) {
      if (!ReadMore()) return r;
    }
    std::string head = buf_.substr(0, head_end);
    std::size_t line_end = head.find("\r\n");
    std::string status_line = head.substr(0, line_end);
    r.status = std::stoi(status_line.substr(9, 3));
    std::size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
    while (pos < head.size()) {
      std::size_t e = head.find("\r\n", pos);
      if (e == std::string::npos) e = head.size();
      std::string h = head.substr(pos, e - pos);
      std::size_t colon = h.find(':');
      std::string name = h.substr(0, colon);
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      std::string value = h.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      r.headers[name] = value;
      pos = e + 2;
    }
    r.announced_length = std::stoul(r.headers["content-length"]);
    std::size_t need = head_end + 4 + r.announced_length;
    while (buf_.size() < need) {
      if (!ReadMore()) {
        r.body = buf_.substr(head_end + 4);
        buf_.clear();
        return r;
      }
    }
    r.body = buf_.substr(head_end + 4, r.announced_length);
    buf_.erase(0, need);
    r.complete = true;
    return r;
  }

  // True when the server closed the connection with nothing more to read: an orderly close
  // (EOF), or a reset (a socket closed with unread input, e.g. a request still arriving,
  // is reset by the kernel).
  bool AtEof() {
    if (!buf_.empty()) return false;
    char c;
    const ssize_t n = ::recv(fd_, &c, 1, 0);
    return n == 0 || (n < 0 && errno == ECONNRESET);
  }

  std::string& buffered() { return buf_; }

 private:
  int fd_ = -1;
  bool connected_ = false;
  std::string buf_;
};

}  // namespace enrichd::mock

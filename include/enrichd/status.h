// Status and Result<T>: errors as values at module boundaries.
//
// Every fallible call that crosses a layer returns a Status (or a Result<T> holding
// either a value or a non-ok Status). Each code says what the caller may do about it;
// no exception crosses a layer boundary or a C callback. Thread-compatible values.
#pragma once

#include <cassert>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace enrichd {

enum class StatusCode {
  kOk = 0,
  // The caller passed something wrong (bad config value, malformed input). Do not retry.
  kInvalidArgument,
  // The thing asked for does not exist. Do not retry.
  kNotFound,
  // Creating something that already exists. Usually harmless.
  kAlreadyExists,
  // The system is not in a state to do this (e.g. a database from a newer version). Fix, then
  // retry.
  kFailedPrecondition,
  // Temporarily unavailable (network, lock, busy database). Retrying later can help.
  kUnavailable,
  // A deadline passed before the work finished. Retrying with more time can help.
  kDeadlineExceeded,
  // A quota or rate limit is exhausted. Retry after the reset time.
  kResourceExhausted,
  // Credentials missing or refused. Do not retry until configuration changes.
  kUnauthenticated,
  kPermissionDenied,
  // The operation was cancelled by its caller (shutdown). Not an error of the callee.
  kCancelled,
  // Stored data is corrupt or unreadable. Do not retry.
  kDataLoss,
  // A bug or an unexpected failure of a dependency.
  kInternal,
};

std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // ok
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "CODE: message", or "OK".
  std::string ToString() const;

  // Returns a copy whose message is "context: message".
  Status WithContext(std::string_view context) const;

  friend bool operator==(const Status& a, const Status& b) {
    return a.code_ == b.code_ && a.message_ == b.message_;
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

std::ostream& operator<<(std::ostream& os, const Status& status);

inline Status InvalidArgumentError(std::string msg) {
  return {StatusCode::kInvalidArgument, std::move(msg)};
}
inline Status NotFoundError(std::string msg) { return {StatusCode::kNotFound, std::move(msg)}; }
inline Status FailedPreconditionError(std::string msg) {
  return {StatusCode::kFailedPrecondition, std::move(msg)};
}
inline Status UnavailableError(std::string msg) {
  return {StatusCode::kUnavailable, std::move(msg)};
}
inline Status DeadlineExceededError(std::string msg) {
  return {StatusCode::kDeadlineExceeded, std::move(msg)};
}
inline Status ResourceExhaustedError(std::string msg) {
  return {StatusCode::kResourceExhausted, std::move(msg)};
}
inline Status CancelledError(std::string msg) { return {StatusCode::kCancelled, std::move(msg)}; }
inline Status DataLossError(std::string msg) { return {StatusCode::kDataLoss, std::move(msg)}; }
inline Status InternalError(std::string msg) { return {StatusCode::kInternal, std::move(msg)}; }

// Result<T> holds a T or a non-ok Status. Constructing it from an ok Status is a bug
// (asserted in debug builds, turned into kInternal otherwise).
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}        // NOLINT(google-explicit-constructor)
  Result(Status status) : value_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    assert(!std::get<Status>(value_).ok());
    if (std::get<Status>(value_).ok()) {
      value_ = Status(StatusCode::kInternal, "Result constructed from an ok Status");
    }
  }

  bool ok() const { return std::holds_alternative<T>(value_); }
  // The error, or an ok Status when a value is held.
  Status status() const { return ok() ? Status::Ok() : std::get<Status>(value_); }

  T& value() & {
    assert(ok());
    return std::get<T>(value_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<T>(value_);
  }
  T&& value() && {
    assert(ok());
    return std::get<T>(std::move(value_));
  }
  T value_or(T fallback) const { return ok() ? std::get<T>(value_) : std::move(fallback); }

  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> value_;
};

}  // namespace enrichd

// Propagates a non-ok Status from an expression returning Status.
#define ENRICHD_RETURN_IF_ERROR(expr)                  \
  do {                                                 \
    ::enrichd::Status enrichd_status_ = (expr);        \
    if (!enrichd_status_.ok()) return enrichd_status_; \
  } while (false)

#define ENRICHD_CONCAT_INNER_(a, b) a##b
#define ENRICHD_CONCAT_(a, b) ENRICHD_CONCAT_INNER_(a, b)
// Declares `lhs` from a Result<T> expression, or returns its error.
#define ENRICHD_ASSIGN_OR_RETURN(lhs, expr)                     \
  auto ENRICHD_CONCAT_(enrichd_result_, __LINE__) = (expr);     \
  if (!ENRICHD_CONCAT_(enrichd_result_, __LINE__).ok())         \
    return ENRICHD_CONCAT_(enrichd_result_, __LINE__).status(); \
  lhs = std::move(ENRICHD_CONCAT_(enrichd_result_, __LINE__)).value()

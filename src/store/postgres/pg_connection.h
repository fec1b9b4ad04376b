// A thin RAII layer over one libpq connection, private to the PostgreSQL backend.
//
// Everything returns Status / Result<T>; libpq's errors become one line that names
// host:port and never the password. Not thread-safe: one owner at a time (as GraphStore).
#pragma once

#include <libpq-fe.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "enrichd/status.h"

namespace enrichd::pg {

// The URL with any password (userinfo or ?password=) replaced by "***".
std::string RedactUrl(std::string_view url);
// The same, also collecting the redacted secrets (to scrub them from other messages).
std::string RedactUrl(std::string_view url, std::vector<std::string>* secrets);

// An owned PGresult. Text-format values.
class PgResult {
 public:
  PgResult() = default;
  explicit PgResult(PGresult* r) : r_(r, &PQclear) {}

  int rows() const { return r_ ? PQntuples(r_.get()) : 0; }
  bool IsNull(int row, int col) const { return PQgetisnull(r_.get(), row, col) != 0; }
  std::string_view Text(int row, int col) const {
    return {PQgetvalue(r_.get(), row, col),
            static_cast<std::size_t>(PQgetlength(r_.get(), row, col))};
  }
  // Integer value of a column; 0 for NULL or unparsable text (columns are typed by SQL).
  int64_t Int(int row, int col) const;
  // Rows affected by an INSERT/UPDATE/DELETE.
  int64_t Affected() const;
  PGresult* get() const { return r_.get(); }

 private:
  std::unique_ptr<PGresult, void (*)(PGresult*)> r_{nullptr, &PQclear};
};

// Positional text parameters ($1, $2, ...); nullopt is SQL NULL.
using Params = std::vector<std::optional<std::string>>;

class Connection {
 public:
  // Connects. Errors: kInvalidArgument (unparsable URL), kUnauthenticated (password
  // refused), kUnavailable (server unreachable or refusing: the message names host:port).
  static Result<std::unique_ptr<Connection>> Open(std::string_view url);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Runs one or more statements with no parameters (simple query protocol).
  Result<PgResult> Exec(std::string_view sql);
  // How the server plans a prepared statement's executions. kCustom (the session's
  // default) plans each execution for its parameter values: batch statements take
  // arrays whose size only a custom plan sees (a generic plan guesses 10 rows). kGeneric
  // plans once per session, for statements whose plan does not depend on their values
  // and whose planning is a measurable part of their cost (completions: ~1.3 ms per
  // execution of 500). The session's mode is switched (one SET) only when it differs.
  enum class PlanMode { kCustom, kGeneric };
  // Runs a named prepared statement, preparing it on first use in this session.
  Result<PgResult> Prepared(const std::string& name, const std::string& sql, const Params& params,
                            PlanMode mode = PlanMode::kCustom);
  // COPY ... FROM STDIN with `data` in COPY text format.
  Status CopyIn(std::string_view copy_sql, std::string_view data);

  // Transactions. Rollback never fails loudly (it is used on error paths).
  Status Begin(std::string_view mode = "BEGIN");
  Status Commit();
  void Rollback();

  // SQLSTATE of the last failed statement ("" when it was not a server error).
  const std::string& last_sqlstate() const { return last_sqlstate_; }

  // For messages: the redacted URL, and "host:port".
  const std::string& describe() const { return describe_; }
  const std::string& endpoint() const { return endpoint_; }

 private:
  Connection(PGconn* conn, std::string describe, std::string endpoint,
             std::vector<std::string> secrets);
  // Reconnects when the connection was lost since the last call.
  Status EnsureConnected();
  // Session settings, after every (re)connect.
  Status InitSession();
  Status ResultError(const PGresult* r, std::string_view what) const;
  std::string Scrub(std::string text) const;

  PGconn* conn_;
  std::string describe_;
  std::string endpoint_;
  std::vector<std::string> secrets_;  // passwords, scrubbed from every message
  std::set<std::string> prepared_;
  std::optional<PlanMode> plan_mode_;  // the session's plan_cache_mode; unset: unknown
  mutable std::string last_sqlstate_;
};

// Begins a transaction and rolls it back on scope exit unless committed.
class Transaction {
 public:
  explicit Transaction(Connection& c) : c_(c) {}
  ~Transaction() {
    if (open_) c_.Rollback();
  }
  Status Begin(std::string_view mode = "BEGIN") {
    Status s = c_.Begin(mode);
    open_ = s.ok();
    return s;
  }
  Status Commit() {
    open_ = false;
    return c_.Commit();
  }

 private:
  Connection& c_;
  bool open_ = false;
};

// Array literals for text-format parameters: {"a","b"} / {1,2}.
std::string TextArray(const std::vector<std::string>& values);
std::string IntArray(const std::vector<int64_t>& values);
// Escapes a value for COPY text format (backslash, tab, newline, carriage return).
void AppendCopyField(std::string& out, std::string_view value);

}  // namespace enrichd::pg

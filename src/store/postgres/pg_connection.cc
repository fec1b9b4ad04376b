#include "store/postgres/pg_connection.h"

#include <charconv>
#include <cstring>
#include <utility>

namespace enrichd::pg {
namespace {

// First line of a libpq message, trimmed, with any "connection to server ... failed: "
// prefix removed (we name the endpoint ourselves).
std::string OneLine(std::string_view msg) {
  std::size_t nl = msg.find('\n');
  std::string_view line = msg.substr(0, nl);
  const std::string_view failed = "failed: ";
  if (line.starts_with("connection to server")) {
    std::size_t f = line.find(failed);
    if (f != std::string_view::npos) line = line.substr(f + failed.size());
  }
  while (!line.empty() && (line.back() == ' ' || line.back() == '\r')) line.remove_suffix(1);
  if (line.starts_with("ERROR:  ")) line.remove_prefix(8);
  if (line.starts_with("FATAL:  ")) line.remove_prefix(8);
  return std::string(line);
}

StatusCode CodeForSqlState(std::string_view state) {
  if (state.starts_with("08")) return StatusCode::kUnavailable;  // connection exception
  if (state.starts_with("53")) return StatusCode::kUnavailable;  // insufficient resources
  if (state.starts_with("57")) return StatusCode::kUnavailable;  // operator intervention
  if (state == "40001" || state == "40P01") return StatusCode::kUnavailable;  // retry
  if (state == "55P03") return StatusCode::kUnavailable;                      // lock not available
  if (state.starts_with("28")) return StatusCode::kUnauthenticated;
  if (state.starts_with("42501")) return StatusCode::kPermissionDenied;
  if (state.starts_with("22")) return StatusCode::kInvalidArgument;  // data exception
  if (state.starts_with("3D") || state.starts_with("3F")) return StatusCode::kFailedPrecondition;
  return StatusCode::kInternal;
}

void ReplaceAll(std::string& s, std::string_view from, std::string_view to) {
  if (from.empty()) return;
  for (std::size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size())) {
    s.replace(p, from.size(), to);
  }
}

}  // namespace

std::string RedactUrl(std::string_view url) { return RedactUrl(url, nullptr); }

std::string RedactUrl(std::string_view url, std::vector<std::string>* secrets) {
  std::string out(url);
  // userinfo password: scheme://user:PASSWORD@host
  std::size_t scheme = out.find("://");
  if (scheme != std::string::npos) {
    std::size_t start = scheme + 3;
    std::size_t end = out.find_first_of("/?", start);
    if (end == std::string::npos) end = out.size();
    std::size_t at = out.rfind('@', end);
    if (at != std::string::npos && at >= start) {
      std::size_t colon = out.find(':', start);
      if (colon != std::string::npos && colon < at) {
        if (secrets != nullptr) secrets->push_back(out.substr(colon + 1, at - colon - 1));
        out.replace(colon + 1, at - colon - 1, "***");
      }
    }
  }
  // ?password=... or &password=...
  for (std::size_t p = out.find("password="); p != std::string::npos;
       p = out.find("password=", p + 1)) {
    if (p > 0 && out[p - 1] != '?' && out[p - 1] != '&') continue;
    std::size_t v = p + 9;
    std::size_t e = out.find('&', v);
    if (e == std::string::npos) e = out.size();
    if (secrets != nullptr) secrets->push_back(out.substr(v, e - v));
    out.replace(v, e - v, "***");
  }
  return out;
}

int64_t PgResult::Int(int row, int col) const {
  std::string_view t = Text(row, col);
  int64_t v = 0;
  std::from_chars(t.data(), t.data() + t.size(), v);
  return v;
}

int64_t PgResult::Affected() const {
  if (!r_) return 0;
  const char* t = PQcmdTuples(r_.get());
  int64_t v = 0;
  std::from_chars(t, t + std::strlen(t), v);
  return v;
}

Connection::Connection(PGconn* conn, std::string describe, std::string endpoint,
                       std::vector<std::string> secrets)
    : conn_(conn),
      describe_(std::move(describe)),
      endpoint_(std::move(endpoint)),
      secrets_(std::move(secrets)) {}

Connection::~Connection() {
  if (conn_ != nullptr) PQfinish(conn_);
}

Result<std::unique_ptr<Connection>> Connection::Open(std::string_view url) {
  const std::string url_text(url);
  std::vector<std::string> secrets;
  const std::string redacted = RedactUrl(url, &secrets);
  char* parse_error = nullptr;
  PQconninfoOption* options = PQconninfoParse(url_text.c_str(), &parse_error);
  if (options == nullptr) {
    std::string why = parse_error != nullptr ? OneLine(parse_error) : "out of memory";
    if (parse_error != nullptr) PQfreemem(parse_error);
    // libpq quotes the URL it could not parse: never echo a password.
    ReplaceAll(why, url_text, redacted);
    for (const std::string& secret : secrets) ReplaceAll(why, secret, "***");
    return InvalidArgumentError("bad PostgreSQL URL '" + redacted + "': " + why);
  }
  std::string host, port, password;
  bool has_timeout = false;
  for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
    if (o->val == nullptr) continue;
    if (std::strcmp(o->keyword, "host") == 0) host = o->val;
    if (std::strcmp(o->keyword, "hostaddr") == 0 && host.empty()) host = o->val;
    if (std::strcmp(o->keyword, "port") == 0) port = o->val;
    if (std::strcmp(o->keyword, "password") == 0) password = o->val;
    if (std::strcmp(o->keyword, "connect_timeout") == 0) has_timeout = true;
  }
  PQconninfoFree(options);

  // Keywords before the expanded URL are defaults the URL may override.
  const char* keywords[] = {"connect_timeout", "fallback_application_name", "dbname", nullptr};
  const char* values[] = {has_timeout ? nullptr : "10", "enrichd", url_text.c_str(), nullptr};
  if (has_timeout) {
    keywords[0] = "fallback_application_name";
    values[0] = "enrichd";
    keywords[1] = "dbname";
    values[1] = url_text.c_str();
    keywords[2] = nullptr;
    values[2] = nullptr;
  }
  PGconn* conn = PQconnectdbParams(keywords, values, /*expand_dbname=*/1);
  if (conn == nullptr) return UnavailableError("cannot allocate a PostgreSQL connection");

  // What we actually tried (defaults filled in by libpq).
  if (const char* h = PQhost(conn); h != nullptr && *h != '\0') host = h;
  if (const char* p = PQport(conn); p != nullptr && *p != '\0') port = p;
  if (host.empty()) host = "localhost";
  if (port.empty()) port = "5432";
  std::string endpoint = (host.starts_with('/') ? host + "/.s.PGSQL." + port : host + ":" + port);

  if (PQstatus(conn) != CONNECTION_OK) {
    std::string why = OneLine(PQerrorMessage(conn));
    const bool auth = PQconnectionNeedsPassword(conn) != 0 ||
                      why.find("password authentication failed") != std::string::npos ||
                      why.find("no password supplied") != std::string::npos;
    PQfinish(conn);
    if (!password.empty()) ReplaceAll(why, password, "***");
    for (const std::string& secret : secrets) ReplaceAll(why, secret, "***");
    std::string msg = "cannot connect to PostgreSQL at " + endpoint + ": " + why;
    return Status(auth ? StatusCode::kUnauthenticated : StatusCode::kUnavailable, msg);
  }
  if (!password.empty()) secrets.push_back(std::move(password));
  auto connection = std::unique_ptr<Connection>(
      new Connection(conn, redacted, std::move(endpoint), std::move(secrets)));
  ENRICHD_RETURN_IF_ERROR(connection->InitSession());
  return connection;
}

std::string Connection::Scrub(std::string text) const {
  for (const std::string& secret : secrets_) ReplaceAll(text, secret, "***");
  return text;
}

Status Connection::EnsureConnected() {
  if (PQstatus(conn_) == CONNECTION_OK) return Status::Ok();
  PQreset(conn_);
  prepared_.clear();
  if (PQstatus(conn_) != CONNECTION_OK) {
    return UnavailableError(Scrub("lost connection to PostgreSQL at " + endpoint_ + ": " +
                                  OneLine(PQerrorMessage(conn_))));
  }
  return InitSession();
}

Status Connection::InitSession() {
  // Notices (e.g. "relation already exists, skipping") are not for our users.
  PQsetNoticeProcessor(
      conn_, [](void*, const char*) {}, nullptr);
  // Our statements are short: compiling them with JIT costs more than it saves. Batch
  // statements take arrays whose size only a custom plan sees (a generic plan guesses
  // 10 rows and may loop over the whole batch once per row).
  PgResult r(PQexec(conn_, "SET jit = off; SET plan_cache_mode = force_custom_plan"));
  if (r.get() == nullptr || PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
    plan_mode_.reset();
    return ResultError(r.get(), "SET");
  }
  plan_mode_ = PlanMode::kCustom;
  return Status::Ok();
}

Status Connection::ResultError(const PGresult* r, std::string_view what) const {
  last_sqlstate_.clear();
  if (PQstatus(conn_) != CONNECTION_OK) {
    return UnavailableError(Scrub("lost connection to PostgreSQL at " + endpoint_ + " (" +
                                  std::string(what) + "): " + OneLine(PQerrorMessage(conn_))));
  }
  const char* state = r != nullptr ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  const char* primary = r != nullptr ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
  std::string msg = primary != nullptr ? primary : OneLine(PQerrorMessage(conn_));
  if (state != nullptr) last_sqlstate_ = state;
  StatusCode code = state != nullptr ? CodeForSqlState(state) : StatusCode::kInternal;
  return Status(code, Scrub("PostgreSQL " + std::string(what) + ": " + msg +
                            (state != nullptr ? " (SQLSTATE " + std::string(state) + ")" : "")));
}

Result<PgResult> Connection::Exec(std::string_view sql) {
  ENRICHD_RETURN_IF_ERROR(EnsureConnected());
  PgResult r(PQexec(conn_, std::string(sql).c_str()));
  ExecStatusType st = r.get() != nullptr ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    std::string_view head = sql.substr(0, sql.find_first_of(" \n("));
    return ResultError(r.get(), head);
  }
  return r;
}

Result<PgResult> Connection::Prepared(const std::string& name, const std::string& sql,
                                      const Params& params, PlanMode mode) {
  ENRICHD_RETURN_IF_ERROR(EnsureConnected());
  if (plan_mode_ != mode) {
    PgResult set(PQexec(conn_, mode == PlanMode::kGeneric
                                   ? "SET plan_cache_mode = force_generic_plan"
                                   : "SET plan_cache_mode = force_custom_plan"));
    if (set.get() == nullptr || PQresultStatus(set.get()) != PGRES_COMMAND_OK) {
      plan_mode_.reset();
      return ResultError(set.get(), "SET plan_cache_mode");
    }
    plan_mode_ = mode;
  }
  if (!prepared_.contains(name)) {
    PgResult p(PQprepare(conn_, name.c_str(), sql.c_str(), 0, nullptr));
    if (p.get() == nullptr || PQresultStatus(p.get()) != PGRES_COMMAND_OK) {
      return ResultError(p.get(), "prepare " + name);
    }
    prepared_.insert(name);
  }
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& v : params) values.push_back(v ? v->c_str() : nullptr);
  PgResult r(PQexecPrepared(conn_, name.c_str(), static_cast<int>(values.size()), values.data(),
                            nullptr, nullptr, 0));
  ExecStatusType st = r.get() != nullptr ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return ResultError(r.get(), name);
  return r;
}

Status Connection::CopyIn(std::string_view copy_sql, std::string_view data) {
  ENRICHD_RETURN_IF_ERROR(EnsureConnected());
  PgResult start(PQexec(conn_, std::string(copy_sql).c_str()));
  if (start.get() == nullptr || PQresultStatus(start.get()) != PGRES_COPY_IN) {
    return ResultError(start.get(), "COPY");
  }
  constexpr std::size_t kChunk = 1 << 20;
  bool failed = false;
  for (std::size_t off = 0; off < data.size(); off += kChunk) {
    std::size_t n = std::min(kChunk, data.size() - off);
    if (PQputCopyData(conn_, data.data() + off, static_cast<int>(n)) != 1) {
      failed = true;
      break;
    }
  }
  PQputCopyEnd(conn_, failed ? "client error" : nullptr);
  Status status;
  while (PGresult* raw = PQgetResult(conn_)) {
    PgResult r(raw);
    if (status.ok() && PQresultStatus(raw) != PGRES_COMMAND_OK) {
      status = ResultError(raw, "COPY");
    }
  }
  return status;
}

Status Connection::Begin(std::string_view mode) { return Exec(mode).status(); }

Status Connection::Commit() { return Exec("COMMIT").status(); }

void Connection::Rollback() {
  plan_mode_.reset();  // a SET within the transaction is undone with it
  if (PQstatus(conn_) != CONNECTION_OK) return;
  PgResult r(PQexec(conn_, "ROLLBACK"));
}

std::string TextArray(const std::vector<std::string>& values) {
  std::size_t size = 2;
  for (const auto& v : values) size += v.size() + 3;
  std::string out;
  out.reserve(size);
  out.push_back('{');
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i) out.push_back(',');
    out.push_back('"');
    for (char c : values[i]) {
      if (c == '"' || c == '\\') out.push_back('\\');
      out.push_back(c);
    }
    out.push_back('"');
  }
  out.push_back('}');
  return out;
}

std::string IntArray(const std::vector<int64_t>& values) {
  std::string out;
  out.reserve(values.size() * 8 + 2);
  out.push_back('{');
  char buf[24];
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i) out.push_back(',');
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, values[i]);
    out.append(buf, end);
  }
  out.push_back('}');
  return out;
}

void AppendCopyField(std::string& out, std::string_view value) {
  for (char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        out.push_back(c);
    }
  }
}

}  // namespace enrichd::pg

// The SQLite backend of GraphStore.
//
// One connection per object. WAL journal, synchronous=NORMAL, busy_timeout 5 s. Every
// write runs in a BEGIN IMMEDIATE transaction (the write lock is taken up front, so two
// processes serialise their claims instead of both reading the same pending rows). Reads
// that must be consistent (counts, GetNode, Export) run in a deferred read transaction,
// which in WAL mode sees one snapshot and does not block writers. Statements are prepared
// once and cached per connection, keyed by their SQL text.
#include "store/sqlite/sqlite_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <optional>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "store/sqlite/sqlite_migrations.h"

namespace enrichd {
namespace {

constexpr int kBusyTimeoutMs = 5000;

int64_t WallNowMillis() { return ToUnixMillis(SystemClock::Instance().WallNow()); }

// Maps an SQLite result code to the Status taxonomy of status.h.
Status SqliteStatus(int rc, sqlite3* db, std::string_view context) {
  std::string msg(context);
  msg += ": ";
  msg += db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return UnavailableError(msg + " (the database is locked by another writer; retry)");
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return DataLossError(msg);
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_PROTOCOL:
      return UnavailableError(msg);
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
      return Status(StatusCode::kPermissionDenied, msg);
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_TOOBIG:
    case SQLITE_RANGE:
      return InvalidArgumentError(msg);
    default:
      return InternalError(msg);
  }
}

// One use of a cached prepared statement: binds, steps, and resets it when it goes out of
// scope (so the cache entry is ready for the next use and holds no read lock).
class Query {
 public:
  Query(sqlite3_stmt* stmt, std::string_view context) : stmt_(stmt), context_(context) {}
  Query(const Query&) = delete;
  Query& operator=(const Query&) = delete;
  ~Query() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

  Query& Bind(int index, int64_t value) {
    Check(sqlite3_bind_int64(stmt_, index, value));
    return *this;
  }
  Query& Bind(int index, std::string_view value) {
    Check(sqlite3_bind_text64(stmt_, index, value.data(), value.size(), SQLITE_TRANSIENT,
                              SQLITE_UTF8));
    return *this;
  }
  // The caller keeps `value` alive and unchanged until the statement is reset.
  Query& BindStatic(int index, std::string_view value) {
    Check(
        sqlite3_bind_text64(stmt_, index, value.data(), value.size(), SQLITE_STATIC, SQLITE_UTF8));
    return *this;
  }
  Query& BindNull(int index) {
    Check(sqlite3_bind_null(stmt_, index));
    return *this;
  }

  // true: a row is available; false: done.
  Result<bool> Step() {
    if (bind_rc_ != SQLITE_OK) return SqliteStatus(bind_rc_, Db(), context_);
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return SqliteStatus(rc, Db(), context_);
  }
  // Steps to the end, ignoring rows.
  Status Run() {
    for (;;) {
      auto row = Step();
      if (!row.ok()) return row.status();
      if (!*row) return Status::Ok();
    }
  }

  int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }
  bool IsNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  std::string Text(int col) const {
    const unsigned char* text = sqlite3_column_text(stmt_, col);
    if (text == nullptr) return {};
    return std::string(reinterpret_cast<const char*>(text),
                       static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)));
  }
  int64_t Changes() const { return sqlite3_changes64(Db()); }

 private:
  sqlite3* Db() const { return sqlite3_db_handle(stmt_); }
  void Check(int rc) {
    if (rc != SQLITE_OK && bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  }

  sqlite3_stmt* stmt_;
  std::string_view context_;
  int bind_rc_ = SQLITE_OK;
};

std::string_view StatusSql(TaskStatus s) { return TaskStatusName(s); }

// Length of the valid UTF-8 sequence starting at s[i], or 0 if it is not valid.
std::size_t Utf8SequenceLength(std::string_view s, std::size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  std::size_t len = 0;
  uint32_t min = 0;
  uint32_t cp = 0;
  if (b0 < 0x80) return 1;
  if ((b0 & 0xe0) == 0xc0) {
    len = 2, min = 0x80, cp = b0 & 0x1f;
  } else if ((b0 & 0xf0) == 0xe0) {
    len = 3, min = 0x800, cp = b0 & 0x0f;
  } else if ((b0 & 0xf8) == 0xf0) {
    len = 4, min = 0x10000, cp = b0 & 0x07;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  for (std::size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return len;
}

// Appends `s` as a JSON string literal (quoted, escaped). Bytes that are not valid UTF-8
// become U+FFFD, so every stored props text parses as JSON.
void AppendJsonString(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  for (std::size_t i = 0; i < s.size();) {
    // Copy the longest run that needs no escaping in one go.
    std::size_t run = i;
    while (run < s.size()) {
      const auto r = static_cast<unsigned char>(s[run]);
      if (r < 0x20 || r >= 0x80 || r == '"' || r == '\\') break;
      ++run;
    }
    if (run > i) {
      out.append(s.data() + i, run - i);
      i = run;
      continue;
    }
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      const std::size_t len = Utf8SequenceLength(s, i);
      if (len == 0) {
        out += "\\ufffd";
        ++i;
      } else {
        out.append(s.substr(i, len));
        i += len;
      }
      continue;
    }
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 0xf];
        } else {
          out += static_cast<char>(c);
        }
    }
    ++i;
  }
  out += '"';
}

// A strict RFC 8259 validator that builds nothing (json::accept costs ~100 instructions
// per byte; this is several times cheaper on the hot completion path). Rejects invalid
// UTF-8, lone surrogate escapes and nesting deeper than kMaxJsonDepth.
class JsonValidator {
 public:
  explicit JsonValidator(std::string_view text) : s_(text) {}

  // true when the whole text is one JSON object (surrounding whitespace allowed).
  bool IsObject() {
    SkipWs();
    if (pos_ >= s_.size() || s_[pos_] != '{') return false;
    if (!Value(0)) return false;
    SkipWs();
    return pos_ == s_.size();
  }

 private:
  static constexpr int kMaxJsonDepth = 256;

  void SkipWs() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) {
      ++pos_;
    }
  }
  bool Eat(char c) {
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  bool Literal(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }
  bool Digits() {
    const std::size_t start = pos_;
    while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
    return pos_ > start;
  }
  bool Number() {
    Eat('-');
    if (Eat('0')) {
      // no leading zeros
    } else if (pos_ < s_.size() && s_[pos_] >= '1' && s_[pos_] <= '9') {
      Digits();
    } else {
      return false;
    }
    if (Eat('.') && !Digits()) return false;
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      ++pos_;
      if (!Eat('+')) Eat('-');
      if (!Digits()) return false;
    }
    return true;
  }
  // Reads 4 hex digits of a \u escape.
  bool Hex4(uint32_t& out) {
    if (pos_ + 4 > s_.size()) return false;
    out = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = s_[pos_++];
      out <<= 4;
      if (c >= '0' && c <= '9') {
        out |= static_cast<uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        out |= static_cast<uint32_t>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        out |= static_cast<uint32_t>(c - 'A' + 10);
      } else {
        return false;
      }
    }
    return true;
  }
  bool String() {
    if (!Eat('"')) return false;
    while (pos_ < s_.size()) {
      const auto c = static_cast<unsigned char>(s_[pos_]);
      if (c == '"') {
        ++pos_;
        return true;
      }
      if (c < 0x20) return false;
      if (c == '\\') {
        if (++pos_ >= s_.size()) return false;
        const char e = s_[pos_++];
        if (e == 'u') {
          uint32_t cp = 0;
          if (!Hex4(cp)) return false;
          if (cp >= 0xdc00 && cp <= 0xdfff) return false;  // lone low surrogate
          if (cp >= 0xd800 && cp <= 0xdbff) {
            uint32_t low = 0;
            if (!Eat('\\') || !Eat('u') || !Hex4(low) || low < 0xdc00 || low > 0xdfff) {
              return false;
            }
          }
        } else if (e != '"' && e != '\\' && e != '/' && e != 'b' && e != 'f' && e != 'n' &&
                   e != 'r' && e != 't') {
          return false;
        }
        continue;
      }
      if (c >= 0x80) {
        const std::size_t len = Utf8SequenceLength(s_, pos_);
        if (len == 0) return false;
        pos_ += len;
        continue;
      }
      ++pos_;
    }
    return false;  // unterminated
  }
  bool Value(int depth) {
    SkipWs();
    if (pos_ >= s_.size()) return false;
    switch (s_[pos_]) {
      case '{': {
        if (depth >= kMaxJsonDepth) return false;
        ++pos_;
        SkipWs();
        if (Eat('}')) return true;
        for (;;) {
          SkipWs();
          if (!String()) return false;
          SkipWs();
          if (!Eat(':')) return false;
          if (!Value(depth + 1)) return false;
          SkipWs();
          if (Eat('}')) return true;
          if (!Eat(',')) return false;
        }
      }
      case '[': {
        if (depth >= kMaxJsonDepth) return false;
        ++pos_;
        SkipWs();
        if (Eat(']')) return true;
        for (;;) {
          if (!Value(depth + 1)) return false;
          SkipWs();
          if (Eat(']')) return true;
          if (!Eat(',')) return false;
        }
      }
      case '"':
        return String();
      case 't':
        return Literal("true");
      case 'f':
        return Literal("false");
      case 'n':
        return Literal("null");
      default:
        return Number();
    }
  }

  std::string_view s_;
  std::size_t pos_ = 0;
};

// Validates a JSON object text without building a DOM; "" counts as {}.
bool IsJsonObject(std::string_view text) {
  if (text.empty() || text == "{}") return true;
  return JsonValidator(text).IsObject();
}

void AppendInt(std::string& out, int64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

// Big-endian value of up to 8 bytes of `s` from `at`, zero-padded: comparing two of these
// compares those bytes as memcmp does (keys hold no NUL, so a shorter key sorts first).
uint64_t PrefixWord(std::string_view s, std::size_t at) {
  uint64_t w = 0;
  for (std::size_t i = 0; i < 8; ++i) {
    w <<= 8;
    if (at + i < s.size()) w |= static_cast<unsigned char>(s[at + i]);
  }
  return w;
}

// `nodes` in (label, key) byte order, SQLite's BINARY collation. Sorting pointers with
// string comparisons cost a quarter of a 1M-line ingest (a cache miss into every node per
// comparison); here each node is reduced to its label's rank and the first 16 bytes of
// its key, and only keys sharing those 16 bytes (long IPv6 forms) are compared in full.
std::vector<const SourceNode*> SortedByLabelAndKey(std::span<const SourceNode> nodes) {
  // Each label's rank in byte order. A batch usually has one label, so the previous
  // node's label is checked before the hash map.
  std::unordered_map<std::string_view, uint32_t> label_ids;
  std::vector<std::string_view> labels;  // by id
  std::vector<uint32_t> node_label(nodes.size());
  std::string_view last_label;
  uint32_t last_id = 0;
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    const std::string_view label = nodes[i].label;
    if (labels.empty() || label != last_label) {
      auto [it, added] = label_ids.try_emplace(label, static_cast<uint32_t>(labels.size()));
      if (added) labels.push_back(label);
      last_label = label;
      last_id = it->second;
    }
    node_label[i] = last_id;
  }
  std::vector<uint32_t> by_rank(labels.size());
  for (uint32_t id = 0; id < by_rank.size(); ++id) by_rank[id] = id;
  std::sort(by_rank.begin(), by_rank.end(),
            [&](uint32_t x, uint32_t y) { return labels[x] < labels[y]; });
  std::vector<uint32_t> rank_of(labels.size());
  for (uint32_t r = 0; r < by_rank.size(); ++r) rank_of[by_rank[r]] = r;
  struct Entry {
    uint32_t label_rank;
    uint64_t key_hi;
    uint64_t key_lo;
    const SourceNode* node;
  };
  std::vector<Entry> entries;
  entries.reserve(nodes.size());
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    const SourceNode& n = nodes[i];
    entries.push_back({rank_of[node_label[i]], PrefixWord(n.key, 0), PrefixWord(n.key, 8), &n});
  }
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    if (a.label_rank != b.label_rank) return a.label_rank < b.label_rank;
    if (a.key_hi != b.key_hi) return a.key_hi < b.key_hi;
    if (a.key_lo != b.key_lo) return a.key_lo < b.key_lo;
    return a.node->key < b.node->key;  // same first 16 bytes
  });
  std::vector<const SourceNode*> sorted;
  sorted.reserve(entries.size());
  for (const Entry& e : entries) sorted.push_back(e.node);
  return sorted;
}

// A JSON array of the ids `id_of` picks from `items`, for `IN (SELECT value FROM
// json_each(?))`: one statement for a whole batch instead of one per row.
template <typename Range, typename IdOf>
std::string JsonIdArray(const Range& items, IdOf id_of) {
  std::string ids = "[";
  for (const auto& item : items) {
    if (ids.size() > 1) ids += ',';
    AppendInt(ids, id_of(item));
  }
  ids += ']';
  return ids;
}

// Appends `"YYYY-MM-DDTHH:MM:SS.mmmZ"` (quoted), the same text as FormatRfc3339, without
// snprintf (it dominated the completion path).
void AppendRfc3339String(std::string& out, WallTime t) {
  using namespace std::chrono;
  const int64_t ms = ToUnixMillis(t);
  const int64_t secs = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
  const int64_t millis = ms - secs * 1000;
  const int64_t day_count = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
  const int64_t sod = secs - day_count * 86400;
  const year_month_day ymd{sys_days{days{day_count}}};
  const int year = static_cast<int>(ymd.year());
  if (year < 0 || year > 9999) {  // rare: keep the general formatter's exact text
    AppendJsonString(out, FormatRfc3339(t));
    return;
  }
  auto put = [&out](int64_t v, int width) {
    char buf[8];
    for (int i = width - 1; i >= 0; --i) {
      buf[i] = static_cast<char>('0' + v % 10);
      v /= 10;
    }
    out.append(buf, static_cast<std::size_t>(width));
  };
  out += '"';
  put(year, 4);
  out += '-';
  put(static_cast<unsigned>(ymd.month()), 2);
  out += '-';
  put(static_cast<unsigned>(ymd.day()), 2);
  out += 'T';
  put(sod / 3600, 2);
  out += ':';
  put(sod / 60 % 60, 2);
  out += ':';
  put(sod % 60, 2);
  out += '.';
  put(millis, 3);
  out += "Z\"";
}

class SqliteStore final : public GraphStore {
 public:
  explicit SqliteStore(std::string path) : path_(std::move(path)) {}

  ~SqliteStore() override {
    for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
    if (db_ != nullptr) sqlite3_close_v2(db_);
  }

  Status Open();

  Status Migrate() override;
  Result<UpsertStats> UpsertSourceNodes(std::span<const SourceNode> nodes) override;
  Result<int64_t> PlanDueTasks(std::span<const ProviderPlan> providers, WallTime now) override;
  Result<std::vector<ClaimedTask>> ClaimTasks(const ClaimRequest& request) override;
  Result<int64_t> CompleteTasks(std::span<const TaskCompletion> completions) override;
  Result<int64_t> ScheduleRetries(std::span<const TaskRetry> retries) override;
  Result<int64_t> FinishTasks(std::span<const TaskFinal> finals) override;
  Result<int64_t> RenewLeases(std::string_view lease_owner, std::span<const int64_t> task_ids,
                              WallTime until) override;
  Result<int64_t> ReleaseLeases(std::string_view lease_owner) override;
  Result<int64_t> ReclaimExpiredLeases(WallTime now) override;
  Result<int64_t> Requeue(const RequeueRequest& request, WallTime now) override;
  Result<StoreCounts> Counts() override;
  Result<std::optional<NodeView>> GetNode(std::string_view label, std::string_view key) override;
  Status Export(ExportSink& sink) override;
  std::string Describe() const override { return "sqlite://" + path_; }

 private:
  // A transaction that rolls back unless committed.
  class Transaction {
   public:
    explicit Transaction(SqliteStore& store) : store_(store) {}
    Transaction(const Transaction&) = delete;
    Transaction& operator=(const Transaction&) = delete;
    ~Transaction() {
      if (active_) store_.ExecIgnoringErrors("ROLLBACK");
    }
    // immediate: take the write lock now (every write); otherwise a read snapshot.
    Status Begin(bool immediate) {
      ENRICHD_RETURN_IF_ERROR(store_.Exec(immediate ? "BEGIN IMMEDIATE" : "BEGIN DEFERRED"));
      active_ = true;
      return Status::Ok();
    }
    Status Commit() {
      Status s = store_.Exec("COMMIT");
      if (s.ok()) active_ = false;
      return s;
    }

   private:
    SqliteStore& store_;
    bool active_ = false;
  };

  std::string Context(std::string_view what) const {
    return "sqlite store '" + path_ + "': " + std::string(what);
  }

  Status Exec(const char* sql) {
    char* err = nullptr;
    int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
    sqlite3_free(err);
    if (rc != SQLITE_OK) return SqliteStatus(rc, db_, Context(sql));
    return Status::Ok();
  }
  void ExecIgnoringErrors(const char* sql) { sqlite3_exec(db_, sql, nullptr, nullptr, nullptr); }

  // A cached prepared statement for `sql`.
  Result<sqlite3_stmt*> Prepare(const std::string& sql) {
    auto it = cache_.find(sql);
    if (it != cache_.end()) return it->second;
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size()),
                                SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    if (rc != SQLITE_OK) {
      sqlite3_finalize(stmt);
      return SqliteStatus(rc, db_, Context("prepare"));
    }
    cache_.emplace(sql, stmt);
    return stmt;
  }

  // Runs a single-row-per-item UPDATE for each item inside one write transaction and
  // returns the number of rows changed. `bind` binds one item's parameters.
  template <typename Item, typename BindFn>
  Result<int64_t> UpdateEach(std::string_view what, const std::string& sql,
                             std::span<const Item> items, BindFn bind);

  std::string path_;
  sqlite3* db_ = nullptr;
  std::unordered_map<std::string, sqlite3_stmt*> cache_;
};

// SQLite keeps global memory statistics by default, which takes a global mutex on every
// allocation (a measurable share of claim + complete). Nothing here reads them, so they are
// turned off once, before SQLite initialises; if the process (another library) has
// initialised SQLite already, the call is refused and the default stays: harmless.
void DisableMemoryStatisticsOnce() {
  static const bool done = [] {
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    return true;
  }();
  (void)done;
}

Status SqliteStore::Open() {
  if (path_.empty()) return InvalidArgumentError("sqlite store: empty path (use sqlite://PATH)");
  DisableMemoryStatisticsOnce();
  int rc =
      sqlite3_open_v2(path_.c_str(), &db_,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    Status s = SqliteStatus(rc, db_, Context("cannot open"));
    return s;
  }
  sqlite3_busy_timeout(db_, kBusyTimeoutMs);
  // Reading the schema fails with SQLITE_NOTADB for a file that is not a database.
  rc = sqlite3_exec(db_, "SELECT count(*) FROM sqlite_master", nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) {
    int code = rc & 0xff;
    if (code == SQLITE_NOTADB || code == SQLITE_CORRUPT) {
      return DataLossError("sqlite store '" + path_ +
                           "' is not a usable SQLite database (the file is corrupt, encrypted or "
                           "not a database): " +
                           sqlite3_errmsg(db_));
    }
    return SqliteStatus(rc, db_, Context("cannot read the schema"));
  }
  ENRICHD_RETURN_IF_ERROR(Exec("PRAGMA synchronous=NORMAL"));
  // 16 MiB of page cache per connection: the engine process must stay small however
  // large the graph grows (its peak RSS is a product figure).
  ENRICHD_RETURN_IF_ERROR(Exec("PRAGMA cache_size=-16384"));
  ENRICHD_RETURN_IF_ERROR(Exec("PRAGMA temp_store=MEMORY"));
  // Checkpoint every ~16 MiB of WAL instead of 4 MiB: hot pages (queue indexes) are copied
  // back to the database less often.
  ENRICHD_RETURN_IF_ERROR(Exec("PRAGMA wal_autocheckpoint=4000"));
  // Migrate first: a foreign or newer database is refused before anything (not even the
  // journal mode) is changed in it.
  ENRICHD_RETURN_IF_ERROR(Migrate());
  // WAL: readers never block the writer and commits are cheap. The mode is stored in the
  // file, so this is a no-op after the first open.
  ENRICHD_ASSIGN_OR_RETURN(sqlite3_stmt * stmt, Prepare("PRAGMA journal_mode=WAL"));
  Query q(stmt, "set journal_mode=WAL");
  ENRICHD_ASSIGN_OR_RETURN(bool row, q.Step());
  (void)row;  // "wal", or "memory" for an in-memory database: both fine
  return Status::Ok();
}

Status SqliteStore::Migrate() {
  const std::span<const SqliteMigration> migrations = SqliteMigrations();
  const int latest = migrations.empty() ? 0 : migrations.back().version;
  Transaction tx(*this);
  ENRICHD_RETURN_IF_ERROR(tx.Begin(/*immediate=*/true));

  bool has_version_table = false;
  std::string foreign_table;
  {
    ENRICHD_ASSIGN_OR_RETURN(
        sqlite3_stmt * stmt,
        Prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
                "ORDER BY name"));
    Query q(stmt, "list tables");
    for (;;) {
      ENRICHD_ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) break;
      std::string name = q.Text(0);
      if (name == "schema_version") {
        has_version_table = true;
      } else if (foreign_table.empty()) {
        foreign_table = name;
      }
    }
  }
  int current = 0;
  if (has_version_table) {
    // Not cached: the table may not exist in other databases this connection sees.
    sqlite3_stmt* raw = nullptr;
    int rc = sqlite3_prepare_v2(db_, "SELECT coalesce(max(version), 0) FROM schema_version", -1,
                                &raw, nullptr);
    if (rc != SQLITE_OK) {
      sqlite3_finalize(raw);
      return DataLossError("sqlite store '" + path_ +
                           "': unreadable schema_version table: " + sqlite3_errmsg(db_));
    }
    rc = sqlite3_step(raw);
    if (rc == SQLITE_ROW) current = sqlite3_column_int(raw, 0);
    sqlite3_finalize(raw);
    if (rc != SQLITE_ROW) return SqliteStatus(rc, db_, Context("read schema_version"));
  } else if (!foreign_table.empty()) {
    return DataLossError("sqlite store '" + path_ +
                         "' is an SQLite database but not an enrichd store (it has table '" +
                         foreign_table + "' and no schema_version); refusing to change it");
  }
  if (current > latest) {
    return FailedPreconditionError("sqlite store '" + path_ + "' has schema version " +
                                   std::to_string(current) +
                                   ", newer than this enrichd understands (" +
                                   std::to_string(latest) + "); use a newer enrichd");
  }
  if (current == latest) return Status::Ok();  // the transaction rolls back: nothing written
  for (const SqliteMigration& m : migrations) {
    if (m.version <= current) continue;
    char* err = nullptr;
    int rc = sqlite3_exec(db_, m.sql, nullptr, nullptr, &err);
    std::string detail = err != nullptr ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    if (rc != SQLITE_OK) {
      Status s = SqliteStatus(rc, db_, Context(std::string("migration ") + m.name));
      return Status(s.code() == StatusCode::kUnavailable ? s.code() : StatusCode::kDataLoss,
                    Context(std::string("migration ") + m.name + " failed: " + detail));
    }
    ENRICHD_ASSIGN_OR_RETURN(
        sqlite3_stmt * stmt,
        Prepare("INSERT INTO schema_version (version, name, applied_at) VALUES (?1, ?2, ?3)"));
    Query q(stmt, "record migration");
    q.Bind(1, int64_t{m.version}).Bind(2, m.name).Bind(3, WallNowMillis());
    ENRICHD_RETURN_IF_ERROR(q.Run());
  }
  return tx.Commit();
}

Result<UpsertStats> SqliteStore::UpsertSourceNodes(std::span<const SourceNode> nodes) {
  UpsertStats stats;
  if (nodes.empty()) return stats;
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    const SourceNode& n = nodes[i];
    if (n.label.empty() || n.key.empty()) {
      return InvalidArgumentError("source node #" + std::to_string(i) +
                                  ": label and key must not be empty");
    }
    if (!IsJsonObject(n.props_json)) {
      return InvalidArgumentError("source node " + n.label + " '" + n.key +
                                  "': props are not a JSON object");
    }
  }
  // Inserted in (label, key) order: every insert then lands next to the previous one in the
  // unique index, which turns a batch of random keys into one sweep over the index pages
  // (1M random IPs: about 25 % less time). New nodes get their ids in that order too.
  const std::vector<const SourceNode*> sorted = SortedByLabelAndKey(nodes);
  Transaction tx(*this);
  ENRICHD_RETURN_IF_ERROR(tx.Begin(true));
  ENRICHD_ASSIGN_OR_RETURN(sqlite3_stmt * stmt,
                           Prepare("INSERT INTO nodes (label, key, props) VALUES (?1, ?2, ?3) "
                                   "ON CONFLICT (label, key) DO NOTHING"));
  for (const SourceNode* node : sorted) {
    const SourceNode& n = *node;
    Query q(stmt, "insert node");
    q.BindStatic(1, n.label)
        .BindStatic(2, n.key)
        .BindStatic(3, n.props_json.empty() ? std::string_view("{}") : n.props_json);
    ENRICHD_RETURN_IF_ERROR(q.Run());
    if (q.Changes() > 0) {
      ++stats.added;
    } else {
      ++stats.existing;
    }
  }
  ENRICHD_RETURN_IF_ERROR(tx.Commit());
  return stats;
}

Result<int64_t> SqliteStore::PlanDueTasks(std::span<const ProviderPlan> providers, WallTime now) {
  const int64_t now_ms = ToUnixMillis(now);
  int64_t planned = 0;
  Transaction tx(*this);
  ENRICHD_RETURN_IF_ERROR(tx.Begin(true));
  ENRICHD_ASSIGN_OR_RETURN(sqlite3_stmt * max_stmt,
                           Prepare("SELECT coalesce(max(id), 0) FROM nodes"));
  int64_t max_node_id = 0;
  {
    Query q(max_stmt, "max node id");
    ENRICHD_ASSIGN_OR_RETURN(bool row, q.Step());
    if (row) max_node_id = q.Int(0);
  }
  ENRICHD_ASSIGN_OR_RETURN(
      sqlite3_stmt * mark_stmt,
      Prepare("SELECT max_node_id FROM plan_marks WHERE provider = ?1 AND label = ?2"));
  // New (source, provider) pairs among the nodes added since the last plan: a range scan
  // of the node ids (the unary + keeps SQLite from using the (label, key) index instead).
  ENRICHD_ASSIGN_OR_RETURN(
      sqlite3_stmt * insert_stmt,
      Prepare("INSERT INTO tasks (node_id, provider, status, next_attempt_at, created_at, "
              "updated_at) "
              "SELECT n.id, ?1, 'pending', ?2, ?2, ?2 FROM nodes n "
              "WHERE n.id > ?4 AND +n.label = ?3 "
              "ON CONFLICT (node_id, provider) DO NOTHING"));
  ENRICHD_ASSIGN_OR_RETURN(
      sqlite3_stmt * set_mark_stmt,
      Prepare("INSERT INTO plan_marks (provider, label, max_node_id) VALUES (?1, ?2, ?3) "
              "ON CONFLICT (provider, label) DO UPDATE SET max_node_id = excluded.max_node_id"));
  // Answers whose TTL ran out: due again, as a fresh task.
  ENRICHD_ASSIGN_OR_RETURN(
      sqlite3_stmt * expired_stmt,
      Prepare("UPDATE tasks SET status = 'pending', attempts = 0, next_attempt_at = ?2, "
              "last_error = NULL, updated_at = ?2 "
              "WHERE provider = ?1 AND status IN ('done', 'no_data') AND expires_at <= ?2"));
  for (const ProviderPlan& plan : providers) {
    for (const std::string& label : plan.applies_to) {
      int64_t mark = 0;
      {
        Query q(mark_stmt, "read plan mark");
        q.Bind(1, plan.provider).Bind(2, label);
        ENRICHD_ASSIGN_OR_RETURN(bool row, q.Step());
        if (row) mark = q.Int(0);
      }
      if (mark >= max_node_id) continue;
      {
        Query q(insert_stmt, "plan new tasks");
        q.Bind(1, plan.provider).Bind(2, now_ms).Bind(3, label).Bind(4, mark);
        ENRICHD_RETURN_IF_ERROR(q.Run());
        planned += q.Changes();
      }
      Query q(set_mark_stmt, "write plan mark");
      q.Bind(1, plan.provider).Bind(2, label).Bind(3, max_node_id);
      ENRICHD_RETURN_IF_ERROR(q.Run());
    }
    if (plan.applies_to.empty()) continue;
    Query q(expired_stmt, "plan expired answers");
    q.Bind(1, plan.provider).Bind(2, now_ms);
    ENRICHD_RETURN_IF_ERROR(q.Run());
    planned += q.Changes();
  }
  ENRICHD_RETURN_IF_ERROR(tx.Commit());
  return planned;
}

Result<std::vector<ClaimedTask>> SqliteStore::ClaimTasks(const ClaimRequest& request) {
  std::vector<ClaimedTask> claimed;
  if (request.max_tasks == 0) return claimed;
  if (request.lease_owner.empty()) return InvalidArgumentError("ClaimTasks: empty lease_owner");
  const int64_t now_ms = ToUnixMillis(request.now);
  const int64_t until_ms = ToUnixMillis(request.now + request.lease_for);

  std::string sql =
      "UPDATE tasks SET status = 'running', lease_owner = ?1, lease_expires_at = ?2, "
      "claim_seq = claim_seq + 1, updated_at = ?3 "
      "WHERE id IN (SELECT id FROM tasks WHERE status = 'pending' AND next_attempt_at <= ?3";
  if (!request.providers.empty()) {
    sql += " AND provider IN (";
    for (std::size_t i = 0; i < request.providers.size(); ++i) {
      sql += (i == 0 ? "?" : ", ?") + std::to_string(5 + i);
    }
    sql += ")";
  }
  sql +=
      " ORDER BY next_attempt_at, id LIMIT ?4) "
      "RETURNING id, claim_seq, node_id, provider, attempts, next_attempt_at";

  Transaction tx(*this);
  ENRICHD_RETURN_IF_ERROR(tx.Begin(true));
  std::vector<int64_t> due_at;
  {
    ENRICHD_ASSIGN_OR_RETURN(sqlite3_stmt * stmt, Prepare(sql));
    Query q(stmt, "claim tasks");
    q.Bind(1, request.lease_owner)
        .Bind(2, until_ms)
        .Bind(3, now_ms)
        .Bind(4, static_cast<int64_t>(std::min<std::size_t>(request.max_tasks, INT64_MAX)));
    for (std::size_t i = 0; i < request.providers.size(); ++i) {
      q.Bind(static_cast<int>(5 + i), request.providers[i]);
    }
    for (;;) {
      ENRICHD_ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) break;
      ClaimedTask t;
      t.task_id = q.Int(0);
      t.claim_seq = q.Int(1);
      t.node_id = q.Int(2);
      t.provider = q.Text(3);
      t.attempts = static_cast<int>(q.Int(4));
      claimed.push_back(std::move(t));
      due_at.push_back(q.Int(5));
    }
  }
  // The claimed tasks' nodes in one statement (a JSON array of ids), not one per task.
  if (!claimed.empty()) {
    const std::string ids = JsonIdArray(claimed, [](const ClaimedTask& t) { return t.node_id; });
    ENRICHD_ASSIGN_OR_RETURN(
        sqlite3_stmt * node_stmt,
        Prepare("SELECT id, label, key FROM nodes WHERE id IN (SELECT value FROM json_each(?1))"));
    std::unordered_map<int64_t, std::pair<std::string, std::string>> by_id;
    by_id.reserve(claimed.size());
    Query q(node_stmt, "read claimed nodes");
    q.BindStatic(1, ids);
    for (;;) {
      ENRICHD_ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) break;
      by_id.emplace(q.Int(0), std::pair(q.Text(1), q.Text(2)));
    }
    for (ClaimedTask& t : claimed) {
      auto it = by_id.find(t.node_id);
      if (it == by_id.end()) {
        return DataLossError(Context("task " + std::to_string(t.task_id) + " refers to node " +
                                     std::to_string(t.node_id) + ", which does not exist"));
      }
      t.label = it->second.first;  // copied: two tasks of one node share the entry
      t.key = it->second.second;
    }
  }
  ENRICHD_RETURN_IF_ERROR(tx.Commit());

  // Oldest first, as claimed (RETURNING gives no order).
  std::vector<std::size_t> order(claimed.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return std::tie(due_at[a], claimed[a].task_id) < std::tie(due_at[b], claimed[b].task_id);
  });
  std::vector<ClaimedTask> sorted;
  sorted.reserve(claimed.size());
  for (std::size_t i : order) sorted.push_back(std::move(claimed[i]));
  return sorted;
}

Result<int64_t> SqliteStore::CompleteTasks(std::span<const TaskCompletion> completions) {
  if (completions.empty()) return int64_t{0};
  // Validate the whole batch before writing anything.
  for (const TaskCompletion& c : completions) {
    if (c.result.outcome != Outcome::kOk && c.result.outcome != Outcome::kNoData) {
      return InvalidArgumentError("CompleteTasks: task " + std::to_string(c.task_id) +
                                  " has outcome '" + std::string(OutcomeName(c.result.outcome)) +
                                  "', which is not an answer (ok or no_data)");
    }
    if (!IsJsonObject(c.result.data_json)) {
      return InvalidArgumentError("CompleteTasks: task " + std::to_string(c.task_id) +
                                  ": data is not a JSON object");
    }
  }

  Transaction tx(*this);
  ENRICHD_RETURN_IF_ERROR(tx.Begin(true));
  // The batch's running tasks in one statement (a JSON array of ids), not one per task.
  struct Claimed {
    int64_t claim_seq = 0;
    int64_t node_id = 0;
    std::string provider;
    std::optional<int64_t> previous;  // the enrichment this answer supersedes
  };
  std::unordered_map<int64_t, Claimed> running;
  {
    const std::string ids =
        JsonIdArray(completions, [](const TaskCompletion& c) { return c.task_id; });
    ENRICHD_ASSIGN_OR_RETURN(
        sqlite3_stmt * find,
        Prepare("SELECT id, claim_seq, node_id, provider, enrichment_id FROM tasks "
                "WHERE id IN (SELECT value FROM json_each(?1)) AND status = 'running'"));
    running.reserve(completions.size());
    Query q(find, "find claimed tasks");
    q.BindStatic(1, ids);
    for (;;) {
      ENRICHD_ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) break;
      Claimed& t = running[q.Int(0)];
      t.claim_seq = q.Int(1);
      t.node_id = q.Int(2);
      t.provider = q.Text(3);
      if (!q.IsNull(4)) t.previous = q.Int(4);
    }
  }
  ENRICHD_ASSIGN_OR_RETURN(sqlite3_stmt * insert_node,
                           Prepare("INSERT INTO nodes (label, key, props) "
                                   "VALUES ('enrichment', ?1, ?2) "
                                   "ON CONFLICT (label, key) DO NOTHING"));
  ENRICHD_ASSIGN_OR_RETURN(sqlite3_stmt * insert_edge,
                           Prepare("INSERT INTO edges (type, src, dst, props) "
                                   "VALUES ('ENRICHED_BY', ?1, ?2, ?3)"));
  ENRICHD_ASSIGN_OR_RETURN(
      sqlite3_stmt * supersede,
      Prepare("UPDATE nodes SET props = json_set(props, '$.superseded', json('true')) "
              "WHERE id = ?1"));
  ENRICHD_ASSIGN_OR_RETURN(
      sqlite3_stmt * finish,
      Prepare("UPDATE tasks SET status = ?2, attempts = attempts + 1, expires_at = ?3, "
              "enrichment_id = ?4, lease_owner = NULL, lease_expires_at = NULL, "
              "last_error = NULL, updated_at = ?5 WHERE id = ?1"));

  int64_t applied = 0;
  const int64_t now_ms = WallNowMillis();
  // Reused across the batch (no allocation per task once grown).
  std::string provider;
  std::string props;
  std::string edge_props;
  std::string key;
  std::string fetched_at;  // quoted JSON string
  for (std::size_t i = 0; i < completions.size(); ++i) {
    const TaskCompletion& c = completions[i];
    const Provenance& p = c.result.provenance;
    auto it = running.find(c.task_id);
    if (it == running.end() || it->second.claim_seq != c.claim_seq) {
      continue;  // stale or unknown claim, or completed already: ignored
    }
    const int64_t node_id = it->second.node_id;
    const std::optional<int64_t> previous = it->second.previous;
    provider.swap(it->second.provider);
    running.erase(it);  // the same completion twice in one batch applies once
    const bool ok = c.result.outcome == Outcome::kOk;
    fetched_at.clear();
    AppendRfc3339String(fetched_at, p.fetched_at);
    // Same members and order as before; keys are constants, so they are written literally.
    props.clear();
    props += "{\"provider\":";
    AppendJsonString(props, provider);
    props += ",\"kind\":";
    AppendJsonString(props, c.result.kind);
    props += ok ? ",\"status\":\"ok\",\"data\":" : ",\"status\":\"no_data\",\"data\":";
    props += c.result.data_json.empty() ? std::string_view("{}") : c.result.data_json;
    props += ",\"adapter\":";
    AppendJsonString(props, p.adapter);
    props += ",\"adapter_version\":";
    AppendJsonString(props, p.adapter_version);
    props += ",\"endpoint\":";
    AppendJsonString(props, p.endpoint);
    props += ",\"http_status\":";
    AppendInt(props, p.http_status);
    props += ",\"fetched_at\":";
    props += fetched_at;
    props += ",\"expires_at\":";
    AppendRfc3339String(props, p.expires_at);
    props += ",\"attempts\":";
    AppendInt(props, p.attempts);
    props += ",\"latency_ms\":";
    AppendInt(props, std::chrono::duration_cast<std::chrono::milliseconds>(p.latency).count());
    props += ",\"response_digest\":";
    AppendJsonString(props, p.response_digest);
    props += ",\"run_id\":";
    AppendJsonString(props, p.run_id);
    props += '}';
    key = provider;
    key += '/';
    AppendInt(key, node_id);
    key += '/';
    AppendInt(key, c.claim_seq);
    int64_t enrichment_id = 0;
    {
      Query q(insert_node, "insert enrichment node");
      q.BindStatic(1, key).BindStatic(2, props);
      ENRICHD_RETURN_IF_ERROR(q.Run());
      if (q.Changes() == 0) {
        return InternalError(Context("enrichment node '" + key + "' already exists"));
      }
      enrichment_id = sqlite3_last_insert_rowid(db_);
    }
    {
      edge_props = "{\"provider\":";
      AppendJsonString(edge_props, provider);
      edge_props += ",\"fetched_at\":";
      edge_props += fetched_at;
      edge_props += '}';
      Query q(insert_edge, "insert ENRICHED_BY edge");
      q.Bind(1, node_id).Bind(2, enrichment_id).BindStatic(3, edge_props);
      ENRICHD_RETURN_IF_ERROR(q.Run());
    }
    if (previous) {
      Query q(supersede, "mark superseded");
      q.Bind(1, *previous);
      ENRICHD_RETURN_IF_ERROR(q.Run());
    }
    {
      Query q(finish, "finish task");
      q.Bind(1, c.task_id)
          .Bind(2, ok ? std::string_view("done") : std::string_view("no_data"))
          .Bind(3, ToUnixMillis(p.expires_at))
          .Bind(4, enrichment_id)
          .Bind(5, now_ms);
      ENRICHD_RETURN_IF_ERROR(q.Run());
    }
    ++applied;
  }
  ENRICHD_RETURN_IF_ERROR(tx.Commit());
  return applied;
}

template <typename Item, typename BindFn>
Result<int64_t> SqliteStore::UpdateEach(std::string_view what, const std::string& sql,
                                        std::span<const Item> items, BindFn bind) {
  if (items.empty()) return int64_t{0};
  Transaction tx(*this);
  ENRICHD_RETURN_IF_ERROR(tx.Begin(true));
  ENRICHD_ASSIGN_OR_RETURN(sqlite3_stmt * stmt, Prepare(sql));
  int64_t changed = 0;
  for (const Item& item : items) {
    Query q(stmt, what);
    bind(q, item);
    ENRICHD_RETURN_IF_ERROR(q.Run());
    changed += q.Changes();
  }
  ENRICHD_RETURN_IF_ERROR(tx.Commit());
  return changed;
}

Result<int64_t> SqliteStore::ScheduleRetries(std::span<const TaskRetry> retries) {
  const int64_t now_ms = WallNowMillis();
  return UpdateEach<TaskRetry>(
      "schedule retry",
      "UPDATE tasks SET status = 'pending', next_attempt_at = ?3, last_error = ?4, "
      "attempts = attempts + ?5, lease_owner = NULL, lease_expires_at = NULL, updated_at = ?6 "
      "WHERE id = ?1 AND claim_seq = ?2 AND status = 'running'",
      retries, [&](Query& q, const TaskRetry& r) {
        q.Bind(1, r.task_id)
            .Bind(2, r.claim_seq)
            .Bind(3, ToUnixMillis(r.next_attempt_at))
            .Bind(4, r.last_error)
            .Bind(5, int64_t{r.count_attempt ? 1 : 0})
            .Bind(6, now_ms);
      });
}

Result<int64_t> SqliteStore::FinishTasks(std::span<const TaskFinal> finals) {
  for (const TaskFinal& f : finals) {
    if (f.status != TaskStatus::kSkipped && f.status != TaskStatus::kDead) {
      return InvalidArgumentError("FinishTasks: task " + std::to_string(f.task_id) +
                                  ": status must be skipped or dead, not '" +
                                  std::string(TaskStatusName(f.status)) + "'");
    }
  }
  const int64_t now_ms = WallNowMillis();
  return UpdateEach<TaskFinal>(
      "finish task",
      "UPDATE tasks SET status = ?3, last_error = ?4, attempts = attempts + ?5, "
      "lease_owner = NULL, lease_expires_at = NULL, updated_at = ?6 "
      "WHERE id = ?1 AND claim_seq = ?2 AND status = 'running'",
      finals, [&](Query& q, const TaskFinal& f) {
        q.Bind(1, f.task_id)
            .Bind(2, f.claim_seq)
            .Bind(3, StatusSql(f.status))
            .Bind(4, f.reason)
            .Bind(5, int64_t{f.count_attempt ? 1 : 0})
            .Bind(6, now_ms);
      });
}

Result<int64_t> SqliteStore::RenewLeases(std::string_view lease_owner,
                                         std::span<const int64_t> task_ids, WallTime until) {
  const int64_t until_ms = ToUnixMillis(until);
  return UpdateEach<int64_t>("renew lease",
                             "UPDATE tasks SET lease_expires_at = ?3 "
                             "WHERE id = ?1 AND lease_owner = ?2 AND status = 'running'",
                             task_ids, [&](Query& q, int64_t id) {
                               q.Bind(1, id).Bind(2, lease_owner).Bind(3, until_ms);
                             });
}

Result<int64_t> SqliteStore::ReleaseLeases(std::string_view lease_owner) {
  const std::string_view owners[] = {lease_owner};
  const int64_t now_ms = WallNowMillis();
  return UpdateEach<std::string_view>(
      "release leases",
      "UPDATE tasks SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL, "
      "updated_at = ?2 WHERE rowid IN (SELECT rowid FROM tasks INDEXED BY tasks_lease "
      "WHERE status = 'running' AND lease_owner = ?1)",
      owners, [&](Query& q, std::string_view owner) { q.Bind(1, owner).Bind(2, now_ms); });
}

Result<int64_t> SqliteStore::ReclaimExpiredLeases(WallTime now) {
  const int64_t nows[] = {ToUnixMillis(now)};
  return UpdateEach<int64_t>(
      "reclaim expired leases",
      "UPDATE tasks SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL, "
      "updated_at = ?1 WHERE status = 'running' AND lease_expires_at < ?1",
      nows, [&](Query& q, int64_t now_ms) { q.Bind(1, now_ms); });
}

Result<int64_t> SqliteStore::Requeue(const RequeueRequest& request, WallTime now) {
  const RequeueRequest requests[] = {request};
  const int64_t now_ms = ToUnixMillis(now);
  const std::string sql =
      request.dead
          ? "UPDATE tasks SET status = 'pending', attempts = 0, next_attempt_at = ?2, "
            "last_error = NULL, updated_at = ?2 "
            "WHERE (status = 'dead' OR (status = 'pending' AND next_attempt_at > ?2)) "
            "AND (?1 IS NULL OR provider = ?1)"
          : "UPDATE tasks SET next_attempt_at = ?2, updated_at = ?2 "
            "WHERE status = 'pending' AND next_attempt_at > ?2 AND (?1 IS NULL OR provider = ?1)";
  return UpdateEach<RequeueRequest>("requeue", sql, requests,
                                    [&](Query& q, const RequeueRequest& r) {
                                      if (r.provider) {
                                        q.Bind(1, *r.provider);
                                      } else {
                                        q.BindNull(1);
                                      }
                                      q.Bind(2, now_ms);
                                    });
}

Result<StoreCounts> SqliteStore::Counts() {
  StoreCounts counts;
  Transaction tx(*this);
  ENRICHD_RETURN_IF_ERROR(tx.Begin(false));
  {
    ENRICHD_ASSIGN_OR_RETURN(sqlite3_stmt * stmt, Prepare("SELECT (SELECT count(*) FROM nodes), "
                                                          "(SELECT count(*) FROM edges)"));
    Query q(stmt, "count nodes and edges");
    ENRICHD_ASSIGN_OR_RETURN(bool row, q.Step());
    if (row) {
      counts.nodes = q.Int(0);
      counts.edges = q.Int(1);
    }
  }
  {
    ENRICHD_ASSIGN_OR_RETURN(
        sqlite3_stmt * stmt,
        Prepare("SELECT provider, status, count(*) FROM tasks GROUP BY provider, status"));
    Query q(stmt, "count tasks");
    for (;;) {
      ENRICHD_ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) break;
      ProviderCounts& pc = counts.providers[q.Text(0)];
      const int64_t n = q.Int(2);
      const std::optional<TaskStatus> status = TaskStatusFromName(q.Text(1));
      if (!status) return DataLossError(Context("task with unknown status '" + q.Text(1) + "'"));
      switch (*status) {
        case TaskStatus::kPending:
          pc.pending += n;
          break;
        case TaskStatus::kRunning:
          pc.running += n;
          break;
        case TaskStatus::kDone:
          pc.done += n;
          break;
        case TaskStatus::kNoData:
          pc.no_data += n;
          break;
        case TaskStatus::kSkipped:
          pc.skipped += n;
          break;
        case TaskStatus::kDead:
          pc.dead += n;
          break;
      }
    }
  }
  ENRICHD_RETURN_IF_ERROR(tx.Commit());
  return counts;
}

Result<std::optional<NodeView>> SqliteStore::GetNode(std::string_view label, std::string_view key) {
  NodeView view;
  Transaction tx(*this);
  ENRICHD_RETURN_IF_ERROR(tx.Begin(false));
  {
    ENRICHD_ASSIGN_OR_RETURN(
        sqlite3_stmt * stmt,
        Prepare("SELECT id, label, key, props FROM nodes WHERE label = ?1 AND key = ?2"));
    Query q(stmt, "get node");
    q.Bind(1, label).Bind(2, key);
    ENRICHD_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) return std::optional<NodeView>();
    view.node = {q.Int(0), q.Text(1), q.Text(2), q.Text(3)};
  }
  {
    ENRICHD_ASSIGN_OR_RETURN(
        sqlite3_stmt * stmt,
        Prepare("SELECT e.id, e.type, e.src, e.dst, e.props, n.id, n.label, n.key, n.props "
                "FROM edges e JOIN nodes n ON n.id = e.dst "
                "WHERE e.src = ?1 AND e.type = 'ENRICHED_BY' ORDER BY n.id DESC"));
    Query q(stmt, "get enrichments");
    q.Bind(1, view.node.id);
    for (;;) {
      ENRICHD_ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) break;
      view.edges.push_back({q.Int(0), q.Text(1), q.Int(2), q.Int(3), q.Text(4)});
      view.enrichments.push_back({q.Int(5), q.Text(6), q.Text(7), q.Text(8)});
    }
  }
  ENRICHD_RETURN_IF_ERROR(tx.Commit());
  return std::optional<NodeView>(std::move(view));
}

Status SqliteStore::Export(ExportSink& sink) {
  // One read snapshot for the whole export, stepped row by row (memory stays flat).
  Transaction tx(*this);
  ENRICHD_RETURN_IF_ERROR(tx.Begin(false));
  {
    ENRICHD_ASSIGN_OR_RETURN(sqlite3_stmt * stmt,
                             Prepare("SELECT id, label, key, props FROM nodes ORDER BY id"));
    Query q(stmt, "export nodes");
    StoredNode node;
    for (;;) {
      ENRICHD_ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) break;
      node.id = q.Int(0);
      node.label = q.Text(1);
      node.key = q.Text(2);
      node.props_json = q.Text(3);
      ENRICHD_RETURN_IF_ERROR(sink.OnNode(node));
    }
  }
  {
    ENRICHD_ASSIGN_OR_RETURN(sqlite3_stmt * stmt,
                             Prepare("SELECT id, type, src, dst, props FROM edges ORDER BY id"));
    Query q(stmt, "export edges");
    StoredEdge edge;
    for (;;) {
      ENRICHD_ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) break;
      edge.id = q.Int(0);
      edge.type = q.Text(1);
      edge.src = q.Int(2);
      edge.dst = q.Int(3);
      edge.props_json = q.Text(4);
      ENRICHD_RETURN_IF_ERROR(sink.OnEdge(edge));
    }
  }
  return tx.Commit();
}

}  // namespace

Result<std::unique_ptr<GraphStore>> OpenSqliteStore(std::string_view path) {
  auto store = std::make_unique<SqliteStore>(std::string(path));
  ENRICHD_RETURN_IF_ERROR(store->Open());
  return std::unique_ptr<GraphStore>(std::move(store));
}

}  // namespace enrichd

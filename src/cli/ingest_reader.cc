#include "cli/ingest_reader.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>
#include <future>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_set>

#include "enrichd/item.h"

namespace enrichd::cli {
namespace {

constexpr std::size_t kChunkBytes = 64 * 1024;
constexpr std::size_t kMaxExampleBytes = 200;

// Splits a stream into lines without ever holding more than one line (capped at
// kMaxLineBytes) plus one chunk. Drops a leading UTF-8 BOM and a trailing CR.
class LineSource {
 public:
  explicit LineSource(std::istream& in) : in_(in), buf_(kChunkBytes) {}

  // Returns false at the end of the input. *too_long is set when the line exceeded
  // kMaxLineBytes (its content is then only the first kMaxLineBytes).
  Result<bool> NextLine(std::string* line, bool* too_long) {
    line->clear();
    *too_long = false;
    bool any = false;
    while (true) {
      if (pos_ == end_) {
        if (eof_) break;
        in_.read(buf_.data(), static_cast<std::streamsize>(buf_.size()));
        const auto n = static_cast<std::size_t>(in_.gcount());
        if (in_.bad()) return DataLossError("read error on input");
        pos_ = 0;
        end_ = n;
        if (n < buf_.size()) eof_ = true;
        if (n == 0) break;
      }
      const char* start = buf_.data() + pos_;
      const void* nl = std::memchr(start, '\n', end_ - pos_);
      const std::size_t seg =
          nl ? static_cast<std::size_t>(static_cast<const char*>(nl) - start) : end_ - pos_;
      any = true;
      Append(line, start, seg, too_long);
      pos_ += seg;
      if (nl) {
        ++pos_;  // the newline
        break;
      }
    }
    if (!any) return false;
    ++line_number_;
    if (!line->empty() && line->back() == '\r') line->pop_back();
    if (line_number_ == 1 && line->starts_with("\xEF\xBB\xBF")) line->erase(0, 3);
    return true;
  }

  int64_t line_number() const { return line_number_; }

 private:
  static void Append(std::string* line, const char* data, std::size_t n, bool* too_long) {
    if (*too_long) return;
    if (line->size() + n > kMaxLineBytes) {
      line->append(data, kMaxLineBytes - line->size());
      *too_long = true;
      return;
    }
    line->append(data, n);
  }

  std::istream& in_;
  std::vector<char> buf_;
  std::size_t pos_ = 0;
  std::size_t end_ = 0;
  bool eof_ = false;
  int64_t line_number_ = 0;
};

bool IsBlank(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v'; });
}

std::string_view TrimView(std::string_view s) {
  const char* ws = " \t\r\n\v\f";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

std::string TooLongReason() {
  return "line longer than " + std::to_string(kMaxLineBytes) + " bytes";
}

class LinesReader final : public RecordReader {
 public:
  explicit LinesReader(std::istream& in) : src_(in) {}

  Result<bool> Next(RawRecord* out) override {
    std::string line;
    bool too_long = false;
    while (true) {
      ENRICHD_ASSIGN_OR_RETURN(bool more, src_.NextLine(&line, &too_long));
      if (!more) return false;
      std::string_view t = TrimView(line);
      if (!too_long && (t.empty() || t.front() == '#')) continue;
      out->line = src_.line_number();
      out->value = std::move(line);
      out->error = too_long ? TooLongReason() : std::string();
      return true;
    }
  }

 private:
  LineSource src_;
};

class JsonlReader final : public RecordReader {
 public:
  JsonlReader(std::istream& in, std::string field) : src_(in), field_(std::move(field)) {}

  Result<bool> Next(RawRecord* out) override {
    std::string line;
    bool too_long = false;
    while (true) {
      ENRICHD_ASSIGN_OR_RETURN(bool more, src_.NextLine(&line, &too_long));
      if (!more) return false;
      if (!too_long && IsBlank(line)) continue;
      out->line = src_.line_number();
      out->error.clear();
      if (too_long) {
        out->value = std::move(line);
        out->error = TooLongReason();
        return true;
      }
      nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (j.is_discarded()) {
        out->error = "not valid JSON";
      } else if (!j.is_object()) {
        out->error = "not a JSON object";
      } else if (auto it = j.find(field_); it == j.end()) {
        out->error = "no field '" + field_ + "'";
      } else if (!it->is_string()) {
        out->error = "field '" + field_ + "' is not a string (" + it->type_name() + ")";
      } else {
        out->value = it->get<std::string>();
        return true;
      }
      out->value = std::move(line);
      return true;
    }
  }

 private:
  LineSource src_;
  std::string field_;
};

// RFC 4180 CSV, one record at a time; only the wanted column is kept.
class CsvReader final : public RecordReader {
 public:
  CsvReader(std::istream& in, std::string label, std::optional<std::size_t> index, std::string name)
      : src_(in), label_(std::move(label)), index_(index), name_(std::move(name)) {}

  Result<bool> Next(RawRecord* out) override {
    std::vector<std::string> fields;
    while (true) {
      int64_t line_no = 0;
      std::string error;
      ENRICHD_ASSIGN_OR_RETURN(bool more, ReadRecord(&fields, &line_no, &error));
      if (!more) return false;
      out->line = line_no;
      out->error.clear();
      out->value.clear();
      const bool first = !seen_first_;
      seen_first_ = true;
      if (!error.empty()) {
        out->error = std::move(error);
        out->value = fields.empty() ? std::string() : fields.front();
        return true;
      }
      if (first && !index_) {
        ENRICHD_RETURN_IF_ERROR(FindHeaderColumn(fields));
        continue;
      }
      const std::size_t idx = *index_;
      if (idx >= fields.size()) {
        out->error = "record has " + std::to_string(fields.size()) + " field" +
                     (fields.size() == 1 ? "" : "s") + ", no column " + std::to_string(idx + 1);
        out->value = Joined(fields);
        return true;
      }
      if (first && LooksLikeHeader(fields[idx])) continue;
      out->value = std::move(fields[idx]);
      return true;
    }
  }

 private:
  static std::string Joined(const std::vector<std::string>& fields) {
    std::string s;
    for (std::size_t i = 0; i < fields.size(); ++i) {
      if (i) s += ',';
      s += fields[i];
    }
    return s;
  }

  bool LooksLikeHeader(const std::string& value) const {
    std::string_view v = TrimView(value);
    if (v.size() == label_.size() &&
        std::equal(v.begin(), v.end(), label_.begin(), [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) ==
                 std::tolower(static_cast<unsigned char>(b));
        })) {
      return true;
    }
    return !Item::Make(label_, value).ok();
  }

  Status FindHeaderColumn(const std::vector<std::string>& header) {
    auto find = [&](bool ignore_case) -> std::optional<std::size_t> {
      for (std::size_t i = 0; i < header.size(); ++i) {
        std::string_view h = TrimView(header[i]);
        if (h.size() != name_.size()) continue;
        const bool eq = ignore_case
                            ? std::equal(h.begin(), h.end(), name_.begin(),
                                         [](char a, char b) {
                                           return std::tolower(static_cast<unsigned char>(a)) ==
                                                  std::tolower(static_cast<unsigned char>(b));
                                         })
                            : h == name_;
        if (eq) return i;
      }
      return std::nullopt;
    };
    index_ = find(false);
    if (!index_) index_ = find(true);
    if (index_) return Status::Ok();
    std::string names;
    for (std::size_t i = 0; i < header.size() && i < 20; ++i) {
      names += (i ? ", " : "") + std::string(TrimView(header[i]));
    }
    return InvalidArgumentError("CSV header has no column '" + name_ + "' (columns: " + names +
                                ")");
  }

  // Reads one CSV record (possibly spanning lines). Blank lines between records are
  // skipped. *error is set for a malformed or oversized record.
  Result<bool> ReadRecord(std::vector<std::string>* fields, int64_t* line_no, std::string* error) {
    fields->clear();
    std::string line;
    bool too_long = false;
    std::string cur;
    bool in_quotes = false;
    std::size_t total = 0;
    bool started = false;
    while (true) {
      ENRICHD_ASSIGN_OR_RETURN(bool more, src_.NextLine(&line, &too_long));
      if (!more) {
        if (!started) return false;
        fields->push_back(std::move(cur));
        *error = "unterminated quoted field";
        return true;
      }
      if (!started) {
        if (!too_long && IsBlank(line)) continue;
        started = true;
        *line_no = src_.line_number();
      }
      total += line.size() + 1;
      if (too_long || total > kMaxLineBytes) {
        // Skip the rest of an oversized record: only possible to resync at a line end,
        // so continue as if the record ended here.
        fields->assign(1, line.substr(0, kMaxExampleBytes));
        *error = "record longer than " + std::to_string(kMaxLineBytes) + " bytes";
        return true;
      }
      for (std::size_t i = 0; i < line.size(); ++i) {
        const char c = line[i];
        if (in_quotes) {
          if (c == '"') {
            if (i + 1 < line.size() && line[i + 1] == '"') {
              cur += '"';
              ++i;
            } else {
              in_quotes = false;
            }
          } else {
            cur += c;
          }
        } else if (c == ',') {
          fields->push_back(std::move(cur));
          cur.clear();
        } else if (c == '"' && TrimView(cur).empty()) {
          cur.clear();
          in_quotes = true;
        } else {
          cur += c;  // lenient: a stray quote inside an unquoted field is kept
        }
      }
      if (in_quotes) {
        cur += '\n';
        continue;
      }
      fields->push_back(std::move(cur));
      return true;
    }
  }

  LineSource src_;
  std::string label_;
  std::optional<std::size_t> index_;
  std::string name_;
  bool seen_first_ = false;
};

std::string Shorten(std::string_view s) {
  if (s.size() <= kMaxExampleBytes) return std::string(s);
  return std::string(s.substr(0, kMaxExampleBytes)) + "...";
}

}  // namespace

Result<InputFormat> ParseInputFormat(std::string_view name) {
  if (name == "lines") return InputFormat::kLines;
  if (name == "csv") return InputFormat::kCsv;
  if (name == "jsonl") return InputFormat::kJsonl;
  return InvalidArgumentError("unknown input format '" + std::string(name) +
                              "' (use lines, csv or jsonl)");
}

Result<std::unique_ptr<RecordReader>> MakeRecordReader(std::istream& in,
                                                       const IngestOptions& options) {
  if (options.label.empty()) return InvalidArgumentError("empty --label");
  switch (options.format) {
    case InputFormat::kLines:
      return std::unique_ptr<RecordReader>(std::make_unique<LinesReader>(in));
    case InputFormat::kJsonl: {
      std::string field = options.field.empty() ? options.label : options.field;
      return std::unique_ptr<RecordReader>(std::make_unique<JsonlReader>(in, std::move(field)));
    }
    case InputFormat::kCsv: {
      std::string_view col = TrimView(options.column);
      if (col.empty()) return InvalidArgumentError("empty --column");
      std::size_t n = 0;
      auto [ptr, ec] = std::from_chars(col.data(), col.data() + col.size(), n);
      if (ec == std::errc() && ptr == col.data() + col.size()) {
        if (n == 0) return InvalidArgumentError("--column index starts at 1");
        return std::unique_ptr<RecordReader>(
            std::make_unique<CsvReader>(in, options.label, n - 1, std::string()));
      }
      return std::unique_ptr<RecordReader>(
          std::make_unique<CsvReader>(in, options.label, std::nullopt, std::string(col)));
    }
  }
  return InvalidArgumentError("unknown input format");
}

Status IngestRecords(RecordReader& reader, GraphStore& store, const IngestOptions& options,
                     IngestReport* report, const IngestProgress& progress) {
  const std::size_t batch_size = std::max<std::size_t>(options.batch_size, 1);
  std::vector<SourceNode> batch;
  batch.reserve(batch_size);
  std::unordered_set<std::string> in_batch;
  in_batch.reserve(batch_size * 2);

  auto reject = [&](int64_t line, std::string_view value, std::string reason) {
    ++report->rejected;
    if (report->rejected_examples.size() < options.max_examples) {
      report->rejected_examples.push_back({line, Shorten(value), std::move(reason)});
    }
  };
  // The store writes one batch on a thread of its own while this thread reads, checks and
  // canonicalises the next one (for PostgreSQL the server works meanwhile too): at most
  // one batch is in flight, so memory holds two batches. The report is only updated here.
  std::future<Result<UpsertStats>> in_flight;
  auto wait_in_flight = [&]() -> Status {
    if (!in_flight.valid()) return Status::Ok();
    auto stats = in_flight.get();
    if (!stats.ok()) return stats.status().WithContext("storing source nodes");
    report->added += stats->added;
    report->existing += stats->existing;
    if (progress) progress(*report);
    return Status::Ok();
  };
  auto flush = [&]() -> Status {
    ENRICHD_RETURN_IF_ERROR(wait_in_flight());
    if (batch.empty()) return Status::Ok();
    in_flight = std::async(std::launch::async, [&store, nodes = std::move(batch)] {
      return store.UpsertSourceNodes(nodes);
    });
    batch = {};
    batch.reserve(batch_size);
    in_batch.clear();
    return Status::Ok();
  };
  // Whatever happens below, the batch in flight is waited for before `batch` and the
  // store go away.
  struct WaitAtExit {
    std::future<Result<UpsertStats>>& f;
    ~WaitAtExit() {
      if (f.valid()) f.wait();
    }
  } wait_at_exit{in_flight};

  RawRecord rec;
  while (true) {
    ENRICHD_ASSIGN_OR_RETURN(bool more, reader.Next(&rec));
    if (!more) break;
    ++report->read;
    if (!rec.ok()) {
      reject(rec.line, rec.value, std::move(rec.error));
      continue;
    }
    auto item = Item::Make(options.label, rec.value);
    if (!item.ok()) {
      reject(rec.line, rec.value, item.status().message());
      continue;
    }
    if (!in_batch.insert(item->key).second) {
      ++report->existing;
      continue;
    }
    batch.push_back(SourceNode{options.label, std::move(item->key), "{}"});
    if (batch.size() >= batch_size) ENRICHD_RETURN_IF_ERROR(flush());
  }
  ENRICHD_RETURN_IF_ERROR(flush());
  return wait_in_flight();
}

std::string IngestReportJson(const IngestReport& report) {
  nlohmann::ordered_json j;
  j["read"] = report.read;
  j["added"] = report.added;
  j["existing"] = report.existing;
  j["rejected"] = report.rejected;
  j["rejected_examples"] = nlohmann::ordered_json::array();
  for (const auto& r : report.rejected_examples) {
    nlohmann::ordered_json e;
    e["line"] = r.line;
    e["value"] = r.value;
    e["reason"] = r.reason;
    j["rejected_examples"].push_back(std::move(e));
  }
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

std::string IngestReportText(const IngestReport& report) {
  std::ostringstream os;
  os << "read " << report.read << ", added " << report.added << ", already present "
     << report.existing << ", rejected " << report.rejected << "\n";
  if (!report.rejected_examples.empty()) {
    os << (report.rejected > static_cast<int64_t>(report.rejected_examples.size())
               ? "first rejected lines:\n"
               : "rejected lines:\n");
    for (const auto& r : report.rejected_examples) {
      // JSON string quoting makes control characters and odd bytes visible and safe.
      std::string shown =
          nlohmann::json(r.value).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      os << "  line " << r.line << ": " << shown << ": " << r.reason << "\n";
    }
  }
  return os.str();
}

}  // namespace enrichd::cli

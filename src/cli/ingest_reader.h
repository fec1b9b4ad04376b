// Ingest input: reading values to add as source nodes from plain lines, a CSV column or
// a JSONL field, and streaming them into a GraphStore in batches (`enrichd ingest`).
//
// Input handling, whatever the format:
//   - a UTF-8 byte order mark at the very start is dropped; lines end in LF or CRLF;
//   - a line longer than kMaxLineBytes is rejected ("line longer than ... bytes") and
//     skipped without holding it in memory;
//   - line numbers are 1-based physical lines of the input (a CSV record spanning lines
//     reports the line it starts on).
// Formats:
//   lines: one value per line; blank lines and lines whose first non-blank character is
//          '#' are ignored.
//   csv:   RFC 4180 (commas, "quoted" fields with "" for a quote, quoted line breaks);
//          blank lines ignored. `column` is a 1-based index or a header name. With a name,
//          the first record is the header and must contain it (matched exactly, then
//          ignoring case). With an index, the first record is taken as a header when its
//          value in that column is not a valid key for the label (e.g. "ip").
//   jsonl: one JSON object per line; `field` names a top-level member whose value must be
//          a string. Blank lines ignored.
//
// Memory: bounded by the batch size and the longest line, not by the input size.
// Thread-compatible: one reader per stream, one thread (IngestRecords hands each batch to
// a thread of its own for the store, one batch at a time).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <istream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "enrichd/graph_store.h"
#include "enrichd/status.h"

namespace enrichd::cli {

inline constexpr std::size_t kMaxLineBytes = 1 << 20;  // 1 MiB

enum class InputFormat { kLines, kCsv, kJsonl };

// "lines", "csv", "jsonl" (kInvalidArgument otherwise, naming the accepted values).
Result<InputFormat> ParseInputFormat(std::string_view name);

struct IngestOptions {
  std::string label = "ip";
  InputFormat format = InputFormat::kLines;
  std::string column = "1";  // csv: 1-based index or header name
  std::string field;         // jsonl: member name; empty means the label ("ip")
  // Fewer, larger transactions: much less fsync work, and each batch is one sorted sweep
  // over the nodes index (bench/ingest_bench.sh, one batch at a time: 200,000 beat 50,000
  // and 400,000). With the next batch read while one is stored, two are in memory:
  // 100,000 keeps 1M lines into SQLite at 3.1 s and 65 MB (200,000: 3.1 s, 95 MB).
  std::size_t batch_size = 100000;
  std::size_t max_examples = 5;  // rejected lines kept for the report
};

// One value taken from the input, or the reason the line could not give one.
struct RawRecord {
  int64_t line = 0;
  std::string value;
  std::string error;  // non-empty: the record is rejected for this reason

  bool ok() const { return error.empty(); }
};

class RecordReader {
 public:
  virtual ~RecordReader() = default;
  // Fills *out with the next record. Returns false at the end of the input, or an error
  // when the stream itself fails (kDataLoss), or the CSV header lacks the named column
  // (kInvalidArgument).
  virtual Result<bool> Next(RawRecord* out) = 0;
};

// Options are checked here: a bad column index or empty field is kInvalidArgument.
// `in` must outlive the reader.
Result<std::unique_ptr<RecordReader>> MakeRecordReader(std::istream& in,
                                                       const IngestOptions& options);

struct RejectedLine {
  int64_t line = 0;
  std::string value;  // as read, shortened to at most 200 bytes
  std::string reason;
};

struct IngestReport {
  int64_t read = 0;      // records considered (not blank lines, comments or a header)
  int64_t added = 0;     // new source nodes
  int64_t existing = 0;  // already in the store, or repeated within the input
  int64_t rejected = 0;  // invalid: never stored
  std::vector<RejectedLine> rejected_examples;  // the first max_examples of them

  int64_t valid() const { return added + existing; }
};

// Called after each batch is stored (for progress display); may be empty.
using IngestProgress = std::function<void(const IngestReport&)>;

// Reads every record, validates and canonicalises it with Item::Make(options.label, ...)
// and upserts the valid ones in batches of options.batch_size (duplicates inside a batch
// are collapsed before the store sees them). On a store or stream error the report holds
// what was done so far and the error is returned (batches already stored stay stored).
Status IngestRecords(RecordReader& reader, GraphStore& store, const IngestOptions& options,
                     IngestReport* report, const IngestProgress& progress = {});

// {"read":..,"added":..,"existing":..,"rejected":..,"rejected_examples":[{"line":..,
//  "value":..,"reason":..}]} on one line (invalid UTF-8 replaced by U+FFFD).
std::string IngestReportJson(const IngestReport& report);
// The readable summary: counts, then the example lines ("  line 7: '01.2.3.4': ...").
std::string IngestReportText(const IngestReport& report);

}  // namespace enrichd::cli

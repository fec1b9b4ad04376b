// enrichd ingest: add source nodes from plain lines, a CSV column or a JSONL field.
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>

#include "cli/args.h"
#include "cli/command.h"
#include "cli/data_commands.h"
#include "cli/ingest_reader.h"
#include "enrichd/clock.h"
#include "enrichd/config.h"

namespace enrichd::cli {
namespace {

constexpr std::string_view kCmd = "ingest";
constexpr std::string_view kUsage =
    "enrichd ingest [--store URL] [--label ip] [--format lines|csv|jsonl] [--column N|NAME] "
    "[--field NAME] [--json] FILE|-";
constexpr std::string_view kUsageLong =
    "enrichd ingest [--store URL] [--label ip] [--format lines|csv|jsonl] [--column N|NAME] "
    "[--field NAME] [--json] FILE|-\n"
    "  lines (default): one value per line, blank lines and # comments ignored\n"
    "  csv: --column is a 1-based index (default 1) or a header name\n"
    "  jsonl: --field names a string member (default: the label)\n"
    "  --format defaults from the file name (.csv, .jsonl/.ndjson); --column implies csv,\n"
    "  --field implies jsonl\n"
    "  --batch-size N: values per store transaction (default 100000)";

// Progress on stderr: a rewritten line on a terminal, a plain line every 10 s otherwise.
class Progress {
 public:
  Progress() : tty_(::isatty(STDERR_FILENO) == 1), last_(SystemClock::Instance().Now()) {}

  void Update(const IngestReport& r) {
    const MonoTime now = SystemClock::Instance().Now();
    if (now - last_ < (tty_ ? std::chrono::milliseconds(200) : std::chrono::seconds(10))) return;
    last_ = now;
    shown_ = true;
    std::cerr << (tty_ ? "\r" : "") << "enrichd ingest: " << r.read << " read, " << r.added
              << " added, " << r.existing << " present, " << r.rejected << " rejected"
              << (tty_ ? "" : "\n") << std::flush;
  }

  void Done() {
    if (tty_ && shown_) std::cerr << "\n";
  }

 private:
  bool tty_;
  bool shown_ = false;
  MonoTime last_;
};

int RunIngest(const std::vector<std::string>& argv) {
  auto args =
      ParseCommandArgs(kCmd, kUsageLong, argv,
                       {"store", "label", "format", "column", "field", "batch-size"}, {"json"});
  if (!args) return kExitUsage;
  if (args->positionals().size() != 1) {
    return UsageError(kCmd, kUsageLong,
                      args->positionals().empty()
                          ? "missing input FILE (use - for standard input)"
                          : "one input FILE only, got '" + args->positionals()[1] + "' too");
  }
  const std::string input = args->positionals().front();

  IngestOptions options;
  options.label = args->GetOr("label", "ip");
  if (options.label.empty()) return UsageError(kCmd, kUsageLong, "empty --label");
  if (auto format = args->Get("format")) {
    auto f = ParseInputFormat(*format);
    if (!f.ok()) return UsageError(kCmd, kUsageLong, f.status().message());
    options.format = *f;
  } else if (args->Has("column") && !args->Has("field")) {
    options.format = InputFormat::kCsv;
  } else if (args->Has("field") && !args->Has("column")) {
    options.format = InputFormat::kJsonl;
  } else if (input.ends_with(".csv")) {
    options.format = InputFormat::kCsv;
  } else if (input.ends_with(".jsonl") || input.ends_with(".ndjson")) {
    options.format = InputFormat::kJsonl;
  }
  if (args->Has("column") && options.format != InputFormat::kCsv) {
    return UsageError(kCmd, kUsageLong, "--column applies to --format csv only");
  }
  if (args->Has("field") && options.format != InputFormat::kJsonl) {
    return UsageError(kCmd, kUsageLong, "--field applies to --format jsonl only");
  }
  options.column = args->GetOr("column", "1");
  options.field = args->GetOr("field", "");
  if (args->Has("field") && options.field.empty())
    return UsageError(kCmd, kUsageLong, "empty --field");
  if (auto bs = args->Get("batch-size")) {
    char* end = nullptr;
    const long long n = std::strtoll(bs->c_str(), &end, 10);
    if (bs->empty() || *end != '\0' || n < 1 || n > 1000000) {
      return UsageError(kCmd, kUsageLong, "--batch-size must be a number from 1 to 1000000");
    }
    options.batch_size = static_cast<std::size_t>(n);
  }

  std::ifstream file;
  std::istream* in = &std::cin;
  if (input != "-") {
    file.open(input, std::ios::binary);
    if (!file) {
      return Fail(kCmd, NotFoundError("cannot open '" + input + "': " + std::strerror(errno)));
    }
    in = &file;
  }
  auto reader = MakeRecordReader(*in, options);
  if (!reader.ok()) return UsageError(kCmd, kUsageLong, reader.status().message());

  auto store =
      OpenStoreForCommand(ResolveStoreUrl(args->Get("store"), nullptr), /*must_exist=*/false);
  if (!store.ok()) return Fail(kCmd, store.status());

  IngestReport report;
  Progress progress;
  Status s = IngestRecords(**reader, **store, options, &report,
                           [&](const IngestReport& r) { progress.Update(r); });
  progress.Done();
  std::cout << (args->Has("json") ? IngestReportJson(report) + "\n" : IngestReportText(report))
            << std::flush;
  if (!s.ok()) {
    // A bad CSV header is the user's to fix (2); a store or read failure is 1.
    return Fail(kCmd, s);
  }
  if (report.valid() == 0) {
    std::cerr << "enrichd ingest: no valid " << options.label << " values in "
              << (input == "-" ? "standard input" : "'" + input + "'") << "\n";
    return kExitFailure;
  }
  return kExitOk;
}

}  // namespace

ENRICHD_COMMAND({.name = "ingest",
                 .usage = std::string(kUsage),
                 .summary = "add source nodes (lines, CSV column or JSONL field; - for stdin)",
                 .run = RunIngest,
                 .order = 20});

}  // namespace enrichd::cli

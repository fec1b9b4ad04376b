// enrichd export [--store URL] --format jsonl|graphml|cypher [--output FILE]
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <system_error>

#include "cli/args.h"
#include "cli/command.h"
#include "cli/data_commands.h"
#include "cli/export_writer.h"
#include "enrichd/config.h"

namespace enrichd::cli {
namespace {

constexpr std::string_view kCmd = "export";
constexpr std::string_view kUsage =
    "enrichd export [--store URL] [--format jsonl|graphml|cypher] [--output FILE]";

int RunExport(const std::vector<std::string>& argv) {
  auto args = ParseCommandArgs(kCmd, kUsage, argv, {"store", "format", "output"}, {});
  if (!args) return kExitUsage;
  if (!args->positionals().empty()) {
    return UsageError(kCmd, kUsage, "unexpected argument '" + args->positionals().front() + "'");
  }
  auto format = ParseExportFormat(args->GetOr("format", "jsonl"));
  if (!format.ok()) return UsageError(kCmd, kUsage, format.status().message());
  const std::optional<std::string> output = args->Get("output");
  if (output && output->empty()) return UsageError(kCmd, kUsage, "empty --output");

  auto store =
      OpenStoreForCommand(ResolveStoreUrl(args->Get("store"), nullptr), /*must_exist=*/true);
  if (!store.ok()) return Fail(kCmd, store.status());

  // To a file: write a temporary beside it and rename on success, so a failed export
  // never leaves a truncated file under the final name.
  std::ofstream file;
  std::string tmp;
  std::ostream* out = &std::cout;
  if (output && *output != "-") {
    tmp = *output + ".tmp";
    file.open(tmp, std::ios::binary | std::ios::trunc);
    if (!file) {
      return Fail(kCmd, UnavailableError("cannot write '" + tmp + "'"));
    }
    out = &file;
  } else {
    std::ios::sync_with_stdio(false);  // nothing was written yet; much faster stdout
  }
  auto writer = MakeExportWriter(*format, *out);
  Status s = writer->Begin();
  if (s.ok()) s = (*store)->Export(*writer);
  if (s.ok()) s = writer->Finish();
  if (!tmp.empty()) {
    file.close();
    std::error_code ec;
    if (s.ok() && !file) s = UnavailableError("write failed on '" + tmp + "'");
    if (s.ok()) {
      std::filesystem::rename(tmp, *output, ec);
      if (ec)
        s = UnavailableError("cannot rename '" + tmp + "' to '" + *output + "': " + ec.message());
    }
    if (!s.ok()) std::filesystem::remove(tmp, ec);
  }
  if (!s.ok()) {
    std::cout.flush();
    return Fail(kCmd,
                Status(s.code() == StatusCode::kInvalidArgument ? StatusCode::kInternal : s.code(),
                       s.message())
                    .WithContext("export failed"));
  }
  return kExitOk;
}

}  // namespace

ENRICHD_COMMAND({.name = "export",
                 .usage = std::string(kUsage),
                 .summary = "write the graph as JSONL (default), GraphML or Cypher statements",
                 .run = RunExport,
                 .order = 60});

}  // namespace enrichd::cli

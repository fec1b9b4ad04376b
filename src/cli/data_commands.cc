#include "cli/data_commands.h"

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <system_error>

#include "cli/command.h"
#include "enrichd/config.h"

namespace enrichd::cli {

int UsageError(std::string_view command, std::string_view usage, std::string_view message) {
  // Only the synopsis (first line); --help shows the rest.
  std::cerr << "enrichd " << command << ": " << message
            << "\nusage: " << usage.substr(0, usage.find('\n')) << "\n";
  return kExitUsage;
}

int Fail(std::string_view command, const Status& status) {
  std::cerr << "enrichd " << command << ": " << status.message() << "\n";
  return status.code() == StatusCode::kInvalidArgument ? kExitUsage : kExitFailure;
}

std::optional<Args> ParseCommandArgs(std::string_view command, std::string_view usage,
                                     const std::vector<std::string>& argv,
                                     const std::set<std::string>& value_options,
                                     const std::set<std::string>& flag_options) {
  for (const auto& a : argv) {
    if (a == "--help" || a == "-h") {
      std::cout << "usage: " << usage << "\n";
      std::exit(kExitOk);
    }
  }
  auto args = Args::Parse(argv, value_options, flag_options);
  if (!args.ok()) {
    UsageError(command, usage, args.status().message());
    return std::nullopt;
  }
  return std::move(args).value();
}

std::string RedactUrl(std::string_view url) { return MaskUrlPassword(url); }

std::optional<std::string> SqlitePathOf(std::string_view url) {
  if (url.starts_with("sqlite://")) return std::string(url.substr(9));
  if (url.find("://") != std::string_view::npos) return std::nullopt;
  return std::string(url);
}

Result<std::unique_ptr<GraphStore>> OpenStoreForCommand(std::string_view url, bool must_exist) {
  const std::string shown = RedactUrl(url);
  if (url.empty()) return InvalidArgumentError("empty store URL");
  if (must_exist) {
    if (auto path = SqlitePathOf(url); path && *path != ":memory:" && !path->empty()) {
      std::error_code ec;
      if (!std::filesystem::exists(*path, ec)) {
        return NotFoundError("no store at " + shown + " (create it with 'enrichd init --store " +
                             shown + "')");
      }
    }
  }
  auto store = OpenGraphStore(url);
  if (!store.ok()) return store.status().WithContext("cannot open store " + shown);
  return store;
}

}  // namespace enrichd::cli

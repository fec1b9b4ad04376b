// enrichd init [--store URL]: create or migrate the graph schema.
#include <filesystem>
#include <iostream>
#include <system_error>

#include "cli/args.h"
#include "cli/command.h"
#include "cli/data_commands.h"
#include "enrichd/config.h"

namespace enrichd::cli {
namespace {

constexpr std::string_view kCmd = "init";
constexpr std::string_view kUsage = "enrichd init [--store URL]";

int RunInit(const std::vector<std::string>& argv) {
  auto args = ParseCommandArgs(kCmd, kUsage, argv, {"store"}, {});
  if (!args) return kExitUsage;
  if (!args->positionals().empty()) {
    return UsageError(kCmd, kUsage, "unexpected argument '" + args->positionals().front() + "'");
  }
  const std::string url = ResolveStoreUrl(args->Get("store"), nullptr);
  bool created = false;
  if (auto path = SqlitePathOf(url); path && !path->empty() && *path != ":memory:") {
    std::error_code ec;
    created = !std::filesystem::exists(*path, ec);
  }
  auto store = OpenStoreForCommand(url, /*must_exist=*/false);
  if (!store.ok()) return Fail(kCmd, store.status());
  if (Status s = (*store)->Migrate(); !s.ok()) {
    return Fail(kCmd, s.WithContext("migrating " + (*store)->Describe()));
  }
  if (created) {
    std::cout << "created " << (*store)->Describe() << " with the current schema\n";
  } else {
    std::cout << (*store)->Describe() << ": schema is up to date\n";
  }
  return kExitOk;
}

}  // namespace

ENRICHD_COMMAND({.name = "init",
                 .usage = std::string(kUsage),
                 .summary = "create the graph schema, or migrate it to this version",
                 .run = RunInit,
                 .order = 10});

}  // namespace enrichd::cli

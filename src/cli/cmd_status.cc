// enrichd status [--store URL] [--json]: node, edge and task counts by provider.
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/args.h"
#include "cli/command.h"
#include "cli/data_commands.h"
#include "enrichd/config.h"

namespace enrichd::cli {
namespace {

constexpr std::string_view kCmd = "status";
constexpr std::string_view kUsage = "enrichd status [--store URL] [--json]";

std::string StatusJson(const StoreCounts& c) {
  nlohmann::ordered_json j;
  j["nodes"] = c.nodes;
  j["edges"] = c.edges;
  j["providers"] = nlohmann::ordered_json::object();
  for (const auto& [name, p] : c.providers) {
    j["providers"][name] = {{"pending", p.pending}, {"running", p.running}, {"done", p.done},
                            {"no_data", p.no_data}, {"skipped", p.skipped}, {"dead", p.dead}};
  }
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

std::string StatusTable(const StoreCounts& c) {
  std::string out =
      "nodes " + std::to_string(c.nodes) + ", edges " + std::to_string(c.edges) + "\n";
  if (c.providers.empty()) return out + "no tasks yet\n";
  std::size_t width = 8;
  for (const auto& [name, p] : c.providers) width = std::max(width, name.size());
  char buf[512];
  std::snprintf(buf, sizeof buf, "%-*s %9s %9s %9s %9s %9s %9s\n", static_cast<int>(width),
                "provider", "pending", "running", "done", "no_data", "skipped", "dead");
  out += buf;
  for (const auto& [name, p] : c.providers) {
    std::snprintf(buf, sizeof buf, "%-*s %9lld %9lld %9lld %9lld %9lld %9lld\n",
                  static_cast<int>(width), name.substr(0, 200).c_str(),
                  static_cast<long long>(p.pending), static_cast<long long>(p.running),
                  static_cast<long long>(p.done), static_cast<long long>(p.no_data),
                  static_cast<long long>(p.skipped), static_cast<long long>(p.dead));
    out += buf;
  }
  return out;
}

int RunStatus(const std::vector<std::string>& argv) {
  auto args = ParseCommandArgs(kCmd, kUsage, argv, {"store"}, {"json"});
  if (!args) return kExitUsage;
  if (!args->positionals().empty()) {
    return UsageError(kCmd, kUsage, "unexpected argument '" + args->positionals().front() + "'");
  }
  auto store =
      OpenStoreForCommand(ResolveStoreUrl(args->Get("store"), nullptr), /*must_exist=*/true);
  if (!store.ok()) return Fail(kCmd, store.status());
  auto counts = (*store)->Counts();
  if (!counts.ok()) return Fail(kCmd, counts.status().WithContext("reading counts"));
  std::cout << (args->Has("json") ? StatusJson(*counts) + "\n" : StatusTable(*counts));
  return kExitOk;
}

}  // namespace

ENRICHD_COMMAND({.name = "status",
                 .usage = std::string(kUsage),
                 .summary = "nodes, edges and tasks by provider and status",
                 .run = RunStatus,
                 .order = 40});

}  // namespace enrichd::cli

// enrichd run: schedule and enrich until done (--once) or forever.
#include <filesystem>
#include <iostream>

#include "cli/command.h"
#include "cli/data_commands.h"
#include "cli/run_support.h"
#include "enrichd/adapter.h"
#include "enrichd/config.h"

namespace enrichd::cli {
namespace {

constexpr char kUsage[] =
    "enrichd run [--config FILE] [--store URL] [--once] [--check] [--json] "
    "[--progress auto|terminal|plain|none]";

int RunRun(const std::vector<std::string>& argv) {
  auto args = ParseCommandArgs("run", kUsage, argv, {"config", "store", "progress", "run-id"},
                               {"once", "check", "json"});
  if (!args) return kExitUsage;
  if (!args->positionals().empty()) {
    return UsageError("run", kUsage, "unexpected argument '" + args->positionals()[0] + "'");
  }
  std::string path = args->GetOr("config", "");
  if (path.empty()) {
    if (!std::filesystem::exists("enrichd.yaml")) {
      return UsageError("run", kUsage,
                        "no configuration: pass --config FILE (or create enrichd.yaml)");
    }
    path = "enrichd.yaml";
  }
  auto config = LoadConfig(path);
  if (!config.ok()) {
    std::cerr << "enrichd run: " << config.status().message() << "\n";
    return kExitUsage;
  }
  if (Status s = CheckAdapterNames(*config, AdapterRegistry::Builtin().Names()); !s.ok()) {
    std::cerr << "enrichd run: " << s.message() << "\n";
    return kExitUsage;
  }
  const std::string store_url = ResolveStoreUrl(args->Get("store"), &*config);
  if (args->Has("check")) {
    // Build every adapter too, so a bad option or database path shows now.
    for (const auto& p : config->providers) {
      auto adapter = AdapterRegistry::Builtin().Create(p.ToAdapterSpec());
      if (!adapter.ok()) {
        std::cerr << "enrichd run: " << p.origin << ": provider '" << p.name
                  << "': " << adapter.status().message() << "\n";
        return kExitUsage;
      }
    }
    std::cout << "# effective configuration (store: " << MaskUrlPassword(store_url) << ")\n"
              << DescribeEffective(*config);
    return kExitOk;
  }

  SignalWatcher signals;  // before any thread starts
  auto store = OpenStoreForCommand(store_url, /*must_exist=*/false);
  if (!store.ok()) return Fail("run", store.status());

  EngineRunOptions options;
  options.once = args->Has("once");
  options.json_summary = args->Has("json");
  options.run_id = args->GetOr("run-id", "");
  options.store_url = store_url;
  const std::string progress = args->GetOr("progress", "auto");
  if (progress == "auto") {
    options.progress = ProgressDisplay::DetectMode(stdout);
  } else if (progress == "terminal") {
    options.progress = ProgressDisplay::Mode::kTerminal;
  } else if (progress == "plain") {
    options.progress = ProgressDisplay::Mode::kPlain;
  } else if (progress == "none") {
    options.progress = ProgressDisplay::Mode::kNone;
  } else {
    return UsageError("run", kUsage, "--progress must be auto, terminal, plain or none");
  }
  if (options.json_summary && progress == "auto") options.progress = ProgressDisplay::Mode::kNone;
  return RunEngine(*config, **store, signals, options);
}

}  // namespace

ENRICHD_COMMAND({.name = "run",
                 .usage = kUsage,
                 .summary = "schedule and enrich until done (--once) or forever; --check "
                            "validates the configuration and prints it with secrets masked",
                 .run = RunRun,
                 .order = 30});

}  // namespace enrichd::cli

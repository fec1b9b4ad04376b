// enrichd: the command-line program. Thin: finds the command and runs it.
#include <algorithm>
#include <iostream>
#include <string>
#include <vector>

#include "cli/command.h"

namespace enrichd::cli {
namespace {

std::vector<Command>& Registry() {
  static std::vector<Command> commands;
  return commands;
}

void PrintHelp(std::ostream& os) {
  os << "enrichd " << ENRICHD_VERSION
     << " - enrich graph records (IP addresses) with ASN and geolocation data\n\n"
        "usage: enrichd <command> [options]\n\ncommands:\n";
  for (const auto& c : RegisteredCommands()) {
    os << "  " << c.usage << "\n      " << c.summary << "\n";
  }
  os << "\nThe store comes from --store URL, else the config's store:, else ENRICHD_STORE,\n"
        "else sqlite://enrichd.db. Exit status: 0 done, 2 usage or configuration error,\n"
        "1 other failure, 130 interrupted.\n";
}

}  // namespace

CommandRegistrar::CommandRegistrar(Command command) {
  auto& commands = Registry();
  commands.push_back(std::move(command));
  std::stable_sort(commands.begin(), commands.end(),
                   [](const Command& a, const Command& b) { return a.order < b.order; });
}

const std::vector<Command>& RegisteredCommands() { return Registry(); }

const Command* FindCommand(std::string_view name) {
  for (const auto& c : Registry()) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

}  // namespace enrichd::cli

int main(int argc, char** argv) {
  using namespace enrichd::cli;
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "help" || args[0] == "--help" || args[0] == "-h") {
    PrintHelp(std::cout);
    return args.empty() ? kExitUsage : kExitOk;
  }
  if (args[0] == "--version" || args[0] == "version") {
    std::cout << "enrichd " << ENRICHD_VERSION << "\n";
    return kExitOk;
  }
  const Command* command = FindCommand(args[0]);
  if (command == nullptr) {
    std::cerr << "enrichd: unknown command '" << args[0] << "' (see 'enrichd help')\n";
    return kExitUsage;
  }
  std::vector<std::string> rest(args.begin() + 1, args.end());
  return command->run(rest);
}

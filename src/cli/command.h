// The command-line front end: each `enrichd <command>` lives in its own cmd_*.cc file
// and registers itself here, so adding a command touches no shared file.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace enrichd::cli {

// Exit statuses (DESIGN.md: command line).
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;  // usage or configuration error
inline constexpr int kExitInterrupted = 130;

struct Command {
  std::string name;
  std::string usage;    // "enrichd init [--store URL]"
  std::string summary;  // one line for `enrichd help`
  // Receives the arguments after the command name; returns the exit status.
  std::function<int(const std::vector<std::string>& args)> run;
  int order = 100;  // position in `enrichd help`
};

// Registers a command at static-initialisation time (see ENRICHD_COMMAND).
struct CommandRegistrar {
  explicit CommandRegistrar(Command command);
};

const std::vector<Command>& RegisteredCommands();
const Command* FindCommand(std::string_view name);

}  // namespace enrichd::cli

#define ENRICHD_CLI_CONCAT_INNER_(a, b) a##b
#define ENRICHD_CLI_CONCAT_(a, b) ENRICHD_CLI_CONCAT_INNER_(a, b)
// ENRICHD_COMMAND({.name = "init", .usage = ..., .summary = ..., .run = RunInit});
#define ENRICHD_COMMAND(...)                                         \
  static const ::enrichd::cli::CommandRegistrar ENRICHD_CLI_CONCAT_( \
      enrichd_command_, __LINE__)(::enrichd::cli::Command __VA_ARGS__)

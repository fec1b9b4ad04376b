// Helpers shared by the data commands (init, ingest, status, show, export, retry):
// argument parsing with usage errors, opening the store, and turning a Status into the
// one-line error and exit status of DESIGN.md (0 ok, 2 usage/configuration, 1 other).
#pragma once

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "cli/args.h"
#include "enrichd/graph_store.h"
#include "enrichd/status.h"

namespace enrichd::cli {

// Prints "enrichd <command>: <message>" and the usage's first line to stderr; returns
// kExitUsage.
int UsageError(std::string_view command, std::string_view usage, std::string_view message);

// Prints "enrichd <command>: <message>" to stderr; returns kExitUsage for
// kInvalidArgument, kExitFailure otherwise.
int Fail(std::string_view command, const Status& status);

// Args::Parse, or nullopt after printing the usage error (then exit with kExitUsage).
std::optional<Args> ParseCommandArgs(std::string_view command, std::string_view usage,
                                     const std::vector<std::string>& argv,
                                     const std::set<std::string>& value_options,
                                     const std::set<std::string>& flag_options);

// The URL with any password (user:password@ or password=...) replaced by "***".
std::string RedactUrl(std::string_view url);

// The SQLite file a URL names ("sqlite://path" or a bare path); nullopt for others.
std::optional<std::string> SqlitePathOf(std::string_view url);

// Opens the store. With must_exist, a SQLite URL naming a missing file is kNotFound
// ("no store at ...; run 'enrichd init'") instead of creating an empty database.
// Errors carry the redacted URL as context.
Result<std::unique_ptr<GraphStore>> OpenStoreForCommand(std::string_view url, bool must_exist);

}  // namespace enrichd::cli

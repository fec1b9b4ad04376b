// enrichd retry [--store URL] [--provider P] [--dead]: re-queue failed work.
#include <iostream>

#include "cli/args.h"
#include "cli/command.h"
#include "cli/data_commands.h"
#include "enrichd/clock.h"
#include "enrichd/config.h"

namespace enrichd::cli {
namespace {

constexpr std::string_view kCmd = "retry";
constexpr std::string_view kUsage = "enrichd retry [--store URL] [--provider P] [--dead]";

int RunRetry(const std::vector<std::string>& argv) {
  auto args = ParseCommandArgs(kCmd, kUsage, argv, {"store", "provider"}, {"dead"});
  if (!args) return kExitUsage;
  if (!args->positionals().empty()) {
    return UsageError(kCmd, kUsage, "unexpected argument '" + args->positionals().front() + "'");
  }
  RequeueRequest request;
  request.provider = args->Get("provider");
  if (request.provider && request.provider->empty()) {
    return UsageError(kCmd, kUsage, "empty --provider");
  }
  request.dead = args->Has("dead");
  auto store =
      OpenStoreForCommand(ResolveStoreUrl(args->Get("store"), nullptr), /*must_exist=*/true);
  if (!store.ok()) return Fail(kCmd, store.status());
  auto n = (*store)->Requeue(request, SystemClock::Instance().WallNow());
  if (!n.ok()) return Fail(kCmd, n.status().WithContext("re-queueing"));
  std::cout << "re-queued " << *n << (*n == 1 ? " task" : " tasks");
  if (request.provider) std::cout << " of provider " << *request.provider;
  std::cout << (request.dead ? " (waiting and dead tasks; attempts reset)\n"
                             : " (waiting retries are due now; add --dead for dead tasks)\n");
  return kExitOk;
}

}  // namespace

ENRICHD_COMMAND({.name = "retry",
                 .usage = std::string(kUsage),
                 .summary = "re-queue failed work: retries due now; --dead revives dead tasks",
                 .run = RunRetry,
                 .order = 70});

}  // namespace enrichd::cli

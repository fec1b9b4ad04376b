// enrichd mock-provider: serves the loopback mock of ipinfo, ip-api and RIPEstat in the
// foreground until SIGINT/SIGTERM, then prints what it received.
#include <pthread.h>
#include <signal.h>

#include <iostream>
#include <string>
#include <vector>

#include "cli/args.h"
#include "cli/command.h"
#include "enrichd/config.h"
#include "mock_provider/mock_provider.h"

namespace enrichd::cli {
namespace {

constexpr char kUsage[] =
    "enrichd mock-provider [--port N] [--scenario fast|realistic|flaky|outage|ratelimited] "
    "[--host 127.0.0.1] [--threads N] [--seed N] [--token T] [--latency DURATION]";

int Usage(const std::string& message) {
  std::cerr << "enrichd mock-provider: " << message << "\nusage: " << kUsage << "\n";
  return kExitUsage;
}

std::string Describe(const std::string& scenario) {
  if (scenario == "fast") return "no latency, no errors, ip-api windows effectively unlimited";
  if (scenario == "realistic") {
    return "latency 20-80 ms, 2% 503, rate limit 50/s burst 10 (429 beyond), outage 30-35 s, "
           "ip-api 45/60 s";
  }
  if (scenario == "flaky") return "10% 503";
  if (scenario == "outage") return "503 for the first 5 s";
  if (scenario == "ratelimited") return "rate limit 200/s burst 20 (429 + Retry-After beyond)";
  return "";
}

int RunMockProvider(const std::vector<std::string>& argv) {
  auto args =
      Args::Parse(argv, {"port", "scenario", "host", "threads", "seed", "token", "latency"}, {});
  if (!args.ok()) return Usage(args.status().message());
  if (!args->positionals().empty())
    return Usage("unexpected argument '" + args->positionals()[0] + "'");

  const std::string scenario = args->GetOr("scenario", "fast");
  auto options = mock::ScenarioOptions(scenario);
  if (!options.ok()) return Usage(options.status().message());
  mock::ServerOptions server;
  server.host = args->GetOr("host", "127.0.0.1");
  try {
    int port = std::stoi(args->GetOr("port", "0"));
    if (port < 0 || port > 65535) return Usage("--port must be 0..65535");
    server.port = static_cast<uint16_t>(port);
    server.threads = std::stoi(args->GetOr("threads", "1"));
    options->seed = std::stoull(args->GetOr("seed", "1"));
  } catch (...) {
    return Usage("--port, --threads and --seed take whole numbers");
  }
  options->required_token = args->GetOr("token", "");
  if (auto latency = args->Get("latency")) {  // replaces the scenario's latency (no jitter)
    auto d = ParseDuration(*latency);
    if (!d.ok() || *d < Duration::zero()) {
      return Usage("--latency takes a duration such as 50ms");
    }
    options->latency = *d;
    options->latency_jitter = Duration::zero();
  }

  // Block the signals before the server threads start (they inherit the mask), then wait
  // for one here.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigset_t previous;
  pthread_sigmask(SIG_BLOCK, &signals, &previous);

  auto provider = mock::MockProvider::Start(*options, server);
  if (!provider.ok()) {
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    std::cerr << "enrichd mock-provider: " << provider.status() << "\n";
    return provider.status().code() == StatusCode::kInvalidArgument ? kExitUsage : kExitFailure;
  }
  const std::string base = (*provider)->base_url();
  std::cout << "enrichd mock-provider: serving " << base << " (scenario " << scenario << ": "
            << Describe(scenario) << ")\n"
            << "  ipinfo    " << base << "/ipinfo/{ip}/json  /ipinfo/{ip}/{field}  "
            << "/ipinfo/lite/{ip}  POST /ipinfo/batch"
            << (options->required_token.empty() ? "" : "  (token required)") << "\n"
            << "  ip-api    " << base << "/ip-api/json/{ip}?fields=...  POST /ip-api/batch\n"
            << "  ripestat  " << base << "/ripestat/data/network-info/data.json?resource={ip}\n"
            << "            " << base << "/ripestat/data/as-overview/data.json?resource=AS{n}\n"
            << "  control   " << base << "/_mock/stats  POST /_mock/outage/on|off  "
            << "POST /_mock/reset\n"
            << "Ctrl-C to stop." << std::endl;

  int received = 0;
  sigwait(&signals, &received);
  (*provider)->Stop();
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  std::cout << "\nenrichd mock-provider: stopped by signal " << received << "; counters:\n"
            << (*provider)->Snapshot().ToJson() << std::endl;
  return kExitOk;
}

}  // namespace

ENRICHD_COMMAND({.name = "mock-provider",
                 .usage = kUsage,
                 .summary = "serve a simulated ipinfo/ip-api/RIPEstat on loopback (for tests)",
                 .run = RunMockProvider,
                 .order = 95});

}  // namespace enrichd::cli

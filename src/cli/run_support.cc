#include "cli/run_support.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>

#include "cli/command.h"
#include "cli/data_commands.h"
#include "http/curl_http_client.h"

namespace enrichd::cli {

namespace {
// Sent by ~SignalWatcher to its own thread, so that it returns at once rather than at its
// next timeout (which every run's exit used to wait for: up to 100 ms).
constexpr int kWakeSignal = SIGUSR1;
}  // namespace

SignalWatcher::SignalWatcher() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, kWakeSignal);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  thread_ = std::thread([this, set] {
    while (!stop_.load()) {
      timespec timeout{1, 0};  // a safety net only: the destructor wakes the thread
      const int sig = sigtimedwait(&set, nullptr, &timeout);
      if (sig < 0 || sig == kWakeSignal) continue;  // timeout, EINTR or the wake-up
      if (signals_.fetch_add(1) >= 1) {
        static const char kMsg[] = "\nenrichd: second signal, exiting now (leases will expire)\n";
        (void)!write(STDERR_FILENO, kMsg, sizeof kMsg - 1);
        _exit(kExitInterrupted);
      }
      static const char kMsg[] =
          "\nenrichd: stopping: finishing calls in flight, returning the rest to pending "
          "(signal again to exit now)\n";
      (void)!write(STDERR_FILENO, kMsg, sizeof kMsg - 1);
      std::function<void()> handler;
      {
        std::lock_guard<std::mutex> lock(mu_);
        handler = on_first_;
      }
      if (handler) handler();
    }
  });
}

SignalWatcher::~SignalWatcher() {
  stop_.store(true);
  // Stays pending if the thread is not waiting yet; sigtimedwait then takes it at once.
  pthread_kill(thread_.native_handle(), kWakeSignal);
  thread_.join();
}

void SignalWatcher::SetHandler(std::function<void()> on_first) {
  bool already = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    on_first_ = std::move(on_first);
    already = signals_.load() > 0;
  }
  if (already && on_first_) on_first_();
}

int RunEngine(const EnrichdConfig& config, GraphStore& store, SignalWatcher& signals,
              const EngineRunOptions& options, RunSummary* summary_out) {
  // Driven by the engine thread: answers are read and the next requests sent there, with
  // no hand-off to and from an I/O thread per request.
  CurlHttpClientOptions http_options;
  http_options.own_io_thread = false;
  auto http = CurlHttpClient::Create(std::move(http_options));
  if (!http.ok()) {
    std::fprintf(stderr, "enrichd run: %s\n", http.status().ToString().c_str());
    return kExitFailure;
  }
  auto engine = Engine::Create(config, {.http = http->get()});
  if (!engine.ok()) {
    std::fprintf(stderr, "enrichd run: %s\n", engine.status().message().c_str());
    return engine.status().code() == StatusCode::kInvalidArgument ? kExitUsage : kExitFailure;
  }
  Engine& eng = **engine;
  signals.SetHandler([&eng] { eng.Stop(); });

  ProgressDisplay display(options.out, options.progress);
  RunOptions run;
  run.once = options.once;
  run.run_id = options.run_id;
  if (options.progress != ProgressDisplay::Mode::kNone) {
    // Without a display the engine skips counting the progress totals.
    run.on_progress = [&display](const std::vector<ProviderStats>& stats, Duration elapsed) {
      display.Update(stats, elapsed);
    };
  }
  run.on_alert = [](const std::string& line) {
    std::fprintf(stderr, "enrichd run: ALERT: %s\n", line.c_str());
  };
  std::unique_ptr<GraphStore> worker_store;
  const auto sqlite_path = SqlitePathOf(options.store_url);
  const bool in_memory = sqlite_path && (sqlite_path->empty() || *sqlite_path == ":memory:");
  if (!options.store_url.empty() && !in_memory) {  // a second :memory: would be another db
    auto second = OpenStoreForCommand(options.store_url, /*must_exist=*/false);
    if (!second.ok()) {
      std::fprintf(stderr, "enrichd run: %s\n", second.status().ToString().c_str());
      return kExitFailure;
    }
    worker_store = std::move(second).value();
    run.worker_store = worker_store.get();
  }
  auto summary = eng.Run(store, run);
  signals.SetHandler(nullptr);
  display.Finish();
  if (!summary.ok()) {
    std::fprintf(stderr, "enrichd run: %s\n", summary.status().ToString().c_str());
    return kExitFailure;
  }
  if (options.json_summary) {
    std::fprintf(options.out, "%s\n", SummaryJson(*summary).c_str());
  } else {
    std::fprintf(options.out, "\n%s", FormatSummary(*summary).c_str());
  }
  std::fflush(options.out);
  if (summary_out) *summary_out = *summary;
  if (summary->interrupted) return kExitInterrupted;
  for (const auto& p : summary->providers) {
    if (p.auth_failed) return kExitFailure;
  }
  return kExitOk;
}

}  // namespace enrichd::cli

// What `enrichd run` and `enrichd demo` share: signals, the HTTP client, the engine with
// its progress display and summary.
#pragma once

#include <atomic>
#include <cstdio>
#include <functional>
#include <string>
#include <thread>

#include "cli/progress.h"
#include "enrichd/config.h"
#include "enrichd/engine.h"
#include "enrichd/graph_store.h"

namespace enrichd::cli {

// Turns SIGINT/SIGTERM into a graceful stop. Create it before any other thread so that
// every thread inherits the blocked mask; a dedicated thread waits for the signals. The
// first signal calls on_first(); a second one exits the process at once with status 130
// (leases make that safe: the tasks return to pending when they expire). SIGUSR1 is
// blocked too: the destructor sends it to wake the watcher's thread (an outside SIGUSR1 is
// ignored).
class SignalWatcher {
 public:
  SignalWatcher();
  ~SignalWatcher();
  void SetHandler(std::function<void()> on_first);
  bool signalled() const { return signals_.load() > 0; }

 private:
  std::atomic<int> signals_{0};
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::function<void()> on_first_;
  std::thread thread_;
};

struct EngineRunOptions {
  bool once = true;
  bool json_summary = false;
  ProgressDisplay::Mode progress = ProgressDisplay::Mode::kPlain;
  std::FILE* out = stdout;
  std::string run_id;
  // The store's URL: a second connection to it carries the engine's claims and writes on
  // a store thread (RunOptions::worker_store). Empty: one connection does everything.
  std::string store_url;
};

// Runs the engine on `store` with `config` until done (or a signal). Prints progress and
// the summary. Returns the exit status: 0 done, 130 interrupted, 1 failure (store error,
// or a provider refused our credentials).
int RunEngine(const EnrichdConfig& config, GraphStore& store, SignalWatcher& signals,
              const EngineRunOptions& options, RunSummary* summary_out = nullptr);

}  // namespace enrichd::cli

// Progress display and final summary for `enrichd run` and `enrichd demo`.
//
// On a terminal: one line per provider, redrawn in place (done/total, rate, ETA, breaker
// state, waiting on the rate limit). Otherwise: one plain line per provider every
// `plain_interval`, fit for logs. Not thread-safe: called from the engine's progress hook.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "enrichd/engine.h"

namespace enrichd::cli {

class ProgressDisplay {
 public:
  enum class Mode { kTerminal, kPlain, kNone };
  // kTerminal when `out` is a terminal, kPlain otherwise.
  static Mode DetectMode(std::FILE* out);

  ProgressDisplay(std::FILE* out, Mode mode, Duration plain_interval = std::chrono::seconds(5));
  void Update(const std::vector<ProviderStats>& stats, Duration elapsed);
  // Leaves the terminal clean before the summary is printed.
  void Finish();

 private:
  std::FILE* out_;
  Mode mode_;
  Duration plain_interval_;
  Duration last_plain_{-std::chrono::hours(1)};
  int lines_drawn_ = 0;
};

// The end-of-run table: per provider ok, no_data, skipped, dead, requests, retries, 429s,
// breaker openings, p50/p99 latency and throughput.
std::string FormatSummary(const RunSummary& summary);
// The same as one JSON object (for --json).
std::string SummaryJson(const RunSummary& summary);

}  // namespace enrichd::cli

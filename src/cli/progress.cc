#include "cli/progress.h"

#include <unistd.h>

#include <cmath>
#include <nlohmann/json.hpp>

namespace enrichd::cli {
namespace {

double Seconds(Duration d) { return std::chrono::duration<double>(d).count(); }

std::string Eta(int64_t remaining, double rate) {
  if (remaining <= 0) return "-";
  if (rate <= 0.01) return "?";
  const int64_t secs = static_cast<int64_t>(std::ceil(static_cast<double>(remaining) / rate));
  char buf[32];
  if (secs >= 3600) {
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", static_cast<long long>(secs / 3600),
                  static_cast<long long>(secs % 3600 / 60));
  } else {
    std::snprintf(buf, sizeof buf, "%lldm%02llds", static_cast<long long>(secs / 60),
                  static_cast<long long>(secs % 60));
  }
  return buf;
}

std::string ProviderLine(const ProviderStats& s, Duration elapsed) {
  const double secs = std::max(Seconds(elapsed), 1e-3);
  const int64_t done = s.finished();
  const double rate = static_cast<double>(done) / secs;
  const int64_t total = std::max(s.total, done);
  std::string state = s.breaker_state;
  if (s.auth_failed) state = "AUTH FAILED";
  char buf[320];
  std::snprintf(buf, sizeof buf, "%-16s %7lld/%-7lld %5.1f%%  %8.1f/s  eta %-7s  breaker %-9s%s%s",
                s.name.c_str(), static_cast<long long>(done), static_cast<long long>(total),
                total > 0 ? 100.0 * static_cast<double>(done) / static_cast<double>(total) : 100.0,
                rate, Eta(total - done, rate).c_str(), state.c_str(),
                s.waiting_rate_limit ? "  waiting on rate limit" : "",
                s.http_429 > 0 ? ("  429s " + std::to_string(s.http_429)).c_str() : "");
  return buf;
}

}  // namespace

ProgressDisplay::Mode ProgressDisplay::DetectMode(std::FILE* out) {
  return isatty(fileno(out)) ? Mode::kTerminal : Mode::kPlain;
}

ProgressDisplay::ProgressDisplay(std::FILE* out, Mode mode, Duration plain_interval)
    : out_(out), mode_(mode), plain_interval_(plain_interval) {}

void ProgressDisplay::Update(const std::vector<ProviderStats>& stats, Duration elapsed) {
  if (mode_ == Mode::kNone) return;
  if (mode_ == Mode::kPlain) {
    if (elapsed - last_plain_ < plain_interval_) return;
    last_plain_ = elapsed;
    for (const auto& s : stats) {
      std::fprintf(out_, "progress t=%.1fs %s\n", Seconds(elapsed),
                   ProviderLine(s, elapsed).c_str());
    }
    std::fflush(out_);
    return;
  }
  // Move up over the previous frame and redraw it.
  if (lines_drawn_ > 0) std::fprintf(out_, "\x1b[%dF", lines_drawn_);
  for (const auto& s : stats) {
    std::fprintf(out_, "\x1b[2K%s\n", ProviderLine(s, elapsed).c_str());
  }
  lines_drawn_ = static_cast<int>(stats.size());
  std::fflush(out_);
}

void ProgressDisplay::Finish() {
  lines_drawn_ = 0;
  std::fflush(out_);
}

std::string FormatSummary(const RunSummary& summary) {
  const double secs = std::max(Seconds(summary.elapsed), 1e-3);
  std::string out;
  char buf[400];
  std::snprintf(buf, sizeof buf, "run %s %s in %.1fs\n", summary.run_id.c_str(),
                summary.interrupted ? "interrupted" : "finished", secs);
  out += buf;
  std::snprintf(buf, sizeof buf, "%-16s %8s %8s %8s %6s %9s %8s %6s %6s %9s %9s %10s\n", "provider",
                "ok", "no_data", "skipped", "dead", "requests", "retries", "429s", "opens",
                "p50 ms", "p99 ms", "items/s");
  out += buf;
  for (const auto& s : summary.providers) {
    std::snprintf(buf, sizeof buf,
                  "%-16s %8lld %8lld %8lld %6lld %9lld %8lld %6lld %6lld %9.1f %9.1f %10.1f%s\n",
                  s.name.c_str(), static_cast<long long>(s.ok), static_cast<long long>(s.no_data),
                  static_cast<long long>(s.skipped), static_cast<long long>(s.dead),
                  static_cast<long long>(s.requests), static_cast<long long>(s.retries),
                  static_cast<long long>(s.http_429), static_cast<long long>(s.breaker_openings),
                  s.latency_p50_ms, s.latency_p99_ms, static_cast<double>(s.finished()) / secs,
                  s.auth_failed ? "  (credentials refused)" : "");
    out += buf;
  }
  return out;
}

std::string SummaryJson(const RunSummary& summary) {
  nlohmann::json j;
  j["run_id"] = summary.run_id;
  j["interrupted"] = summary.interrupted;
  j["elapsed_s"] = Seconds(summary.elapsed);
  auto& providers = j["providers"] = nlohmann::json::object();
  for (const auto& s : summary.providers) {
    providers[s.name] = {{"kind", s.kind},
                         {"ok", s.ok},
                         {"no_data", s.no_data},
                         {"skipped", s.skipped},
                         {"dead", s.dead},
                         {"requests", s.requests},
                         {"retries", s.retries},
                         {"http_429", s.http_429},
                         {"breaker_openings", s.breaker_openings},
                         {"latency_p50_ms", s.latency_p50_ms},
                         {"latency_p99_ms", s.latency_p99_ms},
                         {"items_per_s", static_cast<double>(s.finished()) /
                                             std::max(Seconds(summary.elapsed), 1e-3)},
                         {"auth_failed", s.auth_failed}};
  }
  return j.dump();
}

}  // namespace enrichd::cli

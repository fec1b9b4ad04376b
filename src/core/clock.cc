#include "enrichd/clock.h"

#include <cstdio>
#include <ctime>

namespace enrichd {

SystemClock& SystemClock::Instance() {
  static SystemClock clock;
  return clock;
}

MonoTime SystemClock::Now() const {
  return std::chrono::time_point_cast<Duration>(std::chrono::steady_clock::now());
}

WallTime SystemClock::WallNow() const {
  return std::chrono::time_point_cast<Duration>(std::chrono::system_clock::now());
}

namespace {
// 2026-01-01T00:00:00Z
constexpr int64_t kFakeWallStartNs = 1767225600LL * 1'000'000'000LL;
// An arbitrary, non-zero monotonic start so that "time zero" bugs show.
constexpr int64_t kFakeMonoStartNs = 1'000'000LL * 1'000'000'000LL;
}  // namespace

FakeClock::FakeClock() : mono_ns_(kFakeMonoStartNs), wall_ns_(kFakeWallStartNs) {}

MonoTime FakeClock::Now() const { return MonoTime(Duration(mono_ns_.load())); }

WallTime FakeClock::WallNow() const { return WallTime(Duration(wall_ns_.load())); }

void FakeClock::Advance(Duration d) {
  mono_ns_.fetch_add(d.count());
  wall_ns_.fetch_add(d.count());
}

void FakeClock::SetMonotonic(MonoTime t) { mono_ns_.store(t.time_since_epoch().count()); }

int64_t ToUnixMillis(WallTime t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

WallTime FromUnixMillis(int64_t ms) { return WallTime(std::chrono::milliseconds(ms)); }

std::string FormatRfc3339(WallTime t) {
  int64_t ms = ToUnixMillis(t);
  int64_t secs = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
  int millis = static_cast<int>(ms - secs * 1000);
  std::time_t tt = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
  return buf;
}

std::string FormatDuration(Duration d) {
  using namespace std::chrono;
  if (d < Duration::zero()) return "-" + FormatDuration(-d);
  int64_t ms = duration_cast<milliseconds>(d).count();
  if (ms == 0) {
    return d == Duration::zero() ? "0s" : std::to_string(d.count() / 1000) + "us";
  }
  if (ms < 1000) return std::to_string(ms) + "ms";
  std::string out;
  int64_t s = ms / 1000;
  int64_t rem_ms = ms % 1000;
  const int64_t days = s / 86400;
  s %= 86400;
  const int64_t hours = s / 3600;
  s %= 3600;
  const int64_t mins = s / 60;
  s %= 60;
  if (days) out += std::to_string(days) + "d";
  if (hours) out += std::to_string(hours) + "h";
  if (mins) out += std::to_string(mins) + "m";
  if (s || rem_ms) {
    out += std::to_string(s);
    if (rem_ms) {
      char buf[8];
      std::snprintf(buf, sizeof buf, ".%03lld", static_cast<long long>(rem_ms));
      std::string frac(buf);
      while (frac.back() == '0') frac.pop_back();
      out += frac;
    }
    out += "s";
  }
  return out;
}

}  // namespace enrichd

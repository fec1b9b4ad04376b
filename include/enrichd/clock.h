// Clock: the one source of time for everything in enrichd, injected so that tests
// advance a fake instead of sleeping.
//
// Two readings: Now() is monotonic (never goes backwards on a real clock; use it for
// rates, timeouts, backoff and leases within one process), WallNow() is calendar time
// (use it for anything stored or shown: fetched_at, next_attempt_at, expires_at).
// Implementations are thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

namespace enrichd {

using Duration = std::chrono::nanoseconds;
using MonoTime = std::chrono::time_point<std::chrono::steady_clock, Duration>;
using WallTime = std::chrono::time_point<std::chrono::system_clock, Duration>;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual MonoTime Now() const = 0;
  virtual WallTime WallNow() const = 0;
};

// The real clocks of the machine. Stateless; Instance() is shared by everyone.
class SystemClock final : public Clock {
 public:
  static SystemClock& Instance();
  MonoTime Now() const override;
  WallTime WallNow() const override;
};

// A clock that moves only when told to. Thread-safe (the readings are atomics), so a
// test may advance it while other threads read it. Starts at an arbitrary non-zero
// monotonic reading and at 2026-01-01T00:00:00Z on the wall.
class FakeClock final : public Clock {
 public:
  FakeClock();
  MonoTime Now() const override;
  WallTime WallNow() const override;
  // Moves both readings forward by d (d may be zero; negative d is a test bug).
  void Advance(Duration d);
  // Sets the monotonic reading only, possibly backwards (to test monotonicity guards).
  void SetMonotonic(MonoTime t);

 private:
  std::atomic<int64_t> mono_ns_;
  std::atomic<int64_t> wall_ns_;
};

// Milliseconds since the Unix epoch: the form times are stored in.
int64_t ToUnixMillis(WallTime t);
WallTime FromUnixMillis(int64_t ms);
// RFC 3339 in UTC with milliseconds, e.g. "2026-11-28T16:25:06.123Z".
std::string FormatRfc3339(WallTime t);

// Human form of a duration: "250ms", "2s", "1m30s", "7d".
std::string FormatDuration(Duration d);

}  // namespace enrichd

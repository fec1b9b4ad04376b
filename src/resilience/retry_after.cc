#include "enrichd/resilience/retry_after.h"

#include <array>
#include <cctype>
#include <cstdint>

#include "enrichd/resilience/deadline.h"

namespace enrichd::resilience {
namespace {

using std::chrono::days;
using std::chrono::seconds;

constexpr std::array<std::string_view, 7> kShortDays = {"Mon", "Tue", "Wed", "Thu",
                                                        "Fri", "Sat", "Sun"};
constexpr std::array<std::string_view, 7> kLongDays = {
    "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"};
constexpr std::array<std::string_view, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// A forward-only reader over the header value; every method fails softly (false).
class Cursor {
 public:
  explicit Cursor(std::string_view s) : s_(s) {}

  bool Literal(std::string_view lit) {
    if (s_.substr(0, lit.size()) != lit) return false;
    s_.remove_prefix(lit.size());
    return true;
  }
  bool Char(char c) { return Literal(std::string_view(&c, 1)); }
  // Exactly `n` digits.
  bool Digits(int n, int* out) {
    if (s_.size() < static_cast<size_t>(n)) return false;
    int value = 0;
    for (int i = 0; i < n; ++i) {
      if (!IsDigit(s_[i])) return false;
      value = value * 10 + (s_[i] - '0');
    }
    s_.remove_prefix(n);
    *out = value;
    return true;
  }
  // One of `names`; returns its index.
  template <size_t N>
  bool OneOf(const std::array<std::string_view, N>& names, int* index) {
    for (size_t i = 0; i < N; ++i) {
      // Longest names first would matter only for prefixes; day/month names are distinct.
      if (Literal(names[i])) {
        *index = static_cast<int>(i);
        return true;
      }
    }
    return false;
  }
  // "HH:MM:SS".
  bool Time(int* h, int* m, int* sec) {
    return Digits(2, h) && Char(':') && Digits(2, m) && Char(':') && Digits(2, sec) && *h <= 23 &&
           *m <= 59 && *sec <= 60;
  }
  bool AtEnd() const { return s_.empty(); }
  std::string_view rest() const { return s_; }

 private:
  std::string_view s_;
};

int YearOf(WallTime now) {
  const auto day =
      std::chrono::floor<days>(std::chrono::sys_time<Duration>(now.time_since_epoch()));
  return static_cast<int>(std::chrono::year_month_day(day).year());
}

// Seconds since the Unix epoch of a UTC calendar time; nullopt for an impossible date.
std::optional<int64_t> ToUnixSeconds(int year, int month, int day, int h, int m, int s) {
  const std::chrono::year_month_day ymd{std::chrono::year(year),
                                        std::chrono::month(static_cast<unsigned>(month)),
                                        std::chrono::day(static_cast<unsigned>(day))};
  if (!ymd.ok()) return std::nullopt;
  const int64_t day_count = std::chrono::sys_days(ymd).time_since_epoch().count();
  return day_count * 86400 + int64_t{h} * 3600 + int64_t{m} * 60 + s;
}

std::optional<int64_t> ParseHttpDateSeconds(std::string_view value, WallTime now) {
  Cursor c(TrimOws(value));
  int wday = 0, day = 0, month = 0, year = 0, h = 0, m = 0, s = 0;
  if (c.OneOf(kLongDays, &wday)) {
    // RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT".
    int yy = 0;
    if (!(c.Literal(", ") && c.Digits(2, &day) && c.Char('-') && c.OneOf(kMonths, &month) &&
          c.Char('-') && c.Digits(2, &yy) && c.Char(' ') && c.Time(&h, &m, &s) &&
          c.Literal(" GMT") && c.AtEnd())) {
      return std::nullopt;
    }
    // A two-digit year more than 50 years in the future is in the past century (RFC 9110).
    const int now_year = YearOf(now);
    year = now_year / 100 * 100 + yy;
    if (year > now_year + 50) year -= 100;
  } else if (c.OneOf(kShortDays, &wday)) {
    if (c.Literal(", ")) {
      // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT".
      if (!(c.Digits(2, &day) && c.Char(' ') && c.OneOf(kMonths, &month) && c.Char(' ') &&
            c.Digits(4, &year) && c.Char(' ') && c.Time(&h, &m, &s) && c.Literal(" GMT") &&
            c.AtEnd())) {
        return std::nullopt;
      }
    } else {
      // asctime: "Sun Nov  6 08:49:37 1994".
      if (!(c.Char(' ') && c.OneOf(kMonths, &month) && c.Char(' '))) return std::nullopt;
      if (c.Char(' ')) {
        if (!c.Digits(1, &day)) return std::nullopt;
      } else if (!c.Digits(2, &day)) {
        return std::nullopt;
      }
      if (!(c.Char(' ') && c.Time(&h, &m, &s) && c.Char(' ') && c.Digits(4, &year) && c.AtEnd())) {
        return std::nullopt;
      }
    }
  } else {
    return std::nullopt;
  }
  return ToUnixSeconds(year, month + 1, day, h, m, s);
}

}  // namespace

std::optional<WallTime> ParseHttpDate(std::string_view value, WallTime now) {
  const auto secs = ParseHttpDateSeconds(value, now);
  if (!secs) return std::nullopt;
  // WallTime counts nanoseconds in int64: years outside ~1678..2261 do not fit.
  constexpr int64_t kMaxSeconds = INT64_MAX / 1'000'000'000;
  if (*secs > kMaxSeconds || *secs < -kMaxSeconds) return std::nullopt;
  return WallTime(seconds(*secs));
}

std::optional<Duration> ParseRetryAfter(std::string_view value, WallTime now, Duration cap) {
  value = TrimOws(value);
  if (value.empty()) return std::nullopt;
  const int64_t cap_seconds = std::chrono::duration_cast<seconds>(cap).count();
  if (IsDigit(value.front())) {
    // delta-seconds: 1*DIGIT, nothing else (no sign, no fraction).
    int64_t secs = 0;
    for (char ch : value) {
      if (!IsDigit(ch)) return std::nullopt;
      secs = secs * 10 + (ch - '0');
      if (secs > cap_seconds) return std::nullopt;  // also stops any overflow
    }
    const Duration delay = seconds(secs);
    if (delay > cap) return std::nullopt;
    return delay;
  }
  const auto date_secs = ParseHttpDateSeconds(value, now);
  if (!date_secs) return std::nullopt;
  const int64_t now_ns = now.time_since_epoch().count();
  // Compare in seconds first so far-away dates cannot overflow nanoseconds.
  const int64_t now_secs = now_ns / 1'000'000'000;
  if (*date_secs - now_secs > cap_seconds + 1) return std::nullopt;
  if (*date_secs < now_secs - 1) return Duration::zero();  // already passed: retry now
  const Duration delay = Duration(*date_secs * 1'000'000'000 - now_ns);
  if (delay <= Duration::zero()) return Duration::zero();
  if (delay > cap) return std::nullopt;
  return delay;
}

Duration JitterRetryAfter(Duration delay, Random& random) {
  if (delay < Duration::zero()) delay = Duration::zero();
  return SaturatingAdd(delay, random.UniformDuration(Duration::zero(), delay / 2));
}

}  // namespace enrichd::resilience

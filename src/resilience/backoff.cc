#include "enrichd/resilience/backoff.h"

#include <algorithm>
#include <array>
#include <string>
#include <utility>

namespace enrichd::resilience {
namespace {

constexpr std::array<std::pair<JitterMode, std::string_view>, 4> kModeNames{{
    {JitterMode::kFull, "full"},
    {JitterMode::kDecorrelated, "decorrelated"},
    {JitterMode::kEqual, "equal"},
    {JitterMode::kNone, "none"},
}};

}  // namespace

std::string_view JitterModeName(JitterMode mode) {
  for (const auto& [value, name] : kModeNames) {
    if (value == mode) return name;
  }
  return "unknown";
}

Result<JitterMode> JitterModeFromName(std::string_view name) {
  for (const auto& [value, n] : kModeNames) {
    if (n == name) return value;
  }
  return InvalidArgumentError("retry.jitter must be one of full, decorrelated, equal, none; got '" +
                              std::string(name) + "'");
}

Status BackoffConfig::Validate() const {
  if (max_attempts < 1) {
    return InvalidArgumentError("retry.max_attempts must be >= 1 (it counts the first call), got " +
                                std::to_string(max_attempts));
  }
  if (base_delay <= Duration::zero()) {
    return InvalidArgumentError("retry.base_delay must be > 0, got " + FormatDuration(base_delay));
  }
  if (max_delay < base_delay) {
    return InvalidArgumentError("retry.max_delay (" + FormatDuration(max_delay) +
                                ") must be >= retry.base_delay (" + FormatDuration(base_delay) +
                                ")");
  }
  if (JitterModeName(jitter) == "unknown") {
    return InvalidArgumentError("retry.jitter has an unknown value");
  }
  return Status::Ok();
}

Result<Backoff> Backoff::Create(const BackoffConfig& config) {
  ENRICHD_RETURN_IF_ERROR(config.Validate());
  return Backoff(config);
}

Duration Backoff::Ceiling(int retry) const {
  const int64_t base = config_.base_delay.count();
  const int64_t cap = config_.max_delay.count();
  const int exponent = retry <= 1 ? 0 : retry - 1;
  // base << exponent would exceed cap (or overflow): saturate at the cap.
  if (exponent >= 63 || base > (cap >> exponent)) return config_.max_delay;
  return Duration(std::min(cap, base << exponent));
}

Duration Backoff::NextDelay(int retry, Duration previous, Random& random) const {
  switch (config_.jitter) {
    case JitterMode::kFull:
      return random.UniformDuration(Duration::zero(), Ceiling(retry));
    case JitterMode::kDecorrelated: {
      const Duration base = config_.base_delay;
      const Duration prev = std::max(previous, base);
      const Duration tripled =
          prev.count() > Duration::max().count() / 3 ? Duration::max() : prev * 3;
      const Duration hi = std::min(config_.max_delay, tripled);
      return random.UniformDuration(base, hi);
    }
    case JitterMode::kEqual: {
      const Duration ceiling = Ceiling(retry);
      const Duration half = ceiling / 2;
      return half + random.UniformDuration(Duration::zero(), ceiling - half);
    }
    case JitterMode::kNone:
      return Ceiling(retry);
  }
  return Ceiling(retry);
}

}  // namespace enrichd::resilience

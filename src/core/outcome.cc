#include "enrichd/outcome.h"

#include <array>
#include <utility>

namespace enrichd {
namespace {
constexpr std::array<std::pair<Outcome, std::string_view>, 9> kNames{{
    {Outcome::kOk, "ok"},
    {Outcome::kNoData, "no_data"},
    {Outcome::kSkipped, "skipped"},
    {Outcome::kRateLimited, "rate_limited"},
    {Outcome::kTransient, "transient"},
    {Outcome::kPermanent, "permanent"},
    {Outcome::kAuth, "auth"},
    {Outcome::kCircuitOpen, "circuit_open"},
    {Outcome::kCancelled, "cancelled"},
}};
}  // namespace

std::string_view OutcomeName(Outcome o) {
  for (const auto& [value, name] : kNames) {
    if (value == o) return name;
  }
  return "unknown";
}

std::optional<Outcome> OutcomeFromName(std::string_view name) {
  for (const auto& [value, n] : kNames) {
    if (n == name) return value;
  }
  return std::nullopt;
}

bool IsRetryable(Outcome o) {
  return o == Outcome::kRateLimited || o == Outcome::kTransient || o == Outcome::kCircuitOpen ||
         o == Outcome::kCancelled;
}

bool RecordsInBreaker(Outcome o) {
  return o == Outcome::kOk || o == Outcome::kNoData || o == Outcome::kTransient;
}

bool IsBreakerFailure(Outcome o) { return o == Outcome::kTransient; }

bool IsAnswer(Outcome o) { return o == Outcome::kOk || o == Outcome::kNoData; }

}  // namespace enrichd

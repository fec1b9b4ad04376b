// Outcome: what one call (or one item's lookup) came to. The taxonomy of DESIGN.md;
// the engine decides retry, breaker accounting and task status from it alone.
#pragma once

#include <optional>
#include <string_view>

namespace enrichd {

enum class Outcome {
  kOk,           // an answer with data: stored
  kNoData,       // the provider has nothing for it (bogon, not in database): stored
  kSkipped,      // invalid or not-to-be-sent input: no call made
  kRateLimited,  // 429 or quota signal: retry after the reset, pause the provider
  kTransient,    // 5xx, connect error, timeout, truncated/malformed body: retry with backoff
  kPermanent,    // 400/404/422, a schema the adapter cannot read: dead
  kAuth,         // 401/403 (or 402 quota-funds): pause the provider and report
  kCircuitOpen,  // breaker open: no call made, retry when it half-opens
  kCancelled,    // shutdown or caller cancellation: task returns to pending
};

std::string_view OutcomeName(Outcome o);  // "ok", "no_data", ...
std::optional<Outcome> OutcomeFromName(std::string_view name);

// Whether the task may be tried again.
bool IsRetryable(Outcome o);
// Whether the circuit breaker records this as a failure (true), a success (for ok and
// no_data), or ignores it (RecordsInBreaker() false).
bool RecordsInBreaker(Outcome o);
bool IsBreakerFailure(Outcome o);
// Whether the outcome carries an answer to store (ok, no_data).
bool IsAnswer(Outcome o);

}  // namespace enrichd

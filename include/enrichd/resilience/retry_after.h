// Retry-After (RFC 9110 §10.2.3) parsing, as Envoy does it: the header is either
// delta-seconds ("120") or an HTTP-date ("Fri, 31 Dec 1999 23:59:59 GMT"; the obsolete
// RFC 850 and asctime forms are accepted too), read relative to an injected wall time.
//
// Returns the delay to wait, or nullopt meaning "do not retry on this basis" (fall back to
// ordinary backoff): garbage, negative numbers, fractions, impossible dates, and any value
// above `cap` (default 300 s) are all nullopt. A date in the past gives zero (retry now).
//
// Pure functions; thread-safe. The Random passed to JitterRetryAfter() is the caller's.
#pragma once

#include <optional>
#include <string_view>

#include "enrichd/clock.h"
#include "enrichd/random.h"

namespace enrichd::resilience {

inline constexpr Duration kDefaultRetryAfterCap = std::chrono::seconds(300);

std::optional<Duration> ParseRetryAfter(std::string_view value, WallTime now,
                                        Duration cap = kDefaultRetryAfterCap);

// Parses an HTTP-date (IMF-fixdate, RFC 850, asctime) as UTC; nullopt when malformed.
std::optional<WallTime> ParseHttpDate(std::string_view value, WallTime now);

// `delay` plus rand[0, 50%) of it, so that every client told "7" does not return at once
// (7 s -> [7 s, 10.5 s)). Negative delay counts as zero; saturates instead of overflowing.
Duration JitterRetryAfter(Duration delay, Random& random);

}  // namespace enrichd::resilience

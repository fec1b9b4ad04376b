// EnrichmentResult and Provenance: one provider's answer for one item, as adapters
// produce it and the store keeps it.
//
// `data_json` is the normalised answer as a JSON object text, by kind:
//   asn: {"asn": 15169, "org": "Google LLC", "prefix": "8.8.8.0/24",
//         "country_code"?: "US", "registry"?: "arin", "extra"?: {...}}
//   geo: {"country_code": "US", "country": "United States", "region": "California",
//         "city": "Mountain View", "lat": 37.386, "lon": -122.084,
//         "postal"?: "94035", "timezone"?: "America/Los_Angeles", "accuracy_km"?: 5,
//         "extra"?: {...}}
// Missing fields are omitted, never invented. Value types, thread-compatible.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "enrichd/clock.h"
#include "enrichd/outcome.h"

namespace enrichd {

inline constexpr std::string_view kKindAsn = "asn";
inline constexpr std::string_view kKindGeo = "geo";

struct Provenance {
  std::string adapter;          // adapter name, e.g. "ipinfo"
  std::string adapter_version;  // e.g. "1"
  std::string endpoint;         // URL called, secrets redacted; for local DBs the file path
  int http_status = 0;          // last HTTP status; 0 for local lookups
  WallTime fetched_at{};
  WallTime expires_at{};        // fetched_at + ttl (or no_data_ttl)
  int attempts = 0;             // attempts it took, including this one
  Duration latency{};           // of the successful attempt
  std::string response_digest;  // hex SHA-256 prefix of the raw response body
  std::string run_id;           // the run that produced it
};

struct EnrichmentResult {
  Outcome outcome = Outcome::kTransient;
  std::string kind;       // "asn", "geo"
  std::string data_json;  // normalised data (ok), "{}" or a reason object (no_data)
  // Human-readable reason for anything that is not ok ("private range", "HTTP 503").
  std::string reason;
  // For rate_limited / transient: how long the provider asked us to wait, if it said.
  std::optional<Duration> retry_after;
  Provenance provenance;
};

}  // namespace enrichd

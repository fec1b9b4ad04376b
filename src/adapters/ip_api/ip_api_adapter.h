// ip-api: the ip-api.com JSON API (asynchronous, external; default endpoint
// http://ip-api.com, the free tier is plain HTTP).
//
//   single: GET {endpoint}/json/{ip}?fields=status,message,country,countryCode,regionName,
//           city,lat,lon,isp,org,as,query
//   batch (spec.max_batch > 1, capped at 100): POST {endpoint}/batch?fields=... with a
//           JSON array of IPs -> a JSON array of answers in order. An answer is matched to
//           its item by "query" (falling back to position); an item with no answer is
//           `transient` ("missing from batch answer").
// Kind geo (default): country_code, country, region, city, lat, lon; ASN facts under
// extra {asn, as_name, isp, org}. Kind asn: asn + org from "as" ("AS15169 Google LLC"),
// country_code; isp/org under extra.
// Outcomes: 200 {"status":"fail"} with "private range"/"reserved range" -> no_data,
// "invalid query" (or any other message) -> permanent. 429 -> rate_limited with
// retry_after = X-Ttl (else Retry-After). Every answer's X-Rl/X-Ttl: when X-Rl is 0,
// ProviderPause() is X-Ttl seconds. Other statuses as in common/http_util.h.
// Auth (the pro tier): AuthSpec query parameter (default name "key") or header.
#pragma once

#include <memory>

#include "enrichd/adapter.h"

namespace enrichd::adapters {

Result<std::unique_ptr<Adapter>> MakeIpApiAdapter(const AdapterSpec& spec);
void RegisterIpApi(AdapterRegistry& registry);

}  // namespace enrichd::adapters

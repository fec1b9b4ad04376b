// ipinfo: the ipinfo.io API (asynchronous, external).
//
// Options: {mode: full|lite} (default full).
//   full: GET {endpoint}/{ip}/json   (default endpoint https://ipinfo.io), kind geo by default
//   lite: GET {endpoint}/lite/{ip}   (default endpoint https://api.ipinfo.io), kind asn by default
//   Either mode can produce either kind (spec.kind): the fields present are normalised,
//   the rest go under "extra".
// Batch (spec.max_batch > 1, capped at 1000): POST {endpoint}/batch with a JSON array of
// paths ("8.8.8.8" in full mode, "lite/8.8.8.8" in lite mode) -> an object keyed by path.
// A batch answer without an item's key gives that item `transient` ("missing from batch
// answer"): the provider dropped it, asking again can help.
// Auth: AuthSpec bearer (Authorization: Bearer T), query (?token=T) or header.
// Outcomes: "bogon": true -> no_data; 429 -> rate_limited (Retry-After); 401/402/403 ->
// auth; 5xx/408/transport -> transient; malformed JSON -> transient; 400/404 and an
// answer of the wrong shape -> permanent.
#pragma once

#include <memory>

#include "enrichd/adapter.h"

namespace enrichd::adapters {

Result<std::unique_ptr<Adapter>> MakeIpinfoAdapter(const AdapterSpec& spec);
void RegisterIpinfo(AdapterRegistry& registry);

}  // namespace enrichd::adapters

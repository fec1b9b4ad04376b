// http_json: any REST/JSON API, by configuration only (asynchronous, external).
//
// Options:
//   path:          "/asn/{key}" (required; {key} is the item key, percent-encoded)
//   method:        GET (default) or POST
//   body:          for POST, a body template ({key} replaced by the raw canonical key)
//   headers:       {Name: value}; values are treated as secrets (never reported)
//   fields:        {normalised_field: "/json/pointer"} (required, non-empty). For kind asn
//                  the fields are asn, org, prefix, country_code, registry; for kind geo
//                  country_code, country, region, city, lat, lon, postal, timezone,
//                  accuracy_km; any other kind takes any field names, values copied.
//   no_data_when:  {pointer: "/status", equals: <any JSON value>}
//   extra:         {name: "/json/pointer"} copied under "extra"
// spec.kind is required. A numeric asn is read from a number or an "AS123"/"123" string;
// lat/lon/accuracy_km from numbers or numeric strings.
// Outcomes: no_data_when matches -> no_data; a field of the wrong type -> permanent;
// an answer with none of the configured fields -> permanent (schema mismatch); HTTP and
// transport failures as in common/http_util.h (402 -> auth); malformed JSON -> transient.
// The factory fails with kInvalidArgument naming the offending option.
#pragma once

#include <memory>

#include "enrichd/adapter.h"

namespace enrichd::adapters {

Result<std::unique_ptr<Adapter>> MakeHttpJsonAdapter(const AdapterSpec& spec);
void RegisterHttpJson(AdapterRegistry& registry);

}  // namespace enrichd::adapters

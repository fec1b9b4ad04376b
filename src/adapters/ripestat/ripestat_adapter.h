// ripestat: the RIPEstat Data API (asynchronous, external, no key; default endpoint
// https://stat.ripe.net). Kind asn only. No batching: two requests per item, in order:
//   1. GET {endpoint}/data/network-info/data.json?resource={ip}&sourceapp={sourceapp}
//      -> data {"asns": ["15169"], "prefix": "8.8.8.0/24"}; no ASNs -> no_data.
//   2. GET {endpoint}/data/as-overview/data.json?resource=AS{first asn}&sourceapp=...
//      -> data {"holder": "GOOGLE - Google LLC"}: org is the part after "HANDLE - "
//      (the whole holder under extra.holder).
// If the second request fails, the item takes that failure's outcome (the answer would
// lack its organisation; retrying both is cheap). An as-overview with no holder still
// gives ok (asn + prefix, no org).
// Options: {sourceapp: "enrichd"} (RIPE asks clients to identify themselves).
// Outcomes: envelope "status" != "ok" -> by its status_code (429 rate_limited, 5xx
// transient, 4xx permanent), transient when it has none; HTTP/transport failures as in
// common/http_util.h; malformed JSON -> transient; an envelope without "data" -> permanent.
// Extras: all ASNs when several announce the prefix (extra.asns).
#pragma once

#include <memory>

#include "enrichd/adapter.h"

namespace enrichd::adapters {

Result<std::unique_ptr<Adapter>> MakeRipeStatAdapter(const AdapterSpec& spec);
void RegisterRipeStat(AdapterRegistry& registry);

}  // namespace enrichd::adapters

// maxmind: a local MaxMind DB (.mmdb) read with libmaxminddb (synchronous, local:
// external() is false, so private addresses may be looked up too).
//
// Options: {database: path}. The database type (metadata database_type) decides the
// kind: *-City / *-Country -> geo; *-ASN / *-ISP -> asn. Another type needs spec.kind
// (asn or geo) and is read with the same field names. spec.kind, when set, must agree
// with the database type.
// Data: asn {asn, org, prefix, extra: {isp, organization}}; geo {country_code, country,
// region, city, lat, lon, postal, timezone, accuracy_km, extra: {network, continent_code,
// registered_country_code, region_code}}. Provenance: endpoint = the file path,
// http_status 0, response_digest = digest of the record's JSON form.
// Outcomes: no record -> no_data ({"network": matched network} so a caller may reuse it
// for the whole network); IPv6 address in an IPv4-only database -> no_data; corrupt data
// met during a lookup -> permanent ("corrupt database: ...").
// The factory fails (kInvalidArgument / kDataLoss) for a missing option, an unreadable or
// corrupt file (libmaxminddb's words) or an unsupported database type.
// Thread-safety: Lookup() may run on many threads at once (the MMDB_s is read-only
// after open).
#pragma once

#include <memory>

#include "enrichd/adapter.h"

namespace enrichd::adapters {

Result<std::unique_ptr<Adapter>> MakeMaxMindAdapter(const AdapterSpec& spec);
void RegisterMaxMind(AdapterRegistry& registry);

}  // namespace enrichd::adapters

// ip2asn: a local iptoasn.com TSV file (synchronous, local).
//
// Options: {file: path} to ip2asn-v4.tsv, ip2asn-v6.tsv or ip2asn-combined.tsv
// (optionally gzip-free plain text): lines "range_start\trange_end\tAS_number\tcountry\t
// description", ranges inclusive, IPv4 and IPv6 in one file allowed. Blank lines and
// lines starting with '#' are ignored.
// Loading is strict: a malformed line (wrong column count, bad address, start > end,
// mixed families, bad AS number) or overlapping ranges fail the factory with
// kInvalidArgument naming "file:line" -- a half-read table would silently answer wrong.
// Lookups are a binary search over a sorted range table (O(log n)); thread-safe
// (the table is read-only after load). IPv4-mapped IPv6 addresses are looked up as IPv4.
// Data: {asn, org (description), prefix (only when the range is exactly one CIDR block),
// country_code, extra: {range_start, range_end}}. AS 0 ("Not routed") -> no_data; an
// address in no range -> no_data. Provenance: endpoint = the file path, digest of the
// matched line.
#pragma once

#include <memory>

#include "enrichd/adapter.h"

namespace enrichd::adapters {

Result<std::unique_ptr<Adapter>> MakeIp2AsnAdapter(const AdapterSpec& spec);
void RegisterIp2Asn(AdapterRegistry& registry);

}  // namespace enrichd::adapters

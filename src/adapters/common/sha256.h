// SHA-256 (FIPS 180-4, computed by OpenSSL), for the provenance digest of raw provider
// responses.
// Pure functions, thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace enrichd::adapters {

// The 32-byte digest of `data`.
std::array<uint8_t, 32> Sha256(std::string_view data);
// Lower-case hex of the whole digest (64 characters).
std::string Sha256Hex(std::string_view data);
// What Provenance::response_digest holds: the first 32 hex characters (128 bits) of
// SHA-256 of the raw body.
std::string ResponseDigest(std::string_view body);

}  // namespace enrichd::adapters

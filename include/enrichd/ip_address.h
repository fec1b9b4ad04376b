// IpAddress: an IPv4 or IPv6 address parsed strictly and printed canonically.
//
// Parsing rejects anything ambiguous rather than guessing: leading zeros in an IPv4
// octet ("01.2.3.4"), short forms ("1.2.3"), zone ids ("fe80::1%eth0"), surrounding
// spaces, prefixes ("1.2.3.0/24"). IPv6 prints in RFC 5952 canonical form (lower case,
// longest run of zero groups compressed, a single zero group not compressed, and
// IPv4-mapped addresses as ::ffff:a.b.c.d). Value type, thread-compatible.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

#include "enrichd/status.h"

namespace enrichd {

class IpAddress {
 public:
  enum class Family : uint8_t { kV4, kV6 };

  static Result<IpAddress> Parse(std::string_view text);
  static IpAddress V4(uint32_t host_order);
  static IpAddress V6(const std::array<uint8_t, 16>& bytes);

  Family family() const { return family_; }
  bool is_v4() const { return family_ == Family::kV4; }
  // IPv4 in host byte order (only meaningful when is_v4()).
  uint32_t v4() const;
  // Network-order bytes; IPv4 uses the first 4.
  const std::array<uint8_t, 16>& bytes() const { return bytes_; }
  // For ::ffff:a.b.c.d, the embedded IPv4 address; otherwise *this.
  IpAddress Unmapped() const;

  std::string ToString() const;

  // True when the address may be sent to an external provider: not in any of IANA's
  // special-purpose registries as "not globally reachable" (private, shared/CGNAT,
  // loopback, link-local, multicast, documentation, benchmarking, reserved, and the
  // IPv4-mapped forms of these). When false, *reason (if given) says which range.
  bool IsGloballyRoutable(std::string* reason = nullptr) const;

  friend auto operator<=>(const IpAddress&, const IpAddress&) = default;

 private:
  Family family_ = Family::kV4;
  std::array<uint8_t, 16> bytes_{};
};

}  // namespace enrichd

#include "enrichd/ip_address.h"

#include <charconv>
#include <string>

namespace enrichd {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Strict dotted quad: exactly four decimal octets 0..255, no leading zeros, no signs.
Result<uint32_t> ParseV4(std::string_view text) {
  uint32_t value = 0;
  int octets = 0;
  size_t i = 0;
  while (true) {
    if (i >= text.size() || !IsDigit(text[i])) {
      return InvalidArgumentError("not an IP address: expected a digit at position " +
                                  std::to_string(i + 1));
    }
    size_t start = i;
    uint32_t octet = 0;
    while (i < text.size() && IsDigit(text[i])) {
      octet = octet * 10 + static_cast<uint32_t>(text[i] - '0');
      if (octet > 255) return InvalidArgumentError("not an IP address: octet above 255");
      ++i;
    }
    if (i - start > 1 && text[start] == '0') {
      return InvalidArgumentError(
          "ambiguous IPv4 address: leading zero in an octet (octal or decimal?)");
    }
    value = (value << 8) | octet;
    ++octets;
    if (octets == 4) break;
    if (i >= text.size() || text[i] != '.') {
      return InvalidArgumentError("not an IP address: an IPv4 address has four octets");
    }
    ++i;
  }
  if (i != text.size()) {
    return InvalidArgumentError("not an IP address: unexpected '" + std::string(1, text[i]) +
                                "' after the fourth octet");
  }
  return value;
}

Result<std::array<uint8_t, 16>> ParseV6(std::string_view text) {
  std::array<uint16_t, 8> groups{};
  int count = 0;
  int gap = -1;  // index in groups where "::" stands
  size_t i = 0;
  const auto bad = [](std::string why) {
    return InvalidArgumentError("not an IPv6 address: " + why);
  };
  if (text.size() > 45) return bad("too long");
  if (text.starts_with("::")) {
    gap = 0;
    i = 2;
    if (i == text.size()) {
      return std::array<uint8_t, 16>{};
    }
  } else if (text.starts_with(":")) {
    return bad("a single leading ':'");
  }
  while (i < text.size()) {
    if (count == 8) return bad("more than eight groups");
    // Embedded IPv4 in the last 32 bits?
    size_t end = text.find(':', i);
    std::string_view piece =
        text.substr(i, end == std::string_view::npos ? std::string_view::npos : end - i);
    if (piece.find('.') != std::string_view::npos) {
      if (end != std::string_view::npos) return bad("an IPv4 part must come last");
      if (count > 6) return bad("no room for the IPv4 part");
      auto v4 = ParseV4(piece);
      if (!v4.ok()) return v4.status();
      groups[count++] = static_cast<uint16_t>(*v4 >> 16);
      groups[count++] = static_cast<uint16_t>(*v4 & 0xffff);
      i = text.size();
      break;
    }
    if (piece.empty() || piece.size() > 4) return bad("a group must have 1 to 4 hex digits");
    uint16_t value = 0;
    for (char c : piece) {
      int h = HexValue(c);
      if (h < 0) return bad("unexpected '" + std::string(1, c) + "'");
      value = static_cast<uint16_t>((value << 4) | h);
    }
    groups[count++] = value;
    if (end == std::string_view::npos) {
      i = text.size();
      break;
    }
    i = end + 1;
    if (i < text.size() && text[i] == ':') {
      if (gap >= 0) return bad("'::' may appear only once");
      gap = count;
      ++i;
    } else if (i == text.size()) {
      return bad("a trailing ':'");
    }
  }
  std::array<uint16_t, 8> full{};
  if (gap >= 0) {
    if (count == 8) return bad("'::' must stand for at least one group");
    int tail = count - gap;
    for (int k = 0; k < gap; ++k) full[k] = groups[k];
    for (int k = 0; k < tail; ++k) full[8 - tail + k] = groups[gap + k];
  } else {
    if (count != 8) return bad("eight groups are needed without '::'");
    full = groups;
  }
  std::array<uint8_t, 16> bytes{};
  for (int k = 0; k < 8; ++k) {
    bytes[2 * k] = static_cast<uint8_t>(full[k] >> 8);
    bytes[2 * k + 1] = static_cast<uint8_t>(full[k] & 0xff);
  }
  return bytes;
}

struct V4Range {
  uint32_t base;
  int prefix;
  const char* name;
};

// IANA IPv4 Special-Purpose Address Registry entries that are not globally reachable,
// plus multicast and limited broadcast.
constexpr V4Range kV4NotGlobal[] = {
    {0x00000000, 8, "\"this network\" 0.0.0.0/8"},
    {0x0A000000, 8, "private range 10.0.0.0/8"},
    {0x64400000, 10, "shared address space (CGNAT) 100.64.0.0/10"},
    {0x7F000000, 8, "loopback 127.0.0.0/8"},
    {0xA9FE0000, 16, "link-local 169.254.0.0/16"},
    {0xAC100000, 12, "private range 172.16.0.0/12"},
    {0xC0000000, 24, "IETF protocol assignments 192.0.0.0/24"},
    {0xC0000200, 24, "documentation TEST-NET-1 192.0.2.0/24"},
    {0xC0586300, 24, "deprecated 6to4 relay anycast 192.88.99.0/24"},
    {0xC0A80000, 16, "private range 192.168.0.0/16"},
    {0xC6120000, 15, "benchmarking 198.18.0.0/15"},
    {0xC6336400, 24, "documentation TEST-NET-2 198.51.100.0/24"},
    {0xCB007100, 24, "documentation TEST-NET-3 203.0.113.0/24"},
    {0xE0000000, 4, "multicast 224.0.0.0/4"},
    {0xF0000000, 4, "reserved 240.0.0.0/4"},
};

bool InV4(uint32_t addr, uint32_t base, int prefix) {
  const uint32_t mask = prefix == 0 ? 0 : ~uint32_t{0} << (32 - prefix);
  return (addr & mask) == base;
}

bool V4IsGlobal(uint32_t addr, std::string* reason) {
  if (addr == 0xFFFFFFFF) {
    if (reason) *reason = "limited broadcast 255.255.255.255";
    return false;
  }
  // 192.0.0.9 and 192.0.0.10 are the globally reachable exceptions inside 192.0.0.0/24.
  if (addr == 0xC0000009 || addr == 0xC000000A) return true;
  for (const auto& r : kV4NotGlobal) {
    if (InV4(addr, r.base, r.prefix)) {
      if (reason) *reason = r.name;
      return false;
    }
  }
  return true;
}

struct V6Range {
  std::array<uint8_t, 16> base;
  int prefix;
  const char* name;
};

bool InV6(const std::array<uint8_t, 16>& a, const std::array<uint8_t, 16>& base, int prefix) {
  for (int bit = 0; bit < prefix; bit += 8) {
    const int take = prefix - bit >= 8 ? 8 : prefix - bit;
    const uint8_t mask = static_cast<uint8_t>(0xFF << (8 - take));
    if ((a[bit / 8] & mask) != (base[bit / 8] & mask)) return false;
  }
  return true;
}

const V6Range kV6NotGlobal[] = {
    {{0x00, 0x64, 0xff, 0x9b, 0x00, 0x01}, 48, "local-use IPv4/IPv6 translation 64:ff9b:1::/48"},
    {{0x01, 0x00}, 64, "discard-only 100::/64"},
    {{0x20, 0x01, 0x00, 0x02, 0x00, 0x00}, 48, "benchmarking 2001:2::/48"},
    {{0x20, 0x01, 0x0d, 0xb8}, 32, "documentation 2001:db8::/32"},
    {{0x3f, 0xff}, 20, "documentation 3fff::/20"},
    {{0x5f, 0x00}, 16, "segment routing SIDs 5f00::/16"},
    {{0xfc}, 7, "unique-local fc00::/7"},
    {{0xfe, 0x80}, 10, "link-local fe80::/10"},
    {{0xff}, 8, "multicast ff00::/8"},
};

// Globally reachable exceptions inside 2001::/23.
const V6Range kV6GlobalIn2001[] = {
    {{0x20, 0x01, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01}, 128, ""},
    {{0x20, 0x01, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02}, 128, ""},
    {{0x20, 0x01, 0x00, 0x03}, 32, ""},
    {{0x20, 0x01, 0x00, 0x04, 0x01, 0x12}, 48, ""},
    {{0x20, 0x01, 0x00, 0x20}, 28, ""},
    {{0x20, 0x01, 0x00, 0x30}, 28, ""},
};

}  // namespace

Result<IpAddress> IpAddress::Parse(std::string_view text) {
  if (text.empty()) return InvalidArgumentError("not an IP address: empty");
  if (text.find(':') != std::string_view::npos) {
    if (text.find('%') != std::string_view::npos) {
      return InvalidArgumentError("IPv6 zone ids (%...) are local to a host and not accepted");
    }
    auto bytes = ParseV6(text);
    if (!bytes.ok()) return bytes.status();
    return V6(*bytes);
  }
  if (text.find('/') != std::string_view::npos) {
    return InvalidArgumentError("a network prefix is not an address");
  }
  auto v4 = ParseV4(text);
  if (!v4.ok()) return v4.status();
  return V4(*v4);
}

IpAddress IpAddress::V4(uint32_t host_order) {
  IpAddress ip;
  ip.family_ = Family::kV4;
  ip.bytes_[0] = static_cast<uint8_t>(host_order >> 24);
  ip.bytes_[1] = static_cast<uint8_t>(host_order >> 16);
  ip.bytes_[2] = static_cast<uint8_t>(host_order >> 8);
  ip.bytes_[3] = static_cast<uint8_t>(host_order);
  return ip;
}

IpAddress IpAddress::V6(const std::array<uint8_t, 16>& bytes) {
  IpAddress ip;
  ip.family_ = Family::kV6;
  ip.bytes_ = bytes;
  return ip;
}

uint32_t IpAddress::v4() const {
  return (uint32_t{bytes_[0]} << 24) | (uint32_t{bytes_[1]} << 16) | (uint32_t{bytes_[2]} << 8) |
         uint32_t{bytes_[3]};
}

IpAddress IpAddress::Unmapped() const {
  if (is_v4()) return *this;
  for (int k = 0; k < 10; ++k) {
    if (bytes_[k] != 0) return *this;
  }
  if (bytes_[10] != 0xff || bytes_[11] != 0xff) return *this;
  return V4((uint32_t{bytes_[12]} << 24) | (uint32_t{bytes_[13]} << 16) |
            (uint32_t{bytes_[14]} << 8) | uint32_t{bytes_[15]});
}

namespace {

// Dotted quad of four bytes, without snprintf (ingest formats one address
// per input line, and printf's format parsing was a visible share of that).
void AppendDottedQuad(std::string& out, const uint8_t* b) {
  for (int i = 0; i < 4; ++i) {
    if (i > 0) out.push_back('.');
    const unsigned v = b[i];
    if (v >= 100) out.push_back(static_cast<char>('0' + v / 100));
    if (v >= 10) out.push_back(static_cast<char>('0' + v / 10 % 10));
    out.push_back(static_cast<char>('0' + v % 10));
  }
}

}  // namespace

std::string IpAddress::ToString() const {
  std::string out;
  out.reserve(15);  // within the small-string buffer: no allocation for IPv4
  if (is_v4()) {
    AppendDottedQuad(out, bytes_.data());
    return out;
  }
  IpAddress mapped = Unmapped();
  if (mapped.is_v4()) {
    out = "::ffff:";
    AppendDottedQuad(out, bytes_.data() + 12);
    return out;
  }
  uint16_t g[8];
  for (int k = 0; k < 8; ++k)
    g[k] = static_cast<uint16_t>((bytes_[2 * k] << 8) | bytes_[2 * k + 1]);
  // RFC 5952: compress the longest run (>= 2) of zero groups, the first on a tie.
  int best_start = -1, best_len = 0;
  for (int k = 0; k < 8;) {
    if (g[k] != 0) {
      ++k;
      continue;
    }
    int start = k;
    while (k < 8 && g[k] == 0) ++k;
    if (k - start > best_len) {
      best_len = k - start;
      best_start = start;
    }
  }
  if (best_len < 2) best_start = -1;
  out.reserve(40);
  char buf[8];
  for (int k = 0; k < 8; ++k) {
    if (k == best_start) {
      out += "::";
      k += best_len - 1;
      continue;
    }
    if (!out.empty() && out.back() != ':') out += ':';
    out.append(buf, std::to_chars(buf, buf + sizeof buf, g[k], 16).ptr);
  }
  return out;
}

bool IpAddress::IsGloballyRoutable(std::string* reason) const {
  if (is_v4()) return V4IsGlobal(v4(), reason);
  IpAddress mapped = Unmapped();
  if (mapped.is_v4()) {
    std::string inner;
    if (V4IsGlobal(mapped.v4(), &inner)) return true;
    if (reason) *reason = "IPv4-mapped " + inner;
    return false;
  }
  static const std::array<uint8_t, 16> kZero{};
  if (bytes_ == kZero) {
    if (reason) *reason = "unspecified address ::";
    return false;
  }
  std::array<uint8_t, 16> loopback{};
  loopback[15] = 1;
  if (bytes_ == loopback) {
    if (reason) *reason = "loopback ::1";
    return false;
  }
  for (const auto& r : kV6NotGlobal) {
    if (InV6(bytes_, r.base, r.prefix)) {
      if (reason) *reason = r.name;
      return false;
    }
  }
  // 64:ff9b::/96 (well-known NAT64 prefix) is globally reachable.
  static const std::array<uint8_t, 16> kNat64{0x00, 0x64, 0xff, 0x9b};
  if (InV6(bytes_, kNat64, 96)) return true;
  static const std::array<uint8_t, 16> k2001{0x20, 0x01};
  if (InV6(bytes_, k2001, 23)) {
    for (const auto& r : kV6GlobalIn2001) {
      if (InV6(bytes_, r.base, r.prefix)) return true;
    }
    if (reason) *reason = "IETF protocol assignments 2001::/23";
    return false;
  }
  // Outside 2000::/3 nothing is allocated as global unicast.
  if ((bytes_[0] & 0xE0) != 0x20) {
    if (reason) *reason = "reserved IPv6 space outside 2000::/3";
    return false;
  }
  return true;
}

}  // namespace enrichd

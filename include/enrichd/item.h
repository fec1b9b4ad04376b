// Item: one record to enrich, identified by its label and canonical key.
//
// For label "ip" the key is the canonical text of an IpAddress (see ip_address.h), so
// "2001:DB8::1" and "2001:db8:0::1" name the same item. Other labels keep their key as
// given (trimmed). Value type, thread-compatible.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "enrichd/ip_address.h"
#include "enrichd/status.h"

namespace enrichd {

inline constexpr std::string_view kIpLabel = "ip";

struct Item {
  std::string label;
  std::string key;
  // Present when label == "ip".
  std::optional<IpAddress> ip;
  // Store id of the source node, when the item came from the graph (0 otherwise).
  int64_t node_id = 0;

  // Validates and canonicalises a raw value for a label. Errors are kInvalidArgument
  // with a message a user can act on ("not an IP address: leading zero in octet").
  static Result<Item> Make(std::string_view label, std::string_view raw_key);

  friend bool operator==(const Item& a, const Item& b) {
    return a.label == b.label && a.key == b.key;
  }
};

}  // namespace enrichd

#include "enrichd/item.h"

namespace enrichd {
namespace {

std::string_view Trim(std::string_view s) {
  const char* ws = " \t\r\n\v\f";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  const size_t e = s.find_last_not_of(ws);
  return s.substr(b, e - b + 1);
}

constexpr size_t kMaxKeyBytes = 1024;

}  // namespace

Result<Item> Item::Make(std::string_view label, std::string_view raw_key) {
  if (label.empty()) return InvalidArgumentError("empty label");
  std::string_view key = Trim(raw_key);
  if (key.empty()) return InvalidArgumentError("empty value");
  if (key.size() > kMaxKeyBytes) return InvalidArgumentError("value longer than 1024 bytes");
  for (char c : key) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return InvalidArgumentError("value contains a control character");
    }
  }
  Item item;
  item.label = std::string(label);
  if (label == kIpLabel) {
    auto ip = IpAddress::Parse(key);
    if (!ip.ok()) return ip.status();
    item.key = ip->ToString();
    item.ip = *ip;
  } else {
    item.key = std::string(key);
  }
  return item;
}

}  // namespace enrichd

// JSON text written directly, as nlohmann::json::dump() writes the same value (compact,
// ensure_ascii off, object keys in order; strings with enrichd::AppendJsonString), without
// building a tree: for the results the adapters write once per call. Two differences: a
// double is written in its shortest round-trip form ("-158.73536"), where nlohmann's
// Grisu2 now and then writes 17 digits for the same value ("-158.73535999999999"); and
// each byte of invalid UTF-8 becomes one U+FFFD.
// Thread-compatible.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "enrichd/json_text.h"

namespace enrichd::adapters {

// A number: integers as integers; doubles in their shortest round-trip form, with ".0"
// when integral, in exponent form (nlohmann's) below 1e-4 or from 1e15 on; non-finite
// ones as null (as nlohmann writes them).
void AppendJsonNumber(std::string& out, int64_t v);
void AppendJsonNumber(std::string& out, double v);

// A JSON object whose members come out in key order (the byte order nlohmann's std::map
// keeps), whatever order they are added in; adding a key again replaces its value, as
// json[key] = value does.
class JsonObjectWriter {
 public:
  JsonObjectWriter& String(std::string_view key, std::string_view value);
  JsonObjectWriter& String(std::string_view key, const std::string& value) {
    return String(key, std::string_view(value));
  }
  JsonObjectWriter& String(std::string_view key, const char* value) {
    return String(key, std::string_view(value));
  }
  // Nothing when `value` is nullopt.
  JsonObjectWriter& String(std::string_view key, const std::optional<std::string>& value);
  JsonObjectWriter& Int(std::string_view key, int64_t value);
  JsonObjectWriter& Double(std::string_view key, double value);
  JsonObjectWriter& Object(std::string_view key, const JsonObjectWriter& value);

  bool empty() const;
  // The object's text, e.g. {"asn":15169,"org":"Google LLC"}.
  std::string Text() const;
  void AppendText(std::string& out) const;

 private:
  // One member's "key":value in text_, in the order added.
  struct Member {
    uint32_t begin = 0;    // the quoted key
    uint32_t key_end = 0;  // just past the key's closing quote
    uint32_t end = 0;      // just past the value
    bool live = true;      // false once the key is added again
  };
  static constexpr size_t kSortedMax = 32;
  void BeginMember(std::string_view key);
  void EndMember();
  std::string_view KeyOf(const Member& m) const;

  std::string text_;
  std::vector<Member> members_;
};

}  // namespace enrichd::adapters

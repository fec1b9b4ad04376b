// JSON helpers for reading provider answers without exceptions: nothing here throws on
// malformed or unexpected input (provider data is never trusted). Thread-safe.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/common/json_reader.h"

namespace enrichd::adapters {

using Json = nlohmann::json;

// Parses `text`; nullopt when it is not one complete JSON value (malformed, truncated).
std::optional<Json> ParseJson(std::string_view text);

// Serialises compactly; invalid UTF-8 in strings is replaced, never thrown on.
std::string DumpJson(const Json& j);

// The member `key` of an object, or nullptr (not an object, or no such member).
const Json* Member(const Json& j, std::string_view key);
// Member as a non-empty string / number / bool; nullopt when absent or of another type.
std::optional<std::string> StringMember(const Json& j, std::string_view key);
std::optional<double> NumberMember(const Json& j, std::string_view key);
// The same for answers read with JsonDoc (json_reader.h), with the same results.
std::optional<std::string> StringMember(const JsonValue& j, std::string_view key);
std::optional<double> NumberMember(const JsonValue& j, std::string_view key);

// A parsed RFC 6901 JSON pointer ("/a/0/b"; "" is the whole document).
class JsonPointer {
 public:
  // nullopt when `text` is neither empty nor starts with '/', or has a bad ~ escape.
  static std::optional<JsonPointer> Parse(std::string_view text);
  // The value it points at, or nullptr when any step is missing or of the wrong type.
  const Json* Resolve(const Json& doc) const;
  const std::string& text() const { return text_; }

 private:
  std::string text_;
  std::vector<std::string> tokens_;
};

// An AS number from 15169, "15169", "AS15169" or "as15169"; nullopt otherwise (also
// for values outside 0..4294967295).
std::optional<int64_t> ParseAsnValue(const Json& v);
std::optional<int64_t> ParseAsnValue(const JsonValue& v);
std::optional<int64_t> ParseAsnText(std::string_view text);

// "AS15169 Google LLC" -> {15169, "Google LLC"}; nullopt when it does not start with
// an AS number. The name may be empty.
struct AsnAndName {
  int64_t asn = 0;
  std::string name;
};
std::optional<AsnAndName> SplitAsPrefixed(std::string_view text);

// A number from a JSON number or a numeric string ("37.386"); nullopt otherwise.
std::optional<double> ParseNumberValue(const Json& v);
std::optional<double> ParseNumberValue(const JsonValue& v);
// A finite number written as text ("37.386"); nullopt for anything else.
std::optional<double> ParseNumberText(std::string_view text);

// Replaces every occurrence of each non-empty secret in every string (keys and values)
// of `j` with "[REDACTED]".
void ScrubJson(Json& j, const std::vector<std::string>& secrets);
// Same for one string.
std::string ScrubText(std::string text, const std::vector<std::string>& secrets);

}  // namespace enrichd::adapters

// A read-only JSON document for reading provider answers on the engine's hot path.
//
// JsonDoc::Parse validates the whole text and records every value in one flat array (in
// document order, each container followed by its contents), pointing into the text:
// no allocation per value, no tree of maps. Strings are unescaped only when read. Reading
// an answer this way costs a fraction of building an nlohmann::json tree (the adapters'
// other JSON, for requests and configuration, stays nlohmann).
//
// What it accepts is what nlohmann::json::parse accepts (the differential test checks it):
// one RFC 8259 value with optional surrounding whitespace and an optional UTF-8 byte order
// mark; strings of valid UTF-8 without raw control characters, with valid escapes (\u
// surrogates paired); numbers per the JSON grammar and within a double's range (1e400 is
// refused, 1e-400 reads as 0). One deliberate difference: nesting
// deeper than kMaxDepth is refused (provider data is never trusted with the stack).
// Duplicate object keys: the last one wins, as with nlohmann.
//
// A JsonValue is a view into its JsonDoc, which must outlive it (and the JsonDoc the text).
// Thread-compatible: a document may be read from several threads at once.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace enrichd::adapters {

class JsonDoc;

class JsonValue {
 public:
  enum class Type : uint8_t { kNull, kFalse, kTrue, kNumber, kString, kArray, kObject };

  Type type() const;
  bool is_object() const { return type() == Type::kObject; }
  bool is_array() const { return type() == Type::kArray; }
  bool is_string() const { return type() == Type::kString; }
  bool is_number() const { return type() == Type::kNumber; }
  bool is_boolean() const { return type() == Type::kTrue || type() == Type::kFalse; }
  bool is_true() const { return type() == Type::kTrue; }

  // Objects: the value of `key` (the last one when repeated); nullopt when absent or this
  // is not an object.
  std::optional<JsonValue> Member(std::string_view key) const;
  // Arrays: the elements, in order (empty for anything else).
  std::vector<JsonValue> Elements() const;
  // Objects and arrays: members / elements; 0 for anything else.
  std::size_t size() const;

  // Strings: the unescaped text ("" for anything else).
  std::string String() const;
  // Numbers: the value as a double (0 for one too small for it); nullopt for anything
  // else.
  std::optional<double> Number() const;
  // Numbers written as integers (no fraction or exponent) that fit an int64_t; nullopt
  // otherwise (nlohmann reads those as floating point).
  std::optional<int64_t> Integer() const;

 private:
  friend class JsonDoc;
  JsonValue(const JsonDoc* doc, uint32_t index) : doc_(doc), index_(index) {}
  const JsonDoc* doc_;
  uint32_t index_;
};

class JsonDoc {
 public:
  static constexpr int kMaxDepth = 256;

  // nullopt when `text` is not exactly one valid JSON value (see above).
  static std::optional<JsonDoc> Parse(std::string_view text);

  JsonValue root() const { return JsonValue(this, 0); }

 private:
  friend class JsonValue;
  friend class JsonParser;
  struct Node {
    JsonValue::Type type;
    bool escaped;   // strings: holds a backslash escape
    uint32_t end;   // index just past this value's contents
    uint32_t size;  // containers: members / elements
    // Strings: between the quotes; numbers: the number; containers: unused.
    std::string_view text;
  };
  // An object's members are (key string node, value node) pairs.
  bool KeyEquals(const Node& key, std::string_view want) const;
  std::vector<Node> nodes_;
};

// Unescapes the inside of a valid JSON string literal (what JsonDoc::Parse accepted).
std::string UnescapeJsonString(std::string_view inside);

}  // namespace enrichd::adapters

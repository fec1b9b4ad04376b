#include "adapters/common/json_reader.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>

#include "enrichd/json_text.h"

namespace enrichd::adapters {

// Recursive descent over the text, appending nodes in document order.
class JsonParser {
 public:
  JsonParser(std::string_view text, std::vector<JsonDoc::Node>& nodes)
      : p_(text.data()), end_(text.data() + text.size()), nodes_(nodes) {}

  bool Document() {
    if (end_ - p_ >= 3 && static_cast<unsigned char>(p_[0]) == 0xEF &&
        static_cast<unsigned char>(p_[1]) == 0xBB && static_cast<unsigned char>(p_[2]) == 0xBF) {
      p_ += 3;  // byte order mark
    }
    SkipSpace();
    if (!Value(0)) return false;
    SkipSpace();
    return p_ == end_;
  }

 private:
  using Type = JsonValue::Type;

  void SkipSpace() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' || *p_ == '\r')) ++p_;
  }

  uint32_t Add(Type type, std::string_view text = {}, bool escaped = false) {
    nodes_.push_back(JsonDoc::Node{type, escaped, 0, 0, text});
    return static_cast<uint32_t>(nodes_.size() - 1);
  }
  void Close(uint32_t index, uint32_t size) {
    nodes_[index].end = static_cast<uint32_t>(nodes_.size());
    nodes_[index].size = size;
  }

  bool Literal(std::string_view word, Type type) {
    if (static_cast<size_t>(end_ - p_) < word.size() || std::string_view(p_, word.size()) != word)
      return false;
    p_ += word.size();
    Close(Add(type), 0);
    return true;
  }

  bool Value(int depth) {
    if (p_ == end_) return false;
    switch (*p_) {
      case '{':
        return Object(depth + 1);
      case '[':
        return Array(depth + 1);
      case '"':
        return String();
      case 't':
        return Literal("true", Type::kTrue);
      case 'f':
        return Literal("false", Type::kFalse);
      case 'n':
        return Literal("null", Type::kNull);
      default:
        return Number();
    }
  }

  bool Object(int depth) {
    if (depth > JsonDoc::kMaxDepth) return false;
    ++p_;  // {
    const uint32_t self = Add(Type::kObject);
    uint32_t members = 0;
    SkipSpace();
    if (p_ < end_ && *p_ == '}') {
      ++p_;
      Close(self, 0);
      return true;
    }
    for (;;) {
      SkipSpace();
      if (p_ == end_ || *p_ != '"' || !String()) return false;
      SkipSpace();
      if (p_ == end_ || *p_ != ':') return false;
      ++p_;
      SkipSpace();
      if (!Value(depth)) return false;
      ++members;
      SkipSpace();
      if (p_ == end_) return false;
      if (*p_ == ',') {
        ++p_;
        continue;
      }
      if (*p_ != '}') return false;
      ++p_;
      Close(self, members);
      return true;
    }
  }

  bool Array(int depth) {
    if (depth > JsonDoc::kMaxDepth) return false;
    ++p_;  // [
    const uint32_t self = Add(Type::kArray);
    uint32_t elements = 0;
    SkipSpace();
    if (p_ < end_ && *p_ == ']') {
      ++p_;
      Close(self, 0);
      return true;
    }
    for (;;) {
      SkipSpace();
      if (!Value(depth)) return false;
      ++elements;
      SkipSpace();
      if (p_ == end_) return false;
      if (*p_ == ',') {
        ++p_;
        continue;
      }
      if (*p_ != ']') return false;
      ++p_;
      Close(self, elements);
      return true;
    }
  }

  static int Hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }
  // Four hex digits at p (p + 4 <= end_), or -1.
  int Hex4(const char* p) const {
    int v = 0;
    for (int i = 0; i < 4; ++i) {
      const int h = Hex(p[i]);
      if (h < 0) return -1;
      v = v * 16 + h;
    }
    return v;
  }

  bool String() {
    ++p_;  // opening quote
    const char* start = p_;
    bool escaped = false;
    while (p_ < end_) {
      const unsigned char c = static_cast<unsigned char>(*p_);
      if (c == '"') {
        Close(Add(Type::kString, std::string_view(start, p_ - start), escaped), 0);
        ++p_;
        return true;
      }
      if (c < 0x20) return false;
      if (c == '\\') {
        escaped = true;
        if (++p_ == end_) return false;
        switch (*p_) {
          case '"':
          case '\\':
          case '/':
          case 'b':
          case 'f':
          case 'n':
          case 'r':
          case 't':
            ++p_;
            break;
          case 'u': {
            if (end_ - p_ < 5) return false;
            const int unit = Hex4(p_ + 1);
            if (unit < 0) return false;
            p_ += 5;
            if (unit >= 0xDC00 && unit <= 0xDFFF) return false;  // a lone low surrogate
            if (unit >= 0xD800 && unit <= 0xDBFF) {              // needs its low half
              if (end_ - p_ < 6 || p_[0] != '\\' || p_[1] != 'u') return false;
              const int low = Hex4(p_ + 2);
              if (low < 0xDC00 || low > 0xDFFF) return false;
              p_ += 6;
            }
            break;
          }
          default:
            return false;
        }
        continue;
      }
      if (c < 0x80) {
        ++p_;
      } else if (const size_t n = Utf8SequenceLength(std::string_view(p_, end_ - p_), 0); n != 0) {
        p_ += n;
      } else {
        return false;
      }
    }
    return false;  // no closing quote
  }

  static bool Digit(char c) { return c >= '0' && c <= '9'; }

  bool Number() {
    const char* start = p_;
    if (p_ < end_ && *p_ == '-') ++p_;
    if (p_ == end_) return false;
    if (*p_ == '0') {
      ++p_;
    } else if (*p_ >= '1' && *p_ <= '9') {
      while (p_ < end_ && Digit(*p_)) ++p_;
    } else {
      return false;
    }
    if (p_ < end_ && *p_ == '.') {
      ++p_;
      if (p_ == end_ || !Digit(*p_)) return false;
      while (p_ < end_ && Digit(*p_)) ++p_;
    }
    bool exponent = false;
    if (p_ < end_ && (*p_ == 'e' || *p_ == 'E')) {
      exponent = true;
      ++p_;
      if (p_ < end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      if (p_ == end_ || !Digit(*p_)) return false;
      while (p_ < end_ && Digit(*p_)) ++p_;
    }
    const std::string_view text(start, p_ - start);
    // A number beyond a double's range is refused (nlohmann: "number overflow"); one too
    // small for it reads as 0. Only an exponent or hundreds of digits get there.
    if (exponent || text.size() > 300) {
      double d = 0;
      const auto r = std::from_chars(text.data(), text.data() + text.size(), d);
      if (r.ec == std::errc::result_out_of_range &&
          !std::isfinite(std::strtod(std::string(text).c_str(), nullptr))) {
        return false;
      }
    }
    Close(Add(Type::kNumber, text), 0);
    return true;
  }

  const char* p_;
  const char* const end_;
  std::vector<JsonDoc::Node>& nodes_;
};

std::optional<JsonDoc> JsonDoc::Parse(std::string_view text) {
  JsonDoc doc;
  doc.nodes_.reserve(32);
  JsonParser parser(text, doc.nodes_);
  if (!parser.Document()) return std::nullopt;
  return doc;
}

bool JsonDoc::KeyEquals(const Node& key, std::string_view want) const {
  if (!key.escaped) return key.text == want;
  return UnescapeJsonString(key.text) == want;
}

JsonValue::Type JsonValue::type() const { return doc_->nodes_[index_].type; }

std::optional<JsonValue> JsonValue::Member(std::string_view key) const {
  const auto& nodes = doc_->nodes_;
  const JsonDoc::Node& self = nodes[index_];
  if (self.type != Type::kObject) return std::nullopt;
  std::optional<JsonValue> found;
  for (uint32_t i = index_ + 1; i < self.end;) {
    const uint32_t value = i + 1;  // the key is one string node
    if (doc_->KeyEquals(nodes[i], key)) found = JsonValue(doc_, value);
    i = nodes[value].end;
  }
  return found;
}

std::vector<JsonValue> JsonValue::Elements() const {
  std::vector<JsonValue> out;
  const auto& nodes = doc_->nodes_;
  const JsonDoc::Node& self = nodes[index_];
  if (self.type != Type::kArray) return out;
  out.reserve(self.size);
  for (uint32_t i = index_ + 1; i < self.end; i = nodes[i].end) out.push_back(JsonValue(doc_, i));
  return out;
}

std::size_t JsonValue::size() const {
  const JsonDoc::Node& self = doc_->nodes_[index_];
  return self.type == Type::kObject || self.type == Type::kArray ? self.size : 0;
}

std::string JsonValue::String() const {
  const JsonDoc::Node& self = doc_->nodes_[index_];
  if (self.type != Type::kString) return {};
  return self.escaped ? UnescapeJsonString(self.text) : std::string(self.text);
}

std::optional<double> JsonValue::Number() const {
  const JsonDoc::Node& self = doc_->nodes_[index_];
  if (self.type != Type::kNumber) return std::nullopt;
  double d = 0;
  const auto [ptr, ec] = std::from_chars(self.text.data(), self.text.data() + self.text.size(), d);
  if (ec == std::errc::result_out_of_range) {
    // Too small for a double (Parse refused too large): strtod's 0 or subnormal.
    return std::strtod(std::string(self.text).c_str(), nullptr);
  }
  return d;
}

std::optional<int64_t> JsonValue::Integer() const {
  const JsonDoc::Node& self = doc_->nodes_[index_];
  if (self.type != Type::kNumber || self.text.find_first_of(".eE") != std::string_view::npos) {
    return std::nullopt;
  }
  int64_t v = 0;
  const auto [ptr, ec] = std::from_chars(self.text.data(), self.text.data() + self.text.size(), v);
  if (ec != std::errc() || ptr != self.text.data() + self.text.size()) return std::nullopt;
  return v;
}

namespace {

void AppendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

uint32_t Hex4At(std::string_view s, size_t i) {
  uint32_t v = 0;
  for (size_t k = i; k < i + 4 && k < s.size(); ++k) {
    const char c = s[k];
    v = v * 16 + static_cast<uint32_t>(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
  }
  return v;
}

}  // namespace

std::string UnescapeJsonString(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (c != '\\' || i + 1 >= in.size()) {
      out.push_back(c);
      continue;
    }
    const char e = in[++i];
    switch (e) {
      case 'b':
        out.push_back('\b');
        break;
      case 'f':
        out.push_back('\f');
        break;
      case 'n':
        out.push_back('\n');
        break;
      case 'r':
        out.push_back('\r');
        break;
      case 't':
        out.push_back('\t');
        break;
      case 'u': {
        uint32_t cp = Hex4At(in, i + 1);
        i += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF && i + 6 < in.size() && in[i + 1] == '\\' &&
            in[i + 2] == 'u') {
          const uint32_t low = Hex4At(in, i + 3);
          cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          i += 6;
        }
        AppendUtf8(out, cp);
        break;
      }
      default:  // " \ /
        out.push_back(e);
        break;
    }
  }
  return out;
}

}  // namespace enrichd::adapters

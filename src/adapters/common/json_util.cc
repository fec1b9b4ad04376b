#include "adapters/common/json_util.h"

#include <charconv>
#include <cmath>
#include <cstdlib>

namespace enrichd::adapters {

std::optional<Json> ParseJson(std::string_view text) {
  Json j = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

std::string DumpJson(const Json& j) {
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

const Json* Member(const Json& j, std::string_view key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  if (it == j.end()) return nullptr;
  return &*it;
}

std::optional<std::string> StringMember(const Json& j, std::string_view key) {
  const Json* v = Member(j, key);
  if (v == nullptr || !v->is_string()) return std::nullopt;
  const auto& s = v->get_ref<const std::string&>();
  if (s.empty()) return std::nullopt;
  return s;
}

std::optional<double> NumberMember(const Json& j, std::string_view key) {
  const Json* v = Member(j, key);
  if (v == nullptr || !v->is_number()) return std::nullopt;
  return v->get<double>();
}

std::optional<std::string> StringMember(const JsonValue& j, std::string_view key) {
  const auto v = j.Member(key);
  if (!v || !v->is_string()) return std::nullopt;
  std::string s = v->String();
  if (s.empty()) return std::nullopt;
  return s;
}

std::optional<double> NumberMember(const JsonValue& j, std::string_view key) {
  const auto v = j.Member(key);
  if (!v) return std::nullopt;
  return v->Number();
}

std::optional<JsonPointer> JsonPointer::Parse(std::string_view text) {
  JsonPointer p;
  p.text_ = std::string(text);
  if (text.empty()) return p;
  if (text.front() != '/') return std::nullopt;
  size_t pos = 1;
  while (true) {
    const size_t slash = text.find('/', pos);
    std::string_view raw =
        text.substr(pos, slash == std::string_view::npos ? text.npos : slash - pos);
    std::string token;
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] != '~') {
        token.push_back(raw[i]);
        continue;
      }
      if (i + 1 >= raw.size()) return std::nullopt;
      if (raw[i + 1] == '0') {
        token.push_back('~');
      } else if (raw[i + 1] == '1') {
        token.push_back('/');
      } else {
        return std::nullopt;
      }
      ++i;
    }
    p.tokens_.push_back(std::move(token));
    if (slash == std::string_view::npos) break;
    pos = slash + 1;
  }
  return p;
}

const Json* JsonPointer::Resolve(const Json& doc) const {
  const Json* cur = &doc;
  for (const auto& token : tokens_) {
    if (cur->is_object()) {
      auto it = cur->find(token);
      if (it == cur->end()) return nullptr;
      cur = &*it;
    } else if (cur->is_array()) {
      if (token.empty() || token.size() > 9 || (token.size() > 1 && token[0] == '0'))
        return nullptr;
      size_t index = 0;
      for (char c : token) {
        if (c < '0' || c > '9') return nullptr;
        index = index * 10 + static_cast<size_t>(c - '0');
      }
      if (index >= cur->size()) return nullptr;
      cur = &(*cur)[index];
    } else {
      return nullptr;
    }
  }
  return cur;
}

std::optional<int64_t> ParseAsnText(std::string_view text) {
  if (text.size() >= 2 && (text[0] == 'A' || text[0] == 'a') &&
      (text[1] == 'S' || text[1] == 's')) {
    text.remove_prefix(2);
  }
  if (text.empty() || text.size() > 10) return std::nullopt;
  int64_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size()) return std::nullopt;
  if (value < 0 || value > 4294967295LL) return std::nullopt;
  return value;
}

std::optional<int64_t> ParseAsnValue(const Json& v) {
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u > 4294967295ULL) return std::nullopt;
    return static_cast<int64_t>(u);
  }
  if (v.is_number_integer()) {
    const int64_t i = v.get<int64_t>();
    if (i < 0 || i > 4294967295LL) return std::nullopt;
    return i;
  }
  if (v.is_string()) return ParseAsnText(v.get_ref<const std::string&>());
  return std::nullopt;
}

std::optional<int64_t> ParseAsnValue(const JsonValue& v) {
  if (v.is_number()) {
    // Integers only, as nlohmann reads them (a fraction or exponent makes a float).
    const auto i = v.Integer();
    if (!i || *i < 0 || *i > 4294967295LL) return std::nullopt;
    return i;
  }
  if (v.is_string()) return ParseAsnText(v.String());
  return std::nullopt;
}

std::optional<AsnAndName> SplitAsPrefixed(std::string_view text) {
  const size_t space = text.find(' ');
  std::string_view head = text.substr(0, space);
  if (head.size() < 3 || (head[0] != 'A' && head[0] != 'a')) return std::nullopt;
  auto asn = ParseAsnText(head);
  if (!asn) return std::nullopt;
  AsnAndName out;
  out.asn = *asn;
  if (space != std::string_view::npos) {
    std::string_view rest = text.substr(space + 1);
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    out.name = std::string(rest);
  }
  return out;
}

std::optional<double> ParseNumberText(std::string_view s) {
  if (s.empty()) return std::nullopt;
  double d = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
  if (ec != std::errc() || ptr != s.data() + s.size() || !std::isfinite(d)) return std::nullopt;
  return d;
}

std::optional<double> ParseNumberValue(const Json& v) {
  if (v.is_number()) return v.get<double>();
  if (!v.is_string()) return std::nullopt;
  return ParseNumberText(v.get_ref<const std::string&>());
}

std::optional<double> ParseNumberValue(const JsonValue& v) {
  if (v.is_number()) return v.Number();
  if (!v.is_string()) return std::nullopt;
  return ParseNumberText(v.String());
}

std::string ScrubText(std::string text, const std::vector<std::string>& secrets) {
  static const std::string kRedacted = "[REDACTED]";
  for (const auto& secret : secrets) {
    if (secret.empty()) continue;
    size_t pos = 0;
    while ((pos = text.find(secret, pos)) != std::string::npos) {
      text.replace(pos, secret.size(), kRedacted);
      pos += kRedacted.size();
    }
  }
  return text;
}

void ScrubJson(Json& j, const std::vector<std::string>& secrets) {
  if (j.is_string()) {
    j = ScrubText(j.get<std::string>(), secrets);
  } else if (j.is_array()) {
    for (auto& e : j) ScrubJson(e, secrets);
  } else if (j.is_object()) {
    Json out = Json::object();
    for (auto& [k, v] : j.items()) {
      Json value = v;
      ScrubJson(value, secrets);
      out[ScrubText(k, secrets)] = std::move(value);
    }
    j = std::move(out);
  }
}

}  // namespace enrichd::adapters

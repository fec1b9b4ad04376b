#include "adapters/common/json_writer.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <nlohmann/json.hpp>

#include "adapters/common/json_reader.h"

namespace enrichd::adapters {

void AppendJsonNumber(std::string& out, int64_t v) {
  char buf[24];
  out.append(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
}

void AppendJsonNumber(std::string& out, double v) {
  const double mag = std::fabs(v);
  if (!std::isfinite(v) || (mag != 0 && mag < 1e-4) || mag >= 1e15) {
    out += nlohmann::json(v).dump();  // null, and the exponent forms: nlohmann's own
    return;
  }
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed);
  const std::string_view text(buf, static_cast<size_t>(r.ptr - buf));
  out += text;
  if (text.find('.') == std::string_view::npos) out += ".0";
}

void JsonObjectWriter::BeginMember(std::string_view key) {
  Member m;
  m.begin = static_cast<uint32_t>(text_.size());
  AppendJsonString(text_, key);
  m.key_end = static_cast<uint32_t>(text_.size());
  const std::string_view written(text_.data() + m.begin, m.key_end - m.begin);
  for (Member& other : members_) {
    if (other.live && KeyOf(other) == written) other.live = false;  // json[key] = v: replaced
  }
  text_ += ':';
  members_.push_back(m);
}

void JsonObjectWriter::EndMember() { members_.back().end = static_cast<uint32_t>(text_.size()); }

std::string_view JsonObjectWriter::KeyOf(const Member& m) const {
  return std::string_view(text_.data() + m.begin, m.key_end - m.begin);
}

namespace {

// Whether written key a sorts before written key b as the keys themselves do (by bytes, as
// std::map<std::string, ...> orders them). Keys are compared inside their quotes, and
// unescaped when either holds an escape.
bool KeyBefore(std::string_view a, std::string_view b) {
  a = a.substr(1, a.size() - 2);
  b = b.substr(1, b.size() - 2);
  if (a.find('\\') == std::string_view::npos && b.find('\\') == std::string_view::npos) {
    return a < b;
  }
  return UnescapeJsonString(a) < UnescapeJsonString(b);
}

}  // namespace

JsonObjectWriter& JsonObjectWriter::String(std::string_view key, std::string_view value) {
  BeginMember(key);
  AppendJsonString(text_, value);
  EndMember();
  return *this;
}

JsonObjectWriter& JsonObjectWriter::String(std::string_view key,
                                           const std::optional<std::string>& value) {
  if (value) String(key, std::string_view(*value));
  return *this;
}

JsonObjectWriter& JsonObjectWriter::Int(std::string_view key, int64_t value) {
  BeginMember(key);
  AppendJsonNumber(text_, value);
  EndMember();
  return *this;
}

JsonObjectWriter& JsonObjectWriter::Double(std::string_view key, double value) {
  BeginMember(key);
  AppendJsonNumber(text_, value);
  EndMember();
  return *this;
}

JsonObjectWriter& JsonObjectWriter::Object(std::string_view key, const JsonObjectWriter& value) {
  BeginMember(key);
  value.AppendText(text_);
  EndMember();
  return *this;
}

bool JsonObjectWriter::empty() const {
  for (const Member& m : members_) {
    if (m.live) return false;
  }
  return true;
}

void JsonObjectWriter::AppendText(std::string& out) const {
  // Members in key order.
  const Member* order[kSortedMax];
  std::vector<const Member*> many;
  const Member** sorted = order;
  if (members_.size() > kSortedMax) {
    many.resize(members_.size());
    sorted = many.data();
  }
  size_t n = 0;
  for (const Member& m : members_) {
    if (m.live) sorted[n++] = &m;
  }
  std::sort(sorted, sorted + n,
            [this](const Member* a, const Member* b) { return KeyBefore(KeyOf(*a), KeyOf(*b)); });
  out += '{';
  for (size_t i = 0; i < n; ++i) {
    if (i > 0) out += ',';
    out.append(text_, sorted[i]->begin, sorted[i]->end - sorted[i]->begin);
  }
  out += '}';
}

std::string JsonObjectWriter::Text() const {
  std::string out;
  out.reserve(text_.size() + members_.size() + 2);
  AppendText(out);
  return out;
}

}  // namespace enrichd::adapters

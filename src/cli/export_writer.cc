#include "cli/export_writer.h"

#include <cstdint>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "enrichd/json_text.h"

namespace enrichd::cli {
namespace {

using Json = nlohmann::ordered_json;
constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

std::string Dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

Result<Json> ParseProps(std::string_view text, std::string_view what, int64_t id) {
  if (text.empty()) return Json::object();
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return DataLossError(std::string(what) + " " + std::to_string(id) +
                         ": stored props are not a JSON object");
  }
  return j;
}

Status WriteFailed() { return UnavailableError("write failed (disk full or output closed?)"); }

class JsonlWriter final : public ExportWriter {
 public:
  explicit JsonlWriter(std::ostream& out) : out_(out) {}
  Status Begin() override { return Status::Ok(); }

  Status OnNode(const StoredNode& node) override {
    ENRICHD_ASSIGN_OR_RETURN(Json props, ParseProps(node.props_json, "node", node.id));
    Json j;
    j["type"] = "node";
    j["id"] = node.id;
    j["label"] = node.label;
    j["key"] = node.key;
    j["props"] = std::move(props);
    return Write(j);
  }

  Status OnEdge(const StoredEdge& edge) override {
    ENRICHD_ASSIGN_OR_RETURN(Json props, ParseProps(edge.props_json, "edge", edge.id));
    Json j;
    j["type"] = "edge";
    j["id"] = edge.id;
    j["label"] = edge.type;
    j["src"] = edge.src;
    j["dst"] = edge.dst;
    j["props"] = std::move(props);
    return Write(j);
  }

  Status Finish() override {
    out_.flush();
    return out_ ? Status::Ok() : WriteFailed();
  }

 private:
  Status Write(const Json& j) {
    std::string line = Dump(j);
    line += '\n';
    out_.write(line.data(), static_cast<std::streamsize>(line.size()));
    return out_ ? Status::Ok() : WriteFailed();
  }

  std::ostream& out_;
};

class GraphmlWriter final : public ExportWriter {
 public:
  explicit GraphmlWriter(std::ostream& out) : out_(out) {}

  Status Begin() override {
    out_ << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<graphml xmlns=\"http://graphml.graphdrawing.org/xmlns\"\n"
            "    xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"\n"
            "    xsi:schemaLocation=\"http://graphml.graphdrawing.org/xmlns "
            "http://graphml.graphdrawing.org/xmlns/1.0/graphml.xsd\">\n"
            "  <key id=\"label\" for=\"node\" attr.name=\"label\" attr.type=\"string\"/>\n"
            "  <key id=\"key\" for=\"node\" attr.name=\"key\" attr.type=\"string\"/>\n"
            "  <key id=\"props\" for=\"node\" attr.name=\"props\" attr.type=\"string\"/>\n"
            "  <key id=\"provider\" for=\"node\" attr.name=\"provider\" attr.type=\"string\"/>\n"
            "  <key id=\"kind\" for=\"node\" attr.name=\"kind\" attr.type=\"string\"/>\n"
            "  <key id=\"status\" for=\"node\" attr.name=\"status\" attr.type=\"string\"/>\n"
            "  <key id=\"edge_label\" for=\"edge\" attr.name=\"label\" attr.type=\"string\"/>\n"
            "  <key id=\"edge_props\" for=\"edge\" attr.name=\"props\" attr.type=\"string\"/>\n"
            "  <graph id=\"enrichd\" edgedefault=\"directed\">\n";
    return out_ ? Status::Ok() : WriteFailed();
  }

  Status OnNode(const StoredNode& node) override {
    ENRICHD_ASSIGN_OR_RETURN(Json props, ParseProps(node.props_json, "node", node.id));
    std::string s = "    <node id=\"n" + std::to_string(node.id) + "\">";
    Data(&s, "label", node.label);
    Data(&s, "key", node.key);
    Data(&s, "props", Dump(props));
    for (const char* name : {"provider", "kind", "status"}) {
      auto it = props.find(name);
      if (it != props.end() && it->is_string()) Data(&s, name, it->get<std::string>());
    }
    s += "</node>\n";
    return Write(s);
  }

  Status OnEdge(const StoredEdge& edge) override {
    ENRICHD_ASSIGN_OR_RETURN(Json props, ParseProps(edge.props_json, "edge", edge.id));
    std::string s = "    <edge id=\"e" + std::to_string(edge.id) + "\" source=\"n" +
                    std::to_string(edge.src) + "\" target=\"n" + std::to_string(edge.dst) + "\">";
    Data(&s, "edge_label", edge.type);
    Data(&s, "edge_props", Dump(props));
    s += "</edge>\n";
    return Write(s);
  }

  Status Finish() override {
    out_ << "  </graph>\n</graphml>\n";
    out_.flush();
    return out_ ? Status::Ok() : WriteFailed();
  }

 private:
  static void Data(std::string* s, std::string_view key, std::string_view value) {
    *s += "<data key=\"";
    *s += key;
    *s += "\">";
    *s += XmlEscape(value);
    *s += "</data>";
  }

  Status Write(const std::string& s) {
    out_.write(s.data(), static_cast<std::streamsize>(s.size()));
    return out_ ? Status::Ok() : WriteFailed();
  }

  std::ostream& out_;
};

// A Cypher literal for a JSON value; nullopt for null (left out).
std::optional<std::string> CypherValue(const Json& v) {
  switch (v.type()) {
    case Json::value_t::null:
    case Json::value_t::discarded:
      return std::nullopt;
    case Json::value_t::boolean:
      return v.get<bool>() ? "true" : "false";
    case Json::value_t::number_integer:
      return std::to_string(v.get<int64_t>());
    case Json::value_t::number_unsigned: {
      const auto u = v.get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) return CypherString(std::to_string(u));
      return std::to_string(u);
    }
    case Json::value_t::number_float: {
      std::string f = v.dump();  // shortest round-trip form, e.g. 37.386, 1e+20
      if (auto p = f.find("e+"); p != std::string::npos) f.erase(p + 1, 1);
      return f;
    }
    case Json::value_t::string:
      return CypherString(v.get_ref<const std::string&>());
    case Json::value_t::object:
    case Json::value_t::array:
    case Json::value_t::binary:
      return CypherString(Dump(v));
  }
  return std::nullopt;
}

class CypherWriter final : public ExportWriter {
 public:
  explicit CypherWriter(std::ostream& out) : out_(out) {}
  Status Begin() override { return Status::Ok(); }

  Status OnNode(const StoredNode& node) override {
    ENRICHD_ASSIGN_OR_RETURN(Json props, ParseProps(node.props_json, "node", node.id));
    std::string s = "CREATE (:" + CypherName(node.label.empty() ? "node" : node.label) +
                    " {_id: " + std::to_string(node.id) + ", key: " + CypherString(node.key);
    AppendProps(&s, props, {"_id", "key"});
    s += "});\n";
    return Write(s);
  }

  Status OnEdge(const StoredEdge& edge) override {
    ENRICHD_ASSIGN_OR_RETURN(Json props, ParseProps(edge.props_json, "edge", edge.id));
    std::string s = "MATCH (a {_id: " + std::to_string(edge.src) +
                    "}), (b {_id: " + std::to_string(edge.dst) +
                    "}) CREATE (a)-[:" + CypherName(edge.type.empty() ? "RELATED" : edge.type) +
                    " {_id: " + std::to_string(edge.id);
    AppendProps(&s, props, {"_id"});
    s += "}]->(b);\n";
    return Write(s);
  }

  Status Finish() override {
    out_.flush();
    return out_ ? Status::Ok() : WriteFailed();
  }

 private:
  // Props whose names collide with the ones we set are renamed "props_<name>".
  static void AppendProps(std::string* s, const Json& props,
                          std::initializer_list<std::string_view> reserved) {
    for (const auto& [name, value] : props.items()) {
      auto literal = CypherValue(value);
      if (!literal) continue;
      bool clash = false;
      for (auto r : reserved) clash = clash || name == r;
      *s += ", ";
      *s += CypherName(clash ? "props_" + name : name);
      *s += ": ";
      *s += *literal;
    }
  }

  Status Write(const std::string& s) {
    out_.write(s.data(), static_cast<std::streamsize>(s.size()));
    return out_ ? Status::Ok() : WriteFailed();
  }

  std::ostream& out_;
};

}  // namespace

Result<ExportFormat> ParseExportFormat(std::string_view name) {
  if (name == "jsonl") return ExportFormat::kJsonl;
  if (name == "graphml") return ExportFormat::kGraphml;
  if (name == "cypher") return ExportFormat::kCypher;
  return InvalidArgumentError("unknown export format '" + std::string(name) +
                              "' (use jsonl, graphml or cypher)");
}

std::unique_ptr<ExportWriter> MakeExportWriter(ExportFormat format, std::ostream& out) {
  switch (format) {
    case ExportFormat::kJsonl:
      return std::make_unique<JsonlWriter>(out);
    case ExportFormat::kGraphml:
      return std::make_unique<GraphmlWriter>(out);
    case ExportFormat::kCypher:
      return std::make_unique<CypherWriter>(out);
  }
  return std::make_unique<JsonlWriter>(out);
}

std::string SanitizeUtf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t n = Utf8SequenceLength(s, i);
    if (n == 0) {
      out += kReplacement;
      ++i;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  return out;
}

std::string XmlEscape(std::string_view raw) {
  const std::string s = SanitizeUtf8(raw);
  std::string out;
  out.reserve(s.size() + 16);
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      case '\t':
        out += "&#9;";
        break;
      case '\n':
        out += "&#10;";
        break;
      case '\r':
        out += "&#13;";
        break;
      default:
        if (u < 0x20) {
          out += kReplacement;  // not representable in XML 1.0, even escaped
        } else if (u == 0xEF && i + 2 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0xBF &&
                   (static_cast<unsigned char>(s[i + 2]) == 0xBE ||
                    static_cast<unsigned char>(s[i + 2]) == 0xBF)) {
          out += kReplacement;  // U+FFFE, U+FFFF
          i += 2;
        } else {
          out += c;
        }
    }
  }
  return out;
}

std::string CypherString(std::string_view raw) {
  const std::string s = SanitizeUtf8(raw);
  std::string out = "'";
  out.reserve(s.size() + 2);
  for (char c : s) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\'':
        out += "\\'";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned char>(c));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  out += '\'';
  return out;
}

std::string CypherName(std::string_view s) {
  auto plain = [](char c, bool first) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' ||
           (!first && c >= '0' && c <= '9');
  };
  bool ok = !s.empty();
  for (std::size_t i = 0; ok && i < s.size(); ++i) ok = plain(s[i], i == 0);
  if (ok) return std::string(s);
  std::string out = "`";
  for (char c : SanitizeUtf8(s)) {
    if (c == '`') out += '`';
    out += c;
  }
  out += '`';
  return out;
}

}  // namespace enrichd::cli

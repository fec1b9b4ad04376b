// enrichd show [--store URL] LABEL KEY [--json]: a source node, its enrichments (newest
// first) and their provenance.
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/args.h"
#include "cli/command.h"
#include "cli/data_commands.h"
#include "cli/export_writer.h"
#include "enrichd/clock.h"
#include "enrichd/config.h"
#include "enrichd/item.h"

namespace enrichd::cli {
namespace {

using Json = nlohmann::ordered_json;

constexpr std::string_view kCmd = "show";
constexpr std::string_view kUsage = "enrichd show [--store URL] LABEL KEY [--json]";

Json ParseOrRaw(const std::string& text) {
  if (text.empty()) return Json::object();
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Json{{"_unparsed", text}};
  return j;
}

std::string Dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

// A scalar shown bare (strings unquoted), anything else as compact JSON. Integers under
// keys ending in "_at" that look like Unix milliseconds are also shown as RFC 3339.
std::string Scalar(std::string_view name, const Json& v) {
  if (v.is_string()) return SanitizeUtf8(v.get_ref<const std::string&>());
  if (v.is_number_integer() && name.ends_with("_at")) {
    const auto ms = v.get<int64_t>();
    if (ms > 100000000000LL && ms < 10000000000000LL) {
      return FormatRfc3339(FromUnixMillis(ms)) + " (" + std::to_string(ms) + ")";
    }
  }
  return Dump(v);
}

std::string Braces(const Json& obj) {
  if (!obj.is_object()) return Dump(obj);
  std::string s = "{";
  bool first = true;
  for (const auto& [k, v] : obj.items()) {
    s += (first ? "" : ", ") + SanitizeUtf8(k) + ": " + Scalar(k, v);
    first = false;
  }
  return s + "}";
}

std::string Str(const Json& obj, const char* name) {
  auto it = obj.find(name);
  return it != obj.end() && it->is_string() ? SanitizeUtf8(it->get<std::string>()) : "?";
}

void PrintText(const NodeView& v, std::ostream& os) {
  const Json props = ParseOrRaw(v.node.props_json);
  os << "(" << SanitizeUtf8(v.node.label) << " " << SanitizeUtf8(v.node.key) << ")  id "
     << v.node.id;
  if (props.is_object() && !props.empty()) os << " " << Braces(props);
  os << "\n";
  if (v.enrichments.empty()) {
    os << "  no enrichments yet\n";
    return;
  }
  for (const auto& e : v.enrichments) {
    const Json ep = ParseOrRaw(e.props_json);
    const StoredEdge* edge = nullptr;
    for (const auto& ed : v.edges) {
      if (ed.dst == e.id) edge = &ed;
    }
    os << "  -[:" << (edge ? SanitizeUtf8(edge->type) : std::string("ENRICHED_BY")) << "]-> ("
       << SanitizeUtf8(e.label) << " " << Str(ep, "provider") << " " << Str(ep, "kind") << " "
       << Str(ep, "status");
    if (auto it = ep.find("superseded"); it != ep.end() && it->is_boolean() && it->get<bool>()) {
      os << " superseded";
    }
    os << ")  id " << e.id;
    if (auto it = ep.find("data"); it != ep.end()) os << " " << Braces(*it);
    os << "\n";
    // Everything else is provenance; a nested "provenance" object is shown flat.
    for (const auto& [k, val] : ep.items()) {
      if (k == "provider" || k == "kind" || k == "status" || k == "data" || k == "superseded") {
        continue;
      }
      if (val.is_object() && k == "provenance") {
        for (const auto& [pk, pv] : val.items()) {
          os << "      " << SanitizeUtf8(pk) << ": " << Scalar(pk, pv) << "\n";
        }
      } else {
        os << "      " << SanitizeUtf8(k) << ": " << Scalar(k, val) << "\n";
      }
    }
    if (edge) {
      const Json edge_props = ParseOrRaw(edge->props_json);
      if (edge_props.is_object() && !edge_props.empty()) {
        os << "      edge " << edge->id << ": " << Braces(edge_props) << "\n";
      }
    }
  }
}

Json NodeJson(const StoredNode& n) {
  Json j;
  j["id"] = n.id;
  j["label"] = n.label;
  j["key"] = n.key;
  j["props"] = ParseOrRaw(n.props_json);
  return j;
}

std::string ShowJson(const NodeView& v) {
  Json j;
  j["node"] = NodeJson(v.node);
  j["enrichments"] = Json::array();
  for (const auto& e : v.enrichments) {
    Json ej = NodeJson(e);
    for (const auto& ed : v.edges) {
      if (ed.dst != e.id) continue;
      ej["edge"] = {{"id", ed.id},
                    {"label", ed.type},
                    {"src", ed.src},
                    {"dst", ed.dst},
                    {"props", ParseOrRaw(ed.props_json)}};
    }
    j["enrichments"].push_back(std::move(ej));
  }
  return Dump(j);
}

int RunShow(const std::vector<std::string>& argv) {
  auto args = ParseCommandArgs(kCmd, kUsage, argv, {"store"}, {"json"});
  if (!args) return kExitUsage;
  const auto& pos = args->positionals();
  if (pos.size() != 2) {
    return UsageError(kCmd, kUsage,
                      pos.size() < 2 ? "needs LABEL and KEY (e.g. show ip 8.8.8.8)"
                                     : "unexpected argument '" + pos[2] + "'");
  }
  auto item = Item::Make(pos[0], pos[1]);
  if (!item.ok()) {
    return UsageError(kCmd, kUsage,
                      "invalid " + pos[0] + " key '" + pos[1] + "': " + item.status().message());
  }
  auto store =
      OpenStoreForCommand(ResolveStoreUrl(args->Get("store"), nullptr), /*must_exist=*/true);
  if (!store.ok()) return Fail(kCmd, store.status());
  auto view = (*store)->GetNode(item->label, item->key);
  if (!view.ok()) return Fail(kCmd, view.status().WithContext("reading " + item->key));
  if (!view->has_value()) {
    std::cerr << "enrichd show: no " << item->label << " node with key " << item->key << " in "
              << (*store)->Describe() << "\n";
    return kExitFailure;
  }
  if (args->Has("json")) {
    std::cout << ShowJson(**view) << "\n";
  } else {
    PrintText(**view, std::cout);
  }
  return kExitOk;
}

}  // namespace

ENRICHD_COMMAND({.name = "show",
                 .usage = std::string(kUsage),
                 .summary = "a source node with its enrichments (newest first) and provenance",
                 .run = RunShow,
                 .order = 50});

}  // namespace enrichd::cli

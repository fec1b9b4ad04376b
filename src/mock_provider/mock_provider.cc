#include "mock_provider/mock_provider.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <functional>
#include <optional>
#include <queue>
#include <string_view>
#include <utility>

#include "adapters/common/json_writer.h"
#include "enrichd/ip_address.h"
#include "enrichd/json_text.h"
#include "nlohmann/json.hpp"

namespace enrichd::mock {
namespace {

using Json = nlohmann::ordered_json;
using SteadyTime = std::chrono::steady_clock::time_point;

// ---------------------------------------------------------------------------------------
// Deterministic data.

struct Org {
  uint32_t asn;
  const char* name;    // ipinfo as_name / org suffix, ip-api isp
  const char* domain;  // ipinfo lite as_domain
  const char* holder;  // RIPEstat as-overview holder
};

constexpr Org kOrgs[] = {
    {15169, "Google LLC", "google.com", "GOOGLE - Google LLC"},
    {13335, "Cloudflare, Inc.", "cloudflare.com", "CLOUDFLARENET - Cloudflare, Inc."},
    {16509, "Amazon.com, Inc.", "amazon.com", "AMAZON-02 - Amazon.com, Inc."},
    {8075, "Microsoft Corporation", "microsoft.com",
     "MICROSOFT-CORP-MSN-AS-BLOCK - Microsoft Corporation"},
    {3320, "Deutsche Telekom AG", "telekom.de", "DTAG - Deutsche Telekom AG"},
    {3215, "Orange S.A.", "orange.com", "AS3215 - Orange S.A."},
    {7922, "Comcast Cable Communications, LLC", "comcast.net",
     "COMCAST-7922 - Comcast Cable Communications, LLC"},
    {4134, "China Telecom", "chinatelecom.cn", "CHINANET-BACKBONE - China Telecom"},
    {2914, "NTT America, Inc.", "ntt.net", "NTT-LTD-2914 - NTT America, Inc."},
    {24940, "Hetzner Online GmbH", "hetzner.com", "HETZNER-AS - Hetzner Online GmbH"},
    {16276, "OVH SAS", "ovhcloud.com", "OVH - OVH SAS"},
    {14061, "DigitalOcean, LLC", "digitalocean.com", "DIGITALOCEAN-ASN - DigitalOcean, LLC"},
};

struct City {
  const char* city;
  const char* region;
  const char* region_code;
  const char* postal;
  const char* country_code;
  const char* country;
  const char* continent_code;
  const char* continent;
  const char* timezone;
  double lat;
  double lon;
};

constexpr City kCities[] = {
    {"Mountain View", "California", "CA", "94035", "US", "United States", "NA", "North America",
     "America/Los_Angeles", 37.3860, -122.0840},
    {"Ashburn", "Virginia", "VA", "20149", "US", "United States", "NA", "North America",
     "America/New_York", 39.03, -77.5},
    {"New York City", "New York", "NY", "10004", "US", "United States", "NA", "North America",
     "America/New_York", 40.7143, -74.0060},
    {"Frankfurt am Main", "Hesse", "HE", "60313", "DE", "Germany", "EU", "Europe", "Europe/Berlin",
     50.1155, 8.6842},
    {"Paris", "Île-de-France", "IDF", "75000", "FR", "France", "EU", "Europe", "Europe/Paris",
     48.8534, 2.3488},
    {"London", "England", "ENG", "EC1A", "GB", "United Kingdom", "EU", "Europe", "Europe/London",
     51.5085, -0.1257},
    {"Amsterdam", "North Holland", "NH", "1012", "NL", "Netherlands", "EU", "Europe",
     "Europe/Amsterdam", 52.3740, 4.8897},
    {"Tokyo", "Tokyo", "13", "100-0001", "JP", "Japan", "AS", "Asia", "Asia/Tokyo", 35.6895,
     139.6917},
    {"Singapore", "Singapore", "01", "018989", "SG", "Singapore", "AS", "Asia", "Asia/Singapore",
     1.2897, 103.8501},
    {"Sydney", "New South Wales", "NSW", "2000", "AU", "Australia", "OC", "Oceania",
     "Australia/Sydney", -33.8678, 151.2073},
    {"São Paulo", "São Paulo", "SP", "01000-000", "BR", "Brazil", "SA", "South America",
     "America/Sao_Paulo", -23.5475, -46.6361},
    {"Beijing", "Beijing", "BJ", "100000", "CN", "China", "AS", "Asia", "Asia/Shanghai", 39.9075,
     116.3972},
    {"Brisbane", "Queensland", "QLD", "4101", "AU", "Australia", "OC", "Oceania",
     "Australia/Brisbane", -27.4820, 153.0136},
};
constexpr std::size_t kBrisbane = 12;

// Everything a provider says about one address.
struct Record {
  std::string ip;
  bool announced = true;
  const Org* org = nullptr;
  std::string prefix;
  std::string hostname;  // empty: none
  City geo;              // ipinfo's view
  City ipapi_geo;        // ip-api's view (differs from ipinfo for 8.8.8.8, as in reality)
  std::string ipapi_org;
};

uint64_t Fnv1a(const uint8_t* data, std::size_t n) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (std::size_t i = 0; i < n; ++i) {
    h ^= data[i];
    h *= 0x100000001b3ULL;
  }
  // Final avalanche (splitmix64) so that neighbouring networks spread well.
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebULL;
  h ^= h >> 31;
  return h;
}

double Round4(double v) { return std::round(v * 10000.0) / 10000.0; }

Record MakeRecord(const IpAddress& ip) {
  Record r;
  r.ip = ip.ToString();
  std::array<uint8_t, 16> net{};
  std::size_t net_len;
  if (ip.is_v4()) {
    uint32_t n = ip.v4() & 0xFFFFFF00u;
    net = IpAddress::V4(n).bytes();
    net_len = 4;
    r.prefix = IpAddress::V4(n).ToString() + "/24";
  } else {
    net = ip.bytes();
    for (std::size_t i = 6; i < 16; ++i) net[i] = 0;
    net_len = 16;
    r.prefix = IpAddress::V6(net).ToString() + "/48";
  }
  uint64_t h = Fnv1a(net.data(), net_len);
  r.org = &kOrgs[h % std::size(kOrgs)];
  City city = kCities[(h >> 16) % (std::size(kCities) - 1)];  // Brisbane is 1.1.1.1's only
  city.lat =
      Round4(city.lat + static_cast<double>(static_cast<int>((h >> 32) % 1000) - 500) / 10000.0);
  city.lon =
      Round4(city.lon + static_cast<double>(static_cast<int>((h >> 42) % 1000) - 500) / 10000.0);
  r.geo = city;
  r.ipapi_geo = city;
  r.announced = ((h >> 52) % 32) != 0;
  r.ipapi_org = r.org->name;

  // The documented examples answer exactly as in PROVIDERS.md.
  if (ip.is_v4() && (ip.v4() & 0xFFFFFF00u) == 0x08080800u) {  // 8.8.8.0/24
    r.org = &kOrgs[0];
    r.announced = true;
    r.geo = kCities[0];
    r.ipapi_geo = kCities[1];
    r.ipapi_org = "Google Public DNS";
    if (ip.v4() == 0x08080808u) r.hostname = "dns.google";
  } else if (ip.is_v4() && (ip.v4() & 0xFFFFFF00u) == 0x01010100u) {  // 1.1.1.0/24
    r.org = &kOrgs[1];
    r.announced = true;
    r.geo = kCities[kBrisbane];
    r.ipapi_geo = kCities[kBrisbane];
    r.ipapi_org = "APNIC and Cloudflare DNS Resolver project";
    if (ip.v4() == 0x01010101u) r.hostname = "one.one.one.one";
  }
  return r;
}

const Org* FindOrg(uint32_t asn) {
  for (const auto& o : kOrgs) {
    if (o.asn == asn) return &o;
  }
  return nullptr;
}

// "lat,lon" with 4 decimals, as ipinfo writes it (to_chars: snprintf was 6 % of the
// mock's CPU under the end-to-end benchmark).
std::string FormatLoc(double lat, double lon) {
  char buf[64];
  char* end = buf + sizeof buf;
  char* p = std::to_chars(buf, end, lat, std::chars_format::fixed, 4).ptr;
  *p++ = ',';
  p = std::to_chars(p, end, lon, std::chars_format::fixed, 4).ptr;
  return std::string(buf, p);
}

// ---------------------------------------------------------------------------------------
// Shapes.

Json IpinfoBogon(const std::string& ip) { return Json{{"ip", ip}, {"bogon", true}}; }

Json IpinfoWrongIp() {
  return Json{
      {"status", 404},
      {"error", Json{{"title", "Wrong ip"}, {"message", "Please provide a valid IP address"}}}};
}

// Where an answer object is written: a Json object (batch answers, one-field lookups) or
// straight to text (the single answers the end-to-end benchmark hammers: building an
// ordered_json and dumping it was a third of the mock's CPU there). Both give the same
// bytes; members keep the order they are added in.
class JsonObjectSink {
 public:
  template <typename V>
  void Add(std::string_view key, V&& value) {
    j_[std::string(key)] = std::forward<V>(value);
  }
  Json Take() { return std::move(j_); }

 private:
  Json j_ = Json::object();
};

// Writes compact JSON text as Json::dump() does, with the adapters' writer (strings
// escaped alike, doubles in their shortest round-trip form with ".0" when integral; the
// mock's coordinates have 4 decimals, where that is byte for byte nlohmann's).
class JsonTextSink {
 public:
  void Add(std::string_view key, std::string_view value) {
    Key(key);
    AppendJsonString(out_, value);
  }
  void Add(std::string_view key, const std::string& value) { Add(key, std::string_view(value)); }
  void Add(std::string_view key, const char* value) { Add(key, std::string_view(value)); }
  void Add(std::string_view key, double value) {
    Key(key);
    adapters::AppendJsonNumber(out_, value);
  }
  std::string Take() {
    out_ += out_.empty() ? "{}" : "}";
    return std::move(out_);
  }

 private:
  void Key(std::string_view key) {
    out_ += out_.empty() ? '{' : ',';
    AppendJsonString(out_, key);
    out_ += ':';
  }
  std::string out_;
};

template <typename Sink>
void WriteIpinfoFull(const Record& r, Sink& out) {
  out.Add("ip", r.ip);
  if (!r.hostname.empty()) out.Add("hostname", r.hostname);
  out.Add("city", r.geo.city);
  out.Add("region", r.geo.region);
  out.Add("country", r.geo.country_code);
  out.Add("loc", FormatLoc(r.geo.lat, r.geo.lon));
  out.Add("postal", r.geo.postal);
  if (r.announced) out.Add("org", "AS" + std::to_string(r.org->asn) + " " + r.org->name);
}

Json IpinfoFull(const Record& r) {
  JsonObjectSink sink;
  WriteIpinfoFull(r, sink);
  return sink.Take();
}

Json IpinfoLite(const Record& r) {
  Json j;
  j["ip"] = r.ip;
  if (r.announced) {
    j["asn"] = "AS" + std::to_string(r.org->asn);
    j["as_name"] = r.org->name;
    j["as_domain"] = r.org->domain;
  }
  j["country_code"] = r.geo.country_code;
  j["country"] = r.geo.country;
  j["continent_code"] = r.geo.continent_code;
  j["continent"] = r.geo.continent;
  return j;
}

constexpr const char* kIpapiFields[] = {"status", "country", "countryCode", "region", "regionName",
                                        "city",   "zip",     "lat",         "lon",    "timezone",
                                        "isp",    "org",     "as",          "query"};

// `fields`: empty or numeric means every field.
template <typename Sink>
void WriteIpapiAnswer(std::string_view query, std::string_view fields, Sink& out) {
  auto ip = IpAddress::Parse(query);
  if (!ip.ok()) {
    out.Add("status", "fail");
    out.Add("message", "invalid query");
    out.Add("query", query);
    return;
  }
  std::string reason;
  if (!ip->IsGloballyRoutable(&reason)) {
    out.Add("status", "fail");
    out.Add("message", reason.rfind("private", 0) == 0 ? "private range" : "reserved range");
    out.Add("query", ip->ToString());
    return;
  }
  Record r = MakeRecord(*ip);
  bool all = fields.empty() ||
             std::all_of(fields.begin(), fields.end(), [](char c) { return c >= '0' && c <= '9'; });
  auto wanted = [&](std::string_view name) {
    if (all) return true;
    std::string_view rest = fields;
    while (!rest.empty()) {
      std::size_t comma = rest.find(',');
      if (rest.substr(0, comma) == name) return true;
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
    return false;
  };
  for (const char* f : kIpapiFields) {
    std::string_view name = f;
    if (!wanted(name)) continue;
    const City& g = r.ipapi_geo;
    if (name == "status")
      out.Add("status", "success");
    else if (name == "country")
      out.Add("country", g.country);
    else if (name == "countryCode")
      out.Add("countryCode", g.country_code);
    else if (name == "region")
      out.Add("region", g.region_code);
    else if (name == "regionName")
      out.Add("regionName", g.region);
    else if (name == "city")
      out.Add("city", g.city);
    else if (name == "zip")
      out.Add("zip", g.postal);
    else if (name == "lat")
      out.Add("lat", g.lat);
    else if (name == "lon")
      out.Add("lon", g.lon);
    else if (name == "timezone")
      out.Add("timezone", g.timezone);
    else if (name == "isp")
      out.Add("isp", r.announced ? r.org->name : "");
    else if (name == "org")
      out.Add("org", r.announced ? r.ipapi_org : "");
    else if (name == "as")
      out.Add("as", r.announced ? "AS" + std::to_string(r.org->asn) + " " + r.org->name : "");
    else if (name == "query")
      out.Add("query", r.ip);
  }
}

Json IpapiAnswer(std::string_view query, std::string_view fields) {
  JsonObjectSink sink;
  WriteIpapiAnswer(query, fields, sink);
  return sink.Take();
}

std::string RipeTime(WallTime t) {
  std::string s = FormatRfc3339(t);  // "2026-11-28T16:25:06.123Z"
  if (!s.empty() && s.back() == 'Z') s.pop_back();
  return s;
}

Json RipeEnvelope(const char* call, Json data, WallTime now) {
  Json j;
  j["status"] = "ok";
  j["status_code"] = 200;
  j["data_call_name"] = call;
  j["data"] = std::move(data);
  j["messages"] = Json::array();
  j["version"] = "1.1";
  j["cached"] = false;
  j["time"] = RipeTime(now);
  return j;
}

Json RipeError(const char* call, const std::string& message, WallTime now) {
  Json j;
  j["status"] = "error";
  j["status_code"] = 400;
  j["data_call_name"] = call;
  j["data"] = Json::object();
  j["messages"] = Json::array({Json::array({"error", message})});
  j["version"] = "1.1";
  j["cached"] = false;
  j["time"] = RipeTime(now);
  return j;
}

// ---------------------------------------------------------------------------------------
// Requests.

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string UrlDecode(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '+') {
      out.push_back(' ');
    } else if (in[i] == '%' && i + 2 < in.size() && HexValue(in[i + 1]) >= 0 &&
               HexValue(in[i + 2]) >= 0) {
      out.push_back(static_cast<char>(HexValue(in[i + 1]) * 16 + HexValue(in[i + 2])));
      i += 2;
    } else {
      out.push_back(in[i]);
    }
  }
  return out;
}

std::optional<std::string> QueryParam(std::string_view query, std::string_view key) {
  while (!query.empty()) {
    std::size_t amp = query.find('&');
    std::string_view kv = query.substr(0, amp);
    std::size_t eq = kv.find('=');
    if (kv.substr(0, eq) == key) {
      return eq == std::string_view::npos ? std::string() : UrlDecode(kv.substr(eq + 1));
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

const std::string* FindHeader(const ServerRequest& req, std::string_view name) {
  for (const auto& h : req.headers) {
    if (h.name == name) return &h.value;
  }
  return nullptr;
}

bool StartsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

enum class Route {
  kIpinfoJson,
  kIpinfoField,
  kIpinfoLite,
  kIpinfoBatch,
  kIpapiJson,
  kIpapiBatch,
  kRipeNetworkInfo,
  kRipeAsOverview,
  kNotFound,
};

const char* RouteName(Route r) {
  switch (r) {
    case Route::kIpinfoJson:
      return "ipinfo.json";
    case Route::kIpinfoField:
      return "ipinfo.field";
    case Route::kIpinfoLite:
      return "ipinfo.lite";
    case Route::kIpinfoBatch:
      return "ipinfo.batch";
    case Route::kIpapiJson:
      return "ipapi.json";
    case Route::kIpapiBatch:
      return "ipapi.batch";
    case Route::kRipeNetworkInfo:
      return "ripestat.network-info";
    case Route::kRipeAsOverview:
      return "ripestat.as-overview";
    case Route::kNotFound:
      return "not_found";
  }
  return "not_found";
}

bool IsIpinfo(Route r) {
  return r == Route::kIpinfoJson || r == Route::kIpinfoField || r == Route::kIpinfoLite ||
         r == Route::kIpinfoBatch;
}
bool IsIpapi(Route r) { return r == Route::kIpapiJson || r == Route::kIpapiBatch; }

// A request understood before any knob is applied.
struct Plan {
  Route route = Route::kNotFound;
  std::string ip;                      // single-address routes: the address text as requested
  std::string field;                   // ipinfo.field
  std::vector<std::string> batch_ips;  // addresses named by a batch (for counters, triggers)
  Json batch;                          // the parsed batch body
  bool bad_body = false;
};

Plan Classify(const ServerRequest& req) {
  Plan p;
  std::string_view path = req.path;
  if (StartsWith(path, "/ipinfo/")) {
    std::string_view rest = path.substr(8);
    if (rest == "batch") {
      p.route = req.method == "POST" ? Route::kIpinfoBatch : Route::kNotFound;
    } else if (StartsWith(rest, "lite/")) {
      p.route = Route::kIpinfoLite;
      p.ip = std::string(rest.substr(5));
    } else if (!rest.empty()) {
      std::size_t slash = rest.find('/');
      p.ip = std::string(rest.substr(0, slash));
      std::string_view field =
          slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
      if (field.empty() || field == "json") {
        p.route = Route::kIpinfoJson;
      } else if (field.find('/') == std::string_view::npos) {
        p.route = Route::kIpinfoField;
        p.field = std::string(field);
      }
    }
  } else if (StartsWith(path, "/ip-api/")) {
    std::string_view rest = path.substr(8);
    if (rest == "batch" && req.method == "POST") {
      p.route = Route::kIpapiBatch;
    } else if (rest == "json" || StartsWith(rest, "json/")) {
      p.route = Route::kIpapiJson;
      p.ip = rest.size() > 5 ? std::string(rest.substr(5)) : std::string();
    }
  } else if (path == "/ripestat/data/network-info/data.json") {
    p.route = Route::kRipeNetworkInfo;
    p.ip = QueryParam(req.query, "resource").value_or("");
  } else if (path == "/ripestat/data/as-overview/data.json") {
    p.route = Route::kRipeAsOverview;
  }
  if (p.route == Route::kIpinfoBatch || p.route == Route::kIpapiBatch) {
    p.batch = Json::parse(req.body, nullptr, /*allow_exceptions=*/false);
    if (!p.batch.is_array()) {
      p.bad_body = true;
    } else {
      for (const auto& e : p.batch) {
        if (p.route == Route::kIpinfoBatch && e.is_string()) {
          std::string s = e.get<std::string>();
          if (!s.empty() && s[0] == '/') s.erase(0, 1);
          if (StartsWith(s, "lite/")) s.erase(0, 5);
          p.batch_ips.push_back(s.substr(0, s.find('/')));
        } else if (p.route == Route::kIpapiBatch && e.is_string()) {
          p.batch_ips.push_back(e.get<std::string>());
        } else if (p.route == Route::kIpapiBatch && e.is_object() && e.contains("query") &&
                   e["query"].is_string()) {
          p.batch_ips.push_back(e["query"].get<std::string>());
        }
      }
    }
  }
  return p;
}

// Canonical text of an address, or the text itself when it does not parse.
std::string CanonicalIp(const std::string& text) {
  auto ip = IpAddress::Parse(text);
  return ip.ok() ? ip->ToString() : text;
}

ServerResponse TextJsonResponse(int status, std::string body) {
  ServerResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

ServerResponse JsonResponse(int status, const Json& j) {
  return TextJsonResponse(status, j.dump());
}

ServerResponse IpinfoSingle(const Plan& p) {
  auto ip = IpAddress::Parse(p.ip);
  if (!ip.ok()) return JsonResponse(404, IpinfoWrongIp());
  if (!ip->IsGloballyRoutable()) return JsonResponse(200, IpinfoBogon(ip->ToString()));
  Record rec = MakeRecord(*ip);
  if (p.route == Route::kIpinfoLite) return JsonResponse(200, IpinfoLite(rec));
  if (p.route == Route::kIpinfoJson) {
    JsonTextSink text;
    WriteIpinfoFull(rec, text);
    return TextJsonResponse(200, text.Take());
  }
  Json full = IpinfoFull(rec);
  // One field as text.
  ServerResponse r;
  r.content_type = "text/plain; charset=utf-8";
  if (!full.contains(p.field)) {
    r.status = 404;
    r.body = "Wrong field\n";
    return r;
  }
  const Json& v = full[p.field];
  r.body = (v.is_string() ? v.get<std::string>() : v.dump()) + "\n";
  return r;
}

Json IpinfoBatchEntry(const std::string& path_in) {
  std::string path = path_in;
  if (!path.empty() && path[0] == '/') path.erase(0, 1);
  bool lite = StartsWith(path, "lite/");
  if (lite) path.erase(0, 5);
  std::size_t slash = path.find('/');
  std::string ip_text = path.substr(0, slash);
  std::string field = slash == std::string::npos ? std::string() : path.substr(slash + 1);
  auto ip = IpAddress::Parse(ip_text);
  if (!ip.ok()) return IpinfoWrongIp();
  if (!ip->IsGloballyRoutable()) return IpinfoBogon(ip->ToString());
  Record rec = MakeRecord(*ip);
  Json j = lite ? IpinfoLite(rec) : IpinfoFull(rec);
  if (field.empty() || field == "json") return j;
  if (!j.contains(field)) {
    return Json{{"error", Json{{"title", "Wrong field"}, {"message", "Unknown field " + field}}}};
  }
  return j[field];
}

ServerResponse IpinfoBatch(const Plan& p) {
  if (p.bad_body) {
    return JsonResponse(
        400,
        Json{{"error", Json{{"title", "Bad request"}, {"message", "body must be a JSON array"}}}});
  }
  if (p.batch.size() > 1000) {
    return JsonResponse(
        400, Json{{"error", Json{{"title", "Bad request"},
                                 {"message", "Batch requests are limited to 1000 items"}}}});
  }
  Json out = Json::object();
  for (const auto& e : p.batch) {
    if (!e.is_string()) {
      return JsonResponse(
          400,
          Json{{"error", Json{{"title", "Bad request"}, {"message", "paths must be strings"}}}});
    }
    std::string key = e.get<std::string>();
    out[key] = IpinfoBatchEntry(key);
  }
  return JsonResponse(200, out);
}

ServerResponse IpapiBatch(const Plan& p, const std::string& default_fields) {
  if (p.bad_body) {
    return JsonResponse(400, Json{{"status", "fail"}, {"message", "invalid json"}});
  }
  if (p.batch.size() > 100) {
    return JsonResponse(422, Json{{"status", "fail"}, {"message", "too many queries"}});
  }
  Json out = Json::array();
  for (const auto& e : p.batch) {
    if (e.is_string()) {
      out.push_back(IpapiAnswer(e.get<std::string>(), default_fields));
    } else if (e.is_object() && e.contains("query") && e["query"].is_string()) {
      std::string fields = default_fields;
      if (e.contains("fields") && e["fields"].is_string()) fields = e["fields"].get<std::string>();
      out.push_back(IpapiAnswer(e["query"].get<std::string>(), fields));
    } else {
      out.push_back(Json{{"status", "fail"}, {"message", "invalid query"}, {"query", ""}});
    }
  }
  return JsonResponse(200, out);
}

ServerResponse RipeNetworkInfo(const Plan& p, WallTime now) {
  std::string text = p.ip;
  std::size_t slash = text.find('/');
  auto ip = IpAddress::Parse(text.substr(0, slash));
  if (text.empty() || !ip.ok()) {
    return JsonResponse(
        400,
        RipeError("network-info", "The given resource is not a valid IP address or prefix", now));
  }
  Json data;
  Record rec = MakeRecord(*ip);
  if (ip->IsGloballyRoutable() && rec.announced) {
    data["asns"] = Json::array({std::to_string(rec.org->asn)});
    data["prefix"] = rec.prefix;
  } else {
    data["asns"] = Json::array();
    data["prefix"] = nullptr;
  }
  return JsonResponse(200, RipeEnvelope("network-info", std::move(data), now));
}

ServerResponse RipeAsOverview(const ServerRequest& req, WallTime now) {
  std::string res = QueryParam(req.query, "resource").value_or("");
  std::string_view digits = res;
  if (digits.size() > 2 && (digits[0] == 'A' || digits[0] == 'a') &&
      (digits[1] == 'S' || digits[1] == 's')) {
    digits.remove_prefix(2);
  }
  uint64_t asn = 0;
  bool ok = !digits.empty() && digits.size() <= 10;
  for (char c : digits) {
    if (c < '0' || c > '9') ok = false;
    asn = asn * 10 + static_cast<uint64_t>(c - '0');
  }
  if (!ok || asn > 0xFFFFFFFFull) {
    return JsonResponse(400,
                        RipeError("as-overview", "The given resource is not a valid ASN", now));
  }
  const Org* org = FindOrg(static_cast<uint32_t>(asn));
  Json data;
  data["type"] = "as";
  data["resource"] = std::to_string(asn);
  data["holder"] =
      org ? std::string(org->holder)
          : "MOCKNET-" + std::to_string(asn) + " - Mock Network " + std::to_string(asn);
  data["announced"] = org != nullptr;
  return JsonResponse(200, RipeEnvelope("as-overview", std::move(data), now));
}

int64_t CeilSeconds(Duration d) {
  if (d <= Duration::zero()) return 0;
  return (d.count() + 999'999'999) / 1'000'000'000;
}

}  // namespace

// ---------------------------------------------------------------------------------------

uint64_t MockProviderStats::MaxInWindow(Duration window) const {
  uint64_t best = 0;
  std::size_t lo = 0;
  for (std::size_t hi = 0; hi < arrivals.size(); ++hi) {
    while (arrivals[hi] - arrivals[lo] >= window) ++lo;
    best = std::max<uint64_t>(best, hi - lo + 1);
  }
  return best;
}

std::string MockProviderStats::ToJson() const {
  nlohmann::json j;
  j["total_requests"] = total_requests;
  j["connections_accepted"] = connections_accepted;
  j["by_route"] = by_route;
  nlohmann::json status = nlohmann::json::object();
  for (const auto& [k, v] : by_status) status[std::to_string(k)] = v;
  j["by_status"] = status;
  j["events"] = events;
  nlohmann::json seconds = nlohmann::json::object();
  for (const auto& [k, v] : by_second) seconds[std::to_string(k)] = v;
  j["by_second"] = seconds;
  j["by_ip"] = by_ip;
  j["arrival_count"] = arrivals.size();
  j["max_in_flight"] = max_in_flight;
  j["max_in_1s"] = MaxInWindow(std::chrono::seconds(1));
  return j.dump();
}

class MockProvider::Impl {
 public:
  Impl(MockProviderOptions options, Clock& clock)
      : clock_(clock),
        start_(clock.Now()),
        options_(std::make_shared<const MockProviderOptions>(options)),
        rng_(options.seed) {}

  ServerResponse Handle(const ServerRequest& req);
  ServerResponse Control(const ServerRequest& req);

  MockProviderStats Snapshot() const {
    std::lock_guard<std::mutex> lock(mu_);
    MockProviderStats s = stats_;
    s.connections_accepted = server_ ? server_->connections_accepted() - connections_baseline_ : 0;
    return s;
  }

  void ResetCounters() {
    std::lock_guard<std::mutex> lock(mu_);
    stats_ = MockProviderStats{};
    connections_baseline_ = server_ ? server_->connections_accepted() : 0;
  }

  std::shared_ptr<const MockProviderOptions> Options() const {
    std::lock_guard<std::mutex> lock(mu_);
    return options_;
  }
  void SetOptions(MockProviderOptions o) {
    auto p = std::make_shared<const MockProviderOptions>(std::move(o));
    std::lock_guard<std::mutex> lock(mu_);
    options_ = std::move(p);
  }
  void SetOutage(bool on) {
    std::lock_guard<std::mutex> lock(mu_);
    forced_outage_ = on;
  }

  std::unique_ptr<HttpServer> server_;

 private:
  struct Window {
    bool started = false;
    MonoTime start{};
    int used = 0;
  };

  // X-Rl / X-Ttl for an ip-api window; consumes one request when `consume`. Returns false
  // when the request overruns the window. Requires mu_.
  bool IpapiWindow(Window& w, int limit, Duration length, MonoTime now, bool consume,
                   std::vector<HttpHeader>* headers) {
    if (!w.started || now - w.start >= length) {
      if (consume) {
        w.started = true;
        w.start = now;
        w.used = 0;
      } else {
        headers->push_back({"X-Rl", std::to_string(limit)});
        headers->push_back({"X-Ttl", std::to_string(CeilSeconds(length))});
        return true;
      }
    }
    bool ok = true;
    if (consume) {
      if (w.used >= limit) {
        ok = false;
      } else {
        ++w.used;
      }
    }
    headers->push_back({"X-Rl", std::to_string(std::max(0, limit - w.used))});
    headers->push_back({"X-Ttl", std::to_string(CeilSeconds(w.start + length - now))});
    return ok;
  }

  void CountLocked(int status, const char* event) {
    ++stats_.by_status[status];
    if (event != nullptr) ++stats_.events[event];
  }

  Clock& clock_;
  const MonoTime start_;
  mutable std::mutex mu_;
  std::shared_ptr<const MockProviderOptions> options_;
  bool forced_outage_ = false;
  SeededRandom rng_;
  bool bucket_started_ = false;
  double tokens_ = 0;
  MonoTime bucket_time_{};
  Window ipapi_single_;
  Window ipapi_batch_;
  std::priority_queue<SteadyTime, std::vector<SteadyTime>, std::greater<>> in_flight_;
  MockProviderStats stats_;
  uint64_t connections_baseline_ = 0;
};

ServerResponse MockProvider::Impl::Control(const ServerRequest& req) {
  if (req.path == "/_mock/stats") return JsonResponse(200, Json::parse(Snapshot().ToJson()));
  if (req.path == "/_mock/outage/on" || req.path == "/_mock/outage/off") {
    SetOutage(req.path.back() == 'n');
    return JsonResponse(200, Json{{"outage", req.path.back() == 'n'}});
  }
  if (req.path == "/_mock/reset") {
    ResetCounters();
    return JsonResponse(200, Json{{"reset", true}});
  }
  return JsonResponse(404, Json{{"error", "unknown control route"}});
}

ServerResponse MockProvider::Impl::Handle(const ServerRequest& req) {
  if (StartsWith(req.path, "/_mock/")) return Control(req);

  Plan plan = Classify(req);
  const std::string ip_key = plan.ip.empty() ? std::string() : CanonicalIp(plan.ip);

  ServerResponse early;  // an answer decided by a knob (status != 0)
  early.status = 0;
  std::vector<HttpHeader> extra_headers;
  MockFault fault = MockFault::kNone;
  Duration latency{};
  std::shared_ptr<const MockProviderOptions> opts;
  const MonoTime now = clock_.Now();
  const Duration since = now - start_;
  {
    std::lock_guard<std::mutex> lock(mu_);
    opts = options_;
    const MockProviderOptions& o = *opts;

    // Counters of arrival.
    ++stats_.total_requests;
    ++stats_.by_route[RouteName(plan.route)];
    ++stats_.by_second[std::chrono::duration_cast<std::chrono::seconds>(since).count()];
    if (o.max_arrivals_kept > 0) {
      if (stats_.arrivals.size() >= o.max_arrivals_kept) {
        stats_.arrivals.erase(
            stats_.arrivals.begin(),
            stats_.arrivals.begin() + static_cast<std::ptrdiff_t>(stats_.arrivals.size() / 2));
      }
      stats_.arrivals.push_back(since);
    }
    if (!ip_key.empty()) ++stats_.by_ip[ip_key];
    for (const auto& ip : plan.batch_ips) ++stats_.by_ip[CanonicalIp(ip)];
    if ((plan.route == Route::kRipeNetworkInfo || plan.route == Route::kRipeAsOverview) &&
        !QueryParam(req.query, "sourceapp").has_value()) {
      ++stats_.events["ripestat_no_sourceapp"];
    }

    // One roll per request (so the sequence is reproducible whatever the rates), one more
    // for jitter when it is enabled.
    const double roll = rng_.UniformDouble();
    latency = o.latency;
    if (o.latency_jitter > Duration::zero()) {
      latency += rng_.UniformDuration(Duration::zero(), o.latency_jitter);
    }

    const bool scheduled_outage =
        o.outage_end > o.outage_start && since >= o.outage_start && since < o.outage_end;
    if (plan.route == Route::kNotFound) {
      early = JsonResponse(404, Json{{"error", "no such route"}});
    } else if (forced_outage_ || scheduled_outage) {
      if (o.outage_drops_connections) {
        early.status = -1;
        early.fault = ServerResponse::Fault::kDropConnection;
      } else {
        early = JsonResponse(503, Json{{"error", "mock outage"}});
        int64_t wait =
            scheduled_outage ? std::max<int64_t>(1, CeilSeconds(o.outage_end - since)) : 1;
        early.headers.push_back({"Retry-After", std::to_string(wait)});
      }
      ++stats_.events["outage"];
    }
    if (early.status == 0 && o.rate_limit_rps > 0) {
      const double burst = o.rate_limit_burst > 0 ? o.rate_limit_burst : o.rate_limit_rps;
      if (!bucket_started_) {
        bucket_started_ = true;
        tokens_ = burst;
        bucket_time_ = now;
      } else if (now > bucket_time_) {
        tokens_ =
            std::min(burst, tokens_ + std::chrono::duration<double>(now - bucket_time_).count() *
                                          o.rate_limit_rps);
        bucket_time_ = now;
      }
      if (tokens_ >= 1.0) {
        tokens_ -= 1.0;
      } else {
        early = JsonResponse(429, Json{{"error", "rate limit exceeded"}});
        auto wait = static_cast<int64_t>(std::ceil((1.0 - tokens_) / o.rate_limit_rps));
        early.headers.push_back({"Retry-After", std::to_string(std::max<int64_t>(1, wait))});
        ++stats_.events["rate_limited"];
      }
    }
    if (IsIpapi(plan.route)) {
      const bool batch = plan.route == Route::kIpapiBatch;
      bool ok = IpapiWindow(batch ? ipapi_batch_ : ipapi_single_,
                            batch ? o.ipapi_batch_requests_per_window : o.ipapi_requests_per_window,
                            o.ipapi_window, now, /*consume=*/early.status == 0, &extra_headers);
      if (!ok) {
        early = JsonResponse(429, Json{{"status", "fail"}, {"message", "too many requests"}});
        ++stats_.events["ipapi_overrun"];
      }
    }
    if (early.status == 0 && IsIpinfo(plan.route) && !o.required_token.empty()) {
      std::optional<std::string> token = QueryParam(req.query, "token");
      if (!token) {
        const std::string* auth = FindHeader(req, "authorization");
        if (auth != nullptr && StartsWith(*auth, "Bearer ")) token = auth->substr(7);
      }
      if (!token || token->empty()) {
        early = JsonResponse(401, Json{{"status", 401},
                                       {"error", Json{{"title", "Unknown token"},
                                                      {"message", "Please provide a token"}}}});
        ++stats_.events["auth"];
      } else if (*token != o.required_token) {
        early = JsonResponse(403, Json{{"status", 403},
                                       {"error", Json{{"title", "Unknown token"},
                                                      {"message", "The token is not valid"}}}});
        ++stats_.events["auth"];
      }
    }
    if (early.status == 0) {
      // Per-IP triggers first, then the random roll.
      if (!o.ip_faults.empty()) {
        auto it = ip_key.empty() ? o.ip_faults.end() : o.ip_faults.find(ip_key);
        for (std::size_t i = 0; it == o.ip_faults.end() && i < plan.batch_ips.size(); ++i) {
          it = o.ip_faults.find(CanonicalIp(plan.batch_ips[i]));
        }
        if (it != o.ip_faults.end()) fault = it->second;
      }
      if (fault == MockFault::kNone) {
        double edge = o.error_rate;
        if (roll < edge) {
          fault = MockFault::kError;
        } else if (roll < (edge += o.drop_rate)) {
          fault = MockFault::kDrop;
        } else if (roll < (edge += o.truncate_rate)) {
          fault = MockFault::kTruncate;
        } else if (roll < (edge += o.malformed_rate)) {
          fault = MockFault::kMalformed;
        } else if (roll < (edge += o.oversized_rate)) {
          fault = MockFault::kOversized;
        } else if (roll < (edge += o.slow_rate)) {
          fault = MockFault::kSlow;
        }
      }
    }
    // Approximate concurrency: in flight from arrival until the latency elapses.
    SteadyTime real_now = std::chrono::steady_clock::now();
    while (!in_flight_.empty() && in_flight_.top() <= real_now) in_flight_.pop();
    in_flight_.push(real_now + std::chrono::duration_cast<SteadyTime::duration>(latency));
    stats_.max_in_flight = std::max<uint64_t>(stats_.max_in_flight, in_flight_.size());
  }
  const MockProviderOptions& o = *opts;

  ServerResponse resp;
  const char* event = nullptr;
  if (early.status != 0) {
    resp = std::move(early);
  } else if (fault == MockFault::kError) {
    resp = JsonResponse(o.error_status, Json{{"error", "mock injected error"}});
    if (o.error_status == 503) resp.headers.push_back({"Retry-After", "1"});
    event = "error";
  } else if (fault == MockFault::kRateLimited) {
    resp = JsonResponse(429, Json{{"error", "rate limit exceeded"}});
    resp.headers.push_back({"Retry-After", "1"});
    event = "rate_limited";
  } else {
    const WallTime wall = clock_.WallNow();
    switch (plan.route) {
      case Route::kIpinfoJson:
      case Route::kIpinfoField:
      case Route::kIpinfoLite:
        resp = IpinfoSingle(plan);
        break;
      case Route::kIpinfoBatch:
        resp = IpinfoBatch(plan);
        break;
      case Route::kIpapiJson: {
        JsonTextSink text;
        WriteIpapiAnswer(plan.ip.empty() ? std::string_view("127.0.0.1") : plan.ip,
                         QueryParam(req.query, "fields").value_or(""), text);
        resp = TextJsonResponse(200, text.Take());
      } break;
      case Route::kIpapiBatch:
        resp = IpapiBatch(plan, QueryParam(req.query, "fields").value_or(""));
        break;
      case Route::kRipeNetworkInfo:
        resp = RipeNetworkInfo(plan, wall);
        break;
      case Route::kRipeAsOverview:
        resp = RipeAsOverview(req, wall);
        break;
      case Route::kNotFound:
        resp = JsonResponse(404, Json{{"error", "no such route"}});
        break;
    }
    switch (fault) {
      case MockFault::kDrop:
        resp.fault = ServerResponse::Fault::kDropConnection;
        event = "drop";
        break;
      case MockFault::kTruncate:
        resp.fault = ServerResponse::Fault::kTruncateBody;
        event = "truncate";
        break;
      case MockFault::kMalformed:
        resp.status = 200;
        resp.body = resp.body.size() >= 4 ? resp.body.substr(0, resp.body.size() / 2)
                                          : std::string("<html>");
        event = "malformed";
        break;
      case MockFault::kOversized: {
        resp.status = 200;
        std::size_t n = std::max<std::size_t>(o.oversized_bytes, 16);
        resp.body = "{\"padding\":\"" + std::string(n - 14, 'x') + "\"}";
        event = "oversized";
        break;
      }
      case MockFault::kSlow:
        resp.fault = ServerResponse::Fault::kSlowBody;
        event = "slow";
        break;
      default:
        break;
    }
  }
  for (auto& h : extra_headers) resp.headers.push_back(std::move(h));
  if (resp.fault == ServerResponse::Fault::kSlowBody) {
    resp.delay = o.slow_interval;
  } else {
    resp.delay = latency;
  }
  if (resp.status < 0) resp.status = 503;  // a dropped outage answer: status never sent
  {
    std::lock_guard<std::mutex> lock(mu_);
    const int sent = resp.fault == ServerResponse::Fault::kDropConnection ? 0 : resp.status;
    CountLocked(sent, event);
    if (o.max_arrivals_kept > 0) {
      if (stats_.requests.size() >= o.max_arrivals_kept) {
        stats_.requests.erase(
            stats_.requests.begin(),
            stats_.requests.begin() + static_cast<std::ptrdiff_t>(stats_.requests.size() / 2));
      }
      MockRequestRecord record;
      record.arrival = since;
      record.route = RouteName(plan.route);
      record.status = sent;
      for (const HttpHeader& h : resp.headers) {
        int* field = h.name == "Retry-After" ? &record.retry_after_s
                     : h.name == "X-Rl"      ? &record.x_rl
                     : h.name == "X-Ttl"     ? &record.x_ttl
                                             : nullptr;
        if (field == nullptr) continue;
        // Not a number (e.g. an HTTP-date): left at -1.
        int value = 0;
        const char* end = h.value.data() + h.value.size();
        auto [ptr, ec] = std::from_chars(h.value.data(), end, value);
        if (ec == std::errc() && ptr == end) *field = value;
      }
      stats_.requests.push_back(std::move(record));
    }
  }
  return resp;
}

// ---------------------------------------------------------------------------------------

MockProvider::MockProvider(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
MockProvider::~MockProvider() { Stop(); }

Result<std::unique_ptr<MockProvider>> MockProvider::Start(MockProviderOptions options,
                                                          ServerOptions server, Clock& clock) {
  auto impl = std::make_unique<Impl>(std::move(options), clock);
  Impl* raw = impl.get();
  auto started =
      HttpServer::Start(server, [raw](const ServerRequest& req) { return raw->Handle(req); });
  if (!started.ok()) return started.status();
  impl->server_ = std::move(started).value();
  return std::unique_ptr<MockProvider>(new MockProvider(std::move(impl)));
}

std::string MockProvider::base_url() const { return impl_->server_->base_url(); }
std::string MockProvider::ipinfo_url() const { return base_url() + "/ipinfo"; }
std::string MockProvider::ipapi_url() const { return base_url() + "/ip-api"; }
std::string MockProvider::ripestat_url() const { return base_url() + "/ripestat"; }
uint16_t MockProvider::port() const { return impl_->server_->port(); }
void MockProvider::SetOptions(MockProviderOptions options) {
  impl_->SetOptions(std::move(options));
}
MockProviderOptions MockProvider::options() const { return *impl_->Options(); }
void MockProvider::SetOutage(bool on) { impl_->SetOutage(on); }
MockProviderStats MockProvider::Snapshot() const { return impl_->Snapshot(); }
void MockProvider::ResetCounters() { impl_->ResetCounters(); }
void MockProvider::Stop() {
  if (impl_ && impl_->server_) impl_->server_->Stop();
}

Result<MockProviderOptions> ScenarioOptions(const std::string& name) {
  using namespace std::chrono_literals;
  MockProviderOptions o;
  if (name == "fast") {
    // No latency, no errors; ip-api windows wide enough for benchmarks.
    o.ipapi_requests_per_window = 1'000'000'000;
    o.ipapi_batch_requests_per_window = 1'000'000'000;
  } else if (name == "realistic") {
    o.latency = 20ms;
    o.latency_jitter = 60ms;
    o.error_rate = 0.02;
    o.rate_limit_rps = 50;
    o.rate_limit_burst = 10;
    o.outage_start = 30s;
    o.outage_end = 35s;
  } else if (name == "flaky") {
    o.error_rate = 0.10;
  } else if (name == "outage") {
    o.outage_start = 0s;
    o.outage_end = 5s;
  } else if (name == "ratelimited") {
    o.rate_limit_rps = 200;
    o.rate_limit_burst = 20;
  } else {
    return InvalidArgumentError("unknown scenario '" + name +
                                "' (fast, realistic, flaky, outage, ratelimited)");
  }
  return o;
}

}  // namespace enrichd::mock

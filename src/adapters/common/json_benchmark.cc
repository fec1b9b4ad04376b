// Reading a provider answer (nlohmann::json's tree against JsonDoc's flat nodes, for the
// single answers the engine reads most: ipinfo full, ip-api; parse + the fields read), and
// writing a result's data (a Json tree dumped against JsonObjectWriter).
#include <benchmark/benchmark.h>

#include <string>

#include "adapters/common/json_reader.h"
#include "adapters/common/json_util.h"
#include "adapters/common/json_writer.h"

namespace enrichd::adapters {
namespace {

const std::string kIpinfo =
    R"({"ip":"11.22.33.44","hostname":"host-11-22-33-44.example.net","city":"Mountain View",)"
    R"("region":"California","country":"US","loc":"37.4056,-122.0775",)"
    R"("org":"AS15169 Google LLC","postal":"94043","timezone":"America/Los_Angeles"})";
const std::string kIpApi =
    R"({"status":"success","country":"Germany","countryCode":"DE","regionName":"Hesse",)"
    R"("city":"Frankfurt am Main","lat":50.1109,"lon":8.68213,"isp":"Cloudflare, Inc.",)"
    R"("org":"Cloudflare","as":"AS13335 Cloudflare, Inc.","query":"11.22.33.44"})";
const char* const kFields[] = {"status", "country", "countryCode", "regionName", "city",    "isp",
                               "org",    "as",      "query",       "loc",        "hostname"};

template <typename Doc>
size_t ReadFields(const Doc& doc) {
  size_t n = 0;
  for (const char* f : kFields) n += StringMember(doc, f).value_or("").size();
  return n;
}

void BM_Nlohmann(benchmark::State& state, const std::string& text) {
  for (auto _ : state) {
    auto doc = ParseJson(text);
    benchmark::DoNotOptimize(ReadFields(*doc));
  }
}

void BM_JsonDoc(benchmark::State& state, const std::string& text) {
  for (auto _ : state) {
    auto doc = JsonDoc::Parse(text);
    benchmark::DoNotOptimize(ReadFields(doc->root()));
  }
}

// A geo result as the ipinfo adapter writes it.
void BM_WriteNlohmann(benchmark::State& state) {
  for (auto _ : state) {
    Json extra = Json::object();
    extra["hostname"] = "host-11-22-33-44.example.net";
    extra["asn"] = 15169;
    extra["as_name"] = "Google LLC";
    Json data = Json::object();
    data["country_code"] = "US";
    data["region"] = "California";
    data["city"] = "Mountain View";
    data["lat"] = 37.4056;
    data["lon"] = -122.0775;
    data["postal"] = "94043";
    data["timezone"] = "America/Los_Angeles";
    data["extra"] = std::move(extra);
    benchmark::DoNotOptimize(DumpJson(data));
  }
}

void BM_WriteJsonObjectWriter(benchmark::State& state) {
  for (auto _ : state) {
    JsonObjectWriter extra;
    extra.String("hostname", "host-11-22-33-44.example.net").Int("asn", 15169);
    extra.String("as_name", "Google LLC");
    JsonObjectWriter data;
    data.String("country_code", "US").String("region", "California");
    data.String("city", "Mountain View").Double("lat", 37.4056).Double("lon", -122.0775);
    data.String("postal", "94043").String("timezone", "America/Los_Angeles");
    data.Object("extra", extra);
    benchmark::DoNotOptimize(data.Text());
  }
}

BENCHMARK(BM_WriteNlohmann);
BENCHMARK(BM_WriteJsonObjectWriter);
BENCHMARK_CAPTURE(BM_Nlohmann, ipinfo, kIpinfo);
BENCHMARK_CAPTURE(BM_JsonDoc, ipinfo, kIpinfo);
BENCHMARK_CAPTURE(BM_Nlohmann, ip_api, kIpApi);
BENCHMARK_CAPTURE(BM_JsonDoc, ip_api, kIpApi);

}  // namespace
}  // namespace enrichd::adapters

BENCHMARK_MAIN();

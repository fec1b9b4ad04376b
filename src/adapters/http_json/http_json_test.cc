// http_json adapter: configuration-only JSON APIs, against recorded answers.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "adapters/common/json_util.h"
#include "adapters/common/test_util.h"

namespace enrichd::adapters {
namespace {

using testing::DriveItems;
using ::testing::HasSubstr;
using testing::Ip;
using ::testing::Not;
using testing::Recorded;
using testing::RequestHeader;
using testing::Response;
using testing::TransportFailure;

constexpr char kApiKey[] = "inhouse-KEY-31337";
constexpr char kPassword[] = "pa55word-77";

AdapterSpec AsnSpec() {
  AdapterSpec spec;
  spec.provider_name = "inhouse-asn";
  spec.adapter = "http_json";
  spec.kind = "asn";
  spec.endpoint = "http://127.0.0.1:8092/api/";
  spec.timeout = std::chrono::milliseconds(1500);
  spec.options = {
      {"path", "/asn/{key}"},
      {"headers", {{"X-Api-Key", kApiKey}}},
      {"fields",
       {{"asn", "/result/asn"},
        {"org", "/result/org"},
        {"prefix", "/result/prefix"},
        {"country_code", "/result/cc"}}},
      {"no_data_when", {{"pointer", "/status"}, {"equals", "fail"}}},
      {"extra", {{"source", "/meta/source"}}},
  };
  return spec;
}

Json Data(const EnrichmentResult& r) { return *ParseJson(r.data_json); }

TEST(HttpJsonTest, ReadsConfiguredFields) {
  auto adapter = testing::MustCreate(AsnSpec());
  EXPECT_EQ(adapter->kind(), "asn");
  auto run = DriveItems(*testing::AsAsync(adapter), {Ip("2001:4860::1")},
                        {Response(200, Recorded("http_json", "asn_ok.json"))});
  ASSERT_EQ(run.requests.size(), 1u);
  const HttpRequest& req = run.requests[0];
  EXPECT_EQ(req.method, "GET");
  EXPECT_EQ(req.url, "http://127.0.0.1:8092/api/asn/2001%3A4860%3A%3A1");
  EXPECT_EQ(RequestHeader(req, "X-Api-Key"), kApiKey);
  EXPECT_EQ(RequestHeader(req, "User-Agent"), "enrichd/0.1");
  EXPECT_EQ(req.timeout, std::chrono::milliseconds(1500));
  const auto& r = run.results.at(0);
  EXPECT_EQ(r.outcome, Outcome::kOk);
  EXPECT_EQ(r.kind, "asn");
  const Json d = Data(r);
  EXPECT_EQ(d["asn"], 15169);
  EXPECT_EQ(d["org"], "Google LLC");
  EXPECT_EQ(d["prefix"], "8.8.8.0/24");
  EXPECT_EQ(d["country_code"], "US");
  EXPECT_EQ(d["extra"]["source"], "inhouse");
  EXPECT_EQ(r.provenance.endpoint, req.url);
  EXPECT_EQ(r.provenance.adapter, "http_json");
}

TEST(HttpJsonTest, NumericAsnAndMissingFieldsOmitted) {
  auto adapter = testing::MustCreate(AsnSpec());
  auto run = DriveItems(*testing::AsAsync(adapter), {Ip("1.1.1.1")},
                        {Response(200, Recorded("http_json", "asn_number.json"))});
  const Json d = Data(run.results.at(0));
  EXPECT_EQ(d["asn"], 13335);
  EXPECT_FALSE(d.contains("country_code"));
  EXPECT_FALSE(d.contains("extra"));
}

TEST(HttpJsonTest, NoDataWhen) {
  auto adapter = testing::MustCreate(AsnSpec());
  auto run = DriveItems(*testing::AsAsync(adapter), {Ip("1.1.1.1")},
                        {Response(200, Recorded("http_json", "asn_fail.json"))});
  EXPECT_EQ(run.results.at(0).outcome, Outcome::kNoData);
}

TEST(HttpJsonTest, GeoKindWithNumericStrings) {
  AdapterSpec spec;
  spec.adapter = "http_json";
  spec.kind = "geo";
  spec.endpoint = "http://127.0.0.1:8093";
  spec.options = {{"path", "/geo?ip={key}"},
                  {"fields",
                   {{"lat", "/location/lat"},
                    {"lon", "/location/lon"},
                    {"accuracy_km", "/location/radius"},
                    {"country_code", "/country/code"},
                    {"country", "/country/name"},
                    {"city", "/city"}}}};
  auto adapter = testing::MustCreate(spec);
  auto run = DriveItems(*testing::AsAsync(adapter), {Ip("81.2.69.160")},
                        {Response(200, Recorded("http_json", "geo_ok.json"))});
  EXPECT_EQ(run.requests.at(0).url, "http://127.0.0.1:8093/geo?ip=81.2.69.160");
  const Json d = Data(run.results.at(0));
  EXPECT_DOUBLE_EQ(d["lat"].get<double>(), 51.5);
  EXPECT_DOUBLE_EQ(d["lon"].get<double>(), -0.12);
  EXPECT_EQ(d["accuracy_km"], 20);
  EXPECT_EQ(d["country_code"], "GB");
  EXPECT_EQ(d["city"], "London");
}

TEST(HttpJsonTest, PostWithBodyTemplate) {
  auto spec = AsnSpec();
  spec.options["method"] = "post";
  spec.options["body"] = "{\"ip\":\"{key}\"}";
  auto adapter = testing::MustCreate(spec);
  auto run = DriveItems(*testing::AsAsync(adapter), {Ip("8.8.8.8")},
                        {Response(200, Recorded("http_json", "asn_ok.json"))});
  EXPECT_EQ(run.requests.at(0).method, "POST");
  EXPECT_EQ(run.requests[0].body, "{\"ip\":\"8.8.8.8\"}");
  EXPECT_EQ(run.results.at(0).outcome, Outcome::kOk);
}

std::vector<std::pair<HttpResponse, Outcome>> ErrorCases() {
  return {
      {Response(429, "", {{"retry-after", "3"}}), Outcome::kRateLimited},
      {Response(401, ""), Outcome::kAuth},
      {Response(402, "{\"code\":\"INSUFFICIENT_FUNDS\"}"), Outcome::kAuth},
      {Response(403, ""), Outcome::kAuth},
      {Response(400, ""), Outcome::kPermanent},
      {Response(404, "{\"code\":\"IP_ADDRESS_NOT_FOUND\"}"), Outcome::kPermanent},
      {Response(500, ""), Outcome::kTransient},
      {Response(503, ""), Outcome::kTransient},
      {TransportFailure(TransportError::kTimeout), Outcome::kTransient},
      {TransportFailure(TransportError::kConnect), Outcome::kTransient},
      {TransportFailure(TransportError::kReceive), Outcome::kTransient},
      {Response(200, "{\"status\":\"ok\",\"res"), Outcome::kTransient},
      {Response(200, Recorded("http_json", "asn_bad_asn.json")), Outcome::kPermanent},
      {Response(200, "{\"something\":\"else\"}"), Outcome::kPermanent},
      {Response(200, "{\"result\":{\"asn\":15169,\"org\":{\"nested\":1}}}"), Outcome::kPermanent},
  };
}

TEST(HttpJsonTest, ErrorMapping) {
  auto adapter = testing::MustCreate(AsnSpec());
  for (const auto& [resp, outcome] : ErrorCases()) {
    SCOPED_TRACE(std::to_string(resp.status) + " " + resp.body);
    auto run = DriveItems(*testing::AsAsync(adapter), {Ip("8.8.8.8")}, {resp});
    EXPECT_EQ(run.results.at(0).outcome, outcome) << run.results[0].reason;
    EXPECT_FALSE(run.results[0].reason.empty());
  }
  auto run = DriveItems(*testing::AsAsync(adapter), {Ip("8.8.8.8")},
                        {Response(429, "", {{"retry-after", "3"}})});
  EXPECT_EQ(run.results.at(0).retry_after, std::chrono::seconds(3));
}

TEST(HttpJsonTest, SecretsNeverAppearInResults) {
  auto spec = AsnSpec();
  spec.auth = {AuthSpec::Kind::kBasic, "", "acct", kPassword};
  auto adapter = testing::MustCreate(spec);
  auto responses = ErrorCases();
  responses.push_back({Response(200, Recorded("http_json", "asn_ok.json")), Outcome::kOk});
  responses.push_back({Response(200, std::string("{\"result\":{\"asn\":1,\"org\":\"") + kApiKey +
                                         "\"},\"meta\":{\"source\":\"" + kPassword + "\"}}"),
                       Outcome::kOk});
  responses.push_back({TransportFailure(TransportError::kConnect, kApiKey), Outcome::kTransient});
  for (const auto& [resp, outcome] : responses) {
    auto run = DriveItems(*testing::AsAsync(adapter), {Ip("8.8.8.8")}, {resp});
    const auto& r = run.results.at(0);
    EXPECT_EQ(r.outcome, outcome);
    EXPECT_THAT(testing::AllText(r), Not(HasSubstr(kApiKey)));
    EXPECT_THAT(testing::AllText(r), Not(HasSubstr(kPassword)));
  }
}

TEST(HttpJsonTest, FactoryValidatesOptionsNamingThem) {
  struct Case {
    std::function<void(AdapterSpec&)> change;
    const char* mentions;
  };
  const std::vector<Case> cases = {
      {[](AdapterSpec& s) { s.kind.clear(); }, "kind"},
      {[](AdapterSpec& s) { s.endpoint.clear(); }, "endpoint"},
      {[](AdapterSpec& s) { s.options.erase("path"); }, "\"path\""},
      {[](AdapterSpec& s) { s.options["path"] = "asn/{key}"; }, "\"path\""},
      {[](AdapterSpec& s) { s.options["method"] = "DELETE"; }, "\"method\""},
      {[](AdapterSpec& s) { s.options["headers"] = "X: y"; }, "\"headers\""},
      {[](AdapterSpec& s) {
         s.options["headers"] = {{"X-Api-Key", 5}};
       },
       "headers.X-Api-Key"},
      {[](AdapterSpec& s) { s.options.erase("fields"); }, "\"fields\""},
      {[](AdapterSpec& s) { s.options["fields"] = Json::object(); }, "\"fields\""},
      {[](AdapterSpec& s) { s.options["fields"]["colour"] = "/c"; }, "fields.colour"},
      {[](AdapterSpec& s) { s.options["fields"]["asn"] = "result/asn"; }, "fields.asn"},
      {[](AdapterSpec& s) {
         s.options["no_data_when"] = {{"pointer", "/s"}};
       },
       "no_data_when"},
      {[](AdapterSpec& s) {
         s.options["extra"] = {{"x", 1}};
       },
       "extra.x"},
      {[](AdapterSpec& s) { s.options["body"] = "{}"; }, "\"body\""},
      {[](AdapterSpec& s) { s.options["pathh"] = "/x"; }, "pathh"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.mentions);
    auto spec = AsnSpec();
    c.change(spec);
    auto created = AdapterRegistry::Builtin().Create(spec);
    ASSERT_FALSE(created.ok());
    EXPECT_EQ(created.status().code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(created.status().message(), HasSubstr(c.mentions));
    EXPECT_THAT(created.status().message(), Not(HasSubstr(kApiKey)));
  }
}

}  // namespace
}  // namespace enrichd::adapters

// ip-api adapter against recorded ip-api.com responses (PROVIDERS.md shapes).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "adapters/common/json_util.h"
#include "adapters/common/sha256.h"
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

constexpr char kFields[] =
    "fields=status,message,country,countryCode,regionName,city,lat,lon,isp,org,as,query";
constexpr char kKey[] = "proKEY-5e6f7a8b";

AdapterSpec Spec() {
  AdapterSpec spec;
  spec.provider_name = "ipapi-test";
  spec.adapter = "ip-api";
  spec.endpoint = "http://127.0.0.1:8090";
  spec.timeout = std::chrono::seconds(4);
  return spec;
}

Json Data(const EnrichmentResult& r) { return *ParseJson(r.data_json); }

TEST(IpApiTest, SingleLookupGeo) {
  auto adapter = testing::MustCreate(Spec());
  EXPECT_EQ(adapter->kind(), "geo");
  const std::string body = Recorded("ip_api", "success_8.8.8.8.json");
  auto run = DriveItems(*testing::AsAsync(adapter), {Ip("8.8.8.8")},
                        {Response(200, body, {{"x-rl", "44"}, {"x-ttl", "60"}})});
  ASSERT_EQ(run.requests.size(), 1u);
  EXPECT_EQ(run.requests[0].method, "GET");
  EXPECT_EQ(run.requests[0].url, std::string("http://127.0.0.1:8090/json/8.8.8.8?") + kFields);
  EXPECT_EQ(RequestHeader(run.requests[0], "user-agent"), "enrichd/0.1");
  EXPECT_EQ(run.requests[0].timeout, std::chrono::seconds(4));
  EXPECT_FALSE(run.pause.has_value());
  const auto& r = run.results.at(0);
  EXPECT_EQ(r.outcome, Outcome::kOk);
  const Json d = Data(r);
  EXPECT_EQ(d["country_code"], "US");
  EXPECT_EQ(d["country"], "United States");
  EXPECT_EQ(d["region"], "Virginia");
  EXPECT_EQ(d["city"], "Ashburn");
  EXPECT_DOUBLE_EQ(d["lat"].get<double>(), 39.03);
  EXPECT_DOUBLE_EQ(d["lon"].get<double>(), -77.5);
  EXPECT_EQ(d["extra"]["asn"], 15169);
  EXPECT_EQ(d["extra"]["as_name"], "Google LLC");
  EXPECT_EQ(d["extra"]["isp"], "Google LLC");
  EXPECT_EQ(d["extra"]["org"], "Google Public DNS");
  EXPECT_EQ(r.provenance.adapter, "ip-api");
  EXPECT_EQ(r.provenance.http_status, 200);
  EXPECT_EQ(r.provenance.response_digest, ResponseDigest(body));
  EXPECT_EQ(r.provenance.endpoint, run.requests[0].url);
}

TEST(IpApiTest, AsnKindSplitsTheAsField) {
  auto spec = Spec();
  spec.kind = "asn";
  spec.endpoint.clear();
  auto adapter = testing::MustCreate(spec);
  auto run = DriveItems(*testing::AsAsync(adapter), {Ip("8.8.8.8")},
                        {Response(200, Recorded("ip_api", "success_8.8.8.8.json"))});
  EXPECT_EQ(run.requests.at(0).url, std::string("http://ip-api.com/json/8.8.8.8?") + kFields);
  const Json d = Data(run.results.at(0));
  EXPECT_EQ(d["asn"], 15169);
  EXPECT_EQ(d["org"], "Google LLC");
  EXPECT_EQ(d["country_code"], "US");
  EXPECT_EQ(d["extra"]["isp"], "Google LLC");
  EXPECT_FALSE(d.contains("city"));
}

TEST(IpApiTest, FailStatusMapping) {
  auto adapter = testing::MustCreate(Spec());
  struct Case {
    const char* file;
    Outcome outcome;
    const char* reason;
  };
  for (const Case& c : {Case{"fail_private.json", Outcome::kNoData, "private range"},
                        Case{"fail_reserved.json", Outcome::kNoData, "reserved range"},
                        Case{"fail_invalid.json", Outcome::kPermanent, "invalid query"}}) {
    SCOPED_TRACE(c.file);
    auto run = DriveItems(*testing::AsAsync(adapter), {Ip("8.8.8.8")},
                          {Response(200, Recorded("ip_api", c.file))});
    EXPECT_EQ(run.results.at(0).outcome, c.outcome);
    EXPECT_THAT(run.results[0].reason, HasSubstr(c.reason));
    EXPECT_EQ(run.results[0].provenance.http_status, 200);
  }
}

TEST(IpApiTest, XRlZeroPausesTheProviderForXTtl) {
  auto adapter = testing::MustCreate(Spec());
  auto run = DriveItems(*testing::AsAsync(adapter), {Ip("8.8.8.8")},
                        {Response(200, Recorded("ip_api", "success_8.8.8.8.json"),
                                  {{"x-rl", "0"}, {"x-ttl", "37"}})});
  EXPECT_EQ(run.results.at(0).outcome, Outcome::kOk);  // the answer itself is good
  EXPECT_EQ(run.pause, std::chrono::seconds(37));
}

TEST(IpApiTest, EveryAnswerStatesTheQuotaWindow) {
  auto adapter = testing::MustCreate(Spec());
  auto run = DriveItems(*testing::AsAsync(adapter), {Ip("8.8.8.8")},
                        {Response(200, Recorded("ip_api", "success_8.8.8.8.json"),
                                  {{"x-rl", "7"}, {"x-ttl", "42"}})});
  ASSERT_TRUE(run.quota.has_value());
  EXPECT_EQ(run.quota->remaining, 7);
  EXPECT_EQ(run.quota->resets_in, std::chrono::seconds(42));
  EXPECT_FALSE(run.pause.has_value());  // requests are left: no pause
}

TEST(IpApiTest, RateLimitedUsesXTtlThenRetryAfter) {
  auto adapter = testing::MustCreate(Spec());
  auto run =
      DriveItems(*testing::AsAsync(adapter), {Ip("8.8.8.8")},
                 {Response(429, "", {{"x-rl", "0"}, {"x-ttl", "21"}, {"retry-after", "5"}})});
  EXPECT_EQ(run.results.at(0).outcome, Outcome::kRateLimited);
  EXPECT_EQ(run.results[0].retry_after, std::chrono::seconds(21));
  EXPECT_EQ(run.pause, std::chrono::seconds(21));
  run = DriveItems(*testing::AsAsync(adapter), {Ip("8.8.8.8")},
                   {Response(429, "", {{"retry-after", "9"}})});
  EXPECT_EQ(run.results.at(0).retry_after, std::chrono::seconds(9));
  EXPECT_FALSE(run.pause.has_value());
}

TEST(IpApiTest, ErrorMapping) {
  auto adapter = testing::MustCreate(Spec());
  struct Case {
    HttpResponse response;
    Outcome outcome;
  };
  const std::vector<Case> cases = {
      {Response(401, ""), Outcome::kAuth},
      {Response(403, ""), Outcome::kAuth},
      {Response(404, ""), Outcome::kPermanent},
      {Response(422, ""), Outcome::kPermanent},
      {Response(500, ""), Outcome::kTransient},
      {Response(503, ""), Outcome::kTransient},
      {TransportFailure(TransportError::kTimeout), Outcome::kTransient},
      {TransportFailure(TransportError::kConnect), Outcome::kTransient},
      {TransportFailure(TransportError::kReceive), Outcome::kTransient},
      {Response(200, "{\"status\":\"succ"), Outcome::kTransient},
      {Response(200, "\"just a string\""), Outcome::kPermanent},
      {Response(200, "{\"country\":\"US\"}"), Outcome::kPermanent},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::to_string(c.response.status) + " " +
                 std::string(TransportErrorName(c.response.error)) + " " + c.response.body);
    auto run = DriveItems(*testing::AsAsync(adapter), {Ip("8.8.8.8")}, {c.response});
    EXPECT_EQ(run.results.at(0).outcome, c.outcome) << run.results[0].reason;
    EXPECT_FALSE(run.results[0].reason.empty());
  }
}

TEST(IpApiTest, BatchPostsIpsAndMatchesAnswersInOrder) {
  auto spec = Spec();
  spec.max_batch = 500;
  auto adapter = testing::MustCreate(spec);
  auto* async = testing::AsAsync(adapter);
  EXPECT_EQ(async->max_batch(), 100u);
  auto run = DriveItems(
      *async, {Ip("8.8.8.8"), Ip("192.168.1.1"), Ip("1.1.1.1"), Ip("9.9.9.9")},
      {Response(200, Recorded("ip_api", "batch.json"), {{"x-rl", "0"}, {"x-ttl", "12"}})});
  ASSERT_EQ(run.requests.size(), 1u);
  EXPECT_EQ(run.requests[0].method, "POST");
  EXPECT_EQ(run.requests[0].url, std::string("http://127.0.0.1:8090/batch?") + kFields);
  EXPECT_EQ(*ParseJson(run.requests[0].body), Json::array({"8.8.8.8", "1.1.1.1", "9.9.9.9"}));
  EXPECT_EQ(run.pause, std::chrono::seconds(12));
  ASSERT_EQ(run.results.size(), 4u);
  EXPECT_EQ(Data(run.results[0])["city"], "Ashburn");
  EXPECT_EQ(run.results[1].outcome, Outcome::kSkipped);
  EXPECT_EQ(Data(run.results[2])["city"], "South Brisbane");
  EXPECT_EQ(Data(run.results[2])["extra"]["asn"], 13335);
  EXPECT_EQ(run.results[3].outcome, Outcome::kNoData);
  EXPECT_EQ(run.results[3].reason, "reserved range");
}

TEST(IpApiTest, BatchAnswerOutOfOrderOrShortIsMatchedByQuery) {
  auto spec = Spec();
  spec.max_batch = 100;
  auto adapter = testing::MustCreate(spec);
  // The recorded answer lists 8.8.8.8, 1.1.1.1, 9.9.9.9; ask in another order plus one
  // address the answer lacks.
  auto run = DriveItems(*testing::AsAsync(adapter),
                        {Ip("1.1.1.1"), Ip("8.8.8.8"), Ip("4.4.4.4"), Ip("9.9.9.9")},
                        {Response(200, Recorded("ip_api", "batch.json"))});
  ASSERT_EQ(run.results.size(), 4u);
  EXPECT_EQ(Data(run.results[0])["city"], "South Brisbane");
  EXPECT_EQ(Data(run.results[1])["city"], "Ashburn");
  EXPECT_EQ(run.results[2].outcome, Outcome::kTransient);
  EXPECT_EQ(run.results[2].reason, "missing from batch answer");
  EXPECT_EQ(run.results[3].outcome, Outcome::kNoData);
}

TEST(IpApiTest, BatchErrorsApplyToEveryItem) {
  auto spec = Spec();
  spec.max_batch = 100;
  auto adapter = testing::MustCreate(spec);
  for (auto [resp, outcome] : std::vector<std::pair<HttpResponse, Outcome>>{
           {Response(422, ""), Outcome::kPermanent},
           {Response(429, "", {{"x-ttl", "40"}}), Outcome::kRateLimited},
           {Response(200, "[{\"status\":"), Outcome::kTransient},
           {Response(200, "{\"status\":\"success\"}"), Outcome::kPermanent},
           {TransportFailure(TransportError::kTimeout), Outcome::kTransient}}) {
    auto run = DriveItems(*testing::AsAsync(adapter), {Ip("8.8.8.8"), Ip("1.1.1.1")}, {resp});
    ASSERT_EQ(run.results.size(), 2u);
    for (const auto& r : run.results) EXPECT_EQ(r.outcome, outcome) << r.reason;
  }
}

TEST(IpApiTest, KeyNeverAppearsInResults) {
  for (auto kind : {AuthSpec::Kind::kQueryParam, AuthSpec::Kind::kHeader}) {
    auto spec = Spec();
    spec.auth.kind = kind;
    spec.auth.secret = kKey;
    spec.max_batch = 10;
    auto adapter = testing::MustCreate(spec);
    auto call = testing::AsAsync(adapter)->Begin({Ip("8.8.8.8")});
    auto req = call->NextRequest();
    ASSERT_TRUE(req.has_value());
    if (kind == AuthSpec::Kind::kQueryParam) {
      EXPECT_THAT(req->url, HasSubstr(std::string("key=") + kKey));
    }
    for (const auto& resp :
         {Response(200, Recorded("ip_api", "success_8.8.8.8.json")),
          Response(200, std::string("{\"status\":\"fail\",\"message\":\"bad key ") + kKey + "\"}"),
          Response(403, std::string("key ") + kKey), Response(429, ""),
          TransportFailure(TransportError::kConnect, kKey)}) {
      for (size_t n : {1u, 2u}) {
        std::vector<Item> items = {Ip("8.8.8.8"), Ip("1.1.1.1")};
        items.resize(n);
        auto run = DriveItems(*testing::AsAsync(adapter), items, {resp});
        for (const auto& r : run.results) EXPECT_THAT(testing::AllText(r), Not(HasSubstr(kKey)));
      }
    }
  }
}

}  // namespace
}  // namespace enrichd::adapters

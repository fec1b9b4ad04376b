// ipinfo adapter against recorded ipinfo.io responses (PROVIDERS.md shapes).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "adapters/common/json_util.h"
#include "adapters/common/sha256.h"
#include "adapters/common/test_util.h"

namespace enrichd::adapters {
namespace {

using testing::Drive;
using testing::DriveItems;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::Ip;
using ::testing::Not;
using testing::Recorded;
using testing::RequestHeader;
using testing::Response;
using testing::TransportFailure;

constexpr char kToken[] = "tok_9f8e7d6c5b4a";

AdapterSpec Spec(std::string mode, AuthSpec::Kind auth = AuthSpec::Kind::kBearer) {
  AdapterSpec spec;
  spec.provider_name = "ipinfo-test";
  spec.adapter = "ipinfo";
  spec.endpoint = "http://127.0.0.1:8080/";
  spec.options = {{"mode", mode}};
  spec.auth.kind = auth;
  spec.auth.secret = kToken;
  spec.timeout = std::chrono::milliseconds(2500);
  return spec;
}

Json Data(const EnrichmentResult& r) { return *ParseJson(r.data_json); }

TEST(IpinfoTest, FullModeSingleLookupGeo) {
  auto adapter = testing::MustCreate(Spec("full"));
  EXPECT_EQ(adapter->kind(), "geo");
  EXPECT_TRUE(adapter->external());
  const std::string body = Recorded("ipinfo", "full_8.8.8.8.json");
  auto run = DriveItems(*testing::AsAsync(adapter), {Ip("8.8.8.8")}, {Response(200, body)});
  ASSERT_EQ(run.requests.size(), 1u);
  const HttpRequest& req = run.requests[0];
  EXPECT_EQ(req.method, "GET");
  EXPECT_EQ(req.url, "http://127.0.0.1:8080/8.8.8.8/json");
  EXPECT_EQ(RequestHeader(req, "Authorization"), std::string("Bearer ") + kToken);
  EXPECT_EQ(RequestHeader(req, "User-Agent"), "enrichd/0.1");
  EXPECT_EQ(req.timeout, std::chrono::milliseconds(2500));

  ASSERT_EQ(run.results.size(), 1u);
  const auto& r = run.results[0];
  EXPECT_EQ(r.outcome, Outcome::kOk);
  EXPECT_EQ(r.kind, "geo");
  const Json d = Data(r);
  EXPECT_EQ(d["country_code"], "US");
  EXPECT_FALSE(d.contains("country"));  // full mode gives only the code: not invented
  EXPECT_EQ(d["region"], "California");
  EXPECT_EQ(d["city"], "Mountain View");
  EXPECT_DOUBLE_EQ(d["lat"].get<double>(), 37.386);
  EXPECT_DOUBLE_EQ(d["lon"].get<double>(), -122.084);
  EXPECT_EQ(d["postal"], "94035");
  EXPECT_EQ(d["timezone"], "America/Los_Angeles");
  EXPECT_EQ(d["extra"]["asn"], 15169);
  EXPECT_EQ(d["extra"]["as_name"], "Google LLC");
  EXPECT_EQ(d["extra"]["hostname"], "dns.google");
  EXPECT_EQ(r.provenance.adapter, "ipinfo");
  EXPECT_EQ(r.provenance.adapter_version, "1");
  EXPECT_EQ(r.provenance.endpoint, "http://127.0.0.1:8080/8.8.8.8/json");
  EXPECT_EQ(r.provenance.http_status, 200);
  EXPECT_EQ(r.provenance.response_digest, ResponseDigest(body));
  EXPECT_EQ(r.provenance.latency, std::chrono::milliseconds(42));
}

TEST(IpinfoTest, FullModeAsnKindFromOrg) {
  auto spec = Spec("full");
  spec.kind = "asn";
  auto adapter = testing::MustCreate(spec);
  auto run = DriveItems(*testing::AsAsync(adapter), {Ip("8.8.8.8")},
                        {Response(200, Recorded("ipinfo", "full_8.8.8.8.json"))});
  const Json d = Data(run.results.at(0));
  EXPECT_EQ(run.results[0].kind, "asn");
  EXPECT_EQ(d["asn"], 15169);
  EXPECT_EQ(d["org"], "Google LLC");
  EXPECT_EQ(d["country_code"], "US");
  EXPECT_FALSE(d.contains("prefix"));
}

TEST(IpinfoTest, LiteModeAsnWithQueryToken) {
  auto spec = Spec("lite", AuthSpec::Kind::kQueryParam);
  spec.endpoint = "http://127.0.0.1:8081";
  auto adapter = testing::MustCreate(spec);
  EXPECT_EQ(adapter->kind(), "asn");
  auto run = DriveItems(*testing::AsAsync(adapter), {Ip("2001:4860:4860::8888")},
                        {Response(200, Recorded("ipinfo", "lite_8.8.8.8.json"))});
  ASSERT_EQ(run.requests.size(), 1u);
  EXPECT_EQ(run.requests[0].url,
            std::string("http://127.0.0.1:8081/lite/2001:4860:4860::8888?token=") + kToken);
  EXPECT_EQ(RequestHeader(run.requests[0], "Authorization"), std::nullopt);
  const auto& r = run.results.at(0);
  EXPECT_EQ(r.outcome, Outcome::kOk);
  EXPECT_EQ(r.provenance.endpoint,
            "http://127.0.0.1:8081/lite/2001:4860:4860::8888?token=REDACTED");
  const Json d = Data(r);
  EXPECT_EQ(d["asn"], 15169);
  EXPECT_EQ(d["org"], "Google LLC");
  EXPECT_EQ(d["country_code"], "US");
  EXPECT_EQ(d["extra"]["as_domain"], "google.com");
  EXPECT_EQ(d["extra"]["country"], "United States");
  EXPECT_EQ(d["extra"]["continent_code"], "NA");
}

TEST(IpinfoTest, LiteModeGeoKind) {
  auto spec = Spec("lite");
  spec.kind = "geo";
  auto adapter = testing::MustCreate(spec);
  auto run = DriveItems(*testing::AsAsync(adapter), {Ip("8.8.8.8")},
                        {Response(200, Recorded("ipinfo", "lite_8.8.8.8.json"))});
  const Json d = Data(run.results.at(0));
  EXPECT_EQ(d["country_code"], "US");
  EXPECT_EQ(d["country"], "United States");
  EXPECT_FALSE(d.contains("lat"));
  EXPECT_EQ(d["extra"]["asn"], 15169);
}

TEST(IpinfoTest, DefaultEndpoints) {
  auto full = Spec("full");
  full.endpoint.clear();
  auto lite = Spec("lite");
  lite.endpoint.clear();
  auto a = testing::MustCreate(full);
  auto b = testing::MustCreate(lite);
  auto ca = testing::AsAsync(a)->Begin({Ip("8.8.8.8")});
  auto cb = testing::AsAsync(b)->Begin({Ip("8.8.8.8")});
  EXPECT_EQ(ca->NextRequest()->url, "https://ipinfo.io/8.8.8.8/json");
  EXPECT_EQ(cb->NextRequest()->url, "https://api.ipinfo.io/lite/8.8.8.8");
}

TEST(IpinfoTest, BogonIsNoData) {
  auto adapter = testing::MustCreate(Spec("full"));
  auto run = DriveItems(*testing::AsAsync(adapter), {Ip("8.8.4.4")},
                        {Response(200, Recorded("ipinfo", "bogon.json"))});
  EXPECT_EQ(run.results.at(0).outcome, Outcome::kNoData);
  EXPECT_EQ(run.results[0].reason, "bogon");
}

TEST(IpinfoTest, BatchPostsPathsAndKeepsInputOrder) {
  auto spec = Spec("full");
  spec.max_batch = 5000;
  auto adapter = testing::MustCreate(spec);
  auto* async = testing::AsAsync(adapter);
  EXPECT_EQ(async->max_batch(), 1000u);
  auto run = DriveItems(*async, {Ip("9.9.9.9"), Ip("10.1.2.3"), Ip("8.8.8.8"), Ip("1.1.1.1")},
                        {Response(200, Recorded("ipinfo", "batch_full.json"))});
  ASSERT_EQ(run.requests.size(), 1u);
  EXPECT_EQ(run.requests[0].method, "POST");
  EXPECT_EQ(run.requests[0].url, "http://127.0.0.1:8080/batch");
  EXPECT_EQ(*ParseJson(run.requests[0].body), Json::array({"9.9.9.9", "8.8.8.8", "1.1.1.1"}));
  EXPECT_EQ(RequestHeader(run.requests[0], "Content-Type"), "application/json");
  ASSERT_EQ(run.results.size(), 4u);
  EXPECT_EQ(Data(run.results[0])["city"], "Berkeley");
  EXPECT_EQ(run.results[1].outcome, Outcome::kSkipped);
  EXPECT_EQ(Data(run.results[2])["city"], "Mountain View");
  EXPECT_EQ(Data(run.results[3])["city"], "Brisbane");
  EXPECT_EQ(Data(run.results[3])["extra"]["asn"], 13335);
}

TEST(IpinfoTest, BatchAnswerMissingAnItemMakesThatItemTransient) {
  auto spec = Spec("lite");
  spec.max_batch = 100;
  auto adapter = testing::MustCreate(spec);
  auto run = DriveItems(*testing::AsAsync(adapter), {Ip("8.8.8.8"), Ip("1.1.1.1"), Ip("9.9.9.9")},
                        {Response(200, Recorded("ipinfo", "batch_lite_missing_one.json"))});
  EXPECT_EQ(*ParseJson(run.requests.at(0).body),
            Json::array({"lite/8.8.8.8", "lite/1.1.1.1", "lite/9.9.9.9"}));
  ASSERT_EQ(run.results.size(), 3u);
  EXPECT_EQ(run.results[0].outcome, Outcome::kOk);
  EXPECT_EQ(Data(run.results[0])["asn"], 15169);
  EXPECT_EQ(run.results[1].outcome, Outcome::kTransient);
  EXPECT_EQ(run.results[1].reason, "missing from batch answer");
  EXPECT_EQ(run.results[2].outcome, Outcome::kOk);
  EXPECT_EQ(Data(run.results[2])["asn"], 19281);
}

TEST(IpinfoTest, BatchSplitsAtMaxBatch) {
  auto spec = Spec("full");
  spec.max_batch = 2;
  auto adapter = testing::MustCreate(spec);
  const std::string body = Recorded("ipinfo", "batch_full.json");
  auto run =
      DriveItems(*testing::AsAsync(adapter), {Ip("8.8.8.8"), Ip("1.1.1.1"), Ip("9.9.9.9")},
                 {Response(200, body), Response(200, Recorded("ipinfo", "full_8.8.8.8.json"))});
  ASSERT_EQ(run.requests.size(), 2u);
  EXPECT_EQ(run.requests[0].method, "POST");
  EXPECT_EQ(run.requests[1].method, "GET");
  EXPECT_EQ(run.requests[1].url, "http://127.0.0.1:8080/9.9.9.9/json");
  ASSERT_EQ(run.results.size(), 3u);
  for (const auto& r : run.results) EXPECT_EQ(r.outcome, Outcome::kOk);
}

struct ErrorCase {
  const char* name;
  HttpResponse response;
  Outcome outcome;
  std::optional<Duration> retry_after;
};

std::vector<ErrorCase> ErrorCases() {
  return {
      {"429 with Retry-After",
       Response(429, Recorded("ipinfo", "error_429.json"), {{"retry-after", "30"}}),
       Outcome::kRateLimited, std::chrono::seconds(30)},
      {"429 without Retry-After", Response(429, ""), Outcome::kRateLimited, std::nullopt},
      {"401", Response(401, "{}"), Outcome::kAuth, std::nullopt},
      {"403", Response(403, "{}"), Outcome::kAuth, std::nullopt},
      {"402", Response(402, "{}"), Outcome::kAuth, std::nullopt},
      {"400", Response(400, "{}"), Outcome::kPermanent, std::nullopt},
      {"404", Response(404, Recorded("ipinfo", "error_404.json")), Outcome::kPermanent,
       std::nullopt},
      {"500", Response(500, "oops"), Outcome::kTransient, std::nullopt},
      {"503 Retry-After", Response(503, "", {{"retry-after", "4"}}), Outcome::kTransient,
       std::chrono::seconds(4)},
      {"timeout", TransportFailure(TransportError::kTimeout, "Operation timed out"),
       Outcome::kTransient, std::nullopt},
      {"connect", TransportFailure(TransportError::kConnect), Outcome::kTransient, std::nullopt},
      {"receive", TransportFailure(TransportError::kReceive), Outcome::kTransient, std::nullopt},
      {"malformed", Response(200, "{\"ip\":\"8.8.8.8\",\"city\":"), Outcome::kTransient,
       std::nullopt},
      {"html", Response(200, "<html>busy</html>"), Outcome::kTransient, std::nullopt},
      {"wrong shape", Response(200, "[1,2,3]"), Outcome::kPermanent, std::nullopt},
      {"error object in 200", Response(200, Recorded("ipinfo", "error_404.json")),
       Outcome::kPermanent, std::nullopt},
  };
}

TEST(IpinfoTest, ErrorMappingSingle) {
  auto adapter = testing::MustCreate(Spec("full"));
  for (const auto& c : ErrorCases()) {
    SCOPED_TRACE(c.name);
    auto run = DriveItems(*testing::AsAsync(adapter), {Ip("8.8.8.8")}, {c.response});
    ASSERT_EQ(run.results.size(), 1u);
    EXPECT_EQ(run.results[0].outcome, c.outcome) << run.results[0].reason;
    EXPECT_EQ(run.results[0].retry_after, c.retry_after);
    EXPECT_FALSE(run.results[0].reason.empty());
    EXPECT_EQ(run.results[0].data_json, "{}");
  }
}

TEST(IpinfoTest, ErrorMappingBatchAppliesToEveryItem) {
  auto spec = Spec("full");
  spec.max_batch = 10;
  auto adapter = testing::MustCreate(spec);
  for (const auto& c : ErrorCases()) {
    if (std::string(c.name) == "error object in 200") continue;  // a batch is keyed by path
    SCOPED_TRACE(c.name);
    auto run = DriveItems(*testing::AsAsync(adapter), {Ip("8.8.8.8"), Ip("1.1.1.1")}, {c.response});
    ASSERT_EQ(run.results.size(), 2u);
    for (const auto& r : run.results) {
      EXPECT_EQ(r.outcome, c.outcome) << r.reason;
      EXPECT_EQ(r.retry_after, c.retry_after);
    }
  }
}

TEST(IpinfoTest, SecretNeverAppearsInAnyResult) {
  for (auto auth :
       {AuthSpec::Kind::kBearer, AuthSpec::Kind::kQueryParam, AuthSpec::Kind::kHeader}) {
    for (int batch : {1, 10}) {
      auto spec = Spec("full", auth);
      spec.max_batch = static_cast<size_t>(batch);
      auto adapter = testing::MustCreate(spec);
      std::vector<HttpResponse> responses;
      for (auto c : ErrorCases()) responses.push_back(c.response);
      // Providers that echo the token back (e.g. in an error message) are scrubbed too.
      responses.push_back(Response(401, std::string("{\"error\":\"bad token ") + kToken + "\"}"));
      responses.push_back(Response(
          200,
          std::string("{\"ip\":\"8.8.8.8\",\"country\":\"US\",\"hostname\":\"") + kToken + "\"}"));
      responses.push_back(Response(200, Recorded("ipinfo", "full_8.8.8.8.json")));
      responses.push_back(TransportFailure(
          TransportError::kConnect, std::string("Failed: GET /8.8.8.8/json?token=") + kToken));
      for (const auto& resp : responses) {
        std::vector<Item> items = {Ip("8.8.8.8")};
        if (batch > 1) items.push_back(Ip("1.1.1.1"));
        auto run = DriveItems(*testing::AsAsync(adapter), items, {resp});
        for (const auto& r : run.results) {
          EXPECT_THAT(testing::AllText(r), Not(HasSubstr(kToken)));
        }
      }
    }
  }
}

TEST(IpinfoTest, FactoryRejectsBadOptions) {
  auto spec = Spec("medium");
  auto created = AdapterRegistry::Builtin().Create(spec);
  ASSERT_FALSE(created.ok());
  EXPECT_THAT(created.status().message(), HasSubstr("\"mode\""));
  spec = Spec("full");
  spec.kind = "weather";
  EXPECT_FALSE(AdapterRegistry::Builtin().Create(spec).ok());
  spec = Spec("full");
  spec.options["extra_option"] = 1;
  created = AdapterRegistry::Builtin().Create(spec);
  ASSERT_FALSE(created.ok());
  EXPECT_THAT(created.status().message(), HasSubstr("extra_option"));
}

}  // namespace
}  // namespace enrichd::adapters

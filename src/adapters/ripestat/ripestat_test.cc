// ripestat adapter against recorded RIPEstat Data API responses (PROVIDERS.md shapes).
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
using testing::Recorded;
using testing::RequestHeader;
using testing::Response;
using testing::TransportFailure;

AdapterSpec Spec() {
  AdapterSpec spec;
  spec.provider_name = "ripe";
  spec.adapter = "ripestat";
  spec.endpoint = "http://127.0.0.1:8091";
  spec.options = {{"sourceapp", "enrichd-test"}};
  return spec;
}

Json Data(const EnrichmentResult& r) { return *ParseJson(r.data_json); }

TEST(RipeStatTest, TwoRequestsPerItemGiveAsnPrefixAndOrg) {
  auto adapter = testing::MustCreate(Spec());
  EXPECT_EQ(adapter->kind(), "asn");
  const std::string first = Recorded("ripestat", "network_info_8.8.8.8.json");
  const std::string second = Recorded("ripestat", "as_overview_15169.json");
  auto run = DriveItems(*testing::AsAsync(adapter), {Ip("8.8.8.8")},
                        {Response(200, first, {}, std::chrono::milliseconds(30)),
                         Response(200, second, {}, std::chrono::milliseconds(20))});
  ASSERT_EQ(run.requests.size(), 2u);
  EXPECT_EQ(run.requests[0].method, "GET");
  EXPECT_EQ(
      run.requests[0].url,
      "http://127.0.0.1:8091/data/network-info/data.json?resource=8.8.8.8&sourceapp=enrichd-test");
  EXPECT_EQ(
      run.requests[1].url,
      "http://127.0.0.1:8091/data/as-overview/data.json?resource=AS15169&sourceapp=enrichd-test");
  EXPECT_EQ(RequestHeader(run.requests[1], "user-agent"), "enrichd/0.1");
  const auto& r = run.results.at(0);
  EXPECT_EQ(r.outcome, Outcome::kOk);
  const Json d = Data(r);
  EXPECT_EQ(d["asn"], 15169);
  EXPECT_EQ(d["prefix"], "8.8.8.0/24");
  EXPECT_EQ(d["org"], "Google LLC");
  EXPECT_EQ(d["extra"]["holder"], "GOOGLE - Google LLC");
  EXPECT_EQ(r.provenance.adapter, "ripestat");
  EXPECT_EQ(r.provenance.http_status, 200);
  EXPECT_EQ(r.provenance.response_digest, ResponseDigest(first + second));
  EXPECT_EQ(r.provenance.latency, std::chrono::milliseconds(50));
}

TEST(RipeStatTest, DefaultEndpointAndSourceApp) {
  auto spec = Spec();
  spec.endpoint.clear();
  spec.options = Json::object();
  auto adapter = testing::MustCreate(spec);
  auto call = testing::AsAsync(adapter)->Begin({Ip("2001:4860:4860::8888")});
  EXPECT_EQ(
      call->NextRequest()->url,
      "https://stat.ripe.net/data/network-info/data.json?resource=2001%3A4860%3A4860%3A%3A8888"
      "&sourceapp=enrichd");
}

TEST(RipeStatTest, SeveralAsnsTakeTheFirstAndKeepAll) {
  auto adapter = testing::MustCreate(Spec());
  auto run = DriveItems(*testing::AsAsync(adapter), {Ip("193.0.6.139")},
                        {Response(200, Recorded("ripestat", "network_info_multi_asn.json")),
                         Response(200, Recorded("ripestat", "as_overview_15169.json"))});
  EXPECT_THAT(run.requests.at(1).url, HasSubstr("resource=AS64500"));
  const Json d = Data(run.results.at(0));
  EXPECT_EQ(d["asn"], 64500);
  EXPECT_EQ(d["extra"]["asns"], Json::array({64500, 64501}));
}

TEST(RipeStatTest, UnannouncedIsNoDataWithOneRequest) {
  auto adapter = testing::MustCreate(Spec());
  auto run = DriveItems(*testing::AsAsync(adapter), {Ip("8.8.8.8")},
                        {Response(200, Recorded("ripestat", "network_info_unannounced.json"))});
  EXPECT_EQ(run.requests.size(), 1u);
  EXPECT_EQ(run.results.at(0).outcome, Outcome::kNoData);
}

TEST(RipeStatTest, EnvelopeStatusMapping) {
  auto adapter = testing::MustCreate(Spec());
  auto run = DriveItems(*testing::AsAsync(adapter), {Ip("8.8.8.8")},
                        {Response(200, Recorded("ripestat", "error_400.json"))});
  EXPECT_EQ(run.results.at(0).outcome, Outcome::kPermanent);
  EXPECT_THAT(run.results[0].reason, HasSubstr("error"));
  run = DriveItems(*testing::AsAsync(adapter), {Ip("8.8.8.8")},
                   {Response(200, Recorded("ripestat", "error_500.json"))});
  EXPECT_EQ(run.results.at(0).outcome, Outcome::kTransient);
  run = DriveItems(*testing::AsAsync(adapter), {Ip("8.8.8.8")},
                   {Response(200, R"({"status":"maintenance","data":{}})")});
  EXPECT_EQ(run.results.at(0).outcome, Outcome::kTransient);
  run = DriveItems(*testing::AsAsync(adapter), {Ip("8.8.8.8")},
                   {Response(200, R"({"status":"ok","status_code":200})")});
  EXPECT_EQ(run.results.at(0).outcome, Outcome::kPermanent);
  run = DriveItems(*testing::AsAsync(adapter), {Ip("8.8.8.8")},
                   {Response(200, R"({"status":"ok","data":{"asns":"15169"}})")});
  EXPECT_EQ(run.results.at(0).outcome, Outcome::kPermanent);
}

TEST(RipeStatTest, FailureOfEitherRequestMapsTheItem) {
  auto adapter = testing::MustCreate(Spec());
  const std::string first = Recorded("ripestat", "network_info_8.8.8.8.json");
  struct Case {
    HttpResponse response;
    Outcome outcome;
    std::optional<Duration> retry_after;
  };
  const std::vector<Case> cases = {
      {Response(429, "", {{"retry-after", "8"}}), Outcome::kRateLimited, std::chrono::seconds(8)},
      {Response(403, ""), Outcome::kAuth, std::nullopt},
      {Response(404, ""), Outcome::kPermanent, std::nullopt},
      {Response(500, ""), Outcome::kTransient, std::nullopt},
      {Response(503, ""), Outcome::kTransient, std::nullopt},
      {TransportFailure(TransportError::kTimeout), Outcome::kTransient, std::nullopt},
      {TransportFailure(TransportError::kConnect), Outcome::kTransient, std::nullopt},
      {TransportFailure(TransportError::kReceive), Outcome::kTransient, std::nullopt},
      {Response(200, "{\"status\":\"ok\",\"data\":{\"asns\":[\"1"), Outcome::kTransient,
       std::nullopt},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::to_string(c.response.status) + c.response.body);
    // First request fails: no second request.
    auto run = DriveItems(*testing::AsAsync(adapter), {Ip("8.8.8.8")}, {c.response});
    EXPECT_EQ(run.results.at(0).outcome, c.outcome);
    EXPECT_EQ(run.results[0].retry_after, c.retry_after);
    // Second request fails: the item takes that outcome.
    run =
        DriveItems(*testing::AsAsync(adapter), {Ip("8.8.8.8")}, {Response(200, first), c.response});
    EXPECT_EQ(run.results.at(0).outcome, c.outcome);
    EXPECT_EQ(run.results[0].data_json, "{}");
  }
}

TEST(RipeStatTest, SeveralItemsKeepTheirOrder) {
  auto adapter = testing::MustCreate(Spec());
  auto run = DriveItems(*testing::AsAsync(adapter), {Ip("8.8.8.8"), Ip("10.0.0.1"), Ip("8.8.4.4")},
                        {Response(200, Recorded("ripestat", "network_info_8.8.8.8.json")),
                         Response(200, Recorded("ripestat", "network_info_unannounced.json")),
                         Response(200, Recorded("ripestat", "as_overview_15169.json"))});
  ASSERT_EQ(run.results.size(), 3u);
  EXPECT_EQ(run.results[0].outcome, Outcome::kOk);
  EXPECT_EQ(run.results[1].outcome, Outcome::kSkipped);
  EXPECT_EQ(run.results[2].outcome, Outcome::kNoData);
}

TEST(RipeStatTest, RejectsOtherKinds) {
  auto spec = Spec();
  spec.kind = "geo";
  auto created = AdapterRegistry::Builtin().Create(spec);
  ASSERT_FALSE(created.ok());
  EXPECT_THAT(created.status().message(), HasSubstr("geo"));
}

}  // namespace
}  // namespace enrichd::adapters

// MockProvider over real loopback HTTP (a raw blocking client, no libcurl): the shapes of
// docs/PROVIDERS.md, determinism, every knob, the counters.
#include "mock_provider/mock_provider.h"

#include <algorithm>
#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "mock_provider/test_client.h"
#include "nlohmann/json.hpp"

namespace enrichd::mock {
namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;
using Response = RawClient::Response;

Response Fetch(uint16_t port, const std::string& method, const std::string& target,
               const std::string& body = "", const std::string& headers = "") {
  RawClient client(port);
  EXPECT_TRUE(client.connected());
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + headers;
  if (method == "POST") req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  req += "\r\n" + body;
  client.Send(req);
  return client.ReadResponse();
}

Response Get(uint16_t port, const std::string& target, const std::string& headers = "") {
  return Fetch(port, "GET", target, "", headers);
}

struct Fixture {
  FakeClock clock;
  std::unique_ptr<MockProvider> provider;
  explicit Fixture(MockProviderOptions options = {}) {
    auto p = MockProvider::Start(std::move(options), ServerOptions{}, clock);
    EXPECT_TRUE(p.ok()) << p.status();
    if (p.ok()) provider = std::move(p).value();
  }
  uint16_t port() const { return provider->port(); }
};

TEST(MockProviderTest, UrlsFollowTheDocumentedLayout) {
  Fixture f;
  ASSERT_NE(f.provider, nullptr);
  std::string base = "http://127.0.0.1:" + std::to_string(f.port());
  EXPECT_EQ(f.provider->base_url(), base);
  EXPECT_EQ(f.provider->ipinfo_url(), base + "/ipinfo");
  EXPECT_EQ(f.provider->ipapi_url(), base + "/ip-api");
  EXPECT_EQ(f.provider->ripestat_url(), base + "/ripestat");
}

// The single answers are written as text, the batch answers through nlohmann: for the
// same address the two must be the same bytes (escaping, number forms, member order),
// over many addresses (every city and org of the mock's tables), IPv6 and bogons too.
TEST(MockProviderTest, SingleAnswersAreTheBytesOfTheBatchAnswers) {
  MockProviderOptions options;
  options.ipapi_requests_per_window = 1'000'000;  // out of the way of 160 single requests
  Fixture f(options);
  ASSERT_NE(f.provider, nullptr);
  std::vector<std::string> ips = {"8.8.8.8",  "1.1.1.1",     "2001:4860:4860::8888",
                                  "10.0.0.1", "192.168.1.1", "100.64.0.1"};
  for (int i = 0; i < 150; ++i) {
    ips.push_back(std::to_string(11 + (i * 7) % 200) + "." + std::to_string((i * 37) % 256) + "." +
                  std::to_string((i * 101) % 256) + "." + std::to_string(1 + i % 250));
  }
  nlohmann::ordered_json paths = nlohmann::ordered_json::array();
  nlohmann::ordered_json queries = nlohmann::ordered_json::array();
  for (const auto& ip : ips) {
    paths.push_back(ip);
    queries.push_back(ip);
  }
  auto ipinfo = Fetch(f.port(), "POST", "/ipinfo/batch", paths.dump());
  ASSERT_EQ(ipinfo.status, 200);
  auto ipinfo_batch = nlohmann::ordered_json::parse(ipinfo.body);
  std::vector<nlohmann::ordered_json> ipapi_batch;
  for (std::size_t at = 0; at < ips.size(); at += 100) {  // ip-api takes 100 per batch
    nlohmann::ordered_json chunk = nlohmann::ordered_json::array();
    for (std::size_t k = at; k < std::min(ips.size(), at + 100); ++k) chunk.push_back(ips[k]);
    auto r = Fetch(f.port(), "POST", "/ip-api/batch", chunk.dump());
    ASSERT_EQ(r.status, 200);
    for (auto& answer : nlohmann::ordered_json::parse(r.body)) ipapi_batch.push_back(answer);
  }
  ASSERT_EQ(ipapi_batch.size(), ips.size());
  for (std::size_t k = 0; k < ips.size(); ++k) {
    const std::string& ip = ips[k];
    EXPECT_EQ(Get(f.port(), "/ipinfo/" + ip + "/json").body, ipinfo_batch[ip].dump()) << ip;
    EXPECT_EQ(Get(f.port(), "/ip-api/json/" + ip).body, ipapi_batch[k].dump()) << ip;
  }
  // With a field list, and an address that is no address.
  EXPECT_EQ(Get(f.port(), "/ip-api/json/8.8.8.8?fields=lat,lon,query").body,
            R"({"lat":39.03,"lon":-77.5,"query":"8.8.8.8"})");
  EXPECT_EQ(Get(f.port(), "/ip-api/json/not-an-ip").body,
            R"({"status":"fail","message":"invalid query","query":"not-an-ip"})");
}

TEST(MockProviderTest, IpinfoAnswersTheDocumentedShapes) {
  Fixture f;
  ASSERT_NE(f.provider, nullptr);
  const std::string google =
      R"({"ip":"8.8.8.8","hostname":"dns.google","city":"Mountain View","region":"California",)"
      R"("country":"US","loc":"37.3860,-122.0840","postal":"94035","org":"AS15169 Google LLC"})";
  for (const char* target : {"/ipinfo/8.8.8.8/json", "/ipinfo/8.8.8.8"}) {
    auto r = Get(f.port(), target);
    ASSERT_TRUE(r.complete);
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.headers["content-type"], "application/json");
    EXPECT_EQ(r.body, google) << target;
  }
  auto lite = Get(f.port(), "/ipinfo/lite/8.8.8.8?token=T");
  EXPECT_EQ(lite.body,
            R"({"ip":"8.8.8.8","asn":"AS15169","as_name":"Google LLC","as_domain":"google.com",)"
            R"("country_code":"US","country":"United States","continent_code":"NA",)"
            R"("continent":"North America"})");
  auto bogon = Get(f.port(), "/ipinfo/10.0.0.1/json");
  EXPECT_EQ(bogon.status, 200);
  EXPECT_EQ(bogon.body, R"({"ip":"10.0.0.1","bogon":true})");
  auto field = Get(f.port(), "/ipinfo/8.8.8.8/country");
  EXPECT_EQ(field.body, "US\n");
  auto wrong = Get(f.port(), "/ipinfo/not-an-ip/json");
  EXPECT_EQ(wrong.status, 404);
}

TEST(MockProviderTest, IpinfoBatchIsKeyedByPathAndCapped) {
  Fixture f;
  ASSERT_NE(f.provider, nullptr);
  auto r = Fetch(f.port(), "POST", "/ipinfo/batch?token=T",
                 R"(["8.8.8.8","1.1.1.1/country","lite/8.8.8.8","10.1.2.3"])");
  ASSERT_TRUE(r.complete);
  EXPECT_EQ(r.status, 200);
  Json j = Json::parse(r.body);
  ASSERT_EQ(j.size(), 4u);
  EXPECT_EQ(j["8.8.8.8"]["org"], "AS15169 Google LLC");
  EXPECT_EQ(j["1.1.1.1/country"], "AU");
  EXPECT_EQ(j["lite/8.8.8.8"]["asn"], "AS15169");
  EXPECT_EQ(j["10.1.2.3"], Json::parse(R"({"ip":"10.1.2.3","bogon":true})"));

  Json many = Json::array();
  for (int i = 0; i < 1001; ++i) many.push_back("8.8.4." + std::to_string(i % 256));
  EXPECT_EQ(Fetch(f.port(), "POST", "/ipinfo/batch", many.dump()).status, 400);
  many.erase(many.begin());
  EXPECT_EQ(Fetch(f.port(), "POST", "/ipinfo/batch", many.dump()).status, 200);
  EXPECT_EQ(Fetch(f.port(), "POST", "/ipinfo/batch", "{not json").status, 400);
}

TEST(MockProviderTest, IpinfoRequiredToken) {
  MockProviderOptions o;
  o.required_token = "s3cret";
  Fixture f(o);
  ASSERT_NE(f.provider, nullptr);
  EXPECT_EQ(Get(f.port(), "/ipinfo/8.8.8.8/json").status, 401);
  EXPECT_EQ(Get(f.port(), "/ipinfo/8.8.8.8/json?token=nope").status, 403);
  EXPECT_EQ(Get(f.port(), "/ipinfo/8.8.8.8/json", "Authorization: Bearer nope\r\n").status, 403);
  EXPECT_EQ(Get(f.port(), "/ipinfo/8.8.8.8/json?token=s3cret").status, 200);
  EXPECT_EQ(Get(f.port(), "/ipinfo/8.8.8.8/json", "Authorization: Bearer s3cret\r\n").status, 200);
  // Only ipinfo wants a token.
  EXPECT_EQ(Get(f.port(), "/ip-api/json/8.8.8.8").status, 200);
  EXPECT_EQ(f.provider->Snapshot().events["auth"], 3u);
}

TEST(MockProviderTest, IpapiAnswersTheDocumentedShapes) {
  Fixture f;
  ASSERT_NE(f.provider, nullptr);
  auto r = Get(f.port(),
               "/ip-api/json/8.8.8.8?fields=status,message,country,countryCode,regionName,city,"
               "lat,lon,isp,org,as,query");
  ASSERT_TRUE(r.complete);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"status":"success","country":"United States","countryCode":"US",)"
                    R"("regionName":"Virginia","city":"Ashburn","lat":39.03,"lon":-77.5,)"
                    R"("isp":"Google LLC","org":"Google Public DNS","as":"AS15169 Google LLC",)"
                    R"("query":"8.8.8.8"})");
  EXPECT_FALSE(r.headers["x-rl"].empty());
  EXPECT_FALSE(r.headers["x-ttl"].empty());

  auto priv = Get(f.port(), "/ip-api/json/10.0.0.1");
  EXPECT_EQ(priv.status, 200);
  EXPECT_EQ(priv.body, R"({"status":"fail","message":"private range","query":"10.0.0.1"})");
  auto reserved = Get(f.port(), "/ip-api/json/240.0.0.1");
  EXPECT_EQ(reserved.body, R"({"status":"fail","message":"reserved range","query":"240.0.0.1"})");
  auto invalid = Get(f.port(), "/ip-api/json/foo");
  EXPECT_EQ(invalid.status, 200);
  EXPECT_EQ(invalid.body, R"({"status":"fail","message":"invalid query","query":"foo"})");
}

TEST(MockProviderTest, IpapiBatchKeepsOrderAndCapsAt100) {
  Fixture f;
  ASSERT_NE(f.provider, nullptr);
  auto r = Fetch(f.port(), "POST", "/ip-api/batch?fields=status,as,query",
                 R"(["8.8.8.8",{"query":"1.1.1.1","fields":"query,countryCode"},"10.0.0.1"])");
  ASSERT_TRUE(r.complete);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"([{"status":"success","as":"AS15169 Google LLC","query":"8.8.8.8"},)"
                    R"({"countryCode":"AU","query":"1.1.1.1"},)"
                    R"({"status":"fail","message":"private range","query":"10.0.0.1"}])");
  Json many = Json::array();
  for (int i = 0; i < 101; ++i) many.push_back("8.8.4." + std::to_string(i));
  EXPECT_EQ(Fetch(f.port(), "POST", "/ip-api/batch", many.dump()).status, 422);
  many.erase(many.begin());
  auto ok = Fetch(f.port(), "POST", "/ip-api/batch", many.dump());
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(Json::parse(ok.body).size(), 100u);
}

TEST(MockProviderTest, IpapiWindowCountsDownAndOverrunsGet429) {
  MockProviderOptions o;
  o.ipapi_requests_per_window = 3;
  o.ipapi_batch_requests_per_window = 1;
  o.ipapi_window = 60s;
  Fixture f(o);
  ASSERT_NE(f.provider, nullptr);
  for (int left = 2; left >= 0; --left) {
    auto r = Get(f.port(), "/ip-api/json/8.8.8.8");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.headers["x-rl"], std::to_string(left));
    EXPECT_EQ(r.headers["x-ttl"], "60");
  }
  f.clock.Advance(10s);
  auto over = Get(f.port(), "/ip-api/json/8.8.8.8");
  EXPECT_EQ(over.status, 429);
  EXPECT_EQ(over.headers["x-rl"], "0");
  EXPECT_EQ(over.headers["x-ttl"], "50");
  // The batch window is separate.
  EXPECT_EQ(Fetch(f.port(), "POST", "/ip-api/batch", R"(["8.8.8.8"])").status, 200);
  EXPECT_EQ(Fetch(f.port(), "POST", "/ip-api/batch", R"(["8.8.8.8"])").status, 429);
  f.clock.Advance(50s);
  auto fresh = Get(f.port(), "/ip-api/json/8.8.8.8");
  EXPECT_EQ(fresh.status, 200);
  EXPECT_EQ(fresh.headers["x-rl"], "2");
  EXPECT_EQ(f.provider->Snapshot().events["ipapi_overrun"], 2u);
}

TEST(MockProviderTest, RipestatAnswersTheDocumentedEnvelope) {
  Fixture f;
  ASSERT_NE(f.provider, nullptr);
  const std::string time = FormatRfc3339(f.clock.WallNow()).substr(0, 23);
  auto net = Get(f.port(), "/ripestat/data/network-info/data.json?resource=8.8.8.8&sourceapp=test");
  ASSERT_TRUE(net.complete);
  EXPECT_EQ(net.status, 200);
  EXPECT_EQ(net.body, R"({"status":"ok","status_code":200,"data_call_name":"network-info",)"
                      R"("data":{"asns":["15169"],"prefix":"8.8.8.0/24"},"messages":[],)"
                      R"("version":"1.1","cached":false,"time":")" +
                          time + R"("})");
  auto as = Get(f.port(), "/ripestat/data/as-overview/data.json?resource=AS15169&sourceapp=t");
  Json j = Json::parse(as.body);
  EXPECT_EQ(j["data_call_name"], "as-overview");
  EXPECT_EQ(j["data"], Json::parse(R"({"type":"as","resource":"15169",)"
                                   R"("holder":"GOOGLE - Google LLC","announced":true})"));
  auto priv = Get(f.port(), "/ripestat/data/network-info/data.json?resource=10.0.0.1");
  EXPECT_EQ(Json::parse(priv.body)["data"], Json::parse(R"({"asns":[],"prefix":null})"));
  auto bad = Get(f.port(), "/ripestat/data/as-overview/data.json?resource=ASX");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(Json::parse(bad.body)["status"], "error");
  EXPECT_EQ(f.provider->Snapshot().events["ripestat_no_sourceapp"], 2u);
}

// Everything a provider says about `ip`, as one string.
std::string Describe(uint16_t port, const std::string& ip) {
  return Get(port, "/ipinfo/" + ip + "/json").body + Get(port, "/ipinfo/lite/" + ip).body +
         Get(port, "/ip-api/json/" + ip).body +
         Json::parse(Get(port, "/ripestat/data/network-info/data.json?resource=" + ip).body)["data"]
             .dump();
}

TEST(MockProviderTest, AnswersAreAFunctionOfTheAddress) {
  MockProviderOptions o;
  o.ipapi_requests_per_window = 1000;
  Fixture a(o), b(o);
  ASSERT_NE(a.provider, nullptr);
  ASSERT_NE(b.provider, nullptr);
  std::set<std::string> asns;
  for (int i = 0; i < 40; ++i) {
    std::string ip = std::to_string(11 + i * 5) + "." + std::to_string(i * 7 % 256) + ".3." +
                     std::to_string(i + 1);
    EXPECT_EQ(Describe(a.port(), ip), Describe(b.port(), ip)) << ip;
    Json info = Json::parse(Get(a.port(), "/ipinfo/lite/" + ip).body);
    if (info.contains("asn")) asns.insert(info["asn"]);
  }
  EXPECT_GE(asns.size(), 4u);  // not one constant answer
  // A whole /24 shares ASN, country and prefix.
  Json x =
      Json::parse(Get(a.port(), "/ripestat/data/network-info/data.json?resource=77.1.2.3").body);
  Json y =
      Json::parse(Get(a.port(), "/ripestat/data/network-info/data.json?resource=77.1.2.200").body);
  EXPECT_EQ(x["data"], y["data"]);
  EXPECT_EQ(Get(a.port(), "/ipinfo/77.1.2.3/country").body,
            Get(a.port(), "/ipinfo/77.1.2.200/country").body);
  // IPv6 works too.
  auto v6 = Get(a.port(), "/ipinfo/2001:4860:4860::8888/json");
  EXPECT_EQ(v6.status, 200);
  EXPECT_EQ(Json::parse(v6.body)["ip"], "2001:4860:4860::8888");
}

TEST(MockProviderTest, ErrorRateIsReproducibleFromTheSeed) {
  MockProviderOptions o;
  o.error_rate = 0.3;
  o.seed = 7;
  Fixture a(o), b(o);
  ASSERT_NE(a.provider, nullptr);
  std::vector<int> sa, sb;
  for (int i = 0; i < 60; ++i) {
    sa.push_back(Get(a.port(), "/ipinfo/8.8.8.8/json").status);
    sb.push_back(Get(b.port(), "/ipinfo/8.8.8.8/json").status);
  }
  EXPECT_EQ(sa, sb);
  auto errors = std::count(sa.begin(), sa.end(), 503);
  EXPECT_GT(errors, 5);
  EXPECT_LT(errors, 40);
  EXPECT_EQ(std::count(sa.begin(), sa.end(), 200) + errors, 60);
  auto stats = a.provider->Snapshot();
  EXPECT_EQ(stats.by_status[503], static_cast<uint64_t>(errors));
  EXPECT_EQ(stats.events["error"], static_cast<uint64_t>(errors));

  o.error_rate = 1.0;
  a.provider->SetOptions(o);
  EXPECT_EQ(Get(a.port(), "/ripestat/data/as-overview/data.json?resource=AS1").status, 503);
}

TEST(MockProviderTest, RateLimitAnswers429WithRetryAfterBeyondTheBurst) {
  MockProviderOptions o;
  o.rate_limit_rps = 10;
  o.rate_limit_burst = 5;
  Fixture f(o);
  ASSERT_NE(f.provider, nullptr);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(Get(f.port(), "/ipinfo/8.8.8.8").status, 200) << i;
  auto limited = Get(f.port(), "/ipinfo/8.8.8.8");
  EXPECT_EQ(limited.status, 429);
  EXPECT_EQ(limited.headers["retry-after"], "1");
  f.clock.Advance(100ms);  // one token
  EXPECT_EQ(Get(f.port(), "/ipinfo/8.8.8.8").status, 200);
  EXPECT_EQ(Get(f.port(), "/ipinfo/8.8.8.8").status, 429);
  f.clock.Advance(10s);  // refills to the burst, not beyond
  int ok = 0;
  for (int i = 0; i < 8; ++i) ok += Get(f.port(), "/ipinfo/8.8.8.8").status == 200;
  EXPECT_EQ(ok, 5);
  EXPECT_EQ(f.provider->Snapshot().events["rate_limited"], 5u);
}

TEST(MockProviderTest, ScheduledOutageAnswers503ThenRecovers) {
  MockProviderOptions o;
  o.outage_start = 0s;
  o.outage_end = 5s;
  Fixture f(o);
  ASSERT_NE(f.provider, nullptr);
  auto down = Get(f.port(), "/ipinfo/8.8.8.8");
  EXPECT_EQ(down.status, 503);
  EXPECT_EQ(down.headers["retry-after"], "5");
  f.clock.Advance(5s);
  EXPECT_EQ(Get(f.port(), "/ipinfo/8.8.8.8").status, 200);
  EXPECT_EQ(f.provider->Snapshot().events["outage"], 1u);
}

TEST(MockProviderTest, OutageCanDropConnectionsAndBeToggled) {
  MockProviderOptions o;
  o.outage_drops_connections = true;
  Fixture f(o);
  ASSERT_NE(f.provider, nullptr);
  f.provider->SetOutage(true);
  {
    RawClient c(f.port());
    c.Send("GET /ipinfo/8.8.8.8 HTTP/1.1\r\n\r\n");
    EXPECT_TRUE(c.AtEof());
  }
  f.provider->SetOutage(false);
  EXPECT_EQ(Get(f.port(), "/ipinfo/8.8.8.8").status, 200);
  // The control route toggles it too.
  EXPECT_EQ(Fetch(f.port(), "POST", "/_mock/outage/on").status, 200);
  EXPECT_FALSE(Get(f.port(), "/ipinfo/8.8.8.8").complete);
  EXPECT_EQ(Fetch(f.port(), "POST", "/_mock/outage/off").status, 200);
  EXPECT_EQ(Get(f.port(), "/ipinfo/8.8.8.8").status, 200);
  EXPECT_EQ(f.provider->Snapshot().by_status[0], 2u);
}

TEST(MockProviderTest, PerIpTriggersMisbehaveOnlyForThatIp) {
  MockProviderOptions o;
  o.slow_interval = 1ms;
  o.oversized_bytes = 9u << 20;
  o.ip_faults = {{"9.9.9.1", MockFault::kMalformed},  {"9.9.9.2", MockFault::kTruncate},
                 {"9.9.9.3", MockFault::kOversized},  {"9.9.9.4", MockFault::kDrop},
                 {"9.9.9.5", MockFault::kSlow},       {"9.9.9.6", MockFault::kError},
                 {"9.9.9.7", MockFault::kRateLimited}};
  Fixture f(o);
  ASSERT_NE(f.provider, nullptr);

  auto malformed = Get(f.port(), "/ipinfo/9.9.9.1/json");
  ASSERT_TRUE(malformed.complete);
  EXPECT_EQ(malformed.status, 200);
  EXPECT_TRUE(Json::parse(malformed.body, nullptr, false).is_discarded());

  auto truncated = Get(f.port(), "/ipinfo/9.9.9.2/json");
  EXPECT_FALSE(truncated.complete);
  EXPECT_LT(truncated.body.size(), truncated.announced_length);

  auto oversized = Get(f.port(), "/ipinfo/9.9.9.3/json");
  ASSERT_TRUE(oversized.complete);
  EXPECT_EQ(oversized.body.size(), 9u << 20);
  EXPECT_FALSE(Json::parse(oversized.body, nullptr, false).is_discarded());

  auto dropped = Get(f.port(), "/ipinfo/9.9.9.4/json");
  EXPECT_FALSE(dropped.complete);
  EXPECT_EQ(dropped.status, 0);

  auto slow = Get(f.port(), "/ipinfo/9.9.9.5/json");
  ASSERT_TRUE(slow.complete);
  EXPECT_EQ(Json::parse(slow.body)["ip"], "9.9.9.5");

  auto error = Get(f.port(), "/ipinfo/9.9.9.6/json");
  EXPECT_EQ(error.status, 503);
  auto limited = Get(f.port(), "/ipinfo/9.9.9.7/json");
  EXPECT_EQ(limited.status, 429);
  EXPECT_EQ(limited.headers["retry-after"], "1");

  // A batch naming a triggered IP misbehaves; a neighbour does not.
  EXPECT_EQ(Fetch(f.port(), "POST", "/ip-api/batch", R"(["8.8.8.8","9.9.9.6"])").status, 503);
  EXPECT_EQ(Get(f.port(), "/ipinfo/9.9.9.8/json").status, 200);

  auto stats = f.provider->Snapshot();
  for (const char* e : {"malformed", "truncate", "oversized", "drop", "slow", "rate_limited"}) {
    EXPECT_EQ(stats.events[e], 1u) << e;
  }
  EXPECT_EQ(stats.events["error"], 2u);
}

TEST(MockProviderTest, FaultFractionsApply) {
  MockProviderOptions o;
  o.drop_rate = 1.0;
  Fixture f(o);
  ASSERT_NE(f.provider, nullptr);
  EXPECT_FALSE(Get(f.port(), "/ipinfo/8.8.8.8").complete);
  o.drop_rate = 0;
  o.malformed_rate = 1.0;
  f.provider->SetOptions(o);
  auto r = Get(f.port(), "/ip-api/json/8.8.8.8");
  ASSERT_TRUE(r.complete);
  EXPECT_TRUE(Json::parse(r.body, nullptr, false).is_discarded());
  EXPECT_EQ(f.provider->options().malformed_rate, 1.0);
}

TEST(MockProviderTest, LatencyDelaysTheAnswerAndCanBeChangedAtRunTime) {
  MockProviderOptions o;
  o.latency = std::chrono::minutes(10);
  Fixture f(o);
  ASSERT_NE(f.provider, nullptr);
  RawClient waiting(f.port());
  waiting.Send("GET /ipinfo/8.8.8.8 HTTP/1.1\r\n\r\n");
  while (f.provider->Snapshot().total_requests < 1) std::this_thread::yield();
  EXPECT_FALSE(waiting.Readable(100));  // ten minutes away
  o.latency = Duration::zero();
  f.provider->SetOptions(o);
  auto r = Get(f.port(), "/ipinfo/8.8.8.8");  // not blocked by the waiting one
  EXPECT_EQ(r.status, 200);
  EXPECT_FALSE(waiting.Readable(0));
}

TEST(MockProviderTest, CountsWhatItReceived) {
  Fixture f;
  ASSERT_NE(f.provider, nullptr);
  {
    RawClient c(f.port());  // three requests on one connection at t=0
    for (int i = 0; i < 3; ++i) {
      c.Send("GET /ipinfo/8.8.8.8/json HTTP/1.1\r\n\r\n");
      ASSERT_TRUE(c.ReadResponse().complete);
    }
  }
  f.clock.Advance(1500ms);
  Get(f.port(), "/ip-api/json/1.1.1.1");
  Fetch(f.port(), "POST", "/ip-api/batch", R"(["1.1.1.1","8.8.8.8"])");
  f.clock.Advance(1000ms);
  Get(f.port(), "/nowhere");

  auto s = f.provider->Snapshot();
  EXPECT_EQ(s.total_requests, 6u);
  EXPECT_EQ(s.connections_accepted, 4u);
  EXPECT_EQ(s.by_route["ipinfo.json"], 3u);
  EXPECT_EQ(s.by_route["ipapi.json"], 1u);
  EXPECT_EQ(s.by_route["ipapi.batch"], 1u);
  EXPECT_EQ(s.by_route["not_found"], 1u);
  EXPECT_EQ(s.by_status[200], 5u);
  EXPECT_EQ(s.by_status[404], 1u);
  EXPECT_EQ(s.by_second, (std::map<int64_t, uint64_t>{{0, 3}, {1, 2}, {2, 1}}));
  EXPECT_EQ(s.by_ip["8.8.8.8"], 4u);
  EXPECT_EQ(s.by_ip["1.1.1.1"], 2u);
  ASSERT_EQ(s.arrivals.size(), 6u);
  EXPECT_EQ(s.MaxInWindow(1s), 3u);
  EXPECT_EQ(s.MaxInWindow(1600ms), 5u);
  EXPECT_EQ(s.MaxInWindow(1h), 6u);

  Json dump = Json::parse(s.ToJson());
  EXPECT_EQ(dump["total_requests"], 6);
  EXPECT_EQ(dump["by_status"]["200"], 5);
  EXPECT_EQ(dump["by_route"]["ipinfo.json"], 3);

  // The control route serves the same dump and is not itself counted.
  auto http = Get(f.port(), "/_mock/stats");
  EXPECT_EQ(Json::parse(http.body)["total_requests"], 6);
  f.provider->ResetCounters();
  auto reset = f.provider->Snapshot();
  EXPECT_EQ(reset.total_requests, 0u);
  EXPECT_EQ(reset.connections_accepted, 0u);
  EXPECT_TRUE(reset.by_route.empty());
}

TEST(MockProviderTest, Scenarios) {
  for (const char* name : {"fast", "realistic", "flaky", "outage", "ratelimited"}) {
    EXPECT_TRUE(ScenarioOptions(name).ok()) << name;
  }
  EXPECT_EQ(ScenarioOptions("ratelimited")->rate_limit_rps, 200);
  EXPECT_EQ(ScenarioOptions("outage")->outage_end, 5s);
  EXPECT_EQ(ScenarioOptions("nope").status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace enrichd::mock

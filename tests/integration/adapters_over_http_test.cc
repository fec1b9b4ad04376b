// Integration: every HTTP adapter, built through AdapterRegistry::Builtin(), driven through
// the real CurlHttpClient against the in-process MockProvider on 127.0.0.1.
//
// What is checked, per adapter configuration (ipinfo full/lite/batch, ip-api single/batch,
// ripestat, http_json over the mock's ipinfo and ip-api routes):
//   - the normalised data for known and arbitrary public IPs, against what the mock serves,
//     and that it is the same every time;
//   - every failure knob of the mock and the outcome the adapter gives it;
//   - that addresses which must not leave the machine never reach the mock;
//   - what the mock's counters saw (routes, IPs, connections: keep-alive);
//   - that configured secrets never come back in a result.
// No sleeps, no speed assertions: waits are bounded by generous deadlines only.
#include <gtest/gtest.h>

#include <cctype>
#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "enrichd/adapter.h"
#include "enrichd/clock.h"
#include "enrichd/http.h"
#include "enrichd/item.h"
#include "enrichd/outcome.h"
#include "http/curl_http_client.h"
#include "mock_provider/mock_provider.h"

namespace enrichd {
namespace {

using mock::MockFault;
using mock::MockProvider;
using mock::MockProviderOptions;
using mock::MockProviderStats;
using Json = nlohmann::json;
using namespace std::chrono_literals;

// Longest we wait for one HTTP exchange. Generous: the machine may be heavily loaded.
constexpr auto kExchangeDeadline = 30s;
// No adapter here needs more than two requests per call; a runaway call is a bug.
constexpr int kMaxRequestsPerCall = 8;

constexpr char kToken[] = "tok-S3CRET-4242";
constexpr char kWrongToken[] = "tok-WR0NG-1717";

Item Ip(std::string_view text) {
  auto item = Item::Make(kIpLabel, text);
  EXPECT_TRUE(item.ok()) << item.status();
  return item.ok() ? *item : Item{};
}

Json Data(const EnrichmentResult& r) {
  Json j = Json::parse(r.data_json, nullptr, /*allow_exceptions=*/false);
  EXPECT_FALSE(j.is_discarded()) << "data_json is not JSON: " << r.data_json;
  return j;
}

std::string Describe(const EnrichmentResult& r) {
  return std::string(OutcomeName(r.outcome)) + " reason='" + r.reason + "' data=" + r.data_json +
         " endpoint=" + r.provenance.endpoint +
         " http_status=" + std::to_string(r.provenance.http_status);
}

// ---------------------------------------------------------------------------------------
// Driving an AdapterCall over the real client.

// One HTTP exchange: submits and waits for the callback. nullopt when the deadline passed
// (the callback may still run later: the promise is shared so that stays safe).
std::optional<HttpResponse> Exchange(CurlHttpClient& client, HttpRequest request) {
  auto promise = std::make_shared<std::promise<HttpResponse>>();
  std::future<HttpResponse> future = promise->get_future();
  client.Submit(std::move(request),
                [promise](HttpResponse&& response) { promise->set_value(std::move(response)); });
  if (future.wait_for(kExchangeDeadline) != std::future_status::ready) return std::nullopt;
  return future.get();
}

struct Driven {
  std::vector<EnrichmentResult> results;
  std::vector<HttpRequest> requests;  // as the adapter built them, in order
  std::vector<HttpResponse> responses;
  std::optional<Duration> pause;            // ProviderPause() after the last response
  std::optional<AdapterCall::Quota> quota;  // QuotaLeft() after the last response
  bool completed = false;
};

// `rewrite` (optional) changes each request before it is sent.
Driven Drive(CurlHttpClient& client, AsyncAdapter& adapter, std::vector<Item> items,
             const std::function<void(HttpRequest&)>& rewrite = nullptr) {
  Driven d;
  std::unique_ptr<AdapterCall> call = adapter.Begin(std::move(items));
  if (call == nullptr) {
    ADD_FAILURE() << "Begin returned no call";
    return d;
  }
  while (std::optional<HttpRequest> request = call->NextRequest()) {
    if (static_cast<int>(d.requests.size()) >= kMaxRequestsPerCall) {
      ADD_FAILURE() << "adapter asked for more than " << kMaxRequestsPerCall << " requests";
      return d;
    }
    if (rewrite) rewrite(*request);
    d.requests.push_back(*request);
    std::optional<HttpResponse> response = Exchange(client, std::move(*request));
    if (!response) {
      ADD_FAILURE() << "no HTTP callback within the deadline";
      return d;
    }
    call->OnResponse(*response);
    d.responses.push_back(std::move(*response));
  }
  d.pause = call->ProviderPause();
  d.quota = call->QuotaLeft();
  d.results = call->TakeResults();
  d.completed = true;
  return d;
}

// ---------------------------------------------------------------------------------------
// The adapter configurations under test.

struct Variant {
  std::string name;
  bool batch = false;         // one call carries several items
  int requests_per_item = 1;  // ripestat: 2
  std::string route;          // the mock route (by_route key) of the first request
  std::string kind;           // the kind the results carry
  std::function<AdapterSpec(const MockProvider&)> spec;
};

AdapterSpec BaseSpec(std::string provider, std::string adapter, std::string endpoint) {
  AdapterSpec spec;
  spec.provider_name = std::move(provider);
  spec.adapter = std::move(adapter);
  spec.endpoint = std::move(endpoint);
  spec.timeout = 20s;
  return spec;
}

std::vector<Variant> Variants() {
  std::vector<Variant> v;
  v.push_back({"ipinfo_full", false, 1, "ipinfo.json", "geo", [](const MockProvider& m) {
                 auto s = BaseSpec("ipinfo", "ipinfo", m.ipinfo_url());
                 s.options = {{"mode", "full"}};
                 return s;
               }});
  v.push_back({"ipinfo_lite", false, 1, "ipinfo.lite", "asn", [](const MockProvider& m) {
                 auto s = BaseSpec("ipinfo-lite", "ipinfo", m.ipinfo_url());
                 s.options = {{"mode", "lite"}};
                 return s;
               }});
  v.push_back({"ipinfo_batch", true, 1, "ipinfo.batch", "geo", [](const MockProvider& m) {
                 auto s = BaseSpec("ipinfo-batch", "ipinfo", m.ipinfo_url());
                 s.options = {{"mode", "full"}};
                 s.max_batch = 50;
                 return s;
               }});
  v.push_back({"ipapi_single", false, 1, "ipapi.json", "geo",
               [](const MockProvider& m) { return BaseSpec("ip-api", "ip-api", m.ipapi_url()); }});
  v.push_back({"ipapi_batch", true, 1, "ipapi.batch", "geo", [](const MockProvider& m) {
                 auto s = BaseSpec("ip-api-batch", "ip-api", m.ipapi_url());
                 s.max_batch = 50;
                 return s;
               }});
  v.push_back({"ripestat", false, 2, "ripestat.network-info", "asn", [](const MockProvider& m) {
                 auto s = BaseSpec("ripestat", "ripestat", m.ripestat_url());
                 s.options = {{"sourceapp", "enrichd-it"}};
                 return s;
               }});
  v.push_back(
      {"http_json_ipinfo_lite", false, 1, "ipinfo.lite", "asn", [](const MockProvider& m) {
         auto s = BaseSpec("inhouse-asn", "http_json", m.ipinfo_url());
         s.kind = "asn";
         s.options = {
             {"path", "/lite/{key}"},
             {"fields", {{"asn", "/asn"}, {"org", "/as_name"}, {"country_code", "/country_code"}}},
             {"extra", {{"as_domain", "/as_domain"}}},
         };
         return s;
       }});
  v.push_back({"http_json_ipapi", false, 1, "ipapi.json", "geo", [](const MockProvider& m) {
                 auto s = BaseSpec("inhouse-geo", "http_json", m.ipapi_url());
                 s.kind = "geo";
                 s.options = {
                     {"path", "/json/{key}?fields=status,message,countryCode,country,city,lat,lon"},
                     {"fields",
                      {{"country_code", "/countryCode"},
                       {"country", "/country"},
                       {"city", "/city"},
                       {"lat", "/lat"},
                       {"lon", "/lon"}}},
                     {"no_data_when", {{"pointer", "/status"}, {"equals", "fail"}}},
                 };
                 return s;
               }});
  return v;
}

const Variant& FindVariant(const std::string& name) {
  static const std::vector<Variant> all = Variants();
  for (const auto& v : all) {
    if (v.name == name) return v;
  }
  ADD_FAILURE() << "no variant " << name;
  return all.front();
}

std::vector<std::string> VariantNames() {
  std::vector<std::string> names;
  for (const auto& v : Variants()) names.push_back(v.name);
  return names;
}

// ---------------------------------------------------------------------------------------
// Fixture: a mock provider and a client per test.

class AdaptersOverHttp : public ::testing::Test {
 protected:
  void StartMock(MockProviderOptions options = {}, Clock* clock = nullptr) {
    auto started = clock == nullptr ? MockProvider::Start(std::move(options))
                                    : MockProvider::Start(std::move(options), {}, *clock);
    ASSERT_TRUE(started.ok()) << started.status();
    mock_ = std::move(started).value();
    auto client = CurlHttpClient::Create();
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = std::move(client).value();
  }

  void TearDown() override {
    if (client_) client_->Shutdown();
    client_.reset();
    mock_.reset();
  }

  std::unique_ptr<Adapter> Make(const AdapterSpec& spec) {
    auto created = AdapterRegistry::Builtin().Create(spec);
    EXPECT_TRUE(created.ok()) << created.status();
    if (!created.ok()) return nullptr;
    std::unique_ptr<Adapter> adapter = std::move(created).value();
    EXPECT_TRUE(adapter->external()) << spec.adapter << " must count as external";
    EXPECT_NE(dynamic_cast<AsyncAdapter*>(adapter.get()), nullptr) << spec.adapter;
    return adapter;
  }

  static AsyncAdapter& Async(const std::unique_ptr<Adapter>& adapter) {
    return *dynamic_cast<AsyncAdapter*>(adapter.get());
  }

  // Looks `ips` up with the adapter: one call for a batch variant, one call per IP
  // otherwise. Results in the order of `ips`.
  std::vector<EnrichmentResult> LookUp(const Variant& variant, AsyncAdapter& adapter,
                                       const std::vector<std::string>& ips,
                                       std::optional<Duration>* last_pause = nullptr,
                                       std::vector<HttpResponse>* responses = nullptr,
                                       std::optional<AdapterCall::Quota>* last_quota = nullptr) {
    std::vector<EnrichmentResult> out;
    auto take = [&](std::vector<Item> items) {
      const std::size_t n = items.size();
      Driven d = Drive(*client_, adapter, std::move(items));
      EXPECT_TRUE(d.completed);
      EXPECT_EQ(d.results.size(), n);
      if (last_pause != nullptr) *last_pause = d.pause;
      if (last_quota != nullptr) *last_quota = d.quota;
      if (responses != nullptr) {
        for (auto& resp : d.responses) responses->push_back(std::move(resp));
      }
      for (auto& r : d.results) out.push_back(std::move(r));
    };
    if (variant.batch) {
      std::vector<Item> items;
      for (const auto& ip : ips) items.push_back(Ip(ip));
      take(std::move(items));
    } else {
      for (const auto& ip : ips) take({Ip(ip)});
    }
    return out;
  }

  // A raw GET of the mock (what it serves, not through an adapter).
  Json RawGet(const std::string& url) {
    HttpRequest req;
    req.url = url;
    std::optional<HttpResponse> resp = Exchange(*client_, req);
    EXPECT_TRUE(resp.has_value());
    if (!resp) return Json();
    EXPECT_TRUE(resp->transport_ok()) << resp->error_message;
    EXPECT_EQ(resp->status, 200) << url << ": " << resp->body;
    Json j = Json::parse(resp->body, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << resp->body;
    return j;
  }

  std::unique_ptr<MockProvider> mock_;
  std::unique_ptr<CurlHttpClient> client_;
};

// ---------------------------------------------------------------------------------------
// Known answers (8.8.8.8 as in PROVIDERS.md).

TEST_F(AdaptersOverHttp, IpinfoFullGivesGoogleGeoFor8888) {
  StartMock();
  const Variant& v = FindVariant("ipinfo_full");
  auto adapter = Make(v.spec(*mock_));
  ASSERT_NE(adapter, nullptr);
  auto results = LookUp(v, Async(adapter), {"8.8.8.8"});
  ASSERT_EQ(results.size(), 1u);
  const auto& r = results[0];
  ASSERT_EQ(r.outcome, Outcome::kOk) << Describe(r);
  EXPECT_EQ(r.kind, "geo");
  Json d = Data(r);
  EXPECT_EQ(d["country_code"], "US");
  EXPECT_EQ(d["region"], "California");
  EXPECT_EQ(d["city"], "Mountain View");
  EXPECT_DOUBLE_EQ(d["lat"].get<double>(), 37.386);
  EXPECT_DOUBLE_EQ(d["lon"].get<double>(), -122.084);
  EXPECT_EQ(d["postal"], "94035");
  EXPECT_EQ(d["extra"]["asn"], 15169);
  EXPECT_EQ(d["extra"]["hostname"], "dns.google");
  EXPECT_EQ(r.provenance.adapter, "ipinfo");
  EXPECT_EQ(r.provenance.http_status, 200);
  EXPECT_FALSE(r.provenance.response_digest.empty());
  EXPECT_NE(r.provenance.endpoint.find("/ipinfo/8.8.8.8"), std::string::npos)
      << r.provenance.endpoint;
}

TEST_F(AdaptersOverHttp, IpinfoLiteGivesAs15169For8888) {
  StartMock();
  const Variant& v = FindVariant("ipinfo_lite");
  auto adapter = Make(v.spec(*mock_));
  ASSERT_NE(adapter, nullptr);
  auto results = LookUp(v, Async(adapter), {"8.8.8.8"});
  ASSERT_EQ(results.size(), 1u);
  ASSERT_EQ(results[0].outcome, Outcome::kOk) << Describe(results[0]);
  EXPECT_EQ(results[0].kind, "asn");
  Json d = Data(results[0]);
  EXPECT_EQ(d["asn"], 15169);
  EXPECT_EQ(d["org"], "Google LLC");
  EXPECT_EQ(d["country_code"], "US");
  EXPECT_EQ(mock_->Snapshot().by_route["ipinfo.lite"], 1u);
}

TEST_F(AdaptersOverHttp, IpinfoBatchOneRequestForSeveralItems) {
  StartMock();
  const Variant& v = FindVariant("ipinfo_batch");
  auto adapter = Make(v.spec(*mock_));
  ASSERT_NE(adapter, nullptr);
  auto results = LookUp(v, Async(adapter), {"8.8.8.8", "1.1.1.1", "9.9.9.9"});
  ASSERT_EQ(results.size(), 3u);
  for (const auto& r : results) ASSERT_EQ(r.outcome, Outcome::kOk) << Describe(r);
  EXPECT_EQ(Data(results[0])["city"], "Mountain View");
  EXPECT_EQ(Data(results[0])["extra"]["asn"], 15169);
  EXPECT_EQ(Data(results[1])["city"], "Brisbane");
  EXPECT_EQ(Data(results[1])["extra"]["asn"], 13335);
  MockProviderStats s = mock_->Snapshot();
  EXPECT_EQ(s.total_requests, 1u);
  EXPECT_EQ(s.by_route["ipinfo.batch"], 1u);
  EXPECT_EQ(s.by_ip["8.8.8.8"], 1u);
  EXPECT_EQ(s.by_ip["1.1.1.1"], 1u);
  EXPECT_EQ(s.by_ip["9.9.9.9"], 1u);
}

TEST_F(AdaptersOverHttp, IpApiGivesAshburnAndAs15169For8888) {
  StartMock();
  for (const char* name : {"ipapi_single", "ipapi_batch"}) {
    SCOPED_TRACE(name);
    const Variant& v = FindVariant(name);
    auto adapter = Make(v.spec(*mock_));
    ASSERT_NE(adapter, nullptr);
    auto results = LookUp(v, Async(adapter), {"8.8.8.8", "1.1.1.1"});
    ASSERT_EQ(results.size(), 2u);
    ASSERT_EQ(results[0].outcome, Outcome::kOk) << Describe(results[0]);
    ASSERT_EQ(results[1].outcome, Outcome::kOk) << Describe(results[1]);
    Json d = Data(results[0]);
    EXPECT_EQ(d["country_code"], "US");
    EXPECT_EQ(d["country"], "United States");
    EXPECT_EQ(d["region"], "Virginia");
    EXPECT_EQ(d["city"], "Ashburn");
    EXPECT_DOUBLE_EQ(d["lat"].get<double>(), 39.03);
    EXPECT_DOUBLE_EQ(d["lon"].get<double>(), -77.5);
    EXPECT_EQ(d["extra"]["asn"], 15169);
    EXPECT_EQ(d["extra"]["org"], "Google Public DNS");
    EXPECT_EQ(Data(results[1])["extra"]["asn"], 13335);
  }
  MockProviderStats s = mock_->Snapshot();
  EXPECT_EQ(s.by_route["ipapi.json"], 2u);
  EXPECT_EQ(s.by_route["ipapi.batch"], 1u);
  EXPECT_EQ(s.total_requests, 3u);
}

TEST_F(AdaptersOverHttp, RipeStatTwoRequestsPerItem) {
  StartMock();
  const Variant& v = FindVariant("ripestat");
  auto adapter = Make(v.spec(*mock_));
  ASSERT_NE(adapter, nullptr);
  Driven d = Drive(*client_, Async(adapter), {Ip("8.8.8.8")});
  ASSERT_TRUE(d.completed);
  ASSERT_EQ(d.requests.size(), 2u);
  EXPECT_NE(d.requests[0].url.find("/data/network-info/"), std::string::npos);
  EXPECT_NE(d.requests[1].url.find("/data/as-overview/"), std::string::npos);
  ASSERT_EQ(d.results.size(), 1u);
  const auto& r = d.results[0];
  ASSERT_EQ(r.outcome, Outcome::kOk) << Describe(r);
  Json data = Data(r);
  EXPECT_EQ(data["asn"], 15169);
  EXPECT_EQ(data["org"], "Google LLC");
  EXPECT_EQ(data["prefix"], "8.8.8.0/24");
  MockProviderStats s = mock_->Snapshot();
  EXPECT_EQ(s.by_route["ripestat.network-info"], 1u);
  EXPECT_EQ(s.by_route["ripestat.as-overview"], 1u);
  EXPECT_EQ(s.events["ripestat_no_sourceapp"], 0u) << "the adapter must send sourceapp";
}

TEST_F(AdaptersOverHttp, HttpJsonOverMockRoutes) {
  StartMock();
  {
    const Variant& v = FindVariant("http_json_ipinfo_lite");
    auto adapter = Make(v.spec(*mock_));
    ASSERT_NE(adapter, nullptr);
    auto results = LookUp(v, Async(adapter), {"8.8.8.8"});
    ASSERT_EQ(results.size(), 1u);
    ASSERT_EQ(results[0].outcome, Outcome::kOk) << Describe(results[0]);
    Json d = Data(results[0]);
    EXPECT_EQ(d["asn"], 15169);  // from the "AS15169" string
    EXPECT_EQ(d["org"], "Google LLC");
    EXPECT_EQ(d["country_code"], "US");
    EXPECT_EQ(d["extra"]["as_domain"], "google.com");
  }
  {
    const Variant& v = FindVariant("http_json_ipapi");
    auto adapter = Make(v.spec(*mock_));
    ASSERT_NE(adapter, nullptr);
    auto results = LookUp(v, Async(adapter), {"8.8.8.8"});
    ASSERT_EQ(results.size(), 1u);
    ASSERT_EQ(results[0].outcome, Outcome::kOk) << Describe(results[0]);
    Json d = Data(results[0]);
    EXPECT_EQ(d["country_code"], "US");
    EXPECT_EQ(d["city"], "Ashburn");
    EXPECT_DOUBLE_EQ(d["lat"].get<double>(), 39.03);
  }
  MockProviderStats s = mock_->Snapshot();
  EXPECT_EQ(s.by_route["ipinfo.lite"], 1u);
  EXPECT_EQ(s.by_route["ipapi.json"], 1u);
}

// ---------------------------------------------------------------------------------------
// Arbitrary public addresses: the normalised data is what the mock served.

const std::vector<std::string> kPublicIps = {"9.9.9.9", "80.80.80.80", "185.199.108.153",
                                             "2001:4860:4860::8888", "2606:4700::1111"};

std::optional<int64_t> AsNumber(const std::string& as_text) {  // "AS123 ..." / "AS123"
  if (as_text.rfind("AS", 0) != 0) return std::nullopt;
  std::size_t end = 2;
  while (end < as_text.size() && std::isdigit(static_cast<unsigned char>(as_text[end]))) ++end;
  if (end == 2) return std::nullopt;
  return std::stoll(as_text.substr(2, end - 2));
}

TEST_F(AdaptersOverHttp, IpinfoFullMatchesWhatTheMockServes) {
  StartMock();
  const Variant& v = FindVariant("ipinfo_full");
  auto adapter = Make(v.spec(*mock_));
  ASSERT_NE(adapter, nullptr);
  auto results = LookUp(v, Async(adapter), kPublicIps);
  ASSERT_EQ(results.size(), kPublicIps.size());
  for (std::size_t i = 0; i < kPublicIps.size(); ++i) {
    SCOPED_TRACE(kPublicIps[i]);
    ASSERT_EQ(results[i].outcome, Outcome::kOk) << Describe(results[i]);
    Json raw = RawGet(mock_->ipinfo_url() + "/" + kPublicIps[i] + "/json");
    Json d = Data(results[i]);
    EXPECT_EQ(d["city"], raw["city"]);
    EXPECT_EQ(d["region"], raw["region"]);
    EXPECT_EQ(d["country_code"], raw["country"]);
    EXPECT_EQ(d["postal"], raw["postal"]);
    const std::string loc = raw["loc"];
    const std::size_t comma = loc.find(',');
    EXPECT_NEAR(d["lat"].get<double>(), std::stod(loc.substr(0, comma)), 1e-9);
    EXPECT_NEAR(d["lon"].get<double>(), std::stod(loc.substr(comma + 1)), 1e-9);
    if (raw.contains("org")) {
      EXPECT_EQ(d["extra"]["asn"], *AsNumber(raw["org"]));
    } else {
      EXPECT_FALSE(d.contains("extra") && d["extra"].contains("asn")) << d.dump();
    }
  }
}

TEST_F(AdaptersOverHttp, IpApiMatchesWhatTheMockServes) {
  StartMock();
  const Variant& v = FindVariant("ipapi_batch");
  auto adapter = Make(v.spec(*mock_));
  ASSERT_NE(adapter, nullptr);
  auto results = LookUp(v, Async(adapter), kPublicIps);
  ASSERT_EQ(results.size(), kPublicIps.size());
  for (std::size_t i = 0; i < kPublicIps.size(); ++i) {
    SCOPED_TRACE(kPublicIps[i]);
    ASSERT_EQ(results[i].outcome, Outcome::kOk) << Describe(results[i]);
    Json raw = RawGet(mock_->ipapi_url() + "/json/" + kPublicIps[i]);
    ASSERT_EQ(raw["status"], "success");
    Json d = Data(results[i]);
    EXPECT_EQ(d["country_code"], raw["countryCode"]);
    EXPECT_EQ(d["country"], raw["country"]);
    EXPECT_EQ(d["region"], raw["regionName"]);
    EXPECT_EQ(d["city"], raw["city"]);
    EXPECT_NEAR(d["lat"].get<double>(), raw["lat"].get<double>(), 1e-9);
    EXPECT_NEAR(d["lon"].get<double>(), raw["lon"].get<double>(), 1e-9);
    if (raw.contains("as") && !raw["as"].get<std::string>().empty()) {
      EXPECT_EQ(d["extra"]["asn"], *AsNumber(raw["as"]));
    }
  }
}

TEST_F(AdaptersOverHttp, RipeStatAndLiteMatchWhatTheMockServes) {
  StartMock();
  const Variant& rv = FindVariant("ripestat");
  const Variant& lv = FindVariant("ipinfo_lite");
  auto ripe = Make(rv.spec(*mock_));
  auto lite = Make(lv.spec(*mock_));
  ASSERT_NE(ripe, nullptr);
  ASSERT_NE(lite, nullptr);
  auto ripe_results = LookUp(rv, Async(ripe), kPublicIps);
  auto lite_results = LookUp(lv, Async(lite), kPublicIps);
  ASSERT_EQ(ripe_results.size(), kPublicIps.size());
  ASSERT_EQ(lite_results.size(), kPublicIps.size());
  for (std::size_t i = 0; i < kPublicIps.size(); ++i) {
    SCOPED_TRACE(kPublicIps[i]);
    Json net = RawGet(mock_->ripestat_url() +
                      "/data/network-info/data.json?resource=" + kPublicIps[i] + "&sourceapp=it");
    const Json& asns = net["data"]["asns"];
    Json lite_raw = RawGet(mock_->ipinfo_url() + "/lite/" + kPublicIps[i]);
    if (asns.empty()) {
      // Unannounced space: RIPEstat has no ASN.
      EXPECT_EQ(ripe_results[i].outcome, Outcome::kNoData) << Describe(ripe_results[i]);
      EXPECT_FALSE(lite_raw.contains("asn"));
      continue;
    }
    ASSERT_EQ(ripe_results[i].outcome, Outcome::kOk) << Describe(ripe_results[i]);
    ASSERT_EQ(lite_results[i].outcome, Outcome::kOk) << Describe(lite_results[i]);
    const int64_t asn = std::stoll(asns[0].get<std::string>());
    Json over = RawGet(mock_->ripestat_url() + "/data/as-overview/data.json?resource=AS" +
                       std::to_string(asn) + "&sourceapp=it");
    const std::string holder = over["data"]["holder"];
    Json rd = Data(ripe_results[i]);
    EXPECT_EQ(rd["asn"], asn);
    EXPECT_EQ(rd["prefix"], net["data"]["prefix"]);
    EXPECT_EQ(rd["org"], holder.substr(holder.find(" - ") + 3));
    Json ld = Data(lite_results[i]);
    EXPECT_EQ(ld["asn"], *AsNumber(lite_raw["asn"]));
    EXPECT_EQ(ld["org"], lite_raw["as_name"]);
    EXPECT_EQ(ld["country_code"], lite_raw["country_code"]);
    // Both providers of the mock agree on the ASN.
    EXPECT_EQ(ld["asn"], rd["asn"]);
  }
}

// Same address, same normalised answer: twice on one mock, and once more on a second,
// independent mock instance.
class Determinism : public AdaptersOverHttp, public ::testing::WithParamInterface<std::string> {};

TEST_P(Determinism, SameAnswerEveryTime) {
  StartMock();
  const Variant& v = FindVariant(GetParam());
  const std::vector<std::string> ips = {"8.8.8.8", "9.9.9.9", "2001:4860:4860::8888"};
  auto adapter = Make(v.spec(*mock_));
  ASSERT_NE(adapter, nullptr);
  auto first = LookUp(v, Async(adapter), ips);
  auto second = LookUp(v, Async(adapter), ips);
  auto other_mock = MockProvider::Start({});
  ASSERT_TRUE(other_mock.ok()) << other_mock.status();
  auto other_adapter = Make(v.spec(**other_mock));
  ASSERT_NE(other_adapter, nullptr);
  auto third = LookUp(v, Async(other_adapter), ips);
  ASSERT_EQ(first.size(), ips.size());
  ASSERT_EQ(second.size(), ips.size());
  ASSERT_EQ(third.size(), ips.size());
  for (std::size_t i = 0; i < ips.size(); ++i) {
    SCOPED_TRACE(ips[i]);
    EXPECT_TRUE(IsAnswer(first[i].outcome)) << Describe(first[i]);
    EXPECT_EQ(first[i].outcome, second[i].outcome);
    EXPECT_EQ(first[i].data_json, second[i].data_json);
    // RIPEstat's envelope carries the answer time, so only its data is compared.
    if (v.name != "ripestat") {
      EXPECT_EQ(first[i].provenance.response_digest, second[i].provenance.response_digest);
    }
    EXPECT_EQ(first[i].outcome, third[i].outcome);
    EXPECT_EQ(first[i].data_json, third[i].data_json);
  }
}

INSTANTIATE_TEST_SUITE_P(AllHttpAdapters, Determinism, ::testing::ValuesIn(VariantNames()),
                         [](const auto& test_param) { return test_param.param; });

// ---------------------------------------------------------------------------------------
// Failure knobs.

enum class Knob {
  kErrorRate,      // error_rate 1.0 -> 503 (+ Retry-After: 1)
  kRateLimitRps,   // rate_limit_rps tiny -> 429 + Retry-After
  kRateLimitedIp,  // MockFault::kRateLimited for the IP -> 429 + Retry-After: 1
  kOutage,         // SetOutage(true) -> 503 + Retry-After
  kOutageDrop,     // outage that drops connections
  kDrop,           // MockFault::kDrop
  kTruncate,       // MockFault::kTruncate
  kMalformed,      // MockFault::kMalformed
  kOversized,      // MockFault::kOversized (9 MiB vs the 8 MiB default limit)
  kSlow,           // MockFault::kSlow with a 200 ms adapter timeout
};

struct KnobCase {
  Knob knob;
  const char* name;
  Outcome expected;
  bool expect_retry_after;
  const char* event;  // MockProviderStats::events key that must count it
  const char* reason_has;
  TransportError transport;  // what the client reported for the first request
};

const KnobCase kKnobCases[] = {
    {Knob::kErrorRate, "error_rate_503", Outcome::kTransient, true, "error", "503",
     TransportError::kNone},
    {Knob::kRateLimitRps, "rate_limit_rps", Outcome::kRateLimited, true, "rate_limited", "",
     TransportError::kNone},
    {Knob::kRateLimitedIp, "ip_fault_429", Outcome::kRateLimited, true, "rate_limited", "",
     TransportError::kNone},
    {Knob::kOutage, "outage_503", Outcome::kTransient, true, "outage", "503",
     TransportError::kNone},
    {Knob::kOutageDrop, "outage_drop", Outcome::kTransient, false, "outage", "receive",
     TransportError::kReceive},
    {Knob::kDrop, "drop", Outcome::kTransient, false, "drop", "receive", TransportError::kReceive},
    {Knob::kTruncate, "truncate", Outcome::kTransient, false, "truncate", "",
     TransportError::kReceive},
    {Knob::kMalformed, "malformed", Outcome::kTransient, false, "malformed", "",
     TransportError::kNone},
    // docs/ADDING_AN_ADAPTER.md and common/http_util.h: "response too large -> permanent"
    // (the same answer would be too large again).
    {Knob::kOversized, "oversized", Outcome::kPermanent, false, "oversized", "too_large",
     TransportError::kResponseTooLarge},
    {Knob::kSlow, "slow_timeout", Outcome::kTransient, false, "slow", "timeout",
     TransportError::kTimeout},
};

struct KnobParam {
  std::string variant;
  KnobCase knob;
};

class FailureKnobs : public AdaptersOverHttp, public ::testing::WithParamInterface<KnobParam> {};

TEST_P(FailureKnobs, KnobGivesItsOutcome) {
  const Variant& v = FindVariant(GetParam().variant);
  const KnobCase& k = GetParam().knob;
  MockProviderOptions o;
  // 8.8.8.8 is in every lookup (and in every batch), 1.1.1.1 rides along in batches.
  switch (k.knob) {
    case Knob::kErrorRate:
      o.error_rate = 1.0;
      break;
    case Knob::kRateLimitRps:
      o.rate_limit_rps = 0.001;  // the bucket starts below one token: the first call is 429
      break;
    case Knob::kRateLimitedIp:
      o.ip_faults["8.8.8.8"] = MockFault::kRateLimited;
      break;
    case Knob::kOutage:
      break;
    case Knob::kOutageDrop:
      o.outage_drops_connections = true;
      break;
    case Knob::kDrop:
      o.ip_faults["8.8.8.8"] = MockFault::kDrop;
      break;
    case Knob::kTruncate:
      o.ip_faults["8.8.8.8"] = MockFault::kTruncate;
      break;
    case Knob::kMalformed:
      o.ip_faults["8.8.8.8"] = MockFault::kMalformed;
      break;
    case Knob::kOversized:
      o.ip_faults["8.8.8.8"] = MockFault::kOversized;
      o.oversized_bytes = 9u << 20;
      break;
    case Knob::kSlow:
      o.ip_faults["8.8.8.8"] = MockFault::kSlow;
      o.slow_interval = 100ms;  // 8 pieces: ~800 ms for the body
      break;
  }
  StartMock(o);
  if (k.knob == Knob::kOutage || k.knob == Knob::kOutageDrop) mock_->SetOutage(true);

  AdapterSpec spec = v.spec(*mock_);
  if (k.knob == Knob::kSlow) spec.timeout = 200ms;
  auto adapter = Make(spec);
  ASSERT_NE(adapter, nullptr);

  std::vector<std::string> ips = {"8.8.8.8"};
  if (v.batch) ips.push_back("1.1.1.1");
  std::vector<HttpResponse> responses;
  auto results = LookUp(v, Async(adapter), ips, nullptr, &responses);
  ASSERT_EQ(results.size(), ips.size());
  ASSERT_FALSE(responses.empty());
  EXPECT_EQ(responses.front().error, k.transport)
      << TransportErrorName(responses.front().error) << ": " << responses.front().error_message;
  for (const auto& r : results) {
    EXPECT_EQ(r.outcome, k.expected) << Describe(r);
    EXPECT_EQ(r.retry_after.has_value(), k.expect_retry_after) << Describe(r);
    if (r.retry_after) {
      EXPECT_GT(*r.retry_after, Duration::zero());
      // The mock's Retry-After: 1 on its 503s and per-IP 429s (ip-api takes X-Ttl for 429s).
      const bool ipapi_429 = k.expected == Outcome::kRateLimited && v.name.rfind("ipapi", 0) == 0;
      if (k.knob == Knob::kErrorRate || k.knob == Knob::kOutage ||
          (k.knob == Knob::kRateLimitedIp && !ipapi_429)) {
        EXPECT_EQ(*r.retry_after, Duration(1s)) << Describe(r);
      }
      if (ipapi_429) {
        EXPECT_LE(*r.retry_after, Duration(60s)) << "X-Ttl of a 60 s window";
      }
    }
    EXPECT_NE(r.reason.find(k.reason_has), std::string::npos) << Describe(r);
    EXPECT_EQ(r.kind, v.kind);
  }
  MockProviderStats s = mock_->Snapshot();
  EXPECT_GE(s.by_route[v.route], 1u);
  EXPECT_GE(s.events[k.event], 1u) << mock_->Snapshot().ToJson();
  // A failed first request of a two-request item stops there.
  if (v.requests_per_item == 2) {
    EXPECT_EQ(s.by_route["ripestat.as-overview"], 0u);
  }
}

std::vector<KnobParam> AllKnobParams() {
  std::vector<KnobParam> out;
  for (const auto& name : VariantNames()) {
    for (const auto& k : kKnobCases) out.push_back({name, k});
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(AllHttpAdapters, FailureKnobs, ::testing::ValuesIn(AllKnobParams()),
                         [](const auto& test_param) {
                           return test_param.param.variant + "_" + test_param.param.knob.name;
                         });

// The second RIPEstat request failing gives the item that failure (not a partial ok).
TEST_F(AdaptersOverHttp, RipeStatSecondRequestFailureIsTheItemsOutcome) {
  StartMock();
  const Variant& v = FindVariant("ripestat");
  auto adapter = Make(v.spec(*mock_));
  ASSERT_NE(adapter, nullptr);
  // Turn the outage on once the first answer has arrived.
  std::unique_ptr<AdapterCall> call = Async(adapter).Begin({Ip("8.8.8.8")});
  int sent = 0;
  while (auto req = call->NextRequest()) {
    ASSERT_LT(sent, kMaxRequestsPerCall);
    if (sent == 1) mock_->SetOutage(true);
    auto resp = Exchange(*client_, *req);
    ASSERT_TRUE(resp.has_value());
    call->OnResponse(*resp);
    ++sent;
  }
  EXPECT_EQ(sent, 2);
  auto results = call->TakeResults();
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].outcome, Outcome::kTransient) << Describe(results[0]);
  MockProviderStats s = mock_->Snapshot();
  EXPECT_EQ(s.by_route["ripestat.network-info"], 1u);
  EXPECT_EQ(s.by_route["ripestat.as-overview"], 1u);
  EXPECT_EQ(s.events["outage"], 1u);
}

// A smaller max_response_bytes set on the request is honoured the same way.
TEST_F(AdaptersOverHttp, RequestSizeLimitBelowTheAnswerIsTooLarge) {
  StartMock();
  const Variant& v = FindVariant("ipinfo_full");
  auto adapter = Make(v.spec(*mock_));
  ASSERT_NE(adapter, nullptr);
  Driven d = Drive(*client_, Async(adapter), {Ip("8.8.8.8")},
                   [](HttpRequest& r) { r.max_response_bytes = 16; });
  ASSERT_TRUE(d.completed);
  ASSERT_EQ(d.responses.size(), 1u);
  EXPECT_EQ(d.responses[0].error, TransportError::kResponseTooLarge);
  ASSERT_EQ(d.results.size(), 1u);
  EXPECT_EQ(d.results[0].outcome, Outcome::kPermanent) << Describe(d.results[0]);
}

// ---------------------------------------------------------------------------------------
// Auth and secrets.

void ExpectNoSecret(const EnrichmentResult& r, const std::vector<std::string>& secrets) {
  for (const auto& s : secrets) {
    EXPECT_EQ(r.reason.find(s), std::string::npos) << "secret in reason: " << r.reason;
    EXPECT_EQ(r.provenance.endpoint.find(s), std::string::npos)
        << "secret in endpoint: " << r.provenance.endpoint;
    EXPECT_EQ(r.data_json.find(s), std::string::npos) << "secret in data: " << r.data_json;
    EXPECT_EQ(r.provenance.response_digest.find(s), std::string::npos);
  }
}

struct AuthCase {
  const char* name;
  AuthSpec::Kind kind;
  const char* secret;  // nullptr: no auth
  Outcome expected;
  int http_status;
};

TEST_F(AdaptersOverHttp, IpinfoTokenRightWrongMissing) {
  MockProviderOptions o;
  o.required_token = kToken;
  StartMock(o);
  const AuthCase cases[] = {
      {"bearer_right", AuthSpec::Kind::kBearer, kToken, Outcome::kOk, 200},
      {"query_right", AuthSpec::Kind::kQueryParam, kToken, Outcome::kOk, 200},
      {"bearer_wrong", AuthSpec::Kind::kBearer, kWrongToken, Outcome::kAuth, 403},
      {"query_wrong", AuthSpec::Kind::kQueryParam, kWrongToken, Outcome::kAuth, 403},
      {"missing", AuthSpec::Kind::kNone, nullptr, Outcome::kAuth, 401},
  };
  for (const char* variant :
       {"ipinfo_full", "ipinfo_lite", "ipinfo_batch", "http_json_ipinfo_lite"}) {
    for (const auto& c : cases) {
      SCOPED_TRACE(std::string(variant) + "/" + c.name);
      const Variant& v = FindVariant(variant);
      AdapterSpec spec = v.spec(*mock_);
      spec.auth.kind = c.kind;
      if (c.kind == AuthSpec::Kind::kQueryParam) spec.auth.name = "token";
      if (c.secret != nullptr) spec.auth.secret = c.secret;
      auto adapter = Make(spec);
      ASSERT_NE(adapter, nullptr);
      std::vector<std::string> ips = {"8.8.8.8"};
      if (v.batch) ips.push_back("1.1.1.1");
      auto results = LookUp(v, Async(adapter), ips);
      ASSERT_EQ(results.size(), ips.size());
      for (const auto& r : results) {
        EXPECT_EQ(r.outcome, c.expected) << Describe(r);
        EXPECT_EQ(r.provenance.http_status, c.http_status) << Describe(r);
        ExpectNoSecret(r, {kToken, kWrongToken});
      }
    }
  }
  EXPECT_GE(mock_->Snapshot().events["auth"], 12u);
}

// With a token configured, no field of any result (ok or failure) contains it.
TEST_F(AdaptersOverHttp, SecretsNeverComeBackInResults) {
  MockProviderOptions o;
  o.ip_faults["1.1.1.1"] = MockFault::kError;
  o.ip_faults["9.9.9.9"] = MockFault::kMalformed;
  StartMock(o);
  std::vector<std::pair<std::string, AuthSpec>> configs;
  for (const std::string& variant : VariantNames()) {
    AuthSpec query{AuthSpec::Kind::kQueryParam, "", "", kToken};
    AuthSpec bearer{AuthSpec::Kind::kBearer, "", "", kToken};
    AuthSpec header{AuthSpec::Kind::kHeader, "X-Key", "", kToken};
    configs.push_back({variant, query});
    configs.push_back({variant, bearer});
    configs.push_back({variant, header});
  }
  int checked = 0;
  for (const auto& [variant, auth] : configs) {
    SCOPED_TRACE(variant + " auth kind " + std::to_string(static_cast<int>(auth.kind)));
    const Variant& v = FindVariant(variant);
    AdapterSpec spec = v.spec(*mock_);
    spec.auth = auth;
    auto adapter = Make(spec);
    ASSERT_NE(adapter, nullptr);
    auto results = LookUp(v, Async(adapter), {"8.8.8.8", "1.1.1.1", "9.9.9.9"});
    ASSERT_EQ(results.size(), 3u);
    for (const auto& r : results) {
      ExpectNoSecret(r, {kToken});
      ++checked;
    }
    if (!v.batch) {  // single lookups: one ok, one 503, one malformed
      EXPECT_EQ(results[0].outcome, Outcome::kOk) << Describe(results[0]);
      EXPECT_EQ(results[1].outcome, Outcome::kTransient) << Describe(results[1]);
      EXPECT_EQ(results[2].outcome, Outcome::kTransient) << Describe(results[2]);
    }
  }
  // http_json: header values are secrets too.
  for (const char* variant : {"http_json_ipinfo_lite", "http_json_ipapi"}) {
    SCOPED_TRACE(variant);
    const Variant& v = FindVariant(variant);
    AdapterSpec spec = v.spec(*mock_);
    spec.options["headers"] = {{"Authorization", std::string("Bearer ") + kToken}};
    auto adapter = Make(spec);
    ASSERT_NE(adapter, nullptr);
    auto results = LookUp(v, Async(adapter), {"8.8.8.8", "1.1.1.1", "9.9.9.9"});
    ASSERT_EQ(results.size(), 3u);
    EXPECT_EQ(results[0].outcome, Outcome::kOk) << Describe(results[0]);
    for (const auto& r : results) {
      ExpectNoSecret(r, {kToken});
      ++checked;
    }
  }
  EXPECT_EQ(checked, 8 * 3 * 3 + 2 * 3);
}

// ---------------------------------------------------------------------------------------
// ip-api signals.

TEST_F(AdaptersOverHttp, IpApiXRlZeroSetsProviderPauseThen429) {
  FakeClock clock;  // the mock's windows read it; nothing advances it
  MockProviderOptions o;
  o.ipapi_requests_per_window = 2;
  o.ipapi_batch_requests_per_window = 1;
  o.ipapi_window = 30s;
  StartMock(o, &clock);
  {
    const Variant& v = FindVariant("ipapi_single");
    auto adapter = Make(v.spec(*mock_));
    ASSERT_NE(adapter, nullptr);
    std::optional<Duration> pause;
    auto r1 = LookUp(v, Async(adapter), {"8.8.8.8"}, &pause);
    ASSERT_EQ(r1.size(), 1u);
    EXPECT_EQ(r1[0].outcome, Outcome::kOk) << Describe(r1[0]);
    EXPECT_FALSE(pause.has_value()) << "X-Rl was 1";
    auto r2 = LookUp(v, Async(adapter), {"1.1.1.1"}, &pause);
    ASSERT_EQ(r2.size(), 1u);
    EXPECT_EQ(r2[0].outcome, Outcome::kOk) << Describe(r2[0]);  // the answer itself is good
    ASSERT_TRUE(pause.has_value()) << "X-Rl: 0 must pause the provider";
    EXPECT_EQ(*pause, Duration(30s));
    auto r3 = LookUp(v, Async(adapter), {"9.9.9.9"}, &pause);
    ASSERT_EQ(r3.size(), 1u);
    EXPECT_EQ(r3[0].outcome, Outcome::kRateLimited) << Describe(r3[0]);
    ASSERT_TRUE(r3[0].retry_after.has_value());
    EXPECT_EQ(*r3[0].retry_after, Duration(30s));  // X-Ttl
  }
  {
    const Variant& v = FindVariant("ipapi_batch");
    auto adapter = Make(v.spec(*mock_));
    ASSERT_NE(adapter, nullptr);
    std::optional<Duration> pause;
    auto r1 = LookUp(v, Async(adapter), {"8.8.8.8", "1.1.1.1"}, &pause);
    ASSERT_EQ(r1.size(), 2u);
    EXPECT_EQ(r1[0].outcome, Outcome::kOk) << Describe(r1[0]);
    ASSERT_TRUE(pause.has_value()) << "batch window of 1: X-Rl 0 after the first";
    EXPECT_EQ(*pause, Duration(30s));
    auto r2 = LookUp(v, Async(adapter), {"8.8.8.8", "1.1.1.1"}, &pause);
    ASSERT_EQ(r2.size(), 2u);
    for (const auto& r : r2) {
      EXPECT_EQ(r.outcome, Outcome::kRateLimited) << Describe(r);
      ASSERT_TRUE(r.retry_after.has_value());
      EXPECT_EQ(*r.retry_after, Duration(30s));
    }
  }
  MockProviderStats s = mock_->Snapshot();
  EXPECT_EQ(s.by_route["ipapi.json"], 3u);
  EXPECT_EQ(s.by_route["ipapi.batch"], 2u);
  EXPECT_EQ(s.events["ipapi_overrun"], 2u);
  EXPECT_EQ(s.by_status[429], 2u);
}

// Every ip-api answer states the window (X-Rl left, X-Ttl until reset): QuotaLeft() reports
// it through AsyncAdapter::Begin()'s wrapper, so the engine can spend the allowance as it
// sends.
TEST_F(AdaptersOverHttp, IpApiQuotaLeftReportsTheWindow) {
  FakeClock clock;
  MockProviderOptions o;
  o.ipapi_requests_per_window = 3;
  o.ipapi_batch_requests_per_window = 2;
  o.ipapi_window = 30s;
  StartMock(o, &clock);
  for (const char* name : {"ipapi_single", "ipapi_batch"}) {
    SCOPED_TRACE(name);
    const Variant& v = FindVariant(name);
    auto adapter = Make(v.spec(*mock_));
    ASSERT_NE(adapter, nullptr);
    std::optional<AdapterCall::Quota> quota;
    auto r = LookUp(v, Async(adapter), {"8.8.8.8", "1.1.1.1"}, nullptr, nullptr, &quota);
    ASSERT_EQ(r.size(), 2u);
    EXPECT_EQ(r[1].outcome, Outcome::kOk) << Describe(r[1]);
    ASSERT_TRUE(quota.has_value()) << "X-Rl / X-Ttl state the quota";
    EXPECT_EQ(quota->remaining, 1);  // single: 3 - 2 lookups; batch: 2 - 1 call
    EXPECT_EQ(quota->resets_in, Duration(30s));
  }
}

// The adapters never send a non-routable address (see the Skipped test below), so to see
// how they read the provider's real "nothing here" answers, the request they built for a
// public address is redirected to ask the mock about a private/reserved one.
void ReplaceAll(std::string& s, const std::string& from, const std::string& to) {
  for (std::size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size())) {
    s.replace(p, from.size(), to);
  }
}

TEST_F(AdaptersOverHttp, ProviderNothingHereAnswersAreNoData) {
  StartMock();
  struct Case {
    const char* variant;
    const char* ask_about;
  };
  const Case cases[] = {
      {"ipinfo_full", "10.0.0.1"},       {"ipinfo_lite", "192.168.1.1"},
      {"ipapi_single", "10.9.9.9"},      {"ipapi_single", "240.0.0.1"},
      {"http_json_ipapi", "172.16.5.4"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.variant) + " " + c.ask_about);
    const Variant& v = FindVariant(c.variant);
    auto adapter = Make(v.spec(*mock_));
    ASSERT_NE(adapter, nullptr);
    Driven d = Drive(*client_, Async(adapter), {Ip("8.8.8.8")}, [&](HttpRequest& r) {
      ReplaceAll(r.url, "8.8.8.8", c.ask_about);
      ReplaceAll(r.body, "8.8.8.8", c.ask_about);
    });
    ASSERT_TRUE(d.completed);
    ASSERT_EQ(d.results.size(), 1u);
    EXPECT_EQ(d.results[0].outcome, Outcome::kNoData) << Describe(d.results[0]);
    EXPECT_EQ(mock_->Snapshot().by_ip[c.ask_about], 1u);
  }
  EXPECT_EQ(mock_->Snapshot().by_ip.count("8.8.8.8"), 0u);
}

// ---------------------------------------------------------------------------------------
// Addresses that must not leave the machine.

const std::vector<std::string> kNotRoutable = {
    "10.1.2.3",    "127.0.0.1", "192.168.0.10", "172.16.0.1",  "100.64.0.1",
    "169.254.1.1", "192.0.2.7", "0.0.0.0",      "224.0.0.1",   "255.255.255.255",
    "::1",         "fe80::1",   "fc00::1",      "2001:db8::1", "::ffff:10.0.0.1"};

class NeverSent : public AdaptersOverHttp, public ::testing::WithParamInterface<std::string> {};

TEST_P(NeverSent, NonRoutableAddressesAreSkippedWithoutARequest) {
  StartMock();
  const Variant& v = FindVariant(GetParam());
  auto adapter = Make(v.spec(*mock_));
  ASSERT_NE(adapter, nullptr);
  // One by one.
  for (const auto& ip : kNotRoutable) {
    SCOPED_TRACE(ip);
    Driven d = Drive(*client_, Async(adapter), {Ip(ip)});
    ASSERT_TRUE(d.completed);
    EXPECT_TRUE(d.requests.empty());
    ASSERT_EQ(d.results.size(), 1u);
    EXPECT_EQ(d.results[0].outcome, Outcome::kSkipped) << Describe(d.results[0]);
  }
  // Mixed with public addresses in one call (batch variants only take several).
  if (v.batch) {
    std::vector<Item> items = {Ip("8.8.8.8")};
    for (const auto& ip : kNotRoutable) items.push_back(Ip(ip));
    items.push_back(Ip("1.1.1.1"));
    Driven d = Drive(*client_, Async(adapter), items);
    ASSERT_TRUE(d.completed);
    EXPECT_EQ(d.requests.size(), 1u);
    ASSERT_EQ(d.results.size(), items.size());
    EXPECT_EQ(d.results.front().outcome, Outcome::kOk) << Describe(d.results.front());
    EXPECT_EQ(d.results.back().outcome, Outcome::kOk) << Describe(d.results.back());
    for (std::size_t i = 1; i + 1 < d.results.size(); ++i) {
      EXPECT_EQ(d.results[i].outcome, Outcome::kSkipped) << items[i].key;
      for (const auto& req : d.requests) {
        EXPECT_EQ(req.body.find("\"" + items[i].key + "\""), std::string::npos) << req.body;
      }
    }
  }
  MockProviderStats s = mock_->Snapshot();
  for (const auto& ip : kNotRoutable) {
    auto canonical = Ip(ip).key;
    EXPECT_EQ(s.by_ip.count(canonical), 0u) << canonical << " reached the provider";
  }
  EXPECT_EQ(s.total_requests, v.batch ? 1u : 0u);
}

INSTANTIATE_TEST_SUITE_P(AllHttpAdapters, NeverSent, ::testing::ValuesIn(VariantNames()),
                         [](const auto& test_param) { return test_param.param; });

// ---------------------------------------------------------------------------------------
// Counters and keep-alive.

class KeepAlive : public AdaptersOverHttp, public ::testing::WithParamInterface<std::string> {};

TEST_P(KeepAlive, SequentialCallsReuseAFewConnections) {
  MockProviderOptions o;
  o.ipapi_requests_per_window = 1000;  // more calls than ip-api's real windows allow
  o.ipapi_batch_requests_per_window = 1000;
  StartMock(o);
  const Variant& v = FindVariant(GetParam());
  auto adapter = Make(v.spec(*mock_));
  ASSERT_NE(adapter, nullptr);
  // 20 sequential calls (of two items for batch variants), each to a different network.
  constexpr int kCalls = 20;
  std::vector<std::string> all_ips;
  for (int i = 1; i <= kCalls; ++i) {
    std::vector<std::string> ips = {"9.9." + std::to_string(i) + ".9"};
    if (v.batch) ips.push_back("80.80." + std::to_string(i) + ".80");
    auto r = LookUp(v, Async(adapter), ips);
    ASSERT_EQ(r.size(), ips.size());
    for (std::size_t j = 0; j < ips.size(); ++j) {
      EXPECT_TRUE(IsAnswer(r[j].outcome)) << ips[j] << ": " << Describe(r[j]);
      all_ips.push_back(ips[j]);
    }
  }
  MockProviderStats s = mock_->Snapshot();
  EXPECT_EQ(s.by_route[v.route], static_cast<uint64_t>(kCalls));
  for (const auto& ip : all_ips) EXPECT_EQ(s.by_ip[ip], 1u) << ip;
  EXPECT_GE(s.total_requests, static_cast<uint64_t>(kCalls));
  EXPECT_LE(s.total_requests, static_cast<uint64_t>(kCalls * v.requests_per_item));
  EXPECT_EQ(s.by_status[200], s.total_requests);
  // Sequential requests on one client: one connection, a few at most.
  EXPECT_LE(s.connections_accepted, 3u) << "for " << s.total_requests << " requests";
  EXPECT_GE(s.connections_accepted, 1u);
}

INSTANTIATE_TEST_SUITE_P(AllHttpAdapters, KeepAlive, ::testing::ValuesIn(VariantNames()),
                         [](const auto& test_param) { return test_param.param; });

}  // namespace
}  // namespace enrichd

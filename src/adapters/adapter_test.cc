// Tests of the adapter base classes (the safety filter, merging) and the registry.
#include "enrichd/adapter.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "adapters/common/test_util.h"

namespace enrichd {
namespace {

using adapters::testing::Drive;
using adapters::testing::Ip;
using adapters::testing::Response;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// One GET per item; each answer's body becomes the item's data.
class EchoCall final : public AdapterCall {
 public:
  explicit EchoCall(std::vector<Item> items) : items_(std::move(items)) {}
  std::optional<HttpRequest> NextRequest() override {
    if (next_ >= items_.size()) return std::nullopt;
    HttpRequest req;
    req.url = "http://127.0.0.1:1/lookup/" + items_[next_].key;
    return req;
  }
  void OnResponse(const HttpResponse& response) override {
    EnrichmentResult r;
    r.outcome = Outcome::kOk;
    r.kind = "asn";
    r.data_json = response.body;
    results_.push_back(r);
    ++next_;
  }
  std::vector<EnrichmentResult> TakeResults() override { return std::move(results_); }

 private:
  std::vector<Item> items_;
  size_t next_ = 0;
  std::vector<EnrichmentResult> results_;
};

class FakeAsync final : public AsyncAdapter {
 public:
  explicit FakeAsync(bool external) : external_(external) {}
  std::string_view name() const override { return "fake"; }
  std::string_view version() const override { return "7"; }
  std::string_view kind() const override { return "asn"; }
  bool external() const override { return external_; }
  std::size_t max_batch() const override { return 100; }

  std::vector<std::string> seen;
  int begin_calls = 0;

 protected:
  std::unique_ptr<AdapterCall> BeginSendable(std::vector<Item> items) override {
    ++begin_calls;
    for (const auto& i : items) seen.push_back(i.key);
    return std::make_unique<EchoCall>(std::move(items));
  }

 private:
  bool external_;
};

class FakeSync final : public SyncAdapter {
 public:
  explicit FakeSync(bool external) : external_(external) {}
  std::string_view name() const override { return "fake-sync"; }
  std::string_view version() const override { return "1"; }
  std::string_view kind() const override { return "geo"; }
  bool external() const override { return external_; }
  int lookups = 0;

 protected:
  EnrichmentResult DoLookup(const Item& item) override {
    ++lookups;
    EnrichmentResult r;
    r.outcome = Outcome::kOk;
    r.data_json = "{\"key\":\"" + item.key + "\"}";
    return r;
  }

 private:
  bool external_;
};

const std::vector<std::string> kNotRoutable = {
    "10.0.0.1",    "100.64.0.1",  "::ffff:192.168.1.1", "fe80::1",    "127.0.0.1",
    "192.0.2.1",   "169.254.1.1", "224.0.0.1",          "::1",        "fc00::1",
    "2001:db8::1", "0.0.0.0",     "255.255.255.255",    "198.18.0.1", "172.16.5.4"};

TEST(AsyncAdapterTest, NonRoutableAddressesNeverReachAnExternalImplementation) {
  FakeAsync adapter(/*external=*/true);
  std::vector<Item> items = {Ip("8.8.8.8")};
  for (const auto& ip : kNotRoutable) items.push_back(Ip(ip));
  items.push_back(Ip("1.1.1.1"));
  auto call = adapter.Begin(items);
  auto run = Drive(*call, {Response(200, "{\"a\":1}"), Response(200, "{\"a\":2}")});
  EXPECT_THAT(adapter.seen, ElementsAre("8.8.8.8", "1.1.1.1"));
  ASSERT_EQ(run.results.size(), items.size());
  EXPECT_EQ(run.results.front().outcome, Outcome::kOk);
  EXPECT_EQ(run.results.front().data_json, "{\"a\":1}");
  EXPECT_EQ(run.results.back().outcome, Outcome::kOk);
  EXPECT_EQ(run.results.back().data_json, "{\"a\":2}");
  for (size_t i = 1; i + 1 < items.size(); ++i) {
    SCOPED_TRACE(items[i].key);
    EXPECT_EQ(run.results[i].outcome, Outcome::kSkipped);
    EXPECT_THAT(run.results[i].reason, StartsWith("not globally routable: "));
    EXPECT_GT(run.results[i].reason.size(), std::string("not globally routable: ").size());
    EXPECT_EQ(run.results[i].provenance.adapter, "fake");
    EXPECT_EQ(run.results[i].provenance.adapter_version, "7");
    EXPECT_EQ(run.results[i].kind, "asn");
  }
  for (const auto& req : run.requests) {
    for (const auto& ip : kNotRoutable)
      EXPECT_THAT(req.url, ::testing::Not(HasSubstr("/lookup/" + ip)));
  }
}

TEST(AsyncAdapterTest, AllSkippedMakesNoRequestAndNeverCallsTheImplementation) {
  FakeAsync adapter(true);
  auto call = adapter.Begin({Ip("10.0.0.1"), Ip("fe80::1")});
  EXPECT_FALSE(call->NextRequest().has_value());
  auto results = call->TakeResults();
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].outcome, Outcome::kSkipped);
  EXPECT_THAT(results[0].reason, HasSubstr("10.0.0.0/8"));
  EXPECT_EQ(results[1].outcome, Outcome::kSkipped);
  EXPECT_EQ(adapter.begin_calls, 0);
  EXPECT_FALSE(call->ProviderPause().has_value());
}

TEST(AsyncAdapterTest, LocalAsyncAdapterMayBeAskedAboutPrivateAddresses) {
  FakeAsync adapter(/*external=*/false);
  auto call = adapter.Begin({Ip("10.0.0.1")});
  auto run = Drive(*call, {Response(200, "{}")});
  EXPECT_THAT(adapter.seen, ElementsAre("10.0.0.1"));
  EXPECT_EQ(run.results.at(0).outcome, Outcome::kOk);
}

TEST(AsyncAdapterTest, LabelsTheAdapterDoesNotAcceptAreSkipped) {
  FakeAsync adapter(true);
  auto domain = Item::Make("domain", "example.com");
  ASSERT_TRUE(domain.ok());
  auto call = adapter.Begin({*domain, Ip("9.9.9.9")});
  auto run = Drive(*call, {Response(200, "{}")});
  ASSERT_EQ(run.results.size(), 2u);
  EXPECT_EQ(run.results[0].outcome, Outcome::kSkipped);
  EXPECT_THAT(run.results[0].reason, HasSubstr("domain"));
  EXPECT_EQ(run.results[1].outcome, Outcome::kOk);
  EXPECT_THAT(adapter.seen, ElementsAre("9.9.9.9"));
}

TEST(AsyncAdapterTest, HandBuiltIpItemWithoutParsedAddressIsStillChecked) {
  FakeAsync adapter(true);
  Item raw;
  raw.label = "ip";
  raw.key = "192.168.0.1";  // no `ip` member: Begin must parse it
  Item bad;
  bad.label = "ip";
  bad.key = "not-an-ip";
  auto call = adapter.Begin({raw, bad});
  EXPECT_FALSE(call->NextRequest().has_value());
  auto results = call->TakeResults();
  EXPECT_EQ(results[0].outcome, Outcome::kSkipped);
  EXPECT_THAT(results[0].reason, StartsWith("not globally routable"));
  EXPECT_EQ(results[1].outcome, Outcome::kSkipped);
  EXPECT_THAT(results[1].reason, StartsWith("not an IP address"));
  EXPECT_EQ(adapter.begin_calls, 0);
}

TEST(SyncAdapterTest, ExternalSyncAdapterSkipsNonRoutable) {
  FakeSync adapter(/*external=*/true);
  auto r = adapter.Lookup(Ip("100.64.0.1"));
  EXPECT_EQ(r.outcome, Outcome::kSkipped);
  EXPECT_THAT(r.reason, StartsWith("not globally routable: "));
  EXPECT_EQ(adapter.lookups, 0);
  EXPECT_EQ(adapter.Lookup(Ip("8.8.8.8")).outcome, Outcome::kOk);
  EXPECT_EQ(adapter.lookups, 1);
}

TEST(SyncAdapterTest, LocalSyncAdapterIsAskedAboutPrivateAddresses) {
  FakeSync adapter(/*external=*/false);
  auto r = adapter.Lookup(Ip("10.0.0.1"));
  EXPECT_EQ(r.outcome, Outcome::kOk);
  EXPECT_EQ(r.data_json, "{\"key\":\"10.0.0.1\"}");
  auto domain = Item::Make("domain", "example.com");
  EXPECT_EQ(adapter.Lookup(*domain).outcome, Outcome::kSkipped);
  EXPECT_EQ(adapter.lookups, 1);
}

TEST(AdapterRegistryTest, BuiltinHasEveryAdapter) {
  EXPECT_THAT(AdapterRegistry::Builtin().Names(),
              ElementsAre("http_json", "ip-api", "ip2asn", "ipinfo", "maxmind", "ripestat"));
}

TEST(AdapterRegistryTest, UnknownAdapterNamesItAndTheKnownOnes) {
  AdapterSpec spec;
  spec.provider_name = "mine";
  spec.adapter = "ipinfoo";
  auto created = AdapterRegistry::Builtin().Create(spec);
  ASSERT_FALSE(created.ok());
  EXPECT_EQ(created.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(created.status().message(), HasSubstr("\"ipinfoo\""));
  EXPECT_THAT(created.status().message(), HasSubstr("ipinfo, maxmind"));
}

TEST(AdapterRegistryTest, FactoryErrorsNameTheProvider) {
  AdapterSpec spec;
  spec.provider_name = "geo-db";
  spec.adapter = "maxmind";
  auto created = AdapterRegistry::Builtin().Create(spec);
  ASSERT_FALSE(created.ok());
  EXPECT_THAT(created.status().message(), HasSubstr("geo-db"));
  EXPECT_THAT(created.status().message(), HasSubstr("\"database\""));
}

TEST(AdapterRegistryTest, CustomRegistration) {
  AdapterRegistry registry;
  registry.Register("fake", [](const AdapterSpec&) -> Result<std::unique_ptr<Adapter>> {
    return std::unique_ptr<Adapter>(std::make_unique<FakeAsync>(true));
  });
  AdapterSpec spec;
  spec.adapter = "fake";
  auto created = registry.Create(spec);
  ASSERT_TRUE(created.ok());
  EXPECT_EQ((*created)->name(), "fake");
}

// The real external adapters: private addresses never become requests.
TEST(BuiltinAdaptersTest, NoExternalAdapterSendsNonRoutableAddresses) {
  std::vector<AdapterSpec> specs(4);
  specs[0].adapter = "ipinfo";
  specs[1].adapter = "ip-api";
  specs[2].adapter = "ripestat";
  specs[3].adapter = "http_json";
  specs[3].kind = "asn";
  specs[3].endpoint = "http://127.0.0.1:9";
  specs[3].options = {{"path", "/asn/{key}"}, {"fields", {{"asn", "/asn"}}}};
  for (auto& spec : specs) {
    SCOPED_TRACE(spec.adapter);
    spec.max_batch = 100;
    auto adapter = adapters::testing::MustCreate(spec);
    ASSERT_NE(adapter, nullptr);
    EXPECT_TRUE(adapter->external());
    auto* async = adapters::testing::AsAsync(adapter);
    std::vector<Item> items;
    for (const auto& ip : kNotRoutable) items.push_back(Ip(ip));
    auto call = async->Begin(items);
    EXPECT_FALSE(call->NextRequest().has_value());
    auto results = call->TakeResults();
    ASSERT_EQ(results.size(), items.size());
    for (const auto& r : results) {
      EXPECT_EQ(r.outcome, Outcome::kSkipped);
      EXPECT_EQ(r.provenance.adapter, spec.adapter);
    }
  }
}

}  // namespace
}  // namespace enrichd

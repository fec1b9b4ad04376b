// maxmind adapter against MaxMind's published test databases (ENRICHD_TESTDATA_DIR),
// checked record by record against the JSON sources those databases were built from.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

#include "adapters/common/json_util.h"
#include "adapters/common/test_util.h"

namespace enrichd::adapters {
namespace {

using ::testing::AnyOf;
using ::testing::HasSubstr;
using testing::Ip;

std::string DbPath(const std::string& name) {
  return std::string(ENRICHD_TESTDATA_DIR) + "/maxmind/" + name;
}

AdapterSpec Spec(const std::string& db, std::string kind = "") {
  AdapterSpec spec;
  spec.provider_name = "geolite";
  spec.adapter = "maxmind";
  spec.kind = std::move(kind);
  spec.options = {{"database", DbPath(db)}};
  return spec;
}

SyncAdapter& Sync(const std::unique_ptr<Adapter>& a) { return dynamic_cast<SyncAdapter&>(*a); }

Json Data(const EnrichmentResult& r) { return *ParseJson(r.data_json); }

// (network, record) pairs from one of MaxMind's JSON source files.
std::vector<std::pair<std::string, Json>> SourceRecords(const std::string& file) {
  auto doc = ParseJson(testing::ReadFile(DbPath(file)));
  EXPECT_TRUE(doc.has_value() && doc->is_array());
  std::vector<std::pair<std::string, Json>> out;
  if (!doc) return out;
  for (const auto& entry : *doc) {
    for (const auto& [network, record] : entry.items()) out.emplace_back(network, record);
  }
  return out;
}

// Whether CIDR `outer` contains CIDR `inner` (both canonical "addr/len", same family).
bool PrefixContains(const std::string& outer, const std::string& inner) {
  const size_t so = outer.find('/');
  const size_t si = inner.find('/');
  if (so == std::string::npos || si == std::string::npos) return false;
  auto a = IpAddress::Parse(outer.substr(0, so));
  auto b = IpAddress::Parse(inner.substr(0, si));
  if (!a.ok() || !b.ok() || a->family() != b->family()) return false;
  const int len_a = std::stoi(outer.substr(so + 1));
  const int len_b = std::stoi(inner.substr(si + 1));
  if (len_a > len_b) return false;
  for (int bit = 0; bit < len_a; ++bit) {
    const int ba = (a->bytes()[bit / 8] >> (7 - bit % 8)) & 1;
    const int bb = (b->bytes()[bit / 8] >> (7 - bit % 8)) & 1;
    if (ba != bb) return false;
  }
  return true;
}

// "1.0.0.0/24" -> the first address and the canonical network text.
std::pair<Item, std::string> NetworkStart(const std::string& network) {
  const size_t slash = network.find('/');
  Item item = Ip(network.substr(0, slash));
  return {item, item.key + network.substr(slash)};
}

TEST(MaxMindTest, AsnDatabaseMatchesItsSourceRecords) {
  auto adapter = testing::MustCreate(Spec("GeoLite2-ASN-Test.mmdb"));
  ASSERT_NE(adapter, nullptr);
  EXPECT_EQ(adapter->kind(), "asn");
  EXPECT_FALSE(adapter->external());
  const auto records = SourceRecords("GeoLite2-ASN-Test.json");
  ASSERT_GT(records.size(), 100u);
  size_t checked = 0;
  for (const auto& [network, record] : records) {
    SCOPED_TRACE(network);
    auto [item, canonical] = NetworkStart(network);
    auto r = Sync(adapter).Lookup(item);
    ASSERT_EQ(r.outcome, Outcome::kOk) << r.reason;
    const Json d = Data(r);
    EXPECT_EQ(d["asn"], record["autonomous_system_number"]);
    if (record.contains("autonomous_system_organization")) {
      EXPECT_EQ(d["org"], record["autonomous_system_organization"]);
    } else {
      EXPECT_FALSE(d.contains("org"));
    }
    // The database writer merges neighbouring networks with identical records, so the
    // matched network is the source network or a supernet of it.
    EXPECT_TRUE(PrefixContains(d["prefix"].get<std::string>(), canonical)) << d["prefix"];
    EXPECT_EQ(r.provenance.endpoint, DbPath("GeoLite2-ASN-Test.mmdb"));
    EXPECT_EQ(r.provenance.adapter, "maxmind");
    EXPECT_EQ(r.provenance.response_digest.size(), 32u);
    ++checked;
  }
  EXPECT_EQ(checked, records.size());
}

TEST(MaxMindTest, CityDatabaseMatchesItsSourceRecords) {
  auto adapter = testing::MustCreate(Spec("GeoLite2-City-Test.mmdb"));
  ASSERT_NE(adapter, nullptr);
  EXPECT_EQ(adapter->kind(), "geo");
  const auto records = SourceRecords("GeoLite2-City-Test.json");
  ASSERT_GT(records.size(), 100u);
  int with_city = 0;
  for (const auto& [network, record] : records) {
    SCOPED_TRACE(network);
    auto [item, canonical] = NetworkStart(network);
    auto r = Sync(adapter).Lookup(item);
    const Json* country = Member(record, "country");
    const Json* location = Member(record, "location");
    if (country == nullptr && location == nullptr && !record.contains("city")) {
      // Nothing geographic in this record (e.g. registered_country only).
      EXPECT_EQ(r.outcome, Outcome::kNoData);
      continue;
    }
    ASSERT_EQ(r.outcome, Outcome::kOk) << r.reason;
    const Json d = Data(r);
    EXPECT_TRUE(PrefixContains(d["extra"]["network"].get<std::string>(), canonical))
        << d["extra"]["network"];
    if (country != nullptr) {
      EXPECT_EQ(d["country_code"], (*country)["iso_code"]);
      EXPECT_EQ(d["country"], (*country)["names"]["en"]);
    }
    if (record.contains("city")) {
      EXPECT_EQ(d["city"], record["city"]["names"]["en"]);
      ++with_city;
    }
    if (location != nullptr && location->contains("latitude")) {
      EXPECT_DOUBLE_EQ(d["lat"].get<double>(), (*location)["latitude"].get<double>());
      EXPECT_DOUBLE_EQ(d["lon"].get<double>(), (*location)["longitude"].get<double>());
    }
    if (location != nullptr && location->contains("time_zone")) {
      EXPECT_EQ(d["timezone"], (*location)["time_zone"]);
    }
    if (location != nullptr && location->contains("accuracy_radius")) {
      EXPECT_EQ(d["accuracy_km"], (*location)["accuracy_radius"]);
    }
    if (record.contains("postal")) {
      EXPECT_EQ(d["postal"], record["postal"]["code"]);
    }
    if (record.contains("subdivisions")) {
      EXPECT_EQ(d["region"], record["subdivisions"][0]["names"]["en"]);
    }
  }
  EXPECT_GT(with_city, 0);
}

TEST(MaxMindTest, KnownCityRecord) {
  auto adapter = testing::MustCreate(Spec("GeoLite2-City-Test.mmdb"));
  auto r = Sync(adapter).Lookup(Ip("2.125.160.217"));
  ASSERT_EQ(r.outcome, Outcome::kOk);
  const Json d = Data(r);
  EXPECT_EQ(d["country_code"], "GB");
  EXPECT_EQ(d["country"], "United Kingdom");
  EXPECT_EQ(d["region"], "England");
  EXPECT_EQ(d["city"], "Boxford");
  EXPECT_DOUBLE_EQ(d["lat"].get<double>(), 51.75);
  EXPECT_DOUBLE_EQ(d["lon"].get<double>(), -1.25);
  EXPECT_EQ(d["postal"], "OX1");
  EXPECT_EQ(d["timezone"], "Europe/London");
  EXPECT_EQ(d["accuracy_km"], 100);
  EXPECT_EQ(d["extra"]["network"], "2.125.160.216/29");
  EXPECT_EQ(d["extra"]["continent_code"], "EU");
  EXPECT_EQ(d["extra"]["registered_country_code"], "FR");
  EXPECT_EQ(d["extra"]["region_code"], "ENG");
  // IPv4-mapped IPv6 gives the same answer.
  EXPECT_EQ(Sync(adapter).Lookup(Ip("::ffff:2.125.160.217")).data_json, r.data_json);
}

TEST(MaxMindTest, MissIsNoDataWithTheNetwork) {
  auto adapter = testing::MustCreate(Spec("GeoLite2-ASN-Test.mmdb"));
  // Private addresses are looked up (a local database leaks nothing), and miss.
  auto r = Sync(adapter).Lookup(Ip("10.0.0.1"));
  EXPECT_EQ(r.outcome, Outcome::kNoData);
  EXPECT_EQ(r.reason, "not in database");
  const Json d = Data(r);
  ASSERT_TRUE(d.contains("network"));
  EXPECT_THAT(d["network"].get<std::string>(), HasSubstr("/"));
  EXPECT_EQ(Sync(adapter).Lookup(Ip("2001:db8::1")).outcome, Outcome::kNoData);
}

TEST(MaxMindTest, CountryAndIspDatabases) {
  auto country = testing::MustCreate(Spec("GeoLite2-Country-Test.mmdb"));
  ASSERT_NE(country, nullptr);
  EXPECT_EQ(country->kind(), "geo");
  auto r = Sync(country).Lookup(Ip("2.125.160.216"));
  ASSERT_EQ(r.outcome, Outcome::kOk);
  EXPECT_EQ(Data(r)["country_code"], "GB");
  EXPECT_FALSE(Data(r).contains("city"));

  auto isp = testing::MustCreate(Spec("GeoIP2-ISP-Test.mmdb"));
  ASSERT_NE(isp, nullptr);
  EXPECT_EQ(isp->kind(), "asn");
  r = Sync(isp).Lookup(Ip("1.128.0.0"));
  ASSERT_EQ(r.outcome, Outcome::kOk) << r.reason;
  EXPECT_EQ(Data(r)["asn"], 1221);
  EXPECT_EQ(Data(r)["org"], "Telstra Pty Ltd");
  EXPECT_EQ(Data(r)["extra"]["isp"], "Telstra Internet");
}

TEST(MaxMindTest, KindMustAgreeWithTheDatabase) {
  auto created = AdapterRegistry::Builtin().Create(Spec("GeoLite2-ASN-Test.mmdb", "geo"));
  ASSERT_FALSE(created.ok());
  EXPECT_THAT(created.status().message(), HasSubstr("GeoLite2-ASN"));
  EXPECT_TRUE(AdapterRegistry::Builtin().Create(Spec("GeoLite2-ASN-Test.mmdb", "asn")).ok());
}

TEST(MaxMindTest, MissingFileIsAClearError) {
  auto created = AdapterRegistry::Builtin().Create(Spec("nope.mmdb"));
  ASSERT_FALSE(created.ok());
  EXPECT_THAT(created.status().message(), HasSubstr("nope.mmdb"));
}

// Every deliberately corrupt database fails clearly: at open, or as a permanent outcome
// for the lookups that meet the damage -- never a crash, never a made-up answer.
TEST(MaxMindTest, CorruptDatabasesGiveClearErrors) {
  struct Case {
    const char* file;
    const char* kind;  // the Test-type databases need a kind to be opened at all
  };
  for (const Case& c : {Case{"GeoIP2-City-Test-Broken-Double-Format.mmdb", ""},
                        Case{"GeoIP2-City-Test-Invalid-Node-Count.mmdb", ""},
                        Case{"MaxMind-DB-test-broken-pointers-24.mmdb", "geo"},
                        Case{"MaxMind-DB-test-broken-search-tree-24.mmdb", "geo"}}) {
    SCOPED_TRACE(c.file);
    auto created = AdapterRegistry::Builtin().Create(Spec(c.file, c.kind));
    if (!created.ok()) {
      EXPECT_THAT(created.status().message(), HasSubstr(c.file));
      EXPECT_THAT(created.status().message(), HasSubstr("MaxMind"));
      continue;
    }
    auto& adapter = Sync(*created);
    int errors = 0;
    std::vector<std::string> probes;
    for (int i = 0; i < 256; ++i) {
      const std::string n = std::to_string(i);
      probes.push_back("1.1.1." + n);
      probes.push_back(n + ".0.0.0");
      probes.push_back(n + ".1.1.1");
      probes.push_back(n + ".255.255.255");
    }
    for (const auto& [network, record] : SourceRecords("GeoLite2-City-Test.json")) {
      probes.push_back(NetworkStart(network).first.key);
    }
    for (const auto& ip : probes) {
      auto r = adapter.Lookup(Ip(ip));
      EXPECT_THAT(r.outcome, AnyOf(Outcome::kOk, Outcome::kNoData, Outcome::kPermanent));
      if (r.outcome == Outcome::kPermanent) {
        ++errors;
        EXPECT_THAT(r.reason, HasSubstr("corrupt database"));
      }
    }
    EXPECT_GT(errors, 0) << "a corrupt database answered every lookup without an error";
  }
}

TEST(MaxMindTest, TestTypeDatabaseNeedsAKind) {
  auto created = AdapterRegistry::Builtin().Create(Spec("MaxMind-DB-test-broken-pointers-24.mmdb"));
  ASSERT_FALSE(created.ok());
  EXPECT_THAT(created.status().message(), HasSubstr("\"Test\""));
}

TEST(MaxMindTest, ConcurrentLookupsAgree) {
  auto adapter = testing::MustCreate(Spec("GeoLite2-ASN-Test.mmdb"));
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) {
        auto r = Sync(adapter).Lookup(Ip(i % 2 ? "1.128.0.1" : "1.0.0.1"));
        if (r.outcome != Outcome::kOk || Data(r)["asn"] != (i % 2 ? 1221 : 15169)) ++wrong;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
}

}  // namespace
}  // namespace enrichd::adapters

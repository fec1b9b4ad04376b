// ip2asn adapter against small iptoasn.com-format TSV fixtures in testdata/.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

#include "adapters/common/json_util.h"
#include "adapters/common/sha256.h"
#include "adapters/common/test_util.h"

namespace enrichd::adapters {
namespace {

using ::testing::HasSubstr;
using testing::Ip;
using testing::TestdataPath;

std::unique_ptr<Adapter> Open(const std::string& file) {
  AdapterSpec spec;
  spec.provider_name = "iptoasn";
  spec.adapter = "ip2asn";
  spec.options = {{"file", TestdataPath("ip2asn", file)}};
  return testing::MustCreate(spec);
}

SyncAdapter& Sync(const std::unique_ptr<Adapter>& a) { return dynamic_cast<SyncAdapter&>(*a); }

Json Data(const EnrichmentResult& r) { return *ParseJson(r.data_json); }

TEST(Ip2AsnTest, V4Lookups) {
  auto adapter = Open("ip2asn-v4.tsv");
  ASSERT_NE(adapter, nullptr);
  EXPECT_EQ(adapter->kind(), "asn");
  EXPECT_FALSE(adapter->external());
  auto r = Sync(adapter).Lookup(Ip("1.0.0.5"));
  ASSERT_EQ(r.outcome, Outcome::kOk) << r.reason;
  Json d = Data(r);
  EXPECT_EQ(d["asn"], 13335);
  EXPECT_EQ(d["org"], "CLOUDFLARENET");
  EXPECT_EQ(d["prefix"], "1.0.0.0/24");
  EXPECT_EQ(d["country_code"], "US");
  EXPECT_EQ(d["extra"]["range_start"], "1.0.0.0");
  EXPECT_EQ(d["extra"]["range_end"], "1.0.0.255");
  EXPECT_EQ(r.provenance.adapter, "ip2asn");
  EXPECT_EQ(r.provenance.endpoint, TestdataPath("ip2asn", "ip2asn-v4.tsv"));
  EXPECT_EQ(r.provenance.http_status, 0);
  EXPECT_EQ(r.provenance.response_digest,
            ResponseDigest("1.0.0.0\t1.0.0.255\t13335\tUS\tCLOUDFLARENET"));

  // Range edges are inclusive.
  EXPECT_EQ(Data(Sync(adapter).Lookup(Ip("1.0.0.0")))["asn"], 13335);
  EXPECT_EQ(Data(Sync(adapter).Lookup(Ip("1.0.0.255")))["asn"], 13335);
  d = Data(Sync(adapter).Lookup(Ip("1.0.7.255")));
  EXPECT_EQ(d["asn"], 38803);
  EXPECT_EQ(d["prefix"], "1.0.4.0/22");
  // A range that is not one CIDR block has no prefix.
  d = Data(Sync(adapter).Lookup(Ip("8.8.9.10")));
  EXPECT_EQ(d["asn"], 15169);
  EXPECT_FALSE(d.contains("prefix"));
}

TEST(Ip2AsnTest, NotRoutedAndGapsAreNoData) {
  auto adapter = Open("ip2asn-v4.tsv");
  auto r = Sync(adapter).Lookup(Ip("1.0.2.1"));
  EXPECT_EQ(r.outcome, Outcome::kNoData);
  EXPECT_EQ(r.reason, "not routed");
  for (const char* ip : {"8.8.9.11", "0.0.0.1", "255.255.255.254", "9.9.9.9"}) {
    SCOPED_TRACE(ip);
    auto miss = Sync(adapter).Lookup(Ip(ip));
    EXPECT_EQ(miss.outcome, Outcome::kNoData);
  }
  // IPv6 against a v4-only file: nothing to find.
  EXPECT_EQ(Sync(adapter).Lookup(Ip("2001:4860::1")).outcome, Outcome::kNoData);
}

TEST(Ip2AsnTest, LocalAdapterIsAskedAboutPrivateAddresses) {
  auto adapter = Open("ip2asn-v4.tsv");
  auto r = Sync(adapter).Lookup(Ip("10.0.0.1"));
  EXPECT_EQ(r.outcome, Outcome::kNoData);  // looked up (not skipped), just not in the file
  EXPECT_EQ(r.reason, "not in any range of the file");
}

TEST(Ip2AsnTest, V6AndCombinedFiles) {
  auto v6 = Open("ip2asn-v6.tsv");
  auto d = Data(Sync(v6).Lookup(Ip("2001:4860:4860::8888")));
  EXPECT_EQ(d["asn"], 15169);
  EXPECT_EQ(d["prefix"], "2001:4860::/32");
  EXPECT_EQ(Sync(v6).Lookup(Ip("2a00:1::1")).outcome, Outcome::kNoData);
  EXPECT_EQ(Sync(v6).Lookup(Ip("1.0.0.1")).outcome, Outcome::kNoData);

  auto combined = Open("ip2asn-combined.tsv");
  EXPECT_EQ(Data(Sync(combined).Lookup(Ip("2606:4700::1111")))["asn"], 13335);
  EXPECT_EQ(Data(Sync(combined).Lookup(Ip("8.8.8.8")))["asn"], 15169);
  // IPv4-mapped IPv6 is looked up as IPv4.
  EXPECT_EQ(Data(Sync(combined).Lookup(Ip("::ffff:1.0.0.1")))["asn"], 13335);
}

TEST(Ip2AsnTest, MalformedFilesFailNamingFileAndLine) {
  struct Case {
    const char* file;
    const char* where;
  };
  for (const Case& c :
       {Case{"bad-columns.tsv", "bad-columns.tsv:2"}, Case{"bad-address.tsv", "bad-address.tsv:3"},
        Case{"overlap.tsv", "overlap.tsv:2"}, Case{"reversed.tsv", "reversed.tsv:1"},
        Case{"bad-asn.tsv", "bad-asn.tsv:1"}}) {
    SCOPED_TRACE(c.file);
    AdapterSpec spec;
    spec.adapter = "ip2asn";
    spec.options = {{"file", TestdataPath("ip2asn", c.file)}};
    auto created = AdapterRegistry::Builtin().Create(spec);
    ASSERT_FALSE(created.ok());
    EXPECT_EQ(created.status().code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(created.status().message(), HasSubstr(c.where));
  }
  AdapterSpec spec;
  spec.adapter = "ip2asn";
  spec.options = {{"file", TestdataPath("ip2asn", "no-such-file.tsv")}};
  auto created = AdapterRegistry::Builtin().Create(spec);
  ASSERT_FALSE(created.ok());
  EXPECT_THAT(created.status().message(), HasSubstr("no-such-file.tsv"));
  spec.options = Json::object();
  EXPECT_THAT(AdapterRegistry::Builtin().Create(spec).status().message(), HasSubstr("\"file\""));
}

TEST(Ip2AsnTest, ConcurrentLookupsAgree) {
  auto adapter = Open("ip2asn-combined.tsv");
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) {
        auto r = Sync(adapter).Lookup(Ip(i % 2 ? "8.8.8.8" : "2606:4700::1"));
        const int expected = i % 2 ? 15169 : 13335;
        if (r.outcome != Outcome::kOk || Data(r)["asn"] != expected) ++wrong;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
}

}  // namespace
}  // namespace enrichd::adapters

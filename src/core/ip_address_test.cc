#include "enrichd/ip_address.h"

#include <gtest/gtest.h>

namespace enrichd {
namespace {

std::string Canon(std::string_view text) {
  auto ip = IpAddress::Parse(text);
  return ip.ok() ? ip->ToString() : "ERROR: " + ip.status().message();
}

TEST(IpAddressTest, ParsesAndPrintsIpv4) {
  EXPECT_EQ(Canon("8.8.8.8"), "8.8.8.8");
  EXPECT_EQ(Canon("0.0.0.0"), "0.0.0.0");
  EXPECT_EQ(Canon("255.255.255.255"), "255.255.255.255");
  auto ip = IpAddress::Parse("1.2.3.4");
  ASSERT_TRUE(ip.ok());
  EXPECT_TRUE(ip->is_v4());
  EXPECT_EQ(ip->v4(), 0x01020304u);
}

TEST(IpAddressTest, RejectsAmbiguousOrMalformedIpv4) {
  for (const char* bad : {"01.2.3.4", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.-4", " 1.2.3.4",
                          "1.2.3.4 ", "1..2.3", "1.2.3.4/24", "", "abc", "0x1.2.3.4", "1.2.3.04"}) {
    EXPECT_FALSE(IpAddress::Parse(bad).ok()) << bad;
  }
  EXPECT_NE(IpAddress::Parse("01.2.3.4").status().message().find("leading zero"),
            std::string::npos);
}

TEST(IpAddressTest, CanonicalisesIpv6PerRfc5952) {
  EXPECT_EQ(Canon("2001:DB8::1"), "2001:db8::1");
  EXPECT_EQ(Canon("2001:0db8:0000:0000:0000:0000:0000:0001"), "2001:db8::1");
  EXPECT_EQ(Canon("2001:db8:0:0:1:0:0:1"), "2001:db8::1:0:0:1");     // first of equal runs
  EXPECT_EQ(Canon("2001:db8:0:1:1:1:1:1"), "2001:db8:0:1:1:1:1:1");  // single zero kept
  EXPECT_EQ(Canon("2001:0:0:1:0:0:0:1"), "2001:0:0:1::1");           // longest run wins
  EXPECT_EQ(Canon("::"), "::");
  EXPECT_EQ(Canon("::1"), "::1");
  EXPECT_EQ(Canon("1::"), "1::");
  EXPECT_EQ(Canon("::ffff:192.0.2.1"), "::ffff:192.0.2.1");
  EXPECT_EQ(Canon("::FFFF:c000:0201"), "::ffff:192.0.2.1");
  EXPECT_EQ(Canon("2606:4700:4700::1111"), "2606:4700:4700::1111");
}

TEST(IpAddressTest, RejectsMalformedIpv6) {
  for (const char* bad :
       {":::", "1:::2", "1::2::3", "12345::", "1:2:3:4:5:6:7:8:9", ":1::", "1::2:", "fe80::1%eth0",
        "g::1", "1:2:3:4:5:6:7", "::1.2.3", "1:2:3:4:5:6:7:1.2.3.4", "::01.2.3.4"}) {
    EXPECT_FALSE(IpAddress::Parse(bad).ok()) << bad;
  }
}

bool Global(std::string_view text, std::string* reason = nullptr) {
  auto ip = IpAddress::Parse(text);
  EXPECT_TRUE(ip.ok()) << text;
  return ip->IsGloballyRoutable(reason);
}

TEST(IpAddressTest, SpecialPurposeIpv4IsNotGlobal) {
  for (const char* a : {"0.1.2.3", "10.0.0.1", "100.64.0.1", "100.127.255.255", "127.0.0.1",
                        "169.254.1.1", "172.16.0.1", "172.31.255.255", "192.0.0.8", "192.0.2.1",
                        "192.168.1.1", "198.18.0.1", "198.19.255.255", "198.51.100.7",
                        "203.0.113.9", "224.0.0.1", "239.1.1.1", "240.0.0.1", "255.255.255.255"}) {
    EXPECT_FALSE(Global(a)) << a;
  }
  for (const char* a : {"8.8.8.8", "1.1.1.1", "100.63.255.255", "100.128.0.0", "172.32.0.1",
                        "192.0.0.9", "198.20.0.1", "223.255.255.255", "11.0.0.1"}) {
    EXPECT_TRUE(Global(a)) << a;
  }
  std::string reason;
  EXPECT_FALSE(Global("100.64.1.2", &reason));
  EXPECT_NE(reason.find("CGNAT"), std::string::npos) << reason;
}

TEST(IpAddressTest, SpecialPurposeIpv6IsNotGlobal) {
  for (const char* a : {"::", "::1", "::ffff:10.0.0.1", "::ffff:127.0.0.1", "fe80::1", "fc00::1",
                        "fd12:3456::1", "ff02::1", "2001:db8::1", "2001:2::1", "100::1",
                        "64:ff9b:1::1", "3fff::1", "5f00::1", "::1.2.3.4"}) {
    EXPECT_FALSE(Global(a)) << a;
  }
  for (const char* a : {"2001:4860:4860::8888", "2606:4700:4700::1111", "::ffff:8.8.8.8",
                        "64:ff9b::808:808", "2001:4:112::1", "2001:1::1"}) {
    EXPECT_TRUE(Global(a)) << a;
  }
  std::string reason;
  EXPECT_FALSE(Global("::ffff:192.168.0.1", &reason));
  EXPECT_NE(reason.find("IPv4-mapped"), std::string::npos) << reason;
}

}  // namespace
}  // namespace enrichd

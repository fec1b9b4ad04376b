// The JSON text writer against nlohmann::json::dump(): the same bytes for the same value.
#include "adapters/common/json_writer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <string>

namespace enrichd::adapters {
namespace {

using Json = nlohmann::json;

template <typename T>
std::string NumberText(T v) {
  std::string out;
  AppendJsonNumber(out, v);
  return out;
}

TEST(JsonWriterTest, NumbersAreWrittenAsNlohmannWritesThem) {
  for (const int64_t v :
       {int64_t{0}, int64_t{-1}, int64_t{15169}, int64_t{4294967295},
        std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()}) {
    EXPECT_EQ(NumberText(v), Json(v).dump()) << v;
  }
  for (const double v :
       {0.0, -0.0, 1.0, -122.0775, 37.4056, 50.1109, 8.68213, 1e-4, 9.9e-5, 123456789012345.6, 1e15,
        1e300, 5e-324, 0.1 + 0.2, std::numeric_limits<double>::infinity(), std::nan("")}) {
    EXPECT_EQ(NumberText(v), Json(v).dump()) << v;
  }
  // nlohmann's Grisu2 sometimes takes 17 digits where fewer read back the same.
  EXPECT_EQ(NumberText(-158.73536), "-158.73536");
  EXPECT_EQ(Json(-158.73536).dump(), "-158.73535999999999");
}

// Doubles: the text reads back as the same double and is never longer than nlohmann's.
TEST(JsonWriterTest, DoublesReadBackExactlyAndAreNeverLongerThanNlohmanns) {
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> coordinate(-180, 180);
  int same = 0;
  int tried = 0;
  for (int i = 0; i < 40000; ++i) {
    double v = 0;
    if (i % 2 == 0) {  // coordinates as providers write them, up to 6 decimals
      const double scale = std::pow(10.0, static_cast<int>(rng() % 7));
      v = std::round(coordinate(rng) * scale) / scale;
    } else {  // any double at all
      const uint64_t bits = rng();
      std::memcpy(&v, &bits, sizeof v);
      if (!std::isfinite(v)) continue;
    }
    ++tried;
    const std::string ours = NumberText(v);
    const std::string theirs = Json(v).dump();
    const Json back = Json::parse(ours);
    ASSERT_TRUE(back.is_number_float()) << ours;
    ASSERT_EQ(back.get<double>(), v) << ours;
    ASSERT_LE(ours.size(), theirs.size()) << ours << " vs " << theirs;
    if (ours == theirs) ++same;
  }
  // Nearly always byte for byte the same (at equal length the two may round the last
  // digit differently; both read back exactly).
  EXPECT_GT(same, tried * 9 / 10);
}

TEST(JsonWriterTest, ObjectsComeOutInKeyOrderWithTheLastValueOfAKey) {
  std::mt19937 rng(3);
  const std::vector<std::string> keys = {
      "asn", "org", "country_code", "lat", "extra", "Z",    "a\"b", "\xC3\xA9t\xC3\xA9",
      "lon", "",    "a b",          "a",   "aZ",    "a\\z", "a\tb"};
  for (int round = 0; round < 2000; ++round) {
    JsonObjectWriter writer;
    JsonObjectWriter nested;
    Json want = Json::object();
    Json want_nested = Json::object();
    const int n = static_cast<int>(rng() % 8);
    for (int i = 0; i < n; ++i) {
      const std::string& key = keys[rng() % keys.size()];
      switch (rng() % 4) {
        case 0: {
          const std::string v = "v" + std::to_string(i);
          writer.String(key, v);
          want[key] = v;
          break;
        }
        case 1: {
          const int64_t v = static_cast<int64_t>(rng()) - 100000;
          writer.Int(key, v);
          want[key] = v;
          break;
        }
        case 2: {
          const double d = static_cast<double>(rng() % 100000) / 1000.0;
          writer.Double(key, d);
          want[key] = d;
          break;
        }
        default:
          nested.String(key, "x");
          want_nested[key] = "x";
          writer.Object("extra", nested);
          want["extra"] = want_nested;
      }
    }
    ASSERT_EQ(writer.Text(), want.dump());
  }
  // Every kind of member, keys added out of order, a key replaced.
  JsonObjectWriter w;
  w.String("org", "Google LLC").Int("asn", 15169).Double("lat", 37.386);
  w.String("skipped", std::optional<std::string>());
  JsonObjectWriter extra;
  extra.String("hostname", "dns.google").Int("asn", 1);
  w.Object("extra", extra).String("org", "replaced");
  Json j = {{"org", "replaced"},
            {"asn", 15169},
            {"lat", 37.386},
            {"extra", {{"hostname", "dns.google"}, {"asn", 1}}}};
  EXPECT_EQ(w.Text(), j.dump());
  EXPECT_EQ(JsonObjectWriter().Text(), "{}");
}

}  // namespace
}  // namespace enrichd::adapters

// JsonDoc against nlohmann::json: the same texts accepted, the same values read.
#include "adapters/common/json_reader.h"

#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

namespace enrichd::adapters {
namespace {

using Json = nlohmann::json;

bool NlohmannAccepts(const std::string& text) {
  return !Json::parse(text, nullptr, /*allow_exceptions=*/false).is_discarded();
}

// Whether `v` reads as the same value as `j`, recursively.
::testing::AssertionResult SameValue(const JsonValue& v, const Json& j, const std::string& at) {
  auto fail = [&](const std::string& what) {
    return ::testing::AssertionFailure() << at << ": " << what;
  };
  switch (j.type()) {
    case Json::value_t::null:
      if (v.type() != JsonValue::Type::kNull) return fail("not null");
      break;
    case Json::value_t::boolean:
      if (!v.is_boolean() || v.is_true() != j.get<bool>()) return fail("boolean differs");
      break;
    case Json::value_t::string:
      if (!v.is_string() || v.String() != j.get<std::string>()) return fail("string differs");
      break;
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
    case Json::value_t::number_float: {
      const auto n = v.Number();
      const double want = j.get<double>();
      if (!n || !(*n == want || (std::isnan(*n) && std::isnan(want))))
        return fail("number differs");
      if (j.is_number_integer() && !j.is_number_unsigned() && v.Integer() != j.get<int64_t>())
        return fail("integer differs");
      if (j.is_number_float() && v.Integer().has_value()) return fail("float read as integer");
      break;
    }
    case Json::value_t::array: {
      if (!v.is_array() || v.size() != j.size()) return fail("array differs");
      const auto elements = v.Elements();
      for (size_t i = 0; i < j.size(); ++i) {
        auto r = SameValue(elements[i], j[i], at + "/" + std::to_string(i));
        if (!r) return r;
      }
      break;
    }
    case Json::value_t::object: {
      if (!v.is_object() || v.size() < j.size()) return fail("object differs");
      for (const auto& [key, value] : j.items()) {
        const auto member = v.Member(key);
        if (!member) return fail("no member " + key);
        auto r = SameValue(*member, value, at + "/" + key);
        if (!r) return r;
      }
      break;
    }
    default:
      return fail("unexpected nlohmann type");
  }
  return ::testing::AssertionSuccess();
}

const std::vector<std::string> kAnswers = {
    R"({"ip":"8.8.8.8","hostname":"dns.google","city":"Mountain View","region":"California",)"
    R"("country":"US","loc":"37.4056,-122.0775","org":"AS15169 Google LLC","postal":"94043",)"
    R"("timezone":"America/Los_Angeles","anycast":true})",
    R"({"status":"success","country":"Germany","countryCode":"DE","regionName":"Hesse",)"
    R"("city":"Frankfurt am Main","lat":50.1109,"lon":8.68213,"isp":"Cloudflare, Inc.",)"
    R"("org":"","as":"AS13335 Cloudflare, Inc.","query":"1.1.1.1"})",
    R"([{"status":"fail","message":"private range","query":"10.0.0.1"},)"
    R"({"status":"success","lat":-1.5e3,"lon":0,"as":"AS1","query":"1.0.0.1"}])",
    R"({"asn":{"asn":"AS15169","name":"Google LLC","route":"8.8.8.0/24"},"bogon":false,)"
    R"("n":null,"e":"\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00","u":"Z\u00fcrich","x":[1,-0,2.5E+2,[]]})",
};

TEST(JsonReaderTest, ReadsAnswersAsNlohmannDoes) {
  for (const std::string& text : kAnswers) {
    const auto doc = JsonDoc::Parse(text);
    ASSERT_TRUE(doc.has_value()) << text;
    EXPECT_TRUE(SameValue(doc->root(), Json::parse(text), "")) << text;
  }
  const auto doc = JsonDoc::Parse(kAnswers[3]);
  ASSERT_TRUE(doc.has_value());
  const auto e = doc->root().Member("e");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->String(), "\"\\/\b\f\n\r\t\xC3\xA9\xF0\x9F\x98\x80");
  EXPECT_FALSE(doc->root().Member("missing").has_value());
  EXPECT_FALSE(doc->root().Member("asn")->Member("nope").has_value());
  EXPECT_EQ(doc->root().Member("asn")->Member("route")->String(), "8.8.8.0/24");
}

TEST(JsonReaderTest, DuplicateKeysKeepTheLastValueAndEscapedKeysMatch) {
  const auto doc = JsonDoc::Parse(R"({"a":1,"a":2,"c\u0061t":"x"})");
  ASSERT_TRUE(doc.has_value());
  EXPECT_EQ(doc->root().Member("a")->Integer(), 2);
  EXPECT_EQ(doc->root().Member("cat")->String(), "x");
}

TEST(JsonReaderTest, NumbersAsNlohmannReadsThem) {
  const std::string text =
      R"([9223372036854775807,9223372036854775808,-9223372036854775809,1e-400,4294967295,0.5,)"
      R"(-0])";
  const auto doc = JsonDoc::Parse(text);
  ASSERT_TRUE(doc.has_value());
  const auto n = doc->root().Elements();
  ASSERT_EQ(n.size(), 7u);
  EXPECT_EQ(n[0].Integer(), INT64_MAX);
  EXPECT_FALSE(n[1].Integer().has_value());  // beyond int64: unsigned / float in nlohmann
  EXPECT_FALSE(n[2].Integer().has_value());
  EXPECT_EQ(*n[3].Number(), 0.0);  // too small: 0
  EXPECT_EQ(n[4].Integer(), 4294967295);
  EXPECT_FALSE(n[5].Integer().has_value());
  EXPECT_EQ(n[6].Integer(), 0);
  EXPECT_TRUE(SameValue(doc->root(), Json::parse(text), ""));
  // Too large for a double: refused, as nlohmann refuses it.
  for (const std::string& big :
       std::vector<std::string>{"1e400", "-1e400", "[1.5E+999]", std::string(400, '9')}) {
    EXPECT_FALSE(JsonDoc::Parse(big).has_value()) << big;
    EXPECT_EQ(JsonDoc::Parse(big).has_value(), NlohmannAccepts(big)) << big;
  }
}

TEST(JsonReaderTest, AcceptsAndRefusesWhatNlohmannDoes) {
  const std::vector<std::string> cases = {
      "",
      " ",
      "{}",
      "[]",
      "{",
      "}",
      "[1,]",
      "{\"a\":1,}",
      "{\"a\" 1}",
      "{1:2}",
      "[1 2]",
      "\"abc",
      "\"a\\x\"",
      "\"a\\u12\"",
      "\"a\\u12G4\"",
      "\"\\ud800\"",
      "\"\\udc00\"",
      "\"\\ud800\\u0041\"",
      "\"\\ud800\\udfff\"",
      "\"tab\there\"",
      "\"nl\nhere\"",
      "\"\x7f\"",
      "\"\xc3\xa9\"",
      "\"\xc3\"",
      "\"\xc0\xaf\"",
      "\"\xe0\x80\xaf\"",
      "\"\xed\xa0\x80\"",
      "\"\xf4\x90\x80\x80\"",
      "\"\xf0\x9f\x98\x80\"",
      "\"\xff\"",
      "01",
      "-",
      "-0",
      "1.",
      ".5",
      "1e",
      "1e+",
      "1E-2",
      "+1",
      "0x10",
      "1.5e3.2",
      "NaN",
      "Infinity",
      "tru",
      "true",
      "truex",
      "nul",
      "null",
      "false ",
      " \t\r\n[ ]\n",
      "[]]",
      "{\"a\":[{\"b\":{}}]}",
      "\xEF\xBB\xBF{}",
      "\xEF\xBB{}",
      "\"a\"\"b\"",
      "[\"\\/\"]",
      "{\"\":0}",
      "[1,,2]",
      "[-]",
      "[1e5]",
      "[\"\\u0000\"]",
      "\"\\uD834\\uDD1E\"",
  };
  for (const std::string& text : cases) {
    const auto doc = JsonDoc::Parse(text);
    EXPECT_EQ(doc.has_value(), NlohmannAccepts(text)) << "'" << text << "'";
    if (doc) {
      EXPECT_TRUE(SameValue(doc->root(), Json::parse(text), "")) << text;
    }
  }
}

// Seeded random edits of real answers: whatever nlohmann accepts, JsonDoc accepts and reads
// the same; whatever nlohmann refuses, JsonDoc refuses.
TEST(JsonReaderTest, MutatedAnswersAreAcceptedExactlyWhenNlohmannAcceptsThem) {
  std::mt19937 rng(20261129);
  const std::string alphabet = std::string("\"\\{}[],:0123456789-+.eEtrufalsn \t\n/u") +
                               "\x01\x1f\x7f\x80\xbf\xc2\xc3\xe0\xed\xef\xf0\xf4\xff";
  int accepted = 0;
  int refused = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string text = kAnswers[rng() % kAnswers.size()];
    const int edits = 1 + static_cast<int>(rng() % 3);
    for (int e = 0; e < edits && !text.empty(); ++e) {
      const size_t at = rng() % text.size();
      const char c = alphabet[rng() % alphabet.size()];
      switch (rng() % 3) {
        case 0:
          text[at] = c;
          break;
        case 1:
          text.insert(text.begin() + static_cast<std::ptrdiff_t>(at), c);
          break;
        default:
          text.erase(at, 1);
          break;
      }
    }
    const auto doc = JsonDoc::Parse(text);
    const bool want = NlohmannAccepts(text);
    ASSERT_EQ(doc.has_value(), want) << "'" << text << "'";
    if (doc) {
      ++accepted;
      ASSERT_TRUE(SameValue(doc->root(), Json::parse(text), "")) << text;
    } else {
      ++refused;
    }
  }
  // Both sides were exercised.
  EXPECT_GT(accepted, 1000);
  EXPECT_GT(refused, 1000);
}

TEST(JsonReaderTest, NestingDeeperThanTheLimitIsRefused) {
  const auto nested = [](int depth) {
    return std::string(static_cast<size_t>(depth), '[') +
           std::string(static_cast<size_t>(depth), ']');
  };
  EXPECT_TRUE(JsonDoc::Parse(nested(JsonDoc::kMaxDepth)).has_value());
  EXPECT_FALSE(JsonDoc::Parse(nested(JsonDoc::kMaxDepth + 1)).has_value());
  EXPECT_FALSE(JsonDoc::Parse(std::string(100000, '[')).has_value());  // no stack overflow
}

}  // namespace
}  // namespace enrichd::adapters

#include "enrichd/json_text.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>
#include <string>

namespace enrichd {
namespace {

using Json = nlohmann::json;

std::string Text(std::string_view s) {
  std::string out;
  AppendJsonString(out, s);
  return out;
}

TEST(JsonTextTest, Utf8SequencesAsRfc3629AllowsThem) {
  struct Case {
    std::string bytes;
    std::size_t want;
  };
  for (const Case& c : std::vector<Case>{
           {"a", 1},
           {"\xC3\xA9", 2},
           {"\xE2\x82\xAC", 3},
           {"\xF0\x9F\x98\x80", 4},
           {"\xF4\x8F\xBF\xBF", 4},  // U+10FFFF
           {"\xC0\xAF", 0},          // overlong
           {"\xC1\xBF", 0},
           {"\xE0\x80\xAF", 0},
           {"\xF0\x80\x80\xAF", 0},
           {"\xED\xA0\x80", 0},      // a surrogate
           {"\xF4\x90\x80\x80", 0},  // above U+10FFFF
           {"\xF5\x80\x80\x80", 0},
           {"\x80", 0},  // a lone continuation byte
           {"\xC3", 0},  // cut short
           {"\xE2\x82", 0},
           {"\xE2\x28\xA1", 0},
       }) {
    EXPECT_EQ(Utf8SequenceLength(c.bytes, 0), c.want) << testing::PrintToString(c.bytes);
  }
}

TEST(JsonTextTest, ValidTextIsEscapedAsNlohmannEscapesIt) {
  for (const std::string s :
       {std::string(""), std::string("plain"), std::string("q\"b\\s/"),
        std::string("\b\f\n\r\t\x01\x1f\x7f"), std::string("Z\xC3\xBCrich \xF0\x9F\x98\x80"),
        std::string("nul\0in", 6)}) {
    EXPECT_EQ(Text(s), Json(s).dump()) << s;
  }
  // Random valid UTF-8 with control characters among it.
  std::mt19937 rng(5);
  for (int i = 0; i < 5000; ++i) {
    std::string s;
    for (int k = static_cast<int>(rng() % 10); k > 0; --k) {
      uint32_t cp = rng() % 4 == 0 ? rng() % 0x80 : rng() % 0x110000;
      if (cp >= 0xD800 && cp <= 0xDFFF) cp = 'x';
      char esc[16];
      if (cp >= 0x10000) {
        const uint32_t v = cp - 0x10000;
        std::snprintf(esc, sizeof esc, "\"\\u%04x\\u%04x\"", 0xD800 + (v >> 10),
                      0xDC00 + (v & 0x3FF));
      } else {
        std::snprintf(esc, sizeof esc, "\"\\u%04x\"", cp);
      }
      s += Json::parse(esc).get<std::string>();
    }
    ASSERT_EQ(Text(s), Json(s).dump());
  }
}

TEST(JsonTextTest, InvalidBytesBecomeReplacementCharactersAndTheTextParses) {
  EXPECT_EQ(Text("a\xFF"
                 "b"),
            "\"a\xEF\xBF\xBD"
            "b\"");
  EXPECT_EQ(Text("\xC3"), "\"\xEF\xBF\xBD\"");
  EXPECT_EQ(Text("\xED\xA0\x80"), "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\"");
  std::mt19937 rng(9);
  for (int i = 0; i < 5000; ++i) {
    std::string s(rng() % 12, '\0');
    for (char& c : s) c = static_cast<char>(rng() % 256);
    const std::string text = Text(s);
    const Json back = Json::parse(text, nullptr, /*allow_exceptions=*/false);
    ASSERT_TRUE(back.is_string()) << text;
  }
}

}  // namespace
}  // namespace enrichd

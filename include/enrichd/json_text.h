// UTF-8 and JSON string text, shared by the stores (props they write), the adapters
// (results) and the export. Pure functions; thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace enrichd {

// The length of the UTF-8 sequence starting at s[i] (1-4 bytes, as RFC 3629 allows it:
// no overlong forms, no surrogates, nothing above U+10FFFF), or 0 when the bytes there are
// not one (including a sequence cut short by the end of s). Requires i < s.size().
std::size_t Utf8SequenceLength(std::string_view s, std::size_t i);

// Appends `s` as a quoted JSON string, escaped as nlohmann::json::dump() escapes it: '"'
// and '\', control characters as \b \f \n \r \t or \u00XX, everything else (UTF-8
// included) as it is. Each byte that does not start a valid UTF-8 sequence becomes U+FFFD,
// so the text always parses.
void AppendJsonString(std::string& out, std::string_view s);

}  // namespace enrichd

// Helpers shared by the config layer's source files. Not part of the public API.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace enrichd::config_internal {

// The entry of `known` closest to `word` (edit distance, or one a prefix of the other),
// or nullopt when none is close enough to be a likely typo.
std::optional<std::string> ClosestName(std::string_view word,
                                       const std::vector<std::string>& known);

// `text` in double quotes with control characters and quotes escaped, cut to `max_chars`
// (then ending in "..."): how a value is shown in an error message.
std::string QuoteForMessage(std::string_view text, std::size_t max_chars = 60);

}  // namespace enrichd::config_internal

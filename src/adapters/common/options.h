// Validation of AdapterSpec::options for adapter factories. Every error is
// kInvalidArgument and names the option; option values are never echoed (they may be
// secrets).
#pragma once

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include "adapters/common/json_util.h"
#include "enrichd/status.h"

namespace enrichd::adapters {

// Fails naming the first option of `options` not in `known` (or when options is not an
// object / null).
Status CheckKnownOptions(const Json& options, std::initializer_list<std::string_view> known);
// A string option; `fallback` when absent; error when present but not a non-empty string.
Result<std::string> StringOption(const Json& options, std::string_view name,
                                 std::optional<std::string> fallback);
// The kind to produce: `requested` if set (must be in `allowed`), else `fallback`.
Result<std::string> ResolveKind(const std::string& requested, std::string_view fallback,
                                std::initializer_list<std::string_view> allowed);

}  // namespace enrichd::adapters

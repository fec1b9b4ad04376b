#include "adapters/common/options.h"

namespace enrichd::adapters {

Status CheckKnownOptions(const Json& options, std::initializer_list<std::string_view> known) {
  if (options.is_null()) return Status::Ok();
  if (!options.is_object()) return InvalidArgumentError("options must be a mapping");
  for (const auto& [key, value] : options.items()) {
    bool ok = false;
    for (auto k : known) ok = ok || key == k;
    if (!ok) {
      std::string list;
      for (auto k : known) list += (list.empty() ? "" : ", ") + std::string(k);
      return InvalidArgumentError("unknown option \"" + key +
                                  "\" (known: " + (list.empty() ? "none" : list) + ")");
    }
  }
  return Status::Ok();
}

Result<std::string> StringOption(const Json& options, std::string_view name,
                                 std::optional<std::string> fallback) {
  const Json* v = Member(options, name);
  if (v == nullptr) {
    if (fallback) return *fallback;
    return InvalidArgumentError("option \"" + std::string(name) + "\" is required");
  }
  if (!v->is_string() || v->get_ref<const std::string&>().empty()) {
    return InvalidArgumentError("option \"" + std::string(name) + "\" must be a non-empty string");
  }
  return v->get<std::string>();
}

Result<std::string> ResolveKind(const std::string& requested, std::string_view fallback,
                                std::initializer_list<std::string_view> allowed) {
  if (requested.empty()) return std::string(fallback);
  for (auto a : allowed) {
    if (requested == a) return requested;
  }
  std::string list;
  for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
  return InvalidArgumentError("kind \"" + requested + "\" is not supported (supported: " + list +
                              ")");
}

}  // namespace enrichd::adapters

#include "cli/args.h"

namespace enrichd::cli {

Result<Args> Args::Parse(const std::vector<std::string>& args,
                         const std::set<std::string>& value_options,
                         const std::set<std::string>& flag_options) {
  Args out;
  bool only_positionals = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (only_positionals || a == "-" || !a.starts_with("--")) {
      if (!only_positionals && a.size() > 1 && a[0] == '-' && a != "-") {
        return InvalidArgumentError("unknown option '" + a + "'");
      }
      out.positionals_.push_back(a);
      continue;
    }
    if (a == "--") {
      only_positionals = true;
      continue;
    }
    std::string name = a.substr(2);
    std::optional<std::string> inline_value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      inline_value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    if (flag_options.count(name)) {
      if (inline_value) return InvalidArgumentError("option --" + name + " takes no value");
      out.values_[name] = "true";
    } else if (value_options.count(name)) {
      if (inline_value) {
        out.values_[name] = *inline_value;
      } else if (i + 1 < args.size()) {
        out.values_[name] = args[++i];
      } else {
        return InvalidArgumentError("option --" + name + " needs a value");
      }
    } else {
      return InvalidArgumentError("unknown option '--" + name + "'");
    }
  }
  return out;
}

std::optional<std::string> Args::Get(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) return std::nullopt;
  return it->second;
}

std::string Args::GetOr(const std::string& name, std::string fallback) const {
  auto v = Get(name);
  return v ? *v : std::move(fallback);
}

}  // namespace enrichd::cli

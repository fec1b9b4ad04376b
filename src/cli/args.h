// A small, strict argument parser for the commands: `--name value`, `--name=value`,
// boolean `--flag`, and positionals. An unknown option or a missing value is an error
// whose message names it (the command prints it with its usage and exits 2).
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "enrichd/status.h"

namespace enrichd::cli {

class Args {
 public:
  // value_options take a value; flag_options do not. Names without the leading "--".
  static Result<Args> Parse(const std::vector<std::string>& args,
                            const std::set<std::string>& value_options,
                            const std::set<std::string>& flag_options);

  bool Has(const std::string& name) const { return values_.count(name) > 0; }
  std::optional<std::string> Get(const std::string& name) const;
  std::string GetOr(const std::string& name, std::string fallback) const;
  const std::vector<std::string>& positionals() const { return positionals_; }

 private:
  std::map<std::string, std::string> values_;
  std::vector<std::string> positionals_;
};

}  // namespace enrichd::cli

// The configuration model: durations, adapter specs, store URL precedence, suggestions.
#include "enrichd/config.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>

#include "config/config_internal.h"

namespace enrichd {
namespace config_internal {

namespace {

std::size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      const std::size_t substitution = diagonal + (a[i - 1] == b[j - 1] ? 0 : 1);
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, substitution});
      diagonal = above;
    }
  }
  return row[b.size()];
}

}  // namespace

std::optional<std::string> ClosestName(std::string_view word,
                                       const std::vector<std::string>& known) {
  std::optional<std::string> best;
  std::size_t best_distance = SIZE_MAX;
  const std::size_t limit = std::max<std::size_t>(2, word.size() / 3);
  for (const auto& candidate : known) {
    std::size_t distance = EditDistance(word, candidate);
    const bool prefix = word.size() >= 3 && (candidate.starts_with(word) ||
                                             std::string_view(word).starts_with(candidate));
    if (distance > limit && !prefix) continue;
    if (prefix) distance = std::min(distance, limit);
    if (distance < best_distance) {
      best_distance = distance;
      best = candidate;
    }
  }
  return best;
}

std::string QuoteForMessage(std::string_view text, std::size_t max_chars) {
  std::string out = "\"";
  std::size_t shown = 0;
  for (char c : text) {
    if (shown == max_chars) {
      out += "...";
      break;
    }
    ++shown;
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      out += c == '\n' ? "\\n" : c == '\t' ? "\\t" : "?";
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

}  // namespace config_internal

std::string_view JitterModeName(JitterMode mode) {
  switch (mode) {
    case JitterMode::kFull:
      return "full";
    case JitterMode::kDecorrelated:
      return "decorrelated";
  }
  return "full";
}

AdapterSpec ProviderConfig::ToAdapterSpec() const {
  AdapterSpec spec;
  spec.provider_name = name;
  spec.adapter = adapter;
  spec.kind = kind;
  spec.endpoint = endpoint;
  spec.auth = auth;
  spec.applies_to = applies_to;
  spec.options = options;
  spec.timeout = timeout;
  spec.max_batch = batch.max_items;
  return spec;
}

const ProviderConfig* EnrichdConfig::FindProvider(std::string_view name) const {
  for (const auto& provider : providers) {
    if (provider.name == name) return &provider;
  }
  return nullptr;
}

Result<Duration> ParseDuration(std::string_view text) {
  using config_internal::QuoteForMessage;
  if (text.empty()) return InvalidArgumentError("a duration cannot be empty (e.g. 5s, 250ms)");
  if (text == "0") return Duration::zero();
  if (text.front() == '-') {
    return InvalidArgumentError("a duration cannot be negative, got " + QuoteForMessage(text));
  }
  constexpr long double kMaxNanos = 36500.0L * 86400.0L * 1e9L;  // 100 years
  long double total_nanos = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t number_start = pos;
    while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos]))) ++pos;
    std::size_t digits = pos - number_start;
    if (pos < text.size() && text[pos] == '.') {
      ++pos;
      const std::size_t fraction_start = pos;
      while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos]))) ++pos;
      digits += pos - fraction_start;
    }
    if (digits == 0) {
      return InvalidArgumentError("not a duration: " + QuoteForMessage(text) +
                                  " (write a number and a unit: 250ms, 2s, 5m, 1h, 7d)");
    }
    const std::string number(text.substr(number_start, pos - number_start));
    const std::size_t unit_start = pos;
    while (pos < text.size() && std::isalpha(static_cast<unsigned char>(text[pos]))) ++pos;
    const std::string_view unit = text.substr(unit_start, pos - unit_start);
    long double unit_nanos = 0;
    if (unit == "us") {
      unit_nanos = 1e3L;
    } else if (unit == "ms") {
      unit_nanos = 1e6L;
    } else if (unit == "s") {
      unit_nanos = 1e9L;
    } else if (unit == "m") {
      unit_nanos = 60e9L;
    } else if (unit == "h") {
      unit_nanos = 3600e9L;
    } else if (unit == "d") {
      unit_nanos = 86400e9L;
    } else if (unit.empty()) {
      return InvalidArgumentError("a duration needs a unit (ms, s, m, h or d), got " +
                                  QuoteForMessage(text) + " (e.g. " + number + "s)");
    } else {
      return InvalidArgumentError("unknown duration unit " + QuoteForMessage(unit) + " in " +
                                  QuoteForMessage(text) + " (use ms, s, m, h or d)");
    }
    if (number.size() > 24) {
      return InvalidArgumentError("duration too long: " + QuoteForMessage(text));
    }
    total_nanos += std::strtold(number.c_str(), nullptr) * unit_nanos;
    if (total_nanos > kMaxNanos) {
      return InvalidArgumentError("duration longer than 100 years: " + QuoteForMessage(text));
    }
  }
  return Duration(static_cast<int64_t>(std::llroundl(total_nanos)));
}

Status CheckAdapterNames(const EnrichdConfig& config, const std::vector<std::string>& known) {
  std::string message;
  for (std::size_t i = 0; i < config.providers.size(); ++i) {
    const ProviderConfig& provider = config.providers[i];
    if (std::find(known.begin(), known.end(), provider.adapter) != known.end()) continue;
    if (!message.empty()) message += '\n';
    message += provider.origin + ": providers[" + std::to_string(i) +
               "].adapter: unknown adapter " + config_internal::QuoteForMessage(provider.adapter);
    if (auto close = config_internal::ClosestName(provider.adapter, known)) {
      message += " (did you mean \"" + *close + "\"?)";
    }
    std::string names;
    for (const auto& name : known) names += (names.empty() ? "" : ", ") + name;
    message += "; known: " + names;
  }
  if (message.empty()) return Status::Ok();
  return InvalidArgumentError(std::move(message));
}

std::string ResolveStoreUrl(const std::optional<std::string>& flag, const EnrichdConfig* config) {
  if (flag && !flag->empty()) return *flag;
  if (config != nullptr && config->store && !config->store->empty()) return *config->store;
  if (const char* env = std::getenv("ENRICHD_STORE"); env != nullptr && *env != '\0') {
    return env;
  }
  return "sqlite://enrichd.db";
}

namespace {

// Masks the value of a `password=` query parameter (libpq accepts one).
std::string MaskPasswordParameter(std::string url) {
  std::size_t from = url.find('?');
  while (from != std::string::npos) {
    const std::size_t at = url.find("password=", from);
    if (at == std::string::npos) break;
    const bool starts_parameter = url[at - 1] == '?' || url[at - 1] == '&';
    const std::size_t value_start = at + 9;
    std::size_t value_end = url.find_first_of("&#", value_start);
    if (value_end == std::string::npos) value_end = url.size();
    if (starts_parameter && value_end > value_start) {
      url.replace(value_start, value_end - value_start, "****");
      value_end = value_start + 4;
    }
    from = value_end;
  }
  return url;
}

}  // namespace

std::string MaskUrlPassword(std::string_view url_view) {
  const std::string masked_parameter = MaskPasswordParameter(std::string(url_view));
  const std::string_view url = masked_parameter;
  const std::size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return std::string(url);
  const std::size_t authority_start = scheme_end + 3;
  std::size_t authority_end = url.find_first_of("/?#", authority_start);
  if (authority_end == std::string_view::npos) authority_end = url.size();
  const std::string_view authority = url.substr(authority_start, authority_end - authority_start);
  const std::size_t at = authority.rfind('@');
  if (at == std::string_view::npos) return std::string(url);
  const std::size_t colon = authority.substr(0, at).find(':');
  if (colon == std::string_view::npos) return std::string(url);
  return std::string(url.substr(0, authority_start + colon + 1)) + "****" +
         std::string(url.substr(authority_start + at));
}

}  // namespace enrichd

// DescribeEffective: the effective configuration as YAML, secrets masked.
#include <yaml-cpp/yaml.h>

#include <charconv>
#include <cmath>

#include "config/config_internal.h"
#include "enrichd/config.h"

namespace enrichd {
namespace {

// True when a YAML reader would take the unquoted text for something other than a string.
bool NeedsQuotes(std::string_view s) {
  static const char* const kWords[] = {"",     "~",     "null",  "Null",  "NULL", "true", "True",
                                       "TRUE", "false", "False", "FALSE", "yes",  "Yes",  "YES",
                                       "no",   "No",    "NO",    "on",    "On",   "ON",   "off",
                                       "Off",  "OFF",   "y",     "Y",     "n",    "N"};
  for (const char* word : kWords) {
    if (s == word) return true;
  }
  if (s.find_first_not_of("0123456789+-.eExXabcdefABCDEF_oO") == std::string_view::npos &&
      s.find_first_of("0123456789") != std::string_view::npos) {
    return true;  // looks like a number (decimal, hex, octal, float)
  }
  return s == ".inf" || s == "-.inf" || s == ".nan";
}

// Escapes "${" as "$${" so that the output does not expand when read again.
std::string EscapeReferences(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s.compare(i, 2, "${") == 0) out += '$';
    out += s[i];
  }
  return out;
}

void EmitString(YAML::Emitter& out, std::string_view value) {
  const std::string text = EscapeReferences(value);
  if (NeedsQuotes(text)) {
    out << YAML::DoubleQuoted << text;
  } else {
    out << text;
  }
}

std::string FormatNumber(double value) {
  char buffer[64];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);
  if (ec != std::errc()) return std::to_string(value);
  return std::string(buffer, end);
}

void EmitJson(YAML::Emitter& out, const nlohmann::json& value, const std::string& pointer,
              const std::map<std::string, std::string>& masks) {
  if (auto it = masks.find("options" + pointer); it != masks.end()) {
    out << YAML::DoubleQuoted << EscapeReferences(it->second);
    return;
  }
  switch (value.type()) {
    case nlohmann::json::value_t::object:
      if (value.empty()) {
        out << YAML::Flow << YAML::BeginMap << YAML::EndMap;
        return;
      }
      out << YAML::BeginMap;
      for (const auto& [key, item] : value.items()) {
        std::string token;
        for (char c : key) token += c == '~' ? "~0" : c == '/' ? "~1" : std::string(1, c);
        out << YAML::Key;
        EmitString(out, key);
        out << YAML::Value;
        EmitJson(out, item, pointer + "/" + token, masks);
      }
      out << YAML::EndMap;
      return;
    case nlohmann::json::value_t::array: {
      out << YAML::BeginSeq;
      std::size_t index = 0;
      for (const auto& item : value)
        EmitJson(out, item, pointer + "/" + std::to_string(index++), masks);
      out << YAML::EndSeq;
      return;
    }
    case nlohmann::json::value_t::string:
      EmitString(out, value.get_ref<const std::string&>());
      return;
    case nlohmann::json::value_t::boolean:
      out << (value.get<bool>() ? "true" : "false");
      return;
    case nlohmann::json::value_t::number_integer:
      out << std::to_string(value.get<int64_t>());
      return;
    case nlohmann::json::value_t::number_unsigned:
      out << std::to_string(value.get<uint64_t>());
      return;
    case nlohmann::json::value_t::number_float:
      out << FormatNumber(value.get<double>());
      return;
    default:
      out << YAML::Null;
      return;
  }
}

// A string field, masked when the config recorded it as (holding) a secret.
void EmitField(YAML::Emitter& out, const char* key, const std::string& value,
               const std::map<std::string, std::string>& masks, const std::string& mask_key) {
  out << YAML::Key << key << YAML::Value;
  if (auto it = masks.find(mask_key); it != masks.end()) {
    out << YAML::DoubleQuoted << EscapeReferences(it->second);
  } else {
    EmitString(out, value);
  }
}

void EmitDuration(YAML::Emitter& out, const char* key, Duration value) {
  out << YAML::Key << key << YAML::Value << FormatDuration(value);
}

void EmitAuth(YAML::Emitter& out, const ProviderConfig& provider) {
  const AuthSpec& auth = provider.auth;
  out << YAML::Key << "auth" << YAML::Value << YAML::BeginMap;
  switch (auth.kind) {
    case AuthSpec::Kind::kBearer:
      out << YAML::Key << "bearer" << YAML::Value << YAML::DoubleQuoted << "****";
      break;
    case AuthSpec::Kind::kBasic:
      out << YAML::Key << "basic" << YAML::Value << YAML::BeginMap;
      EmitField(out, "user", auth.user, provider.secret_masks, "auth.user");
      out << YAML::Key << "password" << YAML::Value << YAML::DoubleQuoted << "****";
      out << YAML::EndMap;
      break;
    case AuthSpec::Kind::kQueryParam:
    case AuthSpec::Kind::kHeader:
      out << YAML::Key << (auth.kind == AuthSpec::Kind::kHeader ? "header" : "query") << YAML::Value
          << YAML::BeginMap;
      out << YAML::Key;
      EmitString(out, auth.name);
      out << YAML::Value << YAML::DoubleQuoted << "****" << YAML::EndMap;
      break;
    case AuthSpec::Kind::kNone:
      break;
  }
  out << YAML::EndMap;
}

void EmitProvider(YAML::Emitter& out, const ProviderConfig& p) {
  out << YAML::BeginMap;
  out << YAML::Key << "name" << YAML::Value;
  EmitString(out, p.name);
  out << YAML::Comment("defined at " + p.origin);
  out << YAML::Key << "adapter" << YAML::Value;
  EmitString(out, p.adapter);
  out << YAML::Key << "enabled" << YAML::Value << (p.enabled ? "true" : "false");
  if (!p.kind.empty()) {  // absent: the adapter's default
    out << YAML::Key << "kind" << YAML::Value;
    EmitString(out, p.kind);
  }
  out << YAML::Key << "applies_to" << YAML::Value << YAML::Flow << YAML::BeginSeq;
  for (const auto& label : p.applies_to) EmitString(out, label);
  out << YAML::EndSeq;
  if (!p.endpoint.empty()) {  // absent: the real provider's address
    EmitField(out, "endpoint", p.endpoint, p.secret_masks, "endpoint");
  }
  if (p.auth.kind != AuthSpec::Kind::kNone) EmitAuth(out, p);

  out << YAML::Key << "rate_limit" << YAML::Value;
  if (p.rate_limit.per_second) {
    out << YAML::BeginMap;
    out << YAML::Key << "per_second" << YAML::Value << FormatNumber(*p.rate_limit.per_second);
    out << YAML::Key << "burst" << YAML::Value << FormatNumber(p.rate_limit.burst);
    out << YAML::EndMap;
  } else {
    out << YAML::Flow << YAML::BeginMap << YAML::EndMap << YAML::Comment("unlimited");
  }
  out << YAML::Key << "concurrency" << YAML::Value << p.concurrency;
  EmitDuration(out, "timeout", p.timeout);

  out << YAML::Key << "retry" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "max_attempts" << YAML::Value << p.retry.max_attempts;
  EmitDuration(out, "base_delay", p.retry.base_delay);
  EmitDuration(out, "max_delay", p.retry.max_delay);
  out << YAML::Key << "jitter" << YAML::Value << std::string(JitterModeName(p.retry.jitter));
  out << YAML::EndMap;

  const CircuitBreakerConfig& cb = p.circuit_breaker;
  out << YAML::Key << "circuit_breaker" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "failure_rate" << YAML::Value << FormatNumber(cb.failure_rate);
  out << YAML::Key << "window" << YAML::Value << cb.window;
  out << YAML::Key << "min_calls" << YAML::Value << cb.min_calls;
  EmitDuration(out, "open_for", cb.open_for);
  out << YAML::Key << "half_open_calls" << YAML::Value << cb.half_open_calls;
  EmitDuration(out, "probe_timeout", cb.probe_timeout);
  out << YAML::EndMap;

  out << YAML::Key << "batch" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "max_items" << YAML::Value << p.batch.max_items;
  EmitDuration(out, "max_wait", p.batch.max_wait);
  out << YAML::EndMap;

  EmitDuration(out, "ttl", p.ttl);
  EmitDuration(out, "no_data_ttl", p.no_data_ttl);
  out << YAML::Key << "options" << YAML::Value;
  EmitJson(out, p.options.is_object() ? p.options : nlohmann::json::object(), "", p.secret_masks);
  out << YAML::EndMap;
}

}  // namespace

std::string DescribeEffective(const EnrichdConfig& config) {
  YAML::Emitter out;
  out.SetIndent(2);
  out << YAML::Comment("effective configuration of " +
                       (config.source_path.empty() ? std::string("<config>") : config.source_path) +
                       ": defaults filled in, secrets shown as ****");
  out << YAML::Newline;
  out << YAML::BeginMap;
  if (config.store) {
    out << YAML::Key << "store" << YAML::Value;
    if (auto it = config.secret_masks.find("store"); it != config.secret_masks.end()) {
      out << YAML::DoubleQuoted << EscapeReferences(MaskUrlPassword(it->second));
    } else {
      EmitString(out, MaskUrlPassword(*config.store));
    }
  } else {
    out << YAML::Comment(
        "store: not set here; --store, else ENRICHD_STORE, else sqlite://enrichd.db");
  }
  out << YAML::Key << "engine" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "claim_batch" << YAML::Value << config.engine.claim_batch;
  EmitDuration(out, "lease", config.engine.lease);
  out << YAML::Key << "worker_threads" << YAML::Value << config.engine.worker_threads;
  EmitDuration(out, "poll_interval", config.engine.poll_interval);
  out << YAML::EndMap;
  out << YAML::Key << "providers" << YAML::Value;
  if (config.providers.empty()) {
    out << YAML::Flow << YAML::BeginSeq << YAML::EndSeq;
  } else {
    out << YAML::BeginSeq;
    for (const auto& provider : config.providers) EmitProvider(out, provider);
    out << YAML::EndSeq;
  }
  out << YAML::EndMap;
  std::string text = out.c_str();
  text += '\n';
  return text;
}

}  // namespace enrichd

// Reading the YAML configuration (docs/CONFIG.md) into an EnrichdConfig.
//
// References (`${NAME}`, `${NAME:-fallback}`, `${file:PATH}`, `$${...}` for a literal) are
// replaced by placeholders before the YAML parser sees the text, because `{` and `}` end a
// plain scalar inside a flow mapping (`auth: { bearer: ${TOKEN} }` would not parse). The
// placeholders keep the text on the same lines, so line numbers stay right; they are expanded
// after parsing, only where a string is expected.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include "config/config_internal.h"
#include "enrichd/config.h"

namespace enrichd {
namespace {

using config_internal::ClosestName;
using config_internal::QuoteForMessage;

constexpr std::string_view kPlaceholderPrefix = "$__enrichd_ref_";
constexpr std::size_t kMaxErrors = 50;
constexpr std::size_t kMaxSecretFileBytes = 1 << 20;

// ---------------------------------------------------------------------------------------
// References

struct Reference {
  enum class Kind { kEnv, kFile, kLiteral, kInvalid };
  Kind kind = Kind::kInvalid;
  std::string original;                 // as written: "${IPINFO_TOKEN}"
  std::string name;                     // variable name, or file path
  std::optional<std::string> fallback;  // ${NAME:-fallback}
  std::string problem;                  // kInvalid: what is wrong
};

bool IsEnvName(std::string_view name) {
  if (name.empty()) return false;
  if (!std::isalpha(static_cast<unsigned char>(name[0])) && name[0] != '_') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

std::string Trim(std::string_view text) {
  const auto is_space = [](char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
  };
  std::size_t begin = 0;
  std::size_t end = text.size();
  while (begin < end && is_space(text[begin])) ++begin;
  while (end > begin && is_space(text[end - 1])) --end;
  return std::string(text.substr(begin, end - begin));
}

Reference ClassifyReference(std::string original, std::string_view inner) {
  Reference ref;
  ref.original = std::move(original);
  if (inner.starts_with("file:")) {
    ref.kind = Reference::Kind::kFile;
    ref.name = Trim(inner.substr(5));
    if (ref.name.empty()) {
      ref.kind = Reference::Kind::kInvalid;
      ref.problem = ref.original + " names no file (write ${file:/path/to/secret})";
    }
    return ref;
  }
  std::string_view name = inner;
  if (const std::size_t sep = inner.find(":-"); sep != std::string_view::npos) {
    name = inner.substr(0, sep);
    ref.fallback = std::string(inner.substr(sep + 2));
  }
  ref.name = std::string(name);
  if (IsEnvName(name)) {
    ref.kind = Reference::Kind::kEnv;
  } else {
    ref.kind = Reference::Kind::kInvalid;
    ref.problem = ref.original +
                  " is not a valid reference (write ${NAME} with letters, digits and '_', "
                  "${NAME:-fallback} or ${file:/path})";
  }
  return ref;
}

std::string Placeholder(std::size_t index) {
  return std::string(kPlaceholderPrefix) + std::to_string(index) + "__";
}

// Replaces every `${...}` closed on its line by a placeholder.
std::string ReplaceReferences(std::string_view text, std::vector<Reference>& refs) {
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    const bool literal = text.compare(i, 3, "$${") == 0;
    const bool reference = !literal && text.compare(i, 2, "${") == 0;
    if (literal || reference) {
      const std::size_t open = i + (literal ? 3 : 2);
      const std::size_t close = text.find_first_of("}\n", open);
      if (close != std::string_view::npos && text[close] == '}') {
        std::string original(text.substr(i, close + 1 - i));
        Reference ref;
        if (literal) {
          ref.kind = Reference::Kind::kLiteral;
          ref.original = std::move(original);
        } else {
          ref = ClassifyReference(std::move(original), text.substr(open, close - open));
        }
        out += Placeholder(refs.size());
        refs.push_back(std::move(ref));
        i = close + 1;
        continue;
      }
    }
    out += text[i++];
  }
  return out;
}

// A string value after expansion.
struct Expanded {
  std::string value;    // with references replaced by their values
  std::string masked;   // with references replaced by "****"
  std::string display;  // as written in the file (references unexpanded)
  bool has_references = false;
};

// ---------------------------------------------------------------------------------------
// YAML helpers

struct Entry {
  YAML::Node key;  // null for the document root / sequence items
  YAML::Node value;
  std::string path;  // "providers[1].rate_limit.per_second"
  YAML::Mark mark;   // where to point at: the value, else the key
};

std::string JoinPath(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

std::string EscapeJsonPointerToken(std::string_view token) {
  std::string out;
  for (char c : token) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

std::string_view NodeKindName(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Scalar:
      return "a single value";
    default:
      return "nothing";
  }
}

bool IsPlain(const YAML::Node& node) { return node.Tag() == "?"; }

bool IsNullScalar(std::string_view s) {
  return s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL";
}

bool IsIntegerText(std::string_view s) {
  std::size_t i = (!s.empty() && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
  if (i == s.size()) return false;
  for (; i < s.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
  }
  return true;
}

std::optional<double> ParseFiniteDouble(std::string_view s) {
  if (s.empty()) return std::nullopt;
  // Only decimal notation: no hex floats, no inf/nan, no leading/trailing space.
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '+' &&
        c != 'e' && c != 'E') {
      return std::nullopt;
    }
  }
  const std::string copy(s);
  char* end = nullptr;
  errno = 0;
  const double value = std::strtod(copy.c_str(), &end);
  if (end != copy.c_str() + copy.size() || errno == ERANGE || !std::isfinite(value)) {
    return std::nullopt;
  }
  return value;
}

// ---------------------------------------------------------------------------------------
// The parser

const std::vector<std::string> kTopKeys = {"store", "providers", "engine"};
const std::vector<std::string> kEngineKeys = {"claim_batch", "lease", "worker_threads",
                                              "poll_interval"};
const std::vector<std::string> kProviderKeys = {
    "name",       "adapter",     "kind",    "applies_to", "endpoint",        "auth",
    "rate_limit", "concurrency", "timeout", "retry",      "circuit_breaker", "batch",
    "ttl",        "no_data_ttl", "options", "enabled"};
const std::vector<std::string> kRateLimitKeys = {"per_second", "burst"};
const std::vector<std::string> kRetryKeys = {"max_attempts", "base_delay", "max_delay", "jitter"};
const std::vector<std::string> kBreakerKeys = {"failure_rate", "window",          "min_calls",
                                               "open_for",     "half_open_calls", "probe_timeout"};
const std::vector<std::string> kBatchKeys = {"max_items", "max_wait"};
const std::vector<std::string> kAuthKeys = {"bearer", "basic", "query", "header"};
const std::vector<std::string> kBasicKeys = {"user", "password"};
const std::vector<std::string> kFileKeys = {"file"};

using Fields = std::map<std::string, Entry>;

class Parser {
 public:
  Parser(std::string file, std::vector<Reference> refs, const ConfigEnvironment& env)
      : file_(std::move(file)), refs_(std::move(refs)), env_(env) {}

  EnrichdConfig Parse(const YAML::Node& root);

  // Every problem found, in the order of the file's lines.
  std::vector<std::string> errors() const {
    std::vector<std::pair<int, std::string>> sorted = errors_;
    std::stable_sort(sorted.begin(), sorted.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<std::string> out;
    for (auto& [line, message] : sorted) out.push_back(std::move(message));
    return out;
  }
  bool has_errors() const { return !errors_.empty(); }

  void Error(const YAML::Mark& mark, std::string_view key, std::string_view what) {
    if (errors_.size() >= kMaxErrors) return;
    const int line_number = mark.is_null() ? 1 : mark.line + 1;
    std::string line = file_ + ":" + std::to_string(line_number) + ": ";
    if (!key.empty()) line += std::string(key) + ": ";
    line += what;
    errors_.emplace_back(line_number, std::move(line));
  }
  void Error(const Entry& entry, std::string_view what) { Error(entry.mark, entry.path, what); }

 private:
  // --- structure
  std::optional<Fields> MapFields(const Entry& entry, const std::vector<std::string>& allowed);
  void CollectFields(const Entry& entry, const YAML::Node& map,
                     const std::vector<std::string>& allowed, Fields& fields, bool merged);
  Entry Child(const Entry& parent, const YAML::Node& key, const YAML::Node& value,
              std::string_view name) const;

  // --- scalars
  std::optional<std::string> Scalar(const Entry& entry);
  std::optional<std::string> PlainScalar(const Entry& entry);  // no references allowed
  std::optional<int64_t> Integer(const Entry& entry, int64_t min, int64_t max);
  std::optional<Duration> DurationValue(const Entry& entry, bool allow_zero);
  std::optional<bool> Bool(const Entry& entry);
  std::optional<std::string> Name(const Entry& entry, std::string_view what);
  std::optional<Expanded> String(const Entry& entry);
  std::optional<Expanded> Secret(const Entry& entry);
  std::optional<Expanded> Expand(const std::string& raw, const Entry& entry);
  std::optional<std::string> ReadSecretFile(const std::string& path, const Entry& entry,
                                            std::string_view written_as);
  bool HasPlaceholder(std::string_view raw) const {
    return raw.find(kPlaceholderPrefix) != std::string_view::npos;
  }
  std::string Display(std::string_view raw) const;

  // --- sections
  void ParseEngine(const Entry& entry, EngineConfig& engine);
  std::optional<ProviderConfig> ParseProvider(const Entry& entry);
  void ParseAuth(const Entry& entry, ProviderConfig& provider);
  void ParseRateLimit(const Entry& entry, RateLimitConfig& rate);
  void ParseRetry(const Entry& entry, RetryConfig& retry);
  void ParseBreaker(const Entry& entry, CircuitBreakerConfig& breaker, Duration timeout);
  void ParseBatch(const Entry& entry, BatchConfig& batch);
  std::optional<nlohmann::json> ToJson(const Entry& entry, const std::string& pointer,
                                       ProviderConfig& provider);

  std::string file_;
  std::vector<Reference> refs_;
  const ConfigEnvironment& env_;
  std::vector<std::pair<int, std::string>> errors_;  // (line, message)
};

Entry Parser::Child(const Entry& parent, const YAML::Node& key, const YAML::Node& value,
                    std::string_view name) const {
  Entry child;
  child.key = key;
  child.value = value;
  child.path = JoinPath(parent.path, name);
  child.mark = (value.IsDefined() && !value.IsNull()) ? value.Mark() : key.Mark();
  if (child.mark.is_null()) child.mark = key.Mark();
  return child;
}

std::string Parser::Display(std::string_view raw) const {
  std::string out;
  std::size_t pos = 0;
  while (true) {
    const std::size_t at = raw.find(kPlaceholderPrefix, pos);
    if (at == std::string_view::npos) break;
    out += raw.substr(pos, at - pos);
    std::size_t end = at + kPlaceholderPrefix.size();
    std::size_t index = 0;
    while (end < raw.size() && std::isdigit(static_cast<unsigned char>(raw[end]))) {
      index = index * 10 + static_cast<std::size_t>(raw[end] - '0');
      ++end;
    }
    if (raw.compare(end, 2, "__") == 0 && index < refs_.size()) {
      out += refs_[index].original;
      pos = end + 2;
    } else {
      out += raw.substr(at, end - at);
      pos = end;
    }
  }
  out += raw.substr(pos);
  return out;
}

void Parser::CollectFields(const Entry& entry, const YAML::Node& map,
                           const std::vector<std::string>& allowed, Fields& fields, bool merged) {
  std::vector<YAML::Node> merges;
  std::set<std::string> seen_here;
  for (const auto& pair : map) {
    const YAML::Node& key = pair.first;
    if (!key.IsScalar()) {
      Error(key.Mark(), entry.path,
            "a key must be a plain name, got " + std::string(NodeKindName(key)));
      continue;
    }
    const std::string name = Display(key.Scalar());
    if (name == "<<" && IsPlain(key)) {  // YAML merge key: `<<: *defaults`
      merges.push_back(pair.second);
      continue;
    }
    const std::string path = JoinPath(entry.path, name);
    if (!seen_here.insert(name).second) {
      Error(key.Mark(), path, "duplicate key");
      continue;
    }
    if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
      std::string what = "unknown key";
      if (auto close = ClosestName(name, allowed)) {
        what += " (did you mean \"" + *close + "\"?)";
      } else {
        std::string known;
        for (const auto& k : allowed) known += (known.empty() ? "" : ", ") + k;
        what += "; known keys here: " + known;
      }
      Error(key.Mark(), path, what);
      continue;
    }
    if (merged && fields.count(name)) continue;  // explicit keys win over merged ones
    fields[name] = Child(entry, key, pair.second, name);
  }
  for (const YAML::Node& merge : merges) {
    if (merge.IsMap()) {
      CollectFields(entry, merge, allowed, fields, true);
    } else if (merge.IsSequence()) {
      for (const auto& item : merge) {
        if (item.IsMap()) CollectFields(entry, item, allowed, fields, true);
      }
    } else {
      Error(merge.Mark(), JoinPath(entry.path, "<<"), "a merge key needs a mapping (<<: *anchor)");
    }
  }
}

std::optional<Fields> Parser::MapFields(const Entry& entry,
                                        const std::vector<std::string>& allowed) {
  if (!entry.value.IsMap()) {
    Error(entry, "must be a mapping (key: value), got " + std::string(NodeKindName(entry.value)));
    return std::nullopt;
  }
  Fields fields;
  CollectFields(entry, entry.value, allowed, fields, false);
  return fields;
}

std::optional<std::string> Parser::Scalar(const Entry& entry) {
  if (!entry.value.IsDefined() || entry.value.IsNull()) {
    Error(entry, "needs a value");
    return std::nullopt;
  }
  if (!entry.value.IsScalar()) {
    Error(entry, "must be a single value, got " + std::string(NodeKindName(entry.value)));
    return std::nullopt;
  }
  return entry.value.Scalar();
}

std::optional<std::string> Parser::PlainScalar(const Entry& entry) {
  auto raw = Scalar(entry);
  if (!raw) return std::nullopt;
  if (HasPlaceholder(*raw)) {
    Error(entry, "references such as " + QuoteForMessage(Display(*raw)) +
                     " are only expanded in store, endpoint, auth and options values");
    return std::nullopt;
  }
  return raw;
}

std::optional<int64_t> Parser::Integer(const Entry& entry, int64_t min, int64_t max) {
  auto raw = PlainScalar(entry);
  if (!raw) return std::nullopt;
  const std::string range = max == std::numeric_limits<int64_t>::max()
                                ? "at least " + std::to_string(min)
                                : "between " + std::to_string(min) + " and " + std::to_string(max);
  if (!IsIntegerText(*raw)) {
    Error(entry, "must be a whole number " + range + ", got " + QuoteForMessage(*raw));
    return std::nullopt;
  }
  errno = 0;
  const long long value = std::strtoll(raw->c_str(), nullptr, 10);
  if (errno == ERANGE || value < min || value > max) {
    Error(entry, "must be a whole number " + range + ", got " + QuoteForMessage(*raw));
    return std::nullopt;
  }
  return value;
}

std::optional<Duration> Parser::DurationValue(const Entry& entry, bool allow_zero) {
  auto raw = PlainScalar(entry);
  if (!raw) return std::nullopt;
  Result<Duration> parsed = ParseDuration(*raw);
  if (!parsed.ok()) {
    Error(entry, parsed.status().message());
    return std::nullopt;
  }
  if (!allow_zero && *parsed <= Duration::zero()) {
    Error(entry, "must be longer than zero, got " + QuoteForMessage(*raw));
    return std::nullopt;
  }
  return *parsed;
}

std::optional<bool> Parser::Bool(const Entry& entry) {
  auto raw = PlainScalar(entry);
  if (!raw) return std::nullopt;
  if (*raw == "true" || *raw == "True" || *raw == "TRUE") return true;
  if (*raw == "false" || *raw == "False" || *raw == "FALSE") return false;
  Error(entry, "must be true or false, got " + QuoteForMessage(*raw));
  return std::nullopt;
}

// A short identifier (provider name, adapter, kind, label).
std::optional<std::string> Parser::Name(const Entry& entry, std::string_view what) {
  auto raw = PlainScalar(entry);
  if (!raw) return std::nullopt;
  const bool valid =
      !raw->empty() && raw->size() <= 64 && std::all_of(raw->begin(), raw->end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
      });
  if (!valid) {
    Error(entry, std::string(what) + " must be 1 to 64 letters, digits, '.', '_' or '-', got " +
                     QuoteForMessage(*raw));
    return std::nullopt;
  }
  return raw;
}

std::optional<std::string> Parser::ReadSecretFile(const std::string& path, const Entry& entry,
                                                  std::string_view written_as) {
  std::filesystem::path file(path);
  if (file.is_relative() && !env_.base_dir.empty())
    file = std::filesystem::path(env_.base_dir) / file;
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    Error(entry, "cannot read secret file " + QuoteForMessage(file.string(), 200) + " (from " +
                     std::string(written_as) + "): " + std::strerror(errno));
    return std::nullopt;
  }
  std::string content;
  char buffer[4096];
  while (in.read(buffer, sizeof buffer) || in.gcount() > 0) {
    content.append(buffer, static_cast<std::size_t>(in.gcount()));
    if (content.size() > kMaxSecretFileBytes) {
      Error(entry, "secret file " + QuoteForMessage(file.string(), 200) + " is larger than 1 MiB");
      return std::nullopt;
    }
  }
  std::string value = Trim(content);
  if (value.empty()) {
    Error(entry, "secret file " + QuoteForMessage(file.string(), 200) + " is empty");
    return std::nullopt;
  }
  return value;
}

std::optional<Expanded> Parser::Expand(const std::string& raw, const Entry& entry) {
  Expanded out;
  out.display = Display(raw);
  std::size_t pos = 0;
  bool ok = true;
  const auto append_text = [&](std::string_view text) {
    if (text.find("${") != std::string_view::npos) {
      Error(entry, "unterminated reference in " + QuoteForMessage(out.display) +
                       " (write ${NAME} on one line; $${ for a literal ${)");
      ok = false;
    }
    out.value += text;
    out.masked += text;
  };
  while (ok) {
    const std::size_t at = raw.find(kPlaceholderPrefix, pos);
    if (at == std::string::npos) break;
    append_text(std::string_view(raw).substr(pos, at - pos));
    std::size_t end = at + kPlaceholderPrefix.size();
    std::size_t index = 0;
    while (end < raw.size() && std::isdigit(static_cast<unsigned char>(raw[end]))) {
      index = index * 10 + static_cast<std::size_t>(raw[end] - '0');
      ++end;
    }
    if (raw.compare(end, 2, "__") != 0 || index >= refs_.size()) {
      append_text(std::string_view(raw).substr(at, end - at));
      pos = end;
      continue;
    }
    pos = end + 2;
    const Reference& ref = refs_[index];
    switch (ref.kind) {
      case Reference::Kind::kLiteral:
        out.value += ref.original.substr(1);
        out.masked += ref.original.substr(1);
        break;
      case Reference::Kind::kInvalid:
        Error(entry, ref.problem);
        ok = false;
        break;
      case Reference::Kind::kEnv: {
        std::optional<std::string> value;
        if (env_.getenv) {
          value = env_.getenv(ref.name);
        } else if (const char* v = std::getenv(ref.name.c_str()); v != nullptr) {
          value = std::string(v);
        }
        if ((!value || value->empty()) && ref.fallback) value = ref.fallback;
        if (!value) {
          Error(entry, "environment variable " + ref.name + " is not set (referenced as " +
                           ref.original + ")");
          ok = false;
          break;
        }
        out.value += *value;
        out.masked += "****";
        out.has_references = true;
        break;
      }
      case Reference::Kind::kFile: {
        auto value = ReadSecretFile(ref.name, entry, ref.original);
        if (!value) {
          ok = false;
          break;
        }
        out.value += *value;
        out.masked += "****";
        out.has_references = true;
        break;
      }
    }
  }
  if (!ok) return std::nullopt;
  append_text(std::string_view(raw).substr(pos));
  if (!ok) return std::nullopt;
  return out;
}

std::optional<Expanded> Parser::String(const Entry& entry) {
  auto raw = Scalar(entry);
  if (!raw) return std::nullopt;
  return Expand(*raw, entry);
}

std::optional<Expanded> Parser::Secret(const Entry& entry) {
  std::optional<Expanded> secret;
  if (entry.value.IsMap()) {  // { file: /path }
    auto fields = MapFields(entry, kFileKeys);
    if (!fields) return std::nullopt;
    auto it = fields->find("file");
    if (it == fields->end()) {
      Error(entry, "needs a secret: a value, ${NAME}, ${file:/path} or { file: /path }");
      return std::nullopt;
    }
    auto path = String(it->second);
    if (!path) return std::nullopt;
    auto value = ReadSecretFile(path->value, it->second, "{ file: " + path->display + " }");
    if (!value) return std::nullopt;
    secret = Expanded{*value, "****", "{ file: " + path->display + " }", true};
  } else {
    secret = String(entry);
    if (!secret) return std::nullopt;
  }
  if (secret->value.empty()) {
    Error(entry, secret->has_references
                     ? QuoteForMessage(secret->display) + " expands to an empty secret"
                     : std::string("the secret is empty"));
    return std::nullopt;
  }
  secret->masked = "****";
  return secret;
}

// ---------------------------------------------------------------------------------------
// Sections

void Parser::ParseEngine(const Entry& entry, EngineConfig& engine) {
  auto fields = MapFields(entry, kEngineKeys);
  if (!fields) return;
  for (const auto& [name, field] : *fields) {
    if (name == "claim_batch") {
      if (auto v = Integer(field, 1, 100000)) engine.claim_batch = static_cast<std::size_t>(*v);
    } else if (name == "lease") {
      if (auto v = DurationValue(field, false)) engine.lease = *v;
    } else if (name == "worker_threads") {
      if (auto v = Integer(field, 1, 1024)) engine.worker_threads = static_cast<int>(*v);
    } else if (name == "poll_interval") {
      if (auto v = DurationValue(field, false)) engine.poll_interval = *v;
    }
  }
}

void Parser::ParseRateLimit(const Entry& entry, RateLimitConfig& rate) {
  auto fields = MapFields(entry, kRateLimitKeys);
  if (!fields) return;
  if (auto it = fields->find("per_second"); it != fields->end()) {
    auto raw = PlainScalar(it->second);
    if (raw) {
      auto value = ParseFiniteDouble(*raw);
      if (!value || *value <= 0) {
        Error(it->second, "must be a positive number, got " + QuoteForMessage(*raw));
      } else {
        rate.per_second = *value;
      }
    }
  }
  rate.burst = rate.per_second ? std::max(1.0, std::ceil(*rate.per_second)) : 1.0;
  if (auto it = fields->find("burst"); it != fields->end()) {
    auto raw = PlainScalar(it->second);
    if (raw) {
      auto value = ParseFiniteDouble(*raw);
      if (!value || *value < 1 || *value != std::floor(*value) || *value > 1e9) {
        Error(it->second, "must be a whole number at least 1, got " + QuoteForMessage(*raw));
      } else if (!fields->count("per_second")) {
        Error(it->second,
              "burst without per_second has no effect (set per_second, or remove "
              "burst for no limit)");
      } else {
        rate.burst = *value;
      }
    }
  }
}

void Parser::ParseRetry(const Entry& entry, RetryConfig& retry) {
  auto fields = MapFields(entry, kRetryKeys);
  if (!fields) return;
  for (const auto& [name, field] : *fields) {
    if (name == "max_attempts") {
      if (auto v = Integer(field, 1, 1000)) retry.max_attempts = static_cast<int>(*v);
    } else if (name == "base_delay") {
      if (auto v = DurationValue(field, false)) retry.base_delay = *v;
    } else if (name == "max_delay") {
      if (auto v = DurationValue(field, false)) retry.max_delay = *v;
    } else if (name == "jitter") {
      if (auto v = PlainScalar(field)) {
        if (*v == "full") {
          retry.jitter = JitterMode::kFull;
        } else if (*v == "decorrelated") {
          retry.jitter = JitterMode::kDecorrelated;
        } else {
          Error(field, "must be full or decorrelated, got " + QuoteForMessage(*v));
        }
      }
    }
  }
  if (retry.max_delay < retry.base_delay) {
    const auto it =
        fields->count("max_delay") ? fields->find("max_delay") : fields->find("base_delay");
    Error(it->second, "max_delay (" + FormatDuration(retry.max_delay) +
                          ") must not be shorter than base_delay (" +
                          FormatDuration(retry.base_delay) + ")");
  }
}

void Parser::ParseBreaker(const Entry& entry, CircuitBreakerConfig& breaker, Duration timeout) {
  breaker.probe_timeout = timeout;
  auto fields = MapFields(entry, kBreakerKeys);
  if (!fields) return;
  for (const auto& [name, field] : *fields) {
    if (name == "failure_rate") {
      if (auto raw = PlainScalar(field)) {
        auto value = ParseFiniteDouble(*raw);
        if (!value || *value <= 0 || *value > 1) {
          Error(field, "must be a number in (0, 1] (a share of failed calls, e.g. 0.5), got " +
                           QuoteForMessage(*raw));
        } else {
          breaker.failure_rate = *value;
        }
      }
    } else if (name == "window") {
      if (auto v = Integer(field, 1, 100000)) breaker.window = static_cast<int>(*v);
    } else if (name == "min_calls") {
      if (auto v = Integer(field, 1, 100000)) breaker.min_calls = static_cast<int>(*v);
    } else if (name == "open_for") {
      if (auto v = DurationValue(field, false)) breaker.open_for = *v;
    } else if (name == "half_open_calls") {
      if (auto v = Integer(field, 1, 1000)) breaker.half_open_calls = static_cast<int>(*v);
    } else if (name == "probe_timeout") {
      if (auto v = DurationValue(field, false)) breaker.probe_timeout = *v;
    }
  }
  if (!fields->count("min_calls")) {
    breaker.min_calls = std::min(breaker.min_calls, breaker.window);
  } else if (breaker.min_calls > breaker.window) {
    Error(fields->at("min_calls"), "must be between 1 and window (" +
                                       std::to_string(breaker.window) + "), got " +
                                       std::to_string(breaker.min_calls));
  }
}

void Parser::ParseBatch(const Entry& entry, BatchConfig& batch) {
  auto fields = MapFields(entry, kBatchKeys);
  if (!fields) return;
  for (const auto& [name, field] : *fields) {
    if (name == "max_items") {
      if (auto v = Integer(field, 1, 100000)) batch.max_items = static_cast<std::size_t>(*v);
    } else if (name == "max_wait") {
      if (auto v = DurationValue(field, true)) batch.max_wait = *v;
    }
  }
}

void Parser::ParseAuth(const Entry& entry, ProviderConfig& provider) {
  auto fields = MapFields(entry, kAuthKeys);
  if (!fields) return;
  if (fields->empty()) {
    Error(entry, "needs one of bearer, basic, query or header");
    return;
  }
  if (fields->size() > 1) {
    Error(entry, "takes only one of bearer, basic, query or header");
    return;
  }
  const auto& [kind, field] = *fields->begin();
  AuthSpec& auth = provider.auth;
  if (kind == "bearer") {
    if (auto secret = Secret(field)) {
      auth.kind = AuthSpec::Kind::kBearer;
      auth.secret = secret->value;
    }
  } else if (kind == "basic") {
    auto basic = MapFields(field, kBasicKeys);
    if (!basic) return;
    for (const char* required : {"user", "password"}) {
      if (!basic->count(required)) {
        Error(field.mark, JoinPath(field.path, required),
              "missing (basic needs user and password)");
      }
    }
    if (basic->size() != 2) return;
    auto user = String(basic->at("user"));
    auto password = Secret(basic->at("password"));
    if (!user || !password) return;
    if (user->value.empty()) {
      Error(basic->at("user"), "must not be empty");
      return;
    }
    auth.kind = AuthSpec::Kind::kBasic;
    auth.user = user->value;
    auth.secret = password->value;
    if (user->has_references) provider.secret_masks["auth.user"] = user->masked;
  } else {  // query, header: { NAME: secret }
    if (!field.value.IsMap() || field.value.size() != 1) {
      Error(field, "must be one `NAME: secret` pair, e.g. { " +
                       std::string(kind == "query" ? "token" : "X-Api-Key") + ": ${TOKEN} }");
      return;
    }
    const auto pair = *field.value.begin();
    if (!pair.first.IsScalar()) {
      Error(field, "the " + kind + " name must be a plain name");
      return;
    }
    const std::string name = Display(pair.first.Scalar());
    const Entry secret_entry = Child(field, pair.first, pair.second, name);
    const bool header_token = std::all_of(name.begin(), name.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || std::strchr("!#$%&'*+-.^_`|~", c);
    });
    const bool query_name = std::none_of(name.begin(), name.end(), [](char c) {
      return std::isspace(static_cast<unsigned char>(c)) || std::strchr("&=#?/", c);
    });
    if (name.empty() || HasPlaceholder(pair.first.Scalar()) ||
        !(kind == "header" ? header_token : query_name)) {
      Error(secret_entry.mark, field.path,
            "not a valid " + kind + " name: " + QuoteForMessage(name));
      return;
    }
    if (auto secret = Secret(secret_entry)) {
      auth.kind = kind == "query" ? AuthSpec::Kind::kQueryParam : AuthSpec::Kind::kHeader;
      auth.name = name;
      auth.secret = secret->value;
    }
  }
  if (auth.kind != AuthSpec::Kind::kNone) provider.secret_masks["auth.secret"] = "****";
}

std::optional<nlohmann::json> Parser::ToJson(const Entry& entry, const std::string& pointer,
                                             ProviderConfig& provider) {
  const YAML::Node& node = entry.value;
  if (!node.IsDefined() || node.IsNull()) return nlohmann::json(nullptr);
  if (node.IsSequence()) {
    nlohmann::json array = nlohmann::json::array();
    std::size_t index = 0;
    bool ok = true;
    for (const auto& item : node) {
      Entry child{YAML::Node(), item, entry.path + "[" + std::to_string(index) + "]",
                  item.Mark().is_null() ? entry.mark : item.Mark()};
      auto value = ToJson(child, pointer + "/" + std::to_string(index), provider);
      if (value) {
        array.push_back(std::move(*value));
      } else {
        ok = false;
      }
      ++index;
    }
    if (!ok) return std::nullopt;
    return array;
  }
  if (node.IsMap()) {
    nlohmann::json object = nlohmann::json::object();
    bool ok = true;
    for (const auto& pair : node) {
      if (!pair.first.IsScalar() || HasPlaceholder(pair.first.Scalar())) {
        Error(pair.first.Mark(), entry.path, "option names must be plain names");
        ok = false;
        continue;
      }
      const std::string name = pair.first.Scalar();
      const Entry child = Child(entry, pair.first, pair.second, name);
      if (object.contains(name)) {
        Error(pair.first.Mark(), child.path, "duplicate key");
        ok = false;
        continue;
      }
      auto value = ToJson(child, pointer + "/" + EscapeJsonPointerToken(name), provider);
      if (value) {
        object[name] = std::move(*value);
      } else {
        ok = false;
      }
    }
    if (!ok) return std::nullopt;
    return object;
  }
  const std::string& raw = node.Scalar();
  if (HasPlaceholder(raw)) {
    auto expanded = Expand(raw, entry);
    if (!expanded) return std::nullopt;
    if (expanded->has_references) provider.secret_masks["options" + pointer] = expanded->masked;
    return nlohmann::json(expanded->value);
  }
  const std::string& tag = node.Tag();
  if (tag == "!" || tag.ends_with(":str")) return nlohmann::json(raw);
  if (IsPlain(node)) {
    if (IsNullScalar(raw)) return nlohmann::json(nullptr);
    if (raw == "true" || raw == "True" || raw == "TRUE") return nlohmann::json(true);
    if (raw == "false" || raw == "False" || raw == "FALSE") return nlohmann::json(false);
    if (IsIntegerText(raw)) {
      errno = 0;
      const long long value = std::strtoll(raw.c_str(), nullptr, 10);
      if (errno != ERANGE) return nlohmann::json(static_cast<int64_t>(value));
    }
    if (auto value = ParseFiniteDouble(raw)) return nlohmann::json(*value);
  }
  return nlohmann::json(raw);
}

std::optional<ProviderConfig> Parser::ParseProvider(const Entry& entry) {
  auto fields = MapFields(entry, kProviderKeys);
  if (!fields) return std::nullopt;
  ProviderConfig provider;
  provider.origin = file_ + ":" + std::to_string(entry.mark.is_null() ? 1 : entry.mark.line + 1);

  for (const char* required : {"name", "adapter"}) {
    if (!fields->count(required)) {
      Error(entry.mark, JoinPath(entry.path, required),
            std::string("missing (every provider needs ") +
                (std::strcmp(required, "name") == 0 ? "a unique name)"
                                                    : "an adapter, e.g. ipinfo or maxmind)"));
    }
  }
  const auto get = [&](const char* key) -> const Entry* {
    auto it = fields->find(key);
    return it == fields->end() ? nullptr : &it->second;
  };
  if (auto* f = get("name")) {
    if (auto v = Name(*f, "a provider name")) provider.name = *v;
  }
  if (auto* f = get("adapter")) {
    if (auto v = Name(*f, "an adapter name")) provider.adapter = *v;
  }
  if (auto* f = get("kind")) {
    if (auto v = Name(*f, "a kind")) provider.kind = *v;
  }
  if (auto* f = get("applies_to")) {
    provider.applies_to.clear();
    if (f->value.IsScalar()) {
      if (auto v = Name(*f, "a label")) provider.applies_to.push_back(*v);
    } else if (f->value.IsSequence() && f->value.size() > 0) {
      std::size_t index = 0;
      for (const auto& item : f->value) {
        Entry child{YAML::Node(), item, f->path + "[" + std::to_string(index++) + "]",
                    item.Mark().is_null() ? f->mark : item.Mark()};
        if (auto v = Name(child, "a label")) provider.applies_to.push_back(*v);
      }
    } else {
      Error(*f, "must be a non-empty list of labels, e.g. [ip]");
    }
  }
  if (auto* f = get("endpoint")) {
    if (auto v = String(*f)) {
      if (!v->value.starts_with("http://") && !v->value.starts_with("https://")) {
        Error(*f,
              v->has_references
                  ? QuoteForMessage(v->display) + " does not expand to an http:// or https:// URL"
                  : "must be an http:// or https:// URL, got " + QuoteForMessage(v->display));
      } else {
        provider.endpoint = v->value;
        if (v->has_references) provider.secret_masks["endpoint"] = v->masked;
      }
    }
  }
  if (auto* f = get("auth")) ParseAuth(*f, provider);
  if (auto* f = get("rate_limit")) ParseRateLimit(*f, provider.rate_limit);
  if (auto* f = get("concurrency")) {
    if (auto v = Integer(*f, 1, 10000)) provider.concurrency = static_cast<int>(*v);
  }
  if (auto* f = get("timeout")) {
    if (auto v = DurationValue(*f, false)) provider.timeout = *v;
  }
  if (auto* f = get("retry")) ParseRetry(*f, provider.retry);
  provider.circuit_breaker.probe_timeout = provider.timeout;
  if (auto* f = get("circuit_breaker")) {
    ParseBreaker(*f, provider.circuit_breaker, provider.timeout);
  }
  if (auto* f = get("batch")) ParseBatch(*f, provider.batch);
  if (auto* f = get("ttl")) {
    if (auto v = DurationValue(*f, false)) provider.ttl = *v;
  }
  if (auto* f = get("no_data_ttl")) {
    if (auto v = DurationValue(*f, false)) provider.no_data_ttl = *v;
  }
  if (auto* f = get("options")) {
    if (!f->value.IsMap()) {
      Error(*f, "must be a mapping (key: value), got " + std::string(NodeKindName(f->value)));
    } else if (auto v = ToJson(*f, "", provider)) {
      provider.options = std::move(*v);
    }
  }
  if (auto* f = get("enabled")) {
    if (auto v = Bool(*f)) provider.enabled = *v;
  }
  return provider;  // possibly incomplete when errors were reported: Parse() then fails
}

EnrichdConfig Parser::Parse(const YAML::Node& root) {
  EnrichdConfig config;
  config.source_path = file_;
  Entry top{YAML::Node(), root, "", root.Mark()};
  if (!root.IsDefined() || root.IsNull()) {
    Error(root.Mark(), "", "the configuration is empty (expected store:, providers: and engine:)");
    return config;
  }
  auto fields = MapFields(top, kTopKeys);
  if (!fields) return config;
  if (auto it = fields->find("store"); it != fields->end()) {
    if (auto v = String(it->second)) {
      const std::string& url = v->value;
      if (!url.starts_with("sqlite://") && !url.starts_with("postgresql://") &&
          !url.starts_with("postgres://")) {
        Error(it->second,
              (v->has_references ? QuoteForMessage(v->display) + " does not expand to"
                                 : QuoteForMessage(MaskUrlPassword(v->display)) + " is not") +
                  std::string(" a store URL (sqlite://PATH or postgresql://...)"));
      } else {
        config.store = url;
        if (v->has_references) config.secret_masks["store"] = v->masked;
      }
    }
  }
  if (auto it = fields->find("engine"); it != fields->end()) ParseEngine(it->second, config.engine);
  if (auto it = fields->find("providers"); it != fields->end()) {
    const Entry& list = it->second;
    if (!list.value.IsSequence()) {
      Error(list, "must be a list of providers (each item starting with `- name:`), got " +
                      std::string(NodeKindName(list.value)));
      return config;
    }
    std::map<std::string, std::string> first_seen;  // name -> origin
    std::size_t index = 0;
    for (const auto& item : list.value) {
      Entry entry{YAML::Node(), item, "providers[" + std::to_string(index) + "]",
                  item.Mark().is_null() ? list.mark : item.Mark()};
      ++index;
      auto provider = ParseProvider(entry);
      if (!provider) continue;
      if (provider->name.empty()) continue;  // missing or invalid: reported
      auto [seen, inserted] = first_seen.emplace(provider->name, provider->origin);
      if (!inserted) {
        const Entry& name_entry = entry;  // point at the entry's name key when possible
        YAML::Mark mark = name_entry.mark;
        for (const auto& pair : item) {
          if (pair.first.IsScalar() && pair.first.Scalar() == "name") mark = pair.second.Mark();
        }
        Error(mark, entry.path + ".name",
              "duplicate provider name " + QuoteForMessage(provider->name) + " (first defined at " +
                  seen->second + ")");
        continue;
      }
      config.providers.push_back(std::move(*provider));
    }
  }
  return config;
}

Status JoinErrors(const std::vector<std::string>& errors) {
  std::string message;
  for (const auto& e : errors) message += (message.empty() ? "" : "\n") + e;
  if (errors.size() >= kMaxErrors) message += "\n(further errors not shown)";
  return InvalidArgumentError(std::move(message));
}

}  // namespace

Result<EnrichdConfig> ParseConfig(std::string_view text, std::string_view source_name,
                                  const ConfigEnvironment& env) {
  const std::string file(source_name.empty() ? "<config>" : source_name);
  if (const std::size_t at = text.find(kPlaceholderPrefix); at != std::string_view::npos) {
    const auto line =
        std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(at), '\n');
    return InvalidArgumentError(file + ":" + std::to_string(line + 1) + ": the text " +
                                std::string(kPlaceholderPrefix) + " is reserved");
  }
  std::vector<Reference> refs;
  const std::string prepared = ReplaceReferences(text, refs);
  YAML::Node root;
  try {
    root = YAML::Load(prepared);
  } catch (const YAML::Exception& e) {
    const int line = e.mark.is_null() ? 1 : e.mark.line + 1;
    return InvalidArgumentError(file + ":" + std::to_string(line) +
                                ": YAML syntax error: " + e.msg);
  }
  try {
    Parser parser(file, std::move(refs), env);
    EnrichdConfig config = parser.Parse(root);
    if (parser.has_errors()) return JoinErrors(parser.errors());
    return config;
  } catch (const YAML::Exception& e) {
    const int line = e.mark.is_null() ? 1 : e.mark.line + 1;
    return InvalidArgumentError(file + ":" + std::to_string(line) + ": " + e.msg);
  } catch (const std::exception& e) {
    return InternalError(file + ": unexpected error while reading the configuration: " + e.what());
  }
}

Result<EnrichdConfig> LoadConfig(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return InvalidArgumentError(path + ": cannot read: is a directory");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return InvalidArgumentError(path + ": cannot read: " + std::strerror(errno));
  }
  std::ostringstream content;
  content << in.rdbuf();
  if (in.bad()) return InvalidArgumentError(path + ": cannot read: " + std::strerror(errno));
  ConfigEnvironment env;
  env.base_dir = std::filesystem::path(path).parent_path().string();
  return ParseConfig(content.str(), path, env);
}

}  // namespace enrichd

// The YAML configuration: the store, the providers and the engine's scheduling settings.
//
// LoadConfig()/ParseConfig() read a file in the format of docs/CONFIG.md, fill in every
// default, validate every value and expand secret references (`${NAME}`, `${file:PATH}`,
// `{ file: PATH }`) once, at load. The result is a plain value: copy it, share it read-only
// between threads, nothing in it changes after loading.
//
// Errors: every problem with the file is kInvalidArgument whose message has one line per
// problem, each `FILE:LINE: KEY: what is wrong`, e.g.
//   providers.yaml:14: providers[1].rate_limit.per_second: must be a positive number, got "-3"
// Unknown keys are errors at every level (except inside a provider's `options:`, which its
// adapter checks). Messages never contain a secret: a value that came from the environment or
// a file is shown as the reference that produced it.
//
// Secrets: every value under `auth:` and every part of a string expanded from a reference is
// a secret. The config records where they are (`secret_masks`) so that DescribeEffective()
// prints `****` in their place.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "enrichd/adapter.h"
#include "enrichd/clock.h"
#include "enrichd/status.h"

namespace enrichd {

// Token bucket of one provider: at most `burst` calls at once, `per_second` on average.
struct RateLimitConfig {
  std::optional<double> per_second;  // calls per second, > 0; nullopt: unlimited
  double burst = 1;                  // bucket size, a whole number >= 1;
                                     // default max(1, ceil(per_second))
  bool unlimited() const { return !per_second.has_value(); }
};

// Backoff shapes (docs/RESILIENCE.md): full `rand(0, min(max, base*2^n))`,
// decorrelated `min(max, rand(base, 3*previous))`.
enum class JitterMode { kFull, kDecorrelated };
std::string_view JitterModeName(JitterMode mode);  // "full", "decorrelated"

struct RetryConfig {
  int max_attempts = 5;  // calls in all, the first one included; >= 1 (1: never retry)
  Duration base_delay = std::chrono::milliseconds(200);  // > 0
  Duration max_delay = std::chrono::seconds(30);         // >= base_delay
  JitterMode jitter = JitterMode::kFull;
};

// Failure-rate breaker over the last `window` calls (docs/RESILIENCE.md).
struct CircuitBreakerConfig {
  double failure_rate = 0.5;  // opens at or above this share of failures, in (0, 1]
  int window = 20;            // calls scored, >= 1
  int min_calls = 10;         // no decision before this many calls, in [1, window]
  Duration open_for = std::chrono::seconds(30);       // open -> half-open after this, > 0
  int half_open_calls = 3;                            // probes admitted when half-open, >= 1
  Duration probe_timeout = std::chrono::seconds(10);  // a silent probe frees its slot after
                                                      // this; default: the provider's timeout
};

struct BatchConfig {
  std::size_t max_items = 1;                          // items per call, >= 1 (1: no batching)
  Duration max_wait = std::chrono::milliseconds(20);  // wait this long to fill a batch, >= 0
};

// One entry of `providers:`. Every field holds its effective value (defaults filled in).
struct ProviderConfig {
  std::string name;     // unique; letters, digits, '.', '_', '-'
  std::string adapter;  // implementation name, e.g. "ipinfo", "maxmind", "http_json"
  std::string kind;     // "asn", "geo", ...; empty: the adapter's default
  std::vector<std::string> applies_to = {"ip"};  // source labels this provider enriches
  std::string endpoint;  // base URL (http:// or https://); empty: the real provider's
  AuthSpec auth;         // secret already expanded
  RateLimitConfig rate_limit;
  int concurrency = 8;                          // requests in flight, >= 1
  Duration timeout = std::chrono::seconds(10);  // per HTTP request, > 0
  RetryConfig retry;
  CircuitBreakerConfig circuit_breaker;
  BatchConfig batch;
  Duration ttl = std::chrono::hours(24 * 7);          // an `ok` result is current this long
  Duration no_data_ttl = std::chrono::hours(24);      // a `no_data` result is current this long
  nlohmann::json options = nlohmann::json::object();  // adapter-specific, references expanded
  bool enabled = true;                                // false: kept in the config, never scheduled
  std::string origin;  // "FILE:LINE" of the entry, to prefix later errors about it

  // Where secrets are, for display: key path -> masked rendering. Paths are "endpoint",
  // "auth.user", "auth.secret" and "options" + a JSON pointer ("options/headers/X-Api-Key").
  // The rendering replaces each expanded reference by "****" ("****" alone under auth).
  std::map<std::string, std::string> secret_masks;

  // What the adapter factory needs (AdapterRegistry::Create).
  AdapterSpec ToAdapterSpec() const;
};

// Top-level `engine:` settings: how the scheduler claims and runs tasks.
struct EngineConfig {
  std::size_t claim_batch = 64;                      // tasks claimed per store round trip
  Duration lease = std::chrono::seconds(60);         // a claimed task is ours this long
  int worker_threads = 4;                            // threads for synchronous adapters
  Duration poll_interval = std::chrono::seconds(1);  // idle wait before looking for work
};

struct EnrichdConfig {
  std::optional<std::string> store;       // `store:`, references expanded; nullopt: not in the file
  std::vector<ProviderConfig> providers;  // in file order
  EngineConfig engine;
  std::string source_path;  // the file (or source name) it was read from
  // "store" -> masked rendering, when the store URL holds a reference (see ProviderConfig).
  std::map<std::string, std::string> secret_masks;

  // The provider named `name`, or nullptr.
  const ProviderConfig* FindProvider(std::string_view name) const;
};

// Where references are resolved. Defaults: the process environment, and relative secret
// file paths against the current directory (LoadConfig: against the config file's folder).
struct ConfigEnvironment {
  std::function<std::optional<std::string>(const std::string& name)> getenv;
  std::string base_dir;
};

// Reads and parses `path`. kInvalidArgument for an unreadable file ("PATH: cannot read: ...")
// or any problem in it (see the file comment).
Result<EnrichdConfig> LoadConfig(const std::string& path);
// Parses YAML text; `source_name` is the FILE of error messages and of `origin`.
Result<EnrichdConfig> ParseConfig(std::string_view text, std::string_view source_name,
                                  const ConfigEnvironment& env = {});

// The effective configuration as YAML (every default filled in, durations in the syntax
// below), for `enrichd run --check`. Secrets are printed as "****"; the output parses
// again with ParseConfig (masked values then read as the literal "****").
std::string DescribeEffective(const EnrichdConfig& config);

// Durations: one or more `<number><unit>` with units ms, s, m, h, d and an optional
// decimal fraction ("250ms", "1.5s", "1m30s", "7d"); "0" alone is zero. A number without
// a unit is rejected (seconds or milliseconds would be a guess). Negative, garbage or longer
// than 100 years: kInvalidArgument with a message saying why (no file or key).
Result<Duration> ParseDuration(std::string_view text);

// kInvalidArgument, one `FILE:LINE: providers[i].adapter: ...` line per provider whose
// adapter is not in `known` (suggesting the closest), so that `run --check` reports them
// with a line number. OK when all are known.
Status CheckAdapterNames(const EnrichdConfig& config, const std::vector<std::string>& known);

// The store URL by precedence: `flag` (--store) if set and non-empty, else config->store,
// else the environment variable ENRICHD_STORE if non-empty, else "sqlite://enrichd.db".
// `config` may be null.
std::string ResolveStoreUrl(const std::optional<std::string>& flag, const EnrichdConfig* config);

// `url` with any password in its user-info replaced by "****"
// ("postgresql://u:****@h/db"), for display.
std::string MaskUrlPassword(std::string_view url);

}  // namespace enrichd

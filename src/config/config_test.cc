#include "enrichd/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>

namespace enrichd {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

// The example of DESIGN.md "Provider configuration (YAML)", verbatim.
constexpr const char* kDesignExample =
    R"(store: sqlite://enrichd.db            # or postgresql://user@host:5432/db
providers:
  - name: ipinfo                      # unique
    adapter: ipinfo                   # which adapter implementation
    kind: geo
    applies_to: [ip]
    endpoint: https://ipinfo.io
    auth: { bearer: ${IPINFO_TOKEN} } # secrets from the environment or a file, never logged
    rate_limit: { per_second: 10, burst: 20 }
    concurrency: 8
    timeout: 5s
    retry: { max_attempts: 5, base_delay: 200ms, max_delay: 30s, jitter: full }
    circuit_breaker: { failure_rate: 0.5, window: 20, min_calls: 10, open_for: 30s, half_open_calls: 3 }
    batch: { max_items: 100 }         # where the API takes many items per call
    ttl: 7d
  - name: geolite-city
    adapter: maxmind                  # local database, synchronous
    kind: geo
    applies_to: [ip]
    options: { database: /var/lib/GeoIP/GeoLite2-City.mmdb }
  - name: inhouse-asn
    adapter: http_json                # any REST/JSON API, configuration only
    kind: asn
    applies_to: [ip]
    endpoint: http://127.0.0.1:8080
    options:
      path: /asn/{key}                # {key} is percent-encoded
      headers: { X-Api-Key: ${INHOUSE_KEY} }
      fields: { asn: /asn, org: /org, prefix: /prefix }   # JSON pointers into the answer
      no_data_when: { pointer: /status, equals: fail }
)";

constexpr const char* kIpinfoToken = "tok-3f9a8c1d2e7b";
constexpr const char* kInhouseKey = "inhouse-5e6f7a8b";

// An environment that holds only what the test gives it.
ConfigEnvironment FakeEnv(std::map<std::string, std::string> vars, std::string base_dir = "") {
  ConfigEnvironment env;
  env.getenv = [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
  env.base_dir = std::move(base_dir);
  return env;
}

ConfigEnvironment DesignEnv() {
  return FakeEnv({{"IPINFO_TOKEN", kIpinfoToken}, {"INHOUSE_KEY", kInhouseKey}});
}

// The error message of parsing `text` as "t.yaml" (empty when it parsed).
std::string ErrorOf(const std::string& text, const ConfigEnvironment& env = FakeEnv({})) {
  Result<EnrichdConfig> config = ParseConfig(text, "t.yaml", env);
  if (config.ok()) return "";
  EXPECT_EQ(config.status().code(), StatusCode::kInvalidArgument);
  return config.status().message();
}

// A one-provider file whose provider has `extra` (indented by four spaces) added.
std::string OneProvider(const std::string& extra) {
  return "providers:\n  - name: p\n    adapter: ipinfo\n" + extra;
}

class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() /
            ("enrichd-config-test-" + std::to_string(rd()) + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string Write(const std::string& name, const std::string& content) const {
    const auto file = path_ / name;
    std::ofstream(file, std::ios::binary) << content;
    return file.string();
  }
  std::string path() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

// ----------------------------------------------------------------------------------------
// The DESIGN.md example

TEST(ConfigTest, DesignExampleParsesWithValuesAndDefaults) {
  Result<EnrichdConfig> result = ParseConfig(kDesignExample, "design.yaml", DesignEnv());
  ASSERT_TRUE(result.ok()) << result.status();
  const EnrichdConfig& config = *result;
  EXPECT_EQ(config.store, "sqlite://enrichd.db");
  EXPECT_EQ(config.source_path, "design.yaml");
  ASSERT_EQ(config.providers.size(), 3u);

  const ProviderConfig& ipinfo = config.providers[0];
  EXPECT_EQ(ipinfo.name, "ipinfo");
  EXPECT_EQ(ipinfo.adapter, "ipinfo");
  EXPECT_EQ(ipinfo.kind, "geo");
  EXPECT_THAT(ipinfo.applies_to, ElementsAre("ip"));
  EXPECT_EQ(ipinfo.endpoint, "https://ipinfo.io");
  EXPECT_EQ(ipinfo.auth.kind, AuthSpec::Kind::kBearer);
  EXPECT_EQ(ipinfo.auth.secret, kIpinfoToken);
  ASSERT_TRUE(ipinfo.rate_limit.per_second.has_value());
  EXPECT_DOUBLE_EQ(*ipinfo.rate_limit.per_second, 10);
  EXPECT_DOUBLE_EQ(ipinfo.rate_limit.burst, 20);
  EXPECT_EQ(ipinfo.concurrency, 8);
  EXPECT_EQ(ipinfo.timeout, seconds(5));
  EXPECT_EQ(ipinfo.retry.max_attempts, 5);
  EXPECT_EQ(ipinfo.retry.base_delay, milliseconds(200));
  EXPECT_EQ(ipinfo.retry.max_delay, seconds(30));
  EXPECT_EQ(ipinfo.retry.jitter, JitterMode::kFull);
  EXPECT_DOUBLE_EQ(ipinfo.circuit_breaker.failure_rate, 0.5);
  EXPECT_EQ(ipinfo.circuit_breaker.window, 20);
  EXPECT_EQ(ipinfo.circuit_breaker.min_calls, 10);
  EXPECT_EQ(ipinfo.circuit_breaker.open_for, seconds(30));
  EXPECT_EQ(ipinfo.circuit_breaker.half_open_calls, 3);
  EXPECT_EQ(ipinfo.circuit_breaker.probe_timeout, seconds(5));  // defaults to timeout
  EXPECT_EQ(ipinfo.batch.max_items, 100u);
  EXPECT_EQ(ipinfo.batch.max_wait, milliseconds(20));
  EXPECT_EQ(ipinfo.ttl, hours(24 * 7));
  EXPECT_EQ(ipinfo.no_data_ttl, hours(24));
  EXPECT_TRUE(ipinfo.enabled);
  EXPECT_EQ(ipinfo.origin, "design.yaml:3");
  EXPECT_TRUE(ipinfo.options.is_object() && ipinfo.options.empty());

  const ProviderConfig& city = config.providers[1];
  EXPECT_EQ(city.name, "geolite-city");
  EXPECT_EQ(city.adapter, "maxmind");
  EXPECT_EQ(city.options, nlohmann::json({{"database", "/var/lib/GeoIP/GeoLite2-City.mmdb"}}));
  EXPECT_EQ(city.endpoint, "");
  EXPECT_EQ(city.auth.kind, AuthSpec::Kind::kNone);
  EXPECT_TRUE(city.rate_limit.unlimited());
  EXPECT_EQ(city.concurrency, 8);
  EXPECT_EQ(city.timeout, seconds(10));
  EXPECT_EQ(city.retry.max_attempts, 5);
  EXPECT_EQ(city.retry.base_delay, milliseconds(200));
  EXPECT_EQ(city.retry.max_delay, seconds(30));
  EXPECT_DOUBLE_EQ(city.circuit_breaker.failure_rate, 0.5);
  EXPECT_EQ(city.circuit_breaker.window, 20);
  EXPECT_EQ(city.circuit_breaker.min_calls, 10);
  EXPECT_EQ(city.circuit_breaker.open_for, seconds(30));
  EXPECT_EQ(city.circuit_breaker.half_open_calls, 3);
  EXPECT_EQ(city.circuit_breaker.probe_timeout, seconds(10));
  EXPECT_EQ(city.batch.max_items, 1u);
  EXPECT_EQ(city.ttl, hours(24 * 7));
  EXPECT_EQ(city.origin, "design.yaml:16");

  const ProviderConfig& inhouse = config.providers[2];
  EXPECT_EQ(inhouse.adapter, "http_json");
  EXPECT_EQ(inhouse.kind, "asn");
  EXPECT_EQ(inhouse.endpoint, "http://127.0.0.1:8080");
  EXPECT_EQ(inhouse.options["path"], "/asn/{key}");
  EXPECT_EQ(inhouse.options["headers"]["X-Api-Key"], kInhouseKey);
  EXPECT_EQ(inhouse.options["fields"],
            nlohmann::json({{"asn", "/asn"}, {"org", "/org"}, {"prefix", "/prefix"}}));
  EXPECT_EQ(inhouse.options["no_data_when"],
            nlohmann::json({{"pointer", "/status"}, {"equals", "fail"}}));
  EXPECT_EQ(inhouse.secret_masks.count("options/headers/X-Api-Key"), 1u);

  EXPECT_EQ(config.FindProvider("inhouse-asn"), &config.providers[2]);
  EXPECT_EQ(config.FindProvider("nope"), nullptr);
}

TEST(ConfigTest, ToAdapterSpecCarriesWhatTheAdapterNeeds) {
  Result<EnrichdConfig> config = ParseConfig(kDesignExample, "design.yaml", DesignEnv());
  ASSERT_TRUE(config.ok()) << config.status();
  const AdapterSpec spec = config->providers[0].ToAdapterSpec();
  EXPECT_EQ(spec.provider_name, "ipinfo");
  EXPECT_EQ(spec.adapter, "ipinfo");
  EXPECT_EQ(spec.kind, "geo");
  EXPECT_EQ(spec.endpoint, "https://ipinfo.io");
  EXPECT_EQ(spec.auth.kind, AuthSpec::Kind::kBearer);
  EXPECT_EQ(spec.auth.secret, kIpinfoToken);
  EXPECT_THAT(spec.applies_to, ElementsAre("ip"));
  EXPECT_EQ(spec.timeout, seconds(5));
  EXPECT_EQ(spec.max_batch, 100u);
  const AdapterSpec inhouse = config->providers[2].ToAdapterSpec();
  EXPECT_EQ(inhouse.options["headers"]["X-Api-Key"], kInhouseKey);
}

TEST(ConfigTest, EngineDefaultsAndValues) {
  Result<EnrichdConfig> defaults = ParseConfig("providers: []\n", "t.yaml", FakeEnv({}));
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_FALSE(defaults->store.has_value());
  EXPECT_EQ(defaults->engine.claim_batch, 64u);
  EXPECT_EQ(defaults->engine.lease, seconds(60));
  EXPECT_EQ(defaults->engine.worker_threads, 4);
  EXPECT_EQ(defaults->engine.poll_interval, seconds(1));

  Result<EnrichdConfig> set = ParseConfig(
      "engine: { claim_batch: 500, lease: 2m, worker_threads: 2, poll_interval: 250ms }\n",
      "t.yaml", FakeEnv({}));
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->engine.claim_batch, 500u);
  EXPECT_EQ(set->engine.lease, minutes(2));
  EXPECT_EQ(set->engine.worker_threads, 2);
  EXPECT_EQ(set->engine.poll_interval, milliseconds(250));
  EXPECT_TRUE(set->providers.empty());
}

TEST(ConfigTest, BurstDefaultsToCeilingOfRateAndAtLeastOne) {
  Result<EnrichdConfig> config = ParseConfig(
      "providers:\n"
      "  - { name: a, adapter: x, rate_limit: { per_second: 0.75 } }\n"
      "  - { name: b, adapter: x, rate_limit: { per_second: 2.5 } }\n"
      "  - { name: c, adapter: x, rate_limit: { per_second: 40, burst: 10 } }\n",
      "t.yaml", FakeEnv({}));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_DOUBLE_EQ(config->providers[0].rate_limit.burst, 1);
  EXPECT_DOUBLE_EQ(config->providers[1].rate_limit.burst, 3);
  EXPECT_DOUBLE_EQ(config->providers[2].rate_limit.burst, 10);
}

TEST(ConfigTest, MinCallsDefaultShrinksToASmallWindow) {
  Result<EnrichdConfig> config =
      ParseConfig(OneProvider("    circuit_breaker: { window: 4 }\n"), "t.yaml", FakeEnv({}));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->providers[0].circuit_breaker.min_calls, 4);
}

TEST(ConfigTest, OptionsKeepTheirTypes) {
  Result<EnrichdConfig> config = ParseConfig(
      OneProvider("    options: { n: 3, f: 1.5, b: true, s: \"123\", plain: abc, none: ~, "
                  "list: [1, two], neg: -4 }\n"),
      "t.yaml", FakeEnv({}));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->providers[0].options,
            nlohmann::json::parse(R"({"n":3,"f":1.5,"b":true,"s":"123","plain":"abc",
                                      "none":null,"list":[1,"two"],"neg":-4})"));
}

TEST(ConfigTest, AppliesToTakesAListOrOneLabel) {
  Result<EnrichdConfig> config = ParseConfig(
      "providers:\n"
      "  - { name: a, adapter: x, applies_to: [ip, domain] }\n"
      "  - { name: b, adapter: x, applies_to: domain }\n",
      "t.yaml", FakeEnv({}));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_THAT(config->providers[0].applies_to, ElementsAre("ip", "domain"));
  EXPECT_THAT(config->providers[1].applies_to, ElementsAre("domain"));
}

TEST(ConfigTest, YamlMergeKeysShareDefaults) {
  Result<EnrichdConfig> config = ParseConfig(
      "providers:\n"
      "  - &base { name: a, adapter: x, timeout: 3s, concurrency: 2 }\n"
      "  - <<: *base\n"
      "    name: b\n"
      "    concurrency: 5\n",
      "t.yaml", FakeEnv({}));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->providers[1].name, "b");
  EXPECT_EQ(config->providers[1].timeout, seconds(3));
  EXPECT_EQ(config->providers[1].concurrency, 5);
}

TEST(ConfigTest, DisabledProviderIsKept) {
  Result<EnrichdConfig> config =
      ParseConfig(OneProvider("    enabled: false\n"), "t.yaml", FakeEnv({}));
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_EQ(config->providers.size(), 1u);
  EXPECT_FALSE(config->providers[0].enabled);
}

// ----------------------------------------------------------------------------------------
// Errors: file, line and key

TEST(ConfigErrorTest, NegativeRateNamesFileLineAndKey) {
  const std::string text =
      "providers:\n"
      "  - name: a\n"
      "    adapter: ipinfo\n"
      "  - name: b\n"
      "    adapter: ip-api\n"
      "    rate_limit:\n"
      "      per_second: -3\n";
  EXPECT_EQ(ErrorOf(text),
            "t.yaml:7: providers[1].rate_limit.per_second: must be a positive number, got \"-3\"");
}

TEST(ConfigErrorTest, UnknownKeysAreErrorsAtEveryLevel) {
  EXPECT_EQ(ErrorOf("stor: sqlite://x.db\n"),
            "t.yaml:1: stor: unknown key (did you mean \"store\"?)");
  EXPECT_THAT(ErrorOf(OneProvider("    timout: 5s\n")),
              HasSubstr("t.yaml:4: providers[0].timout: unknown key (did you mean \"timeout\"?)"));
  EXPECT_THAT(ErrorOf(OneProvider("    rate_limit:\n      per_sec: 10\n")),
              HasSubstr("t.yaml:5: providers[0].rate_limit.per_sec: unknown key (did you mean "
                        "\"per_second\"?)"));
  EXPECT_THAT(ErrorOf(OneProvider("    retry: { max_attempt: 3 }\n")),
              HasSubstr("t.yaml:4: providers[0].retry.max_attempt: unknown key (did you mean "
                        "\"max_attempts\"?)"));
  EXPECT_THAT(ErrorOf(OneProvider("    circuit_breaker: { half_open: 3 }\n")),
              HasSubstr("providers[0].circuit_breaker.half_open: unknown key"));
  EXPECT_THAT(ErrorOf(OneProvider("    batch: { size: 3 }\n")),
              HasSubstr("t.yaml:4: providers[0].batch.size: unknown key"));
  EXPECT_THAT(ErrorOf("engine: { threads: 3 }\n"),
              HasSubstr("t.yaml:1: engine.threads: unknown key"));
  EXPECT_THAT(ErrorOf(OneProvider("    auth: { token: x }\n")),
              HasSubstr("t.yaml:4: providers[0].auth.token: unknown key"));
  // A name far from every key gets no suggestion but the list of known keys.
  EXPECT_EQ(ErrorOf("zzzzzzzz: 1\n"),
            "t.yaml:1: zzzzzzzz: unknown key; known keys here: store, providers, engine");
}

TEST(ConfigErrorTest, MissingRequiredKeysAreNamed) {
  EXPECT_EQ(ErrorOf("providers:\n  - adapter: ipinfo\n"),
            "t.yaml:2: providers[0].name: missing (every provider needs a unique name)");
  EXPECT_EQ(ErrorOf("providers:\n  - name: x\n  - name: y\n"),
            "t.yaml:2: providers[0].adapter: missing (every provider needs an adapter, e.g. "
            "ipinfo or maxmind)\n"
            "t.yaml:3: providers[1].adapter: missing (every provider needs an adapter, e.g. "
            "ipinfo or maxmind)");
}

TEST(ConfigErrorTest, DuplicateProviderNames) {
  EXPECT_EQ(ErrorOf("providers:\n"
                    "  - name: a\n"
                    "    adapter: ipinfo\n"
                    "  - name: a\n"
                    "    adapter: ip-api\n"),
            "t.yaml:4: providers[1].name: duplicate provider name \"a\" (first defined at "
            "t.yaml:2)");
}

TEST(ConfigErrorTest, DuplicateKeys) {
  EXPECT_EQ(ErrorOf(OneProvider("    timeout: 5s\n    timeout: 6s\n")),
            "t.yaml:5: providers[0].timeout: duplicate key");
}

TEST(ConfigErrorTest, YamlSyntaxErrorsGiveTheLine) {
  const std::string message = ErrorOf("providers:\n  - name: a\n    rate_limit: { per_second: 1\n");
  EXPECT_THAT(message, HasSubstr("t.yaml:"));
  EXPECT_THAT(message, HasSubstr("YAML syntax error"));
  EXPECT_THAT(ErrorOf("a: 1\n\tb: 2\n"), HasSubstr("t.yaml:2: YAML syntax error"));
}

TEST(ConfigErrorTest, WrongShapes) {
  EXPECT_EQ(ErrorOf(""),
            "t.yaml:1: the configuration is empty (expected store:, providers: and "
            "engine:)");
  EXPECT_EQ(ErrorOf("- a\n"), "t.yaml:1: must be a mapping (key: value), got a list");
  EXPECT_EQ(ErrorOf("providers: { name: a }\n"),
            "t.yaml:1: providers: must be a list of providers (each item starting with `- "
            "name:`), got a mapping");
  EXPECT_EQ(ErrorOf(OneProvider("    rate_limit: 10\n")),
            "t.yaml:4: providers[0].rate_limit: must be a mapping (key: value), got a single "
            "value");
  EXPECT_EQ(ErrorOf(OneProvider("    timeout:\n")),
            "t.yaml:4: providers[0].timeout: needs a value");
  EXPECT_EQ(ErrorOf(OneProvider("    options: [1]\n")),
            "t.yaml:4: providers[0].options: must be a mapping (key: value), got a list");
  EXPECT_EQ(
      ErrorOf("store: mysql://x\n"),
      "t.yaml:1: store: \"mysql://x\" is not a store URL (sqlite://PATH or postgresql://...)");
  EXPECT_EQ(
      ErrorOf(OneProvider("    endpoint: ipinfo.io\n")),
      "t.yaml:4: providers[0].endpoint: must be an http:// or https:// URL, got \"ipinfo.io\"");
  EXPECT_EQ(ErrorOf(OneProvider("    name: x\n")).substr(0, 40),
            std::string("t.yaml:4: providers[0].name: duplicate key").substr(0, 40));
  EXPECT_EQ(ErrorOf("providers:\n  - name: \"a b\"\n    adapter: x\n"),
            "t.yaml:2: providers[0].name: a provider name must be 1 to 64 letters, digits, '.', "
            "'_' or '-', got \"a b\"");
  EXPECT_EQ(ErrorOf(OneProvider("    enabled: maybe\n")),
            "t.yaml:4: providers[0].enabled: must be true or false, got \"maybe\"");
  EXPECT_EQ(ErrorOf(OneProvider("    retry: { jitter: equal }\n")),
            "t.yaml:4: providers[0].retry.jitter: must be full or decorrelated, got \"equal\"");
}

struct BadValue {
  std::string yaml;      // lines for the provider (indented four spaces)
  std::string expected;  // the whole message
};

class ConfigBadValueTest : public ::testing::TestWithParam<BadValue> {};

TEST_P(ConfigBadValueTest, IsRejectedWithFileLineAndKey) {
  EXPECT_EQ(ErrorOf(OneProvider(GetParam().yaml)), GetParam().expected);
}

INSTANTIATE_TEST_SUITE_P(
    NumericRules, ConfigBadValueTest,
    ::testing::Values(
        BadValue{"    rate_limit: { per_second: 0 }\n",
                 "t.yaml:4: providers[0].rate_limit.per_second: must be a positive number, got "
                 "\"0\""},
        BadValue{"    rate_limit: { per_second: fast }\n",
                 "t.yaml:4: providers[0].rate_limit.per_second: must be a positive number, got "
                 "\"fast\""},
        BadValue{"    rate_limit: { per_second: 5, burst: 0 }\n",
                 "t.yaml:4: providers[0].rate_limit.burst: must be a whole number at least 1, "
                 "got \"0\""},
        BadValue{"    rate_limit: { per_second: 5, burst: 2.5 }\n",
                 "t.yaml:4: providers[0].rate_limit.burst: must be a whole number at least 1, "
                 "got \"2.5\""},
        BadValue{"    rate_limit: { burst: 5 }\n",
                 "t.yaml:4: providers[0].rate_limit.burst: burst without per_second has no "
                 "effect (set per_second, or remove burst for no limit)"},
        BadValue{"    circuit_breaker: { failure_rate: 0 }\n",
                 "t.yaml:4: providers[0].circuit_breaker.failure_rate: must be a number in (0, "
                 "1] (a share of failed calls, e.g. 0.5), got \"0\""},
        BadValue{"    circuit_breaker: { failure_rate: 1.5 }\n",
                 "t.yaml:4: providers[0].circuit_breaker.failure_rate: must be a number in (0, "
                 "1] (a share of failed calls, e.g. 0.5), got \"1.5\""},
        BadValue{"    circuit_breaker: { window: 0 }\n",
                 "t.yaml:4: providers[0].circuit_breaker.window: must be a whole number between "
                 "1 and 100000, got \"0\""},
        BadValue{"    circuit_breaker:\n      window: 5\n      min_calls: 6\n",
                 "t.yaml:6: providers[0].circuit_breaker.min_calls: must be between 1 and window "
                 "(5), got 6"},
        BadValue{"    circuit_breaker: { min_calls: 0 }\n",
                 "t.yaml:4: providers[0].circuit_breaker.min_calls: must be a whole number "
                 "between 1 and 100000, got \"0\""},
        BadValue{"    circuit_breaker: { half_open_calls: 0 }\n",
                 "t.yaml:4: providers[0].circuit_breaker.half_open_calls: must be a whole number "
                 "between 1 and 1000, got \"0\""},
        BadValue{"    retry: { max_attempts: 0 }\n",
                 "t.yaml:4: providers[0].retry.max_attempts: must be a whole number between 1 "
                 "and 1000, got \"0\""},
        BadValue{"    retry: { max_attempts: 2.5 }\n",
                 "t.yaml:4: providers[0].retry.max_attempts: must be a whole number between 1 "
                 "and 1000, got \"2.5\""},
        BadValue{"    retry: { base_delay: 0ms }\n",
                 "t.yaml:4: providers[0].retry.base_delay: must be longer than zero, got "
                 "\"0ms\""},
        BadValue{"    retry:\n      base_delay: 1m\n      max_delay: 30s\n",
                 "t.yaml:6: providers[0].retry.max_delay: max_delay (30s) must not be shorter "
                 "than base_delay (1m)"},
        BadValue{"    concurrency: 0\n",
                 "t.yaml:4: providers[0].concurrency: must be a whole number between 1 and "
                 "10000, got \"0\""},
        BadValue{"    concurrency: 99999999999999999999999\n",
                 "t.yaml:4: providers[0].concurrency: must be a whole number between 1 and "
                 "10000, got \"99999999999999999999999\""},
        BadValue{"    ttl: 0s\n",
                 "t.yaml:4: providers[0].ttl: must be longer than zero, got \"0s\""},
        BadValue{"    ttl: -1d\n",
                 "t.yaml:4: providers[0].ttl: a duration cannot be negative, got \"-1d\""},
        BadValue{"    timeout: 5\n",
                 "t.yaml:4: providers[0].timeout: a duration needs a unit (ms, s, m, h or d), "
                 "got \"5\" (e.g. 5s)"},
        BadValue{"    no_data_ttl: soon\n",
                 "t.yaml:4: providers[0].no_data_ttl: not a duration: \"soon\" (write a number "
                 "and a unit: 250ms, 2s, 5m, 1h, 7d)"},
        BadValue{"    batch: { max_items: 0 }\n",
                 "t.yaml:4: providers[0].batch.max_items: must be a whole number between 1 and "
                 "100000, got \"0\""},
        BadValue{"    batch: { max_wait: -5ms }\n",
                 "t.yaml:4: providers[0].batch.max_wait: a duration cannot be negative, got "
                 "\"-5ms\""}));

TEST(ConfigErrorTest, ErrorsComeInLineOrder) {
  EXPECT_EQ(ErrorOf("providers:\n"
                    "  - name: a\n"
                    "    adapter: x\n"
                    "    rate_limit: { per_sec: 3 }\n"
                    "    timout: 5s\n"
                    "  - name: a\n"
                    "    adapter: y\n"),
            "t.yaml:4: providers[0].rate_limit.per_sec: unknown key (did you mean "
            "\"per_second\"?)\n"
            "t.yaml:5: providers[0].timout: unknown key (did you mean \"timeout\"?)\n"
            "t.yaml:6: providers[1].name: duplicate provider name \"a\" (first defined at "
            "t.yaml:2)");
}

TEST(ConfigErrorTest, AllErrorsAreReportedTogether) {
  const std::string message = ErrorOf(
      "providers:\n"
      "  - name: a\n"
      "    adapter: x\n"
      "    concurrency: 0\n"
      "    ttl: 3x\n"
      "engine: { lease: 0s }\n");
  EXPECT_THAT(message, HasSubstr("t.yaml:4: providers[0].concurrency:"));
  EXPECT_THAT(message, HasSubstr("t.yaml:5: providers[0].ttl: unknown duration unit \"x\""));
  EXPECT_THAT(message, HasSubstr("t.yaml:6: engine.lease: must be longer than zero"));
}

TEST(ConfigErrorTest, HostileInputIsAnErrorNotACrash) {
  const std::string deep(5000, '[');
  const std::string inputs[] = {
      "providers: [~]\n",
      "providers:\n  - ~\n",
      "- - -\n",
      "{\n",
      "providers: [{name: [1], adapter: {}}]\n",
      "engine: ~\n",
      "store: ~\n",
      "store: [a]\n",
      "providers: [{name: a, adapter: b, options: {a: *undefined}}]\n",
      std::string("\xff\xfe\x00garbage", 10),
      "providers: " + deep + "\n",
      "? [complex, key]\n: value\n",
      "providers:\n  - name: a\n    adapter: b\n    options: { ? [x] : 1 }\n",
      "providers:\n  - <<: 5\n    name: a\n    adapter: b\n",
      "providers:\n  - name: a\n    adapter: b\n    auth: { query: {} }\n",
      "providers:\n  - name: a\n    adapter: b\n    auth: {}\n",
      "providers:\n  - name: a\n    adapter: b\n    auth: { bearer: [x] }\n",
      "the text $__enrichd_ref_0__ is reserved\n",
  };
  for (const std::string& input : inputs) {
    Result<EnrichdConfig> config = ParseConfig(input, "t.yaml", FakeEnv({}));
    EXPECT_FALSE(config.ok()) << input;
    if (!config.ok()) {
      EXPECT_EQ(config.status().code(), StatusCode::kInvalidArgument) << input;
      EXPECT_THAT(config.status().message(), ::testing::StartsWith("t.yaml:")) << input;
    }
  }
}

TEST(ConfigErrorTest, EngineValuesAreValidated) {
  EXPECT_EQ(ErrorOf("engine: { claim_batch: 0 }\n"),
            "t.yaml:1: engine.claim_batch: must be a whole number between 1 and 100000, got "
            "\"0\"");
  EXPECT_EQ(ErrorOf("engine:\n  worker_threads: -2\n"),
            "t.yaml:2: engine.worker_threads: must be a whole number between 1 and 1024, got "
            "\"-2\"");
}

// ----------------------------------------------------------------------------------------
// References and secrets

TEST(ConfigSecretTest, EnvironmentReferencesExpandWholeAndEmbedded) {
  Result<EnrichdConfig> config = ParseConfig(
      "store: postgresql://enrichd:${PG_PASSWORD}@db:5432/enrichd\n"
      "providers:\n"
      "  - name: a\n"
      "    adapter: ipinfo\n"
      "    endpoint: ${MOCK_URL}/ipinfo\n"
      "    auth: { query: { token: tk-${T} } }\n"
      "    options: { headers: { X-Trace: \"run-${RUN}\" }, literal: \"$${NOT_EXPANDED}\", "
      "fallback: \"${UNSET_VAR:-dflt}\" }\n",
      "t.yaml",
      FakeEnv({{"PG_PASSWORD", "pg-secret-1"},
               {"MOCK_URL", "http://127.0.0.1:43111"},
               {"T", "xyz"},
               {"RUN", "r42"}}));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->store, "postgresql://enrichd:pg-secret-1@db:5432/enrichd");
  const ProviderConfig& p = config->providers[0];
  EXPECT_EQ(p.endpoint, "http://127.0.0.1:43111/ipinfo");
  EXPECT_EQ(p.auth.kind, AuthSpec::Kind::kQueryParam);
  EXPECT_EQ(p.auth.name, "token");
  EXPECT_EQ(p.auth.secret, "tk-xyz");
  EXPECT_EQ(p.options["headers"]["X-Trace"], "run-r42");
  EXPECT_EQ(p.options["literal"], "${NOT_EXPANDED}");
  EXPECT_EQ(p.options["fallback"], "dflt");
  EXPECT_EQ(p.secret_masks.at("endpoint"), "****/ipinfo");
  EXPECT_EQ(p.secret_masks.at("options/headers/X-Trace"), "run-****");
  EXPECT_EQ(p.secret_masks.count("options/literal"), 0u);
  EXPECT_EQ(config->secret_masks.at("store"), "postgresql://enrichd:****@db:5432/enrichd");
}

TEST(ConfigSecretTest, AuthForms) {
  Result<EnrichdConfig> config = ParseConfig(
      "providers:\n"
      "  - { name: a, adapter: x, auth: { bearer: ${K} } }\n"
      "  - { name: b, adapter: x, auth: { basic: { user: \"123\", password: ${K} } } }\n"
      "  - { name: c, adapter: x, auth: { query: { token: ${K} } } }\n"
      "  - { name: d, adapter: x, auth: { header: { X-Api-Key: ${K} } } }\n",
      "t.yaml", FakeEnv({{"K", "s3cr3t"}}));
  ASSERT_TRUE(config.ok()) << config.status();
  const auto& p = config->providers;
  EXPECT_EQ(p[0].auth.kind, AuthSpec::Kind::kBearer);
  EXPECT_EQ(p[1].auth.kind, AuthSpec::Kind::kBasic);
  EXPECT_EQ(p[1].auth.user, "123");
  EXPECT_EQ(p[2].auth.kind, AuthSpec::Kind::kQueryParam);
  EXPECT_EQ(p[2].auth.name, "token");
  EXPECT_EQ(p[3].auth.kind, AuthSpec::Kind::kHeader);
  EXPECT_EQ(p[3].auth.name, "X-Api-Key");
  for (const auto& provider : p) EXPECT_EQ(provider.auth.secret, "s3cr3t") << provider.name;
}

TEST(ConfigSecretTest, AuthShapeErrors) {
  const auto env = FakeEnv({{"K", "s3cr3t"}});
  EXPECT_EQ(ErrorOf(OneProvider("    auth: { bearer: ${K}, query: { t: ${K} } }\n"), env),
            "t.yaml:4: providers[0].auth: takes only one of bearer, basic, query or header");
  EXPECT_EQ(ErrorOf(OneProvider("    auth: { basic: { user: u } }\n"), env),
            "t.yaml:4: providers[0].auth.basic.password: missing (basic needs user and "
            "password)");
  EXPECT_EQ(ErrorOf(OneProvider("    auth: { header: { \"Bad Name\": ${K} } }\n"), env),
            "t.yaml:4: providers[0].auth.header: not a valid header name: \"Bad Name\"");
  EXPECT_EQ(ErrorOf(OneProvider("    auth: { bearer: \"\" }\n"), env),
            "t.yaml:4: providers[0].auth.bearer: the secret is empty");
}

TEST(ConfigSecretTest, MissingVariableIsNamedWithItsKey) {
  const std::string message =
      ErrorOf(OneProvider("    auth: { bearer: ${IPINFO_TOKEN} }\n"), FakeEnv({}));
  EXPECT_EQ(message,
            "t.yaml:4: providers[0].auth.bearer: environment variable IPINFO_TOKEN is not set "
            "(referenced as ${IPINFO_TOKEN})");
  EXPECT_EQ(ErrorOf(OneProvider("    endpoint: ${MOCK_URL}/x\n"), FakeEnv({})),
            "t.yaml:4: providers[0].endpoint: environment variable MOCK_URL is not set "
            "(referenced as ${MOCK_URL})");
}

TEST(ConfigSecretTest, ErrorsNeverShowExpandedValues) {
  const std::string secret = "sup3r-s3cret-value";
  const auto env = FakeEnv({{"S", secret}});
  // A reference where a number is expected: the reference is shown, not its value.
  const std::string message = ErrorOf(OneProvider("    concurrency: ${S}\n"), env);
  EXPECT_EQ(message,
            "t.yaml:4: providers[0].concurrency: references such as \"${S}\" are only expanded "
            "in store, endpoint, auth and options values");
  EXPECT_THAT(message, Not(HasSubstr(secret)));
  const std::string endpoint = ErrorOf(OneProvider("    endpoint: ${S}\n"), env);
  EXPECT_EQ(endpoint,
            "t.yaml:4: providers[0].endpoint: \"${S}\" does not expand to an http:// or https:// "
            "URL");
  EXPECT_THAT(ErrorOf("store: ${S}\n", env), Not(HasSubstr(secret)));
  // A literal password in a bad store URL is masked too.
  EXPECT_EQ(ErrorOf("store: mysql://u:hunter2@h/db\n"),
            "t.yaml:1: store: \"mysql://u:****@h/db\" is not a store URL (sqlite://PATH or "
            "postgresql://...)");
}

TEST(ConfigSecretTest, InvalidReferences) {
  EXPECT_EQ(ErrorOf(OneProvider("    auth: { bearer: ${1BAD} }\n")),
            "t.yaml:4: providers[0].auth.bearer: ${1BAD} is not a valid reference (write "
            "${NAME} with letters, digits and '_', ${NAME:-fallback} or ${file:/path})");
  EXPECT_EQ(ErrorOf(OneProvider("    endpoint: \"http://x/${OPEN\"\n")),
            "t.yaml:4: providers[0].endpoint: unterminated reference in \"http://x/${OPEN\" "
            "(write ${NAME} on one line; $${ for a literal ${)");
}

TEST(ConfigSecretTest, SecretsFromFiles) {
  TempDir dir;
  const std::string token_file = dir.Write("token.txt", "  file-token-123\n\n");
  dir.Write("mm.key", "mm-license-456\n");
  const std::string config_file =
      dir.Write("c.yaml",
                "providers:\n"
                "  - name: a\n"
                "    adapter: ipinfo\n"
                "    auth: { bearer: ${file:" +
                    token_file +
                    "} }\n"
                    "  - name: b\n"
                    "    adapter: maxmind-web\n"
                    "    auth: { basic: { user: \"123\", password: { file: mm.key } } }\n");
  Result<EnrichdConfig> config = LoadConfig(config_file);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->source_path, config_file);
  EXPECT_EQ(config->providers[0].auth.secret, "file-token-123");
  EXPECT_EQ(config->providers[1].auth.secret, "mm-license-456");  // relative to the config
  EXPECT_EQ(config->providers[0].origin, config_file + ":2");
}

TEST(ConfigSecretTest, SecretFileErrors) {
  TempDir dir;
  const std::string empty = dir.Write("empty", " \n");
  EXPECT_EQ(ErrorOf(OneProvider("    auth: { bearer: { file: " + empty + " } }\n")),
            "t.yaml:4: providers[0].auth.bearer.file: secret file \"" + empty + "\" is empty");
  const std::string missing = dir.path() + "/nope";
  EXPECT_EQ(ErrorOf(OneProvider("    auth: { bearer: \"${file:" + missing + "}\" }\n")),
            "t.yaml:4: providers[0].auth.bearer: cannot read secret file \"" + missing +
                "\" (from ${file:" + missing + "}): No such file or directory");
}

TEST(ConfigTest, LoadConfigReportsADirectory) {
  TempDir dir;
  Result<EnrichdConfig> config = LoadConfig(dir.path());
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().message(), dir.path() + ": cannot read: is a directory");
}

TEST(ConfigTest, LoadConfigReportsAnUnreadableFile) {
  Result<EnrichdConfig> config = LoadConfig("/nonexistent/enrichd.yaml");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(config.status().message(),
            "/nonexistent/enrichd.yaml: cannot read: No such file or directory");
}

// ----------------------------------------------------------------------------------------
// DescribeEffective

TEST(DescribeEffectiveTest, MasksEverySecret) {
  TempDir dir;
  const std::string file_secret = "from-a-file-9c1e";
  const std::string secret_file = dir.Write("s", file_secret + "\n");
  const std::map<std::string, std::string> vars = {
      {"IPINFO_TOKEN", "ipinfo-tok-77aa"}, {"MM_KEY", "maxmind-key-88bb"},
      {"HDR", "header-secret-99cc"},       {"PGPW", "pg-pass-11dd"},
      {"USER_ID", "account-4242"},         {"QK", "query-key-22ee"}};
  const std::string text =
      "store: postgresql://enrichd:${PGPW}@db/enrichd\n"
      "providers:\n"
      "  - { name: a, adapter: x, auth: { bearer: ${IPINFO_TOKEN} } }\n"
      "  - { name: b, adapter: x, auth: { basic: { user: ${USER_ID}, password: ${MM_KEY} } } }\n"
      "  - { name: c, adapter: x, auth: { header: { X-Key: { file: " +
      secret_file +
      " } } } }\n"
      "  - { name: d, adapter: x, auth: { query: { key: literal-in-file-33ff } } }\n"
      "  - name: e\n"
      "    adapter: http_json\n"
      "    endpoint: http://127.0.0.1:9/?k=${QK}\n"
      "    options: { headers: { X-Api-Key: \"${HDR}\" }, list: [\"${HDR}\"] }\n";
  Result<EnrichdConfig> config = ParseConfig(text, "t.yaml", FakeEnv(vars));
  ASSERT_TRUE(config.ok()) << config.status();
  const std::string described = DescribeEffective(*config);
  for (const auto& [name, value] : vars) {
    EXPECT_THAT(described, Not(HasSubstr(value))) << name << "\n" << described;
  }
  EXPECT_THAT(described, Not(HasSubstr(file_secret)));
  EXPECT_THAT(described, Not(HasSubstr("literal-in-file-33ff")));
  EXPECT_THAT(described, HasSubstr("****"));
  EXPECT_THAT(described, HasSubstr("postgresql://enrichd:****@db/enrichd"));
  EXPECT_THAT(described, HasSubstr("X-Key"));  // the header name is not a secret

  // It is YAML the loader reads again, secrets then being the literal "****".
  Result<EnrichdConfig> again = ParseConfig(described, "described.yaml", FakeEnv({}));
  ASSERT_TRUE(again.ok()) << again.status() << "\n" << described;
  EXPECT_EQ(again->providers[0].auth.secret, "****");
  EXPECT_EQ(again->providers[1].auth.user, "****");
  EXPECT_EQ(again->providers[3].auth.name, "key");
  EXPECT_EQ(again->providers[4].options["headers"]["X-Api-Key"], "****");
  EXPECT_EQ(again->providers[4].options["list"][0], "****");
  EXPECT_EQ(again->providers[4].endpoint, "http://127.0.0.1:9/?k=****");
}

TEST(DescribeEffectiveTest, ShowsEveryDefaultAndReadsBackToTheSameValues) {
  Result<EnrichdConfig> config =
      ParseConfig(std::string(kDesignExample) +
                      "  - name: slow\n"
                      "    adapter: ip-api\n"
                      "    enabled: false\n"
                      "    rate_limit: { per_second: 0.75 }\n"
                      "    retry: { jitter: decorrelated, base_delay: 1.5s, max_delay: 90s }\n"
                      "    options: { s: \"123\", t: \"true\", lit: \"$${X}\", n: 7, f: 0.1 }\n"
                      "engine: { lease: 90s }\n",
                  "design.yaml", DesignEnv());
  ASSERT_TRUE(config.ok()) << config.status();
  const std::string described = DescribeEffective(*config);
  EXPECT_THAT(described, HasSubstr("no_data_ttl: 1d"));
  EXPECT_THAT(described, HasSubstr("probe_timeout: 5s"));
  EXPECT_THAT(described, HasSubstr("max_wait: 20ms"));
  EXPECT_THAT(described, HasSubstr("jitter: decorrelated"));
  EXPECT_THAT(described, HasSubstr("defined at design.yaml:3"));
  EXPECT_THAT(described, Not(HasSubstr(kIpinfoToken)));
  EXPECT_THAT(described, Not(HasSubstr(kInhouseKey)));

  Result<EnrichdConfig> again = ParseConfig(described, "described.yaml", FakeEnv({}));
  ASSERT_TRUE(again.ok()) << again.status() << "\n" << described;
  ASSERT_EQ(again->providers.size(), config->providers.size());
  EXPECT_EQ(again->store, config->store);
  EXPECT_EQ(again->engine.lease, seconds(90));
  for (std::size_t i = 0; i < config->providers.size(); ++i) {
    const ProviderConfig& a = config->providers[i];
    const ProviderConfig& b = again->providers[i];
    SCOPED_TRACE(a.name);
    EXPECT_EQ(a.name, b.name);
    EXPECT_EQ(a.adapter, b.adapter);
    EXPECT_EQ(a.kind, b.kind);
    EXPECT_EQ(a.applies_to, b.applies_to);
    EXPECT_EQ(a.endpoint, b.endpoint);
    EXPECT_EQ(a.auth.kind, b.auth.kind);
    EXPECT_EQ(a.rate_limit.per_second, b.rate_limit.per_second);
    EXPECT_EQ(a.rate_limit.burst, b.rate_limit.burst);
    EXPECT_EQ(a.concurrency, b.concurrency);
    EXPECT_EQ(a.timeout, b.timeout);
    EXPECT_EQ(a.retry.max_attempts, b.retry.max_attempts);
    EXPECT_EQ(a.retry.base_delay, b.retry.base_delay);
    EXPECT_EQ(a.retry.max_delay, b.retry.max_delay);
    EXPECT_EQ(a.retry.jitter, b.retry.jitter);
    EXPECT_EQ(a.circuit_breaker.failure_rate, b.circuit_breaker.failure_rate);
    EXPECT_EQ(a.circuit_breaker.window, b.circuit_breaker.window);
    EXPECT_EQ(a.circuit_breaker.min_calls, b.circuit_breaker.min_calls);
    EXPECT_EQ(a.circuit_breaker.open_for, b.circuit_breaker.open_for);
    EXPECT_EQ(a.circuit_breaker.half_open_calls, b.circuit_breaker.half_open_calls);
    EXPECT_EQ(a.circuit_breaker.probe_timeout, b.circuit_breaker.probe_timeout);
    EXPECT_EQ(a.batch.max_items, b.batch.max_items);
    EXPECT_EQ(a.batch.max_wait, b.batch.max_wait);
    EXPECT_EQ(a.ttl, b.ttl);
    EXPECT_EQ(a.no_data_ttl, b.no_data_ttl);
    EXPECT_EQ(a.enabled, b.enabled);
    if (a.secret_masks.empty()) {
      EXPECT_EQ(a.options, b.options);
    }
  }
  EXPECT_EQ(again->providers[3].options["s"], "123");
  EXPECT_EQ(again->providers[3].options["t"], "true");
  EXPECT_EQ(again->providers[3].options["lit"], "${X}");
}

// ----------------------------------------------------------------------------------------
// Durations

TEST(DurationTest, ParsesUnitsFractionsAndCompounds) {
  const std::pair<const char*, Duration> cases[] = {
      {"250ms", milliseconds(250)},
      {"2s", seconds(2)},
      {"5m", minutes(5)},
      {"1h", hours(1)},
      {"7d", hours(24 * 7)},
      {"1.5s", milliseconds(1500)},
      {"1m30s", seconds(90)},
      {"0", Duration::zero()},
      {"0s", Duration::zero()},
      {"500us", std::chrono::microseconds(500)},
      {"0.5d", hours(12)},
      {"1d2h3m4s5ms", hours(26) + minutes(3) + seconds(4) + milliseconds(5)},
  };
  for (const auto& [text, expected] : cases) {
    Result<Duration> d = ParseDuration(text);
    ASSERT_TRUE(d.ok()) << text << ": " << d.status();
    EXPECT_EQ(*d, expected) << text;
  }
}

TEST(DurationTest, RejectsGarbageNegativeAndBareNumbers) {
  for (const char* text : {"", "5", "-1s", "s", "5 s", "1x", "1.s.", "abc", "1e3s", ".s", "+5s",
                           "36501d", "99999999999999999999999999h", "5sec", "1h-", "ms"}) {
    Result<Duration> d = ParseDuration(text);
    EXPECT_FALSE(d.ok()) << "accepted " << text;
    if (!d.ok()) {
      EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument) << text;
    }
  }
}

TEST(DurationTest, FormatDurationOutputParsesBack) {
  for (Duration d : {Duration(milliseconds(1)), Duration(milliseconds(1500)), Duration(seconds(90)),
                     Duration(hours(24 * 7 + 1)), Duration(milliseconds(86'400'001))}) {
    Result<Duration> back = ParseDuration(FormatDuration(d));
    ASSERT_TRUE(back.ok()) << FormatDuration(d);
    EXPECT_EQ(*back, d) << FormatDuration(d);
  }
}

// ----------------------------------------------------------------------------------------
// Store URL, adapters

TEST(StoreUrlTest, PrecedenceFlagThenConfigThenEnvironmentThenDefault) {
  EnrichdConfig config;
  config.store = "sqlite://from-config.db";
  ASSERT_EQ(setenv("ENRICHD_STORE", "sqlite://from-env.db", 1), 0);
  EXPECT_EQ(ResolveStoreUrl(std::string("sqlite://flag.db"), &config), "sqlite://flag.db");
  EXPECT_EQ(ResolveStoreUrl(std::nullopt, &config), "sqlite://from-config.db");
  EXPECT_EQ(ResolveStoreUrl(std::nullopt, nullptr), "sqlite://from-env.db");
  config.store.reset();
  EXPECT_EQ(ResolveStoreUrl(std::string(""), &config), "sqlite://from-env.db");
  ASSERT_EQ(unsetenv("ENRICHD_STORE"), 0);
  EXPECT_EQ(ResolveStoreUrl(std::nullopt, &config), "sqlite://enrichd.db");
}

TEST(StoreUrlTest, MaskUrlPassword) {
  EXPECT_EQ(MaskUrlPassword("postgresql://u:pw@h:5432/db"), "postgresql://u:****@h:5432/db");
  EXPECT_EQ(MaskUrlPassword("postgresql://u@h/db"), "postgresql://u@h/db");
  EXPECT_EQ(MaskUrlPassword("postgresql://h/db?user=u&password=pw&x=1"),
            "postgresql://h/db?user=u&password=****&x=1");
  EXPECT_EQ(MaskUrlPassword("sqlite://enrichd.db"), "sqlite://enrichd.db");
}

TEST(AdapterNamesTest, UnknownAdapterIsReportedAtItsLine) {
  Result<EnrichdConfig> config =
      ParseConfig("providers:\n  - name: a\n    adapter: ipinfo\n  - name: b\n    adapter: ipapi\n",
                  "t.yaml", FakeEnv({}));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(CheckAdapterNames(*config, {"ipinfo", "ipapi", "maxmind"}).ok());
  Status status = CheckAdapterNames(*config, {"ipinfo", "ip-api"});
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(),
            "t.yaml:4: providers[1].adapter: unknown adapter \"ipapi\" (did you mean "
            "\"ip-api\"?); known: ipinfo, ip-api");
}

// ----------------------------------------------------------------------------------------
// The shipped examples

class ExampleFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(setenv("MOCK_URL", "http://127.0.0.1:18080", 1), 0);
    ASSERT_EQ(setenv("IPINFO_TOKEN", "example-test-token", 1), 0);
    ASSERT_EQ(setenv("INHOUSE_API_KEY", "example-inhouse-key", 1), 0);
  }
  void TearDown() override {
    unsetenv("MOCK_URL");
    unsetenv("IPINFO_TOKEN");
    unsetenv("INHOUSE_API_KEY");
  }
};

TEST_F(ExampleFilesTest, DemoParses) {
  Result<EnrichdConfig> config = LoadConfig(ENRICHD_SOURCE_DIR "/examples/demo.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_EQ(config->providers.size(), 2u);
  const ProviderConfig* ipinfo = config->FindProvider("ipinfo");
  const ProviderConfig* ipapi = config->FindProvider("ip-api");
  ASSERT_NE(ipinfo, nullptr);
  ASSERT_NE(ipapi, nullptr);
  EXPECT_EQ(ipinfo->adapter, "ipinfo");
  EXPECT_EQ(ipapi->adapter, "ip-api");
  EXPECT_EQ(ipinfo->endpoint, "http://127.0.0.1:18080/ipinfo");
  EXPECT_EQ(ipapi->endpoint, "http://127.0.0.1:18080/ip-api");
  ASSERT_TRUE(ipapi->rate_limit.per_second.has_value());
  EXPECT_DOUBLE_EQ(*ipapi->rate_limit.per_second, 40);
  EXPECT_DOUBLE_EQ(ipapi->rate_limit.burst, 10);
  EXPECT_NE(DescribeEffective(*config).find("****/ip-api"), std::string::npos);
}

TEST_F(ExampleFilesTest, ProvidersParses) {
  Result<EnrichdConfig> config = LoadConfig(ENRICHD_SOURCE_DIR "/examples/providers.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  const ProviderConfig* ipinfo = config->FindProvider("ipinfo");
  ASSERT_NE(ipinfo, nullptr);
  EXPECT_EQ(ipinfo->auth.kind, AuthSpec::Kind::kBearer);
  EXPECT_EQ(ipinfo->auth.secret, "example-test-token");
  const ProviderConfig* ipapi = config->FindProvider("ip-api");
  ASSERT_NE(ipapi, nullptr);
  EXPECT_TRUE(ipapi->endpoint.starts_with("http://"));
  EXPECT_EQ(ipapi->batch.max_items, 100u);
  ASSERT_TRUE(ipapi->rate_limit.per_second.has_value());
  EXPECT_LE(*ipapi->rate_limit.per_second * 60, 15.0 + 1e-9);  // ip-api batch: 15/minute
  const ProviderConfig* ripe = config->FindProvider("ripestat");
  ASSERT_NE(ripe, nullptr);
  EXPECT_EQ(ripe->concurrency, 8);
  EXPECT_TRUE(ripe->options.contains("sourceapp"));
  int maxmind = 0;
  for (const auto& p : config->providers) {
    if (p.adapter == "maxmind") {
      ++maxmind;
      EXPECT_TRUE(p.options["database"].get<std::string>().starts_with("/var/lib/GeoIP/"));
    }
  }
  EXPECT_EQ(maxmind, 2);
  bool http_json = false;
  for (const auto& p : config->providers) http_json = http_json || p.adapter == "http_json";
  EXPECT_TRUE(http_json);
  const std::string described = DescribeEffective(*config);
  EXPECT_THAT(described, Not(HasSubstr("example-test-token")));
  EXPECT_THAT(described, Not(HasSubstr("example-inhouse-key")));
}

}  // namespace
}  // namespace enrichd

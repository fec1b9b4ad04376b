// The adapter contract: how a provider's answers are obtained and normalised.
//
// An adapter knows one provider's protocol and nothing else: no sockets, no curl, no
// SQL, no rate limits, retries or breakers (the engine owns those). It is either
//   - synchronous: a local lookup (MaxMind database, ip2asn file) returning a result,
//     called concurrently from the engine's worker threads; or
//   - asynchronous: it builds HTTP request(s) for an item (or a batch of items) and reads
//     the response(s) into results. One item may take several requests (RIPEstat: two).
// Input is a validated, canonical Item; output is an EnrichmentResult whose outcome is
// from the taxonomy (outcome.h) and whose data is the normalised form (enrichment.h).
//
// Safety: adapters with external() == true never see an address that is not globally
// routable: AsyncAdapter::Begin and SyncAdapter::Lookup answer `skipped` for those
// before the implementation is consulted.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "enrichd/enrichment.h"
#include "enrichd/http.h"
#include "enrichd/item.h"
#include "enrichd/status.h"

namespace enrichd {

// Credentials for a provider. The secret never appears in logs, errors or provenance:
// adapters redact it from any URL or header they report.
struct AuthSpec {
  enum class Kind { kNone, kBearer, kBasic, kQueryParam, kHeader };
  Kind kind = Kind::kNone;
  std::string name;    // query parameter or header name (kQueryParam, kHeader)
  std::string user;    // kBasic user / account id
  std::string secret;  // token, password, license key
};

// Everything an adapter is built from; the config layer fills it from YAML.
struct AdapterSpec {
  std::string provider_name;  // the configured provider name, e.g. "ipinfo-lite"
  std::string adapter;        // the implementation name, e.g. "ipinfo"
  std::string kind;           // requested kind; empty: the adapter's default
  std::string endpoint;       // base URL; empty: the real provider's default
  AuthSpec auth;
  std::vector<std::string> applies_to = {"ip"};
  nlohmann::json options = nlohmann::json::object();  // adapter-specific
  Duration timeout = std::chrono::seconds(10);        // per HTTP request
  std::size_t max_batch = 1;  // from config `batch.max_items`; capped by the adapter
};

class Adapter {
 public:
  virtual ~Adapter() = default;
  virtual std::string_view name() const = 0;     // implementation name, "ipinfo"
  virtual std::string_view version() const = 0;  // bumps when normalisation changes
  virtual std::string_view kind() const = 0;     // what it produces: "asn", "geo"
  // True when lookups leave the machine (any HTTP adapter).
  virtual bool external() const = 0;
  // Labels this adapter can enrich (default: "ip").
  virtual bool Accepts(const Item& item) const { return item.label == kIpLabel; }
};

// A local lookup. Lookup() must be thread-safe: the engine calls it from several worker
// threads at once.
class SyncAdapter : public Adapter {
 public:
  // Never fails as a call: every problem is an outcome in the result.
  EnrichmentResult Lookup(const Item& item);

 protected:
  virtual EnrichmentResult DoLookup(const Item& item) = 0;
};

// One lookup in progress: a state machine the engine drives. Not thread-safe: the
// engine holds one call at a time on one thread.
//   while (auto req = call->NextRequest()) { send *req; call->OnResponse(resp); }
//   results = call->TakeResults();
class AdapterCall {
 public:
  virtual ~AdapterCall() = default;
  // The next request to send, or nullopt when the results are ready.
  virtual std::optional<HttpRequest> NextRequest() = 0;
  // The answer (or transport failure) to the last request returned by NextRequest().
  virtual void OnResponse(const HttpResponse& response) = 0;
  // One result per item, in the order given to Begin(). Call once, after NextRequest()
  // returned nullopt.
  virtual std::vector<EnrichmentResult> TakeResults() = 0;
  // A provider-wide pause signalled by the last response (e.g. ip-api `X-Rl: 0` with
  // `X-Ttl: 30` on a 200): nobody may call the provider for this long.
  virtual std::optional<Duration> ProviderPause() const { return std::nullopt; }

  // The provider's quota as the last response stated it (ip-api: `X-Rl` requests left in
  // the window, `X-Ttl` seconds until it resets). The engine spends it as it sends, so
  // that requests in flight never overrun the window.
  struct Quota {
    int64_t remaining = 0;
    Duration resets_in{};
  };
  virtual std::optional<Quota> QuotaLeft() const { return std::nullopt; }
};

class AsyncAdapter : public Adapter {
 public:
  // How many items one call may carry (1: no batching).
  virtual std::size_t max_batch() const { return 1; }
  // Starts the lookup of 1..max_batch() items. Items that must not be sent (see the
  // file comment) are answered `skipped` without reaching the implementation.
  std::unique_ptr<AdapterCall> Begin(std::vector<Item> items);

 protected:
  // Starts the lookup of items that may be sent (never empty).
  virtual std::unique_ptr<AdapterCall> BeginSendable(std::vector<Item> items) = 0;
};

using AdapterFactory = std::function<Result<std::unique_ptr<Adapter>>(const AdapterSpec&)>;

// Maps adapter names used in configuration to factories. Built-in adapters are
// registered by RegisterBuiltinAdapters() (one line per adapter). Thread-safe for reads
// once populated.
class AdapterRegistry {
 public:
  // The registry with every built-in adapter.
  static const AdapterRegistry& Builtin();

  void Register(std::string name, AdapterFactory factory);
  // kInvalidArgument naming the unknown adapter and the known ones.
  Result<std::unique_ptr<Adapter>> Create(const AdapterSpec& spec) const;
  std::vector<std::string> Names() const;

 private:
  std::map<std::string, AdapterFactory> factories_;
};

void RegisterBuiltinAdapters(AdapterRegistry& registry);

}  // namespace enrichd

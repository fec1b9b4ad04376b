// Base classes of the adapter contract, the registry and the built-in adapter list.
#include "enrichd/adapter.h"

#include <utility>

#include "adapters/common/http_util.h"

namespace enrichd {

// One line per built-in adapter (each defined in its own folder).
namespace adapters {
void RegisterMaxMind(AdapterRegistry& registry);
void RegisterIp2Asn(AdapterRegistry& registry);
void RegisterIpinfo(AdapterRegistry& registry);
void RegisterIpApi(AdapterRegistry& registry);
void RegisterRipeStat(AdapterRegistry& registry);
void RegisterHttpJson(AdapterRegistry& registry);
}  // namespace adapters

void RegisterBuiltinAdapters(AdapterRegistry& registry) {
  adapters::RegisterMaxMind(registry);   // maxmind: local .mmdb (libmaxminddb)
  adapters::RegisterIp2Asn(registry);    // ip2asn: local iptoasn.com TSV
  adapters::RegisterIpinfo(registry);    // ipinfo: ipinfo.io full / lite, batch
  adapters::RegisterIpApi(registry);     // ip-api: ip-api.com, batch, X-Rl/X-Ttl
  adapters::RegisterRipeStat(registry);  // ripestat: RIPEstat network-info + as-overview
  adapters::RegisterHttpJson(registry);  // http_json: any JSON API, configuration only
}

namespace {

EnrichmentResult SkippedResult(const Adapter& adapter, std::string reason) {
  EnrichmentResult r;
  r.outcome = Outcome::kSkipped;
  r.kind = std::string(adapter.kind());
  r.data_json = "{}";
  r.reason = std::move(reason);
  r.provenance.adapter = std::string(adapter.name());
  r.provenance.adapter_version = std::string(adapter.version());
  return r;
}

// Why `item` must not reach the implementation, or nullopt when it may.
std::optional<std::string> SkipReason(const Adapter& adapter, const Item& item) {
  if (!adapter.Accepts(item)) {
    return "label \"" + item.label + "\" is not handled by adapter " + std::string(adapter.name());
  }
  if (item.label != kIpLabel) return std::nullopt;
  std::optional<IpAddress> ip = item.ip;
  if (!ip) {
    auto parsed = IpAddress::Parse(item.key);
    if (!parsed.ok()) return "not an IP address: " + parsed.status().message();
    ip = *parsed;
  }
  if (!adapter.external()) return std::nullopt;
  std::string range;
  if (!ip->IsGloballyRoutable(&range)) return "not globally routable: " + range;
  return std::nullopt;
}

// Merges the implementation's call (over the sendable items) with the items answered
// `skipped` up front, restoring the order given to Begin().
class MergedCall final : public AdapterCall {
 public:
  MergedCall(std::vector<std::optional<EnrichmentResult>> fixed, std::vector<size_t> sendable_index,
             std::unique_ptr<AdapterCall> inner, const Adapter& adapter)
      : fixed_(std::move(fixed)),
        sendable_index_(std::move(sendable_index)),
        inner_(std::move(inner)),
        adapter_name_(adapter.name()),
        adapter_version_(adapter.version()),
        kind_(adapter.kind()) {}

  std::optional<HttpRequest> NextRequest() override {
    if (!inner_) return std::nullopt;
    return inner_->NextRequest();
  }
  void OnResponse(const HttpResponse& response) override {
    if (inner_) inner_->OnResponse(response);
  }
  std::optional<Duration> ProviderPause() const override {
    return inner_ ? inner_->ProviderPause() : std::nullopt;
  }
  std::optional<Quota> QuotaLeft() const override {
    return inner_ ? inner_->QuotaLeft() : std::nullopt;
  }
  std::vector<EnrichmentResult> TakeResults() override {
    std::vector<EnrichmentResult> inner_results;
    if (inner_) inner_results = inner_->TakeResults();
    for (size_t i = 0; i < sendable_index_.size(); ++i) {
      const size_t at = sendable_index_[i];
      if (i < inner_results.size()) {
        fixed_[at] = std::move(inner_results[i]);
      } else {
        EnrichmentResult r;
        r.outcome = Outcome::kTransient;
        r.kind = kind_;
        r.data_json = "{}";
        r.reason = "adapter returned no result for this item";
        r.provenance.adapter = adapter_name_;
        r.provenance.adapter_version = adapter_version_;
        fixed_[at] = std::move(r);
      }
    }
    std::vector<EnrichmentResult> out;
    out.reserve(fixed_.size());
    for (auto& r : fixed_) out.push_back(std::move(*r));
    fixed_.clear();
    return out;
  }

 private:
  std::vector<std::optional<EnrichmentResult>> fixed_;
  std::vector<size_t> sendable_index_;
  std::unique_ptr<AdapterCall> inner_;
  std::string adapter_name_;
  std::string adapter_version_;
  std::string kind_;
};

}  // namespace

EnrichmentResult SyncAdapter::Lookup(const Item& item) {
  if (auto reason = SkipReason(*this, item)) return SkippedResult(*this, std::move(*reason));
  return DoLookup(item);
}

std::unique_ptr<AdapterCall> AsyncAdapter::Begin(std::vector<Item> items) {
  std::vector<std::optional<EnrichmentResult>> fixed(items.size());
  std::vector<size_t> sendable_index;
  std::vector<Item> sendable;
  for (size_t i = 0; i < items.size(); ++i) {
    if (auto reason = SkipReason(*this, items[i])) {
      fixed[i] = SkippedResult(*this, std::move(*reason));
    } else {
      sendable_index.push_back(i);
      sendable.push_back(std::move(items[i]));
    }
  }
  std::unique_ptr<AdapterCall> inner;
  if (!sendable.empty()) inner = BeginSendable(std::move(sendable));
  return std::make_unique<MergedCall>(std::move(fixed), std::move(sendable_index), std::move(inner),
                                      *this);
}

const AdapterRegistry& AdapterRegistry::Builtin() {
  static const AdapterRegistry* registry = [] {
    auto* r = new AdapterRegistry();
    RegisterBuiltinAdapters(*r);
    return r;
  }();
  return *registry;
}

void AdapterRegistry::Register(std::string name, AdapterFactory factory) {
  factories_[std::move(name)] = std::move(factory);
}

Result<std::unique_ptr<Adapter>> AdapterRegistry::Create(const AdapterSpec& spec) const {
  auto it = factories_.find(spec.adapter);
  if (it == factories_.end()) {
    std::string known;
    for (const auto& [name, factory] : factories_) {
      if (!known.empty()) known += ", ";
      known += name;
    }
    return InvalidArgumentError("unknown adapter \"" + spec.adapter + "\" for provider \"" +
                                spec.provider_name +
                                "\"; known adapters: " + (known.empty() ? "(none)" : known));
  }
  auto created = it->second(spec);
  if (!created.ok()) {
    const std::string context =
        "provider \"" + spec.provider_name + "\" (adapter " + spec.adapter + ")";
    return created.status().WithContext(context);
  }
  if (!created.value()) {
    return InternalError("adapter factory \"" + spec.adapter + "\" returned no adapter");
  }
  return std::move(created).value();
}

std::vector<std::string> AdapterRegistry::Names() const {
  std::vector<std::string> out;
  for (const auto& [name, factory] : factories_) out.push_back(name);
  return out;
}

}  // namespace enrichd

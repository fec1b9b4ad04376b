#include "adapters/ripestat/ripestat_adapter.h"

#include "adapters/common/http_util.h"
#include "adapters/common/options.h"
#include "adapters/common/queued_call.h"
#include "adapters/common/sha256.h"

namespace enrichd::adapters {
namespace {

constexpr std::string_view kName = "ripestat";
constexpr std::string_view kVersion = "1";

struct Config {
  AdapterInfo info;
  std::string base;
  std::string sourceapp;
  AuthSpec auth;
  Duration timeout{};
  std::vector<std::string> secrets;
};

// Reads a RIPEstat envelope; on success returns its "data" object, otherwise sets the
// failure on `r` and returns nullptr.
const Json* ReadEnvelope(const std::optional<Json>& doc, EnrichmentResult& r) {
  if (!doc) {
    SetOutcome(r, Outcome::kTransient, "malformed JSON in answer");
    return nullptr;
  }
  if (!doc->is_object()) {
    SetOutcome(r, Outcome::kPermanent, "unexpected answer shape: not a JSON object");
    return nullptr;
  }
  const auto status = StringMember(*doc, "status");
  if (!status || *status != "ok") {
    const Json* code = Member(*doc, "status_code");
    if (code && code->is_number_integer()) {
      Failure f = ClassifyStatusCode(code->get<int>());
      f.reason = "RIPEstat status \"" + status.value_or("?") + "\" (" + f.reason + ")";
      SetFailure(r, f);
    } else {
      SetOutcome(r, Outcome::kTransient, "RIPEstat status \"" + status.value_or("?") + "\"");
    }
    return nullptr;
  }
  const Json* data = Member(*doc, "data");
  if (data == nullptr || !data->is_object()) {
    SetOutcome(r, Outcome::kPermanent, "unexpected answer shape: no \"data\" object");
    return nullptr;
  }
  return data;
}

class RipeStatAdapter final : public AsyncAdapter {
 public:
  explicit RipeStatAdapter(std::shared_ptr<const Config> config) : config_(std::move(config)) {}
  std::string_view name() const override { return kName; }
  std::string_view version() const override { return kVersion; }
  std::string_view kind() const override { return config_->info.kind; }
  bool external() const override { return true; }

 protected:
  std::unique_ptr<AdapterCall> BeginSendable(std::vector<Item> items) override {
    auto call = std::make_unique<QueuedCall>(items.size(), config_->info, config_->secrets);
    for (size_t i = 0; i < items.size(); ++i) PushNetworkInfo(*call, items[i], i);
    return call;
  }

 private:
  static HttpRequest Request(const Config& config, std::string_view call_name,
                             std::string_view resource) {
    std::string url = config.base + "/data/" + std::string(call_name) + "/data.json";
    url = AppendQuery(std::move(url), "resource", resource);
    url = AppendQuery(std::move(url), "sourceapp", config.sourceapp);
    HttpRequest req = NewRequest("GET", std::move(url), config.timeout);
    ApplyAuth(req, config.auth, "key");
    return req;
  }

  void PushNetworkInfo(QueuedCall& call, const Item& item, size_t index) const {
    HttpRequest req = Request(*config_, "network-info", item.key);
    auto config = config_;
    const std::string shown = RedactUrl(req.url, config->secrets);
    call.Push(std::move(req), [config, shown, index](QueuedCall& c, const HttpResponse& resp) {
      EnrichmentResult r = BaseResult(config->info, shown, resp);
      if (auto failure = ClassifyHttpFailure(resp)) {
        SetFailure(r, *failure);
        c.SetResult(index, std::move(r));
        return;
      }
      const auto doc = ParseJson(resp.body);
      const Json* data = ReadEnvelope(doc, r);
      if (data == nullptr) {
        c.SetResult(index, std::move(r));
        return;
      }
      Json asns = Json::array();
      if (const Json* list = Member(*data, "asns"); list && list->is_array()) {
        for (const Json& a : *list) {
          if (auto n = ParseAsnValue(a)) asns.push_back(*n);
        }
      } else if (list != nullptr && !list->is_null()) {
        SetOutcome(r, Outcome::kPermanent, "unexpected answer shape: \"asns\" is not a list");
        c.SetResult(index, std::move(r));
        return;
      }
      if (asns.empty()) {
        SetNoData(r, "no ASN announces this address");
        c.SetResult(index, std::move(r));
        return;
      }
      Json result = Json::object();
      result["asn"] = asns[0];
      if (auto prefix = StringMember(*data, "prefix")) result["prefix"] = *prefix;
      if (asns.size() > 1) result["extra"]["asns"] = asns;
      PushAsOverview(config, c, std::move(result), resp, index);
    });
  }

  // Second step: the holder of the first ASN. `partial` holds what network-info gave.
  static void PushAsOverview(const std::shared_ptr<const Config>& config, QueuedCall& call,
                             Json partial, const HttpResponse& first, size_t index) {
    const int64_t asn = partial["asn"].get<int64_t>();
    HttpRequest req = Request(*config, "as-overview", "AS" + std::to_string(asn));
    const std::string shown = RedactUrl(req.url, config->secrets);
    const std::string first_body = first.body;
    const Duration first_elapsed = first.elapsed;
    call.Push(std::move(req), [config, shown, index, partial = std::move(partial), first_body,
                               first_elapsed](QueuedCall& c, const HttpResponse& resp) mutable {
      EnrichmentResult r = BaseResult(config->info, shown, resp);
      // Provenance covers both answers: digest of both bodies, summed latency.
      r.provenance.response_digest = ResponseDigest(first_body + resp.body);
      r.provenance.latency = first_elapsed + resp.elapsed;
      if (auto failure = ClassifyHttpFailure(resp)) {
        SetFailure(r, *failure);
        c.SetResult(index, std::move(r));
        return;
      }
      const auto doc = ParseJson(resp.body);
      const Json* data = ReadEnvelope(doc, r);
      if (data == nullptr) {
        c.SetResult(index, std::move(r));
        return;
      }
      if (auto holder = StringMember(*data, "holder")) {
        const size_t dash = holder->find(" - ");
        partial["org"] = dash == std::string::npos ? *holder : holder->substr(dash + 3);
        partial["extra"]["holder"] = *holder;
      }
      SetOk(r, partial);
      c.SetResult(index, std::move(r));
    });
  }

  std::shared_ptr<const Config> config_;
};

}  // namespace

Result<std::unique_ptr<Adapter>> MakeRipeStatAdapter(const AdapterSpec& spec) {
  ENRICHD_RETURN_IF_ERROR(CheckKnownOptions(spec.options, {"sourceapp"}));
  auto config = std::make_shared<Config>();
  ENRICHD_ASSIGN_OR_RETURN(config->sourceapp, StringOption(spec.options, "sourceapp", "enrichd"));
  ENRICHD_ASSIGN_OR_RETURN(config->info.kind, ResolveKind(spec.kind, kKindAsn, {kKindAsn}));
  config->info.adapter = std::string(kName);
  config->info.version = std::string(kVersion);
  config->base = TrimBase(spec.endpoint.empty() ? "https://stat.ripe.net" : spec.endpoint);
  config->auth = spec.auth;
  config->timeout = spec.timeout;
  config->secrets = AuthSecrets(spec.auth);
  return std::unique_ptr<Adapter>(new RipeStatAdapter(std::move(config)));
}

void RegisterRipeStat(AdapterRegistry& registry) {
  registry.Register(std::string(kName), MakeRipeStatAdapter);
}

}  // namespace enrichd::adapters

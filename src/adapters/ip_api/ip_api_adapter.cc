#include "adapters/ip_api/ip_api_adapter.h"

#include <algorithm>
#include <charconv>

#include "adapters/common/http_util.h"
#include "adapters/common/json_writer.h"
#include "adapters/common/options.h"
#include "adapters/common/queued_call.h"

namespace enrichd::adapters {
namespace {

constexpr std::string_view kName = "ip-api";
constexpr std::string_view kVersion = "1";
constexpr size_t kMaxBatch = 100;
constexpr std::string_view kFields =
    "status,message,country,countryCode,regionName,city,lat,lon,isp,org,as,query";

struct Config {
  AdapterInfo info;
  std::string base;
  AuthSpec auth;
  Duration timeout{};
  size_t max_batch = 1;
  std::vector<std::string> secrets;
};

std::optional<int64_t> HeaderSeconds(const HttpResponse& resp, std::string_view name) {
  const std::string* v = resp.Header(name);
  if (v == nullptr || v->empty() || v->size() > 9) return std::nullopt;
  int64_t n = 0;
  auto [ptr, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
  if (ec != std::errc() || ptr != v->data() + v->size() || n < 0) return std::nullopt;
  return n;
}

// X-Rl: 0 means no request may be sent for X-Ttl seconds.
std::optional<Duration> PauseFrom(const HttpResponse& resp) {
  if (!resp.transport_ok()) return std::nullopt;
  auto rl = HeaderSeconds(resp, "x-rl");
  auto ttl = HeaderSeconds(resp, "x-ttl");
  if (rl && *rl == 0 && ttl) return std::chrono::seconds(*ttl);
  return std::nullopt;
}

// Every answer states the window: X-Rl requests left, X-Ttl seconds until it resets.
std::optional<AdapterCall::Quota> QuotaFrom(const HttpResponse& resp) {
  if (!resp.transport_ok()) return std::nullopt;
  auto rl = HeaderSeconds(resp, "x-rl");
  auto ttl = HeaderSeconds(resp, "x-ttl");
  if (!rl || !ttl) return std::nullopt;
  return AdapterCall::Quota{.remaining = *rl, .resets_in = std::chrono::seconds(*ttl)};
}

std::optional<Failure> Classify(const HttpResponse& resp) {
  auto failure = ClassifyHttpFailure(resp);
  if (failure && failure->outcome == Outcome::kRateLimited) {
    if (auto ttl = HeaderSeconds(resp, "x-ttl")) failure->retry_after = std::chrono::seconds(*ttl);
  }
  return failure;
}

void ReadAnswer(const Config& config, const JsonValue& answer, EnrichmentResult& r) {
  if (!answer.is_object()) {
    SetOutcome(r, Outcome::kPermanent, "unexpected answer shape: not a JSON object");
    return;
  }
  const auto status = StringMember(answer, "status");
  if (status && *status == "fail") {
    const std::string message = StringMember(answer, "message").value_or("unknown failure");
    if (message == "private range" || message == "reserved range") {
      SetNoData(r, message);
    } else {
      SetOutcome(r, Outcome::kPermanent, "provider: " + message);
    }
    return;
  }
  if (!status || *status != "success") {
    SetOutcome(r, Outcome::kPermanent, "unexpected answer shape: no \"status\"");
    return;
  }
  std::optional<AsnAndName> as;
  if (auto as_text = StringMember(answer, "as")) as = SplitAsPrefixed(*as_text);
  const auto isp = StringMember(answer, "isp");
  const auto org = StringMember(answer, "org");
  const auto country_code = StringMember(answer, "countryCode");

  JsonObjectWriter data;
  JsonObjectWriter extra;
  extra.String("isp", isp);
  extra.String("org", org);
  if (config.info.kind == kKindAsn) {
    if (!as) {
      SetNoData(r, "no ASN in answer");
      return;
    }
    data.Int("asn", as->asn);
    if (!as->name.empty()) data.String("org", as->name);
    data.String("country_code", country_code);
  } else {
    data.String("country_code", country_code);
    data.String("country", StringMember(answer, "country"));
    data.String("region", StringMember(answer, "regionName"));
    data.String("city", StringMember(answer, "city"));
    const auto lat = NumberMember(answer, "lat");
    const auto lon = NumberMember(answer, "lon");
    if (lat && lon) {
      data.Double("lat", *lat);
      data.Double("lon", *lon);
    }
    if (data.empty()) {
      SetNoData(r, "no location in answer");
      return;
    }
    if (as) {
      extra.Int("asn", as->asn);
      if (!as->name.empty()) extra.String("as_name", as->name);
    }
  }
  if (!extra.empty()) data.Object("extra", extra);
  SetOkText(r, data.Text());
}

class IpApiAdapter final : public AsyncAdapter {
 public:
  explicit IpApiAdapter(std::shared_ptr<const Config> config) : config_(std::move(config)) {}
  std::string_view name() const override { return kName; }
  std::string_view version() const override { return kVersion; }
  std::string_view kind() const override { return config_->info.kind; }
  bool external() const override { return true; }
  std::size_t max_batch() const override { return config_->max_batch; }

 protected:
  std::unique_ptr<AdapterCall> BeginSendable(std::vector<Item> items) override {
    auto call = std::make_unique<QueuedCall>(items.size(), config_->info, config_->secrets);
    PushInChunks(
        items, config_->max_batch,
        [&](const Item& item, size_t index) { PushSingle(*call, item, index); },
        [&](std::vector<Item> chunk, size_t first) { PushBatch(*call, std::move(chunk), first); });
    return call;
  }

 private:
  void PushSingle(QueuedCall& call, const Item& item, size_t index) const {
    HttpRequest req =
        NewRequest("GET", config_->base + "/json/" + item.key + "?fields=" + std::string(kFields),
                   config_->timeout);
    ApplyAuth(req, config_->auth, "key");
    auto config = config_;
    const std::string shown = RedactUrl(req.url, config->secrets);
    call.Push(std::move(req), [config, shown, index](QueuedCall& c, const HttpResponse& resp) {
      c.SetPause(PauseFrom(resp));
      c.SetQuota(QuotaFrom(resp));
      EnrichmentResult r = BaseResult(config->info, shown, resp);
      if (auto failure = Classify(resp)) {
        SetFailure(r, *failure);
      } else if (const auto answer = JsonDoc::Parse(resp.body)) {
        ReadAnswer(*config, answer->root(), r);
      } else {
        SetOutcome(r, Outcome::kTransient, "malformed JSON in answer");
      }
      c.SetResult(index, std::move(r));
    });
  }

  void PushBatch(QueuedCall& call, std::vector<Item> items, size_t first_index) const {
    Json ips = Json::array();
    for (const auto& item : items) ips.push_back(item.key);
    HttpRequest req = NewRequest("POST", config_->base + "/batch?fields=" + std::string(kFields),
                                 config_->timeout);
    req.headers.push_back({"Content-Type", "application/json"});
    req.body = DumpJson(ips);
    ApplyAuth(req, config_->auth, "key");
    auto config = config_;
    const std::string shown = RedactUrl(req.url, config->secrets);
    call.Push(std::move(req), [config, shown, first_index, items = std::move(items)](
                                  QueuedCall& c, const HttpResponse& resp) {
      c.SetPause(PauseFrom(resp));
      c.SetQuota(QuotaFrom(resp));
      const auto failure = Classify(resp);
      const auto answer = failure ? std::nullopt : JsonDoc::Parse(resp.body);
      const std::vector<JsonValue> answers =
          answer ? answer->root().Elements() : std::vector<JsonValue>{};
      for (size_t i = 0; i < items.size(); ++i) {
        EnrichmentResult r = BaseResult(config->info, shown, resp);
        if (failure) {
          SetFailure(r, *failure);
        } else if (!answer) {
          SetOutcome(r, Outcome::kTransient, "malformed JSON in batch answer");
        } else if (!answer->root().is_array()) {
          SetOutcome(r, Outcome::kPermanent, "unexpected batch answer shape: not a JSON array");
        } else {
          const JsonValue* one = nullptr;
          // Position first, when it names this item (or names nothing).
          if (i < answers.size()) {
            const JsonValue& at = answers[i];
            auto q = StringMember(at, "query");
            if (!q || *q == items[i].key) one = &at;
          }
          if (one == nullptr) {
            for (const JsonValue& candidate : answers) {
              auto q = StringMember(candidate, "query");
              if (q && *q == items[i].key) {
                one = &candidate;
                break;
              }
            }
          }
          if (one != nullptr) {
            ReadAnswer(*config, *one, r);
          } else {
            SetOutcome(r, Outcome::kTransient, "missing from batch answer");
          }
        }
        c.SetResult(first_index + i, std::move(r));
      }
    });
  }

  std::shared_ptr<const Config> config_;
};

}  // namespace

Result<std::unique_ptr<Adapter>> MakeIpApiAdapter(const AdapterSpec& spec) {
  ENRICHD_RETURN_IF_ERROR(CheckKnownOptions(spec.options, {}));
  auto config = std::make_shared<Config>();
  ENRICHD_ASSIGN_OR_RETURN(config->info.kind,
                           ResolveKind(spec.kind, kKindGeo, {kKindAsn, kKindGeo}));
  config->info.adapter = std::string(kName);
  config->info.version = std::string(kVersion);
  config->base = TrimBase(spec.endpoint.empty() ? "http://ip-api.com" : spec.endpoint);
  config->auth = spec.auth;
  config->timeout = spec.timeout;
  config->max_batch = std::clamp<size_t>(spec.max_batch, 1, kMaxBatch);
  config->secrets = AuthSecrets(spec.auth);
  return std::unique_ptr<Adapter>(new IpApiAdapter(std::move(config)));
}

void RegisterIpApi(AdapterRegistry& registry) {
  registry.Register(std::string(kName), MakeIpApiAdapter);
}

}  // namespace enrichd::adapters

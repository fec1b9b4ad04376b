#include "adapters/ipinfo/ipinfo_adapter.h"

#include <algorithm>

#include "adapters/common/http_util.h"
#include "adapters/common/json_writer.h"
#include "adapters/common/options.h"
#include "adapters/common/queued_call.h"

namespace enrichd::adapters {
namespace {

constexpr std::string_view kName = "ipinfo";
constexpr std::string_view kVersion = "1";
constexpr size_t kMaxBatch = 1000;

struct Config {
  AdapterInfo info;
  bool lite = false;
  std::string base;
  AuthSpec auth;
  Duration timeout{};
  size_t max_batch = 1;
  std::vector<std::string> secrets;
};

// Reads one ipinfo answer object (full or lite shape) into `r`.
void ReadAnswer(const Config& config, const JsonValue& answer, EnrichmentResult& r) {
  if (!answer.is_object()) {
    SetOutcome(r, Outcome::kPermanent, "unexpected answer shape: not a JSON object");
    return;
  }
  if (const auto error = answer.Member("error")) {
    std::string title = "provider error";
    if (error->is_object()) {
      if (auto t = StringMember(*error, "title")) title = "provider error: " + *t;
    } else if (error->is_string()) {
      title = "provider error: " + error->String();
    }
    SetOutcome(r, Outcome::kPermanent, title);
    return;
  }
  if (const auto bogon = answer.Member("bogon"); bogon && bogon->is_true()) {
    SetNoData(r, "bogon");
    return;
  }

  // ASN facts: lite {"asn":"AS15169","as_name"}, paid {"asn":{"asn","name","route"}},
  // full free {"org":"AS15169 Google LLC"}.
  std::optional<int64_t> asn;
  std::optional<std::string> as_name;
  std::optional<std::string> route;
  std::optional<std::string> as_domain = StringMember(answer, "as_domain");
  if (const auto a = answer.Member("asn")) {
    if (a->is_object()) {
      if (const auto n = a->Member("asn")) asn = ParseAsnValue(*n);
      as_name = StringMember(*a, "name");
      route = StringMember(*a, "route");
      if (!as_domain) as_domain = StringMember(*a, "domain");
    } else {
      asn = ParseAsnValue(*a);
    }
  }
  if (!as_name) as_name = StringMember(answer, "as_name");
  const std::optional<std::string> org_field = StringMember(answer, "org");
  if (org_field) {
    if (auto split = SplitAsPrefixed(*org_field)) {
      if (!asn) asn = split->asn;
      if (!as_name && !split->name.empty()) as_name = split->name;
    }
  }

  // Geo facts. Lite: country_code + country (name); full: country (ISO code).
  std::optional<std::string> country_code = StringMember(answer, "country_code");
  std::optional<std::string> country_name;
  if (country_code) {
    country_name = StringMember(answer, "country");
  } else {
    country_code = StringMember(answer, "country");
  }
  std::optional<double> lat, lon;
  if (auto loc = StringMember(answer, "loc")) {
    const size_t comma = loc->find(',');
    if (comma != std::string::npos) {
      auto la = ParseNumberText(std::string_view(*loc).substr(0, comma));
      auto lo = ParseNumberText(std::string_view(*loc).substr(comma + 1));
      if (la && lo) {
        lat = la;
        lon = lo;
      }
    }
  }
  const auto region = StringMember(answer, "region");
  const auto city = StringMember(answer, "city");
  const auto postal = StringMember(answer, "postal");
  const auto timezone = StringMember(answer, "timezone");

  JsonObjectWriter extra;
  extra.String("hostname", StringMember(answer, "hostname"));
  extra.String("as_domain", as_domain);
  extra.String("continent_code", StringMember(answer, "continent_code"));
  extra.String("continent", StringMember(answer, "continent"));

  JsonObjectWriter data;
  if (config.info.kind == kKindAsn) {
    if (!asn) {
      SetNoData(r, "no ASN in answer");
      return;
    }
    data.Int("asn", *asn);
    data.String("org", as_name);
    data.String("prefix", route);
    data.String("country_code", country_code);
    extra.String("country", country_name);
    extra.String("region", region);
    extra.String("city", city);
    if (org_field && !SplitAsPrefixed(*org_field)) extra.String("org", *org_field);
  } else {
    if (!country_code && !lat && !city && !region) {
      SetNoData(r, "no location in answer");
      return;
    }
    data.String("country_code", country_code);
    data.String("country", country_name);
    data.String("region", region);
    data.String("city", city);
    if (lat) {
      data.Double("lat", *lat);
      data.Double("lon", *lon);
    }
    data.String("postal", postal);
    data.String("timezone", timezone);
    if (asn) extra.Int("asn", *asn);
    extra.String("as_name", as_name);
    extra.String("prefix", route);
  }
  if (!extra.empty()) data.Object("extra", extra);
  SetOkText(r, data.Text());
}

std::string PathFor(const Config& config, const Item& item) {
  return config.lite ? "lite/" + item.key : item.key;
}

class IpinfoAdapter final : public AsyncAdapter {
 public:
  explicit IpinfoAdapter(std::shared_ptr<const Config> config) : config_(std::move(config)) {}
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
    const std::string url =
        config_->base + "/" + PathFor(*config_, item) + (config_->lite ? "" : "/json");
    HttpRequest req = NewRequest("GET", url, config_->timeout);
    ApplyAuth(req, config_->auth);
    auto config = config_;
    const std::string shown = RedactUrl(req.url, config->secrets);
    call.Push(std::move(req), [config, shown, index](QueuedCall& c, const HttpResponse& resp) {
      EnrichmentResult r = BaseResult(config->info, shown, resp);
      if (auto failure = ClassifyHttpFailure(resp)) {
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
    Json paths = Json::array();
    for (const auto& item : items) paths.push_back(PathFor(*config_, item));
    HttpRequest req = NewRequest("POST", config_->base + "/batch", config_->timeout);
    req.headers.push_back({"Content-Type", "application/json"});
    req.body = DumpJson(paths);
    ApplyAuth(req, config_->auth);
    auto config = config_;
    const std::string shown = RedactUrl(req.url, config->secrets);
    call.Push(std::move(req), [config, shown, first_index, items = std::move(items)](
                                  QueuedCall& c, const HttpResponse& resp) {
      const auto failure = ClassifyHttpFailure(resp);
      const auto answer = failure ? std::nullopt : JsonDoc::Parse(resp.body);
      for (size_t i = 0; i < items.size(); ++i) {
        EnrichmentResult r = BaseResult(config->info, shown, resp);
        if (failure) {
          SetFailure(r, *failure);
        } else if (!answer) {
          SetOutcome(r, Outcome::kTransient, "malformed JSON in batch answer");
        } else if (!answer->root().is_object()) {
          SetOutcome(r, Outcome::kPermanent, "unexpected batch answer shape: not a JSON object");
        } else if (const auto one = answer->root().Member(PathFor(*config, items[i]))) {
          ReadAnswer(*config, *one, r);
        } else {
          SetOutcome(r, Outcome::kTransient, "missing from batch answer");
        }
        c.SetResult(first_index + i, std::move(r));
      }
    });
  }

  std::shared_ptr<const Config> config_;
};

}  // namespace

Result<std::unique_ptr<Adapter>> MakeIpinfoAdapter(const AdapterSpec& spec) {
  ENRICHD_RETURN_IF_ERROR(CheckKnownOptions(spec.options, {"mode"}));
  ENRICHD_ASSIGN_OR_RETURN(std::string mode, StringOption(spec.options, "mode", "full"));
  if (mode != "full" && mode != "lite") {
    return InvalidArgumentError("option \"mode\" must be \"full\" or \"lite\"");
  }
  auto config = std::make_shared<Config>();
  config->lite = mode == "lite";
  ENRICHD_ASSIGN_OR_RETURN(
      config->info.kind,
      ResolveKind(spec.kind, config->lite ? kKindAsn : kKindGeo, {kKindAsn, kKindGeo}));
  config->info.adapter = std::string(kName);
  config->info.version = std::string(kVersion);
  config->base = TrimBase(spec.endpoint.empty()
                              ? (config->lite ? "https://api.ipinfo.io" : "https://ipinfo.io")
                              : spec.endpoint);
  config->auth = spec.auth;
  config->timeout = spec.timeout;
  config->max_batch = std::clamp<size_t>(spec.max_batch, 1, kMaxBatch);
  config->secrets = AuthSecrets(spec.auth);
  return std::unique_ptr<Adapter>(new IpinfoAdapter(std::move(config)));
}

void RegisterIpinfo(AdapterRegistry& registry) {
  registry.Register(std::string(kName), MakeIpinfoAdapter);
}

}  // namespace enrichd::adapters

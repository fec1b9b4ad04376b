#include "adapters/http_json/http_json_adapter.h"

#include <algorithm>

#include "adapters/common/http_util.h"
#include "adapters/common/options.h"
#include "adapters/common/queued_call.h"

namespace enrichd::adapters {
namespace {

constexpr std::string_view kName = "http_json";
constexpr std::string_view kVersion = "1";

enum class FieldType { kAsn, kString, kNumber, kAny };

struct Field {
  std::string name;
  JsonPointer pointer;
  FieldType type = FieldType::kAny;
};

struct Config {
  AdapterInfo info;
  std::string base;
  std::string path;
  std::string method = "GET";
  std::optional<std::string> body;
  std::vector<HttpHeader> headers;
  std::vector<Field> fields;
  std::vector<Field> extra;
  std::optional<JsonPointer> no_data_pointer;
  Json no_data_equals;
  AuthSpec auth;
  Duration timeout{};
  std::vector<std::string> secrets;
};

std::optional<FieldType> TypeOf(std::string_view kind, std::string_view field) {
  if (kind == kKindAsn) {
    if (field == "asn") return FieldType::kAsn;
    if (field == "org" || field == "prefix" || field == "country_code" || field == "registry") {
      return FieldType::kString;
    }
    return std::nullopt;
  }
  if (kind == kKindGeo) {
    if (field == "lat" || field == "lon" || field == "accuracy_km") return FieldType::kNumber;
    if (field == "country_code" || field == "country" || field == "region" || field == "city" ||
        field == "postal" || field == "timezone") {
      return FieldType::kString;
    }
    return std::nullopt;
  }
  return FieldType::kAny;
}

std::string ReplaceAll(std::string text, std::string_view from, std::string_view to) {
  size_t pos = 0;
  while ((pos = text.find(from, pos)) != std::string::npos) {
    text.replace(pos, from.size(), to);
    pos += to.size();
  }
  return text;
}

Result<std::vector<Field>> ReadPointerMap(const Json& options, std::string_view option,
                                          const std::string& kind, bool typed) {
  std::vector<Field> out;
  const Json* map = Member(options, option);
  if (map == nullptr) return out;
  if (!map->is_object()) {
    return InvalidArgumentError("option \"" + std::string(option) +
                                "\" must be a mapping of name to JSON pointer");
  }
  for (const auto& [name, value] : map->items()) {
    const std::string where = "option \"" + std::string(option) + "." + name + "\"";
    if (!value.is_string()) return InvalidArgumentError(where + " must be a JSON pointer string");
    auto pointer = JsonPointer::Parse(value.get<std::string>());
    if (!pointer) {
      return InvalidArgumentError(where + " is not a JSON pointer (expected \"/a/b\")");
    }
    Field f{name, *pointer, FieldType::kAny};
    if (typed) {
      auto type = TypeOf(kind, name);
      if (!type) {
        return InvalidArgumentError(where + ": \"" + name + "\" is not a field of kind " + kind);
      }
      f.type = *type;
    }
    out.push_back(std::move(f));
  }
  return out;
}

// Reads the configured fields of `answer` into `r`.
void ReadAnswer(const Config& config, const Json& answer, EnrichmentResult& r) {
  if (config.no_data_pointer) {
    const Json* v = config.no_data_pointer->Resolve(answer);
    if (v != nullptr && *v == config.no_data_equals) {
      SetNoData(r, "no_data_when matched " + config.no_data_pointer->text());
      return;
    }
  }
  Json data = Json::object();
  for (const auto& field : config.fields) {
    const Json* v = field.pointer.Resolve(answer);
    if (v == nullptr || v->is_null()) continue;
    switch (field.type) {
      case FieldType::kAsn: {
        auto asn = ParseAsnValue(*v);
        if (!asn) {
          SetOutcome(r, Outcome::kPermanent, "field \"asn\" is not an AS number");
          return;
        }
        data["asn"] = *asn;
        break;
      }
      case FieldType::kNumber: {
        auto n = ParseNumberValue(*v);
        if (!n) {
          SetOutcome(r, Outcome::kPermanent, "field \"" + field.name + "\" is not a number");
          return;
        }
        data[field.name] = *n;
        break;
      }
      case FieldType::kString:
        if (v->is_string()) {
          if (!v->get_ref<const std::string&>().empty()) data[field.name] = *v;
        } else if (v->is_number() || v->is_boolean()) {
          data[field.name] = DumpJson(*v);
        } else {
          SetOutcome(r, Outcome::kPermanent, "field \"" + field.name + "\" is not a string");
          return;
        }
        break;
      case FieldType::kAny:
        data[field.name] = *v;
        break;
    }
  }
  if (data.empty()) {
    SetOutcome(r, Outcome::kPermanent, "answer has none of the configured fields");
    return;
  }
  Json extra = Json::object();
  for (const auto& field : config.extra) {
    const Json* v = field.pointer.Resolve(answer);
    if (v != nullptr && !v->is_null()) extra[field.name] = *v;
  }
  if (!extra.empty()) data["extra"] = std::move(extra);
  SetOk(r, data);
}

class HttpJsonAdapter final : public AsyncAdapter {
 public:
  explicit HttpJsonAdapter(std::shared_ptr<const Config> config) : config_(std::move(config)) {}
  std::string_view name() const override { return kName; }
  std::string_view version() const override { return kVersion; }
  std::string_view kind() const override { return config_->info.kind; }
  bool external() const override { return true; }

 protected:
  std::unique_ptr<AdapterCall> BeginSendable(std::vector<Item> items) override {
    auto call = std::make_unique<QueuedCall>(items.size(), config_->info, config_->secrets);
    for (size_t i = 0; i < items.size(); ++i) {
      const std::string path = ReplaceAll(config_->path, "{key}", PercentEncode(items[i].key));
      HttpRequest req = NewRequest(config_->method, config_->base + path, config_->timeout);
      for (const auto& h : config_->headers) req.headers.push_back(h);
      if (config_->body) {
        req.body = ReplaceAll(*config_->body, "{key}", items[i].key);
        req.headers.push_back({"Content-Type", "application/json"});
      }
      ApplyAuth(req, config_->auth);
      auto config = config_;
      const std::string shown = RedactUrl(req.url, config->secrets);
      call->Push(std::move(req), [config, shown, i](QueuedCall& c, const HttpResponse& resp) {
        EnrichmentResult r = BaseResult(config->info, shown, resp);
        if (auto failure = ClassifyHttpFailure(resp)) {
          SetFailure(r, *failure);
        } else if (auto answer = ParseJson(resp.body)) {
          ReadAnswer(*config, *answer, r);
        } else {
          SetOutcome(r, Outcome::kTransient, "malformed JSON in answer");
        }
        c.SetResult(i, std::move(r));
      });
    }
    return call;
  }

 private:
  std::shared_ptr<const Config> config_;
};

}  // namespace

Result<std::unique_ptr<Adapter>> MakeHttpJsonAdapter(const AdapterSpec& spec) {
  const Json& options = spec.options;
  ENRICHD_RETURN_IF_ERROR(CheckKnownOptions(
      options, {"path", "method", "body", "headers", "fields", "no_data_when", "extra"}));
  if (spec.kind.empty()) return InvalidArgumentError("kind is required for adapter http_json");
  if (spec.endpoint.empty()) {
    return InvalidArgumentError("endpoint is required for adapter http_json");
  }
  auto config = std::make_shared<Config>();
  config->info = {std::string(kName), std::string(kVersion), spec.kind};
  config->base = TrimBase(spec.endpoint);
  ENRICHD_ASSIGN_OR_RETURN(config->path, StringOption(options, "path", std::nullopt));
  if (config->path.front() != '/') {
    return InvalidArgumentError("option \"path\" must start with '/'");
  }
  ENRICHD_ASSIGN_OR_RETURN(config->method, StringOption(options, "method", "GET"));
  std::transform(config->method.begin(), config->method.end(), config->method.begin(),
                 [](char c) { return static_cast<char>(c >= 'a' && c <= 'z' ? c - 32 : c); });
  if (config->method != "GET" && config->method != "POST") {
    return InvalidArgumentError("option \"method\" must be GET or POST");
  }
  if (const Json* body = Member(options, "body")) {
    if (!body->is_string()) return InvalidArgumentError("option \"body\" must be a string");
    if (config->method != "POST") return InvalidArgumentError("option \"body\" needs method POST");
    config->body = body->get<std::string>();
  }
  config->secrets = AuthSecrets(spec.auth);
  if (const Json* headers = Member(options, "headers")) {
    if (!headers->is_object()) {
      return InvalidArgumentError("option \"headers\" must be a mapping of name to value");
    }
    for (const auto& [name, value] : headers->items()) {
      if (!value.is_string()) {
        return InvalidArgumentError("option \"headers." + name + "\" must be a string");
      }
      if (name.empty() || name.find_first_of(":\r\n ") != std::string::npos) {
        return InvalidArgumentError("option \"headers\": invalid header name");
      }
      const std::string v = value.get<std::string>();
      if (v.find_first_of("\r\n") != std::string::npos) {
        return InvalidArgumentError("option \"headers." + name + "\" contains a line break");
      }
      config->headers.push_back({name, v});
      if (!v.empty()) config->secrets.push_back(v);
    }
  }
  if (Member(options, "fields") == nullptr) {
    return InvalidArgumentError("option \"fields\" is required");
  }
  ENRICHD_ASSIGN_OR_RETURN(config->fields, ReadPointerMap(options, "fields", spec.kind, true));
  if (config->fields.empty()) return InvalidArgumentError("option \"fields\" must not be empty");
  ENRICHD_ASSIGN_OR_RETURN(config->extra, ReadPointerMap(options, "extra", spec.kind, false));
  if (const Json* nd = Member(options, "no_data_when")) {
    const Json* pointer = Member(*nd, "pointer");
    const Json* equals = Member(*nd, "equals");
    if (pointer == nullptr || !pointer->is_string() || equals == nullptr) {
      return InvalidArgumentError(
          "option \"no_data_when\" must be {pointer: \"/json/pointer\", equals: value}");
    }
    config->no_data_pointer = JsonPointer::Parse(pointer->get<std::string>());
    if (!config->no_data_pointer) {
      return InvalidArgumentError("option \"no_data_when.pointer\" is not a JSON pointer");
    }
    config->no_data_equals = *equals;
  }
  config->auth = spec.auth;
  config->timeout = spec.timeout;
  return std::unique_ptr<Adapter>(new HttpJsonAdapter(std::move(config)));
}

void RegisterHttpJson(AdapterRegistry& registry) {
  registry.Register(std::string(kName), MakeHttpJsonAdapter);
}

}  // namespace enrichd::adapters

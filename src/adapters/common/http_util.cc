#include "adapters/common/http_util.h"

#include <charconv>

#include "adapters/common/sha256.h"

namespace enrichd::adapters {
namespace {

bool IsUnreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

bool IsCredentialParam(std::string_view name) {
  std::string lower;
  for (char c : name) lower.push_back(static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c));
  static constexpr std::string_view kNames[] = {
      "token",  "key",         "apikey", "api_key",   "access_token", "password",
      "secret", "license_key", "sig",    "signature", "auth",         "api-key"};
  for (auto n : kNames) {
    if (lower == n) return true;
  }
  return false;
}

}  // namespace

HttpRequest NewRequest(std::string method, std::string url, Duration timeout) {
  HttpRequest req;
  req.method = std::move(method);
  req.url = std::move(url);
  req.timeout = timeout;
  req.headers.push_back({"User-Agent", std::string(kUserAgent)});
  req.headers.push_back({"Accept", "application/json"});
  return req;
}

std::string Base64(std::string_view data) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < data.size(); i += 3) {
    const uint32_t v = (uint32_t{static_cast<uint8_t>(data[i])} << 16) |
                       (uint32_t{static_cast<uint8_t>(data[i + 1])} << 8) |
                       uint32_t{static_cast<uint8_t>(data[i + 2])};
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(kAlphabet[(v >> 6) & 63]);
    out.push_back(kAlphabet[v & 63]);
  }
  const size_t rest = data.size() - i;
  if (rest == 1) {
    const uint32_t v = uint32_t{static_cast<uint8_t>(data[i])} << 16;
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out += "==";
  } else if (rest == 2) {
    const uint32_t v = (uint32_t{static_cast<uint8_t>(data[i])} << 16) |
                       (uint32_t{static_cast<uint8_t>(data[i + 1])} << 8);
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(kAlphabet[(v >> 6) & 63]);
    out.push_back('=');
  }
  return out;
}

void ApplyAuth(HttpRequest& request, const AuthSpec& auth, std::string_view default_query_name) {
  switch (auth.kind) {
    case AuthSpec::Kind::kNone:
      return;
    case AuthSpec::Kind::kBearer:
      request.headers.push_back({"Authorization", "Bearer " + auth.secret});
      return;
    case AuthSpec::Kind::kBasic:
      request.headers.push_back(
          {"Authorization", "Basic " + Base64(auth.user + ":" + auth.secret)});
      return;
    case AuthSpec::Kind::kHeader:
      request.headers.push_back({auth.name.empty() ? "X-Api-Key" : auth.name, auth.secret});
      return;
    case AuthSpec::Kind::kQueryParam:
      request.url = AppendQuery(std::move(request.url),
                                auth.name.empty() ? default_query_name : auth.name, auth.secret);
      return;
  }
}

std::vector<std::string> AuthSecrets(const AuthSpec& auth) {
  std::vector<std::string> out;
  if (auth.kind == AuthSpec::Kind::kNone || auth.secret.empty()) return out;
  out.push_back(auth.secret);
  const std::string encoded = PercentEncode(auth.secret);
  if (encoded != auth.secret) out.push_back(encoded);
  if (auth.kind == AuthSpec::Kind::kBasic) out.push_back(Base64(auth.user + ":" + auth.secret));
  return out;
}

std::string PercentEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (IsUnreserved(c)) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  return out;
}

std::string AppendQuery(std::string url, std::string_view name, std::string_view value) {
  url.push_back(url.find('?') == std::string::npos ? '?' : '&');
  url += PercentEncode(name);
  url.push_back('=');
  url += PercentEncode(value);
  return url;
}

std::string TrimBase(std::string_view endpoint) {
  while (!endpoint.empty() && endpoint.back() == '/') endpoint.remove_suffix(1);
  return std::string(endpoint);
}

std::string RedactUrl(std::string_view url, const std::vector<std::string>& secrets) {
  std::string out(url);
  // User info: scheme://user:pass@host -> scheme://host
  const size_t scheme = out.find("://");
  if (scheme != std::string::npos) {
    const size_t host_start = scheme + 3;
    const size_t host_end = out.find_first_of("/?#", host_start);
    const size_t at = out.rfind('@', host_end == std::string::npos ? out.size() : host_end);
    if (at != std::string::npos && at >= host_start) out.erase(host_start, at + 1 - host_start);
  }
  // Credential-like query parameters.
  const size_t q = out.find('?');
  if (q != std::string::npos) {
    const size_t hash = out.find('#', q);
    const std::string fragment = hash == std::string::npos ? "" : out.substr(hash);
    const std::string query =
        out.substr(q + 1, hash == std::string::npos ? std::string::npos : hash - q - 1);
    std::string rebuilt;
    size_t pos = 0;
    while (pos <= query.size()) {
      size_t amp = query.find('&', pos);
      if (amp == std::string::npos) amp = query.size();
      std::string part = query.substr(pos, amp - pos);
      const size_t eq = part.find('=');
      if (eq != std::string::npos && IsCredentialParam(part.substr(0, eq))) {
        part = part.substr(0, eq + 1) + "REDACTED";
      }
      if (!rebuilt.empty() || pos > 0) rebuilt.push_back('&');
      rebuilt += part;
      pos = amp + 1;
    }
    out = out.substr(0, q + 1) + rebuilt + fragment;
  }
  return ScrubText(std::move(out), secrets);
}

std::optional<Duration> RetryAfterSeconds(const HttpResponse& response) {
  const std::string* value = response.Header("retry-after");
  if (value == nullptr || value->empty() || value->size() > 6) return std::nullopt;
  int64_t seconds = 0;
  auto [ptr, ec] = std::from_chars(value->data(), value->data() + value->size(), seconds);
  if (ec != std::errc() || ptr != value->data() + value->size()) return std::nullopt;
  if (seconds < 0 || seconds > 86400) return std::nullopt;
  return std::chrono::seconds(seconds);
}

Failure ClassifyStatusCode(int status) {
  Failure f;
  f.reason = "HTTP " + std::to_string(status);
  if (status == 429) {
    f.outcome = Outcome::kRateLimited;
  } else if (status == 401 || status == 403 || status == 402) {
    f.outcome = Outcome::kAuth;
  } else if (status == 408 || (status >= 500 && status <= 599)) {
    f.outcome = Outcome::kTransient;
  } else if (status >= 300 && status <= 499) {
    f.outcome = Outcome::kPermanent;
  } else {
    f.outcome = Outcome::kTransient;
  }
  return f;
}

std::optional<Failure> ClassifyHttpFailure(const HttpResponse& response) {
  if (!response.transport_ok()) {
    Failure f;
    f.reason = "transport error: " + std::string(TransportErrorName(response.error));
    if (!response.error_message.empty()) f.reason += " (" + response.error_message + ")";
    switch (response.error) {
      case TransportError::kCancelled:
        f.outcome = Outcome::kCancelled;
        break;
      case TransportError::kResponseTooLarge:
        f.outcome = Outcome::kPermanent;
        break;
      default:
        f.outcome = Outcome::kTransient;
        break;
    }
    return f;
  }
  if (response.status >= 200 && response.status <= 299) return std::nullopt;
  Failure f = ClassifyStatusCode(response.status);
  if (f.outcome == Outcome::kRateLimited || f.outcome == Outcome::kTransient) {
    f.retry_after = RetryAfterSeconds(response);
  }
  return f;
}

EnrichmentResult BaseResult(const AdapterInfo& info, std::string redacted_endpoint,
                            const HttpResponse& response) {
  EnrichmentResult r;
  r.outcome = Outcome::kTransient;
  r.kind = info.kind;
  r.data_json = "{}";
  r.provenance.adapter = info.adapter;
  r.provenance.adapter_version = info.version;
  r.provenance.endpoint = std::move(redacted_endpoint);
  r.provenance.http_status = response.transport_ok() ? response.status : 0;
  r.provenance.response_digest = ResponseDigest(response.body);
  r.provenance.latency = response.elapsed;
  return r;
}

EnrichmentResult LocalResult(const AdapterInfo& info, std::string endpoint, std::string_view raw) {
  EnrichmentResult r;
  r.outcome = Outcome::kTransient;
  r.kind = info.kind;
  r.data_json = "{}";
  r.provenance.adapter = info.adapter;
  r.provenance.adapter_version = info.version;
  r.provenance.endpoint = std::move(endpoint);
  r.provenance.http_status = 0;
  r.provenance.response_digest = ResponseDigest(raw);
  return r;
}

void SetOk(EnrichmentResult& r, const Json& data) { SetOkText(r, DumpJson(data)); }

void SetOkText(EnrichmentResult& r, std::string data_json) {
  r.outcome = Outcome::kOk;
  r.data_json = std::move(data_json);
  r.reason.clear();
  r.retry_after.reset();
}

void SetNoData(EnrichmentResult& r, std::string reason, Json data) {
  r.outcome = Outcome::kNoData;
  if (!data.is_object()) data = Json::object();
  if (!reason.empty() && !data.contains("reason")) data["reason"] = reason;
  r.data_json = DumpJson(data);
  r.reason = std::move(reason);
  r.retry_after.reset();
}

void SetFailure(EnrichmentResult& r, const Failure& failure) {
  r.outcome = failure.outcome;
  r.reason = failure.reason;
  r.retry_after = failure.retry_after;
  r.data_json = "{}";
}

void SetOutcome(EnrichmentResult& r, Outcome outcome, std::string reason) {
  r.outcome = outcome;
  r.reason = std::move(reason);
  r.data_json = "{}";
  r.retry_after.reset();
}

void ScrubResult(EnrichmentResult& r, const std::vector<std::string>& secrets) {
  if (secrets.empty()) return;
  r.provenance.endpoint = ScrubText(std::move(r.provenance.endpoint), secrets);
  r.reason = ScrubText(std::move(r.reason), secrets);
  bool found = false;
  for (const auto& s : secrets) {
    if (!s.empty() && r.data_json.find(s) != std::string::npos) found = true;
  }
  if (found) {
    auto j = ParseJson(r.data_json);
    if (j) {
      ScrubJson(*j, secrets);
      r.data_json = DumpJson(*j);
    } else {
      r.data_json = "{}";
    }
  }
}

}  // namespace enrichd::adapters

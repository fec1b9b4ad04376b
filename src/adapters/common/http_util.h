// Shared pieces of the HTTP adapters: request construction, authentication, secret
// redaction, HTTP status -> Outcome mapping and result/provenance construction.
// Pure functions, thread-safe. No I/O: adapters only build requests and read responses.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/common/json_util.h"
#include "enrichd/adapter.h"
#include "enrichd/enrichment.h"
#include "enrichd/http.h"
#include "enrichd/outcome.h"

namespace enrichd::adapters {

inline constexpr std::string_view kUserAgent = "enrichd/0.1";

// Who produced a result: copied into every result's kind and provenance.
struct AdapterInfo {
  std::string adapter;  // "ipinfo"
  std::string version;  // "1"
  std::string kind;     // "asn", "geo"
};

// A request with User-Agent "enrichd/0.1", Accept: application/json and `timeout`.
HttpRequest NewRequest(std::string method, std::string url, Duration timeout);

// Adds the credentials of `auth` to `request`: Authorization: Bearer / Basic, a header
// (auth.name), or a query parameter (auth.name, else `default_query_name`).
void ApplyAuth(HttpRequest& request, const AuthSpec& auth,
               std::string_view default_query_name = "token");

// The secret strings of `auth` (and the Basic header value derived from them) that must
// never appear in anything an adapter returns.
std::vector<std::string> AuthSecrets(const AuthSpec& auth);

// Appends "name=value" (value percent-encoded) to `url` with '?' or '&'.
std::string AppendQuery(std::string url, std::string_view name, std::string_view value);
// RFC 3986 percent-encoding of everything but unreserved characters (A-Z a-z 0-9 -._~).
std::string PercentEncode(std::string_view text);
// The endpoint base without trailing slashes ("https://ipinfo.io/" -> "https://ipinfo.io").
std::string TrimBase(std::string_view endpoint);

// `url` safe to show: user info removed, the values of credential-like query
// parameters (token, key, apikey, api_key, access_token, password, secret, license_key,
// sig, signature) replaced with "REDACTED", and each of `secrets` scrubbed anywhere.
std::string RedactUrl(std::string_view url, const std::vector<std::string>& secrets);

// Retry-After as a number of seconds (0..86400); nullopt when absent or not a plain
// non-negative integer (HTTP-dates are left to src/resilience's full parser).
std::optional<Duration> RetryAfterSeconds(const HttpResponse& response);

// How a response that is not a usable answer maps onto the taxonomy.
struct Failure {
  Outcome outcome = Outcome::kTransient;
  std::string reason;
  std::optional<Duration> retry_after;
};

// nullopt for a 2xx response. Otherwise:
//   transport kTimeout/kConnect/kReceive/kTls/kOther -> transient; kCancelled -> cancelled;
//   kResponseTooLarge -> permanent (the same answer would be too large again);
//   429 -> rate_limited (Retry-After); 401/403/402 -> auth; 408, 5xx -> transient
//   (Retry-After kept); 3xx (redirects are not followed) and other 4xx -> permanent;
//   anything else -> transient.
std::optional<Failure> ClassifyHttpFailure(const HttpResponse& response);
// Maps a status code alone (for envelope status codes inside a 200 body).
Failure ClassifyStatusCode(int status);

// A result of `info` with the provenance taken from `response` (http_status, digest of
// the body, latency), endpoint `redacted_endpoint`. Outcome transient, data "{}".
EnrichmentResult BaseResult(const AdapterInfo& info, std::string redacted_endpoint,
                            const HttpResponse& response);
// A local (non-HTTP) result: http_status 0, digest of `raw`.
EnrichmentResult LocalResult(const AdapterInfo& info, std::string endpoint, std::string_view raw);

// Outcome setters.
void SetOk(EnrichmentResult& r, const Json& data);
// The same with the data already written as JSON text (JsonObjectWriter::Text()).
void SetOkText(EnrichmentResult& r, std::string data_json);
void SetNoData(EnrichmentResult& r, std::string reason, Json data = Json::object());
void SetFailure(EnrichmentResult& r, const Failure& failure);
void SetOutcome(EnrichmentResult& r, Outcome outcome, std::string reason);

// Removes every secret from the endpoint, reason and data of `r` (defence in depth).
void ScrubResult(EnrichmentResult& r, const std::vector<std::string>& secrets);

// Base64 (standard alphabet, padded).
std::string Base64(std::string_view data);

}  // namespace enrichd::adapters

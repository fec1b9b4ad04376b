// MockProvider: a loopback imitation of three real ASN/geolocation services (ipinfo.io,
// ip-api.com, RIPEstat; shapes in docs/PROVIDERS.md) on one HttpServer, with knobs to make
// it slow, failing, rate-limited or down, and counters of everything it received. For
// adapter, HTTP-client, engine and end-to-end tests, and for `enrichd mock-provider`.
//
// URL layout (base = base_url(), e.g. "http://127.0.0.1:41234"):
//   ipinfo   (ipinfo_url()   = base + "/ipinfo")
//     GET  /ipinfo/{ip}/json, /ipinfo/{ip}     full record; bogon -> {"ip":..,"bogon":true};
//                                              invalid ip -> 404
//     GET  /ipinfo/{ip}/{field}                one field as text/plain ("US\n")
//     GET  /ipinfo/lite/{ip}                   the Lite shape
//     POST /ipinfo/batch                       JSON array of paths ("8.8.8.8",
//                                              "1.1.1.1/country", "lite/8.8.8.8") -> object
//                                              keyed by path; > 1000 paths -> 400
//     token: ?token=T or "Authorization: Bearer T"; with required_token set, missing -> 401,
//     wrong -> 403 (ipinfo routes only).
//   ip-api   (ipapi_url()    = base + "/ip-api")
//     GET  /ip-api/json/{ip}?fields=a,b,c      success or HTTP 200 {"status":"fail",...}
//     POST /ip-api/batch[?fields=..]           array of ips or {"query":ip[,"fields":..]},
//                                              <= 100 -> array in order; more -> 422
//     every answer carries X-Rl (requests left in the window) and X-Ttl (seconds until the
//     window resets); single and batch have separate fixed windows; a request beyond the
//     window's allowance gets 429 (X-Rl: 0).
//   RIPEstat (ripestat_url() = base + "/ripestat")
//     GET  /ripestat/data/network-info/data.json?resource=IP
//     GET  /ripestat/data/as-overview/data.json?resource=AS<n> (or <n>)
//     full envelope; a bad resource -> HTTP 400 with status "error".
//   control (not counted as provider traffic, never faulted)
//     GET  /_mock/stats                        Snapshot().ToJson()
//     POST /_mock/outage/on, /_mock/outage/off SetOutage(true/false)
//   anything else -> 404.
//
// Data: every answer for an address is a pure function of the address. ASN, organisation,
// country, city, lat/lon and prefix are derived from a hash (FNV-1a) of the /24 (IPv4) or
// /48 (IPv6) network, so the whole prefix shares them; 1 network in 32 is "unannounced" (no
// ASN). 8.8.8.8 and 1.1.1.1 answer exactly as the examples in PROVIDERS.md (Google,
// Cloudflare). Same address, same answer, across runs and processes.
//
// Knobs apply in this order to provider routes: outage -> rate limit (429 + Retry-After)
// -> ip-api window (429) -> auth (ipinfo) -> per-IP trigger or random fault roll (503,
// drop, truncate, malformed, oversized, slow) -> latency. Windows, rate limits and the
// outage window read the injected Clock (so tests use FakeClock); latency and slow bodies
// are real time (the server's timers). Random choices come from one SeededRandom(seed),
// reproducible in arrival order.
//
// Thread safety: every public method may be called from any thread while the server runs.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "enrichd/clock.h"
#include "enrichd/random.h"
#include "enrichd/status.h"
#include "mock_provider/http_server.h"

namespace enrichd::mock {

// A misbehaviour forced on every request that names a given IP (MockProviderOptions::ip_faults).
enum class MockFault {
  kNone,
  kError,        // error_status (503)
  kRateLimited,  // 429 with Retry-After: 1
  kDrop,         // connection closed without an answer
  kTruncate,     // full Content-Length announced, half the body sent, connection closed
  kMalformed,    // HTTP 200, complete response, body is not valid JSON
  kOversized,    // HTTP 200, valid JSON of oversized_bytes
  kSlow,         // body sent in 8 pieces, slow_interval apart
};

struct MockProviderOptions {
  // Latency added to every provider answer: fixed + uniform[0, jitter).
  Duration latency{};
  Duration latency_jitter{};

  // Fractions of provider requests (each in [0, 1], summing to <= 1) that misbehave.
  double error_rate = 0;      // answered with error_status
  double drop_rate = 0;       // connection dropped
  double truncate_rate = 0;   // body truncated
  double malformed_rate = 0;  // body not JSON
  double oversized_rate = 0;  // body of oversized_bytes
  double slow_rate = 0;       // body trickled slow_interval apart
  int error_status = 503;
  std::size_t oversized_bytes = 9u << 20;  // over HttpRequest's default 8 MiB limit
  Duration slow_interval = std::chrono::milliseconds(50);
  // Per-IP triggers: requests naming this IP (canonical text) get this fault.
  std::map<std::string, MockFault> ip_faults;

  // Server-side token bucket over all provider routes: rate_limit_rps tokens/second, up to
  // rate_limit_burst (<= 0: same as the rate). Beyond it: 429 with Retry-After (seconds,
  // rounded up, >= 1). 0 disables.
  double rate_limit_rps = 0;
  double rate_limit_burst = 0;

  // ip-api windows (fixed windows starting at the first request).
  int ipapi_requests_per_window = 45;
  int ipapi_batch_requests_per_window = 15;
  Duration ipapi_window = std::chrono::seconds(60);

  // Outage: between outage_start and outage_end (relative to Start), or while SetOutage(true).
  Duration outage_start{};
  Duration outage_end{};                  // <= outage_start: no scheduled outage
  bool outage_drops_connections = false;  // false: 503 with Retry-After; true: drop

  // ipinfo: when non-empty, the token every ipinfo request must carry.
  std::string required_token;

  uint64_t seed = 1;
  // Arrival times kept for MaxInWindow (older entries beyond this are forgotten).
  std::size_t max_arrivals_kept = 2'000'000;
};

// One provider request as the mock answered it (MockProviderStats::requests), so a test can
// check what a client did after each answer (e.g. nothing before a Retry-After elapsed).
struct MockRequestRecord {
  Duration arrival{};      // since Start, by the injected clock (same scale as `arrivals`)
  std::string route;       // as in MockProviderStats::by_route
  int status = 0;          // HTTP status sent (0: connection dropped)
  int retry_after_s = -1;  // the Retry-After header sent, in seconds; -1: none
  int x_rl = -1;           // ip-api X-Rl header sent; -1: none
  int x_ttl = -1;          // ip-api X-Ttl header sent, in seconds; -1: none
};

// What the provider received and sent, since Start (or ResetCounters).
struct MockProviderStats {
  uint64_t total_requests = 0;  // provider routes (control routes excluded)
  uint64_t connections_accepted = 0;
  // Route names: "ipinfo.json", "ipinfo.field", "ipinfo.lite", "ipinfo.batch", "ipapi.json",
  // "ipapi.batch", "ripestat.network-info", "ripestat.as-overview", "not_found".
  std::map<std::string, uint64_t> by_route;
  // HTTP status sent (a dropped connection counts as status 0; a truncated body under the
  // status its head carried).
  std::map<int, uint64_t> by_status;
  // Knob effects and notable requests: "outage", "rate_limited", "ipapi_overrun", "auth",
  // "error", "drop", "truncate", "malformed", "oversized", "slow", "ripestat_no_sourceapp".
  std::map<std::string, uint64_t> events;
  // Seconds since start (by the injected clock) -> requests arriving in that second.
  std::map<int64_t, uint64_t> by_second;
  // Every IP looked up (batch entries one by one) -> times asked.
  std::map<std::string, uint64_t> by_ip;
  // Arrival times since start, in order (capped at max_arrivals_kept, newest kept).
  std::vector<Duration> arrivals;
  // Most requests in flight at once, approximately: a request counts from its arrival until
  // its latency elapses (real time). Meaningful only with latency > 0.
  uint64_t max_in_flight = 0;
  // Every provider request with the answer it got, in the order the answers were decided
  // (near arrival order; sort by `arrival` when it matters). Capped like `arrivals`.
  std::vector<MockRequestRecord> requests;

  // The most requests that arrived within any window [t, t + window) (sliding).
  uint64_t MaxInWindow(Duration window) const;
  // JSON object with every field above except arrivals (arrival_count instead).
  std::string ToJson() const;
};

class MockProvider {
 public:
  // Starts the server (port 0 picks a free one). `clock` must outlive the provider.
  static Result<std::unique_ptr<MockProvider>> Start(MockProviderOptions options,
                                                     ServerOptions server = {},
                                                     Clock& clock = SystemClock::Instance());
  ~MockProvider();
  MockProvider(const MockProvider&) = delete;
  MockProvider& operator=(const MockProvider&) = delete;

  std::string base_url() const;      // "http://127.0.0.1:<port>"
  std::string ipinfo_url() const;    // base_url() + "/ipinfo"
  std::string ipapi_url() const;     // base_url() + "/ip-api"
  std::string ripestat_url() const;  // base_url() + "/ripestat"
  uint16_t port() const;

  // Replaces the knobs (takes effect for the next request; counters, rate-limit and window
  // state are kept). The seed is applied only at Start.
  void SetOptions(MockProviderOptions options);
  MockProviderOptions options() const;
  // Forces an outage on or off regardless of the scheduled window.
  void SetOutage(bool on);

  MockProviderStats Snapshot() const;
  void ResetCounters();
  // Stops the server (connections closed). Idempotent; also done by the destructor.
  void Stop();

  class Impl;

 private:
  explicit MockProvider(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Named option sets for `enrichd mock-provider --scenario`: "fast", "realistic", "flaky",
// "outage", "ratelimited". kInvalidArgument for an unknown name.
Result<MockProviderOptions> ScenarioOptions(const std::string& name);

}  // namespace enrichd::mock

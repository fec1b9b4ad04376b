// Helpers for adapter tests: recorded responses from an adapter's testdata/ folder, and
// a driver that runs an AdapterCall against a list of canned responses. Test-only.
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "enrichd/adapter.h"

namespace enrichd::adapters::testing {

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot read " << path;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The recorded response `name` of the adapter folder `dir` (e.g. "ipinfo").
inline std::string Recorded(const std::string& dir, const std::string& name) {
  return ReadFile(std::string(ENRICHD_SOURCE_DIR) + "/src/adapters/" + dir + "/testdata/" + name);
}

inline std::string TestdataPath(const std::string& dir, const std::string& name) {
  return std::string(ENRICHD_SOURCE_DIR) + "/src/adapters/" + dir + "/testdata/" + name;
}

inline HttpResponse Response(int status, std::string body, std::vector<HttpHeader> headers = {},
                             Duration elapsed = std::chrono::milliseconds(42)) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  r.headers = std::move(headers);
  r.elapsed = elapsed;
  return r;
}

inline HttpResponse TransportFailure(TransportError error, std::string message = "") {
  HttpResponse r;
  r.error = error;
  r.error_message = std::move(message);
  r.elapsed = std::chrono::milliseconds(5);
  return r;
}

inline Item Ip(std::string_view text) {
  auto item = Item::Make(kIpLabel, text);
  EXPECT_TRUE(item.ok()) << item.status();
  return *item;
}

inline std::unique_ptr<Adapter> MustCreate(const AdapterSpec& spec) {
  auto created = AdapterRegistry::Builtin().Create(spec);
  EXPECT_TRUE(created.ok()) << created.status();
  if (!created.ok()) return nullptr;
  return std::move(created).value();
}

inline AsyncAdapter* AsAsync(const std::unique_ptr<Adapter>& adapter) {
  auto* async = dynamic_cast<AsyncAdapter*>(adapter.get());
  EXPECT_NE(async, nullptr);
  return async;
}

inline std::optional<std::string> RequestHeader(const HttpRequest& req, std::string_view name) {
  for (const auto& h : req.headers) {
    if (h.name.size() != name.size()) continue;
    bool same = true;
    for (size_t i = 0; i < name.size() && same; ++i) {
      same = std::tolower(static_cast<unsigned char>(h.name[i])) ==
             std::tolower(static_cast<unsigned char>(name[i]));
    }
    if (same) return h.value;
  }
  return std::nullopt;
}

struct Run {
  std::vector<HttpRequest> requests;
  std::vector<EnrichmentResult> results;
  std::optional<Duration> pause;
  std::optional<AdapterCall::Quota> quota;
};

// Drives `call`: each request gets the next of `responses`. A request beyond the given
// responses fails the test.
inline Run Drive(AdapterCall& call, std::vector<HttpResponse> responses) {
  Run run;
  size_t next = 0;
  while (auto req = call.NextRequest()) {
    run.requests.push_back(*req);
    if (next >= responses.size()) {
      ADD_FAILURE() << "unexpected request " << req->method << " " << req->url;
      break;
    }
    call.OnResponse(responses[next++]);
  }
  EXPECT_EQ(next, responses.size()) << "not every canned response was asked for";
  run.pause = call.ProviderPause();
  run.quota = call.QuotaLeft();
  run.results = call.TakeResults();
  return run;
}

inline Run DriveItems(AsyncAdapter& adapter, std::vector<Item> items,
                      std::vector<HttpResponse> responses) {
  auto call = adapter.Begin(std::move(items));
  return Drive(*call, std::move(responses));
}

// Every string an adapter returned, for secret-leak checks.
inline std::string AllText(const EnrichmentResult& r) {
  return r.kind + "|" + r.data_json + "|" + r.reason + "|" + r.provenance.adapter + "|" +
         r.provenance.adapter_version + "|" + r.provenance.endpoint + "|" +
         r.provenance.response_digest + "|" + r.provenance.run_id;
}

}  // namespace enrichd::adapters::testing

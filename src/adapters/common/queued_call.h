// QueuedCall: the AdapterCall most HTTP adapters need. A FIFO of requests, each with a
// handler that reads its response into results (and may queue follow-up requests, as
// RIPEstat's second call). Not thread-safe (one engine thread drives a call).
#pragma once

#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "adapters/common/http_util.h"
#include "enrichd/adapter.h"

namespace enrichd::adapters {

class QueuedCall final : public AdapterCall {
 public:
  using Handler = std::function<void(QueuedCall& call, const HttpResponse& response)>;

  // `item_count` results; `secrets` are scrubbed from every result in TakeResults();
  // `info` fills results no handler answered (transient "no answer was read").
  QueuedCall(size_t item_count, AdapterInfo info, std::vector<std::string> secrets);

  // Appends a request; `on_response` runs when its answer arrives.
  void Push(HttpRequest request, Handler on_response);
  void SetResult(size_t index, EnrichmentResult result);
  void SetPause(std::optional<Duration> pause) { pause_ = pause; }
  void SetQuota(std::optional<Quota> quota) { quota_ = quota; }

  std::optional<HttpRequest> NextRequest() override;
  void OnResponse(const HttpResponse& response) override;
  std::vector<EnrichmentResult> TakeResults() override;
  std::optional<Duration> ProviderPause() const override { return pause_; }
  std::optional<Quota> QuotaLeft() const override { return quota_; }

 private:
  struct Pending {
    HttpRequest request;
    Handler on_response;
  };
  AdapterInfo info_;
  std::vector<std::string> secrets_;
  std::deque<Pending> queue_;
  std::vector<std::optional<EnrichmentResult>> results_;
  std::optional<Duration> pause_;
  std::optional<Quota> quota_;
};

}  // namespace enrichd::adapters

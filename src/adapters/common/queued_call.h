// QueuedCall: the AdapterCall most HTTP adapters need. A FIFO of requests, each with a
// handler that reads its response into results (and may queue follow-up requests, as
// RIPEstat's second call). Not thread-safe (one engine thread drives a call).
#pragma once

#include <algorithm>
#include <cstddef>
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

// For adapters whose API takes one item or a batch: splits `items` into requests of at most
// `max_batch` items, in order. A chunk of one goes to `push_single(item, index)` (the plain
// single-item endpoint), a larger one to `push_batch(chunk, index_of_first)`.
template <typename PushSingle, typename PushBatch>
void PushInChunks(const std::vector<Item>& items, std::size_t max_batch, PushSingle push_single,
                  PushBatch push_batch) {
  for (std::size_t start = 0; start < items.size(); start += max_batch) {
    const std::size_t end = std::min(items.size(), start + max_batch);
    if (end - start == 1) {
      push_single(items[start], start);
    } else {
      push_batch(std::vector<Item>(items.begin() + static_cast<std::ptrdiff_t>(start),
                                   items.begin() + static_cast<std::ptrdiff_t>(end)),
                 start);
    }
  }
}

}  // namespace enrichd::adapters

#include "adapters/common/queued_call.h"

namespace enrichd::adapters {

QueuedCall::QueuedCall(size_t item_count, AdapterInfo info, std::vector<std::string> secrets)
    : info_(std::move(info)), secrets_(std::move(secrets)), results_(item_count) {}

void QueuedCall::Push(HttpRequest request, Handler on_response) {
  queue_.push_back({std::move(request), std::move(on_response)});
}

void QueuedCall::SetResult(size_t index, EnrichmentResult result) {
  if (index < results_.size()) results_[index] = std::move(result);
}

std::optional<HttpRequest> QueuedCall::NextRequest() {
  if (queue_.empty()) return std::nullopt;
  return queue_.front().request;
}

void QueuedCall::OnResponse(const HttpResponse& response) {
  if (queue_.empty()) return;  // an answer nobody asked for: ignore
  Pending current = std::move(queue_.front());
  queue_.pop_front();
  current.on_response(*this, response);
}

std::vector<EnrichmentResult> QueuedCall::TakeResults() {
  std::vector<EnrichmentResult> out;
  out.reserve(results_.size());
  for (auto& r : results_) {
    if (r) {
      out.push_back(std::move(*r));
    } else {
      EnrichmentResult missing;
      missing.kind = info_.kind;
      missing.data_json = "{}";
      missing.provenance.adapter = info_.adapter;
      missing.provenance.adapter_version = info_.version;
      SetOutcome(missing, Outcome::kTransient, "no answer was read for this item");
      out.push_back(std::move(missing));
    }
    ScrubResult(out.back(), secrets_);
  }
  results_.clear();
  return out;
}

}  // namespace enrichd::adapters

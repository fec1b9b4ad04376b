#include "enrichd/resilience/retry_budget.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace enrichd::resilience {

Status RetryBudgetConfig::Validate() const {
  if (!(max_tokens > 0.0 && max_tokens <= 1e6)) {
    return InvalidArgumentError("retry_budget.max_tokens must be in (0, 1e6], got " +
                                std::to_string(max_tokens));
  }
  if (!(token_ratio >= 0.0 && token_ratio <= 1e6)) {
    return InvalidArgumentError("retry_budget.token_ratio must be in [0, 1e6], got " +
                                std::to_string(token_ratio));
  }
  return Status::Ok();
}

Result<std::unique_ptr<RetryBudget>> RetryBudget::Create(const RetryBudgetConfig& config) {
  ENRICHD_RETURN_IF_ERROR(config.Validate());
  const auto max_milli = static_cast<int64_t>(std::llround(config.max_tokens * 1000.0));
  const auto ratio_milli = static_cast<int64_t>(std::llround(config.token_ratio * 1000.0));
  if (max_milli < 1) {
    return InvalidArgumentError("retry_budget.max_tokens must be at least 0.001");
  }
  return std::unique_ptr<RetryBudget>(new RetryBudget(max_milli, ratio_milli));
}

bool RetryBudget::RecordFailure() {
  int64_t current = tokens_milli_.load(std::memory_order_relaxed);
  int64_t next = 0;
  do {
    next = std::max<int64_t>(0, current - 1000);
  } while (!tokens_milli_.compare_exchange_weak(current, next, std::memory_order_acq_rel,
                                                std::memory_order_relaxed));
  return next * 2 > max_milli_;
}

void RetryBudget::RecordSuccess() {
  int64_t current = tokens_milli_.load(std::memory_order_relaxed);
  int64_t next = 0;
  do {
    next = std::min(max_milli_, current + ratio_milli_);
  } while (!tokens_milli_.compare_exchange_weak(current, next, std::memory_order_acq_rel,
                                                std::memory_order_relaxed));
}

bool RetryBudget::Record(Outcome outcome) {
  if (IsAnswer(outcome)) {
    RecordSuccess();
    return RetryAllowed();
  }
  if (outcome == Outcome::kTransient) return RecordFailure();
  return RetryAllowed();
}

bool RetryBudget::RetryAllowed() const {
  return tokens_milli_.load(std::memory_order_acquire) * 2 > max_milli_;
}

double RetryBudget::Tokens() const {
  return static_cast<double>(tokens_milli_.load(std::memory_order_acquire)) / 1000.0;
}

}  // namespace enrichd::resilience

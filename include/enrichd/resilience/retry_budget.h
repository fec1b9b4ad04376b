// RetryBudget: the gRPC retry throttle (gRPC A6), so that a sick provider is not hit with
// a multiple of its normal load by retries.
//
// Tokens start at `max_tokens`. Each failure takes 1, each success gives back `token_ratio`
// (never above max_tokens, never below 0). A retry is allowed only while tokens > max/2.
// Example (max 4, ratio 1.6): failure -> 3 (retry), success -> 4, failure -> 3 (retry),
// failure -> 2 (no retry: 2 is not > 2).
//
// Tokens are kept in thousandths (as gRPC does), so ratios with up to three decimals are exact.
// Thread-safety: all methods are thread-safe and lock-free.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "enrichd/outcome.h"
#include "enrichd/status.h"

namespace enrichd::resilience {

struct RetryBudgetConfig {
  double max_tokens = 10.0;  // > 0, <= 1e6
  double token_ratio = 0.1;  // >= 0, <= 1e6

  // Ok, or kInvalidArgument naming the field (retry_budget.max_tokens, ...).
  Status Validate() const;
};

class RetryBudget {
 public:
  // Rejects an invalid config (kInvalidArgument naming the field).
  static Result<std::unique_ptr<RetryBudget>> Create(const RetryBudgetConfig& config);

  RetryBudget(const RetryBudget&) = delete;
  RetryBudget& operator=(const RetryBudget&) = delete;

  // Records a failed attempt and says whether a retry is allowed after it (atomically, so
  // concurrent failures cannot both see the last token).
  bool RecordFailure();
  // Records a successful attempt.
  void RecordSuccess();
  // ok / no_data -> success; transient -> failure (returns whether a retry is allowed);
  // anything else is not the provider being sick and changes nothing (returns RetryAllowed()).
  bool Record(Outcome outcome);

  // Whether a retry is allowed now (tokens > max/2).
  bool RetryAllowed() const;
  // Current tokens (for display).
  double Tokens() const;

 private:
  RetryBudget(int64_t max_milli, int64_t ratio_milli)
      : max_milli_(max_milli), ratio_milli_(ratio_milli), tokens_milli_(max_milli) {}

  const int64_t max_milli_;
  const int64_t ratio_milli_;
  std::atomic<int64_t> tokens_milli_;
};

}  // namespace enrichd::resilience

// LatencyHistogram: fixed memory percentiles of call latency (log-spaced buckets from
// 10 µs to ~170 s, ~4 % wide). Not thread-safe: one owner (the engine thread).
#pragma once

#include <array>
#include <cmath>
#include <cstdint>

#include "enrichd/clock.h"

namespace enrichd {

class LatencyHistogram {
 public:
  void Record(Duration d) {
    const double us = std::chrono::duration<double, std::micro>(d).count();
    int bucket = 0;
    if (us > kMinUs) bucket = static_cast<int>(std::log(us / kMinUs) / kLogStep) + 1;
    if (bucket >= kBuckets) bucket = kBuckets - 1;
    ++counts_[bucket];
    ++total_;
  }

  // The q-quantile (0 < q <= 1) in milliseconds, 0 when empty. Reports a bucket's upper edge.
  double QuantileMs(double q) const {
    if (total_ == 0) return 0;
    const uint64_t rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(total_)));
    uint64_t seen = 0;
    for (int b = 0; b < kBuckets; ++b) {
      seen += counts_[b];
      if (seen >= rank && counts_[b] > 0) {
        return kMinUs * std::exp(kLogStep * b) / 1000.0;
      }
    }
    return kMinUs * std::exp(kLogStep * (kBuckets - 1)) / 1000.0;
  }

  uint64_t count() const { return total_; }

 private:
  static constexpr int kBuckets = 400;
  static constexpr double kMinUs = 10.0;
  static constexpr double kLogStep = 0.04;  // e^0.04 ~ 1.04
  std::array<uint64_t, kBuckets> counts_{};
  uint64_t total_ = 0;
};

}  // namespace enrichd

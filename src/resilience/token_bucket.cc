#include "enrichd/resilience/token_bucket.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

namespace enrichd::resilience {
namespace {

constexpr int64_t kNanoPerToken = 1'000'000'000;
constexpr int64_t kMaxBurst = 1'000'000'000;
constexpr double kMaxRate = 1e9;
// Debt floor: reservations may not push the bucket below this many nano-tokens, so that
// capacity - tokens always fits in int64 (capacity <= 1e18).
constexpr int64_t kMinTokensNano = std::numeric_limits<int64_t>::min() / 4;
// Waits longer than this (about 31 years) are treated as "never".
constexpr double kMaxWaitNs = 1e18;

}  // namespace

Status TokenBucketConfig::Validate() const {
  if (!std::isfinite(rate_per_second) || rate_per_second <= 0.0) {
    return InvalidArgumentError("rate_limit.per_second must be a finite number > 0, got " +
                                std::to_string(rate_per_second));
  }
  if (rate_per_second > kMaxRate) {
    return InvalidArgumentError("rate_limit.per_second must be <= 1e9, got " +
                                std::to_string(rate_per_second));
  }
  if (burst < 1 || burst > kMaxBurst) {
    return InvalidArgumentError("rate_limit.burst must be in 1..1000000000, got " +
                                std::to_string(burst));
  }
  if (initial_tokens < -1 || initial_tokens > burst) {
    return InvalidArgumentError("token bucket: initial_tokens must be -1 (full) or 0..burst, got " +
                                std::to_string(initial_tokens));
  }
  return Status::Ok();
}

Result<std::unique_ptr<TokenBucket>> TokenBucket::Create(const TokenBucketConfig& config,
                                                         const Clock& clock) {
  ENRICHD_RETURN_IF_ERROR(config.Validate());
  return std::unique_ptr<TokenBucket>(new TokenBucket(config, clock));
}

TokenBucket::TokenBucket(const TokenBucketConfig& config, const Clock& clock)
    : clock_(clock),
      rate_(config.rate_per_second),
      burst_(config.burst),
      capacity_nano_(config.burst * kNanoPerToken),
      tokens_nano_(config.initial_tokens < 0 ? capacity_nano_
                                             : config.initial_tokens * kNanoPerToken),
      last_(clock.Now()),
      paused_until_(MonoTime::min()) {}

MonoTime TokenBucket::RefillLocked() {
  const MonoTime now = clock_.Now();
  if (now <= last_) return last_;  // backwards or no progress: credit nothing
  const MonoTime credit_from = std::max(last_, paused_until_);
  if (now > credit_from && tokens_nano_ < capacity_nano_) {
    // rate_ tokens/s == rate_ nano-tokens/ns.
    const double credit = static_cast<double>(SaturatingSub(now, credit_from).count()) * rate_;
    const double room = static_cast<double>(capacity_nano_ - tokens_nano_);
    if (credit >= room) {
      tokens_nano_ = capacity_nano_;
    } else {
      tokens_nano_ += static_cast<int64_t>(credit);  // floor: never credit more than elapsed
    }
  }
  last_ = now;
  return now;
}

Duration TokenBucket::WaitForLocked(int64_t nano_needed, MonoTime now) const {
  // Credit only starts once a pause is over.
  const Duration pause_left =
      paused_until_ > now ? SaturatingSub(paused_until_, now) : Duration::zero();
  const int64_t deficit = nano_needed - tokens_nano_;  // both bounded: no overflow
  if (deficit <= 0) return pause_left;
  const double wait = std::ceil(static_cast<double>(deficit) / rate_);
  if (!(wait <= kMaxWaitNs)) return Duration::max();
  int64_t wait_ns = static_cast<int64_t>(wait);
  // Guard against rounding: the credit after wait_ns must cover the deficit.
  if (static_cast<double>(wait_ns) * rate_ < static_cast<double>(deficit)) ++wait_ns;
  return SaturatingAdd(pause_left, Duration(wait_ns));
}

bool TokenBucket::TryAcquire(int64_t n) {
  if (n < 1 || n > burst_) return false;
  const int64_t need = n * kNanoPerToken;
  std::lock_guard<std::mutex> lock(mu_);
  const MonoTime now = RefillLocked();
  if (now < paused_until_ || tokens_nano_ < need) return false;
  tokens_nano_ -= need;
  return true;
}

Result<Duration> TokenBucket::Reserve(int64_t n, Deadline deadline) {
  if (n < 1 || n > burst_) {
    return InvalidArgumentError("token bucket: cannot reserve " + std::to_string(n) +
                                " tokens with burst " + std::to_string(burst_));
  }
  const int64_t need = n * kNanoPerToken;
  std::lock_guard<std::mutex> lock(mu_);
  const MonoTime now = RefillLocked();
  if (tokens_nano_ - kMinTokensNano < need) {
    return ResourceExhaustedError("token bucket: too many reservations queued");
  }
  const Duration wait = WaitForLocked(need, now);
  if (wait == Duration::max() || !deadline.Allows(now, wait)) {
    return DeadlineExceededError("token bucket: wait of " + FormatDuration(wait) +
                                 " would pass the deadline");
  }
  tokens_nano_ -= need;
  return wait;
}

Duration TokenBucket::TimeUntilAvailable(int64_t n) {
  if (n < 1 || n > burst_) return Duration::max();
  std::lock_guard<std::mutex> lock(mu_);
  const MonoTime now = RefillLocked();
  return WaitForLocked(n * kNanoPerToken, now);
}

void TokenBucket::PauseUntil(MonoTime until) {
  std::lock_guard<std::mutex> lock(mu_);
  RefillLocked();
  tokens_nano_ = std::min<int64_t>(tokens_nano_, 0);  // keep queued reservations' debt
  paused_until_ = std::max(paused_until_, until);
}

MonoTime TokenBucket::PausedUntil() const {
  std::lock_guard<std::mutex> lock(mu_);
  return paused_until_;
}

double TokenBucket::TokensApprox() {
  std::lock_guard<std::mutex> lock(mu_);
  RefillLocked();
  return static_cast<double>(tokens_nano_) / kNanoPerToken;
}

}  // namespace enrichd::resilience

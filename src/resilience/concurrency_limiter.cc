#include "enrichd/resilience/concurrency_limiter.h"

#include <string>

namespace enrichd::resilience {

Status ConcurrencyLimiterConfig::Validate() const {
  if (max_in_flight < 1) {
    return InvalidArgumentError("concurrency must be >= 1, got " + std::to_string(max_in_flight));
  }
  return Status::Ok();
}

Result<std::unique_ptr<ConcurrencyLimiter>> ConcurrencyLimiter::Create(
    const ConcurrencyLimiterConfig& config) {
  ENRICHD_RETURN_IF_ERROR(config.Validate());
  return std::unique_ptr<ConcurrencyLimiter>(new ConcurrencyLimiter(config.max_in_flight));
}

ConcurrencyLimiter::Permit& ConcurrencyLimiter::Permit::operator=(Permit&& other) noexcept {
  if (this != &other) {
    Release();
    limiter_ = other.limiter_;
    other.limiter_ = nullptr;
  }
  return *this;
}

void ConcurrencyLimiter::Permit::Release() {
  if (limiter_ != nullptr) {
    limiter_->ReleaseOne();
    limiter_ = nullptr;
  }
}

ConcurrencyLimiter::Permit ConcurrencyLimiter::TryAcquire() {
  int current = in_flight_.load(std::memory_order_relaxed);
  while (current < max_) {
    if (in_flight_.compare_exchange_weak(current, current + 1, std::memory_order_acq_rel,
                                         std::memory_order_relaxed)) {
      return Permit(this);
    }
  }
  return Permit();
}

}  // namespace enrichd::resilience

#include "enrichd/resilience/circuit_breaker.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "enrichd/resilience/deadline.h"

namespace enrichd::resilience {
namespace {
constexpr int kMaxWindow = 100'000;
}  // namespace

std::string_view BreakerStateName(BreakerState state) {
  switch (state) {
    case BreakerState::kClosed:
      return "closed";
    case BreakerState::kOpen:
      return "open";
    case BreakerState::kHalfOpen:
      return "half_open";
  }
  return "unknown";
}

Status CircuitBreakerConfig::Validate() const {
  if (!(failure_rate > 0.0 && failure_rate <= 1.0)) {
    return InvalidArgumentError("circuit_breaker.failure_rate must be in (0, 1], got " +
                                std::to_string(failure_rate));
  }
  if (window < 1 || window > kMaxWindow) {
    return InvalidArgumentError("circuit_breaker.window must be in 1..100000, got " +
                                std::to_string(window));
  }
  if (min_calls < 1 || min_calls > window) {
    return InvalidArgumentError("circuit_breaker.min_calls must be in 1..window (" +
                                std::to_string(window) + "), got " + std::to_string(min_calls));
  }
  if (open_for <= Duration::zero()) {
    return InvalidArgumentError("circuit_breaker.open_for must be > 0, got " +
                                FormatDuration(open_for));
  }
  if (!(open_jitter >= 0.0 && open_jitter <= 1.0)) {
    return InvalidArgumentError("circuit_breaker.open_jitter must be in [0, 1], got " +
                                std::to_string(open_jitter));
  }
  if (half_open_calls < 1) {
    return InvalidArgumentError("circuit_breaker.half_open_calls must be >= 1, got " +
                                std::to_string(half_open_calls));
  }
  if (probe_timeout <= Duration::zero()) {
    return InvalidArgumentError("circuit_breaker.probe_timeout must be > 0, got " +
                                FormatDuration(probe_timeout));
  }
  return Status::Ok();
}

// ---- Permit ----

CircuitBreaker::Permit::Permit(Permit&& other) noexcept
    : breaker_(other.breaker_), epoch_(other.epoch_), probe_id_(other.probe_id_) {
  other.breaker_ = nullptr;
}

CircuitBreaker::Permit& CircuitBreaker::Permit::operator=(Permit&& other) noexcept {
  if (this != &other) {
    if (breaker_ != nullptr) breaker_->Record(std::move(*this), Outcome::kCancelled);
    breaker_ = other.breaker_;
    epoch_ = other.epoch_;
    probe_id_ = other.probe_id_;
    other.breaker_ = nullptr;
  }
  return *this;
}

CircuitBreaker::Permit::~Permit() {
  if (breaker_ != nullptr) breaker_->Record(std::move(*this), Outcome::kCancelled);
}

void CircuitBreaker::Permit::Record(Outcome outcome) {
  if (breaker_ != nullptr) breaker_->Record(std::move(*this), outcome);
}

// ---- CircuitBreaker ----

Result<std::unique_ptr<CircuitBreaker>> CircuitBreaker::Create(const CircuitBreakerConfig& config,
                                                               const Clock& clock, Random& random) {
  ENRICHD_RETURN_IF_ERROR(config.Validate());
  return std::unique_ptr<CircuitBreaker>(new CircuitBreaker(config, clock, random));
}

CircuitBreaker::CircuitBreaker(const CircuitBreakerConfig& config, const Clock& clock,
                               Random& random)
    : config_(config), clock_(clock), random_(random), ring_(config.window, 0) {
  probes_.reserve(config.half_open_calls);
}

void CircuitBreaker::AdvanceLocked(MonoTime now) {
  if (state_ == BreakerState::kOpen && now >= open_until_) {
    state_ = BreakerState::kHalfOpen;
    ++epoch_;
    probes_.clear();
    probe_successes_ = 0;
  }
  if (state_ == BreakerState::kHalfOpen) {
    std::erase_if(probes_, [now](const ProbeSlot& slot) { return slot.expires_at <= now; });
  }
}

void CircuitBreaker::OpenLocked(MonoTime now) {
  state_ = BreakerState::kOpen;
  ++epoch_;
  ++openings_;
  const auto max_extra = Duration(static_cast<Duration::rep>(
      std::floor(static_cast<double>(config_.open_for.count()) * config_.open_jitter)));
  const Duration extra = random_.UniformDuration(Duration::zero(), max_extra);
  open_until_ = SaturatingAdd(now, SaturatingAdd(config_.open_for, extra));
  probes_.clear();
  probe_successes_ = 0;
}

void CircuitBreaker::CloseLocked() {
  state_ = BreakerState::kClosed;
  ++epoch_;
  std::fill(ring_.begin(), ring_.end(), 0);
  ring_next_ = 0;
  calls_ = 0;
  failures_ = 0;
  probes_.clear();
  probe_successes_ = 0;
}

CircuitBreaker::Admission CircuitBreaker::TryAdmit() {
  Admission admission;
  std::lock_guard<std::mutex> lock(mu_);
  if (state_ == BreakerState::kClosed) {  // the hot path reads no clock
    admission.permit = Permit(this, epoch_, 0);
    return admission;
  }
  const MonoTime now = clock_.Now();
  AdvanceLocked(now);
  if (state_ == BreakerState::kOpen) {
    admission.retry_after = SaturatingSub(open_until_, now);
    return admission;
  }
  // HALF_OPEN: a bounded number of probes; successes keep their slot used.
  if (static_cast<int>(probes_.size()) + probe_successes_ < config_.half_open_calls) {
    const uint64_t id = next_probe_id_++;
    probes_.push_back({id, SaturatingAdd(now, config_.probe_timeout)});
    admission.permit = Permit(this, epoch_, id);
    return admission;
  }
  MonoTime earliest = MonoTime::max();
  for (const ProbeSlot& slot : probes_) earliest = std::min(earliest, slot.expires_at);
  admission.retry_after =
      earliest == MonoTime::max() ? config_.probe_timeout : SaturatingSub(earliest, now);
  return admission;
}

void CircuitBreaker::Record(Permit&& permit, Outcome outcome) {
  if (permit.breaker_ == nullptr) return;
  // A permit is tied to the breaker that issued it; one from another breaker is a caller bug
  // we do not act on.
  if (permit.breaker_ == this) {
    std::lock_guard<std::mutex> lock(mu_);
    RecordLocked(permit, outcome);
  }
  permit.breaker_ = nullptr;
}

void CircuitBreaker::RecordLocked(const Permit& permit, Outcome outcome) {
  if (permit.probe_id_ == 0) {
    // A call admitted while CLOSED; ignored if the breaker has changed state since.
    if (permit.epoch_ != epoch_ || state_ != BreakerState::kClosed) return;
    if (!RecordsInBreaker(outcome)) return;
    const uint8_t failed = IsBreakerFailure(outcome) ? 1 : 0;
    if (calls_ == config_.window) {
      failures_ -= ring_[ring_next_];
    } else {
      ++calls_;
    }
    ring_[ring_next_] = failed;
    failures_ += failed;
    ring_next_ = (ring_next_ + 1) % config_.window;
    if (calls_ >= config_.min_calls &&
        static_cast<double>(failures_) / static_cast<double>(calls_) >= config_.failure_rate) {
      OpenLocked(clock_.Now());
    }
    return;
  }
  // A half-open probe.
  const MonoTime now = clock_.Now();
  AdvanceLocked(now);
  if (permit.epoch_ != epoch_ || state_ != BreakerState::kHalfOpen) return;
  const auto it = std::find_if(probes_.begin(), probes_.end(),
                               [&](const ProbeSlot& slot) { return slot.id == permit.probe_id_; });
  if (it == probes_.end()) return;  // timed out: its slot was already given up
  probes_.erase(it);
  if (!RecordsInBreaker(outcome)) return;  // released, counts for nothing
  if (IsBreakerFailure(outcome)) {
    OpenLocked(now);
    return;
  }
  ++probe_successes_;
  if (probe_successes_ >= config_.half_open_calls) CloseLocked();
}

BreakerState CircuitBreaker::state() const { return Snapshot().state; }

BreakerSnapshot CircuitBreaker::Snapshot() const {
  BreakerSnapshot snap;
  std::lock_guard<std::mutex> lock(mu_);
  const MonoTime now = clock_.Now();
  snap.openings = openings_;
  snap.state = state_;
  switch (state_) {
    case BreakerState::kClosed:
      snap.calls_in_window = calls_;
      snap.failures_in_window = failures_;
      break;
    case BreakerState::kOpen:
      if (now >= open_until_) {
        snap.state = BreakerState::kHalfOpen;  // due: the next admission half-opens it
      } else {
        snap.retry_after = SaturatingSub(open_until_, now);
      }
      break;
    case BreakerState::kHalfOpen:
      snap.probe_successes = probe_successes_;
      snap.probes_in_flight = static_cast<int>(
          std::count_if(probes_.begin(), probes_.end(),
                        [now](const ProbeSlot& slot) { return slot.expires_at > now; }));
      break;
  }
  return snap;
}

}  // namespace enrichd::resilience

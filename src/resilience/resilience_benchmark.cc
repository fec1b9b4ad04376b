// Uncontended cost of the per-call resilience steps (target: each well under 100 ns).
#include <benchmark/benchmark.h>

#include "enrichd/clock.h"
#include "enrichd/random.h"
#include "enrichd/resilience/backoff.h"
#include "enrichd/resilience/circuit_breaker.h"
#include "enrichd/resilience/concurrency_limiter.h"
#include "enrichd/resilience/retry_budget.h"
#include "enrichd/resilience/token_bucket.h"

namespace enrichd::resilience {
namespace {

using namespace std::chrono_literals;

// TryAcquire on the real clock; the rate is high enough that the bucket never runs dry, so
// every iteration does the full refill + spend.
void BM_TokenBucketTryAcquire(benchmark::State& state) {
  auto bucket =
      TokenBucket::Create({.rate_per_second = 1e9, .burst = 1'000'000}, SystemClock::Instance())
          .value();
  for (auto _ : state) benchmark::DoNotOptimize(bucket->TryAcquire());
}
BENCHMARK(BM_TokenBucketTryAcquire);

void BM_TokenBucketReserve(benchmark::State& state) {
  auto bucket =
      TokenBucket::Create({.rate_per_second = 1e9, .burst = 1'000'000}, SystemClock::Instance())
          .value();
  for (auto _ : state) benchmark::DoNotOptimize(bucket->Reserve(1).ok());
}
BENCHMARK(BM_TokenBucketReserve);

// Admit + record a success on a closed breaker.
void BM_CircuitBreakerAdmitRecord(benchmark::State& state) {
  SeededRandom random(1);
  auto breaker = CircuitBreaker::Create({}, SystemClock::Instance(), random).value();
  for (auto _ : state) {
    auto admission = breaker->TryAdmit();
    admission.permit.Record(Outcome::kOk);
  }
}
BENCHMARK(BM_CircuitBreakerAdmitRecord);

void BM_BackoffFullJitter(benchmark::State& state) {
  const Backoff backoff = Backoff::Create({}).value();
  SeededRandom random(1);
  int retry = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(backoff.NextDelay(retry++ % 40 + 1, Duration::zero(), random));
  }
}
BENCHMARK(BM_BackoffFullJitter);

void BM_BackoffDecorrelated(benchmark::State& state) {
  const Backoff backoff = Backoff::Create({.jitter = JitterMode::kDecorrelated}).value();
  SeededRandom random(1);
  Duration previous = Duration::zero();
  for (auto _ : state) {
    previous = backoff.NextDelay(1, previous, random);
    benchmark::DoNotOptimize(previous);
  }
}
BENCHMARK(BM_BackoffDecorrelated);

void BM_ConcurrencyLimiterAcquireRelease(benchmark::State& state) {
  auto limiter = ConcurrencyLimiter::Create({.max_in_flight = 8}).value();
  for (auto _ : state) {
    auto permit = limiter->TryAcquire();
    benchmark::DoNotOptimize(permit.valid());
  }
}
BENCHMARK(BM_ConcurrencyLimiterAcquireRelease);

void BM_RetryBudgetSuccess(benchmark::State& state) {
  auto budget = RetryBudget::Create({}).value();
  for (auto _ : state) {
    budget->RecordSuccess();
    benchmark::DoNotOptimize(budget->RetryAllowed());
  }
}
BENCHMARK(BM_RetryBudgetSuccess);

}  // namespace
}  // namespace enrichd::resilience

BENCHMARK_MAIN();

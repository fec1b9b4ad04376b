#include "enrichd/resilience/concurrency_limiter.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace enrichd::resilience {
namespace {

std::unique_ptr<ConcurrencyLimiter> Make(int max) {
  auto limiter = ConcurrencyLimiter::Create({.max_in_flight = max});
  EXPECT_TRUE(limiter.ok()) << limiter.status();
  return std::move(limiter).value();
}

TEST(ConcurrencyLimiterTest, AdmitsUpToMaxAndReleasesOnDestruction) {
  auto limiter = Make(2);
  auto a = limiter->TryAcquire();
  auto b = limiter->TryAcquire();
  EXPECT_TRUE(a.valid());
  EXPECT_TRUE(b);
  EXPECT_EQ(limiter->InFlight(), 2);
  {
    auto c = limiter->TryAcquire();
    EXPECT_FALSE(c.valid());
  }
  EXPECT_EQ(limiter->InFlight(), 2);  // a refused permit releases nothing
  a.Release();
  EXPECT_FALSE(a.valid());
  a.Release();  // idempotent
  EXPECT_EQ(limiter->InFlight(), 1);
  {
    auto d = limiter->TryAcquire();
    EXPECT_TRUE(d.valid());
    EXPECT_EQ(limiter->InFlight(), 2);
  }
  EXPECT_EQ(limiter->InFlight(), 1);
}

TEST(ConcurrencyLimiterTest, MovingAPermitMovesTheSlot) {
  auto limiter = Make(1);
  auto a = limiter->TryAcquire();
  ConcurrencyLimiter::Permit b = std::move(a);
  EXPECT_FALSE(a.valid());  // NOLINT(bugprone-use-after-move): moved-from is empty
  EXPECT_TRUE(b.valid());
  EXPECT_EQ(limiter->InFlight(), 1);
  ConcurrencyLimiter::Permit c;
  c = std::move(b);
  EXPECT_EQ(limiter->InFlight(), 1);
  c = ConcurrencyLimiter::Permit();  // assigning over a held permit releases it
  EXPECT_EQ(limiter->InFlight(), 0);
}

TEST(ConcurrencyLimiterTest, RejectsInvalidConfig) {
  for (int max : {0, -1}) {
    auto limiter = ConcurrencyLimiter::Create({.max_in_flight = max});
    ASSERT_FALSE(limiter.ok());
    EXPECT_EQ(limiter.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(limiter.status().message().find("concurrency"), std::string::npos);
  }
}

TEST(ConcurrencyLimiterTest, ConcurrentHoldersNeverExceedMax) {
  constexpr int kMax = 3;
  auto limiter = Make(kMax);
  std::atomic<int> holders{0};
  std::atomic<int> peak{0};
  std::vector<std::thread> threads;
  threads.reserve(8);
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20000; ++i) {
        auto permit = limiter->TryAcquire();
        if (!permit) continue;
        const int now = holders.fetch_add(1) + 1;
        int seen = peak.load();
        while (now > seen && !peak.compare_exchange_weak(seen, now)) {
        }
        holders.fetch_sub(1);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_LE(peak.load(), kMax);
  EXPECT_GE(peak.load(), 1);
  EXPECT_EQ(limiter->InFlight(), 0);
}

}  // namespace
}  // namespace enrichd::resilience

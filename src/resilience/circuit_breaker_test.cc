#include "enrichd/resilience/circuit_breaker.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <thread>
#include <vector>

namespace enrichd::resilience {
namespace {

using namespace std::chrono_literals;

class CircuitBreakerTest : public ::testing::Test {
 protected:
  // window 10, min calls 5, threshold 50 %, open 30 s (+ up to 20 % jitter), 3 probes, probe
  // timeout 5 s. FixedRandom(0.5) makes every opening last exactly 33 s.
  CircuitBreakerConfig Config() {
    return {.failure_rate = 0.5,
            .window = 10,
            .min_calls = 5,
            .open_for = 30s,
            .open_jitter = 0.2,
            .half_open_calls = 3,
            .probe_timeout = 5s};
  }
  std::unique_ptr<CircuitBreaker> Make(const CircuitBreakerConfig& config) {
    auto breaker = CircuitBreaker::Create(config, clock_, random_);
    EXPECT_TRUE(breaker.ok()) << breaker.status();
    return std::move(breaker).value();
  }
  // One admitted call with the given outcome; false if the breaker refused it.
  static bool Call(CircuitBreaker& breaker, Outcome outcome) {
    auto admission = breaker.TryAdmit();
    if (!admission.admitted()) return false;
    admission.permit.Record(outcome);
    return true;
  }
  // Failures until the breaker opens (at most a window's worth).
  static void Trip(CircuitBreaker& breaker) {
    for (int i = 0; i < 10 && breaker.state() == BreakerState::kClosed; ++i) {
      ASSERT_TRUE(Call(breaker, Outcome::kTransient));
    }
    ASSERT_EQ(breaker.state(), BreakerState::kOpen);
  }

  FakeClock clock_;
  FixedRandom random_{0.5};
};

// Acceptance 9: window 10, min calls 5, threshold 50 %: F,F,F stays closed; then S,S -> open
// at call 5 (60 %); next admission refused with the time until half-open.
TEST_F(CircuitBreakerTest, Case9OpensAtMinCallsAndTellsRetryAfter) {
  auto breaker = Make(Config());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Call(*breaker, Outcome::kTransient));
  EXPECT_EQ(breaker->state(), BreakerState::kClosed);
  EXPECT_EQ(breaker->Snapshot().failures_in_window, 3);
  ASSERT_TRUE(Call(*breaker, Outcome::kOk));
  EXPECT_EQ(breaker->state(), BreakerState::kClosed);
  ASSERT_TRUE(Call(*breaker, Outcome::kOk));  // call 5: 3/5 = 60 %
  EXPECT_EQ(breaker->state(), BreakerState::kOpen);
  EXPECT_EQ(breaker->Snapshot().openings, 1u);

  auto refused = breaker->TryAdmit();
  EXPECT_FALSE(refused.admitted());
  EXPECT_EQ(refused.retry_after, 33s);  // 30 s + half of the 20 % jitter
  clock_.Advance(10s);
  refused = breaker->TryAdmit();
  EXPECT_FALSE(refused.admitted());
  EXPECT_EQ(refused.retry_after, 23s);
  EXPECT_EQ(breaker->Snapshot().retry_after, 23s);
}

// Acceptance 10: exactly 50 % with enough calls trips (>=).
TEST_F(CircuitBreakerTest, Case10ExactlyThresholdTrips) {
  CircuitBreakerConfig config = Config();
  config.min_calls = 10;
  auto breaker = Make(config);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(Call(*breaker, Outcome::kOk));
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(Call(*breaker, Outcome::kTransient));
  EXPECT_EQ(breaker->state(), BreakerState::kClosed);  // 9 calls: below min_calls
  ASSERT_TRUE(Call(*breaker, Outcome::kTransient));    // 5 / 10
  EXPECT_EQ(breaker->state(), BreakerState::kOpen);

  // And 40 % does not.
  auto other = Make(config);
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(Call(*other, Outcome::kOk));
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(Call(*other, Outcome::kTransient));
  EXPECT_EQ(other->state(), BreakerState::kClosed);
}

TEST_F(CircuitBreakerTest, ThresholdComparisonIsExactForDecimalRates) {
  CircuitBreakerConfig config = Config();
  config.failure_rate = 0.3;
  config.min_calls = 10;
  auto breaker = Make(config);
  for (int i = 0; i < 7; ++i) ASSERT_TRUE(Call(*breaker, Outcome::kOk));
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Call(*breaker, Outcome::kTransient));
  EXPECT_EQ(breaker->state(), BreakerState::kOpen);  // 3/10 >= 0.3
}

// Acceptance 11: after the open duration exactly N probes are admitted; all succeed ->
// closed.
TEST_F(CircuitBreakerTest, Case11AllProbesSucceedCloses) {
  auto breaker = Make(Config());
  Trip(*breaker);
  clock_.Advance(33s);
  EXPECT_EQ(breaker->state(), BreakerState::kHalfOpen);
  std::vector<CircuitBreaker::Permit> probes;
  for (int i = 0; i < 3; ++i) {
    auto admission = breaker->TryAdmit();
    ASSERT_TRUE(admission.admitted()) << i;
    EXPECT_TRUE(admission.permit.is_probe());
    probes.push_back(std::move(admission.permit));
  }
  auto fourth = breaker->TryAdmit();
  EXPECT_FALSE(fourth.admitted());
  EXPECT_EQ(fourth.retry_after, 5s);  // until the earliest probe times out
  EXPECT_EQ(breaker->Snapshot().probes_in_flight, 3);
  probes[0].Record(Outcome::kOk);
  probes[1].Record(Outcome::kNoData);
  EXPECT_EQ(breaker->state(), BreakerState::kHalfOpen);
  // A success keeps its slot: still no 4th probe.
  EXPECT_FALSE(breaker->TryAdmit().admitted());
  probes[2].Record(Outcome::kOk);
  EXPECT_EQ(breaker->state(), BreakerState::kClosed);
  const BreakerSnapshot snap = breaker->Snapshot();
  EXPECT_EQ(snap.calls_in_window, 0);  // a fresh window
  EXPECT_EQ(snap.openings, 1u);
  auto admitted = breaker->TryAdmit();
  EXPECT_TRUE(admitted.admitted());
  EXPECT_FALSE(admitted.permit.is_probe());
}

// Acceptance 11 (continued): one probe fails -> open again for a full duration.
TEST_F(CircuitBreakerTest, Case11OneProbeFailureReopensForAFullDuration) {
  auto breaker = Make(Config());
  Trip(*breaker);
  clock_.Advance(33s);
  auto p1 = breaker->TryAdmit();
  auto p2 = breaker->TryAdmit();
  auto p3 = breaker->TryAdmit();
  ASSERT_TRUE(p1.admitted() && p2.admitted() && p3.admitted());
  p1.permit.Record(Outcome::kOk);
  clock_.Advance(1s);
  p2.permit.Record(Outcome::kTransient);
  EXPECT_EQ(breaker->state(), BreakerState::kOpen);
  EXPECT_EQ(breaker->Snapshot().openings, 2u);
  auto refused = breaker->TryAdmit();
  EXPECT_FALSE(refused.admitted());
  EXPECT_EQ(refused.retry_after, 33s);  // full duration from the failed probe
  // The remaining probe's late report cannot close it.
  p3.permit.Record(Outcome::kOk);
  EXPECT_EQ(breaker->state(), BreakerState::kOpen);
  clock_.Advance(32s);
  EXPECT_EQ(breaker->state(), BreakerState::kOpen);
  clock_.Advance(1s);
  EXPECT_EQ(breaker->state(), BreakerState::kHalfOpen);
}

// Acceptance 12: a probe that never reports does not wedge half-open: after its timeout a
// new probe is admitted.
TEST_F(CircuitBreakerTest, Case12SilentProbeTimesOut) {
  CircuitBreakerConfig config = Config();
  config.half_open_calls = 1;
  auto breaker = Make(config);
  Trip(*breaker);
  clock_.Advance(33s);
  auto silent = breaker->TryAdmit();
  ASSERT_TRUE(silent.admitted());
  clock_.Advance(4s);
  auto refused = breaker->TryAdmit();
  EXPECT_FALSE(refused.admitted());
  EXPECT_EQ(refused.retry_after, 1s);
  clock_.Advance(1s);
  EXPECT_EQ(breaker->Snapshot().probes_in_flight, 0);
  auto second = breaker->TryAdmit();
  ASSERT_TRUE(second.admitted());
  // The timed-out probe reporting late is ignored, whatever it says.
  silent.permit.Record(Outcome::kTransient);
  EXPECT_EQ(breaker->state(), BreakerState::kHalfOpen);
  second.permit.Record(Outcome::kOk);
  EXPECT_EQ(breaker->state(), BreakerState::kClosed);
}

// Acceptance 13: 404 (permanent) and caller cancellation never change the breaker's counts.
TEST_F(CircuitBreakerTest, Case13IgnoredOutcomesChangeNothing) {
  auto breaker = Make(Config());
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(Call(*breaker, Outcome::kTransient));
  ASSERT_TRUE(Call(*breaker, Outcome::kOk));
  for (Outcome ignored : {Outcome::kPermanent, Outcome::kCancelled, Outcome::kRateLimited,
                          Outcome::kAuth, Outcome::kSkipped, Outcome::kCircuitOpen}) {
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(Call(*breaker, ignored));
  }
  { auto dropped = breaker->TryAdmit(); }  // a permit dropped without a report
  BreakerSnapshot snap = breaker->Snapshot();
  EXPECT_EQ(snap.state, BreakerState::kClosed);
  EXPECT_EQ(snap.calls_in_window, 3);
  EXPECT_EQ(snap.failures_in_window, 2);

  // In half-open an ignored probe releases its slot and neither closes nor reopens.
  Trip(*breaker);
  clock_.Advance(33s);
  CircuitBreakerConfig config = Config();
  std::vector<CircuitBreaker::Admission> probes;
  probes.reserve(config.half_open_calls);
  for (int i = 0; i < config.half_open_calls; ++i) probes.push_back(breaker->TryAdmit());
  EXPECT_FALSE(breaker->TryAdmit().admitted());
  probes[0].permit.Record(Outcome::kPermanent);
  probes[1].permit.Record(Outcome::kCancelled);
  EXPECT_EQ(breaker->state(), BreakerState::kHalfOpen);
  snap = breaker->Snapshot();
  EXPECT_EQ(snap.probes_in_flight, 1);
  EXPECT_EQ(snap.probe_successes, 0);
  EXPECT_TRUE(breaker->TryAdmit().admitted());  // a freed slot (dropped again right away)
}

TEST_F(CircuitBreakerTest, WindowSlidesOverTheLastCalls) {
  CircuitBreakerConfig config = Config();
  config.window = 4;
  config.min_calls = 4;
  config.failure_rate = 0.75;
  auto breaker = Make(config);
  // F F S S: 50 %.
  for (Outcome o : {Outcome::kTransient, Outcome::kTransient, Outcome::kOk, Outcome::kOk}) {
    ASSERT_TRUE(Call(*breaker, o));
  }
  // F: window is F S S F (the first F slid out): still 50 %.
  ASSERT_TRUE(Call(*breaker, Outcome::kTransient));
  EXPECT_EQ(breaker->Snapshot().calls_in_window, 4);
  EXPECT_EQ(breaker->Snapshot().failures_in_window, 2);
  ASSERT_TRUE(Call(*breaker, Outcome::kTransient));  // S S F F
  EXPECT_EQ(breaker->state(), BreakerState::kClosed);
  ASSERT_TRUE(Call(*breaker, Outcome::kTransient));  // S F F F: 75 %
  EXPECT_EQ(breaker->state(), BreakerState::kOpen);
}

TEST_F(CircuitBreakerTest, CallsAdmittedBeforeOpeningAreIgnoredWhenTheyReport) {
  auto breaker = Make(Config());
  auto early = breaker->TryAdmit();
  ASSERT_TRUE(early.admitted());
  Trip(*breaker);
  early.permit.Record(Outcome::kOk);
  EXPECT_EQ(breaker->state(), BreakerState::kOpen);
  EXPECT_EQ(breaker->Snapshot().openings, 1u);
}

TEST_F(CircuitBreakerTest, StalePermitFromAnEarlierClosedPeriodIsIgnored) {
  CircuitBreakerConfig config = Config();
  config.half_open_calls = 1;
  auto breaker = Make(config);
  auto old = breaker->TryAdmit();
  Trip(*breaker);
  clock_.Advance(33s);
  ASSERT_TRUE(Call(*breaker, Outcome::kOk));  // probe succeeds: closed
  ASSERT_EQ(breaker->state(), BreakerState::kClosed);
  old.permit.Record(Outcome::kTransient);
  EXPECT_EQ(breaker->Snapshot().calls_in_window, 0);
}

TEST_F(CircuitBreakerTest, RecordingTwiceOrAnEmptyPermitIsHarmless) {
  auto breaker = Make(Config());
  auto admission = breaker->TryAdmit();
  CircuitBreaker::Permit permit = std::move(admission.permit);
  EXPECT_FALSE(admission.permit.valid());
  breaker->Record(std::move(admission.permit), Outcome::kTransient);  // moved-from: no-op
  permit.Record(Outcome::kTransient);
  permit.Record(Outcome::kTransient);  // already consumed: no-op
  EXPECT_EQ(breaker->Snapshot().failures_in_window, 1);
  CircuitBreaker::Permit empty;
  breaker->Record(std::move(empty), Outcome::kTransient);
  EXPECT_EQ(breaker->Snapshot().failures_in_window, 1);
}

TEST_F(CircuitBreakerTest, ZeroJitterOpensForExactlyOpenFor) {
  CircuitBreakerConfig config = Config();
  config.open_jitter = 0;
  auto breaker = Make(config);
  Trip(*breaker);
  EXPECT_EQ(breaker->TryAdmit().retry_after, 30s);
}

TEST_F(CircuitBreakerTest, OpenDurationVariesWithTheRandomSource) {
  SeededRandom seeded(5);
  CircuitBreakerConfig config = Config();
  config.half_open_calls = 1;
  auto breaker = CircuitBreaker::Create(config, clock_, seeded).value();
  std::vector<Duration> seen;
  for (int i = 0; i < 20; ++i) {
    for (int j = 0; j < 5; ++j) ASSERT_TRUE(Call(*breaker, Outcome::kTransient));
    auto refused = breaker->TryAdmit();
    ASSERT_FALSE(refused.admitted());
    ASSERT_GE(refused.retry_after, 30s);
    ASSERT_LT(refused.retry_after, 36s);
    seen.push_back(refused.retry_after);
    clock_.Advance(refused.retry_after);
    ASSERT_TRUE(Call(*breaker, Outcome::kOk));  // the probe closes it
  }
  std::sort(seen.begin(), seen.end());
  EXPECT_LT(seen.front(), seen.back());
}

TEST_F(CircuitBreakerTest, StateNames) {
  EXPECT_EQ(BreakerStateName(BreakerState::kClosed), "closed");
  EXPECT_EQ(BreakerStateName(BreakerState::kOpen), "open");
  EXPECT_EQ(BreakerStateName(BreakerState::kHalfOpen), "half_open");
}

TEST_F(CircuitBreakerTest, RejectsInvalidConfigNamingTheField) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  struct Case {
    CircuitBreakerConfig config;
    const char* field;
  };
  const Case cases[] = {
      {{.failure_rate = 0.0}, "failure_rate"},
      {{.failure_rate = 1.5}, "failure_rate"},
      {{.failure_rate = -0.5}, "failure_rate"},
      {{.failure_rate = nan}, "failure_rate"},
      {{.window = 0}, "window"},
      {{.window = 10, .min_calls = 11}, "min_calls"},
      {{.window = 10, .min_calls = 0}, "min_calls"},
      {{.open_for = Duration::zero()}, "open_for"},
      {{.open_for = -1s}, "open_for"},
      {{.open_jitter = -0.1}, "open_jitter"},
      {{.open_jitter = nan}, "open_jitter"},
      {{.half_open_calls = 0}, "half_open_calls"},
      {{.probe_timeout = -1s}, "probe_timeout"},
  };
  for (const Case& c : cases) {
    auto breaker = CircuitBreaker::Create(c.config, clock_, random_);
    ASSERT_FALSE(breaker.ok()) << c.field;
    EXPECT_EQ(breaker.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(breaker.status().message().find(std::string("circuit_breaker.") + c.field),
              std::string::npos)
        << breaker.status().message();
  }
  EXPECT_TRUE(CircuitBreaker::Create({.failure_rate = 1.0}, clock_, random_).ok());
}

// Several threads admitting and recording at once: counts stay consistent (run under TSan).
TEST_F(CircuitBreakerTest, ConcurrentCallsKeepCountsConsistent) {
  CircuitBreakerConfig config = Config();
  config.window = 100;
  config.min_calls = 100;
  config.failure_rate = 1.0;  // only all-failure trips: never here
  auto breaker = Make(config);
  std::vector<std::thread> threads;
  threads.reserve(8);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        auto admission = breaker->TryAdmit();
        if (!admission.admitted()) continue;
        admission.permit.Record((i + t) % 2 == 0 ? Outcome::kOk : Outcome::kTransient);
        (void)breaker->Snapshot();
      }
    });
  }
  for (auto& thread : threads) thread.join();
  const BreakerSnapshot snap = breaker->Snapshot();
  EXPECT_EQ(snap.state, BreakerState::kClosed);
  EXPECT_EQ(snap.calls_in_window, 100);
  EXPECT_GE(snap.failures_in_window, 0);
  EXPECT_LE(snap.failures_in_window, 100);
}

}  // namespace
}  // namespace enrichd::resilience

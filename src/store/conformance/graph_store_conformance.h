// The behavioural test suite every GraphStore backend must pass (enrichd/graph_store.h).
//
// It is a value-parameterized GoogleTest fixture: a backend describes how to open an
// empty store and how to open a second connection to the same store, and instantiates
// the suite once. Every TEST_P in graph_store_conformance.cc then runs against it.
//
// How a backend instantiates it (in its own x_test.cc, linking the CMake target
// `enrichd_store_conformance` — a test-only static library that already links
// GTest::gtest and enrichd_core; the test executable adds GTest::gtest_main through
// enrichd_test):
//
//   #include "store/conformance/graph_store_conformance.h"
//
//   namespace enrichd {
//   namespace {
//   StoreBackend MyBackend() {
//     auto state = std::make_shared<MyState>();   // e.g. the current temp path / schema
//     StoreBackend b;
//     b.name = "mybackend";                       // [A-Za-z0-9_] only (used in test names)
//     b.open_fresh = [state]() -> Result<std::unique_ptr<GraphStore>> {
//       ... create/empty a new store, remember how to reach it in `state` ...
//       return OpenMyStore(...);                  // an EMPTY, migrated store
//     };
//     b.open_again = [state]() -> Result<std::unique_ptr<GraphStore>> {
//       return OpenMyStore(...);                  // a 2nd connection to the same store
//     };
//     b.skip_reason = []() -> std::string {       // optional; empty string: run
//       return std::getenv("ENRICHD_TEST_PG_URL") ? "" : "ENRICHD_TEST_PG_URL is not set";
//     };
//     return b;
//   }
//   INSTANTIATE_TEST_SUITE_P(MyBackend, GraphStoreConformance,
//                            ::testing::Values(MyBackend()), StoreBackendName);
//   }  // namespace
//   }  // namespace enrichd
//
// Contract for the backend callbacks:
//   - open_fresh() is called once per test (in SetUp), before open_again(); it returns a
//     store with the schema applied and NO nodes, edges or tasks.
//   - open_again() may be called several times per test, also from other threads (one
//     call per thread; each returned object is used by that thread only).
//   - skip_reason(), when set and returning a non-empty string, makes every test
//     GTEST_SKIP() with that message (e.g. no database server configured). A suite must
//     never pass silently without a backend.
// Times come from a FakeClock (starting 2026-01-01T00:00:00Z); no test sleeps.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "enrichd/clock.h"
#include "enrichd/graph_store.h"
#include "enrichd/status.h"

namespace enrichd {

struct StoreBackend {
  std::string name;
  // An empty, migrated store (a new file, a truncated schema, ...).
  std::function<Result<std::unique_ptr<GraphStore>>()> open_fresh;
  // Another connection to the store most recently returned by open_fresh.
  std::function<Result<std::unique_ptr<GraphStore>>()> open_again;
  // Optional: non-empty return value skips the tests with that reason.
  std::function<std::string()> skip_reason;
};

// gtest prints a parameter with this (instead of its bytes).
void PrintTo(const StoreBackend& backend, std::ostream* os);

// For INSTANTIATE_TEST_SUITE_P's name generator: the backend's name.
std::string StoreBackendName(const ::testing::TestParamInfo<StoreBackend>& info);

class GraphStoreConformance : public ::testing::TestWithParam<StoreBackend> {
 protected:
  void SetUp() override;
  void TearDown() override;

  // Helpers shared by the tests (they ADD_FAILURE on a non-ok status and return an
  // empty/zero value, so a test keeps going and reports every broken expectation).
  std::unique_ptr<GraphStore> OpenAgain();
  // Inserts nodes `label` with keys "<prefix>0" .. "<prefix>n-1" (for "ip" the keys are
  // "10.0.<i/256>.<i%256>"). Returns the keys in insertion order.
  std::vector<std::string> AddNodes(GraphStore& store, const std::string& label, int n);
  int64_t Plan(GraphStore& store, const std::vector<ProviderPlan>& plans);
  std::vector<ClaimedTask> Claim(GraphStore& store, std::size_t max,
                                 const std::string& owner = "worker-a",
                                 std::vector<std::string> providers = {},
                                 Duration lease = std::chrono::seconds(60));
  // A completion for `task` with outcome ok (or no_data), fetched now, expiring after ttl.
  TaskCompletion MakeCompletion(const ClaimedTask& task, Duration ttl = std::chrono::hours(24),
                                bool no_data = false) const;
  int64_t Complete(GraphStore& store, const std::vector<TaskCompletion>& completions);
  StoreCounts Counts(GraphStore& store);
  ProviderCounts CountsFor(GraphStore& store, const std::string& provider);

  FakeClock clock_;
  std::unique_ptr<GraphStore> store_;
  // The default provider set: "asn" and "geo" apply to "ip", "whois" to "domain".
  std::vector<ProviderPlan> plans_;
};

}  // namespace enrichd

// The shared GraphStore behavioural suite, run against PostgreSQL: every test gets a
// fresh schema on the server named by ENRICHD_TEST_PG_URL (skipped when it is unset).
#include <memory>
#include <mutex>

#include "store/conformance/graph_store_conformance.h"
#include "store/postgres/pg_test_util.h"
#include "store/postgres/postgres_store.h"

namespace enrichd {
namespace {

struct PostgresBackendState {
  std::mutex mu;
  std::unique_ptr<pg::TestSchema> schema;  // the current test's; the previous one is dropped
};

StoreBackend PostgresBackend() {
  auto state = std::make_shared<PostgresBackendState>();
  StoreBackend b;
  b.name = "postgres";
  b.skip_reason = []() -> std::string {
    return pg::TestServerUrl().empty() ? "ENRICHD_TEST_PG_URL is not set" : "";
  };
  b.open_fresh = [state]() -> Result<std::unique_ptr<GraphStore>> {
    std::lock_guard lock(state->mu);
    state->schema.reset();
    auto schema = pg::TestSchema::Create(pg::TestServerUrl());
    if (!schema.ok()) return schema.status();
    state->schema = std::move(schema).value();
    return OpenPostgresStore(state->schema->url());
  };
  b.open_again = [state]() -> Result<std::unique_ptr<GraphStore>> {
    std::string url;
    {
      std::lock_guard lock(state->mu);
      if (!state->schema) return FailedPreconditionError("open_again before open_fresh");
      url = state->schema->url();
    }
    return OpenPostgresStore(url);
  };
  return b;
}

INSTANTIATE_TEST_SUITE_P(Postgres, GraphStoreConformance, ::testing::Values(PostgresBackend()),
                         StoreBackendName);

}  // namespace
}  // namespace enrichd

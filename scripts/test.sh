#!/usr/bin/env bash
# The test command: installs what is missing (Debian packages), builds, starts the
# services the tests need (a private PostgreSQL server; the mock provider is started by
# the tests themselves on loopback), runs every test, and stops the services.
#   scripts/test.sh               # the whole suite (what CI runs)
#   scripts/test.sh -L unit       # extra arguments go to ctest
# Environment: ENRICHD_SANITIZERS=1 also builds the asan preset and runs the suite there.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh --with-postgres

jobs=$(nproc)
build_and_test() {
  local preset=$1
  shift
  if [ ! -f "build/$preset/CMakeCache.txt" ]; then
    cmake --preset "$preset" -G Ninja >/dev/null
  fi
  cmake --build --preset "$preset" -j "$jobs"
  ctest --preset "$preset" -j "$jobs" "$@"
}

export ENRICHD_PG_STATE
ENRICHD_PG_STATE=$(mktemp /tmp/enrichd-pg-state.XXXXXX)
rm -f "$ENRICHD_PG_STATE"
cleanup() { scripts/pg-test-server.sh stop || true; rm -f "$ENRICHD_PG_STATE"; }
trap cleanup EXIT
if pg_env=$(scripts/pg-test-server.sh start); then
  eval "$pg_env"
  echo "test: PostgreSQL test server at ${ENRICHD_TEST_PG_URL}"
else
  echo "test: no PostgreSQL server could be started; postgres tests will be skipped" >&2
fi

build_and_test default "$@"
if [ "${ENRICHD_SANITIZERS:-0}" = "1" ]; then
  build_and_test asan "$@"
fi

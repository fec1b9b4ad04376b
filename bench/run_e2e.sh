#!/usr/bin/env bash
# End-to-end benchmark of enrichd: builds the Release preset if needed, then runs
# bench/e2e_benchmark, which hosts the mock providers itself and runs the real
# `enrichd run --once` per scenario (see bench/README.md).
#
#   bench/run_e2e.sh                      # every scenario: a, a2, b, c, d, e (about 3 minutes)
#   bench/run_e2e.sh --scenarios a,b      # some of them
#   bench/run_e2e.sh --seed 7 --keep      # other addresses / fault rolls; keep the SQLite files
#
# Every argument goes to e2e_benchmark (--help lists them). The results (a table on stdout,
# JSON in the file whose path is printed last) do not go into the source tree.
#
# Environment:
#   ENRICHD_BUILD_DIR  use this build folder (configured with -DCMAKE_BUILD_TYPE=Release)
#                      instead of the `release` preset's build/release.
#   JOBS               parallel build jobs (default: nproc).
set -euo pipefail

src="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
jobs="${JOBS:-$(nproc)}"
if [[ -n "${ENRICHD_BUILD_DIR:-}" ]]; then
  build="$ENRICHD_BUILD_DIR"
  if [[ ! -f "$build/CMakeCache.txt" ]]; then
    cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release
  fi
else
  build="$src/build/release"
  if [[ ! -f "$build/CMakeCache.txt" ]]; then
    (cd "$src" && cmake --preset release -G Ninja)
  fi
fi
if ! grep -q '^CMAKE_BUILD_TYPE:STRING=Release$' "$build/CMakeCache.txt"; then
  echo "run_e2e.sh: $build is not a Release build; figures would be meaningless" >&2
  exit 2
fi
if ! grep -q '^ENRICHD_BUILD_BENCHMARKS:BOOL=ON$' "$build/CMakeCache.txt"; then
  echo "run_e2e.sh: $build has ENRICHD_BUILD_BENCHMARKS off" >&2
  exit 2
fi
cmake --build "$build" --target enrichd e2e_benchmark -j "$jobs"

mkdir -p "$build/bench"
out="$build/bench/e2e-results-$(date -u +%Y%m%dT%H%M%SZ).json"
echo "run_e2e.sh: nproc $(nproc), load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
exec "$build/bench/e2e_benchmark" --enrichd "$build/src/cli/enrichd" --out "$out" "$@"

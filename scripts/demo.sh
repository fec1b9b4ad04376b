#!/usr/bin/env bash
# The main job: installs what is missing (Debian packages), builds, and runs
# `enrichd demo` (an embedded SQLite graph, a local simulated provider, no network).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
if [ ! -f build/release/CMakeCache.txt ]; then
  cmake --preset release -G Ninja >/dev/null
fi
cmake --build --preset release -j "$(nproc)" --target enrichd
exec build/release/src/cli/enrichd demo "$@"

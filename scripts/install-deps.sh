#!/usr/bin/env bash
# Installs, from Debian's packages, whatever enrichd needs to build, test and run that
# the machine does not have yet. Idempotent: with everything present it installs nothing.
# Usage: scripts/install-deps.sh [--with-postgres] [--with-bench]
set -euo pipefail

packages=(
  g++ cmake ninja-build pkg-config
  libgtest-dev libgmock-dev libbenchmark-dev
  libcurl4-openssl-dev libssl-dev ca-certificates libsqlite3-dev libpq-dev libyaml-cpp-dev
  libmaxminddb-dev nlohmann-json3-dev libgoogle-perftools-dev
  python3
)
for arg in "$@"; do
  case "$arg" in
    --with-postgres) packages+=(postgresql) ;;
    --with-bench) packages+=(wrk time) ;;
    *) echo "install-deps: unknown option $arg" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

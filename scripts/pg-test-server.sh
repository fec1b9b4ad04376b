#!/usr/bin/env bash
# A private, throw-away PostgreSQL server for the test suite and benchmarks.
#   eval "$(scripts/pg-test-server.sh start)"   # exports ENRICHD_TEST_PG_URL (and _DIR)
#   scripts/pg-test-server.sh stop              # stops it and removes its data
# It runs as the `postgres` user (the server refuses root) with a temporary data
# directory, trust authentication on 127.0.0.1 only, and a free port.
set -euo pipefail

state_file="${ENRICHD_PG_STATE:-/tmp/enrichd-pg-test.state}"

pg_bin() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    if [ -x "$d/initdb" ]; then echo "$d"; return 0; fi
  done
  return 1
}

as_postgres() {
  if [ "$(id -u)" -eq 0 ]; then
    su postgres -s /bin/sh -c "$1"
  else
    sh -c "$1"
  fi
}

free_port() {
  python3 - <<'PY'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
PY
}

start() {
  local bin dir port
  bin=$(pg_bin) || { echo "pg-test-server: PostgreSQL server binaries not found" >&2; exit 1; }
  if [ -f "$state_file" ]; then stop >/dev/null 2>&1 || true; fi
  dir=$(mktemp -d /tmp/enrichd-pg.XXXXXX)
  chmod 755 "$dir"
  if [ "$(id -u)" -eq 0 ]; then chown postgres: "$dir"; fi
  port=$(free_port)
  as_postgres "'$bin/initdb' -D '$dir/data' -A trust -U postgres --no-sync -E UTF8 >'$dir/initdb.log' 2>&1" \
    || { cat "$dir/initdb.log" >&2; exit 1; }
  as_postgres "'$bin/pg_ctl' -D '$dir/data' -l '$dir/server.log' -w -t 60 \
    -o \"-p $port -k '$dir' -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200\" start >/dev/null" \
    || { cat "$dir/server.log" >&2; exit 1; }
  printf 'dir=%s\nport=%s\nbin=%s\n' "$dir" "$port" "$bin" >"$state_file"
  echo "export ENRICHD_TEST_PG_URL=postgresql://postgres@127.0.0.1:$port/postgres"
  echo "export ENRICHD_TEST_PG_DIR=$dir"
}

stop() {
  [ -f "$state_file" ] || return 0
  # shellcheck disable=SC1090
  . "$state_file"
  as_postgres "'$bin/pg_ctl' -D '$dir/data' -m fast -w stop >/dev/null 2>&1" || true
  rm -rf "$dir" "$state_file"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# Compares CurlHttpClient's throughput with wrk's against the same loopback mock server
# (1 event-loop thread, tiny JSON answer, no latency), 64 requests in flight each. Our
# client runs twice per round: as configured by default (plain http through its native
# HTTP/1.1 transport) and with libcurl alone (--transport curl), for comparison.
#
#   bench/http_vs_wrk.sh        # env: BUILD_DIR, DURATION (s per run), ROUNDS, PORT
#
# Runs wrk, our client (native) and our client (libcurl) in turn ROUNDS times (the median
# of each is reported, which tames a shared machine's noise) and prints the requests/s,
# the ratio ours(native)/wrk (target >= 0.60), each client's CPU time per request, nproc,
# the load average, and the connections the server accepted for each client (64 each
# expected: keep-alive reuse).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build/bench-release}
DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-3}
PORT=${PORT:-18931}
CONNECTIONS=64

command -v wrk >/dev/null || { echo "wrk is not installed" >&2; exit 1; }

cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DENRICHD_BUILD_BENCHMARKS=ON >/dev/null
cmake --build "$BUILD_DIR" --target http_client_benchmark -j2 >/dev/null
BIN="$BUILD_DIR/src/http/http_client_benchmark"

LOG=$(mktemp)
TIMES=$(mktemp)
"$BIN" --serve-only "$PORT" $(((DURATION + 2) * ROUNDS * 3 + 30)) >"$LOG" 2>&1 &
SERVER_PID=$!
trap 'kill "$SERVER_PID" 2>/dev/null || true; rm -f "$LOG" "$TIMES"' EXIT
for _ in $(seq 100); do
  grep -q "serving on" "$LOG" && break
  sleep 0.1
done
grep -q "serving on" "$LOG" || { cat "$LOG" >&2; exit 1; }
URL="http://127.0.0.1:$PORT/"

server_connections() {  # asks the server for its counters; prints connections_accepted
  local before
  before=$(grep -c "^server:" "$LOG" || true)
  kill -USR1 "$SERVER_PID"
  for _ in $(seq 100); do
    [ "$(grep -c "^server:" "$LOG" || true)" -gt "$before" ] && break
    sleep 0.05
  done
  grep "^server:" "$LOG" | tail -1 | sed 's/.*connections_accepted=//'
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
cpu_us_per_request() {  # $1: requests; reads "user sys" from $TIMES
  awk -v n="$1" '{ printf "%.1f", ($1 + $2) * 1e6 / n }' "$TIMES"
}

# One round of our client with transport $1 (native | curl): sets rps and total.
run_ours() {
  local out
  out=$(/usr/bin/time -f "%U %S" -o "$TIMES" "$BIN" --url "$URL" --seconds "$DURATION" \
        --inflight "$CONNECTIONS" --transport "$1")
  rps=$(echo "$out" | sed -n 's/.*requests_per_second=\([0-9.]*\).*/\1/p')
  total=$(echo "$out" | sed -n 's/.* ok=\([0-9]*\).*/\1/p')
}

WRK_RPS=() OUR_RPS=() WRK_CPU=() OUR_CPU=() WRK_CONN=() OUR_CONN=()
CURL_RPS=() CURL_CPU=() CURL_CONN=()
previous=$(server_connections)
for round in $(seq "$ROUNDS"); do
  out=$(/usr/bin/time -f "%U %S" -o "$TIMES" wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" "$URL")
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  total=$(echo "$out" | awk '/requests in/ {print $1}')
  WRK_RPS+=("$rps") WRK_CPU+=("$(cpu_us_per_request "$total")")
  now=$(server_connections); WRK_CONN+=($((now - previous))); previous=$now

  run_ours native
  OUR_RPS+=("$rps") OUR_CPU+=("$(cpu_us_per_request "$total")")
  now=$(server_connections); OUR_CONN+=($((now - previous))); previous=$now

  run_ours curl
  CURL_RPS+=("$rps") CURL_CPU+=("$(cpu_us_per_request "$total")")
  now=$(server_connections); CURL_CONN+=($((now - previous))); previous=$now
  echo "round $round: wrk ${WRK_RPS[-1]} req/s, ours (native) ${OUR_RPS[-1]} req/s," \
       "ours (libcurl) ${CURL_RPS[-1]} req/s"
done

wrk_median=$(printf '%s\n' "${WRK_RPS[@]}" | median)
our_median=$(printf '%s\n' "${OUR_RPS[@]}" | median)
curl_median=$(printf '%s\n' "${CURL_RPS[@]}" | median)
echo "nproc:                           $(nproc), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "wrk -t1 -c$CONNECTIONS -d${DURATION}s (median):   $wrk_median req/s," \
     "CPU $(printf '%s\n' "${WRK_CPU[@]}" | median) us/request," \
     "server accepted ${WRK_CONN[*]} connections"
echo "CurlHttpClient native, $CONNECTIONS in flight (median): $our_median req/s," \
     "CPU $(printf '%s\n' "${OUR_CPU[@]}" | median) us/request," \
     "server accepted ${OUR_CONN[*]} connections"
echo "CurlHttpClient libcurl, $CONNECTIONS in flight (median): $curl_median req/s," \
     "CPU $(printf '%s\n' "${CURL_CPU[@]}" | median) us/request," \
     "server accepted ${CURL_CONN[*]} connections"
awk -v ours="$our_median" -v curl="$curl_median" -v wrk="$wrk_median" \
  'BEGIN { printf "ratio ours/wrk:                  %.2f native (target >= 0.60), %.2f libcurl\n", ours / wrk, curl / wrk }'
echo "(on a busy machine the starved server limits both clients and the ratio means little;"
echo " CPU per request then says more: each client is one thread on a 2-core machine)"

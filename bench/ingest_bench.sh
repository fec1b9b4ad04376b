#!/usr/bin/env bash
# Ingest benchmark: 1,000,000 random public IPv4 lines (plus ~2% IPv6 in mixed case, to
# exercise canonicalisation) through `enrichd ingest` into a fresh SQLite file, and into
# PostgreSQL when ENRICHD_BENCH_PG_URL is set. Prints elapsed seconds and peak RSS.
#
# usage: bench/ingest_bench.sh [path/to/enrichd] [lines]
#   default binary: $ENRICHD_BIN, else build/release/src/cli/enrichd (use a Release build)
# Targets: < 5 s into SQLite, < 10 s into PostgreSQL, peak RSS < 100 MB.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${1:-${ENRICHD_BIN:-$here/build/release/src/cli/enrichd}}"
lines="${2:-1000000}"
[[ -x "$bin" ]] || { echo "ingest_bench: no enrichd binary at $bin" >&2; exit 2; }
[[ -x /usr/bin/time ]] || { echo "ingest_bench: /usr/bin/time is missing (apt install time)" >&2; exit 2; }

work="$(mktemp -d "${TMPDIR:-/tmp}/enrichd_ingest_bench.XXXXXX")"
trap 'rm -rf "$work"' EXIT
input="$work/ips.txt"

# Deterministic pseudo-random addresses; the first octet avoids private, loopback,
# link-local, CGNAT, multicast, reserved and documentation /8s.
awk -v n="$lines" 'BEGIN {
  srand(42)
  split("0 10 100 127 169 172 192 198 203", bad, " ")
  for (i in bad) skip[bad[i]] = 1
  for (a = 1; a <= 223; a++) if (!(a in skip)) first[++nf] = a
  for (i = 0; i < n; i++) {
    if (i % 50 == 49) {
      printf "2A0%X:%X:%X::%X\n", int(rand() * 16), int(rand() * 65536), int(rand() * 65536), int(rand() * 65536) + 1
    } else {
      printf "%d.%d.%d.%d\n", first[int(rand() * nf) + 1], int(rand() * 256), int(rand() * 256), int(rand() * 254) + 1
    }
  }
}' > "$input"
echo "input: $(wc -l < "$input") lines, $(du -h "$input" | cut -f1), nproc $(nproc)"

# run NAME STORE_URL: ingest under /usr/bin/time -v and print the figures.
run() {
  local name="$1" url="$2" tv="$work/time.$1" out="$work/out.$1"
  if ! /usr/bin/time -v -o "$tv" "$bin" ingest --json --store "$url" "$input" > "$out" 2> "$out.err"; then
    echo "$name: enrichd ingest failed" >&2
    cat "$out" "$out.err" >&2
    return 1
  fi
  local elapsed rss_kb cpu
  elapsed="$(awk -F': ' '/Elapsed \(wall clock\)/ {
      n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s }' "$tv")"
  rss_kb="$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$tv")"
  # CPU seconds (user + system): the figure to trust when the machine is busy.
  cpu="$(awk -F': ' '/User time|System time/ { s += $2 } END { print s }' "$tv")"
  printf '%-8s elapsed %6.2f s   cpu %6.2f s   peak RSS %6.1f MB   %s\n' "$name" "$elapsed" \
    "$cpu" "$(awk -v k="$rss_kb" 'BEGIN { print k / 1024 }')" "$(cat "$out")"
}

run sqlite "sqlite://$work/bench.db"
if [[ -n "${ENRICHD_BENCH_PG_URL:-}" ]]; then
  # Into whatever that database holds already: a rerun reports the lines as "existing".
  run postgres "$ENRICHD_BENCH_PG_URL"
else
  echo "postgres: skipped (set ENRICHD_BENCH_PG_URL=postgresql://... to include it)"
fi

#!/usr/bin/env bash
# server_bench.sh: the service under load. A library of N indicators (default 1,000,000;
# SERVER_BENCH_N), each with two sources and two attributes per source, made by `tqhost
# indicator import` of a generated CSV (once per source: timed and printed); `tqhost serve` on
# it and an analyst's token (`tqhost user add`, POST /api/token); then wrk (64 connections,
# keep-alive, 2 threads, SERVER_BENCH_SECONDS each, default 10) with wrk_indicator_get.lua:
# GET /api/indicators/{random id}?with=attributes,sources with the Bearer token, over plain
# HTTP on loopback (--insecure-http) and over TLS (the self-signed pair; wrk does not verify),
# and the same wrk against GET /api/health (no auth, no library) as the floor of the server
# itself. Each case runs SERVER_BENCH_RUNS times (default 2; the machine is shared, figures are
# noisy), after a warm-up run of SERVER_BENCH_WARMUP seconds (default 5; printed, not counted:
# the read connections' page caches fill). Prints requests/s, p50, p99, non-2xx answers and
# socket errors (both must be 0), the server's CPU time per request (from /proc: steadier
# than the rate when the machine is shared), the ratio to the aims (>= 15,000/s plain,
# >= 8,000/s TLS, p99 < 20 ms), the ratio of the indicator reads to the floor, and the
# server's peak RSS (VmHWM) after each server's load. A figure, not a timed test: it fails only when the setup
# fails or an answer is not 2xx. Exit 77 when wrk is not installed.
# server_op_bench.sh and server_consume_bench.sh are their own ctest entries (bench.server_op,
# bench.server_consume): `make bench` prints their figures too.
# Usage: server_bench.sh BUILD_DIR
set -u
BUILD=$(cd "${1:?usage: server_bench.sh BUILD_DIR}" && pwd)
TQ=$BUILD/tqhost
N=${SERVER_BENCH_N:-1000000}
SECS=${SERVER_BENCH_SECONDS:-10}
RUNS=${SERVER_BENCH_RUNS:-2}
WARMUP=${SERVER_BENCH_WARMUP:-5}
HERE=$(cd "$(dirname "$0")" && pwd)
LUA=$HERE/wrk_indicator_get.lua
PASSWORD=bench-password-1234

if ! command -v wrk >/dev/null; then
  echo "server_bench: wrk is not installed (apt-get install -y wrk): skipped"
  exit 77
fi
for tool in curl python3; do
  command -v $tool >/dev/null || { echo "server_bench: needs $tool"; exit 1; }
done
[[ -x $TQ ]] || { echo "server_bench: no tqhost at '$TQ'"; exit 1; }

WORK=$(mktemp -d)
SRV_PID=""
trap '[[ -n $SRV_PID ]] && kill "$SRV_PID" 2>/dev/null; rm -rf "$WORK"' EXIT
export TQHOST_DB="$WORK/lib.db" TQHOST_LOG=warn
unset TQHOST_NOW
FAILED=0

now() { date +%s.%N; }

# ---- 1. the library -------------------------------------------------------------------------
python3 - "$N" >"$WORK/rows.csv" <<'PY'
import sys
n = int(sys.argv[1])
sev = ("low", "medium", "high")
out = ["value,type,Confidence,Severity\n"]
for i in range(n):
    out.append("10.%d.%d.%d,IP Address,%d,%s\n" % (i >> 16 & 255, i >> 8 & 255, i & 255,
                                                  i % 100, sev[i % 3]))
    if len(out) >= 65536:
        sys.stdout.write("".join(out))
        out = []
sys.stdout.write("".join(out))
PY
"$TQ" init >/dev/null || { echo "server_bench: tqhost init failed"; exit 1; }
T_IMPORT=0
for src in BenchA BenchB; do
  t0=$(now)
  "$TQ" indicator import "$WORK/rows.csv" --source "$src" >"$WORK/import.out" 2>&1 ||
    { echo "server_bench: import failed"; tail -5 "$WORK/import.out"; exit 1; }
  t1=$(now)
  dt=$(echo "$t1 - $t0" | bc -l)
  T_IMPORT=$(echo "$T_IMPORT + $dt" | bc -l)
  printf 'import of %d rows, source %s (%s): %.1f s, %.0f rows/s\n' "$N" "$src" \
    "$([[ $src == BenchA ]] && echo "new indicators" || echo "merged into them")" "$dt" \
    "$(echo "$N / $dt" | bc -l)"
done
printf 'library of %d indicators (2 sources, 4 attributes each) made in %.1f s; %s MiB on disk\n' \
  "$N" "$T_IMPORT" "$(du -cm "$WORK"/lib.db* | awk 'END {print $1}')"
echo "$PASSWORD" | "$TQ" user add bench --role analyst >/dev/null ||
  { echo "server_bench: user add failed"; exit 1; }

# ---- 2. the server ---------------------------------------------------------------------------
# start_server [serve options]: runs tqhost serve, sets URL and SRV_PID from its ready line.
start_server() {
  "$TQ" serve --listen 127.0.0.1:0 "$@" >"$WORK/srv.out" 2>"$WORK/srv.err" &
  SRV_PID=$!
  for _ in $(seq 1 200); do
    grep -q serving "$WORK/srv.out" 2>/dev/null && break
    sleep 0.05
  done
  URL=$(sed -n 's/^tqhost serving on \(https\{0,1\}:\/\/[^ ]*\).*$/\1/p' "$WORK/srv.out")
  [[ -n $URL ]] || { echo "server_bench: the server did not start"; cat "$WORK/srv.err"; exit 1; }
}
stop_server() {
  kill "$SRV_PID"
  wait "$SRV_PID" 2>/dev/null
  SRV_PID=""
}
peak_rss() { awk '/^VmHWM:/ {printf "%.1f MiB", $2 / 1024}' "/proc/$SRV_PID/status"; }

# ms VALUE: wrk's latency ("812.00us", "3.10ms", "1.02s") in milliseconds.
ms() {
  awk -v v="$1" 'BEGIN {
    if (v ~ /us$/) { sub(/us$/, "", v); printf "%.2f", v / 1000 }
    else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.2f", v }
    else if (v ~ /m$/) { sub(/m$/, "", v); printf "%.2f", v * 60000 }
    else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.2f", v * 1000 }
    else print "?" }'
}

# cpu_ticks: the server's user + system CPU time so far, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$SRV_PID/stat"; }
HZ=$(getconf CLK_TCK)

printf '\n%-40s %9s %8s %8s %7s %7s %7s %7s %6s\n' "case (wrk: 2 threads, 64 connections, ${SECS} s)" \
  "req/s" "p50 ms" "p99 ms" "non-2xx" "errors" "cpu us" "aim/s" "ratio"
# bench LABEL AIM SECONDS [wrk args...]: one wrk run, its row (cpu us: the server's CPU time
# per request); RATE and P99 are set.
bench() {
  local label=$1 aim=$2 secs=$3
  shift 3
  local c0 c1 cpu
  c0=$(cpu_ticks)
  wrk -t2 -c64 -d"${secs}s" --latency "$@" >"$WORK/wrk.out" 2>&1
  c1=$(cpu_ticks)
  RATE=$(awk '/^Requests\/sec:/ {print int($2)}' "$WORK/wrk.out")
  cpu=$(awk -v c=$((c1 - c0)) -v hz="$HZ" '/ requests in / {if ($1 > 0) printf "%.0f", c / hz * 1e6 / $1}' \
    "$WORK/wrk.out")
  local p50 non2xx errors
  p50=$(ms "$(awk '$1 == "50%" {print $2}' "$WORK/wrk.out")")
  P99=$(ms "$(awk '$1 == "99%" {print $2}' "$WORK/wrk.out")")
  non2xx=$(awk '/^non2xx / {n = $2} /Non-2xx or 3xx responses:/ {n = $NF} END {print n + 0}' \
    "$WORK/wrk.out")
  errors=$(awk '/Socket errors:/ {gsub(",", ""); print $4 + $6 + $8 + $10}' "$WORK/wrk.out")
  errors=${errors:-0}
  if [[ -z $RATE ]]; then
    echo "$label: wrk failed:"
    cat "$WORK/wrk.out"
    FAILED=1
    RATE=0
    return
  fi
  [[ $non2xx == 0 && $errors == 0 ]] || FAILED=1
  printf '%-40s %9s %8s %8s %7s %7s %7s %7s %6.2f\n' "$label" "$RATE" "$p50" "$P99" "$non2xx" \
    "$errors" "${cpu:-?}" "$aim" "$(echo "$RATE / $aim" | bc -l)"
}

SUMMARY=()
# load SCHEME AIM [serve options]: the indicator reads and the floor, RUNS times each.
load() {
  local scheme=$1 aim=$2
  shift 2
  start_server "$@"
  local tok
  tok=$(curl -sk -X POST "$URL/api/token?grant_type=password&client_id=bench" \
    -H 'Content-Type: application/json' \
    -d "{\"username\": \"bench\", \"password\": \"$PASSWORD\"}" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])') ||
    { echo "server_bench: no token"; exit 1; }
  # a check that the route answers what the load asks for: 2 sources, 4 attributes
  local shape
  shape=$(curl -sk "$URL/api/indicators/$((N / 2))?with=attributes,sources" \
    -H "Authorization: Bearer $tok" |
    python3 -c 'import json, sys; d = json.load(sys.stdin)["data"]; print(len(d["sources"]), len(d["attributes"]))')
  [[ $shape == "2 4" ]] || { echo "server_bench: unexpected indicator ($shape)"; exit 1; }
  local r best=0 floor=0
  if ((WARMUP > 0)); then
    bench "$scheme GET /api/indicators/{id} (warm-up)" "$aim" "$WARMUP" -s "$LUA" "$URL" -- "$tok" "$N"
  fi
  for r in $(seq 1 "$RUNS"); do
    bench "$scheme GET /api/indicators/{id} (run $r)" "$aim" "$SECS" -s "$LUA" "$URL" -- "$tok" "$N"
    if ((RATE > best)); then best=$RATE; fi
    SUMMARY+=("$scheme indicators run $r: $RATE req/s (ratio $(printf '%.2f' "$(echo "$RATE / $aim" | bc -l)") to $aim), p99 $P99 ms ($(awk -v p="$P99" 'BEGIN {print (p < 20) ? "met" : "MISSED"}') < 20 ms)")
  done
  for r in $(seq 1 "$RUNS"); do
    bench "$scheme GET /api/health, floor (run $r)" "$aim" "$SECS" "$URL/api/health"
    SUMMARY+=("$scheme health floor run $r: $RATE req/s")
    if ((RATE > floor)); then floor=$RATE; fi
  done
  if ((floor > 0)); then
    SUMMARY+=("$scheme best indicator rate / best floor rate: $(printf '%.2f' "$(echo "$best / $floor" | bc -l)") (the library read and its JSON cost the rest)")
  fi
  SUMMARY+=("$scheme server peak RSS (VmHWM) after the load: $(peak_rss)")
  stop_server
}
load plain 15000 --insecure-http
load TLS 8000

echo
for s in "${SUMMARY[@]}"; do echo "$s"; done
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) (wrk shares the cores with the server)"
[[ $FAILED == 0 ]] || { echo "server_bench: some answers were not 2xx or wrk failed"; exit 1; }
exit 0

#!/usr/bin/env bash
# sim_bench.sh: throughput of rstsim's GET /v1/ioc with wrk and 64 connections, at zero
# latency (one repeated value, then a distinct value per request) and at 20 ms latency,
# printed with the ratio to the targets (20,000 req/s; 3,200 req/s = 64 / 20 ms).
# Usage: sim_bench.sh [path/to/rstsim]   (ctest sim.bench, label bench; exit 77 = no wrk)
# SIM_BENCH_SECONDS sets each run's length (default 5).
set -u
SIM=${1:-build/tests/sim/rstsim}
SECONDS_PER_RUN=${SIM_BENCH_SECONDS:-5}
HERE=$(cd "$(dirname "$0")" && pwd)
KEY='X-Api-Key: bench'

if ! command -v wrk >/dev/null; then
  echo "sim_bench: wrk is not installed (apt-get install -y wrk): skipped"
  exit 77
fi
[[ -x $SIM ]] || { echo "sim_bench: no rstsim at '$SIM'"; exit 1; }

WORK=$(mktemp -d)
SIM_PID=""
trap '[[ -n $SIM_PID ]] && kill "$SIM_PID" 2>/dev/null; rm -rf "$WORK"' EXIT

# start_sim [options]: runs rstsim and sets URL once it prints its ready line.
start_sim() {
  "$SIM" --port 0 "$@" >"$WORK/out" 2>"$WORK/err" &
  SIM_PID=$!
  for _ in $(seq 1 100); do
    grep -q listening "$WORK/out" 2>/dev/null && break
    sleep 0.05
  done
  local port
  port=$(sed -n 's/^rstsim listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$WORK/out")
  [[ -n $port ]] || { echo "sim_bench: rstsim did not start"; cat "$WORK/err"; exit 1; }
  URL="http://127.0.0.1:$port"
}

stop_sim() {
  kill "$SIM_PID"
  wait "$SIM_PID" 2>/dev/null
  SIM_PID=""
}

# rate [wrk args...]: requests per second measured by wrk (two threads, 64 connections).
rate() {
  wrk -t2 -c64 -d"${SECONDS_PER_RUN}s" -H "$KEY" "$@" | awk '/^Requests\/sec:/ {print int($2)}'
}

row() { # row LABEL RATE TARGET
  printf '%-44s %10s %8s %6.2f\n' "$1" "$2" "$3" "$(echo "$2 / $3" | bc -l)"
}

printf '%-44s %10s %8s %6s\n' "case (wrk, 64 connections)" "req/s" "target" "ratio"
start_sim
row "/v1/ioc, one value, latency 0" "$(rate "$URL/v1/ioc?value=45.83.122.166")" 20000
row "/v1/ioc, a new value per request, latency 0" \
  "$(rate -s "$HERE/../sim/wrk_ioc_values.lua" "$URL")" 20000
stop_sim
start_sim --latency-ms 20
row "/v1/ioc, one value, latency 20 ms" "$(rate "$URL/v1/ioc?value=45.83.122.166")" 3200
stop_sim
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"

#!/usr/bin/env bash
# op_bench.sh: median wall time of `tqhost op run rst-ioc-lookup VALUE` end to end (process
# start to printed result) against rstsim at zero latency, over N runs (default 50), and its
# ratio to the 15 ms aim. Usage: op_bench.sh TQHOST RSTSIM [N]. A figure, not a timed test.
set -u
TQ=${1:?usage: op_bench.sh tqhost rstsim [runs]}
SIM=${2:?usage: op_bench.sh tqhost rstsim [runs]}
RUNS=${3:-50}
AIM_MS=15
SRC=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d)
"$SIM" --port 0 --hit-ratio 1 --latency-ms 0 >"$WORK/sim" 2>/dev/null &
SIMPID=$!
trap 'kill $SIMPID 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 1 100); do grep -q listening "$WORK/sim" && break; sleep 0.05; done
PORT=$(sed -n 's/^rstsim listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$WORK/sim")
[[ -n $PORT ]] || { echo "rstsim did not start"; exit 1; }
export TQHOST_DB="$WORK/lib.db" TQHOST_PLUGINS="$SRC/plugins"
"$TQ" init >/dev/null
"$TQ" plugin configure rst-ioc-lookup api_key=bench-key "base_url=http://127.0.0.1:$PORT/v1" >/dev/null
# Distinct values so that the host's response cache never answers (every run does the I/O).
times=()
for i in $(seq 1 "$RUNS"); do
  v="45.83.$((i / 200)).$((i % 200 + 1))"
  t0=$(date +%s%N)
  "$TQ" op run rst-ioc-lookup "$v" >/dev/null 2>&1 || { echo "run $i failed"; exit 1; }
  t1=$(date +%s%N)
  times+=($(( (t1 - t0) / 1000 )))
done
median_us=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : int((a[NR/2] + a[NR/2+1]) / 2)}')
awk -v m="$median_us" -v n="$RUNS" -v aim="$AIM_MS" 'BEGIN {
  printf "op run rst-ioc-lookup end to end: median %.2f ms over %d runs; ratio to %d ms aim: %.2f\n",
         m / 1000, n, aim, m / 1000 / aim }'

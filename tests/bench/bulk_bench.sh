#!/usr/bin/env bash
# bulk_bench.sh: the bulk action runner (rst-ioc-lookup-action) against rstsim. Prints:
#  (1) N indicators at 20 ms latency, concurrency 64: indicators/s and the ratio to the bound
#      64 / 0.020 s = 3,200/s (aim >= 0.9);
#  (2) N indicators at zero latency: CPU time of the tqhost process per indicator (user + sys,
#      rstsim excluded; aim <= 50 us) and its peak RSS (aim <= 64 MiB); with BULK_BENCH_BIG set
#      (e.g. 1000000) the same at that size, to show that RSS does not grow with the input;
#      With NET_FLOOR given, the same number of GETs through bare libcurl (tests/bench/net_floor.c:
#      one multi handle, no Lua, no JSON, no library) against the same rstsim: the CPU per
#      request that any libcurl-based client pays here, and tqhost's CPU per item over it;
#  (3) a sequential baseline (concurrency 1, as the official RST client does) at 20 ms on
#      BULK_BENCH_SEQ items, and the ratio of (1) to it.
# Usage: bulk_bench.sh TQHOST RSTSIM [SOURCE_DIR [NET_FLOOR]]. Not a timed test: it prints figures.
set -u
TQ=${1:?usage: bulk_bench.sh TQHOST RSTSIM [SOURCE_DIR]}
SIM=${2:?usage: bulk_bench.sh TQHOST RSTSIM [SOURCE_DIR]}
SRC=${3:-$(cd "$(dirname "$0")/../.." && pwd)}
NET_FLOOR=${4:-}
N=${BULK_BENCH_N:-100000}
BIG=${BULK_BENCH_BIG:-0}
SEQ=${BULK_BENCH_SEQ:-500}
export TQHOST_PLUGINS="$SRC/plugins" TQHOST_ACTIONS="$SRC/actions" TQHOST_SCHEMAS="$SRC/schemas"
unset TQHOST_DB TQHOST_KEY_FILE
WORK=$(mktemp -d)
SIM_PID=""
trap '[ -n "$SIM_PID" ] && kill "$SIM_PID" 2>/dev/null; rm -rf "$WORK"' EXIT

start_sim() { # start_sim OPTIONS...: sets URL
  [ -n "$SIM_PID" ] && kill "$SIM_PID" 2>/dev/null && wait "$SIM_PID" 2>/dev/null
  "$SIM" --port 0 --threads 2 "$@" >"$WORK/sim.out" 2>&1 &
  SIM_PID=$!
  for _ in $(seq 100); do
    grep -q listening "$WORK/sim.out" 2>/dev/null && break
    sleep 0.05
  done
  URL="http://127.0.0.1:$(sed -n 's/.*127\.0\.0\.1:\([0-9]*\).*/\1/p' "$WORK/sim.out")/v1"
}

# db_of COUNT: a library with COUNT IPv4 indicators in collection "bulk" (made once per size).
db_of() {
  local db="$WORK/lib$1.db"
  if [ ! -e "$db" ]; then
    python3 -c "
import sys
n = int(sys.argv[1])
for i in range(n):
    print(f'{10 + (i >> 24)}.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}')" "$1" >"$WORK/v.txt"
    "$TQ" --db "$db" init >/dev/null
    "$TQ" --db "$db" indicator import "$WORK/v.txt" --source Bench >/dev/null
    "$TQ" --db "$db" collection add bulk --source Bench >/dev/null
    "$TQ" --db "$db" plugin configure rst-ioc-lookup api_key=bench-key-0123456789 >/dev/null
  fi
  echo "$db"
}

# bench DB CONCURRENCY [collection | values...]: runs the action once on a fresh copy of DB;
# sets WALL (s), CPU (s, user+sys of tqhost), RSS (KiB), DONE (items).
bench() {
  local db=$1 conc=$2
  shift 2
  cp "$db" "$WORK/run.db"
  rm -f "$WORK/run.db-wal" "$WORK/run.db-shm"
  # the library keeps its WAL between commands: it is part of the database
  [ -f "$db-wal" ] && cp "$db-wal" "$WORK/run.db-wal"
  cp "$db.key" "$WORK/run.db.key" 2>/dev/null
  local t0 t1
  t0=$(date +%s.%N)
  /usr/bin/time -f "%U %S %M" -o "$WORK/time" "$TQ" --db "$WORK/run.db" --json action run \
    rst-ioc-lookup-action "$@" --set "base_url=$URL" --concurrency "$conc" --rate 1000000 \
    >"$WORK/out.json" 2>"$WORK/err"
  t1=$(date +%s.%N)
  read -r u s RSS <"$WORK/time"
  WALL=$(echo "$t1 - $t0" | bc -l)
  CPU=$(echo "$u + $s" | bc -l)
  DONE=$(jq '.enriched + .not_found + .failed' "$WORK/out.json")
  local failed
  failed=$(jq .failed "$WORK/out.json")
  [ "$failed" = 0 ] || echo "  (warning: $failed items failed: $(jq -c .reasons "$WORK/out.json"))"
}

echo "bulk_bench: rst-ioc-lookup-action against rstsim, $N indicators"
DB=$(db_of "$N")

start_sim --latency-ms 20
bench "$DB" 64 --collection bulk
RATE=$(echo "$DONE / $WALL" | bc -l)
printf "(1) 20 ms latency, concurrency 64: %d items in %.2f s = %.0f/s; bound 3200/s; ratio %.2f (aim >= 0.9)\n" \
  "$DONE" "$WALL" "$RATE" "$(echo "$RATE / 3200" | bc -l)"

start_sim --latency-ms 0
bench "$DB" 64 --collection bulk
printf "(2) zero latency: %d items in %.2f s (%.0f/s); tqhost CPU %.1f us/item (aim <= 50, ratio %.2f); peak RSS %.1f MiB (aim <= 64, ratio %.2f)\n" \
  "$DONE" "$WALL" "$(echo "$DONE / $WALL" | bc -l)" "$(echo "$CPU * 1000000 / $DONE" | bc -l)" \
  "$(echo "$CPU * 1000000 / $DONE / 50" | bc -l)" "$(echo "$RSS / 1024" | bc -l)" \
  "$(echo "$RSS / 1024 / 64" | bc -l)"
RSS_N=$RSS
CPU_ITEM=$(echo "$CPU * 1000000 / $DONE" | bc -l)
if [ -n "$NET_FLOOR" ]; then
  if read -r _ _ _ FLOOR _ FUSER _ FSYS _ FBAD < <("$NET_FLOOR" "$URL" "$N" 64); then
    printf "    floor: bare libcurl, the same %d GETs at concurrency 64: %.1f us CPU/request (user %.1f, sys %.1f); tqhost / floor = %.1f; the aim of 50 us is %.2f x the floor\n" \
      "$N" "$FLOOR" "$FUSER" "$FSYS" "$(echo "$CPU_ITEM / $FLOOR" | bc -l)" "$(echo "50 / $FLOOR" | bc -l)"
    [ "$FBAD" = 0 ] || echo "    (warning: $FBAD floor requests did not end in a 200)"
  else
    echo "    floor: net_floor failed"
  fi
fi
if [ "$BIG" -gt 0 ]; then
  BDB=$(db_of "$BIG")
  bench "$BDB" 64 --collection bulk
  printf "    at %d items: CPU %.1f us/item, peak RSS %.1f MiB (%.2f x the RSS at %d)\n" "$DONE" \
    "$(echo "$CPU * 1000000 / $DONE" | bc -l)" "$(echo "$RSS / 1024" | bc -l)" \
    "$(echo "$RSS / $RSS_N" | bc -l)" "$N"
fi

start_sim --latency-ms 20
SDB=$(db_of "$SEQ")
bench "$SDB" 1 --collection bulk
SEQ_RATE=$(echo "$DONE / $WALL" | bc -l)
printf "(3) sequential baseline (concurrency 1, 20 ms): %d items in %.2f s = %.1f/s; concurrent / sequential = %.1f x\n" \
  "$DONE" "$WALL" "$SEQ_RATE" "$(echo "$RATE / $SEQ_RATE" | bc -l)"

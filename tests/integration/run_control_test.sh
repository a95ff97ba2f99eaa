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

# --- 2. exit status, skipped, --failed and --retry-failed ------------------------------------------
start_sim CLEAN
start_sim BROKEN --fault-malformed 1
vals=()
for i in $(seq 1 12); do vals+=("10.30.0.$i"); done
F=$(new_db failing "${vals[@]}" analyst@example.com)
out=$("$TQ" --db "$F" --json action run rst-ioc-lookup-action --collection bulk \
  --set "base_url=$BROKEN_URL" 2>"$WORK/failing.err")
rc=$?
read -r status failed skipped < <(jq -r '"\(.status) \(.failed) \(.skipped)"' <<<"$out")
check "every item failed: exit status 1 ($rc)" [ "$rc" -eq 1 ]
check "every item failed: the run itself is done ($status)" [ "$status" = done ]
check "every item failed: 12 failed ($failed)" [ "$failed" = 12 ]
check "an e-mail address is skipped, not failed ($skipped)" [ "$skipped" = 1 ]
check "the skipped reason names the type" \
  grep -q "does not accept Email Address objects" <<<"$(jq -r '.reasons[].reason' <<<"$out")"
"$TQ" --db "$F" action runs 1 --failed >"$WORK/failed.txt"
check "runs --failed: exit 0" [ $? -eq 0 ]
check "runs --failed: one line per failed value ($(wc -l <"$WORK/failed.txt"))" \
  [ "$(wc -l <"$WORK/failed.txt")" -eq 12 ]
check "runs --failed: value, type and reason" \
  grep -q "^10.30.0.7	IP Address	.*invalid JSON" "$WORK/failed.txt"
check "runs --failed: the skipped one is not listed" bash -c "! grep -q analyst '$WORK/failed.txt'"
"$TQ" --db "$F" action runs 1 | grep -q "skipped" 
check "runs ID shows the skipped reason" [ $? -eq 0 ]
out=$("$TQ" --db "$F" --json action run rst-ioc-lookup-action --retry-failed 1 \
  --set "base_url=$CLEAN_URL")
rc=$?
read -r id status total e nf failed skipped < <(jq -r \
  '"\(.run_id) \(.status) \(.total) \(.enriched) \(.not_found) \(.failed) \(.skipped)"' <<<"$out")
check "retry-failed: a new run ($id) over the 12 failed items ($total)" \
  [ "$id" = 2 ] && [ "$total" = 12 ]
check "retry-failed: all done this time ($status $e $nf $failed $skipped), exit 0 ($rc)" \
  [ "$status" = done ] && [ $((e + nf)) -eq 12 ] && [ "$failed" = 0 ] && [ "$rc" -eq 0 ]
check "retry-failed: recorded as such" \
  [ "$("$TQ" --db "$F" --json action runs 2 | jq -r '.retry_of, .input' | tr '\n' ' ')" = \
    "1 failed items of run 1 " ]
"$TQ" --db "$F" action run rst-ioc-lookup-action --retry-failed 2 2>"$WORK/noretry.err"
check "retry of a run without failures is refused" grep -q "no failed items" "$WORK/noretry.err"

# --- 3. authentication failures stop the run ------------------------------------------------------
start_sim AUTH --api-key "the-right-key" --stats
vals=()
for i in $(seq 1 60); do vals+=("10.40.0.$i"); done
U=$(new_db auth "${vals[@]}")
out=$("$TQ" --db "$U" --json action run rst-ioc-lookup-action --collection bulk \
  --set "base_url=$AUTH_URL" --concurrency 2)
rc=$?
read -r status failed < <(jq -r '"\(.status) \(.failed)"' <<<"$out")
err=$(jq -r .error <<<"$out")
check "auth: the run stops failed ($status), exit 1 ($rc)" [ "$status" = failed ] && [ "$rc" -eq 1 ]
check "auth: the error says why ($err)" grep -Eq "stopped after [5-9] authentication failures: .*403" <<<"$err"
check "auth: the quota is not spent on every item ($failed of 60 failed)" [ "$failed" -le 10 ]
"$TQ" --db "$U" --json action run rst-ioc-lookup-action --collection bulk \
  --set "base_url=$AUTH_URL" --concurrency 1 --max-auth-failures 2 >"$WORK/auth2.json"
check "auth: --max-auth-failures 2" grep -q "stopped after 2 authentication failures" "$WORK/auth2.json"

# --- 4. a live run is not resumed twice; a killed one is shown as such -----------------------------
start_sim SLOW --latency-ms 30
vals=()
for i in $(seq 1 200); do vals+=("10.50.$((i / 200)).$((i % 200 + 1))"); done
L=$(new_db live "${vals[@]}")
"$TQ" --db "$L" action run rst-ioc-lookup-action --collection bulk --set "base_url=$SLOW_URL" \
  --concurrency 2 >/dev/null 2>&1 &
pid=$!
BG+=("$pid")
running() { [ "$(sql "$1" "SELECT status FROM runs WHERE id=1")" = running ]; }
check "live: the run is running" wait_for 20 running "$L"
"$TQ" --db "$L" action resume 1 >/dev/null 2>"$WORK/live.err"
rc=$?
check "live: resume of a live run is refused, exit 1 ($rc)" [ "$rc" -eq 1 ]
check "live: the refusal names the process" grep -q "run 1 is running in another process" "$WORK/live.err"
check "live: action runs says running" \
  [ "$("$TQ" --db "$L" --json action runs 1 | jq -r '.state, .live' | tr '\n' ' ')" = "running true " ]
committed() {
  local v
  v=$(sql "$1" "SELECT last_id FROM runs WHERE id=1" 2>/dev/null)
  [ "${v:-0}" -gt 0 ]
}
check "live: a checkpoint is committed" wait_for 30 committed "$L"
kill -KILL "$pid"
wait "$pid" 2>/dev/null
check "killed: action runs says the process died" \
  grep -q "interrupted (process died)" <<<"$("$TQ" --db "$L" action runs)"
"$TQ" --db "$L" --json action resume 1 --concurrency 8 --rate 1000 >"$WORK/live2.json" 2>/dev/null
read -r status total e nf f < <(jq -r '"\(.status) \(.total) \(.enriched) \(.not_found) \(.failed)"' "$WORK/live2.json")
check "killed: resume takes it over and completes ($status, $((e + nf + f)) of $total)" \
  [ "$status" = done ] && [ $((e + nf + f)) -eq "$total" ]

# --- 5. workflow ticks: claims, resume of a killed workflow run, failed runs in the log ------------
T0="2026-03-02 10:00:00"
T1="2026-03-02 11:00:00"
# 100 items at the action's 10 requests a second: ~10 s a workflow run.
vals=("${vals[@]:0:100}")
W=$(new_db ticks "${vals[@]}")
TQHOST_NOW="$T0" "$TQ" --db "$W" workflow add hourly --collection bulk \
  --action rst-ioc-lookup-action --set "base_url=$SLOW_URL" --every 1h >/dev/null
TQHOST_NOW="$T1" "$TQ" --db "$W" --json workflow tick >"$WORK/tick1.json" 2>&1 &
p1=$!
TQHOST_NOW="$T1" "$TQ" --db "$W" --json workflow tick >"$WORK/tick2.json" 2>&1 &
p2=$!
BG+=("$p1" "$p2")
wait "$p1"
r1=$?
wait "$p2"
r2=$?
runs=$(sql "$W" "SELECT count(*) FROM runs")
check "two ticks at once run the due workflow once ($runs runs)" [ "$runs" -eq 1 ]
ran=$(jq -s '[.[].workflows | length] | add' "$WORK/tick1.json" "$WORK/tick2.json")
check "two ticks at once: one of them ran it ($ran)" [ "$ran" -eq 1 ]
check "two ticks at once: both exit 0 ($r1 $r2)" [ "$r1" -eq 0 ] && [ "$r2" -eq 0 ]

K=$(new_db killtick "${vals[@]}")
TQHOST_NOW="$T0" "$TQ" --db "$K" workflow add hourly --collection bulk \
  --action rst-ioc-lookup-action --set "base_url=$SLOW_URL" --every 1h >/dev/null
TQHOST_NOW="$T1" "$TQ" --db "$K" workflow tick >/dev/null 2>&1 &
pid=$!
BG+=("$pid")
check "killed tick: a checkpoint is committed" wait_for 30 committed "$K"
kill -KILL "$pid"
wait "$pid" 2>/dev/null
before=$(sql "$K" "SELECT enriched + not_found + failed + skipped FROM runs WHERE id=1")
check "killed tick: the run is left running ($before items committed)" running "$K"
# The workflow is not due (its 11:00 run was claimed): the next tick resumes it all the same.
TQHOST_NOW="2026-03-02 11:01:00" "$TQ" --db "$K" --json workflow tick >"$WORK/tick3.json" 2>&1
rc=$?
read -r id status < <(jq -r '.workflows[0] | "\(.run_id) \(.status)"' "$WORK/tick3.json")
check "next tick resumes the killed run ($id $status), exit 0 ($rc)" \
  [ "$id" = 1 ] && [ "$status" = done ] && [ "$rc" -eq 0 ]
check "next tick made no new run" [ "$(sql "$K" "SELECT count(*) FROM runs")" -eq 1 ]
counted=$(sql "$K" "SELECT enriched + not_found + failed + skipped FROM runs WHERE id=1")
check "no item redone: the counts add up to the input ($counted of 100)" [ "$counted" -eq 100 ]
TQHOST_NOW="2026-03-02 11:02:00" "$TQ" --db "$K" --json workflow tick >"$WORK/tick4.json" 2>&1
check "and the tick after runs nothing" [ "$(jq '.workflows | length' "$WORK/tick4.json")" -eq 0 ]

N="$WORK/nokey.db" # no API key configured
echo 10.60.0.1 >"$WORK/one.txt"
"$TQ" --db "$N" init >/dev/null
"$TQ" --db "$N" indicator import "$WORK/one.txt" --source Import >/dev/null
"$TQ" --db "$N" collection add bulk --source Import >/dev/null
TQHOST_NOW="$T0" "$TQ" --db "$N" workflow add manual --collection bulk \
  --action rst-ioc-lookup-action --set "base_url=$CLEAN_URL" >/dev/null
TQHOST_NOW="$T0" "$TQ" --db "$N" workflow run manual >/dev/null 2>&1
check "a workflow whose action cannot start exits 1" [ $? -eq 1 ]
act=$("$TQ" --db "$N" --json workflow show manual | jq -r '.activity[0] | "\(.status): \(.error)"')
check "workflow show lists the failed run with its error ($act)" grep -q "^failed: .*api_key" <<<"$act"
"$TQ" --db "$N" workflow show manual >"$WORK/show.txt"
check "workflow show (text) lists it too" grep -A1 -q "rst-ioc-lookup-action  failed" "$WORK/show.txt"

echo "run_control_test: $pass passed, $fail failed"
[ "$fail" -eq 0 ]

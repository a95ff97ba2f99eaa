#!/usr/bin/env bash
# action_test.sh: bulk Actions end to end against rstsim, as a user drives them:
#  1. a fault-free run of N indicators accounts for every item;
#  2. the same run against 10% 429, 2% 500 and 1% truncated answers accounts for every item,
#     fails only with reasons, and writes for each enriched indicator exactly what the
#     fault-free run wrote;
#  3. a run killed with SIGKILL three times at different moments and resumed ends with the
#     same library as the uninterrupted run, and counts that add up to N (nothing redone);
#  4. SIGINT stops a run gracefully ("interrupted"), resume completes it;
#  5. Noise Control over a collection above batch_threshold goes through the batch API;
#  6. errors a user makes (unknown action, collection, setting, run id) are named.
# Usage: action_test.sh TQHOST RSTSIM [SOURCE_DIR]. ACTION_TEST_N sets N (default 10000).
set -u
TQ=${1:?usage: action_test.sh TQHOST RSTSIM [SOURCE_DIR]}
SIM=${2:?usage: action_test.sh TQHOST RSTSIM [SOURCE_DIR]}
SRC=${3:-$(cd "$(dirname "$0")/../.." && pwd)}
N=${ACTION_TEST_N:-10000}
WORK=$(mktemp -d)
export TQHOST_PLUGINS="$SRC/plugins" TQHOST_ACTIONS="$SRC/actions" TQHOST_SCHEMAS="$SRC/schemas"
unset TQHOST_DB TQHOST_NOW TQHOST_KEY_FILE
KEY=sim-key-0123456789abcdef
RATE=(--rate 100000 --concurrency 32)
pass=0
fail=0
SIMS=()

cleanup() {
  for p in "${SIMS[@]}"; do kill "$p" 2>/dev/null; done
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

# start_sim NAME OPTIONS...: starts rstsim, sets ${NAME}_URL.
start_sim() {
  local name=$1
  shift
  "$SIM" --port 0 --seed 11 "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
  SIMS+=($!)
  for _ in $(seq 400); do
    grep -q listening "$WORK/$name.out" 2>/dev/null && break
    sleep 0.05
  done
  local port
  port=$(sed -n 's/.*127\.0\.0\.1:\([0-9]*\).*/\1/p' "$WORK/$name.out")
  [ -n "$port" ] || { echo "rstsim $name did not start"; exit 1; }
  printf -v "${name}_URL" 'http://127.0.0.1:%s/v1' "$port"
}

# The N indicators: IPv4 addresses and domains, some pinned misses.
make_values() {
  python3 - "$N" >"$WORK/values.txt" <<'EOF'
import sys
n = int(sys.argv[1])
for i in range(n):
    if i % 10 == 3:
        print(f"host{i}.notfound.example.net")
    elif i % 2:
        print(f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}")
    else:
        print(f"site{i}.example.org")
EOF
}

# new_db NAME: a library with the N indicators in collection "bulk" and the API key stored.
new_db() {
  local db="$WORK/$1.db"
  "$TQ" --db "$db" init >/dev/null &&
    "$TQ" --db "$db" indicator import "$WORK/values.txt" --source Import >/dev/null &&
    "$TQ" --db "$db" collection add bulk --source Import >/dev/null &&
    "$TQ" --db "$db" plugin configure rst-ioc-lookup "api_key=$KEY" >/dev/null || {
    echo "could not prepare $db"
    exit 1
  }
  echo "$db"
}

# dump DB [main]: what RST IoC Lookup wrote, one "value<TAB>attribute<TAB>value" line each,
# sorted; with "main" only on the imported indicators (not on related ones it created).
dump() {
  local only=""
  [ "${2:-}" = main ] && only="AND o.id IN (SELECT object_id FROM object_sources os
    JOIN sources i ON i.id = os.source_id WHERE i.name = 'Import')"
  sqlite3 -separator $'\t' "$1" "SELECT o.value, a.name, a.value FROM attributes a
    JOIN objects o ON o.id = a.object_id JOIN sources s ON s.id = a.source_id
    WHERE s.name = 'RST IoC Lookup' $only ORDER BY 1, 2, 3"
}
run_counts() { # run_counts DB RUN_ID: "status enriched not_found failed"
  sqlite3 -separator " " "$1" "SELECT status, enriched, not_found, failed FROM runs WHERE id = $2"
}
# past_checkpoint DB PID AFTER: waits until run 1 of DB has committed a checkpoint past object
# id AFTER (the kills below land at moments chosen by progress, not by the clock, so that a busy
# machine cannot make them land before the run started or after it ended); fails if PID ends.
past_checkpoint() {
  local last
  while kill -0 "$2" 2>/dev/null; do
    last=$(sqlite3 "$1" "SELECT last_id FROM runs WHERE id = 1" 2>/dev/null)
    [ -n "$last" ] && [ "$last" -gt "$3" ] && return 0
    sleep 0.05
  done
  return 1
}
sum_is_n() { # sum_is_n "status e nf f"
  local s=($1)
  [ $((s[1] + s[2] + s[3])) -eq "$N" ]
}

make_values
# Noise Control batches are ready after two pending (301) polls: the sandbox has no sleep, so
# at the test's unlimited rate polls come back to back (see docs/actions.md).
start_sim CLEAN --batch-pending-ms 0 --batch-pending-polls 2 --stats
start_sim FAULTY --fault-429 0.1 --fault-500 0.02 --fault-truncate 0.01 --retry-after 0 --stats
start_sim SLOW --latency-ms 20

# --- 1. fault-free --------------------------------------------------------------------------
A=$(new_db clean)
out=$("$TQ" --db "$A" --json action run rst-ioc-lookup-action --collection bulk \
  --set "base_url=$CLEAN_URL" "${RATE[@]}")
check "fault-free run exits 0" [ $? -eq 0 ]
read -r status enriched nf failed < <(jq -r '"\(.status) \(.enriched) \(.not_found) \(.failed)"' <<<"$out")
check "fault-free run is done ($status)" [ "$status" = done ]
check "fault-free run accounts for all $N items" [ $((enriched + nf + failed)) -eq "$N" ]
check "fault-free run has no failure ($failed)" [ "$failed" -eq 0 ]
check "fault-free run found misses ($nf)" [ "$nf" -ge $((N / 10)) ]
dump "$A" >"$WORK/A.tsv"
check "fault-free run wrote attributes" [ -s "$WORK/A.tsv" ]
check "the recorded run holds no API key" \
  bash -c "! sqlite3 '$A' 'SELECT input, settings FROM runs' | grep -q '$KEY'"

# --- 2. faults ----------------------------------------------------------------------------------
B=$(new_db faulty)
out=$("$TQ" --db "$B" --json action run rst-ioc-lookup-action --collection bulk \
  --set "base_url=$FAULTY_URL" "${RATE[@]}")
read -r status enriched nf failed < <(jq -r '"\(.status) \(.enriched) \(.not_found) \(.failed)"' <<<"$out")
check "faulty run is done ($status)" [ "$status" = done ]
check "faulty run accounts for all $N items" [ $((enriched + nf + failed)) -eq "$N" ]
check "truncated bodies fail some items ($failed)" [ "$failed" -gt 0 ]
check "retries hide most faults ($failed of $N failed)" [ "$failed" -lt $((N / 20)) ]
reasons=$(jq -r '.reasons[] | select(.outcome == "failed") | .reason' <<<"$out")
check "failures carry their reason" grep -q "invalid JSON" <<<"$reasons"
items=$(sqlite3 "$B" "SELECT count(*) FROM run_items WHERE run_id = 1")
check "not-found and failed items are recorded ($items)" [ "$items" -eq $((nf + failed)) ]
dump "$B" main >"$WORK/B.tsv"
dump "$A" main >"$WORK/A_main.tsv"
# Every indicator enriched in B has exactly the attributes it has in A.
cut -f1 "$WORK/B.tsv" | sort -u >"$WORK/B.values"
awk -F'\t' 'NR == FNR { want[$1] = 1; next } ($1 in want)' "$WORK/B.values" "$WORK/A_main.tsv" \
  >"$WORK/A_of_B.tsv"
check "enriched indicators identical to the fault-free run" cmp -s "$WORK/A_of_B.tsv" "$WORK/B.tsv"
check "faulty run enriched as many as it says" \
  [ "$(wc -l <"$WORK/B.values")" -eq "$enriched" ]

# --- 3. SIGKILL and resume ---------------------------------------------------------------------
# Fewer in flight than sections 1-2, so that the kills land while the run is still going.
KILL_RATE=(--rate 100000 --concurrency 8)
C=$(new_db killed)
"$TQ" --db "$C" action run rst-ioc-lookup-action --collection bulk --set "base_url=$SLOW_URL" \
  "${KILL_RATE[@]}" >/dev/null 2>&1 &
pid=$!
check "the run to kill commits a checkpoint" past_checkpoint "$C" "$pid" 0
kill -KILL "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
first=$(run_counts "$C" 1)
check "a killed run stays 'running' with a checkpoint ($first)" grep -q '^running' <<<"$first"
for ahead in $((N / 20)) $((N / 6)); do
  last=$(sqlite3 "$C" "SELECT last_id FROM runs WHERE id = 1")
  "$TQ" --db "$C" action resume 1 "${KILL_RATE[@]}" >/dev/null 2>&1 &
  pid=$!
  check "the resumed run to kill progresses" past_checkpoint "$C" "$pid" $((last + ahead))
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
done
"$TQ" --db "$C" action resume 1 "${KILL_RATE[@]}" >"$WORK/resume.out" 2>&1
check "the last resume completes" [ $? -eq 0 ]
final=$(run_counts "$C" 1)
check "resumed run is done ($final)" grep -q '^done' <<<"$final"
check "resumed run counts every item once ($final)" sum_is_n "$final"
dump "$C" >"$WORK/C.tsv"
check "killed and resumed run = uninterrupted run" cmp -s "$WORK/A.tsv" "$WORK/C.tsv"

# --- 4. SIGINT and resume ------------------------------------------------------------------------
D=$(new_db interrupted)
"$TQ" --db "$D" action run rst-ioc-lookup-action --collection bulk --set "base_url=$SLOW_URL" \
  "${RATE[@]}" >"$WORK/int.out" 2>&1 &
pid=$!
check "SIGINT: the run commits a checkpoint first" past_checkpoint "$D" "$pid" 0
kill -INT "$pid"
wait "$pid"
check "SIGINT: exit status 1" [ $? -eq 1 ]
check "SIGINT: the summary says interrupted" grep -q "interrupted" "$WORK/int.out"
check "SIGINT: the summary says how to resume" grep -q "tqhost action resume 1" "$WORK/int.out"
mid=$(run_counts "$D" 1)
check "SIGINT: the run is recorded interrupted ($mid)" grep -q '^interrupted' <<<"$mid"
"$TQ" --db "$D" action resume 1 "${RATE[@]}" >/dev/null 2>&1
check "SIGINT: resume completes" [ $? -eq 0 ]
final=$(run_counts "$D" 1)
check "SIGINT: resumed counts add up ($final)" sum_is_n "$final"
dump "$D" >"$WORK/D.tsv"
check "SIGINT: interrupted and resumed run = uninterrupted run" cmp -s "$WORK/A.tsv" "$WORK/D.tsv"
"$TQ" --db "$D" action resume 1 >/dev/null 2>"$WORK/again.err"
check "resuming a done run is refused" grep -q "done already" "$WORK/again.err"

# --- 5. Noise Control through the batch API ---------------------------------------------------------
"$TQ" --db "$A" plugin configure rst-noise-control "api_key=$KEY" >/dev/null
out=$("$TQ" --db "$A" --json action run rst-noise-control-action --collection bulk \
  --set "base_url=$CLEAN_URL" --set whitelist_on_drop=true "${RATE[@]}")
read -r status enriched nf failed < <(jq -r '"\(.status) \(.enriched) \(.not_found) \(.failed)"' <<<"$out")
check "noise batch run is done ($status $enriched $nf $failed)" [ "$status" = done ]
check "noise batch run accounts for all items" [ $((enriched + nf + failed)) -eq "$N" ]
check "noise batch run has no failure" [ "$failed" -eq 0 ]
kill "${SIMS[0]}" && wait "${SIMS[0]}" 2>/dev/null
check "noise batches went through the batch API" grep -Eq "benign.batch[^0-9]*[1-9]" "$WORK/CLEAN.err"
verdicts=$(sqlite3 "$A" "SELECT count(*) FROM attributes WHERE name = 'RST Noise Control Verdict'")
check "noise batch verdicts written ($verdicts = $enriched)" [ "$verdicts" -eq "$enriched" ]
start_sim CLEAN2
small=$("$TQ" --db "$A" --json action run rst-noise-control-action 8.8.8.8 \
  --set "base_url=$CLEAN2_URL" --set whitelist_on_drop=true)
check "below the threshold: single lookup, Drop verdict" \
  [ "$(jq -r .enriched <<<"$small")" = 1 ]
st=$("$TQ" --db "$A" --json indicator get 8.8.8.8 | jq -r .status)
check "whitelist_on_drop applied ($st)" [ "$st" = Whitelisted ]

# --- 6. user errors ----------------------------------------------------------------------------------
"$TQ" --db "$A" action run no-such-action --collection bulk 2>"$WORK/e1" >/dev/null
check "unknown action: exit 1 and named" grep -q "no action 'no-such-action'" "$WORK/e1"
"$TQ" --db "$A" action run rst-ioc-lookup-action --collection nope 2>"$WORK/e2" >/dev/null
check "unknown collection named" grep -qi "nope" "$WORK/e2"
"$TQ" --db "$A" action run rst-ioc-lookup-action --collection bulk --set colour=red 2>"$WORK/e3"
check "unknown setting named with the list" grep -q "'colour' is not a setting.*update_score" "$WORK/e3"
"$TQ" --db "$A" action run rst-ioc-lookup-action --collection bulk --set update_score=maybe 2>"$WORK/e4"
check "bad setting value named" grep -q "update_score: 'maybe' is not a boolean" "$WORK/e4"
"$TQ" --db "$A" action run rst-ioc-lookup-action 2>"$WORK/e5"
check "no input: usage error 2" [ $? -eq 2 ]
E=$(mktemp -d)
cp "$SRC/actions/rst-ioc-lookup-action.yaml" "$E/"
printf 'name: broken\nlabel: x\nversion: 1\nplugin: rst-ioc-lookup\nentry: lookup\ninput: {object_types: [indicator]}\n' >"$E/broken.yaml"
TQHOST_ACTIONS="$E" "$TQ" action list >/dev/null 2>"$WORK/e6"
check "a bad action file is named with line and column" grep -q "broken.yaml:3:10: version" "$WORK/e6"
rm -rf "$E"
"$TQ" --db "$A" action resume 999 2>"$WORK/e7"
check "unknown run id named" grep -q "no run 999" "$WORK/e7"
runs=$("$TQ" --db "$A" --json action runs | jq length)
check "action runs lists the history ($runs)" [ "$runs" -ge 2 ]

echo "action_test: N=$N, $pass passed, $fail failed"
[ "$fail" -eq 0 ]

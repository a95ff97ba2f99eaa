#!/usr/bin/env bash
# workflow_test.sh: workflows on a schedule, driven through `tqhost workflow tick` with a
# fixed clock (TQHOST_NOW): a workflow runs when due and not before, once per tick however
# many periods it missed, not while disabled; its activity log records each run; tick also
# polls due feeds. Against rstsim on loopback. Usage: workflow_test.sh TQHOST RSTSIM
set -u
TQ=${1:?usage: workflow_test.sh TQHOST RSTSIM}
SIM=${2:?usage: workflow_test.sh TQHOST RSTSIM}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d)
SIMPID=
trap '[ -n "$SIMPID" ] && kill "$SIMPID" 2>/dev/null; rm -rf "$WORK"' EXIT
export TQHOST_DB="$WORK/lib.db" TQHOST_PLUGINS="$SRC/plugins" TQHOST_ACTIONS="$SRC/actions"
unset TQHOST_KEY_FILE TQHOST_NOW
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
# at TIME CMD...: runs tqhost with the clock at TIME; stdout in $out.
at() {
  local when=$1
  shift
  out=$(TQHOST_NOW="$when" "$TQ" "$@" 2>"$WORK/err")
  rc=$?
}
json() { python3 -c "import json,sys; j=json.loads(sys.stdin.read()); print($1)" <<<"$out"; }

"$SIM" --port 0 --hit-ratio 1 --api-key wf-test-key-123 >"$WORK/sim.out" 2>"$WORK/sim.err" &
SIMPID=$!
for _ in $(seq 1 400); do grep -q listening "$WORK/sim.out" 2>/dev/null && break; sleep 0.05; done
PORT=$(sed -n 's/^rstsim listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$WORK/sim.out")
[ -n "$PORT" ] || { echo "FATAL: rstsim did not start"; exit 1; }

T0="2026-03-02 10:00:00" # a Monday
at "$T0" init
at "$T0" plugin configure rst-ioc-lookup api_key=wf-test-key-123 "base_url=http://127.0.0.1:$PORT/v1"
for ip in 198.51.100.1 198.51.100.2 198.51.100.3; do at "$T0" indicator add "$ip"; done
at "$T0" collection add "IPs to enrich" --type "IP Address"

# --- usage and references are checked when the workflow is added ---------------------------
at "$T0" workflow add w --collection "IPs to enrich"
[ "$rc" = 1 ] && grep -q "at least one action" "$WORK/err" && ok || bad "no action refused: $rc"
at "$T0" workflow add w --collection "Nope" --action rst-ioc-lookup-action
[ "$rc" = 1 ] && grep -q "Nope" "$WORK/err" && ok || bad "unknown collection refused"
at "$T0" workflow add w --collection "IPs to enrich" --action rst-ioc-lookup-action --every 5h
[ "$rc" = 2 ] && grep -q "1h, 6h, 24h, 2d, 14d, 30d" "$WORK/err" && ok || bad "bad period refused"
at "$T0" workflow add w --collection "IPs to enrich" --action rst-ioc-lookup-action --daily 25:00
[ "$rc" = 2 ] && ok || bad "bad time refused"

# --- every 1h: due at T0+1h, not before ------------------------------------------------------
at "$T0" workflow add hourly --collection "IPs to enrich" --action rst-ioc-lookup-action --every 1h
[ "$rc" = 0 ] && ok || bad "add hourly: $(cat "$WORK/err")"
at "$T0" --json workflow tick
[ "$(json 'len(j["workflows"])')" = 0 ] && ok || bad "ran at creation: $out"
at "2026-03-02 10:59:59" --json workflow tick
[ "$(json 'len(j["workflows"])')" = 0 ] && ok || bad "ran before due: $out"
at "2026-03-02 11:00:00" --json workflow tick
[ "$(json 'j["workflows"][0]["action"], j["workflows"][0]["status"], j["workflows"][0]["enriched"]')" = \
  "rst-ioc-lookup-action done 3" ] && ok || bad "did not run when due: $out $(cat "$WORK/err")"
at "2026-03-02 11:00:00" --json indicator get 198.51.100.1
[ "$(json 'any(a["source"] == "RST IoC Lookup" for a in j["attributes"])')" = True ] && ok ||
  bad "the run wrote no attributes: $out"
at "2026-03-02 11:30:00" --json workflow tick
[ "$(json 'len(j["workflows"])')" = 0 ] && ok || bad "ran twice in one period: $out"
# missed five periods: runs once, next due an hour after this tick
at "2026-03-02 17:10:00" --json workflow tick
[ "$(json 'len(j["workflows"])')" = 1 ] && ok || bad "missed periods: $out"
at "2026-03-02 17:10:00" --json workflow list
[ "$(json 'j[0]["next_run_at"]')" = "2026-03-02 18:10:00" ] && ok || bad "next after catch-up: $out"
at "2026-03-02 17:10:00" --json workflow show hourly
[ "$(json 'len(j["activity"]), j["activity"][0]["requested"], j["last_run_at"]')" = \
  "2 3 2026-03-02 17:10:00" ] && ok || bad "activity log: $out"

# --- disabled workflows do not run; enabling counts from now ---------------------------------
at "2026-03-02 17:10:00" workflow disable hourly
at "2026-03-02 20:00:00" --json workflow tick
[ "$(json 'len(j["workflows"])')" = 0 ] && ok || bad "disabled ran: $out"
at "2026-03-02 20:00:00" workflow enable hourly
at "2026-03-02 20:30:00" --json workflow tick
[ "$(json 'len(j["workflows"])')" = 0 ] && ok || bad "enable ran missed runs: $out"
at "2026-03-02 21:00:00" --json workflow tick
[ "$(json 'len(j["workflows"])')" = 1 ] && ok || bad "enabled did not run: $out"
at "2026-03-02 21:00:00" workflow delete hourly

# --- daily and weekly ---------------------------------------------------------------------------
at "$T0" workflow add nightly --collection "IPs to enrich" --action rst-ioc-lookup-action --daily 02:30
at "$T0" --json workflow list
[ "$(json 'j[0]["next_run_at"], j[0]["schedule"]')" = "2026-03-03 02:30:00 daily at 02:30 UTC" ] &&
  ok || bad "daily next: $out"
at "$T0" workflow add weekly --collection "IPs to enrich" --action rst-ioc-lookup-action --weekly friday 08:00
at "$T0" --json workflow show weekly
[ "$(json 'j["next_run_at"]')" = "2026-03-06 08:00:00" ] && ok || bad "weekly next: $out"
at "2026-03-03 02:29:00" --json workflow tick
[ "$(json 'len(j["workflows"])')" = 0 ] && ok || bad "daily ran early: $out"
at "2026-03-03 02:30:00" --json workflow tick
[ "$(json '[w["workflow"] for w in j["workflows"]]')" = "['nightly']" ] && ok || bad "daily due: $out"

# --- manual run, and tick polls due feeds -----------------------------------------------------
at "$T0" workflow run weekly
[ "$rc" = 0 ] && grep -q "3 enriched" <<<"$out" && ok || bad "manual run: $out"
at "$T0" feed add hub --discovery "http://127.0.0.1:$PORT/taxii2/" --collection "RST Report Hub" \
  --source "RST Report Hub" --every 1h
[ "$rc" = 0 ] && ok || bad "feed add: $(cat "$WORK/err")"
at "2026-03-03 02:31:00" --json workflow tick
[ "$(json 'len(j["feeds"]), j["feeds"][0]["status"]')" = "1 done" ] && ok || bad "tick polls feed: $out"
at "2026-03-03 02:40:00" --json workflow tick
[ "$(json 'len(j["feeds"])')" = 0 ] && ok || bad "feed polled before its period: $out"

echo "workflow_test: $pass passed, $fail failed"
[ "$fail" -eq 0 ]

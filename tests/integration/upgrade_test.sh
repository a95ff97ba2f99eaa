#!/usr/bin/env bash
# upgrade_test.sh: a library made before feed/ and workflow/ owned their tables (the fixture
# tests/data/old-library/old-v4.sql, made by make.sh with the tqhost of that time: schema
# version 4, feed and workflow tables made by library/schema.c, no tq_parts rows for them)
# opens with this tqhost, keeps its feeds, workflows and runs, and they still work: the
# workflow runs again, a run is added, the feed keeps its checkpoint, a new feed polls.
# Usage: upgrade_test.sh TQHOST RSTSIM
set -u
TQ=${1:?usage: upgrade_test.sh TQHOST RSTSIM}
SIM=${2:?usage: upgrade_test.sh TQHOST RSTSIM}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d)
SIMPID=
trap '[ -n "$SIMPID" ] && kill "$SIMPID" 2>/dev/null; rm -rf "$WORK"' EXIT
export TQHOST_DB="$WORK/lib.db" TQHOST_PLUGINS="$SRC/plugins" TQHOST_ACTIONS="$SRC/actions"
export TQHOST_SCHEMAS="$SRC/schemas" TQHOST_KEY_FILE="$WORK/lib.key"
unset TQHOST_NOW
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
run() {
  out=$("$TQ" "$@" 2>"$WORK/err")
  rc=$?
}
json() { python3 -c "import json,sys; j=json.loads(sys.stdin.read()); print($1)" <<<"$out"; }
sql() { python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); print('|'.join(str(r) for r in c.execute(sys.argv[2]).fetchall()))" "$TQHOST_DB" "$1"; }

python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.executescript(open(sys.argv[2]).read()); c.close()" \
  "$TQHOST_DB" "$SRC/tests/data/old-library/old-v4.sql" || { echo "FATAL: fixture"; exit 1; }
[ "$(sql "SELECT count(*) FROM sqlite_master WHERE name='tq_parts'")" = "(0,)" ] && ok ||
  bad "the fixture is not an old library"

"$SIM" --port 0 --hit-ratio 1 --api-key up-key-123 --taxii-objects 30 >"$WORK/sim.out" 2>"$WORK/sim.err" &
SIMPID=$!
for _ in $(seq 1 400); do grep -q listening "$WORK/sim.out" 2>/dev/null && break; sleep 0.05; done
PORT=$(sed -n 's/^rstsim listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$WORK/sim.out")
[ -n "$PORT" ] || { echo "FATAL: rstsim did not start"; exit 1; }

# --- the old rows are there after the upgrade ------------------------------------------------
run --json workflow list
[ "$rc" = 0 ] && [ "$(json 'j[0]["name"], j[0]["collection"], j[0]["schedule"], j[0]["last_run_at"]')" = \
  "oldwf old ips every 6h 2026-03-02 10:00:00" ] && ok || bad "workflow lost: $rc $out $(cat "$WORK/err")"
run --json feed list
[ "$rc" = 0 ] && [ "$(json 'j[0]["name"], j[0]["checkpoint"], j[0]["last_state"], j[0]["last_summary"]["objects"]')" = \
  "oldfeed 2025-10-03T00:00:39.308841Z ok 40" ] && ok || bad "feed lost: $rc $out $(cat "$WORK/err")"
run --json action runs
[ "$rc" = 0 ] && [ "$(json '[(r["id"], r["status"], r["enriched"]) for r in j]')" = "[(2, 'done', 2), (1, 'done', 4)]" ] &&
  ok || bad "runs lost: $rc $out $(cat "$WORK/err")"
run --json workflow show oldwf
[ "$(json 'len(j["activity"]), j["activity"][0]["enriched"]')" = "1 4" ] && ok || bad "activity lost: $out"
# the parts now own them, at their current level, and the library's version is unchanged
[ "$(sql "SELECT name FROM tq_parts WHERE name IN ('feed','workflow') ORDER BY name")" = "('feed',)|('workflow',)" ] &&
  ok || bad "parts not recorded: $(sql 'SELECT * FROM tq_parts')"
[ "$(sql 'PRAGMA user_version')" = "(4,)" ] && ok || bad "library version changed: $(sql 'PRAGMA user_version')"

# --- and they work ----------------------------------------------------------------------------
run plugin configure rst-ioc-lookup api_key=up-key-123 "base_url=http://127.0.0.1:$PORT/v1"
[ "$rc" = 0 ] && ok || bad "configure: $(cat "$WORK/err")"
run --json workflow run oldwf
[ "$rc" = 0 ] && ok || bad "old workflow run: $rc $out $(cat "$WORK/err")"
run --json action runs
# (the feed's poll added IP indicators to the collection: 13 in all)
[ "$(json 'j[0]["id"], j[0]["status"], j[0]["enriched"], j[0]["total"], j[0].get("workflow_id")')" = "3 done 13 13 1" ] && ok ||
  bad "new run after the upgrade: $out"
run --json workflow show oldwf
[ "$(json 'len(j["activity"])')" = 2 ] && ok || bad "activity after the upgrade: $out"
run action run rst-ioc-lookup-action 198.51.100.3
[ "$rc" = 0 ] && ok || bad "action run: $rc $(cat "$WORK/err")"
run feed add newfeed --preset rst-high --discovery "http://127.0.0.1:$PORT/taxii2/" --page-size 100
[ "$rc" = 0 ] && ok || bad "feed add: $(cat "$WORK/err")"
run --json feed poll newfeed
[ "$rc" = 0 ] && [ "$(json 'j["objects"]')" = 30 ] && ok || bad "feed poll: $rc $out $(cat "$WORK/err")"
run --json feed show oldfeed
[ "$(json 'j["checkpoint"]')" = "2025-10-03T00:00:39.308841Z" ] && ok || bad "old checkpoint: $out"
run workflow delete oldwf
[ "$rc" = 0 ] && [ "$(sql 'SELECT count(*) FROM workflows')" = "(0,)" ] && ok || bad "delete: $(cat "$WORK/err")"

# --- a second open changes nothing ------------------------------------------------------------
before=$(sql "SELECT name, version FROM tq_parts ORDER BY name")
run --json workflow list
[ "$(sql "SELECT name, version FROM tq_parts ORDER BY name")" = "$before" ] && ok || bad "second open"

echo "upgrade_test: $pass passed, $fail failed"
[ "$fail" = 0 ]

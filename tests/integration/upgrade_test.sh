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
[ "$rc" = 0 ] && [ "$(json 'j[0]["name"], j[0]["checkpoint"], j[0]["state"], j[0]["counts"]["objects"]')" = \
  "oldfeed 2025-10-03T00:00:39.308841Z ok 40" ] && ok || bad "feed lost: $rc $out $(cat "$WORK/err")"
run --json action runs
[ "$rc" = 0 ] && [ "$(json '[(r["id"], r["status"], r["enriched"]) for r in j]')" = "[(2, 'done', 2), (1, 'done', 4)]" ] &&
  ok || bad "runs lost: $rc $out $(cat "$WORK/err")"
run --json workflow show oldwf
[ "$(json 'len(j["activity"]), j["activity"][0]["enriched"]')" = "1 4" ] && ok || bad "activity lost: $out"
# the parts now own them, at their current level, and the library's version is unchanged
[ "$(sql "SELECT name FROM tq_parts WHERE name IN ('feed','workflow') ORDER BY name")" = "('feed',)|('workflow',)" ] &&
  ok || bad "parts not recorded: $(sql 'SELECT * FROM tq_parts')"
# the library's own version is the one a new library gets (its later migrations ran)
FRESH=$(TQHOST_DB="$WORK/fresh.db" "$TQ" init >/dev/null 2>&1 &&
  python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('PRAGMA user_version').fetchone()[0])" "$WORK/fresh.db")
[ "$(sql 'PRAGMA user_version')" = "($FRESH,)" ] && ok || bad "library version: $(sql 'PRAGMA user_version') not $FRESH"

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

# --- a library from before schema version 4 (runs without skipped/owner/retry_of) -----------
# The same fixture taken back to version 3's shape, as library/schema.c's migration 3 left it.
export TQHOST_DB="$WORK/v3.db"
python3 - "$TQHOST_DB" "$SRC/tests/data/old-library/old-v4.sql" <<'PY' || bad "v3 fixture"
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.executescript(open(sys.argv[2]).read())
c.executescript("""
CREATE TABLE runs3(id INTEGER PRIMARY KEY, action TEXT NOT NULL,
 workflow_id INTEGER REFERENCES workflows(id) ON DELETE SET NULL,
 status TEXT NOT NULL CHECK(status IN ('running','done','interrupted','failed')),
 input TEXT NOT NULL, settings TEXT NOT NULL DEFAULT '{}',
 concurrency INTEGER NOT NULL DEFAULT 0, last_id INTEGER NOT NULL DEFAULT 0,
 total INTEGER NOT NULL DEFAULT 0, enriched INTEGER NOT NULL DEFAULT 0,
 not_found INTEGER NOT NULL DEFAULT 0, failed INTEGER NOT NULL DEFAULT 0,
 started_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, finished_at INTEGER,
 seconds REAL NOT NULL DEFAULT 0, error TEXT);
INSERT INTO runs3 SELECT id, action, workflow_id, status, input, settings, concurrency, last_id,
 total, enriched, not_found, failed, started_at, updated_at, finished_at, seconds, error FROM runs;
DROP TABLE runs; ALTER TABLE runs3 RENAME TO runs;
CREATE INDEX runs_by_workflow ON runs(workflow_id, id);
DROP TABLE run_items;
CREATE TABLE run_items(run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
 object_id INTEGER NOT NULL, outcome TEXT NOT NULL CHECK(outcome IN ('not_found','failed')),
 reason TEXT NOT NULL DEFAULT '', PRIMARY KEY(run_id, object_id)) WITHOUT ROWID;
INSERT INTO run_items VALUES(2, 1, 'failed', 'HTTP 500');
PRAGMA user_version=3;
""")
c.close()
PY
run --json action runs
[ "$rc" = 0 ] && [ "$(json '[(r["id"], r["status"], r["skipped"]) for r in j]')" = "[(2, 'done', 0), (1, 'done', 0)]" ] &&
  ok || bad "v3 runs: $rc $out $(cat "$WORK/err")"
[ "$(sql "SELECT count(*) FROM pragma_table_info('runs') WHERE name IN ('skipped','owner','retry_of','origin','cancelled')")" = "(5,)" ] &&
  ok || bad "v3 runs not brought up: $(sql "SELECT name FROM pragma_table_info('runs')")"
[ "$(sql "SELECT outcome, reason FROM run_items")" = "('failed', 'HTTP 500')" ] && ok || bad "v3 run_items lost"
[ "$(sql 'PRAGMA user_version')" = "($FRESH,)" ] && ok || bad "v3 library version: $(sql 'PRAGMA user_version')"
run plugin configure rst-ioc-lookup api_key=up-key-123 "base_url=http://127.0.0.1:$PORT/v1"
run action run rst-ioc-lookup-action 198.51.100.4
[ "$rc" = 0 ] && ok || bad "action run on the v3 library: $rc $(cat "$WORK/err")"

echo "upgrade_test: $pass passed, $fail failed"
[ "$fail" = 0 ]

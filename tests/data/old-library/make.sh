#!/usr/bin/env bash
# make.sh: builds old-v4.sql, a library made by tqhost before feed/ and workflow/ owned their
# tables (library schema version 4, every table made by library/schema.c, no tq_parts rows for
# "feed" or "workflow"). Run once with the tqhost of that time (commit 0fbfa00 of main) and
# rstsim; the dump is committed and replayed by tests/integration/upgrade_test.sh.
# Usage: make.sh OLD_TQHOST RSTSIM
set -eu
TQ=${1:?usage: make.sh OLD_TQHOST RSTSIM}
SIM=${2:?usage: make.sh OLD_TQHOST RSTSIM}
SRC=$(cd "$(dirname "$0")/../../.." && pwd)
OUT=$(cd "$(dirname "$0")" && pwd)/old-v4.sql
WORK=$(mktemp -d)
trap 'kill $SIMPID 2>/dev/null; rm -rf "$WORK"' EXIT
export TQHOST_DB="$WORK/lib.db" TQHOST_PLUGINS="$SRC/plugins" TQHOST_ACTIONS="$SRC/actions"
export TQHOST_KEY_FILE="$WORK/lib.key"
export TQHOST_SCHEMAS="$SRC/schemas"
"$SIM" --port 0 --hit-ratio 1 --api-key old-lib-key-123 --taxii-objects 40 >"$WORK/sim.out" 2>&1 &
SIMPID=$!
for _ in $(seq 1 400); do grep -q listening "$WORK/sim.out" && break; sleep 0.05; done
PORT=$(sed -n 's/^rstsim listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$WORK/sim.out")
export TQHOST_NOW="2026-03-02 10:00:00"
"$TQ" init
"$TQ" plugin configure rst-ioc-lookup api_key=old-lib-key-123 "base_url=http://127.0.0.1:$PORT/v1"
for ip in 198.51.100.1 198.51.100.2 198.51.100.3 198.51.100.4; do "$TQ" indicator add "$ip"; done
"$TQ" collection add "old ips" --type "IP Address"
"$TQ" workflow add oldwf --collection "old ips" --action rst-ioc-lookup-action --every 6h
"$TQ" workflow run oldwf
"$TQ" action run rst-ioc-lookup-action 198.51.100.1 198.51.100.2
"$TQ" feed add oldfeed --preset rst-high --discovery "http://127.0.0.1:$PORT/taxii2/" --page-size 100
"$TQ" feed poll oldfeed
sqlite3 "$WORK/lib.db" .dump >"$OUT"
# .dump leaves out the header fields that say "a tqhost library at schema version N"
echo "PRAGMA application_id=$(sqlite3 "$WORK/lib.db" 'PRAGMA application_id');" >>"$OUT"
echo "PRAGMA user_version=$(sqlite3 "$WORK/lib.db" 'PRAGMA user_version');" >>"$OUT"
echo "wrote $OUT"

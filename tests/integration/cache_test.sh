#!/usr/bin/env bash
# cache_test.sh: the HTTP response cache as a user meets it, against rstsim (ctest
# integration.cache): a dry run (`op run` without --apply, `action run --dry-run`) reads the
# cache but leaves http_cache as it was; a run that writes fills it, and the next identical
# lookup is answered from it. Usage: cache_test.sh TQHOST RSTSIM
set -u
TQ=${1:?usage: cache_test.sh path/to/tqhost path/to/rstsim}
SIM=${2:?usage: cache_test.sh path/to/tqhost path/to/rstsim}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d)
PIDS=()
FAILS=0
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$WORK"' EXIT

KEY='sim-secret-cache-7d1e'
export TQHOST_DB="$WORK/lib.db" TQHOST_PLUGINS="$SRC/plugins" TQHOST_ACTIONS="$SRC/actions"
export TQHOST_SCHEMAS="$SRC/schemas"
unset TQHOST_KEY_FILE TQHOST_NOW

fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }
pass() { echo "ok:   $*"; }
run() { # run WHAT CMD...: must exit 0
  local what=$1; shift
  if "$@" >"$WORK/out" 2>&1; then pass "$what"; else fail "$what"; sed 's/^/    /' "$WORK/out" | head -20; fi
}
rows() { python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT count(*) FROM http_cache").fetchone()[0])' "$TQHOST_DB"; }
expect_rows() { # expect_rows WHAT N
  local n; n=$(rows)
  if [[ $n == "$2" ]]; then pass "$1 ($n rows)"; else fail "$1: http_cache has $n rows, wanted $2"; fi
}

"$SIM" --port 0 --hit-ratio 1 --api-key "$KEY" >"$WORK/sim.out" 2>"$WORK/sim.err" &
PIDS+=("$!")
for _ in $(seq 1 100); do grep -q listening "$WORK/sim.out" 2>/dev/null && break; sleep 0.05; done
line=$(head -n1 "$WORK/sim.out")
[[ $line =~ ^rstsim\ listening\ on\ 127\.0\.0\.1:([0-9]+)$ ]] || { echo "FATAL: rstsim did not start: $line"; exit 1; }
URL="http://127.0.0.1:${BASH_REMATCH[1]}/v1"

"$TQ" init >/dev/null || { echo "FATAL: tqhost init"; exit 1; }
run "configure the IoC Lookup" "$TQ" plugin configure rst-ioc-lookup "api_key=$KEY" "base_url=$URL"

run "op run without --apply (a dry run)" "$TQ" op run rst-ioc-lookup 45.83.122.166
expect_rows "a dry op run writes nothing to the cache" 0
run "op run --apply" "$TQ" op run rst-ioc-lookup 45.83.122.166 --apply
expect_rows "an applied op run caches its lookup" 1
run "the same op run again" "$TQ" op run rst-ioc-lookup 45.83.122.166 --apply
expect_rows "the same lookup is answered from the cache" 1

run "action run" "$TQ" action run rst-whois-api-action malware-cdn.example.net example-one.net \
  --set "api_key=$KEY" --set "base_url=$URL"
expect_rows "an action run caches its lookups" 3
python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute("DELETE FROM http_cache"); c.commit()' "$TQHOST_DB"
run "action dry run (the values are in the library now)" "$TQ" action run rst-whois-api-action \
  malware-cdn.example.net example-one.net --set "api_key=$KEY" --set "base_url=$URL" --dry-run
expect_rows "an action dry run writes nothing to the cache" 0

if [[ $FAILS == 0 ]]; then echo "cache_test: all passed"; else echo "cache_test: $FAILS failed"; fi
exit $((FAILS > 0))

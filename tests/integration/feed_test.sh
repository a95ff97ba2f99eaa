#!/usr/bin/env bash
# feed_test.sh: TAXII feeds end to end against rstsim's TAXII 2.1 server: a poll killed with
# SIGKILL at random points and polled again ends with exactly the library of an uninterrupted
# poll (nothing lost, nothing twice); wrong credentials and an unreachable collection are clear
# errors; TLS with the test CA works and without it is refused; a pass cut short exits 3 and
# shows "incomplete" until a poll finishes it; medallion's constant `next` is walked to the end;
# an HTTPS server that points at http:// (API root or redirect) is refused before credentials
# travel in clear. Usage: feed_test.sh TQHOST RSTSIM
set -u
TQ=${1:?usage: feed_test.sh TQHOST RSTSIM}
SIM=${2:?usage: feed_test.sh TQHOST RSTSIM}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$WORK"' EXIT
unset TQHOST_NOW TQHOST_KEY_FILE
N=${FEED_TEST_N:-10000}
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }

# start NAME OPTIONS...: rstsim on a free port; sets PORT.
start() {
  local name=$1
  shift
  "$SIM" --port 0 "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
  PIDS+=("$!")
  for _ in $(seq 1 400); do grep -q listening "$WORK/$name.out" 2>/dev/null && break; sleep 0.05; done
  PORT=$(sed -n 's/^rstsim listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$WORK/$name.out")
  [ -n "$PORT" ] || { echo "FATAL: rstsim $name did not start: $(cat "$WORK/$name.err")"; exit 1; }
}

# snapshot DB: every indicator with its sources and attributes, sorted, as text.
snapshot() {
  sqlite3 "$1" "SELECT o.type, coalesce(t.name,''), o.value, o.status, o.score,
      (SELECT group_concat(s.name, '|') FROM (SELECT s.name FROM object_sources os JOIN sources s
        ON s.id=os.source_id WHERE os.object_id=o.id ORDER BY s.name) s),
      (SELECT group_concat(a.name || '=' || a.value, '|') FROM (SELECT name, value FROM attributes
        WHERE object_id=o.id ORDER BY name, value) a),
      (SELECT count(*) FROM links l WHERE l.a=o.id OR l.b=o.id)
    FROM objects o LEFT JOIN indicator_types t ON t.id=o.itype_id ORDER BY 1,2,3"
}

# --- SIGKILL in the middle of polls --------------------------------------------------------
start slow --taxii-objects "$N" --latency-ms 40 --taxii-page-max 200
URL="http://127.0.0.1:$PORT/taxii2/"
for db in ref killed; do
  TQHOST_DB="$WORK/$db.db" "$TQ" init >/dev/null
  TQHOST_DB="$WORK/$db.db" "$TQ" feed add high --preset rst-high --discovery "$URL" \
    --page-size 200 >/dev/null || bad "feed add ($db)"
done
TQHOST_DB="$WORK/ref.db" "$TQ" feed poll high >"$WORK/ref.poll" 2>&1 || bad "reference poll: $(cat "$WORK/ref.poll")"
kills=0
for delay in 0.4 0.9 0.6; do
  TQHOST_DB="$WORK/killed.db" "$TQ" feed poll high >/dev/null 2>&1 &
  pid=$!
  sleep "$delay"
  if kill -9 "$pid" 2>/dev/null; then kills=$((kills + 1)); fi
  wait "$pid" 2>/dev/null
done
[ "$kills" -ge 2 ] && ok || bad "the polls finished before they could be killed ($kills kills)"
TQHOST_DB="$WORK/killed.db" "$TQ" feed poll high >"$WORK/killed.poll" 2>&1 ||
  bad "poll after kills: $(cat "$WORK/killed.poll")"
snapshot "$WORK/ref.db" >"$WORK/ref.snap"
snapshot "$WORK/killed.db" >"$WORK/killed.snap"
[ -s "$WORK/ref.snap" ] && ok || bad "reference library is empty"
if cmp -s "$WORK/ref.snap" "$WORK/killed.snap"; then ok; else
  bad "killed+resumed library differs from the uninterrupted one:"
  diff "$WORK/ref.snap" "$WORK/killed.snap" | head -10
fi
seen_ref=$(sqlite3 "$WORK/ref.db" "SELECT count(*) FROM stix_seen")
seen_killed=$(sqlite3 "$WORK/killed.db" "SELECT count(*) FROM stix_seen")
[ "$seen_ref" = "$seen_killed" ] && ok || bad "stix_seen $seen_ref vs $seen_killed"
# a second poll of a complete feed adds nothing
TQHOST_DB="$WORK/killed.db" "$TQ" --json feed poll high >"$WORK/again.json" 2>&1
snapshot "$WORK/killed.db" >"$WORK/again.snap"
cmp -s "$WORK/ref.snap" "$WORK/again.snap" && ok || bad "re-poll changed the library"

# --- credentials ---------------------------------------------------------------------------
start auth --taxii-objects 50 --taxii-user alice --taxii-password s3cret-pass
export TQHOST_DB="$WORK/auth.db"
"$TQ" init >/dev/null
"$TQ" feed add a --discovery "http://127.0.0.1:$PORT/taxii2/" --collection "RST Report Hub" \
  --source Hub --username alice --password-env FEED_TEST_PW >/dev/null
FEED_TEST_PW=wrong "$TQ" feed poll a >"$WORK/o" 2>&1
rc=$?
[ "$rc" = 1 ] && grep -q "401" "$WORK/o" && ok || bad "wrong password: rc $rc: $(cat "$WORK/o")"
grep -q "wrong" "$WORK/o" && bad "the password was printed" || ok
FEED_TEST_PW=s3cret-pass "$TQ" feed poll a >"$WORK/o" 2>&1 && ok || bad "right password: $(cat "$WORK/o")"
grep -q "s3cret-pass" "$TQHOST_DB" && bad "the password was stored" || ok

# --- TLS with and without the CA -------------------------------------------------------------
bash "$SRC/tests/sim/certs/make_certs.sh" "$WORK/certs"
start tls --taxii-objects 50 --tls-cert "$WORK/certs/server.pem" --tls-key "$WORK/certs/server.key"
export TQHOST_DB="$WORK/tls.db"
"$TQ" init >/dev/null
"$TQ" feed add noca --discovery "https://127.0.0.1:$PORT/taxii2/" --collection "RST Report Hub" \
  --source Hub >/dev/null
"$TQ" feed add withca --discovery "https://127.0.0.1:$PORT/taxii2/" --collection "RST Report Hub" \
  --source Hub --ca-file "$WORK/certs/ca.pem" >/dev/null
"$TQ" feed poll noca >"$WORK/o" 2>&1
rc=$?
[ "$rc" = 1 ] && grep -Eqi "tls|certificate" "$WORK/o" && ok || bad "TLS without the CA: rc $rc: $(cat "$WORK/o")"
"$TQ" feed poll withca >"$WORK/o" 2>&1 && ok || bad "TLS with the CA: $(cat "$WORK/o")"

# --- an incomplete pass: exit 3, "incomplete", the next poll finishes ---------------------------
start inc --taxii-objects 300 --taxii-page-max 100
export TQHOST_DB="$WORK/inc.db"
"$TQ" init >/dev/null
"$TQ" feed add inc --preset rst-high --discovery "http://127.0.0.1:$PORT/taxii2/" \
  --page-size 100 >/dev/null
"$TQ" feed poll inc --max-pages 1 >"$WORK/o" 2>&1
rc=$?
[ "$rc" = 3 ] && grep -q "incomplete" "$WORK/o" && ok || bad "capped poll: rc $rc: $(cat "$WORK/o")"
"$TQ" feed show inc | grep -q "last poll    incomplete" && ok || bad "show after a capped poll: $("$TQ" feed show inc)"
[ "$("$TQ" --json feed show inc | jq -r .state)" = incomplete ] && ok || bad "json state"
"$TQ" feed poll inc >"$WORK/o" 2>&1 && ok || bad "poll after the capped one: $(cat "$WORK/o")"
"$TQ" feed show inc | grep -q "last poll    ok" && ok || bad "show after the full poll: $("$TQ" feed show inc)"
inc_seen=$(sqlite3 "$TQHOST_DB" "SELECT count(*) FROM stix_seen")

# --- medallion's constant next: every page walked, the same library as stateless cursors -------
start med --taxii-objects 300 --taxii-page-max 100 --taxii-medallion-next
export TQHOST_DB="$WORK/med.db"
"$TQ" init >/dev/null
"$TQ" feed add med --preset rst-high --discovery "http://127.0.0.1:$PORT/taxii2/" \
  --page-size 50 >/dev/null
"$TQ" --json feed poll med >"$WORK/med.json" 2>"$WORK/med.err"
rc=$?
[ "$rc" = 0 ] && [ "$(jq -r .complete "$WORK/med.json")" = true ] && ok ||
  bad "medallion poll: rc $rc: $(cat "$WORK/med.err") $(jq -c '{pages,stopped}' "$WORK/med.json")"
[ "$(jq -r .pages "$WORK/med.json")" -gt 2 ] && ok || bad "medallion poll stopped after $(jq -r .pages "$WORK/med.json") pages"
med_seen=$(sqlite3 "$TQHOST_DB" "SELECT count(*) FROM stix_seen")
[ "$med_seen" = "$inc_seen" ] && ok || bad "medallion walk saw $med_seen versions, stateless $inc_seen"

# --- HTTPS that points at plain HTTP is refused, credentials never sent in clear ---------------
for mode in api-root redirect; do
  start "down-$mode" --taxii-objects 20 --tls-cert "$WORK/certs/server.pem" \
    --tls-key "$WORK/certs/server.key" --taxii-downgrade "$mode" --taxii-user alice \
    --taxii-password s3cret-pass
  export TQHOST_DB="$WORK/down-$mode.db"
  "$TQ" init >/dev/null
  "$TQ" feed add down --discovery "https://127.0.0.1:$PORT/taxii2/" --collection "RST Report Hub" \
    --source Hub --ca-file "$WORK/certs/ca.pem" --username alice --password-env FEED_TEST_PW >/dev/null
  FEED_TEST_PW=s3cret-pass "$TQ" feed poll down >"$WORK/o" 2>&1
  rc=$?
  case $mode in
  api-root) want="is not HTTPS: refused" ;;
  redirect) want="redirect from https to http" ;;
  esac
  [ "$rc" = 1 ] && grep -q "$want" "$WORK/o" && ok || bad "downgrade by $mode: rc $rc: $(cat "$WORK/o")"
done

echo "feed_test: $pass passed, $fail failed"
[ "$fail" -eq 0 ]

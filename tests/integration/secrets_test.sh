#!/usr/bin/env bash
# secrets_test.sh: secrets at rest and in output, driven as a user would against rstsim on
# loopback (rstsim checks X-Api-Key): workflow and run settings of password fields are sealed
# in the library and masked in every output, yet the runs use them; `plugin configure` reads
# a secret from stdin or the environment. Usage: secrets_test.sh TQHOST RSTSIM
set -u
TQ=${1:?usage: secrets_test.sh path/to/tqhost path/to/rstsim}
SIM=${2:?usage: secrets_test.sh path/to/tqhost path/to/rstsim}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d)
PIDS=()
FAILS=0
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$WORK"' EXIT

KEY='wf-Secret-Key-7d3e91b0'
export TQHOST_DB="$WORK/lib.db" TQHOST_PLUGINS="$SRC/plugins" TQHOST_ACTIONS="$SRC/actions"
unset TQHOST_KEY_FILE TQHOST_NOW TQHOST_LOG

fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }
pass() { echo "ok:   $*"; }
# expect WHAT RC CMD...: runs CMD (stdout+stderr in $WORK/out), passes when its status is RC.
expect() {
  local what=$1 want=$2; shift 2
  "$@" >"$WORK/out" 2>&1
  local rc=$?
  cat "$WORK/out" >>"$WORK/all"
  if [[ $rc == "$want" ]]; then pass "$what"; else fail "$what (exit $rc, wanted $want)"; sed 's/^/    /' "$WORK/out" | head -20; fi
}
has() { if grep -Eq -- "$2" "$WORK/out"; then pass "$1"; else fail "$1: no /$2/ in:"; sed 's/^/    /' "$WORK/out" | head -20; fi; }
hasnt() { if grep -Eq -- "$2" "$WORK/out"; then fail "$1: /$2/ found in:"; sed 's/^/    /' "$WORK/out" | head -20; else pass "$1"; fi; }
# at_rest WHAT: no file of the library (database, WAL, journal) holds the key in clear.
at_rest() {
  if grep -aqi -- "$KEY" "$TQHOST_DB"*; then fail "$1: the key is in clear in $(grep -ali -- "$KEY" "$TQHOST_DB"* | tr '\n' ' ')"; else pass "$1"; fi
}
json() { python3 -c "import json,sys; j=json.load(open('$WORK/out')); print($1)"; }
sql() { python3 -c "import sqlite3,sys; c=sqlite3.connect('$TQHOST_DB'); r=c.execute(sys.argv[1]).fetchall(); c.commit(); print(r[0][0] if r else '')" "$1"; }

"$SIM" --port 0 --hit-ratio 1 --api-key "$KEY" >"$WORK/sim.out" 2>"$WORK/sim.err" &
PIDS+=("$!")
for _ in $(seq 1 100); do grep -q listening "$WORK/sim.out" 2>/dev/null && break; sleep 0.05; done
PORT=$(sed -n 's/^rstsim listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$WORK/sim.out")
[ -n "$PORT" ] || { echo "FATAL: rstsim did not start"; exit 1; }
URL="http://127.0.0.1:$PORT/v1"

"$TQ" init >/dev/null || { echo "FATAL: tqhost init"; exit 1; }
# The plugin gets its URL but no key: the workflow's and the run's settings bring it.
expect "configure the url only" 0 "$TQ" plugin configure rst-ioc-lookup "base_url=$URL"
for ip in 198.51.100.1 198.51.100.2 198.51.100.3; do "$TQ" indicator add "$ip" >/dev/null; done
"$TQ" collection add "IPs" --type "IP Address" >/dev/null

# ---- 1. workflow settings: sealed at rest, masked in output, used by the run ---------------
expect "workflow add with a password setting" 0 "$TQ" workflow add wf --collection IPs \
  --action rst-ioc-lookup-action --set "api_key=$KEY" --set update_score=yes
hasnt "workflow add does not print the key" "$KEY"
has "workflow add shows the key masked" '"api_key":"\*{8}"'
has "workflow add shows plain settings, checked by type" '"update_score":"true"'
at_rest "the workflow's key is sealed at rest"
[[ $(sql "select json_extract(settings,'$.api_key.sealed') from workflows where name='wf'") == sb1:* ]] &&
  pass "the workflow's key is stored in the sealed form" || fail "no sealed form: $(sql 'select settings from workflows')"
expect "workflow add --json" 0 "$TQ" --json workflow add wf2 --collection IPs \
  --action rst-ioc-lookup-action --set "api_key=$KEY"
hasnt "workflow add --json does not print the key" "$KEY"
[[ $(json 'j["settings"]["api_key"]') == '********' ]] && pass "--json shows the mask" || fail "--json settings: $(cat "$WORK/out")"
expect "workflow show" 0 "$TQ" workflow show wf
hasnt "workflow show does not print the key" "$KEY"
has "workflow show masks the key" "api_key=\*{8}"
expect "workflow show --json" 0 "$TQ" --json workflow show wf
hasnt "workflow show --json does not print the key" "$KEY"
expect "workflow list --json" 0 "$TQ" --json workflow list
hasnt "workflow list --json does not print the key" "$KEY"
expect "workflow run uses the sealed key (rstsim checks it)" 0 "$TQ" workflow run wf
has "the run enriched every item" "3 enriched"
hasnt "workflow run does not print the key" "$KEY"
expect "a setting that no action has is refused at add" 1 "$TQ" workflow add wf3 --collection IPs \
  --action rst-ioc-lookup-action --set api_kye=x
has "the unknown setting is named" "api_kye"
expect "(a workflow with a wrong key)" 0 "$TQ" workflow add wrong --collection IPs \
  --action rst-ioc-lookup-action --set "api_key=not-the-key-000"
expect "(run it: every item fails, exit 1)" 1 "$TQ" workflow run wrong
has "a wrong key enriches nothing: the settings' key is what the server checks" " 0 enriched, 0 not found, 3 failed"
at_rest "after the workflow runs, still nothing in clear"

# ---- 1. run settings: an action run's --set password is recorded sealed, a resume opens it --
expect "action run --set api_key" 0 "$TQ" action run rst-ioc-lookup-action --collection IPs \
  --set "api_key=$KEY"
hasnt "action run does not print the key" "$KEY"
at_rest "the run's recorded settings hold no clear key"
RUN=$(sql "select max(id) from runs")
[[ $(sql "select json_extract(settings,'$.api_key.sealed') from runs where id=$RUN") == sb1:* ]] &&
  pass "the run records its key sealed" || fail "run settings: $(sql "select settings from runs where id=$RUN")"
# Make it look interrupted before its first item: the resume needs the recorded key.
sql "update runs set status='interrupted', last_id=0, enriched=0, not_found=0, failed=0 where id=$RUN" >/dev/null
expect "action resume opens the recorded key" 0 "$TQ" action resume "$RUN"
has "the resumed run enriched every item" "enriched +3"
expect "action runs" 0 "$TQ" --json action runs
hasnt "action runs does not print the key" "$KEY"
at_rest "after the resume, still nothing in clear"

# ---- 3. a secret from stdin or the environment, not argv ----------------------------------
expect "configure api_key=- with nothing on stdin is refused" 2 "$TQ" plugin configure rst-ioc-lookup "api_key=-" </dev/null
has "the empty stdin is named" "api_key=-: no line to read on stdin"
expect "configure api_key=env:NAME of an unset variable is refused" 2 env -u TQ_NO_SUCH_VAR \
  "$TQ" plugin configure rst-ioc-lookup "api_key=env:TQ_NO_SUCH_VAR"
has "the missing variable is named" "api_key=env:TQ_NO_SUCH_VAR: the environment variable TQ_NO_SUCH_VAR is not set"
expect "two values from stdin are refused" 2 "$TQ" plugin configure rst-ioc-lookup "api_key=-" "base_url=-" <<<"x"
expect "configure api_key=- reads one line of stdin" 0 "$TQ" plugin configure rst-ioc-lookup "api_key=-" <<<"$KEY"
has "the key read from stdin is masked" "api_key +password +\*{8}"
hasnt "nor printed" "$KEY"
at_rest "the key read from stdin is sealed"
expect "op run uses the key read from stdin (rstsim checks it)" 0 "$TQ" op run rst-ioc-lookup 198.51.100.1
expect "configure a wrong key" 0 "$TQ" plugin configure rst-ioc-lookup "api_key=not-the-key-000"
expect "op run with the wrong key fails" 1 "$TQ" op run rst-ioc-lookup 198.51.100.1
expect "configure api_key=env:NAME reads the variable" 0 env "TQ_TEST_RST_KEY=$KEY" \
  "$TQ" plugin configure rst-ioc-lookup "api_key=env:TQ_TEST_RST_KEY"
hasnt "the key from the environment is not printed" "$KEY"
expect "op run uses the key from the environment" 0 "$TQ" op run rst-ioc-lookup 198.51.100.1
expect "configure the wrong key again" 0 "$TQ" plugin configure rst-ioc-lookup "api_key=not-the-key-000"
expect "workflow add --set api_key=env:NAME" 0 env "TQ_TEST_RST_KEY=$KEY" "$TQ" workflow add wfenv \
  --collection IPs --action rst-ioc-lookup-action --set "api_key=env:TQ_TEST_RST_KEY"
expect "(run it)" 0 "$TQ" workflow run wfenv
has "the workflow used the key from the environment" " 3 enriched"
expect "action run --set api_key=- reads stdin" 0 "$TQ" action run rst-ioc-lookup-action \
  --collection IPs --set "api_key=-" <<<"$KEY"
has "the run used the key read from stdin" "enriched +3"
expect "action run --set api_key=env: of an unset variable is refused" 2 env -u TQ_NO_SUCH_VAR \
  "$TQ" action run rst-ioc-lookup-action --collection IPs --set "api_key=env:TQ_NO_SUCH_VAR"
at_rest "nothing in clear at the end"

# ---- 4. log and output injection: names refused, values escaped on output -------------------
ESC=$'\x1b'
expect "a tag with a newline is refused" 1 "$TQ" indicator add 198.51.100.20 --tag $'ok\nlevel=error forged'
has "the error names the tag field and shows it escaped" "tag 'ok\\\\nlevel=error forged': control characters"
[[ $(wc -l <"$WORK/out") == 1 ]] && pass "the error is one line" || fail "the error spans lines: $(cat "$WORK/out")"
expect "an attribute name with an escape is refused" 1 "$TQ" indicator add 198.51.100.20 --attribute $'Bad\x1b[31mName=v'
has "the error names the attribute name field" "attribute name 'Bad\\\\x1b\[31mName'"
expect "a source name with a carriage return is refused" 1 "$TQ" indicator add 198.51.100.20 --source $'Feed\r'
has "the error names the source name field" "source name 'Feed\\\\r'"
expect "a collection name with a tab is refused" 1 "$TQ" collection add $'IPs\tx' --type "IP Address"
has "the error names the collection name field" "collection name 'IPs\\\\tx'"
printf 'value,tags\n198.51.100.22,"good,bad\x1b[2Jtag"\n' >"$WORK/bad.csv"
"$TQ" indicator import "$WORK/bad.csv" >"$WORK/out" 2>&1
grep -q "$ESC" "$WORK/out" && fail "import printed a raw escape: $(cat -v "$WORK/out")" || pass "import reports the bad tag escaped"
has "import names the tag field" "tag 'good,bad\\\\x1b\[2Jtag'"
expect "an attribute value and a description may hold newlines" 0 "$TQ" indicator add 198.51.100.21 \
  --attribute $'Note=line one\nlevel=error part=auth msg=forged' --description $'desc\x1b[31m red\nsecond'
expect "indicator get (text)" 0 "$TQ" indicator get 198.51.100.21
grep -q "$ESC" "$WORK/out" && fail "get printed a raw escape: $(cat -v "$WORK/out")" || pass "no raw escape on the terminal"
has "the attribute value is shown on one line, escaped" "Note +line one\\\\nlevel=error part=auth msg=forged"
hasnt "no forged line" "^level=error"
has "the description is escaped" "description desc\\\\x1b\[31m red\\\\nsecond"
expect "indicator get --json" 0 "$TQ" --json indicator get 198.51.100.21
[[ $(json '[a["value"] for a in j["attributes"] if a["name"] == "Note"][0] == "line one\nlevel=error part=auth msg=forged"') == True ]] &&
  pass "--json keeps the value exact (cJSON escapes it)" || fail "json value: $(cat "$WORK/out")"
grep -q "$ESC" "$WORK/out" && fail "--json printed a raw escape" || pass "--json has no raw escape"
expect "indicator list" 0 "$TQ" indicator list
grep -q "$ESC" "$WORK/out" && fail "list printed a raw escape" || pass "list has no raw escape"

expect "a value with a C1 control and DEL" 0 "$TQ" indicator add 198.51.100.23 --attribute $'Note=a\xc2\x9b2Jb\x7fc'
expect "(get it --json)" 0 "$TQ" --json indicator get 198.51.100.23
grep -aq $'\xc2\x9b' "$WORK/out" && fail "--json printed a raw C1 control" || pass "--json escapes C1 controls"
[[ $(json '[a["value"] for a in j["attributes"]][0] == "a\x9b2Jb\x7fc"') == True ]] &&
  pass "--json still gives the exact value" || fail "json C1 value: $(cat "$WORK/out")"

echo "secrets_test: $FAILS failure(s)"
[ "$FAILS" -eq 0 ]

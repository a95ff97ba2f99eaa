#!/usr/bin/env bash
# plugin_new_test.sh: `tqhost plugin new` as a new plugin author uses it (ctest
# integration.plugin_new): the skeleton passes `plugin check` and `plugin test` as created, its
# operation runs (dry run, then --apply) against a local stub of its API (stub_api.py), its
# action file is listed; bad names and an existing folder are refused, nothing written.
# Usage: plugin_new_test.sh PATH/TO/tqhost
set -u
TQ=${1:?usage: plugin_new_test.sh TQHOST}
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d)
PIDS=()
FAILS=0
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$WORK"' EXIT
KEY='stub-key-7e21'
mkdir -p "$WORK/plugins"
export TQHOST_DB="$WORK/lib.db" TQHOST_PLUGINS="$WORK/plugins"
unset TQHOST_KEY_FILE TQHOST_ACTIONS

fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }
pass() { echo "ok:   $*"; }
expect() {
  local what=$1 want=$2; shift 2
  "$@" >"$WORK/out" 2>&1
  local rc=$?
  if [[ $rc == "$want" ]]; then pass "$what"; else fail "$what (exit $rc, wanted $want)"; sed 's/^/    /' "$WORK/out" | head -20; fi
}
has() { if grep -Eq -- "$2" "$WORK/out"; then pass "$1"; else fail "$1: no /$2/ in:"; sed 's/^/    /' "$WORK/out" | head -20; fi; }
hasnt() { if grep -Eq -- "$2" "$WORK/out"; then fail "$1: /$2/ found in:"; sed 's/^/    /' "$WORK/out" | head -20; else pass "$1"; fi; }

# ---- the skeleton, as created --------------------------------------------------------------
expect "plugin new" 0 "$TQ" plugin new my-lookup --action
has "plugin new names the folder" "created $WORK/plugins/my-lookup"
for f in manifest.yaml operation.lua README.md spec/lookup_spec.lua spec/fixtures/hit.json \
  actions/my-lookup-action.yaml; do
  [[ -s $WORK/plugins/my-lookup/$f ]] && pass "skeleton has $f" || fail "skeleton lacks $f"
done
ls -a "$WORK/plugins" | grep -q '^\.my-lookup' && fail "a hidden work folder is left" || pass "no work folder left"
expect "plugin check of the skeleton" 0 "$TQ" plugin check "$WORK/plugins/my-lookup"
has "plugin check says OK" "^OK my-lookup 0\.1\.0: 1 operation"
expect "plugin test of the skeleton (no network)" 0 "$TQ" plugin test "$WORK/plugins/my-lookup"
has "its specs pass" "[1-9][0-9]* successes / 0 failures / 0 errors"
expect "plugin list shows it" 0 "$TQ" plugin list
has "listed, needing its api_key" "^my-lookup +My Lookup +0\.1\.0 +lookup +no \(needs api_key\)"
expect "its action is listed from its actions folder" 0 env TQHOST_ACTIONS="$WORK/plugins/my-lookup/actions" "$TQ" action list
has "action list names it" "my-lookup-action"
expect "--json plugin new" 0 "$TQ" --json plugin new other-one --dir "$WORK"
jq -e '.name == "other-one" and (.path | endswith("/other-one"))' "$WORK/out" >/dev/null &&
  pass "--json names the path" || fail "--json: $(cat "$WORK/out")"
[[ -e $WORK/other-one/actions ]] && fail "no --action, yet an actions folder" || pass "no action file without --action"

# ---- op run against a local stub of its API ------------------------------------------------
python3 "$HERE/stub_api.py" "$KEY" >"$WORK/stub.out" 2>&1 &
PIDS+=("$!")
for _ in $(seq 1 200); do grep -q listening "$WORK/stub.out" 2>/dev/null && break; sleep 0.05; done
[[ $(head -n1 "$WORK/stub.out") =~ 127\.0\.0\.1:([0-9]+)$ ]] || { echo "FATAL: stub did not start"; exit 1; }
URL="http://127.0.0.1:${BASH_REMATCH[1]}/v1"
"$TQ" init >/dev/null || { echo "FATAL: init"; exit 1; }
expect "configure" 0 "$TQ" plugin configure my-lookup "api_key=$KEY" "base_url=$URL" update_score=true
expect "op run (dry run)" 0 "$TQ" op run my-lookup 45.83.122.166
has "dry run shows the verdict" "verdict +malicious"
has "dry run writes nothing" "^dry run: .*not written \(use --apply\)"
expect "nothing in the library after a dry run" 1 "$TQ" indicator get 45.83.122.166
expect "op run --apply" 0 "$TQ" op run my-lookup 45.83.122.166 --apply
expect "the indicator is in the library" 0 "$TQ" --json indicator get 45.83.122.166
jq -e '[.attributes[] | select(.name == "My Lookup Verdict" and .value == "malicious")] | length == 1' \
  "$WORK/out" >/dev/null && pass "attribute written" || fail "attribute: $(cat "$WORK/out")"
jq -e '[.tags[] | tostring | select(test("stub-tag"))] | length == 1' "$WORK/out" >/dev/null &&
  pass "tag written" || fail "tag: $(cat "$WORK/out")"
expect "op run of a value the API does not know" 1 "$TQ" op run my-lookup 10.0.0.1
has "the reason is shown" "not found"

# ---- refused: bad names, an existing folder; nothing written -------------------------------
before=$(find "$WORK/plugins" | sort | md5sum)
for bad in ../evil a/b .. Upper -lead "" "$(printf 'x%.0s' $(seq 1 70))" "semi;colon"; do
  expect "refuses the name '$bad'" 1 "$TQ" plugin new -- "$bad"
done
echo 'keep me' >"$WORK/plugins/my-lookup/operation.lua"
expect "refuses an existing folder" 1 "$TQ" plugin new my-lookup
has "says it exists and how to force" "exists already.*--force"
grep -q 'keep me' "$WORK/plugins/my-lookup/operation.lua" && pass "the existing script is kept" || fail "overwritten"
after=$(find "$WORK/plugins" | sort | md5sum)
[[ $before == "$after" ]] && pass "no file made by a refused plugin new" || fail "files changed: $(find "$WORK/plugins")"
expect "--force writes over it" 0 "$TQ" plugin new my-lookup --force
grep -q 'keep me' "$WORK/plugins/my-lookup/operation.lua" && fail "--force kept the old script" || pass "--force rewrote the script"
expect "a missing --dir is an error" 1 "$TQ" plugin new x --dir "$WORK/nope"
expect "no NAME is a usage error" 2 "$TQ" plugin new
expect "an unknown option is a usage error" 2 "$TQ" plugin new x --frob

echo "$FAILS failure(s)"
[[ $FAILS == 0 ]]

#!/usr/bin/env bash
# kitcfg_test.sh: `tqhost action check FILE` on the bundled actions (pass) and on one fault
# each (missing entry, an indicator type the plugin's operation does not accept, a setting of
# the wrong type): exit 1, the error names the file, line:col and what; and typed config at
# run time: a stored value that no longer parses fails `op run` naming the field and type;
# `plugin check DIR` checks DIR/actions/*.yaml the same way.
# Usage: kitcfg_test.sh TQHOST SOURCE_DIR
set -u
TQ=${1:?usage: kitcfg_test.sh TQHOST SOURCE_DIR}
SRC=${2:?usage: kitcfg_test.sh TQHOST SOURCE_DIR}
export TQHOST_PLUGINS="$SRC/plugins" TQHOST_ACTIONS="$SRC/actions" TQHOST_SCHEMAS="$SRC/schemas"
unset TQHOST_DB TQHOST_NOW TQHOST_KEY_FILE
T=$(mktemp -d /tmp/tq_kitcfg_XXXXXX)
trap 'rm -rf "$T"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }

for f in "$SRC"/actions/*.yaml; do
  out=$("$TQ" action check "$f" 2>&1) && [[ $out == "OK $f" ]] && ok "good action passes: $(basename "$f")" ||
    bad "good action $(basename "$f"): $out"
done
out=$("$TQ" --json action check "$SRC/actions/rst-ioc-lookup-action.yaml")
python3 -c 'import json,sys; d=json.loads(sys.argv[1]); sys.exit(0 if d == {"ok": True, "errors": []} else 1)' "$out" &&
  ok "--json: one document" || bad "--json: $out"

A=rst-ioc-lookup-action.yaml
# fault FILE_EDIT EXPECTED_LINE:COL EXPECTED_TEXT
fault() {
  local what=$1 edit=$2 pos=$3 text=$4
  cp "$SRC/actions/$A" "$T/$A"
  sed -i "$edit" "$T/$A"
  local out rc
  out=$("$TQ" action check "$T/$A" 2>&1)
  rc=$?
  if [[ $rc == 1 && $out == *"$T/$A:$pos: "*"$text"* ]]; then ok "$what"; else bad "$what (rc $rc): $out"; fi
}
fault "missing entry: names file:line:col and the entry" 's/^entry: .*/entry: nosuch/' \
  "15:8" "entry: $SRC/plugins/rst-ioc-lookup/operation.lua does not return an entry 'nosuch'"
fault "indicator type the operation does not accept" \
  's/indicator_types: \[IP Address,/indicator_types: [Email Address, IP Address,/' \
  "18:21" "input.indicator_types[0]: 'Email Address' is not an indicator type plugin rst-ioc-lookup's operation"
fault "setting of the wrong type" '28s/type: boolean/type: integer/; 29d' \
  "28:11" "config[2].type: update_score is integer here but boolean in plugin rst-ioc-lookup's config"
fault "hostile entry name" "s/^entry: .*/entry: \"x'; DROP TABLE t;--\"/" "15:8" "entry"
out=$("$TQ" action check "$T/none.yaml" 2>&1)
[[ $? == 1 && $out == *none.yaml* ]] && ok "a missing file fails naming it" || bad "missing file: $out"
"$TQ" action check --nope >/dev/null 2>&1
[[ $? == 2 ]] && ok "unknown option exits 2" || bad "unknown option"

# plugin check DIR: DIR/actions/*.yaml checked too, the plugin looked up beside DIR
mkdir -p "$T/pl" && cp -r "$SRC/plugins/rst-ioc-lookup" "$SRC/plugins/lib" "$T/pl/"
mkdir -p "$T/pl/rst-ioc-lookup/actions" && cp "$SRC/actions/$A" "$T/pl/rst-ioc-lookup/actions/"
out=$("$TQ" plugin check "$T/pl/rst-ioc-lookup" 2>&1)
[[ $? == 0 && $out == *"1 operation, 1 action file"* ]] && ok "plugin check: a good action file passes" ||
  bad "plugin check good: $out"
sed -i 's/^entry: .*/entry: nosuch/' "$T/pl/rst-ioc-lookup/actions/$A"
out=$("$TQ" plugin check "$T/pl/rst-ioc-lookup" 2>&1)
[[ $? == 1 && $out == *"actions/$A:15:8: entry: "*"does not return an entry 'nosuch'"* ]] &&
  ok "plugin check: a faulty action file fails naming file:line:col" || bad "plugin check bad: $out"

# typed config at configure and at run time
export TQHOST_DB="$T/lib.db"
"$TQ" init >/dev/null 2>&1 || bad "init"
P=rst-noise-control
out=$("$TQ" plugin configure $P score_decrease_on_change=2.5 2>&1)
[[ $? != 0 && $out == *"score_decrease_on_change: '2.5' is not an integer"* ]] &&
  ok "configure refuses a value of the wrong type, naming field and type" || bad "configure: $out"
"$TQ" plugin configure $P score_decrease_on_change=3 >/dev/null 2>&1 && ok "configure stores an integer" ||
  bad "configure integer"
"$TQ" plugin configure $P api_key=kitcfg-key-123 >/dev/null 2>&1 || bad "configure api_key"
python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute("update settings set value=? where key=?", ("three", "score_decrease_on_change")); c.commit()' "$TQHOST_DB"
out=$("$TQ" op run $P 1.2.3.4 2>&1)
[[ $? == 1 && $out == *"stored config field score_decrease_on_change is not a valid integer"*"'three' is not an integer"* ]] &&
  ok "a stored value that no longer parses fails the run, naming field and type" || bad "run: $out"
echo "$pass passed, $fail failed"
[[ $fail == 0 ]]

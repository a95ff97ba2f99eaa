#!/usr/bin/env bash
# scriptopts_test.sh: every way of loading a plugin's script gives the script the same thing
# (src/plugin/script.c, tq_plugin_script_opts_build):
#  1. ctx.config is typed by the fields (integer, boolean) in a bulk action run as in `op run`
#     (bulk runs used to hand every value to the script as a string);
#  2. `plugin check` (now tq_plugin_check + tq_action_check_dir) prints what it printed: OK
#     with the counts, the missing entry at the manifest's file:line:col, an action file of
#     DIR/actions/ checked, --json {ok, errors}, exit statuses 0 / 1.
# Usage: scriptopts_test.sh TQHOST SOURCE_DIR
set -u
TQ=${1:?usage: scriptopts_test.sh TQHOST SOURCE_DIR}
SRC=${2:?usage: scriptopts_test.sh TQHOST SOURCE_DIR}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export TQHOST_PLUGINS="$WORK/P" TQHOST_ACTIONS="$WORK/A" TQHOST_SCHEMAS="$SRC/schemas"
unset TQHOST_DB TQHOST_NOW TQHOST_KEY_FILE
pass=0
fail=0
check() { # check DESCRIPTION COMMAND...
  local what=$1
  shift
  if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $what"; fi
}

mkdir -p "$WORK/P/kinds/actions" "$WORK/A"
cat >"$WORK/P/kinds/manifest.yaml" <<'EOF'
name: kinds
label: Kinds
version: 1.0.0
script: operation.lua
config:
  - { key: n, label: N, type: integer, default: 5 }
  - { key: flag, label: Flag, type: boolean, default: true }
operations:
  - { name: probe, label: Probe, entry: probe, object_types: [indicator] }
EOF
cat >"$WORK/P/kinds/operation.lua" <<'EOF'
return {
  probe = function(obj, ctx)
    local got = tostring(math.type(ctx.config.n)) .. "/" .. type(ctx.config.flag)
    if got ~= "integer/boolean" then
      error("ctx.config typed " .. got)
    end
    ctx:show({ found = true, message = "typed " .. got })
  end,
}
EOF
cat >"$WORK/A/kinds-action.yaml" <<'EOF'
name: kinds-action
label: Kinds (bulk)
version: 1.0.0
plugin: kinds
entry: probe
input: { object_types: [indicator] }
EOF
cp "$WORK/A/kinds-action.yaml" "$WORK/P/kinds/actions/"
DB="$WORK/db"
"$TQ" --db "$DB" init >/dev/null || { echo "init failed"; exit 1; }

# --- 1. typed config in every run -------------------------------------------------------------
out=$("$TQ" --db "$DB" --json op run kinds:probe 8.8.8.8 2>"$WORK/op.err")
check "op run: ctx.config typed ($(jq -r .show.message <<<"$out"))" \
  [ "$(jq -r .show.message <<<"$out")" = "typed integer/boolean" ]
out=$("$TQ" --db "$DB" --json action run kinds-action 8.8.8.8 2>"$WORK/bulk.err")
check "bulk run: ctx.config typed as in op run ($(jq -c .reasons <<<"$out"))" \
  [ "$(jq -r '"\(.enriched) \(.failed)"' <<<"$out")" = "1 0" ]
out=$("$TQ" --db "$DB" --json action run kinds-action 9.9.9.9 --set n=7 --set flag=false 2>/dev/null)
check "bulk run with --set: still typed ($(jq -c .reasons <<<"$out" 2>/dev/null))" \
  [ "$(jq -r '"\(.enriched) \(.failed)"' <<<"$out")" = "1 0" ]

# --- 2. plugin check, text and JSON as before ---------------------------------------------------
out=$("$TQ" plugin check "$WORK/P/kinds")
check "plugin check: OK with its counts ($out)" [ $? -eq 0 ]
check "plugin check: the OK line" [ "$out" = "OK kinds 1.0.0: 1 operation, 1 action file" ]
out=$("$TQ" --json plugin check "$WORK/P/kinds")
check "plugin check --json: ok, no errors" [ "$(jq -c . <<<"$out")" = '{"ok":true,"errors":[]}' ]
sed -i 's/probe = function/other = function/' "$WORK/P/kinds/operation.lua"
"$TQ" plugin check "$WORK/P/kinds" >/dev/null 2>"$WORK/c.err"
rc=$?
check "missing entry: exit 1" [ $rc -eq 1 ]
check "missing entry: at the manifest's line and column" \
  grep -q "kinds/manifest.yaml:9:41: operations\[0\].entry: .*operation.lua does not return an entry 'probe'" "$WORK/c.err"
check "missing entry: the action file is checked too" \
  grep -q "actions/kinds-action.yaml:.*entry: .*does not return an entry 'probe'" "$WORK/c.err"
check "missing entry: the count line" grep -q "plugin check: 2 errors" "$WORK/c.err"
out=$("$TQ" --json plugin check "$WORK/P/kinds")
check "plugin check --json: both errors" [ "$(jq -r '"\(.ok) \(.errors | length)"' <<<"$out")" = "false 2" ]
"$TQ" plugin check "$WORK/nope" >/dev/null 2>"$WORK/n.err"
check "no such folder: exit 1, named" [ $? -eq 1 ]
check "no such folder: its manifest named" grep -q "nope" "$WORK/n.err"

echo "scriptopts_test: $pass passed, $fail failed"
[ "$fail" -eq 0 ]

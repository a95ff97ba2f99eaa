#!/usr/bin/env bash
# contract_test.sh: the contract every tqhost command keeps, checked on every command and
# subcommand that the dispatcher's tables list (read from 'tqhost --help' and each group's
# --help, so a new command is covered without an edit here):
#   - COMMAND --help exits 0 and prints its usage on stdout;
#   - with --json, stdout is one JSON document on success, and every line of stderr is a JSON
#     error object {"error": {"code", "message"}} on failure;
#   - an unknown option exits 2 (a usage error).
# Usage: contract_test.sh PATH/TO/tqhost SOURCE_DIR
set -u
TQ=${1:?usage: contract_test.sh TQHOST SOURCE_DIR}
SRC=${2:?usage: contract_test.sh TQHOST SOURCE_DIR}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export TQHOST_DB="$WORK/lib.db" TQHOST_PLUGINS="$SRC/plugins" TQHOST_ACTIONS="$SRC/actions"
unset TQHOST_NOW
cd "$WORK" || exit 1
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }

"$TQ" init >/dev/null || { echo "init failed"; exit 1; }

# The names listed under "Commands:" in a help text.
commands_of() { sed -n '/^Commands:/,/^$/p' | awk 'NR > 1 && /^  [a-z]/ {print $1}'; }

# Every command path: top-level commands, and the subcommands of each group.
paths=()
for top in $("$TQ" --help | commands_of); do
  subs=$("$TQ" "$top" --help 2>/dev/null | commands_of)
  if [ -z "$subs" ]; then
    paths+=("$top")
  else
    for sub in $subs; do paths+=("$top $sub"); done
  fi
done
[ "${#paths[@]}" -ge 40 ] && ok || bad "only ${#paths[@]} commands found: ${paths[*]}"

json_errors_ok() { # every line of the file is a JSON error object
  [ -s "$1" ] || return 1
  while IFS= read -r line; do
    jq -e '.error.code and .error.message' <<<"$line" >/dev/null 2>&1 || return 1
  done <"$1"
}

for p in "${paths[@]}"; do
  # shellcheck disable=SC2086
  out=$("$TQ" $p --help 2>"$WORK/err")
  rc=$?
  [ $rc -eq 0 ] && grep -q "usage:" <<<"$out" && ok ||
    bad "'$p --help' exited $rc with: $out $(cat "$WORK/err")"

  # A command that runs until signalled (serve) listens on a free port and is stopped with
  # SIGTERM: it must then exit 0 having printed its JSON.
  if [ "$p" = serve ]; then
    timeout --preserve-status -s TERM 3 "$TQ" --json serve --listen 127.0.0.1:0 </dev/null \
      >"$WORK/out" 2>"$WORK/err"
  else
    # shellcheck disable=SC2086
    timeout -s KILL 60 "$TQ" --json $p </dev/null >"$WORK/out" 2>"$WORK/err"
  fi
  rc=$?
  if [ $rc -eq 0 ]; then
    jq -e . "$WORK/out" >/dev/null 2>&1 && ok || bad "'--json $p' printed no JSON: $(cat "$WORK/out")"
  else
    json_errors_ok "$WORK/err" && ok || bad "'--json $p' exited $rc, stderr not JSON: $(cat "$WORK/err")"
    [ -s "$WORK/out" ] && bad "'--json $p' failed and printed on stdout: $(cat "$WORK/out")" || ok
  fi

  # shellcheck disable=SC2086
  "$TQ" $p --no-such-flag >/dev/null 2>"$WORK/err"
  rc=$?
  [ $rc -eq 2 ] && ok || bad "'$p --no-such-flag' exited $rc (expected 2): $(cat "$WORK/err")"
done

# Commands that succeed with nothing to report still print JSON.
"$TQ" source add "Contract" >/dev/null
"$TQ" feed add contract-feed --url https://127.0.0.1:1/taxii2/ --collection c1 >/dev/null 2>&1 ||
  "$TQ" feed add contract-feed --preset rst-high >/dev/null 2>&1
"$TQ" collection add contract-coll --type "IP Address" >/dev/null
for cmd in "score rule Category=c2 1" "source set Contract --score 3" \
  "collection delete contract-coll" "expire"; do
  # shellcheck disable=SC2086
  out=$("$TQ" --json $cmd 2>&1) && jq -e . <<<"$out" >/dev/null && ok || bad "--json $cmd: $out"
done
feed=$("$TQ" --json feed list | jq -r '.[0].name // empty')
if [ -n "$feed" ]; then
  for cmd in enable disable delete; do
    out=$("$TQ" --json feed $cmd "$feed" 2>&1) && jq -e . <<<"$out" >/dev/null && ok ||
      bad "--json feed $cmd: $out"
  done
else
  bad "no feed to enable/disable/delete"
fi

# Version.
out=$("$TQ" --version) && grep -Eq '^tqhost [0-9]+\.[0-9]+\.[0-9]+' <<<"$out" && ok || bad "--version: $out"
out=$("$TQ" --json version) && jq -e .version <<<"$out" >/dev/null && ok || bad "version: $out"
# No command, an unknown command, and a group without its subcommand are usage errors.
"$TQ" >/dev/null 2>&1; [ $? -eq 2 ] && ok || bad "no command is not exit 2"
"$TQ" frobnicate >/dev/null 2>&1; [ $? -eq 2 ] && ok || bad "unknown command is not exit 2"
"$TQ" feed >/dev/null 2>&1; [ $? -eq 2 ] && ok || bad "group without subcommand is not exit 2"

# A binary copied out of the build tree, with no TQHOST_SCHEMAS, finds no schemas: plugin list
# and action list fail naming the folders searched, instead of listing nothing. Installed
# beside it (../share/tqhost/schemas) they are found.
mkdir -p "$WORK/rel/bin" "$WORK/rel/run"
cp "$TQ" "$WORK/rel/bin/tqhost"
cp -r "$SRC/plugins" "$SRC/actions" "$WORK/rel/run/"
out=$(cd "$WORK/rel/run" && env -u TQHOST_SCHEMAS -u TQHOST_PLUGINS -u TQHOST_ACTIONS \
  "$WORK/rel/bin/tqhost" plugin list 2>&1)
rc=$?
[ $rc -eq 1 ] && ok || bad "plugin list without schemas exited $rc: $out"
has_all() { for w in "${@:2}"; do grep -qF -- "$w" <<<"$1" || return 1; done; }
has_all "$out" "operation.schema.json not found" "$WORK/rel/bin/../share/tqhost/schemas" "TQHOST_SCHEMAS" &&
  ok || bad "plugin list without schemas: unclear error: $out"
out=$(cd "$WORK/rel/run" && env -u TQHOST_SCHEMAS -u TQHOST_PLUGINS -u TQHOST_ACTIONS \
  "$WORK/rel/bin/tqhost" action list 2>&1)
[ $? -eq 1 ] && has_all "$out" "action.schema.json not found" && ok || bad "action list: $out"
mkdir -p "$WORK/rel/share/tqhost" && cp -r "$SRC/schemas" "$WORK/rel/share/tqhost/"
out=$(cd "$WORK/rel/run" && env -u TQHOST_SCHEMAS -u TQHOST_PLUGINS -u TQHOST_ACTIONS \
  "$WORK/rel/bin/tqhost" --json plugin list 2>&1) && [ "$(jq length <<<"$out")" -ge 3 ] && ok ||
  bad "schemas beside the binary not found: $out"

echo "contract_test: ${#paths[@]} commands, $pass passed, $fail failed"
[ "$fail" -eq 0 ]

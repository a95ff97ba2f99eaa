#!/usr/bin/env bash
# help_completion_test.sh (ctest integration.help_completion): `tqhost help COMMAND [SUB]`
# prints the same text as `COMMAND [SUB] --help` (exit 0), an unknown command exits 2; the
# bash completion (scripts/tqhost.bash-completion), sourced in bash, completes commands,
# subcommands and options from the binary's own tables.
# Usage: help_completion_test.sh PATH/TO/tqhost SOURCE_DIR
set -u
TQ=${1:?usage: help_completion_test.sh TQHOST SOURCE_DIR}
SRC=${2:?usage: help_completion_test.sh TQHOST SOURCE_DIR}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export TQHOST_DB="$WORK/lib.db" TQHOST_PLUGINS="$SRC/plugins"
FAILS=0
fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }
pass() { echo "ok:   $*"; }
commands_of() { sed -n '/^Commands:/,/^$/p' | awk 'NR > 1 && /^  [a-z]/ {print $1}'; }

# ---- help: every command and subcommand the tables list --------------------------------------
n=0
for top in $("$TQ" --help | commands_of); do
  subs=$("$TQ" "$top" --help 2>/dev/null | commands_of)
  for p in "$top" $subs; do
    [[ $p == "$top" ]] && args=("$top") || args=("$top" "$p")
    out=$("$TQ" help "${args[@]}" 2>&1); rc=$?
    want=$("$TQ" "${args[@]}" --help 2>&1)
    if [[ $rc == 0 && $out == "$want" && $out == *usage:* ]]; then n=$((n + 1)); else
      fail "help ${args[*]} (exit $rc) differs from ${args[*]} --help"; fi
  done
done
((n >= 40)) && pass "help COMMAND [SUB] = COMMAND [SUB] --help for $n commands" || fail "only $n commands"
out=$("$TQ" help 2>&1) && [[ $out == "$("$TQ" --help)" ]] && pass "help alone = --help" || fail "help alone: $out"
"$TQ" help frobnicate >/dev/null 2>"$WORK/err"; rc=$?
[[ $rc == 2 ]] && grep -q "unknown command 'frobnicate'" "$WORK/err" && pass "help of an unknown command exits 2" || fail "help frobnicate: exit $rc $(cat "$WORK/err")"
"$TQ" help plugin frobnicate >/dev/null 2>&1; rc=$?
[[ $rc == 2 ]] && pass "help of an unknown subcommand exits 2" || fail "help plugin frobnicate: exit $rc"
"$TQ" help plugin new extra >/dev/null 2>&1; rc=$?
[[ $rc == 2 ]] && pass "help with too many words exits 2" || fail "help plugin new extra: exit $rc"
"$TQ" --json help | jq -e 'map(.name) | index("plugin") != null' >/dev/null && pass "--json help lists commands" || fail "--json help"

# ---- bash completion ------------------------------------------------------------------------
# comp WORDS...: COMPREPLY (sorted, one line) for the command line WORDS, cursor on the last.
comp() {
  PATH="$(dirname "$TQ"):$PATH" bash --norc --noprofile -c '
    . "$1/scripts/tqhost.bash-completion" || exit 9
    shift
    COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    _tqhost
    printf "%s\n" "${COMPREPLY[@]}" | sort | paste -sd" "' _ "$SRC" "$@"
}
[[ $(basename "$TQ") == tqhost ]] || { echo "FATAL: the binary must be named tqhost"; exit 1; }
got=$(comp tqhost pl)
[[ $got == plugin ]] && pass "tqhost pl<TAB> -> plugin" || fail "tqhost pl<TAB> -> '$got'"
want=$("$TQ" plugin --help | commands_of | sort | paste -sd' ')
got=$(comp tqhost plugin "")
[[ $got == "$want" && $got == *new* && $got == *check* ]] && pass "tqhost plugin <TAB> -> $got" || fail "tqhost plugin <TAB> -> '$got' (want '$want')"
want=$("$TQ" --help | commands_of | sort | paste -sd' ')
got=$(comp tqhost "")
[[ $got == "$want" ]] && pass "tqhost <TAB> -> every command" || fail "tqhost <TAB> -> '$got'"
got=$(comp tqhost --json --db x.db plugin ch)
[[ $got == check ]] && pass "global options are skipped" || fail "tqhost --json --db x.db plugin ch<TAB> -> '$got'"
got=$(comp tqhost plugin new x --a)
[[ $got == --action ]] && pass "options of a subcommand from its help" || fail "plugin new x --a<TAB> -> '$got'"
got=$(comp tqhost help plugin co)
[[ $got == configure ]] && pass "help completes subcommands" || fail "help plugin co<TAB> -> '$got'"
got=$(comp tqhost frob "")
[[ " $got " != *" check "* && " $got " != *" list "* ]] && pass "no subcommands after an unknown command" || fail "frob <TAB> -> '$got'"

echo "$FAILS failure(s)"
[[ $FAILS == 0 ]]

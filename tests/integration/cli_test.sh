#!/usr/bin/env bash
# cli_test.sh: the tqhost command line as a user drives it: exit statuses, messages, --json,
# imports with bad lines, sources, collections, expiration, refusing foreign files, and two
# processes writing the same library at once. Usage: cli_test.sh PATH/TO/tqhost
set -u
TQ=${1:?usage: cli_test.sh TQHOST}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export TQHOST_DB="$WORK/lib.db"
unset TQHOST_NOW
pass=0
fail=0

ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }

# run EXPECTED_STATUS CMD...: runs tqhost, keeps stdout in $out and stderr in $errout.
run() {
  local want=$1
  shift
  out=$("$TQ" "$@" 2>"$WORK/stderr")
  local got=$?
  errout=$(cat "$WORK/stderr")
  if [ "$got" -ne "$want" ]; then
    bad "tqhost $* exited $got, expected $want; stderr: $errout"
    return 1
  fi
  ok
}
has() { # has TEXT HAYSTACK DESCRIPTION
  case "$2" in *"$1"*) ok ;; *) bad "$3: expected '$1' in: $2" ;; esac
}
json_field() { # json_field EXPR: evaluates a python expression on the parsed $out as j
  python3 -c "import json,sys; j=json.loads(sys.stdin.read()); print($1)" <<<"$out"
}

# --- no library yet, usage errors, help ---------------------------------------------------
run 1 indicator list && has "tqhost init" "$errout" "missing library names the fix"
[ ! -e "$TQHOST_DB" ] && ok || bad "a read command created the library"
run 2 frobnicate && has "unknown command 'frobnicate'" "$errout" "unknown command"
run 2 && has "usage: tqhost" "$errout" "no command prints usage"
for cmd in "init" "indicator add" "indicator get" "indicator list" "indicator import" \
  "indicator set" "source add" "source list" "collection add" "collection show" "expire"; do
  # shellcheck disable=SC2086
  run 0 $cmd --help && has "usage: tqhost" "$out" "$cmd --help"
done

# --- init --------------------------------------------------------------------------------
run 0 init && has "schema version" "$out" "init"
run 0 init && ok # idempotent
echo "my notes" >"$WORK/notes.txt"
run 1 --db "$WORK/notes.txt" init && has "not a tqhost library" "$errout" "foreign file refused"
[ "$(cat "$WORK/notes.txt")" = "my notes" ] && ok || bad "foreign file was modified"

# --- zero-length and read-only library files ----------------------------------------------
: >"$WORK/empty.db"
run 1 --db "$WORK/empty.db" indicator list && has "empty file" "$errout" "zero-length refused"
[ ! -s "$WORK/empty.db" ] && ok || bad "a read command initialised a zero-length file"
run 0 --db "$WORK/empty.db" init
# A read-only copy (WAL mode, no -wal/-shm) in a folder the reader may not write either. Root
# ignores file modes: the reader is then nobody (setpriv).
AS_READER=()
[ "$(id -u)" -eq 0 ] && AS_READER=(setpriv --reuid=65534 --regid=65534 --clear-groups)
mkdir "$WORK/ro"
"$TQ" --db "$WORK/ro/lib.db" init >/dev/null && "$TQ" --db "$WORK/ro/lib.db" indicator add \
  192.0.2.44 >/dev/null && sqlite3 "$WORK/ro/lib.db" "PRAGMA wal_checkpoint(TRUNCATE)" >/dev/null
rm -f "$WORK/ro/lib.db-wal" "$WORK/ro/lib.db-shm"
chmod 0444 "$WORK/ro/lib.db" && chmod 0555 "$WORK/ro" && chmod 0711 "$WORK"
out=$("${AS_READER[@]}" "$TQ" --db "$WORK/ro/lib.db" --json indicator get 192.0.2.44 2>&1) &&
  [ "$(jq -r .value <<<"$out")" = "192.0.2.44" ] && ok || bad "read-only library not readable: $out"
out=$("${AS_READER[@]}" "$TQ" --db "$WORK/ro/lib.db" indicator add 192.0.2.45 2>&1)
[ $? -eq 1 ] && has "read-only" "$out" "write to a read-only library" || bad "read-only add: $out"
chmod 0755 "$WORK/ro"

# --- indicators ------------------------------------------------------------------------------
run 0 indicator add 45.83.122.166 --source "RST Threat Feed" --attribute Category=c2 --tag botnet
has "IP Address 45.83.122.166" "$out" "add detects IP"
run 0 indicator add "hxxps://Evil[.]Example.COM:443/a/./b/../c" --source Analyst
has "URL https://evil.example.com/a/c" "$out" "URL refanged and normalised"
run 1 indicator add 1.2.3.999 && has "999" "$errout" "bad IP names the octet"
run 1 indicator add "exa mple.com" && has "exa mple.com" "$errout" "bad domain named"
run 1 indicator add abc --type MD5 && has "32 hex" "$errout" "bad MD5 says why"
run 2 indicator add && has "VALUE" "$errout" "add without value is a usage error"
run 2 indicator add 1.1.1.1 --bogus && ok
run 1 indicator add 1.1.1.1 --status Dead && has "Dead" "$errout" "bad status named"
run 0 --json indicator get 45.83.122.166
[ "$(json_field 'j["type"], j["status"], j["attributes"][0]["value"], j["tags"][0]')" = \
  "IP Address Active c2 botnet" ] && ok || bad "--json get fields: $out"
run 1 indicator get 9.9.9.9 && has "9.9.9.9" "$errout" "missing indicator named"

# --- sources and scores --------------------------------------------------------------------------
run 0 source set "RST Threat Feed" --score 7 --expire-days 30 --tlp amber
run 0 --json indicator get 45.83.122.166
[ "$(json_field 'j["score"], j["expires_at"] is not None')" = "7 True" ] && ok ||
  bad "source score/expiry applied: $out"
run 2 source set "RST Threat Feed" --score 11 && has "0..10" "$errout" "score range"
run 1 source set "Nobody" --score 3 && has "Nobody" "$errout" "unknown source on set"
run 0 source add "Manual Intel" --score 2 --expire-days never
run 1 source add "Manual Intel" && has "exists" "$errout" "duplicate source"
run 0 --json source list
[ "$(json_field '[s["name"] for s in j if s["tlp"]=="amber"][0]')" = "RST Threat Feed" ] && ok ||
  bad "source list json: $out"
run 0 score rule Category=c2 2
run 0 --json indicator get 45.83.122.166
[ "$(json_field 'j["score"]')" = "9" ] && ok || bad "attribute rule adds 2: $out"
run 0 indicator set 45.83.122.166 --score 1
run 0 --json indicator get 45.83.122.166
[ "$(json_field 'j["score"], j["manual_score"]')" = "1 1" ] && ok || bad "manual score: $out"
run 0 indicator set 45.83.122.166 --score generated --expires never
run 0 --json indicator get 45.83.122.166
[ "$(json_field 'j["score"], j["expires_at"]')" = "9 None" ] && ok || bad "back to generated: $out"

# --- import: good lines in, bad lines reported with line numbers ---------------------------------
cat >"$WORK/list.txt" <<'L'
# a comment
10.0.0.1
evil[.]com
1.2.3.999

d41d8cd98f00b204e9800998ecf8427e
not a valid value at all!
L
run 1 indicator import "$WORK/list.txt" --source "Imported"
has "list.txt:4:" "$errout" "bad line 4 reported"
has "list.txt:7:" "$errout" "bad line 7 reported"
has "3 added" "$out" "good lines imported"
cat >"$WORK/iocs.csv" <<'C'
value,type,status,Malware Family,tags
203.0.113.7,,Review,Emotet,c2;botnet
"bad,value",,,,
www.example.org,FQDN,,,
C
run 1 --json indicator import "$WORK/iocs.csv" --source CSV
[ "$(json_field 'j["added"], j["bad"]')" = "2 1" ] && ok || bad "csv import counts: $out"
has "iocs.csv:3:" "$errout" "bad CSV row line"
run 0 --json indicator get 203.0.113.7
[ "$(json_field 'j["status"], j["attributes"][0]["name"], sorted(j["tags"])')" = \
  "Review Malware Family ['botnet', 'c2']" ] && ok || bad "csv attribute columns: $out"
run 1 indicator import "$WORK/nope.txt" && has "nope.txt" "$errout" "missing file named"

IMP="$WORK/imp.db" # a library of its own: these rows stay out of the collections below
run 0 --db "$IMP" init
# An unclosed quote refuses its row (named at the line where it began), keeps the rows before.
printf 'value,description,Family\n10.7.0.1,ok,a\n\n10.7.0.2,"never closed,b\n10.7.0.3,x,c\n' \
  >"$WORK/quote.csv"
run 1 --db "$IMP" --json indicator import "$WORK/quote.csv"
has "quote.csv:4: unclosed quote" "$errout" "unclosed quote reported at its row"
[ "$(json_field 'j["added"], j["bad"]')" = "1 1" ] && ok || bad "unclosed quote counts: $out"
run 1 --db "$IMP" indicator get 10.7.0.3 && ok # swallowed by the open quote, not imported
# NUL bytes and invalid UTF-8 refuse their row naming the column; --json errors are objects.
printf 'value,description,Family\n10.7.1.1,a\000b,x\n10.7.1.2,caf\351,y\n10.7.1.3,fine,z\n' \
  >"$WORK/bytes.csv"
run 1 --db "$IMP" --json indicator import "$WORK/bytes.csv"
has "bytes.csv:2: column 'description' contains a NUL byte" "$errout" "NUL byte refused"
has "bytes.csv:3: column 'description' is not valid UTF-8" "$errout" "invalid UTF-8 refused"
[ "$(head -1 <<<"$errout" | jq -r '.error.line')" = "2" ] && ok || bad "JSON error line: $errout"
printf '10.7.2.1\n10.7\000.2.2\n\377bad.example.com\n' >"$WORK/bytes.txt"
run 1 --db "$IMP" indicator import "$WORK/bytes.txt"
has "bytes.txt:2: the line contains a NUL byte" "$errout" "NUL in a plain line"
has "bytes.txt:3: value is not valid UTF-8" "$errout" "invalid UTF-8 in a plain line"
# Descriptions and attributes are capped (documented sizes).
python3 -c "print('value,description,Raw'); print('10.7.3.1,' + 'd' * 262145 + ',r');
print('10.7.3.2,d,' + 'r' * 65537); print('10.7.3.3,' + 'd' * 262144 + ',r')" >"$WORK/big.csv"
run 1 --db "$IMP" indicator import "$WORK/big.csv"
has "big.csv:2: description is 262145 bytes; the limit is 262144" "$errout" "description cap"
has "big.csv:3: attribute 'Raw': attribute value is 65537 bytes" "$errout" "attribute cap"
has "1 added" "$out" "a description at the limit is imported"

# --- collections -----------------------------------------------------------------------------------
run 0 collection add "IPs to enrich" --type "IP Address" --status Active,Review
has "3 objects" "$out" "collection count"
run 1 collection add "IPs to enrich" --type "IP Address" && has "exists" "$errout" "dup collection"
run 2 collection add "Bad" --type "IPAddress" && has "IPAddress" "$errout" "bad type named"
run 1 collection add "Bad" --source "No Such" && has "No Such" "$errout" "bad source named"
run 0 --json collection show "IPs to enrich"
[ "$(json_field 'j["count"], len(j["objects"])')" = "3 3" ] && ok || bad "collection show: $out"
run 0 collection list && has "IPs to enrich" "$out" "collection list"
run 0 indicator list --type "IP Address" --score-min 7 && has "45.83.122.166" "$out" "list filter"

# --- expiration ----------------------------------------------------------------------------------
run 0 source add "Short" --expire-days 1
run 0 indicator add 198.51.100.1 --source Short
TQHOST_NOW="2099-01-01 00:00:00" run 0 expire && has "expired" "$out" "expire runs"
run 0 --json indicator get 198.51.100.1
[ "$(json_field 'j["status"]')" = "Expired" ] && ok || bad "expired status: $out"

# --- two processes writing at once -------------------------------------------------------------
for k in 1 2; do
  python3 -c "
for i in range(20000): print('10.$k.%d.%d' % (i // 256, i % 256))" >"$WORK/bulk$k.txt"
done
"$TQ" indicator import "$WORK/bulk1.txt" >"$WORK/o1" 2>"$WORK/e1" &
p1=$!
"$TQ" indicator import "$WORK/bulk2.txt" >"$WORK/o2" 2>"$WORK/e2" &
p2=$!
wait $p1 && wait $p2 && ok || bad "concurrent imports failed: $(cat "$WORK/e1" "$WORK/e2")"
grep -q "locked" "$WORK/e1" "$WORK/e2" && bad "database is locked seen" || ok
run 0 --json indicator list --source Analyst --limit 0
[ "$(json_field 'len(j)')" -ge 40000 ] && ok || bad "concurrent imports lost rows"

echo "cli_test: $pass passed, $fail failed"
[ "$fail" -eq 0 ]

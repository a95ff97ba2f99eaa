#!/usr/bin/env bash
# op_test.sh: `tqhost plugin ...` and `tqhost op run` driven as an analyst would, against the
# RST Cloud simulator on loopback (ctest integration.op). Usage: op_test.sh TQHOST RSTSIM
set -u
TQ=${1:?usage: op_test.sh path/to/tqhost path/to/rstsim}
SIM=${2:?usage: op_test.sh path/to/tqhost path/to/rstsim}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d)
PIDS=()
FAILS=0
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$WORK"' EXIT

KEY='sim-secret-4f9a1c'
export TQHOST_DB="$WORK/lib.db" TQHOST_PLUGINS="$SRC/plugins" TQHOST_LOG=info
unset TQHOST_KEY_FILE

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
# has WHAT REGEX: the last output matches REGEX (grep -E).
has() { if grep -Eq -- "$2" "$WORK/out"; then pass "$1"; else fail "$1: no /$2/ in:"; sed 's/^/    /' "$WORK/out" | head -20; fi; }
hasnt() { if grep -Eq -- "$2" "$WORK/out"; then fail "$1: /$2/ found in:"; sed 's/^/    /' "$WORK/out" | head -20; else pass "$1"; fi; }

# start NAME [options...]: runs rstsim on a free port, sets ${NAME}_URL.
start() {
  local name=$1; shift
  "$SIM" --port 0 "$@" >"$WORK/$name.sim" 2>"$WORK/$name.simerr" &
  PIDS+=("$!")
  for _ in $(seq 1 400); do grep -q listening "$WORK/$name.sim" 2>/dev/null && break; sleep 0.05; done
  local line; line=$(head -n1 "$WORK/$name.sim")
  [[ $line =~ ^rstsim\ listening\ on\ 127\.0\.0\.1:([0-9]+)$ ]] || { echo "FATAL: rstsim did not start: $line"; exit 1; }
  printf -v "${name}_URL" 'http://127.0.0.1:%s/v1' "${BASH_REMATCH[1]}"
}

"$TQ" init >/dev/null || { echo "FATAL: tqhost init"; exit 1; }
start hit --hit-ratio 1 --api-key "$KEY"
start miss --hit-ratio 0 --api-key "$KEY"

# ---- configuration: checked, masked, encrypted -------------------------------------------
expect "run before configure fails" 1 "$TQ" op run rst-ioc-lookup 45.83.122.166
has "missing api_key names the command that sets it" "tqhost plugin configure rst-ioc-lookup api_key="
expect "configure rejects an unknown key" 1 "$TQ" plugin configure rst-ioc-lookup colour=blue
has "unknown key is named with the valid ones" "'colour' is not a config field.*api_key"
expect "configure rejects a bad url" 1 "$TQ" plugin configure rst-ioc-lookup base_url=ftp:/x
expect "configure rejects a bad boolean" 1 "$TQ" plugin configure rst-ioc-lookup update_score=maybe
expect "configure rejects a select value off the list" 1 "$TQ" plugin configure rst-ioc-lookup actor_object_type=villain
expect "configure" 0 "$TQ" plugin configure rst-ioc-lookup "api_key=$KEY" "base_url=$hit_URL"
has "configure masks the key" "api_key +password +\*{8}"
[[ $(stat -c %a "$TQHOST_DB.key") == 600 ]] && pass "key file is mode 0600" || fail "key file mode $(stat -c %a "$TQHOST_DB.key")"
grep -aq "$KEY" "$TQHOST_DB" && fail "the api key is stored in clear" || pass "the api key is encrypted at rest"
expect "plugin list" 0 "$TQ" plugin list
has "plugin list shows the plugin configured" "^rst-ioc-lookup +RST IoC Lookup +1\.0\.0 +lookup +yes"
expect "plugin list --json" 0 "$TQ" --json plugin list
has "json list says configured" '"configured":[[:space:]]*true'

# ---- op list --------------------------------------------------------------------------------
expect "op list" 0 "$TQ" op list
has "op list names plugin:operation" "^rst-ioc-lookup:lookup +Query RST IoC Lookup"
expect "op list for an IP" 0 "$TQ" op list 45.83.122.166
has "the IoC Lookup accepts an IP" "rst-ioc-lookup:lookup"
expect "op list for a CVE" 0 "$TQ" op list CVE-2021-44228
hasnt "the IoC Lookup does not accept a CVE" "rst-ioc-lookup:lookup"

# ---- every indicator type: dry run writes nothing, --apply writes --------------------------
declare -A VALUES=(
  ["IP Address"]=45.83.122.166 ["IPv6 Address"]=2a03:b0c0:3:d0::1a51:c001 ["FQDN"]=malware-cdn.example.net
  ["URL"]=http://malware-cdn.example.net/payload/x.exe ["MD5"]=44d88612fea8a8f36de82e1278abb02f
  ["SHA-1"]=3395856ce81f2b7382dee72602f798b642f14140
  ["SHA-256"]=275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f)
for type in "${!VALUES[@]}"; do
  v=${VALUES[$type]}
  expect "$type: dry run" 0 "$TQ" op run rst-ioc-lookup "$v"
  has "$type: dry run says nothing was written" "^dry run: [0-9]+ attributes.* not written \(use --apply\)"
  expect "$type: not in the library after a dry run" 1 "$TQ" indicator get "$v"
  expect "$type: --apply" 0 "$TQ" op run rst-ioc-lookup "$v" --apply
  has "$type: --apply says what was written" "^written to indicator [0-9]+ \(created\): [1-9][0-9]* attributes"
  expect "$type: in the library after --apply" 0 "$TQ" --json indicator get "$v"
  has "$type: attributes carry the plugin's source" '"source":[[:space:]]*"RST IoC Lookup"'
  has "$type: stored with its type" "\"type\":[[:space:]]*\"$type\""
done

# ---- --json and a second run on a stored indicator -----------------------------------------
expect "--json run" 0 "$TQ" op run rst-ioc-lookup 45.83.122.166 --json
for k in plugin operation object status message show changes; do has "--json has $k" "^	\"$k\":"; done
has "--json object has the library id" '"id":[[:space:]]*[0-9]+'
expect "an unknown operation" 1 "$TQ" op run rst-ioc-lookup:resolve 45.83.122.166
has "unknown operation lists the real ones" "has no operation 'resolve'.*rst-ioc-lookup:lookup"
expect "a type the plugin does not take" 1 "$TQ" op run rst-ioc-lookup CVE-2021-44228
has "type refused is named" "no operation of plugin rst-ioc-lookup accepts indicator CVE"
expect "op run usage" 2 "$TQ" op run rst-ioc-lookup

# ---- not found and faults: exit 1 with a reason ---------------------------------------------
"$TQ" plugin configure rst-ioc-lookup "base_url=$miss_URL" >/dev/null
expect "a value RST does not know" 0 "$TQ" op run rst-ioc-lookup 45.83.122.167
has "not found is said" "not found in RST IoC Lookup"
has "not found writes nothing" "^dry run: 0 attributes"

# A copy of the plugin with a short timeout and one retry keeps the fault cases quick.
mkdir -p "$WORK/plugins"
cp -r "$SRC/plugins/rst-ioc-lookup" "$WORK/plugins/"
ln -s "$SRC/plugins/lib" "$WORK/plugins/lib"
sed -i -e 's/timeout: 30s/timeout: 2s/' -e 's/max: 4 }/max: 1 }/' "$WORK/plugins/rst-ioc-lookup/manifest.yaml"
# A stalled answer comes after 60 s: a run that ends well before it gave up by its own timeout
# (2 s, one retry); the bound is loose so that a busy machine cannot fail the test.
fault() { # fault NAME SIM-OPTION REGEX: a run against a faulty simulator fails saying REGEX
  start "$1" --api-key "$KEY" --hit-ratio 1 --retry-after 0 --stall-ms 60000 "$2" 1.0
  local url="${1}_URL"
  TQHOST_PLUGINS="$WORK/plugins" "$TQ" plugin configure rst-ioc-lookup "base_url=${!url}" >/dev/null
  local t0=$SECONDS
  expect "fault $2: exit 1" 1 env TQHOST_PLUGINS="$WORK/plugins" "$TQ" op run rst-ioc-lookup 45.83.122.170 --apply
  has "fault $2: the error says why" "$3"
  (( SECONDS - t0 < 40 )) && pass "fault $2: gave up before the stalled answer" || fail "fault $2: took $((SECONDS - t0)) s"
}
fault f429 --fault-429 "429"
fault f500 --fault-500 "500"
fault fstall --fault-stall "time(d )?out"
fault ftrunc --fault-truncate "JSON|json|truncated"
expect "nothing was written by failed runs" 1 "$TQ" indicator get 45.83.122.170

# ---- the secret never appears ----------------------------------------------------------------
if grep -q -- "$KEY" "$WORK/all"; then fail "the api key appeared in some output"; else pass "the api key never appeared in any output"; fi

# ---- plugin check --------------------------------------------------------------------------------
expect "check a good plugin" 0 "$TQ" plugin check "$SRC/plugins/rst-ioc-lookup"
has "check says OK" "^OK rst-ioc-lookup 1\.0\.0"
mkdir -p "$WORK/broken"
cp -r "$SRC/plugins/rst-ioc-lookup" "$WORK/broken/"
M="$WORK/broken/rst-ioc-lookup/manifest.yaml"
sed -i -e 's/^version: 1.0.0/version: one/' -e 's/indicator_types: \[IP Address,/indicator_types: [IP Adress,/' "$M"
vline=$(grep -n '^version:' "$M" | cut -d: -f1)
expect "check a broken manifest" 1 "$TQ" plugin check "$WORK/broken/rst-ioc-lookup"
has "a bad version is named by file:line:col" "manifest.yaml:$vline:10: version: 'one' does not match"
has "a bad indicator type is named by its path" "manifest.yaml:[0-9]+:[0-9]+: operations\[0\]\.indicator_types\[0\]: 'IP Adress' is not an indicator type"

echo "$FAILS failure(s)"
[[ $FAILS == 0 ]]

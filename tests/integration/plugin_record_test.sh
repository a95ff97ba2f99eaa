#!/usr/bin/env bash
# plugin_record_test.sh: `tqhost plugin test DIR --record BASE_URL` (ctest
# integration.plugin_record). Hostile cases first: no secret in any written file, also when
# the API echoes it back (upper-cased, reversed, encoded, in a cookie); BASE_URL only http(s);
# a failed recording (API down, 500) writes nothing; an existing fixture is kept unless --force.
# Then the three bundled RST plugins recorded against rstsim: the fixtures that came from
# rstsim are written again, equal to the committed ones, and replay passes.
# Usage: plugin_record_test.sh TQHOST RSTSIM
set -u
TQ=${1:?usage: plugin_record_test.sh path/to/tqhost path/to/rstsim}
SIM=${2:?usage: plugin_record_test.sh path/to/tqhost path/to/rstsim}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d)
PIDS=()
FAILS=0
CHECKS=0
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$WORK"' EXIT
unset TQHOST_LOG
# A host configuration of our own: the machine's /etc/tqhost may hold anything.
printf 'limits:\n  memory: 64MiB\n  instructions: 1000000000\n  timeout: 120s\n' >"$WORK/host.yaml"
export TQHOST_CONFIG=$WORK/host.yaml

fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); CHECKS=$((CHECKS + 1)); }
pass() { echo "ok:   $*"; CHECKS=$((CHECKS + 1)); }
expect() {
  local what=$1 want=$2; shift 2
  "$@" >"$WORK/out" 2>&1
  local rc=$?
  if [[ $rc == "$want" ]]; then pass "$what"; else fail "$what (exit $rc, wanted $want)"; sed 's/^/    /' "$WORK/out" | tail -20; fi
}
has() { if grep -Eq -- "$2" "$WORK/out"; then pass "$1"; else fail "$1: no /$2/ in:"; sed 's/^/    /' "$WORK/out" | tail -20; fi; }
# nowhere WHAT TEXT DIR: TEXT (any case) is in no file below DIR
nowhere() {
  local hits; hits=$(grep -rilF -- "$2" "$3")
  if [[ -z $hits ]]; then pass "$1"; else fail "$1: in $hits"; grep -riF -- "$2" "$3" | head -5; fi
}
sums() { (cd "$1" && find . -type f | sort | xargs sha256sum); }

# start_sim NAME [options]: rstsim on a free port, ${NAME}_URL set
start_sim() {
  local name=$1; shift
  "$SIM" --port 0 "$@" >"$WORK/$name.sim" 2>/dev/null &
  PIDS+=("$!")
  for _ in $(seq 1 400); do grep -q listening "$WORK/$name.sim" 2>/dev/null && break; sleep 0.05; done
  [[ $(head -n1 "$WORK/$name.sim") =~ :([0-9]+)$ ]] || { echo "FATAL: rstsim did not start"; exit 1; }
  printf -v "${name}_URL" 'http://127.0.0.1:%s/v1' "${BASH_REMATCH[1]}"
}

KEY='Rk7-live-3b1e9f0c55d2'
export RST_KEY=$KEY
start_sim ok --api-key "$KEY"
start_sim f500 --api-key "$KEY" --fault-500 1 --retry-after 0

# ---- a plugin whose API echoes every credential it is sent ----------------------------------
python3 "$SRC/tests/integration/record_echo.py" >"$WORK/echo.out" 2>/dev/null &
PIDS+=("$!")
for _ in $(seq 1 400); do grep -q listening "$WORK/echo.out" 2>/dev/null && break; sleep 0.05; done
[[ $(head -n1 "$WORK/echo.out") =~ :([0-9]+)$ ]] || { echo "FATAL: echo server did not start"; exit 1; }
ECHO_URL="http://127.0.0.1:${BASH_REMATCH[1]}/v1"
E=$WORK/echo/echo-rec
mkdir -p "$E/spec"
cat >"$E/manifest.yaml" <<'YAML'
name: echo-rec
label: Echo Rec
version: 1.0.0
script: operation.lua
config:
  - { key: api_key, label: API Key, type: password, required: true }
  - { key: base_url, label: Base URL, type: url, default: "https://api.example.net/v1" }
  - { key: token, label: Query token, type: string, default: "none" }
  - { key: cookie, label: Session cookie, type: string, default: "none" }
  - { key: login_password, label: Login password, type: string, default: "none" }
operations:
  - { name: lookup, label: Echo, entry: lookup, object_types: [indicator], indicator_types: [IP Address] }
network:
  hosts: ["{config.base_url}"]
YAML
cat >"$E/operation.lua" <<'LUA'
local M = {}
function M.lookup(obj, ctx)
  local base = ctx.config.base_url
  local r1, e1 = http.get(base .. "/echo", {
    query = { value = obj.value, apikey = ctx.config.token },
    headers = { ["X-Api-Key"] = ctx.secret("api_key"), Authorization = ctx.secret("api_key"),
                Cookie = "session=" .. ctx.config.cookie },
  })
  if not r1 then return nil, e1.message end
  local r2, e2 = http.post(base .. "/login", {
    json = { user = "analyst", password = ctx.config.login_password, value = obj.value } })
  if not r2 then return nil, e2.message end
  ctx:attribute("Echoed", tostring(#r1.body + #r2.body))
end
return M
LUA
cat >"$E/spec/echo_spec.lua" <<'LUA'
local T = require "tqhost.test"
describe("echo-rec", function()
  it("replays what was recorded", function()
    local r = T.run{ entry = "lookup",
      object = { type = "indicator", indicator_type = "IP Address", value = "198.51.100.7" },
      secrets = { api_key = "spec-key-0000" },
      config = { token = "spec-token-0000", cookie = "spec-cookie-0000",
                 login_password = "spec-pass-0000" },
      replay = "spec/fixtures/echo.json" }
    assert.are.equal("ok", r.status)
    assert.are.equal(1, #r.changes.attributes)
  end)
end)
LUA
TOKEN='qtok-8c1d2e3f4a5b' COOKIE='ck-77aa88bb99cc' PW='pw-Secr3t-Login-42'
expect "echo: recording succeeds" 0 "$TQ" plugin test "$E" --record "$ECHO_URL" \
  --set api_key=env:RST_KEY --set "token=$TOKEN" --set "cookie=$COOKIE" --set "login_password=$PW"
has "echo: says what it recorded" "recorded spec/fixtures/echo.json \(2 exchanges\)"
[[ -f $E/spec/fixtures/echo.json ]] && pass "echo: the fixture is written" || fail "echo: no fixture"
for s in "$KEY" "${KEY^^}" "$(rev <<<"$KEY")" "${KEY:3:10}" "$TOKEN" "$COOKIE" "$PW"; do
  nowhere "echo: '$s' is in no written file" "$s" "$WORK/echo"
done
grep -q '"X-Api-Key":[[:space:]]*"{{secret:api_key}}"' "$E/spec/fixtures/echo.json" \
  && pass "echo: the key header holds the secret marker" || fail "echo: no secret marker"
grep -q 'apikey={{redacted}}' "$E/spec/fixtures/echo.json" \
  && pass "echo: a credential query parameter is masked by name" || fail "echo: query not masked"
grep -q '"password":[[:space:]]*"{{redacted}}"' "$E/spec/fixtures/echo.json" \
  && pass "echo: a credential field of a JSON body is masked by name" || fail "echo: body not masked"
grep -q '"Set-Cookie":[[:space:]]*"{{redacted}}"' "$E/spec/fixtures/echo.json" \
  && pass "echo: Set-Cookie is masked" || fail "echo: Set-Cookie kept"
grep -qF "$ECHO_URL" "$E/spec/fixtures/echo.json" \
  && fail "echo: BASE_URL left in the fixture" || pass "echo: BASE_URL written back as the spec's base URL"
expect "echo: replay (no network) passes with the spec's own key" 0 "$TQ" plugin test "$E"

# ---- refusals: BASE_URL, options ---------------------------------------------------------------
P=$WORK/p
mkdir -p "$P"
cp -r "$SRC/plugins/lib" "$P/lib"
for pl in rst-ioc-lookup rst-noise-control rst-whois-api; do cp -r "$SRC/plugins/$pl" "$P/$pl"; done
for u in file:///etc/passwd ftp://127.0.0.1/v1 gopher://x/ "dict://127.0.0.1:11211/" /v1 "http://"; do
  expect "BASE_URL '$u' is refused" 1 "$TQ" plugin test "$P/rst-ioc-lookup" --record "$u"
  has "BASE_URL '$u': says why" "BASE_URL must be an http:// or https:// URL|BASE_URL has no host"
done
expect "BASE_URL with credentials is refused" 1 "$TQ" plugin test "$P/rst-ioc-lookup" --record "http://u:p@127.0.0.1/v1"
has "credentials: says to use --set" "must not hold credentials"
expect "BASE_URL with a query is refused" 1 "$TQ" plugin test "$P/rst-ioc-lookup" --record "$ok_URL?x=1"
expect "--force without --record is a usage error" 2 "$TQ" plugin test "$P/rst-ioc-lookup" --force
expect "--set without --record is a usage error" 2 "$TQ" plugin test "$P/rst-ioc-lookup" --set api_key=x
expect "--set of an unknown field is refused" 1 "$TQ" plugin test "$P/rst-ioc-lookup" --record "$ok_URL" --set colour=blue
has "--set: names the field" "colour: not a config field"
expect "--set of a bad typed value is refused" 1 "$TQ" plugin test "$P/rst-ioc-lookup" --record "$ok_URL" --set update_score=maybe
expect "--set env: of an unset variable is a usage error" 2 "$TQ" plugin test "$P/rst-ioc-lookup" --record "$ok_URL" --set api_key=env:NO_SUCH_VAR_X

# ---- failed recordings write nothing ------------------------------------------------------------
before=$(sums "$P")
expect "API answering 500 (--force): fails" 1 "$TQ" plugin test "$P/rst-ioc-lookup" --record "$f500_URL" --force --set api_key=env:RST_KEY
has "500: says which fixture and why" "recording spec/fixtures/ip_hit.json failed: GET .*ioc\?value=185\.220\.101\.5: the API answered HTTP 500; nothing written"
rm -f "$P/rst-ioc-lookup/spec/fixtures/fqdn_hit.json"
before_missing=$(sums "$P")
expect "API down (--force): fails" 1 "$TQ" plugin test "$P/rst-ioc-lookup" --record "http://127.0.0.1:9/v1" --force --set api_key=env:RST_KEY
has "down: says it got no answer" "recording spec/fixtures/ip_hit.json failed: .*no answer \(refused"
[[ $(sums "$P") == "$before_missing" ]] && pass "failed recordings changed no file and made none" || fail "a failed recording wrote something"
[[ -e $P/rst-ioc-lookup/spec/fixtures/fqdn_hit.json ]] && fail "a missing fixture was made by a failed run" || pass "the missing fixture is still missing"
cp "$SRC/plugins/rst-ioc-lookup/spec/fixtures/fqdn_hit.json" "$P/rst-ioc-lookup/spec/fixtures/"
[[ $(sums "$P") == "$before" ]] && pass "the plugin folder is as before" || fail "the plugin folder changed"

# ---- the three RST plugins against rstsim --------------------------------------------------------
declare -A FROM_SIM=(
  [rst-ioc-lookup]="ip_hit ipv6_hit fqdn_hit url_hit md5_hit sha1_hit sha256_hit"
  [rst-noise-control]="ip_drop url_drop md5_drop sha256_drop ip_change fqdn_change sha1_change not_listed"
  [rst-whois-api]="standard extended raw no_data"
)
for pl in rst-ioc-lookup rst-noise-control rst-whois-api; do
  for f in ${FROM_SIM[$pl]}; do rm "$P/$pl/spec/fixtures/$f.json"; done
  expect "$pl: recording against rstsim passes its specs" 0 "$TQ" plugin test "$P/$pl" --record "$ok_URL" --set api_key=env:RST_KEY
  has "$pl: a kept fixture is said" "kept spec/fixtures/server_error.json: it exists"
  # one python for the plugin: "same NAME" or "differs NAME" per fixture
  python3 - "$SRC/plugins/$pl/spec/fixtures" "$P/$pl/spec/fixtures" ${FROM_SIM[$pl]} >"$WORK/cmp" 2>&1 <<'PY'
import json, os, sys
def load(d, f):
    try:
        l = json.load(open(os.path.join(d, f + ".json")))
    except (OSError, ValueError):
        return None
    return [{"method": e.get("method") or "GET", "url": e.get("url"),
             "status": e.get("status") or 200, "json": e.get("json"), "body": e.get("body")} for e in l]
for f in sys.argv[3:]:
    a, b = load(sys.argv[1], f), load(sys.argv[2], f)
    print(("same " if a is not None and a == b else "differs ") + f)
PY
  for f in ${FROM_SIM[$pl]}; do
    grep -qx "same $f" "$WORK/cmp" && pass "$pl: $f.json recorded equal to the committed one" || fail "$pl: $f.json differs"
  done
  expect "$pl: replay of the recording passes" 0 "$TQ" plugin test "$P/$pl"
  s1=$(sums "$P/$pl")
  expect "$pl: a second --record keeps what exists" 0 "$TQ" plugin test "$P/$pl" --record "$ok_URL" --set api_key=env:RST_KEY
  [[ $(sums "$P/$pl") == "$s1" ]] && pass "$pl: no fixture rewritten without --force" || fail "$pl: fixtures rewritten"
done
nowhere "rst: the live key is in no written file" "$KEY" "$P"
nowhere "rst: nor reversed" "$(rev <<<"$KEY")" "$P"
expect "echo: a second --record keeps echo.json" 0 "$TQ" plugin test "$E" --record "$ECHO_URL" --set api_key=env:RST_KEY
has "echo: kept" "kept spec/fixtures/echo.json"
expect "echo: --force records an existing fixture again" 0 "$TQ" plugin test "$E" --record "$ECHO_URL" --force --set api_key=env:RST_KEY
has "echo: --force rewrites it" "recorded spec/fixtures/echo.json"
nowhere "echo: the key is in no file after --force" "$KEY" "$WORK/echo"

echo "$CHECKS checks, $FAILS failed"
exit $((FAILS > 0))

#!/usr/bin/env bash
# net_log_test.sh: what TQHOST_LOG=debug shows of the network (ctest integration.net_log):
# each retry (attempt, wait, reason: a status or a curl error), each response-cache hit and
# each rate-limit wait (provider, how long), and never a secret: the key sent in a header, nor
# a plain value in a credential-named query parameter. The plugin (tests/data/net-log/
# log-probe) makes four GETs in one run under a rate limit of 1 per 300 ms; rstsim answers
# some with 429 (its fault dice are fixed by --seed). Usage: net_log_test.sh TQHOST RSTSIM
set -u
TQ=${1:?usage: net_log_test.sh path/to/tqhost path/to/rstsim}
SIM=${2:?usage: net_log_test.sh path/to/tqhost path/to/rstsim}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d)
PIDS=()
FAILS=0
CHECKS=0
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); CHECKS=$((CHECKS + 1)); }
pass() { echo "ok:   $*"; CHECKS=$((CHECKS + 1)); }
has() { if grep -Eq -- "$2" "$WORK/log"; then pass "$1"; else fail "$1: no /$2/ in:"; sed 's/^/    /' "$WORK/log" | tail -20; fi; }
hasnt() { if grep -iqF -- "$2" "$WORK/log"; then fail "$1: found in:"; grep -iF -- "$2" "$WORK/log" | head -5; else pass "$1"; fi; }

start_sim() {
  local name=$1; shift
  "$SIM" --port 0 "$@" >"$WORK/$name.sim" 2>/dev/null &
  PIDS+=("$!")
  for _ in $(seq 1 400); do grep -q listening "$WORK/$name.sim" 2>/dev/null && break; sleep 0.05; done
  [[ $(head -n1 "$WORK/$name.sim") =~ :([0-9]+)$ ]] || { echo "FATAL: rstsim did not start"; exit 1; }
  printf -v "${name}_URL" 'http://127.0.0.1:%s/v1' "${BASH_REMATCH[1]}"
}

KEY='LogKey-7f3a9c1e5b2d' TOKEN='qTok-0a1b2c3d4e5f'
mkdir -p "$WORK/plugins"
cp -r "$SRC/tests/data/net-log/log-probe" "$WORK/plugins/"
printf 'limits:\n  timeout: 120s\n' >"$WORK/host.yaml"
export TQHOST_DB=$WORK/lib.db TQHOST_PLUGINS=$WORK/plugins TQHOST_CONFIG=$WORK/host.yaml
"$TQ" init >/dev/null || { echo "FATAL: init"; exit 1; }
start_sim f429 --seed 1 --fault-429 0.4 --retry-after 1

# ---- a run with 429s, rate-limit waits and a cache hit -----------------------------------------
"$TQ" plugin configure log-probe "api_key=$KEY" "base_url=$f429_URL" "token=$TOKEN" >/dev/null
TQHOST_LOG=debug "$TQ" op run log-probe 198.51.100.1 --apply >"$WORK/log" 2>&1
rc=$?
[[ $rc == 0 ]] && pass "the run succeeds through its retries" || { fail "op run exit $rc"; cat "$WORK/log"; }
cp "$WORK/log" "$WORK/log1"
has "each request is logged by the script's part, query credentials masked" \
  '^level=debug part=lua msg="plugin=log-probe run=[0-9]+ http GET http://127\.0\.0\.1:[0-9]+/v1/ioc\?apikey=\*{8}&value=198\.51\.100\.2"'
has "a retry: provider, request, attempt, reason (the status), wait and Retry-After" \
  'part=net msg="provider=log-probe GET http://[^ ]+/v1/ioc\?apikey=\*{8}&value=[0-9.]+: attempt [0-9] failed \(HTTP 429\); retry [0-9] of 4 in [0-9]+ ms, Retry-After 1000 ms"'
has "a rate-limit wait: provider and how long" \
  'part=net msg="provider=log-probe rate limit: waiting [0-9]+ ms for a token \(3\.33333 requests/s, 1 queued\)"'
has "the fourth GET (the object again) is a cache hit" \
  'part=net msg="provider=log-probe GET http://[^ ]+/v1/ioc\?apikey=\*{8}&value=198\.51\.100\.1: cache hit \(status 200, [0-9]+ bytes\)"'
has "the script's own log line" 'level=info part=lua msg="plugin=log-probe run=[0-9]+ object=198\.51\.100\.1 probe of 198\.51\.100\.1 done"'
hasnt "the key is in no log line" "$KEY"
hasnt "nor the query token" "$TOKEN"
hasnt "nor the key reversed" "$(rev <<<"$KEY")"

# ---- a curl error is a retry reason too; without debug nothing of it is said --------------------
"$TQ" plugin configure log-probe "base_url=http://127.0.0.1:9/v1" >/dev/null
TQHOST_LOG=debug "$TQ" op run log-probe 198.51.100.7 >"$WORK/log" 2>&1
has "API down: each retry names the curl error" \
  'part=net msg="provider=log-probe GET http://127\.0\.0\.1:9/v1/ioc\?apikey=\*{8}&value=198\.51\.100\.7: attempt 1 failed \(refused: .*\(curl 7\)\); retry 1 of 4 in [0-9]+ ms"'
has "API down: the fourth retry is the last" 'attempt 4 failed .*retry 4 of 4'
has "API down: the run fails saying why" 'refused .* after 5 attempts'
hasnt "API down: the key is in no log line" "$KEY"
"$TQ" op run log-probe 198.51.100.7 >"$WORK/log" 2>&1
if grep -q "level=debug" "$WORK/log"; then fail "debug lines without TQHOST_LOG=debug"; else pass "no debug line at the default level"; fi
TQHOST_LOG=info "$TQ" plugin configure log-probe "base_url=$f429_URL" >/dev/null
TQHOST_LOG=info "$TQ" op run log-probe 198.51.100.1 >"$WORK/log" 2>&1
if grep -q "level=debug" "$WORK/log"; then fail "debug lines at info"; else pass "no debug line at TQHOST_LOG=info"; fi
has "info keeps the script's log.info" 'level=info part=lua msg="plugin=log-probe .*probe of 198\.51\.100\.1 done"'

echo "$CHECKS checks, $FAILS failed"
exit $((FAILS > 0))

#!/usr/bin/env bash
# smoke_test.sh: behaviour tests of rstsim (ctest sim.smoke). Starts the simulator on a free
# loopback port, talks to it with curl and checks bodies with jq. Usage: smoke_test.sh RSTSIM
set -u
SIM=${1:?usage: smoke_test.sh path/to/rstsim}
KEY='X-Api-Key: test-key'
FAILS=0
PIDS=()
WORK=$(mktemp -d)
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$WORK"' EXIT

fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }
pass() { echo "ok:   $*"; }
check() { # check "what" command...: passes when the command succeeds
  local what=$1; shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}

# start NAME [options...]: runs rstsim, waits for its ready line, sets ${NAME}_URL/${NAME}_PID.
start() {
  local name=$1; shift
  local out="$WORK/$name.out"
  "$SIM" --port 0 "$@" >"$out" 2>"$WORK/$name.err" &
  local pid=$!
  PIDS+=("$pid")
  for _ in $(seq 1 400); do
    grep -q listening "$out" 2>/dev/null && break
    sleep 0.05
  done
  local line; line=$(head -n1 "$out")
  if [[ ! $line =~ ^rstsim\ listening\ on\ 127\.0\.0\.1:([0-9]+)$ ]]; then
    echo "FATAL: rstsim $* did not print its ready line (got '$line')"; cat "$WORK/$name.err"
    exit 1
  fi
  printf -v "${name}_URL" 'http://127.0.0.1:%s' "${BASH_REMATCH[1]}"
  printf -v "${name}_PID" '%s' "$pid"
}

# get URL [curl args]: body on stdout; status in $WORK/status, headers in $WORK/headers.
get() {
  local url=$1; shift
  curl -s --globoff -D "$WORK/headers" -o "$WORK/body" -w '%{http_code}' -H "$KEY" "$@" "$url" \
    >"$WORK/status"
  cat "$WORK/body"
}
status() { cat "$WORK/status"; }
header() { grep -i "^$1:" "$WORK/headers" | head -n1 | cut -d' ' -f2- | tr -d '\r'; }
jqt() { jq -e "$1" >/dev/null 2>&1 <<<"$2"; } # jqt FILTER JSON: the filter yields true

start main --whois-nodata 0 --batch-pending-ms 300 --batch-pending-polls 2
B=$main_URL

# ---- IoC lookup: a hit and a miss per type (pinned values, README) --------------------------
hit_common='(.id | test("^[0-9a-f]{8}-[0-9a-f]{4}-3[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"))
  and (.score.total | type == "string") and (.fseen | test("^[0-9]+$"))
  and (.tags.str | length >= 1) and ((.tags.codes | length) == (.tags.str | length))
  and (.title | startswith("RST Threat feed. IOC: "))
  and (if .fp.alarm == "false" then
        (.score.total | tonumber) == ((.score.src | tonumber) * (.score.tags | tonumber)
                                       * (.score.frequency | tonumber) + 1e-9 | floor)
       else true end)'
declare -A SPECIFIC=(
  [ipv4]='.asn.firstip.netv4 != null and .geo.country != null and (.ports | length >= 1)'
  [ipv6]='.asn.num != null and .geo != null'
  [domain]='(.resolved.whois.havedata | test("^(true|false)$")) and (.resolved.ip.a | type == "array")'
  [url]='.parsed.schema == "http" and .parsed.domain == "malicious.example.org" and .parsed.params == "q=1"'
  [md5]='.md5 == "ffffffffffffffffffffffffffffffff" and (.filename | type == "array")'
  [sha1]='.sha1 == "ffffffffffffffffffffffffffffffffffffffff"'
  [sha256]='.sha256 == "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"')
declare -A HIT=(
  [ipv4]=198.51.100.7 [ipv6]=2001:db8::7 [domain]=malicious.example.org
  [url]='http://malicious.example.org/p?q=1' [md5]=$(printf 'f%.0s' {1..32})
  [sha1]=$(printf 'f%.0s' {1..40}) [sha256]=$(printf 'f%.0s' {1..64}))
declare -A MISS=(
  [ipv4]=192.0.2.1 [ipv6]=100::1 [domain]=notfound.example.org
  [url]='https://notfound.example.org/x' [md5]=$(printf '0%.0s' {1..32})
  [sha1]=$(printf '0%.0s' {1..40}) [sha256]=$(printf '0%.0s' {1..64}))
for t in ipv4 ipv6 domain url md5 sha1 sha256; do
  body=$(get "$B/v1/ioc" -G --data-urlencode "value=${HIT[$t]}")
  check "ioc hit $t: 200, ioc_type, fields and score formula" \
    jqt "$hit_common and .ioc_type == \"$t\" and .ioc_value == \"${HIT[$t]}\" and ${SPECIFIC[$t]}" "$body"
  [[ $(status) == 200 ]] || fail "ioc hit $t: status $(status)"
  body=$(get "$B/v1/ioc" -G --data-urlencode "value=${MISS[$t]}")
  check "ioc miss $t: 200 {ioc_value, error: Not Found}" \
    jqt "(. | keys) == [\"error\", \"ioc_value\"] and .error == \"Not Found\" and .ioc_value == \"${MISS[$t]}\"" "$body"
  [[ $(status) == 200 ]] || fail "ioc miss $t: status $(status)"
done
get "$B/v1/ioc" >/dev/null
check "ioc without value: 400 with a message" test "$(status)" = 400

# ---- determinism ------------------------------------------------------------------------------
a=$(get "$B/v1/ioc?value=45.83.122.166"); b=$(get "$B/v1/ioc?value=45.83.122.166")
check "same value, same seed: identical body" test "$a" = "$b"
start seed2 --seed 2
c=$(get "$seed2_URL/v1/ioc?value=198.51.100.7"); d=$(get "$B/v1/ioc?value=198.51.100.7")
check "same value, other seed: different body" test "$c" != "$d"

# ---- auth ------------------------------------------------------------------------------------
body=$(curl -s -D "$WORK/headers" "$B/v1/ioc?value=1.2.3.4")
check "missing key: 403 {message: Forbidden}" jqt '.message == "Forbidden"' "$body"
check "missing key: status 403 and a reason header" \
  test "$(head -n1 "$WORK/headers" | cut -d' ' -f2)/$(header X-Rstsim-Error)" = "403/missing X-Api-Key header"
body=$(curl -s -H 'x-api-key: lower' "$B/v1/auth/check")
check "header name in lower case accepted" jqt '.check.status == "valid"' "$body"
start keyed --api-key s3cret
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'X-Api-Key: wrong' "$keyed_URL/v1/auth/check")
check "--api-key: another key gets 403" test "$code" = 403
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'X-Api-Key: s3cret' "$keyed_URL/v1/auth/check")
check "--api-key: the key gets 200" test "$code" = 200

# ---- auth/check and quota --------------------------------------------------------------------
one=$(get "$B/v1/auth/check"); two=$(get "$B/v1/auth/check")
check "auth/check shape" jqt '.check.name == "CheckApiKey" and .quota.period == "DAY"
  and .quota.remaining == .quota.limit - .quota.used' "$one"
check "auth/check counts the key's requests" \
  test "$(jq .quota.used <<<"$two")" -eq "$(($(jq .quota.used <<<"$one") + 1))"

# ---- encoded and raw query values -------------------------------------------------------------
raw=$(get "$B/v1/ioc?value=http://malicious.example.org/a+b?x=1")
enc=$(get "$B/v1/ioc?value=http%3A%2F%2Fmalicious.example.org%2Fa%2Bb%3Fx%3D1")
check "raw and encoded values give the same answer" test "$raw" = "$enc"
check "a raw '+' stays '+'" jqt '.ioc_value == "http://malicious.example.org/a+b?x=1"' "$raw"
cut=$(get "$B/v1/ioc?value=http://malicious.example.org/?a=1&b=2")
check "a raw '&' ends the value (documented limit)" \
  jqt '.ioc_value == "http://malicious.example.org/?a=1"' "$cut"

# ---- submissions -----------------------------------------------------------------------------
body=$(get "$B/v1/ioc" -X POST -d '{"ioc_value":"1.2.3.4","description":"manual submission"}')
check "POST /v1/ioc: submitted" jqt '. == {"ioc_value":"1.2.3.4","status":"submitted"}' "$body"
body=$(get "$B/v1/ioc" -X PUT -d '{"ioc_value":"5.6.7.8","description":"fp"}')
check "PUT /v1/ioc: submitted" jqt '. == {"ioc_value":"5.6.7.8","status":"submitted"}' "$body"
get "$B/v1/ioc" -X POST -d 'not json' >/dev/null
check "POST /v1/ioc with a bad body: 400" test "$(status)" = 400

# ---- Noise Control -----------------------------------------------------------------------------
body=$(get "$B/v1/benign/lookup?value=8.8.8.8")
check "benign lookup: Drop" jqt '.value == "8.8.8.8" and .type == "ip" and .benign == "true"
  and (.reason | startswith("Drop "))' "$body"
body=$(get "$B/v1/benign/lookup?value=noisy.example.com")
check "benign lookup: Change Score" jqt '.type == "domain" and .benign == "true"
  and (.reason | startswith("Change Score "))' "$body"
body=$(get "$B/v1/benign/lookup?value=notfound.example.com")
check "benign lookup: not found" jqt '.benign == "false" and .reason == "Not Found in our database"' "$body"
token=$(get "$B/v1/benign/batch/domain" -X POST --data-binary $'benign.example.com\r\nnoisy.example.net\n\nnotfound.example.org\n')
check "batch: token object" jqt '(.token | test("^[0-9a-f]{32}$")) and .count == 3' "$token"
get "$B/v1/benign/result/domain" -X POST -H 'Content-Type: application/json' -d "$token" >/dev/null
check "batch result: 301 while pending (time)" test "$(status)" = 301
sleep 0.35
get "$B/v1/benign/result/domain" -X POST -d "$token" >/dev/null
check "batch result: 301 while pending (polls)" test "$(status)" = 301
body=$(get "$B/v1/benign/result/domain" -X POST -d "$token")
check "batch result: 200 with one verdict per value" test "$(status)" = 200
check "batch result: verdicts in order" jqt 'map(.benign) == ["true", "true", "false"]
  and .[0].value == "benign.example.com" and (.[1].reason | startswith("Change Score "))' "$body"
get "$B/v1/benign/result/domain" -X POST -d '{"token":"00000000000000000000000000000000"}' >/dev/null
check "batch result: unknown token 404" test "$(status)" = 404
get "$B/v1/benign/batch/email" -X POST -d 'a@b.c' >/dev/null
check "batch: unknown type 400" test "$(status)" = 400

# ---- Whois -----------------------------------------------------------------------------------
body=$(get "$B/v1/whois/www.bbc.co.uk")
check "whois: subdomain answered with its registrable domain" jqt '.domain == "bbc.co.uk"
  and (.created_on | test("^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{8}$")) and (.age | type == "number")
  and (.nameservers | contains(","))' "$body"
body=$(get "$B/v1/whois/nothing-here.test")
check "whois: no data gives dataError" jqt '.dataError != null and .domain == null' "$body"
body=$(get "$B/v1/whois/full/example.com")
check "whois full: extended fields" jqt '.domain == "example.com" and .registrant_country != null
  and .raw == null' "$body"
body=$(get "$B/v1/whois/raw/example.com")
check "whois raw: raw text" jqt '(.raw | contains("Domain Name: EXAMPLE.COM"))
  and .registrant_country == null' "$body"
body=$(get "$B/v1/whois/full/raw/example.com")
check "whois full raw: both" jqt '.raw != null and .registrant_country != null' "$body"
ioc=$(get "$B/v1/ioc?value=malicious.example.com"); who=$(get "$B/v1/whois/example.com")
check "ioc resolved.whois agrees with /v1/whois" \
  test "$(jq -r .resolved.whois.created <<<"$ioc")" = "$(jq -r .created_on <<<"$who")"

# ---- Report Hub ------------------------------------------------------------------------------
id=""
for day in $(seq -w 1 28); do
  list=$(get "$B/v1/reports?date=202512$day&lang=eng")
  [[ $(status) == 200 ]] && id=$(jq -r '.[0].id' <<<"$list") && break
done
check "reports: a day with reports lists digests" test -n "$id"
check "reports: ids start with the day" jqt "all(.[]; .id | startswith(\"202512${day}_\"))" "$list"
get "$B/v1/reports?date=20991231" >/dev/null
check "reports: an empty day is 404" test "$(status)" = 404
get "$B/v1/reports?date=2025-12-01" >/dev/null
check "reports: a bad date is 400" test "$(status)" = 400
body=$(get "$B/v1/reports/?id=$id&format=stix&lang=eng")
check "report as STIX bundle" jqt ".type == \"bundle\" and (.id | startswith(\"bundle--\"))
  and ([.objects[] | select(.type == \"report\")][0].external_references[0].external_id == \"$id\")
  and ([.objects[] | select(.type == \"indicator\")] | length >= 2)" "$body"
body=$(get "$B/v1/reports?id=$id&format=json")
check "report as JSON" jqt ".id == \"$id\" and (.threats | length == 1)" "$body"
get "$B/v1/reports?id=$id&format=pdf" >/dev/null
check "report as PDF" test "$(head -c 5 "$WORK/body")/$(header Content-Type)" = "%PDF-/application/pdf"
get "$B/v1/reports?id=20251201_nowhere_com_report_0x0000000&format=json" >/dev/null
check "report: unknown id 404" test "$(status)" = 404

# ---- routes ----------------------------------------------------------------------------------
body=$(get "$B/v1/nope")
check "unknown route: 404 JSON" jqt '.message | contains("no such route")' "$body"

# ---- latency does not serialise requests -------------------------------------------------------
# Each request's own time (curl's time_total, not the wall clock of the batch, which a loaded
# machine stretches by starting the curls late): about the latency each, where a server that
# held a thread per delay would make the 8th wait behind the others (8 x 500 ms).
start slow --latency-ms 500
curls=()
for i in $(seq 1 8); do
  curl -s -o /dev/null -w '%{time_total}\n' -H "$KEY" "$slow_URL/v1/ioc?value=10.0.0.$i" \
    >"$WORK/lat.$i" &
  curls+=($!)
done
wait "${curls[@]}"
slowest=$(cat "$WORK"/lat.* | sort -n | tail -n 1)
fastest=$(cat "$WORK"/lat.* | sort -n | head -n 1)
check "8 concurrent requests at 500 ms latency: none waits behind the others (slowest $slowest s)" \
  awk -v t="$slowest" 'BEGIN { exit !(t < 2.0) }'
check "... and each takes the latency (fastest $fastest s)" awk -v t="$fastest" 'BEGIN { exit !(t >= 0.5) }'

# ---- faults ------------------------------------------------------------------------------------
start f429 --fault-429 1.0 --retry-after 2
codes=""
for i in 1 2 3; do get "$f429_URL/v1/ioc?value=1.2.3.$i" >/dev/null; codes+="$(status)/$(header Retry-After) "; done
check "--fault-429 1.0: every answer 429 with Retry-After" test "$codes" = "429/2 429/2 429/2 "
start f500 --fault-500 1.0
get "$f500_URL/v1/ioc?value=1.2.3.4" >/dev/null
check "--fault-500 1.0: 500" test "$(status)" = 500
start f503 --fault-503 1.0
get "$f503_URL/v1/ioc?value=1.2.3.4" >/dev/null
check "--fault-503 1.0: 503 with Retry-After" test "$(status)/$(header Retry-After)" = "503/1"
start ftrunc --fault-truncate 1.0
body=$(get "$ftrunc_URL/v1/ioc?value=198.51.100.7")
check "--fault-truncate 1.0: 200 with JSON cut short" test "$(status)" = 200
check "--fault-truncate 1.0: body is not valid JSON" test "$(jq . <<<"$body" >/dev/null 2>&1; echo $?)" != 0
check "--fault-truncate 1.0: body is a prefix of the real one" \
  test "${d:0:${#body}}" = "$body"
start fmal --fault-malformed 1.0
body=$(get "$fmal_URL/v1/ioc?value=198.51.100.7")
check "--fault-malformed 1.0: body is not valid JSON" test "$(jq . <<<"$body" >/dev/null 2>&1; echo $?)" != 0
start freset --fault-reset 1.0
curl -s -o /dev/null -H "$KEY" "$freset_URL/v1/ioc?value=1.2.3.4"
check "--fault-reset 1.0: connection closed without an answer (curl 52)" test $? = 52
start fstall --fault-stall 1.0 --stall-ms 5000
curl -s -o /dev/null --max-time 0.5 -H "$KEY" "$fstall_URL/v1/ioc?value=1.2.3.4"
check "--fault-stall 1.0: the client times out (curl 28)" test $? = 28
start mixed --fault-500 0.5 --seed 9
m1=$(for i in $(seq 1 20); do curl -s -o /dev/null -w '%{http_code} ' -H "$KEY" "$mixed_URL/v1/ioc?value=1.1.1.$i"; done)
start mixed2 --fault-500 0.5 --seed 9
m2=$(for i in $(seq 1 20); do curl -s -o /dev/null -w '%{http_code} ' -H "$KEY" "$mixed2_URL/v1/ioc?value=1.1.1.$i"; done)
check "faults at 0.5 are deterministic per request sequence" test "$m1" = "$m2"
check "faults at 0.5 hit some but not all requests" \
  bash -c "[[ '$m1' == *500* && '$m1' == *200* ]]"

# ---- rate limit ------------------------------------------------------------------------------
start rl --rate-limit 5
args=(); for i in $(seq 1 20); do args+=(-o /dev/null "$rl_URL/v1/ioc?value=9.9.9.$i"); done
codes=$(curl -s -H "$KEY" -w '%{http_code}\n' "${args[@]}")
ok=$(grep -c '^200$' <<<"$codes"); limited=$(grep -c '^429$' <<<"$codes")
# A burst well under a second spans at most two one-second windows: 5 to 10 pass.
check "--rate-limit 5: 5..10 of 20 pass ($ok), the rest 429 ($limited)" \
  bash -c "(( $ok >= 5 && $ok <= 10 && $ok + $limited == 20 ))"
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'X-Api-Key: other' "$rl_URL/v1/ioc?value=9.9.9.9")
check "--rate-limit counts per key" test "$code" = 200

# ---- command line and shutdown ---------------------------------------------------------------
"$SIM" --help | grep -q -- '--fault-stall'
check "--help lists the options" test $? = 0
err=$("$SIM" --fault-500 2 2>&1); rc=$?
check "a bad option value exits 2 naming the option" \
  bash -c "[[ $rc == 2 && '$err' == *--fault-500* ]]"
start stopping --stats --fault-stall 1.0 --stall-ms 60000
curl -s -o /dev/null --max-time 5 -H "$KEY" "$stopping_URL/v1/ioc?value=1.2.3.4" &
# Waits for the server's side of the connection (a loaded machine may take longer than a fixed
# sleep to start curl), then lets the request be read and stall.
port_hex=$(printf '%04X' "${stopping_URL##*:}")
for _ in $(seq 1 200); do
  grep -Eq "^ *[0-9]+: [0-9A-F]{8}:$port_hex [0-9A-F]{8}:[0-9A-F]{4} 01 " /proc/net/tcp && break
  sleep 0.05
done
sleep 0.5
t0=$(date +%s%N)
kill -TERM "$stopping_PID"; wait "$stopping_PID"; rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
# well before the stall (60 s) would have ended the request by itself
check "SIGTERM with a stalled request: exit 0 long before the stall ends (rc $rc, $ms ms)" \
  bash -c "(( $rc == 0 && $ms < 20000 ))"
check "--stats prints counters at exit (the stalled request counted)" \
  grep -q 'fault stall *1$' "$WORK/stopping.err"

echo "$FAILS failure(s)"
[[ $FAILS == 0 ]]

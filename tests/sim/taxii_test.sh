#!/usr/bin/env bash
# taxii_test.sh: behaviour tests of rstsim's TAXII 2.1 server (ctest sim.taxii). Starts rstsim
# on free loopback ports, talks to it with curl and checks with jq: discovery, API root, RST's
# collections, auth (401), content negotiation (406), paging with limit/next/more over every
# object exactly once, ties across page boundaries, exclusive added_after, match[] filters,
# revoked versions, cursor expiry and changed parameters, TLS with a test CA made here.
# Usage: taxii_test.sh RSTSIM
set -u
SIM=${1:?usage: taxii_test.sh path/to/rstsim}
HERE=$(cd "$(dirname "$0")" && pwd)
ACCEPT='Accept: application/taxii+json;version=2.1'
HIGH=689709ee-8496-4da2-997d-e9face24eee9
REPORTS=f3b1c6d2-8a4e-4b7f-9c15-2d6e0a9b7c31
N=2000
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

# start NAME [options...]: runs rstsim, waits for its ready line, sets ${NAME}_PORT.
start() {
  local name=$1; shift
  local out="$WORK/$name.out"
  "$SIM" --port 0 "$@" >"$out" 2>"$WORK/$name.err" &
  PIDS+=("$!")
  for _ in $(seq 1 400); do
    grep -q listening "$out" 2>/dev/null && break
    sleep 0.05
  done
  local line; line=$(head -n1 "$out")
  if [[ ! $line =~ ^rstsim\ listening\ on\ 127\.0\.0\.1:([0-9]+)$ ]]; then
    echo "FATAL: rstsim $* did not print its ready line (got '$line')"; cat "$WORK/$name.err"
    exit 1
  fi
  printf -v "${name}_PORT" '%s' "${BASH_REMATCH[1]}"
}

# get URL [curl args]: body on stdout; status in $WORK/status, headers in $WORK/headers.
get() {
  local url=$1; shift
  curl -s --globoff -D "$WORK/headers" -o "$WORK/body" -w '%{http_code}' "$@" "$url" \
    >"$WORK/status"
  cat "$WORK/body"
}
status() { cat "$WORK/status"; }
header() { grep -i "^$1:" "$WORK/headers" | head -n1 | cut -d' ' -f2- | tr -d '\r'; }
jqt() { jq -e "$1" >/dev/null 2>&1 <<<"$2"; } # jqt FILTER JSON: the filter yields true

# walk URL QUERY OUT: follows `next` from QUERY to the end; one JSON page per line in OUT,
# "first last" headers per page in OUT.hdr. Needs $AUTH.
walk() {
  local url=$1 query=$2 out=$3 next='' page
  : >"$out"; : >"$out.hdr"
  for _ in $(seq 1 2000); do
    if [[ -n $next ]]; then page=$(get "$url?$query&next=$next" "${AUTH[@]}" -H "$ACCEPT")
    else page=$(get "$url?$query" "${AUTH[@]}" -H "$ACCEPT"); fi
    [[ $(status) == 200 ]] || { echo "walk: status $(status) at next=$next"; return 1; }
    printf '%s\n' "$page" >>"$out" # the server writes compact one-line JSON
    echo "$(header X-TAXII-Date-Added-First) $(header X-TAXII-Date-Added-Last)" >>"$out.hdr"
    next=$(jq -r 'if .more then .next else empty end' <<<"$page")
    [[ -z $next ]] && return 0
  done
  return 1
}

start main --seed 7 --taxii-objects $N --taxii-user alice --taxii-password 's3cret:x'
BASE="http://127.0.0.1:$main_PORT/taxii2"
AUTH=(-u 'alice:s3cret:x')
COLL="$BASE/api/collections"

# ---- discovery, API root, collections -------------------------------------------------------
body=$(get "$BASE/" "${AUTH[@]}" -H "$ACCEPT")
check "discovery: 200, TAXII content type, default API root among api_roots" \
  test "$(status)" = 200 -a "$(header Content-Type)" = 'application/taxii+json;version=2.1'
check "discovery body" jqt '.title != null and .default == "/taxii2/api/" and
  (.api_roots | index("/taxii2/api/")) != null' "$body"
body=$(get "$BASE/api/" "${AUTH[@]}" -H "$ACCEPT")
check "api root: versions holds TAXII 2.1, max_content_length" jqt \
  '(.versions | index("application/taxii+json;version=2.1")) != null and
   (.max_content_length | type == "number") and .title != null' "$body"
body=$(get "$COLL/" "${AUTH[@]}" -H "$ACCEPT")
check "collections: RST's three Threat Feed ids and titles plus Report Hub, read-only" jqt '
  ([.collections[] | {(.id): .title}] | add) == {
    "689709ee-8496-4da2-997d-e9face24eee9": "RST Threat Feed: High Risk Indicators",
    "98ab279c-a6cc-4efc-9442-87bd8a9b4577": "RST Threat Feed: Medium Risk Indicators",
    "b2e8fa09-1389-4fab-be65-ba337b190f92": "RST Threat Feed: Low Risk Indicators",
    "f3b1c6d2-8a4e-4b7f-9c15-2d6e0a9b7c31": "RST Report Hub"}
  and all(.collections[]; .can_read and (.can_write | not)
          and .media_types == ["application/stix+json;version=2.1"])' "$body"
body=$(get "$COLL/$HIGH/" "${AUTH[@]}" -H "$ACCEPT")
check "one collection by id" jqt '.id == "689709ee-8496-4da2-997d-e9face24eee9" and .can_read' "$body"
get "$COLL/00000000-0000-4000-8000-000000000000/objects/" "${AUTH[@]}" -H "$ACCEPT" >/dev/null
check "unknown collection: 404" test "$(status)" = 404
get "$COLL/$HIGH/objects" "${AUTH[@]}" -H "$ACCEPT" >/dev/null
check "a path without its trailing slash: 404" test "$(status)" = 404

# ---- authentication and content negotiation ---------------------------------------------------
get "$COLL/" -H "$ACCEPT" >/dev/null
check "no credentials: 401 with WWW-Authenticate Basic" \
  test "$(status)" = 401 -a "$(header WWW-Authenticate | cut -d' ' -f1)" = Basic
get "$COLL/" -u alice:wrong -H "$ACCEPT" >/dev/null
check "bad password: 401" test "$(status)" = 401
get "$COLL/$HIGH/objects/" -u alice:wrong -H "$ACCEPT" >/dev/null
check "bad password on objects: 401" test "$(status)" = 401
body=$(get "$COLL/" "${AUTH[@]}" -H 'Accept: application/json')
check "Accept application/json: 406 with a TAXII error body" \
  jqt '.http_status == "406" and .title != null' "$body"
check "406 status" test "$(status)" = 406
get "$COLL/" "${AUTH[@]}" -H 'Accept: application/vnd.oasis.taxii+json; version=2.0' >/dev/null
check "TAXII 2.0 media type: 406" test "$(status)" = 406
get "$COLL/" "${AUTH[@]}" -H 'Accept: application/json, */*' >/dev/null
check "wildcards only: 406 (as medallion)" test "$(status)" = 406
get "$COLL/" "${AUTH[@]}" -H 'Accept: text/html, application/taxii+json' >/dev/null
check "a TAXII item without version among others: 200" test "$(status)" = 200
curl -s -o /dev/null -w '%{http_code}' "${AUTH[@]}" -H "$ACCEPT" -X POST -d '{}' \
  "$COLL/$HIGH/objects/" >"$WORK/status"
check "POST objects to a read-only collection: 403" test "$(status)" = 403

# ---- paging: every version exactly once -------------------------------------------------------
walk "$COLL/$HIGH/objects/" 'limit=200&match[version]=all' "$WORK/all" || fail "walk all versions"
jq -c '.objects[] | [.id, .modified // .created]' "$WORK/all" >"$WORK/all.versions"
check "match[version]=all walk: $N entries, (id, version) unique" \
  test "$(wc -l <"$WORK/all.versions")" = $N -a "$(sort -u "$WORK/all.versions" | wc -l)" = $N
check "pages of limit=200: 10 pages, all but the last with more and next" \
  test "$(wc -l <"$WORK/all")" = 10 -a "$(jq -s '[.[:-1][] | select(.more and .next)] | length' "$WORK/all")" = 9
check "the last page has more false" test "$(tail -n1 "$WORK/all" | jq .more)" = false
distinct=$(jq -r '.[0]' "$WORK/all.versions" | sort -u | wc -l)
walk "$COLL/$HIGH/objects/" 'limit=200' "$WORK/last" || fail "walk latest versions"
jq -r '.objects[].id' "$WORK/last" >"$WORK/last.ids"
check "default walk (last versions): each of the $distinct objects exactly once" \
  test "$(wc -l <"$WORK/last.ids")" = "$distinct" -a "$(sort -u "$WORK/last.ids" | wc -l)" = "$distinct"
check "revoked versions exist and replace their first version" \
  test "$distinct" -lt $N -a "$(jq -s '[.[].objects[] | select(.revoked)] | length' "$WORK/last")" = $((N - distinct))
LAST=$(jq -s . "$WORK/last") # every page of the default walk, as one array
check "X-TAXII-Date-Added headers on every page, in order" \
  bash -c "awk '{print \$1; print \$2}' '$WORK/last.hdr' | sort -c && ! grep -q '^ ' '$WORK/last.hdr'"
check "every type of object is served, the custom one included" jqt \
  '([.[].objects[].type] | unique) == ["attack-pattern","identity","indicator","intrusion-set",
    "malware","marking-definition","note","relationship","threat-actor","vulnerability",
    "x-rst-sighting-stats"]' "$LAST"
check "indicators: STIX patterns of every IoC kind, ORed and ANDed ones, RST x_ properties" jqt '
  [.[].objects[] | select(.type == "indicator")] as $i
  | ($i | all(.pattern_type == "stix" and (.x_rst_score | type == "number") and .valid_from
              and .valid_until and (.labels | length > 0) and (.confidence | type == "number")
              and (.object_marking_refs | length == 1)))
  and ([$i[].pattern | capture("^\\[(?<t>[a-z0-9-]+):(?<p>[^ ]+)").t + ":" +
        capture("^\\[(?<t>[a-z0-9-]+):(?<p>[^ ]+)").p] | unique
       | contains(["ipv4-addr:value","ipv6-addr:value","domain-name:value","url:value",
                   "file:hashes.MD5","file:hashes.'"'"'SHA-1'"'"'","file:hashes.'"'"'SHA-256'"'"'"]))
  and ($i | any(.pattern | test(" OR file:hashes")))
  and ($i | any(.pattern | test(" AND ")))' "$LAST"
check "TLP 2.0 ids and the TLP 1.0 WHITE id in object_marking_refs" jqt '
  [.[].objects[].object_marking_refs // [] | .[]] | unique
  | contains(["marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
              "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9"])' "$LAST"
check "relationships and notes point at objects of the same collection" jqt '
  [.[].objects[]] as $o | ($o | map(.id) | unique) as $ids
  | [$o[] | select(.type == "relationship") | .source_ref, .target_ref] + [$o[] | select(.type == "note") | .object_refs[]]
  | all(. as $r | $ids | index($r) != null)' "$LAST"
check "attack patterns carry mitre-attack external ids" jqt '
  [.[].objects[] | select(.type == "attack-pattern") | .external_references[0]]
  | all(.source_name == "mitre-attack" and (.external_id | test("^T[0-9]{4}(\\.[0-9]{3})?$")))' \
  "$LAST"
body=$(get "$COLL/$HIGH/objects/?limit=5000" "${AUTH[@]}" -H "$ACCEPT")
check "limit above the server's cap (1000) is cut to 1000, more true" \
  jqt '(.objects | length) == 1000 and .more' "$body"
get "$COLL/$HIGH/objects/?limit=0" "${AUTH[@]}" -H "$ACCEPT" >/dev/null
check "limit=0: 400" test "$(status)" = 400

# ---- order by (date_added, id); ties across page boundaries --------------------------------------
# A small collection keeps the limit=7 walk short: 400 entries, 250 of them in one tie.
start ties --seed 7 --taxii-objects 400
TCOLL="http://127.0.0.1:$ties_PORT/taxii2/api/collections"
AUTH_SAVED=("${AUTH[@]}"); AUTH=()
walk "$TCOLL/$HIGH/manifest/" 'limit=7&match[version]=all' "$WORK/m7" || fail "manifest walk limit 7"
walk "$TCOLL/$HIGH/manifest/" 'limit=1000&match[version]=all' "$WORK/m1000" || fail "manifest walk 1000"
AUTH=("${AUTH_SAVED[@]}")
jq -r '.objects[] | .date_added + " " + .id' "$WORK/m7" >"$WORK/m7.seq"
jq -r '.objects[] | .date_added + " " + .id' "$WORK/m1000" >"$WORK/m1000.seq"
check "manifest in pages of 7 and of 1000: the same 400 records in the same order" \
  bash -c "test \$(wc -l <'$WORK/m7.seq') = 400 && cmp -s '$WORK/m7.seq' '$WORK/m1000.seq'"
check "records sorted by (date_added, id)" sort -c "$WORK/m7.seq"
TIE=$(cut -d' ' -f1 "$WORK/m7.seq" | uniq -c | sort -rn | head -n1)
TIE_N=${TIE% *}; TIE_N=${TIE_N// /}; TIE_T=${TIE##* }
check "many objects share one date_added ($TIE_N at $TIE_T)" test "$TIE_N" -ge 100
check "a page boundary of limit=7 falls inside that tie" bash -c \
  "grep -c '$TIE_T' '$WORK/m7.hdr' | awk '{exit !(\$1 >= 2)}'"
check "manifest records carry version and media_type" jqt \
  'all(.objects[]; .version and .media_type == "application/stix+json;version=2.1")' \
  "$(head -n1 "$WORK/m7")"

# ---- added_after is exclusive --------------------------------------------------------------------
body=$(get "$TCOLL/$HIGH/manifest/?match[version]=all&limit=1000&added_after=$TIE_T" -H "$ACCEPT")
check "added_after = a tie's date_added: none of the tie, the first later one next" jqt \
  "(.objects | all(.date_added > \"$TIE_T\")) and (.objects | length > 0)" "$body"
check "added_after: X-TAXII-Date-Added-First is after it" \
  test "$(header X-TAXII-Date-Added-First)" \> "$TIE_T"
before=$(grep -B1 -m1 "^$TIE_T" "$WORK/m7.seq" | head -n1 | cut -d' ' -f1)
body=$(get "$TCOLL/$HIGH/manifest/?match[version]=all&limit=1000&added_after=$before" -H "$ACCEPT")
check "added_after = the date just before the tie: the whole tie first" jqt \
  "[.objects[:$TIE_N][].date_added] | unique == [\"$TIE_T\"]" "$body"
get "$COLL/$HIGH/objects/?added_after=yesterday" "${AUTH[@]}" -H "$ACCEPT" >/dev/null
check "malformed added_after: 400" test "$(status)" = 400
body=$(get "$COLL/$HIGH/objects/?added_after=2099-01-01T00:00:00.000000Z" "${AUTH[@]}" -H "$ACCEPT")
check "nothing after: {} without X-TAXII headers" \
  test "$body" = '{}' -a -z "$(header X-TAXII-Date-Added-First)"

# ---- match filters and versions -----------------------------------------------------------------
body=$(get "$COLL/$HIGH/objects/?limit=300&match[type]=malware,note" "${AUTH[@]}" -H "$ACCEPT")
check "match[type]=malware,note: only those" jqt \
  '(.objects | length > 0) and ([.objects[].type] | unique) == ["malware","note"]' "$body"
body=$(get "$COLL/$REPORTS/objects/?limit=50&match[type]=report" "${AUTH[@]}" -H "$ACCEPT")
check "Report Hub: reports with object_refs" jqt \
  '(.objects | length > 0) and all(.objects[]; .type == "report" and (.object_refs | length > 5)
   and (.external_references[0].external_id | test("^[0-9]{8}_.*_report_0x")))' "$body"
rid=$(jq -r '.objects[0].object_refs | map(select(startswith("indicator--")))[0]' <<<"$body")
body=$(get "$COLL/$REPORTS/objects/?match[id]=$rid" "${AUTH[@]}" -H "$ACCEPT")
check "a report's indicator is in the same collection (match[id])" \
  jqt "(.objects | length) == 1 and .objects[0].id == \"$rid\"" "$body"
revoked=$(jq -r 'select(.objects) | .objects[] | select(.revoked) | .id' "$WORK/last" | head -n1)
body=$(get "$COLL/$HIGH/objects/?match[id]=$revoked&match[version]=all" "${AUTH[@]}" -H "$ACCEPT")
check "match[version]=all: the first version then the revoked one, later by date_added" jqt \
  '(.objects | length) == 2 and (.objects[0].revoked | not) and .objects[1].revoked
   and .objects[1].modified > .objects[0].modified' "$body"
body=$(get "$COLL/$HIGH/objects/?match[id]=$revoked&match[version]=first" "${AUTH[@]}" -H "$ACCEPT")
check "match[version]=first: the unrevoked version" jqt '(.objects | length) == 1 and (.objects[0].revoked | not)' "$body"
body=$(get "$COLL/$HIGH/objects/$revoked/versions/" "${AUTH[@]}" -H "$ACCEPT")
check "versions endpoint: two versions" jqt '(.versions | length) == 2' "$body"
v1=$(jq -r '.versions[0]' <<<"$body")
body=$(get "$COLL/$HIGH/objects/$revoked/?match[version]=$v1" "${AUTH[@]}" -H "$ACCEPT")
check "get an object at an exact version" jqt \
  "(.objects | length) == 1 and .objects[0].modified == \"$v1\"" "$body"
get "$COLL/$HIGH/objects/?match[version]=all,last" "${AUTH[@]}" -H "$ACCEPT" >/dev/null
check "match[version]=all,last: 400" test "$(status)" = 400
get "$COLL/$HIGH/objects/indicator--00000000-0000-4000-8000-000000000000/" "${AUTH[@]}" -H "$ACCEPT" >/dev/null
check "unknown object: 404" test "$(status)" = 404
body=$(get "$COLL/$HIGH/objects/?match%5Btype%5D=vulnerability&limit=3" "${AUTH[@]}" -H "$ACCEPT")
check "percent-encoded match%5Btype%5D works" jqt '[.objects[].type] | unique == ["vulnerability"]' "$body"

# ---- cursors: changed parameters, forged, expired --------------------------------------------------
page=$(get "$COLL/$HIGH/objects/?limit=10&match[type]=indicator" "${AUTH[@]}" -H "$ACCEPT")
next=$(jq -r .next <<<"$page")
get "$COLL/$HIGH/objects/?limit=10&match[type]=indicator&next=$next" "${AUTH[@]}" -H "$ACCEPT" >/dev/null
check "next with the same parameters: 200" test "$(status)" = 200
body=$(get "$COLL/$HIGH/objects/?limit=10&match[type]=malware&next=$next" "${AUTH[@]}" -H "$ACCEPT")
check "next with a changed match[type]: 400 'params changed'" \
  jqt '.http_status == "400" and (.description | test("params changed"))' "$body"
body=$(get "$COLL/$HIGH/objects/?limit=10&next=${next}" "${AUTH[@]}" -H "$ACCEPT")
check "next with a parameter dropped: 400" test "$(status)" = 400
body=$(get "$COLL/$HIGH/objects/?limit=10&match[type]=indicator&next=${next:0:51}$([[ ${next:51} == 0 ]] && echo 1 || echo 0)" "${AUTH[@]}" -H "$ACCEPT")
check "a forged next: 400 'not valid'" jqt '.description | test("not valid")' "$body"

start short --seed 7 --taxii-objects 300 --taxii-next-ttl-ms 400
SCOLL="http://127.0.0.1:$short_PORT/taxii2/api/collections"
page=$(get "$SCOLL/$HIGH/objects/?limit=10" -H "$ACCEPT")
next=$(jq -r .next <<<"$page")
sleep 0.7
body=$(get "$SCOLL/$HIGH/objects/?limit=10&next=$next" -H "$ACCEPT")
check "a cursor idle longer than --taxii-next-ttl-ms: 400 'expired'" \
  jqt '.http_status == "400" and (.description | test("expired"))' "$body"
get "$SCOLL/" -H "$ACCEPT" >/dev/null
check "without --taxii-user no credentials are needed" test "$(status)" = 200

# ---- medallion's cursors: one next value for every page ----------------------------------------
start med --seed 7 --taxii-objects $N --taxii-medallion-next
MCOLL="http://127.0.0.1:$med_PORT/taxii2/api/collections"
SAVED_AUTH=("${AUTH[@]}"); AUTH=()
walk "$MCOLL/$HIGH/objects/" 'limit=400&match[version]=all' "$WORK/med" || fail "medallion walk"
AUTH=("${SAVED_AUTH[@]}")
check "--taxii-medallion-next: 5 pages, every one but the last with the same next" \
  test "$(wc -l <"$WORK/med")" = 5 -a "$(jq -r 'select(.more) | .next' "$WORK/med" | sort -u | wc -l)" = 1
jq -c '.objects[] | [.id, .modified // .created]' "$WORK/med" >"$WORK/med.versions"
check "--taxii-medallion-next: the walk gives the same $N versions as the stateless cursors" \
  cmp -s "$WORK/med.versions" "$WORK/all.versions"
first=$(head -n1 "$WORK/med" | jq -r .next)
get "$MCOLL/$HIGH/objects/?limit=400&match[version]=all&next=$first" -H "$ACCEPT" >/dev/null
check "--taxii-medallion-next: the walk's id is forgotten at its end (400)" test "$(status)" = 400

# ---- determinism --------------------------------------------------------------------------------------
start again --seed 7 --taxii-objects $N
start other --seed 8 --taxii-objects $N
a=$(get "$COLL/$HIGH/objects/?limit=200" "${AUTH[@]}" -H "$ACCEPT" | jq -c '.objects')
b=$(get "http://127.0.0.1:$again_PORT/taxii2/api/collections/$HIGH/objects/?limit=200" -H "$ACCEPT" | jq -c '.objects')
c=$(get "http://127.0.0.1:$other_PORT/taxii2/api/collections/$HIGH/objects/?limit=200" -H "$ACCEPT" | jq -c '.objects')
check "same seed: the same objects, byte for byte" test "$a" = "$b"
check "another seed: other objects" test "$a" != "$c"

# ---- TLS -------------------------------------------------------------------------------------------------
if "$HERE/certs/make_certs.sh" "$WORK/tls"; then
  start tls --taxii-objects 100 --tls-cert "$WORK/tls/server.pem" --tls-key "$WORK/tls/server.key"
  body=$(get "https://127.0.0.1:$tls_PORT/taxii2/" --cacert "$WORK/tls/ca.pem" -H "$ACCEPT")
  check "TLS: discovery over HTTPS verified with the test CA" jqt '.default == "/taxii2/api/"' "$body"
  curl -s -o /dev/null --max-time 5 -H "$ACCEPT" "https://127.0.0.1:$tls_PORT/taxii2/"
  check "TLS: without the CA the certificate is refused (curl exit 60)" test $? = 60
else
  fail "TLS: make_certs.sh failed"
fi
"$SIM" --tls-cert "$WORK/nothing.pem" --tls-key "$WORK/nothing.pem" 2>"$WORK/bad.err"
check "a missing --tls-cert file: exit 2 naming the option" \
  bash -c "test $? = 2 && grep -q -- '--tls-cert' '$WORK/bad.err'"

echo "taxii_test: $FAILS failure(s)"
test "$FAILS" = 0

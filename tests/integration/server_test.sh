#!/usr/bin/env bash
# server_test.sh: `tqhost serve`'s core through a real client: TLS (generated certificate,
# trusted by file and by fingerprint, reused on restart, key 0600), plain HTTP only on
# loopback, the error shapes of unknown routes and methods, the body cap, slow clients and a
# header flood, SIGTERM with a job in flight, and the CLI writing while the server runs.
# Usage: server_test.sh TQHOST
set -u
TQHOST=$(realpath "$1")
PY=/usr/bin/python3
WORK=$(mktemp -d)
DB=$WORK/lib.db
PIDS=()
FAILS=0
cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT

fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }
ok() { echo "ok: $*"; }

# start NAME ARGS...: starts a server in the background, waits for its ready line; sets
# URL, FP, SPID. Its stdout and stderr go to $WORK/NAME.out / .err.
start() {
  local name=$1
  shift
  TQHOST_LOG=info TQHOST_SERVER_TEST_HOOKS=1 "$TQHOST" --db "$DB" serve "$@" \
    >"$WORK/$name.out" 2>"$WORK/$name.err" &
  SPID=$!
  PIDS+=("$SPID")
  local deadline=$((SECONDS + 60))
  while ((SECONDS < deadline)); do
    if grep -q '^tqhost serving on ' "$WORK/$name.out"; then
      URL=$(sed -n 's/^tqhost serving on \([^ ]*\) .*/\1/p' "$WORK/$name.out")
      FP=$(sed -n 's/.*(sha256 fingerprint \([0-9a-f]*\))$/\1/p' "$WORK/$name.out")
      return 0
    fi
    kill -0 "$SPID" 2>/dev/null || break
    sleep 0.1
  done
  echo "server $name did not start:"
  cat "$WORK/$name.err"
  return 1
}

# stop: SIGTERM and wait; returns the exit status.
stop() {
  kill -TERM "$SPID" 2>/dev/null
  wait "$SPID"
}

CURL=(curl -sS --max-time 30)

# ---- TLS with the generated certificate --------------------------------------------------
start tls --listen 127.0.0.1:0 --timeout 3 || exit 1
CRT=$DB.tls.crt
KEY=$DB.tls.key
[[ $URL == https://127.0.0.1:* ]] && ok "ready line gives an https URL" || fail "URL $URL"
[[ ${#FP} -eq 64 ]] && ok "ready line gives a SHA-256 fingerprint" || fail "fingerprint '$FP'"
[[ $(wc -l <"$WORK/tls.out") -eq 1 ]] && ok "exactly one line on stdout" || fail "stdout: $(cat "$WORK/tls.out")"
[[ $(stat -c %a "$KEY") == 600 ]] && ok "key mode 0600" || fail "key mode $(stat -c %a "$KEY")"
want_fp=$(openssl x509 -in "$CRT" -noout -fingerprint -sha256 | sed 's/.*=//; s/://g' | tr A-F a-f)
[[ $want_fp == "$FP" ]] && ok "fingerprint is SHA-256 of the DER certificate" || fail "fp $FP vs $want_fp"
openssl x509 -in "$CRT" -noout -ext subjectAltName | grep -q 'DNS:localhost' &&
  openssl x509 -in "$CRT" -noout -ext subjectAltName | grep -q 'IP Address:127.0.0.1' &&
  ok "certificate names localhost and 127.0.0.1" || fail "SAN: $(openssl x509 -in "$CRT" -noout -ext subjectAltName)"

body=$("${CURL[@]}" --cacert "$CRT" "$URL/api/health")
$PY - "$body" <<'EOF' && ok "health over TLS with --cacert" || fail "health: $body"
import json, sys
d = json.loads(sys.argv[1])["data"]
assert d["library"] == "ok" and d["engine"] == "ok" and d["version"], d
EOF
"${CURL[@]}" -o /dev/null "$URL/api/health" 2>/dev/null && fail "an unknown certificate was accepted" ||
  ok "curl without the certificate refuses it"
HOSTPORT=${URL#https://}
$PY - "$HOSTPORT" "$FP" <<'EOF' && ok "client pinning the fingerprint" || fail "pinning by fingerprint"
import hashlib, http.client, json, ssl, sys
host, port = sys.argv[1].rsplit(":", 1)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
c = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=30)
c.connect()
der = c.sock.getpeercert(binary_form=True)
assert hashlib.sha256(der).hexdigest() == sys.argv[2]
c.request("GET", "/api/health")
r = c.getresponse()
assert r.status == 200 and json.loads(r.read())["data"]["engine"] == "ok"
EOF

# ---- error shapes --------------------------------------------------------------------------
check_error() { # check_error WANT_STATUS DESC CURL-ARGS...
  local want=$1 desc=$2
  shift 2
  local out
  out=$("${CURL[@]}" --cacert "$CRT" -w '\n%{http_code}' "$@")
  local code=${out##*$'\n'} body=${out%$'\n'*}
  if [[ $code != "$want" ]]; then
    fail "$desc: status $code (want $want): $body"
    return
  fi
  $PY - "$want" "$body" <<'EOF' && ok "$desc: $want in the envelope shape" || fail "$desc: shape $body"
import json, sys
want, d = int(sys.argv[1]), json.loads(sys.argv[2])
if want == 400:
    errs = d["data"]["errors"]
    assert isinstance(errs, dict) and all(isinstance(v, list) and v for v in errs.values()), d
else:
    assert list(d) == ["errors"] and isinstance(d["errors"], list) and d["errors"][0], d
EOF
}
check_error 404 "unknown route" "$URL/api/no-such-thing"
check_error 404 "unknown nested route" "$URL/api/health/extra"
check_error 405 "wrong method" -X DELETE "$URL/api/health"
check_error 400 "'..' segment" --path-as-is "$URL/api/../metrics"
check_error 400 "encoded '..' segment" --path-as-is "$URL/api/%2e%2e/metrics"
check_error 400 "encoded NUL" "$URL/api/health%00"
check_error 400 "bad ms argument of the test hook" -X POST "$URL/api/_test/engine-sleep?ms=abc"

# ---- body cap ------------------------------------------------------------------------------
head -c 9437184 /dev/zero | tr '\0' 'a' >"$WORK/big.json" # 9 MiB > the 8 MiB default
check_error 413 "body over the cap (Content-Length)" -X POST -H 'Content-Type: application/json' \
  --data-binary @"$WORK/big.json" "$URL/api/_test/engine-sleep"
check_error 413 "body over the cap (chunked)" -X POST -H 'Transfer-Encoding: chunked' \
  -H 'Content-Type: application/json' --data-binary @"$WORK/big.json" "$URL/api/_test/engine-sleep"
if grep -q 'test hook: the engine sleeps' "$WORK/tls.err"; then
  fail "a request over the body cap reached its handler"
else
  ok "nothing ran for the refused bodies"
fi

# ---- slow clients and header floods ------------------------------------------------------
$PY - "$HOSTPORT" "$CRT" <<'EOF' && ok "20 slow clients do not stop the server; cut at the timeout" || fail "slow clients"
import http.client, socket, ssl, sys, threading, time
host, port = sys.argv[1].rsplit(":", 1)
port = int(port)
ctx = ssl.create_default_context(cafile=sys.argv[2])
# 10 trickle an HTTP request inside TLS one header byte a second; 10 never finish TLS.
slow = []
for i in range(20):
    s = socket.create_connection((host, port), timeout=30)
    if i < 10:
        s = ctx.wrap_socket(s, server_hostname="localhost")
        s.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    else:
        s.sendall(b"\x16\x03")  # the start of a ClientHello, never completed
    slow.append(s)
closed = [None] * len(slow)
stop = time.monotonic() + 40
def trickle(i, s):
    while time.monotonic() < stop:
        try:
            if i < 10:
                s.sendall(b"a")
            else:
                s.settimeout(1)
                if s.recv(1) == b"":
                    raise ConnectionResetError
        except socket.timeout:
            pass
        except (OSError, ssl.SSLError):
            closed[i] = time.monotonic()
            return
        time.sleep(1)
threads = [threading.Thread(target=trickle, args=(i, s), daemon=True) for i, s in enumerate(slow)]
t0 = time.monotonic()
for t in threads:
    t.start()
# the server answers meanwhile
for _ in range(5):
    c = http.client.HTTPSConnection(host, port, context=ctx, timeout=10)
    c.request("GET", "/api/health")
    r = c.getresponse()
    assert r.status == 200, r.status
    r.read()
    c.close()
    time.sleep(0.3)
for t in threads:
    t.join(45)
cut = [c for c in closed if c is not None]
assert len(cut) == 20, f"only {len(cut)} of 20 slow connections were cut"
late = max(cut) - t0
assert late < 30, f"a slow connection lasted {late:.1f}s with a 3s timeout"
print(f"  slow connections cut after {min(cut) - t0:.1f}..{late:.1f}s")
EOF

$PY - "$HOSTPORT" "$CRT" <<'EOF' && ok "header flood refused, server still answers" || fail "header flood"
import http.client, socket, ssl, sys
host, port = sys.argv[1].rsplit(":", 1)
ctx = ssl.create_default_context(cafile=sys.argv[2])
s = ctx.wrap_socket(socket.create_connection((host, int(port)), timeout=30), server_hostname="localhost")
req = b"GET /api/health HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-Flood-%d: %s\r\n" % (i, b"v" * 1000) for i in range(1000)) + b"\r\n"
status = None
try:
    s.sendall(req)
    data = s.recv(65536)
    status = int(data.split(b" ")[1]) if data.startswith(b"HTTP/1.1 ") else None
except (OSError, ssl.SSLError):
    status = "closed"
assert status in (413, 431, "closed", None) and status != 200, status
c = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=10)
c.request("GET", "/api/health")
assert c.getresponse().status == 200
EOF

# ---- secrets stay out of the access log and the metrics ------------------------------------
"${CURL[@]}" --cacert "$CRT" -o /dev/null -H 'Authorization: Bearer SECRETTOKEN0123456789' \
  "$URL/api/health?access_token=QUERYSECRET987"
metrics=$("${CURL[@]}" --cacert "$CRT" "$URL/metrics")
grep -q 'GET /api/health 200' "$WORK/tls.err" && ok "access log line per request" || fail "no access log line"
if grep -q 'SECRETTOKEN\|QUERYSECRET' "$WORK/tls.err" || grep -q 'SECRETTOKEN\|QUERYSECRET' <<<"$metrics"; then
  fail "a token reached the log or the metrics"
else
  ok "no token in the log or the metrics"
fi
grep -q '^tqhost_http_requests_total{route="/api/health",method="GET",status="200"} ' <<<"$metrics" &&
  grep -q '^tqhost_http_request_duration_seconds_bucket{route="/api/health",le="+Inf"} ' <<<"$metrics" &&
  grep -q '^tqhost_engine_queue_depth ' <<<"$metrics" &&
  ok "metrics: requests, latency histogram, queue depth" || fail "metrics: $metrics"

# ---- the CLI writes while the server runs ----------------------------------------------------
if "$TQHOST" --db "$DB" indicator add 198.51.100.7 >/dev/null 2>"$WORK/cli.err"; then
  ok "tqhost indicator add while the server runs"
else
  fail "indicator add while serving: $(cat "$WORK/cli.err")"
fi

# ---- SIGTERM with a job in flight ---------------------------------------------------------
"${CURL[@]}" --cacert "$CRT" -X POST -o "$WORK/job.out" -w '%{http_code}' \
  "$URL/api/_test/engine-sleep?ms=1500" >"$WORK/job.code" &
CURL_PID=$!
deadline=$((SECONDS + 30))
until grep -q 'test hook: the engine sleeps 1500 ms' "$WORK/tls.err" || ((SECONDS > deadline)); do sleep 0.05; done
stop
rc=$?
wait "$CURL_PID"
[[ $rc -eq 0 ]] && ok "SIGTERM: exit 0" || fail "SIGTERM: exit $rc"
[[ $(cat "$WORK/job.code") == 200 ]] && grep -q '"slept_ms":1500' "$WORK/job.out" &&
  ok "the job in flight got its answer" || fail "job in flight: $(cat "$WORK/job.code") $(cat "$WORK/job.out")"

# ---- restart: same certificate ----------------------------------------------------------
first_fp=$FP
start tls2 --listen 127.0.0.1:0 || exit 1
[[ $FP == "$first_fp" ]] && ok "the certificate is reused on restart" || fail "new fingerprint $FP"
"${CURL[@]}" --cacert "$CRT" -o /dev/null "$URL/api/health" && ok "old --cacert still trusted" || fail "restart TLS"
stop

# ---- given certificate files ----------------------------------------------------------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$WORK/k.pem" -out "$WORK/c.pem" 2>/dev/null
start given --listen 127.0.0.1:0 --tls-cert "$WORK/c.pem" --tls-key "$WORK/k.pem" || exit 1
"${CURL[@]}" --cacert "$WORK/c.pem" -o /dev/null "$URL/api/health" && ok "--tls-cert/--tls-key served" || fail "given cert"
stop
out=$("$TQHOST" --db "$DB" serve --listen 127.0.0.1:0 --tls-cert "$WORK/c.pem" 2>&1)
[[ $? -ne 0 && $out == *"go together"* ]] && ok "--tls-cert without --tls-key refused" || fail "half a pair: $out"

# ---- plain HTTP only on loopback ----------------------------------------------------------
out=$("$TQHOST" --db "$DB" serve --listen 0.0.0.0:0 --insecure-http 2>&1)
rc=$?
[[ $rc -ne 0 && $out == *"give it twice"* ]] && ok "--insecure-http on 0.0.0.0 refused" || fail "0.0.0.0: rc $rc $out"
start plain --listen 127.0.0.1:0 --insecure-http || exit 1
[[ $URL == http://127.0.0.1:* && $(cat "$WORK/plain.out") == *"(plain HTTP)" ]] &&
  ok "plain HTTP on loopback" || fail "plain: $(cat "$WORK/plain.out")"
"${CURL[@]}" -o /dev/null "$URL/api/health" || fail "plain health"
stop
start plainall --listen 0.0.0.0:0 --insecure-http --insecure-http || exit 1
"${CURL[@]}" -o /dev/null "http://127.0.0.1:${URL##*:}/api/health" && ok "--insecure-http twice serves 0.0.0.0" ||
  fail "0.0.0.0 twice"
stop

if ((FAILS)); then
  echo "$FAILS failure(s)"
  exit 1
fi
echo "all server tests passed"

#!/usr/bin/env bash
# host_config_test.sh: the host configuration file ($TQHOST_CONFIG, /etc/tqhost/tqhost.yaml):
# each field takes effect (library, log_level, folders.plugins/actions, server.listen,
# server.tls_cert/tls_key), the command line and the environment win over it, relative paths
# are taken from the file's folder, and bad files fail every command naming file:line:col.
# Usage: host_config_test.sh TQHOST SOURCE_DIR
set -u
TQ=${1:?usage: host_config_test.sh TQHOST SOURCE_DIR}
SRC=${2:?usage: host_config_test.sh TQHOST SOURCE_DIR}
unset TQHOST_DB TQHOST_PLUGINS TQHOST_ACTIONS TQHOST_LOG TQHOST_NOW TQHOST_KEY_FILE
T=$(mktemp -d /tmp/tq_hostcfg_XXXXXX)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$T"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }
check() { if eval "$2"; then ok "$1"; else bad "$1: $(head -c 600 "$T/out")"; fi; }
export TQHOST_CONFIG="$T/etc/tqhost.yaml"
mkdir -p "$T/etc" "$T/cwd" "$T/pl" "$T/act"
cd "$T/cwd" || exit 1
conf() { printf '%s\n' "$@" >"$TQHOST_CONFIG"; }
run() { "$TQ" "$@" >"$T/out" 2>&1; echo $? >"$T/rc"; }
rc() { cat "$T/rc"; }

# ---- library: relative to the file's folder; --db and $TQHOST_DB win ---------------------------
conf "library: data/lib.db"
mkdir -p "$T/etc/data"
run init
check "library: init creates the file the configuration names" '[[ $(rc) == 0 && -f $T/etc/data/lib.db && ! -e $T/cwd/tqhost.db ]]'
run --db "$T/cwd/other.db" init
check "library: --db wins over the file" '[[ $(rc) == 0 && -f $T/cwd/other.db ]]'
TQHOST_DB="$T/cwd/env.db" run init
check "library: \$TQHOST_DB wins over the file" '[[ $(rc) == 0 && -f $T/cwd/env.db ]]'
run indicator add 45.83.122.166
run indicator list
check "library: later commands use it" 'grep -q 45.83.122.166 "$T/out" && [[ $("$TQ" --db "$T/cwd/other.db" indicator list | grep -c 45.83) == 0 ]]'

# ---- folders: plugins and actions; the environment wins ----------------------------------------
cp -r "$SRC/plugins/rst-whois-api" "$SRC/plugins/lib" "$T/pl/"
cp "$SRC/actions/rst-whois-api-action.yaml" "$T/act/"
conf "library: data/lib.db" "folders:" "  plugins: ../pl" "  actions: $T/act"
run plugin list
check "folders.plugins: plugin list shows that folder's plugins only" '[[ $(rc) == 0 ]] && grep -q "^rst-whois-api" "$T/out" && ! grep -q "^rst-ioc-lookup" "$T/out"'
run action list
check "folders.actions: action list shows that folder's actions only" '[[ $(rc) == 0 ]] && grep -q "rst-whois-api-action" "$T/out" && ! grep -q "rst-ioc-lookup-action" "$T/out"'
TQHOST_PLUGINS="$SRC/plugins" run plugin list
check "folders.plugins: \$TQHOST_PLUGINS wins" 'grep -q "^rst-ioc-lookup" "$T/out"'
conf "folders:" "  plugins: $T/nowhere"
run plugin list
check "folders.plugins: a missing folder is named" '[[ $(rc) == 1 ]] && grep -q "$T/nowhere" "$T/out"'

# ---- server: listen, tls_cert/tls_key; options win --------------------------------------------
# serve_ready ARGS...: starts serve, waits for its ready line (in $T/ready), leaves it running.
serve_ready() {
  "$TQ" serve "$@" >"$T/ready" 2>"$T/serve.err" &
  PIDS+=("$!")
  for _ in $(seq 1 200); do grep -q serving "$T/ready" 2>/dev/null && break; sleep 0.05; done
  kill "$!" 2>/dev/null
  wait "$!" 2>/dev/null
  cp "$T/ready" "$T/out"
}
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/etc/my.key" -out "$T/etc/my.crt" -days 2 \
  -subj /CN=tqhost-test >/dev/null 2>&1
fp=$(openssl x509 -in "$T/etc/my.crt" -noout -fingerprint -sha256 | sed 's/.*=//; s/://g' | tr A-F a-f)
conf "library: data/lib.db" "server:" "  listen: 127.0.0.2:0" "  tls_cert: my.crt" "  tls_key: my.key"
serve_ready
check "server.listen: serve listens there" 'grep -Eq "^tqhost serving on https://127\.0\.0\.2:[0-9]+ " "$T/out"'
check "server.tls_cert/tls_key: serve uses that certificate" 'grep -qi "$fp" <(tr -d : <"$T/out")'
check "server: no self-signed pair made beside the library" '[[ ! -e $T/etc/data/lib.db.tls.crt ]]'
serve_ready --listen 127.0.0.1:0
check "server.listen: --listen wins" 'grep -Eq "^tqhost serving on https://127\.0\.0\.1:[0-9]+ " "$T/out"'
serve_ready --listen 127.0.0.1:0 --insecure-http
check "server.tls_*: --insecure-http wins" 'grep -Eq "^tqhost serving on http://127\.0\.0\.1:[0-9]+ " "$T/out"'

# ---- folders.web: serve's web UI from there ---------------------------------------------------
mkdir -p "$T/webx"
echo '<!doctype html><title>hostcfg-web-marker</title>' >"$T/webx/index.html"
conf "library: data/lib.db" "folders:" "  web: ../webx"
"$TQ" serve --listen 127.0.0.1:0 --insecure-http >"$T/ready" 2>"$T/serve.err" &
wpid=$!
PIDS+=("$wpid")
for _ in $(seq 1 200); do grep -q serving "$T/ready" 2>/dev/null && break; sleep 0.05; done
wurl=$(sed -n 's/^tqhost serving on \(http:[^ ]*\) .*/\1/p' "$T/ready")
curl -sS "$wurl/" >"$T/out" 2>&1
check "folders.web: serve's web UI comes from that folder" 'grep -q hostcfg-web-marker "$T/out"'
kill "$wpid" 2>/dev/null
wait "$wpid" 2>/dev/null

# ---- log_level: $TQHOST_LOG wins -------------------------------------------------------------
conf "library: data/lib.db" "log_level: info"
serve_ready --listen 127.0.0.1:0
cp "$T/serve.err" "$T/out"
check "log_level: info lines on stderr" 'grep -q "level=info part=server msg=\"serving on" "$T/out"'
TQHOST_LOG=error serve_ready --listen 127.0.0.1:0
cp "$T/serve.err" "$T/out"
check "log_level: \$TQHOST_LOG wins" '! grep -q "level=info" "$T/out" && grep -q "^tqhost serving" "$T/ready"'
conf "library: data/lib.db" "log_level: error"
serve_ready --listen 127.0.0.1:0
cp "$T/serve.err" "$T/out"
check "log_level: error hides info" '! grep -q "level=info" "$T/out" && grep -q "^tqhost serving" "$T/ready"'

# ---- bad files: every command fails naming file:line:col; help and version still work --------
badconf() { # WHAT EXPECTED... (the file is already written)
  local what=$1; shift
  run indicator list
  local o; o=$(cat "$T/out")
  local good=1
  [[ $(rc) == 1 ]] || good=0
  for e in "$@"; do [[ $o == *"$e"* ]] || good=0; done
  if [[ $good == 1 ]]; then ok "bad file: $what"; else bad "bad file: $what (rc $(rc)): $o"; fi
}
conf "library: data/lib.db" "colour: blue"
badconf "an unknown key" "$TQHOST_CONFIG:2:9" "unknown field 'colour'"
conf "log_level: loud"
badconf "a log level off the list" "$TQHOST_CONFIG:1:12" "'loud' is not one of"
conf "server:" "  listen: nowhere"
badconf "a listen address without a port" "$TQHOST_CONFIG:2:11" "server.listen" "does not match"
conf "server:" "  tls_cert: my.crt"
badconf "a certificate without its key" "$TQHOST_CONFIG:2:3" "tls_cert and tls_key go together"
conf "folders:" "  plugins: [a, b]"
badconf "a folder that is not a string" "$TQHOST_CONFIG:2:12" "folders.plugins"
conf "library: 42"
badconf "a library that is not a string" "$TQHOST_CONFIG:1:10" "library"
conf "library: [unclosed"
badconf "YAML that does not parse" "$TQHOST_CONFIG:"
TQHOST_CONFIG="$T/none.yaml" run indicator list
check "a \$TQHOST_CONFIG that does not exist fails naming it" '[[ $(rc) == 1 ]] && grep -q "$T/none.yaml" "$T/out"'
conf "colour: blue"
run --version
check "version works whatever the file holds" '[[ $(rc) == 0 ]] && grep -q "^tqhost [0-9]" "$T/out"'
run help plugin
check "help works whatever the file holds" '[[ $(rc) == 0 ]] && grep -q "usage:" "$T/out"'
run --json indicator list
check "--json: the error is one JSON line naming file:line:col" '[[ $(rc) == 1 ]] && jq -e ".error.message | contains(\"$TQHOST_CONFIG:1:9\")" "$T/out" >/dev/null'

# A file of comments only (the packaged default, everything commented out): the defaults.
conf "# library: /var/lib/tqhost/tqhost.db" "" "   # log_level: debug"
run --db "$T/etc/data/lib.db" indicator list
check "a file of comments only holds the defaults" '[[ $(rc) == 0 ]]'
: >"$TQHOST_CONFIG"
run --db "$T/etc/data/lib.db" indicator list
check "an empty file holds the defaults" '[[ $(rc) == 0 ]]'
# The packaged default file (packaging/tqhost.yaml) is valid.
cp "$SRC/packaging/tqhost.yaml" "$TQHOST_CONFIG"
sed -i "s|/var/lib/tqhost/tqhost.db|$T/pkg.db|" "$TQHOST_CONFIG"
run init
check "packaging/tqhost.yaml is a valid configuration" '[[ $(rc) == 0 && -f $T/pkg.db ]]'

echo "host_config: $pass passed, $fail failed"
[[ $fail == 0 ]]

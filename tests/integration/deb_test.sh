#!/usr/bin/env bash
# deb_test.sh: the Debian package end to end, on this machine (the CI runs as root on a
# throwaway Debian 12): cpack -G DEB; the package's Depends and conffiles; dpkg -i; the files,
# the system user tqhost and /var/lib/tqhost; the unit checked by systemd-analyze (when
# present), then its ExecStart run as the unit would (user tqhost, no new privileges, no
# capabilities, umask 077, empty environment, its working folder); a first admin made with
# `tqhost user add`, a login, the RST plugin pointed at rstsim and an operation run and applied
# through the API; SIGTERM; nothing written outside /var/lib/tqhost; dpkg --purge leaves
# nothing (user, /etc/tqhost, /var/lib/tqhost, /usr/share/tqhost).
# Not root, or tqhost already on the machine: exit 77 (ctest SKIP_RETURN_CODE), saying why.
# Usage: deb_test.sh BUILD_DIR SOURCE_DIR RSTSIM
set -u
BUILD=${1:?usage: deb_test.sh BUILD_DIR SOURCE_DIR RSTSIM}
SRC=${2:?}
SIM=${3:?}
if [[ $(id -u) != 0 ]]; then
  echo "SKIP: deb_test installs a package on this machine and needs root (the CI runs as root)"
  exit 77
fi
for tool in dpkg dpkg-deb cpack dpkg-shlibdeps runuser setpriv curl jq; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool is missing (scripts/install-deps)"; exit 1; }
done
if dpkg-query -W -f='${Status}' tqhost 2>/dev/null | grep -q installed || getent passwd tqhost >/dev/null ||
  [[ -e /etc/tqhost || -e /var/lib/tqhost ]]; then
  echo "SKIP: tqhost (package, user or folders) is already on this machine: the test would purge it"
  exit 77
fi
T=$(mktemp -d /tmp/tq_deb_XXXXXX)
chmod 755 "$T"
PIDS=()
INSTALLED=0
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  [[ $INSTALLED == 1 ]] && dpkg --purge tqhost >/dev/null 2>&1
  rm -rf "$T"
}
trap cleanup EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }
check() { if eval "$2"; then ok "$1"; else bad "$1: $(head -c 800 "$T/out")"; fi; }
: >"$T/out"

# ---- the package ------------------------------------------------------------------------------
start=$(date +%s.%N)
(cd "$BUILD" && cpack -G DEB -B "$T/cpack" --config "$BUILD/CPackConfig.cmake") >"$T/out" 2>&1
check "cpack -G DEB" '[[ $? == 0 ]]'
DEB=$(ls "$T"/cpack/tqhost_*.deb 2>/dev/null | head -1)
echo "cpack took $(echo "$(date +%s.%N) - $start" | bc) s; $(stat -c %s "$DEB" 2>/dev/null) bytes"
[[ -f $DEB ]] || { echo "FATAL: no .deb"; exit 1; }
dpkg-deb -f "$DEB" Depends >"$T/out"
for lib in libsqlite3-0 liblua5.4-0 libcurl4 libcjson1 libyaml-0-2 libmicrohttpd12 libsodium23 \
  libarchive13 libgnutls30 libcsv3 adduser; do
  check "Depends names $lib" 'grep -q "\b$lib\b" "$T/out"'
done
dpkg-deb --ctrl-tarfile "$DEB" | tar -xO ./conffiles >"$T/out" 2>&1
check "/etc/tqhost/tqhost.yaml is a conffile" 'grep -qx /etc/tqhost/tqhost.yaml "$T/out"'

# ---- dpkg -i ----------------------------------------------------------------------------------
INSTALLED=1
dpkg -i "$DEB" >"$T/out" 2>&1
check "dpkg -i" '[[ $? == 0 ]] && dpkg-query -W -f="\${Status}" tqhost | grep -q "install ok installed"'
check "/usr/bin/tqhost" '[[ -x /usr/bin/tqhost ]]'
check "the bundled plugins, from their packages" '[[ -f /usr/share/tqhost/plugins/rst-ioc-lookup/manifest.yaml && -f /usr/share/tqhost/plugins/rst-ioc-lookup/.tqp-origin && -d /usr/share/tqhost/plugins/lib/rst ]]'
check "schemas, actions, completion" '[[ -f /usr/share/tqhost/schemas/host.schema.json && -f /usr/share/tqhost/actions/rst-ioc-lookup-action.yaml && -f /usr/share/bash-completion/completions/tqhost ]]'
# The man page and docs: in the package (a machine whose dpkg excludes /usr/share/man and doc,
# as slim images do, would not unpack them).
dpkg-deb -c "$DEB" >"$T/out"
check "the package holds the man page and the docs" 'grep -q " ./usr/share/man/man1/tqhost.1$" "$T/out" && grep -q " ./usr/share/doc/tqhost/install.md$" "$T/out"'
check "the default host configuration" 'cmp -s "$SRC/packaging/tqhost.yaml" /etc/tqhost/tqhost.yaml'
getent passwd tqhost >"$T/out"
IFS=: read -r _ _ uid gid _ home shell <"$T/out"
check "a system user tqhost" '[[ -n $uid && $uid -lt 1000 && $shell == /usr/sbin/nologin && $home == /var/lib/tqhost ]]'
check "its own group" '[[ $(getent group tqhost | cut -d: -f3) == "$gid" ]]'
stat -c '%U:%G %a' /var/lib/tqhost >"$T/out"
check "/var/lib/tqhost owned by tqhost, mode 750" '[[ $(cat "$T/out") == "tqhost:tqhost 750" ]]'
stat -c '%U' /var/lib/tqhost/tqhost.db >"$T/out" 2>&1
check "the library made by postinst, owned by tqhost" '[[ $(cat "$T/out") == tqhost ]]'
env -i /usr/bin/tqhost --version >"$T/out" 2>&1
check "tqhost --version" 'grep -Eq "^tqhost [0-9]+\.[0-9]+\.[0-9]+" "$T/out"'
UNIT=/usr/lib/systemd/system/tqhost.service
check "the systemd unit" '[[ -f $UNIT ]]'
for opt in "User=tqhost" "NoNewPrivileges=yes" "ProtectSystem=strict" "ProtectHome=yes" "PrivateTmp=yes" \
  "ReadWritePaths=/var/lib/tqhost" "SystemCallFilter=@system-service" "CapabilityBoundingSet=" \
  "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX"; do
  check "unit: $opt" 'grep -qx "$opt" "$UNIT"'
done
if command -v systemd-analyze >/dev/null; then
  # Documentation=man:tqhost(1) is checked when dpkg unpacked the man page.
  manopt=()
  [[ -f /usr/share/man/man1/tqhost.1 ]] || manopt=(--man=no)
  systemd-analyze verify "${manopt[@]}" "$UNIT" >"$T/out" 2>&1
  check "systemd-analyze verify" '[[ $? == 0 ]]'
else
  echo "note: no systemd-analyze here; the unit is not verified"
fi

# ---- the service, as the unit runs it ---------------------------------------------------------
unit() { sed -n "s/^$1=//p" "$UNIT" | head -1; }
EXEC=$(unit ExecStart) WD=$(unit WorkingDirectory) UMASK=$(unit UMask)
# An admin's edit: any free port (the conffile is the service's only configuration).
sed -i 's/^  listen: .*/  listen: 127.0.0.1:0/' /etc/tqhost/tqhost.yaml
(
  cd "$WD" && umask "$UMASK" &&
    exec setpriv --reuid=tqhost --regid=tqhost --init-groups --no-new-privs --inh-caps=-all \
      --bounding-set=-all env -i PATH=/usr/bin:/bin $EXEC
) >"$T/serve.out" 2>"$T/serve.err" &
SPID=$!
PIDS+=("$SPID")
for _ in $(seq 1 200); do grep -q serving "$T/serve.out" 2>/dev/null && break; sleep 0.05; done
cp "$T/serve.out" "$T/out"
cat "$T/serve.err" >>"$T/out"
URL=$(sed -n 's/^tqhost serving on \(https:[^ ]*\) .*/\1/p' "$T/serve.out")
check "the service listens (ready line)" '[[ -n $URL ]]'
CRT=/var/lib/tqhost/tqhost.db.tls.crt
stat -c '%U %a' /var/lib/tqhost/tqhost.db.tls.key >"$T/out" 2>&1
check "its self-signed pair in /var/lib/tqhost, key owned by tqhost, mode 600" '[[ -f $CRT && $(cat "$T/out") == "tqhost 600" ]]'
[[ $(ps -o user= -p "$(pgrep -P "$SPID" -x tqhost || echo "$SPID")" | tr -d " ") == tqhost ]] && ok "serve runs as tqhost" ||
  bad "serve runs as tqhost: $(ps -o user=,comm= --ppid "$SPID" -p "$SPID")"

curl -sS --cacert "$CRT" "$URL/" >"$T/out" 2>&1
check "the web UI served from /usr/share/tqhost/web" 'cmp -s "$T/out" /usr/share/tqhost/web/index.html'
# The first admin, as docs/install.md says (as the user tqhost, the library from the config).
PW='first-admin-pw-7c2e'
printf '%s\n' "$PW" | runuser -u tqhost -- env -i /usr/bin/tqhost user add admin --role admin >"$T/out" 2>&1
check "tqhost user add (first admin)" '[[ $? == 0 ]]'
api() { # METHOD PATH [BODY]: the answer's body in $T/out, the status in $T/status
  curl -sS --cacert "$CRT" -o "$T/out" -w '%{http_code}' -X "$1" -H "Authorization: Bearer ${TOKEN:-}" \
    -H 'Content-Type: application/json' ${3:+-d "$3"} "$URL$2" >"$T/status" 2>>"$T/curl.err"
}
api POST "/api/token?grant_type=password&client_id=tqhost" "{\"email\": \"admin\", \"password\": \"$PW\"}"
TOKEN=$(jq -r .access_token "$T/out" 2>/dev/null)
check "login (POST /api/token), the certificate verified" '[[ $(cat "$T/status") == 200 && ${#TOKEN} -gt 20 ]]'
"$SIM" --port 0 --hit-ratio 1 --api-key deb-sim-key >"$T/sim" 2>"$T/sim.err" &
PIDS+=("$!")
for _ in $(seq 1 200); do grep -q listening "$T/sim" 2>/dev/null && break; sleep 0.05; done
SPORT=$(sed -n 's/^rstsim listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$T/sim")
api PUT /api/plugins/rst-ioc-lookup/config "{\"api_key\": \"deb-sim-key\", \"base_url\": \"http://127.0.0.1:$SPORT/v1\"}"
check "PUT the plugin's config (base URL: rstsim)" '[[ $(cat "$T/status") == 200 ]]'
api POST /api/plugins/rst-ioc-lookup/operations/lookup '{"value": "45.83.122.166", "apply": true}'
check "an operation through the API, applied" '[[ $(cat "$T/status") == 200 ]] && jq -e ".data.status == \"ok\" and .data.applied == true and (.data.changes.attributes | length) > 0" "$T/out" >/dev/null'
api GET "/api/indicators?value=45.83.122.166"
check "its indicator in the library" '[[ $(cat "$T/status") == 200 ]] && jq -e ".data[0].value == \"45.83.122.166\"" "$T/out" >/dev/null'
kill -TERM "$SPID"
wait "$SPID"
rc=$?
cp "$T/serve.err" "$T/out"
check "SIGTERM: the service stops, exit 0" '[[ $rc == 0 ]]'
find / -xdev \( -path /proc -o -path /sys -o -path /dev \) -prune -o -user tqhost -print 2>/dev/null |
  grep -v '^/var/lib/tqhost' >"$T/out"
check "the service wrote nothing owned by tqhost outside /var/lib/tqhost" '[[ ! -s $T/out ]]'

# ---- reinstall (an upgrade's path), remove, purge ----------------------------------------------
dpkg -i "$DEB" >"$T/out" 2>&1
check "dpkg -i again (an upgrade's path)" '[[ $? == 0 ]]'
check "the edited conffile is kept" 'grep -qx "  listen: 127.0.0.1:0" /etc/tqhost/tqhost.yaml'
runuser -u tqhost -- env -i /usr/bin/tqhost user list >"$T/out" 2>&1
check "the library and its users are kept" 'grep -Eq "^ +[0-9]+ +admin +admin " "$T/out"'
dpkg -r tqhost >"$T/out" 2>&1
check "dpkg -r" '[[ $? == 0 && ! -e /usr/bin/tqhost ]]'
check "remove keeps the data, the configuration and the user" '[[ -f /var/lib/tqhost/tqhost.db && -f /etc/tqhost/tqhost.yaml ]] && getent passwd tqhost >/dev/null'
dpkg --purge tqhost >"$T/out" 2>&1
check "dpkg --purge" '[[ $? == 0 ]]'
INSTALLED=0
: >"$T/out"
check "no package left" '! dpkg-query -W -f="\${Status}" tqhost 2>/dev/null | grep -q installed'
check "no user or group tqhost left" '! getent passwd tqhost >/dev/null && ! getent group tqhost >/dev/null'
for p in /etc/tqhost /var/lib/tqhost /usr/share/tqhost /usr/bin/tqhost "$UNIT" /usr/share/doc/tqhost; do
  check "nothing left: $p" '[[ ! -e $p ]]'
done

echo "deb: $pass passed, $fail failed"
[[ $fail == 0 ]]

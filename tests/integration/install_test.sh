#!/usr/bin/env bash
# install_test.sh: `cmake --install` into a scratch prefix, then the installed tqhost run with
# an empty environment (env -i) from another folder, as a user who installed it would: it
# finds its schemas, plugins and actions with no variable; --version; the RST plugins are
# there as installed from their packages (every file and digest as in build/packages/*.tqp);
# plugin check and op run against rstsim work; the man page covers every command; the bash
# completion, docs and schemas are in place.
# Usage: install_test.sh CMAKE BUILD_DIR SOURCE_DIR RSTSIM
set -u
CMAKE=${1:?usage: install_test.sh CMAKE BUILD_DIR SOURCE_DIR RSTSIM}
BUILD=${2:?}
SRC=${3:?}
SIM=${4:?}
T=$(mktemp -d /tmp/tq_install_XXXXXX)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$T"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }
check() { if eval "$2"; then ok "$1"; else bad "$1: $(head -c 800 "$T/out")"; fi; }

R=$T/root
"$CMAKE" --install "$BUILD" --prefix "$R" >"$T/out" 2>&1
check "cmake --install succeeds" '[[ $? == 0 ]]'
S=$R/share/tqhost
mkdir -p "$T/cwd"
cd "$T/cwd" || exit 1
# tq ARGS...: the installed binary, empty environment, a library in $T/cwd, no host config.
tq() { env -i TQHOST_CONFIG=/dev/null "$R/bin/tqhost" --db "$T/cwd/lib.db" "$@" >"$T/out" 2>&1; }

# ---- the layout -------------------------------------------------------------------------------
check "bin/tqhost is executable" '[[ -x $R/bin/tqhost ]]'
check "schemas installed as in the source" 'diff -r "$SRC/schemas" "$S/schemas" >"$T/out"'
check "actions installed as in the source" 'diff -r "$SRC/actions" "$S/actions" >"$T/out"'
check "plugins/lib installed as in the source" 'diff -r "$SRC/plugins/lib" "$S/plugins/lib" >"$T/out"'
if [[ -d $SRC/web ]]; then
  check "web files installed as in the source" 'diff -r "$SRC/web" "$S/web" >"$T/out"'
fi
check "docs installed" '[[ -f $R/share/doc/tqhost/README.md && -f $R/share/doc/tqhost/install.md && -f $R/share/doc/tqhost/tqhost.yaml ]]'
check "bash completion installed" 'cmp "$SRC/scripts/tqhost.bash-completion" "$R/share/bash-completion/completions/tqhost" >"$T/out" 2>&1'
npkg=$(ls "$S/packages"/*.tqp 2>/dev/null | wc -l)
check "the three RST packages installed" '[[ $npkg == 3 ]]'

# ---- the plugins come from their packages: same files, same digests ----------------------------
for pkg in "$BUILD"/packages/*.tqp; do
  base=$(basename "$pkg" .tqp)
  name=${base%-*}
  rm -rf "$T/x" && mkdir -p "$T/x" && tar -xzf "$pkg" -C "$T/x"
  # Every file of the package, at its installed place, with the digest MANIFEST.sha256 gives.
  bad_files=$(cd "$T/x" && while read -r sum path; do
    inst="$S/plugins/$name/$path" # its lib/ modules too: they live in the plugin's folder
    [[ $(sha256sum <"$inst" 2>/dev/null | cut -d' ' -f1) == "$sum" ]] || echo "$path"
    [[ $(sha256sum <"$path" | cut -d' ' -f1) == "$sum" ]] || echo "package:$path"
  done <MANIFEST.sha256)
  echo "$bad_files" >"$T/out"
  check "$name: every file of its package installed with the package's digest" '[[ -z $bad_files ]]'
  # Nothing in the plugin's folder that the package does not hold (but the origin record).
  extra=$(cd "$S/plugins/$name" && find . -type f ! -name .tqp-origin ! -name MANIFEST.sha256 | sed 's|^\./||' | sort |
    comm -23 - <(cut -c67- "$T/x/MANIFEST.sha256" | sort))
  echo "$extra" >"$T/out"
  check "$name: nothing else in its folder" '[[ -z $extra ]]'
  check "$name: its folder holds the files of the source plugin" 'diff -r -x .tqp-origin -x MANIFEST.sha256 -x lib "$SRC/plugins/$name" "$S/plugins/$name" >"$T/out"'
  check "$name: its lib/ modules are the source's plugins/lib ones" '(for f in $(cd "$S/plugins/$name" && find lib -type f 2>/dev/null); do cmp "$SRC/plugins/$f" "$S/plugins/$name/$f" || exit 1; done) >"$T/out" 2>&1'
done

# ---- the installed binary, empty environment, another folder --------------------------------
tq --version
check "--version prints the project's version" 'grep -Eq "^tqhost [0-9]+\.[0-9]+\.[0-9]+" "$T/out" && grep -q "$(sed -n "s/^project(tqhost VERSION \([0-9.]*\).*/\1/p" "$SRC/CMakeLists.txt")" "$T/out"'
if command -v git >/dev/null && git -C "$SRC" rev-parse --git-dir >/dev/null 2>&1; then
  check "--version adds git describe of the source" 'grep -q "+.*$(git -C "$SRC" rev-parse --short=7 HEAD)" "$T/out"'
fi
tq --json version
check "version --json" 'jq -e ".version | test(\"^[0-9]+\\\\.[0-9]+\\\\.[0-9]+\")" "$T/out" >/dev/null'
folders_ok() {
  jq -e --arg s "$S" '.folders.plugins == ($s + "/plugins") and .folders.actions == ($s + "/actions")
    and .folders.schemas == ($s + "/schemas")' "$T/out" >/dev/null
}
check "version --json: the installed folders it uses" folders_ok
tq init
check "init" '[[ -f $T/cwd/lib.db ]]'
tq plugin list
for p in rst-ioc-lookup rst-noise-control rst-whois-api; do
  check "plugin list shows $p from its package" 'grep -Eq "^$p .* package $p-[0-9.]+\.tqp" "$T/out"'
done
tq action list
check "action list finds the installed actions" 'grep -q "^rst-ioc-lookup-action" "$T/out"'
tq plugin check "$S/plugins/rst-ioc-lookup"
check "plugin check on an installed plugin" '[[ $? == 0 ]] && grep -q "^OK rst-ioc-lookup" "$T/out"'
tq op list 45.83.122.166
check "op list (schemas and plugins found)" 'grep -q "rst-ioc-lookup:lookup" "$T/out"'

"$SIM" --port 0 --hit-ratio 1 --api-key sim-key-1 >"$T/sim" 2>"$T/sim.err" &
PIDS+=("$!")
for _ in $(seq 1 200); do grep -q listening "$T/sim" 2>/dev/null && break; sleep 0.05; done
port=$(sed -n 's/^rstsim listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$T/sim")
tq plugin configure rst-ioc-lookup api_key=sim-key-1 "base_url=http://127.0.0.1:$port/v1"
check "plugin configure" '[[ $? == 0 ]]'
tq op run rst-ioc-lookup 45.83.122.166 --apply
check "op run against rstsim writes" 'grep -Eq "^written to indicator [0-9]+ \(created\): [1-9][0-9]* attributes" "$T/out"'
tq indicator get 45.83.122.166
check "the operation's attributes are in the library" 'grep -q "RST Score .*\[RST IoC Lookup\]" "$T/out"'

# The environment still wins over the installed folders.
mkdir -p "$T/pl" && cp -r "$S/plugins/rst-whois-api" "$S/plugins/lib" "$T/pl/"
env -i TQHOST_CONFIG=/dev/null TQHOST_PLUGINS="$T/pl" "$R/bin/tqhost" --db "$T/cwd/lib.db" plugin list >"$T/out" 2>&1
check "TQHOST_PLUGINS wins over the installed plugins" 'grep -q "^rst-whois-api" "$T/out" && ! grep -q "^rst-ioc-lookup" "$T/out"'
# Schemas missing: the error names the folders searched.
mv "$S/schemas" "$S/schemas.away"
tq plugin list
check "without its schemas, the error names where it looked" '[[ $(grep -c "$S/schemas\|share/tqhost/schemas" "$T/out") -ge 1 ]] && grep -q "TQHOST_SCHEMAS" "$T/out"'
mv "$S/schemas.away" "$S/schemas"

# ---- the man page: every command's help in it -------------------------------------------------
M=$R/share/man/man1/tqhost.1
commands_of() { sed -n '/^Commands:/,/^$/p' | awk 'NR > 1 && /^  [a-z]/ {print $1}'; }
missing=""
n=0
for top in $("$R/bin/tqhost" --help | commands_of); do
  subs=$("$R/bin/tqhost" "$top" --help 2>/dev/null | commands_of)
  for s in "" $subs; do
    n=$((n + 1))
    grep -qx ".SS \"tqhost $top${s:+ $s}\"" "$M" || missing+=" '$top $s'"
  done
done
echo "$missing" >"$T/out"
check "the man page has a section for each of the $n commands" '[[ $n -ge 40 && -z $missing ]]'
LC_ALL=C.UTF-8 MANWIDTH=100 man -l "$M" >"$T/man.txt" 2>"$T/out"
check "the man page renders without warnings" '[[ ! -s $T/out ]] && grep -q "tqhost plugin install FILE" "$T/man.txt"'

echo "install: $pass passed, $fail failed"
[[ $fail == 0 ]]

#!/usr/bin/env bash
# lua_lib_doc_test.sh: every Lua example of docs/lua-lib.md runs (ctest integration.lua_lib_doc).
# Each ```lua block becomes the body of an entry function(obj, ctx) of a plugin and runs
# through `tqhost plugin test` (T.run: the real sandbox, on the committed RST fixtures; obj is
# the IP Address 185.220.101.5); each ```lua busted block runs in the spec itself. A block that
# raises (a false assert) fails the test. A copy of the page with one result changed must
# fail, so that the check itself is known to work. Usage: lua_lib_doc_test.sh TQHOST
set -u
TQ=${1:?usage: lua_lib_doc_test.sh path/to/tqhost}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
FAILS=0
CHECKS=0
fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); CHECKS=$((CHECKS + 1)); }
pass() { echo "ok:   $*"; CHECKS=$((CHECKS + 1)); }
printf 'limits:\n  timeout: 120s\n' >"$WORK/host.yaml"
export TQHOST_CONFIG=$WORK/host.yaml

# build DOC DIR: the plugin of DOC's examples in DIR/doc-examples; prints the example count
build() {
  local doc=$1 dir=$2
  mkdir -p "$dir/doc-examples/spec/fixtures"
  ln -sfn "$SRC/plugins/lib" "$dir/lib"
  python3 - "$doc" "$dir/doc-examples" "$SRC/plugins" <<'PY'
import json, os, re, sys
doc, out, plugins = sys.argv[1:]
blocks, cur, kind, start = [], None, None, 0
for n, line in enumerate(open(doc), 1):
    if cur is None and re.match(r"^```lua( busted)?\s*$", line):
        cur, kind, start = [], "busted" if "busted" in line else "lua", n
    elif cur is not None and line.startswith("```"):
        blocks.append((kind, start, "".join(cur)))
        cur = None
    elif cur is not None:
        cur.append(line)
script = ['local M = { lookup = require("rst.ioc").lookup }']
spec = ['local T = require "tqhost.test"', 'describe("docs/lua-lib.md", function()']
for i, (kind, line, code) in enumerate(blocks):
    if kind == "lua":
        script.append("M.ex%d = function(obj, ctx)\n%s\nend" % (i, code))
        spec.append('''  it("the example at line %d runs", function()
    local r = T.run{ entry = "ex%d", replay = "spec/fixtures/doc.json",
      object = { type = "indicator", indicator_type = "IP Address", value = "185.220.101.5",
                 score = 5, status = "Active", attributes = {} },
      secrets = { api_key = "test-key-0000" } }
    assert.are.equal("ok", r.status, (r.message or "") .. "\\n" .. (r.traceback or ""))
  end)''' % (line, i))
    else:
        spec.append('  it("the busted example at line %d runs", function()\n%s\n  end)' % (line, code))
script.append("return M")
spec.append("end)")
open(os.path.join(out, "operation.lua"), "w").write("\n".join(script) + "\n")
open(os.path.join(out, "spec", "doc_spec.lua"), "w").write("\n".join(spec) + "\n")
open(os.path.join(out, "manifest.yaml"), "w").write("""name: doc-examples
label: Doc Examples
version: 1.0.0
script: operation.lua
config:
  - { key: api_key, label: API Key, type: password, required: true }
  - { key: base_url, label: Base URL, type: url, default: "https://api.rstcloud.net/v1" }
operations:
  - { name: lookup, label: Lookup, entry: lookup, object_types: [indicator],
      indicator_types: [IP Address, FQDN, URL] }
""")
fx = []
for f in ("rst-ioc-lookup/spec/fixtures/ip_hit.json", "rst-ioc-lookup/spec/fixtures/not_found.json",
          "rst-noise-control/spec/fixtures/ip_drop.json", "rst-whois-api/spec/fixtures/standard.json"):
    fx += json.load(open(os.path.join(plugins, f)))
json.dump(fx, open(os.path.join(out, "spec", "fixtures", "doc.json"), "w"), indent=1)
print(len(blocks))
PY
}

n=$(build "$SRC/docs/lua-lib.md" "$WORK/good")
[[ $n -ge 10 ]] && pass "docs/lua-lib.md has $n Lua examples" || fail "only $n Lua examples found"
"$TQ" plugin test "$WORK/good/doc-examples" >"$WORK/out" 2>&1
rc=$?
if [[ $rc == 0 ]] && grep -Eq "^$n successes / 0 failures / 0 errors" "$WORK/out"; then
  pass "every example of docs/lua-lib.md runs ($n)"
else
  fail "an example of docs/lua-lib.md fails (exit $rc)"; sed 's/^/    /' "$WORK/out" | tail -30
fi

# The check can fail: one promised result changed.
sed 's/parse.int("51.9") == 51/parse.int("51.9") == 52/' "$SRC/docs/lua-lib.md" >"$WORK/bad.md"
build "$WORK/bad.md" "$WORK/bad" >/dev/null
if "$TQ" plugin test "$WORK/bad/doc-examples" >"$WORK/out" 2>&1; then
  fail "a wrong example passed"
else
  grep -q "1 failure" "$WORK/out" && pass "a wrong example fails the test" || { fail "unexpected output"; tail -20 "$WORK/out"; }
fi
echo "$CHECKS checks, $FAILS failed"
exit $((FAILS > 0))

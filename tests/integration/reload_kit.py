"""reload_kit.py: what integration.hot_reload and tests/bench/hot_reload_bench.py share: rstsim,
a server whose plugins folder holds only what `tqhost plugin install` put there, and packages of
rst-ioc-lookup whose output carries a mark (the attribute "Reload Mark" = "SCRIPT/LIB": the mark
compiled into operation.lua and the one of its lib module rst.mark), so that a run done by one
version shows "vN/vN" and a mixed one would show two marks."""

import os
import shutil
import sqlite3
import subprocess
import time

from tqapi import Server, wait_for

PLUGIN = "rst-ioc-lookup"
ACTION = "rst-ioc-lookup-action"
KEY = "reload-key-123"

OPERATION = """-- operation.lua of the hot reload test: the mark of this version, and its lib module's.
local rst_ioc = require "rst.ioc"
local lib_mark = require "rst.mark"
local MARK = "%s"
return {
  lookup = function(obj, ctx)
    ctx:attribute("Reload Mark", MARK .. "/" .. lib_mark)
    return rst_ioc.lookup(obj, ctx)
  end,
}
"""


def start_sim(sim, work, *args):
    out = os.path.join(work, "sim.out")
    p = subprocess.Popen([sim, "--port", "0", "--hit-ratio", "1", "--api-key", KEY] + list(args),
                         stdout=open(out, "w"), stderr=subprocess.DEVNULL)

    def port():
        try:
            for line in open(out):
                if line.startswith("rstsim listening on 127.0.0.1:"):
                    return int(line.rsplit(":", 1)[1])
        except OSError:
            pass
        return None
    pt = wait_for(port, timeout=20)
    if not pt:
        raise RuntimeError("rstsim did not start")
    return p, pt


def make_package(tq, src, work, version, mark, broken=False):
    """Packs rst-ioc-lookup at version with mark (broken: its script does not compile)."""
    root = os.path.join(work, "src-" + version)
    shutil.rmtree(root, ignore_errors=True)
    pdir = os.path.join(root, "plugins", PLUGIN)
    shutil.copytree(os.path.join(src, "plugins", PLUGIN), pdir)
    shutil.copytree(os.path.join(src, "plugins", "lib"), os.path.join(root, "plugins", "lib"))
    with open(os.path.join(root, "plugins", "lib", "rst", "mark.lua"), "w") as f:
        f.write('return "%s"\n' % mark)
    m = open(os.path.join(pdir, "manifest.yaml")).read()
    open(os.path.join(pdir, "manifest.yaml"), "w").write(
        m.replace("version: 1.0.0", "version: " + version))
    script = OPERATION % mark
    if broken:
        script += "\nlocal function oops(\n"  # a syntax error at the end of the file
    open(os.path.join(pdir, "operation.lua"), "w").write(script)
    out = os.path.join(work, "%s-%s.tqp" % (PLUGIN, version))
    p = subprocess.run([tq, "plugin", "pack", pdir, "-o", out], capture_output=True,
                       env=dict(os.environ, TQHOST_SCHEMAS=os.path.join(src, "schemas")))
    if p.returncode != 0:
        raise RuntimeError("pack %s: %s" % (version, p.stderr.decode()))
    return out


def setup(tq, sim, src, work, n, rate):
    """rstsim, a plugins folder with version 1.0.0 (mark v1) installed, an action file limited
    to rate requests/s, n IP indicators in collection "ips", a server and an analyst's token."""
    simp, port = start_sim(sim, work, "--latency-ms", "20", "--threads", "8")
    plugins = os.path.join(work, "plugins")
    actions = os.path.join(work, "actions")
    os.makedirs(plugins)
    os.makedirs(actions)
    a = open(os.path.join(src, "actions", ACTION + ".yaml")).read()
    a = a.replace("rate_limit: { requests: 10, per: 1s }",
                  "rate_limit: { requests: %d, per: 1s }" % rate)
    open(os.path.join(actions, ACTION + ".yaml"), "w").write(a)
    host = os.path.join(work, "host.yaml")  # this test's own host configuration: built-ins
    open(host, "w").write("{}\n")
    env = {"TQHOST_PLUGINS": plugins, "TQHOST_ACTIONS": actions, "TQHOST_CONFIG": host,
           "TQHOST_SCHEMAS": os.path.join(src, "schemas"),
           "TQHOST_KEY_FILE": os.path.join(work, "lib.key"),
           "TQHOST_TRUSTED_KEYS": os.path.join(work, "trusted-keys"), "TQHOST_TICK_S": "0"}
    v1 = make_package(tq, src, work, "1.0.0", "v1")
    srv = Server(tq, work, env=env)
    srv.cli("plugin", "install", v1, "--allow-unsigned")
    srv.cli("plugin", "configure", PLUGIN, "api_key=" + KEY,
            "base_url=http://127.0.0.1:%d/v1" % port)
    with open(os.path.join(work, "ips.txt"), "w") as f:
        for i in range(n):
            f.write(value(i) + "\n")
    srv.cli("indicator", "import", os.path.join(work, "ips.txt"), "--source", "Import")
    srv.cli("collection", "add", "ips", "--type", "IP Address")
    srv.add_user("ana", "analyst")
    return simp, srv, srv.login("ana")


def install(srv, pkg):
    """plugin install --force from another process; returns (rc, stderr, monotonic exit time)."""
    rc, out, err = srv.cli("plugin", "install", pkg, "--force", "--allow-unsigned", check=False)
    return rc, err, time.monotonic()


def op_run(srv, tok, value="10.77.0.1"):
    """One operation run; returns (status, mark or None, body)."""
    st, b, _ = srv.call("POST", "/api/plugins/%s/operations/lookup" % PLUGIN,
                        body={"value": value, "type": "IP Address"}, token=tok)
    mark = None
    if st == 200:
        for a in (b.get("data", {}).get("changes", {}).get("attributes") or []):
            if a.get("name") == "Reload Mark":
                mark = a.get("value")
    return st, mark, b


def wait_done(srv, tok, rid, timeout=120):
    end = time.monotonic() + timeout
    r = run_get(srv, tok, rid)
    while r.get("state") not in ("done", "failed", "interrupted") and time.monotonic() < end:
        time.sleep(0.1)
        r = run_get(srv, tok, rid)
    return r


def marks(db):
    """{mark: count of indicators} of what was written."""
    c = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    try:
        rows = c.execute("SELECT value, count(DISTINCT object_id) FROM attributes "
                         "WHERE name = 'Reload Mark' GROUP BY value").fetchall()
    finally:
        c.close()
    return dict(rows)


def value(i):
    """The i-th indicator setup imported (0-based)."""
    return "10.77.%d.%d" % (i // 250, i % 250 + 1)


def start_run(srv, tok, values=None):
    body = {"values": values} if values else {"collection": "ips"}
    st, b, _ = srv.call("POST", "/api/actions/%s/runs" % ACTION, body=body, token=tok)
    if st not in (200, 201, 202):
        raise RuntimeError("start run: %d %s" % (st, b))
    d = b.get("data", b)
    return d.get("id") or d.get("run_id")


def run_get(srv, tok, rid):
    st, b, _ = srv.call("GET", "/api/runs/%d" % rid, token=tok)
    return b["data"] if st == 200 else {"state": "http %d" % st}

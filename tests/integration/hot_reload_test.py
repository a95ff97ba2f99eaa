#!/usr/bin/env python3
"""hot_reload_test.py (integration.hot_reload): plugins reloaded under `tqhost serve` without a
restart. With rstsim, a bulk run over N indicators (rate-limited to last a few seconds) is
started on rst-ioc-lookup 1.0.0; meanwhile `plugin install --force` of 2.0.0 from another
process, then of a 3.0.0 whose script does not compile. Checks: the first operation run after
the install's exit answers with 2.0.0's output; the broken 3.0.0 leaves 2.0.0 active with its
error (file:line) in GET /api/plugins/{name}, the log and /metrics; then, hostile edits of the
installed folder (a symlink planted in lib/, a half-written manifest) leave the active version
running with the error shown, and fixing them clears it; the bulk run ends with no failed item,
every item written by 1.0.0 alone (script and lib module: "v1/v1"); bulk runs started while a
broken version is on disk (a script that does not compile, a half-written manifest) run on the
active version.

Usage: hot_reload_test.py TQHOST RSTSIM SRCDIR"""

import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tqapi import Tally, wait_for  # noqa: E402
import reload_kit as kit  # noqa: E402

TQ, SIM, SRC = (os.path.abspath(a) for a in sys.argv[1:4])
N = int(os.environ.get("HOT_RELOAD_N", "300"))
RATE = 60  # requests/s: N items take ~5 s

t = Tally()
work = tempfile.mkdtemp(prefix="hot_reload.")
sim = srv = None
try:
    v2 = kit.make_package(TQ, SRC, work, "2.0.0", "v2")
    v3 = kit.make_package(TQ, SRC, work, "3.0.0", "v3", broken=True)
    sim, srv, ana = kit.setup(TQ, SIM, SRC, work, N, RATE)
    st, mark, b = kit.op_run(srv, ana)
    t.check("1.0.0 installed: an operation run answers its mark", st == 200 and mark == "v1/v1",
            (st, mark, b))

    rid = kit.start_run(srv, ana)
    r = wait_for(lambda: kit.run_get(srv, ana, rid).get("done", 0) > 0, timeout=30)
    t.check("the bulk run started and is processing items", bool(r) and rid, rid)

    # ---- upgrade while the run is in flight ---------------------------------------------------
    rc, err, t_exit = kit.install(srv, v2)
    run_at = kit.run_get(srv, ana, rid)
    t.check("plugin install --force 2.0.0 from another process", rc == 0, err)
    st, mark, b = kit.op_run(srv, ana)
    dt = time.monotonic() - t_exit
    t.check("the first operation run after the install answers with 2.0.0's output "
            "(script and lib module)", st == 200 and mark == "v2/v2", (st, mark, b))
    print("  first run on 2.0.0 answered %.0f ms after the install exited" % (dt * 1000))
    t.check("the upgrade landed while the bulk run was in flight",
            run_at.get("state") == "running" and run_at.get("done", N) < N, run_at)
    st, b, _ = srv.call("GET", "/api/plugins/" + kit.PLUGIN, token=ana)
    d = b.get("data", {}) if st == 200 else {}
    t.check("GET /api/plugins/{name}: 2.0.0 active, no error",
            d.get("version") == "2.0.0" and "error" not in d, b)

    # ---- a broken version leaves 2.0.0 active ----------------------------------------------------
    rc, err, _ = kit.install(srv, v3)
    t.check("plugin install of 3.0.0 (its script does not compile) succeeds: install does not "
            "compile without --test", rc == 0, err)
    st, mark, b = kit.op_run(srv, ana)
    t.check("after the broken install, runs answer with 2.0.0", st == 200 and mark == "v2/v2",
            (st, mark, b))
    st, b, _ = srv.call("GET", "/api/plugins/" + kit.PLUGIN, token=ana)
    d = b.get("data", {}) if st == 200 else {}
    e = d.get("error", "")
    t.check("GET /api/plugins/{name}: 2.0.0 stays active with 3.0.0's error at operation.lua:LINE",
            d.get("version") == "2.0.0" and "operation.lua:" in e and
            e.split("operation.lua:")[1].split(":")[0].isdigit(), b)
    st, b, _ = srv.call("GET", "/api/plugins", token=ana)
    lst = {p["name"]: p for p in b.get("data", [])} if st == 200 else {}
    t.check("GET /api/plugins lists it with the error",
            lst.get(kit.PLUGIN, {}).get("error") == e and e, b)
    t.check("the server log says the new version was not loaded and 2.0.0 stays active",
            wait_for(lambda: "2.0.0 stays active" in srv.log_text(), timeout=5),
            srv.log_text()[-800:])
    few = [kit.value(i) for i in range(20)]
    r2 = kit.wait_done(srv, ana, kit.start_run(srv, ana, few))
    t.check("a bulk run started with the broken 3.0.0 on disk runs on 2.0.0, no failed item",
            r2.get("state") == "done" and r2.get("failed") == 0 and r2.get("done") == 20, r2)
    st, m, _ = srv.call("GET", "/metrics")
    t.check("/metrics: tqhost_plugin_load_error 1 for the plugin",
            st == 200 and 'tqhost_plugin_load_error{plugin="rst-ioc-lookup"} 1' in str(m),
            str(m)[-600:])

    # ---- hostile edits of the installed folder --------------------------------------------------
    v4 = kit.make_package(TQ, SRC, work, "4.0.0", "v4")
    rc, err, _ = kit.install(srv, v4)
    st, mark, b = kit.op_run(srv, ana)
    t.check("4.0.0 installed over the broken one: runs answer with it",
            rc == 0 and st == 200 and mark == "v4/v4", (rc, err, st, mark))
    pdir = os.path.join(work, "plugins", kit.PLUGIN)
    evil = os.path.join(pdir, "lib", "rst", "evil.lua")
    os.symlink("/etc/passwd", evil)
    time.sleep(0.25)  # past the full check's period (an in-place change)
    st, mark, b = kit.op_run(srv, ana)
    st2, b2, _ = srv.call("GET", "/api/plugins/" + kit.PLUGIN, token=ana)
    d = b2.get("data", {}) if st2 == 200 else {}
    t.check("a symlink planted in lib/: refused, 4.0.0 stays active and runs",
            st == 200 and mark == "v4/v4" and d.get("version") == "4.0.0" and
            ("symlink" in d.get("error", "") or "symbolic link" in d.get("error", "")), (st, mark, b2))
    t.check("the symlink's target is never shown", "root:" not in str(b2), b2)
    os.unlink(evil)
    time.sleep(0.25)
    st, b, _ = srv.call("GET", "/api/plugins/" + kit.PLUGIN, token=ana)
    t.check("the symlink removed: the error is gone",
            st == 200 and "error" not in b.get("data", {}), b)
    man = os.path.join(pdir, "manifest.yaml")
    full = open(man).read()
    half = full[:len(full) // 2].rsplit("\n", 1)[0] + "\n  - { key: "
    open(man, "w").write(half)
    time.sleep(0.25)
    st, mark, b = kit.op_run(srv, ana)
    st2, b2, _ = srv.call("GET", "/api/plugins/" + kit.PLUGIN, token=ana)
    e = b2.get("data", {}).get("error", "") if st2 == 200 else ""
    t.check("a half-written manifest: 4.0.0 stays active and runs", st == 200 and mark == "v4/v4",
            (st, mark, b))
    few2 = [kit.value(i) for i in range(20, 40)]
    r3 = kit.wait_done(srv, ana, kit.start_run(srv, ana, few2))
    t.check("a bulk run started while the manifest is half-written runs on 4.0.0",
            r3.get("state") == "done" and r3.get("failed") == 0 and r3.get("done") == 20, r3)
    pos = e.split("manifest.yaml:")[1].split(":")[:2] if "manifest.yaml:" in e else []
    t.check("its error names manifest.yaml:LINE:COL", len(pos) == 2 and
            all(x.isdigit() for x in pos), e)
    open(man, "w").write(full)
    time.sleep(0.25)
    st, b, _ = srv.call("GET", "/api/plugins/" + kit.PLUGIN, token=ana)
    t.check("the manifest written whole again: the error is gone",
            st == 200 and "error" not in b.get("data", {}), b)
    # a folder swapped back and forth while runs go on: never a mixed answer, never a failure
    other = os.path.join(work, "plugins", ".swap")
    shutil.copytree(pdir, other)
    open(os.path.join(other, "operation.lua"), "w").write(kit.OPERATION % "v5")
    open(os.path.join(other, "lib", "rst", "mark.lua"), "w").write('return "v5"\n')
    seen, bad = set(), []
    for i in range(40):
        held = os.path.join(work, "plugins", ".held")
        os.rename(pdir, held)
        os.rename(other, pdir)
        os.rename(held, other)
        st, mark, b = kit.op_run(srv, ana)
        if st == 200 and mark in ("v4/v4", "v5/v5"):
            seen.add(mark)
        elif st != 404:  # the instant between two renames, the folder does not exist
            bad.append((st, mark))
    t.check("folders swapped 40 times under runs: every answer one whole version",
            not bad and seen, (bad, seen))

    # ---- the bulk run ----------------------------------------------------------------------------
    end = time.monotonic() + 120
    r = kit.run_get(srv, ana, rid)
    while r.get("state") not in ("done", "failed", "interrupted") and time.monotonic() < end:
        time.sleep(0.2)
        r = kit.run_get(srv, ana, rid)
    t.check("the bulk run is done with no failed item",
            r.get("state") == "done" and r.get("failed") == 0 and r.get("done") == N, r)
    mk = kit.marks(srv.db)
    t.check("every item of each run was done by one version: the long run by 1.0.0, the two "
            "short ones by the active 2.0.0 and 4.0.0 (script and lib)",
            mk == {"v1/v1": N, "v2/v2": 20, "v4/v4": 20}, mk)
    # ---- removed: gone from the list and from /metrics ------------------------------------------
    gauge = 'tqhost_plugin_load_error{plugin="rst-ioc-lookup"}'
    st, m, _ = srv.call("GET", "/metrics")
    t.check("/metrics: the plugin's load-error gauge is 0 while it loads", gauge + " 0" in str(m),
            str(m)[-600:])
    rc, _, err = srv.cli("plugin", "remove", kit.PLUGIN, check=False)
    time.sleep(0.25)  # past the full check's period
    st, b, _ = srv.call("GET", "/api/plugins", token=ana)
    names = [p["name"] for p in b.get("data", [])] if st == 200 else None
    st2, m, _ = srv.call("GET", "/metrics")
    t.check("plugin remove: no longer listed, and no gauge left for it in /metrics",
            rc == 0 and names is not None and kit.PLUGIN not in names and st2 == 200 and
            gauge not in str(m), (rc, err, names, str(m)[-600:]))
    t.check("the server stops cleanly (exit 0)", srv.stop() == 0)
    srv = None
finally:
    if srv:
        srv.stop()
    if sim:
        sim.terminate()
        sim.wait()
if t.failed == 0:
    shutil.rmtree(work, ignore_errors=True)
else:
    print("  work folder kept: " + work)
t.done()

#!/usr/bin/env python3
"""hot_reload_bench.py (bench.hot_reload): plugin hot reload under `tqhost serve` with rstsim.

1. A bulk run over N indicators with no install meanwhile: its rate (items/s).
2. The same bulk run while 20 upgrades of rst-ioc-lookup are installed one after the other
   (`plugin install --force`, another process); after each install's exit, operation runs are
   sent until one answers with the new version's mark: the time from the exit to that answer.
Prints the p50 and max of that time (aim: under 1 s) with their ratio to the aim, both bulk
rates and their ratio, and whether every item of both runs was done by one version.

Usage: hot_reload_bench.py TQHOST RSTSIM SRCDIR   (HOT_RELOAD_BENCH_N: items, default 3000)"""

import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import reload_kit as kit  # noqa: E402

TQ, SIM, SRC = (os.path.abspath(a) for a in sys.argv[1:4])
N = int(os.environ.get("HOT_RELOAD_BENCH_N", "3000"))
INSTALLS = 20
AIM_MS = 1000.0

work = tempfile.mkdtemp(prefix="hot_reload_bench.")
sim = srv = None


def bulk(srv, tok, during=None):
    """Runs the action over the collection; calls during() while it runs (until it returns
    False). Returns (items/s, run)."""
    t0 = time.monotonic()
    rid = kit.start_run(srv, tok)
    r = kit.run_get(srv, tok, rid)
    while r.get("state") not in ("done", "failed", "interrupted"):
        if not (during and during()):
            time.sleep(0.05)
        r = kit.run_get(srv, tok, rid)
    return r.get("done", 0) / (time.monotonic() - t0), r


try:
    pkgs = [kit.make_package(TQ, SRC, work, "%d.0.0" % (i + 2), "v%d" % (i + 2))
            for i in range(INSTALLS)]
    sim, srv, tok = kit.setup(TQ, SIM, SRC, work, N, 5000)
    rate_plain, r1 = bulk(srv, tok)
    lat, during_run, failures = [], [0], []

    def one_install():
        if len(lat) + len(failures) >= INSTALLS:
            return False
        i = len(lat) + len(failures)
        rc, err, t_exit = kit.install(srv, pkgs[i])
        if rc != 0:
            failures.append(err)
            return True
        during_run[0] += 1
        want = "v%d/v%d" % (i + 2, i + 2)
        while True:
            st, mark, _ = kit.op_run(srv, tok)
            if st == 200 and mark == want:
                lat.append((time.monotonic() - t_exit) * 1000.0)
                return True
            if time.monotonic() - t_exit > 10:
                failures.append("version %d never answered (last %s %s)" % (i + 2, st, mark))
                return True
    rate_reload, r2 = bulk(srv, tok, one_install)
    while one_install():  # the rest, if the run ended first
        pass
    mk = kit.marks(srv.db)
    srv.stop()
    srv = None
    print("bulk run of %d items, no reload:   %.0f items/s (%s, failed %s)" %
          (N, rate_plain, r1.get("state"), r1.get("failed")))
    print("bulk run of %d items, %d installs during it: %.0f items/s (%s, failed %s)" %
          (N, during_run[0], rate_reload, r2.get("state"), r2.get("failed")))
    print("ratio of the rates (with reloads / without): %.2f" % (rate_reload / rate_plain))
    if lat:
        p50, mx = statistics.median(lat), max(lat)
        print("install exit -> first run on the new version over %d installs: p50 %.0f ms, "
              "max %.0f ms" % (len(lat), p50, mx))
        print("ratio to the aim (1 s): p50 %.3f, max %.3f" % (p50 / AIM_MS, mx / AIM_MS))
    print("marks written (every item by one version): %s" % mk)
    if failures:
        print("FAILURES: %s" % failures)
    ok = not failures and mk == {"v1/v1": N} and r1.get("failed") == 0 and r2.get("failed") == 0
    sys.exit(0 if ok else 1)
finally:
    if srv:
        srv.stop()
    if sim:
        sim.terminate()
        sim.wait()
    shutil.rmtree(work, ignore_errors=True)

#!/usr/bin/env python3
"""persist_bench.py: what keeping the login brake and the runs for apply in the library costs
(ctest bench.persist; figures, never asserted).

  - a locked login (429: memory only, before any password hash) against a wrong password
    (401: Argon2id, then the engine job writing the audit row and the brake's rows); aim: the
    429 at most a tenth of the 401;
  - an operation run (rstsim at zero latency, its row in op_runs written by the engine) and
    an apply of it read back from the library, p50 and p99 over N calls each.

Usage: persist_bench.py TQHOST RSTSIM SOURCE_DIR [N]
"""
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from tqapi import Server  # noqa: E402

TQ, SIM, SRC = (os.path.abspath(a) for a in sys.argv[1:4])
N = int(sys.argv[4]) if len(sys.argv) > 4 else 200
KEY = "bench-key-0a1b2c"
work = tempfile.mkdtemp(prefix="tq_persist_bench.")
pdir = os.path.join(work, "plugins")
os.makedirs(pdir)
shutil.copytree(os.path.join(SRC, "plugins", "rst-ioc-lookup"), os.path.join(pdir, "rst-ioc-lookup"))
os.symlink(os.path.join(SRC, "plugins", "lib"), os.path.join(pdir, "lib"))
sim = subprocess.Popen([SIM, "--port", "0", "--hit-ratio", "1", "--api-key", KEY],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
m = re.match(r"rstsim listening on 127\.0\.0\.1:(\d+)", sim.stdout.readline().decode())
srv = Server(TQ, work, env={"TQHOST_PLUGINS": pdir, "TQHOST_LOGIN_DELAY": "3600",
                            "TQHOST_TICK_S": "0"})


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] * 1000


def timed(conn, method, path, body, token=None):
    t0 = time.perf_counter()
    st, b, _ = srv.call(method, path, body=body, token=token, conn=conn)
    return time.perf_counter() - t0, st, b


try:
    srv.add_user("root", "admin")
    srv.add_user("ana", "analyst")
    conn = srv.connection()
    ADMIN, ANA = srv.login("root"), srv.login("ana")
    srv.call("PUT", "/api/plugins/rst-ioc-lookup/config",
             {"api_key": KEY, "base_url": "http://127.0.0.1:%s/v1" % m.group(1)}, token=ADMIN)
    runs, applies, ids = [], [], []
    RUN = "/api/plugins/rst-ioc-lookup/operations/lookup"
    for i in range(N):
        dt, st, b = timed(conn, "POST", RUN, {"value": "10.%d.%d.7" % (i // 250, i % 250)}, ANA)
        if st == 200:
            runs.append(dt)
            ids.append(b["data"]["run_id"])
    for rid in ids:
        dt, st, _ = timed(conn, "POST", RUN + "/apply", {"run_id": rid}, ANA)
        if st == 200:
            applies.append(dt)
    if runs and applies:
        print("operation run (row kept in op_runs):  p50 %.2f ms p99 %.2f ms (%d)"
              % (pct(runs, .5), pct(runs, .99), len(runs)))
        print("apply (row read back, marked applied): p50 %.2f ms p99 %.2f ms (%d)"
              % (pct(applies, .5), pct(applies, .99), len(applies)))
    body = {"username": "victim", "password": "wrong-password"}
    wrong = []
    for i in range(15):  # distinct names, under the address's own limit (20)
        dt, st, _ = timed(conn, "POST", "/api/token?grant_type=password",
                          {"username": "guess%d" % i, "password": "wrong"})
        if st == 401:
            wrong.append(dt)
    srv.add_user("victim", "analyst")
    for _ in range(5):
        timed(conn, "POST", "/api/token?grant_type=password", body)
    locked = []
    for _ in range(N):
        dt, st, _ = timed(conn, "POST", "/api/token?grant_type=password", body)
        if st == 429:
            locked.append(dt)
    if wrong and locked:
        ratio = statistics.median(locked) / statistics.median(wrong)
        print("login 401 (wrong password, brake rows written): p50 %.2f ms p99 %.2f ms (%d)"
              % (pct(wrong, .5), pct(wrong, .99), len(wrong)))
        print("login 429 (locked, memory only):                p50 %.2f ms p99 %.2f ms (%d)"
              % (pct(locked, .5), pct(locked, .99), len(locked)))
        print("ratio 429/401 p50: %.4f (aim <= 0.100: %s)" % (ratio, "met" if ratio <= .1 else
                                                               "NOT met"))
    conn.close()
finally:
    srv.stop()
    sim.kill()
    sim.wait()
    shutil.rmtree(work, ignore_errors=True)

#!/usr/bin/env python3
"""server_load_test.py: `tqhost serve` under load while the CLI writes to the same library,
then killed with SIGKILL in the middle of writes and restarted.

Phase 1 (LOAD_SECONDS, default 60): LOAD_CLIENTS (default 64) concurrent clients, each on
its own keep-alive TLS connection, read (health, users/current, indicators by id when that
route exists) and create indicators (when POST /api/indicators exists), and one client in 16
runs operations against rstsim (when the plugins routes exist), while `tqhost action run` enriches LOAD_BULK_N
(default 10000) indicators of the same library against rstsim. No answer may be a 5xx, every
answer must be well-formed JSON, and "locked" must appear nowhere (answers, the server's log,
the CLI's output).
Phase 2: writers create indicators with three attributes each; the server is killed with
SIGKILL while they write, then started again: PRAGMA integrity_check is ok, every create that
was answered 201 is there, and every indicator is whole (all three attributes or none of it).
Prints the throughput, latencies and the server's peak RSS (VmHWM).

Usage: server_load_test.py TQHOST RSTSIM SOURCE_DIR
"""

import json
import os
import random
import re
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tqapi import Server, Tally  # noqa: E402

TQ, SIM, SRC = (os.path.abspath(a) for a in sys.argv[1:4])
CLIENTS = int(os.environ.get("LOAD_CLIENTS", "64"))
SECONDS = float(os.environ.get("LOAD_SECONDS", "60"))
BULK_N = int(os.environ.get("LOAD_BULK_N", "10000"))
T = Tally()
WORK = tempfile.mkdtemp(prefix="server_load.")
DB = os.path.join(WORK, "lib.db")
ENV = dict(os.environ, TQHOST_DB=DB, TQHOST_PLUGINS=os.path.join(SRC, "plugins"),
           TQHOST_ACTIONS=os.path.join(SRC, "actions"),
           TQHOST_SCHEMAS=os.path.join(SRC, "schemas"), TQHOST_LOG="info")
ENV.pop("TQHOST_NOW", None)
LOCKED = re.compile(r"\blocked\b|SQLITE_BUSY|database is busy", re.I)


def tq(*argv, check=True, stdin=None):
    p = subprocess.run([TQ] + list(argv), capture_output=True, text=True, env=ENV, input=stdin)
    if check and p.returncode != 0:
        raise RuntimeError("tqhost %s: %d %s" % (" ".join(argv), p.returncode, p.stderr))
    return p


def vmhwm(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


# ---- the library, rstsim, the server -----------------------------------------------------------
sim = subprocess.Popen([SIM, "--port", "0", "--latency-ms", "20", "--hit-ratio", "0.7",
                        "--taxii-objects", "3000", "--taxii-page-max", "200"],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
m = re.match(r"rstsim listening on 127\.0\.0\.1:(\d+)", sim.stdout.readline().decode())
if not m:
    print("rstsim did not start")
    sys.exit(1)
SIM_URL = "http://127.0.0.1:%s/v1" % m.group(1)
TAXII_URL = "http://127.0.0.1:%s/taxii2/" % m.group(1)

values = os.path.join(WORK, "values.txt")
with open(values, "w") as f:
    for i in range(BULK_N):
        f.write(("10.%d.%d.%d\n" % ((i >> 16) & 255, (i >> 8) & 255, i & 255)) if i % 2 else
                "site%d.example.org\n" % i)
t0 = time.monotonic()
tq("init")
tq("indicator", "import", values, "--source", "Import")
tq("collection", "add", "bulk", "--source", "Import")
tq("feed", "add", "load-feed", "--preset", "rst-high", "--discovery", TAXII_URL, "--page-size",
   "200")
for p in ("rst-ioc-lookup", "rst-noise-control"):
    tq("plugin", "configure", p, "api_key=load-key", "base_url=" + SIM_URL)
print("setup: %d indicators in %.1f s" % (BULK_N, time.monotonic() - t0))

routes = set()
for line in tq("serve", "--print-routes").stdout.splitlines():
    meth, pat, _ = line.split()
    routes.add(meth + " " + pat)
HAS_GET = "GET /api/indicators/{id}" in routes
HAS_POST = "POST /api/indicators" in routes
HAS_OPS = "POST /api/plugins/{name}/operations/{op}" in routes
print("routes: indicators by id %s, create %s, operations %s" % (HAS_GET, HAS_POST, HAS_OPS))

srv = Server(TQ, WORK, env={k: ENV[k] for k in ("TQHOST_PLUGINS", "TQHOST_ACTIONS",
                                                "TQHOST_SCHEMAS", "TQHOST_LOG")},
             args=["--threads", "4"])
srv.add_user("load", "analyst")
TOKENS = [srv.login("load") for _ in range(4)]
ro = sqlite3.connect("file:%s?mode=ro" % DB, uri=True)
# Indicators only: the server's scheduler polls the due feed at start, so the library may hold
# the feed's malware, reports... too (GET /api/indicators/{id} of those is a 404, rightly).
IDS = [r[0] for r in ro.execute("SELECT id FROM objects WHERE type='indicator' ORDER BY id"
                                " LIMIT 5000")]
ro.close()


# ---- phase 1: readers, writers, operations, and a bulk run from the CLI ------------------------
class Stats:
    def __init__(self):
        self.mu = threading.Lock()
        self.lat = {}
        self.status = {}
        self.bad = []          # (what, detail) of 5xx, non-JSON, "locked"
        self.created = []      # values answered 201 (phase 2)
        self.conn_errors = 0
        self.unexpected = []   # requests answered neither 200 nor 201, what they answered

    def add(self, kind, secs, st):
        with self.mu:
            self.lat.setdefault(kind, []).append(secs)
            self.status[st] = self.status.get(st, 0) + 1


S = Stats()


def one(conn, kind, method, path, tok, body=None):
    t = time.monotonic()
    st, b, h = srv.call(method, path, token=tok, body=body, conn=conn)
    secs = time.monotonic() - t
    S.add(kind, secs, st)
    text = b if isinstance(b, str) else json.dumps(b)
    if st not in (200, 201):
        with S.mu:
            S.unexpected.append("%s %s -> %d %s" % (method, path, st, text[:160]))
    if st >= 500:
        S.bad.append((kind, "%d %s" % (st, text[:200])))
    elif b is not None and isinstance(b, str):
        S.bad.append((kind, "not JSON: %r" % text[:200]))
    elif b is None and st != 204:
        S.bad.append((kind, "%d with an empty body" % st))
    if LOCKED.search(text):
        S.bad.append((kind, "locked: " + text[:200]))
    return st, b


def client(n, deadline, phase):
    rnd = random.Random(n)
    tok = TOKENS[n % len(TOKENS)]
    conn = None
    i = 0
    while time.monotonic() < deadline:
        if conn is None:
            conn = srv.connection(timeout=60)
        r = rnd.random()
        try:
            if phase == 2:
                value = "w%d-%d.kill.example" % (n, i)
                st, b = one(conn, "create", "POST", "/api/indicators", tok, {
                    "value": value, "type": "FQDN",
                    "attributes": [{"name": "k%d" % k, "value": "v%d" % k} for k in range(3)]})
                if st == 201:
                    with S.mu:
                        S.created.append(value)
            elif HAS_OPS and n % 16 == 0:
                # a few clients run operations: the plugin's rate limit (10/s, shared by every
                # run of the server) makes each wait its turn
                one(conn, "operation", "POST", "/api/plugins/rst-ioc-lookup/operations/lookup",
                    tok, {"object_id": rnd.choice(IDS)})
            elif r < 0.30:
                one(conn, "health", "GET", "/api/health", None)
            elif r < 0.55:
                one(conn, "users/current", "GET", "/api/users/current", tok)
            elif r < 0.90 and HAS_GET:
                one(conn, "indicator", "GET", "/api/indicators/%d?with=attributes,sources,score"
                    % rnd.choice(IDS), tok)
            elif HAS_POST:
                one(conn, "create", "POST", "/api/indicators", tok,
                    {"value": "c%d-%d.load.example" % (n, i), "type": "FQDN"})
            else:
                one(conn, "health", "GET", "/api/health", None)
        except Exception as e:  # a connection cut (the server closes idle keep-alives)
            with S.mu:
                S.conn_errors += 1
            if phase == 2:
                return
            if S.conn_errors < 5:
                print("  connection error (%s): %s" % (type(e).__name__, e))
            try:
                conn.close()
            except Exception:
                pass
            conn = None
        i += 1
    if conn:
        conn.close()


bulk_out = os.path.join(WORK, "bulk.out")
bulk_err = os.path.join(WORK, "bulk.err")
t_start = time.monotonic()
deadline = t_start + SECONDS
threads = [threading.Thread(target=client, args=(n, deadline, 1), daemon=True)
           for n in range(CLIENTS)]
for t in threads:
    t.start()
time.sleep(min(2.0, SECONDS / 10))
t_bulk = time.monotonic()
bulk = subprocess.Popen([TQ, "--json", "action", "run", "rst-ioc-lookup-action", "--collection",
                         "bulk", "--rate", "100000", "--concurrency", "8"],
                        stdout=open(bulk_out, "w"), stderr=open(bulk_err, "w"), env=ENV)
# ... and a TAXII feed poll writing the same library at the same time.
feed_out = os.path.join(WORK, "feed.out")
feed = subprocess.Popen([TQ, "--json", "feed", "poll", "load-feed"], stdout=open(feed_out, "w"),
                        stderr=subprocess.STDOUT, env=ENV)
peak = 0.0
bulk_secs = None
while any(t.is_alive() for t in threads):
    peak = max(peak, vmhwm(srv.proc.pid))
    if bulk_secs is None and bulk.poll() is not None:
        bulk_secs = time.monotonic() - t_bulk
    time.sleep(0.5)
for t in threads:
    t.join()
elapsed = time.monotonic() - t_start
try:
    bulk_rc = bulk.wait(timeout=90)
except subprocess.TimeoutExpired:
    bulk.kill()
    bulk_rc = -9
peak = max(peak, vmhwm(srv.proc.pid))
if bulk_secs is None:
    bulk_secs = time.monotonic() - t_bulk

total = sum(len(v) for v in S.lat.values())
print("phase 1: %d clients, %d requests in %.1f s (%.0f/s), statuses %s, %d connection errors"
      % (CLIENTS, total, elapsed, total / elapsed, dict(sorted(S.status.items())),
         S.conn_errors))
for kind, v in sorted(S.lat.items()):
    v.sort()
    print("  %-14s %6d  p50 %6.1f ms  p99 %7.1f ms  max %7.1f ms" % (
        kind, len(v), v[len(v) // 2] * 1000, v[int(len(v) * 0.99)] * 1000, v[-1] * 1000))
bulk_text = open(bulk_out).read()
bulk_errtext = open(bulk_err).read()
try:
    bulk_res = json.loads(bulk_text)
except ValueError:
    bulk_res = {}
print("bulk run: exit %d in %.1f s, %s" % (bulk_rc, bulk_secs, {k: bulk_res.get(k) for k in
                                           ("status", "enriched", "not_found", "failed")}))
print("peak RSS of the server (VmHWM): %.1f MiB" % peak)

T.check("%d requests answered under load" % total, total > CLIENTS * 5)
if HAS_OPS:
    n_ops = len(S.lat.get("operation", []))
    T.check("operations ran against rstsim beside the reads (%d)" % n_ops, n_ops > 0)
T.check("no 5xx, every answer well-formed JSON, no 'locked' in any answer (%d bad)" %
        len(S.bad), not S.bad, S.bad[:5])
T.check("no connection failed", S.conn_errors == 0, S.conn_errors)
T.check("only the statuses expected (200, 201)", set(S.status) <= {200, 201},
        (S.status, S.unexpected[:6]))
T.check("the CLI's bulk run on the same library finished: exit 0, status done",
        bulk_rc == 0 and bulk_res.get("status") == "done", (bulk_rc, bulk_text[-300:],
                                                            bulk_errtext[-300:]))
T.check("... with every item accounted for", sum(bulk_res.get(k) or 0 for k in
                                                 ("enriched", "not_found", "failed")) == BULK_N,
        bulk_res)
T.check("no 'locked' in the CLI's output", not LOCKED.search(bulk_text + bulk_errtext),
        bulk_errtext[-300:])
try:
    feed_rc = feed.wait(timeout=90)
except subprocess.TimeoutExpired:
    feed.kill()
    feed_rc = -9
feed_text = open(feed_out).read()
print("feed poll beside the load: exit %d" % feed_rc)
T.check("the feed poll beside the load finished (exit 0), no 'locked'",
        feed_rc == 0 and not LOCKED.search(feed_text), (feed_rc, feed_text[-400:]))
T.check("no 'locked' in the server's log", not LOCKED.search(srv.log_text()),
        [l for l in srv.log_text().splitlines() if LOCKED.search(l)][:3])
T.check("the server still answers", srv.call("GET", "/api/health")[0] == 200)

# ---- phase 2: SIGKILL in the middle of writes, restart -----------------------------------------
if HAS_POST:
    S.lat.clear()
    writers = [threading.Thread(target=client, args=(n, time.monotonic() + 60, 2), daemon=True)
               for n in range(16)]
    for t in writers:
        t.start()
    t_w = time.monotonic()
    while len(S.created) < 50 and time.monotonic() - t_w < 30:
        time.sleep(0.05)
    srv.kill9()
    for t in writers:
        t.join(30)
    print("phase 2: %d creates answered 201 before SIGKILL" % len(S.created))
    attempted = ["w%d-%d.kill.example" % (n, i) for n in range(16) for i in range(400)]
    db = sqlite3.connect(DB)
    ic = db.execute("PRAGMA integrity_check").fetchall()
    T.check("after SIGKILL: PRAGMA integrity_check ok", ic == [("ok",)], ic)
    present = {}
    for value, n_attr in db.execute(
            "SELECT o.value, (SELECT count(*) FROM attributes a WHERE a.object_id = o.id) "
            "FROM objects o WHERE o.value LIKE '%.kill.example'"):
        present[value] = n_attr
    db.close()
    lost = [v for v in S.created if v not in present]
    half = {v: n for v, n in present.items() if n != 3}
    T.check("every create answered 201 survived the kill (%d)" % len(S.created), not lost,
            lost[:5])
    T.check("nothing half-written: each indicator has its three attributes (%d present)" %
            len(present), not half and set(present) <= set(attempted), list(half.items())[:5])
    srv2 = Server(TQ, WORK, env={k: ENV[k] for k in ("TQHOST_PLUGINS", "TQHOST_ACTIONS",
                                                     "TQHOST_SCHEMAS", "TQHOST_LOG")})
    try:
        tok = srv2.login("load")
        st, b, _ = srv2.call("GET", "/api/health")
        T.check("the server starts again on the killed library", st == 200 and
                b["data"]["library"] == "ok", b)
        if HAS_GET and S.created:
            ids = []
            db = sqlite3.connect("file:%s?mode=ro" % DB, uri=True)
            for v in S.created[:20]:
                ids += [r[0] for r in db.execute("SELECT id FROM objects WHERE value = ?", (v,))]
            db.close()
            oks = [srv2.call("GET", "/api/indicators/%d?with=attributes" % i, token=tok)
                   for i in ids]
            T.check("the surviving indicators read back whole through the API",
                    oks and all(st == 200 and len(b["data"]["attributes"]) == 3
                                for st, b, _ in oks), [o[:2] for o in oks[:2]])
        T.check("server stops on SIGTERM: exit 0", srv2.stop() == 0)
    finally:
        if srv2.proc.poll() is None:
            srv2.kill9()
else:
    print("phase 2 skipped: POST /api/indicators is not a route yet")
    T.check("server stops on SIGTERM: exit 0", srv.stop() == 0)

sim.kill()
T.done()

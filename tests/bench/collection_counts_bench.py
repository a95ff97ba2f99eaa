#!/usr/bin/env python3
"""collection_counts_bench.py (bench.collection_counts): the collections list with counts
(GET /api/search/query?with=count) over a library of N indicators (1,000,000 by default), 20
collections of varied criteria; against what the browser did before (one POST
/api/indicators/query?limit=1 per collection, an uncapped count). Prints p50/max of each, how
many counts were capped or timed out, and the ratio to the aim (the list in under 1 s).

usage: collection_counts_bench.py TQHOST SRCDIR [N]
"""

import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from tqapi import Server  # noqa: E402

TQ, SRC = sys.argv[1], sys.argv[2]
N = int(sys.argv[3]) if len(sys.argv) > 3 else 1000000
AIM_S = 1.0
work = tempfile.mkdtemp(prefix="tq-collbench-")
ips = os.path.join(work, "ips.txt")
with open(ips, "w") as f:
    for i in range(N):
        f.write("10.%d.%d.%d\n" % (i >> 16, (i >> 8) & 255, i & 255))
srv = Server(TQ, work, env={"TQHOST_SCHEMAS": os.path.join(SRC, "schemas")})
try:
    t0 = time.monotonic()
    srv.cli("indicator", "import", ips, "--source", "Feed Big")
    print("library: %d indicators imported in %.1f s" % (N, time.monotonic() - t0))
    srv.add_user("ana", "analyst")
    tok = srv.login("ana")
    crits = [{"source": "Feed Big"}, {"type_name": "IP Address"}, {"status_name": "Active"},
             {"value": {"+like": "10.1.%"}}, {"value": {"+like": "10.%.7"}},
             {"score": {"+gte": 0}}, {"tag": "none-has-it"}, {"value": "10.0.0.1"}]
    for i in range(20):
        st, b, _ = srv.call("POST", "/api/search/query",
                            body={"name": "c%02d" % i, "criteria": crits[i % len(crits)]}, token=tok)
        assert st == 201, (st, b)
    new, old = [], []
    body = None
    for _ in range(5):
        t0 = time.monotonic()
        st, body, _ = srv.call("GET", "/api/search/query?with=count&limit=20", token=tok)
        new.append(time.monotonic() - t0)
        assert st == 200, (st, body)
    for _ in range(2):
        st, lst, _ = srv.call("GET", "/api/search/query?limit=20", token=tok)
        t0 = time.monotonic()
        for c in lst["data"]:
            srv.call("POST", "/api/indicators/query?limit=1", body=c["api_query"], token=tok)
        old.append(time.monotonic() - t0)
    capped = sum(1 for c in body["data"] if c.get("count_capped"))
    timed = sum(1 for c in body["data"] if c.get("count_timed_out"))
    print("GET ?with=count, 20 collections: p50 %.3f s, max %.3f s (%d capped at %d, %d timed out)"
          % (statistics.median(new), max(new), capped, body.get("count_cap", 0), timed))
    print("before: 20 POST /api/indicators/query?limit=1 (uncapped counts): p50 %.3f s"
          % statistics.median(old))
    print("ratio to the aim (%.1f s): %.2f" % (AIM_S, statistics.median(new) / AIM_S))
finally:
    srv.stop()
    shutil.rmtree(work, ignore_errors=True)

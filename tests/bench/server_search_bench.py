#!/usr/bin/env python3
"""server_search_bench.py: the search routes' latency over a library of N indicators (default
100,000) through the real server over TLS: p50/p90 of criteria queries (POST
/api/indicators/query, limit 100, with total), the filtered list, keyword search, and a
cursorMark walk in pages of 1000. Prints figures; not a timed test.

usage: server_search_bench.py TQHOST [N]
"""

import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from tqapi import Server  # noqa: E402

TQ = os.path.abspath(sys.argv[1])
N = int(sys.argv[2]) if len(sys.argv) > 2 else 100000
work = tempfile.mkdtemp(prefix="tq-search-bench-")
db = os.path.join(work, "lib.db")
random.seed(7)
types = ["IP Address", "FQDN", "MD5", "URL"]
with open(os.path.join(work, "in.csv"), "w") as f:
    f.write("value,type,source,status,tags,Country\n")
    for i in range(N):
        k = i % 4
        v = ("10.%d.%d.%d" % ((i >> 16) & 255, (i >> 8) & 255, i & 255) if k == 0 else
             "host%d.example%d.com" % (i, i % 50) if k == 1 else
             "%032x" % random.getrandbits(128) if k == 2 else
             "http://site%d.example.org/p%d" % (i, i % 7))
        f.write("%s,%s,%s,%s,%s,%s\n" % (v, types[k], ["Feed A", "Feed B", "Feed C"][i % 3],
                                        ["Active", "Review", "Active", "Expired"][i % 4],
                                        ["apt", "c2", ""][i % 3], ["RU", "US", "CN", ""][i % 4]))
srv = Server(TQ, work, env={"TQHOST_DB": db})
for name, score in (("Feed A", "3"), ("Feed B", "6"), ("Feed C", "8")):
    srv.cli("source", "add", name, "--score", score)
t0 = time.perf_counter()
srv.cli("indicator", "import", os.path.join(work, "in.csv"))
print("imported %d indicators in %.1f s" % (N, time.perf_counter() - t0))
srv.add_user("bench", "read-only")
tok = srv.login("bench")
conn = srv.connection()


def measure(name, method, path, body=None, n=100):
    lat = []
    for _ in range(n + 10):
        t = time.perf_counter()
        st, b, _ = srv.call(method, path, body=body, token=tok, conn=conn)
        lat.append((time.perf_counter() - t) * 1000)
        assert st == 200, (st, b)
    lat = sorted(lat[10:])
    print("%-52s p50 %6.1f ms  p90 %6.1f ms  (total %s)" % (
        name, statistics.median(lat), lat[int(len(lat) * 0.9)], b.get("total")))


measure("criteria: +or of +and (type, score range), limit 100", "POST",
        "/api/indicators/query?limit=100",
        {"filters": {"+or": [{"+and": [{"type_name": "IP Address"},
                                       {"score": {"+gte": 4, "+lte": 8}}]},
                             {"+and": [{"value": "host5.example5.com"}]}]}})
measure("criteria: source + attribute name/value", "POST", "/api/indicators/query?limit=100",
        {"criteria": {"source": "Feed B", "attribute": {"name": "Country", "value": "RU"}}})
measure("criteria: value wildcard %example7.com", "POST", "/api/indicators/query?limit=100",
        {"criteria": {"value": "%example7.com"}})
measure("list: type + score_gte, sort=-id", "GET",
        "/api/indicators?type=FQDN&score_gte=5&limit=100&sort=-id")
measure("keyword: example7.com", "GET", "/api/search?query=example7.com&limit=10", n=30)
st, b, _ = srv.call("POST", "/api/indicators/query?limit=1",
                    body={"criteria": {"type_name": "IP Address"}}, token=tok, conn=conn)
h, mark, seen, pages = b["hash"], "*", 0, []
t0 = time.perf_counter()
while True:
    t = time.perf_counter()
    st, b, _ = srv.call("GET", "/api/indicators/query/hash/%s?limit=1000&cursorMark=%s"
                        % (h, urllib.parse.quote(mark)), token=tok, conn=conn)
    pages.append((time.perf_counter() - t) * 1000)
    seen += len(b["data"])
    if b["nextCursorMark"] == mark:
        break
    mark = b["nextCursorMark"]
print("cursorMark walk: %d indicators in pages of 1000 in %.2f s (page p50 %.1f ms)" % (
    seen, time.perf_counter() - t0, statistics.median(pages)))
srv.stop()
shutil.rmtree(work, ignore_errors=True)

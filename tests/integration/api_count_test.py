"""api_count_test.py: ?count=false on the search routes (the web UI asks for a page at once and
for the count apart): the same page as with the count, "total": null; the count alone still
right; a bad value a 400 naming count.

    api_count_test.py TQHOST
"""

import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tqapi import Server, Tally  # noqa: E402


def main():
    T = Tally()
    work = tempfile.mkdtemp(prefix="tq-count-")
    srv = Server(sys.argv[1], work, env={"TQHOST_LOGIN_DELAY": "1"})
    try:
        ips = os.path.join(work, "ips.txt")
        with open(ips, "w") as f:
            f.write("".join("10.9.0.%d\n" % i for i in range(1, 38)))
            f.write("only.example.com\n")
        srv.cli("indicator", "import", ips, "--source", "Count")
        srv.add_user("ro", "read-only")
        tok = srv.login("ro")
        crit = {"criteria": {"type_name": "IP Address"}}
        st, a, _ = srv.call("POST", "/api/indicators/query?limit=10&sort=-value", body=crit,
                            token=tok)
        st2, b, _ = srv.call("POST", "/api/indicators/query?limit=10&sort=-value&count=false",
                             body=crit, token=tok)
        T.check("with the count: total 37", st == 200 and a["total"] == 37, a.get("total"))
        T.check("count=false: 200, total null", st2 == 200 and "total" in b and
                b["total"] is None, (st2, b.get("total")))
        T.check("count=false: the same page, the same hash",
                [x["id"] for x in a["data"]] == [x["id"] for x in b["data"]] and
                a["hash"] == b["hash"], (a["data"][:2], b["data"][:2]))
        st, c, _ = srv.call("GET", "/api/indicators?type=IP%20Address&limit=5&count=0",
                            token=tok)
        T.check("GET /api/indicators?count=0: total null, 5 rows",
                st == 200 and c["total"] is None and len(c["data"]) == 5, c)
        st, d, _ = srv.call("GET", "/api/indicators/query/hash/%s?limit=30&cursorMark=*"
                            "&count=false" % a["hash"], token=tok)
        T.check("a cursorMark page with count=false: total null, a next mark",
                st == 200 and d["total"] is None and d["nextCursorMark"] != "*", d)
        st, e, _ = srv.call("GET", "/api/indicators/query/hash/%s?limit=30&cursorMark=%s"
                            "&count=false" % (a["hash"], d["nextCursorMark"]), token=tok)
        T.check("... and the walk goes on: the 7 left",
                st == 200 and len(e["data"]) == 7, (st, len(e.get("data", []))))
        st, f, _ = srv.call("GET", "/api/indicators?count=true&limit=1", token=tok)
        T.check("count=true: total 38", st == 200 and f["total"] == 38, f.get("total"))
        for bad in ("maybe", "", "FALSE"):
            st, g, _ = srv.call("GET", "/api/indicators?count=" + bad, token=tok)
            T.check("count=%r: 400 naming count" % bad,
                    st == 400 and "count" in g["data"]["errors"], (st, g))
    finally:
        T.check("the server stops cleanly", srv.stop() == 0)
    T.done()


if __name__ == "__main__":
    main()

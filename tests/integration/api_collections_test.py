#!/usr/bin/env python3
"""api_collections_test.py (integration.api_collections): data collections edited in place
(PUT /api/search/query/{id}) and their counts (GET /api/search/query?with=count).

Hostile cases first: wrong types, unknown fields, huge criteria, SQL metacharacters in the name,
an unknown id, a taken name, read-only; nothing changes on any of them. Then: new criteria keep
the id, a workflow over the collection walks them on its next run (the run's total), renaming a
workflow's collection is refused naming the workflow, the audit log has the edit, and the counts
of ?with=count equal the criteria's count from POST /api/indicators/query.

usage: api_collections_test.py TQHOST SRCDIR
"""

import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tqapi import Server, Tally  # noqa: E402

TQ, SRC = sys.argv[1], sys.argv[2]
t = Tally()
work = tempfile.mkdtemp(prefix="tq-coll-")
env = {"TQHOST_PLUGINS": os.path.join(SRC, "plugins"),
       "TQHOST_ACTIONS": os.path.join(SRC, "actions"),
       "TQHOST_SCHEMAS": os.path.join(SRC, "schemas")}
srv = Server(TQ, work, env=env)
META = "x'\"; DROP TABLE collections;--%_\\"
N_A, N_B = 30, 12


def field_of(body):
    try:
        return list(body["data"]["errors"].keys())[0]
    except (KeyError, TypeError, IndexError, AttributeError):
        return None


try:
    with open(os.path.join(work, "a.txt"), "w") as f:
        f.write("".join("10.70.0.%d\n" % (i + 1) for i in range(N_A)))
    with open(os.path.join(work, "b.txt"), "w") as f:
        f.write("".join("10.71.0.%d\n" % (i + 1) for i in range(N_B)))
    srv.cli("indicator", "import", os.path.join(work, "a.txt"), "--source", "Feed A")
    srv.cli("indicator", "import", os.path.join(work, "b.txt"), "--source", "Feed B")
    # A provider nobody listens on: a run fails its items, but its total is the collection's.
    srv.cli("plugin", "configure", "rst-ioc-lookup", "api_key=coll-key-123",
            "base_url=http://127.0.0.1:9/v1")
    srv.add_user("ro", "read-only")
    srv.add_user("ana", "analyst")
    srv.add_user("ada", "admin")
    ro, ana, ada = srv.login("ro"), srv.login("ana"), srv.login("ada")

    def save(name, crit):
        st, b, _ = srv.call("POST", "/api/search/query", body={"name": name, "criteria": crit},
                            token=ana)
        t.check("set-up: saved %r" % name, st == 201, (st, b))
        return b["data"]["id"]

    cid = save("feed-a", {"source": "Feed A"})
    oid = save("other", {"source": "Feed B"})

    def row(i):
        st, b, _ = srv.call("GET", "/api/search/query/%d" % i, token=ro)
        return b["data"] if st == 200 else None

    before = row(cid)

    # ---- hostile cases: all refused, nothing changes ----
    huge = {"+or": [{"value": "v%05d" % i} for i in range(5000)]}
    deep = {"source": "Feed A"}
    for _ in range(40):
        deep = {"+and": [deep]}
    bad = [
        ("a body that is not an object", [1, 2], "request"),
        ("name not a string", {"name": 7}, "name"),
        ("name empty", {"name": ""}, "name"),
        ("name with a control character", {"name": "a\u0001b"}, "name"),
        ("name too long", {"name": "n" * 5000}, "name"),
        ("criteria not an object", {"criteria": "source=Feed A"}, "criteria"),
        ("criteria with an unknown field", {"criteria": {"no_such_field": "x"}}, None),
        ("criteria huge (5000 terms)", {"criteria": huge}, None),
        ("criteria nested 40 deep", {"criteria": deep}, None),
        ("an unknown top-level field", {"name": "z", "owner": "eve"}, "owner"),
        ("filters without criteria", {"filters": {}}, "criteria"),
        ("api_query and criteria both", {"api_query": {"criteria": {}},
                                         "criteria": {"source": "Feed A"}}, "api_query"),
        ("api_query not an object", {"api_query": "x"}, "api_query"),
        ("nothing to change", {}, "request"),
    ]
    for what, body, field in bad:
        st, b, _ = srv.call("PUT", "/api/search/query/%d" % cid, body=body, token=ana)
        ok = st == 400 and (field is None and field_of(b) is not None or field_of(b) == field)
        t.check("PUT refused: %s (400 naming %s)" % (what, field or field_of(b)), ok,
                (st, json.dumps(b)[:300]))
    # fuzzapi: an unknown field was named cut at 64 bytes inside a UTF-8 character, so the
    # answer's field was no UTF-8 (no JSON a client can read); now escaped and cut whole
    st, b, _ = srv.call("PUT", "/api/search/query/%d" % cid,
                        raw=('{"%s\u00e9": 1}' % ("o" * 63)).encode(), token=ana,
                        headers={"Content-Type": "application/json"})
    f = field_of(b) if isinstance(b, dict) else None
    t.check("PUT refused: an unknown field cut inside a UTF-8 character (400 naming it, "
            "readable)", st == 400 and f is not None and f.startswith("o" * 63) and len(f) < 80 and
            "\ufffd" not in f,
            (st, str(b)[:300]))
    st, b, _ = srv.call("PUT", "/api/search/query/%d" % cid, raw=b"{nope", token=ana,
                        headers={"Content-Type": "application/json"})
    t.check("PUT refused: a body that is not JSON (400)", st == 400, (st, b))
    st, b, _ = srv.call("PUT", "/api/search/query/%d" % cid,
                        body={"criteria": {"value": "v" * (1 << 20)}}, token=ana)
    t.check("PUT refused: a 1 MB criteria string (400 or 413, no 500)", st in (400, 413),
            (st, str(b)[:200]))
    st, b, _ = srv.call("PUT", "/api/search/query/%d" % cid, body={"name": "other"}, token=ana)
    t.check("PUT refused: a name another collection has (409)", st == 409, (st, b))
    st, b, _ = srv.call("PUT", "/api/search/query/999999", body={"name": "q"}, token=ana)
    t.check("PUT of an unknown id: 404", st == 404, (st, b))
    st, b, _ = srv.call("PUT", "/api/search/query/abc", body={"name": "q"}, token=ana)
    t.check("PUT of a malformed id: 400 or 404", st in (400, 404), (st, b))
    st, b, _ = srv.call("PUT", "/api/search/query/%d" % cid, body={"name": "ro-was-here"},
                        token=ro)
    t.check("PUT by a read-only user: 403", st == 403, (st, b))
    t.check("after every refusal the collection is as it was", row(cid) == before,
            (row(cid), before))

    # ---- SQL metacharacters in a name: stored and given back as they are ----
    st, b, _ = srv.call("PUT", "/api/search/query/%d" % oid, body={"name": META}, token=ana)
    t.check("a name with SQL metacharacters is just a name (200, same id)",
            st == 200 and b["data"]["name"] == META and b["data"]["id"] == oid, (st, b))
    st, b, _ = srv.call("GET", "/api/search/query", token=ro)
    t.check("the list still has both collections",
            st == 200 and sorted(c["name"] for c in b["data"]) == sorted(["feed-a", META]), b)

    # ---- a workflow over it; new criteria in place ----
    WF = {"name": "wf-coll", "collection": "feed-a", "actions": ["rst-ioc-lookup-action"],
          "schedule": "every 6h", "settings": {}}
    st, b, _ = srv.call("POST", "/api/workflows", body=WF, token=ana)
    t.check("set-up: a workflow over feed-a", st == 201, (st, b))
    wid = b["data"]["id"]

    def run_total():
        st, b, _ = srv.call("POST", "/api/workflows/%d/run" % wid, token=ana)
        if st != 202:
            return (st, b)
        rid = b["data"]["id"]
        end = time.monotonic() + 60
        while time.monotonic() < end:
            st, r, _ = srv.call("GET", "/api/runs/%d" % rid, token=ro)
            if r["data"]["state"] != "running":
                return r["data"]["total"]
            time.sleep(0.1)
        return None

    t.check("the workflow's first run walks %d (Feed A)" % N_A, run_total() == N_A)
    st, b, _ = srv.call("DELETE", "/api/search/query/%d" % cid, token=ana)
    t.check("the delete of a workflow's collection is still refused (409)", st == 409, (st, b))
    st, b, _ = srv.call("PUT", "/api/search/query/%d" % cid,
                        body={"criteria": {"source": "Feed B"}}, token=ana)
    t.check("PUT new criteria of a workflow's collection: 200, the id kept",
            st == 200 and b["data"]["id"] == cid and b["data"]["name"] == "feed-a" and
            b["data"]["api_query"]["criteria"] == {"source": "Feed B"}, (st, b))
    t.check("GET by id gives the new criteria",
            (row(cid) or {}).get("api_query", {}).get("criteria") == {"source": "Feed B"},
            row(cid))
    st, b, _ = srv.call("GET", "/api/workflows/%d" % wid, token=ro)
    t.check("the workflow still names the collection", b["data"]["collection"] == "feed-a", b)
    t.check("the workflow's next run walks the new criteria (%d, Feed B)" % N_B,
            run_total() == N_B)
    st, b, _ = srv.call("PUT", "/api/search/query/%d" % cid, body={"name": "renamed"}, token=ana)
    t.check("renaming a workflow's collection: 409 naming the workflow",
            st == 409 and "wf-coll" in json.dumps(b), (st, b))
    st, b, _ = srv.call("PUT", "/api/search/query/%d" % cid,
                        body={"name": "feed-a", "api_query": {"criteria": {"source": "Feed A"}}},
                        token=ana)
    t.check("PUT with ThreatQ's api_query and the same name: 200",
            st == 200 and b["data"]["api_query"]["criteria"] == {"source": "Feed A"}, (st, b))
    st, b, _ = srv.call("GET", "/api/audit?what=search.update", token=ada)
    t.check("the edits are in the audit log (by ana)",
            st == 200 and sum(1 for e in b["data"] if e.get("who") == "ana") >= 3, b)

    # ---- counts ----
    st, b, _ = srv.call("GET", "/api/search/query?with=bogus", token=ro)
    t.check("?with=bogus: 400 naming with", st == 400 and field_of(b) == "with", (st, b))
    st, b, _ = srv.call("GET", "/api/search/query?with=count", token=ro)
    counts = {c["name"]: c.get("count") for c in b["data"]} if st == 200 else {}
    t.check("?with=count: each collection's count", counts == {"feed-a": N_A, META: N_B},
            (st, b))
    for c in b.get("data", []):
        st2, q, _ = srv.call("POST", "/api/indicators/query?limit=1",
                             body=c["api_query"], token=ro)
        t.check("%r: the count equals the criteria's total (%s)" % (c["name"][:10], q.get("total")),
                st2 == 200 and q["total"] == c["count"] and c["count_capped"] is False, (q, c))
    t.check("the answer says the cap", b.get("count_cap") == 100000, b.get("count_cap"))
    srv.cli("collection", "add", "flat-b", "--source", "Feed B")
    st, b, _ = srv.call("GET", "/api/search/query?with=count", token=ro)
    flat = [c for c in b.get("data", []) if c["name"] == "flat-b"]
    t.check("a collection of flat fields (tqhost collection add) is counted too (%d)" % N_B,
            flat and flat[0]["count"] == N_B, flat)
    st, b, _ = srv.call("PUT", "/api/search/query/%d" % flat[0]["id"],
                        body={"criteria": {"source": "Feed A"}}, token=ana)
    st, b, _ = srv.call("GET", "/api/search/query?with=count", token=ro)
    flat = [c for c in b.get("data", []) if c["name"] == "flat-b"]
    t.check("its new criteria replace the flat fields (%d)" % N_A,
            flat and flat[0]["count"] == N_A, flat)
    st, b, _ = srv.call("GET", "/api/search/query", token=ro)
    t.check("without ?with=count no count is computed",
            st == 200 and all("count" not in c for c in b["data"]), b)
finally:
    srv.stop()
t.done()
shutil.rmtree(work, ignore_errors=True)

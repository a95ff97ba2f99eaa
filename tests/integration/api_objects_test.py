#!/usr/bin/env python3
"""api_objects_test.py: the objects route group through the real server over TLS: lookup
tables, indicators (get/create/update/delete, consume, attributes, sources, tags, scores,
related objects), the other object types, sources; hostile input (malformed JSON, wrong
types, unknown ids, a body over the cap, limit=10^9, SQL metacharacters stored verbatim) with
nothing written on any error; each role's refusals; the CLI sees what the API wrote.
Usage: api_objects_test.py TQHOST"""

import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tqapi import Server, Tally  # noqa: E402

TQ = os.path.abspath(sys.argv[1])
T = Tally()
HOSTILE = "a'b\"c;--%_\\d' OR 1=1; DROP TABLE objects;--"


def main():
    work = tempfile.mkdtemp(prefix="tq-objects-")
    srv = Server(TQ, work, args=["--max-body", "65536"])
    try:
        run(srv)
    finally:
        rc = srv.stop()
        T.check("server exits 0 on SIGTERM", rc == 0, rc)
    T.done()


def cli_json(srv, *argv, check=True):
    rc, out, err = srv.cli("--json", *argv, check=check)
    try:
        return rc, json.loads(out) if out.strip() else None
    except ValueError:
        return rc, out


def count_objects(srv):
    """How many objects the library holds (through the CLI)."""
    rc, j = cli_json(srv, "indicator", "list", "--limit", "1000000")
    return len(j) if isinstance(j, list) else (j or {}).get("total", -1)


def run(srv):
    srv.add_user("ro", "read-only")
    srv.add_user("ana", "analyst")
    srv.add_user("adm", "admin")
    ro, ana, adm = srv.login("ro"), srv.login("ana"), srv.login("adm")
    tests_lookups(srv, ro)
    tests_get(srv, ro, ana)


def tests_lookups(srv, ro):
    st, b, _ = srv.call("GET", "/api/indicator/types", token=ro)
    names = [t["name"] for t in b["data"]] if st == 200 else []
    T.check("indicator types: 34 with ids and class", st == 200 and len(names) == 34 and
            all("id" in t and t["class"] in ("network", "host") for t in b["data"]), b)
    st, b, _ = srv.call("GET", "/api/indicator/types?name=ip%20address", token=ro)
    T.check("indicator types ?name= filters (case-insensitive)",
            st == 200 and [t["name"] for t in b["data"]] == ["IP Address"], b)
    st, b, _ = srv.call("GET", "/api/indicator/types?name=%25", token=ro)
    T.check("indicator types ?name=% matches nothing (no wildcard)", st == 200 and
            b["data"] == [], b)
    st, b, _ = srv.call("GET", "/api/indicator/statuses", token=ro)
    T.check("indicator statuses: ThreatQ's five with ids",
            st == 200 and [(s["id"], s["name"]) for s in b["data"]][:2] ==
            [(1, "Active"), (2, "Expired")] and len(b["data"]) == 5, b)
    st, b, _ = srv.call("GET", "/api/objects", token=ro)
    colls = {o["name"]: o["collection"] for o in b["data"]} if st == 200 else {}
    T.check("object types with ThreatQ's collections",
            colls.get("indicator") == "indicators" and colls.get("adversary") == "adversaries"
            and colls.get("malware") == "malware", b)
    st, b, _ = srv.call("GET", "/api/objects")
    T.check("lookups need a token (401)", st == 401, (st, b))


def tests_get(srv, ro, ana):
    srv.cli("indicator", "add", "198.51.100.7", "--source", "Feed A", "--attribute",
            "Country=DE", "--tag", "c2", "--description", "d1")
    rc, j = cli_json(srv, "indicator", "get", "198.51.100.7")
    iid = j["id"]
    st, b, _ = srv.call("GET", "/api/indicators/%d" % iid, token=ro)
    d = b.get("data", {}) if isinstance(b, dict) else {}
    T.check("GET indicator: ThreatQ's plain shape",
            st == 200 and d.get("id") == iid and d.get("value") == "198.51.100.7"
            and isinstance(d.get("type_id"), int) and d.get("status_id") == 1
            and isinstance(d.get("score"), int) and d.get("class") == "network"
            and d.get("description") == "d1" and len(d.get("created_at", "")) == 19
            and "attributes" not in d and "sources" not in d, b)
    st, b, _ = srv.call("GET", "/api/indicators/%d?with=attributes,sources,score,tags,type,status"
                        % iid, token=ro)
    d = b.get("data", {}) if isinstance(b, dict) else {}
    T.check("GET indicator with=: type, status, score object, sources, attributes, tags",
            st == 200 and d["type"]["name"] == "IP Address" and d["status"]["name"] == "Active"
            and d["score"]["manual_score"] is None and "generated_score" in d["score"]
            and [s["name"] for s in d["sources"]] == ["Feed A"]
            and [(a["name"], a["value"]) for a in d["attributes"]] == [("Country", "DE")]
            and isinstance(d["attributes"][0]["id"], int)
            and d["attributes"][0]["sources"][0]["name"] == "Feed A"
            and [t["name"] for t in d["tags"]] == ["c2"] and isinstance(d["tags"][0]["id"], int),
            b)
    st, b, _ = srv.call("GET", "/api/indicators/%d?with=bogus" % iid, token=ro)
    T.check("GET with=bogus: 400 naming with", st == 400 and "with" in b["data"]["errors"], b)
    st, b, _ = srv.call("GET", "/api/indicators/999999", token=ro)
    T.check("GET unknown id: 404", st == 404 and "999999" in b["errors"][0], b)
    for bad in ("0", "-1", "abc", "1%27%20OR%201=1", "99999999999999999999999"):
        st, b, _ = srv.call("GET", "/api/indicators/" + bad, token=ro)
        T.check("GET /api/indicators/%s: 400 naming id" % bad,
                st == 400 and "id" in b["data"]["errors"], (st, b))
    st, b, _ = srv.call("GET", "/api/indicators/%d" % iid)
    T.check("GET without a token: 401", st == 401, st)


if __name__ == "__main__":
    main()

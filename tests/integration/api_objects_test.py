#!/usr/bin/env python3
"""api_objects_test.py: the objects route group through the real server over TLS: lookup
tables, indicators (get/create/update/delete, consume, attributes, sources, tags, scores,
related objects), the other object types, sources; hostile input (malformed JSON, wrong
types, unknown ids, a body over the cap, limit=10^9, SQL metacharacters stored verbatim) with
nothing written on any error; each role's refusals; the CLI sees what the API wrote.
Usage: api_objects_test.py TQHOST"""

import http.client
import json
import os
import ssl
import subprocess
import sys
import tempfile
from urllib.parse import quote

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tqapi import Server, Tally  # noqa: E402

TQ = os.path.abspath(sys.argv[1])
SPEC_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "schemas",
                         "openapi.yaml")
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
    tests_create(srv, ro, ana)
    tests_update_delete(srv, ro, ana, adm)
    tests_parts(srv, ro, ana)
    tests_score(srv, ro, ana)
    tests_other_objects(srv, ro, ana)
    tests_consume(srv, ro, ana)
    tests_sources(srv, ro, ana, adm)
    tests_roles_and_hostile(srv, ro, ana, adm)
    tests_schema(srv, ro, ana)
    tests_concurrent_writers(srv, ana)


def conforms(name, instance):
    """Whether instance matches components.schemas[name] of schemas/openapi.yaml."""
    import jsonschema
    import yaml
    with open(SPEC_PATH) as f:
        spec = yaml.safe_load(f)
    resolver = jsonschema.RefResolver.from_schema(spec)
    v = jsonschema.Draft202012Validator(spec["components"]["schemas"][name], resolver=resolver)
    errs = list(v.iter_errors(instance))
    return (not errs), [e.message for e in errs[:3]]


def tests_schema(srv, ro, ana):
    """The answers match the OpenAPI schemas of the group."""
    ind = new_indicator(srv, ana, "schema.example.com", attributes=[{"name": "a", "value": "b"}],
                        tags=["t"], sources=[{"name": "S", "tlp": "RED"}])
    iid = ind["id"]
    st, b, _ = srv.call("POST", "/api/adversaries", body={"name": "Schema adv"}, token=ana)
    adv = data(b)["id"]
    srv.call("POST", "/api/indicators/%d/adversaries" % iid, body={"id": adv}, token=ana)
    cases = [
        ("/api/indicators/%d" % iid, "Object", False),
        ("/api/indicators/%d?with=attributes,sources,score,tags,type,status" % iid, "Object",
         False),
        ("/api/indicators/%d/attributes" % iid, "ObjListAttribute", True),
        ("/api/indicators/%d/sources" % iid, "ObjListSourceRef", True),
        ("/api/indicators/%d/tags" % iid, "ObjListTag", True),
        ("/api/indicators/%d/adversaries" % iid, "ObjListRelated", True),
        ("/api/adversaries?limit=5", "ObjListObject", True),
        ("/api/adversaries/%d?with=sources" % adv, "Object", False),
        ("/api/sources", "ObjListSource", True),
        ("/api/indicator/types", "ObjListIndicatorType", True),
        ("/api/indicator/statuses", "ObjListStatus", True),
        ("/api/objects", "ObjListObjectType", True),
    ]
    for path, name, whole in cases:
        st, b, _ = srv.call("GET", path, token=ro)
        ok, why = conforms(name, b if whole else data(b)) if st == 200 else (False, st)
        T.check("GET %s matches %s" % (path, name), ok, why)
    st, b, _ = srv.call("POST", "/api/indicators/consume", token=ana,
                        body=[{"value": "schema%d.example.com" % i} for i in range(3)])
    T.check("consume answer matches ConsumeResult", st == 200 and all(
        conforms("ConsumeResult", x)[0] for x in data(b)), b)
    st, b, _ = srv.call("PUT", "/api/indicator/%d/scores" % iid, body={"manual_score": 2},
                        token=ana)
    T.check("scores answer matches Score", st == 200 and conforms("Score", data(b))[0], b)
    st, b, _ = srv.call("GET", "/api/indicators/0", token=ro)
    T.check("a 400 matches Invalid", st == 400 and conforms("Invalid", b)[0], b)
    st, b, _ = srv.call("GET", "/api/indicators/999999", token=ro)
    T.check("a 404 matches Errors", st == 404 and conforms("Errors", b)[0], b)


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


def over_cap(srv, path, body, tok):
    """Posts a body over the cap: the status, or "closed" when the server hung up while the
    client was still sending (it answers 413 from Content-Length and closes)."""
    try:
        return srv.call("POST", path, body=body, token=tok)[0]
    except (ConnectionError, ssl.SSLError, http.client.HTTPException):
        return "closed"


def total(srv):
    """Indicators in the library, counted by the CLI."""
    rc, out, _ = srv.cli("--json", "indicator", "list", "--limit", "0")
    n = len(json.loads(out))
    return n


def data(b):
    return b.get("data") if isinstance(b, dict) else None


def err_field(b):
    """The fields a 400 names."""
    try:
        return set(b["data"]["errors"].keys())
    except (KeyError, TypeError, AttributeError):
        return set()


def cli_get(srv, value, itype=None):
    args = ["--json", "indicator", "get", value] + (["--type", itype] if itype else [])
    rc, out, _ = srv.cli(*args, check=False)
    return json.loads(out) if rc == 0 else None


def tests_create(srv, ro, ana):
    before = total(srv)
    body = {"value": "evil.example.com", "type": "FQDN", "status": "Review",
            "description": "desc " + HOSTILE,
            "sources": [{"name": "Src " + HOSTILE, "tlp": "AMBER"}],
            "attributes": [{"name": "Attr " + HOSTILE, "value": "val " + HOSTILE}],
            "tags": ["tag " + HOSTILE, {"name": "t%_2"}]}
    st, b, _ = srv.call("POST", "/api/indicators", body=body, token=ana)
    d = (data(b) or [{}])[0] if st == 201 else {}
    T.check("POST /api/indicators: 201, a list of one (ThreatQ's answer)",
            st == 201 and isinstance(data(b), list) and d.get("value") == "evil.example.com"
            and d.get("status", {}).get("name") == "Review", b)
    iid = d.get("id", 0)
    T.check("create: SQL metacharacters and %/_ stored verbatim (description, source, "
            "attribute, tags)",
            d.get("description") == "desc " + HOSTILE
            and [x["name"] for x in d.get("sources", [])] == ["Src " + HOSTILE]
            and d["sources"][0]["tlp_name"] == "amber"
            and [(a["name"], a["value"]) for a in d.get("attributes", [])] ==
            [("Attr " + HOSTILE, "val " + HOSTILE)]
            and sorted(t["name"] for t in d.get("tags", [])) == sorted(["tag " + HOSTILE,
                                                                         "t%_2"]), d)
    c = cli_get(srv, "evil.example.com")
    T.check("the CLI sees what the API wrote while the server runs",
            c is not None and c.get("id") == iid and
            any(a.get("value") == "val " + HOSTILE for a in c.get("attributes", [])), c)
    st, b, _ = srv.call("POST", "/api/indicators",
                        body=[{"value": "203.0.113.9", "type_id": 15, "status_id": 4},
                              {"value": "http://x.example/a?b=1", "type": {"name": "URL"}}],
                        token=ana)
    T.check("create a list: both, type_id and {name} forms", st == 201 and
            [x["type"]["name"] for x in data(b)] == ["IP Address", "URL"]
            and data(b)[0]["status"]["name"] == "Review", b)
    st, b, _ = srv.call("POST", "/api/indicators", body={"value": "1.2.3.4"}, token=ana)
    T.check("create without sources: the caller's login is the source",
            st == 201 and [x["name"] for x in data(b)[0]["sources"]] == ["ana"], b)
    n0 = total(srv)
    T.check("counts: 4 objects written so far", n0 == before + 4, (before, n0))
    bad = [
        ("malformed JSON", None, b'{"value": "9.9.9.9",', "request"),
        ("empty body", None, b"", "request"),
        ("a number as body", 5, None, "request"),
        ("value a number", {"value": 5}, None, "value"),
        ("value empty", {"value": ""}, None, "value"),
        ("type unknown", {"value": "9.9.9.9", "type": "Nope"}, None, "type"),
        ("type a number", {"value": "9.9.9.9", "type": 7}, None, "type"),
        ("type_id unknown", {"value": "9.9.9.9", "type_id": 999}, None, "type_id"),
        ("type_id a string", {"value": "9.9.9.9", "type_id": "1"}, None, "type_id"),
        ("type_id 1e300", None, b'{"value": "9.9.9.9", "type_id": 1e300}', "type_id"),
        ("type_id 1.5", {"value": "9.9.9.9", "type_id": 1.5}, None, "type_id"),
        ("status_id -1e300", None, b'{"value": "9.9.9.9", "status_id": -1e300}', "status_id"),
        ("a source's tlp 1e300", None,
         b'{"value": "9.9.9.9", "sources": [{"name": "a", "tlp": 1e300}]}', "sources"),
        ("status unknown", {"value": "9.9.9.9", "status": "Bogus"}, None, "status"),
        ("status_id 9", {"value": "9.9.9.9", "status_id": 9}, None, "status_id"),
        ("sources not a list", {"value": "9.9.9.9", "sources": "x"}, None, "sources"),
        ("a source a number", {"value": "9.9.9.9", "sources": [5]}, None, "sources"),
        ("a source's tlp unknown", {"value": "9.9.9.9", "sources": [{"name": "a",
                                                                      "tlp": "pink"}]},
         None, "sources"),
        ("attribute without value", {"value": "9.9.9.9", "attributes": [{"name": "a"}]},
         None, "attributes"),
        ("attribute value a number", {"value": "9.9.9.9",
                                      "attributes": [{"name": "a", "value": 1}]},
         None, "attributes"),
        ("tags a string", {"value": "9.9.9.9", "tags": "x"}, None, "tags"),
        ("a tag null", {"value": "9.9.9.9", "tags": [None]}, None, "tags"),
        ("published_at not a date", {"value": "9.9.9.9", "published_at": "yesterday"}, None,
         "published_at"),
        ("description a list", {"value": "9.9.9.9", "description": []}, None, "description"),
        ("value not an IP for IP Address", {"value": "not an ip", "type": "IP Address"}, None,
         "value"),
        ("a tag with a newline", {"value": "9.9.9.9", "tags": ["a\nb"]}, None, "tags"),
        ("a source with a tab", {"value": "9.9.9.9", "sources": ["a\tb"]}, None, "sources"),
        ("a list with one bad item", [{"value": "9.9.9.8"}, {"value": 3}], None, "value"),
        ("a list whose 2nd item the library refuses",
         [{"value": "9.9.9.7"}, {"value": "zz", "type": "IP Address"}], None, "request"),
        ("an empty list", [], None, "request"),
        ("a NUL character in a text", None,
         b'{"value": "9.9.9.9", "description": "cut\\u0000here"}', "request"),
        ("a tag over the library's limit", {"value": "9.9.9.9", "tags": ["t" * 2000]}, None,
         "tags"),
        ("an attribute name over the limit",
         {"value": "9.9.9.9", "attributes": [{"name": "n" * 300, "value": "v"}]}, None,
         "attributes"),
        ("invalid UTF-8", None, b'{"value": "9.9.9.9", "description": "\xff"}', "description"),
    ]
    for name, body, raw, field in bad:
        st, b, _ = srv.call("POST", "/api/indicators", body=body, raw=raw, token=ana)
        T.check("create refused (%s): 400 naming %s" % (name, field),
                st == 400 and field in err_field(b), (st, b))
    st = over_cap(srv, "/api/indicators", [{"value": "10.0.0.%d" % (i % 250),
                                            "description": "x" * 200} for i in range(400)], ana)
    T.check("a body over --max-body: 413", st in (413, "closed"), st)
    T.check("nothing written by any refused create", total(srv) == n0, (n0, total(srv)))
    T.check("no indicator 9.9.9.9 / 9.9.9.8 / 9.9.9.7 (CLI)",
            all(cli_get(srv, v) is None for v in ("9.9.9.9", "9.9.9.8", "9.9.9.7")))
    st, b, _ = srv.call("POST", "/api/indicators", body={"value": "8.8.4.4"}, token=ro)
    T.check("read-only cannot create (403)", st == 403, (st, b))
    T.check("... and nothing was written", cli_get(srv, "8.8.4.4") is None)


def new_indicator(srv, tok, value, **kw):
    body = dict(kw)
    body["value"] = value
    st, b, _ = srv.call("POST", "/api/indicators", body=body, token=tok)
    if st != 201:
        raise RuntimeError("create %s: %d %s" % (value, st, b))
    return data(b)[0]


def tests_update_delete(srv, ro, ana, adm):
    ind = new_indicator(srv, ana, "upd.example.org", description="before")
    iid = ind["id"]
    url = "/api/indicators/%d" % iid
    st, b, _ = srv.call("PUT", url, body={"status": "Whitelisted", "description": HOSTILE},
                        token=ana)
    T.check("PUT status and description", st == 200 and data(b)["status"]["name"] ==
            "Whitelisted" and data(b)["description"] == HOSTILE, b)
    st, b, _ = srv.call("PUT", url, body={"status_id": 1}, token=ana)
    T.check("PUT status_id", st == 200 and data(b)["status_id"] == 1, b)
    st, b, _ = srv.call("PUT", url, body={"value": "UPD2.example.org"}, token=ana)
    T.check("PUT value: stored in its canonical form", st == 200 and
            data(b)["value"] == "upd2.example.org", b)
    other = new_indicator(srv, ana, "taken.example.org")
    st, b, _ = srv.call("PUT", url, body={"value": "taken.example.org"}, token=ana)
    T.check("PUT value of another indicator: 409", st == 409, (st, b))
    for name, body, field in [("unknown field", {"colour": "red"}, "colour"),
                              ("status unknown", {"status": "Nope"}, "status"),
                              ("description a number", {"description": 1}, "description"),
                              ("a list", [{"status": "Active"}], "request"),
                              ("value empty", {"value": ""}, "value")]:
        st, b, _ = srv.call("PUT", url, body=body, token=ana)
        T.check("PUT refused (%s): 400 naming %s" % (name, field),
                st == 400 and field in err_field(b), (st, b))
    st, b, _ = srv.call("PUT", url, raw=b"{", token=ana)
    T.check("PUT malformed JSON: 400", st == 400, (st, b))
    c = cli_get(srv, "upd2.example.org")
    T.check("refused PUTs changed nothing (CLI)", c and c.get("status") == "Active", c)
    st, b, _ = srv.call("PUT", "/api/indicators/987654", body={"status": "Active"}, token=ana)
    T.check("PUT unknown id: 404", st == 404, (st, b))
    st, b, _ = srv.call("PUT", url, body={"status": "Active"}, token=ro)
    T.check("read-only cannot PUT (403)", st == 403, (st, b))
    st, b, _ = srv.call("DELETE", url, token=ro)
    T.check("read-only cannot DELETE (403)", st == 403, (st, b))
    st, b, _ = srv.call("DELETE", url, token=ana)
    T.check("DELETE: 204", st == 204, (st, b))
    st, b, _ = srv.call("GET", url, token=ro)
    T.check("GET after DELETE: 404", st == 404, (st, b))
    T.check("the CLI no longer finds it", cli_get(srv, "upd2.example.org") is None)
    st, b, _ = srv.call("DELETE", url, token=ana)
    T.check("DELETE again: 404", st == 404, (st, b))
    st, b, _ = srv.call("GET", "/api/audit?what=indicator.delete", token=adm)
    T.check("the delete is in the audit log (who, target)",
            st == 200 and any(a.get("who") == "ana" and str(iid) in a.get("target", "")
                              for a in data(b)), b)
    T.check("the other indicator is still there", cli_get(srv, "taken.example.org") is not None)
    return other


def tests_parts(srv, ro, ana):
    iid = new_indicator(srv, ana, "parts.example.net")["id"]
    base = "/api/indicators/%d" % iid
    st, b, _ = srv.call("POST", base + "/attributes",
                        body={"name": "Confidence", "value": "80",
                              "sources": [{"name": "Vendor", "tlp": "GREEN"}]}, token=ana)
    a1 = data(b) or {}
    T.check("POST attribute: 201 with its id, source and TLP", st == 201 and
            isinstance(a1.get("id"), int) and a1["sources"][0]["name"] == "Vendor" and
            a1["sources"][0]["tlp_name"] == "green", b)
    st, b, _ = srv.call("POST", base + "/attributes",
                        body=[{"name": "k%_", "value": HOSTILE}, {"name": "x", "value": "y"}],
                        token=ana)
    T.check("POST a list of attributes: 201, both", st == 201 and len(data(b)) == 2 and
            data(b)[0]["value"] == HOSTILE, b)
    st, b, _ = srv.call("GET", base + "/attributes", token=ro)
    T.check("GET attributes: three", st == 200 and len(data(b)) == 3, b)
    st, b, _ = srv.call("PUT", base + "/attributes/%d" % a1.get("id", 0), body={"value": "90"},
                        token=ana)
    T.check("PUT attribute value", st == 200 and data(b)["value"] == "90" and
            data(b)["id"] == a1.get("id"), b)
    st, b, _ = srv.call("PUT", base + "/attributes/99999", body={"value": "1"}, token=ana)
    T.check("PUT unknown attribute id: 404", st == 404, (st, b))
    st, b, _ = srv.call("PUT", base + "/attributes/%d" % a1.get("id", 0), body={"value": 5},
                        token=ana)
    T.check("PUT attribute value a number: 400", st == 400 and "value" in err_field(b), b)
    st, b, _ = srv.call("POST", base + "/attributes", body={"name": "n"}, token=ana)
    T.check("POST attribute without value: 400", st == 400, (st, b))
    st, b, _ = srv.call("POST", base + "/attributes", body={"name": "n", "value": "v"},
                        token=ro)
    T.check("read-only cannot add attributes (403)", st == 403, (st, b))
    st, b, _ = srv.call("DELETE", base + "/attributes/%d" % a1.get("id", 0), token=ana)
    T.check("DELETE attribute: 204", st == 204, (st, b))
    st, b, _ = srv.call("DELETE", base + "/attributes/%d" % a1.get("id", 0), token=ana)
    T.check("DELETE it again: 404", st == 404, (st, b))
    c = cli_get(srv, "parts.example.net")
    T.check("the CLI shows the attributes left",
            c and sorted(a["name"] for a in c.get("attributes", [])) == ["k%_", "x"], c)
    # sources
    st, b, _ = srv.call("POST", base + "/sources", body={"name": "S2 " + HOSTILE, "tlp": "RED"},
                        token=ana)
    names = [x["name"] for x in data(b)] if st == 201 else []
    T.check("POST source: 201, the object's sources", st == 201 and
            "S2 " + HOSTILE in names and "ana" in names, b)
    sid = [x["id"] for x in data(b) if x["name"] == "S2 " + HOSTILE][0] if names else 0
    st, b, _ = srv.call("GET", base + "/sources", token=ro)
    T.check("GET sources", st == 200 and len(data(b)) == 2, b)
    st, b, _ = srv.call("POST", base + "/sources", body={"name": 3}, token=ana)
    T.check("POST source name a number: 400", st == 400, (st, b))
    st, b, _ = srv.call("DELETE", base + "/sources/%d" % sid, token=ana)
    T.check("DELETE source: 204", st == 204, (st, b))
    st, b, _ = srv.call("DELETE", base + "/sources/%d" % sid, token=ana)
    T.check("DELETE source again: 404", st == 404, (st, b))
    # tags
    st, b, _ = srv.call("POST", base + "/tags", body=[{"name": "alpha"}, "be'ta%"], token=ana)
    T.check("POST tags: 201", st == 201 and sorted(t["name"] for t in data(b)) ==
            ["alpha", "be'ta%"], b)
    tid = data(b)[0]["id"] if st == 201 else 0
    st, b, _ = srv.call("GET", base + "/tags", token=ro)
    T.check("GET tags", st == 200 and len(data(b)) == 2, b)
    st, b, _ = srv.call("POST", base + "/tags", body={"name": ""}, token=ana)
    T.check("POST an empty tag: 400", st == 400, (st, b))
    st, b, _ = srv.call("DELETE", base + "/tags/%d" % tid, token=ana)
    T.check("DELETE tag: 204", st == 204, (st, b))
    st, b, _ = srv.call("DELETE", base + "/tags/%d" % tid, token=ana)
    T.check("DELETE tag again: 404", st == 404, (st, b))
    st, b, _ = srv.call("GET", "/api/indicators/88888/tags", token=ro)
    T.check("GET tags of an unknown indicator: 404", st == 404, (st, b))
    st, b, _ = srv.call("POST", "/api/indicators/88888/tags", body={"name": "a"}, token=ana)
    T.check("POST tags to an unknown indicator: 404", st == 404, (st, b))


def tests_score(srv, ro, ana):
    iid = new_indicator(srv, ana, "score.example.net")["id"]
    url = "/api/indicator/%d/scores" % iid
    st, b, _ = srv.call("PUT", url, body={"manual_score": 7}, token=ana)
    T.check("PUT scores manual 7", st == 200 and data(b)["manual_score"] == 7 and
            data(b)["score"] == 7, b)
    st, b, _ = srv.call("GET", "/api/indicators/%d" % iid, token=ro)
    T.check("the indicator's score is 7", data(b)["score"] == 7, b)
    st, b, _ = srv.call("PUT", url, body={"manual_score": None}, token=ana)
    T.check("PUT scores null: back to generated", st == 200 and data(b)["manual_score"] is None,
            b)
    for v in (11, -1, 2.5, "x", [], True, 1e300, "nan", "inf", "-0.5"):
        st, b, _ = srv.call("PUT", url, body={"manual_score": v}, token=ana)
        T.check("PUT scores %r: 400" % (v,), st == 400 and "manual_score" in err_field(b), b)
    st, b, _ = srv.call("PUT", url, body={}, token=ana)
    T.check("PUT scores without manual_score: 400", st == 400, b)
    # fuzzapi: a key that is no UTF-8 was echoed as the refused field as it came, so the
    # answer was no UTF-8 (no JSON a client can read); now its bad bytes are shown as \xHH
    st, b, _ = srv.call("PUT", url, raw=b'{"k\xc2": 1, "manual_score": 3}', token=ana,
                        headers={"Content-Type": "application/json"})
    f = list(b.get("data", {}).get("errors", {})) if isinstance(b, dict) else []
    T.check("PUT scores with a key that is no UTF-8: 400 naming it readably",
            st == 400 and len(f) == 1 and f[0].startswith("k") and "\ufffd" not in f[0], (st, b))
    st, b, _ = srv.call("PUT", "/api/indicator/77777/scores", body={"manual_score": 1},
                        token=ana)
    T.check("PUT scores of an unknown indicator: 404", st == 404, b)
    st, b, _ = srv.call("PUT", url, body={"manual_score": 1}, token=ro)
    T.check("read-only cannot set scores (403)", st == 403, b)


def tests_other_objects(srv, ro, ana):
    st, b, _ = srv.call("POST", "/api/adversaries", body={"name": "APT " + HOSTILE}, token=ana)
    adv = data(b) or {}
    T.check("POST /api/adversaries: 201, one object with name", st == 201 and
            adv.get("name") == "APT " + HOSTILE and adv.get("object_code") == "adversary", b)
    st, b, _ = srv.call("POST", "/api/reports", body={"title": "Report 100%_done"}, token=ana)
    rep = data(b) or {}
    T.check("POST /api/reports (plural spelling) with title", st == 201 and
            rep.get("title") == "Report 100%_done", b)
    st, b, _ = srv.call("POST", "/api/malware", body={"value": "Emotet"}, token=ana)
    T.check("POST /api/malware", st == 201, b)
    st, b, _ = srv.call("POST", "/api/malware", body={"name": 5}, token=ana)
    T.check("POST /api/malware name a number: 400", st == 400, b)
    st, b, _ = srv.call("GET", "/api/adversaries/%d" % adv.get("id", 0), token=ro)
    T.check("GET adversary", st == 200 and data(b)["value"] == "APT " + HOSTILE, b)
    st, b, _ = srv.call("GET", "/api/malware/%d" % adv.get("id", 0), token=ro)
    T.check("GET an adversary's id as malware: 404", st == 404, b)
    st, b, _ = srv.call("GET", "/api/adversaries?value=" + quote("APT " + HOSTILE), token=ro)
    T.check("list ?value= exact, metacharacters verbatim", st == 200 and b["total"] == 1, b)
    st, b, _ = srv.call("GET", "/api/report?value=" + quote("Report 100%"), token=ro)
    T.check("list ?value= with % as a wildcard", st == 200 and b["total"] == 1, b)
    st, b, _ = srv.call("GET", "/api/report?value=" + quote("Report 100%x%"), token=ro)
    T.check("list: _ is not a wildcard", st == 200 and b["total"] == 0, b)
    st, b, _ = srv.call("GET", "/api/report?value=" + quote("Report 100%_d%"), token=ro)
    T.check("list: _ matches itself", st == 200 and b["total"] == 1, b)
    st, b, _ = srv.call("GET", "/api/report?value=" + quote("Report 100x_done"), token=ro)
    T.check("list: exact value with _ does not match another character", st == 200 and
            b["total"] == 0, b)
    st, b, _ = srv.call("GET", "/api/adversaries?limit=1000000000", token=ro)
    T.check("list limit=10^9: clamped, not an error", st == 200 and b["limit"] <= 1000, b)
    st, b, _ = srv.call("GET", "/api/adversaries?limit=abc", token=ro)
    T.check("list limit=abc: 400", st == 400, b)
    ind = new_indicator(srv, ana, "rel.example.com")
    url = "/api/indicators/%d/adversaries" % ind["id"]
    st, b, _ = srv.call("POST", url, body={"id": adv.get("id")}, token=ana)
    T.check("relate an indicator to an adversary: 201 with pivot", st == 201 and
            data(b)[0]["id"] == adv.get("id") and "pivot" in data(b)[0], b)
    st, b, _ = srv.call("GET", url, token=ro)
    T.check("GET /api/indicators/{id}/adversaries", st == 200 and b["total"] == 1 and
            data(b)[0]["name"] == "APT " + HOSTILE, b)
    st, b, _ = srv.call("GET", "/api/adversaries/%d/indicators" % adv.get("id"), token=ro)
    T.check("and the other way round", st == 200 and [x["id"] for x in data(b)] == [ind["id"]],
            b)
    st, b, _ = srv.call("POST", "/api/adversaries/%d/malware" % adv.get("id"),
                        body=[{"id": rep.get("id")}], token=ana)
    T.check("relate to an object of another type than the collection: 404", st == 404, b)
    for body in ({"id": "x"}, {"id": 0}, {"id": 1.5}, [], {"ids": 1}):
        st, b, _ = srv.call("POST", url, body=body, token=ana)
        T.check("relate refused %r: 400" % (body,), st == 400, (st, b))
    st, b, _ = srv.call("POST", url, body={"id": 55555}, token=ana)
    T.check("relate to an unknown id: 404", st == 404, b)
    st, b, _ = srv.call("GET", "/api/indicators/%d/bogus" % ind["id"], token=ro)
    T.check("related of an unknown collection: 404", st == 404, b)
    st, b, _ = srv.call("POST", url, body={"id": adv.get("id")}, token=ro)
    T.check("read-only cannot relate (403)", st == 403, b)
    st, b, _ = srv.call("POST", "/api/malware", body={"name": "Gone soon"}, token=ana)
    gone = data(b)["id"]
    srv.call("POST", "/api/indicators/%d/malware" % ind["id"], body={"id": gone}, token=ana)
    st, b, _ = srv.call("DELETE", "/api/malware/%d" % gone, token=ro)
    T.check("read-only cannot delete malware (403)", st == 403, b)
    st, b, _ = srv.call("DELETE", "/api/adversaries/%d" % gone, token=ana)
    T.check("DELETE malware through /api/adversaries: 404", st == 404, b)
    st, b, _ = srv.call("DELETE", "/api/malware/%d" % gone, token=ana)
    T.check("DELETE /api/malware/{id}: 204", st == 204, b)
    st, b, _ = srv.call("GET", "/api/indicators/%d/malware" % ind["id"], token=ro)
    T.check("... and its link is gone", st == 200 and b["total"] == 0, b)
    c = cli_get(srv, "rel.example.com")
    T.check("the CLI shows the link", c and any(
        l.get("other_id", l.get("id")) == adv.get("id") or l.get("value") == "APT " + HOSTILE
        for l in c.get("links", c.get("related", []))), c)


def tests_consume(srv, ro, ana):
    n0 = total(srv)
    items = [{"value": "192.0.2.%d" % i, "type": "IP Address",
              "sources": [{"name": "Bulk"}], "attributes": [{"name": "n", "value": str(i)}]}
             for i in range(1, 51)]
    st, b, _ = srv.call("POST", "/api/indicators/consume", body=items, token=ana)
    T.check("consume 50: 200, ids in order, all created", st == 200 and len(data(b)) == 50 and
            data(b)[0]["value"] == "192.0.2.1" and all(x["created"] for x in data(b)), b)
    st, b, _ = srv.call("POST", "/api/indicators/consume", body=items[:5], token=ana)
    T.check("consume again: merged, not created", st == 200 and
            not any(x["created"] for x in data(b)), b)
    n1 = total(srv)
    T.check("50 objects added", n1 == n0 + 50, (n0, n1))
    bad = items[:10] + [{"value": "192.0.2.250", "type": "IP Address", "status": "Nope"}]
    st, b, _ = srv.call("POST", "/api/indicators/consume", body=bad, token=ana)
    T.check("consume with a bad item: 400 naming it", st == 400 and "item 10" in json.dumps(b),
            b)
    bad = [{"value": "192.0.2.251"}, {"value": "zzz", "type": "IP Address"}]
    st, b, _ = srv.call("POST", "/api/indicators/consume", body=bad, token=ana)
    T.check("consume with an item the library refuses: 400 naming it",
            st == 400 and "item 1" in json.dumps(b), b)
    st, b, _ = srv.call("POST", "/api/indicators/consume", body={"value": "192.0.2.252"},
                        token=ana)
    T.check("consume of one object (not a list): 400", st == 400, b)
    T.check("nothing written by refused consumes",
            total(srv) == n1 and cli_get(srv, "192.0.2.251") is None, (n1, total(srv)))
    st, b, _ = srv.call("POST", "/api/indicators/consume", body=items[:2], token=ro)
    T.check("read-only cannot consume (403)", st == 403, b)


def tests_sources(srv, ro, ana, adm):
    st, b, _ = srv.call("POST", "/api/sources",
                        body={"name": "Feed " + HOSTILE, "tlp": "amber", "score": 6,
                              "expire_days": 30, "revoked_decrease": 2}, token=adm)
    s = data(b) or {}
    T.check("POST /api/sources (admin): 201 with its settings", st == 201 and
            s.get("name") == "Feed " + HOSTILE and s.get("tlp_name") == "amber" and
            s.get("score") == 6 and s.get("expire_days") == 30, b)
    st, b, _ = srv.call("POST", "/api/sources", body={"name": "Feed " + HOSTILE}, token=adm)
    T.check("POST an existing source: 409", st == 409, b)
    st, b, _ = srv.call("POST", "/api/sources", body={"name": "X"}, token=ana)
    T.check("analyst cannot create sources (403)", st == 403, b)
    for body, field in (({"name": "Y", "score": 11}, "score"), ({"name": "Y", "tlp": "x"}, "tlp"),
                        ({"name": "Y", "expire_days": -3}, "expire_days"),
                        ({"name": 1}, "name"), ({"name": "Y", "bogus": 1}, "bogus"),
                        ({"name": "Y" * 300}, "name"),
                        ({"name": "Y", "expire_days": "soon"}, "expire_days")):
        st, b, _ = srv.call("POST", "/api/sources", body=body, token=adm)
        T.check("POST source refused %r: 400 naming %s" % (body, field),
                st == 400 and field in err_field(b), b)
    st, b, _ = srv.call("GET", "/api/sources?name=Y", token=ro)
    T.check("no source Y was made", st == 200 and b["total"] == 0, b)
    sid = s.get("id", 0)
    st, b, _ = srv.call("PUT", "/api/sources/%d" % sid, body={"score": 9, "expire_days": "never"},
                        token=adm)
    T.check("PUT /api/sources/{id}: score and never expire", st == 200 and
            data(b)["score"] == 9 and data(b)["expire_days"] == "never", b)
    st, b, _ = srv.call("PUT", "/api/sources/%d" % sid, body={"score": 1}, token=ana)
    T.check("analyst cannot update sources (403)", st == 403, b)
    st, b, _ = srv.call("PUT", "/api/sources/424242", body={"score": 1}, token=adm)
    T.check("PUT unknown source: 404", st == 404, b)
    st, b, _ = srv.call("GET", "/api/sources?name=" + quote("Feed a'%"), token=ro)
    T.check("GET /api/sources?name= with % wildcard", st == 200 and b["total"] == 1 and
            data(b)[0]["name"] == "Feed " + HOSTILE, b)
    rc, out, _ = srv.cli("--json", "source", "list")
    T.check("the CLI sees the source's new score", any(
        x.get("name") == "Feed " + HOSTILE and x.get("score") == 9 for x in json.loads(out)), out)
    st, b, _ = srv.call("GET", "/api/audit?what=source.update", token=adm)
    T.check("the source change is audited", st == 200 and len(data(b)) >= 1, b)
    # the library recomputes scores: an indicator of that source gets its sensitivity
    ind = new_indicator(srv, ana, "scored.example.com", sources=[{"name": "Feed " + HOSTILE}])
    T.check("an indicator's generated score follows its source's (9)",
            ind["score"]["generated_score"] == "9.00", ind)


def tests_roles_and_hostile(srv, ro, ana, adm):
    iid = new_indicator(srv, ana, "roles.example.net",
                        attributes=[{"name": "a", "value": "b"}], tags=["t"])["id"]
    st, b, _ = srv.call("GET", "/api/indicators/%d?with=attributes,tags,sources" % iid, token=ro)
    d = data(b)
    aid, tid, sid = d["attributes"][0]["id"], d["tags"][0]["id"], d["sources"][0]["id"]
    st, b, _ = srv.call("POST", "/api/adversaries", body={"name": "Roles adv"}, token=ana)
    adv = data(b)["id"]
    writes = [
        ("POST", "/api/indicators", {"value": "7.7.7.7"}),
        ("POST", "/api/indicators/consume", [{"value": "7.7.7.7"}]),
        ("PUT", "/api/indicators/%d" % iid, {"status": "Expired"}),
        ("DELETE", "/api/indicators/%d" % iid, None),
        ("POST", "/api/indicators/%d/attributes" % iid, {"name": "x", "value": "y"}),
        ("PUT", "/api/indicators/%d/attributes/%d" % (iid, aid), {"value": "z"}),
        ("DELETE", "/api/indicators/%d/attributes/%d" % (iid, aid), None),
        ("POST", "/api/indicators/%d/sources" % iid, {"name": "S"}),
        ("DELETE", "/api/indicators/%d/sources/%d" % (iid, sid), None),
        ("POST", "/api/indicators/%d/tags" % iid, {"name": "u"}),
        ("DELETE", "/api/indicators/%d/tags/%d" % (iid, tid), None),
        ("PUT", "/api/indicator/%d/scores" % iid, {"manual_score": 3}),
        ("POST", "/api/indicators/%d/adversaries" % iid, {"id": adv}),
        ("POST", "/api/adversaries", {"name": "ro adv"}),
        ("PUT", "/api/adversaries/%d" % adv, {"name": "renamed"}),
        ("POST", "/api/adversaries/%d/indicators" % adv, {"id": iid}),
        ("POST", "/api/sources", {"name": "ro source"}),
        ("PUT", "/api/sources/1", {"score": 1}),
    ]
    for method, path, body in writes:
        st, b, _ = srv.call(method, path, body=body, token=ro)
        T.check("read-only refused: %s %s (403)" % (method, path), st == 403, (st, b))
    st, b, _ = srv.call("GET", "/api/indicators/%d?with=attributes,tags,sources,score" % iid,
                        token=ro)
    d2 = data(b)
    T.check("the refused writes changed nothing", d2 == d or (
        d2["attributes"] == d["attributes"] and d2["tags"] == d["tags"]
        and d2["sources"] == d["sources"] and d2["status_id"] == d["status_id"]
        and d2["score"]["manual_score"] is None), (d, d2))
    T.check("... no indicator 7.7.7.7", cli_get(srv, "7.7.7.7") is None)
    st, b, _ = srv.call("GET", "/api/adversaries?value=ro%20adv", token=ro)
    T.check("... no adversary 'ro adv'", st == 200 and b["total"] == 0, b)
    # hostile text through the other writes, read back verbatim
    st, b, _ = srv.call("PUT", "/api/indicators/%d/attributes/%d" % (iid, aid),
                        body={"value": HOSTILE}, token=ana)
    T.check("attribute PUT: metacharacters verbatim", st == 200 and data(b)["value"] == HOSTILE,
            b)
    st, b, _ = srv.call("POST", "/api/indicators/%d/tags" % iid, body=HOSTILE, token=ana)
    T.check("tag POST as a string: metacharacters verbatim", st == 201 and
            HOSTILE in [t["name"] for t in data(b)], b)
    st, b, _ = srv.call("PUT", "/api/adversaries/%d" % adv, body={"name": "Adv " + HOSTILE},
                        token=ana)
    T.check("adversary PUT name: verbatim", st == 200 and data(b)["name"] == "Adv " + HOSTILE, b)
    st, b, _ = srv.call("PUT", "/api/indicators/%d" % adv, body={"status": "Active"}, token=ana)
    T.check("PUT an adversary's id as an indicator: 404", st == 404, b)
    st, b, _ = srv.call("DELETE", "/api/indicators/%d" % adv, token=ana)
    T.check("DELETE an adversary's id as an indicator: 404 (and it stays)", st == 404 and
            srv.call("GET", "/api/adversaries/%d" % adv, token=ro)[0] == 200, b)
    c = cli_get(srv, "roles.example.net")
    T.check("the CLI reads the hostile attribute value back verbatim",
            c and any(a.get("value") == HOSTILE for a in c.get("attributes", [])), c)
    st, b, _ = srv.call("GET", "/api/indicators/%d/adversaries?limit=1000000000" % iid,
                        token=ro)
    T.check("related limit=10^9: clamped", st == 200 and b["limit"] <= 1000, b)
    big = [{"value": "172.16.%d.%d" % (i // 250, i % 250), "description": "y" * 300}
           for i in range(400)]
    n0 = total(srv)
    st = over_cap(srv, "/api/indicators/consume", big, ana)
    T.check("consume over --max-body: 413, nothing written",
            st in (413, "closed") and total(srv) == n0, st)
    st, b, _ = srv.call("GET", "/api/sources?limit=1000000000&offset=0", token=ro)
    T.check("sources limit=10^9: clamped", st == 200 and b["limit"] <= 1000, b)
    st, b, _ = srv.call("GET", "/api/sources?name=" + quote("%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%a%b"),
                        token=ro)
    T.check("sources ?name= with many wildcards answers at once", st == 200, b)


def tests_concurrent_writers(srv, ana):
    """The CLI importing while the API consumes: both finish, nothing is lost."""
    n0 = total(srv)
    path = os.path.join(srv.workdir, "bulk.txt")
    with open(path, "w") as f:
        for i in range(3000):
            f.write("100.64.%d.%d\n" % (i // 250, i % 250))
    p = subprocess.Popen([srv.tqhost, "--json", "indicator", "import", path], env=srv.env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    statuses = []
    for k in range(6):
        body = [{"value": "100.65.%d.%d" % (k, i)} for i in range(200)]
        statuses.append(srv.call("POST", "/api/indicators/consume", body=body, token=ana)[0])
    out, err = p.communicate(timeout=120)
    T.check("consume while the CLI imports: every batch 200", statuses == [200] * 6, statuses)
    T.check("... the import finished too", p.returncode == 0, err[-300:])
    T.check("... and every indicator of both is there", total(srv) == n0 + 3000 + 1200,
            (n0, total(srv)))


if __name__ == "__main__":
    main()

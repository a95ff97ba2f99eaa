#!/usr/bin/env python3
"""api_search_test.py: the search routes through the real server over TLS: the indicator list
with filters, POST /api/indicators/query (ThreatQ's criteria language), hash pages with
cursorMark, keyword search, saved searches (and a bulk action over one), the score explained.

usage: api_search_test.py TQHOST RSTSIM SRCDIR
"""

import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tqapi import Server, Tally, wait_for  # noqa: E402

TQ, SIM, SRC = sys.argv[1], sys.argv[2], sys.argv[3]
t = Tally()
work = tempfile.mkdtemp(prefix="tq-search-")
env = {"TQHOST_PLUGINS": os.path.join(SRC, "plugins"),
       "TQHOST_ACTIONS": os.path.join(SRC, "actions"),
       "TQHOST_SCHEMAS": os.path.join(SRC, "schemas")}
srv = Server(TQ, work, env=env)
sim = None

EVIL = "x'\"; DROP TABLE objects;--%_\\"
EVIL_TAG = "t'\"--%_\\"  # tags are split at ';' on import
EVIL_SRC = "O'Brien\"; --"

# ---- the library ---------------------------------------------------------------------------
srv.cli("source", "add", "Feed A", "--score", "5")
srv.cli("source", "add", "Feed B", "--score", "8", "--revoked-decrease", "3")
srv.cli("source", "add", "O'Brien\"; --", "--score", "2")
srv.cli("score", "rule", "Severity=high", "4")
srv.cli("score", "rule", "Malicious", "1.5")
rows = [
    # value, type, source, status, tags, attributes
    ("1.2.3.4", "IP Address", "Feed A", "Active", "apt", {"Country": "RU"}),
    ("5.6.7.8", "IP Address", "Feed B", "Review", "", {"Revoked": "true"}),
    ("evil.com", "FQDN", "Feed A", "Active", "apt;c2", {"Country": "US"}),
    ("a_b.example.com", "FQDN", "Analyst", "Active", "", {}),
    ("axb.example.com", "FQDN", "Analyst", "Expired", "", {}),
    ("100% evil", "String", "Analyst", "Active", "", {}),
    ("100x evil", "String", "Analyst", "Active", "", {}),
    (EVIL, "String", EVIL_SRC, "Active", EVIL_TAG, {EVIL: EVIL}),
    ("C:\\temp\\x.exe", "File Path", "Analyst", "Active", "", {}),
    ("d41d8cd98f00b204e9800998ecf8427e", "MD5", "Feed B", "Active", "",
     {"Severity": "high", "Malicious": "yes"}),
    ("hot.example.net", "FQDN", "Feed B", "Active", "", {"Severity": "high"}),
]
attr_names = sorted({k for r in rows for k in r[5]})
with open(os.path.join(work, "in.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["value", "type", "source", "status", "tags"] + attr_names)
    for r in rows:
        w.writerow([r[0], r[1], r[2], r[3], r[4]] + [r[5].get(a, "") for a in attr_names])
srv.cli("indicator", "import", os.path.join(work, "in.csv"))
srv.cli("indicator", "set", "axb.example.com", "--score", "9")

srv.add_user("ro", "read-only")
srv.add_user("ana", "analyst")
ro = srv.login("ro")
ana = srv.login("ana")


def get(path, tok=ro):
    return srv.call("GET", path, token=tok)


def q(**params):
    return "/api/indicators?" + urllib.parse.urlencode(dict(params, limit=1000))


st, body, _ = get(q())
ID = {o["value"]: o["id"] for o in body["data"]} if st == 200 else {}
t.check("the list shows every indicator", st == 200 and body["total"] == len(rows)
        and len(ID) == len(rows), (st, body))
ALL = set(ID.values())


def ids(st_body):
    st, body = st_body[0], st_body[1]
    if st != 200 or not isinstance(body, dict):
        return ("status", st, body)
    return sorted(o["id"] for o in body["data"])


def want(*values):
    return sorted(ID[v] for v in values)


def list_is(name, params, values):
    r = get(q(**params))
    got = ids(r)
    t.check("list %s" % name, got == want(*values), (params, got, want(*values)))


def bad_param(name, params, field):
    st, body, _ = get("/api/indicators?" + urllib.parse.urlencode(params))
    errs = body.get("data", {}).get("errors", {}) if isinstance(body, dict) else {}
    t.check("list %s is a 400 naming %s" % (name, field), st == 400 and field in errs,
            (st, body))


# ---- GET /api/indicators: filters ---------------------------------------------------------
list_is("value exact", {"value": "evil.com"}, ["evil.com"])
list_is("value wildcard", {"value": "%.example.com"}, ["a_b.example.com", "axb.example.com"])
list_is("'_' is literal", {"value": "a_b%"}, ["a_b.example.com"])
list_is("'%' wildcard matches any", {"value": "100% evil"}, ["100% evil", "100x evil"])
list_is("'\\%' is a literal percent", {"value": "100\\% evil"}, ["100% evil"])
list_is("'\\' is literal", {"value": "C:\\temp\\x.exe"}, ["C:\\temp\\x.exe"])
list_is("'\\' literal with a wildcard", {"value": "C:\\temp\\x%"}, ["C:\\temp\\x.exe"])
list_is("type name", {"type": "FQDN"},
        ["evil.com", "a_b.example.com", "axb.example.com", "hot.example.net"])
list_is("type_id", {"type_id": "18"}, ["d41d8cd98f00b204e9800998ecf8427e"])
list_is("status", {"status": "Review"}, ["5.6.7.8"])
list_is("status_id", {"status_id": "2"}, ["axb.example.com"])
list_is("score_gte", {"score_gte": "9"}, ["axb.example.com", "d41d8cd98f00b204e9800998ecf8427e",
                                         "hot.example.net"])
list_is("score range", {"score_gte": "5", "score_lte": "5"},
        ["1.2.3.4", "5.6.7.8", "evil.com"])
list_is("score[lt]", {"score[lt]": "1"},
        ["a_b.example.com", "100% evil", "100x evil", "C:\\temp\\x.exe"])
list_is("source", {"source": "Feed B"},
        ["5.6.7.8", "d41d8cd98f00b204e9800998ecf8427e", "hot.example.net"])
list_is("tag", {"tag": "apt"}, ["1.2.3.4", "evil.com"])
list_is("attribute", {"attribute": "Country"}, ["1.2.3.4", "evil.com"])
list_is("attribute and value", {"attribute": "Country", "attribute_value": "RU"}, ["1.2.3.4"])
list_is("several filters AND", {"type": "FQDN", "source": "Feed A"}, ["evil.com"])
list_is("updated_since in the future", {"updated_since": "2999-01-01"}, [])
list_is("updated_since in the past", {"updated_since": "2000-01-01 00:00:00"}, list(ID))
for field, v in (("value", EVIL), ("source", EVIL_SRC), ("tag", EVIL_TAG), ("attribute", EVIL),
                 ("attribute_value", EVIL)):
    list_is("SQL metacharacters in %s" % field, {field: v}, [EVIL])
    r = get(q(**{field: "' OR 1=1 --"}))
    t.check("an injection in %s matches nothing" % field, ids(r) == [], r[:2])

st, body, _ = get("/api/indicators?sort=-id&limit=1000")
t.check("sort=-id is descending", st == 200 and [o["id"] for o in body["data"]]
        == sorted(ALL, reverse=True), body)
st, body, _ = get("/api/indicators?sort=value&limit=1000")
t.check("sort=value", st == 200 and [o["value"] for o in body["data"]]
        == sorted(ID, key=lambda v: v.encode()), body)
st, body, _ = get("/api/indicators?sort=-score&limit=3")
t.check("sort=-score, limit 3", st == 200 and [o["id"] for o in body["data"]]
        == [ID["hot.example.net"], ID["d41d8cd98f00b204e9800998ecf8427e"], ID["axb.example.com"]]
        and body["total"] == len(rows), body)
st, body, _ = get("/api/indicators?limit=1000000000")
t.check("limit=10^9 is clamped, not refused", st == 200 and body["limit"] == 1000
        and len(body["data"]) == len(rows), (st, body))
st, body, _ = get("/api/indicators?limit=2&offset=2&sort=id")
t.check("limit/offset page", st == 200 and [o["id"] for o in body["data"]] == sorted(ALL)[2:4]
        and body["offset"] == 2, body)
bad_param("unknown type", {"type": "Nope"}, "type")
bad_param("unknown status", {"status": EVIL}, "status")
bad_param("score not a number", {"score_gte": "high"}, "score_gte")
bad_param("bad date", {"updated_since": EVIL}, "updated_since")
st, body, _ = get("/api/indicators?updated_since=soon")
t.check("a bad date's message says what a date is", st == 400 and "YYYY-MM-DD hh:mm:ss" in
        body["data"]["errors"]["updated_since"][0], body)
bad_param("bad sort", {"sort": EVIL}, "sort")
bad_param("bad limit", {"limit": "-1"}, "limit")
st, body, _ = get("/api/indicators", tok=None)
t.check("the list needs a token", st == 401, st)

# ---- POST /api/indicators/query -----------------------------------------------------------


def query(doc, tok=ro, params=""):
    return srv.call("POST", "/api/indicators/query?limit=1000" + params, body=doc, token=tok)


def crit_is(name, doc, values):
    r = query(doc)
    got = ids(r)
    t.check("criteria %s" % name, got == want(*values), (doc, got, want(*values)))
    return r


def crit_400(name, doc, where, raw=None):
    if raw is not None:
        st, body, _ = srv.call("POST", "/api/indicators/query", raw=raw, token=ro,
                               headers={"Content-Type": "application/json"})
    else:
        st, body, _ = query(doc)
    errs = body.get("data", {}).get("errors", {}) if isinstance(body, dict) else {}
    t.check("criteria %s: 400 naming %s" % (name, where), st == 400 and where in errs,
            (st, str(body)[:300]))


crit_is("value equals", {"criteria": {"value": "evil.com"}}, ["evil.com"])
crit_is("+equals", {"criteria": {"value": {"+equals": "1.2.3.4"}}}, ["1.2.3.4"])
crit_is("+like", {"criteria": {"value": {"+like": "%.example.%"}}},
        ["a_b.example.com", "axb.example.com", "hot.example.net"])
crit_is("+not on value", {"criteria": {"type_name": "FQDN", "value": {"+not": "evil.com"}}},
        ["a_b.example.com", "axb.example.com", "hot.example.net"])
crit_is("+neq on type", {"filters": {"type_name": {"+neq": "String"}, "source": "Analyst"}},
        ["a_b.example.com", "axb.example.com", "C:\\temp\\x.exe"])
crit_is("+gte/+lte", {"filters": {"score": {"+gte": 4, "+lte": 8}}},
        ["1.2.3.4", "5.6.7.8", "evil.com"])
crit_is("+gt/+lt", {"filters": {"score": {"+gt": 0, "+lt": 9}}},
        ["1.2.3.4", "5.6.7.8", "evil.com", EVIL])
crit_is("score as a string", {"filters": {"score": {"+gte": "10"}}},
        ["d41d8cd98f00b204e9800998ecf8427e", "hot.example.net"])
crit_is("status_name", {"criteria": {"status_name": "Expired"}}, ["axb.example.com"])
crit_is("type list (any of)", {"criteria": {"type_name": ["MD5", "File Path"]}},
        ["d41d8cd98f00b204e9800998ecf8427e", "C:\\temp\\x.exe"])
crit_is("+or over fields", {"filters": {"+or": [{"tag": "c2"}, {"status_name": "Review"}]}},
        ["evil.com", "5.6.7.8"])
crit_is("ThreatQ's shape: +or of +and", {"filters": {"+or": [
    {"+and": [{"+or": [{"type_name": "IP Address"}]}, {"score": {"+gte": 4}},
              {"score": {"+lte": 8}}]},
    {"+and": [{"value": "evil.com"}]}]}}, ["1.2.3.4", "5.6.7.8", "evil.com"])
crit_is("nested +and/+or/+not", {"criteria": {"+and": [
    {"+or": [{"source": "Feed A"}, {"source": "Feed B"}]},
    {"+or": [{"attribute": "Country"}, {"attribute": {"name": "Severity", "value": "high"}}]},
    {"tag": {"+not": "c2"}}]}},
    ["1.2.3.4", "d41d8cd98f00b204e9800998ecf8427e", "hot.example.net"])
crit_is("criteria AND filters", {"criteria": {"source": "Feed B"},
                                 "filters": {"type_name": "IP Address"}}, ["5.6.7.8"])
crit_is("attribute value only", {"criteria": {"attribute": {"value": "US"}}}, ["evil.com"])
crit_is("attribute +not", {"criteria": {"type_name": "IP Address",
                                        "attribute": {"+not": "Country"}}}, ["5.6.7.8"])
crit_is("attribute value +like", {"criteria": {"attribute": {"name": "Country",
                                                             "value": {"+like": "R%"}}}},
        ["1.2.3.4"])
crit_is("source +not", {"criteria": {"source": {"+not": "Analyst"},
                                     "type_name": "FQDN"}}, ["evil.com", "hot.example.net"])
crit_is("created_at +gte a date", {"criteria": {"created_at": {"+gte": "2000-01-01"}}},
        list(ID))
crit_is("updated_at +lt now-1 day", {"criteria": {"updated_at": {"+lt": "now-1 day"}}}, [])
crit_is("updated_at +gte now-1 hour", {"criteria": {"updated_at": {"+gte": "now-1 hour"}}},
        list(ID))
crit_is("empty document: all", {}, list(ID))
# The shape a ThreatQ client (Siemplify's connector) sends: "is", empty "+or" lists.
crit_is("a client's payload ({\"is\": ...}, empty +or)", {"criteria": {}, "filters": {"+or": [
    {"+and": [{"+and": [{"+or": [{"value": {"is": "d41d8cd98f00b204e9800998ecf8427e"}}]}]},
              {"+and": [{"+or": [{"type_name": "MD5"}, {"type_name": "SHA-1"}]}]},
              {"+and": [{"+or": []}]}]}]}}, ["d41d8cd98f00b204e9800998ecf8427e"])
crit_is("SQL metacharacters in every string",
        {"criteria": {"value": EVIL, "source": EVIL_SRC, "tag": EVIL_TAG,
                      "attribute": {"name": EVIL, "value": EVIL}}}, [EVIL])
crit_is("an injection matches nothing", {"criteria": {"value": "' OR '1'='1"}}, [])
crit_is("'_' literal in criteria", {"criteria": {"value": "a_b%"}}, ["a_b.example.com"])
r = crit_is("fields is accepted", {"criteria": {"value": "evil.com"}, "fields": ["value"]},
            ["evil.com"])
st, body, _ = query({"criteria": {"type_name": "FQDN"}}, params="&sort=-id")
t.check("criteria with sort=-id", st == 200 and [o["id"] for o in body["data"]] == want(
    "evil.com", "a_b.example.com", "axb.example.com", "hot.example.net")[::-1], body)
st, body, _ = srv.call("POST", "/api/indicators/query?limit=1000000000", body={}, token=ro)
t.check("criteria limit=10^9 clamped", st == 200 and body["limit"] == 1000, (st, body))

crit_400("malformed JSON", None, "criteria", raw=b'{"criteria": {"value": ')
crit_400("not an object", [1, 2], "criteria")
crit_400("unknown top key", {"criterion": {}}, "criterion")
crit_400("unknown field", {"filters": {"+or": [{"value": "x"}, {"bogus": 1}]}},
         "filters.+or[1].bogus")
crit_400("unknown operator", {"criteria": {"score": {"+gte": 1, "+around": 5}}},
         "criteria.score.+around")
crit_400("unknown logical", {"criteria": {"+xor": []}}, "criteria.+xor")
crit_400("score not a number", {"criteria": {"score": {"+gte": "lots"}}}, "criteria.score.+gte")
crit_400("value not a string", {"criteria": {"value": 5}}, "criteria.value")
crit_400("null value", {"criteria": {"value": None}}, "criteria.value")
crit_400("unknown type", {"criteria": {"+and": [{"type_name": EVIL}]}},
         "criteria.+and[0].type_name")
crit_400("unknown status", {"criteria": {"status_name": "Bogus"}}, "criteria.status_name")
crit_400("+gte on value", {"criteria": {"value": {"+gte": "a"}}}, "criteria.value.+gte")
crit_400("bad date", {"criteria": {"created_at": {"+gte": "yesterday-ish"}}},
         "criteria.created_at.+gte")
crit_400("+and not a list", {"criteria": {"+and": 5}}, "criteria.+and")
crit_400("bad attribute key", {"criteria": {"attribute": {"nam": "x"}}},
         "criteria.attribute.nam")
deep = {"value": "x"}
for _ in range(40):
    deep = {"+and": [deep]}
crit_400("40 levels deep", {"criteria": deep}, "criteria")
crit_400("3000 levels deep", None, "criteria",
         raw=b'{"criteria": ' + b'{"+or": [' * 3000 + b'{"value": "x"}' + b']}' * 3000 + b'}')
crit_400("too many terms", {"criteria": {"+or": [{"value": str(i)} for i in range(500)]}},
         "criteria.+or")
crit_400("huge string", {"criteria": {"value": "a" * 10000}}, "criteria.value")
crit_400("huge document", {"criteria": {"value": "x"}, "fields": ["f" * 100] * 1000},
         "criteria")
st, _, _ = query({"criteria": {}}, tok=None)
t.check("the criteria query needs a token", st == 401, st)

# ---- hashes and cursorMark ------------------------------------------------------------------
doc = {"criteria": {"type_name": ["FQDN", "IP Address"]}, "filters": {"score": {"+gte": 0}}}
st, body, _ = query(doc)
h = body.get("hash") if st == 200 else None
t.check("the query answers a hash", isinstance(h, str) and len(h) == 32, body)
st2, body2, _ = srv.call("POST", "/api/indicators/query", token=ro, raw=(
    b'{ "filters" : {"score":{"+gte":0}},  "criteria": {"type_name": ["FQDN","IP Address"]}}'),
    headers={"Content-Type": "application/json"})
t.check("the same document in another order and spacing has the same hash",
        st2 == 200 and body2.get("hash") == h, body2)
st, body, _ = get("/api/indicators/query/hash/%s?limit=1000" % h)
expect = want("1.2.3.4", "5.6.7.8", "evil.com", "a_b.example.com", "axb.example.com",
              "hot.example.net")
t.check("GET the hash runs the document", ids((st, body)) == expect, (st, body))
st, body, _ = get("/api/indicators/query/hash/%s" % ("0" * 32))
t.check("an unknown hash is 404", st == 404, (st, body))
st, body, _ = get("/api/indicators/query/hash/%s" % urllib.parse.quote(EVIL, safe=""))
t.check("a malformed hash is 404", st == 404, (st, body))

# The walk: pages of 2, adding a matching and a non-matching indicator between pages.
seen, mark, pages, added = [], "*", 0, []
while pages < 50:
    st, body, _ = get("/api/indicators/query/hash/%s?limit=2&cursorMark=%s"
                      % (h, urllib.parse.quote(mark)))
    if st != 200:
        t.check("a cursorMark page answers", False, (st, body))
        break
    seen += [o["id"] for o in body["data"]]
    pages += 1
    if pages in (1, 2):
        v = "walk%d.example.org" % pages
        srv.cli("indicator", "add", v, "--type", "FQDN")
        srv.cli("indicator", "add", "walk%d" % pages, "--type", "Mutex")
        added.append(v)
    if pages == 3:
        # A restart in the middle of the walk: the mark stays good (the library's key).
        t.check("the server stops mid-walk", srv.stop() == 0)
        srv = Server(TQ, work, env=env)
    if body["nextCursorMark"] == mark:
        break
    mark = body["nextCursorMark"]
st, body, _ = get(q(type_name="FQDN"))
new_ids = sorted(o["id"] for o in body["data"] if o["value"] in added)
t.check("the cursorMark walk returns every id once, rows added meanwhile too",
        sorted(seen) == sorted(expect + new_ids) and len(seen) == len(set(seen))
        and len(new_ids) == 2, (seen, expect, new_ids))
t.check("the walk is in id order, across a restart of the server", seen == sorted(seen)
        and pages > 3, (pages, seen))
_, body, _ = get("/api/indicators/query/hash/%s?limit=2&cursorMark=*" % h)
good = body.get("nextCursorMark", "")
for name, m in (("garbage", "not-a-mark"), ("empty", ""), ("forged id", good[:-2] + (
        "AA" if good[-2:] != "AA" else "BB")), ("huge", "A" * 5000), ("metachars", EVIL)):
    st, body, _ = get("/api/indicators/query/hash/%s?cursorMark=%s"
                      % (h, urllib.parse.quote(m)))
    errs = body.get("data", {}).get("errors", {}) if isinstance(body, dict) else {}
    t.check("a %s cursorMark is a 400 naming cursorMark" % name,
            st == 400 and "cursorMark" in errs, (st, body))
_, other, _ = query({"criteria": {"value": "evil.com"}})
st, body, _ = get("/api/indicators/query/hash/%s?cursorMark=%s" % (other["hash"], good))
t.check("another query's cursorMark is a 400", st == 400, (st, body))

# ---- keyword search ------------------------------------------------------------------------
st, body, _ = get("/api/search?query=example.com")
t.check("keyword search finds values containing the text",
        st == 200 and sorted(o["id"] for o in body["data"]) == want("a_b.example.com",
                                                                      "axb.example.com")
        and all(o.get("object") == "indicator" for o in body["data"]), (st, body))
st, body, _ = get("/api/search?query=" + urllib.parse.quote("100%"))
t.check("keyword '%' is literal", st == 200 and [o["id"] for o in body["data"]]
        == want("100% evil"), (st, body))
st, body, _ = get("/api/search?query=" + urllib.parse.quote(EVIL))
t.check("keyword with SQL metacharacters", st == 200 and [o["id"] for o in body["data"]]
        == want(EVIL), (st, body))
st, body, _ = get("/api/search?query=evil&limit=1")
t.check("keyword limit, exact/prefix first", st == 200 and len(body["data"]) == 1, body)
st, adv, _ = srv.call("POST", "/api/adversaries", body={"value": "Evil Panda"}, token=ana)
st, body, _ = get("/api/search?query=" + urllib.parse.quote("evil panda"))
t.check("keyword search finds other objects by name, with their type",
        st == 200 and [(o["value"], o["object"]) for o in body.get("data", [])]
        == [("Evil Panda", "adversary")], (st, body, adv))
st, body, _ = get(q(value="Evil Panda"))
t.check("the indicator list shows indicators only", st == 200 and body["total"] == 0, body)
st, body, _ = get("/api/search?query=")
t.check("an empty keyword is a 400 naming query", st == 400
        and "query" in body["data"]["errors"], (st, body))

# ---- saved searches -------------------------------------------------------------------------
sdoc = {"name": "hot " + EVIL, "criteria": {"score": {"+gte": 9}},
        "filters": {"type_name": {"+not": "MD5"}}}
st, body, _ = srv.call("POST", "/api/search/query", body=sdoc, token=ro)
t.check("a read-only user cannot save a search (403)", st == 403, (st, body))
st, body, _ = srv.call("POST", "/api/search/query", body=sdoc, token=ana)
saved = body.get("data", {}) if isinstance(body, dict) else {}
t.check("an analyst saves a search (201, id, hash)", st == 201 and saved.get("id")
        and len(saved.get("hash") or "") == 32 and saved.get("name") == sdoc["name"], (st, body))
sid = saved.get("id")
st, body, _ = srv.call("POST", "/api/search/query", body=sdoc, token=ana)
t.check("the same name again is 409", st == 409, (st, body))
for name, bad, field in (("no name", {"criteria": {}}, "name"),
                         ("bad criteria", {"name": "b1", "criteria": {"score": {"+x": 1}}},
                          "criteria.score.+x"),
                         ("bad api_query", {"name": "b2", "api_query": {"filters": {"zz": 1}}},
                          "api_query.filters.zz"),
                         ("control char in name", {"name": "a\nb", "criteria": {}}, "name")):
    st, body, _ = srv.call("POST", "/api/search/query", body=bad, token=ana)
    errs = body.get("data", {}).get("errors", {}) if isinstance(body, dict) else {}
    t.check("save with %s: 400 naming %s" % (name, field), st == 400 and field in errs,
            (st, body))
st, body, _ = srv.call("POST", "/api/search/query", raw=b"{nope", token=ana,
                       headers={"Content-Type": "application/json"})
t.check("save with malformed JSON: 400", st == 400, (st, body))
# A \u0000 inside a string would cut the C string there ("cut" saved as the name): refused,
# while an escaped backslash followed by "u0000" is plain text.
st, body, _ = srv.call("POST", "/api/search/query", token=ana,
                       raw=b'{"name": "cut\\u0000here", "criteria": {}}',
                       headers={"Content-Type": "application/json"})
t.check("save with a NUL escape in the name: 400 naming the byte", st == 400
        and "NUL" in str(body), (st, body))
st, body, _ = srv.call("POST", "/api/indicators/query", token=ro,
                       raw=b'{"criteria": {"value": "lit\\\\u0000eral"}}',
                       headers={"Content-Type": "application/json"})
t.check("a backslash then u0000 is text: a query for it answers (200, nothing found)",
        st == 200 and body.get("total") == 0, (st, body))
st, body, _ = get("/api/indicators?offset=99999999999999999999")
t.check("an offset past 2^53 is a 400 naming offset (not a float in the answer)", st == 400
        and "offset" in body.get("data", {}).get("errors", {}), (st, body))
st, body, _ = get("/api/indicators?offset=5000000")
t.check("a large offset within range is an empty page", st == 200 and body["data"] == []
        and body["offset"] == 5000000, (st, body))
st, body, _ = get("/api/search/query")
t.check("the list holds exactly the one saved search", st == 200 and body["total"] == 1
        and body["data"][0]["id"] == sid, (st, body))
st, body, _ = get("/api/search/query/%s" % sid)
t.check("GET a saved search by id", st == 200 and body["data"]["hash"] == saved.get("hash")
        and body["data"]["api_query"]["criteria"] == sdoc["criteria"], (st, body))
st, body, _ = get("/api/search/query/%s" % saved.get("hash"))
t.check("GET a saved search by its hash", st == 200 and body["data"]["id"] == sid, (st, body))
st, body, _ = get("/api/search/query/%s" % ("f" * 32))
t.check("an unknown saved search hash is 404", st == 404, (st, body))
st, body, _ = get("/api/indicators/query/hash/%s?limit=100" % saved.get("hash"))
hot = want("axb.example.com", "hot.example.net")
t.check("the saved search's hash runs it", ids((st, body)) == hot, (st, body))
rc, out, err = srv.cli("collection", "show", sdoc["name"], check=False)
t.check("the CLI sees the saved search as a collection with its count",
        rc == 0 and "2 objects" in out, (rc, out, err))
# An older flat collection keeps working beside it.
srv.cli("collection", "add", "flat", "--type", "FQDN", "--source", "Feed A")
st, body, _ = get("/api/search/query")
flat = [s for s in body["data"] if s["name"] == "flat"] if st == 200 else []
t.check("a flat collection is listed (no hash)", len(flat) == 1 and flat[0]["hash"] is None,
        body)

# A bulk action over the criteria collection walks exactly its objects.
sim_out = open(os.path.join(work, "sim.out"), "w")
sim = subprocess.Popen([SIM, "--port", "0", "--seed", "11"], stdout=sim_out,
                       stderr=subprocess.DEVNULL)


def sim_port():
    try:
        with open(os.path.join(work, "sim.out")) as f:
            s = f.read()
    except OSError:
        return None
    i = s.find("127.0.0.1:")
    return s[i + 10:].split()[0].split("/")[0].strip() if i >= 0 and "listening" in s else None


port = wait_for(sim_port, 20)
srv.cli("plugin", "configure", "rst-ioc-lookup", "api_key=sim-key-0123456789abcdef")
rc, out, err = srv.cli("--json", "action", "run", "rst-ioc-lookup-action", "--collection",
                       sdoc["name"], "--set", "base_url=http://127.0.0.1:%s/v1" % port,
                       "--rate", "1000", check=False)
try:
    res = json.loads(out)
except ValueError:
    res = {}
total_items = sum(int(res.get(k, 0)) for k in ("enriched", "not_found", "failed", "skipped"))
t.check("tqhost action run --collection over a criteria collection walks its 2 objects",
        rc == 0 and total_items == 2 and res.get("total") == 2, (rc, out[-500:], err[-500:]))
_, body, _ = get(q())
count_before = body.get("total")

st, body, _ = srv.call("DELETE", "/api/search/query/%s" % sid, token=ro)
t.check("a read-only user cannot delete (403)", st == 403, st)
srv.cli("workflow", "add", "wf-hot", "--collection", sdoc["name"], "--action",
        "rst-ioc-lookup-action")
st, body, _ = srv.call("DELETE", "/api/search/query/%s" % sid, token=ana)
t.check("a workflow's saved search is not deleted (409 naming the workflow)",
        st == 409 and "wf-hot" in str(body), (st, body))
st, body, _ = get("/api/search/query/%s" % sid)
t.check("... and it is still there", st == 200, st)
srv.cli("workflow", "delete", "wf-hot")
st, body, _ = srv.call("DELETE", "/api/search/query/%s" % sid, token=ana)
t.check("an analyst deletes the saved search (204)", st == 204, (st, body))
st, _, _ = get("/api/search/query/%s" % sid)
t.check("a deleted saved search is 404", st == 404, st)
st, _, _ = srv.call("DELETE", "/api/search/query/%s" % sid, token=ana)
t.check("deleting it again is 404", st == 404, st)
st, body, _ = get("/api/search/query/%s" % urllib.parse.quote(EVIL, safe=""))
t.check("a non-numeric saved search id is 400", st == 400, (st, body))
srv.add_user("adm", "admin")
adm = srv.login("adm")
st, body, _ = srv.call("GET", "/api/audit?what=search.save", token=adm)
t.check("saving is audited once (search.save, by whom, which name)", st == 200
        and body["total"] == 1 and body["data"][0]["who"] == "ana"
        and "hot" in body["data"][0]["target"], (st, body))
st, body, _ = srv.call("GET", "/api/audit?what=search.delete", token=adm)
t.check("deleting is audited (search.delete)", st == 200 and body["total"] == 1, (st, body))
st, body, _ = srv.call("GET", "/api/search/query", token=ro)
t.check("nothing else was saved by the refused requests", st == 200 and body["total"] == 1,
        body)

# ---- the score explained ----------------------------------------------------------------------


def explain(value):
    st, body, _ = get("/api/indicators/%d/score" % ID[value])
    return st, body.get("data", {}) if isinstance(body, dict) else {}


for value, gen in (("1.2.3.4", 5), ("5.6.7.8", 5), ("evil.com", 5),
                   ("d41d8cd98f00b204e9800998ecf8427e", 10), ("hot.example.net", 10),
                   ("100% evil", 0), (EVIL, 2)):
    st, d = explain(value)
    terms = d.get("terms", [])
    total = sum(x["delta"] for x in terms)
    t.check("score of %r: terms sum to the stored generated score %s" % (value[:20], gen),
            st == 200 and abs(total - d.get("generated_score", -1)) < 1e-9
            and d.get("generated_score") == gen and d.get("current") is True, (st, d))
st, d = explain("5.6.7.8")
t.check("the revoked decrease is a term", any(x["kind"] == "revoked" and x["delta"] == -3
                                              and x["source"] == "Feed B"
                                              for x in d.get("terms", [])), d)
st, d = explain("d41d8cd98f00b204e9800998ecf8427e")
kinds = sorted(x["kind"] for x in d.get("terms", []))
t.check("rules and the clamp are terms (8 + 4 + 1.5, clamped to 10)",
        kinds == ["attribute", "attribute_value", "clamp", "source"]
        and d.get("unclamped") == 13.5, d)
st, d = explain("axb.example.com")
t.check("a manual score overrides and is shown", st == 200 and d.get("manual_score") == 9
        and d.get("score") == 9 and d.get("counts") == "manual"
        and sum(x["delta"] for x in d["terms"]) == d["generated_score"], d)
st, _, _ = get("/api/indicators/999999/score")
t.check("the score of an unknown id is 404", st == 404, st)
st, _, _ = get("/api/indicators/abc/score")
t.check("the score of a non-numeric id is 400", st == 400, st)

# ---- the end ----------------------------------------------------------------------------------
st, body, _ = get(q())
t.check("the library is intact after every hostile request",
        st == 200 and body["total"] == count_before, (count_before, body.get("total")))
t.check("the server stops cleanly", srv.stop() == 0)
if sim:
    sim.terminate()
    sim.wait()
if t.failed == 0:
    shutil.rmtree(work, ignore_errors=True)
else:
    print("work dir kept: " + work)
t.done()

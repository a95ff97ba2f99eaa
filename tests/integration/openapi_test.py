#!/usr/bin/env python3
"""openapi_test.py: schemas/openapi.yaml against the server that it describes.

(a) the document is OpenAPI 3.1 as far as jsonschema can check: its structure (a meta-schema of
    the parts of OpenAPI 3.1 this project uses), every path template's parameters declared,
    operationIds unique, every $ref resolving, every schema a valid JSON Schema 2020-12;
(b) every route of `tqhost serve --print-routes` is in `paths` with its method, and every
    path+method of the document is a route (a mismatch names it);
(c) GET /api/openapi.yaml serves the file;
(d) a walk through a table of example requests, at least one for every route: each answer's
    status must be the one expected and one the document lists for that route, and its body
    must validate against the document's schema for that route, status and content type
    ($refs resolved). Ids made by one example (an indicator, a run) feed the later ones.

Usage: openapi_test.py TQHOST SOURCE_DIR [RSTSIM]
"""

import base64
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import jsonschema
import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tqapi import Server, Tally  # noqa: E402

TQHOST = os.path.abspath(sys.argv[1])
SRC = os.path.abspath(sys.argv[2])
DOC_PATH = os.path.join(SRC, "schemas", "openapi.yaml")
T = Tally()
WORK = tempfile.mkdtemp(prefix="openapi.")
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")

class UniqueKeys(yaml.SafeLoader):
    """yaml.safe_load keeps the last of two equal keys: two groups writing the same path would
    silently hide one. This loader names every duplicate instead."""
    duplicates = []


def _mapping(loader, node, deep=False):
    seen = set()
    for k, _ in node.value:
        key = loader.construct_object(k, deep=deep)
        if key in seen:
            UniqueKeys.duplicates.append("%r at line %d" % (key, k.start_mark.line + 1))
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep)


UniqueKeys.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)

with open(DOC_PATH, "rb") as f:
    DOC_BYTES = f.read()
DOC = yaml.load(DOC_BYTES, Loader=UniqueKeys)
T.check("no key appears twice in one mapping of the document", not UniqueKeys.duplicates,
        UniqueKeys.duplicates[:10])

# ---- (a) the document ------------------------------------------------------------------------
# The parts of OpenAPI 3.1 (https://spec.openapis.org/oas/v3.1.0) this project uses, as a JSON
# Schema: fields' types and the required ones; unknown fields only as x- extensions.
REF = {"type": "object", "required": ["$ref"], "properties": {"$ref": {"type": "string"}}}
MEDIA = {"type": "object", "required": ["schema"],
         "properties": {"schema": {"type": ["object", "boolean"]}, "example": {},
                        "examples": {"type": "object"}},
         "patternProperties": {"^x-": {}}, "additionalProperties": False}
CONTENT = {"type": "object", "patternProperties": {"^[a-z*]+/[-+.a-z0-9*]+$": MEDIA},
           "additionalProperties": False}
HEADER = {"type": "object",
          "properties": {"description": {"type": "string"}, "required": {"type": "boolean"},
                         "schema": {"type": ["object", "boolean"]}},
          "patternProperties": {"^x-": {}}, "additionalProperties": False}
PARAM = {"oneOf": [REF, {
    "type": "object", "required": ["name", "in"],
    "properties": {"name": {"type": "string", "minLength": 1},
                   "in": {"enum": ["query", "header", "path", "cookie"]},
                   "description": {"type": "string"}, "required": {"type": "boolean"},
                   "deprecated": {"type": "boolean"}, "schema": {"type": ["object", "boolean"]},
                   "style": {"type": "string"}, "explode": {"type": "boolean"},
                   "example": {}},
    "if": {"properties": {"in": {"const": "path"}}},
    "then": {"required": ["required"], "properties": {"required": {"const": True}}},
    "patternProperties": {"^x-": {}}, "additionalProperties": False}]}
RESPONSE = {"oneOf": [REF, {
    "type": "object", "required": ["description"],
    "properties": {"description": {"type": "string"}, "content": CONTENT,
                   "headers": {"type": "object", "additionalProperties": HEADER}},
    "patternProperties": {"^x-": {}}, "additionalProperties": False}]}
OPERATION = {
    "type": "object", "required": ["responses"],
    "properties": {
        "operationId": {"type": "string"}, "summary": {"type": "string"},
        "description": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}},
        "deprecated": {"type": "boolean"},
        "parameters": {"type": "array", "items": PARAM},
        "requestBody": {"oneOf": [REF, {
            "type": "object", "required": ["content"],
            "properties": {"description": {"type": "string"}, "required": {"type": "boolean"},
                           "content": CONTENT},
            "additionalProperties": False}]},
        "responses": {"type": "object", "minProperties": 1,
                      "patternProperties": {"^([1-5][0-9]{2}|[1-5]XX|default)$": RESPONSE},
                      "additionalProperties": False},
        "security": {"type": "array", "items": {"type": "object"}},
    },
    "patternProperties": {"^x-": {}}, "additionalProperties": False}
PATH_ITEM = {"type": "object",
             "properties": dict({m: OPERATION for m in METHODS},
                                summary={"type": "string"}, description={"type": "string"},
                                parameters={"type": "array", "items": PARAM}),
             "patternProperties": {"^x-": {}}, "additionalProperties": False}
OPENAPI_31 = {
    "type": "object", "required": ["openapi", "info", "paths"],
    "properties": {
        "openapi": {"type": "string", "pattern": r"^3\.1\.[0-9]+$"},
        "info": {"type": "object", "required": ["title", "version"],
                 "properties": {"title": {"type": "string"}, "version": {"type": "string"}}},
        "servers": {"type": "array", "items": {"type": "object", "required": ["url"]}},
        "security": {"type": "array", "items": {"type": "object"}},
        "tags": {"type": "array"},
        "paths": {"type": "object", "patternProperties": {"^/": PATH_ITEM},
                  "additionalProperties": False},
        "components": {"type": "object", "properties": {
            "schemas": {"type": "object", "additionalProperties": {"type": ["object", "boolean"]}},
            "securitySchemes": {"type": "object"}}},
    },
    "patternProperties": {"^x-": {}}, "additionalProperties": False}

errors = sorted(jsonschema.Draft202012Validator(OPENAPI_31).iter_errors(DOC),
                key=lambda e: list(e.absolute_path))
T.check("the document has OpenAPI 3.1's structure (openapi, info, paths, operations, "
        "parameters, responses, media types)", not errors,
        "; ".join("%s: %s" % ("/".join(map(str, e.absolute_path)), e.message)
                  for e in errors[:8]))


def walk(node, path=()):
    """Yields (path, node) for every dict and list inside node."""
    yield path, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from walk(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from walk(v, path + (i,))


def resolve(ref):
    if not ref.startswith("#/"):
        return None
    node = DOC
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


bad_refs = [("/".join(map(str, p)), n["$ref"]) for p, n in walk(DOC)
            if isinstance(n, dict) and isinstance(n.get("$ref"), str) and
            resolve(n["$ref"]) is None]
T.check("every $ref resolves inside the document", not bad_refs, bad_refs[:10])

schemas = [("components/schemas/" + k, v) for k, v in
           (DOC.get("components", {}).get("schemas") or {}).items()]
for p, n in walk(DOC.get("paths", {})):
    if isinstance(n, dict) and "schema" in n and isinstance(n["schema"], (dict, bool)) and \
            (p and p[-1] != "properties"):
        schemas.append(("paths/" + "/".join(map(str, p)), n["schema"]))
bad_schemas = []
for where, sch in schemas:
    try:
        jsonschema.Draft202012Validator.check_schema(sch)
    except jsonschema.SchemaError as e:
        bad_schemas.append("%s: %s" % (where, e.message))
T.check("every schema (%d) is valid JSON Schema 2020-12" % len(schemas), not bad_schemas,
        bad_schemas[:8])

op_ids = {}
dup_ids, bad_params = [], []
for path, item in (DOC.get("paths") or {}).items():
    declared_path = {p.get("name") for p in item.get("parameters", []) if p.get("in") == "path"}
    for m in METHODS:
        op = item.get(m)
        if not isinstance(op, dict):
            continue
        oid = op.get("operationId")
        if oid:
            if oid in op_ids:
                dup_ids.append(oid)
            op_ids[oid] = (m, path)
        names = set(declared_path) | {p.get("name") for p in op.get("parameters", [])
                                      if isinstance(p, dict) and p.get("in") == "path"}
        want = set(re.findall(r"\{([^}]+)\}", path))
        if names != want:
            bad_params.append("%s %s: template %s, declared %s" % (m.upper(), path,
                                                                   sorted(want), sorted(names)))
T.check("operationIds are unique", not dup_ids, dup_ids)
T.check("every path template's parameters are declared (in: path), and no others", not bad_params,
        bad_params[:8])

# ---- (b) the document and the routes ------------------------------------------------------------


def norm(pattern):
    return re.sub(r"\{[^}]+\}", "{}", pattern)


env = dict(os.environ, TQHOST_DB=os.path.join(WORK, "lib.db"))
out = subprocess.run([TQHOST, "serve", "--print-routes"], capture_output=True, text=True,
                     env=env, check=True).stdout
ROUTES = {}
for line in out.splitlines():
    method, pattern, role = line.split()
    ROUTES[(method.lower(), norm(pattern))] = (pattern, role)
DOC_OPS = {}
for path, item in (DOC.get("paths") or {}).items():
    for m in METHODS:
        if isinstance(item.get(m), dict):
            DOC_OPS[(m, norm(path))] = (path, item[m], item)
missing = sorted("%s %s" % (m.upper(), ROUTES[(m, p)][0]) for m, p in ROUTES if (m, p) not in DOC_OPS)
extra = sorted("%s %s" % (m.upper(), DOC_OPS[(m, p)][0]) for m, p in DOC_OPS if (m, p) not in ROUTES)
T.check("every route (%d) is in the document with its method" % len(ROUTES), not missing,
        "missing: " + ", ".join(missing))
T.check("every path+method of the document (%d) is a route" % len(DOC_OPS), not extra,
        "not routes: " + ", ".join(extra))
open_routes = {k for k, v in ROUTES.items() if v[1] == "none"}
wrong_sec = sorted("%s %s" % (m.upper(), p) for (m, p) in DOC_OPS
                   if ((m, p) in open_routes) != (DOC_OPS[(m, p)][1].get("security") == []))
T.check("the open routes, and only they, say security: [] in the document", not wrong_sec,
        wrong_sec)
bad_role = sorted("%s %s: x-role %s, route %s" % (m.upper(), DOC_OPS[(m, p)][0],
                                                  DOC_OPS[(m, p)][1]["x-role"], ROUTES[(m, p)][1])
                  for (m, p) in DOC_OPS if (m, p) in ROUTES and "x-role" in DOC_OPS[(m, p)][1]
                  and DOC_OPS[(m, p)][1]["x-role"] != ROUTES[(m, p)][1])
T.check("an operation's x-role is its route's role", not bad_role, bad_role)
no401 = sorted("%s %s" % (m.upper(), DOC_OPS[(m, p)][0]) for (m, p) in DOC_OPS
               if (m, p) in ROUTES and (m, p) not in open_routes and
               "401" not in DOC_OPS[(m, p)][1].get("responses", {}))
T.check("every authenticated route documents its 401", not no401, no401)

# ---- (c), (d): the running server ----------------------------------------------------------------
RESOLVER = jsonschema.RefResolver(base_uri="", referrer=DOC)


def find_op(method, path):
    """The document's (template, operation) for a concrete path (the most literal match)."""
    segs = path.split("?")[0].strip("/").split("/")
    best = None
    for (m, tmpl), (orig, op, _) in DOC_OPS.items():
        if m != method.lower():
            continue
        t = tmpl.strip("/").split("/")
        if len(t) != len(segs) or any(a != "{}" and a != b for a, b in zip(t, segs)):
            continue
        score = [a != "{}" for a in t]
        if best is None or score > best[0]:
            best = (score, orig, op)
    return (best[1], best[2]) if best else (None, None)


def route_of(method, path):
    """The (method, normalised pattern) of the route a concrete path reaches (most literal)."""
    segs = path.split("?")[0].strip("/").split("/")
    best = None
    for (m, p) in ROUTES:
        t = p.strip("/").split("/")
        if m == method.lower() and len(t) == len(segs) and \
                all(a == "{}" or a == b for a, b in zip(t, segs)):
            score = [a != "{}" for a in t]
            if best is None or score > best[0]:
                best = (score, (m, p))
    return best[1] if best else None


def validate(method, path, status, ctype, body):
    """Problems of an answer against the document (empty when it conforms)."""
    tmpl, op = find_op(method, path)
    if op is None:
        return ["no operation in the document"]
    responses = op.get("responses", {})
    resp = responses.get(str(status)) or responses.get("%dXX" % (status // 100)) or \
        responses.get("default")
    if resp is None:
        return ["status %d is not documented for %s %s (documented: %s)" %
                (status, method, tmpl, ", ".join(sorted(responses)))]
    if "$ref" in resp:
        resp = resolve(resp["$ref"])
    content = resp.get("content")
    if not content:
        return [] if body in (None, "") else ["a body where the document has none"]
    mt = (ctype or "").split(";")[0].strip()
    media = content.get(mt)
    if media is None:
        return ["content type %s not documented (documented: %s)" % (mt, ", ".join(content))]
    v = jsonschema.Draft202012Validator(media.get("schema", {}), resolver=RESOLVER)
    return ["%s: %s" % ("/".join(map(str, e.absolute_path)) or "body", e.message)
            for e in v.iter_errors(body)][:5]


SIM_URL = None
sim = None
if len(sys.argv) > 3:  # rstsim, for the operations' examples
    sim = subprocess.Popen([os.path.abspath(sys.argv[3]), "--port", "0", "--hit-ratio", "1"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    m = re.match(r"rstsim listening on 127\.0\.0\.1:(\d+)", sim.stdout.readline().decode())
    SIM_URL = "http://127.0.0.1:%s/v1" % m.group(1) if m else None
srv = Server(TQHOST, WORK, env={"TQHOST_LOGIN_DELAY": "1", "TQHOST_TICK_S": "0",
                                "TQHOST_PLUGINS": os.path.join(SRC, "plugins"),
                                "TQHOST_ACTIONS": os.path.join(SRC, "actions")})
try:
    st, body, hdrs = srv.call("GET", "/api/openapi.yaml")
    raw = body if isinstance(body, str) else json.dumps(body)
    T.check("GET /api/openapi.yaml: 200 application/yaml", st == 200 and
            hdrs.get("content-type", "").startswith("application/yaml"), (st, hdrs))
    T.check("GET /api/openapi.yaml serves schemas/openapi.yaml byte for byte",
            raw.encode() == DOC_BYTES, "%d bytes vs %d" % (len(raw.encode()), len(DOC_BYTES)))
    T.check("GET /api/openapi.yaml needs no token and parses as the same document",
            yaml.safe_load(raw) == DOC)

    ips = os.path.join(WORK, "ips.txt")
    with open(ips, "w") as f:
        f.write("".join("10.8.0.%d\n" % i for i in range(1, 21)))
    srv.cli("indicator", "import", ips, "--source", "Doc")
    srv.cli("collection", "add", "docips", "--type", "IP Address", "--source", "Doc")
    if SIM_URL:
        srv.cli("plugin", "configure", "rst-ioc-lookup", "api_key=doc-key",
                "base_url=" + SIM_URL)
    srv.add_user("adm", "admin")
    srv.add_user("ana", "analyst")
    srv.add_user("ro", "read-only")
    TOK = {"admin": srv.login("adm"), "analyst": srv.login("ana"), "read-only": srv.login("ro")}
    TOK["ro, signing out"] = srv.login("ro")  # uicore: DELETE /api/token revokes this one
    st, b, _ = srv.call("POST", "/api/token?grant_type=password&client_id=x",
                        body={"username": "ana", "password": Server.PASSWORD})
    REFRESH = b["refresh_token"]
    rc, out, _ = srv.cli("--json", "client", "add", "bot", "--role", "analyst")
    CLIENT = json.loads(out)
    BASIC = "Basic " + base64.b64encode(
        ("%s:%s" % (CLIENT["client_id"], CLIENT["client_secret"])).encode()).decode()
    STATE = {}

    def first(b):
        d = b.get("data") if isinstance(b, dict) else None
        return d[0] if isinstance(d, list) and d else d if isinstance(d, dict) else {}

    def save(name, key="id"):
        return lambda b: STATE.__setitem__(name, first(b).get(key))

    def E(method, path, role, body, want, headers=None, then=None):
        return (method, path, role, body, want, headers, then)

    # The examples: (method, path, caller role or None, body, expected status, extra headers,
    # then: a function of the answer's body that saves ids into STATE). Paths hold {name}
    # placeholders filled from STATE when they run.
    EXAMPLES = [
        # ---- core
        E("GET", "/api/health", None, None, 200),
        E("GET", "/metrics", None, None, 200),
        E("GET", "/api/openapi.yaml", None, None, 200),
        # ---- auth
        E("POST", "/api/token?grant_type=password&client_id=x", None,
          {"email": "ro", "password": Server.PASSWORD}, 200),
        E("POST", "/api/token?grant_type=client_credentials", None, None, 200,
          {"Authorization": BASIC}),
        E("POST", "/api/token", None, {"grant_type": "refresh_token", "refresh_token": REFRESH},
          200),
        E("POST", "/api/token", None, {"grant_type": "refresh_token", "refresh_token": REFRESH},
          401),
        E("POST", "/api/token?grant_type=password", None, {"username": "ro", "password": "no"},
          401),
        E("POST", "/api/token", None, {"grant_type": "magic"}, 400),
        E("POST", "/api/token?grant_type=password&password=x", None, {"username": "ro"}, 400),
        E("GET", "/api/users/current", "read-only", None, 200),
        E("GET", "/api/users/current", None, None, 401),
        E("GET", "/api/users", "admin", None, 200),
        E("GET", "/api/users?limit=x", "admin", None, 400),
        E("GET", "/api/users", "analyst", None, 403),
        E("POST", "/api/users", "admin", {"name": "neu", "role": "analyst", "password": "pw-1"},
          201, then=save("neu")),
        E("POST", "/api/users", "admin", {"name": "neu", "role": "analyst", "password": "pw-1"},
          409),
        E("POST", "/api/users", "admin", {"name": "neu2", "role": "boss", "password": "pw-1"},
          400),
        E("GET", "/api/users/current", "admin", None, 200, then=save("adm")),
        E("PUT", "/api/users/{neu}", "admin", {"role": "read-only"}, 200),
        E("PUT", "/api/users/999999", "admin", {"role": "read-only"}, 404),
        E("PUT", "/api/users/{adm}", "admin", {"role": "analyst"}, 409),
        E("DELETE", "/api/users/{neu}", "admin", None, 204),
        E("DELETE", "/api/users/{neu}", "admin", None, 404),
        E("GET", "/api/audit", "admin", None, 200),
        E("GET", "/api/audit?what=login&limit=2", "admin", None, 200),
        E("GET", "/api/audit", "read-only", None, 403),
        # ---- uicore: sign-out
        E("DELETE", "/api/token", "ro, signing out", None, 204),
        E("DELETE", "/api/token", "ro, signing out", None, 401),
        E("GET", "/api/ioc/parse?value=1.2.3%5B.%5D4", "read-only", None, 200),
        E("GET", "/api/ioc/parse?value=just%20words", "read-only", None, 200),
        E("GET", "/api/ioc/parse", "read-only", None, 400),
        E("GET", "/api/ioc/parse?value=x", None, None, 401),
    ]
    if "GET /api/indicators/{id}" in {"%s %s" % (m.upper(), p) for m, p in
                                      ((k[0], v[0]) for k, v in ROUTES.items())}:
        I = "/api/indicators/{iid}"
        EXAMPLES += [
            # ---- objects: lookups, indicators and their parts, sources
            E("GET", "/api/indicator/types", "read-only", None, 200),
            E("GET", "/api/indicator/types?name=FQDN", "read-only", None, 200),
            E("GET", "/api/indicator/statuses", "read-only", None, 200),
            E("GET", "/api/objects", "read-only", None, 200),
            E("POST", "/api/indicators", "analyst",
              {"value": "doc.example.com", "type": "FQDN", "status": "Review",
               "sources": [{"name": "Doc", "tlp": "AMBER"}],
               "attributes": [{"name": "Confidence", "value": "80"}], "tags": ["t1"]},
              201, then=save("iid")),
            E("POST", "/api/indicators", "analyst", [{"value": "203.0.113.77", "type_id": 15}],
              201, then=save("iid2")),
            E("POST", "/api/indicators", "analyst", {"value": ""}, 400),
            E("POST", "/api/indicators", "read-only", {"value": "x.example"}, 403),
            E("GET", I, "read-only", None, 200),
            E("GET", I + "?with=attributes,sources,score,tags,type,status", "read-only", None,
              200),
            E("GET", I + "?with=bogus", "read-only", None, 400),
            E("GET", "/api/indicators/999999", "read-only", None, 404),
            E("GET", "/api/indicators/abc", "read-only", None, 400),
            E("PUT", I, "analyst", {"description": "documented", "status": "Active"}, 200),
            E("PUT", I, "analyst", {"colour": "red"}, 400),
            E("PUT", "/api/indicators/999999", "analyst", {"status": "Active"}, 404),
            E("GET", I + "/attributes", "read-only", None, 200),
            E("POST", I + "/attributes", "analyst", {"name": "n", "value": "v"}, 201,
              then=save("aid")),
            E("POST", I + "/attributes", "analyst", {"name": "n"}, 400),
            E("PUT", I + "/attributes/{aid}", "analyst", {"value": "w"}, 200),
            E("PUT", I + "/attributes/999999", "analyst", {"value": "w"}, 404),
            E("DELETE", I + "/attributes/{aid}", "analyst", None, 204),
            E("DELETE", I + "/attributes/{aid}", "analyst", None, 404),
            E("POST", I + "/sources", "analyst", {"name": "Doc 2", "tlp": "GREEN"}, 201,
              then=save("sid")),
            E("GET", I + "/sources", "read-only", None, 200),
            E("POST", I + "/sources", "analyst", {"name": 3}, 400),
            E("DELETE", I + "/sources/{sid}", "analyst", None, 204),
            E("DELETE", I + "/sources/{sid}", "analyst", None, 404),
            E("POST", I + "/tags", "analyst", {"name": "alpha"}, 201, then=save("tid")),
            E("GET", I + "/tags", "read-only", None, 200),
            E("POST", I + "/tags", "analyst", {"name": ""}, 400),
            E("DELETE", I + "/tags/{tid}", "analyst", None, 204),
            E("DELETE", I + "/tags/{tid}", "analyst", None, 404),
            E("PUT", "/api/indicator/{iid}/scores", "analyst", {"manual_score": 7}, 200),
            E("PUT", "/api/indicator/{iid}/scores", "analyst", {"manual_score": 11}, 400),
            E("PUT", "/api/indicator/999999/scores", "analyst", {"manual_score": 1}, 404),
            E("POST", "/api/indicators/consume", "analyst",
              [{"value": "192.0.2.%d" % i, "type": "IP Address", "sources": [{"name": "Bulk"}]}
               for i in (1, 2)], 200),
            E("POST", "/api/indicators/consume", "analyst", {"value": "192.0.2.9"}, 400),
            E("GET", "/api/sources", "read-only", None, 200),
            E("POST", "/api/sources", "admin", {"name": "Doc Feed", "tlp": "amber", "score": 6,
                                                "expire_days": 30}, 201, then=save("src")),
            E("POST", "/api/sources", "admin", {"name": "Doc Feed"}, 409),
            E("POST", "/api/sources", "admin", {"name": "Y", "score": 11}, 400),
            E("PUT", "/api/sources/{src}", "admin", {"score": 9, "expire_days": "never"}, 200),
            E("PUT", "/api/sources/999999", "admin", {"score": 1}, 404),
            E("DELETE", "/api/indicators/{iid2}", "analyst", None, 204),
            E("DELETE", "/api/indicators/{iid2}", "analyst", None, 404),
        ]
        # every other object collection, singular and plural: list, create, get, update,
        # relate to the indicator and list the related
        colls = sorted({v[0].split("/")[2] for k, v in ROUTES.items()
                        if re.match(r"^/api/[a-z_]+/\{id\}/\{other\}$", v[0]) and
                        v[0].split("/")[2] != "indicators"})
        for n, c in enumerate(colls):
            key = "o%d" % n
            C = "/api/%s" % c
            EXAMPLES += [
                E("POST", C, "analyst", {"value": "Doc %s 100%%_done" % c}, 201, then=save(key)),
                E("POST", C, "analyst", {"value": 5}, 400),
                E("GET", C + "?limit=5", "read-only", None, 200),
                E("GET", C + "/{%s}" % key, "read-only", None, 200),
                E("GET", C + "/999999", "read-only", None, 404),
                E("PUT", C + "/{%s}" % key, "analyst", {"description": "d"}, 200),
                E("POST", C + "/{%s}/indicators" % key, "analyst", {"id": "{iid}"}, 201),
                E("GET", C + "/{%s}/indicators" % key, "read-only", None, 200),
                E("POST", C + "/{%s}/indicators" % key, "analyst", {"id": 999999}, 404),
            ]
            if ("delete", "/api/%s/{}" % c) in ROUTES:
                EXAMPLES += [
                    E("DELETE", C + "/{%s}" % key, "read-only", None, 403),
                    E("DELETE", C + "/{%s}" % key, "analyst", None, 204),
                    E("DELETE", C + "/{%s}" % key, "analyst", None, 404),
                ]
        EXAMPLES += [
            E("GET", I + "/adversaries", "read-only", None, 200),
            E("POST", I + "/adversaries", "analyst", {"id": "x"}, 400),
        ]
        # ---- search: the list, criteria, hash pages, keyword, saved searches, score
        crit = {"criteria": {"type_name": "FQDN"}, "filters": {"score": {"+gte": 0}}}
        EXAMPLES += [
            E("GET", "/api/indicators?type=FQDN&value=%25.example.com&sort=-id&limit=5",
              "read-only", None, 200),
            E("GET", "/api/indicators?type=Nope", "read-only", None, 400),
            E("GET", "/api/indicators", None, None, 401),
            E("POST", "/api/indicators/query?limit=5", "read-only", crit, 200,
              then=lambda b: STATE.__setitem__("qhash", b.get("hash"))),
            E("POST", "/api/indicators/query", "read-only", {"criteria": {"bogus": 1}}, 400),
            E("GET", "/api/indicators/query/hash/{qhash}?limit=2&cursorMark=*", "read-only",
              None, 200),
            E("GET", "/api/indicators/query/hash/{qhash}?cursorMark=forged", "read-only", None,
              400),
            E("GET", "/api/indicators/query/hash/" + "0" * 32, "read-only", None, 404),
            # uicore: count=false (total null)
            E("POST", "/api/indicators/query?limit=5&count=false", "read-only", crit, 200),
            E("GET", "/api/indicators?type=FQDN&count=false", "read-only", None, 200),
            E("GET", "/api/indicators/query/hash/{qhash}?limit=2&cursorMark=*&count=false",
              "read-only", None, 200),
            E("GET", "/api/indicators?count=maybe", "read-only", None, 400),
            E("GET", "/api/search?query=example&limit=5", "read-only", None, 200),
            E("GET", "/api/search", "read-only", None, 400),
            E("POST", "/api/search/query", "analyst", dict(crit, name="doc search"), 201,
              then=save("sqid")),
            E("POST", "/api/search/query", "read-only", dict(crit, name="nope"), 403),
            E("POST", "/api/search/query", "analyst", dict(crit, name="doc search"), 409),
            E("POST", "/api/search/query", "analyst", {"name": "x", "filters": {"zz": 1}}, 400),
            E("GET", "/api/search/query?limit=5", "read-only", None, 200),
            E("GET", "/api/search/query/{sqid}", "read-only", None, 200),
            E("GET", "/api/search/query/{qhash}", "read-only", None, 200),
            E("GET", "/api/search/query/999999", "read-only", None, 404),
            # uicoll: edited in place, counts
            E("PUT", "/api/search/query/{sqid}", "analyst", dict(crit, name="doc search 2"), 200),
            E("PUT", "/api/search/query/{sqid}", "analyst", {"owner": "x"}, 400),
            E("PUT", "/api/search/query/{sqid}", "read-only", {"name": "nope"}, 403),
            E("PUT", "/api/search/query/999999", "analyst", {"name": "nope"}, 404),
            E("GET", "/api/search/query?with=count", "read-only", None, 200),
            E("GET", "/api/search/query?with=nope", "read-only", None, 400),
            E("GET", I + "/score", "read-only", None, 200),
            E("GET", "/api/indicators/999999/score", "read-only", None, 404),
            E("DELETE", "/api/search/query/{sqid}", "analyst", None, 204),
            E("DELETE", "/api/search/query/{sqid}", "analyst", None, 404),
        ]

    if ("post", "/api/plugins/{}/operations/{}") in ROUTES:
        P = "/api/plugins/rst-ioc-lookup"
        EXAMPLES += [
            # ---- plugins: list, config, operations of an indicator, run and apply
            E("GET", "/api/plugins", "read-only", None, 200),
            E("GET", P, "read-only", None, 200),
            E("GET", "/api/plugins/nope", "read-only", None, 404),
            E("PUT", P + "/config", "admin", {"api_key": "doc-key", "base_url": SIM_URL}, 200),
            E("PUT", P + "/config", "admin", {"colour": "blue"}, 400),
            E("PUT", P + "/config", "analyst", {"api_key": "doc-key"}, 403),
            E("PUT", "/api/plugins/nope/config", "admin", {"api_key": "doc-key"}, 404),
            E("POST", "/api/indicators", "analyst", {"value": "45.83.122.166"}, 201,
              then=save("ip")),
            E("GET", "/api/indicators/{ip}/operations", "read-only", None, 200),
            E("GET", "/api/indicators/999999/operations", "read-only", None, 404),
            E("POST", P + "/operations/lookup", "analyst", {"object_id": "{ip}"}, 200,
              then=lambda b: STATE.__setitem__("run_id", first(b).get("run_id"))),
            E("POST", P + "/operations/nope", "analyst", {"object_id": "{ip}"}, 404),
            E("POST", P + "/operations/lookup/apply", "analyst", {}, 400),
            E("POST", P + "/operations/lookup/apply", "analyst", {"run_id": "0" * 32}, 404),
            E("POST", P + "/operations/lookup/apply", "analyst", {"run_id": "{run_id}"}, 200),
        ]

    def wait_done(key):
        """then: saves the run's id and waits until it has ended."""
        def fn(b):
            STATE[key] = first(b).get("id")
            end = time.monotonic() + 90
            while time.monotonic() < end:
                st, r, _ = srv.call("GET", "/api/runs/%s" % STATE[key], token=TOK["read-only"])
                if st != 200 or first(r).get("state") not in ("queued", "running",
                                                              "cancelling"):
                    return
                time.sleep(0.1)
        return fn

    if ("post", "/api/actions/{}/runs") in ROUTES and SIM_URL:
        A = "/api/actions/rst-ioc-lookup-action/runs"
        TAXII = SIM_URL[:-len("/v1")] + "/taxii2/"
        EXAMPLES += [
            # ---- runs: actions, bulk runs, workflows, feeds
            E("GET", "/api/actions", "read-only", None, 200),
            E("POST", A, "analyst", {"collection": "docips", "concurrency": 2}, 202,
              then=wait_done("rid")),
            E("POST", A, "analyst", {"values": ["10.9.0.1", "10.9.0.2"]}, 202,
              then=wait_done("vid")),
            E("POST", A, "analyst", {}, 400),
            E("POST", A, "read-only", {"collection": "docips"}, 403),
            E("POST", "/api/actions/no-such-action/runs", "analyst", {"collection": "docips"},
              404),
            E("GET", "/api/runs", "read-only", None, 200),
            E("GET", "/api/runs?limit=1000000000", "read-only", None, 200),
            E("GET", "/api/runs/{rid}", "read-only", None, 200),
            E("GET", "/api/runs/999999", "read-only", None, 404),
            E("GET", "/api/runs/abc", "read-only", None, 400),
            E("GET", "/api/runs/{rid}/items", "read-only", None, 200),
            E("GET", "/api/runs/{rid}/items?state=failed", "read-only", None, 200),
            E("POST", "/api/runs/{rid}/cancel", "analyst", None, 409),
            E("POST", "/api/runs/{rid}/resume", "analyst", None, 409),
            E("POST", "/api/runs/999999/cancel", "analyst", None, 404),
            E("POST", "/api/workflows", "analyst",
              {"name": "docwf", "collection": "docips", "actions": ["rst-ioc-lookup-action"],
               "schedule": "every 6h", "settings": {}}, 201, then=save("wid")),
            E("POST", "/api/workflows", "analyst",
              {"name": "docwf2", "collection": "docips", "actions": ["rst-ioc-lookup-action"],
               "schedule": "every 5h"}, 400),
            E("POST", "/api/workflows", "analyst",
              {"name": "docwf", "collection": "docips", "actions": ["rst-ioc-lookup-action"],
               "schedule": "every 6h"}, 409),
            E("GET", "/api/workflows", "read-only", None, 200),
            E("GET", "/api/workflows/{wid}", "read-only", None, 200),
            E("GET", "/api/workflows/999999", "read-only", None, 404),
            E("PUT", "/api/workflows/{wid}", "analyst", {"enabled": False,
                                                         "schedule": "daily 02:30"}, 200),
            E("PUT", "/api/workflows/{wid}", "analyst", {"enabled": "yes"}, 400),
            E("POST", "/api/workflows/{wid}/run", "analyst", None, 202, then=wait_done("wrid")),
            E("DELETE", "/api/workflows/{wid}", "analyst", None, 204),
            E("DELETE", "/api/workflows/{wid}", "analyst", None, 404),
            E("POST", "/api/feeds", "admin", {"name": "docfeed", "preset": "rst-high",
                                              "url": TAXII, "page_size": 100}, 201),
            E("POST", "/api/feeds", "admin", {"name": "docfeed2", "preset": "nope",
                                              "url": TAXII}, 400),
            E("POST", "/api/feeds", "analyst", {"name": "docfeed3", "preset": "rst-high",
                                                "url": TAXII}, 403),
            E("GET", "/api/feeds", "read-only", None, 200),
            E("POST", "/api/feeds/docfeed/poll", "analyst", None, 202),
            E("POST", "/api/feeds/nope/poll", "analyst", None, 404),
        ]
        # ---- uiscreens: run progress events, retry, presets, clients
        EXAMPLES += [
            E("POST", "/api/runs/{rid}/events/ticket", "read-only", None, 201),
            E("POST", "/api/runs/999999/events/ticket", "read-only", None, 404),
            E("GET", "/api/runs/{rid}/events", "read-only", None, 200),
            E("GET", "/api/runs/{rid}/events", None, None, 401),
            E("GET", "/api/runs/999999/events", "read-only", None, 404),
            E("POST", "/api/runs/{rid}/retry", "analyst", None, 409),
            E("POST", "/api/runs/{rid}/retry", "read-only", None, 403),
            E("GET", "/api/feeds/presets", "read-only", None, 200),
            E("POST", "/api/clients", "admin", {"name": "docclient", "role": "read-only"}, 201,
              then=save("cid")),
            E("POST", "/api/clients", "admin", {"name": "docclient2", "role": "boss"}, 400),
            E("POST", "/api/clients", "analyst", {"name": "docclient3", "role": "read-only"},
              403),
            E("GET", "/api/clients", "admin", None, 200),
            E("DELETE", "/api/clients/{cid}", "admin", None, 204),
            E("DELETE", "/api/clients/{cid}", "admin", None, 404),
        ]

    def fill(v):
        """STATE placeholders in a path or in a body's "{name}" strings (ids as numbers)."""
        if isinstance(v, str):
            m = re.fullmatch(r"\{(\w+)\}", v)
            return STATE[m.group(1)] if m else v.format(**STATE) if "{" in v else v
        if isinstance(v, list):
            return [fill(x) for x in v]
        if isinstance(v, dict):
            return {k: fill(x) for k, x in v.items()}
        return v

    covered = set()
    undocumented = []
    for method, path, role, body, want, headers, then in EXAMPLES:
        try:
            real, rbody = fill(path), fill(body)
            if isinstance(real, int):
                real = str(real)
        except KeyError as e:
            T.check("%s %s: an earlier example saved %s" % (method, path, e), False)
            continue
        tok = TOK[role] if role else None
        st, b, h = srv.call(method, real, body=rbody, token=tok, headers=headers)
        route = route_of(method, real)
        if route:
            covered.add(route)
        if find_op(method, real)[0] is None:
            undocumented.append("%s %s" % (method, path))
            T.check("%s %s (%s) -> %d (route not in the document)" % (
                method, path, role or "no token", want), st == want,
                "status %d; body %s" % (st, json.dumps(b)[:300]))
            if st == want and then:
                then(b)
            continue
        probs = validate(method, real, st, h.get("content-type"), b)
        T.check("%s %s (%s) -> %d, as documented" % (method, path, role or "no token", want),
                st == want and not probs,
                "status %d; %s; body %s" % (st, "; ".join(probs), json.dumps(b)[:300]))
        if st == want and then:
            then(b)
    T.check("every example's route is in the document (%d examples)" % len(EXAMPLES),
            not undocumented, "%d are not: %s" % (len(undocumented),
                                                  ", ".join(undocumented[:12])))
    uncovered = sorted("%s %s" % (m.upper(), ROUTES[(m, p)][0]) for (m, p) in ROUTES
                       if (m, p) not in covered)
    T.check("every route (%d) has an example in the walk" % len(ROUTES), not uncovered,
            "no example: " + ", ".join(uncovered))
    T.check("server stops: exit 0", srv.stop() == 0)
finally:
    if srv.proc.poll() is None:
        srv.kill9()
    if sim:
        sim.kill()

T.done()

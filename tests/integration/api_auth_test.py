#!/usr/bin/env python3
"""api_auth_test.py: users, tokens and the audit log of `tqhost serve`, through the real server
over TLS, as ThreatQ's clients call it: the password grant (client_id in the query, email or
username in JSON; everything in the body; a form), client_credentials with HTTP Basic (a client
made by `tqhost client add`), refresh_token with rotation and reuse detection; expiry from the
host configuration's server.token_ttl; refusals (401 with WWW-Authenticate, 403 for each role on
every route that needs more, 429 with Retry-After after repeated failures per user and per
address); the user routes and their hostile inputs; the audit log (admin only); the CLI's
`user passwd`/`user delete` revoking live tokens; and no secret in any answer, in the server's
debug log, in /metrics or in the library's files.

Usage: api_auth_test.py TQHOST
"""

import base64
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tqapi import Server, Tally, wait_for  # noqa: E402

TQHOST = os.path.abspath(sys.argv[1])
T = Tally()
WORK = tempfile.mkdtemp(prefix="api_auth.")
SECRETS = set()   # every password, token and client secret this test saw or made
ANSWERS = []      # every answer body (text) this test received
PW = Server.PASSWORD
ROLES = {"none": 0, "read-only": 1, "analyst": 2, "admin": 3}


def secret(s):
    SECRETS.add(s)
    return s


secret(PW)


class Srv(Server):
    """A Server that keeps every answer's text for the secrets check at the end."""

    def call(self, *a, **kw):
        st, body, hdrs = Server.call(self, *a, **kw)
        ANSWERS.append(body if isinstance(body, str) else json.dumps(body))
        return st, body, hdrs


def token_req(srv, query="", body=None, raw=None, headers=None):
    return srv.call("POST", "/api/token" + query, body=body, raw=raw, headers=headers)


def pair_ok(name, st, body):
    ok = T.check(name + ": 200", st == 200, (st, body))
    if not ok or not isinstance(body, dict):
        return None
    T.check(name + ": access_token, token_type Bearer, expires_in, refresh_token",
            isinstance(body.get("access_token"), str) and len(body["access_token"]) >= 32 and
            body.get("token_type") == "Bearer" and isinstance(body.get("expires_in"), int) and
            body["expires_in"] > 0 and isinstance(body.get("refresh_token"), str) and
            body["refresh_token"] != body["access_token"], body)
    secret(body.get("access_token", "-"))
    secret(body.get("refresh_token", "-"))
    return body


def is_errors(body):
    return (isinstance(body, dict) and isinstance(body.get("errors"), list) and
            body["errors"] and all(isinstance(e, str) for e in body["errors"]))


def invalid_field(body, field):
    try:
        errs = body["data"]["errors"]
        return isinstance(errs, dict) and isinstance(errs.get(field), list) and errs[field]
    except (KeyError, TypeError):
        return False


def who(srv, tok):
    st, body, _ = srv.call("GET", "/api/users/current", token=tok)
    return st, (body or {}).get("data") if isinstance(body, dict) else None


def basic(cid, sec):
    return "Basic " + base64.b64encode(("%s:%s" % (cid, sec)).encode()).decode()


def routes():
    p = subprocess.run([TQHOST, "serve", "--print-routes"], capture_output=True, text=True,
                       env=dict(os.environ, TQHOST_DB=os.path.join(WORK, "lib.db")))
    out = []
    for line in p.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3:
            out.append(tuple(parts))
    return out


def user_id(srv, admin_tok, name):
    st, body, _ = srv.call("GET", "/api/users?limit=1000", token=admin_tok)
    for u in (body or {}).get("data", []):
        if u["name"] == name:
            return u["id"]
    return None


# ---- the main server ---------------------------------------------------------------------------
SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
srv = Srv(TQHOST, WORK, env={"TQHOST_LOG": "debug", "TQHOST_PLUGINS": os.path.join(SRC, "plugins"),
                             "TQHOST_ACTIONS": os.path.join(SRC, "actions")})
try:
    srv.add_user("adm", "admin")
    srv.add_user("ana", "analyst")
    srv.add_user("ro", "read-only")
    srv.add_user("eve@example.com", "analyst")
    rc, out, _ = srv.cli("--json", "client", "add", "soar", "--role", "analyst")
    client = json.loads(out)
    CID, CSEC = client["client_id"], secret(client["client_secret"])

    # -- the password grant, as ThreatQ's SDK calls it: client_id in the query, email in JSON
    st, b, h = token_req(srv, "?grant_type=password&client_id=sdk",
                         body={"email": "eve@example.com", "password": PW})
    p = pair_ok("password grant, email in JSON, client_id in the query", st, b)
    if p:
        T.check("expires_in is the default hour", p["expires_in"] == 3600, p)
        T.check("token answer is not cached (Cache-Control: no-store)",
                "no-store" in h.get("cache-control", ""), h)
        st, d = who(srv, p["access_token"])
        T.check("the token is the user's: users/current", st == 200 and d["name"] ==
                "eve@example.com" and d["role"] == "analyst" and d["kind"] == "person", (st, d))
    st, b, _ = token_req(srv, "?grant_type=password&client_id=sdk",
                         body={"username": "ana", "password": PW})
    pair_ok("password grant, username in JSON", st, b)
    st, b, _ = token_req(srv, body={"grant_type": "password", "client_id": "polarity",
                                    "email": "ana", "password": PW})
    pair_ok("password grant, all four fields in the JSON body (Polarity, XSOAR)", st, b)
    form = "grant_type=password&client_id=x&username=ana&password=" + \
        PW.replace(" ", "+")
    st, b, _ = token_req(srv, raw=form.encode(),
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
    pair_ok("password grant, form-encoded body", st, b)

    # -- client_credentials: HTTP Basic, grant in the query, a form content type (Elastic)
    st, b, _ = token_req(srv, "?grant_type=client_credentials",
                         headers={"Authorization": basic(CID, CSEC),
                                  "Content-Type": "application/x-www-form-urlencoded"})
    p = pair_ok("client_credentials with HTTP Basic", st, b)
    if p:
        st, d = who(srv, p["access_token"])
        T.check("the client's token acts as the client with its role", st == 200 and
                d["name"] == "soar" and d["kind"] == "client" and d["role"] == "analyst",
                (st, d))
    st, b, h = token_req(srv, "?grant_type=client_credentials",
                         headers={"Authorization": basic(CID, "not-the-secret")})
    T.check("client_credentials with a wrong secret: 401 invalid_client + WWW-Authenticate",
            st == 401 and is_errors(b) and b.get("error") == "invalid_client" and
            "basic" in h.get("www-authenticate", "").lower(), (st, b, h))
    st, b, h = token_req(srv, "?grant_type=client_credentials")
    T.check("client_credentials without credentials: 401", st == 401 and is_errors(b),
            (st, b))
    st, b, _ = token_req(srv, "?grant_type=client_credentials",
                         headers={"Authorization": "Basic !!!notbase64"})
    T.check("client_credentials with garbled Basic: 401", st == 401 and is_errors(b), (st, b))
    st, b, _ = token_req(srv, "?grant_type=password&client_id=x",
                         body={"username": "soar", "password": CSEC})
    T.check("a client's name and secret are no password login", st == 401, (st, b))

    # -- refresh: rotation, the old refresh token refused, reuse revokes the family
    st, b, _ = token_req(srv, "?grant_type=password&client_id=x",
                         body={"username": "ana", "password": PW})
    first = pair_ok("login for the refresh flow", st, b)
    st, b, _ = token_req(srv, body={"grant_type": "refresh_token", "refresh_token":
                                    first["refresh_token"]})
    second = pair_ok("refresh_token grant", st, b)
    T.check("refresh gives new tokens", second and second["access_token"] !=
            first["access_token"] and second["refresh_token"] != first["refresh_token"],
            second)
    T.check("the refreshed access token works", who(srv, second["access_token"])[0] == 200)
    form = "grant_type=refresh_token&refresh_token=" + second["refresh_token"]
    st, b, _ = token_req(srv, raw=form.encode(),
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
    third = pair_ok("refresh_token grant, form-encoded (rotates again)", st, b)
    st, b, _ = token_req(srv, body={"grant_type": "refresh_token",
                                    "refresh_token": first["refresh_token"]})
    T.check("a rotated refresh token is refused: 401 invalid_grant",
            st == 401 and is_errors(b) and b.get("error") == "invalid_grant", (st, b))
    st, b, _ = token_req(srv, body={"grant_type": "refresh_token",
                                    "refresh_token": third["refresh_token"]})
    T.check("its reuse revoked the family: the newest refresh token is refused too",
            st == 401, (st, b))
    T.check("... and the family's access tokens",
            who(srv, third["access_token"])[0] == 401 and
            who(srv, second["access_token"])[0] == 401)
    st, b, _ = token_req(srv, "?grant_type=password", body={"username": "ana", "password": PW})
    other = pair_ok("another login", st, b)
    T.check("a refresh token is no access token",
            who(srv, other["refresh_token"])[0] == 401)
    st, b, _ = token_req(srv, body={"grant_type": "refresh_token",
                                    "refresh_token": other["access_token"]})
    T.check("an access token is no refresh token: 401", st == 401, (st, b))
    T.check("... and that refusal revoked nothing", who(srv, other["access_token"])[0] == 200)
    st, b, _ = token_req(srv, body={"grant_type": "refresh_token", "refresh_token": "x" * 43})
    T.check("an unknown refresh token: 401", st == 401 and is_errors(b), (st, b))
    st, b, _ = token_req(srv, "?grant_type=refresh_token&refresh_token=" + "y" * 43)
    T.check("a refresh token in the query string: 400 naming refresh_token",
            st == 400 and invalid_field(b, "refresh_token"), (st, b))
    st, b, _ = token_req(srv, "?grant_type=password&client_id=x&username=ana&password=" +
                         secret("QueryPass-7731"))
    T.check("a password in the query string: 400 naming password",
            st == 400 and invalid_field(b, "password"), (st, b))

    # -- bad requests to /api/token
    st, b, _ = token_req(srv, body={"username": "ana", "password": PW})
    T.check("no grant_type: 400 naming grant_type", st == 400 and
            invalid_field(b, "grant_type"), (st, b))
    st, b, _ = token_req(srv, body={"grant_type": "implicit'\";--%_\\"})
    T.check("an unknown grant_type: 400 unsupported_grant_type", st == 400 and
            invalid_field(b, "grant_type") and b.get("error") == "unsupported_grant_type",
            (st, b))
    st, b, _ = token_req(srv, "?grant_type=password", body={"password": PW})
    T.check("password grant without a name: 400 naming username", st == 400 and
            invalid_field(b, "username"), (st, b))
    st, b, _ = token_req(srv, "?grant_type=password", body={"username": "ana"})
    T.check("password grant without a password: 400 naming password", st == 400 and
            invalid_field(b, "password"), (st, b))
    st, b, _ = token_req(srv, "?grant_type=password", body={"username": "ana", "password": 5})
    T.check("a password that is not a string: 400 naming password", st == 400 and
            invalid_field(b, "password"), (st, b))
    st, b, _ = token_req(srv, "?grant_type=password", raw=b'{"username": "ana", "password": ',
                         headers={"Content-Type": "application/json"})
    T.check("malformed JSON: 400", st == 400 and isinstance(b, dict) and "data" in b, (st, b))
    st, b, _ = token_req(srv, "?grant_type=password", body=["ana", PW])
    T.check("a JSON array body: 400", st == 400, (st, b))
    st, b, _ = token_req(srv, "?grant_type=password",
                         raw=b'{"username": "adm\\u0000x", "password": "%s"}' % PW.encode(),
                         headers={"Content-Type": "application/json"})
    T.check("a name with \\u0000 is refused (400), not cut to 'adm'", st == 400, (st, b))
    st, b, _ = token_req(srv, "?grant_type=password",
                         raw=b'{"username": "adm", "password": "%s\\u0000tail"}' % PW.encode(),
                         headers={"Content-Type": "application/json"})
    T.check("a password with \\u0000 is refused (400), not cut to the right one", st == 400,
            (st, b))
    st, b, _ = token_req(srv, "?grant_type=password",
                         raw=b'{"username": "adm\\\\u0000", "password": "x"}',
                         headers={"Content-Type": "application/json"})
    T.check("an escaped backslash before u0000 is plain text: 401, not 400", st == 401, (st, b))
    st, b, _ = token_req(srv, "?grant_type=password",
                         body={"username": "a" * 5000, "password": PW})
    T.check("a 5000-byte user name: 400, not 500", st == 400, (st, b))

    # -- wrong password, unknown user: the same 401
    st_w, b_w, h_w = token_req(srv, "?grant_type=password&client_id=x",
                               body={"username": "ana", "password": secret("wrong-pass-1")})
    T.check("wrong password: 401 with the OAuth error and WWW-Authenticate",
            st_w == 401 and is_errors(b_w) and b_w.get("error") == "invalid_grant" and
            h_w.get("www-authenticate"), (st_w, b_w, h_w))
    st_u, b_u, _ = token_req(srv, "?grant_type=password&client_id=x",
                             body={"username": "nobody-here", "password": secret("wrong-pass-2")})
    T.check("unknown user: 401 with the same answer as a wrong password",
            st_u == 401 and b_u == b_w, (b_u, b_w))
    T.check("the message names neither the user nor which part was wrong",
            "ana" not in json.dumps(b_w) and "nobody" not in json.dumps(b_u))

    def timed(name):
        t0 = time.monotonic()
        token_req(srv, "?grant_type=password", body={"username": name, "password": "bad-pw-x"})
        return time.monotonic() - t0

    # a failure per user name here (the per-user brake stays off); the fastest of four each,
    # the least disturbed by a busy machine
    t_known = min(timed(n) for n in ("adm", "ro", "ana", "eve@example.com"))
    t_unknown = min(timed(n) for n in ("ghost1", "ghost2", "ghost3", "ghost4"))
    T.check("an unknown user costs a hash check like a wrong password (%.0f vs %.0f ms)" %
            (t_unknown * 1000, t_known * 1000), t_unknown > 0.4 * t_known,
            (t_unknown, t_known))

    # -- 401 with WWW-Authenticate on missing, garbled and unknown tokens
    adm = srv.login("adm")
    ana = srv.login("ana")
    ro = srv.login("ro")
    for t in (adm, ana, ro):
        secret(t)
    cases = [
        ("no Authorization", {}, None),
        ("a garbled bearer token", {"Authorization": "Bearer abc'\";--"}, "invalid_token"),
        ("an unknown token", {"Authorization": "Bearer " + "A" * 43}, "invalid_token"),
        ("Basic instead of Bearer", {"Authorization": "Basic YTpi"}, "invalid_request"),
        ("Bearer with nothing", {"Authorization": "Bearer "}, "invalid_token"),
        ("two tokens", {"Authorization": "Bearer %s %s" % (adm, adm)}, "invalid_token"),
    ]
    for desc, hdr, err in cases:
        st, b, h = srv.call("GET", "/api/users/current", headers=hdr)
        wa = h.get("www-authenticate", "")
        T.check("%s: 401, WWW-Authenticate Bearer%s" % (desc, " " + err if err else ""),
                st == 401 and is_errors(b) and wa.startswith("Bearer realm=\"tqhost\"") and
                (err is None or ('error="%s"' % err) in wa), (st, b, wa))
    T.check("lower-case 'bearer' is accepted", srv.call(
        "GET", "/api/users/current", headers={"Authorization": "bearer " + adm})[0] == 200)

    # -- each role's refusals on every route that needs more (all groups' routes on main)
    toks = {"read-only": ro, "analyst": ana}
    refused = wrong = 0
    unauth = 0
    for method, pattern, role in routes():
        need = ROLES.get(role, 0)
        path = re.sub(r"\{[^}]+\}", "1", pattern)
        if need > 0:
            st, b, h = srv.call(method, path)
            if st == 401 and is_errors(b) and h.get("www-authenticate"):
                unauth += 1
            else:
                T.check("%s %s without a token: 401" % (method, pattern), False, (st, b))
        for rname, tok in toks.items():
            if ROLES[rname] >= need:
                continue
            st, b, _ = srv.call(method, path, token=tok, body={})
            if st == 403 and is_errors(b):
                refused += 1
            else:
                wrong += 1
                T.check("%s %s as %s: 403" % (method, pattern, rname), False, (st, b))
    T.check("every route above 'none' refuses a request without a token (%d routes)" % unauth,
            unauth >= 6)
    T.check("every route refuses the roles below its own with 403 (%d checks)" % refused,
            refused >= 10 and wrong == 0)
    st, b, _ = srv.call("GET", "/api/users", token=ana)
    T.check("the 403 says what role is needed", st == 403 and "admin" in json.dumps(b), b)

    # -- the user routes
    st, b, _ = srv.call("GET", "/api/users", token=adm)
    T.check("admin lists users (envelope with total/limit/offset)", st == 200 and
            isinstance(b.get("data"), list) and b.get("total") == 5 and
            b.get("limit") == 100 and b.get("offset") == 0, b)
    T.check("the list shows no hash or secret",
            "argon2" not in json.dumps(b) and "pwhash" not in json.dumps(b))
    st, b, _ = srv.call("GET", "/api/users?limit=1000000000&offset=1", token=adm)
    T.check("limit=1000000000 is clamped, not refused", st == 200 and b.get("limit") == 1000 and
            len(b["data"]) == 4, (st, b))
    st, b, _ = srv.call("GET", "/api/users?limit=abc", token=adm)
    T.check("limit=abc: 400 naming limit", st == 400 and invalid_field(b, "limit"), (st, b))

    def n_users():
        return srv.call("GET", "/api/users", token=adm)[1]["total"]

    before = n_users()
    bad_adds = [
        ("no name", {"role": "analyst", "password": "pw-123456"}, "name"),
        ("name not a string", {"name": 7, "role": "analyst", "password": "pw-123456"}, "name"),
        ("no role", {"name": "neu", "password": "pw-123456"}, "role"),
        ("unknown role", {"name": "neu", "role": "root", "password": "pw-123456"}, "role"),
        ("no password", {"name": "neu", "role": "analyst"}, "password"),
        ("empty password", {"name": "neu", "role": "analyst", "password": ""}, "password"),
        ("password too long", {"name": "neu", "role": "analyst", "password": "p" * 2000},
         "password"),
        ("an unknown field", {"name": "neu", "role": "analyst", "password": "pw-123456",
                              "is_admin": True}, "request"),
        ("an empty name", {"name": "", "role": "analyst", "password": "pw-123456"}, "name"),
        ("a control character in the name", {"name": "a\u0001b", "role": "analyst",
                                             "password": "pw-123456"}, "name"),
    ]
    for desc, body, field in bad_adds:
        st, b, _ = srv.call("POST", "/api/users", token=adm, body=body)
        T.check("POST /api/users, %s: 400 naming %s" % (desc, field),
                st == 400 and invalid_field(b, field), (st, b))
    for raw in (b'{"name": "eve\\u0000x", "role": "analyst", "password": "pw-123456"}',
                b'{"name": "neu", "role": "analyst", "password": "pw\\u0000rest"}'):
        st, b, _ = srv.call("POST", "/api/users", token=adm, raw=raw,
                            headers={"Content-Type": "application/json"})
        T.check("POST /api/users with \\u0000 in a string: 400", st == 400, (raw, st, b))
    st, b, _ = srv.call("POST", "/api/users", token=adm, raw=b"{not json",
                        headers={"Content-Type": "application/json"})
    T.check("POST /api/users, malformed JSON: 400", st == 400, (st, b))
    st, b, _ = srv.call("POST", "/api/users", token=adm, body=[1, 2])
    T.check("POST /api/users, an array: 400", st == 400, (st, b))
    st, b, _ = srv.call("POST", "/api/users", token=adm,
                        body={"name": "adm", "role": "analyst", "password": "pw-123456"})
    T.check("POST /api/users, an existing name: 409", st == 409 and is_errors(b), (st, b))
    T.check("nothing was written by the refused adds", n_users() == before)

    meta = "o'brien\";--%_\\"
    newpw = secret("Fresh-Pass-9981")
    st, b, _ = srv.call("POST", "/api/users", token=adm,
                        body={"name": meta, "role": "read-only", "password": newpw})
    T.check("POST /api/users with SQL metacharacters in the name: 201, kept as text",
            st == 201 and b["data"]["name"] == meta and b["data"]["role"] == "read-only" and
            b["data"]["kind"] == "person" and isinstance(b["data"]["id"], int), (st, b))
    meta_id = b["data"]["id"] if st == 201 else 0
    st, b, _ = token_req(srv, "?grant_type=password", body={"username": meta, "password": newpw})
    meta_tok = pair_ok("the new user logs in", st, b)
    meta_tok = meta_tok["access_token"] if meta_tok else ""
    st, b, _ = srv.call("PUT", "/api/users/%d" % meta_id, token=adm, body={"role": "analyst"})
    T.check("PUT role: 200 with the new role", st == 200 and b["data"]["role"] == "analyst",
            (st, b))
    T.check("a role change takes effect on live tokens",
            who(srv, meta_tok)[1]["role"] == "analyst")
    st, b, _ = srv.call("PUT", "/api/users/%d" % meta_id, token=adm, body={})
    T.check("PUT with nothing to change: 400", st == 400, (st, b))
    st, b, _ = srv.call("PUT", "/api/users/%d" % meta_id, token=adm, body={"role": "god"})
    T.check("PUT an unknown role: 400 naming role", st == 400 and invalid_field(b, "role"), b)
    st, b, _ = srv.call("PUT", "/api/users/%d" % meta_id, token=adm, body={"name": "x"})
    T.check("PUT a name (not changeable): 400", st == 400, (st, b))
    st, b, _ = srv.call("PUT", "/api/users/999999", token=adm, body={"role": "analyst"})
    T.check("PUT an unknown id: 404", st == 404 and is_errors(b), (st, b))
    st, b, _ = srv.call("PUT", "/api/users/abc", token=adm, body={"role": "analyst"})
    T.check("PUT a non-numeric id: 400", st == 400, (st, b))
    st, b, _ = srv.call("PUT", "/api/users/%d" % meta_id, token=adm,
                        body={"password": secret("Other-Pass-4410")})
    T.check("PUT password: 200", st == 200, (st, b))
    T.check("a password change through the API revokes the user's tokens",
            who(srv, meta_tok)[0] == 401)
    st, b, _ = token_req(srv, "?grant_type=password",
                         body={"username": meta, "password": "Other-Pass-4410"})
    meta_tok = (pair_ok("the new password works", st, b) or {}).get("access_token", "")
    st, b, _ = srv.call("PUT", "/api/users/%d" % user_id(srv, adm, "soar"), token=adm,
                        body={"password": "a-client-pw-1"})
    T.check("PUT a password on an API client: 400 (its secret is made, not set)",
            st == 400, (st, b))
    adm_id = user_id(srv, adm, "adm")
    st, b, _ = srv.call("DELETE", "/api/users/%d" % adm_id, token=adm)
    T.check("deleting the last admin: 409", st == 409 and is_errors(b), (st, b))
    st, b, _ = srv.call("PUT", "/api/users/%d" % adm_id, token=adm, body={"role": "analyst"})
    T.check("demoting the last admin: 409", st == 409 and is_errors(b), (st, b))
    st, b, _ = srv.call("DELETE", "/api/users/%d" % meta_id, token=adm)
    T.check("DELETE a user: 204", st == 204, (st, b))
    T.check("a deleted user's token is refused", who(srv, meta_tok)[0] == 401)
    st, b, _ = srv.call("DELETE", "/api/users/%d" % meta_id, token=adm)
    T.check("DELETE again: 404", st == 404 and is_errors(b), (st, b))
    # a 9 MiB body announced: the server answers 413 before reading it
    c = srv.connection()
    c.putrequest("POST", "/api/users")
    c.putheader("Authorization", "Bearer " + adm)
    c.putheader("Content-Type", "application/json")
    c.putheader("Content-Length", str(9 << 20))
    c.endheaders()
    try:
        c.send(b"{" + b" " * 65536)
    except OSError:
        pass
    r = c.getresponse()
    st, b = r.status, r.read().decode(errors="replace")
    c.close()
    T.check("a 9 MiB body: 413", st == 413 and is_errors(json.loads(b or "null")), (st, b))
    T.check("nothing was written by the refused bodies", n_users() == before)

    # -- the CLI's passwd and delete revoke live tokens (the server keeps running)
    st, b, _ = token_req(srv, "?grant_type=password", body={"username": "ro", "password": PW})
    ro_pair = pair_ok("read-only user logs in", st, b)
    ro_pw2 = secret("Cli-Changed-Pw-5521")
    srv.cli("user", "passwd", "ro", stdin=ro_pw2 + "\n")
    T.check("`tqhost user passwd` revokes the user's access token",
            who(srv, ro_pair["access_token"])[0] == 401)
    st, b, _ = token_req(srv, body={"grant_type": "refresh_token",
                                    "refresh_token": ro_pair["refresh_token"]})
    T.check("... and its refresh token", st == 401, (st, b))
    st, b, _ = token_req(srv, "?grant_type=password", body={"username": "ro", "password": PW})
    T.check("the old password no longer works", st == 401, (st, b))
    ro = srv.login("ro", ro_pw2)
    secret(ro)
    srv.cli("user", "delete", "ro")
    T.check("`tqhost user delete` revokes the user's token", who(srv, ro)[0] == 401)

    # -- the audit log
    st, b, _ = srv.call("GET", "/api/audit?limit=1000", token=adm)
    rows = b.get("data", []) if st == 200 else []
    T.check("admin reads the audit log", st == 200 and rows and b["total"] >= len(rows), (st, b))
    whats = {r["what"] for r in rows}
    for w in ("login", "login_failed", "token.refresh", "token.reuse", "user.add", "user.role",
              "user.passwd", "user.delete"):
        T.check("the audit log has a '%s' row" % w, w in whats, sorted(whats))
    T.check("each row has id, at, who, what, target, detail, addr",
            rows and all(set(r) >= {"id", "at", "who", "what", "target", "detail", "addr"}
                         for r in rows), rows[:2])
    fl = [r for r in rows if r["what"] == "login_failed" and r["target"] == "nobody-here"]
    T.check("a failed login names the name tried and the address",
            fl and fl[0]["addr"] == "127.0.0.1", fl)
    T.check("a user change names who did it (API: the admin; CLI: cli)",
            any(r["what"] == "user.add" and r["who"] == "adm" and r["target"] == meta
                for r in rows) and
            any(r["what"] == "user.passwd" and r["who"] == "cli" and r["target"] == "ro"
                for r in rows), [r for r in rows if r["what"].startswith("user.")])
    st, b, _ = srv.call("GET", "/api/audit?what=login_failed&limit=5", token=adm)
    T.check("?what= filters and limit pages", st == 200 and len(b["data"]) == 5 and
            all(r["what"] == "login_failed" for r in b["data"]) and b["total"] > 5, b)
    st, b, _ = srv.call("GET", "/api/audit?who=" + "%27%22%3B--%25_%5C", token=adm)
    T.check("?who= with SQL metacharacters matches nothing", st == 200 and b["total"] == 0, b)
    for name, tok in (("analyst", ana),):
        st, b, _ = srv.call("GET", "/api/audit", token=tok)
        T.check("the audit log is refused to an %s: 403" % name, st == 403, (st, b))

    # -- a plugin's API key, configured on the command line while the server runs
    api_key = secret("rst-key-7f3a9c2e51d04b86")
    srv.cli("plugin", "configure", "rst-ioc-lookup", "api_key=-", stdin=api_key + "\n")
    if any(m == "GET" and p == "/api/plugins/{name}" for m, p, _ in routes()):
        st, b, _ = srv.call("GET", "/api/plugins/rst-ioc-lookup", token=adm)
        T.check("GET /api/plugins/{name} answers without the API key", st == 200 and
                api_key not in json.dumps(b), (st, b))

    # -- secrets: not in /metrics either
    st, metrics, _ = srv.call("GET", "/metrics")
    T.check("/metrics answers", st == 200 and isinstance(metrics, str) and "tqhost_" in metrics)
    T.check("/metrics counts logins by grant and outcome, naming no user",
            re.search(r'^tqhost_logins_total\{grant="password",outcome="ok"\} [1-9]', metrics, re.M)
            and re.search(r'^tqhost_logins_total\{grant="password",outcome="failed"\} [1-9]',
                          metrics, re.M)
            and re.search(r'^tqhost_logins_total\{grant="client_credentials",outcome="failed"\} 1$',
                          metrics, re.M)
            and re.search(r'^tqhost_logins_total\{grant="refresh_token",outcome="ok"\} [1-9]',
                          metrics, re.M)
            and "nobody-here" not in metrics and 'user=' not in metrics,
            [l for l in metrics.splitlines() if "logins" in l])
    code = srv.stop()
    T.check("the server stops on SIGTERM with exit 0", code == 0, code)
    log = srv.log_text()
    T.check("the debug log has the token requests", "POST /api/token" in log)
    with open(srv.db, "rb") as f:
        files = {"lib.db": f.read()}
    for ext in ("-wal", "-shm", "-journal"):
        if os.path.exists(srv.db + ext):
            with open(srv.db + ext, "rb") as f:
                files["lib.db" + ext] = f.read()
    leaks = []
    blob_answers = "\n".join(ANSWERS)
    for s in sorted(SECRETS):
        if len(s) < 8:
            continue
        # answers may carry the tokens issued to the caller: only the token endpoint does
        for where, text in (("the server log", log), ("/metrics", metrics)):
            if s in text:
                leaks.append((where, s[:6]))
        for name, data in files.items():
            if s.encode() in data:
                leaks.append((name, s[:6]))
    T.check("no password, token, client secret or API key in the debug log, /metrics or the "
            "library files (%d secrets, %d files)" % (len(SECRETS), len(files)), not leaks, leaks)
    pw_leaks = [s[:6] for s in (PW, CSEC, api_key, "QueryPass-7731", "Fresh-Pass-9981", "Other-Pass-4410",
                                "Cli-Changed-Pw-5521", "wrong-pass-1", "wrong-pass-2")
                if s in blob_answers]
    T.check("no password, client secret or API key in any answer (%d answers)" % len(ANSWERS),
            not pw_leaks, pw_leaks)
    T.check("no password hash in any answer", "$argon2" not in blob_answers)
finally:
    if srv.proc.poll() is None:
        srv.kill9()

# ---- expiry: the host configuration's server.token_ttl -----------------------------------------
work2 = tempfile.mkdtemp(prefix="api_auth_ttl.")
cfg = os.path.join(work2, "tqhost.yaml")
with open(cfg, "w") as f:
    f.write("server:\n  token_ttl: 2s\n")
s2 = Srv(TQHOST, work2, env={"TQHOST_CONFIG": cfg})
try:
    s2.add_user("adm", "admin")
    st, b, _ = token_req(s2, "?grant_type=password", body={"username": "adm", "password": PW})
    p = pair_ok("login with server.token_ttl: 2s", st, b)
    T.check("expires_in follows server.token_ttl", p and p["expires_in"] == 2, p)
    T.check("the token works before it expires", who(s2, p["access_token"])[0] == 200)
    time.sleep(3.2)
    st, b, h = s2.call("GET", "/api/users/current", token=p["access_token"])
    T.check("an expired token: 401, WWW-Authenticate error=\"invalid_token\", says expired",
            st == 401 and 'error="invalid_token"' in h.get("www-authenticate", "") and
            "expired" in json.dumps(b), (st, b, h))
    st, b, _ = token_req(s2, body={"grant_type": "refresh_token",
                                   "refresh_token": p["refresh_token"]})
    p2 = pair_ok("the refresh token outlives the access token", st, b)
    T.check("the refreshed token works", p2 and who(s2, p2["access_token"])[0] == 200)
    T.check("server stops: exit 0", s2.stop() == 0)
finally:
    if s2.proc.poll() is None:
        s2.kill9()

# ---- the failed-login brake: per user, then per address -----------------------------------------
work3 = tempfile.mkdtemp(prefix="api_auth_brake.")
s3 = Srv(TQHOST, work3, env={"TQHOST_LOGIN_DELAY": "2"})
try:
    s3.add_user("ana", "analyst")
    s3.add_user("bob", "analyst")

    def attempt(name, pw="wrong-password-x"):
        return token_req(s3, "?grant_type=password", body={"username": name, "password": pw})

    sts = [attempt("ana")[0] for _ in range(5)]
    T.check("5 wrong passwords for one user: 401 each", sts == [401] * 5, sts)
    st, b, h = attempt("ana", PW)
    ra = int(h.get("retry-after", "0") or 0)
    T.check("then even the right password: 429 with Retry-After",
            st == 429 and is_errors(b) and 1 <= ra <= 2, (st, b, h))
    T.check("another user is not locked", attempt("bob", PW)[0] == 200)
    time.sleep(ra + 0.3)
    sts = [attempt("ana")[0] for _ in range(5)]
    st, b, h = attempt("ana")
    ra2 = int(h.get("retry-after", "0") or 0)
    T.check("the next lock of the same user is longer (%ds, then %ds)" % (ra, ra2),
            sts == [401] * 5 and st == 429 and ra2 > ra, (sts, st, h))
    time.sleep(ra2 + 0.3)
    T.check("after the lock the right password works", attempt("ana", PW)[0] == 200)
    # guesses in parallel: no more password checks than the limit, whatever the threads
    s3.add_user("carl", "analyst")
    res = []

    def guess(pw):
        res.append(attempt("carl", pw)[0])

    ts = [threading.Thread(target=guess, args=("wrong-%d" % i,)) for i in range(24)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    T.check("24 wrong passwords at once: at most 5 are checked (401), the rest 429 (%d checked)"
            % res.count(401), res.count(401) <= 5 and res.count(429) == 24 - res.count(401),
            res)
    res = []
    ts = [threading.Thread(target=lambda: res.append(attempt("bob", PW)[0])) for _ in range(6)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    T.check("6 right passwords at once for a user without failures: all 200", res == [200] * 6,
            res)
    # per address: 20 failures over many names (never 5 on one) lock the address
    sts = [attempt("ghost%d" % (i // 4))[0] for i in range(10)]  # 10+5 failures so far
    st = None
    for i in range(10):
        st, b, h = attempt("spray%d" % i)
        if st == 429:
            break
    T.check("failures spread over many names lock the address: 429 with Retry-After",
            st == 429 and int(h.get("retry-after", "0")) >= 1, (sts, st, h))
    st, b, h = attempt("bob", PW)
    T.check("a locked address cannot log in as anyone", st == 429, (st, b))
    st, m, _ = s3.call("GET", "/metrics")
    T.check("/metrics counts the refusals of the brake",
            re.search(r'^tqhost_logins_total\{grant="password",outcome="locked"\} [1-9][0-9]+$', m, re.M),
            [l for l in m.splitlines() if "logins" in l])
    st, b, _ = s3.call("GET", "/api/audit?what=login_failed", token=None)
    T.check("the audit log still needs a token", st == 401)
    T.check("server stops: exit 0", s3.stop() == 0)
    rc, out, _ = s3.cli("--json", "user", "list")
    T.check("the brake is in memory only: the users are untouched", len(json.loads(out)) == 3)
finally:
    if s3.proc.poll() is None:
        s3.kill9()

T.done()

"""web_static_test.py: the web UI's static files served at "/" (src/server/web.c).

Hostile paths first: traversal (plain, encoded, double-encoded), an encoded '/', '\\' or NUL,
a symlink out of the folder, a huge path, hidden files, folders without a listing, methods other
than GET/HEAD. Then what a browser relies on: index.html at "/", the Content-Type of each kind,
ETag + 304, a changed file served anew, and the strict headers on every answer (static files,
API answers, errors).

    web_static_test.py TQHOST
"""

import http.client
import os
import shutil
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tqapi import Server, Tally  # noqa: E402

CSP = "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
SECRET = "TOP-SECRET-OUTSIDE-THE-WEB-FOLDER"


def raw_get(srv, path, method="GET", headers=None):
    """A request with the path sent byte for byte (http.client would not re-encode it)."""
    c = srv.connection()
    try:
        c.putrequest(method, path, skip_accept_encoding=True)
        for k, v in (headers or {}).items():
            c.putheader(k, v)
        c.endheaders()
        r = c.getresponse()
        body = r.read()
        return r.status, body, {k.lower(): v for k, v in r.getheaders()}
    finally:
        c.close()


def strict(h):
    return (h.get("content-security-policy") == CSP and h.get("x-content-type-options") == "nosniff"
            and h.get("x-frame-options") == "DENY" and h.get("referrer-policy") == "no-referrer"
            and "cache-control" in h)


def main():
    tqhost = sys.argv[1]
    T = Tally()
    work = tempfile.mkdtemp(prefix="tq-web-")
    outside = os.path.join(work, "outside")
    web = os.path.join(work, "web")
    os.makedirs(outside)
    os.makedirs(os.path.join(web, "js", "screens"))
    os.makedirs(os.path.join(web, "css"))
    os.makedirs(os.path.join(web, "empty"))
    with open(os.path.join(outside, "secret.txt"), "w") as f:
        f.write(SECRET)
    files = {
        "index.html": "<!doctype html><title>tq</title><script type=module src=js/app.js></script>",
        "js/app.js": "export const x = 1;\n",
        "js/screens/a.js": "export function render() {}\n",
        "css/app.css": "body { color: black; }\n",
        "logo.svg": "<svg xmlns='http://www.w3.org/2000/svg'></svg>",
        "data.json": "{}",
        ".hidden": SECRET,
        "blob.bin": "x",
    }
    for name, text in files.items():
        with open(os.path.join(web, name), "w") as f:
            f.write(text)
    os.symlink(os.path.join(outside, "secret.txt"), os.path.join(web, "leak.txt"))
    os.symlink(outside, os.path.join(web, "outdir"))
    os.symlink(os.path.join(web, "js", "app.js"), os.path.join(web, "inside.js"))

    srv = Server(tqhost, work, args=["--insecure-http", "--web", web])
    try:
        # ---- hostile paths ----
        hostile = [
            "/../outside/secret.txt",
            "/js/../../outside/secret.txt",
            "/%2e%2e/outside/secret.txt",
            "/%2E%2E/outside/secret.txt",
            "/js/%2e%2e/%2e%2e/outside/secret.txt",
            "/..%2foutside%2fsecret.txt",
            "/js%2fapp.js",
            "/js%5capp.js",
            "/..\\outside\\secret.txt",
            "/index.html%00.js",
            "/%00",
            "/%252e%252e/outside/secret.txt",
            "/./index.html",
            "//etc/passwd",
            "/js//app.js",
            "/%zz",
            "/%",
            "/leak.txt",
            "/outdir/secret.txt",
            "/.hidden",
            "/%2ehidden",
            "/" + "%2e%2e/" * 40 + "etc/passwd",
        ]
        for p in hostile:
            st, body, h = raw_get(srv, p)
            T.check("hostile %s: refused (%d), nothing of outside leaks" % (p[:60], st),
                    st in (400, 403, 404, 414) and SECRET.encode() not in body
                    and b"root:" not in body, (st, body[:200]))
            T.check("hostile %s: strict headers on the refusal" % p[:60], strict(h), h)
        st, body, h = raw_get(srv, "/leak.txt")
        T.check("a symlink to a file outside: 403 naming the folder",
                st == 403 and b"out of the web UI's folder" in body, (st, body))
        st, body, h = raw_get(srv, "/" + "a" * 5000)
        T.check("a 5000-byte path: refused (414 or 400)", st in (400, 414), (st, body[:100]))
        st, body, h = raw_get(srv, "/" + "a/" * 3000 + "x.js")
        T.check("a path 3000 segments deep: refused", st in (400, 414), (st, body[:100]))
        # A header block over the server's cap: MHD's own refusal, the server survives it.
        s = socket.create_connection((srv.host, srv.port), timeout=10)
        s.sendall(b"GET /" + b"b" * 100000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        got = b""
        try:
            while True:
                d = s.recv(65536)
                if not d:
                    break
                got += d
        except (socket.timeout, ConnectionResetError):
            pass
        s.close()
        T.check("a 100 KB request line: refused or closed, not served",
                got == b"" or got.split(b" ")[1][:3] in (b"400", b"414", b"431"), got[:100])
        st, _, _ = raw_get(srv, "/")
        T.check("the server still serves after the huge path", st == 200, st)
        st, body, _ = raw_get(srv, "/empty/")
        T.check("a folder without index.html: 404, no listing", st == 404, (st, body))
        st, body, _ = raw_get(srv, "/js/")
        T.check("/js/: no listing of the folder", st == 404 and b"app.js" not in body, (st, body))
        st, body, _ = raw_get(srv, "/js")
        T.check("/js: no listing either", st == 404 and b"app.js" not in body, (st, body))
        for m in ("POST", "PUT", "DELETE"):
            st, body, h = raw_get(srv, "/index.html", method=m)
            T.check("%s of a static file: 405" % m, st == 405 and strict(h), (st, body))
        st, body, _ = raw_get(srv, "/api/../index.html")
        T.check("/api/../index.html is the API's refusal, not the file", st == 400
                and b"<title>" not in body, (st, body))

        # ---- what a browser relies on ----
        st, body, h = raw_get(srv, "/")
        T.check("/ is index.html", st == 200 and body.decode() == files["index.html"], (st, body))
        T.check("/: text/html; charset=utf-8",
                h.get("content-type") == "text/html; charset=utf-8", h)
        T.check("/: the strict headers", strict(h), h)
        T.check("/: Cache-Control no-cache (revalidated)", h.get("cache-control") == "no-cache", h)
        T.check("/: an ETag", h.get("etag", "").startswith('"'), h)
        kinds = {"/js/app.js": "text/javascript; charset=utf-8",
                 "/js/screens/a.js": "text/javascript; charset=utf-8",
                 "/css/app.css": "text/css; charset=utf-8", "/logo.svg": "image/svg+xml",
                 "/data.json": "application/json", "/blob.bin": "application/octet-stream",
                 "/index.html": "text/html; charset=utf-8",
                 "/inside.js": "text/javascript; charset=utf-8"}
        for p, ct in kinds.items():
            st, body, h = raw_get(srv, p)
            T.check("%s: 200 %s" % (p, ct), st == 200 and h.get("content-type") == ct, (st, h))
        st, body, h = raw_get(srv, "/js/app.js", method="HEAD")
        T.check("HEAD: 200, no body, the length of the file",
                st == 200 and body == b"" and h.get("content-length") == str(len(files["js/app.js"])),
                (st, body, h))
        st, body, h = raw_get(srv, "/js/app.js?v=3")
        T.check("a query string is ignored", st == 200 and body == files["js/app.js"].encode(), st)
        st, body, h = raw_get(srv, "/js/app.js")
        etag = h.get("etag")
        st, body, h2 = raw_get(srv, "/js/app.js", headers={"If-None-Match": etag})
        T.check("If-None-Match with the ETag: 304, empty", st == 304 and body == b"", (st, body))
        T.check("the 304 keeps the strict headers", strict(h2), h2)
        st, body, _ = raw_get(srv, "/js/app.js", headers={"If-None-Match": '"other"'})
        T.check("another ETag: 200 with the file", st == 200 and body, st)
        time.sleep(0.05)
        with open(os.path.join(web, "js", "app.js"), "w") as f:
            f.write("export const x = 2; // changed\n")
        st, body, h3 = raw_get(srv, "/js/app.js", headers={"If-None-Match": etag})
        T.check("a changed file is served anew (200, the new text, a new ETag)",
                st == 200 and b"changed" in body and h3.get("etag") != etag, (st, body, h3))
        os.remove(os.path.join(web, "css", "app.css"))
        st, _, _ = raw_get(srv, "/css/app.css")
        T.check("a removed file: 404 (not served from the cache)", st == 404, st)

        # ---- the API keeps its headers ----
        st, body, h = srv.call("GET", "/api/health")
        T.check("API answers carry the strict headers too", strict(h), h)
        T.check("API answers: Cache-Control no-store", h.get("cache-control") == "no-store", h)
        st, body, h = srv.call("GET", "/api/nope")
        T.check("an unknown API path stays a JSON 404", st == 404 and isinstance(body, dict), body)

        # ---- sign-out (the UI's logout): DELETE /api/token revokes the token and its family
        srv.add_user("ro", "read-only")
        st, pair, _ = srv.call("POST", "/api/token?grant_type=password&client_id=web",
                               body={"username": "ro", "password": Server.PASSWORD})
        tok = pair["access_token"]
        other = srv.login("ro")
        st, body, _ = srv.call("DELETE", "/api/token")
        T.check("DELETE /api/token without a token: 401", st == 401, (st, body))
        st, body, _ = srv.call("DELETE", "/api/token", token=tok)
        T.check("DELETE /api/token: 204", st == 204, (st, body))
        st, body, _ = srv.call("GET", "/api/users/current", token=tok)
        T.check("the signed-out token gets 401", st == 401, (st, body))
        st, body, _ = srv.call("POST", "/api/token", body={"grant_type": "refresh_token",
                                                          "refresh_token": pair["refresh_token"]})
        T.check("its refresh token is revoked too (401)", st == 401, (st, body))
        st, body, _ = srv.call("GET", "/api/users/current", token=other)
        T.check("another session of the same user is untouched", st == 200, (st, body))
        st, body, _ = srv.call("DELETE", "/api/token", token=tok)
        T.check("signing out twice: 401", st == 401, (st, body))
    finally:
        rc = srv.stop()
    T.check("the server stops cleanly", rc == 0, rc)

    # A --web folder that does not exist: serve refuses to start, naming it.
    missing = os.path.join(work, "no-such-web")
    srv2 = None
    try:
        srv2 = Server(tqhost, work, args=["--insecure-http", "--web", missing])
        T.check("serve --web MISSING refuses to start", False, "it started")
        srv2.stop()
    except RuntimeError as e:
        T.check("serve --web MISSING refuses to start, naming the folder", missing in str(e), e)
    shutil.rmtree(work, ignore_errors=True)
    T.done()


if __name__ == "__main__":
    main()

"""tqapi.py: what the server's integration tests share, on Python's standard library only
(http.client over TLS, the server's own certificate pinned as the only CA).

    srv = Server(tqhost, workdir, env={...}, args=[...])   # tqhost init + serve on a free port
    srv.add_user("ana", "analyst")                        # via the CLI, password on stdin
    tok = srv.login("ana")                                # POST /api/token, password grant
    st, body, hdrs = srv.call("GET", "/api/indicators", token=tok)
    srv.stop()                                            # SIGTERM, expects exit 0

body is the decoded JSON (or the raw text when the answer is not JSON); hdrs a dict with
lower-case names. Checks count into a Tally that prints "ok:"/"FAIL:" lines like the shell
tests and exits non-zero on any failure.
"""

import http.client
import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.parse


class Tally:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, name, cond, detail=""):
        if cond:
            self.passed += 1
            print("ok:   " + name)
        else:
            self.failed += 1
            print("FAIL: " + name + (("  -- " + str(detail)[:600]) if detail != "" else ""))
        sys.stdout.flush()
        return bool(cond)

    def done(self):
        print("%d passed, %d failed" % (self.passed, self.failed))
        sys.exit(1 if self.failed else 0)


class Server:
    PASSWORD = "correct horse battery staple"

    def __init__(self, tqhost, workdir, env=None, args=None, init=True):
        self.tqhost = tqhost
        self.workdir = workdir
        self.env = dict(os.environ)
        self.env.setdefault("TQHOST_DB", os.path.join(workdir, "lib.db"))
        self.env.pop("TQHOST_NOW", None)
        if env:
            self.env.update(env)
        self.db = self.env["TQHOST_DB"]
        if init and not os.path.exists(self.db):
            self.cli("init")
        self.log = open(os.path.join(workdir, "server.log"), "ab")
        cmd = [tqhost, "--json", "serve", "--listen", "127.0.0.1:0"] + (args or [])
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.log, env=self.env,
                                     cwd=workdir)
        line = self.proc.stdout.readline().decode()
        if not line:
            raise RuntimeError("the server did not start: " + self.log_text()[-2000:])
        ready = json.loads(line)
        self.url = ready["listening"]
        self.fingerprint = ready.get("sha256_fingerprint", "")
        u = urllib.parse.urlsplit(self.url)
        self.host, self.port, self.tls = u.hostname, u.port, u.scheme == "https"
        self.ctx = None
        if self.tls:
            self.ctx = ssl.create_default_context(cafile=self.db + ".tls.crt")

    def log_text(self):
        with open(os.path.join(self.workdir, "server.log"), "rb") as f:
            return f.read().decode(errors="replace")

    def cli(self, *argv, stdin=None, check=True):
        """Runs the CLI against the same library; returns (rc, stdout, stderr)."""
        p = subprocess.run([self.tqhost] + list(argv), input=(stdin or "").encode(),
                           capture_output=True, env=self.env, cwd=self.workdir)
        out, err = p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")
        if check and p.returncode != 0:
            raise RuntimeError("tqhost %s: exit %d: %s" % (" ".join(argv), p.returncode, err))
        return p.returncode, out, err

    def add_user(self, name, role, password=None):
        self.cli("user", "add", name, "--role", role, stdin=(password or self.PASSWORD) + "\n")

    def connection(self, timeout=30):
        if self.tls:
            return http.client.HTTPSConnection(self.host, self.port, context=self.ctx,
                                               timeout=timeout)
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def call(self, method, path, body=None, token=None, headers=None, raw=None, conn=None,
             timeout=30):
        """One request. body: a JSON-able value (sent as JSON); raw: bytes sent as they are."""
        h = {"Accept": "application/json"}
        if token:
            h["Authorization"] = "Bearer " + token
        data = None
        if raw is not None:
            data = raw
        elif body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        if headers:
            h.update(headers)
        own = conn is None
        c = conn or self.connection(timeout)
        try:
            c.request(method, path, body=data, headers=h)
            r = c.getresponse()
            payload = r.read()
            hdrs = {k.lower(): v for k, v in r.getheaders()}
        finally:
            if own:
                c.close()
        text = payload.decode(errors="replace")
        try:
            parsed = json.loads(text) if text else None
        except ValueError:
            parsed = text
        return r.status, parsed, hdrs

    def login(self, name, password=None):
        st, body, _ = self.call("POST", "/api/token?grant_type=password&client_id=tests",
                                body={"username": name, "password": password or self.PASSWORD})
        if st != 200:
            raise RuntimeError("login %s: %d %s" % (name, st, body))
        return body["access_token"]

    def stop(self, timeout=30):
        """SIGTERM; returns the exit status (0 expected)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode

    def kill9(self):
        self.proc.kill()
        self.proc.wait()
        self.log.close()


def wait_for(pred, timeout=10.0, step=0.05):
    """Polls pred() until it is true or timeout seconds pass; returns its last value."""
    end = time.monotonic() + timeout
    v = pred()
    while not v and time.monotonic() < end:
        time.sleep(step)
        v = pred()
    return v

#!/usr/bin/env python3
"""api_ui_test.py: what the web UI's screens need from the API, through the real server over
TLS against rstsim: live progress of a bulk run as server-sent events (ticket or bearer, at
least one event a second, a final event and the end of the stream; unknown run 404, no or a
bad, used or foreign ticket 401/403; 100 streams opened and dropped are all freed; SIGTERM
with a stream open still stops at once); retry of a run's failed items; feed presets; OAuth
clients listed, created (secret shown once) and deleted; users disabled and enabled again.

Usage: api_ui_test.py TQHOST RSTSIM SRCDIR"""

import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tqapi import Server, Tally, wait_for  # noqa: E402

TQ, SIM, SRC = sys.argv[1], sys.argv[2], sys.argv[3]
ACTION = "rst-ioc-lookup-action"
N = 300

t = Tally()
work = tempfile.mkdtemp(prefix="api_ui.")
sim = None
srv = None


def start_sim(*args):
    out = os.path.join(work, "sim.out")
    p = subprocess.Popen([SIM, "--port", "0", "--api-key", "ui-key-123"] + list(args),
                         stdout=open(out, "w"), stderr=subprocess.DEVNULL)

    def port():
        try:
            for line in open(out):
                if line.startswith("rstsim listening on 127.0.0.1:"):
                    return int(line.rsplit(":", 1)[1])
        except OSError:
            pass
        return None
    pt = wait_for(port, timeout=20)
    if not pt:
        raise RuntimeError("rstsim did not start")
    return p, pt


class Stream:
    """A raw server-sent event stream over TLS: the status, the headers and the events as
    they come, parsed from the chunked body."""

    def __init__(self, path, token=None, timeout=15):
        raw = socket.create_connection((srv.host, srv.port), timeout=timeout)
        self.sock = srv.ctx.wrap_socket(raw, server_hostname=srv.host)
        req = "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n" % (path, srv.host)
        if token:
            req += "Authorization: Bearer %s\r\n" % token
        self.sock.sendall((req + "\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            d = self.sock.recv(65536)
            if not d:
                break
            self.buf += d
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode(errors="replace").split("\r\n")
        self.status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
        self.headers = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            self.headers[k.strip().lower()] = v.strip()
        self.text = ""      # the decoded body so far
        self.ended = False  # the last chunk came

    def _pump(self):
        """Reads one more piece of the body; False at the end."""
        if self.headers.get("transfer-encoding") != "chunked":
            d = self.sock.recv(65536)
            if not d:
                self.ended = True
                return False
            self.text += d.decode(errors="replace")
            return True
        while True:
            if b"\r\n" in self.buf:
                size_s, _, rest = self.buf.partition(b"\r\n")
                size = int(size_s.split(b";")[0], 16)
                if len(rest) >= size + 2:
                    self.text += rest[:size].decode(errors="replace")
                    self.buf = rest[size + 2:]
                    if size == 0:
                        self.ended = True
                        return False
                    return True
            d = self.sock.recv(65536)
            if not d:
                self.ended = True
                return False
            self.buf += d

    def events(self, until_end=True, limit_s=60):
        """[(name, data dict, arrival time)] until the stream ends (or limit_s)."""
        out, t0 = [], time.monotonic()
        pending = ""
        while time.monotonic() - t0 < limit_s:
            more = self._pump()
            pending += self.text
            self.text = ""
            while "\n\n" in pending:
                block, _, pending = pending.partition("\n\n")
                name, data = "message", None
                for ln in block.split("\n"):
                    if ln.startswith("event:"):
                        name = ln[6:].strip()
                    elif ln.startswith("data:"):
                        data = json.loads(ln[5:].strip())
                if data is not None:
                    out.append((name, data, time.monotonic()))
                    if not until_end:
                        return out
            if not more:
                break
        return out

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def metric(name):
    st, body, _ = srv.call("GET", "/metrics")
    for ln in (body or "").splitlines() if isinstance(body, str) else []:
        if ln.startswith(name + " ") or ln.startswith(name + "{}"):
            return float(ln.split()[-1])
    return None


def start_run(tok, values=None, concurrency=2):
    body = {"collection": "ips"} if values is None else {"values": values}
    body["concurrency"] = concurrency
    st, b, _ = srv.call("POST", "/api/actions/%s/runs" % ACTION, body=body, token=tok)
    return b["data"]["id"] if st == 202 else None


def run_get(rid, tok):
    st, b, _ = srv.call("GET", "/api/runs/%d" % rid, token=tok)
    return b["data"] if st == 200 else {}


def wait_done(rid, tok, timeout=120):
    return wait_for(lambda: run_get(rid, tok).get("state") not in ("running", None),
                    timeout=timeout, step=0.1)


try:
    sim, port = start_sim("--latency-ms", "100", "--hit-ratio", "0.8", "--threads", "8")
    plugins = os.path.join(work, "plugins")
    shutil.copytree(os.path.join(SRC, "plugins"), plugins)
    os.makedirs(os.path.join(plugins, "evil"))
    with open(os.path.join(plugins, "evil", "manifest.yaml"), "w") as f:
        f.write("name: evil\nversion: 1.0.0\nlabel: <img src=x onerror=alert(1)>\n"
                "operations: [\n")  # a YAML syntax error on line 4
    env = {"TQHOST_PLUGINS": plugins,
           "TQHOST_ACTIONS": os.path.join(SRC, "actions"),
           "TQHOST_SCHEMAS": os.path.join(SRC, "schemas"),
           "TQHOST_KEY_FILE": os.path.join(work, "lib.key"),
           "TQHOST_TICK_S": "0"}
    srv = Server(TQ, work, env=env)
    srv.cli("plugin", "configure", "rst-ioc-lookup", "api_key=ui-key-123",
            "base_url=http://127.0.0.1:%d/v1" % port)
    with open(os.path.join(work, "ips.txt"), "w") as f:
        for i in range(N):
            f.write("10.77.%d.%d\n" % (i // 256, i % 256))
    srv.cli("indicator", "import", os.path.join(work, "ips.txt"), "--source", "Import")
    srv.cli("collection", "add", "ips", "--type", "IP Address")
    for name, role in (("ada", "admin"), ("ana", "analyst"), ("rex", "read-only")):
        srv.add_user(name, role)
    ada, ana, rex = srv.login("ada"), srv.login("ana"), srv.login("rex")

    # ---- server-sent events: hostile first ----------------------------------------------------
    s = Stream("/api/runs/999999/events", token=rex)
    t.check("events of an unknown run: 404", s.status == 404, s.status)
    s.close()
    s = Stream("/api/runs/1/events")
    t.check("events without a token or ticket: 401", s.status == 401, s.status)
    s.close()
    s = Stream("/api/runs/1/events", token="A" * 43)
    t.check("events with a token that is no one's: 401", s.status == 401, s.status)
    s.close()
    s = Stream("/api/runs/1/events?ticket=" + "B" * 43)
    t.check("events with a made-up ticket: 401", s.status == 401, s.status)
    s.close()
    st, b, _ = srv.call("POST", "/api/runs/999999/events/ticket", token=rex)
    t.check("a ticket for an unknown run: 404", st == 404, (st, b))
    st, b, _ = srv.call("POST", "/api/runs/1/events/ticket")
    t.check("a ticket without a token: 401", st == 401, (st, b))

    # ---- a run watched live through a ticket ----------------------------------------------
    rid = start_run(ana)
    t.check("a bulk run over 300 indicators starts", rid is not None, rid)
    st, b, _ = srv.call("POST", "/api/runs/%d/events/ticket" % rid, token=rex)
    tk = (b or {}).get("data", {}).get("ticket", "") if st == 201 else ""
    t.check("a read-only user gets a ticket for the run's events (201, expires_in)",
            st == 201 and len(tk) == 43 and b["data"]["expires_in"] > 0 and
            b["data"]["url"].endswith("ticket=" + tk), (st, b))
    s = Stream("/api/runs/%d/events?ticket=%s" % (rid, tk))
    t.check("the stream answers 200 text/event-stream, not cached",
            s.status == 200 and s.headers.get("content-type", "").startswith("text/event-stream")
            and s.headers.get("cache-control") == "no-store", (s.status, s.headers))
    evs = s.events()
    s.close()
    names = [e[0] for e in evs]
    prog = [e for e in evs if e[0] == "progress"]
    t.check("progress events come while the run goes on, then one 'end' event, then the "
            "stream ends", len(prog) >= 3 and names[-1] == "end" and names.count("end") == 1
            and s.ended, names[:5] + ["..."] + names[-3:])
    gaps = [b2[2] - a2[2] for a2, b2 in zip(evs, evs[1:])]
    t.check("at least one event a second while running (longest gap %.2fs)" %
            (max(gaps) if gaps else -1), gaps and max(gaps) < 1.6, gaps)
    keys = {"run_id", "state", "done", "total", "failed", "rate", "eta_s"}
    t.check("each event has run_id, state, done, total, failed, rate, eta_s",
            all(keys <= set(e[1]) for e in evs), evs[:1])
    dones = [e[1]["done"] for e in evs]
    t.check("done grows (%d -> %d) and total is the collection's %d" % (dones[0], dones[-1], N),
            dones == sorted(dones) and prog and prog[0][1]["total"] == N and dones[-1] == N,
            dones)
    last = evs[-1][1]
    r = run_get(rid, rex)
    t.check("the final event is the run's end: state done, counts as GET /api/runs/{id}",
            last["state"] == "done" and r.get("state") == "done" and
            last["done"] == r.get("done") and last["failed"] == r.get("failed"), (last, r))
    running = [e for e in prog if e[1]["state"] == "running" and e[1]["done"] < N]
    t.check("while running: a rate and an ETA", running and running[-1][1]["rate"] > 0 and
            running[-1][1]["eta_s"] is not None, running[-1:] if running else evs[:2])
    s = Stream("/api/runs/%d/events?ticket=%s" % (rid, tk))
    t.check("a ticket is single-use: the second stream with it is 401", s.status == 401,
            s.status)
    s.close()
    st, b, _ = srv.call("POST", "/api/runs/%d/events/ticket" % rid, token=rex)
    tk2 = b["data"]["ticket"]
    rid2 = start_run(ana, values=["10.99.0.1"])
    wait_done(rid2, ana)
    s = Stream("/api/runs/%d/events?ticket=%s" % (rid2, tk2))
    t.check("a ticket for another run: 403", s.status == 403, s.status)
    s.close()
    s = Stream("/api/runs/%d/events" % rid2, token=rex)
    evs = s.events(limit_s=10)
    s.close()
    t.check("a run already over: the bearer header works too, one 'end' event at once",
            s.status == 200 and [e[0] for e in evs] == ["end"] and s.ended, (s.status, evs))
    log = srv.log_text()
    t.check("no ticket and no token in the server's log", tk not in log and tk2 not in log and
            rex not in log)

    # ---- 100 streams opened and dropped -----------------------------------------------------
    rid3 = start_run(ana)
    opened, refused, streams = 0, 0, []
    for i in range(100):
        try:
            s = Stream("/api/runs/%d/events" % rid3, token=rex, timeout=10)
        except OSError:
            continue
        if s.status == 200:
            opened += 1
            s.events(until_end=False, limit_s=5)
        elif s.status == 503:
            refused += 1
        streams.append(s)
    t.check("100 streams at once: up to the cap served (%d), the rest 503 (%d)" %
            (opened, refused), opened >= 16 and opened + refused == 100, (opened, refused))
    g = metric("tqhost_event_streams")
    t.check("the gauge counts the open streams (%s)" % g, g == opened, g)
    for s in streams:  # dropped without reading on: the server finds out on its next write
        s.sock.shutdown(socket.SHUT_RDWR)
        s.close()
    freed = wait_for(lambda: metric("tqhost_event_streams") == 0, timeout=10, step=0.2)
    t.check("dropped streams are all freed within seconds (gauge back to 0)", freed,
            metric("tqhost_event_streams"))
    st, b, _ = srv.call("GET", "/api/runs/%d" % rid3, token=rex)
    t.check("the server answers as before", st == 200, st)
    srv.call("POST", "/api/runs/%d/cancel" % rid3, token=ana)
    wait_done(rid3, ana)

    # ---- retry of the failed items ------------------------------------------------------
    sim.terminate()
    sim.wait()
    rid4 = start_run(ana, values=["10.77.0.%d" % i for i in range(1, 6)])
    r4 = wait_done(rid4, ana) and run_get(rid4, ana)
    t.check("a run with the provider down ends with failed items",
            r4 and r4.get("failed", 0) == 5, r4)
    st, b, _ = srv.call("POST", "/api/runs/%d/retry" % rid4, token=rex)
    t.check("retry failed by a read-only user: 403", st == 403, (st, b))
    st, b, _ = srv.call("POST", "/api/runs/%d/retry" % rid, token=ana)
    t.check("retry of a run without failed items: 409 saying so", st == 409 and
            "failed" in json.dumps(b), (st, b))
    sim, port = start_sim("--hit-ratio", "1", "--port", str(port))
    st, b, _ = srv.call("POST", "/api/runs/%d/retry" % rid4, token=ana)
    rid5 = b["data"]["id"] if st == 202 else None
    t.check("retry failed: 202 with a new run", st == 202 and rid5 and rid5 != rid4, (st, b))
    r5 = rid5 and wait_done(rid5, ana) and run_get(rid5, ana)
    t.check("the retry ran the 5 failed items again, all found now, retry_of the first run",
            r5 and r5.get("total") == 5 and r5.get("failed") == 0 and
            r5.get("retry_of") == rid4, r5)

    # ---- feed presets -------------------------------------------------------------------
    st, b, _ = srv.call("GET", "/api/feeds/presets", token=rex)
    names = [p.get("name") for p in (b or {}).get("data", [])] if st == 200 else []
    t.check("GET /api/feeds/presets lists the presets with their collection and description",
            st == 200 and "rst-high" in names and
            all(p.get("collection") and p.get("description") for p in b["data"]), (st, b))

    # ---- OAuth clients ------------------------------------------------------------------
    st, b, _ = srv.call("POST", "/api/clients", body={"name": "siem", "role": "read-only"},
                        token=ana)
    t.check("creating a client as an analyst: 403", st == 403, (st, b))
    st, b, _ = srv.call("POST", "/api/clients", body={"name": "", "role": "read-only"},
                        token=ada)
    t.check("an empty client name: 400 naming name", st == 400 and
            "name" in (b or {}).get("data", {}).get("errors", {}), (st, b))
    st, b, _ = srv.call("POST", "/api/clients", body={"name": "siem2", "role": "boss"}, token=ada)
    t.check("a role that does not exist: 400 naming role", st == 400 and
            "role" in (b or {}).get("data", {}).get("errors", {}), (st, b))
    st, b, _ = srv.call("POST", "/api/clients", body={"name": "siem", "role": "read-only"},
                        token=ada)
    d = (b or {}).get("data", {}) if st == 201 else {}
    t.check("an admin creates a client: 201 with its client_id and secret (shown once)",
            d.get("client_id") and d.get("client_secret") and d.get("name") == "siem", (st, b))
    cid, sec = d.get("client_id"), d.get("client_secret")
    import base64
    basic = base64.b64encode(("%s:%s" % (cid, sec)).encode()).decode()
    st, b, _ = srv.call("POST", "/api/token", raw=b"grant_type=client_credentials",
                        headers={"Authorization": "Basic " + basic,
                                 "Content-Type": "application/x-www-form-urlencoded"})
    t.check("the client logs in with client_credentials", st == 200 and
            b.get("access_token"), (st, b))
    st, b, _ = srv.call("GET", "/api/clients", token=ada)
    lst = b.get("data", []) if st == 200 else []
    t.check("GET /api/clients lists it with its role, never the secret",
            any(c.get("name") == "siem" and c.get("role") == "read-only" for c in lst) and
            sec not in json.dumps(b), (st, b))
    t.check("the clients list holds clients only", lst and
            all(c.get("kind") == "client" for c in lst), lst)
    siem = [c for c in lst if c.get("name") == "siem"]
    st, b, _ = srv.call("DELETE", "/api/clients/%d" % siem[0]["id"], token=ada) if siem else (0,
                                                                                             0, 0)
    t.check("DELETE /api/clients/{id}: 204", st == 204, (st, b))
    st, b, _ = srv.call("GET", "/api/clients", token=ada)
    t.check("... and it is gone", st == 200 and not any(c.get("name") == "siem"
                                                       for c in b["data"]), b)
    uid = [u for u in srv.call("GET", "/api/users", token=ada)[1]["data"]
           if u["name"] == "rex"][0]["id"]
    st, b, _ = srv.call("DELETE", "/api/clients/%d" % uid, token=ada)
    t.check("DELETE /api/clients/{id} of a person: 404 (not a client)", st == 404, (st, b))

    # ---- disabling a user -----------------------------------------------------------------
    st, b, _ = srv.call("PUT", "/api/users/%d" % uid, body={"disabled": "yes"}, token=ada)
    t.check("disabled must be a boolean: 400 naming it", st == 400 and
            "disabled" in b.get("data", {}).get("errors", {}), (st, b))
    st, b, _ = srv.call("PUT", "/api/users/%d" % uid, body={"disabled": True}, token=ada)
    t.check("an admin disables rex: 200, disabled true", st == 200 and
            b["data"].get("disabled") is True, (st, b))
    st, b, _ = srv.call("GET", "/api/runs", token=rex)
    t.check("rex's token no longer works (401)", st == 401, st)
    st, b, _ = srv.call("POST", "/api/token?grant_type=password",
                        body={"username": "rex", "password": Server.PASSWORD})
    t.check("rex cannot log in while disabled", st in (400, 401), (st, b))
    st, b, _ = srv.call("PUT", "/api/users/%d" % uid, body={"disabled": False}, token=ada)
    t.check("enabled again: rex logs in", st == 200 and srv.login("rex"), (st, b))

    # ---- plugins: broken manifests, passwords never sent back ---------------------------------
    rex = srv.login("rex")
    st, b, _ = srv.call("GET", "/api/plugins", token=rex)
    broken = (b or {}).get("broken", []) if st == 200 else []
    ev = [x for x in broken if x.get("name") == "evil"]
    import re
    t.check("GET /api/plugins lists a broken manifest with its file:line:col error",
            ev and re.match(r"evil/manifest\.yaml:\d+:\d+: ", ev[0]["error"]), broken)
    t.check("... without the plugins folder's absolute path", ev and
            plugins not in json.dumps(broken), broken)
    rst = [p for p in b.get("data", []) if p["name"] == "rst-ioc-lookup"]
    key = [f for f in (rst[0]["config"] if rst else []) if f["type"] == "password"]
    t.check("a set password field comes back as the mask, never the value",
            key and key[0]["value"] == "********" and "ui-key-123" not in json.dumps(b), key)

    # ---- SIGTERM with a stream open -------------------------------------------------------
    rid6 = start_run(ana)
    s = Stream("/api/runs/%d/events" % rid6, token=srv.login("rex"))
    s.events(until_end=False, limit_s=5)
    t0 = time.monotonic()
    rc = srv.stop(timeout=40)
    took = time.monotonic() - t0
    evs = s.events(limit_s=5)
    t.check("SIGTERM with a stream open: exit 0 in %.1fs, the stream got its end" % took,
            rc == 0 and took < 10 and evs and evs[-1][0] == "end", (rc, took, evs[-2:]))
    s.close()
    srv = None
finally:
    if srv:
        srv.stop()
    if sim:
        sim.terminate()
        sim.wait()
    if t.failed == 0:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print("work dir kept:", work)
t.done()

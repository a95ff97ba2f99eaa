#!/usr/bin/env python3
"""persist_test.py: what a restart of `tqhost serve` must not lose (ctest integration.persist).

The failed-login brake: a user locked by 5 wrong passwords is still locked after the server
is killed (SIGKILL, a crash) and starts again on the same library (429 with Retry-After, refused before any password
check), while another user logs in; after the delay ($TQHOST_LOGIN_DELAY) the right password
works and clears the count (the next lock is the first one's length again, also across a
restart). An operation run kept for apply: run through the API (rstsim behind the RST IoC
Lookup), server restarted, apply writes exactly the run's changes, once; another user's run id,
an expired run, an unknown one are refused as before. The library's tables stay bounded.

Usage: persist_test.py TQHOST RSTSIM SOURCE_DIR
"""
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tqapi import Server, Tally  # noqa: E402

TQ, SIM, SRC = (os.path.abspath(a) for a in sys.argv[1:4])
KEY = "sim-secret-51c0aa7e"
PW = Server.PASSWORD
DELAY = 4
t = Tally()
work = tempfile.mkdtemp(prefix="tq_persist.")
procs = []


def metric(srv, outcome):
    st, text, _ = srv.call("GET", "/metrics")
    m = re.search(r'tqhost_logins_total\{grant="password",outcome="%s"\} (\S+)' % outcome,
                  text if isinstance(text, str) else "")
    return float(m.group(1)) if m else 0.0


def attempt(srv, name, pw="wrong-password-x"):
    return srv.call("POST", "/api/token?grant_type=password",
                    body={"username": name, "password": pw})


def retry_after(h):
    try:
        return int(h.get("retry-after", "0"))
    except ValueError:
        return 0


def db_rows(path, sql, *args):
    c = sqlite3.connect(path)
    try:
        return c.execute(sql, args).fetchall()
    finally:
        c.close()


def start(env_extra=None):
    env = {"TQHOST_LOGIN_DELAY": str(DELAY), "TQHOST_PLUGINS": pdir, "TQHOST_TICK_S": "0"}
    env.update(env_extra or {})
    s = Server(TQ, work, env=env)
    procs.append(s)
    return s


def start_sim(*args):
    p = subprocess.Popen([SIM, "--port", "0"] + list(args), stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)
    procs.append(p)
    line = p.stdout.readline().decode()
    m = re.match(r"rstsim listening on 127\.0\.0\.1:(\d+)", line)
    if not m:
        raise RuntimeError("rstsim did not start: " + line)
    return "http://127.0.0.1:%s/v1" % m.group(1)


pdir = os.path.join(work, "plugins")
os.makedirs(pdir)
shutil.copytree(os.path.join(SRC, "plugins", "rst-ioc-lookup"), os.path.join(pdir, "rst-ioc-lookup"))
os.symlink(os.path.join(SRC, "plugins", "lib"), os.path.join(pdir, "lib"))

try:
    # ---- the failed-login brake across a restart ------------------------------------------
    srv = start()
    srv.add_user("ana", "analyst")
    srv.add_user("bob", "analyst")
    srv.add_user("root", "admin")
    sts = [attempt(srv, "ana")[0] for _ in range(5)]
    t.check("5 wrong passwords: 401 each", sts == [401] * 5, sts)
    st, b, h = attempt(srv, "ana", PW)
    t.check("then the right password: 429 with Retry-After", st == 429 and retry_after(h) >= 1,
            (st, b, h))
    srv.kill9()  # a crash: no shutdown to save anything
    rows = db_rows(srv.db, "SELECT key, until_ms > 0 FROM login_brake")
    t.check("the library keeps the lock of the user and the address's count",
            ("u:ana", 1) in rows and any(k.startswith("a:") for k, _ in rows), rows)

    srv = start()
    failed0, locked0 = metric(srv, "failed"), metric(srv, "locked")
    t0 = time.monotonic()
    st, b, h = attempt(srv, "ana", PW)
    ra = retry_after(h)
    t.check("after a restart the same user is still refused: 429, Retry-After 1..%d" % DELAY,
            st == 429 and 1 <= ra <= DELAY and b.get("error") == "too_many_requests",
            (st, b, h))
    st2, _, h2 = attempt(srv, "ana", "another-wrong-one")
    t.check("a wrong password after the restart: 429 too", st2 == 429 and retry_after(h2) >= 1,
            (st2, h2))
    t.check("refused before any password check (locked +2, failed +0 in /metrics)",
            metric(srv, "locked") - locked0 == 2 and metric(srv, "failed") == failed0,
            (metric(srv, "locked"), locked0, metric(srv, "failed"), failed0))
    st, b, _ = attempt(srv, "bob", PW)
    t.check("another user logs in meanwhile", st == 200 and "access_token" in b, (st, b))
    time.sleep(max(0.0, ra - (time.monotonic() - t0)) + 0.5)
    st, b, _ = attempt(srv, "ana", PW)
    t.check("after the delay the right password works", st == 200 and "access_token" in b,
            (st, b))
    t.check("server stops: exit 0", srv.stop() == 0)
    rows = db_rows(srv.db, "SELECT key FROM login_brake WHERE key='u:ana'")
    t.check("the success cleared the user's count in the library", rows == [], rows)

    # The count is cleared, not only the lock: the next lock is the first's length again
    # (a kept level would double it), across one more restart.
    srv = start()
    sts = [attempt(srv, "ana")[0] for _ in range(5)]
    st, b, h = attempt(srv, "ana", PW)
    t.check("5 new failures lock again for the first delay (%ds), not a doubled one" % DELAY,
            sts == [401] * 5 and st == 429 and 1 <= retry_after(h) <= DELAY, (sts, st, h))
    t.check("server stops: exit 0", srv.stop() == 0)

    # Hostile: rows for many names (a spray) stay bounded; a row the wall clock puts far
    # in the future does not lock past the longest delay (an hour).
    now_ms = int(time.time() * 1000)
    c = sqlite3.connect(srv.db)
    c.execute("DELETE FROM login_brake")
    c.executemany("INSERT INTO login_brake VALUES(?,?,?,?,?,?)",
                  [("u:spray%d" % i, 3, 0, now_ms, now_ms - i, 0) for i in range(1100)])
    c.execute("INSERT INTO login_brake VALUES('u:bob',0,9,?,?,?)",
              (now_ms, now_ms, now_ms + 10 * 86400 * 1000))
    c.execute("INSERT INTO login_brake VALUES('u:gone',4,0,?,?,0)",
              (now_ms - 3600 * 1000, now_ms - 3600 * 1000))
    c.commit()
    c.close()
    srv = start()
    st, b, h = attempt(srv, "bob", PW)
    t.check("a lock the library puts 10 days ahead: 429, Retry-After at most an hour",
            st == 429 and 3000 <= retry_after(h) <= 3600, (st, h))
    n = db_rows(srv.db, "SELECT count(*) FROM login_brake")[0][0]
    gone = db_rows(srv.db, "SELECT count(*) FROM login_brake WHERE key='u:gone'")[0][0]
    t.check("1102 rows at start: at most 1024 kept, the expired one removed (%d)" % n,
            n <= 1024 and gone == 0, (n, gone))
    t.check("server stops: exit 0", srv.stop() == 0)
    c = sqlite3.connect(srv.db)
    c.execute("DELETE FROM login_brake")
    c.commit()
    c.close()

    # ---- an operation run kept for apply across a restart --------------------------------
    hit = start_sim("--hit-ratio", "1", "--api-key", KEY)
    RUN = "/api/plugins/rst-ioc-lookup/operations/lookup"
    APPLY = RUN + "/apply"
    srv = start()
    srv.add_user("cleo", "analyst")
    ADMIN, ANA, CLEO = srv.login("root"), srv.login("ana"), srv.login("cleo")
    st, b, _ = srv.call("PUT", "/api/plugins/rst-ioc-lookup/config",
                        {"api_key": KEY, "base_url": hit, "update_score": True}, token=ADMIN)
    t.check("config as admin: 200", st == 200, (st, b))
    rc, out, _ = srv.cli("--json", "indicator", "add", "45.83.122.166")
    iid = json.loads(out)["id"]
    st, b, _ = srv.call("POST", RUN, {"object_id": iid}, token=ANA, timeout=60)
    d = (b or {}).get("data", {})
    run_id, ch = d.get("run_id", ""), d.get("changes", {})
    t.check("a run on an indicator: 200, not applied, with attributes and a score",
            st == 200 and d.get("applied") is False and ch.get("attributes") and
            ch.get("score") is not None, (st, b))
    st, b, _ = srv.call("POST", RUN, {"value": "malware-cdn.example.net", "type": "FQDN"},
                        token=ANA, timeout=60)
    vrun = (b or {}).get("data", {})
    t.check("a run by value (not in the library): 200", st == 200 and vrun.get("run_id"), (st, b))
    st, b, _ = srv.call("POST", RUN, {"value": "45.83.122.170"}, token=CLEO, timeout=60)
    cleo_run = (b or {}).get("data", {}).get("run_id", "")
    st, b, _ = srv.call("POST", RUN, {"value": "45.83.122.171"}, token=ANA, timeout=60)
    old_run = (b or {}).get("data", {}).get("run_id", "")
    t.check("two more runs: 200", cleo_run and old_run, b)
    t.check("server stops: exit 0", srv.stop() == 0)
    rc, out, _ = srv.cli("--json", "indicator", "get", "45.83.122.166")
    got = json.loads(out)
    t.check("nothing written before apply", not got["attributes"] and
            got["manual_score"] is None, got)
    # one run past its hour (as the clock would make it)
    c = sqlite3.connect(srv.db)
    c.execute("UPDATE op_runs SET made_ms = made_ms - 3601000 WHERE id=?", (old_run,))
    c.commit()
    c.close()

    srv = start()
    ANA, CLEO, ROB = srv.login("ana"), srv.login("cleo"), None
    st, b, _ = srv.call("POST", APPLY, {"run_id": cleo_run}, token=ANA)
    t.check("another user's run after the restart: 404 as before, nothing written",
            st == 404 and "not found" in json.dumps(b), (st, b))
    st, b, _ = srv.call("POST", APPLY, {"run_id": run_id}, token=CLEO)
    t.check("ana's run applied by cleo: 404", st == 404, (st, b))
    st, b, _ = srv.call("POST", APPLY, {"run_id": old_run}, token=ANA)
    t.check("a run past its hour: 404 'runs are kept 60 minutes'",
            st == 404 and "kept 60 minutes" in json.dumps(b), (st, b))
    st, b, _ = srv.call("POST", APPLY, {"run_id": "0" * 32}, token=ANA)
    t.check("an unknown run: 404", st == 404, (st, b))
    st, b, _ = srv.call("POST", "/api/plugins/rst-ioc-lookup/operations/nope/apply",
                        {"run_id": run_id}, token=ANA)
    t.check("through another operation's path: 404", st == 404, (st, b))
    rc, out, _ = srv.cli("--json", "indicator", "get", "45.83.122.166")
    t.check("still nothing written", not json.loads(out)["attributes"], out[:300])

    st, b, _ = srv.call("POST", APPLY, {"run_id": run_id}, token=ANA)
    d = (b or {}).get("data", {})
    t.check("after the restart, apply of the run: 200 applied, the same changes",
            st == 200 and d.get("applied") is True and d.get("changes") == ch and
            d.get("run_id") == run_id and d.get("object", {}).get("id") == iid, (st, b))
    rc, out, _ = srv.cli("--json", "indicator", "get", "45.83.122.166")
    got = json.loads(out)
    want = sorted((a["name"], a["value"]) for a in ch.get("attributes", []))
    have = sorted((a["name"], a["value"]) for a in got["attributes"])
    t.check("apply wrote exactly the run's attributes", want and have == want,
            (want[:4], have[:4]))
    t.check("and its score", got["manual_score"] == ch.get("score"), got["manual_score"])
    st, b, _ = srv.call("POST", APPLY, {"run_id": run_id}, token=ANA)
    t.check("apply twice: 409", st == 409, (st, b))
    st, b, _ = srv.call("POST", APPLY, {"run_id": vrun["run_id"]}, token=ANA)
    d = (b or {}).get("data", {})
    t.check("the run by value, applied after the restart: the object made",
            st == 200 and d.get("applied") is True and isinstance(d["object"].get("id"), int),
            (st, b))
    rc, out, _ = srv.cli("--json", "indicator", "get", "malware-cdn.example.net")
    got = json.loads(out) if rc == 0 else {}
    want = sorted((a["name"], a["value"]) for a in vrun["changes"]["attributes"])
    have = sorted((a["name"], a["value"]) for a in got.get("attributes", []))
    t.check("with exactly its attributes", rc == 0 and have == want, (want[:4], have[:4]))
    st, b, _ = srv.call("GET", "/api/audit?what=operation.apply", token=srv.login("root"))
    t.check("two operation.apply audit rows", st == 200 and b.get("total") == 2, b)
    t.check("server stops: exit 0", srv.stop() == 0)
    srv = start()
    st, b, _ = srv.call("POST", APPLY, {"run_id": run_id}, token=srv.login("ana"))
    t.check("applied stays applied across a restart: 409", st == 409, (st, b))
    t.check("server stops: exit 0", srv.stop() == 0)

    # Hostile: the table stays bounded; a tampered row is refused, not applied, no 500.
    c = sqlite3.connect(srv.db)
    now_ms = int(time.time() * 1000)
    uid = c.execute("SELECT id FROM users WHERE name='ana'").fetchone()[0]
    body = c.execute("SELECT body FROM op_runs WHERE id=?", (cleo_run,)).fetchone()[0]
    c.executemany("INSERT INTO op_runs(id,user_id,plugin,op,label,made_ms,applied,body)"
                  " VALUES(?,?,?,?,?,?,0,?)",
                  [("%032x" % (i + 1), uid, "rst-ioc-lookup", "lookup", "RST IoC Lookup",
                    now_ms, body) for i in range(1030)])
    bad = json.loads(body)
    bad["changes"]["attributes"] = [{"name": 5, "value": None}]
    c.execute("UPDATE op_runs SET body=? WHERE id=?", (json.dumps(bad), "%032x" % 1030))
    huge = json.loads(body)
    huge["object"]["id"] = 1e300
    c.execute("UPDATE op_runs SET body=? WHERE id=?", (json.dumps(huge), "%032x" % 1029))
    c.commit()
    c.close()
    srv = start()
    ANA = srv.login("ana")
    st, b, _ = srv.call("POST", APPLY, {"run_id": "%032x" % 1030}, token=ANA)
    t.check("a tampered kept run: 422 'nothing written'",
            st == 422 and "nothing written" in json.dumps(b), (st, b))
    st, b, _ = srv.call("POST", APPLY, {"run_id": "%032x" % 1029}, token=ANA)
    t.check("a kept run whose object id is 1e300: 422, no cast", st == 422, (st, b))
    st, b, _ = srv.call("POST", RUN, {"value": "45.83.122.172"}, token=ANA, timeout=60)
    n = db_rows(srv.db, "SELECT count(*) FROM op_runs")[0][0]
    t.check("1030 rows and one more run: 1024 kept (%d)" % n, st == 200 and n == 1024, (st, n))
    st, b, _ = srv.call("POST", APPLY, {"run_id": "%032x" % 2}, token=ANA)
    t.check("the oldest went first: 404", st == 404, (st, b))
    # a user deleted takes their kept runs along (a user made later may get the same id)
    CLEO, ADMIN = srv.login("cleo"), srv.login("root")
    st, b, _ = srv.call("POST", RUN, {"value": "45.83.122.173"}, token=CLEO, timeout=60)
    cid = db_rows(srv.db, "SELECT id FROM users WHERE name='cleo'")[0][0]
    n1 = db_rows(srv.db, "SELECT count(*) FROM op_runs WHERE user_id=?", cid)[0][0]
    st2, _, _ = srv.call("DELETE", "/api/users/%d" % cid, token=ADMIN)
    n2 = db_rows(srv.db, "SELECT count(*) FROM op_runs WHERE user_id=?", cid)[0][0]
    t.check("deleting a user drops their kept runs (%d, then %d)" % (n1, n2),
            st == 200 and st2 == 204 and n1 >= 1 and n2 == 0, (st, st2, n1, n2))
    t.check("server stops: exit 0", srv.stop() == 0)
finally:
    for p in procs:
        try:
            if isinstance(p, Server):
                if p.proc.poll() is None:
                    p.kill9()
            elif p.poll() is None:
                p.kill()
                p.wait()
        except Exception:  # noqa: BLE001
            pass
    shutil.rmtree(work, ignore_errors=True)
t.done()

#!/usr/bin/env python3
"""dryrun_test.py: dry runs (issue 12: "dry runs work on values not in the library and show
failure reasons"), by the CLI (`tqhost op run NAME VALUE` without --apply) and by the API
(`POST /api/plugins/{name}/operations/{op}` with a value and no "apply"): on values that are
not in the library, a hit shows what it found, and an API that fails (500, 429 after the
retries, a stall, down) gives its reason: exit 1 and the reason on stderr and in --json, or a
502/504 naming it; nothing is ever written and the key is never shown.

Usage: dryrun_test.py TQHOST RSTSIM SOURCE_DIR
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tqapi import Server, Tally  # noqa: E402

TQ, SIM, SRC = (os.path.abspath(a) for a in sys.argv[1:4])
KEY = "dry-key-5c7e1a93b2"
t = Tally()
work = tempfile.mkdtemp(prefix="tq_dryrun.")
sims = []
seen = []


def start_sim(*args):
    p = subprocess.Popen([SIM, "--port", "0"] + list(args), stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)
    sims.append(p)
    line = p.stdout.readline().decode()
    m = re.match(r"rstsim listening on 127\.0\.0\.1:(\d+)", line)
    if not m:
        raise RuntimeError("rstsim did not start: " + line)
    return "http://127.0.0.1:%s/v1" % m.group(1)


# The RST IoC Lookup with a 3 s timeout and one retry, so that the fault cases are quick.
pdir = os.path.join(work, "plugins")
shutil.copytree(os.path.join(SRC, "plugins", "rst-ioc-lookup"), os.path.join(pdir, "rst-ioc-lookup"))
os.symlink(os.path.join(SRC, "plugins", "lib"), os.path.join(pdir, "lib"))
man = os.path.join(pdir, "rst-ioc-lookup", "manifest.yaml")
text = open(man).read().replace("timeout: 30s", "timeout: 3s").replace("max: 4 }", "max: 1 }")
open(man, "w").write(text)
host = os.path.join(work, "host.yaml")
open(host, "w").write("limits:\n  timeout: 120s\n")

srv = Server(TQ, work, env={"TQHOST_PLUGINS": pdir, "TQHOST_LOG": "info", "TQHOST_CONFIG": host})
srv.add_user("root", "admin")
srv.add_user("ana", "analyst")
ADMIN, ANA = srv.login("root"), srv.login("ana")
RUN = "/api/plugins/rst-ioc-lookup/operations/lookup"


def call(method, path, body=None, token=ANA):
    st, b, _ = srv.call(method, path, body=body, token=token, timeout=60)
    seen.append(json.dumps(b) if not isinstance(b, str) else b)
    return st, b


def cli(*argv):
    rc, out, err = srv.cli(*argv, check=False)
    seen.append(out + err)
    return rc, out, err


def configure(url):
    st, b = call("PUT", "/api/plugins/rst-ioc-lookup/config",
                 {"api_key": KEY, "base_url": url}, token=ADMIN)
    assert st == 200, (st, b)


def not_in_library(value):
    rc, _, _ = cli("indicator", "get", value)
    return rc == 1


try:
    # ---- a hit and a miss on values not in the library ------------------------------------------
    configure(start_sim("--hit-ratio", "1", "--api-key", KEY))
    for value, itype in (("198.51.100.23", "IP Address"), ("dry-run-c2.example.org", "FQDN"),
                         ("https://dry-run.example.net/a?b=1", "URL")):
        rc, out, err = cli("op", "run", "rst-ioc-lookup", value)
        t.check("cli: %s hit: exit 0, what it found, nothing written" % itype,
                rc == 0 and re.search(r"found +true", out)
                and re.search(r"^dry run: [1-9][0-9]* attributes.* not written \(use --apply\)$",
                              out, re.M), (rc, out, err))
        rc, out, _ = cli("--json", "op", "run", "rst-ioc-lookup", value)
        d = json.loads(out) if rc == 0 else {}
        t.check("cli --json: %s: ok, no id, applied false, the changes listed" % itype,
                d.get("status") == "ok" and d.get("object", {}).get("id") is None
                and d.get("applied") is False and d.get("changes", {}).get("attributes"), d)
        st, b = call("POST", RUN, {"value": value})
        data = b.get("data", {}) if isinstance(b, dict) else {}
        t.check("api: %s hit: 200 ok, not applied" % itype,
                st == 200 and data.get("status") == "ok" and data.get("changes", {}).get("attributes")
                and not data.get("applied"), (st, b))
        t.check("%s: still not in the library" % itype, not_in_library(value))
    configure(start_sim("--hit-ratio", "0", "--api-key", KEY))
    rc, out, err = cli("op", "run", "rst-ioc-lookup", "192.0.2.77")
    t.check("cli: a miss: exit 0, shows not found, writes nothing",
            rc == 0 and re.search(r"found +false", out) and "dry run: 0 attributes" in out, (rc, out))

    # ---- failing APIs: the reason, exit 1 / 502 / 504, nothing written ---------------------------
    faults = (("500", ["--fault-500", "1"], r"HTTP 500", 502),
              ("429 after the retry", ["--fault-429", "1", "--retry-after", "0"], r"429", 502),
              ("a stall", ["--fault-stall", "1", "--stall-ms", "60000"], r"time(d )?out|timeout", 504),
              ("a truncated answer", ["--fault-truncate", "1"], r"JSON|json|truncated", 502),
              ("a wrong key", ["--api-key", "another-key-1234"], r"403|rejected|Forbidden|key", 502))
    for name, opts, reason, want_st in faults:
        configure(start_sim("--hit-ratio", "1", *([] if "--api-key" in opts else ["--api-key", KEY]), *opts))
        value = "198.51.100.%d" % (100 + faults.index((name, opts, reason, want_st)))
        rc, out, err = cli("op", "run", "rst-ioc-lookup", value)
        t.check("cli: %s: exit 1, the reason on stderr" % name,
                rc == 1 and re.search(r"tqhost op run: rst-ioc-lookup (failed|killed): .*(%s)" % reason,
                                      err),
                (rc, out, err))
        rc, out, err = cli("--json", "op", "run", "rst-ioc-lookup", value)
        d = json.loads(out) if out.strip() else {}
        e = json.loads(err.strip().splitlines()[-1]) if err.strip() else {}
        t.check("cli --json: %s: status failed (or killed) with the message, an error line on stderr" % name,
                rc == 1 and d.get("status") in ("failed", "killed")  # a stall: killed at the timeout
                and re.search(reason, d.get("message", ""))
                and e.get("error", {}).get("code") in ("failed", "killed"), (rc, out, err))
        st, b = call("POST", RUN, {"value": value})
        t.check("api: %s: %d naming the reason" % (name, want_st),
                st == want_st and re.search(reason, json.dumps(b)), (st, b))
        t.check("%s: nothing written" % name, not_in_library(value))
    configure("http://127.0.0.1:9/v1")
    rc, out, err = cli("op", "run", "rst-ioc-lookup", "198.51.100.99")
    t.check("cli: API down: exit 1, says unreachable and refused",
            rc == 1 and re.search(r"unreachable: .*refused", err), (rc, err))
    st, b = call("POST", RUN, {"value": "198.51.100.99"})
    t.check("api: API down: 502 saying refused", st == 502 and "refused" in json.dumps(b), (st, b))
    t.check("API down: nothing written", not_in_library("198.51.100.99"))
    t.check("the key never appeared in any answer or output",
            not any(KEY in s or KEY[::-1] in s for s in seen))
    t.check("the key is not in the server's log", KEY not in srv.log_text())
finally:
    srv.stop() if hasattr(srv, "stop") else srv.proc.terminate()
    for p in sims:
        p.terminate()
    shutil.rmtree(work, ignore_errors=True)
t.done()

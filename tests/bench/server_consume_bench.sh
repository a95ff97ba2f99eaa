#!/usr/bin/env bash
# server_consume_bench.sh: the service's bulk upsert against the CLI's import of the same rows,
# in the same run: N indicators (default 100,000; CONSUME_BENCH_N) with a source and an
# attribute each, through POST /api/indicators/consume in batches of 1,000 (TLS keep-alive
# connections at once (CONSUME_BENCH_CONNS, default 2: the engine writes one batch while the
# next is received and parsed), bodies made before the clock starts) into one library, and `tqhost indicator
# import` of the same rows as CSV into another, in alternating rounds (CONSUME_BENCH_ROUNDS,
# default 3; fresh libraries each round). Prints the best rate of each and their ratio
# (aim >= 0.6).
# Usage: server_consume_bench.sh BUILD_DIR
set -eu
BUILD=$(realpath "$1")
TQHOST=$BUILD/tqhost
N=${CONSUME_BENCH_N:-100000}
BATCH=${CONSUME_BENCH_BATCH:-1000}
CONNS=${CONSUME_BENCH_CONNS:-2}   # client connections posting batches at once
ROUNDS=${CONSUME_BENCH_ROUNDS:-3} # each figure is the best of this many rounds
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

/usr/bin/python3 - "$TQHOST" "$WORK" "$N" "$BATCH" "$HERE/../integration" "$CONNS" "$ROUNDS" <<'PY'
import json, os, subprocess, sys, threading, time
tqhost, work, n, batch, integ = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
conns = int(sys.argv[6])
rounds = int(sys.argv[7])
sys.path.insert(0, integ)
from tqapi import Server

def value(i):
    return "10.%d.%d.%d" % (i >> 16 & 255, i >> 8 & 255, i & 255)

# the same rows for both
csv = os.path.join(work, "rows.csv")
with open(csv, "w") as f:
    f.write("value,type,source,Confidence\n")
    for i in range(n):
        f.write("%s,IP Address,Bench,%d\n" % (value(i), i % 100))
bodies = []
for s in range(0, n, batch):
    bodies.append(json.dumps([{"value": value(i), "type": "IP Address",
                               "sources": [{"name": "Bench"}],
                               "attributes": [{"name": "Confidence", "value": str(i % 100)}]}
                              for i in range(s, min(n, s + batch))]).encode())

def run_import(k):
    env = dict(os.environ, TQHOST_DB=os.path.join(work, "import%d.db" % k))
    env.pop("TQHOST_NOW", None)
    subprocess.run([tqhost, "init"], env=env, check=True, capture_output=True)
    t0 = time.monotonic()
    p = subprocess.run([tqhost, "--json", "indicator", "import", csv], env=env,
                       capture_output=True)
    t = time.monotonic() - t0
    if p.returncode != 0:
        sys.exit("import failed: " + p.stderr.decode()[-500:])
    st = json.loads(p.stdout)
    assert st.get("added") == n, st
    return t


def run_consume(k):
    sdir = os.path.join(work, "srv%d" % k)
    os.mkdir(sdir)
    srv = Server(tqhost, sdir, args=["--max-body", str(64 << 20)])
    try:
        srv.add_user("bench", "analyst")
        tok = srv.login("bench")
        hdr = {"Content-Type": "application/json", "Authorization": "Bearer " + tok}
        added, errors, lock = [0], [], threading.Lock()

        def client(part):
            conn = srv.connection(timeout=600)
            for body in part:
                conn.request("POST", "/api/indicators/consume", body=body, headers=hdr)
                r = conn.getresponse()
                payload = r.read()
                if r.status != 200:
                    errors.append("consume: %d %s" % (r.status, payload[:300]))
                    return
                k = sum(1 for o in json.loads(payload)["data"] if o["created"])
                with lock:
                    added[0] += k
            conn.close()

        t0 = time.monotonic()
        threads = [threading.Thread(target=client, args=(bodies[c::conns],))
                   for c in range(conns)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        t = time.monotonic() - t0
        if errors:
            sys.exit(errors[0])
        assert added[0] == n, added
    finally:
        srv.stop()
    rc, out, _ = srv.cli("--json", "indicator", "list", "--source", "Bench", "--limit", "0")
    assert len(json.loads(out)) == n
    return t


# rounds alternate the two (the machine may be shared: each figure is the best of its rounds)
t_imports, t_consumes = [], []
for k in range(rounds):
    t_imports.append(run_import(k))
    t_consumes.append(run_consume(k))
    print("round %d: import %.2f s, consume %.2f s" % (k + 1, t_imports[-1], t_consumes[-1]))
t_import, t_consume = min(t_imports), min(t_consumes)
r_import, r_consume = n / t_import, n / t_consume
print("rows: %d (each with a source and an attribute); consume batches of %d over %d "
      "connection(s); best of %d rounds" % (n, batch, conns, rounds))
print("tqhost indicator import:        %8.0f indicators/s (%.2f s)" % (r_import, t_import))
print("POST /api/indicators/consume:   %8.0f indicators/s (%.2f s)" % (r_consume, t_consume))
print("ratio consume/import: %.2f (aim >= 0.6)" % (r_consume / r_import))
PY

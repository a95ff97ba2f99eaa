#!/usr/bin/env bash
# server_op_bench.sh: an operation (rst-ioc-lookup, dry run) through the warm server: p50 and
# p99 over N calls (default 500) on one keep-alive TLS connection, against `tqhost op run` as a
# process (M runs, default 50) in the same run, rstsim at zero latency for both. Every call
# uses a distinct value so that the response cache never answers (each does the HTTP round
# trip to rstsim); the plugin is a copy whose rate limit is raised so that the token bucket
# (10/s in the manifest) does not set the pace. Prints both and the ratio (aims: server p50
# <= 2 ms, >= 10x faster than the process). Usage: server_op_bench.sh BUILD_DIR [N] [M].
# A figure, not a timed test.
set -u
BUILD=$(cd "${1:?usage: server_op_bench.sh BUILD_DIR [calls] [process runs]}" && pwd)
N=${2:-500}
M=${3:-50}
TQ=$BUILD/tqhost
SIM=$BUILD/tests/sim/rstsim
SRC=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d)
SIMPID=
trap '[[ -n $SIMPID ]] && kill $SIMPID 2>/dev/null; rm -rf "$WORK"' EXIT
"$SIM" --port 0 --hit-ratio 1 --latency-ms 0 --threads 2 >"$WORK/sim" 2>/dev/null &
SIMPID=$!
for _ in $(seq 1 100); do grep -q listening "$WORK/sim" && break; sleep 0.05; done
PORT=$(sed -n 's/^rstsim listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$WORK/sim")
[[ -n $PORT ]] || { echo "rstsim did not start"; exit 1; }
mkdir -p "$WORK/plugins"
cp -r "$SRC/plugins/rst-ioc-lookup" "$WORK/plugins/"
ln -s "$SRC/plugins/lib" "$WORK/plugins/lib"
sed -i 's/rate_limit: { requests: 10, per: 1s }/rate_limit: { requests: 100000, per: 1s }/' \
  "$WORK/plugins/rst-ioc-lookup/manifest.yaml"
export TQHOST_DB="$WORK/lib.db" TQHOST_PLUGINS="$WORK/plugins" TQHOST_LOG=warn
"$TQ" init >/dev/null
"$TQ" plugin configure rst-ioc-lookup api_key=bench-key "base_url=http://127.0.0.1:$PORT/v1" >/dev/null

# The process: M runs of `tqhost op run` (distinct values, 45.84.x.y).
times=()
for i in $(seq 1 "$M"); do
  v="45.84.$((i / 200)).$((i % 200 + 1))"
  t0=$(date +%s%N)
  "$TQ" op run rst-ioc-lookup "$v" >/dev/null 2>&1 || { echo "op run $i failed"; exit 1; }
  t1=$(date +%s%N)
  times+=($(((t1 - t0) / 1000)))
done
printf '%s\n' "${times[@]}" >"$WORK/proc_us"

# The server: N calls on one connection (distinct values, 45.85.x.y), after 20 to warm up.
PYTHONPATH="$SRC/tests/integration" python3 - "$TQ" "$WORK" "$N" "$WORK/proc_us" <<'PY'
import sys, time, statistics
from tqapi import Server
tq, work, n, proc_file = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
srv = Server(tq, work)
srv.add_user("bench", "analyst")
tok = srv.login("bench")
conn = srv.connection(30)
path = "/api/plugins/rst-ioc-lookup/operations/lookup"
def one(i, base):
    v = "45.%d.%d.%d" % (base, i // 200, i % 200 + 1)
    t0 = time.perf_counter()
    st, b, _ = srv.call("POST", path, body={"value": v}, token=tok, conn=conn)
    dt = time.perf_counter() - t0
    if st != 200 or b["data"]["status"] != "ok":
        raise SystemExit("call %d: %d %s" % (i, st, b))
    return dt
for i in range(20):
    one(i, 86)
lat = sorted(one(i, 85) for i in range(n))
conn.close()
srv.stop()
p50 = lat[len(lat) // 2] * 1000
p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
proc = sorted(int(x) / 1000 for x in open(proc_file).read().split())
pp50 = proc[len(proc) // 2]
pp99 = proc[min(len(proc) - 1, int(len(proc) * 0.99))]
print("server  POST %s over one keep-alive TLS connection: p50 %.2f ms, p99 %.2f ms (%d calls)"
      % (path, p50, p99, n))
print("process tqhost op run rst-ioc-lookup VALUE:           p50 %.2f ms, p99 %.2f ms (%d runs)"
      % (pp50, pp99, len(proc)))
print("ratio process/server at p50: %.1fx (aims: server p50 <= 2 ms: %s; >= 10x: %s)"
      % (pp50 / p50, "met" if p50 <= 2 else "MISSED", "met" if pp50 / p50 >= 10 else "MISSED"))
PY

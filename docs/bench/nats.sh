#!/usr/bin/env bash
# Runs issue 13's benchmarks once: executor/natsexec (docs/bench/natsbench:
# an embedded nats-server, memory store, 2 local worker processes), the
# local executor.ProcessPool (2 workers) for reference, and their Python
# twin, Dask distributed's client.submit on a LocalCluster of 2 worker
# processes over TCP (docs/bench/peers/dask_exec.py, Debian's
# python3-distributed, installed if missing). The workloads (each program's
# doc defines them exactly):
#   calls_1024  trivial calls with 1,024 in flight (calls/s)
#   roundtrip   one trivial call at a time (µs/call)
#   arg_2mib    2 MiB arguments, 8 in flight (MB/s)
# Prints the JSON lines, then a markdown table with issue 13's targets, for
# the section "## Issue 13: natsexec" of docs/bench/README.md (pasted by
# hand). Not part of CI.
#
#   bash docs/bench/nats.sh
#   OUT=/tmp/nats bash docs/bench/nats.sh   # keep the raw output there
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
PY=/usr/bin/python3
export PATH="$PATH:/usr/local/go/bin"

if ! "$PY" -c 'import distributed' 2>/dev/null; then
	echo "nats.sh: installing python3-distributed" >&2
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-distributed >&2
fi

out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
go build -o "$out/natsbench" ./docs/bench/natsbench
"$out/natsbench" | tee "$out/go.jsonl"
"$PY" "$here/peers/dask_exec.py" 2>"$out/dask.log" | tee "$out/dask.jsonl"

"$PY" - "$out/go.jsonl" "$out/dask.jsonl" <<'PYEOF'
import json, sys
rows = {}
for path in sys.argv[1:]:
    for line in open(path):
        r = json.loads(line)
        rows[(r["impl"], r["name"])] = r
def v(impl, name):
    return rows[(impl, name)]["value"]
def fmt(x):
    if x >= 1e4: return f"{x/1e3:.1f} k"
    if x >= 100: return f"{x:.0f}"
    return f"{x:.3g}"
print()
print("| workload | unit | natsexec | Dask | ProcessPool | natsexec vs Dask | natsexec vs ProcessPool | target | met? |")
print("|---|---|---:|---:|---:|---:|---:|---|---|")
spec = [
    ("calls_1024", "trivial calls, 1,024 in flight", "calls/s", True, ">= 20x Dask", lambda n, d, p: n / d >= 20),
    ("roundtrip", "one trivial call's round trip", "µs/call", False, "<= 0.1x Dask and <= 20x ProcessPool", lambda n, d, p: n <= 0.1 * d and n <= 20 * p),
    ("arg_2mib", "2 MiB arguments, 8 in flight", "MB/s", True, ">= 5x Dask", lambda n, d, p: n / d >= 5),
]
for name, desc, unit, higher, target, ok in spec:
    n, d, p = v("natsexec", name), v("dask", name), v("processpool", name)
    vs_d = n / d if higher else d / n
    vs_p = n / p if higher else p / n
    met = "yes" if ok(n, d, p) else "**no**"
    print(f"| {desc} | {unit} | {fmt(n)} | {fmt(d)} | {fmt(p)} | {vs_d:.2f}x | {vs_p:.2f}x | {target} | {met} |")
print()
print("(ratios: higher is better for natsexec; for the round trip, the other's time over natsexec's)")
PYEOF

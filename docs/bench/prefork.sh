#!/usr/bin/env bash
# Runs the benchmarks of issue 12 (servers over many processes):
# docs/bench/loadgen in reactor mode (examples/reactor's wire format)
# against
#   pool            examples/reactor: one loop and a ProcessPool of WORKERS
#   prefork         examples/prefork: WORKERS worker processes, a loop each,
#                   on the master's shared socket (-max-requests 0)
#   handoff         docs/bench/handoffsrv: one acceptor loop hands each
#                   connection to one of WORKERS worker processes (SCM_RIGHTS),
#                   each serving it on a loop of its own
#   python-prefork  docs/bench/peers/prefork_server.py: WORKERS asyncio
#                   processes sharing one socket through multiprocessing
#   python-prefork-uvloop  the same on uvloop
# with the workloads
#   cpu1ms   1 KiB messages, a job of 1 ms of CPU time
#   triv1k   1 KiB messages, the trivial job (the SHA-256 digest)
# each server started fresh per workload, REPEAT rounds (medians). Then
# recycling: examples/prefork -demo, 100,000 messages from its own client
# (which resends a message whose connection a retiring worker closed
# before answering, as loadgen does not), workers recycled every RECYCLE
# messages: its failures and msgs/s. Then the Go
# benchmarks of aio/prefork (BenchmarkReload: a worker replaced) and of the
# hand-off, if built (BenchmarkHandoff*). It replaces the section
# "## Issue 12: servers over many processes" of docs/bench/README.md. Not part
# of CI.
#
#   bash docs/bench/prefork.sh
#   DURATION=2 REPEAT=1 bash docs/bench/prefork.sh   # a quick check
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
PY=/usr/bin/python3
export PATH="$PATH:/usr/local/go/bin"

DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
REPEAT=${REPEAT:-3}
WORKERS=${WORKERS:-2}
export CONNS=${CONNS:-16}
INFLIGHT=${INFLIGHT:-8}
RECYCLE=${RECYCLE:-2000}
ALL_SERVERS="pool prefork handoff python-prefork python-prefork-uvloop"
SERVERS=${SERVERS:-$ALL_SERVERS}
WORKLOADS=${WORKLOADS:-cpu1ms triv1k}
README=${README:-$here/README.md}

if ! "$PY" -c 'import uvloop' 2>/dev/null; then
	echo "prefork.sh: installing python3-uvloop" >&2
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-uvloop >&2
fi

out=$(mktemp -d)
bin=$out/bin
mkdir -p "$bin"
spid=
cleanup() {
	if [ -n "$spid" ]; then
		kill -KILL -- "-$spid" 2>/dev/null || true
	fi
	rm -rf "$out"
}
trap cleanup EXIT

echo "prefork.sh: building in $bin" >&2
go build -o "$bin/loadgen" ./docs/bench/loadgen
go build -o "$bin/reactor" ./examples/reactor
go build -o "$bin/prefork" ./examples/prefork
go build -o "$bin/handoffsrv" ./docs/bench/handoffsrv

server_cmd() { # server_cmd NAME ADDR CPU_SECONDS: sets cmd
	case $1 in
	pool) cmd=("$bin/reactor" -addr "$2" -workers "$WORKERS" -cpu "${3}s") ;;
	prefork) cmd=("$bin/prefork" -addr "$2" -workers "$WORKERS" -max-requests 0 -cpu "${3}s") ;;
	handoff) cmd=("$bin/handoffsrv" -addr "$2" -workers "$WORKERS" -cpu "${3}s") ;;
	python-prefork) cmd=("$PY" "$here/peers/prefork_server.py" --addr "$2" --workers "$WORKERS" --cpu "$3") ;;
	python-prefork-uvloop) cmd=("$PY" "$here/peers/prefork_server.py" --uvloop --addr "$2" --workers "$WORKERS" --cpu "$3") ;;
	*)
		echo "prefork.sh: unknown server $1 (known: $ALL_SERVERS)" >&2
		exit 2
		;;
	esac
}

free_port() {
	"$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_server() { # start_server NAME CPU LOG: sets addr and spid
	local port
	port=$(free_port)
	addr=127.0.0.1:$port
	server_cmd "$1" "$addr" "$2"
	setsid "${cmd[@]}" >"$3" 2>&1 &
	spid=$!
	for _ in $(seq 300); do
		if ! kill -0 "$spid" 2>/dev/null; then
			wait "$spid" 2>/dev/null || true
			spid=
			return 1
		fi
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			sleep 0.5
			return 0
		fi
		sleep 0.1
	done
	stop_server
	return 1
}

stop_server() {
	[ -n "$spid" ] || return 0
	kill -TERM "$spid" 2>/dev/null || true
	for _ in $(seq 100); do
		kill -0 "$spid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL -- "-$spid" 2>/dev/null || true
	wait "$spid" 2>/dev/null || true
	spid=
}

for round in $(seq "$REPEAT"); do
	for s in $SERVERS; do
		for w in $WORKLOADS; do
			run=$s.$w.r$round
			cpu=0
			[ "$w" = cpu1ms ] && cpu=0.001
			if ! start_server "$s" "$cpu" "$out/$run.log"; then
				echo "prefork.sh: $s did not start; its log:" >&2
				tail -5 "$out/$run.log" >&2
				continue
			fi
			echo "prefork.sh: round $round/$REPEAT: $s $w" >&2
			"$bin/loadgen" -mode reactor -check -label "$s" -d "${DURATION}s" -warmup "${WARMUP}s" \
				-conns "$CONNS" -inflight "$INFLIGHT" -size 1KiB -addr "$addr" -json "$out/$run.json" >&2 || true
			stop_server
		done
	done
done

echo "prefork.sh: recycling: examples/prefork -demo, 100,000 messages, recycled every $RECYCLE" >&2
"$bin/prefork" -demo -workers "$WORKERS" -max-requests "$RECYCLE" -requests 100000 -conns "$CONNS" >"$out/recycle.txt" 2>&1 || true
cat "$out/recycle.txt" >&2

echo "prefork.sh: go test -bench of aio/prefork and aio's hand-off" >&2
go test -run '^$' -bench 'Reload|Handoff' -benchmem -count 3 ./aio/prefork/ ./aio/ >"$out/gobench.txt" 2>&1 || true
cat "$out/gobench.txt" >&2

"$PY" - "$out" "$README" "$SERVERS" "$WORKLOADS" \
	"date $(date -u '+%Y-%m-%d %H:%M UTC'); commit $(git rev-parse --short HEAD); nproc $(nproc); $(go version | cut -d' ' -f3); python $("$PY" -c 'import sys; print(sys.version.split()[0])'); $WORKERS workers; $CONNS connections x $INFLIGHT in flight, 1 KiB messages; ${DURATION} s after ${WARMUP} s warmup; median of $REPEAT rounds" <<'PYEOF'
import glob, json, os, re, statistics, sys
out, readme, servers, workloads, info = sys.argv[1:6]
servers, workloads = servers.split(), workloads.split()
rows = {}
for s in servers:
    for w in workloads:
        runs = []
        for f in sorted(glob.glob(os.path.join(out, f"{s}.{w}.r*.json"))):
            try:
                runs.append(json.load(open(f)))
            except (OSError, ValueError):
                pass
        if runs:
            runs.sort(key=lambda r: r["req_per_s"])
            rows[(s, w)] = (runs[len(runs) // 2], [r["req_per_s"] for r in runs])
def k(v):
    return f"{v / 1e3:.2f} k" if v >= 1000 else f"{v:.0f}"
lines = ["## Issue 12: servers over many processes", "",
         "Generated by `bash docs/bench/prefork.sh` (not part of CI). " + info + ".", "",
         "| server | workload | msgs/s | p50 ms | p99 ms | errors | vs python-prefork | vs 2 cores (cpu1ms) | runs |",
         "|---|---|---:|---:|---:|---:|---:|---:|---|"]
for w in workloads:
    base = rows.get(("python-prefork", w))
    for s in servers:
        if (s, w) not in rows:
            lines.append(f"| {s} | {w} | (did not run) | | | | | | |")
            continue
        r, all_ = rows[(s, w)]
        lat = r.get("latency_us") or {}
        errs = r.get("reply_errors", 0) + r.get("wrong_digests", 0) + r.get("failed_conns", 0)
        vs = f"{r['req_per_s'] / base[0]['req_per_s']:.2f}x" if base and base[0]["req_per_s"] else ""
        cores = f"{r['req_per_s'] / 2000:.2f}x" if w == "cpu1ms" else ""
        lines.append(f"| {s} | {w} | {k(r['req_per_s'])} | {lat.get('p50', 0) / 1e3:.2f} | {lat.get('p99', 0) / 1e3:.2f} | {errs} | {vs} | {cores} | {', '.join(k(v) for v in all_)} |")
lines.append("")
rec = open(os.path.join(out, "recycle.txt")).read()
m1 = re.search(r"(\d+) answered, (\d+) failed", rec)
m2 = re.search(r"(\d+) recycles, (\d+) messages sent again, (\d+) messages/s", rec)
if m1 and m2:
    lines += [f"Recycling (examples/prefork -demo, trivial job, 1 KiB): 100,000 messages over {os.environ.get('CONNS', '16')} connections, {m2.group(1)} recycles: {m1.group(1)} answered, **{m1.group(2)} failed**, {m2.group(2)} sent again on a new connection, {int(m2.group(3)) / 1e3:.1f} k msgs/s.", ""]
bench = open(os.path.join(out, "gobench.txt")).read()
res = {}
for m in re.finditer(r"^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+([\d.]+) ns/op(?:\s+([\d.]+) B/op\s+([\d.]+) allocs/op)?", bench, re.M):
    res.setdefault(m.group(1), []).append((float(m.group(2)), m.group(4)))
if res:
    lines += ["| Go benchmark | median | allocs/op |", "|---|---:|---:|"]
    for name, v in res.items():
        v.sort()
        ns, allocs = v[len(v) // 2]
        t = f"{ns / 1e6:.2f} ms" if ns >= 1e6 else f"{ns / 1e3:.1f} µs"
        lines.append(f"| {name} | {t} | {allocs or ''} |")
    lines.append("")
lines += ["- pool is one loop and a ProcessPool (the reactor); prefork runs the job on each worker's own loop; handoff is one acceptor loop handing each connection to a worker process with its own loop; the Python twin is the seed's model, asyncio workers sharing one socket via multiprocessing. A 1 ms job is 1 ms of the worker thread's CPU time in every server, so two workers can do at most 2,000 msgs/s, and they share the two cores with the load generator.",
          "- BenchmarkReload is the time from Reload to the replacement serving and the old worker gone, for one worker. BenchmarkHandoff* (aio) hand one TCP connection and 64 bytes of prefix to another process, which adopts it as a transport on its loop, and wait for its acknowledgement; BenchmarkHandoffRawFloor is the same with raw sendmsg/recvmsg and a 1-byte answer: the target is 1.5x it.", ""]
section = "\n".join(lines) + "\n"
text = open(readme).read()
pat = re.compile(r"^## Issue 12:.*?\n.*?(?=^## |\Z)", re.S | re.M)
if pat.search(text):
    text = pat.sub(lambda _: section, text)
else:
    at = text.find("\n## Targets")
    text = text[:at + 1] + section + "\n" + text[at + 1:] if at >= 0 else text + "\n" + section
open(readme, "w").write(text)
print(section)
PYEOF

#!/usr/bin/env bash
# Runs the aio benchmarks of issue 11: asyncgo's package aio
# (docs/bench/aiobench, built once and run as `aiobench -workload=NAME`, one
# process per workload, what `go run ./docs/bench/aiobench -workload=NAME`
# does) and its Python twins (docs/bench/peers/aioproc.py: plain
# multiprocessing, aioprocessing on asyncio, and the raw floors), in REPEAT
# rounds, the Go side first in each. The workloads:
#   queue_small          small items parent -> child -> parent, 500 in flight (items/s)
#   queue_2mib           2 MiB items the same way, 8 in flight (MB/s, items/s)
#   raw_socketpair_2mib  the floor under queue_2mib: a raw socketpair (MB/s, items/s)
#   event_roundtrip      Event ping-pong between two processes (µs/roundtrip)
#   lock_roundtrip       Lock ping-pong (µs/roundtrip)
#   queue_roundtrip      Queue round trip, one item in flight (µs/roundtrip)
#   pipe_roundtrip       the floor under the round trips: 1 byte over pipes (µs/roundtrip)
#   pool_map             Pool(2).map of x*x over range(100000), chunksize 100 (items/s)
# (peers/aioproc.py's docstring defines each one exactly). Every run prints
# JSON lines, {"impl": ..., "name": WORKLOAD, "metric": UNIT, "value": N};
# then docs/bench/aioreport.py takes the median of the rounds, writes JSON
# (the results, the medians and the facts of the run), prints the table of
# ratios (asyncgo vs multiprocessing, vs aioprocessing, vs the raw floor,
# against issue 11's targets) and replaces the section "## Issue 11: aio:
# processes, queues and pools" of docs/bench/README.md. Not part of CI: run it
# by hand on a quiet machine and commit what it wrote.
#
#   bash docs/bench/aio.sh                               # everything, 3 rounds
#   REPEAT=1 bash docs/bench/aio.sh                      # a quick check
#   WORKLOADS='queue_small pool_map' IMPLS=multiprocessing bash docs/bench/aio.sh
#   GO=0 README= JSON=/tmp/aio.json bash docs/bench/aio.sh  # Python only, README untouched
#   OUT=/tmp/aio bash docs/bench/aio.sh                  # keep the raw output in /tmp/aio
#   PIN=0 bash docs/bench/aio.sh                         # every process under taskset -c 0
#
# On a small VM the round trips are bimodal: the kernel puts the two
# processes on one CPU (a pipe round trip of ~5 µs here) or on two (~50 µs,
# the cost of waking the other CPU), and can choose differently from one
# process to the next. REPEAT rounds and the median soften that; PIN=CPUS
# (taskset -c CPUS for every benchmark process, Go and Python) removes it,
# at the price of the throughput rows' parallelism when CPUS is one CPU.
# If docs/bench/aiobench does not exist (or does not build) the Go side is
# skipped and the report says so. Python is /usr/bin/python3 (Debian's), with
# Debian's python3-aioprocessing (installed if missing).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
PY=/usr/bin/python3
export PATH="$PATH:/usr/local/go/bin"

REPEAT=${REPEAT:-3}
ALL_WORKLOADS="queue_small queue_2mib raw_socketpair_2mib event_roundtrip lock_roundtrip queue_roundtrip pipe_roundtrip pool_map"
WORKLOADS=${WORKLOADS:-$ALL_WORKLOADS}
IMPLS=${IMPLS:-multiprocessing aioprocessing raw} # aioproc.py's impls
GO=${GO:-1}                                       # 0: skip the Go side
JSON=${JSON-$here/aio.json}
README=${README-$here/README.md} # empty: do not touch a README
PIN=${PIN:-}                     # a CPU list for taskset -c; empty: no pinning
pin=()
if [ -n "$PIN" ]; then
	pin=(taskset -c "$PIN")
fi

for w in $WORKLOADS; do
	if [[ " $ALL_WORKLOADS " != *" $w "* ]]; then
		echo "aio.sh: unknown workload $w (known: $ALL_WORKLOADS)" >&2
		exit 2
	fi
done

if ! "$PY" -c 'import aioprocessing' 2>/dev/null; then
	echo "aio.sh: installing python3-aioprocessing" >&2
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-aioprocessing >&2
fi

if [ -n "${OUT:-}" ]; then
	out=$OUT
	mkdir -p "$out"
	rm -f "$out"/*.jsonl "$out"/*.log
else
	out=$(mktemp -d)
	trap 'rm -rf "$out"' EXIT
fi

skipped=()
gobin=
if [ "$GO" = 0 ]; then
	skipped+=(--skipped "asyncgo=the Go side was not run (GO=0)")
elif [ ! -d "$here/aiobench" ]; then
	echo "aio.sh: docs/bench/aiobench does not exist yet; skipping the Go side" >&2
	skipped+=(--skipped "asyncgo=docs/bench/aiobench does not exist yet")
else
	mkdir -p "$out/bin"
	echo "aio.sh: go build ./docs/bench/aiobench" >&2
	if go build -o "$out/bin/aiobench" ./docs/bench/aiobench >"$out/build.log" 2>&1; then
		gobin=$out/bin/aiobench
	else
		echo "aio.sh: docs/bench/aiobench does not build; skipping the Go side:" >&2
		sed 's/^/    /' "$out/build.log" | head -5 >&2
		skipped+=(--skipped "asyncgo=docs/bench/aiobench does not build")
	fi
fi

failures=()
pyargs=()
for w in $WORKLOADS; do
	pyargs+=("--workload=$w")
done
for round in $(seq "$REPEAT"); do
	if [ -n "$gobin" ]; then
		for w in $WORKLOADS; do
			echo "aio.sh: round $round/$REPEAT: aiobench -workload=$w" >&2
			if ! "${pin[@]}" "$gobin" -workload="$w" 2>>"$out/go.log" | tee -a "$out/go.r$round.jsonl" >&2; then
				echo "aio.sh: aiobench -workload=$w failed (see below)" >&2
				tail -5 "$out/go.log" | sed 's/^/    /' >&2
				failures+=("asyncgo $w")
			fi
		done
	fi
	for impl in $IMPLS; do
		echo "aio.sh: round $round/$REPEAT: aioproc.py --impl=$impl" >&2
		if ! "${pin[@]}" "$PY" "$here/peers/aioproc.py" --impl="$impl" "${pyargs[@]}" | tee -a "$out/py.r$round.jsonl" >&2; then
			failures+=("python $impl")
		fi
	done
done

pinning=none
if [ -n "$PIN" ]; then
	pinning="taskset -c $PIN"
fi
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
report=("$PY" "$here/aioreport.py")
for f in "$out"/*.jsonl; do
	if [ -e "$f" ]; then
		report+=(--lines "$f")
	fi
done
if [ -n "$JSON" ]; then
	report+=(--json "$JSON")
fi
if [ -n "$README" ]; then
	report+=(--readme "$README")
fi
"${report[@]}" "${skipped[@]}" \
	--info "date=$(date -u '+%Y-%m-%d %H:%M UTC')" \
	--info "commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
	--info "CPU=$cpu" \
	--info "nproc=$(nproc)" \
	--info "kernel=$(uname -r)" \
	--info "go=$(go version 2>/dev/null | cut -d' ' -f3- || echo none)" \
	--info "python=$("$PY" -c 'import sys; print(sys.version.split()[0])')" \
	--info "aioprocessing=$("$PY" -c 'import aioprocessing; print(aioprocessing.__version__)') (Debian python3-aioprocessing)" \
	--info "start method=$("$PY" -c 'import multiprocessing as mp; print(mp.get_start_method())')" \
	--info "rounds=$REPEAT" \
	--info "pinning=$pinning"
if ((${#failures[@]})); then
	echo "aio.sh: failed: ${failures[*]}" >&2
	exit 1
fi

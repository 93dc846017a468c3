#!/usr/bin/env bash
# Runs the reactor benchmarks of issue 10: docs/bench/loadgen in reactor mode
# against asyncgo's reactor server (examples/reactor) and its Python twin
# (docs/bench/peers/reactor_server.py: asyncio + ProcessPoolExecutor, on
# CPython's loop and on uvloop's), each server in turn on 127.0.0.1, a fresh
# process and port per workload, in REPEAT rounds (the report takes each
# number's median run):
#   triv1k   1 KiB messages, the trivial job (the SHA-256 digest)
#   triv64k  64 KiB messages, the trivial job
#   triv2m   2 MiB messages, the trivial job
#   cpu1ms   1 KiB messages, a job that adds 1 ms of CPU time (-cpu 1ms)
# every server with WORKERS (2) worker processes. Then
# docs/bench/reactorreport.py replaces the section "## Issue 10: the reactor
# server" of docs/bench/README.md and draws docs/bench/reactor.png. Not part
# of CI: run it by hand on a quiet machine and commit what it wrote.
#
#   bash docs/bench/reactor.sh                          # everything, 3 rounds of 10 s
#   DURATION=1 REPEAT=1 bash docs/bench/reactor.sh      # a quick check
#   SERVERS=asyncgo WORKLOADS='triv1k cpu1ms' bash docs/bench/reactor.sh
#   OUT=/tmp/reactor bash docs/bench/reactor.sh         # keep the reports in /tmp/reactor
#
# The bytes asyncgo's server allocates per 2 MiB message come from
# examples/reactor's TestAllocsPer2MiBMessage (runtime.MemStats), run once
# after the rounds. A server that does not build, or that does not start
# listening, is skipped and named in the report. Python
# is /usr/bin/python3 (Debian's), with Debian's python3-uvloop and
# python3-matplotlib (installed if missing).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
PY=/usr/bin/python3
export PATH="$PATH:/usr/local/go/bin"

DURATION=${DURATION:-10} # seconds measured per workload
WARMUP=${WARMUP:-1}      # seconds of warmup before them
REPEAT=${REPEAT:-3}      # rounds, each running every server and workload; the report takes the median
WORKERS=${WORKERS:-2}    # worker processes of every server
SMALL_CONNS=${SMALL_CONNS:-16} # triv1k, triv64k, cpu1ms
BIG_CONNS=${BIG_CONNS:-4}      # triv2m
INFLIGHT=${INFLIGHT:-8}        # messages each connection keeps on the wire (triv1k, triv64k, cpu1ms)
BIG_INFLIGHT=${BIG_INFLIGHT:-2} # the same for triv2m
SERVER_INFLIGHT=${SERVER_INFLIGHT:-16} # the servers' per-connection bound (-inflight, --inflight)
QUEUE=${QUEUE:-256}                    # asyncgo's global bound (-queue)
ALL_SERVERS="asyncgo python-asyncio python-uvloop"
SERVERS=${SERVERS:-$ALL_SERVERS}
ALL_WORKLOADS="triv1k triv64k triv2m cpu1ms"
WORKLOADS=${WORKLOADS:-$ALL_WORKLOADS}
README=${README:-$here/README.md}
PNG=${PNG:-$here/reactor.png}

missing=()
"$PY" -c 'import uvloop' 2>/dev/null || missing+=(python3-uvloop)
"$PY" -c 'import matplotlib' 2>/dev/null || missing+=(python3-matplotlib)
if ((${#missing[@]})); then
	echo "reactor.sh: installing ${missing[*]}" >&2
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
fi

if [ -n "${OUT:-}" ]; then
	out=$OUT
	mkdir -p "$out"
	rm -f "$out"/*.json "$out"/*.txt "$out"/*.log
else
	out=$(mktemp -d)
fi
bin=$out/bin
mkdir -p "$bin"
spid=
cleanup() {
	if [ -n "$spid" ]; then
		kill -KILL -- "-$spid" 2>/dev/null || true
	fi
	if [ -z "${OUT:-}" ]; then
		rm -rf "$out"
	fi
}
trap cleanup EXIT

echo "reactor.sh: building loadgen and the reactor in $bin" >&2
go build -o "$bin/loadgen" ./docs/bench/loadgen
declare -A skip=()
for s in $SERVERS; do
	case $s in
	asyncgo)
		if ! go build -o "$bin/reactor" ./examples/reactor >"$out/build-asyncgo.log" 2>&1; then
			echo "reactor.sh: examples/reactor does not build; it is skipped:" >&2
			sed 's/^/    /' "$out/build-asyncgo.log" | head -5 >&2
			skip[$s]="examples/reactor does not build"
		fi
		;;
	python-asyncio | python-uvloop) ;;
	*)
		echo "reactor.sh: unknown server $s (known: $ALL_SERVERS)" >&2
		exit 2
		;;
	esac
done

server_cmd() { # server_cmd NAME ADDR CPU_SECONDS: sets cmd
	local py=("$PY" "$here/peers/reactor_server.py" --addr "$2" --workers "$WORKERS" --max-size 2097152 --inflight "$SERVER_INFLIGHT" --cpu "$3")
	case $1 in
	asyncgo) cmd=("$bin/reactor" -addr "$2" -workers "$WORKERS" -max-size 2097152 -inflight "$SERVER_INFLIGHT" -queue "$QUEUE" -cpu "${3}s") ;;
	python-asyncio) cmd=("${py[@]}") ;;
	python-uvloop) cmd=("${py[@]}" --uvloop) ;;
	esac
}

free_port() {
	"$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_server NAME CPU LOG: starts it in a process group of its own on a
# fresh port; sets addr and spid.
start_server() {
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

# stop_server: SIGTERM to the server (which drains and shuts its pool
# down), then, after 10 s, SIGKILL to its whole process group.
stop_server() {
	[ -n "$spid" ] || return 0
	kill -TERM "$spid" 2>/dev/null || true
	for _ in $(seq 100); do
		kill -0 "$spid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$spid" 2>/dev/null; then
		echo "reactor.sh: the server (pid $spid) did not exit 10 s after SIGTERM; killing its process group" >&2
	fi
	kill -KILL -- "-$spid" 2>/dev/null || true
	wait "$spid" 2>/dev/null || true
	spid=
}

failures=()
for round in $(seq "$REPEAT"); do
	for s in $SERVERS; do
		if [ -n "${skip[$s]:-}" ]; then
			continue
		fi
		for w in $WORKLOADS; do
			run=$s.$w.r$round
			lg=("$bin/loadgen" -mode reactor -check -label "$s" -d "${DURATION}s" -warmup "${WARMUP}s" -json "$out/$run.json")
			cpu=0
			case $w in
			triv1k) lg+=(-conns "$SMALL_CONNS" -inflight "$INFLIGHT" -size 1KiB) ;;
			triv64k) lg+=(-conns "$SMALL_CONNS" -inflight "$INFLIGHT" -size 64KiB) ;;
			triv2m) lg+=(-conns "$BIG_CONNS" -inflight "$BIG_INFLIGHT" -size 2MiB) ;;
			cpu1ms)
				lg+=(-conns "$SMALL_CONNS" -inflight "$INFLIGHT" -size 1KiB)
				cpu=0.001
				;;
			*)
				echo "reactor.sh: unknown workload $w (known: $ALL_WORKLOADS)" >&2
				exit 2
				;;
			esac
			if ! start_server "$s" "$cpu" "$out/$run.server.log"; then
				echo "reactor.sh: $s did not start listening; its log:" >&2
				sed 's/^/    /' "$out/$run.server.log" | tail -5 >&2
				skip[$s]="did not start listening"
				break
			fi
			echo "reactor.sh: round $round/$REPEAT: $s $w ($addr, pid $spid)" >&2
			if ! "${lg[@]}" -addr "$addr" | tee "$out/$run.txt" >&2; then
				echo "reactor.sh: $s $w: loadgen reported errors" >&2
				failures+=("$s $w")
			fi
			stop_server
		done
	done
done

if [[ " $SERVERS " == *" asyncgo "* ]] && [ -z "${skip[asyncgo]:-}" ]; then
	echo "reactor.sh: go test -run TestAllocsPer2MiBMessage ./examples/reactor" >&2
	go test -count=1 -run '^TestAllocsPer2MiBMessage$' -v ./examples/reactor >"$out/alloc.txt" 2>&1 ||
		echo "reactor.sh: TestAllocsPer2MiBMessage failed (see the report)" >&2
	grep 'allocated per' "$out/alloc.txt" >&2 || true
fi

args=()
for s in $SERVERS; do
	if [ -n "${skip[$s]:-}" ]; then
		args+=(--skipped "$s=${skip[$s]}")
	fi
done
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
"$PY" "$here/reactorreport.py" \
	--dir "$out" --readme "$README" --png "$PNG" --servers "$SERVERS" "${args[@]}" \
	--info "date=$(date -u '+%Y-%m-%d %H:%M UTC')" \
	--info "commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
	--info "CPU=$cpu" \
	--info "nproc=$(nproc)" \
	--info "kernel=$(uname -r)" \
	--info "go=$(go version | cut -d' ' -f3-)" \
	--info "python=$("$PY" -c 'import sys; print(sys.version.split()[0])')" \
	--info "uvloop=$("$PY" -c 'import uvloop; print(uvloop.__version__)')" \
	--settings "every server with $WORKERS worker processes and a bound of $SERVER_INFLIGHT messages per connection (asyncgo also -queue $QUEUE); triv1k, triv64k, cpu1ms: $SMALL_CONNS connections with $INFLIGHT messages in flight each; triv2m: $BIG_CONNS connections with $BIG_INFLIGHT in flight each; each ${DURATION} s measured after ${WARMUP} s of warmup, every reply's digest checked; $REPEAT round(s), the servers one after another in each, every number from a server's median run of its workload (by msgs/s; its latencies from that same run)."
if ((${#failures[@]})); then
	echo "reactor.sh: loadgen reported errors for: ${failures[*]}" >&2
	exit 1
fi

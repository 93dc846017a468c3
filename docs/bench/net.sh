#!/usr/bin/env bash
# Runs the network benchmarks of issue 9: docs/bench/loadgen against asyncgo's
# echo servers (examples/echo, on a Protocol and on streams) and their peers
# (CPython asyncio, uvloop streams and Protocol, plain Go, single-loop gnet),
# each server in turn on 127.0.0.1, a fresh process and port per workload,
# in REPEAT rounds (the report takes each number's median run):
#   echo64  64-byte echo over 50 connections, closed loop
#   echo2m  2 MiB echo over 4 connections, closed loop
#   idle    10,000 idle connections: the server's RSS per connection
# Then docs/bench/netreport.py replaces the section "## Issue 9: network I/O"
# of docs/bench/README.md and draws docs/bench/net.png. Not part of CI: run it
# by hand on a quiet machine and commit what it wrote.
#
#   bash docs/bench/net.sh                               # everything, 3 rounds, ~10 minutes
#   DURATION=3 REPEAT=1 IDLE_CONNS=2000 bash docs/bench/net.sh   # a quick check
#   SERVERS='plaingo gnet' WORKLOADS=echo64 bash docs/bench/net.sh
#   OUT=/tmp/net bash docs/bench/net.sh                  # keep the reports in /tmp/net
#
# A server whose binary does not build, or that does not start listening, is
# skipped and named in the report. Python is /usr/bin/python3 (Debian's), with
# Debian's python3-uvloop and python3-matplotlib (installed if missing).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
PY=/usr/bin/python3
export PATH="$PATH:/usr/local/go/bin"

DURATION=${DURATION:-10}       # seconds measured per echo workload
WARMUP=${WARMUP:-1}            # seconds of warmup before them
SMALL_CONNS=${SMALL_CONNS:-50} # echo64
BIG_CONNS=${BIG_CONNS:-4}      # echo2m
IDLE_CONNS=${IDLE_CONNS:-10000}
HOLD=${HOLD:-2} # seconds the idle connections are held before the RSS is read
REPEAT=${REPEAT:-3} # rounds, each running every server and workload; the report takes the median
ALL_SERVERS="asyncgo-protocol asyncgo-streams uvloop-protocol uvloop-streams asyncio-streams plaingo gnet"
SERVERS=${SERVERS:-$ALL_SERVERS}
WORKLOADS=${WORKLOADS:-echo64 echo2m idle}
README=${README:-$here/README.md}
PNG=${PNG:-$here/net.png}

missing=()
"$PY" -c 'import uvloop' 2>/dev/null || missing+=(python3-uvloop)
"$PY" -c 'import matplotlib' 2>/dev/null || missing+=(python3-matplotlib)
if ((${#missing[@]})); then
	echo "net.sh: installing ${missing[*]}" >&2
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
fi

# Every idle connection is an fd in loadgen and one in the server.
want=$((IDLE_CONNS + 1024))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$want" ]; then
	ulimit -n "$want" 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true
	if [ "$(ulimit -n)" -lt "$want" ]; then
		echo "net.sh: ulimit -n is $(ulimit -n), under the $want that $IDLE_CONNS idle connections need" >&2
	fi
fi

if [ -n "${OUT:-}" ]; then
	out=$OUT
	mkdir -p "$out"
	rm -f "$out"/*.json "$out"/*.txt
else
	out=$(mktemp -d)
fi
bin=$out/bin
mkdir -p "$bin"
spid=
cleanup() {
	if [ -n "$spid" ]; then
		kill -KILL "$spid" 2>/dev/null || true
	fi
	if [ -z "${OUT:-}" ]; then
		rm -rf "$out"
	fi
}
trap cleanup EXIT

echo "net.sh: building loadgen and the servers in $bin" >&2
go build -o "$bin/loadgen" ./docs/bench/loadgen
declare -A skip=()
build() { # build NAME COMMAND...: a failure skips the servers of NAME
	local name=$1
	shift
	if ! "$@" >"$out/build-$name.log" 2>&1; then
		echo "net.sh: $name does not build; its servers are skipped:" >&2
		sed 's/^/    /' "$out/build-$name.log" | head -5 >&2
		return 1
	fi
}
for s in $SERVERS; do
	case $s in
	asyncgo-*)
		if [ ! -e "$bin/asyncgo-echo" ] && [ -z "${skip[asyncgo]:-}" ]; then
			build asyncgo go build -o "$bin/asyncgo-echo" ./examples/echo || skip[asyncgo]="examples/echo does not build"
		fi
		[ -z "${skip[asyncgo]:-}" ] || skip[$s]=${skip[asyncgo]}
		;;
	plaingo) build plaingo go build -o "$bin/plaingo" ./docs/bench/peers/plaingo || skip[$s]="does not build" ;;
	gnet) build gnet bash -c "cd '$here/peers/gnet' && go build -o '$bin/gnet' ." || skip[$s]="does not build" ;;
	uvloop-* | asyncio-*) ;;
	*)
		echo "net.sh: unknown server $s (known: $ALL_SERVERS)" >&2
		exit 2
		;;
	esac
done

server_cmd() { # server_cmd NAME ADDR: sets cmd
	local py=("$PY" "$here/peers/echo_server.py")
	case $1 in
	asyncgo-protocol) cmd=("$bin/asyncgo-echo" -serve -addr "$2" -layer protocol) ;;
	asyncgo-streams) cmd=("$bin/asyncgo-echo" -serve -addr "$2" -layer streams) ;;
	uvloop-protocol) cmd=("${py[@]}" --loop uvloop --layer protocol --addr "$2") ;;
	uvloop-streams) cmd=("${py[@]}" --loop uvloop --layer streams --addr "$2") ;;
	asyncio-streams) cmd=("${py[@]}" --loop asyncio --layer streams --addr "$2") ;;
	asyncio-protocol) cmd=("${py[@]}" --loop asyncio --layer protocol --addr "$2") ;;
	plaingo) cmd=("$bin/plaingo" -addr "$2") ;;
	gnet) cmd=("$bin/gnet" -addr "$2") ;;
	esac
}

free_port() {
	"$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_server NAME LOG: starts it on a fresh port; sets addr and spid.
start_server() {
	local port
	port=$(free_port)
	addr=127.0.0.1:$port
	server_cmd "$1" "$addr"
	"${cmd[@]}" >"$2" 2>&1 &
	spid=$!
	for _ in $(seq 100); do
		if ! kill -0 "$spid" 2>/dev/null; then
			wait "$spid" 2>/dev/null || true
			spid=
			return 1
		fi
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			sleep 0.5 # let it settle before the RSS is read
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
	for _ in $(seq 50); do
		kill -0 "$spid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$spid" 2>/dev/null || true
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
			if ! start_server "$s" "$out/$run.server.log"; then
				echo "net.sh: $s did not start listening; its log:" >&2
				sed 's/^/    /' "$out/$run.server.log" | tail -5 >&2
				skip[$s]="did not start listening"
				break
			fi
			lg=("$bin/loadgen" -label "$s" -addr "$addr" -json "$out/$run.json")
			case $w in
			echo64) lg+=(-conns "$SMALL_CONNS" -size 64 -d "${DURATION}s" -warmup "${WARMUP}s") ;;
			echo2m) lg+=(-conns "$BIG_CONNS" -size 2MiB -d "${DURATION}s" -warmup "${WARMUP}s") ;;
			idle) lg+=(-mode idle -conns "$IDLE_CONNS" -size 64 -dial-concurrency 64 -pid "$spid" -hold "${HOLD}s") ;;
			*)
				echo "net.sh: unknown workload $w (known: echo64 echo2m idle)" >&2
				exit 2
				;;
			esac
			echo "net.sh: round $round/$REPEAT: $s $w ($addr, pid $spid)" >&2
			if ! "${lg[@]}" | tee "$out/$run.txt" >&2; then
				echo "net.sh: $s $w: loadgen reported errors" >&2
				failures+=("$s $w")
			fi
			stop_server
		done
	done
done

args=()
for s in $SERVERS; do
	if [ -n "${skip[$s]:-}" ]; then
		args+=(--skipped "$s=${skip[$s]}")
	fi
done
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
gnetv=$(awk '$1 == "require" && $2 ~ /gnet/ {print $3}' "$here/peers/gnet/go.mod")
"$PY" "$here/netreport.py" \
	--dir "$out" --readme "$README" --png "$PNG" --servers "$SERVERS" "${args[@]}" \
	--info "date=$(date -u '+%Y-%m-%d %H:%M UTC')" \
	--info "commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
	--info "CPU=$cpu" \
	--info "nproc=$(nproc)" \
	--info "kernel=$(uname -r)" \
	--info "go=$(go version | cut -d' ' -f3-)" \
	--info "python=$("$PY" -c 'import sys; print(sys.version.split()[0])')" \
	--info "uvloop=$("$PY" -c 'import uvloop; print(uvloop.__version__)')" \
	--info "gnet=${gnetv:-?}" \
	--settings "echo64: $SMALL_CONNS connections, 64 B messages; echo2m: $BIG_CONNS connections, 2 MiB messages; each ${DURATION} s measured after ${WARMUP} s of warmup; idle: $IDLE_CONNS connections held ${HOLD} s; $REPEAT round(s), the servers one after another in each, every number from a server's median run of its workload (its latencies from that same run)."
if ((${#failures[@]})); then
	echo "net.sh: loadgen reported errors for: ${failures[*]}" >&2
	exit 1
fi

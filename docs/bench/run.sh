#!/usr/bin/env bash
# Runs asyncgo's loop and executor benchmarks and their CPython asyncio and uvloop twins in
# one go, and writes docs/bench/README.md. Not part of CI: run it by hand on a
# quiet machine, then commit the README it writes.
#
#   bash docs/bench/run.sh                 # everything
#   BENCH='CallSoon|TaskSwitch' bash docs/bench/run.sh   # a subset of Go benchmarks
#
# Python always means /usr/bin/python3 (Debian's), with Debian's python3-uvloop.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
PY=/usr/bin/python3
export PATH="$PATH:/usr/local/go/bin"
BENCH=${BENCH:-.}
BENCHTIME=${BENCHTIME:-1s}
COUNT=${COUNT:-3} # the README takes the median of the runs of each benchmark

if ! "$PY" -c 'import uvloop' 2>/dev/null; then
	echo "run.sh: installing python3-uvloop" >&2
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-uvloop >&2
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# -p 1: one package's benchmarks at a time, never two test binaries at once.
echo "run.sh: go test -bench '$BENCH' ./loop/ ./executor/ ./executor/processpool/" >&2
go test -p 1 -run '^$' -bench "$BENCH" -benchtime "$BENCHTIME" -benchmem -count "$COUNT" ./loop/ ./executor/ ./executor/processpool/ | tee "$out/go.txt" >&2

for impl in asyncio uvloop; do
	echo "run.sh: peers.py --loop=$impl" >&2
	"$PY" "$here/peers/peers.py" --loop="$impl" | tee "$out/$impl.jsonl" >&2
	echo "run.sh: locks_queues.py --loop=$impl" >&2
	"$PY" "$here/peers/locks_queues.py" --loop="$impl" | tee -a "$out/$impl.jsonl" >&2
	echo "run.sh: executor.py --loop=$impl" >&2
	"$PY" "$here/peers/executor.py" --loop="$impl" | tee -a "$out/$impl.jsonl" >&2
done

# From issue 9 on, each issue's script owns its "## Issue N: ..." section
# (net.sh 9, reactor.sh 10, aio.sh 11, prefork.sh 12, ...): keep them
# across this rewrite (run that script again to refresh one).
"$PY" - "$here/README.md" "$out/net_section.md" <<'PYEOF'
import re, sys
try:
    text = open(sys.argv[1]).read()
except FileNotFoundError:
    text = ""
kept = ""
for m in re.finditer(r"^## Issue (\d+):.*?\n.*?(?=^## |\Z)", text, re.S | re.M):
    if int(m.group(1)) >= 9:
        kept += m.group(0)
open(sys.argv[2], "w").write(kept)
PYEOF

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
mem=$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)
"$PY" "$here/report.py" \
	--go "$out/go.txt" \
	--py asyncio="$out/asyncio.jsonl" \
	--py uvloop="$out/uvloop.jsonl" \
	--info "date=$(date -u '+%Y-%m-%d %H:%M UTC')" \
	--info "commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
	--info "CPU=$cpu" \
	--info "nproc=$(nproc)" \
	--info "memory=$mem" \
	--info "kernel=$(uname -r)" \
	--info "go=$(go version | cut -d' ' -f3-)" \
	--info "python=$("$PY" -c 'import sys; print(sys.version.split()[0])') ($PY)" \
	--info "uvloop=$("$PY" -c 'import uvloop; print(uvloop.__version__)') (Debian python3-uvloop)" \
	--info "go test flags=-bench '$BENCH' -benchtime $BENCHTIME -count $COUNT -benchmem (median of the $COUNT runs)" \
	>"$out/README.md"
"$PY" - "$out/README.md" "$out/net_section.md" "$here/README.md" <<'PYEOF'
import sys
text, net = open(sys.argv[1]).read(), open(sys.argv[2]).read()
if net:
    at = text.find("\n## Targets")
    text = text[:at + 1] + net + text[at + 1:] if at >= 0 else text + "\n" + net
open(sys.argv[3], "w").write(text)
PYEOF
echo "run.sh: wrote $here/README.md" >&2

#!/usr/bin/python3
"""Tabulate the aio benchmarks of issue 11 (docs/bench/aio.sh): asyncgo's
package aio (docs/bench/aiobench) against Python's multiprocessing and
aioprocessing (docs/bench/peers/aioproc.py) and the raw floors.

Reads JSON lines, one result each, in the format of the Python peers:

  {"impl": "asyncgo", "name": "queue_small", "metric": "items/s", "value": 512000.0}

(impl one of asyncgo, go-raw, multiprocessing, aioprocessing, raw; "unit",
if present, is a synonym of "metric"; other keys are ignored; lines that do
not start with "{" are skipped), from --lines files (or from the "results"
of a JSON file written earlier, --from). Of several results for the same
impl, workload and metric (several rounds) it takes the median. It writes
--json (the results, their medians and the --info facts), prints the
markdown table of ratios to stdout, and with --readme replaces the section
under the heading "## Issue 11: aio: processes, queues and pools" of that
file (adding it before "## Targets", or at the end), leaving the rest as it
was.

  aioreport.py --lines go.jsonl --lines py.jsonl --json docs/bench/aio.json \\
      [--readme docs/bench/README.md] --info "date=..." --skipped "asyncgo=why"
  aioreport.py --from docs/bench/aio.json [--readme docs/bench/README.md]
"""

import argparse
import json
import os
import statistics
import sys

# The formatting and section helpers of the other reports, shared.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netreport  # noqa: E402
import report  # noqa: E402
from netreport import fmt_ratio, ratio  # noqa: E402

HEADING = "## Issue 11: aio: processes, queues and pools"

ASYNCGO, GORAW, MP, AIOP, RAW = "asyncgo", "go-raw", "multiprocessing", "aioprocessing", "raw"
IMPLS = [ASYNCGO, GORAW, MP, AIOP, RAW]

# The rows: workload, metric, label, higher is better?, floor workload
# (its metric the same), targets. A target is (kind, factor): "mp" asyncgo
# at least factor x multiprocessing (throughput), "floor_min" asyncgo's
# value at least factor x the floor's (throughput), "floor_max" at most
# factor x the floor's (time).
ROWS = [
    ("queue_small", "items/s", "Queue of small items (ints) parent -> child -> parent, 500 in flight", True, None, [("mp", 3.0)]),
    ("queue_2mib", "MB/s", "Queue of 2 MiB items parent -> child -> parent, 8 in flight (floor: raw socketpair)", True, "raw_socketpair_2mib", [("mp", 1.0), ("floor_min", 0.5)]),
    ("event_roundtrip", "µs/roundtrip", "Event ping-pong between two processes (floor: 1-byte pipe ping-pong)", False, "pipe_roundtrip", [("floor_max", 1.5)]),
    ("lock_roundtrip", "µs/roundtrip", "Lock ping-pong: two locks as binary semaphores (floor: pipe ping-pong)", False, "pipe_roundtrip", [("floor_max", 1.5)]),
    ("queue_roundtrip", "µs/roundtrip", "Queue round trip, one item in flight (floor: pipe ping-pong)", False, "pipe_roundtrip", [("floor_max", 1.5)]),
    ("pool_map", "items/s", "Pool(2).map of x*x over range(100000), chunksize 100", True, None, [("mp", 2.0)]),
    ("raw_socketpair_2mib", "MB/s", "floor: 2 MiB frames over a raw socketpair, 8 in flight", True, None, []),
    ("pipe_roundtrip", "µs/roundtrip", "floor: 1-byte ping-pong over two pipes", False, None, []),
]
FLOORS = {"raw_socketpair_2mib", "pipe_roundtrip"}


def read_lines(paths):
    out = []
    for p in paths:
        with open(p) as f:
            for line in f:
                line = line.strip()
                if not line.startswith("{"):
                    continue
                d = json.loads(line)
                d.setdefault("metric", d.get("unit"))
                out.append({"impl": d["impl"], "name": d["name"], "metric": d["metric"], "value": float(d["value"])})
    return out


def medians(results):
    """[{impl, name, metric, value: the median, runs: how many}]"""
    seen = {}
    for r in results:
        seen.setdefault((r["impl"], r["name"], r["metric"]), []).append(r["value"])
    return [
        {"impl": i, "name": n, "metric": m, "value": statistics.median(v), "runs": len(v)}
        for (i, n, m), v in sorted(seen.items())
    ]


def fmt(v, unit):
    if unit == "MB/s":
        return netreport.num(v)
    return report.fmt(v, unit)


def better(a, b, higher):
    """How many times better a is than b."""
    return ratio(a, b) if higher else ratio(b, a)


def row_cells(med, name, unit, higher, floor_name, targets):
    get = lambda impl, n=name: med.get((impl, n, unit))  # noqa: E731
    a, m, p = get(ASYNCGO), get(MP), get(AIOP)
    floor_go = get(GORAW, floor_name) if floor_name else None
    floor_py = get(RAW, floor_name) if floor_name else None
    floor, floor_who = (floor_go, "Go raw") if floor_go is not None else (floor_py, "Python raw")
    over = ratio(a, floor)
    cells = {
        "asyncgo": fmt(a, unit) if name not in FLOORS else "",
        "mp": fmt(m, unit) if name not in FLOORS else "",
        "aiop": fmt(p, unit) if name not in FLOORS else "",
        "raw": fmt(get(RAW) if name in FLOORS else floor_py, unit) if (name in FLOORS or floor_name) else "",
        "goraw": fmt(get(GORAW) if name in FLOORS else floor_go, unit) if (name in FLOORS or floor_name) else "",
        "vs_mp": fmt_ratio(better(a, m, higher)) if name not in FLOORS else "",
        "vs_aiop": fmt_ratio(better(a, p, higher)) if name not in FLOORS else "",
        "floor": f"{fmt_ratio(over)} of {floor_who}" if over is not None else ("—" if floor_name else ""),
    }
    texts, misses, unknown = [], [], False
    for kind, k in targets:
        if kind == "mp":
            texts.append(f">= {k:g}x multiprocessing" if k != 1 else ">= multiprocessing")
            r = ratio(a, m)
            bad = r is not None and r < k
        elif kind == "floor_min":
            texts.append(f">= {k:g}x the floor's {unit}")
            r = over
            bad = r is not None and r < k
        else:
            texts.append(f"<= {k:g}x the floor's {unit}")
            r = over
            bad = r is not None and r > k
        if r is None:
            unknown = True
        elif bad:
            misses.append(f"{texts[-1]}: {fmt_ratio(r)}")
    target = "; ".join(texts)
    if not targets:
        met = ""
    elif misses:
        met = "**no** (" + "; ".join(misses) + ")"
    elif unknown:
        met = "? (not measured)"
    else:
        met = "yes"
    return cells, target, met


def table(med):
    w = [
        "| workload | unit | asyncgo | multiprocessing | aioprocessing | floor: Python raw | floor: Go raw "
        "| asyncgo vs multiprocessing | asyncgo vs aioprocessing | asyncgo / floor | target | met? |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    verdicts = []
    for name, unit, label, higher, floor_name, targets in ROWS:
        c, target, met = row_cells(med, name, unit, higher, floor_name, targets)
        w.append(
            f"| {label} | {unit} | {c['asyncgo']} | {c['mp']} | {c['aiop']} | {c['raw']} | {c['goraw']} "
            f"| {c['vs_mp']} | {c['vs_aiop']} | {c['floor']} | {target} | {met} |"
        )
        if targets:
            verdicts.append((label, target, met))
    # the second metric of the 2 MiB rows, for the record
    extra = []
    for impl in IMPLS:
        for name in ("queue_2mib", "raw_socketpair_2mib"):
            v = med.get((impl, name, "items/s"))
            if v is not None:
                extra.append(f"{impl} {name} {report.fmt(v, 'items/s')}")
    return w, verdicts, extra


def section(data, skipped):
    med = {(m["impl"], m["name"], m["metric"]): m["value"] for m in data["medians"]}
    info = data.get("info", {})
    w = [HEADING, ""]
    w.append(
        "Generated by `bash docs/bench/aio.sh` (not part of CI), which replaces only this section (and writes "
        "`docs/bench/aio.json`): asyncgo's package `aio` (`docs/bench/aiobench`, one `-workload` per process) against "
        "its Python twins in `docs/bench/peers/aioproc.py` on Debian's /usr/bin/python3: plain `multiprocessing` "
        "(blocking calls, no loop) and `aioprocessing` (its `coro_*` methods awaited on an asyncio loop in the parent), "
        "and the raw floors. Every workload runs in a fresh process; the parent and its child share the machine's cores. "
        "The machine is noisy: compare within one run, not across runs."
    )
    w.append("")
    if info:
        w.append("Run: " + "; ".join(f"{k} {v}" for k, v in info.items()) + ".")
        w.append("")
    t, _, extra = table(med)
    w.extend(t)
    w.append("")
    w.append(
        "- Ratios 'vs' say how many times better asyncgo is (higher items/s or MB/s, or fewer µs); 'asyncgo / floor' is "
        "asyncgo's number divided by the floor's in the row's unit (the Go raw floor when measured, else the Python "
        "one), so a throughput target wants it high and a round-trip target low. Each number is the best of the 3 timed "
        "runs in one process (after a warm-up), and of several rounds the median."
    )
    w.append(
        "- Queues: the parent puts, a child gets each item from q1 and puts it into q2, the parent gets it back; at most "
        "500 small items (8 of 2 MiB: enough to keep every stage busy, without holding 1 GiB) are outstanding. "
        "multiprocessing: `mp.Queue`, a putter thread and the getter in the main thread; aioprocessing: `AioQueue`, "
        "`await coro_put` in a producer task and `await coro_get` in the main task. MB/s is 10^6 bytes/s of payload, one "
        "direction. The socketpair floor sends the same 2 MiB as frames of a 4-byte length and the payload."
    )
    w.append(
        "- Round trips: Event: the parent sets e1, the child waiting in e1 clears it and sets e2, the parent waiting in "
        "e2 clears it. Lock: two locks held by the parent at the start, used as binary semaphores: the parent releases "
        "l1 and acquires l2, the child acquires l1 and releases l2. Queue: one item q1 -> child -> q2. The floor: one "
        "byte over a pipe to the child and one back over another. On a small VM round trips are bimodal: with the two "
        "processes on one CPU a pipe round trip takes a few µs, on two CPUs ten times that (waking the other CPU), and "
        "the kernel can choose differently for each process; `PIN=0 bash docs/bench/aio.sh` runs everything on one CPU."
    )
    w.append(
        "- Pool.map: `Pool(2).map(f, range(100000), chunksize=100)`, f(x) = x*x, after a warm-up map; aioprocessing: "
        "`await AioPool(2).coro_map(...)` the same."
    )
    if extra:
        w.append("- 2 MiB items/s: " + "; ".join(extra) + ".")
    for name, why in skipped:
        w.append(f"- Not measured: **{name}** ({why}).")
    w.append("")
    return w


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lines", action="append", default=[], help="a file of JSON lines (any impl)")
    p.add_argument("--from", dest="src", help="a JSON file written by --json before, instead of --lines")
    p.add_argument("--json", help="write the results, their medians and the facts here")
    p.add_argument("--readme", help="replace the issue 11 section of this markdown file")
    p.add_argument("--info", action="append", default=[], help="KEY=VALUE about the run")
    p.add_argument("--skipped", action="append", default=[], help="NAME=why it was not measured")
    args = p.parse_args()

    if args.src:
        with open(args.src) as f:
            data = json.load(f)
    else:
        results = read_lines(args.lines)
        data = {
            "info": dict(kv.partition("=")[::2] for kv in args.info),
            "skipped": dict(s.partition("=")[::2] for s in args.skipped),
            "results": results,
            "medians": medians(results),
        }
    if not data["results"]:
        sys.exit("aioreport.py: no results")
    skipped = list(data.get("skipped", {}).items())
    if args.json:
        with open(args.json, "w") as f:
            json.dump(data, f, indent=1, ensure_ascii=False)
            f.write("\n")
        print(f"aioreport.py: wrote {args.json}", file=sys.stderr)
    lines = section(data, skipped)
    sys.stdout.write("\n".join(lines[2:]) + "\n")
    if args.readme:
        with open(args.readme) as f:
            text = f.read()
        new = netreport.replace_section(text, lines, HEADING)
        if not new.endswith("\n"):
            new += "\n"
        with open(args.readme, "w") as f:
            f.write(new)
        print(f"aioreport.py: wrote the section {HEADING!r} of {args.readme}", file=sys.stderr)


if __name__ == "__main__":
    main()

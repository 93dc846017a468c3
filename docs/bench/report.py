#!/usr/bin/python3
"""Write docs/bench/README.md from one benchmark run.

Inputs: the output of `go test -bench ... -benchmem` (text), the JSON lines of
peers/peers.py for each Python implementation, machine facts, and rows.json,
which says which numbers make each row of each issue's table. Later issues add
rows (and Go benchmarks and Python twins) without touching this program.

  report.py --go go.txt --py asyncio=asyncio.jsonl --py uvloop=uvloop.jsonl \
            --info "CPU=AMD EPYC" --info "nproc=2" ... [--rows rows.json] > README.md
"""

import argparse
import json
import math
import os
import re
import statistics
import sys

IMPLS = ["asyncio", "uvloop"]

BENCH_LINE = re.compile(r"^Benchmark(\S+?)(?:-\d+)?\s+(\d+)\s+(.*)$")


def parse_go(text):
    """{(bench, unit): value} from go test -bench output; the median when a
    benchmark ran several times (-count)."""
    seen = {}
    for line in text.splitlines():
        m = BENCH_LINE.match(line.strip())
        if not m:
            continue
        name, fields = m.group(1), m.group(3).split()
        for i in range(0, len(fields) - 1, 2):
            try:
                v = float(fields[i])
            except ValueError:
                continue
            seen.setdefault((name, fields[i + 1]), []).append(v)
    return {k: statistics.median(v) for k, v in seen.items()}


def parse_py(text):
    """{(name, metric): value} from the peers' JSON lines."""
    seen = {}
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        d = json.loads(line)
        seen.setdefault((d["name"], d["metric"]), []).append(float(d["value"]))
    return {k: statistics.median(v) for k, v in seen.items()}


def lookup(table, ref):
    if not ref:
        return None
    name, _, unit = ref.partition(":")
    return table.get((name, unit))


def sig3(x):
    """x with 3 significant digits, never in exponent form."""
    x = float(f"{x:.3g}")
    if x == 0:
        return "0"
    digits = max(0, 2 - int(math.floor(math.log10(abs(x)))))
    return f"{x:,.{digits}f}"


def fmt(v, unit=""):
    if v is None:
        return "—"
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return "—"
    a = abs(v)
    if unit.endswith("/s"):
        if a >= 999.5e3:
            return f"{sig3(v / 1e6)} M"
        if a >= 999.5:
            return f"{sig3(v / 1e3)} k"
        return sig3(v)
    if a == 0:
        return "0"
    if a >= 100 or v == int(v):
        return f"{v:,.0f}"
    if a >= 0.01:
        return sig3(v)
    return f"{v:.1e}"


def ratio(a, b):
    if a is None or b is None or b == 0 or a == 0:
        return None
    return a / b


def fmt_ratio(r):
    if r is None:
        return "—"
    return f"{r:.2f}x" if r < 10 else f"{r:.1f}x"


def build_row(row, go, py):
    higher = row.get("better", "higher") == "higher"
    g = lookup(go, row.get("go"))
    vals = {impl: lookup(py.get(impl, {}), row.get("py")) for impl in IMPLS}
    floor = lookup(go, row.get("floor"))
    allocs = lookup(go, row.get("allocs"))

    def better_by(other):  # how many times better asyncgo is
        return ratio(g, other) if higher else ratio(other, g)

    env = {
        "go": g,
        "asyncio": vals["asyncio"],
        "uvloop": vals["uvloop"],
        "floor": floor,
        "allocs": allocs,
        "vs_uvloop": better_by(vals["uvloop"]),
        "vs_asyncio": better_by(vals["asyncio"]),
        # asyncgo's cost over the floor's: 1.0 is as fast as the floor
        "floor_ratio": (ratio(floor, g) if higher else ratio(g, floor)) if floor is not None else None,
    }
    met = ""
    checks = row.get("check")
    if checks:
        if isinstance(checks, str):
            checks = [[row.get("target", checks), checks]]
        failed, unknown = [], False
        for label, expr in checks:
            try:
                if not eval(expr, {"__builtins__": {}}, env):
                    failed.append(label)
            except TypeError:  # a number is missing
                unknown = True
        if failed:
            met = "**no** (" + "; ".join(failed) + ")" if len(checks) > 1 else "**no**"
        else:
            met = "?" if unknown else "yes"
    return env, met


def table(issue, go, py):
    out = []
    out.append(
        "| workload | unit | asyncgo | asyncio | uvloop | asyncgo vs uvloop | asyncgo vs asyncio "
        "| {} | allocs | target | met? |".format(issue.get("floor_column", "vs iter.Pull floor"))
    )
    out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|")
    verdicts = []
    for row in issue["rows"]:
        env, met = build_row(row, go, py)
        unit = row.get("unit", "")
        floor = ""
        if env["floor_ratio"] is not None:
            floor = f"{fmt_ratio(env['floor_ratio'])} (floor {fmt(env['floor'], unit)})"
        allocs = ""
        if env["allocs"] is not None:
            allocs = f"{fmt(env['allocs'])} {row.get('allocs_unit', 'allocs/op')}"
        out.append(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
                row["workload"],
                unit,
                fmt(env["go"], unit),
                fmt(env["asyncio"], unit),
                fmt(env["uvloop"], unit),
                fmt_ratio(env["vs_uvloop"]),
                fmt_ratio(env["vs_asyncio"]),
                floor,
                allocs,
                row.get("target", ""),
                met,
            )
        )
        if row.get("check"):
            verdicts.append((row["workload"], row.get("target", ""), met))
    return out, verdicts


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--go", required=True, help="go test -bench output")
    p.add_argument("--py", action="append", default=[], help="IMPL=FILE of peers.py JSON lines")
    p.add_argument("--info", action="append", default=[], help="KEY=VALUE machine fact")
    p.add_argument("--rows", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "rows.json"))
    args = p.parse_args()

    go_text = open(args.go).read()
    go = parse_go(go_text)
    py, py_text = {}, {}
    for spec in args.py:
        impl, _, path = spec.partition("=")
        py_text[impl] = open(path).read()
        py[impl] = parse_py(py_text[impl])
    rows = json.load(open(args.rows))

    w = []
    w.append("# Benchmarks: asyncgo against CPython asyncio and uvloop")
    w.append("")
    w.append(
        "Generated by `bash docs/bench/run.sh` (not part of CI) from one run on one machine: "
        "the Go benchmarks in `loop/` and `executor/` (`*bench*_test.go`) and their Python twins in "
        "`docs/bench/peers/`, run one after the other. Do not edit by hand; "
        "to add a row, add a benchmark, its twin and a row in `docs/bench/rows.json`."
    )
    w.append("")
    w.append("## Machine")
    w.append("")
    w.append("| | |")
    w.append("|---|---|")
    for kv in args.info:
        k, _, v = kv.partition("=")
        w.append(f"| {k} | {v} |")
    w.append("")
    w.append(
        "Ratios say how many times better asyncgo is (higher throughput, or lower time or memory); "
        "the floor column is asyncgo's cost over the floor's (1.00x would be as fast as the floor: "
        "a bare `iter.Pull` round-robin for issue 2, the row its notes name elsewhere)."
    )
    w.append("")
    all_verdicts = []
    for issue in rows["issues"]:
        w.append(f"## Issue {issue['issue']}: {issue['title']}")
        w.append("")
        t, verdicts = table(issue, go, py)
        w.extend(t)
        w.append("")
        for n in issue.get("notes", []):
            w.append(f"- {n}")
        w.append("")
        all_verdicts += [(issue["issue"],) + v for v in verdicts]
    w.append("## Targets")
    w.append("")
    w.append("| issue | workload | target | met? |")
    w.append("|---|---|---|---|")
    for issue, workload, target, met in all_verdicts:
        w.append(f"| {issue} | {workload} | {target} | {met} |")
    w.append("")
    w.append("## Raw output")
    w.append("")
    w.append("<details><summary>go test -bench</summary>")
    w.append("")
    w.append("```")
    w.extend(l for l in go_text.splitlines() if l.strip())
    w.append("```")
    w.append("")
    w.append("</details>")
    for impl, text in py_text.items():
        w.append("")
        w.append(f"<details><summary>peers.py --loop={impl}</summary>")
        w.append("")
        w.append("```")
        w.extend(l for l in text.splitlines() if l.strip())
        w.append("```")
        w.append("")
        w.append("</details>")
    sys.stdout.write("\n".join(w) + "\n")


if __name__ == "__main__":
    main()

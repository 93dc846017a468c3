#!/usr/bin/python3
"""Write the reactor benchmarks' section of docs/bench/README.md and reactor.png.

Reads the JSON reports that docs/bench/loadgen (-mode reactor) wrote for one
run of docs/bench/reactor.sh (SERVER.WORKLOAD.rN.json in --dir, WORKLOAD one
of triv1k, triv64k, triv2m, cpu1ms, N the round; loadgen's summaries beside
them as .txt, and alloc.txt, the log of examples/reactor's
TestAllocsPer2MiBMessage; of several rounds each number comes from the
median run by msgs/s) and replaces the section under the
heading "## Issue 10: the reactor server" in --readme (adding it before
"## Targets", or at the end, if it is not there), leaving the rest of the
file as it was. With --png it also draws msgs/s and p99 of every server and
workload.

  reactorreport.py --dir DIR --readme docs/bench/README.md --png docs/bench/reactor.png \\
      --servers "asyncgo python-asyncio python-uvloop" --info "date=..." \\
      --skipped "NAME=why" --settings "..."
"""

import argparse
import json
import os
import re
import sys

# The formatting and section helpers of the network report, shared.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netreport  # noqa: E402
from netreport import fmt_ratio, loadgen_details, num, rate, ratio, sig3  # noqa: E402

HEADING = "## Issue 10: the reactor server"

DESCRIBE = {
    "asyncgo": "asyncgo, `examples/reactor`: a BufferedProtocol per connection on one loop; the messages go to an `executor.ProcessPool` through `RunInExecutor`, those waiting together in one call (a batch of up to 64 messages or 1 MiB)",
    "python-asyncio": "CPython asyncio, `peers/reactor_server.py`: an asyncio.Protocol per connection, each message one `loop.run_in_executor(ProcessPoolExecutor, job, data)` (the seed's model), replies in order from a deque of futures",
    "python-uvloop": "the same Python server on uvloop's loop (`peers/reactor_server.py --uvloop`)",
}

# workload -> (label, message size in bytes, trivial job?)
WORKLOADS = {
    "triv1k": ("1 KiB, trivial job", 1 << 10, True),
    "triv64k": ("64 KiB, trivial job", 64 << 10, True),
    "triv2m": ("2 MiB, trivial job", 2 << 20, True),
    "cpu1ms": ("1 KiB, 1 ms CPU job", 1 << 10, False),
}

ASYNCGO = "asyncgo"
BASE = "python-asyncio"
UVLOOP = "python-uvloop"
CPU_LIMIT = 2000  # msgs/s two cores can do with 1 ms jobs
CPU_TARGET = 0.9  # of CPU_LIMIT
TRIV_TARGET = 5.0  # x python-asyncio's msgs/s


def runs(d, server, workload):
    prefix = f"{server}.{workload}."
    out = []
    for name in sorted(os.listdir(d)):
        if name == f"{server}.{workload}.json" or (
            name.startswith(prefix + "r") and name.endswith(".json") and name[len(prefix) + 1 : -5].isdigit()
        ):
            out.append(os.path.join(d, name))
    return out


def load(d, server, workload):
    """The median run by msgs/s (the lower median of an even count), with
    "rounds", "all" (msgs/s of every run) and "errors_total" added; None
    when there is no report."""
    reps = []
    for p in runs(d, server, workload):
        with open(p) as f:
            r = json.load(f)
        r["_path"] = p
        reps.append(r)
    if not reps:
        return None
    reps.sort(key=lambda r: r.get("req_per_s") or 0)
    r = reps[(len(reps) - 1) // 2]
    r["rounds"] = len(reps)
    r["all"] = [x.get("req_per_s") or 0 for x in reps]
    r["errors_total"] = sum(x.get("errors", 0) for x in reps)
    return r


ALLOC = re.compile(r"([\d.]+) bytes allocated per 2 MiB message")


def alloc_per_message(d):
    """Bytes asyncgo's server allocated per 2 MiB message, from the log of
    examples/reactor's TestAllocsPer2MiBMessage that reactor.sh keeps as
    alloc.txt; (None, why) without it."""
    try:
        with open(os.path.join(d, "alloc.txt")) as f:
            text = f.read()
    except OSError:
        return None, "not run"
    m = ALLOC.search(text)
    if m is None:
        return None, "the test printed no number" + (" (it failed)" if "FAIL" in text else "")
    return float(m.group(1)), ""


def msgs(rep):
    return rep.get("req_per_s") if rep and rep.get("requests", 0) > 0 else None


def mbps(rep):
    return rep.get("mb_per_s") if rep and rep.get("requests", 0) > 0 else None


def p99_ms(rep):
    if not rep or rep.get("requests", 0) == 0:
        return None
    v = (rep.get("latency_us") or {}).get("p99")
    return None if v is None else v / 1e3


def verdict(workload, a, base):
    """(target, met cell) for asyncgo's report a of workload, against
    python-asyncio's base."""
    _, _, trivial = WORKLOADS[workload]
    if trivial:
        target = f">= {TRIV_TARGET:g}x python-asyncio msgs/s, p99 no worse"
        r, pr = ratio(msgs(a), msgs(base)), ratio(p99_ms(a), p99_ms(base))
        if r is None or pr is None:
            return target, "? (not measured)"
        misses = []
        if r < TRIV_TARGET:
            misses.append(f"msgs/s {fmt_ratio(r)}")
        if pr > 1:
            misses.append(f"p99 {fmt_ratio(pr)} python-asyncio's")
        return target, "yes" if not misses else "**no** (" + "; ".join(misses) + ")"
    target = f">= {CPU_TARGET:g}x {CPU_LIMIT:,} msgs/s ({CPU_TARGET * CPU_LIMIT:,.0f})"
    v = msgs(a)
    if v is None:
        return target, "? (not measured)"
    r = v / CPU_LIMIT
    return target, (f"yes ({r:.3f}x)" if r >= CPU_TARGET else f"**no** ({r:.3f}x)")


def section(args, reports, servers, skipped):
    w = [HEADING, ""]
    w.append(
        "Generated by `bash docs/bench/reactor.sh` (not part of CI), which replaces only this section and `reactor.png`: "
        "the load generator `docs/bench/loadgen -mode reactor` drives each server of the reactor protocol in turn on "
        "127.0.0.1, a fresh server process (and port) for each workload; the client, the server's loop and its worker "
        "processes share the machine's cores. The machine is noisy: compare servers within one run, not across runs."
    )
    w.append("")
    if args.info:
        w.append("Run: " + "; ".join(f"{k} {v}" for k, v in (kv.partition("=")[::2] for kv in args.info)) + ".")
        w.append("")
    if args.settings:
        w.append("Workloads: " + args.settings)
        w.append("")
    multi = any((r or {}).get("rounds", 1) > 1 for per in reports.values() for r in per.values())
    w.append(
        "| server | workload | msgs/s | MB/s | p99 ms | ratio vs python asyncio | ratio vs uvloop | target | met? | errors (all rounds) |"
        + (" msgs/s of every round |" if multi else "")
    )
    w.append("|---|---|---:|---:|---:|---:|---:|---|---|---:|" + ("---|" if multi else ""))
    for wl, (label, _, _) in WORKLOADS.items():
        for s in servers:
            r = reports[s].get(wl)
            if r is None:
                continue
            base, uv = reports.get(BASE, {}).get(wl), reports.get(UVLOOP, {}).get(wl)
            if s == ASYNCGO:
                target, met = verdict(wl, r, base)
            else:
                target, met = "", ""
            row = "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
                s,
                label,
                rate(msgs(r)),
                num(mbps(r)),
                num(p99_ms(r)),
                "" if s == BASE else fmt_ratio(ratio(msgs(r), msgs(base))),
                "" if s == UVLOOP else fmt_ratio(ratio(msgs(r), msgs(uv))),
                target,
                met,
                r["errors_total"],
            )
            if multi:
                row += " " + ", ".join(rate(v) for v in r["all"]) + " |"
            w.append(row)
    w.append("")
    w.append("![msgs/s and p99 of every server and workload](reactor.png)")
    w.append("")
    if ASYNCGO in reports:
        alloc, why = alloc_per_message(args.dir)
        label = "2 MiB messages: the server process allocates at most 2x the message's size per message"
        if alloc is not None:
            ok = alloc <= 2 * (2 << 20)
            w.append(
                f"Target: {label}: {alloc:,.0f} bytes per message ({alloc / (2 << 20):.3f}x its size), "
                f"{'yes' if ok else '**no**'} (examples/reactor's TestAllocsPer2MiBMessage: runtime.MemStats.TotalAlloc "
                "over 64 pipelined 2 MiB messages after a warm-up, the test's own client included)."
            )
        else:
            w.append(f"Target: {label}: not measured ({why}).")
        w.append("")
    w.append("- Servers: " + "; ".join(f"**{s}**: {DESCRIBE.get(s, s)}" for s in servers) + ".")
    for name, why in skipped:
        w.append(f"- Not measured: **{name}** ({why}).")
    w.append(
        "- Protocol: a frame is a 4-byte big-endian length and that many bytes; each message gets one reply frame, in "
        "order per connection, a status byte 0 and the 32-byte SHA-256 digest (or 1 and an error message). The trivial "
        "job is the digest alone, so those rows measure the machinery: reading the message, handing it to a worker "
        "process and back, writing the reply. The 1 ms job spins on the worker thread's CPU clock for 1 ms first; two "
        f"workers on two cores can do at most about {CPU_LIMIT:,} msgs/s, and they share those cores with the loop and "
        "the load generator."
    )
    w.append(
        "- msgs/s counts replies with status 0 and the right digest received in the measured window (after the warmup); "
        "MB/s is the messages' payload, one direction, 10^6 bytes/s; p99 runs from the write of a message to the whole "
        "reply, in a log-bucket histogram (HDR-style, within 0.8%). Each connection keeps its messages in flight "
        "(pipelining, a writer and a reader goroutine) and sends pre-generated random payloads, their digests computed "
        "before the clock starts. Errors are status-1 replies, wrong digests and failed connections."
    )
    w.append(
        "- Ratios are a server's msgs/s divided by the Python server's on CPython asyncio, or on uvloop; the targets are "
        f"issue 10's: with the trivial job at least {TRIV_TARGET:g}x python-asyncio's msgs/s at every size and a p99 no worse; "
        f"with 1 ms jobs on 2 workers at least {CPU_TARGET:g}x the {CPU_LIMIT:,} msgs/s of two cores."
    )
    w.append("")
    w.extend(loadgen_details(reports[s].get(wl) for s in servers for wl in WORKLOADS))
    return w


def replace_section(text, new_lines):
    return netreport.replace_section(text, new_lines, HEADING)


def plot(reports, servers, path, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    colors = {ASYNCGO: "#d62728", BASE: "#1f77b4", UVLOOP: "#2ca02c"}
    wls = list(WORKLOADS)
    panels = [
        ("msgs/s (higher is better; log scale)", msgs, rate),
        ("p99 latency, ms (lower is better; log scale)", p99_ms, num),
    ]
    fig, axes = plt.subplots(1, 2, figsize=(14, 5.5))
    width = 0.8 / max(1, len(servers))
    for ax, (label, get, fmt) in zip(axes, panels):
        anyval = False
        for k, s in enumerate(servers):
            xs, vals = [], []
            for i, wl in enumerate(wls):
                v = get(reports[s].get(wl))
                if v is not None and v > 0:
                    xs.append(i + (k - (len(servers) - 1) / 2) * width)
                    vals.append(v)
            if not vals:
                continue
            anyval = True
            bars = ax.bar(xs, vals, width, label=s, color=colors.get(s))
            for b, v in zip(bars, vals):
                ax.annotate(fmt(v), (b.get_x() + b.get_width() / 2, b.get_height()), ha="center", va="bottom", fontsize=7)
        ax.set_xticks(range(len(wls)))
        ax.set_xticklabels([WORKLOADS[wl][0] for wl in wls], rotation=15, ha="right", fontsize=9)
        ax.set_title(label, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        if anyval:
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _pos, fmt=fmt: fmt(v)))
            ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "not measured", ha="center", va="center", transform=ax.transAxes)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir", required=True, help="loadgen's JSON reports, SERVER.WORKLOAD.rN.json")
    p.add_argument("--readme", required=True, help="the markdown file whose section to replace")
    p.add_argument("--png", help="write the charts here")
    p.add_argument("--servers", default=" ".join(DESCRIBE), help="server names, in table order")
    p.add_argument("--info", action="append", default=[], help="KEY=VALUE about the run")
    p.add_argument("--skipped", action="append", default=[], help="NAME=why it was not measured")
    p.add_argument("--settings", default="", help="a sentence on the workloads' settings")
    args = p.parse_args()

    names = args.servers.split()
    reports = {n: {} for n in names}
    for n in names:
        for wl in WORKLOADS:
            r = load(args.dir, n, wl)
            if r is not None:
                reports[n][wl] = r
    skipped = [tuple(s.partition("=")[::2]) for s in args.skipped]
    skipped_names = {n for n, _ in skipped}
    for n in names:
        if not reports[n] and n not in skipped_names:
            skipped.append((n, "no report"))
    servers = [n for n in names if reports[n]]
    if not servers:
        sys.exit("reactorreport.py: no server was measured")

    with open(args.readme) as f:
        text = f.read()
    new = replace_section(text, section(args, reports, servers, skipped))
    if not new.endswith("\n"):
        new += "\n"
    with open(args.readme, "w") as f:
        f.write(new)
    print(f"reactorreport.py: wrote the section {HEADING!r} of {args.readme}", file=sys.stderr)
    if args.png:
        info = dict(kv.partition("=")[::2] for kv in args.info)
        title = "asyncgo's reactor server and its Python twins" + (
            f" ({info.get('date', '')}, commit {info.get('commit', '?')}, {info.get('nproc', '?')} cores shared with the load generator)"
            if info
            else ""
        )
        plot(reports, servers, args.png, title)
        print(f"reactorreport.py: wrote {args.png}", file=sys.stderr)


if __name__ == "__main__":
    main()

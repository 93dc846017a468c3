#!/usr/bin/python3
"""Write the network benchmarks' section of docs/bench/README.md and net.png.

Reads the JSON reports that docs/bench/loadgen wrote for one run of
docs/bench/net.sh (SERVER.WORKLOAD.rN.json in --dir, WORKLOAD one of echo64,
echo2m, idle, N the round; loadgen's summaries beside them as .txt; of several
rounds each number comes from the median run) and
replaces the section under the heading "## Issue 9: network I/O" in --readme
(adding it before "## Targets", or at the end, if it is not there), leaving
the rest of the file as it was. With --png it also draws bar charts of req/s
and p99 (and 2 MiB MB/s and idle memory) for every server.

  netreport.py --dir DIR --readme docs/bench/README.md --png docs/bench/net.png \\
      --servers "asyncgo-protocol ... gnet" --info "date=..." --skipped "NAME=why" \\
      --settings "10 s per echo workload ..."
"""

import argparse
import json
import math
import os
import sys

HEADING = "## Issue 9: network I/O"

# name -> what it is, for the notes
DESCRIBE = {
    "asyncgo-protocol": "asyncgo, `examples/echo -layer protocol`: a loop.Protocol whose DataReceived writes the data back",
    "asyncgo-streams": "asyncgo, `examples/echo -layer streams`: StartServer, and a task per connection that reads and writes back",
    "uvloop-protocol": "uvloop, an asyncio.Protocol whose data_received writes back (peers/echo_server.py --loop uvloop --layer protocol)",
    "uvloop-streams": "uvloop, asyncio.start_server with `await reader.read(256 KiB)`, write, `await drain()` (peers/echo_server.py --loop uvloop --layer streams)",
    "asyncio-streams": "CPython asyncio, the same streams server (peers/echo_server.py --loop asyncio --layer streams)",
    "asyncio-protocol": "CPython asyncio, the same Protocol server (peers/echo_server.py --loop asyncio --layer protocol)",
    "plaingo": "plain Go, a goroutine per connection reading into its own 32 KiB buffer and writing back (peers/plaingo)",
    "gnet": "gnet v2 with one event loop (`WithMulticore(false)`, `WithNumEventLoop(1)`), OnTraffic writes back `Next(-1)` (peers/gnet, its own module)",
}

ASYNCGO = ["asyncgo-protocol", "asyncgo-streams"]


# the number by which a workload's runs are ranked to pick the median one
RANK = {"echo64": "req_per_s", "echo2m": "mb_per_s", "idle": "rss_bytes_per_conn"}


def runs(d, server, workload):
    """Paths of the reports of one server's workload: SERVER.WORKLOAD.json
    and SERVER.WORKLOAD.rN.json (one per round of net.sh)."""
    out = []
    for name in sorted(os.listdir(d)):
        if name == f"{server}.{workload}.json" or (
            name.startswith(f"{server}.{workload}.r") and name.endswith(".json") and name[len(server) + len(workload) + 3 : -5].isdigit()
        ):
            out.append(os.path.join(d, name))
    return out


def load(d, server, workload):
    """The median run of a server's workload (by RANK; the lower median of an
    even count), with "rounds" set to how many runs there were; None if none."""
    reps = []
    for p in runs(d, server, workload):
        with open(p) as f:
            r = json.load(f)
        r["_path"] = p
        reps.append(r)
    if not reps:
        return None
    key = RANK[workload]
    reps.sort(key=lambda r: (r.get(key) is None, r.get(key) or 0))
    r = reps[(len(reps) - 1) // 2]
    r["rounds"] = len(reps)
    r["all"] = [x.get(key) for x in reps]
    r["errors_total"] = sum(x.get("errors", 0) for x in reps)
    return r


def sig3(x):
    x = float(f"{x:.3g}")
    if x == 0:
        return "0"
    digits = max(0, 2 - int(math.floor(math.log10(abs(x)))))
    return f"{x:,.{digits}f}"


def rate(v):
    if v is None:
        return "—"
    if v >= 999.5e3:
        return f"{sig3(v / 1e6)} M"
    if v >= 999.5:
        return f"{sig3(v / 1e3)} k"
    return sig3(v)


def num(v):
    return "—" if v is None else sig3(v)


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def fmt_ratio(r):
    if r is None:
        return "—"
    return f"{r:.2f}x" if r < 10 else f"{r:.1f}x"


class Server:
    """The numbers of one server in one run; None where not measured."""

    def __init__(self, d, name):
        self.name = name
        self.e64 = load(d, name, "echo64")
        self.e2m = load(d, name, "echo2m")
        self.idle = load(d, name, "idle")

    def measured(self):
        return any(x is not None for x in (self.e64, self.e2m, self.idle))

    @staticmethod
    def _get(rep, *path):
        if rep is None:
            return None
        for k in path:
            if not isinstance(rep, dict) or k not in rep:
                return None
            rep = rep[k]
        return rep

    @staticmethod
    def _ok(rep):
        return rep is not None and rep.get("requests", 0) > 0

    @property
    def rps(self):
        return self.e64["req_per_s"] if self._ok(self.e64) else None

    def lat64(self, q):
        return self._get(self.e64, "latency_us", q) if self._ok(self.e64) else None

    @property
    def mbps(self):
        return self.e2m["mb_per_s"] if self._ok(self.e2m) else None

    @property
    def p99_2m_ms(self):
        v = self._get(self.e2m, "latency_us", "p99") if self._ok(self.e2m) else None
        return None if v is None else v / 1e3

    @property
    def idle_bytes(self):
        if self.idle is None or not self.idle.get("open"):
            return None
        return self.idle.get("rss_bytes_per_conn")

    @property
    def errors(self):
        return sum((r or {}).get("errors_total", 0) for r in (self.e64, self.e2m, self.idle))


def targets(a, peers):
    """[(label, verdict cell)] of issue 9's targets for asyncgo server a."""
    up, pg, gn = peers.get("uvloop-protocol"), peers.get("plaingo"), peers.get("gnet")
    uv_fast = [s for s in (peers.get("uvloop-protocol"), peers.get("uvloop-streams")) if s and s.mbps is not None]
    uv_fast = max(uv_fast, key=lambda s: s.mbps) if uv_fast else None

    def check(r, ok):
        if r is None:
            return "? (not measured)"
        return f"{fmt_ratio(r)} " + ("yes" if ok(r) else "**no**")

    rows = []
    rows.append(("64 B echo: req/s >= 1.2x uvloop's Protocol server", check(ratio(a.rps, up and up.rps), lambda r: r >= 1.2)))
    rows.append(("64 B echo: req/s >= 0.9x the plain-Go server", check(ratio(a.rps, pg and pg.rps), lambda r: r >= 0.9)))
    rows.append(("64 B echo: req/s >= 0.8x single-loop gnet", check(ratio(a.rps, gn and gn.rps), lambda r: r >= 0.8)))
    rows.append(
        ("64 B echo: p99 no worse than uvloop's Protocol server (ratio <= 1)", check(ratio(a.lat64("p99"), up and up.lat64("p99")), lambda r: r <= 1.0))
    )
    rows.append(("2 MiB echo: MB/s >= 0.8x the plain-Go server", check(ratio(a.mbps, pg and pg.mbps), lambda r: r >= 0.8)))
    rows.append(
        (
            "2 MiB echo: MB/s >= 2x uvloop (the faster of its two servers" + (f", here {uv_fast.name})" if uv_fast else ")"),
            check(ratio(a.mbps, uv_fast and uv_fast.mbps), lambda r: r >= 2.0),
        )
    )
    rows.append(
        ("idle connections: less memory per connection than the plain-Go server (ratio < 1)", check(ratio(a.idle_bytes, pg and pg.idle_bytes), lambda r: r < 1.0))
    )
    return rows


def section(args, servers, skipped):
    by = {s.name: s for s in servers}
    w = [HEADING, ""]
    w.append(
        "Generated by `bash docs/bench/net.sh` (not part of CI), which replaces only this section and `net.png`: "
        "the load generator `docs/bench/loadgen` drives each echo server in turn on 127.0.0.1, a fresh server process "
        "(and port) for each workload; client and server share the machine's cores. "
        "The machine is noisy: compare servers within one run, not across runs."
    )
    w.append("")
    if args.info:
        w.append("Run: " + "; ".join(f"{k} {v}" for k, v in (kv.partition("=")[::2] for kv in args.info)) + ".")
        w.append("")
    if args.settings:
        w.append("Workloads: " + args.settings)
        w.append("")
    multi = any((r or {}).get("rounds", 1) > 1 for s in servers for r in (s.e64, s.e2m))
    w.append(
        "| server | 64 B echo req/s | p50 µs | p99 µs | p999 µs | 2 MiB echo MB/s | 2 MiB p99 ms | idle bytes/conn | errors (all rounds) |"
        + (" 64 B req/s, 2 MiB MB/s of every round |" if multi else "")
    )
    w.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|" + ("---|" if multi else ""))
    for s in servers:
        spread = ""
        if multi:
            spread = " {}; {} |".format(
                ", ".join(rate(v) for v in (s.e64 or {}).get("all", []) if v is not None) or "—",
                ", ".join(num(v) for v in (s.e2m or {}).get("all", []) if v is not None) or "—",
            )
        w.append(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
                s.name,
                rate(s.rps),
                num(s.lat64("p50")),
                num(s.lat64("p99")),
                num(s.lat64("p999")),
                num(s.mbps),
                num(s.p99_2m_ms),
                "—" if s.idle_bytes is None else f"{s.idle_bytes:,.0f}",
                s.errors,
            )
            + spread
        )
    w.append("")
    w.append("![req/s and p99 of every server](net.png)")
    w.append("")

    present = [by[n] for n in ASYNCGO if n in by]
    if present:
        w.append(
            "Ratios are asyncgo's number divided by the peer's: above 1 is better for req/s and MB/s, "
            "below 1 is better for p99 and bytes per connection."
        )
        w.append("")
        w.append("| asyncgo ÷ peer | 64 B req/s | 64 B p99 | 2 MiB MB/s | idle bytes/conn |")
        w.append("|---|---:|---:|---:|---:|")
        for a in present:
            peers = ["uvloop-protocol", "plaingo", "gnet"]
            if a.name == "asyncgo-streams":
                peers.append("uvloop-streams")
            for pn in peers:
                p = by.get(pn)
                if p is None:
                    continue
                w.append(
                    "| {} ÷ {} | {} | {} | {} | {} |".format(
                        a.name,
                        pn,
                        fmt_ratio(ratio(a.rps, p.rps)),
                        fmt_ratio(ratio(a.lat64("p99"), p.lat64("p99"))),
                        fmt_ratio(ratio(a.mbps, p.mbps)),
                        fmt_ratio(ratio(a.idle_bytes, p.idle_bytes)),
                    )
                )
        w.append("")
        w.append("Targets of issue 9 (the ratio, then whether it is met):")
        w.append("")
        w.append("| target | " + " | ".join(a.name for a in present) + " |")
        w.append("|---|" + "---|" * len(present))
        per = [targets(a, by) for a in present]
        for i, (label, _) in enumerate(per[0]):
            w.append(f"| {label} | " + " | ".join(p[i][1] for p in per) + " |")
        w.append("")
    else:
        w.append(
            "asyncgo's echo servers were not measured in this run, so there are no ratios or verdicts against the "
            "targets yet: net.sh runs `examples/echo -serve -addr ADDR -layer protocol|streams` once that example builds."
        )
        w.append("")

    w.append("- Servers: " + "; ".join(f"**{s.name}**: {DESCRIBE.get(s.name, s.name)}" for s in servers) + ".")
    for name, why in skipped:
        w.append(f"- Not measured: **{name}** ({why}).")
    w.append(
        "- Echo: each connection sends a message, reads the whole echo back and checks it byte for byte (the first "
        "8 bytes carry a sequence number), then sends the next (closed loop). req/s counts echoes completed in the "
        "measured window (after the warmup); MB/s is the payload echoed, one direction, 10^6 bytes/s. Latency runs "
        "from the write of a message to the last byte of its echo, in a log-bucket histogram (HDR-style, within 0.8%). "
        "A 2 MiB message is written by a second goroutine of the connection while the first reads the echo."
    )
    w.append(
        "- Idle: loadgen opens the connections (64 at a time), echoes 64 bytes once on each so the server has "
        "accepted and served every one, holds them all, and reads the server's VmRSS from /proc/PID/status before "
        "the first connection and after the hold: bytes/conn is the growth divided by the connections. Afterwards "
        "every connection must still echo."
    )
    w.append(
        "- loadgen is one Go process, a goroutine per connection, no allocation per message; it competes with the "
        "server for the same cores, so a server that needs less CPU per message leaves more to the client."
    )
    w.append("")
    w.extend(loadgen_details(r for s in servers for r in (s.e64, s.e2m, s.idle)))
    return w


def loadgen_details(reports):
    """The loadgen text output beside each report's JSON, as a collapsed block."""
    txts = []
    for r in reports:
        if r is None:
            continue
        p = r["_path"][: -len(".json")] + ".txt"
        if os.path.exists(p):
            with open(p) as f:
                txts.extend(l.rstrip() for l in f if l.strip())
    if not txts:
        return []
    return ["<details><summary>loadgen output (the median runs)</summary>", "", "```", *txts, "```", "", "</details>", ""]


def replace_section(text, new_lines, heading=HEADING):
    lines = text.split("\n")
    start = next((i for i, l in enumerate(lines) if l.strip() == heading), None)
    if start is not None:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    else:
        start = next((i for i, l in enumerate(lines) if l.strip() == "## Targets"), None)
        if start is None:
            while lines and lines[-1] == "":
                lines.pop()
            lines.append("")
            start = len(lines)
        end = start
    out = lines[:start] + new_lines + lines[end:]
    return "\n".join(out)


def plot(servers, path, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        ("64 B echo, 50 conns: req/s (higher is better)", lambda s: s.rps, rate),
        ("64 B echo: p99 latency, µs (lower is better)", lambda s: s.lat64("p99"), num),
        ("2 MiB echo: MB/s (higher is better)", lambda s: s.mbps, num),
        ("idle connections: server RSS bytes/conn (lower is better)", lambda s: s.idle_bytes, lambda v: f"{v:,.0f}"),
    ]
    fig, axes = plt.subplots(2, 2, figsize=(13, 8))
    for ax, (label, get, fmt) in zip(axes.flat, panels):
        names = [s.name for s in servers if get(s) is not None]
        vals = [get(s) for s in servers if get(s) is not None]
        colors = ["#d62728" if n.startswith("asyncgo") else "#1f77b4" for n in names]
        bars = ax.bar(range(len(vals)), vals, color=colors)
        ax.set_xticks(range(len(vals)))
        ax.set_xticklabels(names, rotation=20, ha="right", fontsize=9)
        ax.set_title(label, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        for b, v in zip(bars, vals):
            ax.annotate(fmt(v), (b.get_x() + b.get_width() / 2, b.get_height()), ha="center", va="bottom", fontsize=8)
        if vals:
            ax.set_ylim(0, max(vals) * 1.15)
        else:
            ax.text(0.5, 0.5, "not measured", ha="center", va="center", transform=ax.transAxes)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir", required=True, help="loadgen's JSON reports, SERVER.WORKLOAD.json")
    p.add_argument("--readme", required=True, help="the markdown file whose section to replace")
    p.add_argument("--png", help="write the bar charts here")
    p.add_argument("--servers", default=" ".join(DESCRIBE), help="server names, in table order")
    p.add_argument("--info", action="append", default=[], help="KEY=VALUE about the run")
    p.add_argument("--skipped", action="append", default=[], help="NAME=why it was not measured")
    p.add_argument("--settings", default="", help="a sentence on the workloads' settings")
    args = p.parse_args()

    servers = [Server(args.dir, n) for n in args.servers.split()]
    skipped = [tuple(s.partition("=")[::2]) for s in args.skipped]
    skipped_names = {n for n, _ in skipped}
    for s in servers:
        if not s.measured() and s.name not in skipped_names:
            skipped.append((s.name, "no report"))
    servers = [s for s in servers if s.measured()]
    if not servers:
        sys.exit("netreport.py: no server was measured")

    with open(args.readme) as f:
        text = f.read()
    new = replace_section(text, section(args, servers, skipped))
    if not new.endswith("\n"):
        new += "\n"
    with open(args.readme, "w") as f:
        f.write(new)
    print(f"netreport.py: wrote the section {HEADING!r} of {args.readme}", file=sys.stderr)
    if args.png:
        info = dict(kv.partition("=")[::2] for kv in args.info)
        title = "asyncgo echo servers and their peers" + (
            f" ({info.get('date', '')}, commit {info.get('commit', '?')}, {info.get('nproc', '?')} cores shared with the load generator)"
            if info
            else ""
        )
        plot(servers, args.png, title)
        print(f"netreport.py: wrote {args.png}", file=sys.stderr)


if __name__ == "__main__":
    main()

"""What the peer scripts share: the loop under test, the JSON-lines output
that docs/bench/report.py reads, and running each workload in a fresh
interpreter so that one workload's heap does not skew the next."""

import argparse
import asyncio
import json
import os
import subprocess
import sys


def new_loop(impl):
    if impl == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def emit(impl, name, metric, value):
    # "unit" is a synonym of "metric", for readers of the raw output.
    print(json.dumps({"impl": impl, "name": name, "metric": metric, "unit": metric, "value": value}), flush=True)


def main(doc, script, workloads, extra_flags=()):
    """Parse --loop/--workload/--inline and run the workloads.

    workloads maps a name to fn(impl, loop, args); extra_flags are
    (flag, help) pairs of store_true options passed on to the children.
    """
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    p.add_argument("--workload", action="append", choices=list(workloads), help="default: all, each in its own process")
    p.add_argument("--inline", action="store_true", help="run in this process (used by the parent)")
    for flag, help_text in extra_flags:
        p.add_argument(flag, action="store_true", help=help_text)
    args = p.parse_args()
    names = args.workload or list(workloads)
    if args.inline:
        for name in names:
            loop = new_loop(args.loop)
            asyncio.set_event_loop(loop)
            try:
                workloads[name](args.loop, loop, args)
            finally:
                loop.close()
        return
    failed = False
    for name in names:
        cmd = [sys.executable, os.path.abspath(script), "--loop=" + args.loop, "--workload=" + name, "--inline"]
        cmd += [flag for flag, _ in extra_flags if getattr(args, flag.lstrip("-").replace("-", "_"))]
        r = subprocess.run(cmd)
        if r.returncode != 0:
            print(f"{os.path.basename(script)}: {args.loop} {name} failed (exit {r.returncode})", file=sys.stderr)
            failed = True
    sys.exit(1 if failed else 0)

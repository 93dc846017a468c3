#!/usr/bin/python3
"""Python twins of asyncgo's executor benchmarks (executor/bench_test.go).

Each workload awaits run_in_executor from a task on CPython's asyncio or on
uvloop, as asyncgo's loop.RunInExecutor does, with a trivial function
(ident(x) returns x):

  ppe_roundtrip   ProcessPoolExecutor(2), warm; 2,000 sequential
                  `await loop.run_in_executor(pool, ident, i)`. Best of 3.
                  Twin of BenchmarkProcessPoolRoundTrip and
                  BenchmarkLoopRunInExecutorProcess.
  ppe_concurrent  ProcessPoolExecutor(2), warm; asyncio.gather of 10,000
                  run_in_executor calls, all submitted at once (Go keeps
                  1,024 in flight). Best of 3. Twin of
                  BenchmarkProcessPoolConcurrent.
  tpe_roundtrip   ThreadPoolExecutor() (default size), 10,000 sequential
                  awaits. Best of 3. Twin of BenchmarkThreadPoolRoundTrip.
  tpe_concurrent  ThreadPoolExecutor(), gather of 20,000 run_in_executor
                  calls. Best of 3. Twin of BenchmarkThreadPoolConcurrent.

Usage:
  /usr/bin/python3 executor.py --loop=asyncio|uvloop [--workload=NAME ...]

Every workload runs in a fresh interpreter. Results go to stdout as JSON
lines, in the format of peers.py (read by docs/bench/report.py):

  {"impl": "uvloop", "name": "ppe_roundtrip", "metric": "µs/call", "value": 207.0}
"""

import argparse
import asyncio
import concurrent.futures
import json
import os
import subprocess
import sys
import time

WORKLOADS = ["ppe_roundtrip", "ppe_concurrent", "tpe_roundtrip", "tpe_concurrent"]


def ident(x):
    return x


def new_loop(impl):
    if impl == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def emit(impl, name, metric, value):
    print(json.dumps({"impl": impl, "name": name, "metric": metric, "value": value}), flush=True)


async def warm(loop, pool, workers):
    # Start every worker (and thread) before the clock does.
    await asyncio.gather(*[loop.run_in_executor(pool, ident, i) for i in range(4 * workers)])


async def sequential(loop, pool, n):
    t0 = time.perf_counter()
    for i in range(n):
        assert await loop.run_in_executor(pool, ident, i) == i
    return time.perf_counter() - t0


async def gathered(loop, pool, n):
    t0 = time.perf_counter()
    got = await asyncio.gather(*[loop.run_in_executor(pool, ident, i) for i in range(n)])
    dt = time.perf_counter() - t0
    assert got == list(range(n))
    return dt


def bench(impl, loop, name, make_pool, workers, kind, n, repeat=3):
    async def main():
        lp = asyncio.get_running_loop()
        with make_pool() as pool:
            await warm(lp, pool, workers)
            run = sequential if kind == "sequential" else gathered
            return min([await run(lp, pool, n) for _ in range(repeat)])

    best = loop.run_until_complete(main())
    if kind == "sequential":
        emit(impl, name, "µs/call", best * 1e6 / n)
    emit(impl, name, "calls/s", n / best)


def run_one(impl, name):
    loop = new_loop(impl)
    asyncio.set_event_loop(loop)
    try:
        ppe = lambda: concurrent.futures.ProcessPoolExecutor(2)  # noqa: E731
        tpe = concurrent.futures.ThreadPoolExecutor
        tpe_workers = min(32, (os.cpu_count() or 1) + 4)
        if name == "ppe_roundtrip":
            bench(impl, loop, name, ppe, 2, "sequential", 2_000)
        elif name == "ppe_concurrent":
            bench(impl, loop, name, ppe, 2, "concurrent", 10_000)
        elif name == "tpe_roundtrip":
            bench(impl, loop, name, tpe, tpe_workers, "sequential", 10_000)
        elif name == "tpe_concurrent":
            bench(impl, loop, name, tpe, tpe_workers, "concurrent", 20_000)
        else:
            sys.exit("unknown workload " + name)
    finally:
        loop.close()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    p.add_argument("--workload", action="append", choices=WORKLOADS, help="default: all, each in its own process")
    p.add_argument("--inline", action="store_true", help="run in this process (used by the parent)")
    args = p.parse_args()
    names = args.workload or WORKLOADS
    if args.inline:
        for name in names:
            run_one(args.loop, name)
        return
    failed = False
    for name in names:
        cmd = [sys.executable, os.path.abspath(__file__), "--loop=" + args.loop, "--workload=" + name, "--inline"]
        r = subprocess.run(cmd)
        if r.returncode != 0:
            print(f"executor.py: {args.loop} {name} failed (exit {r.returncode})", file=sys.stderr)
            failed = True
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

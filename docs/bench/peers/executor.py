#!/usr/bin/python3
"""Python twins of asyncgo's executor benchmarks (executor/bench_test.go for
the ThreadPool, executor/processpool/bench_test.go for the process pool).

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

import asyncio
import concurrent.futures
import os
import time

from common import emit, main


def ident(x):
    return x



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


def ppe():
    return concurrent.futures.ProcessPoolExecutor(2)


TPE = concurrent.futures.ThreadPoolExecutor
TPE_WORKERS = min(32, (os.cpu_count() or 1) + 4)

WORKLOADS = {
    "ppe_roundtrip": lambda impl, loop, args: bench(impl, loop, "ppe_roundtrip", ppe, 2, "sequential", 2_000),
    "ppe_concurrent": lambda impl, loop, args: bench(impl, loop, "ppe_concurrent", ppe, 2, "concurrent", 10_000),
    "tpe_roundtrip": lambda impl, loop, args: bench(impl, loop, "tpe_roundtrip", TPE, TPE_WORKERS, "sequential", 10_000),
    "tpe_concurrent": lambda impl, loop, args: bench(impl, loop, "tpe_concurrent", TPE, TPE_WORKERS, "concurrent", 20_000),
}

if __name__ == "__main__":
    main(__doc__, __file__, WORKLOADS)

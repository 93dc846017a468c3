#!/usr/bin/python3
"""Python twins of asyncgo's lock and queue benchmarks (loop/bench_locks_test.go).

Each workload does the same work as its Go benchmark, on CPython's asyncio or
on uvloop:

  queue_throughput  1,000,000 ints from a producer task to a consumer task
                    through asyncio.Queue(1000) with await put / await get.
  lock_contention   100 tasks each doing, N times: await lock.acquire(),
                    await asyncio.sleep(0) inside the critical section,
                    lock.release() (N = 300 here, 1,000 in Go: the metric is
                    a rate). Best of 3 runs.
  event_fanout      100,000 tasks parked in await event.wait(); one set() and
                    the loop running until every waiter has resumed and
                    returned, timed. Best of 3 runs.
  bare_switch       the cost of one await asyncio.sleep(0) among 100,000 live
                    tasks: the tasks park on a gate future untimed; then the
                    gate is set and the loop runs until all have returned,
                    timed, once with each task doing one sleep(0) after the
                    gate (B) and once with none (A); ns/switch is (B - A) /
                    100,000 (best of 3 each). Go's twin parks the tasks in
                    their Sleep(0) itself, which uvloop cannot do: its
                    stop() lets the tasks' next steps run in the same
                    run_forever, so they would finish untimed.

Usage:
  /usr/bin/python3 locks_queues.py --loop=asyncio|uvloop [--workload=NAME ...]

Every workload runs in a fresh interpreter. Results go to stdout as JSON lines,
in the format of peers.py (read by docs/bench/report.py), with "unit" as a
synonym of "metric":

  {"impl": "uvloop", "name": "queue_throughput", "metric": "items/s", "unit": "items/s", "value": 1.6e6}
"""

import asyncio
import time

from common import emit, main



def bench_queue_throughput(impl, loop, n=1_000_000, maxsize=1000):
    async def main():
        q = asyncio.Queue(maxsize)

        async def producer():
            put = q.put
            for i in range(n):
                await put(i)

        t0 = time.perf_counter()
        p = asyncio.ensure_future(producer())
        get = q.get
        s = 0
        for _ in range(n):
            s += await get()
        await p
        dt = time.perf_counter() - t0
        assert s == n * (n - 1) // 2
        return dt

    dt = loop.run_until_complete(main())
    emit(impl, "queue_throughput", "items/s", n / dt)
    emit(impl, "queue_throughput", "ns/item", dt * 1e9 / n)


def bench_lock_contention(impl, loop, tasks=100, rounds=300, repeat=3):
    best = None
    for _ in range(repeat):

        async def main():
            lock = asyncio.Lock()
            acquired = 0

            async def body():
                nonlocal acquired
                for _ in range(rounds):
                    await lock.acquire()
                    acquired += 1
                    try:
                        await asyncio.sleep(0)
                    finally:
                        lock.release()

            t0 = time.perf_counter()
            await asyncio.gather(*[body() for _ in range(tasks)])
            dt = time.perf_counter() - t0
            assert acquired == tasks * rounds
            return dt

        dt = loop.run_until_complete(main())
        best = dt if best is None else min(best, dt)
    acq = tasks * rounds
    emit(impl, "lock_contention", "acquisitions/s", acq / best)
    emit(impl, "lock_contention", "ns/acquisition", best * 1e9 / acq)


def run_parked(loop, n, make_body, trigger):
    """Create n tasks from make_body(done_one), run one iteration (every task
    starts and parks), then time trigger() and the loop until all are done."""
    done = loop.create_future()
    left = n

    def done_one():
        nonlocal left
        left -= 1
        if left == 0:
            done.set_result(None)

    body = make_body(done_one)
    for _ in range(n):
        loop.create_task(body())
    loop.call_soon(loop.stop)
    loop.run_forever()  # one iteration: every task starts and parks
    t0 = time.perf_counter()
    trigger()
    loop.run_until_complete(done)
    return time.perf_counter() - t0


def bench_event_fanout(impl, loop, n=100_000, repeat=3):
    best = None
    for _ in range(repeat):
        ev = asyncio.Event()

        def make_body(done_one):
            async def body():
                await ev.wait()
                done_one()

            return body

        dt = run_parked(loop, n, make_body, ev.set)
        best = dt if best is None else min(best, dt)
    emit(impl, "event_fanout", "ns/waiter", best * 1e9 / n)
    emit(impl, "event_fanout", "waiters/s", n / best)


def bench_bare_switch(impl, loop, n=100_000, repeat=3):
    best = {0: None, 1: None}
    for _ in range(repeat):
        for sleeps in (0, 1):
            gate = loop.create_future()

            def make_body(done_one):
                async def body():
                    await gate
                    for _ in range(sleeps):
                        await asyncio.sleep(0)
                    done_one()

                return body

            dt = run_parked(loop, n, make_body, lambda: gate.set_result(None))
            best[sleeps] = dt if best[sleeps] is None else min(best[sleeps], dt)
    per = (best[1] - best[0]) / n
    emit(impl, "bare_switch", "ns/switch", per * 1e9)
    emit(impl, "bare_switch", "switches/s", 1 / per if per > 0 else float("nan"))


WORKLOADS = {
    "queue_throughput": lambda impl, loop, args: bench_queue_throughput(impl, loop),
    "lock_contention": lambda impl, loop, args: bench_lock_contention(impl, loop),
    "event_fanout": lambda impl, loop, args: bench_event_fanout(impl, loop),
    "bare_switch": lambda impl, loop, args: bench_bare_switch(impl, loop),
}

if __name__ == "__main__":
    main(__doc__, __file__, WORKLOADS)

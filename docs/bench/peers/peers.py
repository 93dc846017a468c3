#!/usr/bin/python3
"""Python twins of asyncgo's loop benchmarks (loop/bench_test.go).

Each workload does the same work as its Go benchmark, on CPython's asyncio
or on uvloop:

  callsoon     call_soon throughput: batches of 1,024 callbacks (one
               function object made once), each batch run by one loop
               iteration (call_soon(loop.stop) + run_forever).
  task_switch  1,000 tasks, parked on a gate future, then each doing
               `await asyncio.sleep(0)` 1,000 times: 1,000,000 switches.
  spawn_await  create_task + await of a trivial coroutine from a main task.
  timers       100,000 call_later timers with random delays in [0, 100ms),
               scheduled from one callback; total time from the first
               call_later to the last callback, and the worst lateness
               (time.monotonic() when the callback runs minus the deadline,
               time.monotonic() at the call_later plus the delay; in asyncio
               that is handle.when(), in Go TimerHandle.When()); also the
               time the call_later calls take, and the worst lateness among
               timers whose deadline came after they were all scheduled.
  mem          1,000,000 tasks all awaiting one future: growth of the
               process's resident set (and of tracemalloc's count when
               --tracemalloc is given) divided by the number of tasks.

Usage:
  /usr/bin/python3 peers.py --loop=asyncio|uvloop [--workload=NAME ...]

Every workload runs in a fresh interpreter (so one workload's freed memory
cannot hide another's growth). Results go to stdout as JSON lines:

  {"impl": "uvloop", "name": "task_switch", "metric": "switches/s", "value": 1.7e6}
"""

import asyncio
import gc
import os
import random
import time

from common import emit, main



def bench_callsoon(impl, loop, total=4_000_000, batch=1024):
    ran = 0

    def cb():
        nonlocal ran
        ran += 1

    stop = loop.stop
    call_soon = loop.call_soon

    def run_batch(n):
        for _ in range(n):
            call_soon(cb)
        call_soon(stop)
        loop.run_forever()

    run_batch(batch)  # warm up
    ran = 0
    t0 = time.perf_counter()
    done = 0
    while done < total:
        n = min(batch, total - done)
        run_batch(n)
        done += n
    dt = time.perf_counter() - t0
    assert ran == total, (ran, total)
    emit(impl, "callsoon", "callbacks/s", total / dt)
    emit(impl, "callsoon", "ns/callback", dt * 1e9 / total)


def bench_task_switch(impl, loop, tasks=1000, rounds=1000, repeat=3):
    best = None
    for _ in range(repeat):
        gate = loop.create_future()
        done = loop.create_future()
        left = tasks

        async def body():
            nonlocal left
            await gate
            for _ in range(rounds):
                await asyncio.sleep(0)
            left -= 1
            if left == 0:
                done.set_result(None)

        for _ in range(tasks):
            loop.create_task(body())
        loop.call_soon(loop.stop)
        loop.run_forever()  # one iteration: every task parks on the gate

        t0 = time.perf_counter()
        gate.set_result(None)
        loop.run_until_complete(done)
        dt = time.perf_counter() - t0
        best = dt if best is None else min(best, dt)
    switches = tasks * rounds
    emit(impl, "task_switch", "switches/s", switches / best)
    emit(impl, "task_switch", "ns/switch", best * 1e9 / switches)


def bench_spawn_await(impl, loop, n=300_000):
    async def trivial():
        return 1

    async def main():
        await loop.create_task(trivial())  # warm up
        s = 0
        t0 = time.perf_counter()
        for _ in range(n):
            s += await loop.create_task(trivial())
        dt = time.perf_counter() - t0
        assert s == n
        return dt

    dt = loop.run_until_complete(main())
    emit(impl, "spawn_await", "tasks/s", n / dt)
    emit(impl, "spawn_await", "ns/op", dt * 1e9 / n)


def bench_timers(impl, loop, n=100_000, spread=0.1, repeat=3):
    rng = random.Random(12)
    totals, worst, worst_after, scheds = [], 0.0, 0.0, []
    for _ in range(repeat):
        delays = [rng.random() * spread for _ in range(n)]
        deadlines = [0.0] * n
        state = {"fired": 0, "late": 0.0, "late_after": 0.0, "start": 0.0, "sched": 0.0, "last": 0.0}
        mono = time.monotonic

        def cb(i):
            now = mono()
            late = now - deadlines[i]
            if late > state["late"]:
                state["late"] = late
            if deadlines[i] > state["sched"] and late > state["late_after"]:
                state["late_after"] = late
            state["fired"] += 1
            if state["fired"] == n:
                state["last"] = now
                loop.stop()

        def schedule():
            state["start"] = mono()
            call_later = loop.call_later
            for i, d in enumerate(delays):
                # The deadline is real time at the call plus the delay:
                # uvloop's own when() counts from libuv's cached clock,
                # which can be tens of ms stale here.
                deadlines[i] = mono() + d
                call_later(d, cb, i)
            state["sched"] = mono()

        loop.call_soon(schedule)
        loop.run_forever()
        assert state["fired"] == n
        totals.append(state["last"] - state["start"])
        scheds.append(state["sched"] - state["start"])
        worst = max(worst, state["late"])
        worst_after = max(worst_after, state["late_after"])
    emit(impl, "timers", "total-ms", 1000 * sum(totals) / len(totals))
    emit(impl, "timers", "late-ms", 1000 * worst)
    emit(impl, "timers", "sched-ms", 1000 * sum(scheds) / len(scheds))
    emit(impl, "timers", "late-after-sched-ms", 1000 * worst_after)


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def bench_mem(impl, loop, n=1_000_000, use_tracemalloc=False):
    gate = loop.create_future()
    left = n
    done = loop.create_future()

    async def body():
        nonlocal left
        v = await gate
        left -= 1
        if left == 0:
            done.set_result(None)
        return v

    if use_tracemalloc:
        import tracemalloc

        tracemalloc.start()
    gc.collect()
    rss0 = rss_bytes()
    tm0 = tracemalloc.get_traced_memory()[0] if use_tracemalloc else 0
    t0 = time.perf_counter()
    for _ in range(n):
        loop.create_task(body())
    loop.call_soon(loop.stop)
    loop.run_forever()  # one iteration: every task parks on the gate
    gc.collect()
    rss1 = rss_bytes()
    tm1 = tracemalloc.get_traced_memory()[0] if use_tracemalloc else 0
    gate.set_result(1)
    loop.run_until_complete(done)
    dt = time.perf_counter() - t0
    emit(impl, "mem", "bytes/task", (rss1 - rss0) / n)
    if use_tracemalloc:
        emit(impl, "mem", "traced-bytes/task", (tm1 - tm0) / n)
    emit(impl, "mem", "seconds", dt)


WORKLOADS = {
    "callsoon": lambda impl, loop, args: bench_callsoon(impl, loop),
    "task_switch": lambda impl, loop, args: bench_task_switch(impl, loop),
    "spawn_await": lambda impl, loop, args: bench_spawn_await(impl, loop),
    "timers": lambda impl, loop, args: bench_timers(impl, loop),
    "mem": lambda impl, loop, args: bench_mem(impl, loop, use_tracemalloc=args.tracemalloc),
}

if __name__ == "__main__":
    main(__doc__, __file__, WORKLOADS, [("--tracemalloc", "mem: also report tracemalloc's growth")])

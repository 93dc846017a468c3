#!/usr/bin/python3
"""Python twins of asyncgo's aio benchmarks (issue 11; the Go side is
docs/bench/aiobench): aioprocessing (Debian's python3-aioprocessing, its
AioQueue/AioEvent/AioLock/AioPool awaited on a CPython asyncio loop in the
parent) against plain multiprocessing (blocking calls, no loop), and the raw
floors under them.

Every workload starts its child process(es) once, with multiprocessing's
default start method on Linux, which for Python 3.11 is 'fork' (not set
explicitly: the script checks it and says so on stderr if it is not), then
does an untimed warm-up and 3 timed runs and reports the best of the 3.
Children always use blocking calls, as aioprocessing's documentation shows
(an AioProcess whose target calls get/put/wait/acquire directly); only the
parent differs between the impls.

  queue_small   items/s from the parent to a child and back: the parent puts
                N ints into q1, the child gets each from q1 and puts it into
                q2, the parent gets them from q2, with at most 500 items
                outstanding (put and not yet got back by the parent: a
                semaphore of 500 taken before each put, given back after each
                get). multiprocessing: mp.Queue, a putter thread in the
                parent and the getter in its main thread, both blocking.
                aioprocessing: AioQueue, a producer task doing `await
                q1.coro_put(i)` and the main task `await q2.coro_get()`, on
                one asyncio loop. N = 200,000 (multiprocessing), 6,000
                (aioprocessing), so a run takes about 1-2 s; the sum of what
                came back is checked.
  queue_2mib    the same with 2 MiB items (one bytes object of 2*1024*1024
                random bytes, put N times) and at most 8 outstanding: 8 is
                enough to keep every stage (the parent's feeder thread, the
                pipe, the child, the pipe back, the parent's reader) busy
                with an item each, and it bounds what the pipeline holds to
                about 8 x 2 MiB per copy (items, pickles, reads) instead of
                the 1 GiB of 500; asyncgo's reactor benchmark keeps 8 x 2 MiB
                in flight as well (4 connections x 2). Reports MB/s (10^6
                bytes/s of payload, one direction) and items/s. N = 600
                (multiprocessing), 400 (aioprocessing). The length of every
                item that comes back is checked, and the whole content of
                the warm-up's.
  raw_socketpair_2mib (impl raw) the floor under queue_2mib: the same 2 MiB
                messages, 8 outstanding, parent -> child -> parent over one
                socket.socketpair() (AF_UNIX, SOCK_STREAM, default buffer
                sizes), each a frame of a 4-byte big-endian length and the
                payload: a writer thread in the parent sends the frames, its
                main thread reads the echoes with recv_into into a
                preallocated buffer; the child reads each whole frame into
                its own preallocated buffer and sends it back. MB/s and
                items/s as in queue_2mib, N = 2,000.
  event_roundtrip  µs per round trip, two Events: the parent sets e1; the
                child, waiting in e1.wait(), clears e1 and sets e2; the
                parent, waiting in e2.wait(), clears e2; repeat.
                aioprocessing: `e1.set()`, `await e2.coro_wait()`,
                `e2.clear()` in the parent.
  lock_roundtrip   µs per round trip, two Locks used as binary semaphores
                (multiprocessing's Lock has no owner: "any process or thread
                may release it"): the parent acquires both before the child
                starts; a round trip is the parent's l1.release(), the
                child's l1.acquire() (it was waiting in it) and then
                l2.release(), and the parent's l2.acquire() (waiting in it).
                Each lock thus carries one token from one process to the
                other and never is released twice. aioprocessing: AioLocks,
                `l1.release()`, `await l2.coro_acquire()` in the parent.
  queue_roundtrip  µs per round trip, one item in flight: the parent puts i
                into q1, the child gets it and puts it into q2, the parent
                gets it (checked). aioprocessing: `await q1.coro_put(i)`,
                `await q2.coro_get()`.
                The three round trips: N = 20,000 per run (multiprocessing),
                4,000 (aioprocessing), after 500 untimed.
  pipe_roundtrip   (impl raw) the floor under the round trips: the parent
                writes 1 byte to one os.pipe(), the child reads it and writes
                1 byte to a second pipe, the parent reads it. N = 50,000.
  pool_map      items/s of multiprocessing.Pool(2).map(f, range(100000),
                chunksize=100) with f(x) = x*x (the sum of the results
                checked), after one untimed map of 10,000; aioprocessing:
                `await AioPool(2).coro_map(f, range(100000), chunksize=100)`.

Usage:
  /usr/bin/python3 aioproc.py --impl=multiprocessing|aioprocessing|raw [--workload=NAME ...]

--impl may be given more than once (default: all three); a workload that
does not apply to an impl is skipped (raw has raw_socketpair_2mib and
pipe_roundtrip, the other two the rest). Every workload runs in a fresh
interpreter. Results go to stdout as JSON lines in the format of the other
peers (common.emit; "unit" is a synonym of "metric"), read by
docs/bench/aioreport.py:

  {"impl": "aioprocessing", "name": "event_roundtrip", "metric": "µs/roundtrip", "unit": "µs/roundtrip", "value": 112.0}
"""

import argparse
import asyncio
import multiprocessing as mp
import os
import socket
import struct
import subprocess
import sys
import threading
import time

from common import emit

REPEAT = 3
SMALL_INFLIGHT = 500
BIG_INFLIGHT = 8
BIG = 2 * 1024 * 1024

# per impl: items (or round trips) in one timed run
N = {
    "queue_small": {"multiprocessing": 200_000, "aioprocessing": 6_000},
    "queue_2mib": {"multiprocessing": 600, "aioprocessing": 400},
    "raw_socketpair_2mib": {"raw": 2_000},
    "event_roundtrip": {"multiprocessing": 20_000, "aioprocessing": 4_000},
    "lock_roundtrip": {"multiprocessing": 20_000, "aioprocessing": 4_000},
    "queue_roundtrip": {"multiprocessing": 20_000, "aioprocessing": 4_000},
    "pipe_roundtrip": {"raw": 50_000},
    "pool_map": {"multiprocessing": 100_000, "aioprocessing": 100_000},
}
WARM_ROUNDTRIPS = 500


def aioprocessing():
    import aioprocessing as aiop

    return aiop


def process(impl, target, *args):
    cls = aioprocessing().AioProcess if impl == "aioprocessing" else mp.Process
    p = cls(target=target, args=args, daemon=True)
    p.start()
    return p


def run_async(coro):
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


def best_of(run, repeat=REPEAT):
    return min(run() for _ in range(repeat))


# ---- queues: parent -> child -> parent ----


def queue_echo(q1, q2):
    """The child of the queue workloads: q1 -> q2 until None."""
    get, put = q1.get, q2.put
    while True:
        x = get()
        put(x)
        if x is None:
            return


def make_queues(impl):
    if impl == "aioprocessing":
        aiop = aioprocessing()
        return aiop.AioQueue(), aiop.AioQueue()
    return mp.Queue(), mp.Queue()


def stop_queue_child(p, q1, q2):
    q1.put(None)
    assert q2.get() is None
    p.join(10)


def mp_stream(q1, q2, items, inflight):
    """Blocking: a putter thread puts items (at most inflight outstanding),
    this thread gets them back. Returns (seconds, what came back)."""
    sem = threading.BoundedSemaphore(inflight)

    def putter():
        acquire, put = sem.acquire, q1.put
        for x in items:
            acquire()
            put(x)

    got = []
    t0 = time.perf_counter()
    t = threading.Thread(target=putter)
    t.start()
    get, release, append = q2.get, sem.release, got.append
    for _ in range(len(items)):
        append(get())
        release()
    dt = time.perf_counter() - t0
    t.join()
    return dt, got


async def aio_stream(q1, q2, items, inflight):
    """asyncio: a producer task awaits coro_put (at most inflight
    outstanding), this task awaits coro_get."""
    sem = asyncio.Semaphore(inflight)

    async def producer():
        for x in items:
            await sem.acquire()
            await q1.coro_put(x)

    got = []
    t0 = time.perf_counter()
    t = asyncio.ensure_future(producer())
    for _ in range(len(items)):
        got.append(await q2.coro_get())
        sem.release()
    dt = time.perf_counter() - t0
    await t
    return dt, got


def stream(impl, q1, q2, items, inflight):
    if impl == "aioprocessing":
        return run_async(aio_stream(q1, q2, items, inflight))
    return mp_stream(q1, q2, items, inflight)


def bench_queue_small(impl):
    n = N["queue_small"][impl]
    q1, q2 = make_queues(impl)
    p = process(impl, queue_echo, q1, q2)
    items = list(range(n))
    _, got = stream(impl, q1, q2, items[:1000], SMALL_INFLIGHT)
    assert got == items[:1000]

    def run():
        dt, got = stream(impl, q1, q2, items, SMALL_INFLIGHT)
        assert len(got) == n and sum(got) == n * (n - 1) // 2
        return dt

    best = best_of(run)
    stop_queue_child(p, q1, q2)
    emit(impl, "queue_small", "items/s", n / best)
    emit(impl, "queue_small", "µs/item", best * 1e6 / n)


def bench_queue_2mib(impl):
    n = N["queue_2mib"][impl]
    q1, q2 = make_queues(impl)
    p = process(impl, queue_echo, q1, q2)
    payload = os.urandom(BIG)
    _, got = stream(impl, q1, q2, [payload] * BIG_INFLIGHT, BIG_INFLIGHT)
    assert all(x == payload for x in got)

    def run():
        dt, got = stream(impl, q1, q2, [payload] * n, BIG_INFLIGHT)
        assert len(got) == n and all(len(x) == BIG for x in got)
        return dt

    best = best_of(run)
    stop_queue_child(p, q1, q2)
    emit(impl, "queue_2mib", "MB/s", n * BIG / best / 1e6)
    emit(impl, "queue_2mib", "items/s", n / best)


# ---- raw floor for 2 MiB: a socketpair ----


def recv_exact(sock, view):
    while view:
        k = sock.recv_into(view)
        if k == 0:
            return False
        view = view[k:]
    return True


def socket_echo(sock, other):
    other.close()  # the parent's end, inherited through fork: its close must reach us as EOF
    hdr = bytearray(4)
    buf = bytearray(BIG)
    while True:
        if not recv_exact(sock, memoryview(hdr)):
            return
        (size,) = struct.unpack(">I", hdr)
        if size > len(buf):
            buf = bytearray(size)
        body = memoryview(buf)[:size]
        if not recv_exact(sock, body):
            return
        sock.sendall(hdr)
        sock.sendall(body)


def bench_raw_socketpair_2mib(impl):
    n = N["raw_socketpair_2mib"][impl]
    a, b = socket.socketpair()
    p = process(impl, socket_echo, b, a)
    b.close()
    payload = os.urandom(BIG)
    hdr_out = struct.pack(">I", BIG)
    hdr_in = bytearray(4)
    buf = bytearray(BIG)

    def run(count, check=False):
        sem = threading.BoundedSemaphore(BIG_INFLIGHT)

        def writer():
            for _ in range(count):
                sem.acquire()
                a.sendall(hdr_out)
                a.sendall(payload)

        t0 = time.perf_counter()
        t = threading.Thread(target=writer)
        t.start()
        for _ in range(count):
            assert recv_exact(a, memoryview(hdr_in)) and struct.unpack(">I", hdr_in)[0] == BIG
            assert recv_exact(a, memoryview(buf))
            if check:
                assert buf == payload
            sem.release()
        dt = time.perf_counter() - t0
        t.join()
        return dt

    run(BIG_INFLIGHT, check=True)
    best = best_of(lambda: run(n))
    a.close()
    p.join(10)
    emit(impl, "raw_socketpair_2mib", "MB/s", n * BIG / best / 1e6)
    emit(impl, "raw_socketpair_2mib", "items/s", n / best)


# ---- round trips ----


def event_child(e1, e2):
    while True:
        e1.wait()
        e1.clear()
        e2.set()


def lock_child(l1, l2):
    while True:
        l1.acquire()
        l2.release()


def roundtrips(impl, name, one_sync, one_async):
    """Times N round trips (best of REPEAT) after WARM_ROUNDTRIPS untimed,
    with one_sync(i) (multiprocessing) or await one_async(i)
    (aioprocessing) per round trip, and emits µs/roundtrip."""
    n = N[name][impl]
    if impl == "aioprocessing":

        async def go():
            for i in range(WARM_ROUNDTRIPS):
                await one_async(i)
            best = None
            for _ in range(REPEAT):
                t0 = time.perf_counter()
                for i in range(n):
                    await one_async(i)
                dt = time.perf_counter() - t0
                best = dt if best is None else min(best, dt)
            return best

        best = run_async(go())
    else:
        for i in range(WARM_ROUNDTRIPS):
            one_sync(i)

        def run():
            t0 = time.perf_counter()
            for i in range(n):
                one_sync(i)
            return time.perf_counter() - t0

        best = best_of(run)
    emit(impl, name, "µs/roundtrip", best * 1e6 / n)


def bench_event_roundtrip(impl):
    if impl == "aioprocessing":
        aiop = aioprocessing()
        e1, e2 = aiop.AioEvent(), aiop.AioEvent()
    else:
        e1, e2 = mp.Event(), mp.Event()
    p = process(impl, event_child, e1, e2)

    def one_sync(_):
        e1.set()
        e2.wait()
        e2.clear()

    async def one_async(_):
        e1.set()
        await e2.coro_wait()
        e2.clear()

    roundtrips(impl, "event_roundtrip", one_sync, one_async)
    p.terminate()
    p.join(10)


def bench_lock_roundtrip(impl):
    if impl == "aioprocessing":
        aiop = aioprocessing()
        l1, l2 = aiop.AioLock(), aiop.AioLock()
    else:
        l1, l2 = mp.Lock(), mp.Lock()
    assert l1.acquire(False) and l2.acquire(False)
    p = process(impl, lock_child, l1, l2)

    def one_sync(_):
        l1.release()
        l2.acquire()

    async def one_async(_):
        l1.release()
        await l2.coro_acquire()

    roundtrips(impl, "lock_roundtrip", one_sync, one_async)
    p.terminate()
    p.join(10)


def bench_queue_roundtrip(impl):
    q1, q2 = make_queues(impl)
    p = process(impl, queue_echo, q1, q2)

    def one_sync(i):
        q1.put(i)
        assert q2.get() == i

    async def one_async(i):
        await q1.coro_put(i)
        assert await q2.coro_get() == i

    roundtrips(impl, "queue_roundtrip", one_sync, one_async)
    stop_queue_child(p, q1, q2)


def pipe_child(r, w, *parents):
    for fd in parents:  # the parent's ends, inherited through fork
        os.close(fd)
    read, write = os.read, os.write
    while read(r, 1):
        write(w, b"x")


def bench_pipe_roundtrip(impl):
    r1, w1 = os.pipe()
    r2, w2 = os.pipe()
    p = process(impl, pipe_child, r1, w2, w1, r2)
    os.close(r1)
    os.close(w2)
    read, write = os.read, os.write

    def one_sync(_):
        write(w1, b"x")
        assert read(r2, 1) == b"x"

    roundtrips(impl, "pipe_roundtrip", one_sync, None)
    os.close(w1)
    p.join(10)
    os.close(r2)


# ---- Pool.map ----


def square(x):
    return x * x


def bench_pool_map(impl):
    n = N["pool_map"][impl]
    want = sum(x * x for x in range(n))
    if impl == "aioprocessing":

        async def go():
            with aioprocessing().AioPool(2) as pool:
                assert await pool.coro_map(square, range(10_000), chunksize=100) == [x * x for x in range(10_000)]
                best = None
                for _ in range(REPEAT):
                    t0 = time.perf_counter()
                    got = await pool.coro_map(square, range(n), chunksize=100)
                    dt = time.perf_counter() - t0
                    assert len(got) == n and sum(got) == want
                    best = dt if best is None else min(best, dt)
                return best

        best = run_async(go())
    else:
        with mp.Pool(2) as pool:
            assert pool.map(square, range(10_000), chunksize=100) == [x * x for x in range(10_000)]

            def run():
                t0 = time.perf_counter()
                got = pool.map(square, range(n), chunksize=100)
                dt = time.perf_counter() - t0
                assert len(got) == n and sum(got) == want
                return dt

            best = best_of(run)
    emit(impl, "pool_map", "items/s", n / best)


WORKLOADS = {
    "queue_small": bench_queue_small,
    "queue_2mib": bench_queue_2mib,
    "raw_socketpair_2mib": bench_raw_socketpair_2mib,
    "event_roundtrip": bench_event_roundtrip,
    "lock_roundtrip": bench_lock_roundtrip,
    "queue_roundtrip": bench_queue_roundtrip,
    "pipe_roundtrip": bench_pipe_roundtrip,
    "pool_map": bench_pool_map,
}
IMPLS = ["multiprocessing", "aioprocessing", "raw"]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--impl", action="append", choices=IMPLS, help="default: all three")
    p.add_argument("--workload", action="append", choices=list(WORKLOADS), help="default: all, each in its own process")
    p.add_argument("--inline", action="store_true", help="run in this process (used by the parent)")
    args = p.parse_args()
    impls = args.impl or IMPLS
    names = args.workload or list(WORKLOADS)
    if mp.get_start_method() != "fork":
        print(f"aioproc.py: the start method is {mp.get_start_method()!r}, not 'fork'", file=sys.stderr)
    if args.inline:
        for impl in impls:
            for name in names:
                if impl in N[name]:
                    WORKLOADS[name](impl)
        return
    failed = False
    for impl in impls:
        for name in names:
            if impl not in N[name]:
                continue
            cmd = [sys.executable, os.path.abspath(__file__), "--impl=" + impl, "--workload=" + name, "--inline"]
            r = subprocess.run(cmd)
            if r.returncode != 0:
                print(f"aioproc.py: {impl} {name} failed (exit {r.returncode})", file=sys.stderr)
                failed = True
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

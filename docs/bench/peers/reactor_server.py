#!/usr/bin/python3
"""The Python twin of examples/reactor (docs/bench/reactor.sh): the seed's
server as a Python developer writes it, one asyncio loop and a
concurrent.futures.ProcessPoolExecutor.

  reactor_server.py --addr 127.0.0.1:8888 --workers 2
  reactor_server.py --uvloop --cpu 0.001 --inflight 16

Wire format, the same as the Go server's: a frame is a 4-byte big-endian
length and then that many bytes, at most --max-size; the client sends
messages, the server answers each, in order per connection, with one frame
whose payload is a status byte, 0 and the job's result, or 1 and a UTF-8
error message. The job is the message's 32-byte SHA-256 digest, after
spinning for --cpu seconds of the worker's own CPU time (time.thread_time).
A frame declared longer than --max-size gets an error reply after the replies
owed before it, and its connection closes.

Each connection is an asyncio.Protocol: data_received cuts the frames out
of one bytearray and hands each message to the pool with
loop.run_in_executor; the futures wait in a deque in arrival order, and
each completion writes every reply at the head of the deque that is ready.
A connection with --inflight messages unanswered is not read from
(pause_reading), nor one whose transport is above its high-water mark
(pause_writing): writes are not awaited one by one, as drain() would.
The pool's workers are started and warmed up before the loop runs.

It prints "pid N listening on ADDR" and serves until SIGTERM or SIGINT,
then stops accepting, shuts the pool down and exits 0.
"""

import argparse
import asyncio
import collections
import hashlib
import os
import signal
import sys
import time
from concurrent.futures import ProcessPoolExecutor

BACKLOG = 4096  # Go's net.Listen uses somaxconn (4096 here); asyncio's default is 100

_cpu = 0.0  # the job's added CPU time, set in each worker by _init


def _init(cpu):
    global _cpu
    _cpu = cpu


def job(data):
    """The digest of data, after _cpu seconds of this thread's CPU time."""
    if _cpu > 0:
        end = time.thread_time() + _cpu
        while time.thread_time() < end:
            pass
    return hashlib.sha256(data).digest()


def _warm(_):
    return os.getpid()


def _frame(status, payload):
    return (len(payload) + 1).to_bytes(4, "big") + bytes((status,)) + payload


class Reactor(asyncio.Protocol):
    """One connection: frames in, jobs out to the pool, replies in order."""

    def __init__(self, server):
        self.server = server
        self.loop = server.loop
        self.buf = bytearray()
        self.pending = collections.deque()  # futures (or ready reply frames), oldest first
        self.transport = None
        self.reading = True
        self.write_paused = False
        self.closing = False  # an oversized frame: close after the replies owed

    def connection_made(self, transport):
        self.transport = transport
        self.server.conns.add(self)

    def connection_lost(self, exc):
        self.server.conns.discard(self)
        self.transport = None
        for f in self.pending:
            if isinstance(f, asyncio.Future):
                f.cancel()
        self.pending.clear()

    def data_received(self, data):
        if self.closing:
            return
        self.buf += data
        self._parse()

    def _parse(self):
        buf, srv = self.buf, self.server
        k = srv.inflight
        while not self.closing and len(self.pending) < k and len(buf) >= 4:
            n = int.from_bytes(buf[:4], "big")
            if n > srv.max_size:
                self.closing = True
                self.pending.append(_frame(1, f"frame of {n} bytes over the cap of {srv.max_size}".encode()))
                buf.clear()
                break
            if len(buf) < 4 + n:
                break
            with memoryview(buf) as mv:
                msg = bytes(mv[4 : 4 + n])
            del buf[: 4 + n]
            fut = self.loop.run_in_executor(srv.pool, job, msg)
            fut.add_done_callback(self._done)
            self.pending.append(fut)
        self._flush()

    def _done(self, _fut):
        if self.transport is None:
            return
        self._flush()
        if self.buf and not self.closing:
            self._parse()  # messages read while the connection was at its bound

    def _flush(self):
        t = self.transport
        if t is None:
            return
        pending = self.pending
        while pending:
            head = pending[0]
            if isinstance(head, bytes):
                reply = head
            elif not head.done():
                break
            elif head.cancelled():
                reply = _frame(1, b"cancelled")
            elif head.exception() is not None:
                reply = _frame(1, str(head.exception()).encode())
            else:
                reply = _frame(0, head.result())
            pending.popleft()
            t.write(reply)
        if self.closing and not pending:
            t.close()
            return
        self._update_reading()

    def _update_reading(self):
        want = not self.closing and not self.write_paused and len(self.pending) < self.server.inflight
        if want != self.reading and self.transport is not None:
            self.reading = want
            if want:
                self.transport.resume_reading()
            else:
                self.transport.pause_reading()

    def pause_writing(self):
        self.write_paused = True
        self._update_reading()

    def resume_writing(self):
        self.write_paused = False
        self._update_reading()


class Server:
    def __init__(self, loop, pool, args):
        self.loop = loop
        self.pool = pool
        self.inflight = args.inflight
        self.max_size = args.max_size
        self.conns = set()


async def serve(args, pool):
    loop = asyncio.get_running_loop()
    srv = Server(loop, pool, args)
    host, _, port = args.addr.rpartition(":")
    server = await loop.create_server(lambda: Reactor(srv), host.strip("[]"), int(port), backlog=BACKLOG)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    impl = "uvloop" if args.uvloop else "asyncio"
    print(f"pid {os.getpid()} listening on {args.addr} ({impl}, {args.workers} workers, cpu {args.cpu}s)", flush=True)
    await stop.wait()
    server.close()
    for c in list(srv.conns):
        if c.transport is not None:
            c.transport.abort()
    await server.wait_closed()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--addr", default="127.0.0.1:8888", help="host:port")
    p.add_argument("--workers", type=int, default=os.cpu_count(), help="worker processes")
    p.add_argument("--max-size", type=int, default=2 << 20, help="largest message, in bytes")
    p.add_argument("--cpu", type=float, default=0.0, help="CPU seconds the job adds per message")
    p.add_argument("--inflight", type=int, default=16, help="messages per connection accepted and not yet answered")
    p.add_argument("--uvloop", action="store_true", help="run on uvloop's loop")
    args = p.parse_args()
    if args.workers < 1 or args.inflight < 1 or args.max_size < 0 or args.cpu < 0:
        p.error("--workers and --inflight must be at least 1, --max-size and --cpu not negative")

    pool = ProcessPoolExecutor(max_workers=args.workers, initializer=_init, initargs=(args.cpu,))
    # Start every worker before the loop runs (and before the clock does).
    list(pool.map(_warm, range(args.workers * 4)))
    try:
        if args.uvloop:
            import uvloop

            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                runner.run(serve(args, pool))
        else:
            asyncio.run(serve(args, pool))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""The Python twin of examples/prefork (docs/bench/prefork.sh): the seed's
suggested model, asyncio worker processes sharing one listening socket
through multiprocessing. The parent binds and listens, then starts
--workers multiprocessing.Process children (fork), each running its own
asyncio loop (or uvloop's) that serves the inherited socket with
loop.create_server(sock=...); the parent waits, and on SIGTERM or SIGINT
terminates the workers and exits 0.

  prefork_server.py --addr 127.0.0.1:8888 --workers 2 --cpu 0.001

Wire format, examples/reactor's: a frame is a 4-byte big-endian length and
that many bytes; each message is answered, in order, with a frame of a
status byte 0 and the message's SHA-256 digest. The job runs in the worker
that read the message, on its loop, after spinning for --cpu seconds of
the thread's CPU time (time.thread_time), as the Go server's -cpu.

It prints "pid N listening on ADDR".
"""

import argparse
import asyncio
import hashlib
import multiprocessing as mp
import os
import signal
import socket
import struct
import sys
import time

BACKLOG = 4096


class FrameProtocol(asyncio.Protocol):
    def __init__(self, cpu, max_size):
        self.cpu = cpu
        self.max_size = max_size
        self.buf = bytearray()

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        buf = self.buf
        buf += data
        used = 0
        out = []
        while len(buf) - used >= 4:
            (n,) = struct.unpack_from(">I", buf, used)
            if n > self.max_size:
                msg = b"message of %d bytes is over the cap" % n
                out.append(struct.pack(">IB", 1 + len(msg), 1) + msg)
                self.transport.write(b"".join(out))
                self.transport.close()
                return
            if len(buf) - used - 4 < n:
                break
            msg = bytes(buf[used + 4:used + 4 + n])
            used += 4 + n
            if self.cpu > 0:
                end = time.thread_time() + self.cpu
                while time.thread_time() < end:
                    pass
            out.append(struct.pack(">IB", 33, 0) + hashlib.sha256(msg).digest())
        del buf[:used]
        if out:
            self.transport.write(b"".join(out))


def worker(sock, cpu, max_size, use_uvloop):
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us
    if use_uvloop:
        import uvloop
        uvloop.install()

    async def main():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: FrameProtocol(cpu, max_size), sock=sock)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--addr", default="127.0.0.1:8888")
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--cpu", type=float, default=0.0)
    ap.add_argument("--max-size", type=int, default=2 << 20)
    ap.add_argument("--uvloop", action="store_true")
    args = ap.parse_args()
    host, port = args.addr.rsplit(":", 1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, int(port)))
    sock.listen(BACKLOG)
    sock.setblocking(False)
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=worker, args=(sock, args.cpu, args.max_size, args.uvloop)) for _ in range(args.workers)]
    for p in procs:
        p.start()
    print("pid %d listening on %s" % (os.getpid(), args.addr), flush=True)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    while not stop:
        signal.pause()
    for p in procs:
        p.terminate()
    for p in procs:
        p.join()
    sys.exit(0)


if __name__ == "__main__":
    main()

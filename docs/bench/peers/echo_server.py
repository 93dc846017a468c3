#!/usr/bin/python3
"""Echo server peers of the network benchmarks (docs/bench/net.sh).

  echo_server.py --loop asyncio --layer streams  --addr 127.0.0.1:9000
  echo_server.py --loop uvloop  --layer streams  --addr 127.0.0.1:9000
  echo_server.py --loop uvloop  --layer protocol --addr unix:/tmp/echo.sock

--layer streams is what an asyncio tutorial writes: asyncio.start_server, and
per connection `data = await reader.read(n); writer.write(data); await
writer.drain()`. --layer protocol is asyncio's lower layer, the one uvloop's
speed comes from: an asyncio.Protocol whose data_received writes the data
back on its transport, pausing reading while the transport is above its
high-water mark (pause_writing) so a peer that does not read cannot make it
buffer without bound.

It prints "pid N listening on ADDR" and serves until SIGTERM or SIGINT.
"""

import argparse
import asyncio
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import new_loop  # noqa: E402

READ_SIZE = 256 * 1024  # the most one reader.read takes (asyncio's own socket reads are 256 KiB)
BACKLOG = 4096  # Go's net.Listen uses somaxconn (4096 here); asyncio's default is 100


async def handle(reader, writer):
    try:
        while True:
            data = await reader.read(READ_SIZE)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)

    def pause_writing(self):
        self.transport.pause_reading()

    def resume_writing(self):
        self.transport.resume_reading()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    p.add_argument("--layer", choices=["streams", "protocol"], default="streams")
    p.add_argument("--addr", default="127.0.0.1:9000", help="host:port, or unix:/path")
    args = p.parse_args()

    loop = new_loop(args.loop)
    asyncio.set_event_loop(loop)
    if args.addr.startswith("unix:"):
        path = args.addr[len("unix:") :]
        if os.path.exists(path):
            os.unlink(path)
        if args.layer == "streams":
            coro = asyncio.start_unix_server(handle, path, backlog=BACKLOG)
        else:
            coro = loop.create_unix_server(Echo, path, backlog=BACKLOG)
    else:
        host, _, port = args.addr.rpartition(":")
        host = host.strip("[]")
        if args.layer == "streams":
            coro = asyncio.start_server(handle, host, int(port), backlog=BACKLOG)
        else:
            coro = loop.create_server(Echo, host, int(port), backlog=BACKLOG)
    server = loop.run_until_complete(coro)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, loop.stop)
    print(f"pid {os.getpid()} listening on {args.addr} ({args.loop} {args.layer})", flush=True)
    try:
        loop.run_forever()
    finally:
        server.close()
        loop.close()


if __name__ == "__main__":
    main()

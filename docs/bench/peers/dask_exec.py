#!/usr/bin/python3
"""Python twin of docs/bench/natsbench (issue 13): Dask distributed's
client.submit on a LocalCluster of 2 worker processes (processes=True, one
thread each), over TCP (protocol="tcp://"), Debian's python3-distributed.

  calls_1024  trivial calls (ident(x) = x) with at most 1,024 in flight,
              collected in order: calls/s. N = 3,000.
  roundtrip   one trivial call at a time, submit then result: µs/call.
              N = 300.
  arg_2mib    a 2 MiB bytes argument, its len() back, 8 in flight: MB/s of
              argument (10^6 bytes/s). N = 100. The argument is a fresh
              bytes object each time (os.urandom is too slow: one 2 MiB
              buffer with the index in its first 8 bytes), so Dask does not
              reuse a stored copy by its hash.

Each is warmed up, then timed 3 times; the best run is reported as a JSON
line {"impl": "dask", "name": ..., "metric": ..., "value": N}.
"""
import json
import sys
import time

from distributed import Client, LocalCluster


def ident(x):
    return x


def size(b):
    return len(b)


def emit(name, metric, value):
    print(json.dumps({"impl": "dask", "name": name, "metric": metric, "value": value}), flush=True)


def best(f, larger=True):
    f()
    runs = [f() for _ in range(3)]
    return max(runs) if larger else min(runs)


def in_flight(client, n, depth):
    start = time.perf_counter()
    pending = []
    nxt = 0
    for i in range(n):
        if len(pending) - nxt == depth:
            assert pending[nxt].result() == nxt
            nxt += 1
        pending.append(client.submit(ident, i, pure=False))
    for j in range(nxt, len(pending)):
        assert pending[j].result() == j
    return n / (time.perf_counter() - start)


def roundtrip(client, n):
    start = time.perf_counter()
    for i in range(n):
        assert client.submit(ident, i, pure=False).result() == i
    return (time.perf_counter() - start) * 1e6 / n


def blob_rate(client, n, depth):
    base = bytearray(2 * 1024 * 1024)
    start = time.perf_counter()
    pending = []
    nxt = 0
    for i in range(n):
        if len(pending) - nxt == depth:
            assert pending[nxt].result() == len(base)
            nxt += 1
        base[:8] = i.to_bytes(8, "little")
        pending.append(client.submit(size, bytes(base), pure=False))
    for j in range(nxt, len(pending)):
        assert pending[j].result() == len(base)
    return n * len(base) / 1e6 / (time.perf_counter() - start)


def main():
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           protocol="tcp://", dashboard_address=None)
    client = Client(cluster)
    try:
        emit("calls_1024", "calls/s", best(lambda: in_flight(client, 3000, 1024)))
        emit("roundtrip", "µs/call", best(lambda: roundtrip(client, 300), larger=False))
        emit("arg_2mib", "MB/s", best(lambda: blob_rate(client, 100, 8)))
    finally:
        client.close()
        cluster.close()


if __name__ == "__main__":
    sys.exit(main())

"""Twin of loop's BenchmarkSubprocessExecWait: start /bin/true with stdout a
PIPE, communicate() (read it to EOF and wait), 500 times; prints the mean
cost of one. Run with /usr/bin/python3 docs/bench/peers/subprocess_exec.py
[--uvloop] beside `go test -run XXX -bench SubprocessExecWait ./loop/`."""
import asyncio
import sys
import time


async def main(n=500):
    t = time.perf_counter()
    for _ in range(n):
        p = await asyncio.create_subprocess_exec("/bin/true", stdout=asyncio.subprocess.PIPE)
        await p.communicate()
    print(f"{(time.perf_counter() - t) / n * 1e6:.0f} us/op")


if __name__ == "__main__":
    if "--uvloop" in sys.argv:
        import uvloop

        uvloop.install()
    asyncio.run(main())

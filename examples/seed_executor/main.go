// Command seed_executor is the seed's first program: never block the loop;
// run blocking or CPU-heavy work in a pool of worker processes and await it.
// In Python:
//
//	def blocking(x):
//	    time.sleep(x)
//	    return x * 5
//
//	async def main():
//	    loop = asyncio.get_running_loop()
//	    with ProcessPoolExecutor() as pool:
//	        result = await loop.run_in_executor(pool, blocking, x)
//
// Here a ticker task prints while the worker process sleeps, which shows
// that the loop goes on running other tasks while the call is pending.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/executor/processpool"
	"github.com/asyncgo/asyncgo/loop"
)

// blocking sleeps x seconds and returns x*5. It runs in a worker process, a
// re-execution of this binary, so it is registered by name at package level:
// the worker registers it too, before executor.Init runs it.
var blocking = executor.Register("seed.blocking", func(x float64) (float64, error) {
	time.Sleep(time.Duration(x * float64(time.Second)))
	return x * 5, nil
})

// tickEvery is the ticker's period; the worker sleeps for several of them.
const tickEvery = 100 * time.Millisecond

func main() {
	executor.Init() // in a worker process this serves the pool and never returns

	pool, err := processpool.New(processpool.Options{MaxWorkers: 1})
	if err != nil {
		fmt.Fprintln(os.Stderr, "seed_executor:", err)
		os.Exit(1)
	}
	result, err := loop.Run(context.Background(), func(ctx context.Context) (float64, error) {
		return runBlocking(ctx, pool, 0.6)
	})
	pool.Shutdown(true, false) // waits for the worker process to exit
	if err != nil {
		fmt.Fprintln(os.Stderr, "seed_executor:", err)
		os.Exit(1)
	}
	fmt.Println("main: result", result)
}

// runBlocking awaits blocking(x) in the pool while a ticker task runs.
func runBlocking(ctx context.Context, pool *processpool.Pool, x float64) (float64, error) {
	ticker := loop.Spawn(ctx, tick)
	fmt.Printf("main: blocking(%g) runs in a worker process\n", x)
	result, err := loop.RunInExecutor(ctx, pool, blocking.Bind(x)).Await(ctx)
	if err != nil {
		return 0, err
	}
	fmt.Printf("main: blocking(%g) = %g\n", x, result)
	ticker.Cancel("")
	_, _ = ticker.Await(ctx)
	return result, nil
}

// tick prints until it is cancelled. Its first tick comes as soon as main
// awaits, the others every tickEvery: each one is the loop running a task
// while the worker process sleeps.
func tick(ctx context.Context) (struct{}, error) {
	for i := 1; ; i++ {
		fmt.Printf("ticker: tick %d, the loop is free\n", i)
		if err := loop.Sleep(ctx, tickEvery); err != nil {
			return struct{}{}, err
		}
	}
}

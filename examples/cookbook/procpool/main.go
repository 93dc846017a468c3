// Command procpool runs CPU-bound work in worker processes, Python's
// loop.run_in_executor(ProcessPoolExecutor(), fn, arg): the loop stays free
// while the workers count, and an error a worker returns comes back as
// itself when its sentinel is registered.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/executor/processpool"
	"github.com/asyncgo/asyncgo/loop"
)

// ErrNegative is returned in a worker; registered, it matches errors.Is in
// the parent too.
var ErrNegative = errors.New("negative limit")

func init() { executor.RegisterError(ErrNegative) }

// countPrimes runs in a worker process, a re-execution of this binary: it
// is registered at package level, so the worker knows it by the same name.
var countPrimes = executor.Register("cookbook.countPrimes", func(n int) (int, error) {
	if n < 0 {
		return 0, fmt.Errorf("count primes below %d: %w", n, ErrNegative)
	}
	count := 0
	for i := 2; i < n; i++ {
		prime := true
		for d := 2; d*d <= i; d++ {
			if i%d == 0 {
				prime = false
				break
			}
		}
		if prime {
			count++
		}
	}
	return count, nil
})

func main() {
	executor.Init() // first line: in a worker process this serves the pool and never returns

	pool, err := processpool.New(processpool.Options{MaxWorkers: 2})
	if err != nil {
		fmt.Fprintln(os.Stderr, "procpool:", err)
		os.Exit(1)
	}
	defer pool.Shutdown(true, false) // with pool: waits for the workers to exit

	limits := []int{10_000, 100_000, -1, 1_000_000}
	err = loop.RunMain(context.Background(), func(ctx context.Context) error {
		var futs []*loop.Future[int]
		for _, n := range limits {
			futs = append(futs, loop.RunInExecutor(ctx, pool, countPrimes.Bind(n)))
		}
		results, err := loop.GatherReturnErrors(ctx, futs...).Await(ctx)
		if err != nil {
			return err
		}
		for i, r := range results {
			switch {
			case errors.Is(r.Err, ErrNegative):
				fmt.Printf("primes below %d: refused: %v\n", limits[i], r.Err)
			case r.Err != nil:
				return r.Err
			default:
				fmt.Printf("primes below %d: %d\n", limits[i], r.Value)
			}
		}
		return nil
	})
	if err != nil {
		fmt.Println("error:", err)
	}
}

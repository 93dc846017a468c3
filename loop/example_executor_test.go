package loop_test

import (
	"context"
	"fmt"

	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/executor/processpool"
	"github.com/asyncgo/asyncgo/loop"
)

// exampleFib is CPU-bound work for a worker process. It is registered at
// package level, so that a worker, which re-executes this binary, has it
// too.
var exampleFib = executor.Register("loop_test.exampleFib", func(n int) (int, error) {
	a, b := 0, 1
	for range n {
		a, b = b, a+b
	}
	return a, nil
})

// RunInExecutor is loop.run_in_executor: the call runs elsewhere, here in a
// pool of two worker processes, and the task awaits its result without
// blocking the loop. A program that uses a ProcessPool calls executor.Init
// first thing in main (this package's TestMain does).
func ExampleRunInExecutor() {
	pool, err := processpool.New(processpool.Options{MaxWorkers: 2})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pool.Shutdown(true, false)
	results, err := loop.Run(context.Background(), func(ctx context.Context) ([]int, error) {
		var calls []loop.Awaitable[int]
		for _, n := range []int{10, 20, 30} {
			calls = append(calls, loop.RunInExecutor(ctx, pool, exampleFib.Bind(n)))
		}
		return loop.Gather(ctx, calls...).Await(ctx)
	})
	fmt.Println(results, err)
	// Output: [55 6765 832040] <nil>
}

// ToThread is asyncio.to_thread: a blocking call (a legacy client, a cgo
// library, a file read) runs on the loop's default ThreadPool while the
// loop's other tasks go on. Here another task releases the call, which only
// a loop that keeps running can do.
func ExampleToThread() {
	_, _ = loop.Run(context.Background(), func(ctx context.Context) (struct{}, error) {
		release := make(chan struct{})
		loop.Spawn(ctx, func(ctx context.Context) (struct{}, error) {
			fmt.Println("other task: runs while the call blocks")
			close(release)
			return struct{}{}, nil
		})
		v, err := loop.ToThread(ctx, func() (string, error) {
			<-release // blocks this goroutine of the pool, not the loop
			return "blocking call returned", nil
		})
		fmt.Println(v, err)
		return struct{}{}, nil
	})
	// Output:
	// other task: runs while the call blocks
	// blocking call returned <nil>
}

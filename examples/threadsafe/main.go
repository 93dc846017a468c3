// Command threadsafe shows the two doors into a running loop from plain Go
// code on another goroutine, as PEP 3156's "Thread interaction" section
// describes them: RunCoroutineThreadsafe runs a function as a task on the
// loop and returns a future the goroutine can block on, and
// CallSoonThreadsafe hands the loop a callback.
//
// The worker goroutine stands for any blocking code (a legacy client, a cgo
// library) that must not touch the loop directly: every other method of the
// loop, its futures and its tasks is for the loop's own goroutine.
package main

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/asyncgo/asyncgo/loop"
)

func main() {
	var wg sync.WaitGroup
	total, err := loop.Run(context.Background(), func(ctx context.Context) (int, error) {
		l, err := loop.RunningLoop(ctx)
		if err != nil {
			return 0, err
		}
		result := loop.NewFuture[int](l)
		fmt.Println("main: starting the worker goroutine")
		wg.Go(func() { worker(l, result) })
		return result.Await(ctx) // the loop runs the worker's tasks meanwhile
	})
	wg.Wait()
	if err != nil {
		fmt.Fprintln(os.Stderr, "threadsafe:", err)
		os.Exit(1)
	}
	fmt.Println("main: total", total)
}

// worker runs on its own goroutine. It uses only the thread-safe doors, and
// hands its result to the loop through result.
func worker(l *loop.Loop, result *loop.Future[int]) {
	sum := 0
	for i := 1; i <= 3; i++ {
		f := loop.RunCoroutineThreadsafe(l, func(ctx context.Context) (int, error) {
			if err := loop.Sleep(ctx, 10*time.Millisecond); err != nil {
				return 0, err
			}
			fmt.Println("loop: squared", i)
			return i * i, nil
		})
		v, err := f.Result(context.Background()) // blocks this goroutine only
		if err != nil {
			_ = l.CallSoonThreadsafe(func() { _ = result.SetErr(err) })
			return
		}
		fmt.Println("worker: got", v)
		sum += v
	}

	// Giving up waiting leaves the task running; Cancel cancels it.
	slow := loop.RunCoroutineThreadsafe(l, func(ctx context.Context) (int, error) {
		err := loop.Sleep(ctx, time.Hour)
		fmt.Println("loop: slow task ended:", err)
		return 0, err
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	_, err := slow.Result(ctx)
	cancel()
	fmt.Println("worker: stopped waiting:", err)
	slow.Cancel()

	// SetResult is for the loop's goroutine, so it goes through
	// CallSoonThreadsafe; the main task wakes up with the sum.
	_ = l.CallSoonThreadsafe(func() { _ = result.SetResult(sum) })
}

// Command fanout starts one task per item but lets only two fetch at once
// (a Semaphore), gives each fetch 250ms (WaitFor, inside the semaphore, so
// the time spent waiting for a slot does not count), and collects every
// outcome, errors included, with GatherReturnErrors
// (gather(..., return_exceptions=True)).
package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/asyncgo/asyncgo/loop"
)

// delays are how long each item's fetch takes; item 2 is too slow.
var delays = []time.Duration{100 * time.Millisecond, 200 * time.Millisecond,
	time.Second, 50 * time.Millisecond, 150 * time.Millisecond}

var errNotFound = errors.New("not found")

func fetch(i int) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		if err := loop.Sleep(ctx, delays[i]); err != nil {
			return "", err
		}
		if i == 3 {
			return "", fmt.Errorf("item %d: %w", i, errNotFound)
		}
		return fmt.Sprintf("item %d", i), nil
	}
}

// limited is `async with sem: return await asyncio.wait_for(fetch(i), 0.25)`.
func limited(sem *loop.Semaphore, start time.Time, i int) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		if err := sem.Acquire(ctx); err != nil {
			return "", err
		}
		defer sem.Release()
		fmt.Printf("fetch %d starts at %v\n", i, loop.Time(ctx).Sub(start))
		// The timeout starts now, after the slot was won: WaitFor takes a
		// task (or future), so spawn the fetch first.
		return loop.WaitFor(ctx, loop.Spawn(ctx, fetch(i)), 250*time.Millisecond)
	}
}

func main() {
	err := loop.RunMain(context.Background(), func(ctx context.Context) error {
		sem, err := loop.NewSemaphore(2)
		if err != nil {
			return err
		}
		start := loop.Time(ctx)
		var tasks []*loop.Task[string]
		for i := range delays {
			tasks = append(tasks, loop.Spawn(ctx, limited(sem, start, i)))
		}
		results, err := loop.GatherReturnErrors(ctx, tasks...).Await(ctx)
		if err != nil {
			return err
		}
		for i, r := range results {
			switch {
			case errors.Is(r.Err, loop.ErrTimeout):
				fmt.Printf("%d: timed out (%v)\n", i, r.Err)
			case r.Err != nil:
				fmt.Printf("%d: failed: %v\n", i, r.Err)
			default:
				fmt.Printf("%d: %s\n", i, r.Value)
			}
		}
		fmt.Println("all done at", loop.Time(ctx).Sub(start))
		return nil
	}, loop.WithVirtualClock())
	if err != nil {
		fmt.Println("error:", err)
	}
}

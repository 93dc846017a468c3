// Command queue_workers is the Queue example of the asyncio docs: three
// workers consume a queue of sleep times; main waits with Join until every
// item is marked done, then cancels the workers, which loop forever.
// The sleep times are fixed (the docs draw them at random) and the loop runs
// on a virtual clock, so the output is the same on every run.
package main

import (
	"context"
	"fmt"
	"time"

	"github.com/asyncgo/asyncgo/loop"
)

func worker(name string, queue *loop.Queue[time.Duration]) func(context.Context) error {
	return func(ctx context.Context) error {
		for {
			sleepFor, err := queue.Get(ctx)
			if err != nil {
				return err // cancelled: main is done with us
			}
			if err := loop.Sleep(ctx, sleepFor); err != nil {
				return err
			}
			_ = queue.TaskDone()
			fmt.Printf("%s has slept for %v\n", name, sleepFor)
		}
	}
}

func main() {
	err := loop.RunMain(context.Background(), func(ctx context.Context) error {
		queue := loop.NewQueue[time.Duration](0)
		var total time.Duration
		for _, ms := range []int{500, 200, 300, 100, 400, 250, 150} {
			sleepFor := time.Duration(ms) * time.Millisecond
			total += sleepFor
			_ = queue.PutNowait(sleepFor)
		}

		var tasks []*loop.Task[struct{}]
		for i := range 3 {
			tasks = append(tasks, loop.Go(ctx, worker(fmt.Sprintf("worker-%d", i), queue)))
		}

		startedAt := loop.Time(ctx)
		if err := queue.Join(ctx); err != nil {
			return err
		}
		sleptFor := loop.Time(ctx).Sub(startedAt)

		for _, t := range tasks {
			t.Cancel()
		}
		// gather(*tasks, return_exceptions=True): the slice goes in as it is.
		if _, err := loop.GatherReturnErrors(ctx, tasks...).Await(ctx); err != nil {
			return err
		}

		fmt.Println("====")
		fmt.Printf("3 workers slept in parallel for %v\n", sleptFor)
		fmt.Printf("total expected sleep time: %v\n", total)
		return nil
	}, loop.WithVirtualClock())
	if err != nil {
		fmt.Println("error:", err)
	}
}

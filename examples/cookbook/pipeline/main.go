// Command pipeline is a bounded two-stage pipeline: a producer feeds
// numbers into a small queue, two squarers (10ms of work per item) read it and feed a second
// queue, a summer reads that. Each stage tells the next it is finished
// with Queue.Shutdown (Python 3.13's queue.shutdown()), not with sentinels:
// readers drain what is left, then Get returns loop.ErrQueueShutDown.
package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/asyncgo/asyncgo/loop"
)

func produce(ctx context.Context, out *loop.Queue[int]) error {
	defer out.Shutdown(false) // readers drain the queue, then see ErrQueueShutDown
	for n := 1; n <= 6; n++ {
		if err := out.Put(ctx, n); err != nil { // waits while the queue is full
			return err
		}
		fmt.Println("produced", n)
	}
	return nil
}

func square(name string, in, out *loop.Queue[int]) func(context.Context) error {
	return func(ctx context.Context) error {
		for {
			n, err := in.Get(ctx)
			if errors.Is(err, loop.ErrQueueShutDown) {
				return nil // the producer is done and the queue is drained
			}
			if err != nil {
				return err
			}
			if err := loop.Sleep(ctx, 10*time.Millisecond); err != nil { // the work
				return err
			}
			if err := out.Put(ctx, n*n); err != nil {
				return err
			}
			fmt.Printf("%s: %d -> %d\n", name, n, n*n)
		}
	}
}

func sum(ctx context.Context, in *loop.Queue[int]) (int, error) {
	total := 0
	for {
		n, err := in.Get(ctx)
		if errors.Is(err, loop.ErrQueueShutDown) {
			return total, nil
		}
		if err != nil {
			return 0, err
		}
		total += n
	}
}

func main() {
	err := loop.RunMain(context.Background(), func(ctx context.Context) error {
		numbers := loop.NewQueue[int](2)
		squares := loop.NewQueue[int](2)

		summer := loop.Spawn(ctx, func(ctx context.Context) (int, error) { return sum(ctx, squares) })
		stage := []*loop.Task[struct{}]{
			loop.Go(ctx, func(ctx context.Context) error { return produce(ctx, numbers) }),
			loop.Go(ctx, square("squarer-a", numbers, squares)),
			loop.Go(ctx, square("squarer-b", numbers, squares)),
		}
		_, err := loop.Gather(ctx, stage...).Await(ctx)
		squares.Shutdown(false) // both squarers are done: the summer may finish
		if err != nil {
			return err
		}
		total, err := summer.Await(ctx)
		if err != nil {
			return err
		}
		fmt.Println("sum of squares:", total)
		return nil
	}, loop.WithVirtualClock())
	if err != nil {
		fmt.Println("error:", err)
	}
}

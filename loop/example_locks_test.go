package loop_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/asyncgo/asyncgo/loop"
)

// A producer feeds jobs into a bounded Queue and three workers consume
// them, calling TaskDone for each; Join waits until every job put has been
// processed, then Shutdown sends the idle workers home, as asyncio's
// queue example cancels them. Put waits while the queue is full, so the
// producer never runs more than two jobs ahead. The virtual clock makes
// the "work" (a sleep) instant and the output deterministic.
func ExampleQueue() {
	_, err := loop.Run(context.Background(), func(ctx context.Context) (struct{}, error) {
		l, err := loop.RunningLoop(ctx)
		if err != nil {
			return struct{}{}, err
		}
		start := l.Time()
		q := loop.NewQueue[int](2)

		worker := func(name string) func(ctx context.Context) error {
			return func(ctx context.Context) error {
				for {
					job, err := q.Get(ctx)
					if errors.Is(err, loop.ErrQueueShutDown) {
						return nil // shut down and drained: done
					} else if err != nil {
						return err
					}
					if err := loop.Sleep(ctx, time.Duration(job)*time.Second); err != nil {
						return err
					}
					fmt.Printf("%v %s finished job %d\n", l.Time().Sub(start), name, job)
					if err := q.TaskDone(); err != nil {
						return err
					}
				}
			}
		}
		var workers []*loop.Task[struct{}]
		for _, name := range []string{"w1", "w2", "w3"} {
			workers = append(workers, loop.Go(ctx, worker(name)))
		}

		producer := loop.Go(ctx, func(ctx context.Context) error {
			for _, job := range []int{3, 1, 2, 1, 1} {
				if err := q.Put(ctx, job); err != nil {
					return err
				}
			}
			return nil
		})
		if _, err := producer.Await(ctx); err != nil {
			return struct{}{}, err
		}
		if err := q.Join(ctx); err != nil {
			return struct{}{}, err
		}
		fmt.Printf("%v all jobs done\n", l.Time().Sub(start))
		q.Shutdown(false)
		for _, w := range workers {
			if _, err := w.Await(ctx); err != nil {
				return struct{}{}, err
			}
		}
		return struct{}{}, nil
	}, loop.WithVirtualClock())
	fmt.Println("err:", err)
	// Output:
	// 1s w2 finished job 1
	// 2s w3 finished job 2
	// 2s w2 finished job 1
	// 3s w1 finished job 3
	// 3s w3 finished job 1
	// 3s all jobs done
	// err: <nil>
}

// A Lock makes a read-modify-write that awaits in the middle atomic with
// respect to the other tasks: each task reads the balance, awaits (here a
// sleep standing for I/O), then writes. Without the lock both would read
// 100 and one deposit would be lost. Waiters get the lock in FIFO order.
func ExampleLock() {
	_, err := loop.Run(context.Background(), func(ctx context.Context) (struct{}, error) {
		var mu loop.Lock
		balance := 100
		deposit := func(who string, amount int) func(ctx context.Context) error {
			return func(ctx context.Context) error {
				if err := mu.Acquire(ctx); err != nil {
					return err
				}
				defer mu.Release()
				read := balance
				if err := loop.Sleep(ctx, 10*time.Millisecond); err != nil {
					return err
				}
				balance = read + amount
				fmt.Printf("%s deposited %d: balance %d\n", who, amount, balance)
				return nil
			}
		}
		a := loop.Go(ctx, deposit("alice", 50))
		b := loop.Go(ctx, deposit("bob", 25))
		for _, t := range []*loop.Task[struct{}]{a, b} {
			if _, err := t.Await(ctx); err != nil {
				return struct{}{}, err
			}
		}
		fmt.Println("final balance", balance, "locked:", mu.Locked())
		return struct{}{}, nil
	}, loop.WithVirtualClock())
	fmt.Println("err:", err)
	// Output:
	// alice deposited 50: balance 150
	// bob deposited 25: balance 175
	// final balance 175 locked: false
	// err: <nil>
}

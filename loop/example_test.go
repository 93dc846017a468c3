package loop_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/asyncgo/asyncgo/loop"
)

// Run is asyncio.run: a fresh loop runs main as its main task, then the
// loop is closed. With a virtual clock, a program that sleeps for an hour
// runs instantly.
func ExampleRun() {
	n, err := loop.Run(context.Background(), func(ctx context.Context) (int, error) {
		l, err := loop.RunningLoop(ctx)
		if err != nil {
			return 0, err
		}
		start := l.Time()
		if err := loop.Sleep(ctx, time.Hour); err != nil {
			return 0, err
		}
		fmt.Println("main task: slept", l.Time().Sub(start))
		return 42, nil
	}, loop.WithVirtualClock())
	fmt.Println(n, err)
	// Output:
	// main task: slept 1h0m0s
	// 42 <nil>
}

// Spawn is asyncio.create_task. The new task starts at the spawner's next
// await, not at once; Await suspends the spawner until the task is done.
func ExampleSpawn() {
	_, _ = loop.Run(context.Background(), func(ctx context.Context) (struct{}, error) {
		child := loop.Spawn(ctx, func(ctx context.Context) (string, error) {
			fmt.Println("child: started")
			if err := loop.Sleep(ctx, time.Second); err != nil {
				return "", err
			}
			return "child's result", nil
		}, loop.WithName("child"))
		fmt.Println("main: spawned", child.Name())
		v, err := child.Await(ctx)
		fmt.Println("main: awaited", v, err)
		return struct{}{}, nil
	}, loop.WithVirtualClock())
	// Output:
	// main: spawned child
	// child: started
	// main: awaited child's result <nil>
}

// Gather's results come in argument order, whatever order the tasks finish
// in.
func ExampleGather() {
	_, _ = loop.Run(context.Background(), func(ctx context.Context) (struct{}, error) {
		square := func(n int, d time.Duration) func(context.Context) (int, error) {
			return func(ctx context.Context) (int, error) {
				if err := loop.Sleep(ctx, d); err != nil {
					return 0, err
				}
				fmt.Println("finished", n)
				return n * n, nil
			}
		}
		squares, err := loop.Gather(ctx,
			loop.Spawn(ctx, square(1, 3*time.Second)),
			loop.Spawn(ctx, square(2, 1*time.Second)),
			loop.Spawn(ctx, square(3, 2*time.Second)),
		).Await(ctx)
		fmt.Println(squares, err)
		return struct{}{}, nil
	}, loop.WithVirtualClock())
	// Output:
	// finished 2
	// finished 3
	// finished 1
	// [1 4 9] <nil>
}

// GatherReturnErrors is gather(..., return_exceptions=True): a failure does
// not end the gather, it takes its place among the results.
func ExampleGatherReturnErrors() {
	_, _ = loop.Run(context.Background(), func(ctx context.Context) (struct{}, error) {
		ok := loop.Spawn(ctx, func(ctx context.Context) (string, error) { return "ok", nil })
		bad := loop.Spawn(ctx, func(ctx context.Context) (string, error) { return "", errors.New("bad input") })
		results, err := loop.GatherReturnErrors(ctx, ok, bad).Await(ctx)
		for _, r := range results {
			fmt.Printf("%q %v\n", r.Value, r.Err)
		}
		fmt.Println(err)
		return struct{}{}, nil
	})
	// Output:
	// "ok" <nil>
	// "" bad input
	// <nil>
}

// A TaskGroup waits for all of its tasks; SpawnIn starts one that returns a
// value.
func ExampleWithTaskGroup() {
	_, _ = loop.Run(context.Background(), func(ctx context.Context) (struct{}, error) {
		var a, b *loop.Task[string]
		err := loop.WithTaskGroup(ctx, func(ctx context.Context, tg *loop.TaskGroup) error {
			var err error
			if a, err = loop.SpawnIn(tg, func(ctx context.Context) (string, error) {
				return "a", loop.Sleep(ctx, 2*time.Second)
			}); err != nil {
				return err
			}
			b, err = loop.SpawnIn(tg, func(ctx context.Context) (string, error) {
				return "b", loop.Sleep(ctx, time.Second)
			})
			return err
		})
		// Every task of the group is done here.
		va, _ := a.Result()
		vb, _ := b.Result()
		fmt.Println(va, vb, err)
		return struct{}{}, nil
	}, loop.WithVirtualClock())
	// Output:
	// a b <nil>
}

// The first task of a group to fail cancels the others; the group returns
// an *ExceptionGroup of every failure.
func ExampleWithTaskGroup_firstFailure() {
	_, _ = loop.Run(context.Background(), func(ctx context.Context) (struct{}, error) {
		errBoom := errors.New("boom")
		err := loop.WithTaskGroup(ctx, func(ctx context.Context, tg *loop.TaskGroup) error {
			_ = tg.Go(func(ctx context.Context) error {
				err := loop.Sleep(ctx, time.Hour)
				fmt.Println("sibling:", err)
				return err
			})
			_ = tg.Go(func(ctx context.Context) error {
				_ = loop.Sleep(ctx, time.Second)
				return errBoom
			})
			return nil
		})
		var eg *loop.ExceptionGroup
		fmt.Println(errors.As(err, &eg), len(eg.Errs), errors.Is(err, errBoom))
		return struct{}{}, nil
	}, loop.WithVirtualClock())
	// Output:
	// sibling: loop: cancelled
	// true 1 true
}

// WaitFor cancels the task it gives up on, and waits for that task's
// cleanup before returning ErrTimeout.
func ExampleWaitFor() {
	_, _ = loop.Run(context.Background(), func(ctx context.Context) (struct{}, error) {
		l, _ := loop.RunningLoop(ctx)
		start := l.Time()
		slow := loop.Spawn(ctx, func(ctx context.Context) (string, error) {
			err := loop.Sleep(ctx, time.Hour)
			fmt.Println("slow: cleaning up after", err)
			return "", err
		})
		_, err := loop.WaitFor(ctx, slow, 5*time.Second)
		fmt.Println(err, errors.Is(err, loop.ErrTimeout), slow.Cancelled())
		fmt.Println("after", l.Time().Sub(start))
		return struct{}{}, nil
	}, loop.WithVirtualClock())
	// Output:
	// slow: cleaning up after loop: cancelled
	// loop: timeout: context deadline exceeded true true
	// after 5s
}

// A Timeout is asyncio.timeout(): a deadline over a block of code in the
// running task, which can be moved while the block runs.
func ExampleTimeout() {
	_, _ = loop.Run(context.Background(), func(ctx context.Context) (struct{}, error) {
		l, _ := loop.RunningLoop(ctx)
		start := l.Time()
		tm := loop.NewTimeout(ctx, time.Second)
		err := tm.Do(ctx, func(ctx context.Context) error {
			if err := tm.Reschedule(tm.When().Add(time.Second)); err != nil {
				return err
			}
			return loop.Sleep(ctx, time.Hour)
		})
		fmt.Println(err, tm.Expired(), l.Time().Sub(start))
		return struct{}{}, nil
	}, loop.WithVirtualClock())
	// Output:
	// loop: timeout: context deadline exceeded true 2s
}

// Cancel delivers a cancellation error at the task's current await and
// cancels the task's ctx at once, so plain Go code in the task sees it too.
func ExampleTask_Cancel() {
	_, _ = loop.Run(context.Background(), func(ctx context.Context) (struct{}, error) {
		t := loop.Spawn(ctx, func(ctx context.Context) (string, error) {
			err := loop.Sleep(ctx, time.Hour)
			fmt.Println("task: Sleep returned", err, "and ctx.Err() is", ctx.Err())
			return "", err
		})
		_ = loop.Sleep(ctx, 0) // let the task start
		t.Cancel("shutting down")
		_, err := t.Await(ctx)
		fmt.Println(t.Cancelled(), loop.CancelMessage(err))
		return struct{}{}, nil
	}, loop.WithVirtualClock())
	// Output:
	// task: Sleep returned loop: cancelled: shutting down and ctx.Err() is context canceled
	// true shutting down
}

// Wait does not cancel what is still pending: that is up to the caller.
func ExampleWait() {
	_, _ = loop.Run(context.Background(), func(ctx context.Context) (struct{}, error) {
		sleeper := func(d time.Duration) func(context.Context) (time.Duration, error) {
			return func(ctx context.Context) (time.Duration, error) { return d, loop.Sleep(ctx, d) }
		}
		tasks := []*loop.Task[time.Duration]{
			loop.Spawn(ctx, sleeper(time.Hour)),
			loop.Spawn(ctx, sleeper(time.Second)),
		}
		done, pending, err := loop.Wait(ctx, tasks, loop.NoTimeout, loop.FirstCompleted)
		if err != nil {
			return struct{}{}, err
		}
		d, _ := done[0].Result()
		fmt.Println(len(done), "done after", d, "-", len(pending), "pending")
		for _, t := range pending {
			t.Cancel("")
		}
		return struct{}{}, nil
	}, loop.WithVirtualClock())
	// Output:
	// 1 done after 1s - 1 pending
}

// AsCompleted yields the futures in the order they complete.
func ExampleAsCompleted() {
	_, _ = loop.Run(context.Background(), func(ctx context.Context) (struct{}, error) {
		var tasks []*loop.Task[string]
		for _, name := range []string{"c", "a", "b"} {
			d := time.Duration(name[0]-'a'+1) * time.Second
			tasks = append(tasks, loop.Spawn(ctx, func(ctx context.Context) (string, error) {
				return name, loop.Sleep(ctx, d)
			}))
		}
		var order []string
		for t, err := range loop.AsCompleted(ctx, tasks, loop.NoTimeout) {
			if err != nil {
				return struct{}{}, err
			}
			v, _ := t.Result()
			order = append(order, v)
		}
		fmt.Println(order)
		return struct{}{}, nil
	}, loop.WithVirtualClock())
	// Output:
	// [a b c]
}

// Shield keeps a cancellation from reaching the work it protects.
func ExampleShield() {
	_, _ = loop.Run(context.Background(), func(ctx context.Context) (struct{}, error) {
		work := loop.Spawn(ctx, func(ctx context.Context) (string, error) {
			return "saved", loop.Sleep(ctx, 2*time.Second)
		})
		waiter := loop.Spawn(ctx, func(ctx context.Context) (string, error) {
			return loop.Shield(work).Await(ctx)
		})
		_ = loop.Sleep(ctx, time.Second)
		waiter.Cancel("")
		_, err := waiter.Await(ctx)
		fmt.Println("waiter:", err)
		v, err := work.Await(ctx)
		fmt.Println("work:", v, err)
		return struct{}{}, nil
	}, loop.WithVirtualClock())
	// Output:
	// waiter: loop: cancelled
	// work: saved <nil>
}

// CallSoonThreadsafe is the door into a running loop from any goroutine.
// Here the loop is driven by hand, as with run_forever.
func ExampleLoop_CallSoonThreadsafe() {
	l := loop.New()
	var wg sync.WaitGroup
	wg.Go(func() {
		_ = l.CallSoonThreadsafe(func() { fmt.Println("on the loop; running:", l.IsRunning()) })
		_ = l.CallSoonThreadsafe(l.Stop)
	})
	err := l.RunForever()
	wg.Wait()
	fmt.Println("stopped:", err)
	fmt.Println(l.Close(), l.IsClosed())
	// Output:
	// on the loop; running: true
	// stopped: <nil>
	// <nil> true
}

// RunCoroutineThreadsafe runs a task on a loop that another goroutine
// drives, and returns a future that any goroutine can block on.
func ExampleRunCoroutineThreadsafe() {
	l := loop.New()
	var wg sync.WaitGroup
	wg.Go(func() { _ = l.RunForever() })

	f := loop.RunCoroutineThreadsafe(l, func(ctx context.Context) (string, error) {
		if err := loop.Sleep(ctx, time.Millisecond); err != nil {
			return "", err
		}
		return "computed on the loop", nil
	})
	v, err := f.Result(context.Background())
	fmt.Println(v, err)

	_ = l.CallSoonThreadsafe(l.Stop)
	wg.Wait()
	_ = l.Close()
	// Output:
	// computed on the loop <nil>
}

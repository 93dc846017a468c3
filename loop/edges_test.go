package loop_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/loop"
)

// call_at(0, cb) runs in the next iteration: asyncio's _run_once clamps a
// deadline in the past to a zero timeout (a time.Time{} deadline
// saturates, and its subtraction overflowed into a 292-year wait).
func TestCallAtZeroTimeRuns(t *testing.T) {
	for _, virtual := range []bool{false, true} {
		var opts []loop.Option
		if virtual {
			opts = append(opts, loop.WithVirtualClock())
		}
		l := loop.New(opts...)
		f := loop.NewFuture[int](l)
		start := l.Time()
		l.CallAt(time.Time{}, func() { _ = f.SetResult(1) })
		done := make(chan error, 1)
		go func() { done <- l.RunUntilComplete(f) }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			l.CallSoonThreadsafe(l.Stop)
			<-done
			t.Fatalf("virtual %v: CallAt(time.Time{}) did not run", virtual)
		}
		if l.Time().Before(start) {
			t.Errorf("virtual %v: the clock went back from %v to %v", virtual, start, l.Time())
		}
		_ = l.Close()
	}
}

// A task asleep for ever (NoTimeout) on the virtual clock: the loop waits
// for other work, and the clock does not jump to the end of time.
func TestVirtualSleepForeverDoesNotJump(t *testing.T) {
	l := loop.New(loop.WithVirtualClock())
	defer l.Close()
	task := loop.CreateTask(l, func(ctx context.Context) (int, error) { return 0, loop.Sleep(ctx, loop.NoTimeout) })
	go func() {
		time.Sleep(50 * time.Millisecond)
		l.CallSoonThreadsafe(func() { task.Cancel() })
	}()
	start := l.Time()
	if err := l.RunUntilComplete(task); !errors.Is(err, loop.ErrCancelled) {
		t.Fatalf("the task ended with %v, want a cancellation", err)
	}
	if d := l.Time().Sub(start); d > time.Hour {
		t.Fatalf("the virtual clock ran %v ahead for a sleep that never ends", d)
	}
}

// remove_done_callback deletes the entry: a long-lived future that is
// waited on with timeouts again and again keeps no slot per wait.
func TestFutureKeepsNoSlotPerAbandonedWait(t *testing.T) {
	l := loop.New(loop.WithVirtualClock())
	defer l.Close()
	stop := loop.NewFuture[struct{}](l)
	stop.AddDoneCallback(func(*loop.Future[struct{}]) {})
	task := loop.CreateTask(l, func(ctx context.Context) (int, error) {
		for range 1000 {
			if _, _, err := loop.Wait(ctx, []*loop.Future[struct{}]{stop}, time.Millisecond, loop.FirstCompleted); err != nil {
				return 0, err
			}
			c, cancel := context.WithTimeout(ctx, time.Millisecond)
			_, err := stop.Await(c)
			cancel()
			if !errors.Is(err, context.DeadlineExceeded) {
				return 0, err
			}
		}
		return 0, nil
	})
	if err := l.RunUntilComplete(task); err != nil {
		t.Fatal(err)
	}
	if n := loop.CallbackSlots(stop); n > 4 {
		t.Fatalf("the future keeps %d callback slots after 2,000 abandoned waits", n)
	}
}

// A callback that calls Stop and then panics: the loop stops after that
// iteration, as asyncio's run_forever checks _stopping after _run_once;
// a callback it scheduled waits for the next run.
func TestStopThenPanicStopsThisIteration(t *testing.T) {
	l := loop.New()
	defer l.Close()
	l.SetExceptionHandler(func(*loop.Loop, loop.ExceptionContext) {})
	ranLater := false
	l.CallSoon(func() {
		l.CallSoon(func() { ranLater = true })
		l.Stop()
		panic("boom")
	})
	if err := l.RunForever(); err != nil {
		t.Fatal(err)
	}
	if ranLater {
		t.Fatal("a callback scheduled in the stopping iteration ran in it")
	}
}

// close() from the exception handler that close() itself calls (a task
// destroyed while pending) returns at once: the report comes once a task.
func TestCloseFromItsExceptionHandler(t *testing.T) {
	l := loop.New()
	calls := 0
	l.SetExceptionHandler(func(l *loop.Loop, c loop.ExceptionContext) {
		calls++
		if calls <= 100 {
			_ = l.Close()
		}
	})
	never := loop.NewFuture[int](l)
	for range 2 {
		loop.CreateTask(l, func(ctx context.Context) (int, error) { return never.Await(ctx) })
	}
	l.CallSoon(l.Stop)
	if err := l.RunForever(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if calls != 2 {
		t.Fatalf("the exception handler was called %d times for 2 pending tasks", calls)
	}
}

// call_soon_threadsafe from the loop's own goroutine keeps its place
// among what the loop queues next (asyncio appends both to one ready
// deque): a future's done callbacks, completed after it, come after it.
func TestCallSoonThreadsafeKeepsItsPlace(t *testing.T) {
	l := loop.New()
	defer l.Close()
	var order []string
	f := loop.NewFuture[int](l)
	f.AddDoneCallback(func(*loop.Future[int]) { order = append(order, "done-callback") })
	l.CallSoon(func() {
		l.CallSoonThreadsafe(func() { order = append(order, "threadsafe") })
		_ = f.SetResult(1)
		loop.CreateTask(l, func(ctx context.Context) (int, error) {
			order = append(order, "task")
			return 0, nil
		})
	})
	if err := l.RunUntilComplete(f); err != nil {
		t.Fatal(err)
	}
	l.CallSoon(l.Stop)
	if err := l.RunForever(); err != nil {
		t.Fatal(err)
	}
	want := []string{"threadsafe", "done-callback", "task"}
	if len(order) != len(want) || order[0] != want[0] || order[1] != want[1] || order[2] != want[2] {
		t.Fatalf("order %v, want %v", order, want)
	}
}

// A Timeout's scope ctx kept past its block is an ended ctx (Err is
// context.Canceled, as a cancelled WithTimeout's): an await made with it
// returns at once with that error, as with any ended derived ctx.
func TestScopeCtxAfterItsBlockHasEnded(t *testing.T) {
	l := loop.New(loop.WithVirtualClock())
	defer l.Close()
	task := loop.CreateTask(l, func(ctx context.Context) (time.Duration, error) {
		var scope context.Context
		if err := loop.WithTimeout(ctx, time.Hour, func(c context.Context) error { scope = c; return nil }); err != nil {
			return 0, err
		}
		start := l.Time()
		err := loop.Sleep(scope, time.Minute)
		if !errors.Is(err, context.Canceled) {
			return 0, fmt.Errorf("Sleep with the ended scope = %v, want context.Canceled", err)
		}
		return l.Time().Sub(start), nil
	})
	if err := l.RunUntilComplete(task); err != nil {
		t.Fatal(err)
	}
	if d, _ := task.Result(); d != 0 {
		t.Fatalf("the await slept %v of loop time with an ended ctx", d)
	}
}

// add_done_callback on a done future and the cancel of a sleeping task
// are call_soon too: they go behind earlier threadsafe callbacks (found
// in review).
func TestDoneCallbackAndCancelWakeKeepThreadsafeOrder(t *testing.T) {
	l := loop.New()
	defer l.Close()
	var order []string
	done := loop.NewFuture[int](l)
	_ = done.SetResult(1)
	sleeper := loop.CreateTask(l, func(ctx context.Context) (int, error) {
		err := loop.Sleep(ctx, time.Hour)
		order = append(order, "sleeper-woke")
		return 0, err
	})
	l.CallSoon(func() {
		l.CallSoon(func() {
			l.CallSoonThreadsafe(func() { order = append(order, "threadsafe") })
			done.AddDoneCallback(func(*loop.Future[int]) { order = append(order, "done-callback") })
			sleeper.Cancel()
		})
	})
	_ = l.RunUntilComplete(sleeper)
	want := []string{"threadsafe", "done-callback", "sleeper-woke"}
	if fmt.Sprint(order) != fmt.Sprint(want) {
		t.Fatalf("order %v, want %v", order, want)
	}
}

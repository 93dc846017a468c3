package loop_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/loop"
)

// A task waiting on its TaskGroup when the loop closes is unwound, however
// its code retries: Close returns.
func TestCloseUnwindsTaskGroup(t *testing.T) {
	l := loop.New()
	started := loop.NewFuture[struct{}](l)
	loop.CreateTask(l, func(ctx context.Context) (int, error) {
		return 0, loop.WithTaskGroup(ctx, func(ctx context.Context, tg *loop.TaskGroup) error {
			tg.Go(func(ctx context.Context) error { return loop.Sleep(ctx, time.Hour) })
			_ = started.SetResult(struct{}{})
			return nil
		})
	})
	retrier := loop.CreateTask(l, func(ctx context.Context) (int, error) {
		for { // ignores every error: only the unwinding panic ends it
			_ = loop.Sleep(ctx, time.Hour)
		}
	})
	if err := l.RunUntilComplete(started); err != nil {
		t.Fatal(err)
	}
	l.SetExceptionHandler(func(*loop.Loop, loop.ExceptionContext) {})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if !retrier.Cancelled() {
		t.Errorf("the retrying task is not cancelled after Close")
	}
}

// A RunCoroutineThreadsafe future settles when the loop closes under its
// task, so the goroutine waiting on it does not hang.
func TestRunCoroutineThreadsafeLoopCloses(t *testing.T) {
	l := loop.New()
	l.SetExceptionHandler(func(*loop.Loop, loop.ExceptionContext) {})
	cf := loop.RunCoroutineThreadsafe(l, func(ctx context.Context) (int, error) {
		return 0, loop.Sleep(ctx, time.Hour)
	})
	queued := loop.RunCoroutineThreadsafe(l, func(ctx context.Context) (int, error) { return 1, nil })
	l.CallSoonThreadsafe(l.Stop)
	_ = l.RunForever() // starts the first task; the second may or may not run
	l.Close()
	if _, err := cf.Result(context.Background()); !errors.Is(err, loop.ErrLoopClosed) {
		t.Errorf("Result() = %v; want ErrLoopClosed", err)
	}
	if _, err := queued.Result(context.Background()); err != nil && !errors.Is(err, loop.ErrLoopClosed) {
		t.Errorf("Result() = %v; want 1 or ErrLoopClosed", err)
	}
}

// A panic in a TaskGroup's body still cancels and waits for its children.
func TestTaskGroupBodyPanic(t *testing.T) {
	var childErr error
	_, err := run(t, func(ctx context.Context) (int, error) {
		defer func() { _ = recover() }()
		_ = loop.WithTaskGroup(ctx, func(ctx context.Context, tg *loop.TaskGroup) error {
			tg.Go(func(ctx context.Context) error {
				childErr = loop.Sleep(ctx, time.Hour)
				return childErr
			})
			_ = loop.Sleep(ctx, 0)
			panic("body")
		})
		return 0, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(childErr, loop.ErrCancelled) {
		t.Errorf("child = %v; want cancelled before the panic went on", childErr)
	}
}

// A panic in a Timeout's body after the deadline withdraws the timeout's
// cancellation: the task is not left cancelling.
func TestTimeoutBodyPanicAfterExpiry(t *testing.T) {
	_, err := run(t, func(ctx context.Context) (int, error) {
		func() {
			defer func() { _ = recover() }()
			_ = loop.WithTimeout(ctx, time.Millisecond, func(ctx context.Context) error {
				_ = loop.Sleep(ctx, time.Hour)
				panic("late")
			})
		}()
		if n := loop.CurrentTask(ctx).Cancelling(); n != 0 {
			t.Errorf("Cancelling() = %d; want 0", n)
		}
		return 0, loop.Sleep(ctx, time.Second)
	})
	if err != nil {
		t.Fatal(err)
	}
}

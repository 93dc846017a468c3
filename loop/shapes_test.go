package loop_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/loop"
)

// Issue 8, item 9: the common shapes without ceremony.

// asyncio.run(main()) for a main that returns nothing.
func TestRunMain(t *testing.T) {
	ran := false
	if err := loop.RunMain(context.Background(), func(ctx context.Context) error {
		ran = true
		return loop.Sleep(ctx, 0)
	}); err != nil || !ran {
		t.Fatalf("RunMain() = %v (ran %v); want nil, true", err, ran)
	}
	boom := errors.New("boom")
	if err := loop.RunMain(context.Background(), func(ctx context.Context) error { return boom }); err != boom {
		t.Errorf("RunMain() = %v; want boom", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := loop.RunMain(ctx, func(ctx context.Context) error { return loop.Sleep(ctx, time.Hour) }); !errors.Is(err, loop.ErrCancelled) {
		t.Errorf("RunMain(cancelled ctx) = %v; want a cancellation", err)
	}
}

// task.cancel() and future.cancel() take no message; test_tasks.py's
// test_cancel_with_message_then_future_result for the one-message form.
func TestCancelWithoutMessage(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		tk := loop.Spawn(ctx, func(ctx context.Context) (int, error) { return 0, loop.Sleep(ctx, time.Hour) })
		sleep0(ctx)
		if !tk.Cancel() {
			t.Fatal("Cancel() = false on a pending task")
		}
		if _, err := tk.Await(ctx); !errors.Is(err, loop.ErrCancelled) || loop.CancelMessage(err) != "" {
			t.Errorf("Await() = %v; want a cancellation without message", err)
		}
		f := loop.NewFuture[int](loopOf(ctx))
		if !f.Cancel() || !f.Cancelled() {
			t.Error("Future.Cancel() did not cancel")
		}
		tk = loop.Spawn(ctx, func(ctx context.Context) (int, error) { return 0, loop.Sleep(ctx, time.Hour) })
		sleep0(ctx)
		tk.Cancel("shutting", "down")
		if _, err := tk.Await(ctx); loop.CancelMessage(err) != "shutting down" {
			t.Errorf("Cancel(two words) message = %q; want %q", loop.CancelMessage(err), "shutting down")
		}
	})
}

// loop.Time(ctx) is the running loop's time, from a task's ctx or one
// derived from it; with no running loop it panics as Spawn does.
func TestTimeFromCtx(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		start := loop.Time(ctx)
		if !start.Equal(loopOf(ctx).Time()) {
			t.Errorf("Time(ctx) = %v; want the loop's %v", start, loopOf(ctx).Time())
		}
		_ = loop.Sleep(ctx, time.Second)
		derived, cancel := context.WithCancel(ctx)
		defer cancel()
		if d := loop.Time(derived).Sub(start); d != time.Second {
			t.Errorf("Time(derived) advanced %v; want 1s of virtual time", d)
		}
	})
	if v := panicsWith(func() { loop.Time(context.Background()) }); v != loop.ErrNoRunningLoop {
		t.Errorf("Time(Background) panicked with %v; want ErrNoRunningLoop", v)
	}
}

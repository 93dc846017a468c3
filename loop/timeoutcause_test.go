package loop_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/loop"
)

// Mirrors test_timeouts.py: test_timeout_exception_cause. The TimeoutError
// carries the cancellation that caused it (`raise TimeoutError from exc`),
// through Cause only: errors.Is(err, ErrCancelled) stays false.
func TestTimeoutExceptionCause(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		err := loop.WithTimeout(ctx, 0, func(ctx context.Context) error {
			return loop.Sleep(ctx, time.Second)
		})
		checkTimeoutCause(t, "WithTimeout(0)", err)

		tm := loop.NewTimeout(ctx, time.Millisecond)
		err = tm.Do(ctx, func(ctx context.Context) error {
			return loop.Sleep(ctx, time.Second)
		})
		checkTimeoutCause(t, "Timeout.Do", err)
	})
}

// The same for wait_for, on both of its paths: a timeout > 0 (through
// timeout()) and a timeout <= 0 on a pending awaitable (cancelled at once).
func TestWaitForTimeoutCause(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		for _, d := range []time.Duration{time.Millisecond, 0, -time.Second} {
			slow := loop.Spawn(ctx, func(ctx context.Context) (int, error) {
				return 0, loop.Sleep(ctx, time.Hour)
			})
			_, err := loop.WaitFor(ctx, slow, d)
			checkTimeoutCause(t, "WaitFor("+d.String()+")", err)
			if !slow.Cancelled() {
				t.Errorf("WaitFor(%v): the awaited task is not cancelled", d)
			}
		}
	})
}

// A task that returns the TimeoutError ends failed, not cancelled, and its
// awaiter sees the same error with its cause.
func TestTaskReturningTimeoutFails(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		tk := loop.Spawn(ctx, func(ctx context.Context) (int, error) {
			slow := loop.Spawn(ctx, func(ctx context.Context) (int, error) {
				return 0, loop.Sleep(ctx, time.Hour)
			})
			return loop.WaitFor(ctx, slow, time.Millisecond)
		})
		_, err := tk.Await(ctx)
		if tk.Cancelled() {
			t.Fatalf("task returning a timeout ended cancelled (%v)", err)
		}
		checkTimeoutCause(t, "Await", err)
	})
}

func checkTimeoutCause(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, loop.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("%s = %v; want a match for ErrTimeout and context.DeadlineExceeded", what, err)
	}
	if errors.Is(err, loop.ErrCancelled) || errors.Is(err, context.Canceled) {
		t.Errorf("%s = %v matches a cancellation; a timeout must not", what, err)
	}
	if err.Error() != loop.ErrTimeout.Error() {
		t.Errorf("%s prints %q; want %q", what, err.Error(), loop.ErrTimeout.Error())
	}
	var te *loop.TimeoutError
	if !errors.As(err, &te) {
		t.Fatalf("%s = %T; want a *loop.TimeoutError", what, err)
	}
	if cause := te.Cause(); !errors.Is(cause, loop.ErrCancelled) {
		t.Errorf("%s: Cause() = %v; want the CancelledError", what, cause)
	}
}

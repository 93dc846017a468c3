package loop_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/loop"
)

// inTask runs body as the main task of a fresh virtual-clock loop.
func inTask(t *testing.T, body func(ctx context.Context)) {
	t.Helper()
	_, err := run(t, func(ctx context.Context) (int, error) {
		body(ctx)
		return 0, nil
	})
	if err != nil {
		t.Fatalf("Run() = %v; want nil", err)
	}
}

// Mirrors test_timeouts.py: test_timeout_basic and test_waiter_cancelled
// (invariant I54: the block sees a cancellation, the scope returns
// ErrTimeout, and the task's cancelling count is back where it was).
func TestTimeoutBasic(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		start := loopOf(ctx).Time()
		cancelled := false
		tm := loop.NewTimeout(ctx, 10*time.Millisecond)
		err := tm.Do(ctx, func(ctx context.Context) error {
			err := loop.Sleep(ctx, 10*time.Second)
			cancelled = errors.Is(err, loop.ErrCancelled)
			return err
		})
		if !errors.Is(err, loop.ErrTimeout) || errors.Is(err, loop.ErrCancelled) {
			t.Errorf("Do() = %v; want %v", err, loop.ErrTimeout)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Do() = %v; want it to match context.DeadlineExceeded", err)
		}
		if !cancelled || !tm.Expired() {
			t.Errorf("block cancelled %v, Expired() %v; want true, true", cancelled, tm.Expired())
		}
		if d := since(ctx, start); d != 10*time.Millisecond {
			t.Errorf("elapsed = %v; want 10ms", d)
		}
		if n := loop.CurrentTask(ctx).Cancelling(); n != 0 {
			t.Errorf("Cancelling() = %d; want 0", n)
		}
	})
}

// Mirrors test_timeouts.py: test_timeout_at_basic.
func TestTimeoutAtBasic(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		deadline := loopOf(ctx).Time().Add(10 * time.Millisecond)
		tm := loop.NewTimeoutAt(deadline)
		err := tm.Do(ctx, func(ctx context.Context) error { return loop.Sleep(ctx, 10*time.Second) })
		if !errors.Is(err, loop.ErrTimeout) || !tm.Expired() {
			t.Errorf("Do() = %v, Expired() = %v; want %v, true", err, tm.Expired(), loop.ErrTimeout)
		}
		if !tm.When().Equal(deadline) {
			t.Errorf("When() = %v; want %v", tm.When(), deadline)
		}
		if !loopOf(ctx).Time().Equal(deadline) {
			t.Errorf("Time() = %v; want the deadline %v", loopOf(ctx).Time(), deadline)
		}
	})
}

// Mirrors test_timeouts.py: test_nested_timeouts (invariant I55: with the
// same deadline both expire, and only the outer one converts).
func TestNestedTimeoutsSameDeadline(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		deadline := loopOf(ctx).Time().Add(10 * time.Millisecond)
		cm1, cm2 := loop.NewTimeoutAt(deadline), loop.NewTimeoutAt(deadline)
		var innerErr error
		err := cm1.Do(ctx, func(ctx context.Context) error {
			innerErr = cm2.Do(ctx, func(ctx context.Context) error { return loop.Sleep(ctx, 10*time.Second) })
			return innerErr
		})
		if !errors.Is(innerErr, loop.ErrCancelled) {
			t.Errorf("inner Do() = %v; want a cancellation", innerErr)
		}
		if !errors.Is(err, loop.ErrTimeout) {
			t.Errorf("outer Do() = %v; want %v", err, loop.ErrTimeout)
		}
		if !cm1.Expired() || !cm2.Expired() {
			t.Errorf("Expired() = %v, %v; want true, true", cm1.Expired(), cm2.Expired())
		}
	})
}

// Mirrors test_timeouts.py: test_nested_timeouts_concurrent (invariant I55:
// an inner timeout that has not expired lets the outer one's cancellation
// through, and the outer one converts it).
func TestNestedTimeoutsOuterExpires(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		outer := loop.NewTimeout(ctx, 10*time.Millisecond)
		inner := loop.NewTimeout(ctx, 10*time.Second)
		var innerErr error
		err := outer.Do(ctx, func(ctx context.Context) error {
			innerErr = inner.Do(ctx, func(ctx context.Context) error { return loop.Sleep(ctx, time.Minute) })
			return innerErr
		})
		if !errors.Is(innerErr, loop.ErrCancelled) || inner.Expired() {
			t.Errorf("inner Do() = %v, Expired() = %v; want a cancellation, false", innerErr, inner.Expired())
		}
		if !errors.Is(err, loop.ErrTimeout) || !outer.Expired() {
			t.Errorf("outer Do() = %v, Expired() = %v; want %v, true", err, outer.Expired(), loop.ErrTimeout)
		}
	})
}

// Mirrors test_timeouts.py: test_timeout_not_called.
func TestTimeoutNotCalled(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		tm := loop.NewTimeout(ctx, 10*time.Second)
		err := tm.Do(ctx, func(ctx context.Context) error { return loop.Sleep(ctx, 10*time.Millisecond) })
		now := loopOf(ctx).Time()
		if err != nil || tm.Expired() {
			t.Errorf("Do() = %v, Expired() = %v; want nil, false", err, tm.Expired())
		}
		if !tm.When().After(now) {
			t.Errorf("When() = %v; want after %v", tm.When(), now)
		}
	})
}

// Mirrors test_timeouts.py: test_timeout_disabled and test_timeout_at_disabled.
func TestTimeoutDisabled(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		for name, tm := range map[string]*loop.Timeout{
			"NewTimeout(NoTimeout)": loop.NewTimeout(ctx, loop.NoTimeout),
			"NewTimeoutAt(zero)":    loop.NewTimeoutAt(time.Time{}),
		} {
			err := tm.Do(ctx, func(ctx context.Context) error { return loop.Sleep(ctx, 10*time.Millisecond) })
			if err != nil || tm.Expired() || !tm.When().IsZero() {
				t.Errorf("%s: Do() = %v, Expired() = %v, When() = %v; want nil, false, zero", name, err, tm.Expired(), tm.When())
			}
		}
	})
}

// Mirrors test_timeouts.py: test_timeout_zero, test_timeout_zero_sleep_zero
// and test_timeout_in_the_past_sleep_zero (invariant I58: a deadline now or
// in the past fires through CallSoon: the first await raises).
func TestTimeoutZeroOrPast(t *testing.T) {
	for _, tc := range []struct {
		name    string
		timeout time.Duration
		sleep   time.Duration
	}{
		{"zero", 0, 10 * time.Second},
		{"zero, sleep(0)", 0, 0},
		{"past, sleep(0)", -11 * time.Second, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inTask(t, func(ctx context.Context) {
				t0 := loopOf(ctx).Time()
				tm := loop.NewTimeout(ctx, tc.timeout)
				err := tm.Do(ctx, func(ctx context.Context) error { return loop.Sleep(ctx, tc.sleep) })
				if !errors.Is(err, loop.ErrTimeout) || !tm.Expired() {
					t.Errorf("Do() = %v, Expired() = %v; want %v, true", err, tm.Expired(), loop.ErrTimeout)
				}
				if d := since(ctx, t0); d != 0 {
					t.Errorf("elapsed = %v; want 0", d)
				}
				if !tm.When().Equal(t0.Add(tc.timeout)) {
					t.Errorf("When() = %v; want %v", tm.When(), t0.Add(tc.timeout))
				}
			})
		})
	}
}

// Mirrors test_timeouts.py: test_foreign_exception_passed.
func TestTimeoutForeignErrorPassed(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		keyErr := errors.New("key error")
		tm := loop.NewTimeout(ctx, 10*time.Millisecond)
		if err := tm.Do(ctx, func(context.Context) error { return keyErr }); err != keyErr {
			t.Errorf("Do() = %v; want %v", err, keyErr)
		}
		if tm.Expired() {
			t.Errorf("Expired() = true; want false")
		}
	})
}

// Mirrors test_timeouts.py: test_foreign_exception_on_timeout (an error the
// block raises while being cancelled by the deadline replaces the timeout).
func TestTimeoutForeignErrorOnTimeout(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		crash := func(ctx context.Context) error {
			_ = loop.Sleep(ctx, time.Second)
			return errDiv // raised in a finally
		}
		if err := loop.WithTimeout(ctx, 10*time.Millisecond, crash); err != errDiv {
			t.Errorf("WithTimeout() = %v; want %v", err, errDiv)
		}
	})
}

// Mirrors test_timeouts.py: test_foreign_cancel_doesnt_timeout_if_not_expired
// (invariant I56).
func TestTimeoutForeignCancelStaysCancel(t *testing.T) {
	_, err := run(t, func(ctx context.Context) (int, error) {
		tm := loop.NewTimeout(ctx, 10*time.Second)
		err := tm.Do(ctx, func(ctx context.Context) error {
			loop.CurrentTask(ctx).Cancel("")
			return loop.Sleep(ctx, 10*time.Second)
		})
		if !errors.Is(err, loop.ErrCancelled) || errors.Is(err, loop.ErrTimeout) || tm.Expired() {
			t.Errorf("Do() = %v, Expired() = %v; want a cancellation, false", err, tm.Expired())
		}
		return 0, err
	})
	if !errors.Is(err, loop.ErrCancelled) {
		t.Errorf("Run() = %v; want %v", err, loop.ErrCancelled)
	}
}

// Mirrors test_timeouts.py: test_outer_task_is_not_cancelled.
func TestTimeoutOuterTaskIsNotCancelled(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		task := loop.Go(ctx, func(ctx context.Context) error {
			err := loop.WithTimeout(ctx, time.Millisecond, func(ctx context.Context) error { return loop.Sleep(ctx, 10*time.Second) })
			if !errors.Is(err, loop.ErrTimeout) {
				t.Errorf("WithTimeout() = %v; want %v", err, loop.ErrTimeout)
			}
			return nil
		})
		if _, err := task.Await(ctx); err != nil || task.Cancelled() || !task.Done() {
			t.Errorf("await task = %v, Cancelled() = %v; want nil, false", err, task.Cancelled())
		}
	})
}

// Mirrors test_timeouts.py: test_reschedule.
func TestTimeoutReschedule(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		l := loopOf(ctx)
		fut := loop.NewFuture[*loop.Timeout](l)
		deadline1 := l.Time().Add(10 * time.Second)
		deadline2 := deadline1.Add(20 * time.Second)
		task := loop.Go(ctx, func(ctx context.Context) error {
			cm := loop.NewTimeoutAt(deadline1)
			return cm.Do(ctx, func(ctx context.Context) error {
				_ = fut.SetResult(cm)
				return loop.Sleep(ctx, 50*time.Second)
			})
		})
		cm, err := fut.Await(ctx)
		if err != nil {
			t.Fatalf("await fut = %v", err)
		}
		if !cm.When().Equal(deadline1) {
			t.Errorf("When() = %v; want %v", cm.When(), deadline1)
		}
		if err := cm.Reschedule(deadline2); err != nil || !cm.When().Equal(deadline2) {
			t.Errorf("Reschedule(deadline2) = %v, When() = %v; want nil, %v", err, cm.When(), deadline2)
		}
		if err := cm.Reschedule(time.Time{}); err != nil || !cm.When().IsZero() {
			t.Errorf("Reschedule(zero) = %v, When() = %v; want nil, zero", err, cm.When())
		}
		task.Cancel("")
		if _, err := task.Await(ctx); !errors.Is(err, loop.ErrCancelled) {
			t.Errorf("await task = %v; want %v", err, loop.ErrCancelled)
		}
		if cm.Expired() {
			t.Errorf("Expired() = true; want false")
		}
	})
}

// Mirrors test_timeouts.py: test_timeout_after_cancellation (a timeout used
// in cleanup after a swallowed cancellation still converts its own expiry).
func TestTimeoutAfterCancellation(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		loop.CurrentTask(ctx).Cancel("")
		if err := loop.Sleep(ctx, time.Second); !errors.Is(err, loop.ErrCancelled) {
			t.Fatalf("Sleep() = %v; want a cancellation", err)
		}
		err := loop.WithTimeout(ctx, 0, func(ctx context.Context) error { return loop.Sleep(ctx, time.Second) })
		if !errors.Is(err, loop.ErrTimeout) {
			t.Errorf("WithTimeout() in cleanup = %v; want %v", err, loop.ErrTimeout)
		}
		loop.CurrentTask(ctx).Uncancel()
	})
}

// Mirrors test_timeouts.py: test_cancel_in_timeout_after_cancellation.
func TestTimeoutCancelInTimeoutAfterCancellation(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		start := loopOf(ctx).Time()
		loop.CurrentTask(ctx).Cancel("")
		if err := loop.Sleep(ctx, time.Second); !errors.Is(err, loop.ErrCancelled) {
			t.Fatalf("Sleep() = %v; want a cancellation", err)
		}
		tm := loop.NewTimeout(ctx, time.Second)
		err := tm.Do(ctx, func(ctx context.Context) error {
			loop.CurrentTask(ctx).Cancel("")
			return loop.Sleep(ctx, 2*time.Second)
		})
		if !errors.Is(err, loop.ErrCancelled) || tm.Expired() {
			t.Errorf("Do() = %v, Expired() = %v; want a cancellation, false", err, tm.Expired())
		}
		if d := since(ctx, start); d != 0 {
			t.Errorf("elapsed = %v; want 0", d)
		}
		loop.CurrentTask(ctx).Uncancel()
		loop.CurrentTask(ctx).Uncancel()
	})
}

// Mirrors test_timeouts.py: test_nested_timeout_in_finally.
func TestTimeoutNestedInFinally(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		var innerErr error
		err := loop.WithTimeout(ctx, 10*time.Millisecond, func(ctx context.Context) error {
			err := loop.Sleep(ctx, time.Second)
			innerErr = loop.WithTimeout(ctx, 10*time.Millisecond, func(ctx context.Context) error { return loop.Sleep(ctx, 10*time.Second) })
			return err
		})
		if !errors.Is(innerErr, loop.ErrTimeout) {
			t.Errorf("inner WithTimeout() = %v; want %v", innerErr, loop.ErrTimeout)
		}
		if !errors.Is(err, loop.ErrTimeout) {
			t.Errorf("outer WithTimeout() = %v; want %v", err, loop.ErrTimeout)
		}
	})
}

// Mirrors test_waitfor.py: test_wait_for_cancel_suppressed, for a timeout
// scope (invariant I57: a block that swallows the cancellation gets no
// error, but the scope knows it expired).
func TestTimeoutSwallowedInBlock(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		tm := loop.NewTimeout(ctx, 10*time.Millisecond)
		err := tm.Do(ctx, func(ctx context.Context) error {
			_ = loop.Sleep(ctx, 10*time.Second)
			return nil
		})
		if err != nil || !tm.Expired() {
			t.Errorf("Do() = %v, Expired() = %v; want nil, true", err, tm.Expired())
		}
		if n := loop.CurrentTask(ctx).Cancelling(); n != 0 {
			t.Errorf("Cancelling() = %d; want 0", n)
		}
	})
}

// Mirrors test_timeouts.py: test_timeout_already_entered,
// test_timeout_double_enter, test_timeout_finished, test_timeout_not_entered
// and test_timeout_without_task (invariant I59).
func TestTimeoutStateErrors(t *testing.T) {
	noop := func(context.Context) error { return nil }
	if err := loop.NewTimeout(context.Background(), time.Second).Do(context.Background(), noop); !errors.Is(err, loop.ErrNoRunningLoop) {
		t.Errorf("a Timeout made outside a task: Do() = %v; want %v", err, loop.ErrNoRunningLoop)
	}
	inTask(t, func(ctx context.Context) {
		if err := loop.NewTimeoutAt(time.Time{}).Do(context.Background(), noop); !errors.Is(err, loop.ErrNotInTask) {
			t.Errorf("Do() outside a task = %v; want %v", err, loop.ErrNotInTask)
		}
		cm := loop.NewTimeout(ctx, 10*time.Millisecond)
		if err := cm.Reschedule(loopOf(ctx).Time()); !errors.Is(err, loop.ErrTimeoutNotEntered) {
			t.Errorf("Reschedule() before Do = %v; want %v", err, loop.ErrTimeoutNotEntered)
		}
		var inner error
		if err := cm.Do(ctx, func(ctx context.Context) error { inner = cm.Do(ctx, noop); return nil }); err != nil {
			t.Errorf("Do() = %v; want nil", err)
		}
		if !errors.Is(inner, loop.ErrTimeoutEntered) {
			t.Errorf("Do() inside itself = %v; want %v", inner, loop.ErrTimeoutEntered)
		}
		if err := cm.Do(ctx, noop); !errors.Is(err, loop.ErrTimeoutEntered) {
			t.Errorf("Do() twice = %v; want %v", err, loop.ErrTimeoutEntered)
		}
		if err := cm.Reschedule(loopOf(ctx).Time().Add(time.Second)); !errors.Is(err, loop.ErrTimeoutFinished) {
			t.Errorf("Reschedule() after Do = %v; want %v", err, loop.ErrTimeoutFinished)
		}
	})
}

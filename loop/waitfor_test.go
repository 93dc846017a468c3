package loop_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/loop"
)

// epsilon is a very small timeout: it passes "timeout > 0".
const epsilon = 100 * time.Microsecond

// slowTask runs for taskTimeout of loop time, ignoring cancellations
// (test_waitfor.py's SlowTask).
type slowTask struct{ exited bool }

const taskTimeout = 200 * time.Millisecond

func (s *slowTask) run(ctx context.Context) (int, error) {
	l := loopOf(ctx)
	exitAt := l.Time().Add(taskTimeout)
	for {
		toSleep := exitAt.Sub(l.Time())
		if toSleep <= 0 {
			break
		}
		_ = loop.Sleep(ctx, toSleep) // a cancellation is ignored
	}
	s.exited = true
	return 0, nil
}

// Mirrors test_waitfor.py: test_asyncio_wait_for_cancelled (invariant I50:
// cancelling the waiting task cancels the inner one, and waits for it).
func TestWaitForCancelled(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		start := loopOf(ctx).Time()
		var s slowTask
		inner := loop.Spawn(ctx, s.run)
		waitFor := loop.Spawn(ctx, func(ctx context.Context) (int, error) {
			return loop.WaitFor(ctx, inner, 2*taskTimeout)
		})
		if err := loop.Sleep(ctx, 0); err != nil {
			t.Fatalf("Sleep(0) = %v", err)
		}
		waitFor.Cancel("")
		if _, _, err := loop.Wait(ctx, []*loop.Task[int]{waitFor}, loop.NoTimeout, loop.AllCompleted); err != nil {
			t.Fatalf("Wait() = %v", err)
		}
		if !s.exited {
			t.Errorf("the inner task had not exited when the wait_for task finished")
		}
		if inner.Cancelling() != 1 {
			t.Errorf("inner Cancelling() = %d; want 1 (the cancellation reached it)", inner.Cancelling())
		}
		if d := since(ctx, start); d != taskTimeout {
			t.Errorf("elapsed = %v; want %v", d, taskTimeout)
		}
	})
}

// Mirrors test_waitfor.py: test_asyncio_wait_for_timeout (invariants I47 and
// I49: the timeout waits for the inner task, which swallows the
// cancellation, so its value is returned).
func TestWaitForTimeoutWaitsForStubbornTask(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		start := loopOf(ctx).Time()
		var s slowTask
		_, err := loop.WaitFor(ctx, loop.Spawn(ctx, s.run), taskTimeout/2)
		if err != nil {
			t.Errorf("WaitFor() = %v; want nil (the inner task refused the cancellation)", err)
		}
		if !s.exited {
			t.Errorf("WaitFor returned before the inner task exited")
		}
		if d := since(ctx, start); d != taskTimeout {
			t.Errorf("elapsed = %v; want %v", d, taskTimeout)
		}
	})
}

// Mirrors test_waitfor.py: test_wait_for_timeout_less_then_0_or_0_future_done
// (invariant I48).
func TestWaitForZeroTimeoutDoneFuture(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		start := loopOf(ctx).Time()
		fut := loop.NewFuture[string](loopOf(ctx))
		_ = fut.SetResult("done")
		v, err := loop.WaitFor[string](ctx, fut, 0)
		if v != "done" || err != nil {
			t.Errorf("WaitFor() = %q, %v; want done, nil", v, err)
		}
		if d := since(ctx, start); d != 0 {
			t.Errorf("elapsed = %v; want 0", d)
		}
	})
}

// Mirrors test_waitfor.py:
// test_wait_for_timeout_less_then_0_or_0_coroutine_do_not_started (I48).
func TestWaitForZeroTimeoutTaskNotStarted(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		started := false
		foo := loop.Spawn(ctx, func(ctx context.Context) (int, error) { started = true; return 0, nil })
		if _, err := loop.WaitFor[int](ctx, foo, 0); !errors.Is(err, loop.ErrTimeout) {
			t.Errorf("WaitFor() = %v; want %v", err, loop.ErrTimeout)
		}
		if started || !foo.Cancelled() {
			t.Errorf("body started %v, Cancelled() %v; want false, true", started, foo.Cancelled())
		}
	})
}

// Mirrors test_waitfor.py: test_wait_for_timeout_less_then_0_or_0 (I48: the
// running task is cancelled and awaited, without waiting for the clock).
func TestWaitForZeroOrNegativeTimeout(t *testing.T) {
	for _, timeout := range []time.Duration{0, -time.Second} {
		t.Run(timeout.String(), func(t *testing.T) {
			inTask(t, func(ctx context.Context) {
				l := loopOf(ctx)
				running := false
				started := loop.NewFuture[struct{}](l)
				fut := loop.Spawn(ctx, func(ctx context.Context) (string, error) {
					running = true
					_ = started.SetResult(struct{}{})
					err := loop.Sleep(ctx, 10*time.Second)
					running = false // finally
					return "done", err
				})
				if _, err := started.Await(ctx); err != nil {
					t.Fatalf("await started = %v", err)
				}
				t0 := l.Time()
				if _, err := loop.WaitFor[string](ctx, fut, timeout); !errors.Is(err, loop.ErrTimeout) {
					t.Errorf("WaitFor() = %v; want %v", err, loop.ErrTimeout)
				}
				if !fut.Done() || !fut.Cancelled() || running {
					t.Errorf("done %v, cancelled %v, still running %v; want true, true, false", fut.Done(), fut.Cancelled(), running)
				}
				if d := l.Time().Sub(t0); d != 0 {
					t.Errorf("elapsed = %v; want 0", d)
				}
			})
		})
	}
}

// Mirrors test_waitfor.py: test_wait_for.
func TestWaitFor(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		t0 := loopOf(ctx).Time()
		running := false
		fut := loop.Spawn(ctx, func(ctx context.Context) (string, error) {
			running = true
			err := loop.Sleep(ctx, 10*time.Second)
			running = false
			return "done", err
		})
		if _, err := loop.WaitFor[string](ctx, fut, 100*time.Millisecond); !errors.Is(err, loop.ErrTimeout) {
			t.Errorf("WaitFor() = %v; want %v", err, loop.ErrTimeout)
		}
		if !fut.Done() || !fut.Cancelled() || running {
			t.Errorf("done %v, cancelled %v, still running %v; want true, true, false", fut.Done(), fut.Cancelled(), running)
		}
		if d := since(ctx, t0); d != 100*time.Millisecond {
			t.Errorf("elapsed = %v; want 100ms", d)
		}
		if n := loop.CurrentTask(ctx).Cancelling(); n != 0 {
			t.Errorf("Cancelling() = %d; want 0", n)
		}
	})
}

// Mirrors test_waitfor.py: test_wait_for_blocking (invariant I48: no timeout
// waits as long as it takes).
func TestWaitForNoTimeout(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		coro := loop.Spawn(ctx, func(ctx context.Context) (string, error) { return "done", loop.Sleep(ctx, time.Hour) })
		if v, err := loop.WaitFor[string](ctx, coro, loop.NoTimeout); v != "done" || err != nil {
			t.Errorf("WaitFor() = %q, %v; want done, nil", v, err)
		}
	})
}

// Mirrors test_waitfor.py: test_wait_for_race_condition.
func TestWaitForFutureSetBeforeTimeout(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		l := loopOf(ctx)
		t0 := l.Time()
		fut := loop.NewFuture[string](l)
		l.CallLater(100*time.Millisecond, func() { _ = fut.SetResult("ok") })
		if v, err := loop.WaitFor[string](ctx, fut, 200*time.Millisecond); v != "ok" || err != nil {
			t.Errorf("WaitFor() = %q, %v; want ok, nil", v, err)
		}
		if d := l.Time().Sub(t0); d != 100*time.Millisecond {
			t.Errorf("elapsed = %v; want 100ms", d)
		}
	})
}

// Mirrors test_waitfor.py: test_wait_for_cancellation_race_condition and
// test_wait_for_cancel_suppressed (invariant I49: an inner task that
// swallows the timeout's cancellation and returns a value wins).
func TestWaitForCancelSuppressed(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		inner := loop.Spawn(ctx, func(ctx context.Context) (int, error) {
			if err := loop.Sleep(ctx, 10*time.Second); errors.Is(err, loop.ErrCancelled) {
				return 42, nil
			}
			return 0, nil
		})
		if v, err := loop.WaitFor[int](ctx, inner, 100*time.Millisecond); v != 42 || err != nil {
			t.Errorf("WaitFor() = %d, %v; want 42, nil", v, err)
		}
	})
}

// Mirrors test_waitfor.py: test_wait_for_waits_for_task_cancellation and
// test_wait_for_waits_for_task_cancellation_w_timeout_0 (invariant I47: on
// timeout the inner task is cancelled and awaited, cleanup included).
func TestWaitForWaitsForTaskCancellation(t *testing.T) {
	for _, timeout := range []time.Duration{epsilon, 0} {
		t.Run(timeout.String(), func(t *testing.T) {
			inTask(t, func(ctx context.Context) {
				taskDone := false
				inner := loop.Spawn(ctx, func(ctx context.Context) (int, error) {
					defer func() { taskDone = true }()
					err := loop.Sleep(ctx, 10*time.Second)
					if errors.Is(err, loop.ErrCancelled) {
						_ = loop.Sleep(ctx, epsilon) // cleanup that takes time
					}
					return 0, err
				})
				if err := loop.Sleep(ctx, epsilon); err != nil {
					t.Fatalf("Sleep() = %v", err)
				}
				t0 := loopOf(ctx).Time()
				_, err := loop.WaitFor[int](ctx, inner, timeout)
				if !errors.Is(err, loop.ErrTimeout) {
					t.Errorf("WaitFor() = %v; want %v", err, loop.ErrTimeout)
				}
				if !taskDone {
					t.Errorf("WaitFor returned before the inner task's cleanup ended")
				}
				if d := since(ctx, t0); d != timeout+epsilon {
					t.Errorf("elapsed = %v; want %v", d, timeout+epsilon)
				}
			})
		})
	}
}

// Mirrors test_waitfor.py: test_wait_for_reraises_exception_during_cancellation
// (invariant I49).
func TestWaitForReraisesErrorDuringCancellation(t *testing.T) {
	fooErr := errors.New("foo exception")
	inTask(t, func(ctx context.Context) {
		inner := loop.Spawn(ctx, func(ctx context.Context) (int, error) {
			_ = loop.Sleep(ctx, 200*time.Millisecond)
			return 0, fooErr // raised in a finally
		})
		if _, err := loop.WaitFor[int](ctx, inner, epsilon); err != fooErr {
			t.Errorf("WaitFor() = %v; want %v", err, fooErr)
		}
	})
}

// Mirrors test_waitfor.py: test_wait_for_self_cancellation (invariant I50:
// WaitFor stays cancellable even when the inner task ignores cancellation).
func TestWaitForSelfCancellation(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		inner := loop.Spawn(ctx, func(ctx context.Context) (int, error) {
			if err := loop.Sleep(ctx, 300*time.Millisecond); err != nil {
				if err := loop.Sleep(ctx, 300*time.Millisecond); err != nil {
					_ = loop.Sleep(ctx, 300*time.Millisecond)
				}
			}
			return 42, nil
		})
		task := loop.Spawn(ctx, func(ctx context.Context) (int, error) {
			return loop.WaitFor[int](ctx, inner, 100*time.Millisecond)
		})
		task.Cancel("")
		if _, err := task.Await(ctx); !errors.Is(err, loop.ErrCancelled) {
			t.Errorf("await wait_for task = %v; want %v", err, loop.ErrCancelled)
		}
		if v, err := inner.Await(ctx); v != 42 || err != nil {
			t.Errorf("await inner = %d, %v; want 42, nil", v, err)
		}
	})
}

// Mirrors test_waitfor.py: test_cancel_blocking_wait_for and
// test_cancel_wait_for (invariant I50; Python issue #23219: cancelling the
// wait also cancels the inner task).
func TestCancelWaitFor(t *testing.T) {
	for name, timeout := range map[string]time.Duration{"blocking": loop.NoTimeout, "60s": time.Minute} {
		t.Run(name, func(t *testing.T) {
			inTask(t, func(ctx context.Context) {
				l := loopOf(ctx)
				task := loop.Spawn(ctx, func(ctx context.Context) (int, error) {
					return loop.NewFuture[int](l).Await(ctx) // never set
				})
				wait := loop.Spawn(ctx, func(ctx context.Context) (int, error) {
					return loop.WaitFor[int](ctx, task, timeout)
				})
				l.CallSoon(func() { wait.Cancel("") })
				if _, err := wait.Await(ctx); !errors.Is(err, loop.ErrCancelled) {
					t.Errorf("await wait = %v; want %v", err, loop.ErrCancelled)
				}
				if !task.Cancelled() {
					t.Errorf("the inner task was not cancelled with the wait")
				}
			})
		})
	}
}

// Mirrors test_waitfor.py: test_wait_for_issue86296 (a cancellation that
// arrives while WaitFor is finishing is not lost).
func TestWaitForIssue86296(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		reachedEnd := false
		task := loop.Spawn(ctx, func(ctx context.Context) (int, error) {
			inner := loop.Spawn(ctx, func(ctx context.Context) (int, error) { return 0, nil })
			if _, err := loop.WaitFor[int](ctx, inner, 100*time.Second); err != nil {
				return 0, err
			}
			if err := loop.Sleep(ctx, time.Second); err != nil {
				return 0, err
			}
			reachedEnd = true
			return 0, nil
		})
		if err := loop.Sleep(ctx, 0); err != nil {
			t.Fatalf("Sleep(0) = %v", err)
		}
		if task.Done() {
			t.Fatalf("task done too early")
		}
		task.Cancel("")
		if _, err := task.Await(ctx); !errors.Is(err, loop.ErrCancelled) {
			t.Errorf("await task = %v; want %v", err, loop.ErrCancelled)
		}
		if reachedEnd {
			t.Errorf("the cancelled task reached its end")
		}
	})
}

// More than 100 cancelled timers in the heap make the loop compact it; when
// every timer was cancelled that compaction used to panic ("Exception in
// callback"). 101 WaitFor calls that finish in time leave 101 cancelled
// timers: a busy server hits it at once.
func TestWaitForManyCompletedInTime(t *testing.T) {
	l := loop.New(loop.WithVirtualClock())
	defer l.Close()
	var reports []string
	l.SetExceptionHandler(func(_ *loop.Loop, c loop.ExceptionContext) {
		reports = append(reports, fmt.Sprint(c.Message, ": ", c.Err))
	})
	const n = 101
	main := loop.CreateTask(l, func(ctx context.Context) (int, error) {
		var ts []*loop.Task[int]
		for i := range n {
			ts = append(ts, loop.Spawn(ctx, func(ctx context.Context) (int, error) {
				return loop.WaitFor(ctx, loop.Spawn(ctx, func(ctx context.Context) (int, error) {
					return i, loop.Sleep(ctx, 0)
				}), time.Hour)
			}))
		}
		sum := 0
		for _, t := range ts {
			v, err := t.Await(ctx)
			if err != nil {
				return 0, err
			}
			sum += v
		}
		// One more iteration with a timer due, so the loop looks at the heap.
		return sum, loop.Sleep(ctx, time.Millisecond)
	})
	if err := l.RunUntilComplete(main); err != nil {
		t.Fatal(err)
	}
	if v, _ := main.Result(); v != n*(n-1)/2 {
		t.Errorf("sum of results = %d; want %d", v, n*(n-1)/2)
	}
	if len(reports) != 0 {
		t.Errorf("exception handler called: %q", reports)
	}
}

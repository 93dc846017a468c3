package loop_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/loop"
)

// Mirrors test_tasks.py: test_bare_create_task (create_task returns before
// any of the body runs; invariant I25).
func TestCreateTaskStartsLazily(t *testing.T) {
	l := newLoop(t)
	var trace []string
	task := loop.CreateTask(l, func(ctx context.Context) (int, error) {
		trace = append(trace, "task-body")
		return 1, nil
	})
	trace = append(trace, "after-create")
	if err := l.RunUntilComplete(task); err != nil {
		t.Fatalf("RunUntilComplete() = %v; want nil", err)
	}
	checkTrace(t, []string{"after-create", "task-body"}, trace)
}

// Mirrors test_tasks.py: test_cancel_yield.
func TestCancelYield(t *testing.T) {
	l := newLoop(t)
	reached := false
	task := loop.CreateTask(l, func(ctx context.Context) (int, error) {
		if err := loop.Sleep(ctx, 0); err != nil {
			return 0, err
		}
		if err := loop.Sleep(ctx, 0); err != nil {
			return 0, err
		}
		reached = true
		return 12, nil
	})
	runBriefly(t, l) // start the task
	if !task.Cancel("") {
		t.Fatalf("Cancel() = false on a pending task; want true")
	}
	if err := l.RunUntilComplete(task); !errors.Is(err, loop.ErrCancelled) {
		t.Fatalf("RunUntilComplete() = %v; want %v", err, loop.ErrCancelled)
	}
	if !task.Done() || !task.Cancelled() || reached {
		t.Errorf("Done() = %v, Cancelled() = %v, body finished = %v; want true, true, false", task.Done(), task.Cancelled(), reached)
	}
	if task.Cancel("") {
		t.Errorf("Cancel() on a done task = true; want false")
	}
}

// Mirrors test_tasks.py: test_cancel_inner_future (and invariant I33: a task
// that lets a cancellation escape ends cancelled, though nobody cancelled it).
func TestCancelInnerFuture(t *testing.T) {
	l := newLoop(t)
	f := loop.NewFuture[int](l)
	task := loop.CreateTask(l, func(ctx context.Context) (int, error) {
		if _, err := f.Await(ctx); err != nil {
			return 0, err
		}
		return 12, nil
	})
	runBriefly(t, l)
	f.Cancel("")
	if err := l.RunUntilComplete(task); !errors.Is(err, loop.ErrCancelled) {
		t.Fatalf("RunUntilComplete() = %v; want %v", err, loop.ErrCancelled)
	}
	if !f.Cancelled() || !task.Cancelled() {
		t.Errorf("future cancelled = %v, task cancelled = %v; want true, true", f.Cancelled(), task.Cancelled())
	}
	if n := task.Cancelling(); n != 0 {
		t.Errorf("Cancelling() = %d; want 0 (nobody called Cancel on the task)", n)
	}
}

// Mirrors test_tasks.py: test_cancel_both_task_and_inner_future.
func TestCancelBothTaskAndInnerFuture(t *testing.T) {
	l := newLoop(t)
	f := loop.NewFuture[int](l)
	task := loop.CreateTask(l, func(ctx context.Context) (int, error) {
		if _, err := f.Await(ctx); err != nil {
			return 0, err
		}
		return 12, nil
	})
	runBriefly(t, l)
	f.Cancel("")
	task.Cancel("")
	if err := l.RunUntilComplete(task); !errors.Is(err, loop.ErrCancelled) {
		t.Fatalf("RunUntilComplete() = %v; want %v", err, loop.ErrCancelled)
	}
	if !task.Done() || !f.Cancelled() || !task.Cancelled() {
		t.Errorf("task done %v, future cancelled %v, task cancelled %v; want all true", task.Done(), f.Cancelled(), task.Cancelled())
	}
}

// Mirrors test_tasks.py: test_cancel_task_catching (invariant I28: a task
// that catches the cancellation and returns is not cancelled, and its
// cancellation request stays counted until Uncancel).
func TestCancelTaskCatching(t *testing.T) {
	l := newLoop(t)
	fut1 := loop.NewFuture[int](l)
	fut2 := loop.NewFuture[int](l)
	task := loop.CreateTask(l, func(ctx context.Context) (int, error) {
		if _, err := fut1.Await(ctx); err != nil {
			return 0, err
		}
		if _, err := fut2.Await(ctx); errors.Is(err, loop.ErrCancelled) {
			return 42, nil
		}
		return 0, nil
	})
	runBriefly(t, l)
	_ = fut1.SetResult(0)
	runBriefly(t, l)
	runBriefly(t, l)
	task.Cancel("")
	if !fut2.Cancelled() {
		t.Errorf("the awaited future is not cancelled right after Task.Cancel")
	}
	if err := l.RunUntilComplete(task); err != nil {
		t.Fatalf("RunUntilComplete() = %v; want nil", err)
	}
	if v, _ := task.Result(); v != 42 || task.Cancelled() {
		t.Errorf("Result() = %d, Cancelled() = %v; want 42, false", v, task.Cancelled())
	}
	if n := task.Cancelling(); n != 1 {
		t.Errorf("Cancelling() = %d; want 1", n)
	}
	if n := task.Uncancel(); n != 0 {
		t.Errorf("Uncancel() = %d; want 0", n)
	}
}

// Mirrors test_tasks.py: test_cancel_task_ignoring.
func TestCancelTaskIgnoring(t *testing.T) {
	l := newLoop(t)
	fut1 := loop.NewFuture[int](l)
	fut2 := loop.NewFuture[int](l)
	fut3 := loop.NewFuture[int](l)
	task := loop.CreateTask(l, func(ctx context.Context) (int, error) {
		if _, err := fut1.Await(ctx); err != nil {
			return 0, err
		}
		_, _ = fut2.Await(ctx) // the cancellation is ignored
		return fut3.Await(ctx)
	})
	runBriefly(t, l)
	_ = fut1.SetResult(0)
	runBriefly(t, l)
	runBriefly(t, l)
	task.Cancel("")
	if !fut2.Cancelled() {
		t.Errorf("the awaited future is not cancelled right after Task.Cancel")
	}
	runBriefly(t, l)
	runBriefly(t, l)
	_ = fut3.SetResult(42)
	if err := l.RunUntilComplete(task); err != nil {
		t.Fatalf("RunUntilComplete() = %v; want nil", err)
	}
	if v, _ := task.Result(); v != 42 || fut3.Cancelled() || task.Cancelled() {
		t.Errorf("Result() = %d, fut3 cancelled %v, task cancelled %v; want 42, false, false", v, fut3.Cancelled(), task.Cancelled())
	}
}

// Mirrors test_tasks.py: test_cancel_current_task (invariant I30: a task
// that cancels itself is cancelled at its next await, at once).
func TestCancelCurrentTask(t *testing.T) {
	l := newLoop(t)
	start := l.Time()
	var task *loop.Task[int]
	task = loop.CreateTask(l, func(ctx context.Context) (int, error) {
		task.Cancel("")
		if err := loop.Sleep(ctx, 100*time.Second); err != nil {
			return 0, err
		}
		return 12, nil
	})
	if err := l.RunUntilComplete(task); !errors.Is(err, loop.ErrCancelled) {
		t.Fatalf("RunUntilComplete() = %v; want %v", err, loop.ErrCancelled)
	}
	if !task.Cancelled() || task.Cancel("") {
		t.Errorf("Cancelled() = %v, Cancel() = true on done task; want true, false", task.Cancelled())
	}
	if d := l.Time().Sub(start); d != 0 {
		t.Errorf("the cancelled sleep lasted %v; want 0", d)
	}
}

// Mirrors test_tasks.py: test_cancel_at_end (invariant I30: returning right
// after cancelling itself still ends the task cancelled, its value lost).
func TestCancelAtEnd(t *testing.T) {
	l := newLoop(t)
	var task *loop.Task[int]
	task = loop.CreateTask(l, func(ctx context.Context) (int, error) {
		task.Cancel("")
		return 12, nil
	})
	if err := l.RunUntilComplete(task); !errors.Is(err, loop.ErrCancelled) {
		t.Fatalf("RunUntilComplete() = %v; want %v", err, loop.ErrCancelled)
	}
	if v, err := task.Result(); !task.Cancelled() || v != 0 || !errors.Is(err, loop.ErrCancelled) {
		t.Errorf("Result() = %d, %v, Cancelled() = %v; want 0, cancelled, true", v, err, task.Cancelled())
	}
}

// Mirrors test_tasks.py: test_cancel_awaited_task (a task cancelled while it
// runs cancels whatever it awaits next, at once).
func TestCancelAwaitedTask(t *testing.T) {
	l := newLoop(t)
	fut := loop.NewFuture[int](l)
	var task, nested *loop.Task[int]
	task = loop.CreateTask(l, func(ctx context.Context) (int, error) {
		nested = loop.Spawn(ctx, func(ctx context.Context) (int, error) { return fut.Await(ctx) })
		if err := loop.Sleep(ctx, 0); err != nil {
			return 0, err
		}
		task.Cancel("")
		return nested.Await(ctx)
	})
	if err := l.RunUntilComplete(task); !errors.Is(err, loop.ErrCancelled) {
		t.Fatalf("RunUntilComplete() = %v; want %v", err, loop.ErrCancelled)
	}
	if !task.Cancelled() || !nested.Cancelled() || !fut.Cancelled() {
		t.Errorf("cancelled: task %v, nested %v, fut %v; want all true", task.Cancelled(), nested.Cancelled(), fut.Cancelled())
	}
}

// Mirrors test_tasks.py: test_cancel_with_message_before_starting_task
// (invariant I29: the body never runs; the message is kept).
func TestCancelWithMessageBeforeStartingTask(t *testing.T) {
	l := newLoop(t)
	started := false
	var inner *loop.Task[int]
	task := loop.CreateTask(l, func(ctx context.Context) (int, error) {
		inner = loop.Spawn(ctx, func(ctx context.Context) (int, error) {
			started = true
			return 0, loop.Sleep(ctx, 10*time.Second)
		})
		inner.Cancel("my message")
		if _, _, err := loop.Wait(ctx, []*loop.Task[int]{inner}, loop.NoTimeout, loop.AllCompleted); err != nil {
			return 0, err
		}
		return 0, inner.Err()
	})
	err := l.RunUntilComplete(task)
	if !errors.Is(err, loop.ErrCancelled) || loop.CancelMessage(err) != "my message" {
		t.Fatalf("RunUntilComplete() = %v; want CancelledError(my message)", err)
	}
	if started {
		t.Errorf("the body of a task cancelled before it started ran")
	}
}

// Mirrors test_tasks.py: test_cancel_with_message_then_future_result and
// test_cancel_with_message_then_future_exception.
func TestCancelWithMessageThenFutureResult(t *testing.T) {
	for _, msg := range []string{"", "my message"} {
		t.Run(fmt.Sprintf("msg=%q", msg), func(t *testing.T) {
			l := newLoop(t)
			task := loop.CreateTask(l, func(ctx context.Context) (int, error) {
				sleeper := loop.Spawn(ctx, func(ctx context.Context) (int, error) {
					return 0, loop.Sleep(ctx, 10*time.Second)
				})
				if err := loop.Sleep(ctx, 0); err != nil {
					return 0, err
				}
				sleeper.Cancel(msg)
				if _, _, err := loop.Wait(ctx, []*loop.Task[int]{sleeper}, loop.NoTimeout, loop.AllCompleted); err != nil {
					return 0, err
				}
				if err := sleeper.Err(); loop.CancelMessage(err) != msg {
					t.Errorf("Err() = %v; want CancelledError(%q)", err, msg)
				}
				return sleeper.Result()
			})
			err := l.RunUntilComplete(task)
			if !errors.Is(err, loop.ErrCancelled) || loop.CancelMessage(err) != msg {
				t.Errorf("RunUntilComplete() = %v; want CancelledError(%q)", err, msg)
			}
		})
	}
}

// Mirrors test_tasks.py: test_cancelling (invariants I26 and I32: Cancel is
// a request, counted until the task ends).
func TestCancelling(t *testing.T) {
	l := newLoop(t)
	task := loop.CreateTask(l, func(ctx context.Context) (int, error) {
		return 0, loop.Sleep(ctx, 10*time.Second)
	})
	if n := task.Cancelling(); n != 0 {
		t.Errorf("Cancelling() = %d; want 0", n)
	}
	if !task.Cancel("") {
		t.Errorf("Cancel() = false; want true")
	}
	if n := task.Cancelling(); n != 1 || task.Cancelled() || task.Done() {
		t.Errorf("after Cancel: Cancelling() = %d, Cancelled() = %v, Done() = %v; want 1, false, false", n, task.Cancelled(), task.Done())
	}
	if !task.Cancel("") {
		t.Errorf("second Cancel() = false; want true")
	}
	if n := task.Cancelling(); n != 2 {
		t.Errorf("Cancelling() = %d; want 2", n)
	}
	if err := l.RunUntilComplete(task); !errors.Is(err, loop.ErrCancelled) {
		t.Fatalf("RunUntilComplete() = %v; want %v", err, loop.ErrCancelled)
	}
	if task.Cancel("") {
		t.Errorf("Cancel() on a done task = true; want false")
	}
}

// Mirrors test_tasks.py: test_uncancel (a task that catches a cancellation
// and calls Uncancel can be cancelled again later).
func TestUncancel(t *testing.T) {
	l := newLoop(t)
	task := loop.CreateTask(l, func(ctx context.Context) (int, error) {
		if err := loop.Sleep(ctx, 10*time.Second); errors.Is(err, loop.ErrCancelled) {
			loop.CurrentTask(ctx).Uncancel()
			return 0, loop.Sleep(ctx, 10*time.Second)
		}
		return 1, nil
	})
	runBriefly(t, l)
	if !task.Cancel("") { // cancel the first sleep
		t.Fatalf("Cancel() = false; want true")
	}
	runBriefly(t, l)
	if n := task.Cancelling(); n != 0 || task.Done() {
		t.Fatalf("after Uncancel: Cancelling() = %d, Done() = %v; want 0, false", n, task.Done())
	}
	if !task.Cancel("") { // cancel the second sleep
		t.Fatalf("Cancel() = false; want true")
	}
	if err := l.RunUntilComplete(task); !errors.Is(err, loop.ErrCancelled) {
		t.Errorf("RunUntilComplete() = %v; want %v", err, loop.ErrCancelled)
	}
}

// Mirrors test_tasks.py: test_uncancel_resets_must_cancel (Python 3.13,
// invariant I32: Uncancel back to zero withdraws a cancellation not yet
// delivered).
func TestUncancelResetsMustCancel(t *testing.T) {
	l := newLoop(t)
	fut := loop.NewFuture[int](l)
	task := loop.CreateTask(l, func(ctx context.Context) (int, error) {
		if _, err := fut.Await(ctx); err != nil {
			return 0, err
		}
		return 42, nil
	})
	runBriefly(t, l)     // the task waits for fut
	_ = fut.SetResult(0) // the task is runnable
	task.Cancel("")      // a cancellation, not yet delivered
	if n := task.Uncancel(); n != 0 {
		t.Fatalf("Uncancel() = %d; want 0", n)
	}
	if err := l.RunUntilComplete(task); err != nil {
		t.Fatalf("RunUntilComplete() = %v; want nil", err)
	}
	if v, _ := task.Result(); v != 42 {
		t.Errorf("Result() = %d; want 42", v)
	}
}

// Mirrors test_tasks.py: test_cancel (a sleeping task cancelled from a
// callback ends at once, long before its timer).
func TestCancelSleepingTaskFromCallback(t *testing.T) {
	l := newLoop(t)
	start := l.Time()
	task := loop.CreateTask(l, func(ctx context.Context) (int, error) {
		if err := loop.Sleep(ctx, 10*time.Second); err != nil {
			return 0, err
		}
		return 12, nil
	})
	l.CallSoon(func() { task.Cancel("") })
	if err := l.RunUntilComplete(task); !errors.Is(err, loop.ErrCancelled) {
		t.Fatalf("RunUntilComplete() = %v; want %v", err, loop.ErrCancelled)
	}
	if !task.Cancelled() || task.Cancel("") {
		t.Errorf("Cancelled() = %v; want true, and Cancel on it false", task.Cancelled())
	}
	if d := l.Time().Sub(start); d != 0 {
		t.Errorf("elapsed = %v; want 0", d)
	}
}

// Mirrors test_tasks.py: test_task_cancel_sleeping_task.
func TestTaskCancelSleepingTask(t *testing.T) {
	l := newLoop(t)
	start := l.Time()
	doer := loop.CreateTask(l, func(ctx context.Context) (string, error) {
		sleeper := loop.Spawn(ctx, func(ctx context.Context) (int, error) {
			return 0, loop.Sleep(ctx, 5000*time.Second)
		})
		l.CallLater(100*time.Millisecond, func() { sleeper.Cancel("") })
		if _, err := sleeper.Await(ctx); errors.Is(err, loop.ErrCancelled) {
			return "cancelled", nil
		}
		return "slept in", nil
	})
	if err := l.RunUntilComplete(doer); err != nil {
		t.Fatalf("RunUntilComplete() = %v; want nil", err)
	}
	if v, _ := doer.Result(); v != "cancelled" {
		t.Errorf("Result() = %q; want cancelled", v)
	}
	if d := l.Time().Sub(start); d != 100*time.Millisecond {
		t.Errorf("elapsed = %v; want 100ms", d)
	}
}

// Mirrors test_tasks.py: test_task_cancel_waiter_future (invariant I31,
// downwards: cancelling a task cancels the future it awaits).
func TestTaskCancelWaiterFuture(t *testing.T) {
	l := newLoop(t)
	fut := loop.NewFuture[int](l)
	task := loop.CreateTask(l, func(ctx context.Context) (int, error) { return fut.Await(ctx) })
	runBriefly(t, l)
	task.Cancel("stop")
	if !fut.Cancelled() {
		t.Errorf("the awaited future is not cancelled")
	}
	err := l.RunUntilComplete(task)
	if !errors.Is(err, loop.ErrCancelled) || loop.CancelMessage(err) != "stop" {
		t.Errorf("RunUntilComplete() = %v; want CancelledError(stop)", err)
	}
}

// Mirrors test_tasks.py: test_yield_future_passes_cancel (cancelling the
// outer task reaches the future awaited by a function it calls).
func TestYieldFuturePassesCancel(t *testing.T) {
	l := newLoop(t)
	proof := 0
	waiter := loop.NewFuture[int](l)
	inner := func(ctx context.Context) error {
		_, err := waiter.Await(ctx)
		if errors.Is(err, loop.ErrCancelled) {
			proof++
			return err
		}
		t.Errorf("got past the await in inner()")
		return nil
	}
	f := loop.CreateTask(l, func(ctx context.Context) (int, error) {
		if err := inner(ctx); errors.Is(err, loop.ErrCancelled) {
			proof += 100 // expect this path
		} else {
			proof += 10
		}
		return 0, nil
	})
	runBriefly(t, l)
	f.Cancel("")
	if err := l.RunUntilComplete(f); err != nil {
		t.Fatalf("RunUntilComplete() = %v; want nil", err)
	}
	if proof != 101 || !waiter.Cancelled() {
		t.Errorf("proof = %d, waiter cancelled = %v; want 101, true", proof, waiter.Cancelled())
	}
}

// Mirrors test_tasks.py: test_cancellation_exception_context (invariant I31,
// upwards: cancelling the awaited task makes `await` in the awaiting task
// raise its CancelledError, message included).
func TestCancelInnerTaskReachesAwaiter(t *testing.T) {
	l := newLoop(t)
	fut := loop.NewFuture[int](l)
	var inner *loop.Task[int]
	outer := loop.CreateTask(l, func(ctx context.Context) (int, error) {
		inner = loop.Spawn(ctx, func(ctx context.Context) (int, error) {
			_ = fut.SetResult(0)
			return 0, loop.Sleep(ctx, 10*time.Second)
		})
		if _, err := fut.Await(ctx); err != nil {
			return 0, err
		}
		l.CallSoon(func() { inner.Cancel("msg") })
		return inner.Await(ctx)
	})
	err := l.RunUntilComplete(outer)
	if !errors.Is(err, loop.ErrCancelled) || loop.CancelMessage(err) != "msg" {
		t.Fatalf("RunUntilComplete() = %v; want CancelledError(msg)", err)
	}
	if !outer.Cancelled() || outer.Cancelling() != 0 {
		t.Errorf("outer: Cancelled() = %v, Cancelling() = %d; want true, 0", outer.Cancelled(), outer.Cancelling())
	}
}

// Mirrors test_tasks.py: test_stop_while_run_in_complete.
func TestStopWhileRunUntilComplete(t *testing.T) {
	l := newLoop(t)
	start := l.Time()
	x := 0
	task := loop.CreateTask(l, func(ctx context.Context) (int, error) {
		for x < 10 {
			if err := loop.Sleep(ctx, 100*time.Millisecond); err != nil {
				return 0, err
			}
			x++
			if x == 2 {
				l.Stop()
			}
		}
		return x, nil
	})
	if err := l.RunUntilComplete(task); !errors.Is(err, loop.ErrLoopStopped) {
		t.Fatalf("RunUntilComplete() = %v; want %v", err, loop.ErrLoopStopped)
	}
	if task.Done() || x != 2 {
		t.Errorf("Done() = %v, x = %d; want false, 2", task.Done(), x)
	}
	if d := l.Time().Sub(start); d != 200*time.Millisecond {
		t.Errorf("elapsed = %v; want 200ms", d)
	}
	task.Cancel("")
	if err := l.RunUntilComplete(task); !errors.Is(err, loop.ErrCancelled) {
		t.Errorf("RunUntilComplete() after Cancel = %v; want %v", err, loop.ErrCancelled)
	}
}

// Mirrors test_tasks.py: test_current_task (invariant I35: nil outside a
// task, including in a plain callback).
func TestCurrentTask(t *testing.T) {
	l := newLoop(t)
	if ct := l.CurrentTask(); ct != nil {
		t.Errorf("CurrentTask() outside the loop = %v; want nil", ct)
	}
	var inCallback loop.AnyTask = nil
	called := false
	var task *loop.Task[int]
	task = loop.CreateTask(l, func(ctx context.Context) (int, error) {
		if ct := loop.CurrentTask(ctx); ct != loop.AnyTask(task) {
			t.Errorf("CurrentTask(ctx) = %v; want the task", ct)
		}
		l.CallSoon(func() { called = true; inCallback = l.CurrentTask() })
		return 0, loop.Sleep(ctx, 0)
	})
	if err := l.RunUntilComplete(task); err != nil {
		t.Fatalf("RunUntilComplete() = %v; want nil", err)
	}
	if !called || inCallback != nil {
		t.Errorf("CurrentTask() in a callback = %v; want nil", inCallback)
	}
	if ct := l.CurrentTask(); ct != nil {
		t.Errorf("CurrentTask() after the run = %v; want nil", ct)
	}
}

// Mirrors test_tasks.py: test_current_task_with_interleaving_tasks (I35).
func TestCurrentTaskWithInterleavingTasks(t *testing.T) {
	l := newLoop(t)
	fut1 := loop.NewFuture[bool](l)
	fut2 := loop.NewFuture[bool](l)
	var trace []string
	var task1, task2 *loop.Task[int]
	check := func(ctx context.Context, want *loop.Task[int], where string) {
		if loop.CurrentTask(ctx) != loop.AnyTask(want) {
			t.Errorf("%s: CurrentTask() is not %s", where, want.Name())
		}
		trace = append(trace, where)
	}
	task1 = loop.CreateTask(l, func(ctx context.Context) (int, error) {
		check(ctx, task1, "task1 start")
		if _, err := fut1.Await(ctx); err != nil {
			return 0, err
		}
		check(ctx, task1, "task1 resumed")
		return 0, fut2.SetResult(true)
	}, loop.WithName("task1"))
	task2 = loop.CreateTask(l, func(ctx context.Context) (int, error) {
		check(ctx, task2, "task2 start")
		_ = fut1.SetResult(true)
		if _, err := fut2.Await(ctx); err != nil {
			return 0, err
		}
		check(ctx, task2, "task2 resumed")
		return 0, nil
	}, loop.WithName("task2"))
	all := loop.Gather(context.Background(), task1, task2)
	if err := l.RunUntilComplete(all); err != nil {
		t.Fatalf("RunUntilComplete() = %v; want nil", err)
	}
	checkTrace(t, []string{"task1 start", "task2 start", "task1 resumed", "task2 resumed"}, trace)
	if ct := l.CurrentTask(); ct != nil {
		t.Errorf("CurrentTask() after the run = %v; want nil", ct)
	}
}

// Mirrors test_tasks.py: test_task_awaits_on_itself (invariant I36).
func TestTaskAwaitsOnItself(t *testing.T) {
	l := newLoop(t)
	var task *loop.Task[int]
	task = loop.CreateTask(l, func(ctx context.Context) (int, error) { return task.Await(ctx) })
	if err := l.RunUntilComplete(task); !errors.Is(err, loop.ErrAwaitSelf) {
		t.Errorf("RunUntilComplete() = %v; want %v", err, loop.ErrAwaitSelf)
	}
}

// Mirrors test_tasks.py: test_other_loop_future (invariant I36).
func TestAwaitFutureOfOtherLoop(t *testing.T) {
	l := newLoop(t)
	other := newLoop(t)
	fut := loop.NewFuture[int](other)
	task := loop.CreateTask(l, func(ctx context.Context) (int, error) { return fut.Await(ctx) })
	if err := l.RunUntilComplete(task); !errors.Is(err, loop.ErrDifferentLoop) {
		t.Errorf("RunUntilComplete() = %v; want %v", err, loop.ErrDifferentLoop)
	}
	if err := l.RunUntilComplete(fut); !errors.Is(err, loop.ErrDifferentLoop) {
		t.Errorf("RunUntilComplete(future of another loop) = %v; want %v", err, loop.ErrDifferentLoop)
	}
}

// Mirrors test_tasks.py: test_task_set_methods (invariant I34).
func TestTaskSetMethods(t *testing.T) {
	l := newLoop(t)
	task := loop.CreateTask(l, func(ctx context.Context) (string, error) { return "ko", nil })
	if err := task.SetResult("ok"); !errors.Is(err, loop.ErrTaskSetResult) {
		t.Errorf("SetResult() = %v; want %v", err, loop.ErrTaskSetResult)
	}
	if err := task.SetErr(errors.New("x")); !errors.Is(err, loop.ErrTaskSetResult) {
		t.Errorf("SetErr() = %v; want %v", err, loop.ErrTaskSetResult)
	}
	if err := l.RunUntilComplete(task); err != nil {
		t.Fatalf("RunUntilComplete() = %v; want nil", err)
	}
	if v, _ := task.Result(); v != "ko" {
		t.Errorf("Result() = %q; want ko", v)
	}
}

// Mirrors test_tasks.py: test_bare_create_named_task and
// test_task_repr_autogenerated (names: given, or Task-N increasing).
func TestTaskNames(t *testing.T) {
	l := newLoop(t)
	noop := func(context.Context) (int, error) { return 0, nil }
	named := loop.CreateTask(l, noop, loop.WithName("No-op"))
	t1 := loop.CreateTask(l, noop)
	t2 := loop.CreateTask(l, noop)
	if named.Name() != "No-op" {
		t.Errorf("Name() = %q; want No-op", named.Name())
	}
	var n1, n2 int
	if _, err := fmt.Sscanf(t1.Name(), "Task-%d", &n1); err != nil {
		t.Fatalf("Name() = %q; want Task-N", t1.Name())
	}
	if _, err := fmt.Sscanf(t2.Name(), "Task-%d", &n2); err != nil || n2 <= n1 {
		t.Errorf("names %q then %q; want increasing Task-N", t1.Name(), t2.Name())
	}
	t2.SetName("renamed")
	if t2.Name() != "renamed" {
		t.Errorf("Name() after SetName = %q; want renamed", t2.Name())
	}
	if err := l.RunUntilComplete(loop.Gather(context.Background(), named, t1, t2)); err != nil {
		t.Fatalf("RunUntilComplete() = %v; want nil", err)
	}
}

// Mirrors test_tasks.py: test_exception_traceback (a task's error carries
// where it came from: a panic becomes a *PanicError with the stack, and the
// loop goes on).
func TestTaskPanicBecomesPanicError(t *testing.T) {
	l := newLoop(t)
	boom := errors.New("boom")
	task := loop.CreateTask(l, func(ctx context.Context) (int, error) { panic(boom) })
	other := loop.CreateTask(l, func(ctx context.Context) (int, error) { return 1, loop.Sleep(ctx, 0) })
	err := l.RunUntilComplete(task)
	var pe *loop.PanicError
	if !errors.As(err, &pe) || !errors.Is(err, boom) || len(pe.Stack) == 0 {
		t.Fatalf("RunUntilComplete() = %v; want a *PanicError wrapping boom, with a stack", err)
	}
	if task.Cancelled() {
		t.Errorf("a panicking task ended cancelled")
	}
	if err := l.RunUntilComplete(other); err != nil {
		t.Errorf("another task after the panic: RunUntilComplete() = %v; want nil", err)
	}
}

// Mirrors test_tasks.py: SleepTests.test_sleep_zero (invariant I39: Sleep(0)
// yields exactly one iteration; callbacks queued before it run first).
func TestSleepZero(t *testing.T) {
	for _, d := range []time.Duration{0, -time.Second} {
		t.Run(d.String(), func(t *testing.T) {
			l := newLoop(t)
			result := 0
			var trace []string
			task := loop.CreateTask(l, func(ctx context.Context) (int, error) {
				l.CallSoon(func() { result++; trace = append(trace, "callback") })
				l.CallSoon(func() {
					l.CallSoon(func() { trace = append(trace, "next iteration") })
				})
				if result != 0 {
					t.Errorf("result = %d before the sleep; want 0", result)
				}
				if err := loop.Sleep(ctx, d); err != nil {
					return 0, err
				}
				trace = append(trace, "resumed")
				return result + 10, nil
			})
			if err := l.RunUntilComplete(task); err != nil {
				t.Fatalf("RunUntilComplete() = %v; want nil", err)
			}
			checkTrace(t, []string{"callback", "resumed", "next iteration"}, trace)
			if v, _ := task.Result(); v != 11 {
				t.Errorf("Result() = %d; want 11", v)
			}
		})
	}
}

// Mirrors test_tasks.py: test_sleep (sleeps add up on the loop's clock).
func TestSleep(t *testing.T) {
	l := newLoop(t)
	start := l.Time()
	task := loop.CreateTask(l, func(ctx context.Context) (string, error) {
		if err := loop.Sleep(ctx, 50*time.Millisecond); err != nil {
			return "", err
		}
		return "yeah", loop.Sleep(ctx, 50*time.Millisecond)
	})
	if err := l.RunUntilComplete(task); err != nil {
		t.Fatalf("RunUntilComplete() = %v; want nil", err)
	}
	if v, _ := task.Result(); v != "yeah" {
		t.Errorf("Result() = %q; want yeah", v)
	}
	if d := l.Time().Sub(start); d != 100*time.Millisecond {
		t.Errorf("elapsed = %v; want 100ms", d)
	}
}

// Mirrors test_tasks.py: test_task_basics and test_context_1 (a task sees
// the values of the ctx it was spawned from, never its creator's
// cancellation; invariant I37).
func TestSpawnedTaskSeesCreatorValues(t *testing.T) {
	type key struct{}
	ctx := context.WithValue(context.Background(), key{}, "outer")
	v, err := loop.Run(ctx, func(ctx context.Context) (string, error) {
		child := loop.Spawn(context.WithValue(ctx, key{}, "child"), func(ctx context.Context) (string, error) {
			if err := loop.Sleep(ctx, time.Millisecond); err != nil {
				return "", err
			}
			return ctx.Value(key{}).(string), nil
		})
		got, err := child.Await(ctx)
		return ctx.Value(key{}).(string) + "+" + got, err
	}, loop.WithVirtualClock())
	if v != "outer+child" || err != nil {
		t.Errorf("Run() = %q, %v; want outer+child, nil", v, err)
	}
}

// Mirrors test_tasks.py: test_gather success (GatherTestsBase.test_success,
// invariant I40: results in argument order, not completion order).
func TestGatherResultsInArgumentOrder(t *testing.T) {
	l := newLoop(t)
	start := l.Time()
	sleeper := func(d time.Duration, v string) *loop.Task[string] {
		return loop.CreateTask(l, func(ctx context.Context) (string, error) { return v, loop.Sleep(ctx, d) })
	}
	g := loop.Gather(context.Background(),
		sleeper(30*time.Millisecond, "slow"), sleeper(10*time.Millisecond, "fast"), sleeper(20*time.Millisecond, "mid"))
	if err := l.RunUntilComplete(g); err != nil {
		t.Fatalf("RunUntilComplete() = %v; want nil", err)
	}
	v, _ := g.Result()
	checkTrace(t, []string{"slow", "fast", "mid"}, v)
	if d := l.Time().Sub(start); d != 30*time.Millisecond {
		t.Errorf("elapsed = %v; want 30ms", d)
	}
}

// Mirrors test_tasks.py: test_one_exception (invariant I41: the first error
// finishes the gather; the other children are not cancelled).
func TestGatherOneException(t *testing.T) {
	l := newLoop(t)
	futs := make([]*loop.Future[int], 5)
	aws := make([]loop.Awaitable[int], 5)
	for i := range futs {
		futs[i] = loop.NewFuture[int](l)
		aws[i] = futs[i]
	}
	a, b, c, d, e := futs[0], futs[1], futs[2], futs[3], futs[4]
	g := loop.Gather(context.Background(), aws...)
	calls := 0
	g.AddDoneCallback(func(*loop.Future[[]int]) { calls++ })
	boom := errors.New("zero division")
	_ = a.SetResult(1)
	_ = b.SetErr(boom)
	runBriefly(t, l)
	runBriefly(t, l)
	if !g.Done() || calls != 1 || g.Err() != boom {
		t.Fatalf("Done() = %v, callbacks = %d, Err() = %v; want true, 1, %v", g.Done(), calls, g.Err(), boom)
	}
	if c.Done() || d.Done() || e.Done() {
		t.Errorf("the other children were touched by the failure")
	}
	// Does nothing.
	_ = c.SetResult(3)
	d.Cancel("")
	_ = e.SetErr(errors.New("runtime"))
	runBriefly(t, l)
	if calls != 1 || g.Err() != boom {
		t.Errorf("after the others finished: callbacks = %d, Err() = %v; want 1, %v", calls, g.Err(), boom)
	}
}

// Mirrors test_tasks.py: test_return_exceptions and
// test_result_exception_one_cancellation (invariant I42).
func TestGatherReturnErrors(t *testing.T) {
	l := newLoop(t)
	futs := make([]*loop.Future[int], 4)
	aws := make([]loop.Awaitable[int], 4)
	for i := range futs {
		futs[i] = loop.NewFuture[int](l)
		aws[i] = futs[i]
	}
	g := loop.GatherReturnErrors(context.Background(), aws...)
	boom := errors.New("zero division")
	_ = futs[1].SetResult(1)
	_ = futs[2].SetErr(boom)
	_ = futs[0].SetResult(3)
	runBriefly(t, l)
	if g.Done() {
		t.Fatalf("gather done before its last child")
	}
	futs[3].Cancel("")
	if err := l.RunUntilComplete(g); err != nil {
		t.Fatalf("RunUntilComplete() = %v; want nil", err)
	}
	res, _ := g.Result()
	if len(res) != 4 || res[0].Value != 3 || res[0].Err != nil || res[1].Value != 1 || res[2].Err != boom ||
		!errors.Is(res[3].Err, loop.ErrCancelled) {
		t.Errorf("Result() = %+v; want [3, 1, boom, CancelledError]", res)
	}
}

// Mirrors test_tasks.py: test_cancellation_broadcast (invariant I43:
// cancelling the task that awaits a gather cancels every child).
func TestGatherCancellationBroadcast(t *testing.T) {
	l := newLoop(t)
	proof := 0
	waiter := loop.NewFuture[int](l)
	inner := func(ctx context.Context) (int, error) {
		if _, err := waiter.Await(ctx); err != nil {
			return 0, err
		}
		proof++
		return 0, nil
	}
	child1 := loop.CreateTask(l, inner)
	child2 := loop.CreateTask(l, inner)
	var gatherer *loop.Future[[]int]
	f := loop.CreateTask(l, func(ctx context.Context) (int, error) {
		gatherer = loop.Gather(ctx, child1, child2)
		if _, err := gatherer.Await(ctx); err != nil {
			return 0, err
		}
		proof += 100
		return 0, nil
	})
	runBriefly(t, l)
	if !f.Cancel("") {
		t.Fatalf("Cancel() = false; want true")
	}
	if err := l.RunUntilComplete(f); !errors.Is(err, loop.ErrCancelled) {
		t.Fatalf("RunUntilComplete() = %v; want %v", err, loop.ErrCancelled)
	}
	if gatherer.Cancel("") {
		t.Errorf("Cancel() on the done gather = true; want false")
	}
	if !waiter.Cancelled() || !child1.Cancelled() || !child2.Cancelled() {
		t.Errorf("cancelled: waiter %v, child1 %v, child2 %v; want all true", waiter.Cancelled(), child1.Cancelled(), child2.Cancelled())
	}
	runBriefly(t, l)
	if proof != 0 {
		t.Errorf("proof = %d; want 0", proof)
	}
}

// Mirrors test_tasks.py: test_one_cancellation (invariant I44: one cancelled
// child fails the gather with a CancelledError, but the gather itself is not
// cancelled, nor are the siblings).
func TestGatherOneCancellation(t *testing.T) {
	l := newLoop(t)
	a, b, c := loop.NewFuture[int](l), loop.NewFuture[int](l), loop.NewFuture[int](l)
	g := loop.Gather(context.Background(), a, b, c)
	_ = a.SetResult(1)
	b.Cancel("")
	runBriefly(t, l)
	runBriefly(t, l)
	if !g.Done() || g.Cancelled() || !errors.Is(g.Err(), loop.ErrCancelled) {
		t.Errorf("Done() = %v, Cancelled() = %v, Err() = %v; want true, false, CancelledError", g.Done(), g.Cancelled(), g.Err())
	}
	if c.Done() {
		t.Errorf("a sibling was cancelled")
	}
	_ = c.SetResult(3) // does nothing
}

// Mirrors test_tasks.py: test_constructor_empty_sequence_use_running_loop and
// test_duplicate_coroutines (invariant I45).
func TestGatherEdgeCases(t *testing.T) {
	l := newLoop(t)
	emptyTask := loop.CreateTask(l, func(ctx context.Context) (int, error) {
		empty := loop.Gather[int, loop.Awaitable[int]](ctx)
		if v, err := empty.Result(); !empty.Done() || len(v) != 0 || v == nil || err != nil {
			t.Errorf("Gather() = %v, %v (done %v); want [], nil at once", v, err, empty.Done())
		}
		return 0, nil
	})
	if err := l.RunUntilComplete(emptyTask); err != nil {
		t.Fatalf("RunUntilComplete() = %v; want nil", err)
	}
	calls := 0
	c := loop.CreateTask(l, func(ctx context.Context) (string, error) { calls++; return "abc", nil })
	d := loop.CreateTask(l, func(ctx context.Context) (string, error) { return "def", nil })
	g := loop.Gather(context.Background(), c, c, d, c)
	if err := l.RunUntilComplete(g); err != nil {
		t.Fatalf("RunUntilComplete() = %v; want nil", err)
	}
	v, _ := g.Result()
	checkTrace(t, []string{"abc", "abc", "def", "abc"}, v)
	if calls != 1 {
		t.Errorf("the duplicated task ran %d times; want 1", calls)
	}
}

// Mirrors test_tasks.py: test_cancel_gather_1 (a gather whose children are
// all done refuses to be cancelled).
func TestCancelGatherAfterChildrenDone(t *testing.T) {
	l := newLoop(t)
	fut := loop.NewFuture[int](l)
	child := loop.CreateTask(l, func(ctx context.Context) (int, error) { return fut.Await(ctx) })
	g := loop.Gather(context.Background(), child)
	cancelResult := true
	fut.AddDoneCallback(func(*loop.Future[int]) { cancelResult = g.Cancel("") })
	_ = fut.SetResult(42)
	if err := l.RunUntilComplete(g); err != nil {
		t.Fatalf("RunUntilComplete() = %v; want nil", err)
	}
	v, _ := g.Result()
	if cancelResult || g.Cancelled() {
		t.Errorf("Cancel() = %v, Cancelled() = %v; want false, false", cancelResult, g.Cancelled())
	}
	checkTrace(t, []int{42}, v)
}

// Mirrors test_tasks.py: test_wait (ALL_COMPLETED; a second wait on done
// tasks takes no time).
func TestWaitAllCompleted(t *testing.T) {
	l := newLoop(t)
	start := l.Time()
	a := loop.CreateTask(l, func(ctx context.Context) (int, error) { return 0, loop.Sleep(ctx, 100*time.Millisecond) })
	b := loop.CreateTask(l, func(ctx context.Context) (int, error) { return 0, loop.Sleep(ctx, 150*time.Millisecond) })
	foo := func(ctx context.Context) (int, error) {
		done, pending, err := loop.Wait(ctx, []*loop.Task[int]{b, a}, loop.NoTimeout, loop.AllCompleted)
		if err != nil {
			return 0, err
		}
		if len(done) != 2 || done[0] != b || done[1] != a || len(pending) != 0 {
			t.Errorf("Wait() = done %v, pending %v; want [b a], []", done, pending)
		}
		return 42, nil
	}
	for i := range 2 {
		task := loop.CreateTask(l, foo)
		if err := l.RunUntilComplete(task); err != nil {
			t.Fatalf("run %d: RunUntilComplete() = %v; want nil", i, err)
		}
		if d := l.Time().Sub(start); d != 150*time.Millisecond {
			t.Errorf("run %d: elapsed = %v; want 150ms", i, d)
		}
	}
}

// Mirrors test_tasks.py: test_wait_first_completed.
func TestWaitFirstCompleted(t *testing.T) {
	l := newLoop(t)
	start := l.Time()
	a := loop.CreateTask(l, func(ctx context.Context) (int, error) { return 0, loop.Sleep(ctx, 10*time.Second) })
	b := loop.CreateTask(l, func(ctx context.Context) (int, error) { return 0, loop.Sleep(ctx, 100*time.Millisecond) })
	var done, pending []*loop.Task[int]
	task := loop.CreateTask(l, func(ctx context.Context) (int, error) {
		var err error
		done, pending, err = loop.Wait(ctx, []*loop.Task[int]{b, a}, loop.NoTimeout, loop.FirstCompleted)
		return 0, err
	})
	if err := l.RunUntilComplete(task); err != nil {
		t.Fatalf("RunUntilComplete() = %v; want nil", err)
	}
	if len(done) != 1 || done[0] != b || len(pending) != 1 || pending[0] != a {
		t.Fatalf("Wait() = %v, %v; want [b], [a]", done, pending)
	}
	if a.Done() || !b.Done() {
		t.Errorf("a done %v, b done %v; want false, true", a.Done(), b.Done())
	}
	if d := l.Time().Sub(start); d != 100*time.Millisecond {
		t.Errorf("elapsed = %v; want 100ms", d)
	}
	if err := l.RunUntilComplete(a); err != nil { // Wait cancels nothing
		t.Errorf("a: RunUntilComplete() = %v; want nil", err)
	}
}

// Mirrors test_tasks.py: test_wait_really_done (FIRST_COMPLETED may return
// several done tasks; invariant I46).
func TestWaitReallyDone(t *testing.T) {
	l := newLoop(t)
	a := loop.CreateTask(l, func(ctx context.Context) (int, error) { return 0, loop.Sleep(ctx, 0) })
	b := loop.CreateTask(l, func(ctx context.Context) (int, error) {
		if err := loop.Sleep(ctx, 0); err != nil {
			return 0, err
		}
		return 0, loop.Sleep(ctx, 0)
	})
	task := loop.CreateTask(l, func(ctx context.Context) (int, error) {
		done, pending, err := loop.Wait(ctx, []*loop.Task[int]{b, a}, loop.NoTimeout, loop.FirstCompleted)
		if err != nil {
			return 0, err
		}
		if len(done) != 2 || len(pending) != 0 {
			t.Errorf("Wait() = done %v, pending %v; want both done", done, pending)
		}
		return 0, nil
	})
	if err := l.RunUntilComplete(task); err != nil {
		t.Fatalf("RunUntilComplete() = %v; want nil", err)
	}
}

// Mirrors test_tasks.py: test_wait_first_exception and
// test_wait_first_exception_in_wait.
func TestWaitFirstException(t *testing.T) {
	for _, delay := range []time.Duration{0, 10 * time.Millisecond} {
		t.Run(delay.String(), func(t *testing.T) {
			l := newLoop(t)
			start := l.Time()
			boom := errors.New("err")
			a := loop.CreateTask(l, func(ctx context.Context) (int, error) { return 0, loop.Sleep(ctx, 10*time.Second) })
			b := loop.CreateTask(l, func(ctx context.Context) (int, error) {
				if delay > 0 {
					if err := loop.Sleep(ctx, delay); err != nil {
						return 0, err
					}
				}
				return 0, boom
			})
			task := loop.CreateTask(l, func(ctx context.Context) (int, error) {
				done, pending, err := loop.Wait(ctx, []*loop.Task[int]{b, a}, loop.NoTimeout, loop.FirstException)
				if err != nil {
					return 0, err
				}
				if len(done) != 1 || done[0] != b || len(pending) != 1 || pending[0] != a {
					t.Errorf("Wait() = done %v, pending %v; want [b], [a]", done, pending)
				}
				return 0, nil
			})
			if err := l.RunUntilComplete(task); err != nil {
				t.Fatalf("RunUntilComplete() = %v; want nil", err)
			}
			if d := l.Time().Sub(start); d != delay {
				t.Errorf("elapsed = %v; want %v", d, delay)
			}
			a.Cancel("")
			_ = l.RunUntilComplete(a)
		})
	}
}

// Mirrors test_tasks.py: test_wait_with_timeout (the timeout neither fails
// nor cancels anything; invariant I46).
func TestWaitWithTimeout(t *testing.T) {
	l := newLoop(t)
	start := l.Time()
	a := loop.CreateTask(l, func(ctx context.Context) (int, error) { return 0, loop.Sleep(ctx, 100*time.Millisecond) })
	b := loop.CreateTask(l, func(ctx context.Context) (int, error) { return 0, loop.Sleep(ctx, 150*time.Millisecond) })
	task := loop.CreateTask(l, func(ctx context.Context) (int, error) {
		done, pending, err := loop.Wait(ctx, []*loop.Task[int]{b, a}, 110*time.Millisecond, loop.AllCompleted)
		if err != nil {
			return 0, err
		}
		if len(done) != 1 || done[0] != a || len(pending) != 1 || pending[0] != b {
			t.Errorf("Wait() = done %v, pending %v; want [a], [b]", done, pending)
		}
		return 0, nil
	})
	if err := l.RunUntilComplete(task); err != nil {
		t.Fatalf("RunUntilComplete() = %v; want nil", err)
	}
	if d := l.Time().Sub(start); d != 110*time.Millisecond {
		t.Errorf("elapsed = %v; want 110ms", d)
	}
	if b.Cancelled() {
		t.Errorf("Wait cancelled the pending task")
	}
	if err := l.RunUntilComplete(b); err != nil {
		t.Errorf("b: RunUntilComplete() = %v; want nil", err)
	}
}

// Mirrors test_tasks.py: test_wait_errors and test_wait_duplicate_coroutines.
func TestWaitErrorsAndDuplicates(t *testing.T) {
	l := newLoop(t)
	c := loop.CreateTask(l, func(ctx context.Context) (string, error) { return "test", nil })
	s := loop.CreateTask(l, func(ctx context.Context) (string, error) { return "spam", nil })
	task := loop.CreateTask(l, func(ctx context.Context) (int, error) {
		if _, _, err := loop.Wait(ctx, []*loop.Task[string]{}, loop.NoTimeout, loop.AllCompleted); !errors.Is(err, loop.ErrWaitEmpty) {
			t.Errorf("Wait(empty) = %v; want %v", err, loop.ErrWaitEmpty)
		}
		if _, _, err := loop.Wait(ctx, []*loop.Task[string]{c}, loop.NoTimeout, loop.ReturnWhen(-1)); err == nil {
			t.Errorf("Wait(return_when=-1) = nil; want an error")
		}
		done, pending, err := loop.Wait(ctx, []*loop.Task[string]{c, c, s}, loop.NoTimeout, loop.AllCompleted)
		if err != nil {
			return 0, err
		}
		if len(done) != 2 || done[0] != c || done[1] != s || len(pending) != 0 {
			t.Errorf("Wait([c c s]) = done %v, pending %v; want [c s], []", done, pending)
		}
		return 0, nil
	})
	if err := l.RunUntilComplete(task); err != nil {
		t.Fatalf("RunUntilComplete() = %v; want nil", err)
	}
}

// Mirrors test_tasks.py: test_yield_wait_does_not_shield_cancel (cancelling
// the waiting task ends the wait early and leaves the awaited task running).
func TestWaitDoesNotShieldCancel(t *testing.T) {
	l := newLoop(t)
	proof := 0
	waiter := loop.NewFuture[int](l)
	var inner *loop.Task[int]
	f := loop.CreateTask(l, func(ctx context.Context) (int, error) {
		inner = loop.Spawn(ctx, func(ctx context.Context) (int, error) {
			if _, err := waiter.Await(ctx); err != nil {
				return 0, err
			}
			proof++
			return 0, nil
		})
		if _, _, err := loop.Wait(ctx, []*loop.Task[int]{inner}, loop.NoTimeout, loop.AllCompleted); err != nil {
			return 0, err
		}
		proof += 100
		return 0, nil
	})
	runBriefly(t, l)
	f.Cancel("")
	if err := l.RunUntilComplete(f); !errors.Is(err, loop.ErrCancelled) {
		t.Fatalf("RunUntilComplete() = %v; want %v", err, loop.ErrCancelled)
	}
	_ = waiter.SetResult(0)
	if err := l.RunUntilComplete(inner); err != nil {
		t.Fatalf("inner: RunUntilComplete() = %v; want nil", err)
	}
	if proof != 1 {
		t.Errorf("proof = %d; want 1", proof)
	}
}

// Mirrors test_tasks.py: test_shield_result, test_shield_exception and
// test_shield_shortcut.
func TestShieldPassesOutcome(t *testing.T) {
	l := newLoop(t)
	inner := loop.NewFuture[int](l)
	outer := loop.Shield[int](inner)
	_ = inner.SetResult(42)
	if err := l.RunUntilComplete(outer); err != nil {
		t.Fatalf("RunUntilComplete() = %v; want nil", err)
	}
	if v, _ := outer.Result(); v != 42 {
		t.Errorf("Result() = %d; want 42", v)
	}

	failing := loop.NewFuture[int](l)
	outer = loop.Shield[int](failing)
	runBriefly(t, l)
	boom := errors.New("expected")
	_ = failing.SetErr(boom)
	runBriefly(t, l)
	if err := outer.Err(); err != boom {
		t.Errorf("Err() = %v; want %v", err, boom)
	}

	done := loop.NewFuture[int](l)
	_ = done.SetResult(7)
	if s := loop.Shield[int](done); s != loop.Awaitable[int](done) {
		t.Errorf("Shield(done future) is not the future itself")
	}
}

// Mirrors test_tasks.py: test_shield_cancel_inner and test_shield_cancel_outer.
func TestShieldCancel(t *testing.T) {
	l := newLoop(t)
	inner := loop.NewFuture[int](l)
	outer := loop.Shield[int](inner)
	runBriefly(t, l)
	inner.Cancel("")
	runBriefly(t, l)
	if !outer.Cancelled() {
		t.Errorf("cancelling the inner future did not cancel the outer")
	}

	inner = loop.NewFuture[int](l)
	outer = loop.Shield[int](inner)
	runBriefly(t, l)
	outer.Cancel("")
	runBriefly(t, l)
	if !outer.Cancelled() || inner.Cancelled() || inner.Done() {
		t.Errorf("outer cancelled %v, inner done %v; want true, false", outer.Cancelled(), inner.Done())
	}
}

// Mirrors test_tasks.py: test_shield_effect (invariant I52: cancelling the
// task that awaits the shield leaves the inner task running).
func TestShieldEffect(t *testing.T) {
	l := newLoop(t)
	proof := 0
	waiter := loop.NewFuture[int](l)
	var inner *loop.Task[int]
	f := loop.CreateTask(l, func(ctx context.Context) (int, error) {
		inner = loop.Spawn(ctx, func(ctx context.Context) (int, error) {
			if _, err := waiter.Await(ctx); err != nil {
				return 0, err
			}
			proof++
			return 0, nil
		})
		if _, err := loop.Shield[int](inner).Await(ctx); err != nil {
			return 0, err
		}
		proof += 100
		return 0, nil
	})
	runBriefly(t, l)
	f.Cancel("")
	if err := l.RunUntilComplete(f); !errors.Is(err, loop.ErrCancelled) {
		t.Fatalf("RunUntilComplete() = %v; want %v", err, loop.ErrCancelled)
	}
	_ = waiter.SetResult(0)
	if err := l.RunUntilComplete(inner); err != nil {
		t.Fatalf("inner: RunUntilComplete() = %v; want nil", err)
	}
	if proof != 1 {
		t.Errorf("proof = %d; want 1", proof)
	}
}

// Mirrors test_tasks.py: test_shield_gather and test_gather_shield.
func TestShieldAndGather(t *testing.T) {
	l := newLoop(t)
	child1, child2 := loop.NewFuture[int](l), loop.NewFuture[int](l)
	parent := loop.Gather(context.Background(), child1, child2)
	outer := loop.Shield[[]int](parent)
	runBriefly(t, l)
	outer.Cancel("")
	runBriefly(t, l)
	if !outer.Cancelled() {
		t.Errorf("outer not cancelled")
	}
	_ = child1.SetResult(1)
	_ = child2.SetResult(2)
	runBriefly(t, l)
	runBriefly(t, l)
	if v, err := parent.Result(); err != nil || len(v) != 2 || v[0] != 1 || v[1] != 2 {
		t.Errorf("gather behind the shield: Result() = %v, %v; want [1 2], nil", v, err)
	}

	child1, child2 = loop.NewFuture[int](l), loop.NewFuture[int](l)
	inner1, inner2 := loop.Shield[int](child1), loop.Shield[int](child2)
	parent = loop.Gather(context.Background(), inner1, inner2)
	runBriefly(t, l)
	parent.Cancel("")
	runBriefly(t, l)
	if !errors.Is(parent.Err(), loop.ErrCancelled) || !inner1.Cancelled() || !inner2.Cancelled() {
		t.Errorf("gather of shields: Err() = %v, inner cancelled %v %v; want CancelledError, true, true", parent.Err(), inner1.Cancelled(), inner2.Cancelled())
	}
	if child1.Done() || child2.Done() {
		t.Errorf("cancelling the gather reached behind the shields")
	}
	_ = child1.SetResult(1)
	_ = child2.SetResult(2)
	runBriefly(t, l)
}

// Mirrors test_tasks.py: test_as_completed (invariant I53: completion order,
// the original futures).
func TestAsCompleted(t *testing.T) {
	l := newLoop(t)
	start := l.Time()
	sleeper := func(d time.Duration, v string) *loop.Task[string] {
		return loop.CreateTask(l, func(ctx context.Context) (string, error) { return v, loop.Sleep(ctx, d) })
	}
	a := sleeper(10*time.Millisecond, "a")
	b := sleeper(20*time.Millisecond, "b")
	c := sleeper(150*time.Millisecond, "c")
	task := loop.CreateTask(l, func(ctx context.Context) ([]string, error) {
		var values []string
		for f, err := range loop.AsCompleted(ctx, []*loop.Task[string]{b, c, a}, loop.NoTimeout) {
			if err != nil {
				return nil, err
			}
			v, _ := f.Result()
			values = append(values, v)
		}
		return values, nil
	})
	if err := l.RunUntilComplete(task); err != nil {
		t.Fatalf("RunUntilComplete() = %v; want nil", err)
	}
	v, _ := task.Result()
	checkTrace(t, []string{"a", "b", "c"}, v)
	if d := l.Time().Sub(start); d != 150*time.Millisecond {
		t.Errorf("elapsed = %v; want 150ms", d)
	}
}

// Mirrors test_tasks.py: test_as_completed_with_timeout (I53: the timeout
// comes out of the next item).
func TestAsCompletedWithTimeout(t *testing.T) {
	l := newLoop(t)
	start := l.Time()
	a := loop.CreateTask(l, func(ctx context.Context) (string, error) { return "a", loop.Sleep(ctx, 100*time.Millisecond) })
	b := loop.CreateTask(l, func(ctx context.Context) (string, error) { return "b", loop.Sleep(ctx, 150*time.Millisecond) })
	var values []string
	task := loop.CreateTask(l, func(ctx context.Context) (int, error) {
		for f, err := range loop.AsCompleted(ctx, []*loop.Task[string]{a, b}, 120*time.Millisecond) {
			if err != nil {
				values = append(values, "error: "+err.Error())
				if !errors.Is(err, loop.ErrTimeout) {
					t.Errorf("AsCompleted error = %v; want %v", err, loop.ErrTimeout)
				}
				continue
			}
			v, _ := f.Result()
			values = append(values, v)
		}
		return 0, nil
	})
	if err := l.RunUntilComplete(task); err != nil {
		t.Fatalf("RunUntilComplete() = %v; want nil", err)
	}
	checkTrace(t, []string{"a", "error: " + loop.ErrTimeout.Error()}, values)
	if d := l.Time().Sub(start); d != 120*time.Millisecond {
		t.Errorf("elapsed = %v; want 120ms", d)
	}
	if err := l.RunUntilComplete(b); err != nil {
		t.Errorf("b: RunUntilComplete() = %v; want nil (AsCompleted cancels nothing)", err)
	}
}

// Mirrors test_tasks.py: test_as_completed_duplicate_coroutines.
func TestAsCompletedDuplicates(t *testing.T) {
	l := newLoop(t)
	ham := loop.CreateTask(l, func(ctx context.Context) (string, error) { return "ham", nil })
	spam := loop.CreateTask(l, func(ctx context.Context) (string, error) { return "spam", nil })
	task := loop.CreateTask(l, func(ctx context.Context) ([]string, error) {
		var result []string
		for f, err := range loop.AsCompleted(ctx, []*loop.Task[string]{ham, ham, spam}, loop.NoTimeout) {
			if err != nil {
				return nil, err
			}
			v, _ := f.Result()
			result = append(result, v)
		}
		return result, nil
	})
	if err := l.RunUntilComplete(task); err != nil {
		t.Fatalf("RunUntilComplete() = %v; want nil", err)
	}
	v, _ := task.Result()
	checkTrace(t, []string{"ham", "spam"}, v)
}

// Mirrors test_runners.py: test_interrupt_wait (a Ctrl-C cancels asyncio.run's
// main task; here cancelling Run's ctx does).
func TestRunCtxCancelCancelsMainTask(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	var trace []string
	_, err := loop.Run(ctx, func(ctx context.Context) (int, error) {
		loopOf(ctx).CallSoon(func() { cancel(errors.New("interrupted")) })
		// A future nobody completes: the loop waits for the cancellation,
		// which arrives from the ctx's goroutine through CallSoonThreadsafe.
		_, err := loop.NewFuture[int](loopOf(ctx)).Await(ctx)
		trace = append(trace, "main: "+loop.CancelMessage(err))
		if ctx.Err() == nil {
			t.Errorf("the main task's ctx is not cancelled")
		}
		return 0, err
	}, loop.WithVirtualClock())
	if !errors.Is(err, loop.ErrCancelled) {
		t.Fatalf("Run() = %v; want %v", err, loop.ErrCancelled)
	}
	checkTrace(t, []string{"main: interrupted"}, trace)
}

// Mirrors test_runners.py: test_asyncio_run_cancel_hanging_tasks and
// test_asyncio_run_reports_hanging_tasks_errors (invariant I88).
func TestRunCancelsLeftoverTasks(t *testing.T) {
	boom := errors.New("boom")
	var got []loop.ExceptionContext
	var trace []string
	v, err := loop.Run(context.Background(), func(ctx context.Context) (int, error) {
		loopOf(ctx).SetExceptionHandler(func(_ *loop.Loop, c loop.ExceptionContext) { got = append(got, c) })
		loop.Go(ctx, func(ctx context.Context) error {
			err := loop.Sleep(ctx, time.Hour)
			trace = append(trace, "hanging cancelled")
			return err
		})
		loop.Go(ctx, func(ctx context.Context) error {
			_ = loop.Sleep(ctx, time.Hour)
			trace = append(trace, "failing cancelled")
			return boom
		})
		return 1, loop.Sleep(ctx, 0)
	}, loop.WithVirtualClock())
	if v != 1 || err != nil {
		t.Fatalf("Run() = %d, %v; want 1, nil", v, err)
	}
	slices.Sort(trace) // the order of the cancellations is not asyncio's to promise
	checkTrace(t, []string{"failing cancelled", "hanging cancelled"}, trace)
	if len(got) != 1 || got[0].Err != boom || !strings.Contains(got[0].Message, "shutdown") {
		t.Errorf("handler got %+v; want one shutdown report of boom", got)
	}
}

// Mirrors test_tasks.py: RunCoroutineThreadsafeTests.test_run_coroutine_threadsafe_with_exception
// and test_run_coroutine_threadsafe_task_cancelled.
func TestRunCoroutineThreadsafeOutcomes(t *testing.T) {
	l := newLoop(t)
	boom := errors.New("Fail!")
	type outcome struct {
		v   int
		err error
	}
	results := make(chan outcome, 2)
	go func() {
		cf := loop.RunCoroutineThreadsafe(l, func(ctx context.Context) (int, error) {
			if err := loop.Sleep(ctx, 50*time.Millisecond); err != nil {
				return 0, err
			}
			return 0, boom
		})
		v, err := cf.Result(context.Background())
		results <- outcome{v, err}
		cf = loop.RunCoroutineThreadsafe(l, func(ctx context.Context) (int, error) {
			if err := loop.Sleep(ctx, 50*time.Millisecond); err != nil {
				return 0, err
			}
			loop.CurrentTask(ctx).Cancel("")
			return 3, loop.Sleep(ctx, 0)
		})
		v, err = cf.Result(context.Background())
		results <- outcome{v, err}
		_ = l.CallSoonThreadsafe(l.Stop)
	}()
	if err := l.RunForever(); err != nil {
		t.Fatalf("RunForever() = %v; want nil", err)
	}
	if r := <-results; r.err != boom {
		t.Errorf("failing coroutine: Result() = %v, %v; want %v", r.v, r.err, boom)
	}
	if r := <-results; !errors.Is(r.err, context.Canceled) {
		t.Errorf("cancelled coroutine: Result() = %v, %v; want a cancellation", r.v, r.err)
	}
}

package loop_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/loop"
	"github.com/google/go-cmp/cmp"
)

// Helpers shared by the test files that mirror CPython's test_asyncio.

// newLoop returns a loop with a virtual clock, closed when the test ends.
func newLoop(t *testing.T, opts ...loop.Option) *loop.Loop {
	t.Helper()
	l := loop.New(append([]loop.Option{loop.WithVirtualClock()}, opts...)...)
	t.Cleanup(func() { l.Close() })
	return l
}

// runBriefly runs exactly one iteration of l (test_utils.run_briefly).
func runBriefly(t *testing.T, l *loop.Loop) {
	t.Helper()
	l.Stop()
	if err := l.RunForever(); err != nil {
		t.Fatalf("RunForever() = %v; want nil", err)
	}
}

// checkTrace compares a whole ordering trace.
func checkTrace[T any](t *testing.T, want, got []T) {
	t.Helper()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("trace mismatch (-want +got):\n%s", diff)
	}
}

// loopOf returns the loop of the task ctx belongs to.
func loopOf(ctx context.Context) *loop.Loop { return loop.CurrentTask(ctx).Loop() }

// since returns the loop time elapsed since start.
func since(ctx context.Context, start time.Time) time.Duration {
	return loopOf(ctx).Time().Sub(start)
}

// recordHandler installs an exception handler that records every context.
func recordHandler(l *loop.Loop) *[]loop.ExceptionContext {
	var got []loop.ExceptionContext
	l.SetExceptionHandler(func(_ *loop.Loop, c loop.ExceptionContext) { got = append(got, c) })
	return &got
}

// panicsWith reports the value fn panics with, or nil.
func panicsWith(fn func()) (v any) {
	defer func() { v = recover() }()
	fn()
	return nil
}

// Mirrors test_events.py: test_call_soon (and invariant I1: FIFO).
func TestCallSoonRunsInFIFOOrder(t *testing.T) {
	l := newLoop(t)
	var got []string
	for _, s := range []string{"a", "b", "c", "d"} {
		l.CallSoon(func() { got = append(got, s) })
	}
	l.CallSoon(l.Stop)
	if err := l.RunForever(); err != nil {
		t.Fatalf("RunForever() = %v; want nil", err)
	}
	checkTrace(t, []string{"a", "b", "c", "d"}, got)
}

// Mirrors test_base_events.py: test_single_selecter_event_callback_after_stopping
// (invariant I2: a callback scheduled by a running callback waits for the
// next iteration, behind everything already queued).
func TestCallSoonFromCallbackRunsNextIteration(t *testing.T) {
	l := newLoop(t)
	var got []string
	l.CallSoon(func() {
		got = append(got, "a")
		l.CallSoon(func() { got = append(got, "c") })
	})
	l.CallSoon(func() { got = append(got, "b") })
	l.CallSoon(l.Stop)
	if err := l.RunForever(); err != nil {
		t.Fatalf("RunForever() = %v; want nil", err)
	}
	checkTrace(t, []string{"a", "b"}, got)
	runBriefly(t, l)
	checkTrace(t, []string{"a", "b", "c"}, got)
}

// Mirrors test_base_events.py: test_run_until_complete_baseexception (the
// final run_forever: stop() inside a callback lets the rest of the batch
// run before run_forever returns; invariant I3).
func TestStopFinishesTheBatch(t *testing.T) {
	l := newLoop(t)
	var got []string
	l.CallSoon(l.Stop)
	l.CallSoon(func() { got = append(got, "same-batch-after-stop") })
	if err := l.RunForever(); err != nil {
		t.Fatalf("RunForever() = %v; want nil", err)
	}
	checkTrace(t, []string{"same-batch-after-stop"}, got)
}

// Mirrors test_base_events.py: test_run_forever_pre_stopped (invariant I4).
func TestRunForeverPreStopped(t *testing.T) {
	l := newLoop(t)
	start := l.Time()
	var got []string
	l.CallLater(10*time.Second, func() { got = append(got, "timer") })
	l.CallSoon(func() { got = append(got, "ready") })
	l.Stop()
	if err := l.RunForever(); err != nil {
		t.Fatalf("RunForever() = %v; want nil", err)
	}
	checkTrace(t, []string{"ready"}, got)
	if d := l.Time().Sub(start); d != 0 {
		t.Errorf("loop time advanced by %v; want 0 (a pre-stopped loop does not wait for timers)", d)
	}
	if l.IsRunning() {
		t.Errorf("IsRunning() = true after RunForever returned; want false")
	}
}

// Mirrors test_base_events.py: test_call_later_negative_delays (invariant I5).
func TestCallLaterNegativeDelays(t *testing.T) {
	l := newLoop(t)
	var got []string
	l.CallLater(-1*time.Second, func() { got = append(got, "a") })
	l.CallLater(-2*time.Second, func() { got = append(got, "b") })
	l.CallLater(0, l.Stop)
	if err := l.RunForever(); err != nil {
		t.Fatalf("RunForever() = %v; want nil", err)
	}
	checkTrace(t, []string{"b", "a"}, got)
}

// Mirrors test_events.py: test_call_later: timers fire by deadline, not by
// insertion, each at its own time on the loop's clock.
func TestCallLaterFiresByDeadline(t *testing.T) {
	l := newLoop(t)
	start := l.Time()
	type fired struct {
		Name string
		At   time.Duration
	}
	var got []fired
	at := func(name string) func() {
		return func() { got = append(got, fired{name, l.Time().Sub(start)}) }
	}
	l.CallLater(300*time.Millisecond, func() { at("c")(); l.Stop() })
	l.CallLater(100*time.Millisecond, at("a"))
	l.CallAt(start.Add(200*time.Millisecond), at("b"))
	if err := l.RunForever(); err != nil {
		t.Fatalf("RunForever() = %v; want nil", err)
	}
	checkTrace(t, []fired{{"a", 100 * time.Millisecond}, {"b", 200 * time.Millisecond}, {"c", 300 * time.Millisecond}}, got)
}

// Mirrors test_events.py: test_timer_comparison (timers order by when). For
// equal deadlines asyncio promises no order (invariant I6); asyncgo is
// stricter and documents it: ties fire in the order they were scheduled.
func TestCallAtEqualDeadlinesFireInSchedulingOrder(t *testing.T) {
	l := newLoop(t)
	when := l.Time().Add(time.Second)
	var got, want []int
	for i := range 20 {
		want = append(want, i)
		l.CallAt(when, func() { got = append(got, i) })
	}
	l.CallAt(when, l.Stop)
	if err := l.RunForever(); err != nil {
		t.Fatalf("RunForever() = %v; want nil", err)
	}
	checkTrace(t, want, got)
}

// Mirrors test_base_events.py: test__run_once (due timers join the ready
// queue behind the callbacks already there; invariant I7).
func TestDueTimerRunsAfterReadyCallbacks(t *testing.T) {
	l := newLoop(t)
	var got []string
	l.CallLater(0, func() { got = append(got, "later0") })
	l.CallSoon(func() { got = append(got, "soon") })
	runBriefly(t, l)
	checkTrace(t, []string{"soon", "later0"}, got)
}

// Mirrors test_events.py: test_handle (HandleTests: a cancelled handle never
// runs; invariant I8).
func TestCancelledHandleNeverRuns(t *testing.T) {
	l := newLoop(t)
	var got []string
	h := l.CallSoon(func() { got = append(got, "cancelled") })
	l.CallSoon(func() { got = append(got, "kept") })
	h.Cancel()
	h.Cancel() // idempotent
	if !h.Cancelled() {
		t.Errorf("Cancelled() = false after Cancel; want true")
	}
	runBriefly(t, l)
	checkTrace(t, []string{"kept"}, got)
}

// Mirrors test_events.py: test_timer and test_when (TimerTests): When is the
// deadline, and a cancelled timer never runs.
func TestCancelledTimerNeverRuns(t *testing.T) {
	l := newLoop(t)
	start := l.Time()
	var got []string
	th := l.CallLater(10*time.Second, func() { got = append(got, "cancelled") })
	if w := th.When(); !w.Equal(start.Add(10 * time.Second)) {
		t.Errorf("When() = %v; want %v", w, start.Add(10*time.Second))
	}
	l.CallLater(20*time.Second, func() { got = append(got, "kept"); l.Stop() })
	th.Cancel()
	if !th.Cancelled() {
		t.Errorf("Cancelled() = false after Cancel; want true")
	}
	if err := l.RunForever(); err != nil {
		t.Fatalf("RunForever() = %v; want nil", err)
	}
	checkTrace(t, []string{"kept"}, got)
	if d := l.Time().Sub(start); d != 20*time.Second {
		t.Errorf("elapsed = %v; want 20s", d)
	}
}

// Mirrors test_events.py: test_callback_with_exception (HandleTests: a
// failing callback goes to the exception handler and the loop goes on;
// invariant I9).
func TestCallbackPanicGoesToExceptionHandler(t *testing.T) {
	l := newLoop(t)
	got := recordHandler(l)
	var trace []string
	l.CallSoon(func() { panic("boom") })
	l.CallSoon(func() { trace = append(trace, "after") })
	runBriefly(t, l)
	checkTrace(t, []string{"after"}, trace)
	if len(*got) != 1 {
		t.Fatalf("handler called %d times; want 1", len(*got))
	}
	c := (*got)[0]
	if !strings.Contains(c.Message, "Exception in callback") {
		t.Errorf("Message = %q; want it to contain %q", c.Message, "Exception in callback")
	}
	var pe *loop.PanicError
	if !errors.As(c.Err, &pe) || pe.Value != "boom" {
		t.Errorf("Err = %v; want a *PanicError with value boom", c.Err)
	}
}

// Mirrors test_base_events.py: test_set_exc_handler_broken (a handler that
// fails itself is logged by the default handler; the loop goes on).
func TestBrokenExceptionHandlerIsLogged(t *testing.T) {
	var buf bytes.Buffer
	l := newLoop(t, loop.WithLogger(slog.New(slog.NewTextHandler(&buf, nil))))
	l.SetExceptionHandler(func(*loop.Loop, loop.ExceptionContext) { panic("handler is broken") })
	ran := false
	l.CallSoon(func() { panic("boom") })
	l.CallSoon(func() { ran = true })
	runBriefly(t, l)
	if !ran {
		t.Errorf("the callback after the failing one did not run")
	}
	if !strings.Contains(buf.String(), "unhandled error in exception handler") {
		t.Errorf("log = %q; want it to report the broken handler", buf.String())
	}
	l.SetExceptionHandler(nil)
	if l.ExceptionHandler() != nil {
		t.Errorf("ExceptionHandler() != nil after SetExceptionHandler(nil)")
	}
}

// Mirrors test_events.py: test_run_until_complete_nesting (invariant I11).
func TestRunUntilCompleteNesting(t *testing.T) {
	l := newLoop(t)
	var errs []error
	task := loop.CreateTask(l, func(ctx context.Context) (int, error) {
		if !l.IsRunning() {
			t.Errorf("IsRunning() = false inside a task; want true")
		}
		other := loop.NewFuture[int](l)
		errs = append(errs, l.RunUntilComplete(other), l.RunForever())
		_, err := loop.Run(ctx, func(context.Context) (int, error) { return 0, nil })
		errs = append(errs, err)
		return 0, nil
	})
	if err := l.RunUntilComplete(task); err != nil {
		t.Fatalf("RunUntilComplete() = %v; want nil", err)
	}
	want := []error{loop.ErrLoopRunning, loop.ErrLoopRunning, loop.ErrRunNested}
	for i, err := range errs {
		if !errors.Is(err, want[i]) {
			t.Errorf("nested call %d = %v; want %v", i, err, want[i])
		}
	}
}

// Mirrors test_events.py: test_close_running_event_loop (invariant I11).
func TestCloseRunningEventLoop(t *testing.T) {
	l := newLoop(t)
	var err error
	l.CallSoon(func() { err = l.Close() })
	runBriefly(t, l)
	if !errors.Is(err, loop.ErrCloseRunning) {
		t.Errorf("Close() while running = %v; want %v", err, loop.ErrCloseRunning)
	}
	if l.IsClosed() {
		t.Errorf("IsClosed() = true after a refused Close")
	}
}

// Mirrors test_events.py: test_close (invariant I12: a closed loop refuses
// everything; closing twice is a no-op).
func TestClosedLoopRefusesEverything(t *testing.T) {
	l := newLoop(t)
	f := loop.NewFuture[int](l)
	if err := l.Close(); err != nil {
		t.Fatalf("Close() = %v; want nil", err)
	}
	if !l.IsClosed() {
		t.Errorf("IsClosed() = false after Close")
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close() = %v; want nil", err)
	}
	if err := l.RunForever(); !errors.Is(err, loop.ErrLoopClosed) {
		t.Errorf("RunForever() = %v; want %v", err, loop.ErrLoopClosed)
	}
	if err := l.RunUntilComplete(f); !errors.Is(err, loop.ErrLoopClosed) {
		t.Errorf("RunUntilComplete() = %v; want %v", err, loop.ErrLoopClosed)
	}
	if err := l.CallSoonThreadsafe(func() {}); !errors.Is(err, loop.ErrLoopClosed) {
		t.Errorf("CallSoonThreadsafe() = %v; want %v", err, loop.ErrLoopClosed)
	}
	for name, fn := range map[string]func(){
		"CallSoon":   func() { l.CallSoon(func() {}) },
		"CallLater":  func() { l.CallLater(time.Second, func() {}) },
		"CallAt":     func() { l.CallAt(l.Time(), func() {}) },
		"CreateTask": func() { loop.CreateTask(l, func(context.Context) (int, error) { return 0, nil }) },
	} {
		if v := panicsWith(fn); v != loop.ErrLoopClosed {
			t.Errorf("%s() on a closed loop panicked with %v; want %v", name, v, loop.ErrLoopClosed)
		}
	}
}

// Mirrors test_events.py: test_run_until_complete_stopped (invariant I13).
func TestRunUntilCompleteStopped(t *testing.T) {
	l := newLoop(t)
	task := loop.CreateTask(l, func(ctx context.Context) (string, error) {
		l.Stop()
		if err := loop.Sleep(ctx, 100*time.Millisecond); err != nil {
			return "", err
		}
		return "finished", nil
	})
	if err := l.RunUntilComplete(task); !errors.Is(err, loop.ErrLoopStopped) {
		t.Fatalf("RunUntilComplete() = %v; want %v", err, loop.ErrLoopStopped)
	}
	if task.Done() {
		t.Fatalf("task is done after the loop stopped early")
	}
	// The task goes on when the loop runs again.
	if err := l.RunUntilComplete(task); err != nil {
		t.Fatalf("second RunUntilComplete() = %v; want nil", err)
	}
	if v, err := task.Result(); v != "finished" || err != nil {
		t.Errorf("Result() = %q, %v; want finished, nil", v, err)
	}
}

// Mirrors test_events.py: test_run_until_complete (the loop sleeps exactly
// as long as the task asks, on its clock).
func TestRunUntilCompleteWaitsForTheFuture(t *testing.T) {
	l := newLoop(t)
	start := l.Time()
	task := loop.CreateTask(l, func(ctx context.Context) (int, error) {
		return 7, loop.Sleep(ctx, 100*time.Millisecond)
	})
	if err := l.RunUntilComplete(task); err != nil {
		t.Fatalf("RunUntilComplete() = %v; want nil", err)
	}
	if d := l.Time().Sub(start); d != 100*time.Millisecond {
		t.Errorf("elapsed = %v; want 100ms", d)
	}
	if v, _ := task.Result(); v != 7 {
		t.Errorf("Result() = %d; want 7", v)
	}
}

// Mirrors test_events.py: test_call_soon_threadsafe (invariant I14: a
// goroutine wakes a loop that is blocked waiting for work).
func TestCallSoonThreadsafeWakesBlockedLoop(t *testing.T) {
	l := loop.New() // real clock: the loop blocks until woken
	defer l.Close()
	idle := make(chan struct{})
	done := make(chan struct{})
	var got []string
	l.CallSoon(func() { close(idle) }) // after this the loop has nothing to do
	go func() {
		defer close(done)
		<-idle
		if err := l.CallSoonThreadsafe(func() { got = append(got, "hello") }); err != nil {
			t.Errorf("CallSoonThreadsafe() = %v; want nil", err)
		}
		if err := l.CallSoonThreadsafe(l.Stop); err != nil {
			t.Errorf("CallSoonThreadsafe() = %v; want nil", err)
		}
	}()
	if err := l.RunForever(); err != nil {
		t.Fatalf("RunForever() = %v; want nil", err)
	}
	<-done
	checkTrace(t, []string{"hello"}, got)
}

// Mirrors test_tasks.py: test_log_destroyed_pending_task. asyncgo keeps
// every pending task alive (I38 is deliberately not ported): Close reports
// it as destroyed while pending and unwinds it, so its cleanup runs.
func TestClosePendingTaskIsReportedAndUnwound(t *testing.T) {
	l := loop.New(loop.WithVirtualClock())
	got := recordHandler(l)
	var trace []string
	task := loop.CreateTask(l, func(ctx context.Context) (int, error) {
		_, err := loop.NewFuture[int](l).Await(ctx) // never completed
		trace = append(trace, "unwound: "+loop.CancelMessage(err))
		return 0, err
	}, loop.WithName("kill_me"))
	runBriefly(t, l)
	if err := l.Close(); err != nil {
		t.Fatalf("Close() = %v; want nil", err)
	}
	checkTrace(t, []string{"unwound: loop closed"}, trace)
	if len(*got) != 1 || (*got)[0].Message != "Task was destroyed but it is pending!" || (*got)[0].Task.Name() != "kill_me" {
		t.Fatalf("handler got %+v; want one report of kill_me destroyed while pending", *got)
	}
	if !task.Cancelled() {
		t.Errorf("Cancelled() = false after Close; want true")
	}
}

// Mirrors test_tasks.py: test_log_destroyed_pending_task, the other way
// round: a task nobody holds, waiting on a future nobody holds, is not
// collected (asyncio loses it, I38); a fire-and-forget task runs to its end.
func TestTasksNobodyHoldsAreKept(t *testing.T) {
	l := newLoop(t)
	got := recordHandler(l)
	finished := false
	func() {
		loop.CreateTask(l, func(ctx context.Context) (int, error) {
			return loop.NewFuture[int](l).Await(ctx)
		}, loop.WithName("orphan"))
		loop.CreateTask(l, func(ctx context.Context) (int, error) {
			if err := loop.Sleep(ctx, time.Second); err != nil {
				return 0, err
			}
			finished = true
			return 0, nil
		})
	}()
	runBriefly(t, l)
	runtime.GC()
	runtime.GC()
	l.CallLater(time.Hour, l.Stop)
	if err := l.RunForever(); err != nil {
		t.Fatalf("RunForever() = %v; want nil", err)
	}
	if !finished {
		t.Errorf("the fire-and-forget task did not finish")
	}
	tasks := l.AllTasks()
	if len(tasks) != 1 || tasks[0].Name() != "orphan" {
		t.Fatalf("AllTasks() = %v; want the orphan task only", tasks)
	}
	l.Close()
	if len(*got) != 1 || (*got)[0].Task.Name() != "orphan" {
		t.Errorf("handler got %+v; want one report of the orphan task", *got)
	}
}

// Mirrors test_events.py: test_call_soon_threadsafe_same_thread.
func TestCallSoonThreadsafeSameThreadOrder(t *testing.T) {
	l := loop.New()
	defer l.Close()
	var got []string
	l.CallSoon(func() {
		_ = l.CallSoonThreadsafe(func() { got = append(got, "threadsafe") })
		l.CallSoon(func() { got = append(got, "soon") })
		l.CallSoon(l.Stop)
	})
	if err := l.RunForever(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"threadsafe", "soon"}, got); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
}

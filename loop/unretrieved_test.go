package loop_test

import (
	"context"
	"errors"
	"runtime"
	"testing"

	"github.com/asyncgo/asyncgo/loop"
)

// A fire-and-forget task's error is reported when the loop closes (Python
// reports at interpreter exit), to the handler the user set, with asyncio's
// message and the task itself in the context. Mirrors the shape of
// test_tasks.py: test_exception_traceback / test_log_destroyed_pending's
// "never retrieved" report, made deterministic by the close.
func TestUnretrievedTaskReportedAtClose(t *testing.T) {
	boom := errors.New("boom")
	var got []loop.ExceptionContext
	var forgotten loop.AnyTask
	_, err := loop.Run(context.Background(), func(ctx context.Context) (int, error) {
		loopOf(ctx).SetExceptionHandler(func(_ *loop.Loop, c loop.ExceptionContext) { got = append(got, c) })
		forgotten = loop.Spawn(ctx, func(ctx context.Context) (int, error) { return 0, boom }, loop.WithName("fire-and-forget"))
		read := loop.Spawn(ctx, func(ctx context.Context) (int, error) { return 0, boom })
		loop.Spawn(ctx, func(ctx context.Context) (int, error) { return 0, loop.Sleep(ctx, 1e9) }) // cancelled by Run's end: not an error
		_ = loop.Sleep(ctx, 0)
		_ = loop.Sleep(ctx, 0)
		_ = read.Err()
		return 0, nil
	})
	if err != nil {
		t.Fatalf("Run() = %v", err)
	}
	if len(got) != 1 {
		t.Fatalf("handler got %d reports (%+v); want 1", len(got), got)
	}
	c := got[0]
	if c.Message != "Task exception was never retrieved" || c.Err != boom {
		t.Errorf("report = %q, %v; want %q, boom", c.Message, c.Err, "Task exception was never retrieved")
	}
	if c.Task != forgotten || c.Future != loop.Waitable(forgotten) {
		t.Errorf("report's Task = %v, Future = %v; want the task itself", c.Task, c.Future)
	}
	if c.Task != nil && c.Task.Name() != "fire-and-forget" {
		t.Errorf("report's task name = %q", c.Task.Name())
	}
}

// A panic in a fire-and-forget task is not lost either.
func TestUnretrievedPanicReportedAtClose(t *testing.T) {
	l := loop.New(loop.WithVirtualClock())
	got := recordHandler(l)
	tk := loop.CreateTask(l, func(ctx context.Context) (int, error) { panic("oops") })
	_ = l.RunUntilComplete(loop.CreateTask(l, func(ctx context.Context) (int, error) {
		return 0, loop.Sleep(ctx, 0)
	}))
	if !tk.Done() {
		t.Fatalf("task not done")
	}
	if len(*got) != 0 {
		t.Fatalf("reported before close: %+v", *got)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	var pe *loop.PanicError
	if len(*got) != 1 || !errors.As((*got)[0].Err, &pe) || pe.Value != "oops" || (*got)[0].Task != loop.AnyTask(tk) {
		t.Fatalf("handler got %+v; want one report of the panic with its task", *got)
	}
	_ = l.Close()
	if len(*got) != 1 {
		t.Errorf("a second Close reported again: %+v", *got)
	}
}

// A plain Future's report carries the future, with Future's message.
func TestUnretrievedFutureReportedAtClose(t *testing.T) {
	l := loop.New(loop.WithVirtualClock())
	got := recordHandler(l)
	boom := errors.New("boom")
	f := loop.NewFuture[int](l)
	_ = f.SetErr(boom)
	g := loop.NewFuture[int](l)
	_ = g.SetErr(boom)
	_, _ = g.Result()
	_ = l.Close()
	if len(*got) != 1 {
		t.Fatalf("handler got %+v; want one report", *got)
	}
	if c := (*got)[0]; c.Message != "Future exception was never retrieved" || c.Err != boom || c.Future != loop.Waitable(f) || c.Task != nil {
		t.Errorf("report = %+v; want the future f, boom, no task", c)
	}
}

// A failed future collected after its loop closed is reported to the
// user's handler, not to the global logger; a test waits for the report
// on a channel while the collector runs.
func TestUnretrievedAfterCloseGoesToHandler(t *testing.T) {
	l := loop.New(loop.WithVirtualClock())
	reports := make(chan loop.ExceptionContext, 1)
	l.SetExceptionHandler(func(_ *loop.Loop, c loop.ExceptionContext) { reports <- c })
	_ = l.Close()
	boom := errors.New("late")
	func() {
		f := loop.NewFuture[int](l)
		_ = f.SetErr(boom)
	}()
	c := waitReport(reports)
	if c.Message != "Future exception was never retrieved" || c.Err != boom {
		t.Fatalf("report = %+v", c)
	}
	if c.Future == nil || !c.Future.Done() || c.Future.Err() != boom {
		t.Errorf("report's Future = %v; want a finished stand-in holding the error", c.Future)
	}
}

// A collected task's report, made while the loop runs, carries a finished
// stand-in with the task's name and error: the task itself is gone.
func TestUnretrievedCollectedTaskStandIn(t *testing.T) {
	l := loop.New(loop.WithVirtualClock())
	defer l.Close()
	reports := make(chan loop.ExceptionContext, 1)
	l.SetExceptionHandler(func(l *loop.Loop, c loop.ExceptionContext) { reports <- c; l.Stop() })
	boom := errors.New("boom")
	func() {
		tk := loop.CreateTask(l, func(ctx context.Context) (int, error) { return 0, boom }, loop.WithName("lost"))
		// RunUntilComplete(tk) would read tk's error: wait for it apart.
		_ = l.RunUntilComplete(loop.CreateTask(l, func(ctx context.Context) (int, error) {
			return 0, loop.Sleep(ctx, 0)
		}))
		if !tk.Done() {
			t.Fatal("task not done")
		}
	}()
	stop := make(chan struct{})
	go collect(stop)
	err := l.RunForever()
	close(stop)
	if err != nil {
		t.Fatal(err)
	}
	c := <-reports
	if c.Message != "Task exception was never retrieved" || c.Err != boom || c.Task == nil || c.Task.Name() != "lost" || !c.Task.Done() {
		t.Fatalf("report = %+v; want the stand-in of task lost", c)
	}
	if c.Future != loop.Waitable(c.Task) {
		t.Errorf("report's Future and Task differ")
	}
}

// waitReport runs the collector until a report arrives.
func waitReport(reports <-chan loop.ExceptionContext) loop.ExceptionContext {
	stop := make(chan struct{})
	defer close(stop)
	go collect(stop)
	return <-reports
}

func collect(stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		default:
			runtime.GC()
			runtime.Gosched()
		}
	}
}

// BenchmarkFailedFutureRead is the cost of the "never retrieved"
// bookkeeping: a future that fails and whose error is read at once.
func BenchmarkFailedFutureRead(b *testing.B) {
	boom := errors.New("boom")
	b.ReportAllocs()
	_, _ = loop.Run(context.Background(), func(ctx context.Context) (int, error) {
		l := loopOf(ctx)
		for b.Loop() {
			f := loop.NewFuture[int](l)
			_ = f.SetErr(boom)
			_ = loop.Sleep(ctx, 0) // an iteration passes before the read
			_ = f.Err()
		}
		return 0, nil
	})
}

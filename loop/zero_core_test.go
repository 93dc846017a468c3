package loop_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/loop"
)

// Issue 8, item 5, for the types made by constructors: a zero Loop, Future
// or Task returns a clear error (or panics with it where a method has no
// error result) instead of hanging or dereferencing nil; a zero Timeout
// is asyncio.Timeout(None).
func TestZeroLoop(t *testing.T) {
	var l loop.Loop
	if err := l.RunForever(); err != loop.ErrZeroLoop {
		t.Errorf("RunForever() = %v; want ErrZeroLoop", err)
	}
	if err := l.CallSoonThreadsafe(func() {}); err != loop.ErrZeroLoop {
		t.Errorf("CallSoonThreadsafe() = %v; want ErrZeroLoop", err)
	}
	if err := l.Close(); err != loop.ErrZeroLoop {
		t.Errorf("Close() = %v; want ErrZeroLoop", err)
	}
	if v := panicsWith(func() { l.CallSoon(func() {}) }); v != loop.ErrZeroLoop {
		t.Errorf("CallSoon panicked with %v; want ErrZeroLoop", v)
	}
	if v := panicsWith(func() { loop.CreateTask(&l, func(context.Context) (int, error) { return 0, nil }) }); v != loop.ErrZeroLoop {
		t.Errorf("CreateTask panicked with %v; want ErrZeroLoop", v)
	}
	if v := panicsWith(func() { l.DefaultExceptionHandler(loop.ExceptionContext{Message: "zero loop test: ignore"}) }); v != nil {
		t.Errorf("DefaultExceptionHandler panicked with %v", v)
	}
	f := loop.NewFuture[int](&l)
	if err := l.RunUntilComplete(f); err != loop.ErrZeroLoop {
		t.Errorf("RunUntilComplete() = %v; want ErrZeroLoop", err)
	}
}

func TestZeroFutureAndTask(t *testing.T) {
	var f loop.Future[int]
	var tk loop.Task[int]
	if err := f.SetResult(1); err != loop.ErrZeroFuture {
		t.Errorf("SetResult() = %v; want ErrZeroFuture", err)
	}
	if err := f.SetErr(errors.New("x")); err != loop.ErrZeroFuture {
		t.Errorf("SetErr() = %v; want ErrZeroFuture", err)
	}
	if f.Cancel() || tk.Cancel("x") {
		t.Errorf("Cancel() on a zero Future or Task = true; want false")
	}
	if f.Done() || tk.Done() {
		t.Errorf("a zero Future or Task is done")
	}
	if _, err := f.Result(); !errors.Is(err, loop.ErrInvalidState) {
		t.Errorf("Result() = %v; want ErrInvalidState", err)
	}
	if v := panicsWith(func() { f.AddDoneCallback(func(*loop.Future[int]) {}) }); v != loop.ErrZeroFuture {
		t.Errorf("Future.AddDoneCallback panicked with %v", v)
	}
	if v := panicsWith(func() { tk.AddDoneCallback(func(*loop.Task[int]) {}) }); v != loop.ErrZeroFuture {
		t.Errorf("Task.AddDoneCallback panicked with %v", v)
	}
	inTask(t, func(ctx context.Context) {
		if _, err := f.Await(ctx); err != loop.ErrZeroFuture {
			t.Errorf("Future.Await() = %v; want ErrZeroFuture", err)
		}
		if _, err := tk.Await(ctx); err != loop.ErrZeroFuture {
			t.Errorf("Task.Await() = %v; want ErrZeroFuture", err)
		}
	})
}

func TestZeroTimeoutIsTimeoutNone(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		var tm loop.Timeout
		start := loop.Time(ctx)
		if err := tm.Do(ctx, func(ctx context.Context) error { return loop.Sleep(ctx, time.Hour) }); err != nil {
			t.Errorf("zero Timeout Do() = %v; want nil (no deadline)", err)
		}
		if d := since(ctx, start); d != time.Hour {
			t.Errorf("slept %v; want 1h", d)
		}
		var tm2 loop.Timeout
		err := tm2.Do(ctx, func(ctx context.Context) error {
			if err := tm2.Reschedule(loop.Time(ctx).Add(time.Millisecond)); err != nil {
				return err
			}
			return loop.Sleep(ctx, time.Hour)
		})
		if !errors.Is(err, loop.ErrTimeout) {
			t.Errorf("zero Timeout rescheduled inside Do = %v; want ErrTimeout", err)
		}
	})
	var eg loop.ExceptionGroup
	if s := eg.Error(); s != "loop: exception group (0 sub-errors)" {
		t.Errorf("zero ExceptionGroup prints %q", s)
	}
}

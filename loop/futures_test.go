package loop_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/loop"
)

// Mirrors test_futures.py: test_initial_state (and invariant I17: reading a
// pending future is an invalid state).
func TestFutureInitialState(t *testing.T) {
	l := newLoop(t)
	f := loop.NewFuture[int](l)
	if f.Done() || f.Cancelled() {
		t.Errorf("Done() = %v, Cancelled() = %v; want false, false", f.Done(), f.Cancelled())
	}
	if _, err := f.Result(); !errors.Is(err, loop.ErrInvalidState) {
		t.Errorf("Result() = %v; want %v", err, loop.ErrInvalidState)
	}
	if err := f.Err(); !errors.Is(err, loop.ErrInvalidState) {
		t.Errorf("Err() = %v; want %v", err, loop.ErrInvalidState)
	}
	if f.Loop() != l {
		t.Errorf("Loop() is not the loop the future was made on")
	}
	f.Cancel("")
	if !f.Cancelled() {
		t.Errorf("Cancelled() = false after Cancel; want true")
	}
}

// Mirrors test_futures.py: test_cancel and test_future_cancel_message_getter
// (invariant I20).
func TestFutureCancel(t *testing.T) {
	l := newLoop(t)
	f := loop.NewFuture[int](l)
	if !f.Cancel("why") {
		t.Fatalf("Cancel() = false on a pending future; want true")
	}
	if !f.Cancelled() || !f.Done() {
		t.Errorf("Cancelled() = %v, Done() = %v; want true, true", f.Cancelled(), f.Done())
	}
	_, err := f.Result()
	var ce *loop.CancelledError
	if !errors.As(err, &ce) || ce.Msg != "why" || !errors.Is(err, loop.ErrCancelled) || !errors.Is(err, context.Canceled) {
		t.Errorf("Result() = %v; want a CancelledError with message why", err)
	}
	if err := f.Err(); loop.CancelMessage(err) != "why" {
		t.Errorf("Err() = %v; want CancelledError(why)", err)
	}
	if err := f.SetResult(1); !errors.Is(err, loop.ErrInvalidState) {
		t.Errorf("SetResult() = %v; want %v", err, loop.ErrInvalidState)
	}
	if err := f.SetErr(errors.New("x")); !errors.Is(err, loop.ErrInvalidState) {
		t.Errorf("SetErr() = %v; want %v", err, loop.ErrInvalidState)
	}
	if f.Cancel("again") {
		t.Errorf("Cancel() = true on a done future; want false")
	}
}

// Mirrors test_futures.py: test_result (and invariant I18).
func TestFutureResult(t *testing.T) {
	l := newLoop(t)
	f := loop.NewFuture[int](l)
	if err := f.SetResult(42); err != nil {
		t.Fatalf("SetResult() = %v; want nil", err)
	}
	if f.Cancelled() || !f.Done() {
		t.Errorf("Cancelled() = %v, Done() = %v; want false, true", f.Cancelled(), f.Done())
	}
	if v, err := f.Result(); v != 42 || err != nil {
		t.Errorf("Result() = %d, %v; want 42, nil", v, err)
	}
	if err := f.Err(); err != nil {
		t.Errorf("Err() = %v; want nil", err)
	}
	if err := f.SetResult(1); !errors.Is(err, loop.ErrInvalidState) {
		t.Errorf("SetResult() twice = %v; want %v", err, loop.ErrInvalidState)
	}
	if err := f.SetErr(errors.New("x")); !errors.Is(err, loop.ErrInvalidState) {
		t.Errorf("SetErr() after SetResult = %v; want %v", err, loop.ErrInvalidState)
	}
	if f.Cancel("") {
		t.Errorf("Cancel() = true on a done future; want false")
	}
}

// Mirrors test_futures.py: test_exception (and invariant I21: the error a
// future is given must be a real one).
func TestFutureException(t *testing.T) {
	l := newLoop(t)
	f := loop.NewFuture[int](l)
	if err := f.SetErr(nil); err == nil {
		t.Errorf("SetErr(nil) = nil; want an error")
	}
	if f.Done() {
		t.Fatalf("SetErr(nil) completed the future")
	}
	boom := errors.New("boom")
	if err := f.SetErr(boom); err != nil {
		t.Fatalf("SetErr() = %v; want nil", err)
	}
	if f.Cancelled() || !f.Done() {
		t.Errorf("Cancelled() = %v, Done() = %v; want false, true", f.Cancelled(), f.Done())
	}
	if _, err := f.Result(); err != boom {
		t.Errorf("Result() = %v; want %v", err, boom)
	}
	if err := f.Err(); err != boom {
		t.Errorf("Err() = %v; want %v", err, boom)
	}
	if err := f.SetResult(1); !errors.Is(err, loop.ErrInvalidState) {
		t.Errorf("SetResult() = %v; want %v", err, loop.ErrInvalidState)
	}
	if f.Cancel("") {
		t.Errorf("Cancel() = true on a failed future; want false")
	}
}

// Mirrors test_futures.py: test_callbacks_invoked_on_set_result (invariant
// I19: callbacks are deferred to the next iteration, in order).
func TestFutureCallbacksInvokedOnSetResult(t *testing.T) {
	l := newLoop(t)
	var bag []int
	f := loop.NewFuture[string](l)
	f.AddDoneCallback(func(*loop.Future[string]) { bag = append(bag, 42) })
	f.AddDoneCallback(func(*loop.Future[string]) { bag = append(bag, 17) })
	if err := f.SetResult("foo"); err != nil {
		t.Fatalf("SetResult() = %v; want nil", err)
	}
	checkTrace(t, nil, bag)
	runBriefly(t, l)
	checkTrace(t, []int{42, 17}, bag)
	if v, _ := f.Result(); v != "foo" {
		t.Errorf("Result() = %q; want foo", v)
	}
}

// Mirrors test_futures.py: test_callbacks_invoked_on_set_exception.
func TestFutureCallbacksInvokedOnSetException(t *testing.T) {
	l := newLoop(t)
	var bag []int
	f := loop.NewFuture[string](l)
	var seen *loop.Future[string]
	f.AddDoneCallback(func(g *loop.Future[string]) { bag = append(bag, 100); seen = g })
	boom := errors.New("boom")
	_ = f.SetErr(boom)
	checkTrace(t, nil, bag)
	runBriefly(t, l)
	checkTrace(t, []int{100}, bag)
	if seen != f {
		t.Errorf("the callback was not given its future")
	}
	if err := f.Err(); err != boom {
		t.Errorf("Err() = %v; want %v", err, boom)
	}
}

// Mirrors test_futures.py: test_callbacks_invoked_on_set_result for a future
// that is already done: add_done_callback still defers the call (I19).
func TestFutureCallbackOnDoneFutureIsDeferred(t *testing.T) {
	l := newLoop(t)
	var bag []string
	f := loop.NewFuture[int](l)
	_ = f.SetResult(1)
	f.AddDoneCallback(func(*loop.Future[int]) { bag = append(bag, "cb1") })
	f.AddDoneCallback(func(*loop.Future[int]) { bag = append(bag, "cb2") })
	checkTrace(t, nil, bag)
	runBriefly(t, l)
	checkTrace(t, []string{"cb1", "cb2"}, bag)
}

// Mirrors test_futures.py: test_remove_done_callback and
// test_callbacks_remove_third_callback (a registration is removed by its
// id, once; the others still run in order).
func TestFutureRemoveDoneCallback(t *testing.T) {
	l := newLoop(t)
	var bag []int
	f := loop.NewFuture[string](l)
	cb := func(n int) func(*loop.Future[string]) {
		return func(*loop.Future[string]) { bag = append(bag, n) }
	}
	id1 := f.AddDoneCallback(cb(1))
	f.AddDoneCallback(cb(2))
	id3 := f.AddDoneCallback(cb(3))
	f.AddDoneCallback(cb(4))
	if n := f.RemoveDoneCallback(id1); n != 1 {
		t.Errorf("RemoveDoneCallback(id1) = %d; want 1", n)
	}
	if n := f.RemoveDoneCallback(id1); n != 0 {
		t.Errorf("RemoveDoneCallback(id1) again = %d; want 0", n)
	}
	if n := f.RemoveDoneCallback(id3); n != 1 {
		t.Errorf("RemoveDoneCallback(id3) = %d; want 1", n)
	}
	_ = f.SetResult("foo")
	runBriefly(t, l)
	checkTrace(t, []int{2, 4}, bag)
}

// Mirrors test_futures.py: test_yield_from_twice (awaiting a done future,
// once or twice, returns at once without giving up the loop; invariant I24).
func TestFutureAwaitDoneDoesNotYield(t *testing.T) {
	l := newLoop(t)
	var trace []string
	f := loop.NewFuture[string](l)
	_ = f.SetResult("v")
	task := loop.CreateTask(l, func(ctx context.Context) (int, error) {
		l.CallSoon(func() { trace = append(trace, "other") })
		x, _ := f.Await(ctx)
		trace = append(trace, x)
		y, _ := f.Await(ctx)
		trace = append(trace, "after-await-done-"+y)
		return 0, loop.Sleep(ctx, 0)
	})
	if err := l.RunUntilComplete(task); err != nil {
		t.Fatalf("RunUntilComplete() = %v; want nil", err)
	}
	checkTrace(t, []string{"v", "after-await-done-v", "other"}, trace)
}

// Mirrors test_futures.py: test_future_exception_never_retrieved (I23): a
// failed future that nobody reads is reported once it is collected.
func TestFutureExceptionNeverRetrieved(t *testing.T) {
	l := newLoop(t)
	var got []loop.ExceptionContext
	l.SetExceptionHandler(func(l *loop.Loop, c loop.ExceptionContext) {
		got = append(got, c)
		l.Stop()
	})
	boom := errors.New("boom")
	func() {
		f := loop.NewFuture[int](l)
		_ = f.SetErr(boom)
	}()
	// Collect until the cleanup has reported: the report arrives through
	// CallSoonThreadsafe and stops the loop.
	stop := make(chan struct{})
	collected := make(chan struct{})
	go func() {
		defer close(collected)
		collect(stop)
	}()
	err := l.RunForever()
	close(stop)
	<-collected
	if err != nil {
		t.Fatalf("RunForever() = %v; want nil", err)
	}
	if len(got) != 1 || !strings.Contains(got[0].Message, "Future exception was never retrieved") || got[0].Err != boom {
		t.Errorf("handler got %+v; want one \"Future exception was never retrieved\" report of boom", got)
	}
}

// Mirrors test_futures.py: test_wrap_future (the other direction: a plain
// goroutine waits for a loop future through its done channel).
func TestFutureDoneChanSeenFromGoroutine(t *testing.T) {
	l := newLoop(t)
	f := loop.NewFuture[int](l)
	ch := f.DoneChan()
	got := make(chan int)
	go func() {
		<-ch
		v, _ := f.Result()
		got <- v
	}()
	_ = f.SetResult(42)
	if v := <-got; v != 42 {
		t.Errorf("Result() from a goroutine = %d; want 42", v)
	}
	select {
	case <-f.DoneChan():
	default:
		t.Errorf("DoneChan() of a done future is not closed")
	}
}

// The documented thread-safe read: once DoneChan is closed, Result and Err
// may be read from any goroutine. Run under -race: the "never retrieved"
// bookkeeping of a failed future used to be written after the channel
// closed.
func TestDoneChanThenResultFromAnotherGoroutine(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		name   string
		finish func(f *loop.Future[int])
		want   error
	}{
		{"failed", func(f *loop.Future[int]) { _ = f.SetErr(boom) }, boom},
		{"cancelled", func(f *loop.Future[int]) { f.Cancel("") }, loop.ErrCancelled},
		{"succeeded", func(f *loop.Future[int]) { _ = f.SetResult(1) }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for range 50 {
				l := newLoop(t)
				f := loop.NewFuture[int](l)
				got := make(chan error, 2)
				done := f.DoneChan()
				go func() {
					<-done
					_, err := f.Result()
					got <- err
					got <- f.Err()
				}()
				tc.finish(f)
				for range 2 {
					if err := <-got; !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
						t.Fatalf("read after DoneChan = %v; want %v", err, tc.want)
					}
				}
			}
		})
	}
}

// A task's name may be set on the loop while another goroutine formats
// its ctx (a log line, an error wrapping it). Run under -race.
func TestTaskNameReadElsewhere(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		task := loop.Spawn(ctx, func(ctx context.Context) (int, error) { return 0, loop.Sleep(ctx, time.Hour) })
		tctx := task.Context()
		got := make(chan string)
		go func() {
			for range 100 {
				_ = fmt.Sprint(tctx)
			}
			got <- fmt.Sprint(tctx)
		}()
		for i := range 100 {
			task.SetName(fmt.Sprint("worker-", i))
		}
		if s := <-got; !strings.HasPrefix(s, "loop.Task(") {
			t.Errorf("String() = %q", s)
		}
		task.Cancel("")
		_, _ = task.Await(ctx)
	})
}

package executor_test

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/asyncgo/asyncgo/executor"
	"github.com/google/go-cmp/cmp"
)

var errOdd = errors.New("odd number")

// square is a registered function: a ThreadPool runs it in this process.
var square = executor.Register("executor_test.square", func(x int) (int, error) { return x * x, nil })

// res waits for a submitted call; a Submit error is returned as the result.
func res[R any](f *executor.Future[R], err error) (R, error) {
	if err != nil {
		var zero R
		return zero, err
	}
	return f.Result(context.Background())
}

func newThreadPool(t *testing.T, opts executor.ThreadPoolOptions) *executor.ThreadPool {
	t.Helper()
	p, err := executor.NewThreadPool(opts)
	if err != nil {
		t.Fatalf("NewThreadPool() = %v", err)
	}
	t.Cleanup(func() { p.Shutdown(true, true) })
	return p
}

func TestThreadPoolSubmit(t *testing.T) {
	p := newThreadPool(t, executor.ThreadPoolOptions{})
	if p.MaxWorkers() != executor.DefaultThreadWorkers() {
		t.Errorf("MaxWorkers() = %d; want %d", p.MaxWorkers(), executor.DefaultThreadWorkers())
	}
	f, err := executor.SubmitFunc(p, func() (string, error) { return "hi", nil })
	if v, err := res(f, err); v != "hi" || err != nil {
		t.Errorf("Result() = %q, %v", v, err)
	}
	// A registered function runs in-process on a ThreadPool.
	if v, err := res(executor.Submit(p, square.Bind(6))); v != 36 || err != nil {
		t.Errorf("Result() = %v, %v; want 36", v, err)
	}
}

func TestThreadPoolPanic(t *testing.T) {
	p := newThreadPool(t, executor.ThreadPoolOptions{MaxWorkers: 1})
	_, err := res(executor.SubmitFunc(p, func() (int, error) { panic("oops") }))
	var pe *executor.PanicError
	if !errors.As(err, &pe) || pe.Value != "oops" || len(pe.Stack) == 0 {
		t.Fatalf("Result() = %v; want a *PanicError with a stack", err)
	}
	if v, err := res(executor.SubmitFunc(p, func() (int, error) { return 1, nil })); v != 1 || err != nil {
		t.Errorf("after a panic: %v, %v", v, err)
	}
}

// At most MaxWorkers calls run at once; the first MaxWorkers submitted are
// the ones running.
func TestThreadPoolMaxWorkers(t *testing.T) {
	p := newThreadPool(t, executor.ThreadPoolOptions{MaxWorkers: 3})
	var running, peak atomic.Int32
	started := make(chan int, 10)
	release := make(chan struct{})
	var fs []*executor.Future[int]
	for i := range 10 {
		f, err := executor.SubmitFunc(p, func() (int, error) {
			n := running.Add(1)
			for old := peak.Load(); n > old && !peak.CompareAndSwap(old, n); old = peak.Load() {
			}
			started <- i
			<-release
			running.Add(-1)
			return i, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		fs = append(fs, f)
	}
	first := []int{<-started, <-started, <-started}
	slices.Sort(first)
	if diff := cmp.Diff([]int{0, 1, 2}, first); diff != "" {
		t.Errorf("first calls to run (-want +got):\n%s", diff)
	}
	if fs[3].Running() {
		t.Errorf("a fourth call runs while three hold the workers")
	}
	close(release)
	for i, f := range fs {
		if v, err := f.Result(context.Background()); v != i || err != nil {
			t.Errorf("Result() = %v, %v; want %d", v, err, i)
		}
	}
	if peak.Load() > 3 {
		t.Errorf("peak concurrency %d; want <= 3", peak.Load())
	}
}

// With one worker, calls run in submission order.
func TestThreadPoolFIFO(t *testing.T) {
	p := newThreadPool(t, executor.ThreadPoolOptions{MaxWorkers: 1})
	var order []int
	var fs []*executor.Future[int]
	for i := range 5 {
		f, _ := executor.SubmitFunc(p, func() (int, error) { order = append(order, i); return i, nil })
		fs = append(fs, f)
	}
	for _, f := range fs {
		f.Result(context.Background())
	}
	if diff := cmp.Diff([]int{0, 1, 2, 3, 4}, order); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
}

func TestThreadPoolInitializerFails(t *testing.T) {
	p := newThreadPool(t, executor.ThreadPoolOptions{MaxWorkers: 1, Initializer: func() error { return errors.New("bad init") }})
	_, err := res(executor.SubmitFunc(p, func() (int, error) { return 1, nil }))
	if !errors.Is(err, executor.ErrBrokenThreadPool) {
		t.Errorf("Result() = %v; want ErrBrokenThreadPool", err)
	}
	if _, err := executor.SubmitFunc(p, func() (int, error) { return 1, nil }); !errors.Is(err, executor.ErrBrokenThreadPool) {
		t.Errorf("Submit() = %v; want ErrBrokenThreadPool", err)
	}
}

// Mirrors test_cancel_futures: shutdown(cancel_futures=True) cancels what
// has not started, the running call completes.
func TestThreadPoolShutdownCancelFutures(t *testing.T) {
	p := newThreadPool(t, executor.ThreadPoolOptions{MaxWorkers: 1})
	started, release := make(chan struct{}), make(chan struct{})
	running, _ := executor.SubmitFunc(p, func() (int, error) { close(started); <-release; return 1, nil })
	<-started
	var queued []*executor.Future[int]
	for range 5 {
		f, _ := executor.SubmitFunc(p, func() (int, error) { return 2, nil })
		queued = append(queued, f)
	}
	go func() { close(release) }()
	p.Shutdown(true, true)
	if v, err := running.Result(context.Background()); v != 1 || err != nil {
		t.Errorf("running: %v, %v", v, err)
	}
	for _, f := range queued {
		if !f.Cancelled() {
			t.Errorf("queued future not cancelled")
		}
	}
	if _, err := executor.SubmitFunc(p, func() (int, error) { return 1, nil }); !errors.Is(err, executor.ErrShutdown) {
		t.Errorf("Submit() after Shutdown = %v; want ErrShutdown", err)
	}
}

// Map yields in argument order and stops at the first error.
func TestThreadPoolMapError(t *testing.T) {
	p := newThreadPool(t, executor.ThreadPoolOptions{MaxWorkers: 2})
	var got []int
	var gotErr error
	for v, err := range executor.Map(context.Background(), p, executor.LocalFunc(func(x int) (int, error) {
		if x == 3 {
			return 0, errOdd
		}
		return x * 10, nil
	}), []int{1, 2, 3, 4}) {
		if err != nil {
			gotErr = err
			break
		}
		got = append(got, v)
	}
	if diff := cmp.Diff([]int{10, 20}, got); diff != "" || !errors.Is(gotErr, errOdd) {
		t.Errorf("Map() = %v, %v; want [10 20], errOdd", got, gotErr)
	}
}

// Result with an expired ctx is Python's result(timeout): the future is
// not cancelled.
func TestFutureResultTimeout(t *testing.T) {
	f := executor.NewFuture[int]()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := f.Result(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Result() = %v; want the ctx error", err)
	}
	if f.Done() {
		t.Errorf("the future is done after a Result timeout")
	}
	var calls []string
	f.AddDoneCallback(func(*executor.Future[int]) { calls = append(calls, "cb1") })
	if !f.SetRunningOrNotifyCancel() || f.Cancel() {
		t.Errorf("a running future could be cancelled")
	}
	_ = f.SetResult(3)
	f.AddDoneCallback(func(*executor.Future[int]) { calls = append(calls, "cb2") })
	if err := f.SetResult(4); !errors.Is(err, executor.ErrInvalidState) {
		t.Errorf("second SetResult() = %v; want ErrInvalidState", err)
	}
	if diff := cmp.Diff([]string{"cb1", "cb2"}, calls); diff != "" {
		t.Errorf("callbacks (-want +got):\n%s", diff)
	}
}

// Two calls submitted back to back, the first waiting for the second, both
// run: a worker woken for the first does not count for the second.
func TestThreadPoolBackToBackSubmits(t *testing.T) {
	p := newThreadPool(t, executor.ThreadPoolOptions{MaxWorkers: 4})
	if _, err := res(executor.SubmitFunc(p, func() (int, error) { return 0, nil })); err != nil {
		t.Fatal(err) // one worker now idle
	}
	b := make(chan int)
	fa, _ := executor.SubmitFunc(p, func() (int, error) { return <-b, nil })
	fb, _ := executor.SubmitFunc(p, func() (int, error) { b <- 7; return 0, nil })
	if v, err := fa.Result(context.Background()); v != 7 || err != nil {
		t.Errorf("Result() = %v, %v; want 7", v, err)
	}
	fb.Result(context.Background())
}

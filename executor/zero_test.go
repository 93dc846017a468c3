package executor_test

// Issue 8, items 5 and 6: the zero value of every type of threadpool.go and
// future.go works as its constructor's default (ThreadPoolExecutor(),
// Future()), and a ThreadPool dropped without Shutdown ends its
// goroutines.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/internal/exectest"
	"github.com/google/go-cmp/cmp"
)

// cancelledCtx is a ctx that has ended: Result with it is result(timeout=0).
func cancelledCtx() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// isClosed reports whether c is closed, without waiting.
func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// futureOps are the methods of a Future, each returning what it observed.
var futureOps = []struct {
	name string
	do   func(f *executor.Future[int], calls *int) string
}{
	{"Cancel", func(f *executor.Future[int], _ *int) string { return fmt.Sprint(f.Cancel()) }},
	{"Cancelled", func(f *executor.Future[int], _ *int) string { return fmt.Sprint(f.Cancelled()) }},
	{"Running", func(f *executor.Future[int], _ *int) string { return fmt.Sprint(f.Running()) }},
	{"Done", func(f *executor.Future[int], _ *int) string { return fmt.Sprint(f.Done()) }},
	{"DoneChan", func(f *executor.Future[int], _ *int) string { return fmt.Sprint(isClosed(f.DoneChan())) }},
	{"Result", func(f *executor.Future[int], _ *int) string {
		v, err := f.Result(cancelledCtx())
		return fmt.Sprint(v, err)
	}},
	{"Err", func(f *executor.Future[int], _ *int) string { return fmt.Sprint(f.Err(cancelledCtx())) }},
	{"AddDoneCallback", func(f *executor.Future[int], calls *int) string {
		f.AddDoneCallback(func(*executor.Future[int]) { *calls++ })
		return fmt.Sprint(*calls)
	}},
	{"SetRunningOrNotifyCancel", func(f *executor.Future[int], _ *int) string {
		return fmt.Sprint(f.SetRunningOrNotifyCancel())
	}},
	{"SetResult", func(f *executor.Future[int], _ *int) string { return fmt.Sprint(f.SetResult(7)) }},
	{"SetErr", func(f *executor.Future[int], _ *int) string { return fmt.Sprint(f.SetErr(errOdd)) }},
	{"SetErr(nil)", func(f *executor.Future[int], _ *int) string { return fmt.Sprint(f.SetErr(nil)) }},
}

// A zero Future is concurrent.futures.Future(): random sequences of its
// methods observe exactly what they observe on NewFuture's.
func TestZeroFutureIsNewFuture(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 5))
	for seq := range 500 {
		var zero executor.Future[int]
		made := executor.NewFuture[int]()
		var zeroCalls, madeCalls int
		var trace []string
		for range r.IntN(8) + 1 {
			op := futureOps[r.IntN(len(futureOps))]
			got, want := op.do(&zero, &zeroCalls), op.do(made, &madeCalls)
			trace = append(trace, op.name)
			if got != want {
				t.Fatalf("sequence %d %v: zero Future says %q; NewFuture's says %q", seq, trace, got, want)
			}
		}
	}
}

// A zero Future's Result waits for a result set from another goroutine,
// and a DoneChan taken before the result is closed by it.
func TestZeroFutureWaits(t *testing.T) {
	for _, early := range []bool{false, true} {
		t.Run(fmt.Sprintf("DoneChan first %v", early), func(t *testing.T) {
			var f executor.Future[string]
			var done <-chan struct{}
			if early {
				done = f.DoneChan()
			}
			go func() { _ = f.SetResult("ok") }()
			var v string
			var err error
			exectest.Within(t, time.Minute, "Result of a zero Future", func() { v, err = f.Result(context.Background()) })
			if v != "ok" || err != nil {
				t.Errorf("Result() = %q, %v; want ok, nil", v, err)
			}
			if !early {
				done = f.DoneChan()
			}
			if !isClosed(done) {
				t.Errorf("DoneChan() not closed after SetResult")
			}
		})
	}
	var f executor.Future[int]
	if !f.Cancel() {
		t.Fatalf("Cancel() on a zero Future = false; want true")
	}
	if _, err := f.Result(context.Background()); !errors.Is(err, executor.ErrCancelled) || !isClosed(f.DoneChan()) {
		t.Errorf("cancelled zero Future: Result() = %v, DoneChan closed %v; want ErrCancelled, true", err, isClosed(f.DoneChan()))
	}
}

// A zero ThreadPool is ThreadPoolExecutor(): DefaultThreadWorkers
// goroutines, calls run, Map works, and Shutdown ends it as NewThreadPool's.
func TestZeroThreadPool(t *testing.T) {
	var p executor.ThreadPool
	if got, want := p.MaxWorkers(), executor.DefaultThreadWorkers(); got != want {
		t.Errorf("MaxWorkers() = %d; want %d", got, want)
	}
	if v, err := res(executor.SubmitFunc(&p, func() (string, error) { return "hi", nil })); v != "hi" || err != nil {
		t.Errorf("Result() = %q, %v; want hi, nil", v, err)
	}
	if v, err := res(executor.Submit(&p, square.Bind(5))); v != 25 || err != nil {
		t.Errorf("Result() = %v, %v; want 25", v, err)
	}
	var got []int
	for v, err := range executor.Map(context.Background(), &p, square.Bind, []int{1, 2, 3}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, v)
	}
	if diff := cmp.Diff([]int{1, 4, 9}, got); diff != "" {
		t.Errorf("Map() (-want +got):\n%s", diff)
	}
	exectest.Within(t, time.Minute, "Shutdown(wait) of a zero pool", func() { p.Shutdown(true, false) })
	if _, err := executor.SubmitFunc(&p, func() (int, error) { return 0, nil }); !errors.Is(err, executor.ErrShutdown) {
		t.Errorf("Submit() after Shutdown = %v; want ErrShutdown", err)
	}
	if n := exectest.ThreadPoolWorkers(); n != 0 {
		t.Errorf("%d worker goroutines after Shutdown(wait); want 0", n)
	}
}

// A zero ThreadPool shut down before any use refuses work, with or without
// waiting, and starts nothing.
func TestZeroThreadPoolShutdownFirst(t *testing.T) {
	for _, wait := range []bool{false, true} {
		var p executor.ThreadPool
		p.Shutdown(wait, true)
		if _, err := executor.SubmitFunc(&p, func() (int, error) { return 0, nil }); !errors.Is(err, executor.ErrShutdown) {
			t.Errorf("Shutdown(%v) first, then Submit() = %v; want ErrShutdown", wait, err)
		}
	}
}

// The first use of a zero ThreadPool from many goroutines at once makes
// one pool: every call runs, and at most MaxWorkers at a time.
func TestZeroThreadPoolConcurrentFirstUse(t *testing.T) {
	var p executor.ThreadPool
	const n = 64
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			v, err := res(executor.SubmitFunc(&p, func() (int, error) { return i, nil }))
			if err == nil && v != i {
				err = fmt.Errorf("call %d returned %d", i, v)
			}
			errs <- err
		})
	}
	exectest.Within(t, time.Minute, "calls on a zero pool", wg.Wait)
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if w, max := exectest.ThreadPoolWorkers(), executor.DefaultThreadWorkers(); w > max {
		t.Errorf("%d worker goroutines; want at most %d (one pool)", w, max)
	}
	p.Shutdown(true, false)
}

// Item 6: a ThreadPool dropped without Shutdown (made by NewThreadPool, or
// a zero one) ends its goroutines once the garbage collector finds it
// unreachable; the calls queued when it was dropped still run first.
func TestThreadPoolDroppedWithoutShutdown(t *testing.T) {
	for _, tc := range []struct {
		name string
		make func() *executor.ThreadPool
	}{
		{"NewThreadPool", func() *executor.ThreadPool {
			p, err := executor.NewThreadPool(executor.ThreadPoolOptions{MaxWorkers: 4})
			if err != nil {
				t.Fatal(err)
			}
			return p
		}},
		{"zero", func() *executor.ThreadPool { return new(executor.ThreadPool) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := exectest.ThreadPoolWorkers()
			release := make(chan struct{})
			var queued *executor.Future[int]
			func() {
				p := tc.make()
				// Four calls at once start four goroutines; one more waits
				// in the queue behind them.
				started := make(chan struct{}, 4)
				for range 4 {
					if _, err := executor.SubmitFunc(p, func() (int, error) { started <- struct{}{}; <-release; return 0, nil }); err != nil {
						t.Fatal(err)
					}
				}
				for range 4 {
					<-started
				}
				var err error
				if queued, err = executor.SubmitFunc(p, func() (int, error) { return 5, nil }); err != nil {
					t.Fatal(err)
				}
			}()
			// Collected while its calls run: they, and the queued one, finish.
			runtime.GC()
			runtime.GC()
			close(release)
			var v int
			var err error
			exectest.Within(t, time.Minute, "the call queued in a dropped pool", func() { v, err = queued.Result(context.Background()) })
			if v != 5 || err != nil {
				t.Errorf("queued call = %d, %v; want 5, nil", v, err)
			}
			exectest.WaitThreadPoolWorkers(t, base, "a dropped ThreadPool")
		})
	}
}

// A pool still referenced by its own running call (a call that submits to
// its pool) is not collected under it: the second call runs.
func TestThreadPoolReachableFromItsCallIsKept(t *testing.T) {
	base := exectest.ThreadPoolWorkers()
	release := make(chan struct{})
	var f *executor.Future[int]
	second := make(chan *executor.Future[int], 1)
	func() {
		p, _ := executor.NewThreadPool(executor.ThreadPoolOptions{MaxWorkers: 1})
		var err error
		f, err = executor.SubmitFunc(p, func() (int, error) {
			<-release
			g, err := executor.SubmitFunc(p, func() (int, error) { return 9, nil })
			if err != nil {
				return 0, err
			}
			second <- g // the pool's only worker runs g after this call returns
			return 1, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}()
	runtime.GC()
	runtime.GC()
	close(release)
	if v, err := f.Result(context.Background()); v != 1 || err != nil {
		t.Errorf("call submitting to its own dropped pool = %d, %v; want 1, nil", v, err)
	}
	if v, err := (<-second).Result(context.Background()); v != 9 || err != nil {
		t.Errorf("call it submitted = %d, %v; want 9, nil", v, err)
	}
	exectest.WaitThreadPoolWorkers(t, base, "a dropped ThreadPool whose call submitted to it")
}

// A nil *Func is a zero one: Bind, BindChunk, Call and Name do not
// dereference it, and an executor refuses its call (a nil argument once
// crashed a parent).
func TestNilFuncIsZero(t *testing.T) {
	var f *executor.Func[int, int]
	if _, err := f.Call(1); !errors.Is(err, executor.ErrZeroFunc) {
		t.Errorf("Call of a nil Func: %v, want ErrZeroFunc", err)
	}
	if f.Name() != "" {
		t.Errorf("Name of a nil Func: %q", f.Name())
	}
	var pool executor.ThreadPool
	defer pool.Shutdown(true, false)
	if _, err := executor.Submit(&pool, f.Bind(1)); err == nil {
		t.Error("Submit of a nil Func's call succeeded")
	}
	if _, err := executor.Submit(&pool, f.BindChunk([]int{1})); err == nil {
		t.Error("Submit of a nil Func's chunk succeeded")
	}
}

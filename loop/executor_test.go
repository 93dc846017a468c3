package loop_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/executor/processpool"
	"github.com/asyncgo/asyncgo/loop"
	"go.uber.org/goleak"
)

// Tests of the bridge between the loop and executor (executor_bridge.go):
// WrapFuture, RunInExecutor, ToThread and the default executor. They mirror
// CPython's test_events.py (run_in_executor), test_base_events.py (default
// executor), test_futures.py (wrap_future) and test_threads.py (to_thread),
// and invariant I90 of docs' asyncio reference. Blocking calls are held by
// channels the test controls, never by sleeps.

var errBridge = errors.New("bridge: out of cheese")

func init() { executor.RegisterError(errBridge) }

// Functions that run in ProcessPool workers: registered at package level, so
// the worker (this test binary re-executed, see TestMain) has them too.
var (
	bridgeTriple = executor.Register("loop_test.triple", func(x int) (int, error) { return 3 * x, nil })
	bridgePid    = executor.Register("loop_test.pid", func(struct{}) (int, error) { return os.Getpid(), nil })
	bridgeFail   = executor.Register("loop_test.fail", func(x int) (int, error) {
		return 0, fmt.Errorf("call %d: %w", x, errBridge)
	})
	bridgePanic = executor.Register("loop_test.panic", func(msg string) (int, error) { panic(msg) })
)

// newThreadPool returns a ThreadPool of n goroutines, shut down (waiting)
// when the test ends.
func newThreadPool(t *testing.T, n int) *executor.ThreadPool {
	t.Helper()
	tp, err := executor.NewThreadPool(executor.ThreadPoolOptions{MaxWorkers: n})
	if err != nil {
		t.Fatalf("NewThreadPool() = %v", err)
	}
	t.Cleanup(func() { tp.Shutdown(true, true) })
	return tp
}

// newProcessPool returns a ProcessPool of n workers, shut down when the test
// ends.
func newProcessPool(t *testing.T, n int) *processpool.Pool {
	t.Helper()
	p, err := processpool.New(processpool.Options{MaxWorkers: n})
	if err != nil {
		t.Fatalf("processpool.New() = %v", err)
	}
	t.Cleanup(func() { p.Shutdown(true, true) })
	return p
}

// runReal is runMain on the real clock. Tests that leave the default
// executor to Run's shutdown use it: on the virtual clock, Run's 300s wait
// for the default executor ends as soon as the loop is idle, before the
// pool's goroutines have been joined (see TestRunShutsDownDefaultExecutor).
func runReal(t *testing.T, main func(ctx context.Context) error) {
	t.Helper()
	if _, err := loop.Run(context.Background(), func(ctx context.Context) (struct{}, error) {
		return struct{}{}, main(ctx)
	}); err != nil {
		t.Fatal(err)
	}
}

// gate is a blocking call the test controls: when it starts it tells the
// loop (through CallSoonThreadsafe, the thread-safe door), then it blocks
// its goroutine until release is closed, and returns v.
type gate struct {
	started  *loop.Future[struct{}] // done on the loop once the call runs
	release  chan struct{}
	finished atomic.Bool
}

func newGate(l *loop.Loop) *gate {
	return &gate{started: loop.NewFuture[struct{}](l), release: make(chan struct{})}
}

func (g *gate) call(v string) executor.Call[string] {
	l := g.started.Loop()
	return executor.Local(func() (string, error) {
		_ = l.CallSoonThreadsafe(func() { _ = g.started.SetResult(struct{}{}) })
		<-g.release
		g.finished.Store(true)
		return v, nil
	})
}

// Mirrors test_events.py: test_run_in_executor, on the default executor
// (nil) and on a ThreadPool of one: the call blocks until a task of the
// loop releases it, which only a loop that keeps running can do.
func TestRunInExecutorKeepsLoopRunning(t *testing.T) {
	for _, name := range []string{"default", "ThreadPool(1)"} {
		t.Run(name, func(t *testing.T) {
			var ex executor.Executor
			if name != "default" {
				ex = newThreadPool(t, 1)
			}
			var trace []string
			run := runMain
			if ex == nil {
				run = runReal
			}
			run(t, func(ctx context.Context) error {
				release := make(chan struct{})
				fut := loop.RunInExecutor(ctx, ex, executor.Local(func() (string, error) {
					<-release
					return "yo", nil
				}))
				loop.Spawn(ctx, func(ctx context.Context) (struct{}, error) {
					for i := range 3 {
						trace = append(trace, fmt.Sprint("tick ", i))
						sleep0(ctx)
					}
					trace = append(trace, "release")
					close(release)
					return struct{}{}, nil
				})
				v, err := fut.Await(ctx)
				trace = append(trace, fmt.Sprintf("result %s %v", v, err))
				return nil
			})
			checkTrace(t, []string{"tick 0", "tick 1", "tick 2", "release", "result yo <nil>"}, trace)
		})
	}
}

// test_events.py's test_run_in_executor checks that the call ran on another
// thread; with a ProcessPool it runs in another process.
func TestRunInExecutorProcessPool(t *testing.T) {
	p := newProcessPool(t, 2)
	runMain(t, func(ctx context.Context) error {
		pid, err := loop.RunInExecutor(ctx, p, bridgePid.Bind(struct{}{})).Await(ctx)
		if err != nil {
			return err
		}
		if pid == os.Getpid() {
			t.Errorf("the call ran in the test process (pid %d)", pid)
		}
		var fs []loop.Awaitable[int]
		for i := range 5 {
			fs = append(fs, loop.RunInExecutor(ctx, p, bridgeTriple.Bind(i)))
		}
		got, err := loop.Gather(ctx, fs...).Await(ctx)
		if err != nil {
			return err
		}
		sameAs(t, "Gather of RunInExecutor on a ProcessPool", []int{0, 3, 6, 9, 12}, got)
		return nil
	})
}

// RunInExecutorOn works from a plain callback (no task): loop.run_in_executor
// called from a protocol's data_received, as the reactor does. Its future
// is the loop's, and with a nil executor the default ThreadPool runs it.
func TestRunInExecutorOnFromCallback(t *testing.T) {
	p := newProcessPool(t, 1)
	l := loop.New()
	defer l.Close()
	done := loop.NewFuture[int](l)
	l.CallSoon(func() {
		f := loop.RunInExecutorOn(l, p, bridgeTriple.Bind(14))
		f.AddDoneCallback(func(f *loop.Future[int]) {
			v, err := f.Result()
			if err != nil {
				done.SetErr(err)
				return
			}
			g := loop.RunInExecutorOn(l, nil, bridgeTriple.Bind(v))
			g.AddDoneCallback(func(g *loop.Future[int]) {
				w, err := g.Result()
				if err != nil {
					done.SetErr(err)
				} else {
					done.SetResult(w)
				}
			})
		})
	})
	if err := l.RunUntilComplete(done); err != nil {
		t.Fatal(err)
	}
	if v, err := done.Result(); v != 126 || err != nil {
		t.Errorf("got %d, %v; want 126", v, err)
	}
}

// gatedArg's encoding, in the parent, waits until encodeGate closes: it
// stands for a large argument, whose encoding and write take long.
type gatedArg struct{ N int }

var encodeGate chan struct{} // made by the test before the call that reads it

func (a gatedArg) GobEncode() ([]byte, error) {
	<-encodeGate
	return []byte{byte(a.N)}, nil
}

func (a *gatedArg) GobDecode(b []byte) error {
	a.N = int(b[0])
	return nil
}

var bridgeGated = executor.Register("loop_test.gated", func(a gatedArg) (int, error) { return a.N, nil })

// RunInExecutor on a process pool encodes and writes nothing on the loop's
// goroutine, even to an idle worker (DESIGN.md: nothing the loop does
// waits for an executor): the call's argument cannot be encoded until a
// task of the loop lets it, which only a loop that keeps running can do.
// (A goroutine lets it after a minute, a bound for the old behaviour, in
// which the loop hung in RunInExecutor.)
func TestRunInExecutorProcessPoolDoesNotBlockTheLoop(t *testing.T) {
	encodeGate = make(chan struct{})
	var byTask atomic.Bool
	bound := time.AfterFunc(time.Minute, func() { close(encodeGate) })
	defer bound.Stop()
	p := newProcessPool(t, 1)
	runMain(t, func(ctx context.Context) error {
		if _, err := loop.RunInExecutor(ctx, p, bridgeTriple.Bind(1)).Await(ctx); err != nil {
			return err // the worker is up, and idle
		}
		f := loop.RunInExecutor(ctx, p, bridgeGated.Bind(gatedArg{N: 9}))
		loop.Spawn(ctx, func(ctx context.Context) (struct{}, error) {
			if bound.Stop() { // else the bound fired, and closed the gate
				byTask.Store(true)
				close(encodeGate)
			}
			return struct{}{}, nil
		})
		if v, err := f.Await(ctx); v != 9 || err != nil {
			t.Errorf("RunInExecutor() = %d, %v; want 9, nil", v, err)
		}
		return nil
	})
	if !byTask.Load() {
		t.Errorf("the loop was blocked in RunInExecutor until the call's argument could be encoded")
	}
}

// Mirrors test_futures.py: test_wrap_future.
func TestWrapFuture(t *testing.T) {
	tp := newThreadPool(t, 1)
	runMain(t, func(ctx context.Context) error {
		cf, err := executor.SubmitFunc(tp, func() (string, error) { return "oi", nil })
		if err != nil {
			return err
		}
		v, err := loop.WrapFuture(loopOf(ctx), cf).Await(ctx)
		if v != "oi" || err != nil {
			t.Errorf("WrapFuture().Await() = %q, %v; want oi, nil", v, err)
		}
		return nil
	})
}

// Mirrors test_futures.py: test_wrap_future_cancel: cancelling the loop
// future cancels a pending executor future.
func TestWrapFutureCancel(t *testing.T) {
	l := newLoop(t)
	cf := executor.NewFuture[int]()
	f := loop.WrapFuture(l, cf)
	f.Cancel("")
	runBriefly(t, l)
	if !cf.Cancelled() || !f.Cancelled() {
		t.Errorf("cf.Cancelled() = %v, f.Cancelled() = %v; want true, true", cf.Cancelled(), f.Cancelled())
	}
}

// Mirrors test_futures.py: test_wrap_future_cancel2: an executor future
// that finished first keeps its result when the loop future is cancelled.
func TestWrapFutureCancelAfterResult(t *testing.T) {
	l := newLoop(t)
	cf := executor.NewFuture[int]()
	f := loop.WrapFuture(l, cf)
	_ = cf.SetResult(42)
	f.Cancel("")
	runBriefly(t, l)
	if cf.Cancelled() {
		t.Errorf("cf.Cancelled() = true; want false")
	}
	if v, err := cf.Result(context.Background()); v != 42 || err != nil {
		t.Errorf("cf.Result() = %d, %v; want 42, nil", v, err)
	}
	if !f.Cancelled() {
		t.Errorf("f.Cancelled() = false; want true")
	}
}

// The other direction (asyncio's _copy_future_state): the executor
// future's cancellation, error or result reaches the loop future through
// CallSoonThreadsafe, that is in the loop's next iteration.
func TestWrapFutureCopiesState(t *testing.T) {
	l := newLoop(t)
	cancelled := executor.NewFuture[int]()
	failed := executor.NewFuture[int]()
	succeeded := executor.NewFuture[int]()
	fc := loop.WrapFuture(l, cancelled)
	ff := loop.WrapFuture(l, failed)
	fs := loop.WrapFuture(l, succeeded)
	cancelled.Cancel()
	_ = failed.SetErr(errBridge)
	_ = succeeded.SetResult(7)
	if fc.Done() || ff.Done() || fs.Done() {
		t.Fatalf("a loop future completed outside the loop")
	}
	runBriefly(t, l)
	if !fc.Cancelled() {
		t.Errorf("loop future of a cancelled executor future: Cancelled() = false; want true")
	}
	if _, err := ff.Result(); !errors.Is(err, errBridge) {
		t.Errorf("loop future of a failed executor future: Result() = %v; want %v", err, errBridge)
	}
	if v, err := fs.Result(); v != 7 || err != nil {
		t.Errorf("loop future of a finished executor future: Result() = %d, %v; want 7, nil", v, err)
	}
}

// Invariant I90 (asyncio's run_in_executor): cancelling the task that
// awaits a call cancels the executor future while the call waits in the
// pool's queue, so it never runs. The single worker is kept busy by a gate.
func TestRunInExecutorCancelBeforeStart(t *testing.T) {
	tp := newThreadPool(t, 1)
	var ran atomic.Bool
	var cf *executor.Future[int]
	runMain(t, func(ctx context.Context) error {
		g := newGate(loopOf(ctx))
		busy := loop.RunInExecutor(ctx, tp, g.call("busy"))
		if _, err := g.started.Await(ctx); err != nil {
			return err
		}
		var err error
		cf, err = executor.SubmitFunc(tp, func() (int, error) { ran.Store(true); return 1, nil })
		if err != nil {
			return err
		}
		queued := loop.WrapFuture(loopOf(ctx), cf)
		waiter := loop.Spawn(ctx, func(ctx context.Context) (int, error) { return queued.Await(ctx) })
		sleep0(ctx) // the waiter awaits the call
		waiter.Cancel("")
		if _, err := waiter.Await(ctx); !isCancelled(err) {
			t.Errorf("waiter.Await() = %v; want a cancellation", err)
		}
		if !queued.Cancelled() || !cf.Cancelled() {
			t.Errorf("loop future Cancelled() = %v, executor future Cancelled() = %v; want true, true", queued.Cancelled(), cf.Cancelled())
		}
		close(g.release)
		v, err := busy.Await(ctx)
		if v != "busy" || err != nil {
			t.Errorf("busy call = %q, %v; want busy, nil", v, err)
		}
		return nil
	})
	tp.Shutdown(true, false)
	if ran.Load() {
		t.Errorf("a call cancelled while queued ran anyway")
	}
	if _, err := cf.Result(context.Background()); !errors.Is(err, executor.ErrCancelled) {
		t.Errorf("cf.Result() = %v; want %v", err, executor.ErrCancelled)
	}
}

// Invariant I90: "executor job ran despite cancel": cancelling the task
// that awaits a running call does not stop the call, whose result is
// dropped; the executor future is not cancelled.
func TestRunInExecutorCancelRunning(t *testing.T) {
	tp := newThreadPool(t, 1)
	var g *gate
	var cf *executor.Future[string]
	runMain(t, func(ctx context.Context) error {
		l := loopOf(ctx)
		reports := recordHandler(l)
		g = newGate(l)
		var err error
		if cf, err = executor.Submit(tp, g.call("late")); err != nil {
			return err
		}
		f := loop.WrapFuture(l, cf)
		waiter := loop.Spawn(ctx, func(ctx context.Context) (string, error) { return f.Await(ctx) })
		if _, err := g.started.Await(ctx); err != nil {
			return err
		}
		waiter.Cancel("stop")
		if _, err := waiter.Await(ctx); !isCancelled(err) {
			t.Errorf("waiter.Await() = %v; want a cancellation", err)
		}
		if !f.Cancelled() || cf.Cancelled() {
			t.Errorf("loop future Cancelled() = %v, executor future Cancelled() = %v; want true, false", f.Cancelled(), cf.Cancelled())
		}
		if g.finished.Load() {
			t.Errorf("the call finished before it was released")
		}
		// The result arrives on the loop and is dropped there: this later
		// callback, queued by the same goroutine, comes through after it.
		arrived := loop.NewFuture[struct{}](l)
		cf.AddDoneCallback(func(*executor.Future[string]) {
			_ = l.CallSoonThreadsafe(func() { _ = arrived.SetResult(struct{}{}) })
		})
		close(g.release)
		if _, err := arrived.Await(ctx); err != nil {
			return err
		}
		if len(*reports) != 0 {
			t.Errorf("exception handler called: %v", *reports)
		}
		return nil
	})
	if !g.finished.Load() {
		t.Errorf("the running call did not run to its end")
	}
	if v, err := cf.Result(context.Background()); v != "late" || err != nil {
		t.Errorf("cf.Result() = %q, %v; want late, nil", v, err)
	}
}

// Mirrors test_events.py: test_run_in_executor_cancel: the loop future is
// cancelled, the loop closed, and only then does the call finish: its
// completion finds the loop closed and is dropped, with no panic.
func TestRunInExecutorCompletesAfterClose(t *testing.T) {
	tp := newThreadPool(t, 1)
	l := loop.New(loop.WithVirtualClock())
	release := make(chan struct{})
	cf, err := executor.SubmitFunc(tp, func() (int, error) { <-release; return 1, nil })
	if err != nil {
		t.Fatal(err)
	}
	f := loop.WrapFuture(l, cf)
	f.Cancel("")
	runBriefly(t, l)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	close(release)
	tp.Shutdown(true, false)
	if err := l.CallSoonThreadsafe(func() {}); !errors.Is(err, loop.ErrLoopClosed) {
		t.Errorf("CallSoonThreadsafe() on a closed loop = %v; want %v", err, loop.ErrLoopClosed)
	}
	if !f.Cancelled() {
		t.Errorf("f.Cancelled() = false; want true")
	}
}

// Errors and panics of the call arrive as the awaited error (as
// test_threads.py: test_to_thread_exception): a ThreadPool keeps the error
// value itself and turns a panic into *executor.PanicError; a ProcessPool
// delivers an *executor.RemoteError that unwraps to a registered sentinel.
func TestRunInExecutorErrors(t *testing.T) {
	tp := newThreadPool(t, 2)
	pp := newProcessPool(t, 1)
	runMain(t, func(ctx context.Context) error {
		_, err := loop.RunInExecutor(ctx, tp, executor.Local(func() (int, error) { return 0, errBridge })).Await(ctx)
		if err != errBridge {
			t.Errorf("ThreadPool error: Await() = %v; want %v itself", err, errBridge)
		}

		_, err = loop.RunInExecutor(ctx, tp, executor.Local(func() (int, error) { panic("kaboom") })).Await(ctx)
		var pe *executor.PanicError
		if !errors.As(err, &pe) || pe.Value != "kaboom" || len(pe.Stack) == 0 {
			t.Errorf("ThreadPool panic: Await() = %v; want a PanicError(kaboom) with a stack", err)
		}

		_, err = loop.RunInExecutor(ctx, pp, bridgeFail.Bind(4)).Await(ctx)
		var re *executor.RemoteError
		if !errors.As(err, &re) || re.Panic || re.Message != "call 4: "+errBridge.Error() || !errors.Is(err, errBridge) {
			t.Errorf("ProcessPool error: Await() = %#v; want a RemoteError matching errBridge", err)
		}

		_, err = loop.RunInExecutor(ctx, pp, bridgePanic.Bind("kaboom")).Await(ctx)
		if !errors.As(err, &re) || !re.Panic || re.Message != "kaboom" || re.Stack == "" {
			t.Errorf("ProcessPool panic: Await() = %#v; want a RemoteError(kaboom) with Panic and a stack", err)
		}

		// The pool still works.
		if v, err := loop.RunInExecutor(ctx, pp, bridgeTriple.Bind(5)).Await(ctx); v != 15 || err != nil {
			t.Errorf("ProcessPool after a panic: Await() = %d, %v; want 15, nil", v, err)
		}
		return nil
	})
}

// A call the executor refuses (asyncio's run_in_executor raises the
// submit's RuntimeError) fails the returned future at once.
func TestRunInExecutorSubmitErrors(t *testing.T) {
	closedTP := newThreadPool(t, 1)
	closedTP.Shutdown(true, false)
	closedPP := newProcessPool(t, 1)
	closedPP.Shutdown(true, false)
	pp := newProcessPool(t, 1)
	broken, err := executor.NewThreadPool(executor.ThreadPoolOptions{
		MaxWorkers:  1,
		Initializer: func() error { return errors.New("no config") },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer broken.Shutdown(true, false)
	one := executor.Local(func() (int, error) { return 1, nil })

	runMain(t, func(ctx context.Context) error {
		for _, c := range []struct {
			name string
			ex   executor.Executor
			call executor.Call[int]
			want error
		}{
			{"ThreadPool shut down", closedTP, one, executor.ErrShutdown},
			{"ProcessPool shut down", closedPP, bridgeTriple.Bind(1), executor.ErrShutdown},
			{"closure on a ProcessPool", pp, one, executor.ErrNotRegisteredCall},
		} {
			f := loop.RunInExecutor(ctx, c.ex, c.call)
			if !f.Done() {
				t.Errorf("%s: the future is pending; want it failed at once", c.name)
			}
			if _, err := f.Await(ctx); !errors.Is(err, c.want) {
				t.Errorf("%s: Await() = %v; want %v", c.name, err, c.want)
			}
		}

		// A failing initializer breaks the pool under the first call; the
		// next Submit is refused.
		if _, err := loop.RunInExecutor(ctx, broken, one).Await(ctx); !errors.Is(err, executor.ErrBrokenThreadPool) {
			t.Errorf("first call on a breaking pool: Await() = %v; want %v", err, executor.ErrBrokenThreadPool)
		}
		f := loop.RunInExecutor(ctx, broken, one)
		if _, err := f.Await(ctx); !f.Done() || !errors.Is(err, executor.ErrBrokenThreadPool) || !errors.Is(err, executor.ErrBrokenExecutor) {
			t.Errorf("call on a broken pool: Await() = %v; want %v", err, executor.ErrBrokenThreadPool)
		}
		return nil
	})
}

// Mirrors test_threads.py, one subtest per case.
func TestToThread(t *testing.T) {
	t.Run("test_to_thread", func(t *testing.T) {
		runReal(t, func(ctx context.Context) error {
			sum := func(xs []int) (int, error) {
				s := 0
				for _, x := range xs {
					s += x
				}
				return s, nil
			}
			v, err := loop.ToThread(ctx, func() (int, error) { return sum([]int{40, 2}) })
			if v != 42 || err != nil {
				t.Errorf("ToThread(sum) = %d, %v; want 42, nil", v, err)
			}
			return nil
		})
	})
	t.Run("test_to_thread_exception", func(t *testing.T) {
		runReal(t, func(ctx context.Context) error {
			_, err := loop.ToThread(ctx, func() (int, error) { return 0, errBridge })
			if !errors.Is(err, errBridge) {
				t.Errorf("ToThread() = %v; want %v", err, errBridge)
			}
			return nil
		})
	})
	t.Run("test_to_thread_once", func(t *testing.T) {
		var calls atomic.Int32
		runReal(t, func(ctx context.Context) error {
			_, err := loop.ToThread(ctx, func() (struct{}, error) { calls.Add(1); return struct{}{}, nil })
			return err
		})
		if n := calls.Load(); n != 1 {
			t.Errorf("fn called %d times; want 1", n)
		}
	})
	t.Run("test_to_thread_concurrent", func(t *testing.T) {
		var calls atomic.Int32
		runReal(t, func(ctx context.Context) error {
			var ts []loop.Awaitable[struct{}]
			for range 10 {
				ts = append(ts, loop.Spawn(ctx, func(ctx context.Context) (struct{}, error) {
					return loop.ToThread(ctx, func() (struct{}, error) { calls.Add(1); return struct{}{}, nil })
				}))
			}
			_, err := loop.Gather(ctx, ts...).Await(ctx)
			return err
		})
		if n := calls.Load(); n != 10 {
			t.Errorf("fn called %d times; want 10", n)
		}
	})
	t.Run("test_to_thread_args_kwargs", func(t *testing.T) {
		// Arguments travel in the closure.
		var got string
		runReal(t, func(ctx context.Context) error {
			f := func(arg string, something bool) { got = fmt.Sprint(arg, " ", something) }
			_, err := loop.ToThread(ctx, func() (struct{}, error) { f("test", true); return struct{}{}, nil })
			return err
		})
		if got != "test true" {
			t.Errorf("fn called with %q; want %q", got, "test true")
		}
	})
	t.Run("test_to_thread_contextvars", func(t *testing.T) {
		// contextvars are the ctx's values; the closure carries the ctx.
		type key struct{}
		runReal(t, func(ctx context.Context) error {
			ctx = context.WithValue(ctx, key{}, "parrot")
			v, err := loop.ToThread(ctx, func() (any, error) { return ctx.Value(key{}), nil })
			if v != "parrot" || err != nil {
				t.Errorf("ToThread(ctx.Value) = %v, %v; want parrot, nil", v, err)
			}
			return nil
		})
	})
	t.Run("outside a task", func(t *testing.T) {
		if _, err := loop.ToThread(context.Background(), func() (int, error) { return 1, nil }); !errors.Is(err, loop.ErrNotInTask) {
			t.Errorf("ToThread(Background) = %v; want %v", err, loop.ErrNotInTask)
		}
	})
}

// Mirrors test_base_events.py: test_set_default_executor: RunInExecutor
// with a nil executor, and ToThread, use the pool set as default.
func TestSetDefaultExecutor(t *testing.T) {
	var inits atomic.Int32
	tp, err := executor.NewThreadPool(executor.ThreadPoolOptions{
		MaxWorkers:  1,
		Initializer: func() error { inits.Add(1); return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	runReal(t, func(ctx context.Context) error {
		loopOf(ctx).SetDefaultExecutor(tp)
		if _, err := loop.ToThread(ctx, func() (int, error) { return 1, nil }); err != nil {
			return err
		}
		_, err := loop.RunInExecutor(ctx, nil, executor.Local(func() (int, error) { return 2, nil })).Await(ctx)
		return err
	})
	if n := inits.Load(); n != 1 {
		t.Errorf("the default pool started %d workers; want 1", n)
	}
	// Run shut the default executor down.
	if _, err := executor.SubmitFunc(tp, func() (int, error) { return 0, nil }); !errors.Is(err, executor.ErrShutdown) {
		t.Errorf("Submit() after Run = %v; want %v", err, executor.ErrShutdown)
	}
}

// test_default_executor_call_after_shutdown (CPython's _check_default_executor:
// "Executor shutdown has been called"): after ShutdownDefaultExecutor,
// RunInExecutor on the default executor and ToThread fail.
func TestShutdownDefaultExecutorThenRunInExecutor(t *testing.T) {
	runMain(t, func(ctx context.Context) error {
		l := loopOf(ctx)
		if _, err := loop.ToThread(ctx, func() (int, error) { return 1, nil }); err != nil {
			return err
		}
		if err := l.ShutdownDefaultExecutor(ctx, loop.NoTimeout); err != nil {
			t.Errorf("ShutdownDefaultExecutor() = %v; want nil", err)
		}
		called := false
		f := loop.RunInExecutor(ctx, nil, executor.Local(func() (int, error) { called = true; return 1, nil }))
		if _, err := f.Await(ctx); !errors.Is(err, executor.ErrShutdown) {
			t.Errorf("RunInExecutor(nil) after shutdown: Await() = %v; want %v", err, executor.ErrShutdown)
		}
		if _, err := loop.ToThread(ctx, func() (int, error) { called = true; return 1, nil }); !errors.Is(err, executor.ErrShutdown) {
			t.Errorf("ToThread() after shutdown = %v; want %v", err, executor.ErrShutdown)
		}
		if called {
			t.Errorf("a call ran after the default executor was shut down")
		}
		// A second shutdown is a no-op, as asyncio's.
		if err := l.ShutdownDefaultExecutor(ctx, loop.NoTimeout); err != nil {
			t.Errorf("second ShutdownDefaultExecutor() = %v; want nil", err)
		}
		return nil
	})
}

// ShutdownDefaultExecutor waits for a running call without blocking the
// loop: a task of the loop releases the call while the shutdown waits.
func TestShutdownDefaultExecutorWaitsForCalls(t *testing.T) {
	runMain(t, func(ctx context.Context) error {
		l := loopOf(ctx)
		g := newGate(l)
		fut := loop.RunInExecutor(ctx, nil, g.call("done"))
		if _, err := g.started.Await(ctx); err != nil {
			return err
		}
		shut := loop.Spawn(ctx, func(ctx context.Context) (struct{}, error) {
			return struct{}{}, l.ShutdownDefaultExecutor(ctx, loop.NoTimeout)
		})
		sleep0(ctx)
		sleep0(ctx)
		if shut.Done() {
			t.Fatalf("ShutdownDefaultExecutor returned while a call was running")
		}
		close(g.release)
		if _, err := shut.Await(ctx); err != nil {
			t.Errorf("ShutdownDefaultExecutor() = %v; want nil", err)
		}
		// The call's completion came through the loop before the shutdown's.
		if !fut.Done() || !g.finished.Load() {
			t.Errorf("shutdown returned before the call's result arrived")
		}
		if v, err := fut.Await(ctx); v != "done" || err != nil {
			t.Errorf("call = %q, %v; want done, nil", v, err)
		}
		return nil
	})
}

// Mirrors test_base_events.py: test_shutdown_default_executor_timeout. On
// the real clock: on the virtual one, time stands still while the loop
// waits for the pool (see TestVirtualClockWaitsForExecutor); the call is
// held until the test ends, so the 10ms surely pass.
func TestShutdownDefaultExecutorTimeout(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	_, err := loop.Run(context.Background(), func(ctx context.Context) (struct{}, error) {
		l := loopOf(ctx)
		g := newGate(l)
		g.release = release
		loop.RunInExecutor(ctx, nil, g.call("slow"))
		if _, err := g.started.Await(ctx); err != nil {
			return struct{}{}, err
		}
		if err := l.ShutdownDefaultExecutor(ctx, 10*time.Millisecond); !errors.Is(err, loop.ErrExecutorShutdownTimeout) {
			t.Errorf("ShutdownDefaultExecutor(10ms) = %v; want %v", err, loop.ErrExecutorShutdownTimeout)
		}
		return struct{}{}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Run shuts the default executor down as asyncio.run does: it waits for a
// call still running when main returns, and leaves no goroutine behind.
func TestRunShutsDownDefaultExecutor(t *testing.T) {
	for _, c := range []struct {
		name string
		opts []loop.Option
	}{
		{"real clock", nil},
		{"virtual clock", []loop.Option{loop.WithVirtualClock()}},
	} {
		t.Run(c.name, func(t *testing.T) {
			// On the virtual clock, Run's 300s wait must not pass while
			// the pool's goroutines finish: virtual time waits for work
			// running elsewhere.
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			var logged bytes.Buffer
			opts := append([]loop.Option{loop.WithLogger(slog.New(slog.NewTextHandler(&logged, nil)))}, c.opts...)
			var late atomic.Bool
			v, err := loop.Run(context.Background(), func(ctx context.Context) (int, error) {
				n, err := loop.ToThread(ctx, func() (int, error) { return 1, nil })
				if err != nil {
					return 0, err
				}
				// Still running when main returns: released when main's
				// ctx ends, which is when main's task finishes.
				release := make(chan struct{})
				context.AfterFunc(ctx, func() { close(release) })
				loop.RunInExecutor(ctx, nil, executor.Local(func() (struct{}, error) {
					<-release
					late.Store(true)
					return struct{}{}, nil
				}))
				return n, nil
			}, opts...)
			if v != 1 || err != nil {
				t.Errorf("Run() = %d, %v; want 1, nil", v, err)
			}
			if logged.Len() != 0 {
				t.Errorf("Run logged:\n%s", logged.String())
			}
			if !late.Load() {
				t.Errorf("Run returned before the default executor's call finished")
			}
		})
	}
}

// On the virtual clock, time stands still while the loop waits for work
// running elsewhere: a timeout around a call to the pool does not expire
// while the call runs, however long it takes in real time.
func TestVirtualClockWaitsForExecutor(t *testing.T) {
	runMain(t, func(ctx context.Context) error {
		l := loopOf(ctx)
		start := l.Time()
		release := make(chan struct{})
		go func() { <-time.After(20 * time.Millisecond); close(release) }()
		v, err := loop.WaitFor(ctx, loop.RunInExecutor(ctx, nil, executor.Local(func() (int, error) {
			<-release
			return 7, nil
		})), time.Millisecond)
		if v != 7 || err != nil {
			t.Errorf("WaitFor() = %v, %v; want 7, nil", v, err)
		}
		if d := l.Time().Sub(start); d != 0 {
			t.Errorf("virtual time moved %v while waiting for the pool", d)
		}
		return nil
	})
}

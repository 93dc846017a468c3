package loop

import (
	"context"
	"errors"
	"time"

	"github.com/asyncgo/asyncgo/executor"
)

// WrapFuture is asyncio.wrap_future: a loop future that completes when the
// executor future cf does, the completion arriving through
// CallSoonThreadsafe. Cancelling the loop future cancels cf if it has not
// started running.
func WrapFuture[T any](l *Loop, cf *executor.Future[T]) *Future[T] {
	return WrapFutureUndo(l, cf, nil)
}

// WrapFutureUndo is WrapFuture for a result that must not be lost: if cf
// succeeds but the loop future was cancelled before its result reached
// the loop, undo receives the result, on the loop's goroutine, to give
// back what it holds (an item taken from a queue, a lock acquired). A nil
// undo drops the result, as WrapFuture does.
func WrapFutureUndo[T any](l *Loop, cf *executor.Future[T], undo func(T)) *Future[T] {
	f := NewFuture[T](l)
	f.AddDoneCallback(func(f *Future[T]) {
		if f.Cancelled() {
			cf.Cancel()
		}
	})
	l.external++
	cf.AddDoneCallback(func(cf *executor.Future[T]) {
		_ = l.CallSoonThreadsafe(func() {
			l.external--
			if f.Done() {
				if undo != nil && !cf.Cancelled() {
					if v, err := cf.Result(context.Background()); err == nil {
						undo(v)
					}
				}
				return
			}
			if cf.Cancelled() {
				f.cancel("")
				return
			}
			v, err := cf.Result(context.Background())
			if err != nil {
				_ = f.SetErr(err)
			} else {
				_ = f.SetResult(v)
			}
		})
	})
	return f
}

// RunInExecutor is loop.run_in_executor: it submits call to ex (nil means
// the loop's default ThreadPool) and returns a future to await. Awaiting
// never blocks the loop. Cancelling the awaiting task cancels the call if
// it has not started; a running call runs on. A Submit error (shut down,
// broken pool) fails the future. ctx must come from a task of the loop;
// from a callback (a Protocol's, say), use [RunInExecutorOn].
func RunInExecutor[R any](ctx context.Context, ex executor.Executor, call executor.Call[R]) *Future[R] {
	t := taskOf(ctx)
	if t == nil {
		panic(ErrNoRunningLoop)
	}
	return RunInExecutorOn(t.loop, ex, call)
}

// RunInExecutorOn is loop.run_in_executor called on the loop itself, as
// asyncio's method is, for code that has the loop but no task: a
// Protocol's DataReceived, a CallSoon callback. It is RunInExecutor
// otherwise; call it from the loop's goroutine only (asyncio:
// call_soon_threadsafe first).
func RunInExecutorOn[R any](l *Loop, ex executor.Executor, call executor.Call[R]) *Future[R] {
	var cf *executor.Future[R]
	var err error
	switch {
	case ex != nil:
		cf, err = executor.Submit(ex, call)
	case l.execShutdown:
		err = executor.ErrShutdown // asyncio: "Executor shutdown has been called"
	default:
		cf, err = executor.Submit(l.defaultExecutor(), call)
	}
	if err != nil {
		f := NewFuture[R](l)
		_ = f.SetErr(err)
		return f
	}
	return WrapFuture(l, cf)
}

// SetDefaultExecutor is set_default_executor: RunInExecutor with a nil
// executor and ToThread use tp from now on; a nil tp goes back to a
// ThreadPool the loop makes when it first needs one.
//
// The default executor is the loop's to shut down, whoever made it: the
// loop shuts it down at Close (as asyncio does), and the one tp replaces
// at once, without waiting, as Shutdown(false, false): its running and
// queued calls finish, their results still reach the loop, and its
// goroutines then end. Setting the same pool again changes nothing.
// asyncio leaves the replaced executor running; here its idle goroutines
// would stay until the garbage collector found the pool unreachable.
func (l *Loop) SetDefaultExecutor(tp *executor.ThreadPool) {
	old := l.defaultExec
	l.defaultExec = tp
	if old != nil && old != tp {
		old.Shutdown(false, false)
	}
}

func (l *Loop) defaultExecutor() *executor.ThreadPool {
	if l.defaultExec == nil {
		l.defaultExec, _ = executor.NewThreadPool(executor.ThreadPoolOptions{})
	}
	return l.defaultExec
}

// ErrExecutorShutdownTimeout is returned by ShutdownDefaultExecutor when the
// pool's calls outlast the timeout.
var ErrExecutorShutdownTimeout = errors.New("loop: The executor did not finish joining its goroutines within the timeout")

// ShutdownDefaultExecutor is shutdown_default_executor(timeout): it shuts
// the default ThreadPool down and waits, without blocking the loop, until
// its calls have finished or timeout passes (NoTimeout for none). Later
// RunInExecutor calls on the default executor fail.
func (l *Loop) ShutdownDefaultExecutor(ctx context.Context, timeout time.Duration) error {
	if runningTask(ctx) == nil {
		return ErrNotInTask
	}
	l.execShutdown = true
	tp := l.defaultExec
	if tp == nil {
		return nil
	}
	l.defaultExec = nil
	tp.Shutdown(false, false) // refuse new work now; wait below
	done := NewFuture[struct{}](l)
	l.external++
	go func() {
		tp.Shutdown(true, false)
		_ = l.CallSoonThreadsafe(func() {
			l.external--
			releaseWaiter(done)
		})
	}()
	_, err := WaitFor(ctx, Shield[struct{}](done), timeout)
	if errors.Is(err, ErrTimeout) {
		return ErrExecutorShutdownTimeout
	}
	return err
}

// shutdownDefaultExecutor is Run's last step: wait up to 300s, as
// asyncio.run does, for the default executor's calls.
func (l *Loop) shutdownDefaultExecutor() {
	if l.defaultExec == nil {
		return
	}
	t := CreateTask(l, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, l.ShutdownDefaultExecutor(ctx, 300*time.Second)
	})
	if err := l.RunUntilComplete(t); err != nil {
		l.logger.Warn(err.Error())
	}
}

package executor

import (
	"context"
	"errors"
	"fmt"
	"iter"

	"github.com/asyncgo/asyncgo/internal/wire"
)

// Errors of executors, as concurrent.futures' exceptions.
var (
	// ErrShutdown is "cannot schedule new futures after shutdown".
	ErrShutdown = errors.New("executor: cannot schedule new futures after shutdown")
	// ErrBrokenExecutor is concurrent.futures.BrokenExecutor; the two
	// below wrap it.
	ErrBrokenExecutor = errors.New("executor: broken executor")
	// ErrBrokenProcessPool is BrokenProcessPool: a worker process died, so
	// every pending future failed and the pool takes no more work.
	ErrBrokenProcessPool = fmt.Errorf("%w: process pool", ErrBrokenExecutor)
	// ErrBrokenThreadPool is BrokenThreadPool: an initializer failed.
	ErrBrokenThreadPool = fmt.Errorf("%w: thread pool", ErrBrokenExecutor)
	// ErrNotRegistered is a call of a function the child process does not
	// know: it was registered after Init ran, or only in the parent.
	ErrNotRegistered = errors.New("executor: function not registered in the child process")
	// ErrNotRegisteredCall is a call a ProcessPool cannot run: a plain Go
	// function (Local) cannot cross into another process.
	ErrNotRegisteredCall = errors.New("executor: a ProcessPool runs only registered functions, not closures")
)

// Executor is concurrent.futures.Executor: something that runs calls and
// returns futures of their results. Submit, SubmitFunc and Map use it; the
// implementations are ThreadPool and ProcessPool.
type Executor interface {
	// Shutdown is shutdown(wait, cancel_futures): no more work is
	// accepted; with cancelFutures, work not yet started is cancelled; with
	// wait, Shutdown returns once everything else has finished and every
	// goroutine and process of the executor is gone.
	Shutdown(wait, cancelFutures bool)
	submit(j job) error
}

// Call is one call an executor can run: a registered function with its
// argument (Func.Bind), which any executor can run, or a plain function
// (Local), which only a ThreadPool can.
type Call[R any] struct {
	name  string
	arg   any
	local func() (R, error)
}

// Local wraps a plain Go function as a Call, for a ThreadPool.
func Local[R any](fn func() (R, error)) Call[R] { return Call[R]{local: fn} }

// Name returns the registered name of the function, or "" for Local.
func (c Call[R]) Name() string { return c.name }

// job is a Call with its future, as executors handle it.
type job interface {
	start() bool // pending -> running; false if cancelled
	pollWait()   // Result waits in the netpoller (before the future is shared)
	runLocal()
	callName() string
	callArg() any
	decode(rd *wire.Reader) error // reads the result, for succeed
	succeed()                     // completes the future with the decoded result
	fail(err error)
	cancel() bool
}

type jobOf[R any] struct {
	f *Future[R]
	c Call[R]
	v R // the decoded result of a ProcessPool call
}

func (j *jobOf[R]) start() bool      { return j.f.SetRunningOrNotifyCancel() }
func (j *jobOf[R]) pollWait()        { j.f.pollWait = true }
func (j *jobOf[R]) callName() string { return j.c.name }
func (j *jobOf[R]) callArg() any     { return j.c.arg }
func (j *jobOf[R]) cancel() bool     { return j.f.Cancel() }
func (j *jobOf[R]) fail(err error)   { _ = j.f.SetErr(err) }

func (j *jobOf[R]) runLocal() {
	v, err := callSafely(j.c.local)
	if err != nil {
		_ = j.f.SetErr(err)
	} else {
		_ = j.f.SetResult(v)
	}
}

func (j *jobOf[R]) decode(rd *wire.Reader) error { return rd.Decode(&j.v) }

func (j *jobOf[R]) succeed() {
	v := j.v
	var zero R
	j.v = zero
	_ = j.f.SetResult(v)
}

// Submit is executor.submit: it schedules c and returns its future. It
// fails with ErrShutdown after Shutdown and with an ErrBrokenExecutor error
// on a broken pool.
func Submit[R any](ex Executor, c Call[R]) (*Future[R], error) {
	if c.local == nil {
		return nil, errors.New("executor: empty Call")
	}
	f := NewFuture[R]()
	if err := ex.submit(&jobOf[R]{f: f, c: c}); err != nil {
		return nil, err
	}
	return f, nil
}

// SubmitFunc is Submit(ex, Local(fn)).
func SubmitFunc[R any](ex Executor, fn func() (R, error)) (*Future[R], error) {
	return Submit(ex, Local(fn))
}

// Map is executor.map: it submits bind(a) for every a at once, then yields
// the results in argument order, waiting for each. At the first error (the
// call's own, or ctx's if it ends first) it yields the error and stops, and
// the calls not yet started are cancelled, as when a Python map iterator is
// closed; breaking out of the loop does the same. bind is a registered
// function's Bind method, or LocalFunc(fn).
func Map[A, R any](ctx context.Context, ex Executor, bind func(A) Call[R], args []A) iter.Seq2[R, error] {
	var fs []*Future[R]
	var submitErr error
	for _, a := range args {
		f, err := Submit(ex, bind(a))
		if err != nil {
			submitErr = err
			break
		}
		fs = append(fs, f)
	}
	return func(yield func(R, error) bool) {
		defer func() {
			for _, f := range fs {
				f.Cancel()
			}
		}()
		for len(fs) > 0 {
			v, err := fs[0].Result(ctx)
			if err != nil {
				fs[0].Cancel() // as Python's _result_or_cancel
			}
			fs = fs[1:]
			if !yield(v, err) || err != nil {
				return
			}
		}
		if submitErr != nil {
			var zero R
			yield(zero, submitErr)
		}
	}
}

// LocalFunc turns fn into a binder for Map on a ThreadPool.
func LocalFunc[A, R any](fn func(A) (R, error)) func(A) Call[R] {
	return func(a A) Call[R] { return Local(func() (R, error) { return fn(a) }) }
}

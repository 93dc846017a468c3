package executor

import (
	"context"
	"errors"
	"fmt"
	"iter"
)

// Errors of executors, as concurrent.futures' exceptions.
var (
	// ErrShutdown is "cannot schedule new futures after shutdown".
	ErrShutdown = errors.New("executor: cannot schedule new futures after shutdown")
	// ErrBrokenExecutor is concurrent.futures.BrokenExecutor; the two
	// below wrap it.
	ErrBrokenExecutor = errors.New("executor: broken executor")
	// ErrBrokenProcessPool is BrokenProcessPool: a worker process died, so
	// every pending future failed and the pool takes no more work (see
	// package processpool).
	ErrBrokenProcessPool = fmt.Errorf("%w: process pool", ErrBrokenExecutor)
	// ErrBrokenThreadPool is BrokenThreadPool: an initializer failed.
	ErrBrokenThreadPool = fmt.Errorf("%w: thread pool", ErrBrokenExecutor)
	// ErrNotRegistered is a call of a function the child process does not
	// know: it was registered after Init ran, or only in the parent.
	ErrNotRegistered = errors.New("executor: function not registered in the child process")
	// ErrNotRegisteredCall is a call a process pool cannot run: a plain Go
	// function (Local) cannot cross into another process.
	ErrNotRegisteredCall = errors.New("executor: a ProcessPool runs only registered functions, not closures")
	// ErrGoexit is the Value of the *PanicError a call fails with when it
	// calls runtime.Goexit (t.FailNow in a test, for one): the call ends
	// there, as it would on a panic, and so does its future.
	ErrGoexit = errors.New("executor: the call called runtime.Goexit")
)

// Executor is concurrent.futures.Executor: something that runs calls and
// returns futures of their results. Users call Submit, SubmitFunc and Map
// with it and Shutdown on it; the implementations are ThreadPool here and
// processpool.Pool, and another package may add more: SubmitJob is the
// whole contract (see Job).
type Executor interface {
	// Shutdown is shutdown(wait, cancel_futures): no more work is
	// accepted; with cancelFutures, work not yet started is cancelled; with
	// wait, Shutdown returns once everything else has finished and every
	// goroutine and process of the executor is gone. Called with wait from
	// one of the executor's own goroutines (a done callback, or a call
	// running on a ThreadPool), it waits for everything but that
	// goroutine, which ends once the callback or call returns: Python
	// raises "cannot join current thread" there.
	Shutdown(wait, cancelFutures bool)
	// SubmitJob schedules j, or returns why it cannot (ErrShutdown, an
	// ErrBrokenExecutor error, ErrNotRegisteredCall) without touching j's
	// future. Submit calls it; users do not. Once it returns nil, the
	// executor must complete j's future, whatever happens: run it, fail
	// it, or let it be cancelled.
	SubmitJob(j Job) error
}

// Job is one submitted call with its future, as an Executor sees it. An
// executor that runs calls in this process calls Start and then RunLocal;
// one that runs them elsewhere sends Name and Arg there, calls Start when
// it hands the call over, and completes the future with Fail, or with
// Decode and then Succeed. Each method may be called from any goroutine,
// one at a time.
type Job interface {
	// Name is the registered function's name, "" for a Local call.
	Name() string
	// Arg is the registered function's argument, to encode (nil for a
	// Local call).
	Arg() any
	// Start is set_running_or_notify_cancel: it marks the future running
	// and returns true, or returns false if it was cancelled, and then the
	// call must not run.
	Start() bool
	// Cancel cancels the future if it has not started (Future.Cancel).
	Cancel() bool
	// Fail completes the future with err; it does nothing on a future
	// already done.
	Fail(err error)
	// Decode reads the call's result from d into the job, without
	// completing the future; Succeed then completes it. The split lets an
	// executor give its worker the next call between the two.
	Decode(d Decoder) error
	// Succeed completes the future with the result Decode read.
	Succeed()
	// RunLocal runs the call in this goroutine and completes the future
	// with its result; a panic, or runtime.Goexit, fails it with a
	// *PanicError. After a Goexit, RunLocal does not return: the goroutine
	// ends, as Goexit demands, and the executor must replace it.
	RunLocal()
	// WaitInNetpoller makes the future's Result wait on an eventfd in Go's
	// netpoller rather than on a channel, which is faster when the future
	// is completed by a goroutine that reads another process's answer (see
	// Future.Result). Call it in SubmitJob, before the future is shared.
	WaitInNetpoller()
}

// Decoder reads one value into v, a pointer: how a call's argument and
// result arrive from another process (a gob.Decoder, or internal/wire's
// framed stream). Package executor does not encode anything itself.
type Decoder interface {
	Decode(v any) error
}

// Call is one call an executor can run: a registered function with its
// argument (Func.Bind), which any executor can run, or a plain function
// (Local), which only an executor of this process can.
type Call[R any] struct {
	name  string
	arg   any
	local func() (R, error)
}

// Local wraps a plain Go function as a Call, for a ThreadPool.
func Local[R any](fn func() (R, error)) Call[R] { return Call[R]{local: fn} }

// Name returns the registered name of the function, or "" for Local.
func (c Call[R]) Name() string { return c.name }

// Arg returns the argument of a registered function's call, or nil for
// Local: what an executor running calls elsewhere encodes. For a function
// whose argument type is an interface (any), it is a pointer to the
// argument, so that gob sends an interface value, with the name its
// concrete type was gob.Register'ed under, which the other side decodes
// into the function's argument; the concrete value alone it could not.
func (c Call[R]) Arg() any { return c.arg }

// IsZero reports whether c is the zero Call, which names no function (an
// option left unset).
func (c Call[R]) IsZero() bool { return c.local == nil }

// jobOf is Submit's Job.
type jobOf[R any] struct {
	f *Future[R]
	c Call[R]
	v R // the decoded result of a call run elsewhere
}

func (j *jobOf[R]) Name() string     { return j.c.name }
func (j *jobOf[R]) Arg() any         { return j.c.arg }
func (j *jobOf[R]) Start() bool      { return j.f.SetRunningOrNotifyCancel() }
func (j *jobOf[R]) Cancel() bool     { return j.f.Cancel() }
func (j *jobOf[R]) Fail(err error)   { _ = j.f.SetErr(err) }
func (j *jobOf[R]) WaitInNetpoller() { j.f.pollWait = true }

func (j *jobOf[R]) RunLocal() {
	returned := false
	defer func() {
		if !returned { // runtime.Goexit: the goroutine ends, the future must not wait for it
			_ = j.f.SetErr(NewPanicError(0, ErrGoexit))
		}
	}()
	v, err := callSafely(j.c.local)
	returned = true
	if err != nil {
		_ = j.f.SetErr(err)
	} else {
		_ = j.f.SetResult(v)
	}
}

func (j *jobOf[R]) Decode(d Decoder) error { return d.Decode(&j.v) }

func (j *jobOf[R]) Succeed() {
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
	if err := ex.SubmitJob(&jobOf[R]{f: f, c: c}); err != nil {
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

// BrokenError is the error of a broken executor, for implementers of
// Executor too: it matches Base (ErrBrokenThreadPool, ErrBrokenProcessPool,
// or another sentinel wrapping ErrBrokenExecutor) with errors.Is, and keeps
// the Cause.
type BrokenError struct {
	Base  error
	Msg   string // the whole message but the cause, package prefix included
	Cause error
}

func (e *BrokenError) Error() string {
	if e.Cause == nil {
		return e.Msg
	}
	return e.Msg + ": " + e.Cause.Error()
}

// Unwrap returns Base, and Cause if it is set.
func (e *BrokenError) Unwrap() []error {
	if e.Cause == nil {
		return []error{e.Base}
	}
	return []error{e.Base, e.Cause}
}

package executor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
)

// ErrCancelled is concurrent.futures.CancelledError: the future was
// cancelled before it ran. It wraps context.Canceled. It is not
// loop.ErrCancelled, just as the two Python classes differ; loop.WrapFuture
// turns one into the other.
var ErrCancelled = fmt.Errorf("executor: cancelled: %w", context.Canceled)

// ErrInvalidState is concurrent.futures.InvalidStateError: a result set on
// a future that is already done.
var ErrInvalidState = errors.New("executor: invalid state")

type state uint8

const (
	pending state = iota
	running
	cancelled
	finished
)

// Future is concurrent.futures.Future: the result of work running
// elsewhere. Every method is safe from any goroutine.
//
// The zero Future is a pending future, as concurrent.futures.Future() and
// NewFuture make: ready to use. A Future must not be copied after first
// use.
type Future[T any] struct {
	mu        sync.Mutex
	state     state
	result    T
	err       error
	ch        chan struct{}                 // the done channel, once made
	done      atomic.Pointer[chan struct{}] // &ch, or &closedChan; nil until a zero Future needs one
	callbacks []func(*Future[T])
	// pollWait makes Result wait in the netpoller (see waker.go); set by
	// Job.WaitInNetpoller before the future is shared.
	pollWait bool
	wakers   []*waker // Result waiters parked in the netpoller
}

// NewFuture returns a pending future, for implementers of Executor.
func NewFuture[T any]() *Future[T] {
	f := &Future[T]{ch: make(chan struct{})}
	f.done.Store(&f.ch)
	return f
}

// closedChan is the done channel of a zero Future completed before anyone
// asked for its channel.
var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// doneChan returns the done channel, making it for a zero Future.
func (f *Future[T]) doneChan() chan struct{} {
	if p := f.done.Load(); p != nil {
		return *p
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if p := f.done.Load(); p != nil {
		return *p
	}
	if f.state >= cancelled {
		f.done.Store(&closedChan)
	} else {
		f.ch = make(chan struct{})
		f.done.Store(&f.ch)
	}
	return *f.done.Load()
}

// Cancel cancels the future if it has not started running and returns true;
// a running or finished future is left alone and Cancel returns false (an
// already cancelled one returns true).
func (f *Future[T]) Cancel() bool {
	f.mu.Lock()
	switch f.state {
	case running, finished:
		f.mu.Unlock()
		return false
	case cancelled:
		f.mu.Unlock()
		return true
	}
	f.state = cancelled
	f.err = ErrCancelled
	return f.completeLocked()
}

// completeLocked closes the future, releases the lock and runs the
// callbacks in this goroutine.
func (f *Future[T]) completeLocked() bool {
	if p := f.done.Load(); p == nil {
		f.done.Store(&closedChan) // a zero Future nobody waited on
	} else {
		close(*p)
	}
	cbs := f.callbacks
	f.callbacks = nil
	ws := f.wakers
	f.wakers = nil
	f.mu.Unlock()
	for _, w := range ws {
		w.wake()
	}
	for _, cb := range cbs {
		f.runCallback(cb)
	}
	return true
}

func (f *Future[T]) runCallback(cb func(*Future[T])) {
	defer func() {
		if r := recover(); r != nil {
			slog.Error("executor: exception calling callback for future", "panic", r)
		}
	}()
	cb(f)
}

// Cancelled reports whether the future was cancelled.
func (f *Future[T]) Cancelled() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state == cancelled
}

// Running reports whether the work is running now.
func (f *Future[T]) Running() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state == running
}

// Done reports whether the future finished or was cancelled.
func (f *Future[T]) Done() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state >= cancelled
}

// DoneChan returns a channel closed when the future is done.
func (f *Future[T]) DoneChan() <-chan struct{} { return f.doneChan() }

// Result is result(timeout): it waits until the future is done or ctx ends,
// and returns the value and error. If ctx ends first it returns ctx's error
// (Python's TimeoutError) and the future is not cancelled. On a process
// pool's future (see Job.WaitInNetpoller) it waits in the netpoller on an
// eventfd, which hands the result over much faster than a channel (see
// waker.go); at most 256 waiters at a time do so, the others wait on the
// channel.
func (f *Future[T]) Result(ctx context.Context) (T, error) {
	done := f.doneChan()
	if f.pollWait {
		select {
		case <-done:
		default:
			f.pollUntilDone(ctx, done)
		}
	}
	select {
	case <-done:
	case <-ctx.Done():
		select {
		case <-done: // done too: the result wins, as result(timeout=0)
		default:
			var zero T
			return zero, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.result, f.err
}

// pollUntilDone waits in the netpoller until f is done or ctx ends. If no
// waker can be had it returns at once, and Result waits on the channel.
func (f *Future[T]) pollUntilDone(ctx context.Context, done <-chan struct{}) {
	if ctx.Err() != nil {
		return
	}
	w := getWaker()
	if w == nil {
		return
	}
	defer putWaker(w)
	f.mu.Lock()
	if f.state >= cancelled {
		f.mu.Unlock()
		return
	}
	f.wakers = append(f.wakers, w)
	f.mu.Unlock()
	if ctx.Done() != nil {
		stop := context.AfterFunc(ctx, w.wake)
		defer stop()
	}
	for w.wait() == nil && ctx.Err() == nil {
		select {
		case <-done:
			return // completeLocked took w off the list
		default: // a wake left over from w's previous waiter
		}
	}
	f.mu.Lock()
	for i, x := range f.wakers {
		if x == w {
			f.wakers = append(f.wakers[:i], f.wakers[i+1:]...)
			break
		}
	}
	f.mu.Unlock()
}

// Err is exception(timeout): Result's error only.
func (f *Future[T]) Err(ctx context.Context) error {
	_, err := f.Result(ctx)
	return err
}

// AddDoneCallback is add_done_callback: fn(f) runs in the goroutine that
// completes the future, or at once in this one if it is already done. A
// panic in fn is logged and ignored.
func (f *Future[T]) AddDoneCallback(fn func(*Future[T])) {
	f.mu.Lock()
	if f.state < cancelled {
		f.callbacks = append(f.callbacks, fn)
		f.mu.Unlock()
		return
	}
	f.mu.Unlock()
	f.runCallback(fn)
}

// SetRunningOrNotifyCancel marks the future running and returns true, or
// returns false if it was cancelled (the work must then not run). Calling
// it on a running or finished future is an error, as in Python, and
// returns false.
func (f *Future[T]) SetRunningOrNotifyCancel() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.state != pending {
		return false
	}
	f.state = running
	return true
}

// SetResult finishes the future with v. It returns ErrInvalidState if the
// future is already done.
func (f *Future[T]) SetResult(v T) error { return f.set(v, nil) }

// SetErr finishes the future with err (nil is not allowed).
func (f *Future[T]) SetErr(err error) error {
	if err == nil {
		return errors.New("executor: SetErr(nil)")
	}
	var zero T
	return f.set(zero, err)
}

func (f *Future[T]) set(v T, err error) error {
	f.mu.Lock()
	if f.state >= cancelled {
		f.mu.Unlock()
		return ErrInvalidState
	}
	f.state = finished
	f.result, f.err = v, err
	f.completeLocked()
	return nil
}

package loop

import (
	"context"
	"errors"
	"time"
)

type timeoutState uint8

const (
	timeoutCreated timeoutState = iota
	timeoutEntered
	timeoutExpiring
	timeoutExpired
	timeoutExited
)

// Errors of a Timeout used in the wrong state; asyncio raises RuntimeError
// with these messages.
var (
	ErrTimeoutEntered    = errors.New("loop: Timeout has already been entered")
	ErrTimeoutNotEntered = errors.New("loop: Timeout has not been entered")
	ErrTimeoutFinished   = errors.New("loop: Cannot change state of finished Timeout")
)

// Timeout is asyncio.Timeout, the scope asyncio.timeout() and timeout_at()
// return: Do runs a function in the running task under a deadline. When the
// deadline passes the task is cancelled; Do turns that cancellation into
// ErrTimeout once the function has returned. A cancellation from elsewhere
// stays a cancellation, and nested timeouts convert only their own.
//
// The deadline cancels the task, not the task's ctx (a Go context cannot be
// un-cancelled, and the task goes on after the timeout); the ctx Do gives
// its body reports the deadline and ends with it (see Do).
//
// The zero Timeout is asyncio.Timeout(None): Do runs its function with no
// deadline until Reschedule sets one.
type Timeout struct {
	state      timeoutState
	when       time.Time // zero: never
	loop       *Loop
	task       *taskCore
	cancelling int32
	soon       Handle
	timer      *TimerHandle
	scope      *scopeCtx // the ctx the body runs with
	err        error
}

// NewTimeout is asyncio.timeout(d): a Timeout whose deadline is d from now
// on the loop of ctx. NoTimeout gives one that never expires until
// Reschedule arms it. d <= 0 expires at the first await inside Do.
func NewTimeout(ctx context.Context, d time.Duration) *Timeout {
	t := taskOf(ctx)
	if t == nil {
		return &Timeout{err: ErrNoRunningLoop}
	}
	tm := &Timeout{loop: t.loop}
	if d != NoTimeout {
		tm.when = tm.loop.Time().Add(d)
	}
	return tm
}

// NewTimeoutAt is asyncio.timeout_at(when): when is on the loop's clock
// (Loop.Time); the zero time means never.
func NewTimeoutAt(when time.Time) *Timeout { return &Timeout{when: when} }

// WithTimeout runs body under asyncio.timeout(d): it is
// NewTimeout(ctx, d).Do(ctx, body).
func WithTimeout(ctx context.Context, d time.Duration, body func(ctx context.Context) error) error {
	return NewTimeout(ctx, d).Do(ctx, body)
}

// WithTimeoutAt runs body under asyncio.timeout_at(when).
func WithTimeoutAt(ctx context.Context, when time.Time, body func(ctx context.Context) error) error {
	return NewTimeoutAt(when).Do(ctx, body)
}

// When returns the deadline, or the zero time if there is none.
func (tm *Timeout) When() time.Time { return tm.when }

// Expired reports whether the deadline passed while the scope was entered.
func (tm *Timeout) Expired() bool {
	return tm.state == timeoutExpiring || tm.state == timeoutExpired
}

// Reschedule moves the deadline (the zero time removes it). It works only
// inside Do, from the loop's goroutine.
func (tm *Timeout) Reschedule(when time.Time) error {
	switch tm.state {
	case timeoutEntered:
	case timeoutCreated:
		return ErrTimeoutNotEntered
	default:
		return ErrTimeoutFinished
	}
	tm.when = when
	tm.scope.setDeadline(when)
	tm.cancelHandles()
	if when.IsZero() {
		return nil
	}
	if !when.After(tm.loop.Time()) {
		tm.soon = tm.loop.CallSoon(tm.onTimeout)
	} else {
		tm.timer = tm.loop.CallAt(when, tm.onTimeout)
	}
	return nil
}

func (tm *Timeout) cancelHandles() {
	tm.soon.Cancel()
	tm.soon = Handle{}
	if tm.timer != nil {
		tm.timer.Cancel()
		tm.timer = nil
	}
}

func (tm *Timeout) onTimeout() {
	tm.task.cancel("", false)
	tm.scope.end(&errDeadline)
	tm.state = timeoutExpiring
	tm.soon, tm.timer = Handle{}, nil
}

// Do enters the scope, runs body in the running task of ctx, and leaves the
// scope: `async with timeout: await body()`. It returns body's error, or,
// if the deadline cancelled body, a [*TimeoutError] (it matches ErrTimeout;
// its Cause is the cancellation body returned). A Timeout can be entered
// once.
//
// The ctx body receives reports the deadline through Deadline (the earlier
// of the Timeout's and ctx's), so a net/http or gRPC call made with it
// sees the deadline, and it ends with context.DeadlineExceeded when the
// deadline passes, stopping such calls. Awaits on it follow asyncio: the
// expiry cancels the task at its current await, and an await made after
// that (cleanup that catches the cancellation) still waits as usual. It
// ends with context.Canceled once Do returns.
func (tm *Timeout) Do(ctx context.Context, body func(ctx context.Context) error) error {
	if tm.err != nil {
		return tm.err
	}
	if tm.state != timeoutCreated {
		return ErrTimeoutEntered
	}
	t := runningTask(ctx)
	if t == nil {
		return ErrNotInTask
	}
	if tm.loop == nil {
		tm.loop = t.loop
	}
	tm.state = timeoutEntered
	tm.task = t
	tm.cancelling = t.numCancels
	tm.scope = &scopeCtx{parent: ctx, task: t, tm: tm}
	_ = tm.Reschedule(tm.when)
	exited := false
	defer func() {
		// The body's ctx ends, as with the cancel of context.WithTimeout.
		tm.scope.exited.Store(true)
		tm.scope.end(&errCanceled)
		if !exited { // body panicked: disarm and let the panic go on
			tm.cancelHandles()
			if tm.state == timeoutExpiring {
				tm.task.uncancel() // withdraw our own cancellation
			}
			tm.state = timeoutExited
		}
	}()
	err := body(tm.scope)
	exited = true
	return tm.exit(err)
}

func (tm *Timeout) exit(err error) error {
	tm.cancelHandles()
	switch tm.state {
	case timeoutExpiring:
		tm.state = timeoutExpired
		if tm.task.uncancel() <= int(tm.cancelling) && isCancellation(err) {
			return timeoutFrom(err)
		}
	case timeoutEntered:
		tm.state = timeoutExited
	}
	return err
}

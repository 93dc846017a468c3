package loop

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/asyncgo/asyncgo/executor"
)

// ErrCancelled is asyncio.CancelledError. Every cancellation error the
// package returns matches it with errors.Is, and so does context.Canceled's
// chain: errors.Is(err, context.Canceled) is true for a cancelled task too.
//
// A task whose body returns an error that matches ErrCancelled ends
// cancelled, exactly as a coroutine that lets CancelledError escape.
var ErrCancelled = fmt.Errorf("loop: cancelled: %w", context.Canceled)

// CancelledError is a cancellation carrying the message given to Cancel.
// It matches ErrCancelled and context.Canceled. A task whose function
// returned a bare context.Canceled (ctx.Err()) ends with a CancelledError
// that carries the task's cancel message and wraps what it returned.
type CancelledError struct {
	Msg   string
	cause error
}

func (e *CancelledError) Error() string {
	if e.Msg == "" {
		return "loop: cancelled"
	}
	return "loop: cancelled: " + e.Msg
}

// Unwrap returns ErrCancelled, and the error the task's function returned,
// if the cancellation was built from one.
func (e *CancelledError) Unwrap() []error {
	if e.cause == nil {
		return []error{ErrCancelled}
	}
	return []error{ErrCancelled, e.cause}
}

// isCancellation reports whether err is a cancellation: it matches
// context.Canceled (so ErrCancelled) and is not a panic. A task that
// returns one ends cancelled; TaskGroup and Timeout let it through.
func isCancellation(err error) bool {
	return err != nil && errors.Is(err, context.Canceled) && !isPanic(err)
}

func cancelledError(msg string) error {
	if msg == "" {
		return errCancelledNoMsg
	}
	return &CancelledError{Msg: msg}
}

var errCancelledNoMsg = &CancelledError{}

// CancelMessage returns the message of a cancellation error, or "" if err is
// not one or carries none (asyncio's CancelledError.args).
func CancelMessage(err error) string {
	var ce *CancelledError
	if errors.As(err, &ce) {
		return ce.Msg
	}
	return ""
}

// ErrTimeout is asyncio.TimeoutError (the builtin TimeoutError). It wraps
// context.DeadlineExceeded and does not match ErrCancelled: a task that
// returns it ends failed, not cancelled.
var ErrTimeout = fmt.Errorf("loop: timeout: %w", context.DeadlineExceeded)

// TimeoutError is the error WaitFor and Timeout return when their deadline
// cancelled the work: Python's `raise TimeoutError from exc`. It matches
// ErrTimeout and context.DeadlineExceeded, prints as ErrTimeout, and
// carries the cancellation that caused it, reachable through Cause
// (Python's __cause__) but not through errors.Is or errors.As: a timeout
// never matches ErrCancelled, so a task that returns one ends failed, not
// cancelled.
type TimeoutError struct {
	cause error
}

func (e *TimeoutError) Error() string { return ErrTimeout.Error() }

// Unwrap returns ErrTimeout (and so context.DeadlineExceeded), never the
// cause.
func (e *TimeoutError) Unwrap() error { return ErrTimeout }

// Cause returns the CancelledError the deadline delivered to the work,
// as the work let it out (Python's __cause__); nil if there was none.
func (e *TimeoutError) Cause() error { return e.cause }

// timeoutFrom is ErrTimeout with the cancellation that caused it.
func timeoutFrom(cause error) error { return &TimeoutError{cause: cause} }

// ErrZeroLoop is returned (or panicked with, where a method has no error
// result) by a zero Loop: a loop is made with New.
var ErrZeroLoop = errors.New("loop: zero Loop: make it with New")

// ErrZeroFuture is returned (or panicked with, where a method has no error
// result) by a zero Future or Task, which belong to no loop: make them with
// NewFuture, CreateTask or Spawn.
var ErrZeroFuture = errors.New("loop: zero Future or Task: make it with NewFuture, CreateTask or Spawn")

// ErrInvalidState is asyncio.InvalidStateError: a result read before it is
// set, or set twice. The errors returned wrap it with asyncio's message
// (the package doc gives the rule for every error's text).
var ErrInvalidState = errors.New("loop: invalid state")

func invalidState(msg string) error { return fmt.Errorf("%w: %s", ErrInvalidState, msg) }

// Errors for using a loop in a state that forbids it; asyncio raises
// RuntimeError with the same message for each (see the package doc for
// how the text is written).
var (
	// ErrLoopRunning is "This event loop is already running".
	ErrLoopRunning = errors.New("loop: This event loop is already running")
	// ErrLoopClosed is "Event loop is closed".
	ErrLoopClosed = errors.New("loop: Event loop is closed")
	// ErrLoopStopped is "Event loop stopped before Future completed."
	ErrLoopStopped = errors.New("loop: Event loop stopped before Future completed")
	// ErrNoRunningLoop is "no running event loop": the ctx does not come
	// from a task of a running loop.
	ErrNoRunningLoop = errors.New("loop: no running event loop")
	// ErrNotInTask is returned by Await and the other awaiting functions
	// when the ctx is not the ctx of the task that is running now
	// (asyncio cannot await outside a coroutine).
	ErrNotInTask = errors.New("loop: await outside the running task (pass the task's ctx)")
	// ErrAwaitSelf is "Task cannot await on itself".
	ErrAwaitSelf = errors.New("loop: Task cannot await on itself")
	// ErrDifferentLoop is returned when a task awaits a future of another
	// loop, or a primitive bound to another loop is used.
	ErrDifferentLoop = errors.New("loop: Task got Future attached to a different loop")
	// ErrTaskSetResult is "Task does not support set_result operation".
	ErrTaskSetResult = errors.New("loop: Task does not support SetResult or SetErr operation")
)

// PanicError is a panic inside a task or callback, turned into an error so
// that it never crashes the loop: the panic value, the callers and the
// stack of the panicking goroutine. It is executor.PanicError, conc's
// panics.Recovered: one type for a panic in a task, a callback, a
// ThreadPool call or a pool's own goroutine.
type PanicError = executor.PanicError

func newPanicError(v any) *PanicError { return executor.NewPanicError(1, v) }

// isPanic reports whether err is, or wraps, a *PanicError: a panic whose
// value is a cancellation error is still a panic, never a cancellation.
func isPanic(err error) bool {
	var pe *PanicError
	return errors.As(err, &pe)
}

// ExceptionGroup is asyncio's ExceptionGroup as TaskGroup raises it: several
// errors at once. errors.Is and errors.As look into every member, nested
// groups included, depth first in Errs order: errors.Is reports whether
// any member matches, and errors.As fills its target from the first member
// that matches and says nothing of the others. To handle one kind and pass
// the rest on, as `except*` does, use Split or Subgroup.
type ExceptionGroup struct {
	Msg  string
	Errs []error
}

func (g *ExceptionGroup) Error() string {
	var b strings.Builder
	msg := g.Msg
	if msg == "" {
		msg = "loop: exception group"
	}
	fmt.Fprintf(&b, "%s (%d sub-error", msg, len(g.Errs))
	if len(g.Errs) != 1 {
		b.WriteByte('s')
	}
	b.WriteString(")")
	for _, err := range g.Errs {
		b.WriteString("\n  ")
		b.WriteString(strings.ReplaceAll(err.Error(), "\n", "\n  "))
	}
	return b.String()
}

// Unwrap returns the member errors.
func (g *ExceptionGroup) Unwrap() []error { return g.Errs }

// Split is ExceptionGroup.split: it divides the group's members into those
// match accepts and the rest, keeping the nesting of inner groups and the
// group's message. match is applied to every leaf, never to a group
// (errors.Is on a group would look into its members); As and Is build the
// usual predicates. Each part is nil when empty, the group itself when
// it holds every member, and otherwise a new *ExceptionGroup, so `return
// rest` hands back exactly what was not handled:
//
//	var eg *loop.ExceptionGroup
//	if errors.As(err, &eg) {
//		timeouts, rest := eg.Split(loop.Is(loop.ErrTimeout))
//		if timeouts != nil {
//			log.Print("some calls timed out")
//		}
//		return rest
//	}
func (g *ExceptionGroup) Split(match func(error) bool) (matched, rest error) {
	m, r := g.split(match)
	return groupOrNil(m), groupOrNil(r)
}

// Subgroup is ExceptionGroup.subgroup: the matched part of Split.
func (g *ExceptionGroup) Subgroup(match func(error) bool) error {
	m, _ := g.split(match)
	return groupOrNil(m)
}

func (g *ExceptionGroup) split(match func(error) bool) (matched, rest *ExceptionGroup) {
	var m, r []error
	for _, e := range g.Errs {
		if sub, ok := e.(*ExceptionGroup); ok && sub != nil {
			sm, sr := sub.split(match)
			if sm != nil {
				m = append(m, sm)
			}
			if sr != nil {
				r = append(r, sr)
			}
		} else if match(e) {
			m = append(m, e)
		} else {
			r = append(r, e)
		}
	}
	return g.derive(m), g.derive(r)
}

// derive is ExceptionGroup.derive: errs under g's message; g itself if errs
// are g's members unchanged, nil if there are none.
func (g *ExceptionGroup) derive(errs []error) *ExceptionGroup {
	if len(errs) == 0 {
		return nil
	}
	if len(errs) == len(g.Errs) {
		same := true
		for i := range errs {
			if errs[i] != g.Errs[i] {
				same = false
				break
			}
		}
		if same {
			return g
		}
	}
	return &ExceptionGroup{Msg: g.Msg, Errs: errs}
}

// groupOrNil keeps a nil group from becoming a non-nil error.
func groupOrNil(g *ExceptionGroup) error {
	if g == nil {
		return nil
	}
	return g
}

// Is returns a predicate for Split and Subgroup that accepts the errors
// matching target with errors.Is: `except* ValueError` for a sentinel.
func Is(target error) func(error) bool {
	return func(err error) bool { return errors.Is(err, target) }
}

// As returns a predicate for Split and Subgroup that accepts the errors
// errors.As finds an E in: `except* ValueError` for an error type.
func As[E error]() func(error) bool {
	return func(err error) bool {
		var e E
		return errors.As(err, &e)
	}
}

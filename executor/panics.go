package executor

import (
	"fmt"

	"github.com/sourcegraph/conc/panics"
)

// PanicError is a panic turned into an error, so that it fails one future
// (or one task, in package loop, which uses this same type) instead of
// crashing the process: conc's panics.Recovered, with the panic value, the
// callers and the formatted stack of the goroutine that panicked.
type PanicError struct {
	panics.Recovered
}

// NewPanicError records a recovered panic value, with the stack of the
// calling goroutine; skip is the number of frames above the caller to leave
// out of Callers, as runtime.Callers counts them (0: the caller itself).
// Call it in the deferred function that recovered v.
func NewPanicError(skip int, v any) *PanicError {
	return &PanicError{panics.NewRecovered(skip+2, v)}
}

// Error returns the panic value and the stack of the goroutine that
// panicked.
func (e *PanicError) Error() string {
	return fmt.Sprintf("panic: %v\n\n%s", e.Value, e.Stack)
}

// Unwrap returns the panic value if it is an error, so that errors.As
// finds it; errors.Is(err, context.Canceled) on a panic with a
// cancellation value is still a panic to every waiting API (a *PanicError
// is never a cancellation).
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

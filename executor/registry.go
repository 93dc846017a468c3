package executor

import (
	"errors"
	"fmt"
	"runtime/debug"
	"sync"

	"github.com/asyncgo/asyncgo/internal/child"
)

// Init runs this process as a worker and exits, if it was started as one
// (by a process pool, see package processpool); otherwise it returns at
// once. Call it first thing in main, and in TestMain of any test that
// starts a process pool, after package initialisation has registered every
// function:
//
//	func main() {
//		executor.Init()
//		...
//	}
//
// A worker whose main does not call Init would run the program itself: it
// refuses to start pools of its own (processpool.New fails, naming this
// fix), and its parent gives up on it when it does not answer its start
// handshake in time.
func Init() { child.Bootstrap() }

func init() { RegisterError(ErrNotRegistered, ErrGoexit) }

var (
	regMu     sync.RWMutex
	registry  = map[string]Handler{}
	sentinels = map[string]error{}
)

// Handler is a registered function as an executor that runs calls in
// another process sees it there: Lookup finds it by name.
type Handler interface {
	// Name is the name the function was registered under.
	Name() string
	// Serve decodes the function's argument from d and runs it, a panic
	// becoming err (a *PanicError). If the argument cannot be decoded,
	// nothing runs and argErr says why. If the function calls
	// runtime.Goexit, Serve does not return: the goroutine ends, and the
	// caller detects it with a deferred check (a *PanicError with
	// ErrGoexit is then the call's error).
	Serve(d Decoder) (result any, err error, argErr error)
}

// Lookup returns the function registered under name, or nil.
func Lookup(name string) Handler {
	regMu.RLock()
	defer regMu.RUnlock()
	return registry[name]
}

// Func is a function registered by name so that a child process can run
// it. Its Bind method makes a Call of it with an argument; a call with the
// wrong argument type does not compile.
type Func[A, R any] struct {
	name string
	fn   func(A) (R, error)
}

// Register registers fn under name, for process pools (and aio) to run in
// their children. Register at package level (a var initialised with
// Register, or in init), so that the child, which re-executes the same
// binary, registers it too before Init runs. The argument and result cross
// processes with encoding/gob: exported fields only; values inside
// interface fields need gob.Register; a value that cannot be encoded (a
// func, a channel, a nil pointer) fails its call's future and nothing
// else. It panics if name is registered twice.
func Register[A, R any](name string, fn func(A) (R, error)) *Func[A, R] {
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := registry[name]; dup {
		panic("executor: function registered twice: " + name)
	}
	f := &Func[A, R]{name: name, fn: fn}
	registry[name] = f
	return f
}

// Name returns the name fn was registered under.
func (f *Func[A, R]) Name() string { return f.name }

// Bind is the call f(a), to submit to an executor.
func (f *Func[A, R]) Bind(a A) Call[R] {
	return Call[R]{name: f.name, arg: a, local: func() (R, error) { return f.fn(a) }}
}

// Call runs f(a) in this process, with a panic turned into an error.
func (f *Func[A, R]) Call(a A) (R, error) {
	return callSafely(func() (R, error) { return f.fn(a) })
}

// Serve implements Handler.
func (f *Func[A, R]) Serve(d Decoder) (result any, err error, argErr error) {
	var a A
	if err := d.Decode(&a); err != nil {
		return nil, nil, err
	}
	r, err := f.Call(a)
	return r, err, nil
}

// RegisterError registers sentinel errors that keep their identity across
// processes: when a child's error matches one of them (errors.Is), the
// parent's RemoteError unwraps to the same sentinel. Sentinels are keyed by
// their message; register them at package level.
func RegisterError(errs ...error) {
	regMu.Lock()
	defer regMu.Unlock()
	for _, err := range errs {
		sentinels[err.Error()] = err
	}
}

// RemoteError is an error returned or panicked in a child process, as the
// parent receives it (Python's _RemoteTraceback): the error's type name,
// message and the child's stack.
type RemoteError struct {
	Type     string // the Go type of the error or panic value, e.g. "*fs.PathError"
	Message  string
	Stack    string // the child's stack where the error was caught
	Panic    bool   // the child panicked (or called runtime.Goexit)
	Sentinel string // the registered sentinel it matched, if any
}

// Error returns "executor: remote error|panic <Type>: <Message>".
func (e *RemoteError) Error() string {
	what := "error"
	if e.Panic {
		what = "panic"
	}
	return fmt.Sprintf("executor: remote %s %s: %s", what, e.Type, e.Message)
}

// Unwrap returns the registered sentinel the error matched in the child
// (see RegisterError), or ErrNotRegistered for a function the child did
// not know.
func (e *RemoteError) Unwrap() error {
	if e.Sentinel == "" {
		return nil
	}
	regMu.RLock()
	defer regMu.RUnlock()
	return sentinels[e.Sentinel]
}

// NewRemoteError describes err, returned or panicked (a *PanicError) in
// this process, for the process that submitted the call: what a worker
// sends back. It records the registered sentinel err matches, if any.
func NewRemoteError(err error) *RemoteError {
	re := &RemoteError{Type: fmt.Sprintf("%T", err), Message: err.Error(), Stack: string(debug.Stack())}
	var pe *PanicError
	if errors.As(err, &pe) {
		re.Panic = true
		re.Type = fmt.Sprintf("%T", pe.Value)
		re.Message = fmt.Sprint(pe.Value)
		re.Stack = string(pe.Stack)
	}
	regMu.RLock()
	for key, s := range sentinels {
		if errors.Is(err, s) {
			re.Sentinel = key
			break
		}
	}
	regMu.RUnlock()
	return re
}

func callSafely[R any](fn func() (R, error)) (v R, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = NewPanicError(0, r)
		}
	}()
	return fn()
}

package executor

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"sync"

	"github.com/asyncgo/asyncgo/internal/child"
	"github.com/asyncgo/asyncgo/internal/wire"
)

// Init runs this process as a pool worker and exits, if it was started as
// one; otherwise it returns at once. Call it first thing in main, and in
// TestMain of any test that starts a ProcessPool, after package
// initialisation has registered every function:
//
//	func main() {
//		executor.Init()
//		...
//	}
func Init() { child.Bootstrap() }

const workerRole = "executor-worker"

func init() {
	child.RegisterRole(workerRole, workerMain)
	RegisterError(ErrNotRegistered)
}

var (
	regMu     sync.RWMutex
	registry  = map[string]handler{}
	sentinels = map[string]error{}
)

// handler is a registered function, seen from the child.
type handler interface {
	serve(rd *wire.Reader) (result any, err error, decodeErr error)
}

// Func is a function registered by name so that a child process can run
// it. Its Bind method makes a Call of it with an argument; a call with the
// wrong argument type does not compile.
type Func[A, R any] struct {
	name string
	fn   func(A) (R, error)
}

// Register registers fn under name, for ProcessPool (and aio) children to
// run. Register at package level (a var initialised with Register, or in
// init), so that the child, which re-executes the same binary, registers
// it too before Init runs. The argument and result cross processes with
// encoding/gob: exported fields only; values inside interface fields need
// gob.Register. It panics if name is registered twice.
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

func (f *Func[A, R]) serve(rd *wire.Reader) (any, error, error) {
	var a A
	if err := rd.Decode(&a); err != nil {
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
	Panic    bool   // the child panicked
	Sentinel string // the registered sentinel it matched, if any
}

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

func callSafely[R any](fn func() (R, error)) (v R, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = NewPanicError(0, r)
		}
	}()
	return fn()
}

func remoteError(err error) *RemoteError {
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

// request and response head every frame between a pool and a worker.
type request struct {
	ID uint64 // 0 is the initializer
	Fn string
}

type response struct {
	ID     uint64
	Err    *RemoteError
	Resync bool // the worker could not read the request: restart the stream
}

// workerMain is a pool worker: it runs requests one at a time and answers
// each with a response frame followed, on success, by the result.
func workerMain(ctrl *os.File) int {
	child.WatchParent(ctrl)
	rd := wire.NewReader(ctrl)
	wr := wire.NewWriter(ctrl)
	for {
		if err := rd.Next(); err != nil {
			return 0 // the pool closed us
		}
		var req request
		if err := rd.Decode(&req); err != nil {
			fmt.Fprintln(os.Stderr, "asyncgo worker: bad request:", err)
			return 1
		}
		regMu.RLock()
		h := registry[req.Fn]
		regMu.RUnlock()
		var resp response
		var result any
		if h == nil {
			resp.Err = &RemoteError{Type: "executor.ErrNotRegistered", Message: fmt.Sprintf("%s: %q", ErrNotRegistered.Error(), req.Fn), Sentinel: ErrNotRegistered.Error()}
			resp.Resync = true
		} else {
			r, err, decErr := h.serve(rd)
			switch {
			case decErr != nil:
				resp.Err = remoteError(fmt.Errorf("cannot decode the argument of %s: %w", req.Fn, decErr))
				resp.Resync = true
			case err != nil:
				resp.Err = remoteError(err)
			default:
				result = r
			}
		}
		if req.ID == 0 { // the initializer
			if resp.Err != nil {
				fmt.Fprintln(os.Stderr, "asyncgo worker: exception in initializer:", resp.Err)
				return 1
			}
			continue
		}
		resp.ID = req.ID
		if resp.Err != nil {
			err := wr.Send(resp)
			if err != nil {
				return 1
			}
			continue
		}
		if err := wr.Send(resp, result); err != nil {
			var ee *wire.EncodeError
			if !errors.As(err, &ee) {
				return 1 // the pool is gone
			}
			resp.Err = remoteError(fmt.Errorf("cannot encode the result of %s: %w", req.Fn, err))
			if wr.Send(resp) != nil {
				return 1
			}
		}
	}
}

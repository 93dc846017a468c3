package executor

import (
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"runtime/debug"
	"strings"
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
	regMu      sync.RWMutex
	registry   = map[string]Handler{}
	sentinels  = map[string]error{}
	errTypes   = map[reflect.Type]string{} // RegisterErrorType's, by type and by name
	errTypesBy = map[string]reflect.Type{}
)

// Handler is a registered function as an executor that runs calls in
// another process sees it there: Lookup finds it by name.
type Handler interface {
	// Name is the name the function was registered under.
	Name() string
	// Serve decodes the function's argument from d and runs it, a panic
	// becoming err (a *PanicError). The result is the value to encode: for
	// a result of interface type, a pointer to it, so that gob sends it as
	// an interface (see Call.Arg). If the argument cannot be decoded,
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
	name      string
	chunkName string // name + chunkSuffix, BindChunk's
	fn        func(A) (R, error)
	// The argument, the result is an interface type (any): it crosses as
	// a pointer to it, so that gob sends an interface value, which carries
	// its concrete type's gob.Register'ed name, rather than the concrete
	// value, which the other side cannot decode into an interface.
	argIface, resIface bool
}

// Register registers fn under name, for process pools (and aio) to run in
// their children. Register at package level (a var initialised with
// Register, or in init), so that the child, which re-executes the same
// binary, registers it too before Init runs.
//
// The argument and result cross processes with encoding/gob, and Register
// panics, naming the function, the type and the field, if gob cannot carry
// one of them: a chan, a func or an unsafe.Pointer (also as an exported
// field, which gob would leave out silently), or a struct with fields but
// none exported. Unexported fields are left out, as gob does; a type with
// GobEncode and GobDecode (or MarshalBinary and UnmarshalBinary) encodes
// itself. An interface type (any) is allowed: the concrete types it holds
// need gob.Register, in both processes (at package level). A value that
// still cannot be encoded (a nil pointer, an interface holding a type not
// gob.Register'ed) fails its call's future and nothing else. Register also
// panics if name is registered twice.
func Register[A, R any](name string, fn func(A) (R, error)) *Func[A, R] {
	at, rt := reflect.TypeFor[A](), reflect.TypeFor[R]()
	if p := gobProblem(at); p != nil {
		panic(fmt.Sprintf("executor: Register(%q): argument type %s", name, p.describe(at)))
	}
	if p := gobProblem(rt); p != nil {
		panic(fmt.Sprintf("executor: Register(%q): result type %s", name, p.describe(rt)))
	}
	regMu.Lock()
	defer regMu.Unlock()
	f := &Func[A, R]{name: name, chunkName: name + chunkSuffix, fn: fn, argIface: at.Kind() == reflect.Interface, resIface: rt.Kind() == reflect.Interface}
	_, dup := registry[name]
	if _, dupChunk := registry[f.chunkName]; dup || dupChunk {
		panic("executor: function registered twice: " + name)
	}
	registry[name] = f
	registry[f.chunkName] = chunkHandler[A, R]{f}
	return f
}

// chunkSuffix names a Func's chunk handler (see BindChunk): the name it
// was registered under, and a NUL no name given to Register is expected
// to hold.
const chunkSuffix = "\x00chunk"

// IsChunkCall reports whether name is that of a chunk call (BindChunk's,
// as Map makes them). A process pool may send a worker such a call ahead
// of the chunk it runs: chunks are short and independent of each other,
// so one waiting behind another costs no more than a moment.
func IsChunkCall(name string) bool { return strings.HasSuffix(name, chunkSuffix) }

// BindChunk is the call of f on each of items in turn, in one call that
// returns their results in order: what aio.Pool's Map sends a worker
// process as one chunk (Python's Pool.map chunksize), so that a chunk
// crosses as one []A and one []R, not as a message per item. Register
// registers the chunk's handler beside f's, so any Func has one.
//
// The chunk stops at the first item whose call fails (an error, or a
// panic); run in another process, the chunk's *RemoteError is that item's
// error, with its position in items in Item (as 1 + the index). Run in
// this process (on a ThreadPool) the chunk's error is the item's own. A
// zero Func binds the zero Call, which Submit refuses.
func (f *Func[A, R]) BindChunk(items []A) Call[[]R] {
	if f == nil || f.fn == nil {
		return Call[[]R]{}
	}
	return Call[[]R]{name: f.chunkName, arg: items, local: func() ([]R, error) {
		out, err := f.runChunk(items)
		if ce, ok := err.(*chunkError); ok {
			err = ce.err
		}
		return out, err
	}}
}

// chunkError is the error of item index of a chunk: NewRemoteError
// describes err and records the index in RemoteError.Item.
type chunkError struct {
	index int
	err   error
}

func (e *chunkError) Error() string { return e.err.Error() }
func (e *chunkError) Unwrap() error { return e.err }

// runChunk calls fn on each item, stopping at the first failure, with a
// single deferred recover for the whole chunk: an item costs its call
// and nothing more.
func (f *Func[A, R]) runChunk(items []A) (out []R, err error) {
	i := 0
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, &chunkError{index: i, err: NewPanicError(0, r)}
		}
	}()
	out = make([]R, len(items))
	for ; i < len(items); i++ {
		r, err := f.fn(items[i])
		if err != nil {
			return nil, &chunkError{index: i, err: err}
		}
		out[i] = r
	}
	return out, nil
}

// chunkHandler serves a Func's chunks: it decodes []A and encodes []R,
// which gob carries as they are, even for an interface element type.
type chunkHandler[A, R any] struct{ f *Func[A, R] }

func (h chunkHandler[A, R]) Name() string { return h.f.chunkName }

func (h chunkHandler[A, R]) Serve(d Decoder) (result any, err error, argErr error) {
	var items []A
	if err := d.Decode(&items); err != nil {
		return nil, nil, err
	}
	out, err := h.f.runChunk(items)
	if err != nil {
		return nil, err, nil
	}
	return out, nil, nil
}

// ErrZeroFunc is what a zero Func's Call returns: a Func is made by
// Register.
var ErrZeroFunc = errors.New("executor: zero Func: make it with Register")

// Name returns the name fn was registered under ("" for a nil or zero
// Func).
func (f *Func[A, R]) Name() string {
	if f == nil {
		return ""
	}
	return f.name
}

// Bind is the call f(a), to submit to an executor. A zero or nil Func (not
// made by Register) binds the zero Call, which Submit refuses.
func (f *Func[A, R]) Bind(a A) Call[R] {
	if f == nil || f.fn == nil {
		return Call[R]{}
	}
	var arg any = a
	if f.argIface {
		arg = &a
	}
	return Call[R]{name: f.name, arg: arg, local: func() (R, error) { return f.fn(a) }}
}

// Call runs f(a) in this process, with a panic turned into an error. A
// zero or nil Func returns ErrZeroFunc.
func (f *Func[A, R]) Call(a A) (R, error) {
	if f == nil || f.fn == nil {
		var zero R
		return zero, ErrZeroFunc
	}
	return callSafely(func() (R, error) { return f.fn(a) })
}

// Serve implements Handler.
func (f *Func[A, R]) Serve(d Decoder) (result any, err error, argErr error) {
	var a A
	if err := d.Decode(&a); err != nil {
		return nil, nil, err
	}
	r, err := f.Call(a)
	if f.resIface {
		return &r, err, nil
	}
	return r, err, nil
}

// RegisterError registers sentinel errors that keep their identity across
// processes: when a child's error matches one of them (errors.Is), the
// parent's RemoteError unwraps to the same sentinel. Sentinels are keyed by
// their message; register them at package level. For an error type whose
// values carry fields (errors.As), see RegisterErrorType.
func RegisterError(errs ...error) {
	regMu.Lock()
	defer regMu.Unlock()
	for _, err := range errs {
		sentinels[err.Error()] = err
	}
}

// RegisterErrorType registers the error type E, so that an error of that
// type crosses processes as a value, not only as text: when a child's
// error is one, or wraps one (fmt.Errorf with %w, errors.Join, a panic
// with it), the parent's RemoteError unwraps to a copy of it, which
// errors.As finds:
//
//	type QuotaError struct{ Code int }
//
//	func (e *QuotaError) Error() string { return fmt.Sprintf("quota %d", e.Code) }
//
//	func init() { executor.RegisterErrorType[*QuotaError]() }
//
//	// in the parent, for a child that returned fmt.Errorf("upload: %w", &QuotaError{Code: 3}):
//	var qe *QuotaError
//	if errors.As(err, &qe) { ... qe.Code is 3 ... }
//
// The value crosses with encoding/gob, as a registered function's result
// does (see Register): its exported fields only, and an interface field
// (an error it wraps) only if the type it holds is gob.Register'ed. A
// value gob fails to carry leaves the RemoteError with the text alone, as
// an error of a type not registered does. The outermost error of a
// registered type in the chain is the one that crosses.
//
// Registering a struct type registers the pointer to it too, and
// registering a pointer type the type it points to if that is an error
// (its Error has a value receiver), so that whichever the child returns
// crosses as itself. Register error types at package level, in init, so
// that the child registers them too; registering one twice does nothing.
// RegisterErrorType panics if E is an interface type or gob cannot carry
// it.
func RegisterErrorType[E error]() {
	t := reflect.TypeFor[E]()
	if t.Kind() == reflect.Interface {
		panic(fmt.Sprintf("executor: RegisterErrorType[%s]: an interface type; register the concrete type the child returns", t))
	}
	if p := gobProblem(t); p != nil {
		panic(fmt.Sprintf("executor: RegisterErrorType[%s]: error type %s", t, p.describe(t)))
	}
	regMu.Lock()
	defer regMu.Unlock()
	addErrType(t)
	if t.Kind() != reflect.Pointer {
		addErrType(reflect.PointerTo(t))
	} else if t.Elem().Implements(errorType) {
		addErrType(t.Elem())
	}
}

var errorType = reflect.TypeFor[error]()

func addErrType(t reflect.Type) {
	name := errTypeName(t)
	if other, dup := errTypesBy[name]; dup && other != t {
		panic(fmt.Sprintf("executor: RegisterErrorType: two error types named %s", name))
	}
	errTypes[t] = name
	errTypesBy[name] = t
}

// errTypeName is t's name with its package path, so that two packages'
// Errors do not collide: "*example.com/app.QuotaError".
func errTypeName(t reflect.Type) string {
	if t.Kind() == reflect.Pointer && t.Name() == "" {
		return "*" + errTypeName(t.Elem())
	}
	if t.Name() != "" && t.PkgPath() != "" {
		return t.PkgPath() + "." + t.Name()
	}
	return t.String()
}

// registeredErr returns the first error in err's tree, in the order
// errors.As visits it, whose type is registered, and its type's name.
// regMu is held.
func registeredErr(err error) (name string, v error) {
	for err != nil {
		if name, ok := errTypes[reflect.TypeOf(err)]; ok {
			return name, err
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, err := range u.Unwrap() {
				if name, v := registeredErr(err); v != nil {
					return name, v
				}
			}
			return "", nil
		default:
			return "", nil
		}
	}
	return "", nil
}

// RemoteError is an error returned or panicked in a child process, as the
// parent receives it (Python's _RemoteTraceback): the error's type name,
// message and the child's stack. Its Error is the child's error text.
// Unwrap returns the registered sentinel the error matched (see
// RegisterError) and the value of the registered error type it was or
// wrapped (see RegisterErrorType), so that errors.Is and errors.As see
// them as in the child.
type RemoteError struct {
	Type     string // the Go type of the error or panic value, e.g. "*fs.PathError"
	Message  string // the error's text (its Error()), or the panic value formatted with %v
	Stack    string // the child's stack where the error was caught
	Panic    bool   // the child panicked (or called runtime.Goexit)
	Sentinel string // the registered sentinel it matched, if any
	// ErrType is the name of the registered error type (RegisterErrorType)
	// of the error, or of the one it wraps, if any, with its package path:
	// "*example.com/app.QuotaError". Unwrap returns that value once it has
	// crossed (see Err).
	ErrType string
	// Item is, for the error of a chunk call (Func.BindChunk), 1 + the
	// index of the item that failed, in the chunk's items; 0 for any other
	// call. aio.Pool's Map and Imap set it to 1 + the index in their whole
	// input.
	Item int

	err error // the ErrType value: in the child, to send; in the parent, once decoded
}

// Error returns the child's error text, Message, as the error itself would
// have printed it in this process ("check 3: odd number"), or for a panic
// "panic: " and the value. The Go type is in Type.
func (e *RemoteError) Error() string {
	if e.Panic {
		return "panic: " + e.Message
	}
	return e.Message
}

// Unwrap returns the registered sentinel the error matched in the child
// (see RegisterError), or ErrNotRegistered for a function the child did
// not know, and the value of the registered error type it carries (see
// Err), if any.
func (e *RemoteError) Unwrap() []error {
	var errs []error
	if e.Sentinel != "" {
		regMu.RLock()
		s := sentinels[e.Sentinel]
		regMu.RUnlock()
		if s != nil {
			errs = append(errs, s)
		}
	}
	if e.err != nil {
		errs = append(errs, e.err)
	}
	return errs
}

// Err returns the value of the registered error type ErrType, or nil: in
// the child, set by NewRemoteError, what an executor sends along (encoded
// as a value of its own type, which gob does without gob.Register); in the
// parent, what DecodeErr read.
func (e *RemoteError) Err() error { return e.err }

// DecodeErr reads the value of the registered error type ErrType from d,
// which decodes what the child encoded of Err, so that Unwrap returns it.
// An executor carrying a RemoteError between processes calls it in the
// process that receives it; on failure (ErrType is not registered there,
// or d fails) e keeps its text alone.
func (e *RemoteError) DecodeErr(d Decoder) error {
	regMu.RLock()
	t := errTypesBy[e.ErrType]
	regMu.RUnlock()
	if t == nil {
		return fmt.Errorf("executor: error type %q is not registered in this process", e.ErrType)
	}
	p := reflect.New(t)
	if err := d.Decode(p.Interface()); err != nil {
		return err
	}
	e.err = p.Elem().Interface().(error)
	return nil
}

// NewRemoteError describes err, returned or panicked (a *PanicError) in
// this process, for the process that submitted the call: what a worker
// sends back. It records the registered sentinel err matches, if any, and
// the registered error type it is or wraps, whose value Err returns; for
// the error of a chunk's item (see BindChunk), it describes the item's
// error and records its index in Item.
func NewRemoteError(err error) *RemoteError {
	if ce, ok := err.(*chunkError); ok {
		re := NewRemoteError(ce.err)
		re.Item = ce.index + 1
		return re
	}
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
	if len(errTypes) > 0 {
		re.ErrType, re.err = registeredErr(err)
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

// typeProblem is why encoding/gob cannot carry a type: the value at path
// (a field selector like "Items[i].C", "" for the type itself) has type
// typ, which reason.
type typeProblem struct {
	path   string
	typ    reflect.Type
	reason string
}

// describe completes "argument type <root>..." with the problem.
func (p *typeProblem) describe(root reflect.Type) string {
	if p.path == "" {
		return fmt.Sprintf("%s, which %s", root, p.reason)
	}
	what := "field "
	if strings.HasPrefix(p.path, "[") || strings.HasPrefix(p.path, "(") {
		what = "element "
	}
	return fmt.Sprintf("%s: %s%s is a %s, which %s", root, what, p.path, p.typ, p.reason)
}

// The methods a type encodes itself with, as encoding/gob looks for them
// (without importing it: see doc.go).
type (
	gobEncoder interface{ GobEncode() ([]byte, error) }
	gobDecoder interface{ GobDecode([]byte) error }
)

var (
	gobEncoderType        = reflect.TypeFor[gobEncoder]()
	gobDecoderType        = reflect.TypeFor[gobDecoder]()
	binaryMarshalerType   = reflect.TypeFor[encoding.BinaryMarshaler]()
	binaryUnmarshalerType = reflect.TypeFor[encoding.BinaryUnmarshaler]()
)

// gobProblem returns why encoding/gob cannot encode or decode a value of
// type t, or nil. It follows gob's own rules (encoding/gob's type.go and
// encode.go), but rejects an exported chan or func field, which gob
// leaves out without a word: it would arrive nil.
func gobProblem(t reflect.Type) *typeProblem {
	c := gobChecker{seen: map[reflect.Type]bool{}}
	return c.check(t, "")
}

type gobChecker struct{ seen map[reflect.Type]bool }

func (c *gobChecker) check(t reflect.Type, path string) *typeProblem {
	if c.seen[t] { // a recursive type: gob sends it as it is met
		return nil
	}
	c.seen[t] = true
	if t.Kind() == reflect.Interface {
		return nil // the concrete type needs gob.Register, at run time
	}
	enc := implementsGob(t, gobEncoderType) || implementsGob(t, binaryMarshalerType)
	dec := implementsGob(t, gobDecoderType) || implementsGob(t, binaryUnmarshalerType)
	switch {
	case enc && dec:
		return nil
	case enc:
		return &typeProblem{path, t, "has GobEncode or MarshalBinary but no GobDecode or UnmarshalBinary"}
	case dec:
		return &typeProblem{path, t, "has GobDecode or UnmarshalBinary but no GobEncode or MarshalBinary"}
	}
	switch t.Kind() {
	case reflect.Chan, reflect.Func, reflect.UnsafePointer:
		return &typeProblem{path, t, "gob cannot encode"}
	case reflect.Pointer:
		seen := map[reflect.Type]bool{}
		for u := t; u.Kind() == reflect.Pointer; u = u.Elem() {
			if seen[u] {
				return &typeProblem{path, t, "is a recursive pointer type, which gob cannot encode"}
			}
			seen[u] = true
		}
		return c.check(t.Elem(), path)
	case reflect.Slice, reflect.Array:
		return c.check(t.Elem(), path+"[i]")
	case reflect.Map:
		if p := c.check(t.Key(), path+"(key)"); p != nil {
			return p
		}
		return c.check(t.Elem(), path+"[k]")
	case reflect.Struct:
		sent := 0
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			fpath := f.Name
			if path != "" {
				fpath = path + "." + f.Name
			}
			ft := f.Type
			for n := 0; ft.Kind() == reflect.Pointer && n < 100; n++ {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Chan || ft.Kind() == reflect.Func {
				return &typeProblem{fpath, f.Type, "gob cannot encode"}
			}
			if p := c.check(f.Type, fpath); p != nil {
				return p
			}
			sent++
		}
		if t.NumField() > 0 && sent == 0 {
			return &typeProblem{path, t, "has no exported fields, and gob encodes only those"}
		}
	}
	return nil
}

// implementsGob reports whether gob finds iface's method on t, on a type
// t points to, or on *t (encoding/gob's implementsInterface).
func implementsGob(t, iface reflect.Type) bool {
	u := t
	for n := 0; n < 100; n++ {
		if u.Implements(iface) {
			return true
		}
		if u.Kind() != reflect.Pointer {
			break
		}
		u = u.Elem()
	}
	return t.Kind() != reflect.Pointer && reflect.PointerTo(t).Implements(iface)
}

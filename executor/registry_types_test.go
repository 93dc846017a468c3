package executor_test

import (
	"bytes"
	"encoding/gob"
	"errors"
	"fmt"
	"math/big"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/asyncgo/asyncgo/executor"
)

// Issue 8, item 11: a type gob cannot carry fails at Register, naming the
// function, the type and the field, instead of failing every call in the
// child at run time.

var regSeq atomic.Int64

// regName is a fresh name to register under, so that -count=N works.
func regName(what string) string { return fmt.Sprintf("types_test.%s.%d", what, regSeq.Add(1)) }

// registerPanic returns what register panicked with, or "" if it did not.
func registerPanic(register func()) (msg string) {
	defer func() {
		if r := recover(); r != nil {
			msg = fmt.Sprint(r)
		}
	}()
	register()
	return ""
}

type req struct {
	Key string
	C   chan int
}

type onlyUnexported struct{ a, b int }

type item struct {
	N int
	C chan int
}

type items struct{ Items []item }

type withUnsafe struct {
	N int
	P unsafe.Pointer
}

type withMutex struct {
	Mu sync.Mutex
	N  int
}

type funcPtrField struct {
	N int
	F *func()
}

type funcMap struct{ M map[string]func() }

type chanKeys struct{ M map[chan int]int }

type recursivePointer *recursivePointer

type encodeOnly struct{ N int }

func (encodeOnly) GobEncode() ([]byte, error) { return nil, nil }

type decodeOnly struct{ N int }

func (*decodeOnly) GobDecode([]byte) error { return nil }

func TestRegisterRejectsTypesGobCannotCarry(t *testing.T) {
	for _, tc := range []struct {
		what     string
		register func(name string)
		want     string // the panic message after `executor: Register("<name>"): `
	}{
		{"chan field", func(n string) { executor.Register(n, func(req) (int, error) { return 0, nil }) },
			"argument type executor_test.req: field C is a chan int, which gob cannot encode"},
		{"chan argument", func(n string) { executor.Register(n, func(chan int) (int, error) { return 0, nil }) },
			"argument type chan int, which gob cannot encode"},
		{"func result", func(n string) { executor.Register(n, func(int) (func(), error) { return nil, nil }) },
			"result type func(), which gob cannot encode"},
		{"unexported fields only", func(n string) {
			executor.Register(n, func(onlyUnexported) (int, error) { return 0, nil })
		}, "argument type executor_test.onlyUnexported, which has no exported fields, and gob encodes only those"},
		{"unexported fields only, behind a pointer", func(n string) {
			executor.Register(n, func(int) (*onlyUnexported, error) { return nil, nil })
		}, "result type *executor_test.onlyUnexported, which has no exported fields, and gob encodes only those"},
		{"nested chan", func(n string) { executor.Register(n, func(items) (int, error) { return 0, nil }) },
			"argument type executor_test.items: field Items[i].C is a chan int, which gob cannot encode"},
		{"slice of chans", func(n string) { executor.Register(n, func([]chan int) (int, error) { return 0, nil }) },
			"argument type []chan int: element [i] is a chan int, which gob cannot encode"},
		{"unsafe.Pointer field", func(n string) { executor.Register(n, func(withUnsafe) (int, error) { return 0, nil }) },
			"argument type executor_test.withUnsafe: field P is a unsafe.Pointer, which gob cannot encode"},
		{"field with no exported fields", func(n string) {
			executor.Register(n, func(*withMutex) (int, error) { return 0, nil })
		}, "argument type *executor_test.withMutex: field Mu is a sync.Mutex, which has no exported fields, and gob encodes only those"},
		{"pointer to func field", func(n string) {
			executor.Register(n, func(funcPtrField) (int, error) { return 0, nil })
		}, "argument type executor_test.funcPtrField: field F is a *func(), which gob cannot encode"},
		{"map of funcs", func(n string) { executor.Register(n, func(int) (funcMap, error) { return funcMap{}, nil }) },
			"result type executor_test.funcMap: field M[k] is a func(), which gob cannot encode"},
		{"chan map keys", func(n string) { executor.Register(n, func(chanKeys) (int, error) { return 0, nil }) },
			"argument type executor_test.chanKeys: field M(key) is a chan int, which gob cannot encode"},
		{"recursive pointer", func(n string) {
			executor.Register(n, func(recursivePointer) (int, error) { return 0, nil })
		}, "argument type executor_test.recursivePointer, which is a recursive pointer type, which gob cannot encode"},
		{"GobEncode without GobDecode", func(n string) {
			executor.Register(n, func(encodeOnly) (int, error) { return 0, nil })
		}, "argument type executor_test.encodeOnly, which has GobEncode or MarshalBinary but no GobDecode or UnmarshalBinary"},
		{"GobDecode without GobEncode", func(n string) {
			executor.Register(n, func(int) ([]decodeOnly, error) { return nil, nil })
		}, "result type []executor_test.decodeOnly: element [i] is a executor_test.decodeOnly, which has GobDecode or UnmarshalBinary but no GobEncode or MarshalBinary"},
	} {
		name := regName("bad")
		got := registerPanic(func() { tc.register(name) })
		want := fmt.Sprintf("executor: Register(%q): %s", name, tc.want)
		if got != want {
			t.Errorf("%s: Register() panicked with\n\t%q\nwant\n\t%q", tc.what, got, want)
		}
		if executor.Lookup(name) != nil {
			t.Errorf("%s: a rejected function was registered", tc.what)
		}
	}
}

// node is recursive through a pointer, which gob carries.
type node struct {
	Val  int
	Next *node
}

type tree struct {
	Kids  []tree
	Index map[string]*tree
}

type big3 struct {
	A, B, C string
	D       [16]int
	E       map[string][]float64
	F       *node
	G       time.Time
	H       []byte
	I       any
	J       error
	K       *big.Int
	L       complex128
	M       map[complex128]string
	hidden  chan int // unexported: gob leaves it out, as documented
}

type embedsUnexported struct {
	onlyUnexported // unexported, left out
	N              int
}

type Exported struct{ X int }

type embedsExported struct {
	Exported
	*node
	Y int
}

// selfEncoded has only unexported fields but encodes itself.
type selfEncoded struct{ n int }

func (s selfEncoded) MarshalBinary() ([]byte, error) { return []byte{byte(s.n)}, nil }
func (s *selfEncoded) UnmarshalBinary(b []byte) error {
	s.n = int(b[0])
	return nil
}

// accepts registers func(A) (A, error) and checks that gob carries sample
// both ways, so that the check agrees with gob.
func accepts[A any](t *testing.T, what string, sample A) {
	t.Helper()
	name := regName("good")
	if msg := registerPanic(func() { executor.Register(name, func(a A) (A, error) { return a, nil }) }); msg != "" {
		t.Errorf("%s: Register() panicked: %s", what, msg)
		return
	}
	if executor.Lookup(name) == nil {
		t.Errorf("%s: Lookup(%q) = nil after Register", what, name)
	}
	var buf bytes.Buffer
	var v any = sample // as a process pool sends it: an interface as an interface
	if reflect.TypeFor[A]().Kind() == reflect.Interface {
		v = &sample
	}
	if err := gob.NewEncoder(&buf).Encode(v); err != nil {
		t.Errorf("%s: gob cannot encode %#v: %v", what, sample, err)
		return
	}
	var back A
	if err := gob.NewDecoder(&buf).Decode(&back); err != nil {
		t.Errorf("%s: gob cannot decode %#v: %v", what, sample, err)
	}
}

// The unexported fields are there for Register to skip.
var _ = []any{onlyUnexported{}.a, onlyUnexported{}.b, big3{}.hidden, embedsUnexported{}.onlyUnexported}

func TestRegisterAcceptsTypesGobCarries(t *testing.T) {
	n := &node{Val: 1, Next: &node{Val: 2}}
	accepts(t, "time.Time", time.Now())
	accepts(t, "[]byte", []byte("abc"))
	accepts(t, "struct{}", struct{}{})
	accepts(t, "big struct", big3{A: "a", E: map[string][]float64{"x": {1}}, F: n, G: time.Now(), I: 3, K: big.NewInt(7), L: 1i, M: map[complex128]string{1i: "i"}})
	accepts(t, "pointer to struct", &big3{A: "a"})
	accepts(t, "recursive pointer", n)
	accepts(t, "recursive slice and map", tree{Kids: []tree{{}}, Index: map[string]*tree{"a": {}}})
	accepts(t, "any", any(3))
	accepts[error](t, "error", nil)
	accepts(t, "*big.Int", big.NewInt(42))
	accepts(t, "embedded fields", embedsExported{Exported: Exported{X: 1}, node: n, Y: 2})
	accepts(t, "embedded unexported", embedsUnexported{N: 1})
	accepts(t, "encodes itself", []*selfEncoded{{n: 1}})
	accepts(t, "map of slices", map[string][]int{"a": {1}})
	accepts(t, "array map keys", map[[2]int]bool{{1, 2}: true})
	x := 5
	px := &x
	accepts(t, "pointer to pointer", &px)
	accepts(t, "uintptr", uintptr(1))
}

// The message names the problem well enough to fix it without reading
// gob's source.
func TestRegisterPanicNamesTheFunction(t *testing.T) {
	msg := registerPanic(func() { executor.Register("hash", func(req) (string, error) { return "", nil }) })
	for _, want := range []string{`Register("hash")`, "executor_test.req", "field C", "chan int"} {
		if !strings.Contains(msg, want) {
			t.Errorf("Register() panicked with %q; want it to contain %q", msg, want)
		}
	}
}

// Issue 8, item 11: a remote error prints the user's error text, as the
// error would have in this process, not the Go type of a wrapper.
func TestRemoteErrorText(t *testing.T) {
	for _, tc := range []struct {
		re   *executor.RemoteError
		want string
	}{
		{&executor.RemoteError{Type: "*fmt.wrapError", Message: "boom: disk full"}, "boom: disk full"},
		{&executor.RemoteError{Type: "string", Message: "kaboom", Panic: true}, "panic: kaboom"},
		{executor.NewRemoteError(fmt.Errorf("boom: %w", errOdd)), "boom: odd number"},
	} {
		if got := tc.re.Error(); got != tc.want {
			t.Errorf("%+v.Error() = %q; want %q", tc.re, got, tc.want)
		}
	}
}

type codeError struct{ Code int }

func (e *codeError) Error() string { return fmt.Sprintf("code %d", e.Code) }

type chanError struct{ C chan int }

func (chanError) Error() string { return "chan error" }

func init() { executor.RegisterErrorType[*codeError]() }

// RegisterErrorType refuses what cannot cross: an interface, or a type
// gob cannot carry.
func TestRegisterErrorTypeRejects(t *testing.T) {
	if msg := registerPanic(executor.RegisterErrorType[error]); msg != "executor: RegisterErrorType[error]: an interface type; register the concrete type the child returns" {
		t.Errorf("RegisterErrorType[error]() panicked with %q", msg)
	}
	want := "executor: RegisterErrorType[executor_test.chanError]: error type executor_test.chanError: field C is a chan int, which gob cannot encode"
	if msg := registerPanic(executor.RegisterErrorType[chanError]); msg != want {
		t.Errorf("RegisterErrorType[chanError]() panicked with\n\t%q\nwant\n\t%q", msg, want)
	}
	if msg := registerPanic(executor.RegisterErrorType[*codeError]); msg != "" {
		t.Errorf("RegisterErrorType[*codeError]() again panicked with %q; want nothing", msg)
	}
}

// What an executor does with a registered error type, without processes:
// NewRemoteError finds the value in the chain, the executor encodes Err,
// DecodeErr rebuilds it on the other side, and errors.As finds it there.
func TestRemoteErrorCarriesRegisteredType(t *testing.T) {
	child := executor.NewRemoteError(fmt.Errorf("upload: %w", errors.Join(errOdd, &codeError{Code: 3})))
	if child.ErrType != "*github.com/asyncgo/asyncgo/executor_test.codeError" || child.Err() == nil {
		t.Fatalf("NewRemoteError() = %+v; want ErrType *…executor_test.codeError and its value", child)
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(child); err != nil {
		t.Fatal(err)
	}
	if err := gob.NewEncoder(&buf).Encode(child.Err()); err != nil {
		t.Fatal(err)
	}
	dec := gob.NewDecoder(&buf)
	var parent executor.RemoteError
	if err := dec.Decode(&parent); err != nil {
		t.Fatal(err)
	}
	var ce *codeError
	if errors.As(&parent, &ce) {
		t.Errorf("errors.As found the value before DecodeErr")
	}
	if err := parent.DecodeErr(dec); err != nil {
		t.Fatalf("DecodeErr() = %v", err)
	}
	if !errors.As(&parent, &ce) || ce.Code != 3 {
		t.Errorf("errors.As(%v, *codeError) = %v, %v; want Code 3", &parent, errors.As(&parent, &ce), ce)
	}
	if got := parent.Error(); got != "upload: odd number\ncode 3" {
		t.Errorf("Error() = %q; want the child's text", got)
	}

	unknown := executor.RemoteError{Message: "x", ErrType: "example.com/nowhere.Error"}
	if err := unknown.DecodeErr(dec); err == nil || unknown.Err() != nil {
		t.Errorf("DecodeErr(an unregistered type) = %v, Err() = %v; want an error and no value", err, unknown.Err())
	}
	if plain := executor.NewRemoteError(errors.New("plain")); plain.ErrType != "" || plain.Err() != nil || plain.Unwrap() != nil {
		t.Errorf("NewRemoteError(plain) = %+v; want no ErrType, no value, nothing to unwrap", plain)
	}
}

//go:build linux

package processpool_test

// Issue 8, item 11: what values and errors cross the process boundary.

import (
	"encoding/gob"
	"errors"
	"fmt"
	"testing"

	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/executor/processpool"
	"github.com/google/go-cmp/cmp"
)

// shape and area cross in interfaces: gob.Register'ed in both processes,
// at package level.
type shape struct{ W, H int }

type area struct {
	N    int
	Unit string
}

func init() {
	gob.Register(shape{})
	gob.Register(&area{})
}

// areaOf takes and returns any: what crosses is the concrete value, by the
// name gob.Register gave its type.
var areaOf = executor.Register("test.areaOf", func(v any) (any, error) {
	switch v := v.(type) {
	case shape:
		return &area{N: v.W * v.H, Unit: "m²"}, nil
	case int:
		return v * v, nil
	case nil:
		return nil, nil
	}
	return nil, fmt.Errorf("not a shape: %T", v)
})

// An argument and a result typed any carry a gob.Register'ed type, a
// built-in one and nil, both ways.
func TestAnyArgumentAndResult(t *testing.T) {
	p := newPool(t, processpool.Options{MaxWorkers: 1})
	for _, tc := range []struct {
		arg, want any
	}{
		{shape{W: 3, H: 4}, &area{N: 12, Unit: "m²"}},
		{7, 49},
		{nil, nil},
		{shape{W: 1, H: 2}, &area{N: 2, Unit: "m²"}}, // the type again, on the same stream
	} {
		got, err := res(executor.Submit(p, areaOf.Bind(tc.arg)))
		if err != nil {
			t.Errorf("areaOf(%#v): Result() = %v", tc.arg, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("areaOf(%#v) (-want +got):\n%s", tc.arg, diff)
		}
	}
	// A concrete type gob does not know fails that call only.
	type local struct{ N int }
	if _, err := res(executor.Submit(p, areaOf.Bind(local{1}))); err == nil {
		t.Errorf("areaOf(an unregistered type): Result() = nil; want an encoding error")
	}
	if got, err := res(executor.Submit(p, areaOf.Bind(5))); got != 25 || err != nil {
		t.Errorf("afterwards: Result() = %v, %v; want 25, nil", got, err)
	}
}

// quotaError has a pointer receiver, valueError a value receiver: both
// cross as the child returned them.
type quotaError struct {
	Code  int
	Where string
}

func (e *quotaError) Error() string { return fmt.Sprintf("quota %d at %s", e.Code, e.Where) }

type valueError struct{ N int }

func (e valueError) Error() string { return fmt.Sprintf("value error %d", e.N) }

// unregisteredError is not registered: it crosses as text only.
type unregisteredError struct{ N int }

func (e *unregisteredError) Error() string { return fmt.Sprintf("unregistered %d", e.N) }

// wrapsError wraps an error in an interface field: gob carries it only if
// its type is gob.Register'ed, which errors.New's is not.
type wrapsError struct{ Err error }

func (e *wrapsError) Error() string { return "wraps: " + e.Err.Error() }
func (e *wrapsError) Unwrap() error { return e.Err }

// refusesDecode encodes itself but fails to decode in the parent.
type refusesDecode struct{ N int }

func (e refusesDecode) Error() string              { return fmt.Sprintf("refuses %d", e.N) }
func (e refusesDecode) GobEncode() ([]byte, error) { return []byte{byte(e.N)}, nil }
func (e *refusesDecode) GobDecode(b []byte) error  { return errors.New("refusing") }

func init() {
	executor.RegisterErrorType[*quotaError]()
	executor.RegisterErrorType[valueError]()
	executor.RegisterErrorType[*wrapsError]()
	executor.RegisterErrorType[refusesDecode]()
}

// failWith returns the error its argument names.
var failWith = executor.Register("test.failWith", func(what string) (int, error) {
	switch what {
	case "quota":
		return 0, &quotaError{Code: 3, Where: "disk"}
	case "wrapped quota":
		return 0, fmt.Errorf("upload: %w", &quotaError{Code: 4, Where: "net"})
	case "joined":
		return 0, errors.Join(errors.New("first"), fmt.Errorf("second: %w", valueError{N: 5}))
	case "value":
		return 0, valueError{N: 6}
	case "pointer to value":
		return 0, &valueError{N: 7}
	case "sentinel and type":
		return 0, fmt.Errorf("%w; %w", errOdd, &quotaError{Code: 8})
	case "panic":
		panic(&quotaError{Code: 9, Where: "panic"})
	case "unregistered":
		return 0, fmt.Errorf("boom: %w", &unregisteredError{N: 10})
	case "unencodable":
		return 0, &wrapsError{Err: errors.New("disk full")}
	case "undecodable":
		return 0, refusesDecode{N: 11}
	}
	return 0, nil
})

// Issue 8, item 11: an error of a registered type, returned or wrapped or
// panicked in the child, reaches the parent as a value errors.As finds,
// with the child's text; sentinels still match.
func TestRegisteredErrorTypeCrosses(t *testing.T) {
	p := newPool(t, processpool.Options{MaxWorkers: 1})
	call := func(what string) error {
		t.Helper()
		_, err := res(executor.Submit(p, failWith.Bind(what)))
		if err == nil {
			t.Fatalf("failWith(%q): Result() = nil; want an error", what)
		}
		return err
	}
	for _, tc := range []struct {
		what, text string
		want       *quotaError
	}{
		{"quota", "quota 3 at disk", &quotaError{Code: 3, Where: "disk"}},
		{"wrapped quota", "upload: quota 4 at net", &quotaError{Code: 4, Where: "net"}},
		{"sentinel and type", "odd number; quota 8 at ", &quotaError{Code: 8}},
		{"panic", "panic: quota 9 at panic", &quotaError{Code: 9, Where: "panic"}},
	} {
		err := call(tc.what)
		var qe *quotaError
		if !errors.As(err, &qe) {
			t.Errorf("failWith(%q): errors.As(%v, *quotaError) = false", tc.what, err)
		} else if diff := cmp.Diff(tc.want, qe); diff != "" {
			t.Errorf("failWith(%q): the *quotaError (-want +got):\n%s", tc.what, diff)
		}
		if got := err.Error(); got != tc.text {
			t.Errorf("failWith(%q): Error() = %q; want %q", tc.what, got, tc.text)
		}
	}
	if err := call("sentinel and type"); !errors.Is(err, errOdd) {
		t.Errorf("errors.Is(%v, errOdd) = false; want the sentinel too", err)
	}

	// A value receiver: the value and a pointer to it each cross as
	// themselves, also from inside errors.Join.
	for what, want := range map[string]int{"value": 6, "joined": 5} {
		var ve valueError
		if err := call(what); !errors.As(err, &ve) || ve.N != want {
			t.Errorf("failWith(%q): errors.As(%v, valueError) = %v, %+v; want N %d", what, err, errors.As(err, &ve), ve, want)
		}
	}
	var pve *valueError
	if err := call("pointer to value"); !errors.As(err, &pve) || pve.N != 7 {
		t.Errorf("failWith(pointer to value): errors.As(%v, *valueError) = %v; want N 7", err, errors.As(err, &pve))
	}

	// Not registered: the text, the type's name, no value.
	err := call("unregistered")
	var ue *unregisteredError
	var re *executor.RemoteError
	if errors.As(err, &ue) || !errors.As(err, &re) || re.Message != "boom: unregistered 10" || re.ErrType != "" {
		t.Errorf("failWith(unregistered) = %#v; want a RemoteError with the text only", err)
	}
}

// A registered error type's value that gob cannot carry, or the parent
// cannot rebuild, leaves the text, and the worker and the pool go on.
func TestRegisteredErrorTypeDegrades(t *testing.T) {
	p := newPool(t, processpool.Options{MaxWorkers: 1})
	before, err := res(executor.Submit(p, pid.Bind(struct{}{})))
	if err != nil {
		t.Fatal(err)
	}
	for what, text := range map[string]string{"unencodable": "wraps: disk full", "undecodable": "refuses 11"} {
		_, err := res(executor.Submit(p, failWith.Bind(what)))
		var re *executor.RemoteError
		if !errors.As(err, &re) || re.Message != text || re.Err() != nil || re.ErrType == "" {
			t.Errorf("failWith(%q) = %#v; want a RemoteError %q naming its ErrType, without a value", what, err, text)
		}
		var we *wrapsError
		var rd refusesDecode
		if errors.As(err, &we) || errors.As(err, &rd) {
			t.Errorf("failWith(%q): errors.As found a value that could not cross", what)
		}
	}
	if after, err := res(executor.Submit(p, pid.Bind(struct{}{}))); after != before || err != nil {
		t.Errorf("afterwards: pid = %d, %v; want the same worker %d", after, err, before)
	}
}

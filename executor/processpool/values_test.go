//go:build linux

package processpool_test

// Issue 8, item 11: what values and errors cross the process boundary.

import (
	"encoding/gob"
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

//go:build linux

package processpool_test

import (
	"errors"
	"testing"

	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/executor/processpool"
)

// Issue 8, item 5: a zero Pool refuses work with ErrZeroPool, and its
// Shutdown and Kill do nothing, instead of dereferencing nil or hanging
// with no workers.
func TestZeroPool(t *testing.T) {
	var p processpool.Pool
	if _, err := executor.Submit(&p, square.Bind(3)); !errors.Is(err, processpool.ErrZeroPool) {
		t.Errorf("Submit to a zero Pool = %v; want ErrZeroPool", err)
	}
	p.Shutdown(true, true)
	p.Kill(0)
}

// A zero Func binds the zero Call, which Submit refuses, and its Call
// returns ErrZeroFunc.
func TestZeroFunc(t *testing.T) {
	var fn executor.Func[int, int]
	if _, err := fn.Call(1); !errors.Is(err, executor.ErrZeroFunc) {
		t.Errorf("zero Func Call() = %v; want ErrZeroFunc", err)
	}
	if c := fn.Bind(1); !c.IsZero() {
		t.Errorf("zero Func Bind() is not the zero Call")
	}
}

package goid_test

import (
	"testing"

	"github.com/asyncgo/asyncgo/internal/goid"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Ids are stable within a goroutine, distinct across goroutines, nonzero.
func TestGet(t *testing.T) {
	a, b := goid.Get(), goid.Get()
	if a == 0 || a != b {
		t.Fatalf("Get() = %d, then %d; want the same nonzero id", a, b)
	}
	other := make(chan uint64)
	go func() { other <- goid.Get() }()
	if o := <-other; o == a || o == 0 {
		t.Errorf("another goroutine's Get() = %d; want nonzero and not %d", o, a)
	}
}

package loop_test

import (
	"context"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/loop"
)

// Helpers of the network tests, on every system.

// openFDs counts the process's open descriptors (Linux: /proc/self/fd).
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}

// runNet runs main on a fresh loop on the real clock and checks that no
// descriptor is left open once the loop is closed.
func runNet(t *testing.T, main func(ctx context.Context) error) {
	t.Helper()
	before := openFDs(t)
	err := loop.RunMain(context.Background(), main)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS == "linux" {
		// Go's runtime may open its own netpoller descriptors once.
		if after := openFDs(t); after > before {
			deadline := time.Now().Add(2 * time.Second)
			for after > before && time.Now().Before(deadline) {
				runtime.GC()
				time.Sleep(10 * time.Millisecond)
				after = openFDs(t)
			}
			if after > before {
				t.Errorf("open descriptors: %d before, %d after", before, after)
			}
		}
	}
}

// awaitChan receives from ch without blocking the loop.
func awaitChan[T any](ctx context.Context, ch <-chan T) T {
	for {
		select {
		case v := <-ch:
			return v
		default:
			if err := loop.Sleep(ctx, time.Millisecond); err != nil {
				var zero T
				return zero
			}
		}
	}
}

package main

import (
	"os"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/internal/exampletest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	executor.Init() // the worker process runs fn here and exits
	goleak.VerifyTestMain(m)
}

// The output is exact: the worker puts 6..10 while it holds the lock, and
// example2 takes the lock only after the worker has released it, so 78
// and the sentinel come after all five. The worker's puts and its release
// travel on one connection, in order, so the host has queued the five
// before it grants the lock.
func TestSeedAioprocessing(t *testing.T) {
	const want = `Got result 6
Got result 7
Got result 8
Got result 9
Got result 10
Got result 78
`
	for _, delay := range []string{"0s", "100ms"} {
		t.Run(delay, func(t *testing.T) {
			os.Args = []string{"seed_aioprocessing", "-delay", delay}
			start := time.Now()
			exampletest.Expect(t, main, want)
			t.Logf("took %v", time.Since(start))
		})
	}
}

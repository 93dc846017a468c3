package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/internal/exampletest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	executor.Init() // the pool's worker process runs here and exits
	goleak.VerifyTestMain(m)
}

// runMain runs main and returns what it printed.
func runMain(t *testing.T) string { return exampletest.Stdout(t, main) }

// The result lines are exact; between them come the ticks, at least one:
// the ticker's first tick is in the loop's ready queue before main awaits,
// so it runs before any result can arrive (which comes through
// CallSoonThreadsafe, in a later iteration), whatever the timing. How many
// more ticks come depends on the clock (about 6 for a 0.6s sleep).
func TestSeedExecutor(t *testing.T) {
	got := runMain(t)
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	if len(lines) < 4 {
		t.Fatalf("seed_executor printed:\n%s\nwant at least 4 lines", got)
	}
	first, rest := lines[0], lines[1:]
	ticks, tail := rest[:len(rest)-2], rest[len(rest)-2:]
	if want := "main: blocking(0.6) runs in a worker process"; first != want {
		t.Errorf("first line = %q; want %q", first, want)
	}
	if want := []string{"main: blocking(0.6) = 3", "main: result 3"}; tail[0] != want[0] || tail[1] != want[1] {
		t.Errorf("last lines = %q; want %q", tail, want)
	}
	if len(ticks) == 0 {
		t.Errorf("no tick before the result:\n%s", got)
	}
	for i, line := range ticks {
		if want := fmt.Sprintf("ticker: tick %d, the loop is free", i+1); line != want {
			t.Errorf("line %d = %q; want %q", i+2, line, want)
		}
	}
	t.Logf("%d ticks while the worker slept", len(ticks))
}

package main

import (
	"testing"

	"github.com/asyncgo/asyncgo/internal/exampletest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// runMain runs main and returns what it printed.
func runMain(t *testing.T) string { return exampletest.Stdout(t, main) }

func TestThreadsafe(t *testing.T) {
	const want = "main: starting the worker goroutine\n" +
		"loop: squared 1\n" +
		"worker: got 1\n" +
		"loop: squared 2\n" +
		"worker: got 4\n" +
		"loop: squared 3\n" +
		"worker: got 9\n" +
		"worker: stopped waiting: context deadline exceeded\n" +
		"loop: slow task ended: loop: cancelled\n" +
		"main: total 14\n"
	if got := runMain(t); got != want {
		t.Errorf("threadsafe printed:\n%s\nwant:\n%s", got, want)
	}
}

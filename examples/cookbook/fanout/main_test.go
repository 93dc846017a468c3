package main

import (
	"testing"

	"github.com/asyncgo/asyncgo/internal/exampletest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Two slots: fetch 2 starts when fetch 0 frees one at 100ms and times out
// at 350ms, 250ms after it started, not after it was spawned; the errors
// come back in their places in the results.
func TestFanout(t *testing.T) {
	const want = "fetch 0 starts at 0s\n" +
		"fetch 1 starts at 0s\n" +
		"fetch 2 starts at 100ms\n" +
		"fetch 3 starts at 200ms\n" +
		"fetch 4 starts at 250ms\n" +
		"0: item 0\n" +
		"1: item 1\n" +
		"2: timed out (loop: timeout: context deadline exceeded)\n" +
		"3: failed: item 3: not found\n" +
		"4: item 4\n" +
		"all done at 400ms\n"
	exampletest.Expect(t, main, want)
}

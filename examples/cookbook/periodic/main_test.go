package main

import (
	"testing"

	"github.com/asyncgo/asyncgo/internal/exampletest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Run 4's 70ms of work does not delay run 5: the rate is fixed. The cancel
// at 520ms lands in run 5's work, and the cleanup's await and Go call run.
func TestPeriodic(t *testing.T) {
	const want = "run 1 at 100ms\n" +
		"run 2 at 200ms\n" +
		"run 3 at 300ms\n" +
		"run 4 at 400ms\n" +
		"run 5 at 500ms\n" +
		"cleanup after 520ms: loop: cancelled\n" +
		"closed at 530ms\n" +
		"flushed 4 runs\n" +
		"ticker cancelled: true loop: cancelled\n"
	exampletest.Expect(t, main, want)
}

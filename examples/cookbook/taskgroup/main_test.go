package main

import (
	"testing"

	"github.com/asyncgo/asyncgo/internal/exampletest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fetchAll handles the two timeouts and returns the group's rest, the
// FetchError, which main handles: nothing is left for RunMain.
func TestTaskGroup(t *testing.T) {
	const want = "got body of /a\n" +
		"2 timed out\n" +
		"failed: unhandled errors in a TaskGroup (1 sub-error)\n" +
		"  fetch /b: status 500\n" +
		"main returned <nil>\n"
	exampletest.Expect(t, main, want)
}

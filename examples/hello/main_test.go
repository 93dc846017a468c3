package main

import (
	"testing"

	"github.com/asyncgo/asyncgo/internal/exampletest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// runMain runs main and returns what it printed.
func runMain(t *testing.T) string { return exampletest.Stdout(t, main) }

func TestHello(t *testing.T) {
	const want = "slow timed out; cancelled: true\n" +
		"[a after 20ms b after 10ms] <nil>\n"
	if got := runMain(t); got != want {
		t.Errorf("hello printed:\n%s\nwant:\n%s", got, want)
	}
}

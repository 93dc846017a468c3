package loop_test

import (
	"os"
	"testing"

	"github.com/asyncgo/asyncgo/executor"
	"go.uber.org/goleak"
)

// leakChildEnv names the test a child process of this test binary runs,
// for scenarios that leak a goroutine on purpose (see runLeakingChild):
// the child skips the leak check.
const leakChildEnv = "ASYNCGO_LOOP_LEAKING_CHILD"

func TestMain(m *testing.M) {
	executor.Init() // a ProcessPool worker runs here and exits
	if os.Getenv(leakChildEnv) != "" {
		os.Exit(m.Run())
	}
	goleak.VerifyTestMain(m)
}

package main

import (
	"os"
	"testing"

	"github.com/asyncgo/asyncgo/executor"
	"go.uber.org/goleak"
)

// runMainEnv makes the test binary run main instead of the tests: the
// SIGTERM test serves from a real process of its own.
const runMainEnv = "REACTOR_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	executor.Init() // a worker process of a pool serves here and exits
	if os.Getenv(runMainEnv) == "1" {
		main()
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

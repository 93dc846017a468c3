package executor_test

import (
	"testing"

	"go.uber.org/goleak"
)

// The tests of this package start no process pool (package processpool's
// do), so TestMain needs no executor.Init.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

package natsexec_test

import (
	"testing"

	"github.com/asyncgo/asyncgo/executor"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	executor.Init() // a local worker process runs here and exits
	goleak.VerifyTestMain(m)
}

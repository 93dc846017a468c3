package child_test

import (
	"testing"

	"github.com/asyncgo/asyncgo/internal/child"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	child.Bootstrap() // a child of these tests runs its role here and exits
	goleak.VerifyTestMain(m)
}

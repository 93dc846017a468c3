package main

import (
	"testing"

	"github.com/asyncgo/asyncgo/internal/exampletest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// On the virtual clock the interleaving is exact: the producer runs ahead
// by the two queues' room (2 items each, one in each squarer's hands), then
// waits for space; the squarers take turns.
func TestPipeline(t *testing.T) {
	const want = "produced 1\n" +
		"produced 2\n" +
		"produced 3\n" +
		"produced 4\n" +
		"squarer-a: 1 -> 1\n" +
		"squarer-b: 2 -> 4\n" +
		"produced 5\n" +
		"produced 6\n" +
		"squarer-a: 3 -> 9\n" +
		"squarer-b: 4 -> 16\n" +
		"squarer-a: 5 -> 25\n" +
		"squarer-b: 6 -> 36\n" +
		"sum of squares: 91\n"
	exampletest.Expect(t, main, want)
}

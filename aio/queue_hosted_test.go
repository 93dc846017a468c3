//go:build linux

package aio_test

import (
	"testing"

	"github.com/asyncgo/asyncgo/aio"
)

// Queues are hosted by the process that made them where shared memory is
// not to be had (elsewhere than on Linux, or when a memfd cannot be
// made): the queue tests run again on hosted queues, lending and all.
func TestHostedQueues(t *testing.T) {
	defer aio.SetHostedQueues(true)()
	for _, c := range []struct {
		name string
		f    func(*testing.T)
	}{
		{"AcrossProcesses", TestQueueAcrossProcesses},
		{"Model", TestQueueModel},
		{"RandomizedConsumers", TestQueueRandomizedConsumers},
		{"BigPutThenChange", TestBigPutThenChange},
		{"GetAfterHostGone", TestGetAfterHostGone},
		{"OfAnyHoldingBytes", TestQueueOfAnyHoldingBytes},
		{"BigItemsLentAheadComeBack", TestBigItemsLentAheadComeBack},
		{"TimedOutGetLeavesNoRequest", TestTimedOutGetLeavesNoRequest},
		{"KilledGetterLosesNothing", TestKilledGetterLosesNothing},
		{"CoroGetCancelledTakesNothing", TestCoroGetCancelledTakesNothing},
		{"PutUnencodable", TestPutUnencodable},
	} {
		t.Run(c.name, c.f)
	}
}

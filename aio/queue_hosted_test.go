//go:build linux

package aio_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/aio"
	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/loop"
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

// timedOutCoroGets makes three CoroGets that time out (a derived ctx) on
// a loop whose exception handler counts reports, and fails if any came.
var timedOutCoroGets = executor.Register("aio_test.timedOutCoroGets", func(q *aio.Queue[int]) (struct{}, error) {
	var reports atomic.Int32
	_, err := loop.Run(context.Background(), func(ctx context.Context) (struct{}, error) {
		l, err := loop.RunningLoop(ctx)
		if err != nil {
			return struct{}{}, err
		}
		l.SetExceptionHandler(func(*loop.Loop, loop.ExceptionContext) { reports.Add(1) })
		for range 3 {
			c, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
			_, err := q.CoroGet(c)
			cancel()
			if !errors.Is(err, context.DeadlineExceeded) {
				return struct{}{}, fmt.Errorf("CoroGet of an empty queue: %v", err)
			}
		}
		return struct{}{}, nil
	})
	if n := reports.Load(); err == nil && n != 0 {
		err = fmt.Errorf("%d reports after 3 timed-out CoroGets", n)
	}
	return struct{}{}, err
})

// A CoroGet of a hosted queue given up by its derived ctx leaves nothing
// for the loop to report ("Future exception was never retrieved").
func TestHostedCoroGetTimedOutReportsNothing(t *testing.T) {
	defer aio.SetHostedQueues(true)()
	q := aio.NewQueue[int](0)
	p := aio.NewProcess(timedOutCoroGets.Bind(q))
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	if err := p.Join(); err != nil {
		t.Fatal(err)
	}
	if code, _ := p.ExitCode(); code != 0 {
		t.Fatalf("the child exited %d (its stderr says why)", code)
	}
}

package loop_test

import (
	"context"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/loop"
)

// The hot paths allocate nothing in steady state, as the docs and the
// benchmarks claim: a CallSoon, a task switch, a queue hand-off. The counts
// are the same with and without the race detector.

func TestAllocsCallSoon(t *testing.T) {
	l := newLoop(t)
	n := 0
	fn := func() { n++ }
	for range 100 { // warm the ring and the pooled records
		l.CallSoon(fn)
	}
	runBriefly(t, l)
	allocs := testing.AllocsPerRun(100, func() {
		for range 100 {
			l.CallSoon(fn)
		}
		runBriefly(t, l)
	})
	if allocs != 0 {
		t.Errorf("100 CallSoon and an iteration allocate %v times; want 0", allocs)
	}
}

// runSteady runs body as a task once to warm the loop (a coroutine to
// reuse, grown queues), then measures the allocations of a second run.
func runSteady(t *testing.T, body func(ctx context.Context) (int, error), opts ...loop.Option) float64 {
	t.Helper()
	l := loop.New(opts...)
	t.Cleanup(func() { l.Close() })
	run := func() {
		task := loop.CreateTask(l, body)
		if err := l.RunUntilComplete(task); err != nil {
			t.Fatal(err)
		}
	}
	run()
	return testing.AllocsPerRun(20, run)
}

func TestAllocsTaskSwitch(t *testing.T) {
	const switches = 10_000
	allocs := runSteady(t, func(ctx context.Context) (int, error) {
		for range switches {
			if err := loop.Sleep(ctx, 0); err != nil {
				return 0, err
			}
		}
		return 0, nil
	}, loop.WithVirtualClock())
	// The task itself: its allocation, and none per switch.
	if allocs > 3 {
		t.Errorf("a task of %d switches allocates %v times; want at most 3 (none per switch)", switches, allocs)
	}
}

// queueHandOffAllocs passes 10,000 items from a producer task to a
// consumer task through a Queue(1), whose Get waits each time, and returns
// the allocations of one such run; the consumer's ctx is getCtx of its own.
func queueHandOffAllocs(t *testing.T, getCtx func(ctx context.Context) (context.Context, context.CancelFunc), opts ...loop.Option) float64 {
	t.Helper()
	q := loop.NewQueue[int](1)
	return runSteady(t, func(ctx context.Context) (int, error) {
		consumer := loop.Spawn(ctx, func(ctx context.Context) (int, error) {
			c, cancel := getCtx(ctx)
			defer cancel()
			sum := 0
			for range handOffItems {
				v, err := q.Get(c)
				if err != nil {
					return 0, err
				}
				sum += v
			}
			return sum, nil
		})
		for i := range handOffItems {
			if err := q.Put(ctx, i); err != nil {
				return 0, err
			}
		}
		return consumer.Await(ctx)
	}, opts...)
}

const handOffItems = 10_000

func TestAllocsQueueHandOff(t *testing.T) {
	allocs := queueHandOffAllocs(t, func(ctx context.Context) (context.Context, context.CancelFunc) {
		return ctx, func() {}
	}, loop.WithVirtualClock())
	// Two tasks and an await: a handful, and none per item.
	if allocs > 8 {
		t.Errorf("%d items through a Queue(1) allocate %v times; want at most 8 (none per item)", handOffItems, allocs)
	}
}

// An await with a ctx derived from the task's (context.WithTimeout) that
// has to wait allocates nothing either, once the task watches that ctx. (On
// the virtual clock each such await arms a loop timer at the deadline: one
// allocation; this runs on the real clock.)
func TestAllocsDerivedCtxAwait(t *testing.T) {
	allocs := queueHandOffAllocs(t, func(ctx context.Context) (context.Context, context.CancelFunc) {
		return context.WithTimeout(ctx, time.Hour)
	})
	// Two tasks, the derived ctx with its timer, the watch and its one
	// registration: a few dozen at most, none per await.
	if allocs > 40 {
		t.Errorf("%d awaits on a derived ctx allocate %v times; want at most 40 (none per await)", handOffItems, allocs)
	}
}

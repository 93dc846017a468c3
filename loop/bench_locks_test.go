package loop_test

// Benchmarks of asyncio's locks and queues (issue 3, item 6). Their Python
// twins (CPython asyncio and uvloop) are in docs/bench/peers/locks_queues.py
// and do the same work. Wall-clock time is used only here, never in tests.
//
// Each benchmark reports allocations and a custom metric in the unit a
// person compares: items/s, acquisitions/s, ns/waiter, ns/switch.

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/loop"
)

// lqRace reports whether the test binary was built with -race: the race
// detector allows at most 8128 live goroutines, so the 100,000-task
// benchmarks shrink under it.
var lqRace = func() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}()

// lqMallocs returns the number of heap allocations made so far.
func lqMallocs() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.Mallocs
}

// lqRunOnce runs one iteration of l: what is ready now, and nothing that it
// schedules.
func lqRunOnce(b *testing.B, l *loop.Loop) {
	l.Stop()
	if err := l.RunForever(); err != nil {
		b.Fatal(err)
	}
}

// lqRun runs main on a fresh loop (real clock) and fails b on error.
func lqRun(b *testing.B, main func(ctx context.Context) error) {
	_, err := loop.Run(context.Background(), func(ctx context.Context) (struct{}, error) {
		return struct{}{}, main(ctx)
	})
	if err != nil {
		b.Fatal(err)
	}
}

const queueItems = 1_000_000

// BenchmarkQueueThroughput moves 1,000,000 ints from one producer task to
// one consumer task through NewQueue(1000) with Put and Get: one op is the
// 1,000,000 items, on a fresh loop. Twin: queue_throughput.
func BenchmarkQueueThroughput(b *testing.B) {
	b.ReportAllocs()
	var allocs uint64
	for range b.N {
		sum := 0
		lqRun(b, func(ctx context.Context) error {
			q := loop.NewQueue[int](1000)
			m0 := lqMallocs()
			producer := loop.Go(ctx, func(ctx context.Context) error {
				for i := range queueItems {
					if err := q.Put(ctx, i); err != nil {
						return err
					}
				}
				return nil
			})
			for range queueItems {
				v, err := q.Get(ctx)
				if err != nil {
					return err
				}
				sum += v
			}
			_, err := producer.Await(ctx)
			allocs += lqMallocs() - m0
			return err
		})
		if sum != queueItems*(queueItems-1)/2 {
			b.Fatalf("sum %d", sum)
		}
	}
	items := float64(b.N) * queueItems
	b.ReportMetric(items/b.Elapsed().Seconds(), "items/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/items, "ns/item")
	b.ReportMetric(float64(allocs)/items, "allocs/item")
}

const (
	lockTasks  = 100
	lockRounds = 1000
)

// BenchmarkLockContention is 100 tasks each doing 1,000 times: Acquire,
// Sleep(0) inside the critical section, Release. Every Acquire but the
// first waits, so each acquisition is a hand-over through the waiter queue
// plus the holder's Sleep(0). One op is the 100,000 acquisitions. Twin:
// lock_contention.
func BenchmarkLockContention(b *testing.B) {
	b.ReportAllocs()
	var allocs uint64
	for range b.N {
		acquired := 0
		lqRun(b, func(ctx context.Context) error {
			var mu loop.Lock
			holders := 0
			body := func(ctx context.Context) error {
				for range lockRounds {
					if err := mu.Acquire(ctx); err != nil {
						return err
					}
					if holders++; holders != 1 {
						b.Errorf("%d holders", holders)
					}
					acquired++
					err := loop.Sleep(ctx, 0)
					holders--
					if rerr := mu.Release(); rerr != nil {
						return rerr
					}
					if err != nil {
						return err
					}
				}
				return nil
			}
			ts := make([]*loop.Task[struct{}], lockTasks)
			for i := range ts {
				ts[i] = loop.Go(ctx, body)
			}
			m0 := lqMallocs()
			for _, t := range ts {
				if _, err := t.Await(ctx); err != nil {
					return err
				}
			}
			allocs += lqMallocs() - m0
			return nil
		})
		if acquired != lockTasks*lockRounds {
			b.Fatalf("acquired %d", acquired)
		}
	}
	acq := float64(b.N) * lockTasks * lockRounds
	b.ReportMetric(acq/b.Elapsed().Seconds(), "acquisitions/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/acq, "ns/acquisition")
	b.ReportMetric(float64(allocs)/acq, "allocs/acquisition")
}

// fanoutTasks is the number of tasks of BenchmarkEventFanout and
// BenchmarkBareSwitch100k.
func fanoutTasks() int {
	if lqRace {
		return 4_000
	}
	return 100_000
}

// BenchmarkEventFanout parks 100,000 tasks in Wait on one Event, then
// times one Set and the loop running until every waiter has resumed and
// returned. ns/waiter is that time per woken waiter, to compare with
// BenchmarkBareSwitch100k's ns/switch. Creating and parking the tasks is
// not timed. Twin: event_fanout.
func BenchmarkEventFanout(b *testing.B) {
	var ev loop.Event
	benchParked(b, "waiter", func(ctx context.Context) error { return ev.Wait(ctx) }, func() {
		ev = loop.Event{} // a fresh Event for each loop
	}, func() { ev.Set() })
}

// BenchmarkBareSwitch100k is the floor for BenchmarkEventFanout: 100,000
// tasks each doing one Sleep(0). Each task starts and suspends in its
// Sleep(0) untimed; then the loop runs until every task has resumed and
// returned: 100,000 task switches, timed, as the fan-out's 100,000
// wake-ups are. Twin: bare_switch.
func BenchmarkBareSwitch100k(b *testing.B) {
	benchParked(b, "switch", func(ctx context.Context) error { return loop.Sleep(ctx, 0) }, nil, nil)
}

// benchParked starts fanoutTasks() tasks that each call park once, lets
// them all reach it untimed, then times trigger (if any) and the loop
// running until every task has returned. It reports ns and allocs per
// task, naming the unit what.
func benchParked(b *testing.B, what string, park func(ctx context.Context) error, reset, trigger func()) {
	n := fanoutTasks()
	b.ReportAllocs()
	b.StopTimer()
	var allocs uint64
	for range b.N {
		if reset != nil {
			reset()
		}
		l := loop.New()
		done := loop.NewFuture[struct{}](l)
		left := n
		body := func(ctx context.Context) (struct{}, error) {
			if err := park(ctx); err != nil {
				return struct{}{}, err
			}
			if left--; left == 0 {
				done.SetResult(struct{}{})
			}
			return struct{}{}, nil
		}
		for range n {
			loop.CreateTask(l, body)
		}
		lqRunOnce(b, l) // every task starts and parks
		m0 := lqMallocs()
		b.StartTimer()
		if trigger != nil {
			trigger()
		}
		if err := l.RunUntilComplete(done); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		allocs += lqMallocs() - m0
		if err := l.Close(); err != nil {
			b.Fatal(err)
		}
	}
	per := float64(b.N) * float64(n)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/per, "ns/"+what)
	b.ReportMetric(float64(allocs)/per, "allocs/"+what)
}

// BenchmarkQueuePingPong is one op: an item handed from one task to
// another through an empty Queue, whose Get has to wait each time. With
// derived=true the getter waits with context.WithTimeout(ctx, time.Hour),
// as a Go handler would: the cost of watching a derived ctx per await
// (docs/design.md).
func BenchmarkQueuePingPong(b *testing.B) {
	for _, derived := range []bool{false, true} {
		b.Run(fmt.Sprintf("derived=%v", derived), func(b *testing.B) {
			b.ReportAllocs()
			lqRun(b, func(ctx context.Context) error {
				ping, pong := loop.NewQueue[int](1), loop.NewQueue[int](1)
				echo := loop.Go(ctx, func(ctx context.Context) error {
					gctx := ctx
					if derived {
						c, cancel := context.WithTimeout(ctx, time.Hour)
						defer cancel()
						gctx = c
					}
					for range b.N {
						v, err := ping.Get(gctx)
						if err != nil {
							return err
						}
						if err := pong.Put(ctx, v); err != nil {
							return err
						}
					}
					return nil
				})
				b.ResetTimer()
				for i := range b.N {
					if err := ping.Put(ctx, i); err != nil {
						return err
					}
					if _, err := pong.Get(ctx); err != nil {
						return err
					}
				}
				_, err := echo.Await(ctx)
				return err
			})
		})
	}
}

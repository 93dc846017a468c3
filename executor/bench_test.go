package executor_test

// Benchmarks of issue 4, the ThreadPool half: a trivial call's round trip
// through a ThreadPool, alone and with many calls in flight, and the same
// through loop.RunInExecutor. The ProcessPool half, and the pipe floor
// under it, are in executor/processpool. Their Python twins
// (run_in_executor with ThreadPoolExecutor and ProcessPoolExecutor) are in
// docs/bench/peers/executor.py; docs/bench/run.sh runs both sides and
// writes docs/bench/README.md.
//
// Each benchmark reports allocations and a metric in the unit a person
// compares: µs/call for a sequential round trip, calls/s with calls in
// flight.

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/internal/exectest"

	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/loop"
)

func benchThreadPool(b *testing.B) *executor.ThreadPool {
	b.Helper()
	tp, err := executor.NewThreadPool(executor.ThreadPoolOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { tp.Shutdown(true, false) })
	return tp
}

// localIdent is benchIdent's call for a ThreadPool: a closure, no encoding.
func localIdent(x int) executor.Call[int] {
	return executor.Local(func() (int, error) { return x, nil })
}

// BenchmarkThreadPoolRoundTrip: one trivial closure at a time on a
// ThreadPool of the default size.
func BenchmarkThreadPoolRoundTrip(b *testing.B) {
	tp := benchThreadPool(b)
	exectest.RoundTrips(b, tp, localIdent)
}

// BenchmarkThreadPoolConcurrent: exectest.InFlight trivial closures in flight
// on a ThreadPool of the default size (Python twin: gather of
// run_in_executor calls on ThreadPoolExecutor()).
func BenchmarkThreadPoolConcurrent(b *testing.B) {
	tp := benchThreadPool(b)
	exectest.Stream(b, tp, localIdent)
}

// BenchmarkLoopRunInExecutorThreadConcurrent: the same on a ThreadPool of
// the default size, the shape of Python's ThreadPoolExecutor twin.
func BenchmarkLoopRunInExecutorThreadConcurrent(b *testing.B) {
	tp := benchThreadPool(b)
	loopInFlight(b, tp, localIdent)
}

// loopInFlight is inFlight from a task: RunInExecutor's futures awaited in
// order, exectest.InFlight of them pending.
func loopInFlight(b *testing.B, ex executor.Executor, bind func(int) executor.Call[int]) {
	b.ReportAllocs()
	var elapsed time.Duration
	_, err := loop.Run(context.Background(), func(ctx context.Context) (struct{}, error) {
		ring := make([]*loop.Future[int], exectest.InFlight)
		collect := func(i int) error {
			if v, err := ring[i%exectest.InFlight].Await(ctx); v != i || err != nil {
				return fmt.Errorf("call %d = %d, %v", i, v, err)
			}
			return nil
		}
		b.ResetTimer()
		start := time.Now()
		for i := range b.N {
			if i >= exectest.InFlight {
				if err := collect(i - exectest.InFlight); err != nil {
					return struct{}{}, err
				}
			}
			ring[i%exectest.InFlight] = loop.RunInExecutor(ctx, ex, bind(i))
		}
		for i := max(0, b.N-exectest.InFlight); i < b.N; i++ {
			if err := collect(i); err != nil {
				return struct{}{}, err
			}
		}
		elapsed = time.Since(start)
		b.StopTimer()
		return struct{}{}, nil
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "calls/s")
}

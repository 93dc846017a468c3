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

	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/loop"
)

// benchInFlight is how many calls the concurrent benchmarks keep submitted
// and not yet collected.
const benchInFlight = 1024

func benchThreadPool(b *testing.B) *executor.ThreadPool {
	b.Helper()
	tp, err := executor.NewThreadPool(executor.ThreadPoolOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { tp.Shutdown(true, false) })
	return tp
}

// reportSequential reports a sequential benchmark's µs/call and calls/s.
func reportSequential(b *testing.B, elapsed time.Duration) {
	b.ReportMetric(elapsed.Seconds()*1e6/float64(b.N), "µs/call")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "calls/s")
}

// roundTrips makes b.N sequential calls of bind(i) on ex.
func roundTrips(b *testing.B, ex executor.Executor, bind func(int) executor.Call[int]) {
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		f, err := executor.Submit(ex, bind(i))
		if err != nil {
			b.Fatal(err)
		}
		if v, err := f.Result(context.Background()); v != i || err != nil {
			b.Fatalf("call %d = %d, %v", i, v, err)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	reportSequential(b, elapsed)
}

// inFlight makes b.N calls of bind(i) on ex, keeping benchInFlight of them
// submitted and collecting them in order.
func inFlight(b *testing.B, ex executor.Executor, bind func(int) executor.Call[int]) {
	b.ReportAllocs()
	ring := make([]*executor.Future[int], benchInFlight)
	b.ResetTimer()
	start := time.Now()
	collect := func(i int) {
		f := ring[i%benchInFlight]
		if v, err := f.Result(context.Background()); v != i || err != nil {
			b.Fatalf("call %d = %d, %v", i, v, err)
		}
	}
	for i := range b.N {
		if i >= benchInFlight {
			collect(i - benchInFlight)
		}
		f, err := executor.Submit(ex, bind(i))
		if err != nil {
			b.Fatal(err)
		}
		ring[i%benchInFlight] = f
	}
	for i := max(0, b.N-benchInFlight); i < b.N; i++ {
		collect(i)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "calls/s")
}

// localIdent is benchIdent's call for a ThreadPool: a closure, no encoding.
func localIdent(x int) executor.Call[int] {
	return executor.Local(func() (int, error) { return x, nil })
}

// BenchmarkThreadPoolRoundTrip: one trivial closure at a time on a
// ThreadPool of the default size.
func BenchmarkThreadPoolRoundTrip(b *testing.B) {
	tp := benchThreadPool(b)
	roundTrips(b, tp, localIdent)
}

// BenchmarkThreadPoolConcurrent: benchInFlight trivial closures in flight
// on a ThreadPool of the default size (Python twin: gather of
// run_in_executor calls on ThreadPoolExecutor()).
func BenchmarkThreadPoolConcurrent(b *testing.B) {
	tp := benchThreadPool(b)
	inFlight(b, tp, localIdent)
}

// BenchmarkLoopRunInExecutorThreadConcurrent: the same on a ThreadPool of
// the default size, the shape of Python's ThreadPoolExecutor twin.
func BenchmarkLoopRunInExecutorThreadConcurrent(b *testing.B) {
	tp := benchThreadPool(b)
	loopInFlight(b, tp, localIdent)
}

// loopInFlight is inFlight from a task: RunInExecutor's futures awaited in
// order, benchInFlight of them pending.
func loopInFlight(b *testing.B, ex executor.Executor, bind func(int) executor.Call[int]) {
	b.ReportAllocs()
	var elapsed time.Duration
	_, err := loop.Run(context.Background(), func(ctx context.Context) (struct{}, error) {
		ring := make([]*loop.Future[int], benchInFlight)
		collect := func(i int) error {
			if v, err := ring[i%benchInFlight].Await(ctx); v != i || err != nil {
				return fmt.Errorf("call %d = %d, %v", i, v, err)
			}
			return nil
		}
		b.ResetTimer()
		start := time.Now()
		for i := range b.N {
			if i >= benchInFlight {
				if err := collect(i - benchInFlight); err != nil {
					return struct{}{}, err
				}
			}
			ring[i%benchInFlight] = loop.RunInExecutor(ctx, ex, bind(i))
		}
		for i := max(0, b.N-benchInFlight); i < b.N; i++ {
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

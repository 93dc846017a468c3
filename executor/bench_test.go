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
	"testing"

	"github.com/asyncgo/asyncgo/internal/exectest"

	"github.com/asyncgo/asyncgo/executor"
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
	exectest.LoopStream(b, tp, localIdent)
}

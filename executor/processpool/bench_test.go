package processpool_test

// Benchmarks of issue 4, the ProcessPool half: a trivial call's round trip
// through a Pool, alone and with many calls in flight, the same through
// loop.RunInExecutor, and the raw floor under the Pool: a child of this
// binary echoing 8 bytes over its control socket. Their Python twins
// (run_in_executor with ProcessPoolExecutor) are in
// docs/bench/peers/executor.py; docs/bench/run.sh runs both sides and
// writes docs/bench/README.md. The ThreadPool half is in executor.
//
// Each benchmark reports allocations and a metric in the unit a person
// compares: µs/call for a sequential round trip, calls/s with calls in
// flight.

import (
	"context"
	"fmt"
	"io"
	"os"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/internal/exectest"

	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/executor/processpool"
	"github.com/asyncgo/asyncgo/internal/child"
	"github.com/asyncgo/asyncgo/loop"
)

// benchIdent is the trivial call: an int there and back.
var benchIdent = executor.Register("bench.ident", func(x int) (int, error) { return x, nil })

const echoRole = "executor-bench-echo"

func init() {
	// The floor's child: it echoes 8-byte messages on its control socket
	// until the parent closes it. Like a pool worker, it reads its end of
	// the socket as a blocking fd.
	child.RegisterRole(echoRole, func(ctrl *os.File) int {
		var buf [8]byte
		for {
			if _, err := io.ReadFull(ctrl, buf[:]); err != nil {
				return 0
			}
			if _, err := ctrl.Write(buf[:]); err != nil {
				return 0
			}
		}
	})
}

func benchProcessPool(b *testing.B, workers int) *processpool.Pool {
	b.Helper()
	p, err := processpool.New(processpool.Options{MaxWorkers: workers})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Shutdown(true, false) })
	// Start every worker before the clock does: submit enough to keep all
	// of them busy at once.
	var fs []*executor.Future[int]
	for i := range 4 * workers {
		f, err := executor.Submit(p, benchIdent.Bind(i))
		if err != nil {
			b.Fatal(err)
		}
		fs = append(fs, f)
	}
	for _, f := range fs {
		if _, err := f.Result(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	return p
}

// BenchmarkProcessPoolRoundTrip: submit one trivial call to a pool of 2
// warm workers and wait for its result, again and again (Python twin:
// `await loop.run_in_executor(ProcessPoolExecutor(2), ident, i)` in a loop).
func BenchmarkProcessPoolRoundTrip(b *testing.B) {
	p := benchProcessPool(b, 2)
	exectest.RoundTrips(b, p, benchIdent.Bind)
}

// BenchmarkProcessPoolConcurrent: 2 workers, exectest.InFlight calls in flight
// (Python twin: gather of 10,000 run_in_executor calls on PPE(2)).
func BenchmarkProcessPoolConcurrent(b *testing.B) {
	p := benchProcessPool(b, 2)
	exectest.Stream(b, p, benchIdent.Bind)
}

// BenchmarkPipeFloor is the floor under a ProcessPool round trip: a child of
// this binary echoes 8 bytes over its control socket, the parent writes
// them and reads them back, parking in the netpoller as a pool does.
func BenchmarkPipeFloor(b *testing.B) {
	sp := child.NewSpawner()
	defer sp.Close()
	p, err := sp.Start(echoRole)
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		p.Ctrl.Close()
		_, _ = p.Wait()
	}()
	var out, in [8]byte
	roundTrip := func(i int) {
		out[0], out[7] = byte(i), byte(i>>8)
		if _, err := p.Ctrl.Write(out[:]); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(p.Ctrl, in[:]); err != nil || in != out {
			b.Fatalf("echo %v = %v, %v", out, in, err)
		}
	}
	for i := range 100 { // the child is up and its pages are warm
		roundTrip(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		roundTrip(i)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(elapsed.Seconds()*1e6/float64(b.N), "µs/roundtrip")
}

// BenchmarkPipeFloorHandoff is BenchmarkPipeFloor with the echo read by
// another goroutine and handed to the caller through a channel: the cost of
// one goroutine hand-off added to the floor. A loop woken by
// CallSoonThreadsafe pays it too (see executor/waker.go for why it is large).
func BenchmarkPipeFloorHandoff(b *testing.B) {
	sp := child.NewSpawner()
	defer sp.Close()
	p, err := sp.Start(echoRole)
	if err != nil {
		b.Fatal(err)
	}
	echoes := make(chan [8]byte)
	go func() {
		defer close(echoes)
		var in [8]byte
		for {
			if _, err := io.ReadFull(p.Ctrl, in[:]); err != nil {
				return
			}
			echoes <- in
		}
	}()
	defer func() {
		p.Ctrl.Close()
		_, _ = p.Wait()
		for range echoes {
		}
	}()
	var out [8]byte
	roundTrip := func(i int) {
		out[0], out[7] = byte(i), byte(i>>8)
		if _, err := p.Ctrl.Write(out[:]); err != nil {
			b.Fatal(err)
		}
		if in := <-echoes; in != out {
			b.Fatalf("echo %v = %v", out, in)
		}
	}
	for i := range 100 {
		roundTrip(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		roundTrip(i)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(elapsed.Seconds()*1e6/float64(b.N), "µs/roundtrip")
}

// BenchmarkLoopRunInExecutorProcess: BenchmarkProcessPoolRoundTrip from a
// task, through loop.RunInExecutor and an await: what Python's twin
// measures.
func BenchmarkLoopRunInExecutorProcess(b *testing.B) {
	p := benchProcessPool(b, 2)
	b.ReportAllocs()
	var elapsed time.Duration
	_, err := loop.Run(context.Background(), func(ctx context.Context) (struct{}, error) {
		b.ResetTimer()
		start := time.Now()
		for i := range b.N {
			v, err := loop.RunInExecutor(ctx, p, benchIdent.Bind(i)).Await(ctx)
			if v != i || err != nil {
				return struct{}{}, fmt.Errorf("call %d = %d, %v", i, v, err)
			}
		}
		elapsed = time.Since(start)
		b.StopTimer()
		return struct{}{}, nil
	})
	if err != nil {
		b.Fatal(err)
	}
	exectest.ReportSequential(b, elapsed)
}

// BenchmarkLoopRunInExecutorProcessConcurrent: exectest.InFlight calls in
// flight from a task through loop.RunInExecutor, on 2 workers: the shape of
// Python's gather twin.
func BenchmarkLoopRunInExecutorProcessConcurrent(b *testing.B) {
	p := benchProcessPool(b, 2)
	exectest.LoopStream(b, p, benchIdent.Bind)
}

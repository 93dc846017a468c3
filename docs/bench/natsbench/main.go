// Command natsbench measures issue 13's workloads on executor/natsexec (an
// embedded nats-server, JetStream on a memory store, 2 local worker
// processes) and, for reference, the local executor.ProcessPool (2 worker
// processes). Its Python twin is docs/bench/peers/dask_exec.py; both are run
// by docs/bench/nats.sh. Every workload prints one JSON line,
// {"impl": ..., "name": ..., "metric": ..., "value": N}:
//
//	calls_1024   trivial calls (an int there and back) with 1,024 in flight,
//	             N calls collected in order (calls/s)
//	roundtrip    one trivial call at a time (µs/call)
//	arg_2mib     a 2 MiB []byte argument, its length back, 8 in flight (MB/s
//	             of argument, 10^6 bytes/s)
//
// Each is warmed up, then timed 3 times; the best run is reported.
//
//	go run ./docs/bench/natsbench                 # both impls
//	go run ./docs/bench/natsbench -impl natsexec  # one
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/executor/natsexec"
	"github.com/asyncgo/asyncgo/executor/processpool"
)

var (
	ident = executor.Register("natsbench.ident", func(x int) (int, error) { return x, nil })
	size  = executor.Register("natsbench.size", func(b []byte) (int, error) { return len(b), nil })
)

// inflight is natsexec's WorkerInFlight: the calls each worker process
// runs at once (its default, 0, is the host's CPUs: 2 here, which leaves
// the start and result round trips of 4 calls at a time as the limit).
var inflight = flag.Int("inflight", 64, "natsexec's WorkerInFlight (0: its default, NumCPU)")

func main() {
	executor.Init() // a worker process (pool's or natsexec's) runs here

	impl := flag.String("impl", "natsexec processpool", "impls to run, space-separated")
	calls := flag.Int("calls", 20000, "calls of calls_1024 per run")
	rounds := flag.Int("roundtrips", 2000, "calls of roundtrip per run")
	blobs := flag.Int("blobs", 200, "2 MiB arguments of arg_2mib per run")
	flag.Parse()

	for _, name := range []string{"natsexec", "processpool"} {
		if !contains(*impl, name) {
			continue
		}
		ex, err := open(name)
		if err != nil {
			fmt.Fprintln(os.Stderr, "natsbench:", name, err)
			os.Exit(1)
		}
		emit(name, "calls_1024", "calls/s", best(func() float64 { return inFlight(ex, *calls, 1024) }))
		emit(name, "roundtrip", "µs/call", -best(func() float64 { return -roundtrip(ex, *rounds) }))
		emit(name, "arg_2mib", "MB/s", best(func() float64 { return blobRate(ex, *blobs, 8) }))
		ex.Shutdown(true, false)
	}
}

func open(name string) (executor.Executor, error) {
	if name == "natsexec" {
		return natsexec.New(natsexec.Options{MemoryStorage: true, LocalWorkers: 2, WorkerInFlight: *inflight})
	}
	return processpool.New(processpool.Options{MaxWorkers: 2})
}

// best runs f once to warm up, then 3 times, and returns the largest.
func best(f func() float64) float64 {
	f()
	b := f()
	for range 2 {
		b = max(b, f())
	}
	return b
}

// inFlight submits n calls of ident, at most depth in flight, collected in
// order: calls/s.
func inFlight(ex executor.Executor, n, depth int) float64 {
	fs := make([]*executor.Future[int], 0, depth)
	start := time.Now()
	next := 0
	for i := range n {
		if len(fs)-next == depth {
			wait(fs[next], next)
			next++
		}
		fs = append(fs, submit(ex, ident.Bind(i)))
	}
	for ; next < len(fs); next++ {
		wait(fs[next], next)
	}
	return float64(n) / time.Since(start).Seconds()
}

// roundtrip is one call at a time: µs per call.
func roundtrip(ex executor.Executor, n int) float64 {
	start := time.Now()
	for i := range n {
		wait(submit(ex, ident.Bind(i)), i)
	}
	return float64(time.Since(start).Microseconds()) / float64(n)
}

// blobRate sends n 2 MiB arguments, depth in flight: MB/s of argument.
func blobRate(ex executor.Executor, n, depth int) float64 {
	b := make([]byte, 2<<20)
	for i := range b {
		b[i] = byte(i * 7)
	}
	var fs []*executor.Future[int]
	start := time.Now()
	next := 0
	for range n {
		if len(fs)-next == depth {
			waitLen(fs[next], len(b))
			next++
		}
		fs = append(fs, submit(ex, size.Bind(b)))
	}
	for ; next < len(fs); next++ {
		waitLen(fs[next], len(b))
	}
	return float64(n*len(b)) / 1e6 / time.Since(start).Seconds()
}

func submit[R any](ex executor.Executor, c executor.Call[R]) *executor.Future[R] {
	f, err := executor.Submit(ex, c)
	if err != nil {
		fail(err)
	}
	return f
}

func wait(f *executor.Future[int], want int) {
	if v, err := f.Result(context.Background()); err != nil || v != want {
		fail(fmt.Errorf("ident(%d) = %d, %v", want, v, err))
	}
}

func waitLen(f *executor.Future[int], want int) {
	if v, err := f.Result(context.Background()); err != nil || v != want {
		fail(fmt.Errorf("size = %d, %v; want %d", v, err, want))
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "natsbench:", err)
	os.Exit(1)
}

func emit(impl, name, metric string, v float64) {
	b, _ := json.Marshal(map[string]any{"impl": impl, "name": name, "metric": metric, "value": v})
	fmt.Println(string(b))
}

func contains(list, s string) bool {
	return slices.Contains(strings.FieldsFunc(list, func(r rune) bool { return r == ' ' || r == ',' }), s)
}

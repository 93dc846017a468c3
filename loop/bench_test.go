package loop_test

// Benchmarks of the loop's hot paths (issue 2, item 11). Their Python twins
// are in docs/bench/peers/, and docs/bench/run.sh runs both sides and writes
// docs/bench/README.md. Wall-clock time is used only here, never in tests.
//
// Each benchmark reports allocations and a custom metric named in the unit a
// person compares (callbacks/s, ns/switch, tasks/s, ms, bytes/task).

import (
	"context"
	"encoding/json"
	"iter"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/loop"
)

// benchRace reports whether the test binary was built with -race. The race
// detector allows at most 8128 live goroutines, so the million-task
// benchmark shrinks under it.
var benchRace = func() bool {
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

// benchRunOnce runs exactly one iteration of l: what is ready now, and nothing
// that it schedules.
func benchRunOnce(b *testing.B, l *loop.Loop) {
	l.Stop()
	if err := l.RunForever(); err != nil {
		b.Fatal(err)
	}
}

func benchCloseLoop(b *testing.B, l *loop.Loop) {
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
}

// benchMallocs returns the number of heap allocations made so far.
func benchMallocs() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.Mallocs
}

// BenchmarkCallSoon measures CallSoon throughput: one op is one callback
// scheduled and run. Callbacks are scheduled in batches of 1,024, then one
// loop iteration runs the batch (CallSoon(Stop) + RunForever). The callback
// is a func value made once and the handle is dropped, so the steady state
// allocates nothing.
func BenchmarkCallSoon(b *testing.B) {
	const batch = 1024
	l := loop.New()
	defer benchCloseLoop(b, l)
	ran := 0
	cb := func() { ran++ }
	stop := l.Stop
	schedule := func(n int) {
		for range n {
			l.CallSoon(cb)
		}
		l.CallSoon(stop)
		if err := l.RunForever(); err != nil {
			b.Fatal(err)
		}
	}
	schedule(batch) // warm up: the ring and the pooled handle records
	ran = 0
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; done += batch {
		schedule(min(batch, b.N-done))
	}
	b.StopTimer()
	if ran != b.N {
		b.Fatalf("ran %d callbacks, want %d", ran, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "callbacks/s")
}

const (
	benchTasks  = 1000 // tasks (or coroutines) alive at once
	benchRounds = 1000 // Sleep(0)s (or hops) per task
)

// BenchmarkTaskSwitch is 1,000 tasks each doing Sleep(ctx, 0) 1,000 times:
// one op is the 1,000,000 switches. The tasks are created and parked on a
// gate before the clock starts, so creating their coroutines is not timed;
// a switch is one Sleep(0): the task hands control to the loop, which
// resumes the next ready task.
func BenchmarkTaskSwitch(b *testing.B) {
	b.ReportAllocs()
	var allocs uint64
	b.StopTimer()
	for range b.N {
		l := loop.New()
		gate := loop.NewFuture[struct{}](l)
		done := loop.NewFuture[struct{}](l)
		left := benchTasks
		body := func(ctx context.Context) (struct{}, error) {
			if _, err := gate.Await(ctx); err != nil {
				return struct{}{}, err
			}
			for range benchRounds {
				if err := loop.Sleep(ctx, 0); err != nil {
					return struct{}{}, err
				}
			}
			if left--; left == 0 {
				_ = done.SetResult(struct{}{})
			}
			return struct{}{}, nil
		}
		for range benchTasks {
			loop.CreateTask(l, body)
		}
		benchRunOnce(b, l) // every task starts and parks on the gate

		m0 := benchMallocs()
		b.StartTimer()
		_ = gate.SetResult(struct{}{})
		if err := l.RunUntilComplete(done); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		allocs += benchMallocs() - m0
		benchCloseLoop(b, l)
	}
	switches := float64(b.N) * benchTasks * benchRounds
	ns := float64(b.Elapsed().Nanoseconds())
	b.ReportMetric(ns/switches, "ns/switch")
	b.ReportMetric(switches/b.Elapsed().Seconds(), "switches/s")
	b.ReportMetric(float64(allocs)/switches, "allocs/switch")
}

// BenchmarkPullRoundRobin is the floor for BenchmarkTaskSwitch: a bare
// iter.Pull round-robin over 1,000 coroutines, each yielding 1,000 times,
// with no loop, queue or task in between. One hop is one next() call: the
// round trip into a coroutine and back, as one Sleep(0) is.
func BenchmarkPullRoundRobin(b *testing.B) {
	b.ReportAllocs()
	b.StopTimer()
	hops := 0
	for range b.N {
		nexts := make([]func() (struct{}, bool), benchTasks)
		stops := make([]func(), benchTasks)
		for i := range nexts {
			nexts[i], stops[i] = iter.Pull(func(yield func(struct{}) bool) {
				for yield(struct{}{}) {
				}
			})
			nexts[i]() // start it: it parks in its first yield
		}
		b.StartTimer()
		for range benchRounds {
			for _, next := range nexts {
				next()
				hops++
			}
		}
		b.StopTimer()
		for _, stop := range stops {
			stop()
		}
	}
	if hops != b.N*benchTasks*benchRounds {
		b.Fatalf("hops %d", hops)
	}
	ns := float64(b.Elapsed().Nanoseconds())
	b.ReportMetric(ns/float64(hops), "ns/hop")
	b.ReportMetric(float64(hops)/b.Elapsed().Seconds(), "hops/s")
}

// BenchmarkSpawnAwait is create_task + await of a trivial task from a main
// task: one op is one Spawn and its Await (two loop iterations: the child
// runs, then the main task resumes).
func BenchmarkSpawnAwait(b *testing.B) {
	b.ReportAllocs()
	trivial := func(ctx context.Context) (int, error) { return 1, nil }
	sum := 0
	_, err := loop.Run(context.Background(), func(ctx context.Context) (struct{}, error) {
		// Warm up: a finished task leaves its coroutine for the next one.
		if _, err := loop.Spawn(ctx, trivial).Await(ctx); err != nil {
			return struct{}{}, err
		}
		b.ResetTimer()
		for range b.N {
			v, err := loop.Spawn(ctx, trivial).Await(ctx)
			if err != nil {
				return struct{}{}, err
			}
			sum += v
		}
		b.StopTimer()
		return struct{}{}, nil
	})
	if err != nil {
		b.Fatal(err)
	}
	if sum != b.N {
		b.Fatalf("sum %d, want %d", sum, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tasks/s")
}

// BenchmarkTimers100k schedules 100,000 CallLater timers with random delays
// in [0, 100ms) on the real clock and runs the loop until the last fires.
// total-ms is from the first CallLater to the last callback (mean over
// ops); late-ms is the worst lateness of any callback, the time it ran
// minus its deadline (TimerHandle.When), over all ops; sched-ms is the time
// the 100,000 CallLater calls themselves take (mean): a timer whose delay is
// shorter than that is late before the loop can look at it, so
// late-after-sched-ms is the worst lateness among the timers whose deadline
// came after the scheduling ended.
func BenchmarkTimers100k(b *testing.B) {
	const (
		n      = 100_000
		spread = 100 * time.Millisecond
	)
	b.ReportAllocs()
	rng := rand.New(rand.NewPCG(1, 2))
	delays := make([]time.Duration, n)
	handles := make([]*loop.TimerHandle, n)
	var totalSum, schedSum, worst, worstAfter time.Duration
	b.ResetTimer()
	for range b.N {
		for i := range delays {
			delays[i] = time.Duration(rng.Int64N(int64(spread)))
		}
		l := loop.New()
		fired := 0
		var start, scheduled, last time.Time
		var late, lateAfter time.Duration
		l.CallSoon(func() {
			start = time.Now()
			for i, d := range delays {
				handles[i] = l.CallLater(d, func() {
					now := time.Now()
					when := handles[i].When()
					lt := now.Sub(when)
					late = max(late, lt)
					if when.After(scheduled) {
						lateAfter = max(lateAfter, lt)
					}
					if fired++; fired == n {
						last = now
						l.Stop()
					}
				})
			}
			scheduled = time.Now()
		})
		if err := l.RunForever(); err != nil {
			b.Fatal(err)
		}
		benchCloseLoop(b, l)
		if fired != n {
			b.Fatalf("fired %d of %d", fired, n)
		}
		totalSum += last.Sub(start)
		schedSum += scheduled.Sub(start)
		worst = max(worst, late)
		worstAfter = max(worstAfter, lateAfter)
	}
	b.StopTimer()
	clear(handles)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(totalSum)/float64(b.N), "total-ms")
	b.ReportMetric(ms(worst), "late-ms")
	b.ReportMetric(ms(schedSum)/float64(b.N), "sched-ms")
	b.ReportMetric(ms(worstAfter), "late-after-sched-ms")
}

// memChildEnv, when set, makes BenchmarkMemPerTask the measuring child:
// it measures once and writes its result as JSON to the file named.
const memChildEnv = "ASYNCGO_BENCH_MEM_OUT"

// memResult is what the measuring child reports.
type memResult struct {
	Tasks  int     `json:"tasks"`
	InUse  float64 `json:"inuse"`  // HeapInuse+StackInuse growth, bytes
	Sys    float64 `json:"sys"`    // Sys growth, bytes
	Allocs float64 `json:"allocs"` // heap allocations while the tasks were made and parked
}

// BenchmarkMemPerTask parks 1,000,000 tasks on one future and measures the
// memory they hold: the growth of HeapInuse+StackInuse (and of Sys, what
// the process took from the OS) between before they exist and when all are
// parked, after a GC each time, divided by the number of tasks. Then the
// future is set and every task ends.
//
// Each measurement runs in a fresh process (the test binary again, running
// only this benchmark): the runtime keeps the records of dead goroutines
// and their stacks for reuse, so a second million tasks in the same process
// would look almost free. The op's time includes starting that process.
func BenchmarkMemPerTask(b *testing.B) {
	if out := os.Getenv(memChildEnv); out != "" {
		r := measureMemPerTask(b)
		data, err := json.Marshal(r)
		if err == nil {
			err = os.WriteFile(out, data, 0o644)
		}
		if err != nil {
			b.Fatal(err)
		}
		return
	}
	var sum memResult
	for range b.N {
		out := filepath.Join(b.TempDir(), "mem.json")
		cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^BenchmarkMemPerTask$", "-test.benchtime=1x")
		cmd.Env = append(os.Environ(), memChildEnv+"="+out)
		if msg, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("measuring child: %v\n%s", err, msg)
		}
		data, err := os.ReadFile(out)
		if err != nil {
			b.Fatal(err)
		}
		var r memResult
		if err := json.Unmarshal(data, &r); err != nil {
			b.Fatal(err)
		}
		sum.Tasks += r.Tasks
		sum.InUse += r.InUse
		sum.Sys += r.Sys
		sum.Allocs += r.Allocs
	}
	per := float64(sum.Tasks)
	b.ReportMetric(sum.InUse/per, "bytes/task")
	b.ReportMetric(sum.Sys/per, "sys-bytes/task")
	b.ReportMetric(sum.Allocs/per, "allocs/task")
}

func measureMemPerTask(b *testing.B) memResult {
	n := 1_000_000
	if benchRace {
		n = 4_000
	}
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)

	l := loop.New()
	gate := loop.NewFuture[int](l)
	left := n
	done := loop.NewFuture[struct{}](l)
	body := func(ctx context.Context) (int, error) {
		v, err := gate.Await(ctx)
		if left--; left == 0 {
			_ = done.SetResult(struct{}{})
		}
		return v, err
	}
	for range n {
		loop.CreateTask(l, body)
	}
	benchRunOnce(b, l) // every task starts and parks on the gate

	runtime.GC()
	runtime.ReadMemStats(&m1)
	r := memResult{
		Tasks:  n,
		InUse:  float64(m1.HeapInuse+m1.StackInuse) - float64(m0.HeapInuse+m0.StackInuse),
		Sys:    float64(m1.Sys) - float64(m0.Sys),
		Allocs: float64(m1.Mallocs - m0.Mallocs),
	}

	_ = gate.SetResult(1)
	if err := l.RunUntilComplete(done); err != nil {
		b.Fatal(err)
	}
	benchCloseLoop(b, l)
	return r
}

// Package exectest holds what the tests and benchmarks of executor,
// executor/processpool and internal/child share: the benchmark drivers
// that measure a round trip and a stream of calls kept in flight (from a
// goroutine, or from a loop's task through RunInExecutor), a bound
// on a call that must not hang, and a pidfd's exit. Test code only.
package exectest

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/loop"
	"golang.org/x/sys/unix"
)

// InFlight is how many calls the concurrent benchmarks keep submitted and
// not yet collected.
const InFlight = 1024

// ReportSequential reports a sequential benchmark's µs/call and calls/s.
func ReportSequential(b *testing.B, elapsed time.Duration) {
	b.ReportMetric(elapsed.Seconds()*1e6/float64(b.N), "µs/call")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "calls/s")
}

// RoundTrips makes b.N sequential calls of bind(i) on ex, each waited for
// before the next, and reports them with ReportSequential.
func RoundTrips(b *testing.B, ex executor.Executor, bind func(int) executor.Call[int]) {
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
	ReportSequential(b, elapsed)
}

// Stream makes b.N calls of bind(i) on ex, keeping InFlight of them
// submitted and collecting them in order, and reports calls/s.
func Stream(b *testing.B, ex executor.Executor, bind func(int) executor.Call[int]) {
	b.ReportAllocs()
	ring := make([]*executor.Future[int], InFlight)
	b.ResetTimer()
	start := time.Now()
	collect := func(i int) {
		f := ring[i%InFlight]
		if v, err := f.Result(context.Background()); v != i || err != nil {
			b.Fatalf("call %d = %d, %v", i, v, err)
		}
	}
	for i := range b.N {
		if i >= InFlight {
			collect(i - InFlight)
		}
		f, err := executor.Submit(ex, bind(i))
		if err != nil {
			b.Fatal(err)
		}
		ring[i%InFlight] = f
	}
	for i := max(0, b.N-InFlight); i < b.N; i++ {
		collect(i)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "calls/s")
}

// LoopStream is Stream from a task: RunInExecutor's futures awaited in
// order, InFlight of them pending.
func LoopStream(b *testing.B, ex executor.Executor, bind func(int) executor.Call[int]) {
	b.ReportAllocs()
	var elapsed time.Duration
	_, err := loop.Run(context.Background(), func(ctx context.Context) (struct{}, error) {
		ring := make([]*loop.Future[int], InFlight)
		collect := func(i int) error {
			if v, err := ring[i%InFlight].Await(ctx); v != i || err != nil {
				return fmt.Errorf("call %d = %d, %v", i, v, err)
			}
			return nil
		}
		b.ResetTimer()
		start := time.Now()
		for i := range b.N {
			if i >= InFlight {
				if err := collect(i - InFlight); err != nil {
					return struct{}{}, err
				}
			}
			ring[i%InFlight] = loop.RunInExecutor(ctx, ex, bind(i))
		}
		for i := max(0, b.N-InFlight); i < b.N; i++ {
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

// Within fails the test if fn has not returned after d: a bound for a
// hang, never a timing the test relies on. fn runs on another goroutine,
// so it must not call t.Fatal.
func Within(t *testing.T, d time.Duration, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s: still blocked after %v", what, d)
	}
}

// Exited reports whether the process of pidfd fd exits within d (0: has
// already exited).
func Exited(fd int, d time.Duration) bool {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, int(d.Milliseconds()))
		if err == unix.EINTR {
			continue
		}
		return err == nil && n > 0
	}
}

// ThreadPoolWorkers counts the goroutines of every executor.ThreadPool of
// the process that are alive now.
func ThreadPoolWorkers() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	return strings.Count(string(buf), "executor.(*threadPool).worker(")
}

// WaitThreadPoolWorkers runs the garbage collector until at most n
// ThreadPool goroutines are left (a dropped pool ends its goroutines when
// collected), and fails the test if a minute is not enough. It blocks the
// caller: from a loop, call it only when nothing on the pools waits for
// the loop.
func WaitThreadPoolWorkers(t testing.TB, n int, what string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for ThreadPoolWorkers() > n {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d ThreadPool goroutines a minute on; want at most %d", what, ThreadPoolWorkers(), n)
		}
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
}

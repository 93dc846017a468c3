package loop_test

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/executor/processpool"
	"github.com/asyncgo/asyncgo/loop"
)

// benchBigLen runs in a worker process: it receives a large argument and
// returns its length.
var benchBigLen = executor.Register("loop_test.bigLen", func(b []byte) (int, error) { return len(b), nil })

// BenchmarkRunInExecutorLoopDelay2MiB: what a large call through
// loop.RunInExecutor costs the loop's other callbacks. A ticker scheduled
// with CallLater every millisecond measures how late it runs, while a task
// makes calls of a 2 MiB argument, one in flight at a time, on a process
// pool of one worker: every call finds the worker idle, the case where
// Submit used to encode and write the call itself. The loop must never
// wait for an executor (DESIGN.md: encoding and writing a call happen off
// the loop's goroutine), so the ticker's delay should be that of a busy
// machine, not the time it takes to encode and write 2 MiB. Reports the
// ticks' median, 99th percentile and worst delay, the longest a
// RunInExecutor call took to return on the loop's goroutine, and the
// calls' throughput.
func BenchmarkRunInExecutorLoopDelay2MiB(b *testing.B) {
	pool, err := processpool.New(processpool.Options{MaxWorkers: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Shutdown(true, false)
	payload := make([]byte, 2<<20)
	for i := range payload {
		payload[i] = byte(i)
	}
	const inFlight = 1
	const period = time.Millisecond
	var delays []time.Duration
	var elapsed, worstSubmit time.Duration
	_, err = loop.Run(context.Background(), func(ctx context.Context) (struct{}, error) {
		l, err := loop.RunningLoop(ctx)
		if err != nil {
			return struct{}{}, err
		}
		// Warm: the worker started, the payload's type sent once.
		var warm []loop.Awaitable[int]
		for range 2 * inFlight {
			warm = append(warm, loop.RunInExecutor(ctx, pool, benchBigLen.Bind(payload)))
		}
		if _, err := loop.Gather(ctx, warm...).Await(ctx); err != nil {
			return struct{}{}, err
		}
		stop := false
		due := time.Now().Add(period)
		var tick func()
		tick = func() {
			delays = append(delays, time.Since(due))
			if stop {
				return
			}
			due = time.Now().Add(period)
			l.CallLater(period, tick)
		}
		l.CallLater(period, tick)
		ring := make([]*loop.Future[int], inFlight)
		collect := func(i int) error {
			if v, err := ring[i%inFlight].Await(ctx); v != len(payload) || err != nil {
				return fmt.Errorf("call %d = %d, %v", i, v, err)
			}
			return nil
		}
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		for i := range b.N {
			if i >= inFlight {
				if err := collect(i - inFlight); err != nil {
					return struct{}{}, err
				}
			}
			t0 := time.Now()
			ring[i%inFlight] = loop.RunInExecutor(ctx, pool, benchBigLen.Bind(payload))
			worstSubmit = max(worstSubmit, time.Since(t0))
		}
		for i := max(0, b.N-inFlight); i < b.N; i++ {
			if err := collect(i); err != nil {
				return struct{}{}, err
			}
		}
		elapsed = time.Since(start)
		b.StopTimer()
		stop = true
		return struct{}{}, nil
	})
	if err != nil {
		b.Fatal(err)
	}
	if len(delays) == 0 {
		return
	}
	sort.Slice(delays, func(i, j int) bool { return delays[i] < delays[j] })
	b.ReportMetric(float64(delays[len(delays)/2].Microseconds()), "p50-delay-µs")
	b.ReportMetric(float64(delays[len(delays)-1].Microseconds()), "max-delay-µs")
	b.ReportMetric(float64(delays[len(delays)*99/100].Microseconds()), "p99-delay-µs")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "calls/s")
	b.ReportMetric(float64(worstSubmit.Microseconds()), "max-submit-µs")
}

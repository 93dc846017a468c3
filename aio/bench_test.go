package aio_test

import (
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/aio"
	"github.com/asyncgo/asyncgo/executor"
)

type pingArgs struct {
	A, B *aio.Event
	N    int
}

var eventPong = executor.Register("aio_test.eventPong", func(a pingArgs) (struct{}, error) {
	for i := 0; i < a.N; i++ {
		if err := a.A.Wait(); err != nil {
			return struct{}{}, err
		}
		a.A.Clear()
		a.B.Set()
	}
	return struct{}{}, nil
})

var queueEcho = executor.Register("aio_test.queueEcho", func(a echoArgs) (struct{}, error) {
	for i := 0; i < a.N; i++ {
		v, err := a.In.Get()
		if err != nil {
			return struct{}{}, err
		}
		if err := a.Out.Put(v); err != nil {
			return struct{}{}, err
		}
	}
	return struct{}{}, nil
})

// BenchmarkEventRoundTrip: the parent sets A, the child waits for A,
// clears it and sets B, the parent waits for B and clears it.
func BenchmarkEventRoundTrip(b *testing.B) {
	ea, eb := aio.NewEvent(), aio.NewEvent()
	p := aio.NewProcess(eventPong.Bind(pingArgs{A: ea, B: eb, N: b.N}))
	if err := p.Start(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ea.Set()
		eb.Wait()
		eb.Clear()
	}
	b.StopTimer()
	p.Join()
}

// BenchmarkQueueThroughput: items parent -> child -> parent, up to 500 in
// flight.
func BenchmarkQueueThroughput(b *testing.B) {
	in, out := aio.NewQueue[int](0), aio.NewQueue[int](0)
	p := aio.NewProcess(queueEcho.Bind(echoArgs{In: in, Out: out, N: b.N}))
	if err := p.Start(); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	b.ResetTimer()
	sent := 0
	for got := 0; got < b.N; got++ {
		for sent < b.N && sent-got < 500 {
			in.Put(sent)
			sent++
		}
		if _, err := out.Get(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "items/s")
	p.Join()
}

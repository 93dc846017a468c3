//go:build linux

package processpool_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/executor/processpool"
)

// A Pool future's Result waits in the netpoller (executor/waker.go); these
// tests pin what it must keep of Result's contract.

// Result with a ctx that ends first (result(timeout)) returns ctx's error
// and leaves the call running; a later Result gets the outcome.
func TestProcessPoolResultCtxEnds(t *testing.T) {
	p := newPool(t, processpool.Options{MaxWorkers: 1})
	g := newGate(t)
	f := mustSubmit(t, p, g.call())
	g.waitStarted(1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := f.Result(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Result(ctx with a deadline) = %v; want context.DeadlineExceeded", err)
	}
	if f.Done() {
		t.Errorf("the future is done after Result's ctx ended")
	}
	if _, err := f.Result(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Result(expired ctx) = %v; want context.DeadlineExceeded", err)
	}
	p.Kill(0) // ends the gated call: the future fails, nothing hangs
	if _, err := f.Result(context.Background()); !errors.Is(err, executor.ErrBrokenProcessPool) {
		t.Errorf("Result() after Kill = %v; want ErrBrokenProcessPool", err)
	}
}

// Many goroutines waiting on the same and on different futures, more than
// the wakers kept for the netpoller, all get their results.
func TestProcessPoolManyWaiters(t *testing.T) {
	p := newPool(t, processpool.Options{MaxWorkers: 2})
	const calls, waitersPerCall = 50, 8
	var fs []*executor.Future[int]
	for i := range calls {
		f, err := executor.Submit(p, square.Bind(i))
		if err != nil {
			t.Fatal(err)
		}
		fs = append(fs, f)
	}
	var wg sync.WaitGroup
	errs := make(chan error, calls*waitersPerCall)
	for i, f := range fs {
		for range waitersPerCall {
			wg.Go(func() {
				if v, err := f.Result(context.Background()); v != i*i || err != nil {
					errs <- errors.Join(err, errors.New("wrong result"))
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// Many sequential calls reuse the wakers: a wake left over from one wait
// (a ctx's, or a second Result's) must not end the next wait early.
func TestProcessPoolSequentialResults(t *testing.T) {
	p := newPool(t, processpool.Options{MaxWorkers: 1})
	for i := range 300 {
		f, err := executor.Submit(p, square.Bind(i))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		v, err := f.Result(ctx)
		cancel()
		if v != i*i || err != nil {
			t.Fatalf("call %d = %d, %v; want %d, nil", i, v, err, i*i)
		}
		if v, err := f.Result(context.Background()); v != i*i || err != nil {
			t.Fatalf("second Result() of call %d = %d, %v; want %d, nil", i, v, err, i*i)
		}
	}
}

// A worker is idle again before its call's future completes, so calls made
// one after the other, by Result or by a done callback, all go to the
// first worker: the pool never starts a second one for them.
func TestProcessPoolSequentialCallsUseOneWorker(t *testing.T) {
	p := newPool(t, processpool.Options{MaxWorkers: 2})
	for i := range 100 {
		if v, err := res(executor.Submit(p, square.Bind(i))); v != i*i || err != nil {
			t.Fatalf("call %d = %d, %v", i, v, err)
		}
	}
	done := make(chan error, 1)
	var chain func(i int)
	chain = func(i int) {
		if i == 100 {
			done <- nil
			return
		}
		f, err := executor.Submit(p, square.Bind(i))
		if err != nil {
			done <- err
			return
		}
		f.AddDoneCallback(func(*executor.Future[int]) { chain(i + 1) })
	}
	chain(0)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if pids := p.Pids(); len(pids) != 1 {
		t.Errorf("sequential calls ran on workers %v; want one worker", pids)
	}
}

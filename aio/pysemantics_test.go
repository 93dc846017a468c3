//go:build linux

package aio_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/aio"
	"github.com/asyncgo/asyncgo/executor"
)

// threading.Barrier.wait returns the arrival index: 0 for the first to
// arrive, parties-1 for the last (test_threading's BarrierTests rely on
// the last one, index parties-1, being the one that resets).
func TestBarrierIndexIsArrivalOrder(t *testing.T) {
	b, err := aio.NewBarrier(2, nil, -1)
	if err != nil {
		t.Fatal(err)
	}
	first := make(chan int, 1)
	go func() {
		i, err := b.Wait()
		if err != nil {
			t.Error(err)
		}
		first <- i
	}()
	for b.NWaiting() != 1 {
		time.Sleep(time.Millisecond)
	}
	last, err := b.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if f := <-first; f != 0 || last != 1 {
		t.Fatalf("first to arrive got %d, last %d; want 0 and 1", f, last)
	}
}

// Condition.wait and notify without the lock raise RuntimeError in
// Python ("cannot wait on un-acquired lock"): here ErrNotHeld.
func TestConditionUnheldIsErrNotHeld(t *testing.T) {
	c, err := aio.NewCondition(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Notify(1); !errors.Is(err, aio.ErrNotHeld) {
		t.Errorf("Notify without the lock: %v, want ErrNotHeld", err)
	}
	if err := c.Wait(); !errors.Is(err, aio.ErrNotHeld) {
		t.Errorf("Wait without the lock: %v, want ErrNotHeld", err)
	}
}

// A zero or negative timeout does not wait, as Python's timeout=0 (and
// its semaphores' clamp of a negative one); a Condition's wait(0) takes
// its lock back and reports false; notify(n) with n <= 0 wakes nobody.
func TestZeroTimeoutsDoNotWait(t *testing.T) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		s := aio.NewSemaphore(0)
		if ok, err := s.AcquireTimeout(-time.Millisecond); ok || err != nil {
			t.Errorf("Semaphore.AcquireTimeout(-1ms) = %v, %v", ok, err)
		}
		l := aio.NewLock()
		if err := l.Acquire(); err != nil {
			t.Error(err)
			return
		}
		if ok, err := l.AcquireTimeout(0); ok || err != nil {
			t.Errorf("Lock.AcquireTimeout(0) of a held lock = %v, %v", ok, err)
		}
		e := aio.NewEvent()
		if ok, err := e.WaitTimeout(0); ok || err != nil {
			t.Errorf("Event.WaitTimeout(0) = %v, %v", ok, err)
		}
		q := aio.NewQueue[int](1)
		if _, err := q.GetTimeout(0); !errors.Is(err, aio.ErrEmpty) {
			t.Errorf("GetTimeout(0) of an empty queue: %v", err)
		}
		if err := q.Put(1); err != nil {
			t.Error(err)
		}
		if err := q.PutTimeout(2, -time.Second); !errors.Is(err, aio.ErrFull) {
			t.Errorf("PutTimeout(-1s) to a full queue: %v", err)
		}
		c, err := aio.NewCondition(nil)
		if err != nil {
			t.Error(err)
			return
		}
		if err := c.Acquire(); err != nil {
			t.Error(err)
			return
		}
		if ok, err := c.WaitTimeout(0); ok || err != nil {
			t.Errorf("Condition.WaitTimeout(0) = %v, %v", ok, err)
		}
		if ok, err := c.WaitFor(func() bool { return false }, 0); ok || err != nil {
			t.Errorf("WaitFor(false, 0) = %v, %v", ok, err)
		}
		if err := c.Release(); err != nil { // WaitTimeout took it back
			t.Errorf("Release after WaitTimeout(0): %v", err)
		}
		b, err := aio.NewBarrier(2, nil, -1)
		if err != nil {
			t.Error(err)
			return
		}
		if _, err := b.WaitTimeout(0); !errors.Is(err, aio.ErrBrokenBarrier) {
			t.Errorf("Barrier.WaitTimeout(0) of the first party: %v, want ErrBrokenBarrier", err)
		}
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("a call with a zero or negative timeout waited")
	}
}

func TestNotifyNonPositiveWakesNobody(t *testing.T) {
	c, err := aio.NewCondition(nil)
	if err != nil {
		t.Fatal(err)
	}
	holding := aio.NewEvent()
	woke := make(chan bool, 1)
	go func() {
		if err := c.Acquire(); err != nil {
			t.Error(err)
		}
		_ = holding.Set()
		ok, err := c.WaitTimeout(300 * time.Millisecond)
		if err != nil {
			t.Error(err)
		}
		_ = c.Release()
		woke <- ok
	}()
	if err := holding.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Acquire(); err != nil { // free once the waiter waits
		t.Fatal(err)
	}
	if err := c.Notify(-2); err != nil {
		t.Fatal(err)
	}
	if err := c.Release(); err != nil {
		t.Fatal(err)
	}
	if <-woke {
		t.Fatal("Notify(-2) woke the waiter; Python's notify(-2) wakes none")
	}
}

// Pool.map of no items checks the pool first (ValueError "Pool not
// running" in Python).
func TestMapOfNothingOnClosedPool(t *testing.T) {
	p := newTestPool(t, aio.PoolOptions{Processes: 1})
	p.Close()
	if err := p.Join(); err != nil {
		t.Fatal(err)
	}
	if _, err := aio.Map(p, poolSquare, nil, 0); !errors.Is(err, aio.ErrPoolNotRunning) {
		t.Errorf("Map of no items on a closed pool: %v", err)
	}
	if _, err := aio.MapAsync(p, poolSquare, nil, 0).Result(t.Context()); !errors.Is(err, aio.ErrPoolNotRunning) {
		t.Errorf("MapAsync of no items on a closed pool: %v", err)
	}
	var zero aio.Pool
	if _, err := aio.Map(&zero, poolSquare, []int{}, 0); !errors.Is(err, aio.ErrPoolNotRunning) {
		t.Errorf("Map of no items on a zero Pool: %v", err)
	}
}

var takeOne = executor.Register("aio_test.takeOne", func(s *aio.Semaphore) (struct{}, error) {
	return struct{}{}, s.Acquire()
})

// A semaphore has no owner: a child that takes a unit and returns has
// used it (the consumer of a producer's Release), as in Python; only a
// process that dies (killed) gives its units back, with ErrOwnerDied.
func TestSemaphoreTakenByAChildThatEnds(t *testing.T) {
	s := aio.NewSemaphore(1)
	p := aio.NewProcess(takeOne.Bind(s))
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	if err := p.Join(); err != nil {
		t.Fatal(err)
	}
	if code, _ := p.ExitCode(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	// The host learns of the end a moment after Join: give it the time a
	// wrong answer would need to show.
	for range 20 {
		if v := s.Value(); v != 0 {
			t.Fatalf("Value() = %d after the child took the unit and ended; want 0", v)
		}
		if ok, err := s.TryAcquire(); ok || err != nil {
			t.Fatalf("TryAcquire = %v, %v; want false, nil", ok, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A zero Lock is not locked (nobody can hold it); its Acquire fails.
func TestZeroLockIsNotLocked(t *testing.T) {
	var l aio.Lock
	if l.Locked() {
		t.Error("a zero Lock reports Locked")
	}
	if err := l.Acquire(); err == nil {
		t.Error("Acquire of a zero Lock succeeded")
	}
}

// Pool.imap's chunksize defaults to 1, not to map's computed size: the
// results before a failing item come out, each in its own chunk.
func TestImapDefaultChunkIsOne(t *testing.T) {
	p := newTestPool(t, aio.PoolOptions{Processes: 1})
	items := []int{2, 4, 6, 8, 10, 12, 14, 1} // map's size for 8 items and 1 worker: 2
	got, err := collect(aio.Imap(p, poolOddFails, items, 0))
	if !errors.Is(err, errPoolOdd) || len(got) != 7 {
		t.Fatalf("Imap yielded %v, then %v; want the 7 squares before the odd item, then its error", got, err)
	}
}

// A failing action breaks the barrier; the party it ran for hears why.
func TestBarrierActionErrorReachesTheLastParty(t *testing.T) {
	b, err := aio.NewBarrier(2, func() error { return errors.New("no quorum") }, -1)
	if err != nil {
		t.Fatal(err)
	}
	first := make(chan error, 1)
	go func() { _, err := b.Wait(); first <- err }()
	for b.NWaiting() != 1 {
		time.Sleep(time.Millisecond)
	}
	_, last := b.Wait()
	if !errors.Is(last, aio.ErrBrokenBarrier) || !strings.Contains(last.Error(), "no quorum") {
		t.Errorf("the last party got %v; want ErrBrokenBarrier with the action's error", last)
	}
	if err := <-first; !errors.Is(err, aio.ErrBrokenBarrier) {
		t.Errorf("the first party got %v; want ErrBrokenBarrier", err)
	}
}

// A Barrier's failing action's error keeps its identity for the host's
// own waiter, behind ErrBrokenBarrier.
func TestBarrierActionErrorIs(t *testing.T) {
	errNoQuorum := errors.New("no quorum")
	b, err := aio.NewBarrier(1, func() error { return errNoQuorum }, -1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Wait(); !errors.Is(err, aio.ErrBrokenBarrier) || !errors.Is(err, errNoQuorum) {
		t.Fatalf("Wait = %v; want ErrBrokenBarrier wrapping the action's error", err)
	}
}

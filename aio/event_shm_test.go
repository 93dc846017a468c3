//go:build linux

package aio_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/aio"
	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/loop"
)

type clearedArgs struct {
	E     *aio.Event
	Ready *aio.Event
	Out   *aio.Queue[bool]
}

// waitCleared tells the parent it is about to wait, waits on E and reports
// what Wait said.
var waitCleared = executor.Register("aio_test.waitCleared", func(a clearedArgs) (struct{}, error) {
	if err := a.Ready.Set(); err != nil {
		return struct{}{}, err
	}
	ok, err := a.E.WaitTimeout(20 * time.Second)
	if err != nil {
		return struct{}{}, err
	}
	return struct{}{}, a.Out.Put(ok)
})

// A waiter in another process woken by a Set returns true even though a
// Clear follows at once (CPython's test_threading EventTests.test_set_and_clear,
// issue 13502, across processes; multiprocessing's Event re-reads the flag
// and can report false, threading's does not).
func TestEventSetThenClearWakesWaiter(t *testing.T) {
	for round := range 20 {
		a := clearedArgs{E: aio.NewEvent(), Ready: aio.NewEvent(), Out: aio.NewQueue[bool](0)}
		p := aio.NewProcess(waitCleared.Bind(a))
		if err := p.Start(); err != nil {
			t.Fatal(err)
		}
		if ok, err := a.Ready.WaitTimeout(20 * time.Second); !ok || err != nil {
			t.Fatalf("round %d: the child never got ready: %v, %v", round, ok, err)
		}
		// The child's Wait has read the flag once it counts itself
		// among the sleepers (shared memory: this process sees it).
		for aio.EventSleepers(a.E) == 0 {
			time.Sleep(50 * time.Microsecond)
		}
		if err := a.E.Set(); err != nil {
			t.Fatal(err)
		}
		if err := a.E.Clear(); err != nil {
			t.Fatal(err)
		}
		got, err := a.Out.GetTimeout(20 * time.Second)
		if err != nil || !got {
			t.Fatalf("round %d: the child's Wait = %v, %v; want true", round, got, err)
		}
		if err := p.Join(); err != nil {
			t.Fatal(err)
		}
		if a.E.IsSet() {
			t.Fatal("IsSet after Clear")
		}
	}
}

type madeArgs struct {
	Events *aio.Queue[*aio.Event]
	Go     *aio.Event // set by the parent: the child sets its event and exits
}

// makeEvent makes an Event, sends it to the parent, and sets it when told.
var makeEvent = executor.Register("aio_test.makeEvent", func(a madeArgs) (struct{}, error) {
	e := aio.NewEvent()
	if err := a.Events.Put(e); err != nil {
		return struct{}{}, err
	}
	if err := a.Go.Wait(); err != nil {
		return struct{}{}, err
	}
	return struct{}{}, e.Set()
})

// An Event made in a child reaches the parent in a Queue; the parent maps
// the child's memory and is woken by its Set. Once mapped, the event
// outlives the process that made it; an event first used after its maker
// exited gives ErrHostGone.
func TestEventMadeInChild(t *testing.T) {
	a := madeArgs{Events: aio.NewQueue[*aio.Event](0), Go: aio.NewEvent()}
	p := aio.NewProcess(makeEvent.Bind(a))
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	e, err := a.Events.GetTimeout(20 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if e.IsSet() {
		t.Fatal("a new event is set")
	}
	if err := a.Go.Set(); err != nil {
		t.Fatal(err)
	}
	if ok, err := e.WaitTimeout(20 * time.Second); !ok || err != nil {
		t.Fatalf("Wait on the child's event = %v, %v", ok, err)
	}
	if err := p.Join(); err != nil {
		t.Fatal(err)
	}
	if !e.IsSet() || e.Clear() != nil || e.IsSet() {
		t.Fatal("the mapped event stopped working when its maker exited")
	}

	// A second child's event, never used here before the child exits.
	b := madeArgs{Events: aio.NewQueue[*aio.Event](0), Go: aio.NewEvent()}
	if err := b.Go.Set(); err != nil {
		t.Fatal(err)
	}
	p2 := aio.NewProcess(makeEvent.Bind(b))
	if err := p2.Start(); err != nil {
		t.Fatal(err)
	}
	e2, err := b.Events.GetTimeout(20 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := p2.Join(); err != nil {
		t.Fatal(err)
	}
	if err := e2.Set(); !errors.Is(err, aio.ErrHostGone) {
		t.Fatalf("Set of an event whose maker exited unseen = %v, want ErrHostGone", err)
	}
	if ok, err := e2.WaitTimeout(time.Millisecond); ok || !errors.Is(err, aio.ErrHostGone) {
		t.Fatalf("WaitTimeout = %v, %v; want false, ErrHostGone", ok, err)
	}
}

// Bad references: another kind's, a truncated one, an offset off the arena.
func TestEventBadReference(t *testing.T) {
	b, err := aio.NewEvent().GobEncode()
	if err != nil {
		t.Fatal(err)
	}
	var e aio.Event
	if err := e.GobDecode(b[:len(b)-1]); err == nil {
		t.Error("a truncated reference decoded")
	}
	if len(b) == 22 { // the shared-memory form: ref, offset, kind
		bad := append([]byte(nil), b...)
		bad[21]++
		if err := e.GobDecode(bad); err == nil {
			t.Error("a reference to another kind decoded as an Event")
		}
		bad = append([]byte(nil), b...)
		bad[17], bad[18], bad[19], bad[20] = 3, 0, 0, 0x7f
		if err := e.GobDecode(bad); err == nil {
			t.Error("a reference off its arena decoded")
		}
	}
	var zero aio.Event
	if err := zero.Set(); err == nil {
		t.Error("Set of a zero Event succeeded")
	}
}

// Many waiters of every kind (plain goroutines, goroutines with a ctx that
// ends, loop tasks, some cancelled, some timing out) against random Sets
// and Clears: every wait ends, with true only if a Set came after it
// began (checked against a generation count kept beside the event), and
// no watcher goroutine outlives its waiters (goleak in TestMain).
func TestEventStress(t *testing.T) {
	e := aio.NewEvent()
	var mu sync.Mutex
	sets := 0 // Sets of a clear event so far, under mu with the Set itself
	set := func() {
		mu.Lock()
		if !e.IsSet() {
			sets++
		}
		if err := e.Set(); err != nil {
			t.Error(err)
		}
		mu.Unlock()
	}
	clear := func() {
		mu.Lock()
		if err := e.Clear(); err != nil {
			t.Error(err)
		}
		mu.Unlock()
	}
	// check: a wait that began with the event clear at generation g0 and
	// returned ok is right if a Set came since; one that gave up is right
	// whatever happened (it may have given up as the Set came).
	begin := func() (int, bool) { mu.Lock(); defer mu.Unlock(); return sets, e.IsSet() }
	check := func(kind string, g0 int, wasSet, ok bool) {
		mu.Lock()
		g := sets
		mu.Unlock()
		if ok && !wasSet && g == g0 {
			t.Errorf("%s: a wait returned true with no Set since it began", kind)
		}
	}
	stop := make(chan struct{})
	var setters sync.WaitGroup
	setters.Go(func() {
		r := rand.New(rand.NewPCG(1, 2))
		for {
			select {
			case <-stop:
				set() // wakes whoever is left
				return
			default:
			}
			if r.IntN(2) == 0 {
				set()
			} else {
				clear()
			}
			time.Sleep(time.Duration(r.IntN(200)) * time.Microsecond)
		}
	})
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			for j := range 30 {
				g0, was := begin()
				switch (i + j) % 3 {
				case 0:
					ok, err := e.WaitTimeout(time.Duration(1+j%5) * time.Millisecond)
					if err != nil {
						t.Error(err)
					}
					check("WaitTimeout", g0, was, ok)
				case 1:
					ctx, cancel := context.WithTimeout(context.Background(), time.Duration(j%4)*time.Millisecond)
					err := e.CoroWait(ctx)
					cancel()
					if err != nil && !errors.Is(err, context.DeadlineExceeded) {
						t.Error(err)
					}
					check("CoroWait(ctx)", g0, was, err == nil)
				default:
					err := e.Wait()
					if err != nil {
						t.Error(err)
					}
					check("Wait", g0, was, true)
				}
			}
		})
	}
	inLoop(t, func(ctx context.Context) error {
		var tasks []*loop.Task[bool]
		for i := range 200 {
			g0, was := begin()
			task := loop.Spawn(ctx, func(ctx context.Context) (bool, error) {
				if err := e.CoroWait(ctx); err != nil {
					return false, err
				}
				check("task", g0, was, true)
				return true, nil
			})
			tasks = append(tasks, task)
			if i%3 == 0 {
				if err := loop.Sleep(ctx, 0); err != nil {
					return err
				}
				task.Cancel()
			}
			if i%10 == 0 {
				if err := loop.Sleep(ctx, 100*time.Microsecond); err != nil {
					return err
				}
			}
		}
		for i, task := range tasks {
			if _, err := task.Await(ctx); err != nil && !errors.Is(err, loop.ErrCancelled) {
				return fmt.Errorf("task %d: %v", i, err)
			}
		}
		return nil
	})
	wg.Wait()
	close(stop)
	setters.Wait()
}

// A task's CoroWait never blocks its loop: other tasks run while it waits,
// and a Set from another goroutine ends it.
func TestEventCoroWaitKeepsLoopRunning(t *testing.T) {
	e := aio.NewEvent()
	inLoop(t, func(ctx context.Context) error {
		w := loop.Spawn(ctx, func(ctx context.Context) (struct{}, error) { return struct{}{}, e.CoroWait(ctx) })
		for range 100 {
			if err := loop.Sleep(ctx, 0); err != nil {
				return err
			}
		}
		if w.Done() {
			return errors.New("CoroWait returned before a Set")
		}
		go func() { _ = e.Set() }()
		_, err := w.Await(ctx)
		return err
	})
}

type postSetArgs struct {
	Q    *aio.Queue[int]
	E, A *aio.Event
	N    int
}

// postThenSet puts i and sets E, N times, waiting for A between, while
// another goroutine sets and clears an unrelated Event all along.
var postThenSet = executor.Register("aio_test.postThenSet", func(a postSetArgs) (struct{}, error) {
	stop := make(chan struct{})
	defer close(stop)
	noise := aio.NewEvent()
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			_ = noise.Set()
			_ = noise.Clear()
		}
	}()
	for i := range a.N {
		if err := a.Q.Put(i); err != nil {
			return struct{}{}, err
		}
		if err := a.E.Set(); err != nil {
			return struct{}{}, err
		}
		if err := a.A.Wait(); err != nil {
			return struct{}{}, err
		}
		if err := a.A.Clear(); err != nil {
			return struct{}{}, err
		}
	}
	return struct{}{}, nil
})

// A Put posted before a Set is in the queue for the process the Set
// wakes, even while another goroutine of the putter's sets events too
// (found in review: one flag per connection let that goroutine's wait
// stand for the Put's, which it did not cover).
func TestEventSetAfterPutWithOtherSetters(t *testing.T) {
	a := postSetArgs{Q: aio.NewQueue[int](0), E: aio.NewEvent(), A: aio.NewEvent(), N: 1000}
	p := aio.NewProcess(postThenSet.Bind(a))
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	for i := range a.N {
		if ok, err := a.E.WaitTimeout(20 * time.Second); !ok || err != nil {
			t.Fatal("no Set", i, err)
		}
		if err := a.E.Clear(); err != nil {
			t.Fatal(err)
		}
		v, err := a.Q.GetNowait()
		if err != nil || v != i {
			t.Fatalf("round %d: GetNowait after the Set = %d, %v", i, v, err)
		}
		if err := a.A.Set(); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Join(); err != nil {
		t.Fatal(err)
	}
}

// The watchers of events and locks that tasks waited on end and leave
// the process's table once their waiters are gone: a program that waits
// on many objects once keeps nothing for them.
func TestWatchesForgotten(t *testing.T) {
	inLoop(t, func(ctx context.Context) error {
		for range 50 {
			e, l := aio.NewEvent(), aio.NewLock()
			if err := l.Acquire(); err != nil {
				return err
			}
			we := loop.Spawn(ctx, func(ctx context.Context) (struct{}, error) { return struct{}{}, e.CoroWait(ctx) })
			wl := loop.Spawn(ctx, func(ctx context.Context) (struct{}, error) { return struct{}{}, l.CoroAcquire(ctx) })
			if err := loop.Sleep(ctx, 0); err != nil {
				return err
			}
			if err := e.Set(); err != nil {
				return err
			}
			if err := l.Release(); err != nil {
				return err
			}
			if _, err := we.Await(ctx); err != nil {
				return err
			}
			if _, err := wl.Await(ctx); err != nil {
				return err
			}
			if err := l.Release(); err != nil {
				return err
			}
		}
		return nil
	})
	for deadline := time.Now().Add(10 * time.Second); aio.Watches() > 0; {
		if time.Now().After(deadline) {
			t.Fatalf("%d watches still listed", aio.Watches())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

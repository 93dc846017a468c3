//go:build linux

package aio_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/aio"
	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/loop"
)

type underArgs struct {
	L     *aio.Lock
	Held  *aio.Event
	Go    *aio.Event
	Queue *aio.Queue[int]
	Puts  int  // items to put
	Get   bool // get one item
}

// underLock takes the lock, says so, waits for Go, puts Puts items (each
// a posted frame), gets one if Get, and releases the lock.
var underLock = executor.Register("aio_test.underLock", func(a underArgs) (struct{}, error) {
	if err := a.L.Acquire(); err != nil {
		return struct{}{}, err
	}
	if err := a.Held.Set(); err != nil {
		return struct{}{}, err
	}
	if err := a.Go.Wait(); err != nil {
		return struct{}{}, err
	}
	for i := range a.Puts {
		if err := a.Queue.Put(i); err != nil {
			return struct{}{}, err
		}
	}
	if a.Get {
		if _, err := a.Queue.Get(); err != nil {
			return struct{}{}, err
		}
	}
	return struct{}{}, a.L.Release()
})

// takeAfterChild starts the child call, waits until it holds l (held),
// lets it go on (goEv) and acquires l after it: the child has released it.
func takeAfterChild(t *testing.T, call executor.Call[struct{}], l *aio.Lock, held, goEv *aio.Event) *aio.Process {
	t.Helper()
	p := aio.NewProcess(call)
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	if ok, err := held.WaitTimeout(20 * time.Second); !ok || err != nil {
		t.Fatal("the child never took the lock", err)
	}
	if err := goEv.Set(); err != nil {
		t.Fatal(err)
	}
	if ok, err := l.AcquireTimeout(20 * time.Second); !ok || err != nil {
		t.Fatal("Acquire after the child:", ok, err)
	}
	return p
}

// What a process did before it released a shared-memory Lock is seen by
// whoever takes the lock next: the child's Puts (posted to the queue's
// host) are all in the queue once this process acquires, though the
// Release itself sends no message (the seed's "with lock: put ...; then
// async with lock: put 78" with no delay, the example's 0s case).
func TestLockReleaseAfterPuts(t *testing.T) {
	for round := range 10 {
		a := underArgs{L: aio.NewLock(), Held: aio.NewEvent(), Go: aio.NewEvent(), Queue: aio.NewQueue[int](0), Puts: 50}
		p := takeAfterChild(t, underLock.Bind(a), a.L, a.Held, a.Go)
		for i := range a.Puts {
			v, err := a.Queue.GetNowait()
			if err != nil || v != i {
				t.Fatalf("round %d: GetNowait %d after the child released = %d, %v", round, i, v, err)
			}
		}
		if err := a.L.Release(); err != nil {
			t.Fatal(err)
		}
		if err := a.L.Release(); !errors.Is(err, aio.ErrReleasedTooOften) {
			t.Fatalf("Release of a free lock = %v, want ErrReleasedTooOften", err)
		}
		if err := p.Join(); err != nil {
			t.Fatal(err)
		}
	}
}

// Mutual exclusion under every way to acquire at once (Acquire,
// AcquireTimeout, TryAcquire, CoroAcquire with a ctx that ends, loop
// tasks, some cancelled while they wait): never two holders, every wait
// ends, the lock is free at the end, and no watcher goroutine outlives
// its waiters (goleak in TestMain).
func TestLockStress(t *testing.T) {
	l := aio.NewLock()
	var inside atomic.Int32
	var took atomic.Int64
	critical := func(who string) {
		if n := inside.Add(1); n != 1 {
			t.Errorf("%s: %d holders at once", who, n)
		}
		took.Add(1)
		if took.Load()%7 == 0 {
			time.Sleep(20 * time.Microsecond)
		}
		inside.Add(-1)
		if err := l.Release(); err != nil {
			t.Errorf("%s: Release: %v", who, err)
		}
	}
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(i), 7))
			for range 200 {
				switch r.IntN(4) {
				case 0:
					if err := l.Acquire(); err != nil {
						t.Error(err)
						return
					}
					critical("Acquire")
				case 1:
					ok, err := l.AcquireTimeout(time.Duration(1+r.IntN(3)) * time.Millisecond)
					if err != nil {
						t.Error(err)
						return
					}
					if ok {
						critical("AcquireTimeout")
					}
				case 2:
					ok, err := l.TryAcquire()
					if err != nil {
						t.Error(err)
						return
					}
					if ok {
						critical("TryAcquire")
					}
				default:
					ctx, cancel := context.WithTimeout(context.Background(), time.Duration(r.IntN(2))*time.Millisecond)
					err := l.CoroAcquire(ctx)
					cancel()
					if err == nil {
						critical("CoroAcquire(ctx)")
					} else if !errors.Is(err, context.DeadlineExceeded) {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	inLoop(t, func(ctx context.Context) error {
		var tasks []*loop.Task[struct{}]
		for i := range 300 {
			task := loop.Spawn(ctx, func(ctx context.Context) (struct{}, error) {
				if err := l.CoroAcquire(ctx); err != nil {
					return struct{}{}, err
				}
				// Held across an await, as a task may.
				if err := loop.Sleep(ctx, 0); err != nil {
					_ = l.Release()
					return struct{}{}, err
				}
				critical("task")
				return struct{}{}, nil
			})
			tasks = append(tasks, task)
			if i%4 == 0 {
				if err := loop.Sleep(ctx, 0); err != nil {
					return err
				}
				task.Cancel()
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
	if l.Locked() {
		t.Fatal("the lock is held after every holder released it")
	}
	if took.Load() == 0 {
		t.Fatal("nobody took the lock")
	}
}

type condRefArgs struct {
	C *aio.Condition
}

// A Condition made over a Lock that another process has been using (in
// shared memory): the lock moves into its host, the other process's Lock
// value follows it there, and Wait and Notify work between them.
func TestConditionOverUsedLock(t *testing.T) {
	l := aio.NewLock()
	ready, out := aio.NewEvent(), aio.NewQueue[int](0)
	// The child gets the Condition later, in a queue: it is made after
	// the child has used the lock.
	conds := aio.NewQueue[condRefArgs](0)
	p := aio.NewProcess(condAfter.Bind(condAfterArgs{L: l, Ready: ready, Out: out, Conds: conds}))
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	if ok, err := ready.WaitTimeout(20 * time.Second); !ok || err != nil {
		t.Fatal("the child never used the lock", err)
	}
	c, err := aio.NewCondition(l)
	if err != nil {
		t.Fatal(err)
	}
	if err := conds.Put(condRefArgs{C: c}); err != nil {
		t.Fatal(err)
	}
	// The child waits on c holding l; Notify until it has been woken.
	for {
		if err := c.Acquire(); err != nil {
			t.Fatal(err)
		}
		if err := c.NotifyAll(); err != nil {
			t.Fatal(err)
		}
		if err := c.Release(); err != nil {
			t.Fatal(err)
		}
		if v, err := out.GetTimeout(time.Millisecond); err == nil {
			if v != 1 {
				t.Fatalf("the child's Wait reported %d", v)
			}
			break
		}
	}
	if err := p.Join(); err != nil {
		t.Fatal(err)
	}
	if l.Locked() {
		t.Fatal("the lock is held at the end")
	}
	if ok, err := l.TryAcquire(); !ok || err != nil {
		t.Fatal("TryAcquire of the moved lock:", ok, err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
}

type condAfterArgs struct {
	L     *aio.Lock
	Ready *aio.Event
	Out   *aio.Queue[int]
	Conds *aio.Queue[condRefArgs]
}

var condAfter = executor.Register("aio_test.condAfter", func(a condAfterArgs) (struct{}, error) {
	for range 5 {
		if err := a.L.Acquire(); err != nil {
			return struct{}{}, err
		}
		if err := a.L.Release(); err != nil {
			return struct{}{}, err
		}
	}
	if err := a.Ready.Set(); err != nil {
		return struct{}{}, err
	}
	c, err := a.Conds.Get()
	if err != nil {
		return struct{}{}, err
	}
	if err := a.L.Acquire(); err != nil { // moved to its host by now
		return struct{}{}, err
	}
	ok, err := c.C.WaitTimeout(20 * time.Second)
	if err != nil {
		return struct{}{}, err
	}
	if !a.L.Locked() {
		return struct{}{}, errors.New("the lock is free after Wait returned")
	}
	if err := a.L.Release(); err != nil {
		return struct{}{}, err
	}
	v := 0
	if ok {
		v = 1
	}
	return struct{}{}, a.Out.Put(v)
})

// A TaskGroup cancels its body itself, leaving ctx alone, when a child
// fails: a CoroAcquire waiting then returns the cancellation, never nil
// without the lock (found in review: the shared-memory wait took any
// cancellation of its future for its own timeout).
func TestCoroAcquireCancelledByTaskGroup(t *testing.T) {
	l := aio.NewLock()
	if err := l.Acquire(); err != nil { // held elsewhere all along
		t.Fatal(err)
	}
	acqErr := errors.New("CoroAcquire did not run")
	_, _ = loop.Run(context.Background(), func(ctx context.Context) (struct{}, error) {
		_ = loop.WithTaskGroup(ctx, func(ctx context.Context, tg *loop.TaskGroup) error {
			_ = tg.Go(func(ctx context.Context) error {
				_ = loop.Sleep(ctx, 5*time.Millisecond)
				return errors.New("child failed")
			})
			acqErr = l.CoroAcquire(ctx)
			return nil
		})
		return struct{}{}, nil
	})
	if acqErr == nil {
		t.Fatal("CoroAcquire returned nil, though it was cancelled while the lock was held")
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if l.Locked() {
		t.Fatal("the lock is held after its one holder released it")
	}
}

// NewCondition over a Lock the caller holds returns at once (as
// Python's Condition(lock) does) and the caller can Wait on it; over a
// Lock decoded in its own host it works too (found in review: one hung,
// the other panicked).
func TestConditionOverHeldAndDecodedLock(t *testing.T) {
	l := aio.NewLock()
	if err := l.Acquire(); err != nil {
		t.Fatal(err)
	}
	c, err := aio.NewCondition(l)
	if err != nil {
		t.Fatal(err)
	}
	if !l.Locked() {
		t.Fatal("the lock is free after it moved")
	}
	if ok, err := c.WaitTimeout(time.Millisecond); ok || err != nil {
		t.Fatalf("WaitTimeout by the holder = %v, %v; want false, nil", ok, err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if err := l.Release(); !errors.Is(err, aio.ErrReleasedTooOften) {
		t.Fatalf("second Release = %v, want ErrReleasedTooOften", err)
	}

	b, err := aio.NewLock().GobEncode()
	if err != nil {
		t.Fatal(err)
	}
	var l2 aio.Lock
	if err := l2.GobDecode(b); err != nil {
		t.Fatal(err)
	}
	c2, err := aio.NewCondition(&l2)
	if err != nil {
		t.Fatal(err)
	}
	if err := c2.Acquire(); err != nil {
		t.Fatal(err)
	}
	if err := c2.Notify(1); err != nil {
		t.Fatal(err)
	}
	if err := l2.Release(); err != nil {
		t.Fatal(err)
	}
}

// Waiters asleep on a Lock (contended, so the word has changed since the
// holder took it) when its holder is SIGKILLed: exactly one of them
// learns of the death (ErrOwnerDied), the others take the lock in turn,
// and none waits for ever.
func TestLockOwnerDiedWithWaiters(t *testing.T) {
	l, held := aio.NewLock(), aio.NewEvent()
	p := aio.NewProcess(holdLock.Bind(holdArgs{L: l, Held: held}))
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	if ok, err := held.WaitTimeout(20 * time.Second); !ok || err != nil {
		t.Fatal("the child never took the lock", err)
	}
	const waiters = 4
	errs := make(chan error, waiters)
	for range waiters - 1 {
		go func() {
			ok, err := l.AcquireTimeout(20 * time.Second)
			if err == nil && !ok {
				err = errors.New("timed out")
			}
			if err == nil {
				err = l.Release()
			}
			errs <- err
		}()
	}
	go func() {
		_, err := loop.Run(context.Background(), func(ctx context.Context) (struct{}, error) {
			if err := l.CoroAcquire(ctx); err != nil {
				return struct{}{}, err
			}
			return struct{}{}, l.Release()
		})
		errs <- err
	}()
	time.Sleep(10 * time.Millisecond) // mostly asleep by now; either way the outcome is the same
	p.Kill()
	p.Join()
	died := 0
	for range waiters {
		switch err := <-errs; {
		case errors.Is(err, aio.ErrOwnerDied):
			died++
		case err != nil:
			t.Fatal(err)
		}
	}
	if died != 1 {
		t.Fatalf("%d waiters got ErrOwnerDied, want 1", died)
	}
	if l.Locked() {
		t.Fatal("the lock is held at the end")
	}
}

// A Get before a Release frees its slot for whoever takes the lock next:
// Python's get() frees the slot before it returns (found in review: the
// consumption travelled uncounted in the next standing get's request).
func TestLockReleaseAfterGet(t *testing.T) {
	for round := range 10 {
		a := underArgs{L: aio.NewLock(), Held: aio.NewEvent(), Go: aio.NewEvent(), Queue: aio.NewQueue[int](1), Get: true}
		if err := a.Queue.Put(round); err != nil {
			t.Fatal(err)
		}
		p := takeAfterChild(t, underLock.Bind(a), a.L, a.Held, a.Go)
		if err := a.Queue.PutNowait(round + 1); err != nil {
			t.Fatalf("round %d: PutNowait after the child's Get and Release = %v", round, err)
		}
		if err := a.L.Release(); err != nil {
			t.Fatal(err)
		}
		if err := p.Join(); err != nil {
			t.Fatal(err)
		}
	}
}

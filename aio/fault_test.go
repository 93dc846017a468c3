package aio_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/aio"
	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/loop"
)

type holdArgs struct {
	L     *aio.Lock
	Held  *aio.Event
	Queue *aio.Queue[int]
}

// holdLock takes the lock, says so, and waits to be killed.
var holdLock = executor.Register("aio_test.holdLock", func(a holdArgs) (struct{}, error) {
	if err := a.L.Acquire(); err != nil {
		return struct{}{}, err
	}
	a.Held.Set()
	select {}
})

// blockInGet says it is about to get, and blocks in Get until killed.
var blockInGet = executor.Register("aio_test.blockInGet", func(a holdArgs) (struct{}, error) {
	a.Held.Set()
	_, err := a.Queue.Get()
	return struct{}{}, err
})

// A process killed while it holds a Lock makes the next acquire fail with
// ErrOwnerDied, and the one after it succeed (Python hangs forever).
func TestLockOwnerDied(t *testing.T) {
	l, held := aio.NewLock(), aio.NewEvent()
	p := aio.NewProcess(holdLock.Bind(holdArgs{L: l, Held: held}))
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	if ok, err := held.WaitTimeout(10 * time.Second); !ok || err != nil {
		t.Fatal("the child never took the lock", err)
	}
	if ok, _ := l.TryAcquire(); ok {
		t.Fatal("the lock was free while the child held it")
	}
	p.Kill()
	p.Join()
	if code, _ := p.ExitCode(); code != -9 {
		t.Errorf("exit code %d, want -9", code)
	}
	// The host learns of the death when the side channel ends.
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		if _, err = l.AcquireTimeout(time.Second); err != nil {
			break
		}
	}
	if !errors.Is(err, aio.ErrOwnerDied) {
		t.Fatalf("acquire after the owner died: %v, want ErrOwnerDied", err)
	}
	if ok, err := l.AcquireTimeout(time.Second); !ok || err != nil {
		t.Fatalf("second acquire: %v %v", ok, err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
}

// A child killed while blocked in Get takes no item with it.
func TestKilledGetterLosesNothing(t *testing.T) {
	q, ready := aio.NewQueue[int](0), aio.NewEvent()
	p := aio.NewProcess(blockInGet.Bind(holdArgs{Queue: q, Held: ready}))
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	ready.Wait()
	p.Kill()
	p.Join()
	// Until the host has seen the death, a standing get of the child may
	// still take the item and give it back: wait for it.
	if err := q.Put(7); err != nil {
		t.Fatal(err)
	}
	v, err := q.GetTimeout(10 * time.Second)
	if err != nil || v != 7 {
		t.Fatalf("Get = %v, %v; want 7", v, err)
	}
}

// A cancelled CoroGet takes no item (aioprocessing's issues #21 and #40).
func TestCoroGetCancelledTakesNothing(t *testing.T) {
	q := aio.NewQueue[int](0)
	_, err := loop.Run(context.Background(), func(ctx context.Context) (int, error) {
		getter := loop.Spawn(ctx, func(ctx context.Context) (int, error) { return q.CoroGet(ctx) })
		if err := loop.Sleep(ctx, 10*time.Millisecond); err != nil {
			return 0, err
		}
		getter.Cancel()
		if _, err := getter.Await(ctx); !errors.Is(err, loop.ErrCancelled) {
			t.Errorf("cancelled CoroGet: %v", err)
		}
		if err := q.CoroPut(ctx, 5); err != nil {
			return 0, err
		}
		return 0, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := q.GetNowait(); err != nil || v != 5 {
		t.Fatalf("GetNowait = %v, %v; want 5", v, err)
	}
}

// A value that cannot be encoded fails Put in the caller and puts nothing.
func TestPutUnencodable(t *testing.T) {
	q := aio.NewQueue[any](0)
	if err := q.Put(func() {}); err == nil {
		t.Fatal("Put of a func succeeded")
	}
	if _, err := q.GetNowait(); !errors.Is(err, aio.ErrEmpty) {
		t.Fatalf("GetNowait after a failed Put: %v, want ErrEmpty", err)
	}
}

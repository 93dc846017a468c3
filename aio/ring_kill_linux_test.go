package aio_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/aio"
	"github.com/asyncgo/asyncgo/executor"
)

type hangArgs struct {
	Q     *aio.Queue[[]byte]
	Ready *aio.Event
}

var putAndHang = executor.Register("aio_test.putAndHang", func(a hangArgs) (struct{}, error) {
	return struct{}{}, aio.PutAndHang(a.Q, bytes.Repeat([]byte("torn"), 1<<18), a.Ready)
})

// A process SIGKILLed inside a Put, its item copied into the ring but not
// yet counted and the queue's lock held, leaves the queue as it was: the
// items before are there whole, the torn one is not, and Puts and Gets
// go on once the host has freed the dead holder's lock.
func TestPutterKilledHoldingQueueLock(t *testing.T) {
	q, ready := aio.NewQueue[[]byte](0), aio.NewEvent()
	for _, s := range []string{"one", "two"} {
		if err := q.Put([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	p := aio.NewProcess(putAndHang.Bind(hangArgs{Q: q, Ready: ready}))
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	if ok, err := ready.WaitTimeout(30 * time.Second); err != nil || !ok {
		t.Fatalf("the putter never got inside its Put: %v", err)
	}
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := p.Join(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"one", "two"} {
		b, err := q.GetTimeout(30 * time.Second)
		if err != nil || string(b) != want {
			t.Fatalf("Get = %.20q, %v; want %q", b, err, want)
		}
	}
	if _, err := q.GetNowait(); !errors.Is(err, aio.ErrEmpty) {
		t.Fatalf("GetNowait after the whole items: %v; want ErrEmpty (no torn item)", err)
	}
	// The queue goes on.
	if err := q.Put([]byte("three")); err != nil {
		t.Fatal(err)
	}
	if b, err := q.GetTimeout(10 * time.Second); err != nil || string(b) != "three" {
		t.Fatalf("Get after the kill = %q, %v", b, err)
	}
	if n := q.Qsize(); n != 0 {
		t.Fatalf("Qsize() = %d, want 0", n)
	}
}

type commitArgs struct {
	Q     *aio.JoinableQueue[[]byte]
	Op    string
	Ready *aio.Event
}

var commitAndHang = executor.Register("aio_test.commitAndHang", func(a commitArgs) (struct{}, error) {
	return struct{}{}, aio.CommitAndHang(a.Q, a.Op, []byte("committed"), a.Ready)
})

// A process killed after its commit and before its wake of the waiters
// (a Put's of the getters, a Get's of the putters, the last TaskDone's
// of the joiners): the host wakes them as it learns of the death, and
// they find the state the dead one made (found in review: they slept on).
func TestWaitersWokenWhenAProcessDiesAfterItsCommit(t *testing.T) {
	for _, c := range []struct {
		op      string
		prepare func(q *aio.JoinableQueue[[]byte]) // before the waiter
		wait    func(q *aio.JoinableQueue[[]byte]) error
		asleep  func(g, p, j uint32) bool
	}{
		{"put", func(*aio.JoinableQueue[[]byte]) {},
			func(q *aio.JoinableQueue[[]byte]) error { _, err := q.Get(); return err },
			func(g, _, _ uint32) bool { return g > 0 }},
		{"get", func(q *aio.JoinableQueue[[]byte]) { _ = q.Put([]byte("first")) },
			func(q *aio.JoinableQueue[[]byte]) error { return q.Put([]byte("second")) },
			func(_, p, _ uint32) bool { return p > 0 }},
		{"taskdone", func(q *aio.JoinableQueue[[]byte]) { _ = q.Put([]byte("job")); _, _ = q.Get() },
			func(q *aio.JoinableQueue[[]byte]) error { return q.Join() },
			func(_, _, j uint32) bool { return j > 0 }},
	} {
		t.Run(c.op, func(t *testing.T) {
			q, ready := aio.NewJoinableQueue[[]byte](1), aio.NewEvent()
			c.prepare(q)
			done := make(chan error, 1)
			go func() { done <- c.wait(q) }()
			for !c.asleep(aio.QueueSleepers(q)) {
				time.Sleep(time.Millisecond)
			}
			p := aio.NewProcess(commitAndHang.Bind(commitArgs{Q: q, Op: c.op, Ready: ready}))
			if err := p.Start(); err != nil {
				t.Fatal(err)
			}
			if ok, err := ready.WaitTimeout(30 * time.Second); err != nil || !ok {
				t.Fatalf("the child never committed: %v", err)
			}
			if err := p.Kill(); err != nil {
				t.Fatal(err)
			}
			if err := p.Join(); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("the waiter still sleeps after the %s's process died", c.op)
			}
		})
	}
}

// An unbounded queue holding little takes a big item even when neither
// the room behind its entries nor the room before them fits it: the
// entries move to the front (found in review: a 500 MiB item was refused
// with 40 MiB held).
func TestBigItemFitsAfterTheEntriesMove(t *testing.T) {
	const M = 1 << 20
	q := aio.NewQueue[[]byte](0)
	for _, n := range []int{490 * M, 40 * M} {
		if err := q.Put(make([]byte, n)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := q.Get(); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 500*M)
	big[len(big)-1] = 7
	if err := q.PutNowait(big); err != nil {
		t.Fatalf("PutNowait of 500 MiB with 40 MiB held: %v", err)
	}
	for _, n := range []int{40 * M, 500 * M} {
		b, err := q.GetNowait()
		if err != nil || len(b) != n {
			t.Fatalf("Get = %d bytes, %v; want %d", len(b), err, n)
		}
	}
}

var holdQueueLock = executor.Register("aio_test.holdQueueLock", func(a hangArgs) (struct{}, error) {
	return struct{}{}, aio.HoldLockAndHang(a.Q, a.Ready)
})

// GetNowait does not wait on a queue whose lock another process holds
// and keeps (Python's get(block=False) raises Empty when the lock is
// busy); a blocking Get takes the item once the holder's death frees it.
func TestGetNowaitDoesNotWaitForAHeldLock(t *testing.T) {
	q, ready := aio.NewQueue[[]byte](0), aio.NewEvent()
	if err := q.Put([]byte("x")); err != nil {
		t.Fatal(err)
	}
	p := aio.NewProcess(holdQueueLock.Bind(hangArgs{Q: q, Ready: ready}))
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	if ok, err := ready.WaitTimeout(30 * time.Second); err != nil || !ok {
		t.Fatalf("the child never took the lock: %v", err)
	}
	done := make(chan error, 1)
	go func() { _, err := q.GetNowait(); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, aio.ErrEmpty) {
			t.Fatalf("GetNowait with the lock held elsewhere: %v, want ErrEmpty", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("GetNowait waited for the lock")
	}
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := p.Join(); err != nil {
		t.Fatal(err)
	}
	if b, err := q.GetTimeout(30 * time.Second); err != nil || string(b) != "x" {
		t.Fatalf("Get after the holder died = %q, %v", b, err)
	}
}

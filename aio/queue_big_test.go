//go:build linux

package aio_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/aio"
	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/loop"
)

type scribbleArgs struct {
	Out  *aio.Queue[[]byte]
	Size int
	N    int
}

// putAndScribble puts one buffer N times, changing every byte of it as
// soon as each Put returns.
var putAndScribble = executor.Register("aio_test.putAndScribble", func(a scribbleArgs) (struct{}, error) {
	buf := make([]byte, a.Size)
	for i := range a.N {
		for k := range buf {
			buf[k] = byte(i)
		}
		if err := a.Out.Put(buf); err != nil {
			return struct{}{}, err
		}
		for k := range buf {
			buf[k] = 0xEE
		}
	}
	return struct{}{}, nil
})

// A large []byte Put to a queue hosted in another process goes out with
// no copy, yet the Put has let go of it when it returns: the caller may
// change it at once, and every item arrives as it was put (sizes around
// the no-copy threshold, and 2 MiB).
func TestBigPutThenChange(t *testing.T) {
	for _, size := range []int{64<<10 - 1, 64 << 10, 300 << 10, 2 << 20} {
		a := scribbleArgs{Out: aio.NewQueue[[]byte](0), Size: size, N: 20}
		p := aio.NewProcess(putAndScribble.Bind(a))
		if err := p.Start(); err != nil {
			t.Fatal(err)
		}
		for i := range a.N {
			got, err := a.Out.GetTimeout(20 * time.Second)
			if err != nil {
				t.Fatal(size, i, err)
			}
			if len(got) != size || !bytes.Equal(got, bytes.Repeat([]byte{byte(i)}, size)) {
				t.Fatalf("size %d item %d: changed after its Put returned", size, i)
			}
		}
		if err := p.Join(); err != nil {
			t.Fatal(err)
		}
	}
}

type madeQueueArgs struct {
	Queues *aio.Queue[*aio.Queue[int]]
}

// makeQueue makes a queue, sends it to the parent and exits.
var makeQueue = executor.Register("aio_test.makeQueue", func(a madeQueueArgs) (struct{}, error) {
	return struct{}{}, a.Queues.Put(aio.NewQueue[int](0))
})

// A Get on a queue whose host has exited returns ErrHostGone (found in
// review: the standing get failed at once, inside the getter's lock, and
// the Get hung for ever).
func TestGetAfterHostGone(t *testing.T) {
	a := madeQueueArgs{Queues: aio.NewQueue[*aio.Queue[int]](0)}
	p := aio.NewProcess(makeQueue.Bind(a))
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	q, err := a.Queues.GetTimeout(20 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Join(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := q.GetTimeout(10 * time.Second); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, aio.ErrHostGone) {
			t.Fatalf("Get = %v, want ErrHostGone", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Get on a queue whose host exited never returned")
	}
}

// A Queue[any] carries a []byte (and a string) as what it is: the fast
// forms are for the queue's own type (found in review: it was written as
// raw bytes and read as a gob).
func TestQueueOfAnyHoldingBytes(t *testing.T) {
	q := aio.NewQueue[any](0)
	for _, v := range []any{[]byte("abc"), "text", 7, nil} {
		if err := q.Put(v); err != nil {
			t.Fatal(err)
		}
		got, err := q.Get()
		if err != nil {
			t.Fatalf("%#v: %v", v, err)
		}
		if b, ok := v.([]byte); ok {
			if gb, ok := got.([]byte); !ok || !bytes.Equal(gb, b) {
				t.Fatalf("got %#v, want %#v", got, v)
			}
			continue
		}
		if got != v {
			t.Fatalf("got %#v, want %#v", got, v)
		}
	}
}

type lentArgs struct {
	Q         *aio.Queue[[]byte]
	Got, Done *aio.Event
	TimeOut   bool
}

// getOneThenWait gets one item, says so, and waits for Done with its
// process's lend requests standing.
// With TimeOut, it gets with a timeout from an empty queue instead.
var getOneThenWait = executor.Register("aio_test.getOneThenWait", func(a lentArgs) (struct{}, error) {
	if a.TimeOut {
		if _, err := a.Q.GetTimeout(time.Millisecond); !errors.Is(err, aio.ErrEmpty) {
			return struct{}{}, fmt.Errorf("GetTimeout of an empty queue: %v, want ErrEmpty", err)
		}
	} else if _, err := a.Q.Get(); err != nil {
		return struct{}{}, err
	}
	if err := a.Got.Set(); err != nil {
		return struct{}{}, err
	}
	if ok, err := a.Done.WaitTimeout(60 * time.Second); !ok || err != nil {
		return struct{}{}, fmt.Errorf("never told to stop: %v", err)
	}
	return struct{}{}, nil
})

// Items lent ahead to a process that then stops getting come back to a
// getter elsewhere, whole and in order, whether the process lives on (the
// host recalls them) or is killed (the host takes them back), and the
// next item put goes to that getter too. Found with 2 MiB items lent
// ahead: the items given back went straight to the idle process's lend
// requests, which stood first, and a Get elsewhere waited for ever (small
// items too, since they were first lent ahead).
func TestBigItemsLentAheadComeBack(t *testing.T) {
	for _, size := range []int{8, 2 << 20} {
		for _, kill := range []bool{false, true} {
			lentAheadComeBack(t, size, kill)
		}
	}
}

func lentAheadComeBack(t *testing.T, size int, kill bool) {
	item := func(i int) []byte { return bytes.Repeat([]byte{byte(i)}, size) }
	{
		a := lentArgs{Q: aio.NewQueue[[]byte](0), Got: aio.NewEvent(), Done: aio.NewEvent()}
		p := aio.NewProcess(getOneThenWait.Bind(a))
		if err := p.Start(); err != nil {
			t.Fatal(err)
		}
		if err := a.Q.Put(item(0)); err != nil {
			t.Fatal(err)
		}
		if ok, err := a.Got.WaitTimeout(30 * time.Second); !ok || err != nil {
			t.Fatalf("the child never got its item: %v", err)
		}
		for i := 1; i <= 4; i++ { // as many as its lend requests standing
			if err := a.Q.Put(item(i)); err != nil {
				t.Fatal(err)
			}
		}
		if kill {
			if err := p.Kill(); err != nil {
				t.Fatal(err)
			}
		}
		for i := 1; i <= 4; i++ {
			got, err := a.Q.GetTimeout(30 * time.Second)
			if err != nil {
				t.Fatalf("kill=%v: Get %d: %v", kill, i, err)
			}
			if !bytes.Equal(got, item(i)) {
				t.Fatalf("kill=%v: Get %d returned the item put %d-th", kill, i, int(got[0]))
			}
		}
		// The child's lend requests made ahead were withdrawn: the next
		// item is this process's to get, not the idle child's.
		if err := a.Q.Put(item(5)); err != nil {
			t.Fatal(err)
		}
		if got, err := a.Q.GetTimeout(30 * time.Second); err != nil || !bytes.Equal(got, item(5)) {
			t.Fatalf("kill=%v: the item put after: %d bytes, %v", kill, len(got), err)
		}
		if err := a.Done.Set(); err != nil {
			t.Fatal(err)
		}
		if err := p.Join(); err != nil {
			t.Fatal(err)
		}
		if v, err := a.Q.GetNowait(); !errors.Is(err, aio.ErrEmpty) {
			t.Fatalf("kill=%v: the queue held %d more bytes, %v", kill, len(v), err)
		}
	}
}

// A Get that timed out in another process leaves no request standing
// for it at the host: the next item goes to the Get waiting here (found
// in review: the request made for the gone waiter stood first in the
// host's line, took the item into the idle process, and nothing recalled
// it).
func TestTimedOutGetLeavesNoRequest(t *testing.T) {
	a := lentArgs{Q: aio.NewQueue[[]byte](0), Got: aio.NewEvent(), Done: aio.NewEvent(), TimeOut: true}
	p := aio.NewProcess(getOneThenWait.Bind(a))
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		a.Done.Set()
		p.Join()
	}()
	if ok, err := a.Got.WaitTimeout(30 * time.Second); !ok || err != nil {
		t.Fatalf("the child's GetTimeout never returned: %v", err)
	}
	_, err := loop.Run(context.Background(), func(ctx context.Context) (struct{}, error) {
		getter := loop.Spawn(ctx, func(ctx context.Context) ([]byte, error) { return a.Q.CoroGet(ctx) })
		for range 2 { // the getter waits at the host (here) before the Put
			if err := loop.Sleep(ctx, 0); err != nil {
				return struct{}{}, err
			}
		}
		if err := a.Q.Put([]byte{9}); err != nil {
			return struct{}{}, err
		}
		got, err := loop.WaitFor(ctx, getter, 30*time.Second)
		if err != nil || !bytes.Equal(got, []byte{9}) {
			return struct{}{}, fmt.Errorf("the waiting Get: %v, %v; want [9]", got, err)
		}
		return struct{}{}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

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

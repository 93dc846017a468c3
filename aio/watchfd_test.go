//go:build linux

package aio_test

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/aio"
	"github.com/asyncgo/asyncgo/loop"
)

// A Connection its loop waited on, dropped without Close, leaves no
// descriptor behind once collected: the duplicate its waits kept goes
// with it, and the other end sees the end (found in review: the kept
// duplicate held the socket open).
func TestDroppedConnectionClosesWatchFD(t *testing.T) {
	before := settledFDs(t)
	b := func() *aio.Connection {
		a, b, err := aio.Pipe(true)
		if err != nil {
			t.Fatal(err)
		}
		_, err = loop.Run(context.Background(), func(ctx context.Context) (struct{}, error) {
			wctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
			defer cancel()
			_, err := a.CoroRecvConn(wctx)
			return struct{}{}, err
		})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("CoroRecvConn with nothing sent: %v, want its ctx's deadline", err)
		}
		return b
	}()
	defer b.Close()
	for deadline := time.Now().Add(10 * time.Second); fdCount(t) > before+1 && time.Now().Before(deadline); {
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
	if n := fdCount(t); n > before+1 { // b's socket
		t.Fatalf("descriptors: %d before, %d after dropping a Connection (b still open)\n%s", before, n, fdList())
	}
	if ok, err := b.Poll(5 * time.Second); !ok || err != nil {
		t.Fatalf("Poll of the other end: %v, %v; want readable (EOF)", ok, err)
	}
	if _, err := b.RecvBytes(1 << 20); err == nil {
		t.Fatal("RecvBytes of the other end: nil error; want EOF")
	}
}

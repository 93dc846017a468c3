package aio_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/aio"
	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/loop"
	"github.com/google/go-cmp/cmp"
)

type pipeArgs struct {
	C *aio.Connection
}

type point struct {
	X, Y int
	Name string
}

// pipeEcho answers each int with its double and each byte message with
// itself, until the int -1; then it closes its end.
var pipeEcho = executor.Register("aio_test.pipeEcho", func(a pipeArgs) (struct{}, error) {
	defer a.C.Close()
	for {
		var v int
		if err := a.C.Recv(&v); err != nil {
			return struct{}{}, err
		}
		if v == -1 {
			break
		}
		if err := a.C.Send(2 * v); err != nil {
			return struct{}{}, err
		}
		b, err := a.C.RecvBytes(0)
		if err != nil {
			return struct{}{}, err
		}
		if err := a.C.SendBytes(b); err != nil {
			return struct{}{}, err
		}
	}
	var p point
	if err := a.C.Recv(&p); err != nil {
		return struct{}{}, err
	}
	p.X, p.Y = p.Y, p.X
	return struct{}{}, a.C.Send(p)
})

// pipeWriteHandle receives a descriptor and writes to it (CPython's
// _TestConnection.test_fd_transfer does this in its child).
var pipeWriteHandle = executor.Register("aio_test.pipeWriteHandle", func(a pipeArgs) (struct{}, error) {
	defer a.C.Close()
	fd, err := a.C.RecvHandle()
	if err != nil {
		return struct{}{}, err
	}
	f := os.NewFile(uintptr(fd), "handle")
	_, err = f.WriteString("written by the child")
	f.Close()
	if err != nil {
		return struct{}{}, err
	}
	return struct{}{}, a.C.Send("done")
})

func pattern(n, seed int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + seed)
	}
	return b
}

// Mirrors CPython's _TestConnection.test_connection with the child end in
// another process: values, byte messages of up to 2 MiB, a struct, and
// EOF once the child has closed its end and the parent its copy.
func TestPipeAcrossProcesses(t *testing.T) {
	parent, child, err := aio.Pipe(true)
	if err != nil {
		t.Fatal(err)
	}
	defer parent.Close()
	p := aio.NewProcess(pipeEcho.Bind(pipeArgs{C: child}))
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	child.Close() // as Python's programs do once the child has its end
	for i, n := range []int{0, 1, 100, 65536, 2 << 20} {
		if err := parent.Send(i); err != nil {
			t.Fatal(err)
		}
		var v int
		if err := parent.Recv(&v); err != nil || v != 2*i {
			t.Fatalf("Recv = %d, %v; want %d", v, err, 2*i)
		}
		msg := pattern(n, i)
		if err := parent.SendBytes(msg); err != nil {
			t.Fatal(err)
		}
		got, err := parent.RecvBytes(0)
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("RecvBytes of %d bytes: %d bytes, %v", n, len(got), err)
		}
	}
	if err := parent.Send(-1); err != nil {
		t.Fatal(err)
	}
	if err := parent.Send(point{1, 2, "p"}); err != nil {
		t.Fatal(err)
	}
	var pt point
	if err := parent.Recv(&pt); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(point{2, 1, "p"}, pt); diff != "" {
		t.Errorf("point (-want +got):\n%s", diff)
	}
	if err := p.Join(); err != nil {
		t.Fatal(err)
	}
	if code, _ := p.ExitCode(); code != 0 {
		t.Fatalf("child exit code %d", code)
	}
	if ok, err := parent.Poll(0); !ok || err != nil {
		t.Errorf("Poll at EOF = %v, %v; want true", ok, err)
	}
	var v int
	if err := parent.Recv(&v); !errors.Is(err, io.EOF) {
		t.Errorf("Recv after the child closed: %v, want io.EOF", err)
	}
}

// Mirrors CPython's _TestConnection.test_fd_transfer: a descriptor sent
// with SendHandle is usable in the child.
func TestPipeHandleTransfer(t *testing.T) {
	parent, child, err := aio.Pipe(true)
	if err != nil {
		t.Fatal(err)
	}
	defer parent.Close()
	p := aio.NewProcess(pipeWriteHandle.Bind(pipeArgs{C: child}))
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	child.Close()
	path := filepath.Join(t.TempDir(), "f")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := parent.SendHandle(int(f.Fd())); err != nil {
		t.Fatal(err)
	}
	f.Close()
	var s string
	if err := parent.Recv(&s); err != nil || s != "done" {
		t.Fatalf("Recv = %q, %v", s, err)
	}
	p.Join()
	got, err := os.ReadFile(path)
	if err != nil || string(got) != "written by the child" {
		t.Fatalf("file holds %q, %v", got, err)
	}
}

// Mirrors CPython's _TestConnection.test_connection in one process: the
// byte methods, poll, BufferTooShort, and the errors of a closed end.
func TestPipeBytesAndErrors(t *testing.T) {
	a, b, err := aio.Pipe(true)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if ok, err := b.Poll(0); ok || err != nil {
		t.Fatalf("Poll(0) on an empty pipe = %v, %v", ok, err)
	}
	if ok, err := b.Poll(time.Millisecond); ok || err != nil {
		t.Fatalf("Poll(1ms) on an empty pipe = %v, %v", ok, err)
	}
	msg := []byte("abcdefghijklm")
	for range 3 {
		if err := a.SendBytes(msg); err != nil {
			t.Fatal(err)
		}
	}
	if ok, err := b.Poll(-1); !ok || err != nil {
		t.Fatalf("Poll(-1) with a message = %v, %v", ok, err)
	}
	buf := make([]byte, 20)
	if n, err := b.RecvBytesInto(buf[3:]); err != nil || n != len(msg) || !bytes.Equal(buf[3:3+n], msg) {
		t.Fatalf("RecvBytesInto = %d, %v, %q", n, err, buf)
	}
	var short *aio.BufferTooShortError
	if _, err := b.RecvBytesInto(buf[:5]); !errors.As(err, &short) || !errors.Is(err, aio.ErrBufferTooShort) || !bytes.Equal(short.Message, msg) {
		t.Fatalf("RecvBytesInto a short buffer: %v", err)
	}
	if _, err := b.RecvBytes(5); !errors.Is(err, aio.ErrMessageTooLong) {
		t.Fatalf("RecvBytes(5) of 13 bytes: %v", err)
	}
	if got, err := b.RecvBytes(13); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("RecvBytes after a too-long one: %q, %v; the message must still be there", got, err)
	}
	// A value of another type than the reader's: ErrItemType, and the
	// next message comes through.
	if err := a.Send("text"); err != nil {
		t.Fatal(err)
	}
	if err := a.Send(42); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := b.Recv(&n); !errors.Is(err, aio.ErrItemType) {
		t.Fatalf("Recv(&int) of a string: %v", err)
	}
	if err := b.Recv(&n); err != nil || n != 42 {
		t.Fatalf("Recv = %d, %v", n, err)
	}
	if err := b.Recv(n); err == nil {
		t.Fatal("Recv into a non-pointer succeeded")
	}
	if err := a.Send(nil); err == nil {
		t.Fatal("Send(nil) succeeded")
	}
	if err := a.Send(func() {}); err == nil {
		t.Fatal("Send of a func succeeded")
	}
	if ok, _ := b.Poll(0); ok {
		t.Fatal("a failed Send sent something")
	}
	// An empty message is a message.
	if err := a.SendBytes(nil); err != nil {
		t.Fatal(err)
	}
	if got, err := b.RecvBytes(0); err != nil || got == nil || len(got) != 0 {
		t.Fatalf("RecvBytes of an empty message = %q (nil %v), %v", got, got == nil, err)
	}
	b.Close()
	if !b.Closed() {
		t.Error("Closed() is false after Close")
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := b.RecvBytes(0); !errors.Is(err, aio.ErrConnClosed) {
		t.Errorf("RecvBytes on a closed end: %v", err)
	}
	if err := b.SendBytes(msg); !errors.Is(err, aio.ErrConnClosed) {
		t.Errorf("SendBytes on a closed end: %v", err)
	}
	if _, err := a.RecvBytes(0); !errors.Is(err, io.EOF) {
		t.Errorf("RecvBytes from a closed peer: %v, want io.EOF", err)
	}
	var zero aio.Connection
	if err := zero.SendBytes(msg); err == nil {
		t.Error("SendBytes on a zero Connection succeeded")
	}
}

// Mirrors CPython's _TestConnection.test_duplex_false.
func TestPipeOneWay(t *testing.T) {
	r, w, err := aio.Pipe(false)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if !r.Readable() || r.Writable() || w.Readable() || !w.Writable() {
		t.Fatalf("readable/writable: r %v/%v, w %v/%v", r.Readable(), r.Writable(), w.Readable(), w.Writable())
	}
	if err := w.Send(1); err != nil {
		t.Fatal(err)
	}
	var v int
	if err := r.Recv(&v); err != nil || v != 1 {
		t.Fatalf("Recv = %d, %v", v, err)
	}
	if err := r.Send(1); !errors.Is(err, aio.ErrConnReadOnly) {
		t.Errorf("Send on the reading end: %v", err)
	}
	if err := w.Recv(&v); !errors.Is(err, aio.ErrConnWriteOnly) {
		t.Errorf("Recv on the writing end: %v", err)
	}
	if _, err := w.Poll(0); !errors.Is(err, aio.ErrConnWriteOnly) {
		t.Errorf("Poll on the writing end: %v", err)
	}
}

// A cancelled CoroRecv leaves its message for the next receive, whether
// the task is cancelled or the ctx it was given ends, and whether the
// message had not come, had partly come, or had come whole.
func TestCoroRecvCancelledTakesNothing(t *testing.T) {
	a, b, err := aio.Pipe(true)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	defer b.Close()
	_, err = loop.Run(context.Background(), func(ctx context.Context) (int, error) {
		recv := loop.Spawn(ctx, func(ctx context.Context) ([]byte, error) { return b.CoroRecvBytes(ctx, 0) })
		if err := loop.Sleep(ctx, 5*time.Millisecond); err != nil {
			return 0, err
		}
		recv.Cancel()
		if _, err := recv.Await(ctx); !errors.Is(err, loop.ErrCancelled) {
			t.Errorf("cancelled CoroRecvBytes: %v", err)
		}
		tctx, cancel := context.WithTimeout(ctx, 5*time.Millisecond)
		var s string
		if err := b.CoroRecv(tctx, &s); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("CoroRecv under an ended ctx: %v", err)
		}
		cancel()
		if err := a.CoroSend(ctx, "first"); err != nil {
			return 0, err
		}
		if err := b.CoroRecv(ctx, &s); err != nil || s != "first" {
			t.Errorf("CoroRecv = %q, %v; want first", s, err)
		}
		// A 2 MiB message the receiver is cancelled in the middle of.
		big := pattern(2<<20, 3)
		go a.SendBytes(big)
		for i := 0; ; i++ {
			tctx, cancel := context.WithTimeout(ctx, 50*time.Microsecond)
			got, err := b.CoroRecvBytes(tctx, 0)
			cancel()
			if err == nil {
				if !bytes.Equal(got, big) {
					t.Errorf("2 MiB message after %d cancelled receives: %d bytes, not the message", i, len(got))
				}
				break
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				return 0, err
			}
		}
		return 0, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A Queue's CoroGet under a ctx that ends takes no item (the await leaves
// its future running, as wait_for(shield(f)); the item must come back).
func TestCoroGetDerivedCtxTakesNothing(t *testing.T) {
	q := aio.NewQueue[int](0)
	_, err := loop.Run(context.Background(), func(ctx context.Context) (int, error) {
		for range 20 {
			tctx, cancel := context.WithTimeout(ctx, time.Millisecond)
			_, err := q.CoroGet(tctx)
			cancel()
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("CoroGet under an ended ctx: %v", err)
			}
		}
		return 0, q.CoroPut(ctx, 5)
	})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := q.GetTimeout(10 * time.Second); err != nil || v != 5 {
		t.Fatalf("Get = %v, %v; want 5", v, err)
	}
}

// Randomized against a FIFO of messages: a sender of messages of random
// sizes (empty to 300 KB) and handles, a receiver that mixes blocking
// receives, polls and Coro receives whose ctx may end at any moment;
// what arrives must be exactly what was sent, in order.
func TestPipeRandomized(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	a, b, err := aio.Pipe(true)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	defer b.Close()
	const n = 300
	sizes := make([]int, n)
	for i := range sizes {
		switch rng.IntN(4) {
		case 0:
			sizes[i] = 0
		case 1:
			sizes[i] = rng.IntN(64)
		case 2:
			sizes[i] = rng.IntN(70000)
		default:
			sizes[i] = rng.IntN(300000)
		}
	}
	sent := make(chan error, 1)
	go func() {
		for i, sz := range sizes {
			if err := a.SendBytes(pattern(sz, i)); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()
	actions := make([]int, 4*n)
	delays := make([]time.Duration, 4*n)
	for i := range actions {
		actions[i] = rng.IntN(4)
		delays[i] = time.Duration(rng.IntN(200)) * time.Microsecond
	}
	got := 0
	_, err = loop.Run(context.Background(), func(ctx context.Context) (int, error) {
		for k := 0; got < n; k++ {
			var m []byte
			var err error
			switch actions[k%len(actions)] {
			case 0:
				m, err = b.RecvBytes(0)
			case 1:
				if _, err := b.CoroPoll(ctx, delays[k%len(delays)]); err != nil {
					return 0, err
				}
				continue
			default:
				tctx, cancel := context.WithTimeout(ctx, delays[k%len(delays)])
				m, err = b.CoroRecvBytes(tctx, 0)
				cancel()
				if errors.Is(err, context.DeadlineExceeded) {
					continue
				}
			}
			if err != nil {
				return 0, err
			}
			if want := pattern(sizes[got], got); !bytes.Equal(m, want) {
				t.Fatalf("message %d: %d bytes, want %d bytes of its pattern", got, len(m), len(want))
			}
			got++
		}
		return 0, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
}

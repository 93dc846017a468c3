//go:build linux

package aio_test

import (
	"context"
	"testing"

	"github.com/asyncgo/asyncgo/aio"
	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/loop"
	"golang.org/x/sys/unix"
)

// Issue 12's hand-off target: SendConn + its acknowledgement + adopting
// the connection as a transport on the receiver's loop, against the floor
// of the same work done with raw syscalls between the same two processes:
// sendmsg of the descriptor and the prefix, recvmsg, a one-byte answer,
// and the same adoption. Both send a duplicate of one TCP connection per
// operation with 64 bytes of prefix, and both answer before adopting, so
// the receiver's adoption overlaps the next send the same way.

const benchPrefix = 64

type handoffBenchArgs struct {
	C *aio.Connection
	N int
}

// handoffBenchWorker takes N+1 hand-offs on its loop and adopts each as a
// transport, which it aborts.
var handoffBenchWorker = executor.Register("aio_test.handoffBenchWorker", func(a handoffBenchArgs) (struct{}, error) {
	defer a.C.Close()
	return struct{}{}, loop.RunMain(context.Background(), func(ctx context.Context) error {
		for range a.N + 1 {
			h, err := a.C.CoroRecvConn(ctx)
			if err != nil {
				return err
			}
			t, _, err := h.Adopt(ctx, func() loop.BaseProtocol { return &loop.NopProtocol{} })
			if err != nil {
				return err
			}
			t.Abort()
		}
		return nil
	})
})

// rawFloorWorker takes a raw socket with RecvHandle, then N+1 descriptors
// on it with recvmsg on its loop's goroutine, answers each with one byte
// and adopts it as handoffBenchWorker does.
var rawFloorWorker = executor.Register("aio_test.rawFloorWorker", func(a handoffBenchArgs) (struct{}, error) {
	defer a.C.Close()
	raw, err := a.C.RecvHandle()
	if err != nil {
		return struct{}{}, err
	}
	defer unix.Close(raw)
	return struct{}{}, loop.RunMain(context.Background(), func(ctx context.Context) error {
		l, _ := loop.RunningLoop(ctx)
		buf := make([]byte, benchPrefix)
		oob := make([]byte, unix.CmsgSpace(4))
		for range a.N + 1 {
			n, oobn, _, _, err := unix.Recvmsg(raw, buf, oob, unix.MSG_CMSG_CLOEXEC)
			if err != nil {
				return err
			}
			msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
			if err != nil {
				return err
			}
			fds, err := unix.ParseUnixRights(&msgs[0])
			if err != nil {
				return err
			}
			if _, err := unix.Write(raw, []byte{'A'}); err != nil {
				return err
			}
			s, err := loop.SocketFromFd(fds[0])
			if err != nil {
				return err
			}
			t, _, err := l.AttachSocket(ctx, func() loop.BaseProtocol { return &loop.NopProtocol{} }, s, buf[:n])
			if err != nil {
				return err
			}
			t.Abort()
		}
		return nil
	})
})

// benchTemplate returns the descriptor of a connected TCP socket to
// duplicate for each operation, and a func that closes it all.
func benchTemplate(b *testing.B) (int, func()) {
	server, client := tcpPair(b)
	f, err := server.File()
	if err != nil {
		b.Fatal(err)
	}
	server.Close()
	return int(f.Fd()), func() { f.Close(); client.Close() }
}

func dupFD(b *testing.B, fd int) int {
	d, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	return d
}

// BenchmarkHandoff: per operation, SendConn of a connection with 64
// bytes of prefix to a worker process, its acknowledgement, and the
// worker's adoption of it as a transport on its loop (CoroRecvConn,
// Adopt).
func BenchmarkHandoff(b *testing.B) {
	tmpl, done := benchTemplate(b)
	defer done()
	a, bb, err := aio.Pipe(true)
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	p := aio.NewProcess(handoffBenchWorker.Bind(handoffBenchArgs{C: bb, N: b.N}))
	if err := p.Start(); err != nil {
		b.Fatal(err)
	}
	bb.Close()
	prefix := make([]byte, benchPrefix)
	if err := a.SendConn(dupFD(b, tmpl), prefix); err != nil { // the worker is up
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := a.SendConn(dupFD(b, tmpl), prefix); err != nil {
			b.Fatal(err)
		}
	}
	if err := p.Join(); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if code, _ := p.ExitCode(); code != 0 {
		b.Fatalf("the worker exited with %d", code)
	}
}

// BenchmarkHandoffCoroSend is BenchmarkHandoff with the sender a task on
// a loop (CoroSendConn), as an acceptor's is.
func BenchmarkHandoffCoroSend(b *testing.B) {
	tmpl, done := benchTemplate(b)
	defer done()
	a, bb, err := aio.Pipe(true)
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	p := aio.NewProcess(handoffBenchWorker.Bind(handoffBenchArgs{C: bb, N: b.N}))
	if err := p.Start(); err != nil {
		b.Fatal(err)
	}
	bb.Close()
	prefix := make([]byte, benchPrefix)
	err = loop.RunMain(context.Background(), func(ctx context.Context) error {
		if err := a.CoroSendConn(ctx, dupFD(b, tmpl), prefix); err != nil { // the worker is up
			return err
		}
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if err := a.CoroSendConn(ctx, dupFD(b, tmpl), prefix); err != nil {
				return err
			}
		}
		return p.CoroJoin(ctx)
	})
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	if code, _ := p.ExitCode(); code != 0 {
		b.Fatalf("the worker exited with %d", code)
	}
}

// BenchmarkHandoffRawFloor is BenchmarkHandoff's floor: the same
// descriptor and prefix per operation over a raw socketpair with sendmsg,
// recvmsg and a one-byte answer, and the same adoption on the worker's
// loop.
func BenchmarkHandoffRawFloor(b *testing.B) {
	tmpl, done := benchTemplate(b)
	defer done()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	raw := fds[0]
	defer unix.Close(raw)
	a, bb, err := aio.Pipe(true)
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	p := aio.NewProcess(rawFloorWorker.Bind(handoffBenchArgs{C: bb, N: b.N}))
	if err := p.Start(); err != nil {
		b.Fatal(err)
	}
	bb.Close()
	if err := a.SendHandle(fds[1]); err != nil {
		b.Fatal(err)
	}
	unix.Close(fds[1])
	prefix := make([]byte, benchPrefix)
	var ack [1]byte
	send := func() {
		d := dupFD(b, tmpl)
		if err := unix.Sendmsg(raw, prefix, unix.UnixRights(d), nil, 0); err != nil {
			b.Fatal(err)
		}
		unix.Close(d)
		if _, err := unix.Read(raw, ack[:]); err != nil {
			b.Fatal(err)
		}
	}
	send() // the worker is up
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		send()
	}
	if err := p.Join(); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if code, _ := p.ExitCode(); code != 0 {
		b.Fatalf("the worker exited with %d", code)
	}
}

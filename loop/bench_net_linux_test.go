package loop_test

import (
	"context"
	"io"
	"net"
	"testing"

	"github.com/asyncgo/asyncgo/loop"
)

// benchEcho does b.N round trips of size bytes over conns connections to
// addr, one goroutine per connection.
func benchEcho(b *testing.B, addr string, size, conns int) {
	b.Helper()
	cs := make([]net.Conn, conns)
	for i := range cs {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		cs[i] = c
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	per := b.N / conns
	done := make(chan error, conns)
	for i, c := range cs {
		n := per
		if i == 0 {
			n += b.N % conns
		}
		go func() {
			msg := make([]byte, size)
			got := make([]byte, size)
			for range n {
				if _, err := c.Write(msg); err != nil {
					done <- err
					return
				}
				if _, err := io.ReadFull(c, got); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range conns {
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
}

// flowEcho is echoProto with flow control: a client that sends faster
// than it reads is not read from until it has caught up.
type flowEcho struct{ echoProto }

func (f *flowEcho) PauseWriting()  { f.t.PauseReading() }
func (f *flowEcho) ResumeWriting() { f.t.ResumeReading() }

// serveLoopEcho runs a Protocol echo server on a loop of its own until
// the returned stop is called.
func serveLoopEcho(b *testing.B) (addr string, stop func()) {
	ready := make(chan string)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		loop.RunMain(ctx, func(ctx context.Context) error {
			l := loopOf(ctx)
			srv, err := l.CreateServer(ctx, func() loop.BaseProtocol { return &flowEcho{} }, "127.0.0.1:0", nil)
			if err != nil {
				close(ready)
				return err
			}
			ready <- srv.Addrs()[0].String()
			return srv.ServeForever(ctx)
		})
	}()
	addr, ok := <-ready
	if !ok {
		b.Fatal("server did not start")
	}
	return addr, func() { cancel(); <-done }
}

// servePlainEcho is the plain-Go floor: a goroutine per connection.
func servePlainEcho(b *testing.B) (addr string, stop func()) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 32<<10)
				io.CopyBuffer(c, struct{ io.Reader }{c}, buf)
			}()
		}
	}()
	return ln.Addr().String(), func() { ln.Close(); <-done }
}

// BenchmarkTransportEcho: 64-byte round trips over 50 connections to a
// Protocol echo server on one loop; BenchmarkPlainGoEcho is the same
// against a goroutine-per-connection server (the floor the issue names),
// in the same run. Client and server share the machine's cores.
func BenchmarkTransportEcho(b *testing.B) {
	addr, stop := serveLoopEcho(b)
	defer stop()
	benchEcho(b, addr, 64, 50)
}

func BenchmarkPlainGoEcho(b *testing.B) {
	addr, stop := servePlainEcho(b)
	defer stop()
	benchEcho(b, addr, 64, 50)
}

// 2 MiB messages over 4 connections.
func BenchmarkTransportEcho2MiB(b *testing.B) {
	addr, stop := serveLoopEcho(b)
	defer stop()
	benchEcho(b, addr, 2<<20, 4)
}

func BenchmarkPlainGoEcho2MiB(b *testing.B) {
	addr, stop := servePlainEcho(b)
	defer stop()
	benchEcho(b, addr, 2<<20, 4)
}

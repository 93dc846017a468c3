package loop_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/loop"
	"golang.org/x/sys/unix"
)

func socketpair(t *testing.T) (a, b *loop.Socket) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	a, err = loop.SocketFromFd(fds[0])
	if err != nil {
		t.Fatal(err)
	}
	b, err = loop.SocketFromFd(fds[1])
	if err != nil {
		t.Fatal(err)
	}
	return a, b
}

// Mirrors test_selector_events.py: test_add_reader / test_remove_reader:
// the reader runs while the descriptor is readable, and not after
// RemoveReader, which reports whether there was one.
func TestAddReaderRemoveReader(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		l := loopOf(ctx)
		a, b := socketpair(t)
		defer a.Close()
		defer b.Close()
		got := make(chan []byte, 4)
		err := l.AddReader(a.Fd(), func() {
			buf := make([]byte, 16)
			n, _ := unix.Read(a.Fd(), buf)
			got <- buf[:n]
		})
		if err != nil {
			return err
		}
		if _, err := unix.Write(b.Fd(), []byte("ping")); err != nil {
			return err
		}
		for len(got) == 0 {
			if err := loop.Sleep(ctx, time.Millisecond); err != nil {
				return err
			}
		}
		if p := <-got; string(p) != "ping" {
			t.Errorf("reader read %q; want ping", p)
		}
		if !l.RemoveReader(a.Fd()) {
			t.Error("RemoveReader() = false; want true")
		}
		if l.RemoveReader(a.Fd()) {
			t.Error("second RemoveReader() = true; want false")
		}
		unix.Write(b.Fd(), []byte("more"))
		for range 5 {
			loop.Sleep(ctx, time.Millisecond)
		}
		if len(got) != 0 {
			t.Error("reader ran after RemoveReader")
		}
		return nil
	})
}

// Mirrors test_selector_events.py: test_add_writer and
// test_add_reader_existing (a second AddReader replaces the first).
func TestAddWriterAndReplace(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		l := loopOf(ctx)
		a, b := socketpair(t)
		defer a.Close()
		defer b.Close()
		wrote := loop.NewFuture[int](l)
		if err := l.AddWriter(a.Fd(), func() {
			l.RemoveWriter(a.Fd())
			n, _ := unix.Write(a.Fd(), []byte("x"))
			wrote.SetResult(n)
		}); err != nil {
			return err
		}
		if n, err := wrote.Await(ctx); err != nil || n != 1 {
			t.Fatalf("writer: %d, %v", n, err)
		}
		var which []string
		l.AddReader(b.Fd(), func() { which = append(which, "first") })
		l.AddReader(b.Fd(), func() {
			which = append(which, "second")
			l.RemoveReader(b.Fd())
		})
		for len(which) == 0 {
			loop.Sleep(ctx, time.Millisecond)
		}
		if len(which) != 1 || which[0] != "second" {
			t.Errorf("readers ran %v; want [second]", which)
		}
		return nil
	})
}

// Bad input: a negative descriptor and a nil callback are refused, and so
// is a reader on a descriptor a Socket's pending call owns.
func TestAddReaderBadInput(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		l := loopOf(ctx)
		if err := l.AddReader(-1, func() {}); !errors.Is(err, loop.ErrBadFd) {
			t.Errorf("AddReader(-1) = %v; want ErrBadFd", err)
		}
		if err := l.AddWriter(0, nil); err == nil {
			t.Error("AddWriter(nil) = nil; want an error")
		}
		a, b := socketpair(t)
		defer a.Close()
		defer b.Close()
		recv := loop.Spawn(ctx, func(ctx context.Context) ([]byte, error) { return l.SockRecv(ctx, a, 10) })
		loop.Sleep(ctx, 0)
		if err := l.AddReader(a.Fd(), func() {}); !errors.Is(err, loop.ErrFdInUse) {
			t.Errorf("AddReader on a socket being read = %v; want ErrFdInUse", err)
		}
		if l.RemoveReader(a.Fd()) {
			t.Error("RemoveReader of a socket's registration = true; want false")
		}
		unix.Write(b.Fd(), []byte("ok"))
		if p, err := recv.Await(ctx); err != nil || string(p) != "ok" {
			t.Errorf("SockRecv = %q, %v", p, err)
		}
		return nil
	})
}

// Mirrors test_sock_lowlevel.py: test_sock_client_ops and
// test_sock_accept: connect, send all, receive, accept, on 127.0.0.1.
func TestSockClientServerOps(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		l := loopOf(ctx)
		ln, err := loop.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer ln.Close()
		addr := ln.LocalAddr().String()
		big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB: many writes
		server := loop.Spawn(ctx, func(ctx context.Context) ([]byte, error) {
			c, peer, err := l.SockAccept(ctx, ln)
			if err != nil {
				return nil, err
			}
			defer c.Close()
			if peer == nil {
				t.Error("SockAccept returned no peer address")
			}
			var got []byte
			buf := make([]byte, 64<<10)
			for {
				n, err := l.SockRecvInto(ctx, c, buf)
				if err != nil {
					return nil, err
				}
				if n == 0 {
					break
				}
				got = append(got, buf[:n]...)
			}
			return got, l.SockSendall(ctx, c, []byte("done"))
		})
		c, err := loop.NewSocket("tcp")
		if err != nil {
			return err
		}
		defer c.Close()
		if err := l.SockConnect(ctx, c, addr); err != nil {
			return err
		}
		if c.RemoteAddr().String() != addr {
			t.Errorf("RemoteAddr = %v; want %s", c.RemoteAddr(), addr)
		}
		if err := l.SockSendall(ctx, c, big); err != nil {
			return err
		}
		c.Shutdown(unix.SHUT_WR)
		reply, err := l.SockRecv(ctx, c, 100)
		if err != nil || string(reply) != "done" {
			t.Errorf("reply %q, %v", reply, err)
		}
		got, err := server.Await(ctx)
		if err != nil {
			return err
		}
		if !bytes.Equal(got, big) {
			t.Errorf("server got %d bytes; want %d", len(got), len(big))
		}
		return nil
	})
}

// Mirrors test_sock_lowlevel.py: test_cancel_sock_accept and
// test_sock_recv cancellation: a timed-out SockRecv reads nothing, and the
// data is there for the next one; a cancelled SockAccept leaves the
// connection for the next accept.
func TestSockRecvTimeoutLosesNothing(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		l := loopOf(ctx)
		a, b := socketpair(t)
		defer a.Close()
		defer b.Close()
		tctx, cancel := context.WithTimeout(ctx, 5*time.Millisecond)
		_, err := l.SockRecv(tctx, a, 10)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("SockRecv with a 5ms deadline = %v; want DeadlineExceeded", err)
		}
		r := loop.Spawn(ctx, func(ctx context.Context) ([]byte, error) { return l.SockRecv(ctx, a, 10) })
		loop.Sleep(ctx, 0)
		r.Cancel()
		if _, err := r.Await(ctx); !errors.Is(err, loop.ErrCancelled) {
			t.Fatalf("cancelled SockRecv = %v", err)
		}
		unix.Write(b.Fd(), []byte("kept"))
		p, err := l.SockRecv(ctx, a, 10)
		if err != nil || string(p) != "kept" {
			t.Errorf("SockRecv after the cancelled ones = %q, %v; want kept", p, err)
		}

		ln, err := loop.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer ln.Close()
		acc := loop.Spawn(ctx, func(ctx context.Context) (*loop.Socket, error) {
			s, _, err := l.SockAccept(ctx, ln)
			return s, err
		})
		loop.Sleep(ctx, 0)
		acc.Cancel()
		if _, err := acc.Await(ctx); !errors.Is(err, loop.ErrCancelled) {
			t.Fatalf("cancelled SockAccept = %v", err)
		}
		nc, err := net.Dial("tcp", ln.LocalAddr().String())
		if err != nil {
			return err
		}
		defer nc.Close()
		s, _, err := l.SockAccept(ctx, ln)
		if err != nil {
			return err
		}
		return s.Close()
	})
}

// Adoption: a net.Listener and a net.Conn made by package net become
// Sockets; the originals are closed, the descriptors are the Sockets'.
func TestSocketFromListenerAndConn(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		l := loopOf(ctx)
		nl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		ln, err := loop.SocketFromListener(nl)
		if err != nil {
			return err
		}
		defer ln.Close()
		if _, err := nl.Accept(); err == nil {
			t.Error("the adopted net.Listener still accepts")
		}
		nc, err := net.Dial("tcp", ln.LocalAddr().String())
		if err != nil {
			return err
		}
		c, err := loop.SocketFromConn(nc)
		if err != nil {
			return err
		}
		defer c.Close()
		s, _, err := l.SockAccept(ctx, ln)
		if err != nil {
			return err
		}
		defer s.Close()
		if err := l.SockSendall(ctx, c, []byte("adopted")); err != nil {
			return err
		}
		p, err := l.SockRecv(ctx, s, 20)
		if err != nil || string(p) != "adopted" {
			t.Errorf("got %q, %v", p, err)
		}
		if _, err := loop.SocketFromFd(-3); !errors.Is(err, loop.ErrBadFd) {
			t.Errorf("SocketFromFd(-3) = %v", err)
		}
		return nil
	})
}

// A connect to a closed port fails with ECONNREFUSED; a Socket closed while
// a task waits on it wakes the task with ErrSocketClosed.
func TestSockConnectRefusedAndCloseWakes(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		l := loopOf(ctx)
		ln, _ := loop.Listen("tcp", "127.0.0.1:0")
		addr := ln.LocalAddr().String()
		ln.Close()
		c, _ := loop.NewSocket("tcp")
		err := l.SockConnect(ctx, c, addr)
		c.Close()
		if !errors.Is(err, unix.ECONNREFUSED) {
			t.Errorf("SockConnect to a closed port = %v; want ECONNREFUSED", err)
		}
		a, b := socketpair(t)
		defer b.Close()
		r := loop.Spawn(ctx, func(ctx context.Context) ([]byte, error) { return l.SockRecv(ctx, a, 10) })
		loop.Sleep(ctx, 0)
		a.Close()
		if _, err := r.Await(ctx); !errors.Is(err, loop.ErrSocketClosed) {
			t.Errorf("SockRecv on a socket closed meanwhile = %v; want ErrSocketClosed", err)
		}
		if _, err := l.SockRecv(ctx, a, 1); !errors.Is(err, loop.ErrSocketClosed) {
			t.Errorf("SockRecv on a closed socket = %v", err)
		}
		return nil
	})
}

package loop_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/loop"
)

// echoProto writes back what it receives.
type echoProto struct {
	loop.NopProtocol
	t loop.Transport
}

func (e *echoProto) ConnectionMade(t loop.Transport) { e.t = t }
func (e *echoProto) DataReceived(p []byte)           { e.t.Write(p) }

// recordProto records its callbacks in order, as test_events.py's
// MyProto does with its state machine.
type recordProto struct {
	t      loop.Transport
	events []string
	data   bytes.Buffer
	lost   *loop.Future[error]
	made   *loop.Future[struct{}]
	keep   bool // EOFReceived's answer
}

func newRecordProto(l *loop.Loop) *recordProto {
	return &recordProto{lost: loop.NewFuture[error](l), made: loop.NewFuture[struct{}](l)}
}

func (r *recordProto) ConnectionMade(t loop.Transport) {
	r.t = t
	r.events = append(r.events, "made")
	r.made.SetResult(struct{}{})
}
func (r *recordProto) DataReceived(p []byte) {
	if n := len(r.events); n == 0 || r.events[n-1] != "data" {
		r.events = append(r.events, "data")
	}
	r.data.Write(p)
}
func (r *recordProto) EOFReceived() bool {
	r.events = append(r.events, "eof")
	return r.keep
}
func (r *recordProto) ConnectionLost(err error) {
	r.events = append(r.events, "lost")
	r.lost.SetResult(err)
}

func dialRead(t *testing.T, addr string, send []byte) <-chan []byte {
	t.Helper()
	out := make(chan []byte, 1)
	go func() {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			out <- nil
			return
		}
		defer c.Close()
		go func() {
			c.Write(send)
			c.(*net.TCPConn).CloseWrite()
		}()
		got, _ := io.ReadAll(c)
		out <- got
	}()
	return out
}

// Mirrors test_events.py: test_create_server: a protocol server echoes to
// a plain client, and the callbacks come in asyncio's order: made, data,
// eof, lost.
func TestCreateServerEchoOrder(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		l := loopOf(ctx)
		var protos []*recordProto
		srv, err := l.CreateServer(ctx, func() loop.BaseProtocol {
			p := newRecordProto(l)
			protos = append(protos, p)
			return p
		}, "127.0.0.1:0", nil)
		if err != nil {
			return err
		}
		defer srv.Close()
		if !srv.IsServing() || len(srv.Addrs()) != 1 {
			t.Fatalf("IsServing %v, Addrs %v", srv.IsServing(), srv.Addrs())
		}
		reply := dialRead(t, srv.Addrs()[0].String(), []byte("hello"))
		for len(protos) == 0 {
			loop.Sleep(ctx, time.Millisecond)
		}
		p := protos[0]
		if _, err := p.lost.Await(ctx); err != nil {
			t.Errorf("ConnectionLost(%v); want nil", err)
		}
		if got := awaitChan(ctx, reply); len(got) != 0 {
			t.Errorf("client read %q", got)
		}
		checkTrace(t, []string{"made", "data", "eof", "lost"}, p.events)
		if p.data.String() != "hello" {
			t.Errorf("server got %q", p.data.String())
		}
		return nil
	})
}

// Mirrors test_events.py: test_create_connection and
// test_create_unix_connection: CreateConnection returns once
// ConnectionMade ran, writes reach the server, and Close delivers
// ConnectionLost(nil) after the buffer is flushed.
func TestCreateConnectionTCPAndUnix(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			runNet(t, func(ctx context.Context) error {
				l := loopOf(ctx)
				factory := func() loop.BaseProtocol { return &echoProto{} }
				var srv *loop.Server
				var err error
				path := filepath.Join(t.TempDir(), "s.sock")
				if network == "tcp" {
					srv, err = l.CreateServer(ctx, factory, "127.0.0.1:0", nil)
				} else {
					srv, err = l.CreateUnixServer(ctx, factory, path, nil)
				}
				if err != nil {
					return err
				}
				defer srv.Close()
				cp := newRecordProto(l)
				var tr loop.Transport
				if network == "tcp" {
					tr, _, err = l.CreateConnection(ctx, func() loop.BaseProtocol { return cp }, srv.Addrs()[0].String(), nil)
				} else {
					tr, _, err = l.CreateUnixConnection(ctx, func() loop.BaseProtocol { return cp }, path, nil)
				}
				if err != nil {
					return err
				}
				if !cp.made.Done() {
					t.Error("CreateConnection returned before ConnectionMade")
				}
				msg := bytes.Repeat([]byte("x"), 3<<20) // more than the socket takes at once
				tr.Write(msg)
				if tr.WriteBufferSize() == 0 {
					t.Log("the kernel took 3 MiB at once")
				}
				for cp.data.Len() < len(msg) {
					if err := loop.Sleep(ctx, time.Millisecond); err != nil {
						return err
					}
				}
				if !bytes.Equal(cp.data.Bytes(), msg) {
					t.Error("echo differs")
				}
				tr.Close()
				if !tr.IsClosing() {
					t.Error("IsClosing() = false after Close")
				}
				if _, err := cp.lost.Await(ctx); err != nil {
					t.Errorf("ConnectionLost(%v)", err)
				}
				return nil
			})
		})
	}
}

// flowProto records pause/resume writing calls.
type flowProto struct {
	loop.NopProtocol
	t      loop.Transport
	events []string
}

func (f *flowProto) ConnectionMade(t loop.Transport) { f.t = t }
func (f *flowProto) PauseWriting()                   { f.events = append(f.events, "pause") }
func (f *flowProto) ResumeWriting()                  { f.events = append(f.events, "resume") }

// Mirrors test_selector_events.py: test_write_buffer_full and
// test_set_write_buffer_limits: PauseWriting past the high mark,
// ResumeWriting at the low one; bad limits are refused.
func TestTransportWriteFlowControl(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		l := loopOf(ctx)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer ln.Close()
		accepted := make(chan net.Conn, 1)
		go func() {
			c, _ := ln.Accept()
			accepted <- c
		}()
		fp := &flowProto{}
		tr, _, err := l.CreateConnection(ctx, func() loop.BaseProtocol { return fp }, ln.Addr().String(), nil)
		if err != nil {
			return err
		}
		peer := <-accepted
		defer peer.Close()
		if err := tr.SetWriteBufferLimits(10, 20); !errors.Is(err, loop.ErrBadWriteLimits) {
			t.Errorf("SetWriteBufferLimits(10, 20) = %v", err)
		}
		if err := tr.SetWriteBufferLimits(-1, -1); err != nil {
			return err
		}
		if lo, hi := tr.WriteBufferLimits(); lo != 16384 || hi != 65536 {
			t.Errorf("default limits (%d, %d); want (16384, 65536)", lo, hi)
		}
		tr.SetWriteBufferLimits(1<<20, 1<<10)
		chunk := make([]byte, 64<<10)
		for len(fp.events) == 0 {
			tr.Write(chunk) // the peer does not read: the buffer fills
		}
		if size := tr.WriteBufferSize(); size <= 1<<20 {
			t.Errorf("paused at %d bytes; want above the high mark", size)
		}
		go io.Copy(io.Discard, peer)
		for len(fp.events) < 2 {
			if err := loop.Sleep(ctx, time.Millisecond); err != nil {
				return err
			}
		}
		checkTrace(t, []string{"pause", "resume"}, fp.events)
		if size := tr.WriteBufferSize(); size > 1<<10 {
			t.Errorf("resumed at %d bytes; want at most the low mark", size)
		}
		tr.Abort()
		return nil
	})
}

// Mirrors test_selector_events.py: test_pause_resume_reading and
// test_write_eof: no DataReceived while paused, data arrives after
// ResumeReading; WriteEOF half-closes and writes after it are refused.
func TestTransportPauseReadingAndWriteEOF(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		l := loopOf(ctx)
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		defer ln.Close()
		accepted := make(chan net.Conn, 1)
		go func() {
			c, _ := ln.Accept()
			accepted <- c
		}()
		rp := newRecordProto(l)
		rp.keep = true
		tr, _, err := l.CreateConnection(ctx, func() loop.BaseProtocol { return rp }, ln.Addr().String(), nil)
		if err != nil {
			return err
		}
		peer := <-accepted
		defer peer.Close()
		tr.PauseReading()
		tr.PauseReading() // idempotent
		if tr.IsReading() {
			t.Error("IsReading() = true after PauseReading")
		}
		peer.Write([]byte("while paused"))
		for range 10 {
			loop.Sleep(ctx, time.Millisecond)
		}
		if rp.data.Len() != 0 {
			t.Errorf("DataReceived while paused: %q", rp.data.String())
		}
		tr.ResumeReading()
		for rp.data.Len() < len("while paused") {
			loop.Sleep(ctx, time.Millisecond)
		}
		if !tr.CanWriteEOF() {
			t.Error("CanWriteEOF() = false")
		}
		tr.Write([]byte("bye"))
		tr.WriteEOF()
		if _, err := tr.Write([]byte("late")); !errors.Is(err, loop.ErrWriteAfterEOF) {
			t.Errorf("Write after WriteEOF = %v", err)
		}
		got, _ := io.ReadAll(peer) // EOF arrives: the write side is shut
		if string(got) != "bye" {
			t.Errorf("peer read %q", got)
		}
		peer.Close()
		for len(rp.events) < 3 {
			loop.Sleep(ctx, time.Millisecond)
		}
		if tr.IsClosing() {
			t.Error("EOFReceived returned true, yet the transport closed itself")
		}
		tr.Close() // half-closed both ways: closing is the protocol's call
		if _, err := rp.lost.Await(ctx); err != nil {
			t.Errorf("ConnectionLost(%v)", err)
		}
		checkTrace(t, []string{"made", "data", "eof", "lost"}, rp.events)
		return nil
	})
}

// A peer that resets the connection ends it with ConnectionLost(err), not a
// report to the exception handler; Abort drops the buffer at once.
func TestTransportPeerResetAndAbort(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		l := loopOf(ctx)
		var reports []string
		l.SetExceptionHandler(func(_ *loop.Loop, c loop.ExceptionContext) { reports = append(reports, c.Message) })
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		defer ln.Close()
		accepted := make(chan net.Conn, 1)
		go func() {
			c, _ := ln.Accept()
			accepted <- c
		}()
		rp := newRecordProto(l)
		tr, _, err := l.CreateConnection(ctx, func() loop.BaseProtocol { return rp }, ln.Addr().String(), nil)
		if err != nil {
			return err
		}
		peer := (<-accepted).(*net.TCPConn)
		peer.SetLinger(0)
		peer.Write([]byte("x"))
		peer.Close() // RST
		for range 1000 {
			tr.Write(make([]byte, 1024))
			if rp.lost.Done() {
				break
			}
			loop.Sleep(ctx, time.Millisecond)
		}
		lerr, err := rp.lost.Await(ctx)
		if err != nil {
			return err
		}
		if lerr == nil {
			t.Error("ConnectionLost(nil) after a reset; want the error")
		}
		if len(reports) != 0 {
			t.Errorf("a reset was reported: %v", reports)
		}
		return nil
	})
}

// Mirrors test_server.py: test_wait_closed_basic and test_close_clients:
// WaitClosed returns only once the server is closed and its last client is
// gone; CloseClients closes them.
func TestServerWaitClosedAndCloseClients(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		l := loopOf(ctx)
		var protos []*recordProto
		srv, err := l.CreateServer(ctx, func() loop.BaseProtocol {
			p := newRecordProto(l)
			protos = append(protos, p)
			return p
		}, "127.0.0.1:0", nil)
		if err != nil {
			return err
		}
		addr := srv.Addrs()[0].String()
		for range 3 {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				return err
			}
			defer c.Close()
		}
		for len(protos) < 3 {
			loop.Sleep(ctx, time.Millisecond)
		}
		waited := loop.Go(ctx, srv.WaitClosed)
		srv.Close()
		if srv.IsServing() || len(srv.Sockets()) != 0 {
			t.Error("server still serving after Close")
		}
		if _, err := net.Dial("tcp", addr); err == nil {
			t.Error("a closed server accepted a connection")
		}
		for range 5 {
			loop.Sleep(ctx, time.Millisecond)
		}
		if waited.Done() {
			t.Fatal("WaitClosed returned while clients were connected")
		}
		srv.CloseClients()
		if _, err := waited.Await(ctx); err != nil {
			return err
		}
		for _, p := range protos {
			if !p.lost.Done() {
				t.Error("a client's ConnectionLost did not run")
			}
		}
		return srv.WaitClosed(ctx) // returns at once now
	})
}

// Mirrors test_server.py: test_serve_forever: cancelling the task in
// ServeForever closes the server; a second ServeForever is refused.
func TestServerServeForeverCancel(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		l := loopOf(ctx)
		srv, err := l.CreateServer(ctx, func() loop.BaseProtocol { return &echoProto{} }, "127.0.0.1:0", &loop.ServerOptions{NoStartServing: true})
		if err != nil {
			return err
		}
		if srv.IsServing() {
			t.Error("IsServing() with NoStartServing")
		}
		forever := loop.Go(ctx, srv.ServeForever)
		loop.Sleep(ctx, 0)
		if !srv.IsServing() {
			t.Error("not serving inside ServeForever")
		}
		if err := srv.ServeForever(ctx); !errors.Is(err, loop.ErrServeForeverTwice) {
			t.Errorf("second ServeForever = %v", err)
		}
		forever.Cancel()
		if _, err := forever.Await(ctx); !errors.Is(err, loop.ErrCancelled) {
			t.Errorf("ServeForever after Cancel = %v", err)
		}
		if len(srv.Sockets()) != 0 {
			t.Error("server not closed by the cancellation")
		}
		if err := srv.ServeForever(ctx); !errors.Is(err, loop.ErrServerClosed) {
			t.Errorf("ServeForever on a closed server = %v", err)
		}
		return nil
	})
}

// Loop.Close with an open transport and server reports the transport and
// closes every descriptor (runNet counts them).
func TestLoopCloseClosesTransports(t *testing.T) {
	before := openFDs(t)
	l := loop.New()
	var reports []string
	l.SetExceptionHandler(func(_ *loop.Loop, c loop.ExceptionContext) { reports = append(reports, c.Message) })
	task := loop.CreateTask(l, func(ctx context.Context) (loop.Transport, error) {
		srv, err := l.CreateServer(ctx, func() loop.BaseProtocol { return &echoProto{} }, "127.0.0.1:0", nil)
		if err != nil {
			return nil, err
		}
		tr, _, err := l.CreateConnection(ctx, func() loop.BaseProtocol { return &echoProto{} }, srv.Addrs()[0].String(), nil)
		return tr, err
	})
	if err := l.RunUntilComplete(task); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if after := openFDs(t); after != before {
		t.Errorf("descriptors: %d before, %d after Close", before, after)
	}
	if len(reports) == 0 || !strings.Contains(strings.Join(reports, ";"), "unclosed transport") {
		t.Errorf("reports %v; want an unclosed transport", reports)
	}
}

// Bad input: a factory that panics or returns something that is not a
// protocol does not take the server down; the connection is closed and
// the error reported.
func TestServerBadFactory(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		l := loopOf(ctx)
		var reports []string
		l.SetExceptionHandler(func(_ *loop.Loop, c loop.ExceptionContext) {
			reports = append(reports, c.Message+": "+fmt.Sprint(c.Err))
		})
		n := 0
		srv, err := l.CreateServer(ctx, func() loop.BaseProtocol {
			n++
			switch n {
			case 1:
				panic("factory bug")
			case 2:
				return nil
			}
			return &echoProto{}
		}, "127.0.0.1:0", nil)
		if err != nil {
			return err
		}
		defer srv.Close()
		addr := srv.Addrs()[0].String()
		for i := range 3 {
			got := awaitChan(ctx, dialRead(t, addr, []byte("ping")))
			want := ""
			if i == 2 {
				want = "ping"
			}
			if string(got) != want {
				t.Errorf("client %d read %q; want %q", i, got, want)
			}
		}
		if len(reports) != 2 {
			t.Errorf("reports %q; want 2", reports)
		}
		return nil
	})
}

// Mirrors test_selector_events.py: test_close_write_buffer (closing with
// pending writes flushes them before ConnectionLost) and test_abort
// (Abort drops them): 8 MiB written to a peer that reads only later.
func TestTransportCloseFlushesAbortDrops(t *testing.T) {
	for _, abort := range []bool{false, true} {
		t.Run(fmt.Sprintf("abort=%v", abort), func(t *testing.T) {
			runNet(t, func(ctx context.Context) error {
				l := loopOf(ctx)
				ln, _ := net.Listen("tcp", "127.0.0.1:0")
				defer ln.Close()
				accepted := make(chan net.Conn, 1)
				go func() {
					c, _ := ln.Accept()
					accepted <- c
				}()
				rp := newRecordProto(l)
				tr, _, err := l.CreateConnection(ctx, func() loop.BaseProtocol { return rp }, ln.Addr().String(), nil)
				if err != nil {
					return err
				}
				peer := <-accepted
				defer peer.Close()
				msg := bytes.Repeat([]byte("0123456789abcdef"), 1<<19)
				tr.Write(msg)
				if tr.WriteBufferSize() == 0 {
					t.Fatal("the kernel took 8 MiB at once: the test needs a pending buffer")
				}
				if abort {
					tr.Abort()
				} else {
					tr.Close()
				}
				read := make(chan int, 1)
				go func() {
					n, _ := io.Copy(io.Discard, peer)
					read <- int(n)
				}()
				if _, err := rp.lost.Await(ctx); err != nil {
					return err
				}
				n := awaitChan(ctx, read)
				if !abort && n != len(msg) {
					t.Errorf("peer read %d bytes after Close; want all %d", n, len(msg))
				}
				if abort && n >= len(msg) {
					t.Errorf("peer read all %d bytes after Abort", n)
				}
				if _, err := tr.Write([]byte("x")); !errors.Is(err, loop.ErrTransportClosed) {
					t.Errorf("Write after the connection was lost = %v", err)
				}
				return nil
			})
		})
	}
}

// Mirrors test_server.py: test_serve_forever's close path: Close from
// another task ends ServeForever, which returns nil once the server's last
// connection is gone (asyncio raises CancelledError there).
func TestServerServeForeverEndedByClose(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		l := loopOf(ctx)
		var protos []*recordProto
		srv, err := l.CreateServer(ctx, func() loop.BaseProtocol {
			p := newRecordProto(l)
			protos = append(protos, p)
			return p
		}, "127.0.0.1:0", nil)
		if err != nil {
			return err
		}
		c, err := net.Dial("tcp", srv.Addrs()[0].String())
		if err != nil {
			return err
		}
		defer c.Close()
		forever := loop.Go(ctx, srv.ServeForever)
		for len(protos) == 0 {
			loop.Sleep(ctx, time.Millisecond)
		}
		srv.Close()
		for range 5 {
			loop.Sleep(ctx, time.Millisecond)
		}
		if forever.Done() {
			t.Fatal("ServeForever returned while a connection was open")
		}
		srv.CloseClients()
		if _, err := forever.Await(ctx); err != nil {
			t.Errorf("ServeForever ended by Close = %v; want nil", err)
		}
		return nil
	})
}

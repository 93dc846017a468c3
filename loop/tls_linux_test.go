package loop_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/loop"
	"go.uber.org/goleak"
)

// collectReports makes the loop's exception handler record what it is told.
func collectReports(l *loop.Loop) *[]string {
	var reports []string
	l.SetExceptionHandler(func(_ *loop.Loop, c loop.ExceptionContext) {
		msg := c.Message
		if c.Err != nil {
			msg += ": " + c.Err.Error()
		}
		reports = append(reports, msg)
	})
	return &reports
}

// Mirrors test_ssl.py: test_create_server_ssl_1 and
// test_create_connection_ssl_1: a TLS echo server from CreateServer and a
// TLS client from CreateConnection, the client verifying the server through
// a root pool and ServerName. CreateConnection returns after the handshake
// and ConnectionMade; get_extra_info answers the TLS names; WriteEOF is
// unsupported, as on asyncio's SSL transport; Close ends both sides with
// ConnectionLost(nil).
func TestTLSEchoServerClient(t *testing.T) {
	pki, _ := testCerts(t)
	runNet(t, func(ctx context.Context) error {
		l := loopOf(ctx)
		reports := collectReports(l)
		var sprotos []*recordProto
		srv, err := l.CreateServer(ctx, func() loop.BaseProtocol {
			p := newRecordProto(l)
			sprotos = append(sprotos, p)
			return &tlsEchoRecord{p}
		}, "127.0.0.1:0", &loop.ServerOptions{TLS: pki.server})
		if err != nil {
			return err
		}
		defer srv.Close()
		cp := newRecordProto(l)
		tr, _, err := l.CreateConnection(ctx, func() loop.BaseProtocol { return cp }, srv.Addrs()[0].String(), &loop.ConnOptions{TLS: pki.client()})
		if err != nil {
			return err
		}
		if !cp.made.Done() {
			t.Error("CreateConnection returned before ConnectionMade")
		}
		if tc, ok := tr.GetExtraInfo("ssl_object").(*tls.Conn); !ok || !tc.ConnectionState().HandshakeComplete {
			t.Errorf("ssl_object %v: want a *tls.Conn done with its handshake", tr.GetExtraInfo("ssl_object"))
		}
		if cert, _ := tr.GetExtraInfo("peercert").(*x509.Certificate); cert == nil || !cert.Equal(pki.leaf) {
			t.Errorf("peercert %v; want the server's certificate", tr.GetExtraInfo("peercert"))
		}
		if name, _ := tr.GetExtraInfo("cipher").(string); !strings.HasPrefix(name, "TLS_") {
			t.Errorf("cipher %q", name)
		}
		if cfg, _ := tr.GetExtraInfo("sslcontext").(*tls.Config); cfg == nil || cfg.ServerName != "localhost" {
			t.Errorf("sslcontext %v", tr.GetExtraInfo("sslcontext"))
		}
		if tr.GetExtraInfo("socket") != nil {
			t.Error("a TLS transport has no *Socket: want socket nil")
		}
		if tr.LocalAddr() == nil || tr.RemoteAddr().String() != srv.Addrs()[0].String() {
			t.Errorf("addresses %v -> %v", tr.LocalAddr(), tr.RemoteAddr())
		}
		if tr.CanWriteEOF() || !errors.Is(tr.WriteEOF(), loop.ErrWriteEOFUnsupported) {
			t.Error("WriteEOF on TLS: want ErrWriteEOFUnsupported and CanWriteEOF false")
		}
		for _, m := range []string{"one ", "two ", "three"} {
			tr.Write([]byte(m))
		}
		tlsWaitUntil(ctx, t, "the echo", func() bool { return cp.data.Len() == len("one two three") })
		if cp.data.String() != "one two three" {
			t.Errorf("echo %q", cp.data.String())
		}
		if len(sprotos) != 1 || !sprotos[0].made.Done() {
			t.Fatal("the server's protocol did not see the connection")
		}
		tr.Close()
		if lerr, err := cp.lost.Await(ctx); err != nil || lerr != nil {
			t.Errorf("client ConnectionLost(%v), %v", lerr, err)
		}
		if _, err := sprotos[0].lost.Await(ctx); err != nil {
			return err
		}
		checkTrace(t, []string{"made", "data", "lost"}, cp.events)
		checkTrace(t, []string{"made", "data", "eof", "lost"}, sprotos[0].events)
		if len(*reports) != 0 {
			t.Errorf("reports %q", *reports)
		}
		return nil
	})
}

// tlsEchoRecord is a recordProto that echoes what it receives.
type tlsEchoRecord struct{ *recordProto }

func (e *tlsEchoRecord) DataReceived(p []byte) {
	e.recordProto.DataReceived(p)
	e.t.Write(p)
}

// Mirrors test_ssl.py: test_create_connection_ssl_failed_certificate and
// test_events.py: test_create_server_ssl_verify_failed and
// test_create_server_ssl_match_failed: a client whose root pool does not
// hold the server's CA fails CreateConnection with the x509 error, one
// that expects another name fails with the hostname error; their
// protocols see nothing, nothing is reported, and the server serves the
// next (good) client.
func TestTLSClientWrongRoot(t *testing.T) {
	pki, other := testCerts(t)
	runNet(t, func(ctx context.Context) error {
		l := loopOf(ctx)
		reports := collectReports(l)
		var sprotos []*recordProto
		srv, err := l.CreateServer(ctx, func() loop.BaseProtocol {
			p := newRecordProto(l)
			sprotos = append(sprotos, p)
			return &tlsEchoRecord{p}
		}, "127.0.0.1:0", &loop.ServerOptions{TLS: pki.server})
		if err != nil {
			return err
		}
		defer srv.Close()
		addr := srv.Addrs()[0].String()
		bad := newRecordProto(l)
		_, _, err = l.CreateConnection(ctx, func() loop.BaseProtocol { return bad }, addr, &loop.ConnOptions{TLS: other.client()})
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) {
			t.Fatalf("CreateConnection with the wrong root = %v; want an x509.UnknownAuthorityError", err)
		}
		if len(bad.events) != 0 {
			t.Errorf("the failed client's protocol saw %v", bad.events)
		}
		// test_create_server_ssl_match_failed: the right root, the wrong name.
		wrongName := pki.client()
		wrongName.ServerName = "example.com"
		_, _, err = l.CreateConnection(ctx, func() loop.BaseProtocol { return newRecordProto(l) }, addr, &loop.ConnOptions{TLS: wrongName})
		var hostErr x509.HostnameError
		if !errors.As(err, &hostErr) {
			t.Errorf("CreateConnection to the wrong name = %v; want an x509.HostnameError", err)
		}
		good := newRecordProto(l)
		tr, _, err := l.CreateConnection(ctx, func() loop.BaseProtocol { return good }, addr, &loop.ConnOptions{TLS: pki.client()})
		if err != nil {
			return err
		}
		tr.Write([]byte("ping"))
		tlsWaitUntil(ctx, t, "the echo", func() bool { return good.data.Len() == 4 })
		tr.Close()
		good.lost.Await(ctx)
		tlsWaitUntil(ctx, t, "the good server connection to end", func() bool {
			return len(sprotos) == 3 && sprotos[2].lost.Done()
		})
		for _, sp := range sprotos[:2] {
			if len(sp.events) != 0 {
				t.Errorf("the server's protocol for a failed handshake saw %v", sp.events)
			}
		}
		if len(*reports) != 0 {
			t.Errorf("a failed handshake was reported: %q", *reports)
		}
		return nil
	})
}

// Bad input (issue 9): a client that speaks plain text to a TLS server.
// The server closes that connection without calling its protocol or the
// exception handler, and goes on serving a TLS client; no descriptor is
// left open (runNet counts them).
func TestTLSPlainTextClient(t *testing.T) {
	pki, _ := testCerts(t)
	runNet(t, func(ctx context.Context) error {
		l := loopOf(ctx)
		reports := collectReports(l)
		var sprotos []*recordProto
		srv, err := l.CreateServer(ctx, func() loop.BaseProtocol {
			p := newRecordProto(l)
			sprotos = append(sprotos, p)
			return &tlsEchoRecord{p}
		}, "127.0.0.1:0", &loop.ServerOptions{TLS: pki.server})
		if err != nil {
			return err
		}
		defer srv.Close()
		addr := srv.Addrs()[0].String()
		done := make(chan error, 1)
		go func() {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				done <- err
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(20 * time.Second)) // only a hung test's bound
			c.Write([]byte("GET / HTTP/1.0\r\nHost: localhost\r\n\r\n"))
			_, err = io.ReadAll(c) // returns when the server closes
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				done <- err
				return
			}
			done <- nil
		}()
		if err := recvOnLoop(ctx, done); err != nil {
			t.Fatalf("the plain-text client: %v (the server did not close it)", err)
		}
		good := newRecordProto(l)
		tr, _, err := l.CreateConnection(ctx, func() loop.BaseProtocol { return good }, addr, &loop.ConnOptions{TLS: pki.client()})
		if err != nil {
			return err
		}
		tr.Write([]byte("still serving"))
		tlsWaitUntil(ctx, t, "the echo", func() bool { return good.data.Len() == len("still serving") })
		tr.Close()
		good.lost.Await(ctx)
		tlsWaitUntil(ctx, t, "the server side to end", func() bool { return len(sprotos) == 2 && sprotos[1].lost.Done() })
		if len(sprotos[0].events) != 0 {
			t.Errorf("the plain-text client's server protocol saw %v", sprotos[0].events)
		}
		if len(*reports) != 0 {
			t.Errorf("reports %q", *reports)
		}
		return nil
	})
}

// Mirrors test_sslproto.py: test_handshake_timeout and test_ssl.py:
// test_ssl_handshake_timeout. A raw TCP client that never speaks is closed
// by the server once its TLSHandshakeTimeout passes (the client's read
// ends with EOF: an event, not a guess at timing), unreported; and a TLS
// client whose server never answers fails CreateConnection with
// ErrTLSHandshakeTimeout.
func TestTLSHandshakeTimeout(t *testing.T) {
	pki, _ := testCerts(t)
	runNet(t, func(ctx context.Context) error {
		l := loopOf(ctx)
		reports := collectReports(l)
		made := 0
		srv, err := l.CreateServer(ctx, func() loop.BaseProtocol {
			return &countMade{n: &made}
		}, "127.0.0.1:0", &loop.ServerOptions{TLS: pki.server, TLSHandshakeTimeout: 50 * time.Millisecond})
		if err != nil {
			return err
		}
		defer srv.Close()
		done := make(chan error, 1)
		go func() {
			c, err := net.Dial("tcp", srv.Addrs()[0].String())
			if err != nil {
				done <- err
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(20 * time.Second))
			_, err = io.ReadAll(c)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				done <- err
				return
			}
			done <- nil
		}()
		if err := recvOnLoop(ctx, done); err != nil {
			t.Fatalf("the silent client was not closed: %v", err)
		}
		if made != 0 {
			t.Error("ConnectionMade without a handshake")
		}

		// The client side: a listener that accepts and never answers.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer ln.Close()
		held := make(chan net.Conn, 1)
		go func() {
			c, err := ln.Accept()
			if err == nil {
				held <- c
			}
			close(held)
		}()
		cp := newRecordProto(l)
		_, _, err = l.CreateConnection(ctx, func() loop.BaseProtocol { return cp }, ln.Addr().String(),
			&loop.ConnOptions{TLS: pki.client(), TLSHandshakeTimeout: 50 * time.Millisecond})
		if !errors.Is(err, loop.ErrTLSHandshakeTimeout) {
			t.Errorf("CreateConnection to a silent server = %v; want ErrTLSHandshakeTimeout", err)
		}
		if c := recvOnLoop(ctx, held); c != nil {
			c.Close()
		}
		if len(cp.events) != 0 {
			t.Errorf("the client's protocol saw %v", cp.events)
		}
		if len(*reports) != 0 {
			t.Errorf("reports %q", *reports)
		}
		return nil
	})
}

type countMade struct {
	loop.NopProtocol
	n *int
}

func (c *countMade) ConnectionMade(loop.Transport) { *c.n++ }

// Mirrors test_ssl.py: test_ssl_handshake_timeout's second half (Python
// issue #23197): a caller that gives up during the handshake (a derived
// ctx's deadline) gets its ctx's error; nothing is reported and nothing
// leaks.
func TestTLSHandshakeCallerGivesUp(t *testing.T) {
	pki, _ := testCerts(t)
	runNet(t, func(ctx context.Context) error {
		l := loopOf(ctx)
		reports := collectReports(l)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer ln.Close()
		held := make(chan net.Conn, 1)
		go func() {
			c, err := ln.Accept()
			if err == nil {
				held <- c
			}
			close(held)
		}()
		short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		cp := newRecordProto(l)
		_, _, err = l.CreateConnection(short, func() loop.BaseProtocol { return cp }, ln.Addr().String(), &loop.ConnOptions{TLS: pki.client()})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("CreateConnection = %v; want the ctx's deadline", err)
		}
		if c := recvOnLoop(ctx, held); c != nil {
			c.SetDeadline(time.Now().Add(20 * time.Second))
			io.ReadAll(c) // the client's side was aborted: EOF or a reset
			c.Close()
		}
		for range 5 {
			loop.Sleep(ctx, time.Millisecond)
		}
		if len(cp.events) != 0 || len(*reports) != 0 {
			t.Errorf("events %v, reports %q", cp.events, *reports)
		}
		return nil
	})
}

// startTLSServer is a line protocol on a plain connection: after "STARTTLS
// <n>\n" it reads exactly n more plain bytes (a BufferedProtocol with a
// buffer no longer than what is left, so that no byte of the handshake is
// read as plain text), then upgrades with StartTLS as the server and echoes
// over TLS.
type startTLSServer struct {
	l       *loop.Loop
	cfg     *tls.Config
	t       loop.Transport
	buf     []byte
	have    int
	plain   int // plain bytes still to read after the command
	cmdDone bool
	events  []string
	tls     loop.Transport
	tlsErr  error
	echoed  bytes.Buffer
	lost    *loop.Future[error]
}

func (s *startTLSServer) ConnectionMade(t loop.Transport) {
	s.t = t
	s.events = append(s.events, "made")
}
func (s *startTLSServer) GetBuffer(int) []byte {
	if s.buf == nil {
		s.buf = make([]byte, 64<<10)
	}
	if !s.cmdDone {
		return s.buf[s.have : s.have+1] // one byte at a time until the newline
	}
	n := min(s.plain, len(s.buf))
	return s.buf[:n]
}
func (s *startTLSServer) BufferUpdated(n int) {
	if !s.cmdDone {
		s.have += n
		if s.buf[s.have-1] != '\n' {
			return
		}
		var size int
		if _, err := fmt.Sscanf(string(s.buf[:s.have]), "STARTTLS %d\n", &size); err != nil {
			s.t.Abort()
			return
		}
		s.cmdDone, s.plain = true, size
	} else {
		s.plain -= n
	}
	if s.plain > 0 {
		return
	}
	s.t.PauseReading()
	old := s.t
	loop.CreateTask(s.l, func(ctx context.Context) (struct{}, error) {
		nt, err := s.l.StartTLS(ctx, old, startTLSEcho{s}, s.cfg, true, 0)
		s.tls, s.tlsErr = nt, err
		if err == nil && s.echoed.Len() > 0 {
			nt.Write(s.echoed.Bytes()) // what arrived before StartTLS returned
		}
		return struct{}{}, nil
	})
}
func (s *startTLSServer) DataReceived(p []byte) { // over TLS
	s.echoed.Write(p)
	if s.tls != nil {
		s.tls.Write(p)
	}
}
func (s *startTLSServer) EOFReceived() bool { s.events = append(s.events, "eof"); return false }
func (s *startTLSServer) ConnectionLost(err error) {
	s.events = append(s.events, "lost")
	s.lost.SetResult(err)
}

// startTLSEcho is the server's protocol once upgraded: a Protocol (the
// plain side was a BufferedProtocol), passed to StartTLS as p.
type startTLSEcho struct{ s *startTLSServer }

func (e startTLSEcho) ConnectionMade(loop.Transport) {}
func (e startTLSEcho) DataReceived(p []byte)         { e.s.DataReceived(p) }
func (e startTLSEcho) EOFReceived() bool             { return e.s.EOFReceived() }
func (e startTLSEcho) ConnectionLost(err error)      { e.s.ConnectionLost(err) }

// Mirrors test_ssl.py: test_start_tls_client_reg_proto_1 and
// test_start_tls_server_1: a plain connection upgraded in place on both
// sides. The client writes 4 MiB of plain text and calls StartTLS at once,
// so bytes its socket transport had not yet sent go first, in plain; the
// server reads exactly those bytes, then StartTLS as the server. Over TLS
// the server echoes. The old transports end quietly (closing, writes
// refused, no ConnectionLost); each protocol hears ConnectionLost once,
// from its TLS transport.
func TestTLSStartTLS(t *testing.T) {
	pki, _ := testCerts(t)
	runNet(t, func(ctx context.Context) error {
		l := loopOf(ctx)
		reports := collectReports(l)
		var ss *startTLSServer
		srv, err := l.CreateServer(ctx, func() loop.BaseProtocol {
			ss = &startTLSServer{l: l, cfg: pki.server, lost: loop.NewFuture[error](l)}
			return ss
		}, "127.0.0.1:0", nil)
		if err != nil {
			return err
		}
		defer srv.Close()
		cp := newRecordProto(l)
		old, _, err := l.CreateConnection(ctx, func() loop.BaseProtocol { return cp }, srv.Addrs()[0].String(), nil)
		if err != nil {
			return err
		}
		if _, err := l.StartTLS(ctx, old, cp, nil, false, 0); !errors.Is(err, loop.ErrNoTLSConfig) {
			t.Errorf("StartTLS(nil config) = %v", err)
		}
		plain := bytes.Repeat([]byte("p"), 4<<20)
		old.Write([]byte("STARTTLS 4194304\n"))
		old.Write(plain)
		t.Logf("plain bytes still buffered at StartTLS: %d", old.WriteBufferSize())
		nt, err := l.StartTLS(ctx, old, cp, pki.client(), false, 0)
		if err != nil {
			return err
		}
		if !old.IsClosing() {
			t.Error("the old transport is not closing after StartTLS")
		}
		if _, err := old.Write([]byte("x")); !errors.Is(err, loop.ErrTransportClosed) {
			t.Errorf("Write on the old transport = %v; want ErrTransportClosed", err)
		}
		if _, err := l.StartTLS(ctx, nt, cp, pki.client(), false, 0); !errors.Is(err, loop.ErrStartTLSUnsupported) {
			t.Errorf("StartTLS on a TLS transport = %v; want ErrStartTLSUnsupported", err)
		}
		if cert, _ := nt.GetExtraInfo("peercert").(*x509.Certificate); cert == nil || !cert.Equal(pki.leaf) {
			t.Error("no peercert on the upgraded client")
		}
		tlsWaitUntil(ctx, t, "the server's StartTLS", func() bool { return ss != nil && (ss.tls != nil || ss.tlsErr != nil) })
		if ss.tlsErr != nil {
			t.Fatalf("server StartTLS: %v", ss.tlsErr)
		}
		nt.Write([]byte("over tls"))
		tlsWaitUntil(ctx, t, "the echo", func() bool { return cp.data.Len() == len("over tls") })
		if cp.data.String() != "over tls" || ss.echoed.String() != "over tls" {
			t.Errorf("client got %q, server got %q", cp.data.String(), ss.echoed.String())
		}
		nt.Close()
		if lerr, err := cp.lost.Await(ctx); err != nil || lerr != nil {
			t.Errorf("client ConnectionLost(%v), %v", lerr, err)
		}
		if _, err := ss.lost.Await(ctx); err != nil {
			return err
		}
		for range 5 {
			loop.Sleep(ctx, time.Millisecond)
		}
		checkTrace(t, []string{"made", "data", "lost"}, cp.events)
		checkTrace(t, []string{"made", "eof", "lost"}, ss.events)
		if len(*reports) != 0 {
			t.Errorf("reports %q", *reports)
		}
		return nil
	})
}

// Mirrors test_ssl.py: test_start_tls_client_corrupted_ssl in spirit: a
// StartTLS whose peer answers garbage fails with the TLS error, and the
// protocol, which had the connection, hears ConnectionLost(err) once.
func TestTLSStartTLSHandshakeFails(t *testing.T) {
	pki, _ := testCerts(t)
	runNet(t, func(ctx context.Context) error {
		l := loopOf(ctx)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer ln.Close()
		go func() {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(20 * time.Second))
			c.Read(make([]byte, 4096)) // the ClientHello
			c.Write([]byte("this is not TLS\r\n"))
			io.Copy(io.Discard, c)
		}()
		cp := newRecordProto(l)
		old, _, err := l.CreateConnection(ctx, func() loop.BaseProtocol { return cp }, ln.Addr().String(), nil)
		if err != nil {
			return err
		}
		_, err = l.StartTLS(ctx, old, cp, pki.client(), false, 0)
		if err == nil {
			t.Fatal("StartTLS against garbage succeeded")
		}
		lerr, aerr := cp.lost.Await(ctx)
		if aerr != nil {
			return aerr
		}
		if lerr == nil {
			t.Error("ConnectionLost(nil) after a failed handshake; want its error")
		}
		for range 5 {
			loop.Sleep(ctx, time.Millisecond)
		}
		checkTrace(t, []string{"made", "lost"}, cp.events)
		return nil
	})
}

// Loop.Close with an open TLS transport (and a TLS server's side of it):
// they are reported as unclosed, every descriptor is closed and no
// goroutine is left.
func TestTLSLoopCloseOpenTransport(t *testing.T) {
	pki, _ := testCerts(t)
	ignore := goleak.IgnoreCurrent()
	before := openFDs(t)
	l := loop.New()
	reports := collectReports(l)
	task := loop.CreateTask(l, func(ctx context.Context) (loop.Transport, error) {
		srv, err := l.CreateServer(ctx, func() loop.BaseProtocol { return &echoProto{} }, "127.0.0.1:0", &loop.ServerOptions{TLS: pki.server})
		if err != nil {
			return nil, err
		}
		tr, _, err := l.CreateConnection(ctx, func() loop.BaseProtocol { return &echoProto{} }, srv.Addrs()[0].String(), &loop.ConnOptions{TLS: pki.client()})
		if err != nil {
			return nil, err
		}
		tr.Write(bytes.Repeat([]byte("e"), 1<<20)) // echoed back and forth while the loop closes
		for len(srv.Sockets()) > 0 && loop.Sleep(ctx, 5*time.Millisecond) == nil {
			if tr.WriteBufferSize() < 1<<20 {
				break
			}
		}
		return tr, nil
	})
	if err := l.RunUntilComplete(task); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if after := openFDs(t); after != before {
		t.Errorf("descriptors: %d before, %d after Close", before, after)
	}
	if n := strings.Count(strings.Join(*reports, "\n"), "unclosed transport <tls transport"); n != 2 {
		t.Errorf("reports %q; want the two TLS transports unclosed", *reports)
	}
	goleak.VerifyNone(t, ignore)
}

// 2 MiB echoed over TLS: the bytes come back intact and in order, and the
// client's write buffer, drained by PauseWriting/ResumeWriting, never holds
// much more than the high mark. Mirrors test_ssl.py:
// test_create_server_ssl_1 (which sends 128 KiB), at 2 MiB.
func TestTLSEcho2MiB(t *testing.T) {
	pki, _ := testCerts(t)
	runNet(t, func(ctx context.Context) error {
		l := loopOf(ctx)
		var sp *recordProto
		srv, err := l.CreateServer(ctx, func() loop.BaseProtocol {
			sp = newRecordProto(l)
			return &tlsEchoRecord{sp}
		}, "127.0.0.1:0", &loop.ServerOptions{TLS: pki.server})
		if err != nil {
			return err
		}
		defer srv.Close()
		cp := newRecordProto(l)
		fc := &flowRecord{recordProto: cp}
		tr, _, err := l.CreateConnection(ctx, func() loop.BaseProtocol { return fc }, srv.Addrs()[0].String(), &loop.ConnOptions{TLS: pki.client()})
		if err != nil {
			return err
		}
		msg := make([]byte, 2<<20)
		for i := range msg {
			msg[i] = byte(i * 7 / 5)
		}
		maxBuf := 0
		for off := 0; off < len(msg); {
			if fc.paused {
				tlsWaitUntil(ctx, t, "ResumeWriting", func() bool { return !fc.paused })
				continue
			}
			n := min(32<<10, len(msg)-off)
			tr.Write(msg[off : off+n])
			off += n
			maxBuf = max(maxBuf, tr.WriteBufferSize())
		}
		tlsWaitUntil(ctx, t, "the 2 MiB echo", func() bool { return cp.data.Len() >= len(msg) })
		if !bytes.Equal(cp.data.Bytes(), msg) {
			t.Error("the echo differs from what was sent")
		}
		_, high := tr.WriteBufferLimits()
		if maxBuf > high+32<<10 {
			t.Errorf("write buffer reached %d bytes; the high mark is %d", maxBuf, high)
		}
		tr.Close()
		if _, err := cp.lost.Await(ctx); err != nil {
			return err
		}
		_, err = sp.lost.Await(ctx)
		return err
	})
}

// flowRecord is a recordProto that follows write flow control.
type flowRecord struct {
	*recordProto
	paused bool
}

func (f *flowRecord) PauseWriting()  { f.paused = true }
func (f *flowRecord) ResumeWriting() { f.paused = false }

// Mirrors test_ssl.py: test_ssl_connect_accepted_socket: a connection
// accepted with SockAccept becomes a TLS server transport through
// ConnectAcceptedSocket with ServerOptions.TLS; the client is crypto/tls.
func TestTLSConnectAcceptedSocket(t *testing.T) {
	pki, _ := testCerts(t)
	runNet(t, func(ctx context.Context) error {
		l := loopOf(ctx)
		ln, err := loop.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer ln.Close()
		reply := make(chan string, 1)
		go func() {
			c, err := tls.Dial("tcp", ln.LocalAddr().String(), pki.client())
			if err != nil {
				reply <- "dial: " + err.Error()
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(20 * time.Second))
			c.Write([]byte("accepted"))
			buf := make([]byte, 8)
			_, err = io.ReadFull(c, buf)
			if err != nil {
				reply <- "read: " + err.Error()
				return
			}
			reply <- string(buf)
		}()
		conn, _, err := l.SockAccept(ctx, ln)
		if err != nil {
			return err
		}
		sp := newRecordProto(l)
		tr, _, err := l.ConnectAcceptedSocket(ctx, func() loop.BaseProtocol { return &tlsEchoRecord{sp} }, conn, &loop.ServerOptions{TLS: pki.server})
		if err != nil {
			return err
		}
		if tr.GetExtraInfo("peercert") != nil {
			t.Error("peercert of a client without a certificate: want nil")
		}
		if got := recvOnLoop(ctx, reply); got != "accepted" {
			t.Errorf("client got %q", got)
		}
		if _, err := sp.lost.Await(ctx); err != nil {
			return err
		}
		checkTrace(t, []string{"made", "data", "eof", "lost"}, sp.events)
		return nil
	})
}

// Mirrors test_events.py: test_create_unix_server_ssl and
// test_create_ssl_unix_connection: CreateUnixServer and
// CreateUnixConnection take the same TLS options as their TCP twins.
func TestTLSUnixSocket(t *testing.T) {
	pki, _ := testCerts(t)
	runNet(t, func(ctx context.Context) error {
		l := loopOf(ctx)
		path := t.TempDir() + "/tls.sock"
		var sp *recordProto
		srv, err := l.CreateUnixServer(ctx, func() loop.BaseProtocol {
			sp = newRecordProto(l)
			return &tlsEchoRecord{sp}
		}, path, &loop.ServerOptions{TLS: pki.server})
		if err != nil {
			return err
		}
		defer srv.Close()
		cp := newRecordProto(l)
		tr, _, err := l.CreateUnixConnection(ctx, func() loop.BaseProtocol { return cp }, path, &loop.ConnOptions{TLS: pki.client()})
		if err != nil {
			return err
		}
		tr.Write([]byte("unix"))
		tlsWaitUntil(ctx, t, "the echo", func() bool { return cp.data.Len() == 4 })
		tr.Close()
		if _, err := cp.lost.Await(ctx); err != nil {
			return err
		}
		_, err = sp.lost.Await(ctx)
		return err
	})
}

// bufProto is a BufferedProtocol with a small buffer that pauses reading
// every so often, so that chunks are delivered in parts across pauses.
type bufProto struct {
	t       loop.Transport
	buf     [777]byte
	got     bytes.Buffer
	updates int
	lost    *loop.Future[error]
}

func (b *bufProto) ConnectionMade(t loop.Transport) { b.t = t }
func (b *bufProto) GetBuffer(int) []byte            { return b.buf[:] }
func (b *bufProto) BufferUpdated(n int) {
	b.got.Write(b.buf[:n])
	b.updates++
	if b.updates%10 == 0 {
		b.t.PauseReading()
	}
}
func (b *bufProto) EOFReceived() bool        { return false }
func (b *bufProto) ConnectionLost(err error) { b.lost.SetResult(err) }

// Mirrors test_ssl.py: test_start_tls_client_buf_proto_1 and
// test_buffered_proto.py: test_buffered_proto_create_connection: a
// BufferedProtocol over TLS gets every byte, in order, through a buffer
// smaller than a record, while it pauses and resumes reading in the middle
// of chunks.
func TestTLSBufferedProtocol(t *testing.T) {
	pki, _ := testCerts(t)
	runNet(t, func(ctx context.Context) error {
		l := loopOf(ctx)
		var sp *recordProto
		srv, err := l.CreateServer(ctx, func() loop.BaseProtocol {
			sp = newRecordProto(l)
			return &tlsEchoRecord{sp}
		}, "127.0.0.1:0", &loop.ServerOptions{TLS: pki.server})
		if err != nil {
			return err
		}
		defer srv.Close()
		bp := &bufProto{lost: loop.NewFuture[error](l)}
		tr, _, err := l.CreateConnection(ctx, func() loop.BaseProtocol { return bp }, srv.Addrs()[0].String(), &loop.ConnOptions{TLS: pki.client()})
		if err != nil {
			return err
		}
		msg := make([]byte, 300<<10)
		for i := range msg {
			msg[i] = byte(i % 251)
		}
		tr.Write(msg)
		tlsWaitUntil(ctx, t, "the echo", func() bool {
			if !tr.IsReading() {
				tr.ResumeReading()
			}
			return bp.got.Len() >= len(msg)
		})
		if !bytes.Equal(bp.got.Bytes(), msg) {
			t.Error("the echo differs")
		}
		tr.Close()
		if _, err := bp.lost.Await(ctx); err != nil {
			return err
		}
		_, err = sp.lost.Await(ctx)
		return err
	})
}

// On the virtual clock a TLS handshake counts as work running elsewhere:
// time stands still until it ends, so a virtual timeout around
// CreateConnection does not fire while the goroutines shake hands (a
// socket transport's connect is I/O the loop itself waits for).
func TestTLSVirtualClockHandshake(t *testing.T) {
	pki, _ := testCerts(t)
	ignore := goleak.IgnoreCurrent()
	err := loop.RunMain(context.Background(), func(ctx context.Context) error {
		l := loopOf(ctx)
		var sp *recordProto
		srv, err := l.CreateServer(ctx, func() loop.BaseProtocol {
			sp = newRecordProto(l)
			return &tlsEchoRecord{sp}
		}, "127.0.0.1:0", &loop.ServerOptions{TLS: pki.server})
		if err != nil {
			return err
		}
		defer srv.Close()
		cp := newRecordProto(l)
		var tr loop.Transport
		err = loop.WithTimeout(ctx, 10*time.Millisecond, func(ctx context.Context) error {
			var err error
			tr, _, err = l.CreateConnection(ctx, func() loop.BaseProtocol { return cp }, srv.Addrs()[0].String(), &loop.ConnOptions{TLS: pki.client()})
			return err
		})
		if err != nil {
			return err
		}
		tr.Close()
		if _, err := cp.lost.Await(ctx); err != nil {
			return err
		}
		_, err = sp.lost.Await(ctx)
		return err
	}, loop.WithVirtualClock())
	if err != nil {
		t.Fatal(err)
	}
	goleak.VerifyNone(t, ignore)
}

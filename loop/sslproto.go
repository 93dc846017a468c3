package loop

// CPython's sslproto.py: TLS over a connection, and loop.start_tls.
//
// # Design
//
// Python's SSLProtocol drives OpenSSL over two memory BIOs: the socket
// transport reads ciphertext on the loop, feeds it to the incoming BIO,
// and the loop decrypts. Go's crypto/tls has no such interface: a
// *tls.Conn reads and writes a net.Conn, blocking. So TLS here is a
// transport over a net.Conn (connTransport, conn_transport.go), served by
// two goroutines per connection:
//
//   - The reader runs the handshake first (HandshakeContext, bounded by
//     ssl_handshake_timeout, default 60 s), then reads plaintext into a
//     buffer of its own (16 KiB, one TLS record; a second one so that it
//     decrypts the next record while the loop hands out the last) and posts
//     each chunk to the loop with CallSoonThreadsafe. The protocol's
//     callbacks all run on the loop. A paused transport's reader does not
//     read; what it had read waits on the loop for ResumeReading.
//   - The writer sends what Write queued. WriteBufferSize is counted on the
//     loop (added by Write, subtracted when the writer posts what it sent),
//     so the water marks and PauseWriting/ResumeWriting behave as on a
//     socket transport.
//
// The *tls.Conn sits on a net.Conn made from the *Socket's descriptor: the
// Socket is detached, the descriptor wrapped with os.NewFile and
// net.FileConn (which duplicates it into Go's netpoller), and the os.File
// closed, so one descriptor stays open and the Socket is closed. The loop's
// own poller never sees a TLS connection.
//
// This costs a goroutine hand-off per read and two goroutine stacks per
// connection, which a socket transport does not pay; TLS's own cost
// (decryption, records) dwarfs the hand-off, and it is the only way to use
// Go's TLS stack, which the project prefers to binding OpenSSL.
//
// Lifecycle, as asyncio's: ConnectionMade runs only after the handshake
// succeeded, then the waiter of CreateConnection is resolved. A failed
// handshake (a plain-text client, a certificate that does not verify, the
// timeout) closes the connection; it is not reported to the exception
// handler (asyncio's ssl.SSLError and ConnectionAbortedError are OSErrors,
// logged only in debug mode, as here), the server goes on serving, and the
// client's CreateConnection returns the error (ErrTLSHandshakeTimeout for
// the timeout). Close during the handshake aborts. Close after it stops
// reading, sends what is queued, then a close_notify (tls.Conn.Close), and
// closes; ErrTLSShutdownTimeout aborts a close that takes longer than
// ssl_shutdown_timeout (30 s; Go's close_notify gives up after 5 s on its
// own). The transport does not wait for the peer's close_notify. An EOF
// from the peer closes the transport whatever EOFReceived answers (asyncio
// warns that true has no effect), and WriteEOF is ErrWriteEOFUnsupported.
// ConnectionLost runs exactly once, after both goroutines have left. At
// Loop.Close an open TLS transport is reported and force-closed: its
// connection is closed and its goroutines are waited for.
//
// StartTLS takes a socket transport's descriptor out of the loop's poller
// without closing it (socketTransport.detachSocket): the old transport ends
// quietly (no ConnectionLost, its fd not closed), and the bytes it had not
// yet sent go out in plain text before the handshake starts, which is what
// asyncio's wait for an empty write buffer achieves. The new transport's
// protocol already has the connection: it gets no ConnectionMade, and
// ConnectionLost exactly once when the TLS transport ends, even if the
// handshake fails.

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Errors of TLS transports.
var (
	// ErrTLSHandshakeTimeout is asyncio's ConnectionAbortedError "SSL
	// handshake is taking longer than N seconds: aborting the connection":
	// the handshake did not finish within the handshake timeout.
	ErrTLSHandshakeTimeout = errors.New("loop: SSL handshake is taking longer than the handshake timeout: aborting the connection")
	// ErrTLSShutdownTimeout is what ConnectionLost receives when a closing
	// TLS transport did not finish sending within the shutdown timeout
	// (asyncio's TimeoutError from _check_shutdown_timeout).
	ErrTLSShutdownTimeout = errors.New("loop: SSL shutdown timed out")
	// ErrStartTLSUnsupported is start_tls's "transport is not supported by
	// start_tls()": StartTLS takes a socket transport (CreateConnection,
	// CreateServer, ConnectAcceptedSocket and their Unix twins) that is not
	// closing.
	ErrStartTLSUnsupported = errors.New("loop: transport is not supported by start_tls()")
	// ErrNoTLSConfig is start_tls's "sslcontext is expected to be an
	// instance of ssl.SSLContext": a nil *tls.Config.
	ErrNoTLSConfig = errors.New("loop: sslcontext is expected to be a *tls.Config")
)

// newTLSTransport makes the TLS transport of a connected socket
// (makeTransport's TLS half): the socket becomes a net.Conn, wrapped in a
// *tls.Conn whose handshake starts at once.
func (l *Loop) newTLSTransport(sock *Socket, proto BaseProtocol, waiter *Future[struct{}], srv *Server, tp *tlsParams) (Transport, error) {
	if _, _, err := protocolKinds(proto); err != nil {
		return nil, err // before the socket is touched: the caller closes it
	}
	raw, err := socketNetConn(sock)
	if err != nil {
		return nil, err
	}
	t, err := l.newConnTransport(tlsConn(raw, tp.config, tp.server), proto, waiter, srv, connSetup{
		cfg: tp.config, handshake: true, hs: tp.handshakeTimeout, sh: tp.shutdownTimeout,
	})
	if err != nil {
		raw.Close()
		return nil, err
	}
	return t, nil
}

func tlsConn(raw net.Conn, cfg *tls.Config, server bool) *tls.Conn {
	tc := tls.Client(raw, cfg)
	if server {
		tc = tls.Server(raw, cfg)
	}
	return tc
}

// socketNetConn turns sock into a net.Conn over the same connection: the
// Socket is closed (detached), one descriptor stays open, the net.Conn's.
// On failure the descriptor is closed too.
func socketNetConn(sock *Socket) (net.Conn, error) {
	if sock == nil || sock.closed {
		return nil, ErrSocketClosed
	}
	if sock.sotype == unix.SOCK_STREAM && sock.family != unix.AF_UNIX {
		// No Nagle delay, as asyncio's _set_nodelay on TCP transports.
		_ = unix.SetsockoptInt(sock.fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	}
	fd, err := sock.Detach()
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "socket")
	c, err := net.FileConn(f) // a duplicate in Go's netpoller
	f.Close()
	if err != nil {
		return nil, err
	}
	return c, nil
}

// StartTLS is loop.start_tls: it upgrades the connection of t, a socket
// transport, to TLS in place and returns the new transport, over which p
// (usually t's protocol) goes on. cfg is the *tls.Config (asyncio's
// sslcontext); server says which side of the handshake to take
// (server_side); a client's cfg must name the server (ServerName, asyncio's
// server_hostname) or set InsecureSkipVerify. handshakeTimeout bounds the
// handshake (0: asyncio's 60 s).
//
// t stops reading at once and is taken out of the loop's poller with its
// descriptor open; bytes t had buffered and not yet sent go out first, in
// plain text, then the handshake runs. StartTLS returns once the handshake
// has succeeded. From then on t is closed and quiet: it calls no
// ConnectionLost, closes nothing, and refuses writes with
// ErrTransportClosed. p gets no ConnectionMade (it already has the
// connection); it gets ConnectionLost exactly once when the new transport
// ends, also when the handshake fails, in which case StartTLS returns that
// error. If ctx ends during the handshake the connection is aborted and
// ctx's error returned. A transport StartTLS cannot take (a TLS one, a
// net.Conn one, a closing one) returns ErrStartTLSUnsupported and is left
// as it was; one after WriteEOF returns ErrWriteAfterEOF.
func (l *Loop) StartTLS(ctx context.Context, t Transport, p BaseProtocol, cfg *tls.Config, server bool, handshakeTimeout time.Duration) (Transport, error) {
	if l.stopCB == nil {
		return nil, ErrZeroLoop
	}
	if runningTask(ctx) == nil {
		return nil, ErrNotInTask
	}
	if cfg == nil {
		return nil, ErrNoTLSConfig
	}
	if _, _, err := protocolKinds(p); err != nil {
		return nil, err
	}
	st, ok := t.(*socketTransport)
	if !ok || st == nil {
		return nil, fmt.Errorf("%w: %v", ErrStartTLSUnsupported, t)
	}
	if st.l != l {
		return nil, fmt.Errorf("%w: %v belongs to another loop", ErrStartTLSUnsupported, t)
	}
	high, low, wpaused := st.high, st.low, st.wpaused
	sock, pending, srv, err := st.detachSocket()
	if err != nil {
		return nil, err
	}
	if srv != nil {
		defer srv.detach(st) // after the new transport is attached
	}
	raw, err := socketNetConn(sock)
	if err != nil {
		// The old transport is gone and no new one came: p hears of the
		// end as the new one would have told it.
		l.CallSoon(func() { p.ConnectionLost(err) })
		return nil, err
	}
	waiter := NewFuture[struct{}](l)
	nt, err := l.newConnTransport(tlsConn(raw, cfg, server), p, waiter, srv, connSetup{
		cfg: cfg, handshake: true, hs: handshakeTimeout,
		prefix: pending, startTLS: true, high: high, low: low, wpaused: wpaused,
	})
	if err != nil {
		raw.Close()
		return nil, err
	}
	if _, err := waiter.Await(ctx); err != nil {
		nt.Close()
		return nil, err
	}
	return nt, nil
}

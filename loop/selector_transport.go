package loop

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// socketTransport is asyncio's _SelectorSocketTransport: a stream socket
// read and written by the loop's goroutine when the poller says it is
// ready. The write path tries the socket at once and buffers only what the
// kernel did not take; the read path reads into one buffer the loop shares
// among all its transports (Protocol.DataReceived's data lives only for the
// call), so an idle connection costs its structs and no buffer.
type socketTransport struct {
	l      *Loop
	sock   *Socket
	fd     int
	proto  BaseProtocol
	p      Protocol
	bp     BufferedProtocol
	server *Server
	flowControl

	wbuf      []byte // bytes not yet sent: wbuf[whead:]
	whead     int
	writerOn  bool
	rpaused   bool
	closing   bool
	eof       bool
	connLost  int
	connected bool // ConnectionMade ran
	addrs
	onRead  func()
	onWrite func()
}

// maxReadSize is asyncio's max_size for one recv of a transport: 256 KiB.
const maxReadSize = 256 << 10

// readBuffer returns the loop's shared read buffer.
func (l *Loop) readBuffer() []byte {
	if l.rbuf == nil {
		l.rbuf = make([]byte, maxReadSize)
	}
	return l.rbuf
}

// protocolKinds checks that p is a Protocol or a BufferedProtocol.
func protocolKinds(p BaseProtocol) (Protocol, BufferedProtocol, error) {
	if p == nil {
		return nil, nil, ErrBadProtocol
	}
	if bp, ok := p.(BufferedProtocol); ok {
		return nil, bp, nil
	}
	if sp, ok := p.(Protocol); ok {
		return sp, nil, nil
	}
	return nil, nil, fmt.Errorf("%w: %T", ErrBadProtocol, p)
}

// newSocketTransport makes a transport over sock for proto, which the
// loop tells of the connection in the next iteration; waiter, if not nil,
// is resolved after that, as asyncio's _SelectorSocketTransport.__init__.
func (l *Loop) newSocketTransport(sock *Socket, proto BaseProtocol, waiter *Future[struct{}], server *Server) (*socketTransport, error) {
	sp, bp, err := protocolKinds(proto)
	if err != nil {
		return nil, err
	}
	t := &socketTransport{l: l, sock: sock, fd: sock.fd, proto: proto, p: sp, bp: bp, server: server}
	t.flow, _ = proto.(WriteFlowControl)
	t.high, t.low, _ = setLimits(-1, -1)
	t.laddr, t.raddr = sock.LocalAddr(), sock.RemoteAddr()
	t.onRead = t.readReady
	t.onWrite = t.writeReady
	sock.lp = l
	if sock.sotype == unix.SOCK_STREAM && sock.family != unix.AF_UNIX {
		// asyncio's _set_nodelay: no Nagle delay on a TCP transport.
		_ = unix.SetsockoptInt(sock.fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	}
	if server != nil {
		server.attach(t)
	}
	l.addTransport(t)
	l.CallSoon(t.connectionMade)
	l.CallSoon(t.startReading)
	if waiter != nil {
		l.CallSoon(func() {
			if !waiter.Done() {
				waiter.SetResult(struct{}{})
			}
		})
	}
	return t, nil
}

func (l *Loop) addTransport(t loopTransport) {
	if l.transports == nil {
		l.transports = make(map[loopTransport]struct{})
	}
	l.transports[t] = struct{}{}
}

func (t *socketTransport) String() string {
	state := "open"
	switch {
	case t.sock == nil:
		state = "closed"
	case t.closing:
		state = "closing"
	}
	return fmt.Sprintf("<socket transport fd=%d %s laddr=%v raddr=%v>", t.fd, state, t.laddr, t.raddr)
}

func (t *socketTransport) connectionMade() {
	if t.connLost > 0 {
		return
	}
	t.connected = true
	defer t.recoverProto("protocol.connection_made() call failed.")
	t.proto.ConnectionMade(t)
}

func (t *socketTransport) startReading() {
	if t.closing || t.rpaused || t.sock == nil {
		return
	}
	t.l.setIO(t.fd, evRead, t.onRead, t)
}

// recoverProto turns a panic in a protocol callback into asyncio's fatal
// error: reported, and the connection closed.
func (t *socketTransport) recoverProto(msg string) {
	if r := recover(); r != nil {
		t.fatalError(newPanicError(r), "Fatal error: "+msg)
	}
}

func (t *socketTransport) readReady() {
	if t.connLost > 0 {
		return
	}
	if t.bp != nil {
		t.readReadyBuffered()
		return
	}
	buf := t.l.readBuffer()
	n, err := unix.Read(t.fd, buf)
	if err != nil {
		if err == unix.EAGAIN || err == unix.EINTR {
			return
		}
		t.fatalError(os.NewSyscallError("read", err), "Fatal read error on socket transport")
		return
	}
	if n == 0 {
		t.readEOF()
		return
	}
	defer t.recoverProto("protocol.data_received() call failed.")
	t.p.DataReceived(buf[:n])
}

func (t *socketTransport) readReadyBuffered() {
	var buf []byte
	func() {
		defer t.recoverProto("protocol.get_buffer() call failed.")
		buf = t.bp.GetBuffer(-1)
		if len(buf) == 0 {
			t.fatalError(errors.New("loop: get_buffer() returned an empty buffer"), "Fatal error: protocol.get_buffer() call failed.")
			buf = nil
		}
	}()
	if buf == nil {
		return
	}
	n, err := unix.Read(t.fd, buf)
	if err != nil {
		if err == unix.EAGAIN || err == unix.EINTR {
			return
		}
		t.fatalError(os.NewSyscallError("read", err), "Fatal read error on socket transport")
		return
	}
	if n == 0 {
		t.readEOF()
		return
	}
	defer t.recoverProto("protocol.buffer_updated() call failed.")
	t.bp.BufferUpdated(n)
}

// readEOF is _read_ready__on_eof.
func (t *socketTransport) readEOF() {
	keepOpen := false
	func() {
		defer t.recoverProto("protocol.eof_received() call failed.")
		if t.p != nil {
			keepOpen = t.p.EOFReceived()
		} else {
			keepOpen = t.bp.EOFReceived()
		}
	}()
	if t.connLost > 0 {
		return
	}
	if keepOpen {
		// Half-closed: stop reading, keep writing.
		t.l.setIO(t.fd, evRead, nil, t)
		return
	}
	t.Close()
}

// fatalError is _fatal_error: an OS error of the connection (a reset, a
// broken pipe) is the peer's doing and only ends the connection; anything
// else is also reported to the exception handler.
func (t *socketTransport) fatalError(err error, msg string) {
	var se *os.SyscallError
	if !errors.As(err, &se) {
		t.l.CallExceptionHandler(ExceptionContext{Message: msg, Err: err, Transport: t, Protocol: t.proto})
	}
	t.forceCloseErr(err)
}

// forceCloseErr is _force_close.
func (t *socketTransport) forceCloseErr(err error) {
	if t.connLost > 0 {
		return
	}
	t.wbuf, t.whead = nil, 0
	t.setWriter(false)
	if !t.closing {
		t.closing = true
		t.l.setIO(t.fd, evRead, nil, t)
	}
	t.connLost++
	t.l.CallSoon(func() { t.callConnectionLost(err) })
}

// callConnectionLost is _call_connection_lost: the protocol hears of the
// end, then the socket is closed, exactly once.
func (t *socketTransport) callConnectionLost(err error) {
	if t.sock == nil {
		return
	}
	defer func() {
		t.l.setIO(t.fd, evRead, nil, t)
		t.setWriter(false)
		t.sock.Close()
		t.sock = nil
		delete(t.l.transports, loopTransport(t))
		if t.server != nil {
			t.server.detach(t)
			t.server = nil
		}
	}()
	if t.connected {
		t.proto.ConnectionLost(err)
	}
}

// forceClose closes the socket at Loop.Close, with no callbacks.
func (t *socketTransport) forceClose() {
	if t.sock == nil {
		return
	}
	t.l.setIO(t.fd, evRead, nil, t)
	t.setWriter(false)
	t.sock.Close()
	t.sock = nil
	t.closing = true
	t.connLost++
	if t.server != nil {
		t.server.detach(t)
		t.server = nil
	}
}

func (t *socketTransport) setWriter(on bool) {
	if t.writerOn == on || t.sock == nil {
		return
	}
	t.writerOn = on
	fn := t.onWrite
	if !on {
		fn = nil
	}
	t.l.setIO(t.fd, evWrite, fn, t)
}

// Close implements BaseTransport.
func (t *socketTransport) Close() {
	if t.closing {
		return
	}
	t.closing = true
	t.l.setIO(t.fd, evRead, nil, t)
	if t.WriteBufferSize() == 0 {
		t.connLost++
		t.setWriter(false)
		t.l.CallSoon(func() { t.callConnectionLost(nil) })
	}
}

// Abort implements Transport.
func (t *socketTransport) Abort() { t.forceCloseErr(nil) }

// IsClosing implements BaseTransport.
func (t *socketTransport) IsClosing() bool { return t.closing }

// GetExtraInfo implements BaseTransport.
func (t *socketTransport) GetExtraInfo(name string) any {
	switch name {
	case "peername", "sockname":
		return t.addrInfo(name)
	case "socket":
		if t.sock == nil {
			return nil
		}
		return t.sock
	}
	return nil
}

// Write implements Transport.
func (t *socketTransport) Write(p []byte) (int, error) {
	if t.eof {
		return 0, ErrWriteAfterEOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	if t.connLost > 0 {
		return 0, ErrTransportClosed
	}
	if t.WriteBufferSize() == 0 {
		n, err := unix.Write(t.fd, p)
		if err != nil && err != unix.EAGAIN && err != unix.EINTR {
			t.fatalError(os.NewSyscallError("write", err), "Fatal write error on socket transport")
			return 0, ErrTransportClosed
		}
		if n == len(p) {
			return n, nil
		}
		if n < 0 {
			n = 0
		}
		t.wbuf = append(t.wbuf[:0], p[n:]...)
		t.whead = 0
		t.setWriter(true)
	} else {
		t.wbuf = append(t.wbuf, p...)
	}
	t.maybePauseProtocol()
	return len(p), nil
}

// Writelines implements Transport.
func (t *socketTransport) Writelines(bufs [][]byte) error {
	if t.eof {
		return ErrWriteAfterEOF
	}
	if t.connLost > 0 {
		return ErrTransportClosed
	}
	empty := t.WriteBufferSize() == 0
	if empty {
		t.wbuf, t.whead = t.wbuf[:0], 0
	}
	for _, b := range bufs {
		t.wbuf = append(t.wbuf, b...)
	}
	if empty && len(t.wbuf) > 0 {
		t.flush()
		if t.connLost == 0 && t.WriteBufferSize() > 0 {
			t.setWriter(true)
		}
	}
	t.maybePauseProtocol()
	if t.connLost > 0 {
		return ErrTransportClosed
	}
	return nil
}

// flush sends what it can of the buffer; false if the connection failed.
func (t *socketTransport) flush() bool {
	for t.whead < len(t.wbuf) {
		n, err := unix.Write(t.fd, t.wbuf[t.whead:])
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			break
		}
		if err != nil {
			t.setWriter(false)
			t.wbuf, t.whead = nil, 0
			t.fatalError(os.NewSyscallError("write", err), "Fatal write error on socket transport")
			return false
		}
		t.whead += n
	}
	if t.whead == len(t.wbuf) {
		t.wbuf, t.whead = t.wbuf[:0], 0
		if cap(t.wbuf) > 1<<20 {
			t.wbuf = nil // a burst is over: do not keep its buffer
		}
	} else if t.whead > len(t.wbuf)/2 && t.whead > 64<<10 {
		t.wbuf = t.wbuf[:copy(t.wbuf, t.wbuf[t.whead:])]
		t.whead = 0
	}
	return true
}

// writeReady is _write_ready.
func (t *socketTransport) writeReady() {
	if t.connLost > 0 {
		return
	}
	if !t.flush() {
		return
	}
	t.maybeResumeProtocol()
	if t.WriteBufferSize() == 0 && t.connLost == 0 {
		t.setWriter(false)
		if t.closing {
			t.connLost++
			t.callConnectionLost(nil)
		} else if t.eof {
			unix.Shutdown(t.fd, unix.SHUT_WR)
		}
	}
}

// WriteEOF implements Transport.
func (t *socketTransport) WriteEOF() error {
	if t.closing || t.eof {
		return nil
	}
	t.eof = true
	if t.WriteBufferSize() == 0 {
		unix.Shutdown(t.fd, unix.SHUT_WR)
	}
	return nil
}

// CanWriteEOF implements Transport.
func (t *socketTransport) CanWriteEOF() bool { return true }

// PauseReading implements Transport.
func (t *socketTransport) PauseReading() {
	if t.closing || t.rpaused {
		return
	}
	t.rpaused = true
	t.l.setIO(t.fd, evRead, nil, t)
}

// ResumeReading implements Transport.
func (t *socketTransport) ResumeReading() {
	if t.closing || !t.rpaused {
		return
	}
	t.rpaused = false
	t.l.setIO(t.fd, evRead, t.onRead, t)
}

// IsReading implements Transport.
func (t *socketTransport) IsReading() bool { return !t.rpaused && !t.closing }

// SetWriteBufferLimits implements Transport.
func (t *socketTransport) SetWriteBufferLimits(high, low int) error {
	if err := t.setLimits(high, low); err != nil {
		return err
	}
	t.maybePauseProtocol()
	return nil
}

// WriteBufferSize implements Transport.
func (t *socketTransport) WriteBufferSize() int { return len(t.wbuf) - t.whead }

// SetProtocol implements Transport.
func (t *socketTransport) SetProtocol(p BaseProtocol) error {
	sp, bp, err := protocolKinds(p)
	if err != nil {
		return err
	}
	t.proto, t.p, t.bp = p, sp, bp
	t.flow, _ = p.(WriteFlowControl)
	return nil
}

// Protocol implements Transport.
func (t *socketTransport) Protocol() BaseProtocol { return t.proto }

func (t *socketTransport) maybePauseProtocol() { t.pauseIfAbove(t.WriteBufferSize(), t.l, t, t.proto) }

func (t *socketTransport) maybeResumeProtocol() {
	t.resumeIfBelow(t.WriteBufferSize(), t.l, t, t.proto)
}

// detachSocket takes the socket out of the transport for StartTLS: the
// loop stops watching it, the transport ends quietly (no ConnectionLost,
// the descriptor stays open) and refuses writes from now on. It returns the
// socket, the bytes not yet sent, and the server it belonged to, still
// counting it until the caller detaches it.
func (t *socketTransport) detachSocket() (sock *Socket, pending []byte, srv *Server, err error) {
	if t.sock == nil || t.closing || t.connLost > 0 {
		return nil, nil, nil, fmt.Errorf("%w: %v", ErrStartTLSUnsupported, t)
	}
	if t.eof {
		return nil, nil, nil, ErrWriteAfterEOF
	}
	t.l.setIO(t.fd, evRead, nil, t)
	t.setWriter(false)
	if t.WriteBufferSize() > 0 {
		pending = append([]byte(nil), t.wbuf[t.whead:]...)
	}
	t.wbuf, t.whead = nil, 0
	sock, srv = t.sock, t.server
	t.sock, t.server = nil, nil
	t.closing = true
	t.connLost++
	delete(t.l.transports, loopTransport(t))
	return sock, pending, srv, nil
}

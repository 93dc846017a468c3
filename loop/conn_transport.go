package loop

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// connTransport is a stream transport over a net.Conn: what TLS runs on
// (crypto/tls speaks through a net.Conn, not through the memory buffers of
// Python's SSLProtocol), and what a connection that must stay a net.Conn
// (net.Pipe, a *tls.Conn made elsewhere) becomes with ConnectNetConn.
// sslproto.go says why it is built this way.
//
// Two goroutines serve it. The reader reads into a buffer of its own (two
// at most, so that it reads the next chunk while the loop hands the last
// one to the protocol) and posts each chunk to the loop with
// CallSoonThreadsafe; the protocol's callbacks run on the loop, in order.
// While reading is paused the reader does not read: chunks it had already
// read wait on the loop and are delivered after ResumeReading. The writer
// sends what Write appended to a queue; the loop counts the bytes it has
// been given and not yet heard sent (WriteBufferSize), and the writer posts
// how many it sent, so the water marks work as on a socket transport.
//
// Close stops reading at once; the writer sends what is queued, then
// closes the connection (for TLS after a close_notify, bounded by the
// shutdown timeout). Abort and an error close the connection at once. When
// both goroutines have left, the last one posts finish, which calls
// ConnectionLost exactly once. At Loop.Close, forceClose closes the
// connection and waits for both goroutines, so none outlives the loop.
type connTransport struct {
	l      *Loop
	conn   net.Conn    // what is read and written: the *tls.Conn for TLS
	raw    net.Conn    // what Abort closes: the connection under TLS, else conn
	tc     *tls.Conn   // non-nil for TLS
	cfg    *tls.Config // the config TLS was made with, if known
	cw     interface{ CloseWrite() error }
	proto  BaseProtocol
	p      Protocol
	bp     BufferedProtocol
	server *Server
	flowControl
	waiter *Future[struct{}]
	addrs

	// On the loop's goroutine.
	handshake   bool // a TLS handshake runs before the connection is made
	hsTimeout   time.Duration
	shTimeout   time.Duration
	hsDone      bool
	external    bool // counted in l.external while the handshake runs
	state       tls.ConnectionState
	connected   bool // the protocol has the connection: ConnectionLost is due
	closing     bool // Close, Abort or an error: no more reading
	lost        bool // Abort or an error: no more writing either
	finished    bool // ConnectionLost was called (or the loop closed)
	lostErr     error
	eof         bool // WriteEOF was called
	rpaused     bool
	wsize       int
	inq         []connEvent // read, not yet delivered (paused)
	delivering  bool
	drainQueued bool
	prefix      []byte // plain bytes to send before the handshake (StartTLS)
	shTimer     *time.Timer
	onAck       func()
	onFinish    func()
	onDrain     func()

	// Shared with the goroutines, under mu; cond wakes them.
	mu        sync.Mutex
	cond      sync.Cond
	stopped   bool // leave now
	gate      bool // reading is paused
	free      []*connChunk
	nchunks   int
	bufSize   int
	wq        []byte
	wantEOF   bool
	wantClose bool
	wdone     bool // the writer has left: nothing more is sent

	acked     atomic.Int64
	ackPosted atomic.Bool
	shut      atomic.Bool // the transport closed the connection: errors after it are its own
	live      atomic.Int32
	wg        sync.WaitGroup
}

// connChunk is one read buffer and the callback that delivers it.
type connChunk struct {
	buf []byte
	n   int
	fn  func()
}

// connEvent is what the reader posted: a chunk, or the end of the stream
// (err io.EOF) or a read error.
type connEvent struct {
	c   *connChunk
	off int
	err error
}

// Read buffer sizes: one TLS record is at most 16 KiB of plaintext, and a
// *tls.Conn returns at most one record a Read.
const (
	connReadSize = 64 << 10
	tlsReadSize  = 16 << 10
)

// connSetup is how a connTransport starts.
type connSetup struct {
	cfg       *tls.Config
	handshake bool
	hs, sh    time.Duration
	prefix    []byte // StartTLS: bytes the old transport had not sent
	startTLS  bool   // the protocol already has the connection
	high, low int    // inherited water marks (StartTLS), 0: the defaults
	wpaused   bool
}

// newConnTransport makes a transport over conn for proto and starts its
// goroutines. Without a handshake the protocol hears of the connection in
// the next iteration and waiter is resolved after that; with one, both
// happen once it succeeds.
func (l *Loop) newConnTransport(conn net.Conn, proto BaseProtocol, waiter *Future[struct{}], srv *Server, cs connSetup) (*connTransport, error) {
	sp, bp, err := protocolKinds(proto)
	if err != nil {
		return nil, err
	}
	t := &connTransport{
		l: l, conn: conn, raw: conn, cfg: cs.cfg,
		proto: proto, p: sp, bp: bp, server: srv, waiter: waiter,
		addrs:     addrs{laddr: conn.LocalAddr(), raddr: conn.RemoteAddr()},
		handshake: cs.handshake, prefix: cs.prefix, connected: cs.startTLS,
		bufSize: connReadSize,
	}
	t.hsTimeout, t.shTimeout = (&tlsParams{handshakeTimeout: cs.hs, shutdownTimeout: cs.sh}).timeouts()
	t.cond.L = &t.mu
	t.flow, _ = proto.(WriteFlowControl)
	t.high, t.low, _ = setLimits(-1, -1)
	if cs.high > 0 {
		t.high, t.low = cs.high, cs.low
	}
	t.wpaused = cs.wpaused
	t.wsize = len(cs.prefix)
	if tc, ok := conn.(*tls.Conn); ok {
		t.tc, t.raw = tc, tc.NetConn()
		t.bufSize = tlsReadSize
	} else if cw, ok := conn.(interface{ CloseWrite() error }); ok {
		t.cw = cw
	}
	t.onAck = t.acknowledge
	t.onFinish = t.finish
	t.onDrain = t.drain
	if srv != nil {
		srv.attach(t)
	}
	l.addTransport(t)
	if t.handshake {
		// A virtual clock waits for the handshake, as for other work
		// running elsewhere, instead of jumping to the next timer.
		l.external++
		t.external = true
	} else {
		l.CallSoon(t.connectionMade)
		if waiter != nil {
			l.CallSoon(func() {
				if !t.lost && !waiter.Done() {
					waiter.SetResult(struct{}{})
				}
			})
		}
	}
	t.live.Store(2)
	t.wg.Add(2)
	go t.readLoop()
	go t.writeLoop()
	return t, nil
}

func (t *connTransport) String() string {
	kind := "conn"
	if t.tc != nil {
		kind = "tls"
	}
	state := "open"
	switch {
	case t.finished:
		state = "closed"
	case t.closing:
		state = "closing"
	}
	return fmt.Sprintf("<%s transport %s laddr=%v raddr=%v>", kind, state, t.laddr, t.raddr)
}

// post hands fn to the loop from a goroutine of the transport.
func (t *connTransport) post(fn func()) error { return t.l.CallSoonThreadsafe(fn) }

// exit is each goroutine's last act: the last one out posts finish.
func (t *connTransport) exit() {
	if t.live.Add(-1) == 0 {
		_ = t.post(t.onFinish)
	}
	t.wg.Done()
}

// readLoop is the reader goroutine: the StartTLS leftovers and the TLS
// handshake first, then chunks until the end of the stream, an error, or
// the transport stops.
func (t *connTransport) readLoop() {
	defer t.exit()
	if len(t.prefix) > 0 {
		n, err := t.raw.Write(t.prefix)
		t.ack(n)
		if err != nil {
			t.raw.Close()
			_ = t.post(func() { t.handshakeDone(err, nil) })
			return
		}
	}
	if t.handshake {
		ctx, cancel := context.WithTimeout(context.Background(), t.hsTimeout)
		err := t.tc.HandshakeContext(ctx)
		if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = ErrTLSHandshakeTimeout
		}
		cancel()
		if err != nil {
			t.raw.Close()
			_ = t.post(func() { t.handshakeDone(err, nil) })
			return
		}
		st := t.tc.ConnectionState()
		if t.post(func() { t.handshakeDone(nil, &st) }) != nil {
			return
		}
	}
	for {
		t.mu.Lock()
		for !t.stopped && !t.wantClose && (t.gate || (len(t.free) == 0 && t.nchunks >= 2)) {
			t.cond.Wait()
		}
		if t.stopped || t.wantClose {
			t.mu.Unlock()
			return
		}
		var c *connChunk
		if n := len(t.free); n > 0 {
			c = t.free[n-1]
			t.free[n-1] = nil
			t.free = t.free[:n-1]
		} else {
			t.nchunks++
			c = &connChunk{}
			c.fn = func() { t.received(c) }
		}
		t.mu.Unlock()
		if c.buf == nil {
			c.buf = make([]byte, t.bufSize)
		}
		n, err := t.conn.Read(c.buf)
		if n > 0 {
			c.n = n
			if t.post(c.fn) != nil {
				return
			}
		} else {
			t.release(c)
		}
		if err != nil {
			if t.shut.Load() {
				return
			}
			_ = t.post(func() { t.push(connEvent{err: err}) })
			return
		}
	}
}

// writeLoop is the writer goroutine: it sends the queue as the loop fills
// it, then the half-close or the close the loop asked for.
func (t *connTransport) writeLoop() {
	defer t.exit()
	var out []byte
	eofSent := false
	for {
		t.mu.Lock()
		for !t.stopped && len(t.wq) == 0 && !t.wantClose && (!t.wantEOF || eofSent) {
			t.cond.Wait()
		}
		if t.stopped {
			t.wdone = true
			t.mu.Unlock()
			return
		}
		if len(t.wq) == 0 {
			if t.wantClose {
				t.wdone = true
				t.mu.Unlock()
				t.closeConn()
				return
			}
			eofSent = true
			t.mu.Unlock()
			if err := t.cw.CloseWrite(); err != nil && !t.shut.Load() {
				_ = t.post(func() { t.abortWith(err) })
			}
			continue
		}
		out, t.wq = t.wq, out[:0]
		t.mu.Unlock()
		n, err := t.conn.Write(out)
		t.ack(n)
		if err != nil {
			t.mu.Lock()
			t.wdone = true
			t.mu.Unlock()
			if !t.shut.Load() {
				_ = t.post(func() { t.abortWith(err) })
			}
			return
		}
		if cap(out) > 1<<20 {
			out = nil // a burst is over: do not keep its buffer
		}
	}
}

// closeConn is the end of a Close: a TLS connection sends its close_notify
// (the shutdown timer aborts it if the peer does not take it), then the
// connection is closed.
func (t *connTransport) closeConn() {
	t.shut.Store(true)
	if t.tc != nil {
		t.tc.Close() // a close_notify if the handshake is done, then the close
	}
	t.raw.Close()
}

// ack tells the loop that n more bytes were sent.
func (t *connTransport) ack(n int) {
	if n <= 0 {
		return
	}
	t.acked.Add(int64(n))
	if t.ackPosted.CompareAndSwap(false, true) {
		_ = t.post(t.onAck)
	}
}

// acknowledge runs on the loop: the buffer shrinks by what was sent.
func (t *connTransport) acknowledge() {
	t.ackPosted.Store(false)
	n := int(t.acked.Swap(0))
	if t.lost {
		t.wsize = 0
		return
	}
	t.wsize = max(0, t.wsize-n)
	t.maybeResumeProtocol()
}

// release gives a chunk's buffer back to the reader.
func (t *connTransport) release(c *connChunk) {
	t.mu.Lock()
	c.n = 0
	t.free = append(t.free, c)
	if len(t.free) == 1 {
		t.cond.Broadcast()
	}
	t.mu.Unlock()
}

// releaseExternal ends the virtual clock's wait for the handshake.
func (t *connTransport) releaseExternal() {
	if t.external {
		t.external = false
		t.l.external--
	}
}

// handshakeDone runs on the loop when the handshake ends.
func (t *connTransport) handshakeDone(err error, st *tls.ConnectionState) {
	t.releaseExternal()
	if t.lost {
		return // aborted meanwhile; finish tells whom it concerns
	}
	if err != nil {
		if t.l.debug {
			t.l.logger.Debug("loop: SSL handshake failed", "transport", t.String(), "err", err)
		}
		if t.waiter != nil && !t.waiter.Done() {
			t.waiter.SetErr(err)
		}
		t.abortWith(err)
		return
	}
	t.hsDone = true
	t.state = *st
	if !t.connected {
		t.connectionMade()
	}
	if t.lost {
		return
	}
	if t.waiter != nil && !t.waiter.Done() {
		t.waiter.SetResult(struct{}{})
	}
}

func (t *connTransport) connectionMade() {
	if t.lost || t.connected {
		return
	}
	t.connected = true
	defer t.recoverProto("protocol.connection_made() call failed.")
	t.proto.ConnectionMade(t)
}

// recoverProto turns a panic in a protocol callback into asyncio's fatal
// error: reported, and the connection aborted.
func (t *connTransport) recoverProto(msg string) {
	if r := recover(); r != nil {
		err := newPanicError(r)
		t.l.CallExceptionHandler(ExceptionContext{Message: "Fatal error: " + msg, Err: err, Transport: t, Protocol: t.proto})
		t.abortWith(err)
	}
}

// received runs on the loop for each chunk the reader posts.
func (t *connTransport) received(c *connChunk) { t.push(connEvent{c: c}) }

// push queues what the reader posted and delivers what it may.
func (t *connTransport) push(ev connEvent) {
	if t.closing {
		if ev.c != nil {
			t.release(ev.c)
		}
		return
	}
	t.inq = append(t.inq, ev)
	if !t.rpaused {
		t.deliver()
	}
}

// drain delivers what waited while reading was paused.
func (t *connTransport) drain() {
	t.drainQueued = false
	if !t.rpaused {
		t.deliver()
	}
}

// deliver hands queued chunks to the protocol, in order, until reading is
// paused or the transport closes.
func (t *connTransport) deliver() {
	if t.delivering {
		return
	}
	t.delivering = true
	defer func() { t.delivering = false }()
	for len(t.inq) > 0 && !t.rpaused && !t.closing {
		ev := &t.inq[0]
		if ev.c == nil {
			err := ev.err
			t.popEvent()
			if errors.Is(err, io.EOF) {
				t.readEOF()
			} else {
				t.abortWith(err)
			}
			return
		}
		if t.feed(ev) {
			c := ev.c
			t.popEvent()
			t.release(c)
		}
	}
}

func (t *connTransport) popEvent() {
	n := copy(t.inq, t.inq[1:])
	t.inq[n] = connEvent{}
	t.inq = t.inq[:n]
}

// dropInput forgets what was read and not delivered.
func (t *connTransport) dropInput() {
	for _, ev := range t.inq {
		if ev.c != nil {
			t.release(ev.c)
		}
	}
	clear(t.inq)
	t.inq = t.inq[:0]
}

// feed gives one chunk to the protocol; false if a BufferedProtocol took
// only part of it before reading was paused or the transport closed.
func (t *connTransport) feed(ev *connEvent) (done bool) {
	data := ev.c.buf[ev.off:ev.c.n]
	if t.bp == nil {
		t.dataReceived(data)
		return true
	}
	for len(data) > 0 {
		buf := t.getBuffer(len(data))
		if buf == nil {
			return true // the transport is aborted
		}
		n := copy(buf, data)
		data = data[n:]
		ev.off += n
		t.bufferUpdated(n)
		if len(data) > 0 && (t.rpaused || t.closing) {
			return t.closing
		}
	}
	return true
}

func (t *connTransport) dataReceived(p []byte) {
	defer t.recoverProto("protocol.data_received() call failed.")
	t.p.DataReceived(p)
}

func (t *connTransport) getBuffer(hint int) (buf []byte) {
	defer t.recoverProto("protocol.get_buffer() call failed.")
	buf = t.bp.GetBuffer(hint)
	if len(buf) == 0 {
		err := errors.New("loop: get_buffer() returned an empty buffer")
		t.l.CallExceptionHandler(ExceptionContext{Message: "Fatal error: protocol.get_buffer() call failed.", Err: err, Transport: t, Protocol: t.proto})
		t.abortWith(err)
		return nil
	}
	return buf
}

func (t *connTransport) bufferUpdated(n int) {
	defer t.recoverProto("protocol.buffer_updated() call failed.")
	t.bp.BufferUpdated(n)
}

// readEOF is the peer's end of stream. A TLS transport closes whatever
// EOFReceived answers, as asyncio's SSL transport; a plain one stays open
// for writing if it returns true.
func (t *connTransport) readEOF() {
	keepOpen := false
	func() {
		defer t.recoverProto("protocol.eof_received() call failed.")
		if t.p != nil {
			keepOpen = t.p.EOFReceived()
		} else {
			keepOpen = t.bp.EOFReceived()
		}
	}()
	if t.closing {
		return
	}
	if keepOpen && t.tc != nil {
		t.l.logger.Warn("loop: returning true from EOFReceived() has no effect when using TLS", "transport", t.String())
		keepOpen = false
	}
	if !keepOpen {
		t.Close()
	}
}

// abortWith is _force_close: the connection is closed at once, queued
// bytes dropped; ConnectionLost(err) follows once the goroutines are gone.
func (t *connTransport) abortWith(err error) {
	if t.lost {
		return
	}
	t.lost, t.closing = true, true
	t.lostErr = err
	t.dropInput()
	t.mu.Lock()
	t.stopped = true
	t.wq = nil
	t.cond.Broadcast()
	t.mu.Unlock()
	t.wsize = 0
	t.shut.Store(true)
	t.raw.Close()
}

// finish runs on the loop once both goroutines have left: the protocol
// hears of the end, exactly once, and the transport leaves the loop.
func (t *connTransport) finish() {
	if t.finished {
		return
	}
	t.finished = true
	t.releaseExternal()
	t.lost, t.closing = true, true
	t.shut.Store(true)
	t.raw.Close() // the writer closed it already after a Close
	if t.shTimer != nil {
		t.shTimer.Stop()
	}
	t.dropInput()
	t.wsize = 0
	delete(t.l.transports, loopTransport(t))
	if t.server != nil {
		t.server.detach(t)
		t.server = nil
	}
	if t.waiter != nil && !t.waiter.Done() {
		// Aborted before the connection was made: its creator, if it
		// still waits, gets the error; if it gave up (and closed the
		// transport), the error is marked read so that nobody is told of
		// an error nobody could read.
		err := t.lostErr
		if err == nil {
			err = ErrTransportClosed
		}
		t.waiter.SetErr(err)
		_ = t.waiter.Err()
	}
	if t.connected {
		t.connected = false
		defer func() {
			if r := recover(); r != nil {
				t.l.CallExceptionHandler(ExceptionContext{Message: "Fatal error: protocol.connection_lost() call failed.", Err: newPanicError(r), Transport: t, Protocol: t.proto})
			}
		}()
		t.proto.ConnectionLost(t.lostErr)
	}
}

// forceClose closes the connection at Loop.Close, with no callbacks, and
// waits for the goroutines to leave.
func (t *connTransport) forceClose() {
	if t.finished {
		return
	}
	t.finished = true
	t.releaseExternal()
	t.lost, t.closing = true, true
	t.connected = false
	t.mu.Lock()
	t.stopped = true
	t.cond.Broadcast()
	t.mu.Unlock()
	t.shut.Store(true)
	t.raw.Close()
	if t.shTimer != nil {
		t.shTimer.Stop()
	}
	t.wg.Wait()
	t.inq = nil
	if t.server != nil {
		t.server.detach(t)
		t.server = nil
	}
}

// Close implements BaseTransport: reading stops, what is buffered is sent,
// then the connection closes (a TLS one after its close_notify).
func (t *connTransport) Close() {
	if t.closing {
		return
	}
	if t.handshake && !t.hsDone {
		t.abortWith(nil) // nothing to flush, as asyncio aborts a handshake
		return
	}
	t.closing = true
	t.dropInput()
	t.mu.Lock()
	t.wantClose = true
	t.cond.Broadcast()
	t.mu.Unlock()
	if t.tc != nil {
		t.shTimer = time.AfterFunc(t.shTimeout, func() {
			_ = t.post(func() { t.abortWith(ErrTLSShutdownTimeout) })
		})
	}
}

// Abort implements Transport.
func (t *connTransport) Abort() { t.abortWith(nil) }

// IsClosing implements BaseTransport.
func (t *connTransport) IsClosing() bool { return t.closing }

// GetExtraInfo implements BaseTransport: "peername", "sockname", "socket"
// (always nil: there is no *Socket under a net.Conn), and for TLS
// "sslcontext", "ssl_object", "peercert" and "cipher".
func (t *connTransport) GetExtraInfo(name string) any {
	switch name {
	case "peername", "sockname":
		return t.addrInfo(name)
	case "sslcontext":
		if t.cfg != nil {
			return t.cfg
		}
	case "ssl_object":
		if t.tc != nil {
			return t.tc
		}
	case "peercert":
		if t.hsDone && len(t.state.PeerCertificates) > 0 {
			return t.state.PeerCertificates[0]
		}
	case "cipher":
		if t.hsDone && t.tc != nil {
			return tls.CipherSuiteName(t.state.CipherSuite)
		}
	}
	return nil
}

// Write implements Transport: p is queued for the writer goroutine.
func (t *connTransport) Write(p []byte) (int, error) {
	if t.eof {
		return 0, ErrWriteAfterEOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	if t.lost {
		return 0, ErrTransportClosed
	}
	t.mu.Lock()
	if t.wdone {
		t.mu.Unlock()
		return 0, ErrTransportClosed
	}
	wake := len(t.wq) == 0
	t.wq = append(t.wq, p...)
	if wake {
		t.cond.Broadcast()
	}
	t.mu.Unlock()
	t.wsize += len(p)
	t.maybePauseProtocol()
	return len(p), nil
}

// Writelines implements Transport.
func (t *connTransport) Writelines(bufs [][]byte) error {
	if t.eof {
		return ErrWriteAfterEOF
	}
	if t.lost {
		return ErrTransportClosed
	}
	n := 0
	for _, b := range bufs {
		n += len(b)
	}
	if n == 0 {
		return nil
	}
	t.mu.Lock()
	if t.wdone {
		t.mu.Unlock()
		return ErrTransportClosed
	}
	wake := len(t.wq) == 0
	for _, b := range bufs {
		t.wq = append(t.wq, b...)
	}
	if wake {
		t.cond.Broadcast()
	}
	t.mu.Unlock()
	t.wsize += n
	t.maybePauseProtocol()
	return nil
}

// WriteEOF implements Transport: the writing side is shut once the queue
// is sent. TLS (as asyncio's SSL transport) and a net.Conn without
// CloseWrite return ErrWriteEOFUnsupported.
func (t *connTransport) WriteEOF() error {
	if !t.CanWriteEOF() {
		return ErrWriteEOFUnsupported
	}
	if t.closing || t.eof {
		return nil
	}
	t.eof = true
	t.mu.Lock()
	t.wantEOF = true
	t.cond.Broadcast()
	t.mu.Unlock()
	return nil
}

// CanWriteEOF implements Transport.
func (t *connTransport) CanWriteEOF() bool { return t.cw != nil }

// PauseReading implements Transport: the reader goroutine stops reading.
func (t *connTransport) PauseReading() {
	if t.closing || t.rpaused {
		return
	}
	t.rpaused = true
	t.mu.Lock()
	t.gate = true
	t.mu.Unlock()
}

// ResumeReading implements Transport: what was read before the pause is
// delivered in the next iteration, then reading goes on.
func (t *connTransport) ResumeReading() {
	if t.closing || !t.rpaused {
		return
	}
	t.rpaused = false
	t.mu.Lock()
	t.gate = false
	t.cond.Broadcast()
	t.mu.Unlock()
	if len(t.inq) > 0 && !t.drainQueued {
		t.drainQueued = true
		t.l.CallSoon(t.onDrain)
	}
}

// IsReading implements Transport.
func (t *connTransport) IsReading() bool { return !t.rpaused && !t.closing }

// SetWriteBufferLimits implements Transport.
func (t *connTransport) SetWriteBufferLimits(high, low int) error {
	if err := t.setLimits(high, low); err != nil {
		return err
	}
	t.maybePauseProtocol()
	return nil
}

// WriteBufferSize implements Transport: bytes given to Write that the
// writer goroutine has not yet reported sent.
func (t *connTransport) WriteBufferSize() int { return t.wsize }

// SetProtocol implements Transport.
func (t *connTransport) SetProtocol(p BaseProtocol) error {
	sp, bp, err := protocolKinds(p)
	if err != nil {
		return err
	}
	t.proto, t.p, t.bp = p, sp, bp
	t.flow, _ = p.(WriteFlowControl)
	return nil
}

// Protocol implements Transport.
func (t *connTransport) Protocol() BaseProtocol { return t.proto }

func (t *connTransport) maybePauseProtocol() { t.pauseIfAbove(t.wsize, t.l, t, t.proto) }

func (t *connTransport) maybeResumeProtocol() { t.resumeIfBelow(t.wsize, t.l, t, t.proto) }

// ConnectNetConn adopts c, a connection that has no descriptor or must stay
// a net.Conn (a net.Pipe, a *tls.Conn or a connection from a library that
// made it elsewhere), as a transport for a protocol from factory. It is
// how such a connection joins the loop; a *net.TCPConn or *net.UnixConn
// that may leave Go's runtime is served faster by SocketFromConn and
// ConnectAcceptedSocket, which read it on the loop's own goroutine.
//
// Two goroutines serve the transport: one reads c and hands each chunk to
// the loop, one writes what the loop queues; the protocol's callbacks run
// on the loop as for any transport. A *tls.Conn whose handshake has not
// run yet shakes hands first (within 60 s, asyncio's default
// ssl_handshake_timeout; call c.HandshakeContext first for another bound),
// and the transport then answers the TLS names of GetExtraInfo. c belongs
// to the transport from now on, and is closed if ConnectNetConn fails; a
// Read or Write of c blocked in c's own code must end when c is closed.
// It returns once the protocol's ConnectionMade has run.
func (l *Loop) ConnectNetConn(ctx context.Context, factory func() BaseProtocol, c net.Conn) (Transport, BaseProtocol, error) {
	if l.stopCB == nil {
		return nil, nil, ErrZeroLoop
	}
	if c == nil {
		return nil, nil, errors.New("loop: nil net.Conn")
	}
	if runningTask(ctx) == nil {
		c.Close()
		return nil, nil, ErrNotInTask
	}
	if factory == nil {
		c.Close()
		return nil, nil, errors.New("loop: nil protocol factory")
	}
	proto := factory()
	var cs connSetup
	if _, ok := c.(*tls.Conn); ok {
		cs.handshake = true
	}
	waiter := NewFuture[struct{}](l)
	t, err := l.newConnTransport(c, proto, waiter, nil, cs)
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	if _, err := waiter.Await(ctx); err != nil {
		t.Close()
		return nil, nil, err
	}
	return t, proto, nil
}

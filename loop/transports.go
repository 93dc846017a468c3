package loop

import (
	"errors"
	"net"
)

// Errors of transports, with asyncio's messages where asyncio has one.
var (
	// ErrWriteAfterEOF is "Cannot call write() after write_eof()".
	ErrWriteAfterEOF = errors.New("loop: Cannot call write() after write_eof()")
	// ErrTransportClosed is returned by a write to a transport whose
	// connection is lost (asyncio drops the data and, after a few such
	// writes, logs "socket.send() raised exception.").
	ErrTransportClosed = errors.New("loop: transport is closed")
	// ErrWriteEOFUnsupported is returned by WriteEOF on a transport that
	// cannot half-close (TLS, as asyncio's SSL transport).
	ErrWriteEOFUnsupported = errors.New("loop: transport does not support write_eof()")
	// ErrBadWriteLimits is "high (H) must be >= low (L) must be >= 0".
	ErrBadWriteLimits = errors.New("loop: high must be >= low must be >= 0")
)

// DefaultWriteHighWater is the high-water mark of a transport's write
// buffer when none is set (asyncio's 64 KiB); the low-water mark defaults to
// a quarter of the high one.
const DefaultWriteHighWater = 64 * 1024

// BaseTransport is asyncio.BaseTransport: what every transport has. All
// methods are for the loop's goroutine.
type BaseTransport interface {
	// Close closes the transport: buffered data is flushed first, then the
	// protocol's ConnectionLost is called with nil. Idempotent.
	Close()
	// IsClosing reports whether the transport is closing or closed.
	IsClosing() bool
	// LocalAddr and RemoteAddr are the socket's addresses (asyncio's
	// get_extra_info("sockname") and ("peername")); nil if unknown.
	LocalAddr() net.Addr
	RemoteAddr() net.Addr
	// GetExtraInfo is get_extra_info: "peername", "sockname", "socket"
	// (a [*Socket], or nil for a transport over a net.Conn), and for TLS
	// "sslcontext" (*tls.Config), "ssl_object" (*tls.Conn), "peercert"
	// (*x509.Certificate) and "cipher" (a cipher suite name). It returns nil
	// for a name it does not know.
	GetExtraInfo(name string) any
}

// ReadTransport is asyncio.ReadTransport: the reading side of a stream
// (a read pipe's transport, [Loop.ConnectReadPipe]).
type ReadTransport interface {
	BaseTransport

	// PauseReading stops DataReceived calls until ResumeReading;
	// IsReading reports which. Both are idempotent, as since Python 3.7.
	PauseReading()
	ResumeReading()
	IsReading() bool
}

// WriteTransport is asyncio.WriteTransport: the writing side of a stream
// (a write pipe's transport, [Loop.ConnectWritePipe]).
type WriteTransport interface {
	BaseTransport

	// Write sends p or buffers what the kernel does not take; p may be
	// reused as soon as Write returns. It returns len(p), or
	// ErrWriteAfterEOF after WriteEOF, or ErrTransportClosed once the
	// connection is lost. Write on a transport that is closing but still
	// flushing buffers p, as asyncio's.
	Write(p []byte) (int, error)
	// Writelines is writelines: Write of each buffer, in one send where
	// the kernel takes it (writev).
	Writelines(bufs [][]byte) error
	// WriteEOF closes the writing side once the buffer is flushed
	// (shutdown(SHUT_WR)); reading goes on.
	WriteEOF() error
	// CanWriteEOF reports whether WriteEOF is supported.
	CanWriteEOF() bool
	// Abort closes at once, dropping buffered data; ConnectionLost is
	// called with nil, as asyncio's abort().
	Abort()

	// SetWriteBufferLimits sets the water marks: a negative high means the
	// default (64 KiB, or 4x low if low is set), a negative low a quarter
	// of high. It returns ErrBadWriteLimits unless high >= low >= 0.
	SetWriteBufferLimits(high, low int) error
	// WriteBufferLimits returns (low, high), get_write_buffer_limits.
	WriteBufferLimits() (low, high int)
	// WriteBufferSize is get_write_buffer_size: bytes buffered, not yet
	// taken by the kernel.
	WriteBufferSize() int
}

// Transport is asyncio.Transport: a bidirectional stream (TCP, a Unix
// socket, TLS) read and written by the loop. Writes never block: what the
// socket does not take at once is buffered and sent as it becomes
// writable; the protocol is paused and resumed at the water marks
// ([WriteFlowControl]).
type Transport interface {
	ReadTransport
	WriteTransport

	// SetProtocol and Protocol are set_protocol and get_protocol: the
	// transport's callbacks go to the new protocol from now on
	// (ErrBadProtocol if it is neither kind).
	SetProtocol(p BaseProtocol) error
	Protocol() BaseProtocol
}

// DatagramTransport is asyncio.DatagramTransport: a datagram socket read
// and written by the loop.
type DatagramTransport interface {
	BaseTransport
	// SendTo sends one datagram to addr, or to the connected peer if addr
	// is nil. What the kernel does not take at once is queued, in order.
	SendTo(p []byte, addr net.Addr) error
	// Abort closes at once, dropping queued datagrams.
	Abort()
	// WriteBufferSize is the bytes of datagrams queued, not yet sent.
	WriteBufferSize() int
}

// addrs are a transport's socket addresses, read once when it is made.
type addrs struct{ laddr, raddr net.Addr }

// LocalAddr implements BaseTransport: the socket's name (sockname).
func (a *addrs) LocalAddr() net.Addr { return a.laddr }

// RemoteAddr implements BaseTransport: the peer (peername), nil if none.
func (a *addrs) RemoteAddr() net.Addr { return a.raddr }

// addrInfo is get_extra_info's "peername" or "sockname".
func (a *addrs) addrInfo(name string) any {
	if name == "peername" {
		return a.raddr
	}
	return a.laddr
}

// flowControl is the transport half of asyncio's flow control
// (_FlowControlMixin): the water marks, whether the protocol has been told
// to pause writing, and its callbacks if it has any. Every transport
// embeds one and calls pauseIfAbove after buffering, resumeIfBelow after
// sending.
type flowControl struct {
	flow      WriteFlowControl
	high, low int
	wpaused   bool // the protocol was told to pause writing
}

// WriteBufferLimits is get_write_buffer_limits: (low, high).
func (f *flowControl) WriteBufferLimits() (low, high int) { return f.low, f.high }

// setLimits is set_write_buffer_limits without the pause check that
// follows it.
func (f *flowControl) setLimits(high, low int) error {
	h, lo, err := setLimits(high, low)
	if err != nil {
		return err
	}
	f.high, f.low = h, lo
	return nil
}

// pauseIfAbove is _maybe_pause_protocol for a buffer of size bytes.
func (f *flowControl) pauseIfAbove(size int, l *Loop, t BaseTransport, proto any) {
	if size <= f.high || f.wpaused {
		return
	}
	f.wpaused = true
	if f.flow != nil {
		f.call(l, t, proto, f.flow.PauseWriting, "protocol.pause_writing() failed")
	}
}

// resumeIfBelow is _maybe_resume_protocol.
func (f *flowControl) resumeIfBelow(size int, l *Loop, t BaseTransport, proto any) {
	if !f.wpaused || size > f.low {
		return
	}
	f.wpaused = false
	if f.flow != nil {
		f.call(l, t, proto, f.flow.ResumeWriting, "protocol.resume_writing() failed")
	}
}

// call runs a flow-control callback; a panic in it is reported, and the
// transport goes on, as asyncio's.
func (f *flowControl) call(l *Loop, t BaseTransport, proto any, fn func(), msg string) {
	defer func() {
		if r := recover(); r != nil {
			l.CallExceptionHandler(ExceptionContext{Message: msg, Err: newPanicError(r), Transport: t, Protocol: proto})
		}
	}()
	fn()
}

// setLimits computes asyncio's _set_write_buffer_limits.
func setLimits(high, low int) (int, int, error) {
	if high < 0 {
		if low < 0 {
			high = DefaultWriteHighWater
		} else {
			high = 4 * low
		}
	}
	if low < 0 {
		low = high / 4
	}
	if !(high >= low && low >= 0) {
		return 0, 0, ErrBadWriteLimits
	}
	return high, low, nil
}

package loop

import (
	"errors"
	"net"
)

// Protocol is asyncio.Protocol: the callbacks a stream transport
// ([Transport]) makes into the code that speaks over it. Every method runs
// on the loop's goroutine, in asyncio's order: ConnectionMade once, then
// DataReceived any number of times, then EOFReceived at most once, then
// ConnectionLost once (with nil for a clean close, or the error that ended
// the connection). A method must not block; it may schedule tasks.
//
// DataReceived's data is the transport's read buffer, valid only until
// DataReceived returns: copy what must outlive the call (asyncio hands out
// a fresh bytes object; reusing one buffer is what lets a loop echo
// without allocating). EOFReceived is called when the peer has closed its
// writing side: return false and the transport closes itself (asyncio's
// None), true to keep it open for writing (half-close).
//
// A protocol that also implements [WriteFlowControl] is told when its
// transport's write buffer crosses the water marks. Embed [NopProtocol] to
// get no-op methods for those you do not need.
type Protocol interface {
	BaseProtocol
	DataReceived(data []byte)
	EOFReceived() bool
}

// BaseProtocol is what every stream protocol has, asyncio.BaseProtocol's
// connection callbacks. Transports and protocol factories take a
// BaseProtocol, which must also be a [Protocol] or a [BufferedProtocol]
// (a [BufferedProtocol] is used as one if it is both); anything else is
// refused with ErrBadProtocol.
type BaseProtocol interface {
	ConnectionMade(t Transport)
	ConnectionLost(err error)
}

// ErrBadProtocol is returned where a BaseProtocol is neither a Protocol
// nor a BufferedProtocol (or is nil).
var ErrBadProtocol = errors.New("loop: protocol must be a Protocol or a BufferedProtocol")

// BufferedProtocol is asyncio.BufferedProtocol: the transport reads into a
// buffer the protocol provides. GetBuffer returns a buffer of any non-zero
// length (sizeHint is the size the transport would like, or -1);
// BufferUpdated reports that its first n bytes were filled. A transport
// given a protocol that implements BufferedProtocol uses it instead of
// DataReceived. GetBuffer returning an empty slice is an error, reported
// to the exception handler, that aborts the connection, as asyncio's
// "get_buffer() returned an empty buffer".
type BufferedProtocol interface {
	BaseProtocol
	GetBuffer(sizeHint int) []byte
	BufferUpdated(n int)
	EOFReceived() bool
}

// WriteFlowControl is the flow-control half of asyncio.BaseProtocol,
// optional in Go: a transport whose protocol implements it calls
// PauseWriting when its write buffer grows past the high-water mark and
// ResumeWriting when it drains to the low-water mark (see
// [Transport.SetWriteBufferLimits]). Both run on the loop.
type WriteFlowControl interface {
	PauseWriting()
	ResumeWriting()
}

// DatagramProtocol is asyncio.DatagramProtocol, for a [DatagramTransport]
// (UDP, or a Unix datagram socket). DatagramReceived's data is valid only
// until it returns, as for [Protocol.DataReceived]. ErrorReceived reports
// an error a send or receive met (ICMP port unreachable shows up as
// ECONNREFUSED on a connected socket); the transport stays open.
type DatagramProtocol interface {
	ConnectionMade(t DatagramTransport)
	DatagramReceived(data []byte, addr net.Addr)
	ErrorReceived(err error)
	ConnectionLost(err error)
}

// NopProtocol has a no-op method for each callback of [Protocol] and
// [WriteFlowControl]. Embed it in a protocol and define only what it needs;
// EOFReceived returns false (the transport closes itself).
type NopProtocol struct{}

// ConnectionMade does nothing.
func (NopProtocol) ConnectionMade(Transport) {}

// DataReceived does nothing.
func (NopProtocol) DataReceived([]byte) {}

// EOFReceived returns false: the transport closes.
func (NopProtocol) EOFReceived() bool { return false }

// ConnectionLost does nothing.
func (NopProtocol) ConnectionLost(error) {}

// PauseWriting does nothing.
func (NopProtocol) PauseWriting() {}

// ResumeWriting does nothing.
func (NopProtocol) ResumeWriting() {}

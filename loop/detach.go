package loop

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// Taking a connection out of the loop without closing it, and putting one
// back with the bytes it had already read: what handing a live connection
// to another process needs (the seed's "pull the connection out of asyncio
// without closing it"), and what asyncio has no API for. The socket keeps
// one owner throughout: the transport until DetachTransport returns it, the
// caller then, a new transport after AttachSocket.

// Errors of detaching.
var (
	// ErrDetached is what the reads of a StreamReader return once
	// DetachStreams took its connection away.
	ErrDetached = errors.New("loop: the connection was detached from the loop")
	// ErrDetachUnsent is DetachTransport of a transport whose write buffer
	// still holds bytes the kernel has not taken: let it drain first.
	ErrDetachUnsent = errors.New("loop: the transport has unsent bytes: let its write buffer drain before detaching it")
	// ErrDetachUnsupported is DetachTransport of a transport that is not
	// a plain socket transport (TLS keeps its session in this process), or
	// one closing or closed.
	ErrDetachUnsupported = errors.New("loop: only an open plain socket transport can be detached")
)

// DetachTransport takes the socket out of a socket transport without
// closing it, and returns it, the caller's from now on: the loop stops
// watching it (it is off the poller), and the transport ends quietly. Its
// protocol hears nothing more, not even ConnectionLost: it must know it
// gave its connection away. The transport is closing (IsClosing), its
// writes return ErrTransportClosed, and its server (StartServer's,
// CreateServer's) no longer counts it. Bytes the protocol was given are
// its own to pass on; bytes still in the kernel stay in the socket.
//
// The write buffer must be empty (WriteBufferSize() == 0, else
// ErrDetachUnsent): set the write limits to 0 and wait for ResumeWriting,
// or Drain a StreamWriter after SetWriteBufferLimits(0, 0). A TLS
// transport, a closing one or one that wrote EOF cannot be detached
// (ErrDetachUnsupported). Loop goroutine only.
func DetachTransport(t Transport) (*Socket, error) {
	st, ok := t.(*socketTransport)
	if !ok || st.sock == nil || st.closing || st.connLost > 0 || st.eof {
		return nil, fmt.Errorf("%w: %v", ErrDetachUnsupported, t)
	}
	if st.WriteBufferSize() > 0 {
		return nil, fmt.Errorf("%w (%d bytes)", ErrDetachUnsent, st.WriteBufferSize())
	}
	sock, _, srv, err := st.detachSocket()
	if err != nil {
		return nil, err
	}
	if srv != nil {
		srv.detach(st)
	}
	sock.lp = nil // free for another loop, or a task's sock_* calls
	return sock, nil
}

// DetachStreams takes the connection of a stream pair out of the loop:
// the socket, as DetachTransport returns it, and the bytes the reader had
// received and nobody had read yet (the buffer of w's StreamReader), to go
// with it, first. The pair ends: the reader's reads return ErrDetached,
// Drain returns it too, WaitClosed returns nil, and Close does nothing. A
// task waiting in a read of the reader when the connection is detached
// gets ErrDetached and has taken nothing: wait for no read while
// detaching. w's write buffer must be empty, as DetachTransport's. Loop
// goroutine only.
func DetachStreams(w *StreamWriter) (*Socket, []byte, error) {
	p := w.proto
	if p == nil || p.connLost {
		return nil, nil, fmt.Errorf("%w: the connection is lost", ErrDetachUnsupported)
	}
	sock, err := DetachTransport(w.transport)
	if err != nil {
		return nil, nil, err
	}
	var buffered []byte
	if r := w.reader; r != nil {
		if n := r.Buffered(); n > 0 {
			buffered = slices.Clone(r.arr[r.off:])
			r.discard(n)
		}
		r.SetException(ErrDetached)
	}
	p.ConnectionLost(nil)
	return sock, buffered, nil
}

// AttachSocket is [Loop.ConnectAcceptedSocket] for a connection that
// comes with bytes already read from it (a connection DetachTransport or
// DetachStreams took out of a loop, one received from another process): a
// transport over sock for a protocol from factory, whose ConnectionMade is
// followed by one DataReceived of buffered (or, for a BufferedProtocol,
// GetBuffer and BufferUpdated until all of it is in) before anything the
// transport reads from the socket. buffered is copied; it is delivered
// even if the protocol paused reading in ConnectionMade, and dropped if it
// closed the transport there. No TLS: a TLS session cannot change hands.
// ctx is a task's of l. sock is the transport's from now on, and is
// closed if AttachSocket fails.
func (l *Loop) AttachSocket(ctx context.Context, factory func() BaseProtocol, sock *Socket, buffered []byte) (Transport, BaseProtocol, error) {
	if runningTask(ctx) == nil {
		if sock != nil {
			sock.Close() // the caller gave it up: it is closed, not lost
		}
		return nil, nil, ErrNotInTask
	}
	proto, err := protocolFor(sock, factory)
	if err != nil {
		return nil, nil, err
	}
	waiter := NewFuture[struct{}](l)
	t, err := l.newSocketTransport(sock, proto, waiter, nil)
	if err != nil {
		sock.Close()
		return nil, nil, err
	}
	if len(buffered) > 0 {
		// After connectionMade and startReading, in the same batch of
		// callbacks: the loop polls the socket only after it.
		data := slices.Clone(buffered)
		l.CallSoon(func() { t.feedBuffered(data) })
	}
	if _, err := waiter.Await(ctx); err != nil {
		t.Close()
		return nil, nil, err
	}
	return t, proto, nil
}

// feedBuffered gives the protocol the bytes its connection came with, as
// if the transport had read them.
func (t *socketTransport) feedBuffered(data []byte) {
	if t.connLost > 0 || t.closing || !t.connected {
		return
	}
	if t.p != nil {
		defer t.recoverProto("protocol.data_received() call failed.")
		t.p.DataReceived(data)
		return
	}
	for len(data) > 0 && !t.closing && t.connLost == 0 {
		var buf []byte
		func() {
			defer t.recoverProto("protocol.get_buffer() call failed.")
			buf = t.bp.GetBuffer(len(data))
			if len(buf) == 0 {
				t.fatalError(errors.New("loop: get_buffer() returned an empty buffer"), "Fatal error: protocol.get_buffer() call failed.")
				buf = nil
			}
		}()
		if buf == nil {
			return
		}
		n := copy(buf, data)
		data = data[n:]
		func() {
			defer t.recoverProto("protocol.buffer_updated() call failed.")
			t.bp.BufferUpdated(n)
		}()
	}
}

// AttachStreams is asyncio.open_connection(sock=sock) for a connection
// that comes with bytes already read from it: a reader and a writer over
// sock, the reader's buffer holding buffered first (copied), then what
// arrives on the socket. limit is the reader's limit (<= 0: 64 KiB). It is
// DetachStreams's inverse: the pair it returns may be detached again. ctx
// is a task's.
func AttachStreams(ctx context.Context, sock *Socket, buffered []byte, limit int) (*StreamReader, *StreamWriter, error) {
	l, err := RunningLoop(ctx)
	if err != nil {
		if sock != nil {
			sock.Close()
		}
		return nil, nil, err
	}
	r := NewStreamReader(limit)
	r.FeedData(buffered)
	p := newStreamProtocol(l, r, nil, nil)
	proto := p.asProtocol(false)
	t, _, err := l.AttachSocket(ctx, func() BaseProtocol { return proto }, sock, nil)
	if err != nil {
		return nil, nil, err
	}
	return r, &StreamWriter{transport: t, proto: p, reader: r}, nil
}

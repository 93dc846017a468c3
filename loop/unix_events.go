package loop

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// CPython's asyncio/unix_events.py, pipe half: _UnixReadPipeTransport and
// _UnixWritePipeTransport, and the loop's connect_read_pipe and
// connect_write_pipe. Subprocesses (base_subprocess.go) use them for a
// child's stdin, stdout and stderr.

// ErrNotPipe is asyncio's ValueError "Pipe transport is for pipes/sockets
// only.": ConnectReadPipe and ConnectWritePipe take a pipe, a socket or a
// character device.
var ErrNotPipe = errors.New("loop: Pipe transport is for pipes/sockets only")

// pipeFD returns f's descriptor, made non-blocking, without the blocking
// mode os.File.Fd sets.
func pipeFD(f *os.File) (int, error) {
	if f == nil {
		return -1, fmt.Errorf("%w: nil file", ErrNotPipe)
	}
	fi, err := f.Stat()
	if err != nil {
		return -1, err
	}
	if m := fi.Mode(); m&(os.ModeNamedPipe|os.ModeSocket|os.ModeCharDevice) == 0 {
		return -1, fmt.Errorf("%w: %s", ErrNotPipe, f.Name())
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	if err := rc.Control(func(d uintptr) { fd = int(d) }); err != nil {
		return -1, err
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		return -1, os.NewSyscallError("fcntl", err)
	}
	return fd, nil
}

// pipeEnd is what both pipe transports share: the file, its descriptor,
// the protocol, and the one-shot end.
type pipeEnd struct {
	l        *Loop
	file     *os.File // closed once, when the connection is lost
	fd       int
	proto    BaseProtocol
	closing  bool
	connLost bool
	made     bool
	self     loopTransport // the outer transport, as the loop's registry knows it
}

// closeFile closes the descriptor exactly once.
func (e *pipeEnd) closeFile() {
	if e.file != nil {
		e.l.setIO(e.fd, evRead, nil, e)
		e.l.setIO(e.fd, evWrite, nil, e)
		e.file.Close()
		e.file = nil
	}
}

func (e *pipeEnd) register(t loopTransport) {
	e.self = t
	e.l.addTransport(t)
}

// IsClosing implements BaseTransport.
func (e *pipeEnd) IsClosing() bool { return e.closing }

// LocalAddr implements BaseTransport: a pipe has no address.
func (e *pipeEnd) LocalAddr() net.Addr { return nil }

// RemoteAddr implements BaseTransport: a pipe has no address.
func (e *pipeEnd) RemoteAddr() net.Addr { return nil }

// GetExtraInfo implements BaseTransport: "pipe" is the *os.File.
func (e *pipeEnd) GetExtraInfo(name string) any {
	if name == "pipe" && e.file != nil {
		return e.file
	}
	return nil
}

// Protocol is get_protocol.
func (e *pipeEnd) Protocol() BaseProtocol { return e.proto }

func (e *pipeEnd) forceClose() {
	e.closing = true
	e.connLost = true
	e.closeFile()
	delete(e.l.transports, e.self)
}

// lose is _call_connection_lost: the protocol hears of the end, then the
// pipe is closed.
func (e *pipeEnd) lose(err error) {
	defer func() {
		e.closeFile()
		delete(e.l.transports, e.self)
	}()
	if e.made {
		e.proto.ConnectionLost(err)
	}
}

func (e *pipeEnd) recoverProto(msg string, t BaseTransport) {
	if r := recover(); r != nil {
		err := newPanicError(r)
		e.l.CallExceptionHandler(ExceptionContext{Message: "Fatal error: " + msg, Err: err, Transport: t, Protocol: e.proto})
		e.closeWith(err)
	}
}

// closeWith is _close(exc): the end comes in the next iteration.
func (e *pipeEnd) closeWith(err error) {
	if e.connLost {
		return
	}
	e.closing = true
	e.connLost = true
	e.l.setIO(e.fd, evRead, nil, e)
	e.l.setIO(e.fd, evWrite, nil, e)
	e.l.CallSoon(func() { e.lose(err) })
}

// fatal is _fatal_error: EIO on a pipe is the other end going away (a
// terminal closed, say) and is not reported; other OS errors are.
func (e *pipeEnd) fatal(err error, msg string, t BaseTransport) {
	if !errors.Is(err, unix.EIO) {
		e.l.CallExceptionHandler(ExceptionContext{Message: msg, Err: err, Transport: t, Protocol: e.proto})
	}
	e.closeWith(err)
}

// readPipeTransport is _UnixReadPipeTransport: a ReadTransport over the
// reading end of a pipe.
type readPipeTransport struct {
	pipeEnd
	p       Protocol
	paused  bool
	onReady func()
}

// ConnectReadPipe is connect_read_pipe: the loop reads f (a pipe, socket
// or character device) and calls the protocol's DataReceived, then
// EOFReceived and ConnectionLost at its end. The transport owns f from
// now on and closes it. Protocol.DataReceived's slice is valid only during
// the call, as for sockets.
func (l *Loop) ConnectReadPipe(ctx context.Context, factory func() Protocol, f *os.File) (ReadTransport, Protocol, error) {
	fd, err := pipeFDInTask(ctx, f)
	if err != nil {
		return nil, nil, err
	}
	p := factory()
	if p == nil {
		return nil, nil, ErrBadProtocol
	}
	t := l.newReadPipe(f, fd, p)
	if err := l.awaitMade(ctx, t.Close); err != nil {
		return nil, nil, err
	}
	return t, p, nil
}

// pipeFDInTask is the check both connect_*_pipe make: called from a task,
// with a pipe.
func pipeFDInTask(ctx context.Context, f *os.File) (int, error) {
	if runningTask(ctx) == nil {
		return -1, ErrNotInTask
	}
	return pipeFD(f)
}

// awaitMade waits one iteration, until the callbacks queued before it
// (ConnectionMade) have run, as asyncio's waiter future; if ctx ends
// first, abort undoes the connection.
func (l *Loop) awaitMade(ctx context.Context, abort func()) error {
	waiter := NewFuture[struct{}](l)
	l.CallSoon(func() {
		if !waiter.Done() {
			waiter.SetResult(struct{}{})
		}
	})
	if _, err := waiter.Await(ctx); err != nil {
		abort()
		return err
	}
	return nil
}

func (l *Loop) newReadPipe(f *os.File, fd int, p Protocol) *readPipeTransport {
	t := &readPipeTransport{pipeEnd: pipeEnd{l: l, file: f, fd: fd, proto: p}, p: p}
	t.onReady = t.readReady
	t.register(t)
	// ConnectionMade runs even if the transport is closed before it: it
	// was queued first, so it comes before ConnectionLost, as asyncio's.
	l.CallSoon(func() {
		t.made = true
		defer t.recoverProto("protocol.connection_made() call failed.", t)
		t.proto.ConnectionMade(t)
	})
	l.CallSoon(func() {
		if !t.closing && !t.paused {
			t.l.setIO(t.fd, evRead, t.onReady, &t.pipeEnd)
		}
	})
	return t
}

func (t *readPipeTransport) String() string {
	return fmt.Sprintf("<read pipe transport fd=%d closing=%v>", t.fd, t.closing)
}

func (t *readPipeTransport) readReady() {
	if t.connLost {
		return
	}
	buf := t.l.readBuffer()
	n, err := unix.Read(t.fd, buf)
	switch {
	case err == unix.EAGAIN || err == unix.EINTR:
	case err != nil:
		t.fatal(os.NewSyscallError("read", err), "Fatal read error on pipe transport", t)
	case n == 0:
		t.closing = true
		t.l.setIO(t.fd, evRead, nil, &t.pipeEnd)
		t.connLost = true
		t.l.CallSoon(func() {
			func() {
				defer t.recoverProto("protocol.eof_received() call failed.", t)
				t.p.EOFReceived()
			}()
			t.lose(nil)
		})
	default:
		defer t.recoverProto("protocol.data_received() call failed.", t)
		t.p.DataReceived(buf[:n])
	}
}

// PauseReading implements ReadTransport.
func (t *readPipeTransport) PauseReading() {
	if t.closing || t.paused {
		return
	}
	t.paused = true
	t.l.setIO(t.fd, evRead, nil, &t.pipeEnd)
}

// ResumeReading implements ReadTransport.
func (t *readPipeTransport) ResumeReading() {
	if t.closing || !t.paused {
		return
	}
	t.paused = false
	t.l.setIO(t.fd, evRead, t.onReady, &t.pipeEnd)
}

// IsReading implements ReadTransport.
func (t *readPipeTransport) IsReading() bool { return !t.paused && !t.closing }

// Close implements BaseTransport.
func (t *readPipeTransport) Close() {
	if !t.closing {
		t.closeWith(nil)
	}
}

// SetProtocol is set_protocol; the protocol must be a Protocol.
func (t *readPipeTransport) SetProtocol(p BaseProtocol) error {
	sp, ok := p.(Protocol)
	if !ok || p == nil {
		return fmt.Errorf("%w: %T", ErrBadProtocol, p)
	}
	t.proto, t.p = p, sp
	return nil
}

// writePipeTransport is _UnixWritePipeTransport: a WriteTransport over
// the writing end of a pipe. The loop also watches the end for reading:
// a pipe's writing end polls readable (an error) once its reader has
// closed, which ends the transport before the next write fails.
type writePipeTransport struct {
	pipeEnd
	flowControl
	wbuf     []byte
	whead    int
	writerOn bool
	onWrite  func()
	onRead   func()
}

// ConnectWritePipe is connect_write_pipe: writes to the transport go to f
// (a pipe, socket or character device) without blocking, buffered beyond
// what it takes at once, with the water marks of a socket transport. The
// protocol hears ConnectionLost when the transport closes or the reading
// end goes away (with ErrBrokenPipe if data was still buffered). The
// transport owns f from now on and closes it.
func (l *Loop) ConnectWritePipe(ctx context.Context, factory func() BaseProtocol, f *os.File) (WriteTransport, BaseProtocol, error) {
	fd, err := pipeFDInTask(ctx, f)
	if err != nil {
		return nil, nil, err
	}
	p := factory()
	if p == nil {
		return nil, nil, ErrBadProtocol
	}
	t := l.newWritePipe(f, fd, p)
	if err := l.awaitMade(ctx, t.Abort); err != nil {
		return nil, nil, err
	}
	return t, p, nil
}

// ErrBrokenPipe is BrokenPipeError: the reading end of a pipe closed with
// data still to write. It matches syscall.EPIPE with errors.Is.
var ErrBrokenPipe error = brokenPipeError{}

type brokenPipeError struct{}

func (brokenPipeError) Error() string        { return "loop: Broken pipe" }
func (brokenPipeError) Is(target error) bool { return target == unix.EPIPE }

func (l *Loop) newWritePipe(f *os.File, fd int, p BaseProtocol) *writePipeTransport {
	t := &writePipeTransport{pipeEnd: pipeEnd{l: l, file: f, fd: fd, proto: p}}
	t.flow, _ = p.(WriteFlowControl)
	t.high, t.low, _ = setLimits(-1, -1)
	t.onWrite = t.writeReady
	t.onRead = t.readReady
	t.register(t)
	// asyncio watches the end for reading only on pipes and sockets; a
	// character device would poll readable with data of its own.
	watch := true
	if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		watch = false
	}
	if watch {
		l.setIO(fd, evRead, t.onRead, &t.pipeEnd)
	}
	l.CallSoon(func() {
		t.made = true
		defer t.recoverProto("protocol.connection_made() call failed.", t)
		t.proto.ConnectionMade(t)
	})
	return t
}

func (t *writePipeTransport) String() string {
	return fmt.Sprintf("<write pipe transport fd=%d closing=%v bufsize=%d>", t.fd, t.closing, t.WriteBufferSize())
}

// readReady is _read_ready: the reading end closed.
func (t *writePipeTransport) readReady() {
	if t.connLost {
		return
	}
	if t.WriteBufferSize() > 0 {
		t.closeWith(ErrBrokenPipe)
	} else {
		t.closeWith(nil)
	}
}

// Write implements WriteTransport.
func (t *writePipeTransport) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if t.connLost || t.closing {
		if t.connLost {
			return 0, ErrTransportClosed
		}
		return 0, ErrWriteAfterEOF
	}
	if t.WriteBufferSize() == 0 {
		n, err := unix.Write(t.fd, p)
		if err != nil && err != unix.EAGAIN && err != unix.EINTR {
			t.writeFailed(err)
			return 0, ErrTransportClosed
		}
		if n == len(p) {
			return n, nil
		}
		n = max(n, 0)
		t.wbuf = append(t.wbuf[:0], p[n:]...)
		t.whead = 0
		t.setWriter(true)
	} else {
		t.wbuf = append(t.wbuf, p...)
	}
	t.pauseIfAbove(t.WriteBufferSize(), t.l, t, t.proto)
	return len(p), nil
}

// writeFailed: EPIPE is the reader's going away (ConnectionLost with
// ErrBrokenPipe, not reported); other errors are reported.
func (t *writePipeTransport) writeFailed(err error) {
	t.wbuf, t.whead = nil, 0
	t.setWriter(false)
	if err == unix.EPIPE {
		t.closeWith(ErrBrokenPipe)
		return
	}
	t.fatal(os.NewSyscallError("write", err), "Fatal write error on pipe transport", t)
}

// Writelines implements WriteTransport.
func (t *writePipeTransport) Writelines(bufs [][]byte) error {
	for _, b := range bufs {
		if _, err := t.Write(b); err != nil {
			return err
		}
	}
	return nil
}

func (t *writePipeTransport) setWriter(on bool) {
	if t.writerOn == on || t.file == nil {
		return
	}
	t.writerOn = on
	fn := t.onWrite
	if !on {
		fn = nil
	}
	t.l.setIO(t.fd, evWrite, fn, &t.pipeEnd)
}

func (t *writePipeTransport) writeReady() {
	if t.connLost {
		return
	}
	for t.whead < len(t.wbuf) {
		n, err := unix.Write(t.fd, t.wbuf[t.whead:])
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			break
		}
		if err != nil {
			t.writeFailed(err)
			return
		}
		t.whead += n
	}
	if t.whead == len(t.wbuf) {
		t.wbuf, t.whead = t.wbuf[:0], 0
		if cap(t.wbuf) > 1<<20 {
			t.wbuf = nil
		}
	}
	t.resumeIfBelow(t.WriteBufferSize(), t.l, t, t.proto)
	if t.WriteBufferSize() == 0 {
		t.setWriter(false)
		if t.closing {
			t.closeWith(nil)
		}
	}
}

// WriteEOF implements WriteTransport: the pipe closes once the buffer is
// flushed (a pipe has no half-close).
func (t *writePipeTransport) WriteEOF() error {
	if t.closing {
		return nil
	}
	t.closing = true
	if t.WriteBufferSize() == 0 {
		t.connLost = true
		t.l.setIO(t.fd, evRead, nil, &t.pipeEnd)
		t.l.CallSoon(func() { t.lose(nil) })
	}
	return nil
}

// CanWriteEOF implements WriteTransport.
func (t *writePipeTransport) CanWriteEOF() bool { return true }

// Close implements BaseTransport: WriteEOF.
func (t *writePipeTransport) Close() { _ = t.WriteEOF() }

// Abort implements WriteTransport.
func (t *writePipeTransport) Abort() {
	t.wbuf, t.whead = nil, 0
	t.setWriter(false)
	t.closeWith(nil)
}

// SetWriteBufferLimits implements WriteTransport.
func (t *writePipeTransport) SetWriteBufferLimits(high, low int) error {
	if err := t.setLimits(high, low); err != nil {
		return err
	}
	t.pauseIfAbove(t.WriteBufferSize(), t.l, t, t.proto)
	return nil
}

// WriteBufferSize implements WriteTransport.
func (t *writePipeTransport) WriteBufferSize() int { return len(t.wbuf) - t.whead }

// SetProtocol is set_protocol.
func (t *writePipeTransport) SetProtocol(p BaseProtocol) error {
	if p == nil {
		return ErrBadProtocol
	}
	t.proto = p
	t.flow, _ = p.(WriteFlowControl)
	return nil
}

// The write pipe is the stdin of a subprocess's StreamWriter, which takes
// a Transport: reading methods do nothing on it.

// PauseReading does nothing: a write pipe is not read.
func (t *writePipeTransport) PauseReading() {}

// ResumeReading does nothing: a write pipe is not read.
func (t *writePipeTransport) ResumeReading() {}

// IsReading is false: a write pipe is not read.
func (t *writePipeTransport) IsReading() bool { return false }

// ErrNotWritable is the error of writing to a read pipe's transport.
var ErrNotWritable = errors.New("loop: transport is not writable (a read pipe)")

// A read pipe's protocol is a Protocol, whose ConnectionMade takes a
// Transport: the writing methods refuse on it.

// Write returns ErrNotWritable.
func (t *readPipeTransport) Write([]byte) (int, error) { return 0, ErrNotWritable }

// Writelines returns ErrNotWritable.
func (t *readPipeTransport) Writelines([][]byte) error { return ErrNotWritable }

// WriteEOF returns ErrNotWritable.
func (t *readPipeTransport) WriteEOF() error { return ErrNotWritable }

// CanWriteEOF is false.
func (t *readPipeTransport) CanWriteEOF() bool { return false }

// Abort closes the pipe at once.
func (t *readPipeTransport) Abort() { t.closeWith(nil) }

// SetWriteBufferLimits returns ErrNotWritable.
func (t *readPipeTransport) SetWriteBufferLimits(int, int) error { return ErrNotWritable }

// WriteBufferLimits is (0, 0).
func (t *readPipeTransport) WriteBufferLimits() (low, high int) { return 0, 0 }

// WriteBufferSize is 0.
func (t *readPipeTransport) WriteBufferSize() int { return 0 }

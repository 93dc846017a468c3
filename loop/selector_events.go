package loop

import (
	"errors"
	"fmt"
	"math"

	"github.com/asyncgo/asyncgo/internal/eventfd"
)

// CPython's asyncio/selector_events.py: the loop's registry of descriptors
// (add_reader and friends), the sock_* coroutines, and the socket
// transports (selector_transport.go). The OS half, epoll or poll(2), is in
// poll_linux.go and poll_other.go.

const (
	evRead  uint8 = 1
	evWrite uint8 = 2
)

// Errors of the descriptor registry.
var (
	// ErrBadFd is "Invalid file descriptor".
	ErrBadFd = errors.New("loop: Invalid file descriptor")
	// ErrFdInUse is "File descriptor is used by transport": a descriptor a
	// transport or a pending sock_* call owns cannot get another reader or
	// writer.
	ErrFdInUse = errors.New("loop: File descriptor is used by transport")
)

// fdEntry is one registered descriptor: its callbacks and what the poller
// watches it for. rrec and wrec cancel a callback already queued for this
// iteration when it is removed or replaced, as asyncio cancels the handle.
type fdEntry struct {
	fd             int
	ev             uint8
	reader, writer func()
	rrec, wrec     *handleRec
	owner          any // a transport or socket that owns the descriptor
}

// openPoller makes the poller on first use, so that a loop with no
// descriptors pays nothing for it.
func (l *Loop) openPoller() error {
	if l.pollOpen {
		return nil
	}
	wake := -1
	if l.wakeFD != nil {
		if fd, err := l.wakeFD.PollFD(); err == nil {
			wake = fd
		}
	}
	if err := l.poll_.open(wake); err != nil {
		return err
	}
	l.wakeRaw = wake
	l.pollOpen = true
	return nil
}

func (l *Loop) entry(fd int) *fdEntry {
	if fd >= 0 && fd < len(l.fds) {
		return l.fds[fd]
	}
	return nil
}

// setIO registers fn as fd's reader (ev evRead) or writer (evWrite),
// replacing the previous one; a nil fn removes it. It reports whether a
// callback was registered before.
func (l *Loop) setIO(fd int, ev uint8, fn func(), owner any) (had bool, err error) {
	if fd < 0 {
		return false, fmt.Errorf("%w: %d", ErrBadFd, fd)
	}
	e := l.entry(fd)
	if e == nil {
		if fn == nil {
			return false, nil
		}
		if l.closed.Load() {
			return false, ErrLoopClosed // a closed loop opens no poller again
		}
		if err := l.openPoller(); err != nil {
			return false, err
		}
		for fd >= len(l.fds) {
			l.fds = append(l.fds, nil)
		}
		e = &fdEntry{fd: fd}
		l.fds[fd] = e
	}
	if fn != nil && e.owner != owner && e.owner != nil {
		return false, fmt.Errorf("%w: %d", ErrFdInUse, fd)
	}
	cb, rec := &e.reader, &e.rrec
	if ev == evWrite {
		cb, rec = &e.writer, &e.wrec
	}
	had = *cb != nil
	if *rec != nil {
		(*rec).cancelled = true // a call already queued does not run
		*rec = nil
	}
	*cb = fn
	want := e.ev &^ ev
	if fn != nil {
		want |= ev
		*rec = &handleRec{}
		e.owner = owner
	}
	if want != e.ev {
		if err := l.poll_.ctl(fd, e.ev, want); err != nil {
			*cb = nil
			e.ev &^= ev
			l.dropEntry(e)
			return had, err
		}
		if e.ev == 0 {
			l.nfds++
		}
		e.ev = want
		if want == 0 {
			l.nfds--
		}
	}
	l.dropEntry(e)
	return had, nil
}

func (l *Loop) dropEntry(e *fdEntry) {
	if e.ev == 0 && e.reader == nil && e.writer == nil {
		e.owner = nil
		l.fds[e.fd] = nil
	}
}

// AddReader is add_reader: fn runs on the loop whenever fd is readable (or
// has an error or hang-up pending), until RemoveReader; it replaces fd's
// previous reader. Readiness is level-triggered: fn runs again in the next
// iteration while there is still something to read. The descriptor must be
// non-blocking and stays the caller's: the loop never closes it (close it
// after RemoveReader). A descriptor a transport or a pending sock_* call
// owns returns ErrFdInUse; a closed loop ErrLoopClosed. Loop goroutine
// only.
func (l *Loop) AddReader(fd int, fn func()) error {
	if err := l.checkIO(fn); err != nil {
		return err
	}
	_, err := l.setIO(fd, evRead, fn, nil)
	return err
}

// RemoveReader is remove_reader: it reports whether fd had a reader. A
// call of the reader already due in this iteration does not run.
func (l *Loop) RemoveReader(fd int) bool { return l.removeIO(fd, evRead) }

// AddWriter is add_writer: fn runs whenever fd is writable, until
// RemoveWriter. As AddReader otherwise.
func (l *Loop) AddWriter(fd int, fn func()) error {
	if err := l.checkIO(fn); err != nil {
		return err
	}
	_, err := l.setIO(fd, evWrite, fn, nil)
	return err
}

// RemoveWriter is remove_writer: it reports whether fd had a writer.
func (l *Loop) RemoveWriter(fd int) bool { return l.removeIO(fd, evWrite) }

func (l *Loop) checkIO(fn func()) error {
	if l.stopCB == nil {
		return ErrZeroLoop
	}
	if l.closed.Load() {
		return ErrLoopClosed
	}
	if fn == nil {
		return errors.New("loop: callback must not be nil")
	}
	return nil
}

func (l *Loop) removeIO(fd int, ev uint8) bool {
	if l.stopCB == nil || l.closed.Load() {
		return false
	}
	e := l.entry(fd)
	if e == nil || e.owner != nil {
		return false // not registered, or not the caller's to remove
	}
	had, _ := l.setIO(fd, ev, nil, nil)
	return had
}

// pollIO is the loop's wait when descriptors are registered: it collects
// ready descriptors (waiting up to timeout, < 0: until something happens)
// and queues their callbacks, as _process_events.
func (l *Loop) pollIO(timeout int64) {
	if l.tsPending.Load() {
		timeout = 0
	}
	if timeout != 0 && l.virtual {
		if timeout > 0 && l.external == 0 && l.timers[0].when != math.MaxInt64 {
			// Virtual time: look, and jump to the next timer if
			// nothing is ready.
			l.poll_.wait(0)
			if l.poll_.n == 0 {
				l.jumpToTimer()
			}
			l.dispatchIO()
			return
		}
		timeout = -1
	}
	if timeout != 0 && l.wakeRaw < 0 && (timeout < 0 || timeout > maxBlindWait) {
		timeout = maxBlindWait // no wake-up descriptor: look again soon
	}
	if timeout != 0 {
		l.sleeping.Store(true)
		if l.tsPending.Load() {
			timeout = 0
		}
	}
	l.poll_.wait(timeout)
	l.sleeping.Store(false)
	// What CallSoonThreadsafe queued while the loop waited goes before the
	// events the wait brought: asyncio appends it to the ready queue at
	// once, and the selector's events after the select returns.
	l.drainThreadsafe()
	l.dispatchIO()
}

// maxBlindWait bounds a wait that CallSoonThreadsafe cannot interrupt,
// when no wake-up descriptor could be made.
const maxBlindWait = int64(10e6)

func (l *Loop) dispatchIO() {
	p := &l.poll_
	for i := 0; i < p.n; i++ {
		fd, ev := p.ready(i)
		if fd == l.wakeRaw {
			eventfd.Drain(fd)
			continue
		}
		e := l.entry(fd)
		if e == nil {
			continue
		}
		if ev&evRead != 0 && e.reader != nil {
			l.ready.push(readyItem{fn: e.reader, rec: e.rrec})
		}
		if ev&evWrite != 0 && e.writer != nil {
			l.ready.push(readyItem{fn: e.writer, rec: e.wrec})
		}
	}
	p.n = 0
}

func (l *Loop) closePoller() {
	if l.pollOpen {
		l.poll_.close()
		l.pollOpen = false
	}
	l.fds = nil
	l.nfds = 0
}

// closeTransports runs at Close: a transport still open is reported, as
// asyncio warns of an unclosed transport, and aborted, so that every
// descriptor is closed exactly once. One already closing (its
// ConnectionLost was still due) is closed without a report.
func (l *Loop) closeTransports() {
	for len(l.transports) > 0 {
		var t loopTransport
		for t = range l.transports {
			break
		}
		delete(l.transports, t)
		if bt, ok := t.(BaseTransport); ok && !bt.IsClosing() {
			l.CallExceptionHandler(ExceptionContext{Message: fmt.Sprintf("unclosed transport %v", t), Transport: bt})
		}
		t.forceClose()
	}
}

// loopTransport is what the loop knows of a transport it serves.
type loopTransport interface{ forceClose() }

package loop

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// CPython's streams.py: StreamReader, StreamWriter, the protocol between
// them and a transport, and start_server / open_connection.

// DefaultStreamLimit is asyncio's _DEFAULT_LIMIT (64 KiB): the limit of a
// StreamReader made with a limit <= 0.
const DefaultStreamLimit = 64 << 10

// Errors of the streams, with asyncio's messages.
var (
	// ErrLimitOverrun is matched by every *LimitOverrunError and by the
	// error ReadLine returns when a line is longer than the limit
	// (asyncio's ValueError with the LimitOverrunError's message).
	ErrLimitOverrun = errors.New("loop: limit overrun")
	// ErrReadInProgress is asyncio's RuntimeError "readuntil() called
	// while another coroutine is already waiting for incoming data": a
	// StreamReader serves one waiting read at a time. The errors returned
	// name the method and match it.
	ErrReadInProgress = errors.New("loop: read called while another coroutine is already waiting for incoming data")
	// ErrSeparatorEmpty is "Separator should be at least one-byte string".
	ErrSeparatorEmpty = errors.New("loop: Separator should be at least one-byte string")
	// ErrSeparatorMissing is "Separator should contain at least one
	// element": ReadUntil was given no separator.
	ErrSeparatorMissing = errors.New("loop: Separator should contain at least one element")
	// ErrReadExactlyNegative is "readexactly size can not be less than
	// zero".
	ErrReadExactlyNegative = errors.New("loop: ReadExactly size can not be less than zero")
	// ErrConnectionLost is the ConnectionResetError('Connection lost') of
	// a Drain after the connection was closed; it matches
	// syscall.ECONNRESET.
	ErrConnectionLost error = connLostError{}
)

type connLostError struct{}

func (connLostError) Error() string        { return "loop: Connection lost" }
func (connLostError) Is(target error) bool { return target == syscall.ECONNRESET }

type readBusyError struct{ fn string }

func (e readBusyError) Error() string {
	return "loop: " + e.fn + "() called while another coroutine is already waiting for incoming data"
}
func (readBusyError) Is(target error) bool { return target == ErrReadInProgress }

// lineLimitError is ReadLine's ValueError: the line was dropped.
type lineLimitError struct{ msg string }

func (e lineLimitError) Error() string      { return "loop: " + e.msg }
func (lineLimitError) Is(target error) bool { return target == ErrLimitOverrun }

// LimitOverrunError is asyncio.LimitOverrunError: ReadUntil found no
// separator within the reader's limit ("Separator is not found, and chunk
// exceed the limit"), or found it further away than the limit ("Separator
// is found, but chunk is longer than limit"). The data stays in the
// buffer; Consumed is how many bytes to read (with Read or ReadExactly) to
// get past them. It matches ErrLimitOverrun.
type LimitOverrunError struct {
	Msg      string
	Consumed int
}

// Error returns the message after the package's prefix.
func (e *LimitOverrunError) Error() string { return "loop: " + e.Msg }

// Is reports whether target is ErrLimitOverrun.
func (*LimitOverrunError) Is(target error) bool { return target == ErrLimitOverrun }

// IncompleteReadError is asyncio.IncompleteReadError: EOF came before the
// read was complete. Partial is what was read (and taken from the
// buffer); Expected is the number of bytes ReadExactly wanted, or -1 for
// ReadUntil (asyncio's None). Its text is asyncio's ("loop: 18 bytes read
// on a total of 36 expected bytes", "... of undefined expected bytes").
// asyncio's class derives from EOFError: it unwraps to io.EOF when nothing
// was read and to io.ErrUnexpectedEOF otherwise.
type IncompleteReadError struct {
	Partial  []byte
	Expected int
}

// Error returns asyncio's text: the bytes read and the bytes expected.
func (e *IncompleteReadError) Error() string {
	exp := "undefined"
	if e.Expected >= 0 {
		exp = strconv.Itoa(e.Expected)
	}
	return fmt.Sprintf("loop: %d bytes read on a total of %s expected bytes", len(e.Partial), exp)
}

// Unwrap returns io.EOF if nothing was read, else io.ErrUnexpectedEOF.
func (e *IncompleteReadError) Unwrap() error {
	if len(e.Partial) == 0 {
		return io.EOF
	}
	return io.ErrUnexpectedEOF
}

// StreamReader is asyncio.StreamReader: a buffer a transport feeds
// (FeedData, FeedEOF, SetException) and tasks read from (Read, ReadLine,
// ReadUntil, ReadExactly), each read waiting until the buffer holds what
// it needs. Only one task may wait on a reader at a time. A read whose
// task is cancelled, or whose derived ctx ends, takes nothing from the
// buffer. Loop goroutine only.
//
// The limit bounds a line (ReadLine, ReadUntil) and, doubled, the buffer:
// a reader with a transport pauses the transport's reading when it holds
// more than 2*limit bytes and resumes it when a read brings it down to the
// limit, or when a read has to wait for more.
//
// The slices the reads return belong to the caller. A large one may be
// the reader's own buffer handed over (no copy); it never shares memory
// with what the reader writes later.
type StreamReader struct {
	loopBound
	limit int

	// The buffer holds arr[off:]. lent says that a result was handed out
	// from arr[:off] without a copy: arr is then never written below off.
	arr  []byte
	off  int
	lent bool

	eof       bool
	exc       error
	transport Transport
	paused    bool

	waiters waitList // the read waiting for data: at most one pending
	want    int      // what it needs: 0 any data, n > 0 that many bytes, -1 EOF
	excWake bool     // the waiter was woken by SetException
}

// keepBuffer is the largest buffer a reader keeps for reuse once it is
// empty: one full read of a transport.
const keepBuffer = maxReadSize

// NewStreamReader is asyncio.StreamReader(limit=limit); a limit <= 0
// means DefaultStreamLimit (asyncio raises ValueError).
func NewStreamReader(limit int) *StreamReader {
	if limit <= 0 {
		limit = DefaultStreamLimit
	}
	return &StreamReader{limit: limit}
}

// Limit returns the reader's limit.
func (r *StreamReader) Limit() int { return r.limit }

// Buffered returns the number of bytes in the buffer, not yet read.
func (r *StreamReader) Buffered() int { return len(r.arr) - r.off }

// String is asyncio's repr: "<StreamReader 4 bytes eof limit=123 ...>".
func (r *StreamReader) String() string {
	info := []string{"StreamReader"}
	if n := r.Buffered(); n > 0 {
		info = append(info, fmt.Sprintf("%d bytes", n))
	}
	if r.eof {
		info = append(info, "eof")
	}
	if r.limit != DefaultStreamLimit {
		info = append(info, fmt.Sprintf("limit=%d", r.limit))
	}
	if r.waiters.live() {
		info = append(info, "waiter")
	}
	if r.exc != nil {
		info = append(info, fmt.Sprintf("exception=%v", r.exc))
	}
	if r.transport != nil {
		info = append(info, fmt.Sprintf("transport=%v", r.transport))
	}
	if r.paused {
		info = append(info, "paused")
	}
	return "<" + strings.Join(info, " ") + ">"
}

// Exception is exception(): the error set with SetException, or nil.
func (r *StreamReader) Exception() error { return r.exc }

// SetException is set_exception: every read from now on returns err, and
// the waiting read, if any, returns it at once.
func (r *StreamReader) SetException(err error) {
	r.exc = err
	r.wakeup(true)
}

// wakeup is _wakeup_waiter: the waiting read resumes in the next
// iteration.
func (r *StreamReader) wakeup(byExc bool) {
	for w := r.waiters.popFront(); w != nil; w = r.waiters.popFront() {
		if w.state == statePending {
			w.wake()
			r.excWake = byExc
			return
		}
	}
}

// SetTransport is set_transport: the transport the reader pauses and
// resumes. It panics if one is set already, as asyncio asserts.
func (r *StreamReader) SetTransport(t Transport) {
	if r.transport != nil {
		panic("loop: StreamReader: Transport already set")
	}
	r.transport = t
}

func (r *StreamReader) maybeResumeTransport() {
	if r.paused && r.Buffered() <= r.limit {
		r.paused = false
		r.transport.ResumeReading()
	}
}

// FeedEOF is feed_eof: no more data will come.
func (r *StreamReader) FeedEOF() {
	r.eof = true
	r.wakeup(false)
}

// AtEOF is at_eof: the buffer is empty and FeedEOF was called.
func (r *StreamReader) AtEOF() bool { return r.eof && r.Buffered() == 0 }

// FeedData is feed_data: p is appended to the buffer (copied: p may be
// reused when FeedData returns), and the waiting read resumes. It panics
// after FeedEOF, as asyncio asserts.
func (r *StreamReader) FeedData(p []byte) {
	if r.eof {
		panic("loop: StreamReader: FeedData after FeedEOF")
	}
	if len(p) == 0 {
		return
	}
	r.appendData(p)
	r.fed()
}

// fed is the rest of FeedData, once the data is in the buffer.
func (r *StreamReader) fed() {
	if r.waiters.n > 0 {
		if r.want < 0 || r.want > r.Buffered() {
			// The waiting read needs more than this: waking it (and
			// pausing, which its wait would undo) would gain nothing.
			return
		}
		r.wakeup(false)
	}
	if r.transport != nil && !r.paused && r.Buffered() > 2*r.limit {
		r.transport.PauseReading()
		r.paused = true
	}
}

func (r *StreamReader) appendData(p []byte) {
	if cap(r.arr)-len(r.arr) < len(p) {
		live := len(r.arr) - r.off
		if !r.lent && r.off > 0 && cap(r.arr)-live >= len(p) && r.off >= live {
			// Room enough once the consumed head is dropped, and little
			// to move: compact.
			r.arr = r.arr[:copy(r.arr, r.arr[r.off:])]
			r.off, r.lent = 0, false
		} else {
			// A new array: append's, which it need not zero first.
			r.arr = append(r.arr[r.off:len(r.arr):len(r.arr)], p...)
			r.off, r.lent = 0, false
			return
		}
	}
	r.arr = append(r.arr, p...)
}

// reserve makes room for n buffered bytes without a reallocation on the
// way, for a ReadExactly of a large frame.
func (r *StreamReader) reserve(n int) {
	if cap(r.arr)-r.off >= n {
		return
	}
	live := r.Buffered()
	b := make([]byte, live, n+min(n, maxReadSize))
	copy(b, r.arr[r.off:])
	r.arr, r.off, r.lent = b, 0, false
}

// take removes the first n buffered bytes and returns them as a slice of
// the caller's own: the buffer itself if they are at least half of it (it
// is then never written there again), else a copy.
func (r *StreamReader) take(n int) []byte {
	var b []byte
	switch {
	case n == 0:
		b = []byte{}
	case 2*n >= cap(r.arr):
		b = r.arr[r.off : r.off+n : r.off+n]
		r.lent = true
	default:
		b = make([]byte, n)
		copy(b, r.arr[r.off:])
	}
	r.off += n
	if r.off == len(r.arr) {
		r.emptied()
	}
	return b
}

// discard drops the first n buffered bytes.
func (r *StreamReader) discard(n int) {
	r.off += n
	if r.off == len(r.arr) {
		r.emptied()
	}
}

// emptied resets an empty buffer: it is kept for reuse unless it was lent
// out or is large.
func (r *StreamReader) emptied() {
	if r.lent || cap(r.arr) > keepBuffer {
		r.arr = nil
	} else {
		r.arr = r.arr[:0]
	}
	r.off, r.lent = 0, false
}

// waitData is _wait_for_data: it waits until FeedData, FeedEOF or
// SetException is called (FeedData only once want is met), resuming a
// paused transport first.
func (r *StreamReader) waitData(ctx context.Context, fn string, want int) error {
	if r.waiters.n > 0 {
		return readBusyError{fn}
	}
	if r.paused {
		r.paused = false
		r.transport.ResumeReading()
	}
	r.want = want
	_, err := r.waiters.block(ctx, &r.loopBound, "StreamReader", nil)
	r.want = 0
	byExc := r.excWake
	r.excWake = false
	if err != nil {
		return err
	}
	if byExc {
		return r.exc
	}
	return nil
}

// newline is ReadLine's separator.
var newline = [][]byte{{'\n'}}

// ReadLine is readline: it reads up to and including the next "\n". At
// EOF it returns what is left, without a newline (empty at EOF with
// nothing buffered), and a nil error. A line longer than the limit (not
// counting the newline) returns an error matching ErrLimitOverrun
// (asyncio's ValueError) and is dropped: the buffer loses everything up
// to and including the newline if it holds one, else everything.
func (r *StreamReader) ReadLine(ctx context.Context) ([]byte, error) {
	line, err := r.ReadUntil(ctx, newline...)
	if err == nil {
		return line, nil
	}
	var ie *IncompleteReadError
	if errors.As(err, &ie) {
		return ie.Partial, nil
	}
	var le *LimitOverrunError
	if errors.As(err, &le) {
		buf := r.arr[r.off:]
		if le.Consumed < len(buf) && buf[le.Consumed] == '\n' {
			r.discard(le.Consumed + 1)
		} else {
			r.discard(len(buf))
		}
		r.maybeResumeTransport()
		return nil, lineLimitError{le.Msg}
	}
	return nil, err
}

// ReadUntil is readuntil: it reads up to and including the first of the
// separators found, as Python 3.13 with a tuple: the shortest result that
// ends with any separator wins (and, for the same end, the shorter
// separator). Without separators it returns ErrSeparatorMissing; an empty
// one is ErrSeparatorEmpty.
//
// At EOF without a separator it returns an *IncompleteReadError holding
// the whole buffer, which it empties. If no separator ends within the
// limit (the data before the match longer than the limit) it returns a
// *LimitOverrunError and leaves the buffer as it is.
func (r *StreamReader) ReadUntil(ctx context.Context, seps ...[]byte) ([]byte, error) {
	if len(seps) == 0 {
		return nil, ErrSeparatorMissing
	}
	minLen, maxLen := len(seps[0]), len(seps[0])
	for _, s := range seps[1:] {
		minLen, maxLen = min(minLen, len(s)), max(maxLen, len(s))
	}
	if minLen == 0 {
		return nil, ErrSeparatorEmpty
	}
	if r.exc != nil {
		return nil, r.exc
	}
	// offset is how far from the start of the buffer no separator can
	// begin: only the last maxLen-1 bytes scanned may start one.
	offset := 0
	start, end := -1, -1
	for {
		buf := r.arr[r.off:]
		if len(buf)-offset >= minLen {
			for _, sep := range seps {
				i := bytes.Index(buf[offset:], sep)
				if i < 0 {
					continue
				}
				i += offset
				e := i + len(sep)
				if end < 0 || e < end || (e == end && len(sep) < end-start) {
					start, end = i, e
				}
			}
			if end >= 0 {
				break
			}
			offset = max(0, len(buf)+1-maxLen)
			if offset > r.limit {
				return nil, &LimitOverrunError{Msg: "Separator is not found, and chunk exceed the limit", Consumed: offset}
			}
		}
		// A complete separator may have come with the last data, so EOF
		// is checked only after the buffer was searched.
		if r.eof {
			return nil, &IncompleteReadError{Partial: r.take(len(buf)), Expected: -1}
		}
		if err := r.waitData(ctx, "ReadUntil", 0); err != nil {
			return nil, err
		}
	}
	if start > r.limit {
		return nil, &LimitOverrunError{Msg: "Separator is found, but chunk is longer than limit", Consumed: start}
	}
	chunk := r.take(end)
	r.maybeResumeTransport()
	return chunk, nil
}

// Read is read(n): with n > 0 it returns between 1 and n bytes as soon as
// any are buffered, or an empty slice at EOF; n == 0 returns an empty
// slice at once; n < 0 reads until EOF and returns everything. The limit
// does not bound it. Read(-1) keeps what it has received in the buffer
// until EOF, so a cancelled Read(-1) loses nothing either (asyncio's
// loses the blocks it had read).
func (r *StreamReader) Read(ctx context.Context, n int) ([]byte, error) {
	if r.exc != nil {
		return nil, r.exc
	}
	if n == 0 {
		return []byte{}, nil
	}
	if n < 0 {
		for !r.eof {
			if err := r.waitData(ctx, "Read", -1); err != nil {
				return nil, err
			}
		}
		data := r.take(r.Buffered())
		r.maybeResumeTransport()
		return data, nil
	}
	if r.Buffered() == 0 && !r.eof {
		if err := r.waitData(ctx, "Read", 0); err != nil {
			return nil, err
		}
	}
	data := r.take(min(n, r.Buffered()))
	r.maybeResumeTransport()
	return data, nil
}

// ReadInto is Read for a buffer of the caller's, the Go form of read(n)
// (Python's readinto): it waits until data is buffered or EOF, copies up to
// len(p) bytes into p and returns how many; 0 with a nil error is EOF (for a
// non-empty p). It allocates nothing, so a loop that reuses p, as
// examples/echo does, reads a stream with no garbage per read; Read hands
// out a slice of its own each time. Cancelled or timed out, it has taken
// nothing.
func (r *StreamReader) ReadInto(ctx context.Context, p []byte) (int, error) {
	if r.exc != nil {
		return 0, r.exc
	}
	if len(p) == 0 {
		return 0, nil
	}
	if r.Buffered() == 0 && !r.eof {
		if err := r.waitData(ctx, "ReadInto", 0); err != nil {
			return 0, err
		}
	}
	n := copy(p, r.arr[r.off:])
	r.discard(n)
	r.maybeResumeTransport()
	return n, nil
}

// ReadExactly is readexactly(n): exactly n bytes, or, at EOF before
// them, an *IncompleteReadError with what was buffered (the buffer is
// emptied) and Expected n. The limit does not bound it. A negative n is
// ErrReadExactlyNegative; 0 returns an empty slice. Over a socket, once a
// quarter of a large frame has arrived the reader makes room for all of it
// and the transport reads the rest straight into it; its memory grows with
// what arrives, never with n alone.
func (r *StreamReader) ReadExactly(ctx context.Context, n int) ([]byte, error) {
	if n < 0 {
		return nil, ErrReadExactlyNegative
	}
	if r.exc != nil {
		return nil, r.exc
	}
	if n == 0 {
		return []byte{}, nil
	}
	for r.Buffered() < n {
		if r.eof {
			return nil, &IncompleteReadError{Partial: r.take(r.Buffered()), Expected: n}
		}
		if err := r.waitData(ctx, "ReadExactly", n); err != nil {
			return nil, err
		}
	}
	data := r.take(n)
	r.maybeResumeTransport()
	return data, nil
}

// streamProtocol is asyncio's StreamReaderProtocol with FlowControlMixin:
// it feeds a StreamReader from a transport, runs a server's callback as a
// task, and holds what StreamWriter.Drain and WaitClosed wait on.
type streamProtocol struct {
	l         *Loop
	reader    *StreamReader
	cb        func(ctx context.Context, r *StreamReader, w *StreamWriter) error
	cbCtx     context.Context // whose values the callback's task sees
	transport Transport
	writer    *StreamWriter
	overTLS   bool

	bound loopBound

	// FlowControlMixin.
	paused   bool
	connLost bool
	drainers waitList
	wakeGen  uint64 // counts the wake-ups of drainers
	lostGen  uint64 // the wake-up ConnectionLost made, with lostErr
	lostErr  error

	// The _closed future, kept as state and a wait list so that an error
	// nobody waits for is not reported as never retrieved.
	closed    bool
	closedErr error
	closers   waitList
}

func newStreamProtocol(l *Loop, r *StreamReader, cb func(context.Context, *StreamReader, *StreamWriter) error, cbCtx context.Context) *streamProtocol {
	return &streamProtocol{l: l, reader: r, cb: cb, cbCtx: cbCtx}
}

func (p *streamProtocol) ConnectionMade(t Transport) {
	p.transport = t
	if p.reader != nil {
		p.reader.SetTransport(t)
	}
	p.overTLS = t.GetExtraInfo("ssl_object") != nil
	if p.cb == nil {
		return
	}
	w := &StreamWriter{transport: t, proto: p, reader: p.reader}
	p.writer = w
	r, cb := p.reader, p.cb
	var opts []TaskOption
	if p.cbCtx != nil {
		opts = []TaskOption{WithContext(p.cbCtx)}
	}
	task := CreateTask(p.l, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, cb(ctx, r, w)
	}, opts...)
	// asyncio 3.12: a callback that fails is reported and its connection
	// closed; one that is cancelled closes it.
	task.AddDoneCallback(func(task *Task[struct{}]) {
		if task.Cancelled() {
			w.transport.Close()
			return
		}
		if err := task.Err(); err != nil {
			p.l.CallExceptionHandler(ExceptionContext{
				Message:   "Unhandled exception in client_connected_cb",
				Err:       err,
				Transport: w.transport,
			})
			w.transport.Close()
		}
	})
}

// directRead is the room the reader must have for a transport to read
// into its buffer (bufferedStreamProtocol) rather than into the loop's
// shared buffer, copied from there.
const directRead = 16 << 10

// bufferedStreamProtocol is a streamProtocol that a socket transport reads
// through as a BufferedProtocol: straight into the reader's buffer when a
// ReadExactly has reserved room there (a large frame then costs no copy
// out of the loop's read buffer), else into the loop's shared buffer, fed
// to the reader as DataReceived would.
type bufferedStreamProtocol struct {
	*streamProtocol
	direct bool // the last GetBuffer was the reader's own room
}

func (b *bufferedStreamProtocol) GetBuffer(int) []byte {
	if r := b.reader; r != nil && !r.eof {
		// A ReadExactly waits for a large frame: once a quarter of it
		// is here, make room for all of it. (Not at once: a peer that
		// sends a 4-byte length would make the reader allocate the rest.)
		live := r.Buffered()
		if need := r.want - live; need > directRead && r.waiters.n > 0 && cap(r.arr)-len(r.arr) < need && live >= r.want/4 {
			r.reserve(r.want)
		}
		if room := r.arr[len(r.arr):cap(r.arr)]; len(room) >= directRead {
			b.direct = true
			return room
		}
	}
	b.direct = false
	return b.l.readBuffer()
}

func (b *bufferedStreamProtocol) BufferUpdated(n int) {
	r := b.reader
	if r == nil || n == 0 {
		return
	}
	if b.direct {
		r.arr = r.arr[:len(r.arr)+n]
		r.fed()
		return
	}
	r.FeedData(b.l.readBuffer()[:n])
}

// asProtocol is the protocol a transport gets: the buffered kind for a
// socket transport, the plain one over TLS.
func (p *streamProtocol) asProtocol(tls bool) BaseProtocol {
	if tls {
		return p
	}
	return &bufferedStreamProtocol{streamProtocol: p}
}

func (p *streamProtocol) DataReceived(data []byte) {
	if p.reader != nil {
		p.reader.FeedData(data)
	}
}

func (p *streamProtocol) EOFReceived() bool {
	if p.reader != nil {
		p.reader.FeedEOF()
	}
	// Over TLS, keeping the transport open has no effect.
	return !p.overTLS
}

func (p *streamProtocol) ConnectionLost(err error) {
	if r := p.reader; r != nil {
		if err == nil {
			r.FeedEOF()
		} else {
			r.SetException(err)
		}
	}
	if !p.closed {
		p.closed, p.closedErr = true, err
		p.closers.popWake(true)
	}
	p.connLost = true
	if p.paused {
		p.wakeGen++
		p.lostGen, p.lostErr = p.wakeGen, err
		p.drainers.popWake(true)
	}
	p.reader, p.writer, p.transport = nil, nil, nil
}

func (p *streamProtocol) PauseWriting() { p.paused = true }

func (p *streamProtocol) ResumeWriting() {
	p.paused = false
	p.wakeGen++
	p.drainers.popWake(true)
}

// drainHelper is _drain_helper.
func (p *streamProtocol) drainHelper(ctx context.Context) error {
	if p.connLost {
		return ErrConnectionLost
	}
	if !p.paused {
		return nil
	}
	gen := p.wakeGen
	if _, err := p.drainers.block(ctx, &p.bound, "StreamWriter", nil); err != nil {
		return err
	}
	if p.lostGen == gen+1 {
		return p.lostErr
	}
	return nil
}

func (p *streamProtocol) waitClosed(ctx context.Context) error {
	if !p.closed {
		if _, err := p.closers.block(ctx, &p.bound, "StreamWriter", nil); err != nil {
			return err
		}
	}
	return p.closedErr
}

// StreamWriter is asyncio.StreamWriter: a transport's writing side, with
// Drain to wait for its write buffer to go down. Loop goroutine only.
type StreamWriter struct {
	transport Transport
	proto     *streamProtocol
	reader    *StreamReader
}

// String is asyncio's repr: "<StreamWriter transport=... reader=...>".
func (w *StreamWriter) String() string {
	s := fmt.Sprintf("<StreamWriter transport=%v", w.transport)
	if w.reader != nil {
		s += fmt.Sprintf(" reader=%v", w.reader)
	}
	return s + ">"
}

// Transport is the transport property: the transport written to.
func (w *StreamWriter) Transport() Transport { return w.transport }

// Write is write: p goes to the transport at once (what the kernel does
// not take is buffered; p may be reused when Write returns). It never
// waits: follow a burst of writes with Drain. It returns the transport's
// error (ErrWriteAfterEOF, ErrTransportClosed), where asyncio drops the
// data and logs.
func (w *StreamWriter) Write(p []byte) (int, error) { return w.transport.Write(p) }

// WriteLines is writelines.
func (w *StreamWriter) WriteLines(bufs [][]byte) error { return w.transport.Writelines(bufs) }

// WriteEOF is write_eof: the writing side is closed once the buffer is
// flushed.
func (w *StreamWriter) WriteEOF() error { return w.transport.WriteEOF() }

// CanWriteEOF is can_write_eof.
func (w *StreamWriter) CanWriteEOF() bool { return w.transport.CanWriteEOF() }

// Close is close: the transport closes once its buffer is flushed. It
// returns nil (it is an io.Closer); WaitClosed waits for the end.
func (w *StreamWriter) Close() error {
	w.transport.Close()
	return nil
}

// IsClosing is is_closing.
func (w *StreamWriter) IsClosing() bool { return w.transport.IsClosing() }

// WaitClosed is wait_closed: it waits until the connection is lost and
// returns the error that ended it (nil for a clean close).
func (w *StreamWriter) WaitClosed(ctx context.Context) error { return w.proto.waitClosed(ctx) }

// GetExtraInfo is get_extra_info (nil where asyncio returns the default).
func (w *StreamWriter) GetExtraInfo(name string) any { return w.transport.GetExtraInfo(name) }

// Drain is drain: it returns at once unless the transport's write buffer
// is above its high-water mark, and then waits until it is down to the
// low-water mark. It returns the reader's error if the connection failed,
// and ErrConnectionLost (ConnectionResetError) once the connection is
// closed; on a closing transport it first yields once, so that the
// connection's end can arrive. Memory stays bounded for a writer that
// drains after its writes, however slow the peer.
func (w *StreamWriter) Drain(ctx context.Context) error {
	if w.reader != nil {
		if err := w.reader.exc; err != nil {
			return err
		}
	}
	if w.transport.IsClosing() {
		// Let ConnectionLost run: a write-and-drain loop on a closed
		// socket must see the error rather than spin.
		if err := Sleep(ctx, 0); err != nil {
			return err
		}
	}
	return w.proto.drainHelper(ctx)
}

// StartTLS is start_tls: it drains the writer, then upgrades the
// connection to TLS in place ([Loop.StartTLS]), the server's side of the
// handshake on a StartServer connection and the client's otherwise, and
// the writer and its reader go on over the new transport. cfg is
// asyncio's sslcontext; a client's names the server (ServerName, asyncio's
// server_hostname) or sets InsecureSkipVerify. handshakeTimeout bounds the
// handshake (0: asyncio's 60 s). Bytes already buffered by the reader were
// received in plain text and stay in it. A failed handshake ends the
// connection: StartTLS returns its error, and so do the reader's reads.
func (w *StreamWriter) StartTLS(ctx context.Context, cfg *tls.Config, handshakeTimeout time.Duration) error {
	p := w.proto
	if err := w.Drain(ctx); err != nil {
		return err
	}
	nt, err := p.l.StartTLS(ctx, w.transport, p, cfg, p.cb != nil, handshakeTimeout)
	if err != nil {
		return err
	}
	w.transport = nt
	p.replaceWriter(w)
	return nil
}

// replaceWriter is _replace_writer, after StartTLS: the protocol and the
// reader follow the writer to its new transport (asyncio's reader keeps
// pausing the old one, whose reading the TLS layer has taken over; here
// the old one is gone).
func (p *streamProtocol) replaceWriter(w *StreamWriter) {
	if p.connLost {
		return
	}
	p.writer, p.transport = w, w.transport
	p.overTLS = w.transport.GetExtraInfo("ssl_object") != nil
	if r := p.reader; r != nil {
		r.transport, r.paused = w.transport, false
	}
}

// ErrNilStreamCallback is returned by StartServer and StartUnixServer
// given a nil callback.
var ErrNilStreamCallback = errors.New("loop: nil client_connected_cb")

func streamFactory(ctx context.Context, l *Loop, cb func(context.Context, *StreamReader, *StreamWriter) error, opts *ServerOptions) func() BaseProtocol {
	limit, overTLS := 0, false
	if opts != nil {
		limit, overTLS = opts.Limit, opts.TLS != nil
	}
	return func() BaseProtocol {
		return newStreamProtocol(l, NewStreamReader(limit), cb, ctx).asProtocol(overTLS)
	}
}

// StartServer is asyncio.start_server: a server (CreateServer) on addr
// that runs cb as a new task for every connection, with a reader and a
// writer over it. opts.Limit is the readers' limit. A cb that returns an
// error is reported to the exception handler ("Unhandled exception in
// client_connected_cb") and its connection closed, as is one that ends
// cancelled (asyncio 3.12); one that returns nil leaves the connection as
// it is: close the writer. The task sees the values of ctx.
func StartServer(ctx context.Context, cb func(ctx context.Context, r *StreamReader, w *StreamWriter) error, addr string, opts *ServerOptions) (*Server, error) {
	l, err := RunningLoop(ctx)
	if err != nil {
		return nil, err
	}
	if cb == nil {
		return nil, ErrNilStreamCallback
	}
	return l.CreateServer(ctx, streamFactory(ctx, l, cb, opts), addr, opts)
}

// StartUnixServer is asyncio.start_unix_server: StartServer on the Unix
// socket at path (CreateUnixServer).
func StartUnixServer(ctx context.Context, cb func(ctx context.Context, r *StreamReader, w *StreamWriter) error, path string, opts *ServerOptions) (*Server, error) {
	l, err := RunningLoop(ctx)
	if err != nil {
		return nil, err
	}
	if cb == nil {
		return nil, ErrNilStreamCallback
	}
	return l.CreateUnixServer(ctx, streamFactory(ctx, l, cb, opts), path, opts)
}

// OpenConnection is asyncio.open_connection: CreateConnection to addr,
// returning a reader and a writer over the connection. opts.Limit is the
// reader's limit.
func OpenConnection(ctx context.Context, addr string, opts *ConnOptions) (*StreamReader, *StreamWriter, error) {
	return openStream(ctx, addr, opts, (*Loop).CreateConnection)
}

// OpenUnixConnection is asyncio.open_unix_connection: OpenConnection to
// the Unix socket at path.
func OpenUnixConnection(ctx context.Context, path string, opts *ConnOptions) (*StreamReader, *StreamWriter, error) {
	return openStream(ctx, path, opts, (*Loop).CreateUnixConnection)
}

func openStream(ctx context.Context, addr string, opts *ConnOptions,
	create func(*Loop, context.Context, func() BaseProtocol, string, *ConnOptions) (Transport, BaseProtocol, error)) (*StreamReader, *StreamWriter, error) {
	l, err := RunningLoop(ctx)
	if err != nil {
		return nil, nil, err
	}
	limit, overTLS := 0, false
	if opts != nil {
		limit, overTLS = opts.Limit, opts.TLS != nil
	}
	r := NewStreamReader(limit)
	p := newStreamProtocol(l, r, nil, nil)
	proto := p.asProtocol(overTLS)
	t, _, err := create(l, ctx, func() BaseProtocol { return proto }, addr, opts)
	if err != nil {
		return nil, nil, err
	}
	return r, &StreamWriter{transport: t, proto: p, reader: r}, nil
}

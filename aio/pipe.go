package aio

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"os"
	"reflect"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/internal/goid"
	"github.com/asyncgo/asyncgo/internal/wire"
	"github.com/asyncgo/asyncgo/loop"
	"golang.org/x/sys/unix"
)

// A Pipe's two Connections are the two ends of a Unix socketpair: unlike
// the other objects, a Connection is not hosted, its messages go straight
// from one process to the other. Passing a Connection to another process
// (in a Process's argument, a pool call's, a Queue item or another
// Connection's message) duplicates its descriptor and leaves the copy with
// the sending process, which hands it over, with SCM_RIGHTS on the side
// channel, to the first process that decodes the reference: as Python's
// resource_sharer does for a pickled Connection. The sender may close its
// own end as soon as the reference is encoded: after Start returns, or a
// Put; a pool encodes a call's argument only when it sends the call to a
// worker, so keep the end open until the call is done.
//
// A message on the socket is a 16-byte header, [length u64][descriptors
// u32][kind u32], then length bytes. The kind is 0 for the messages of
// Send, SendBytes and SendHandle, kindHandoff for a connection handed off
// with SendConn and kindAck for its receiver's acknowledgement (see
// handoff.go). A Connection reads exactly one
// message's bytes and never ahead, so one passed to another process leaves
// nothing behind.

// Errors of Connections, as Python's OSError of a closed handle, the
// ValueErrors of a one-way end and multiprocessing.BufferTooShort.
var (
	ErrConnClosed      = errors.New("aio: connection is closed")
	ErrConnReadOnly    = errors.New("aio: connection is read-only")
	ErrConnWriteOnly   = errors.New("aio: connection is write-only")
	ErrBufferTooShort  = errors.New("aio: buffer too short for the message")
	ErrMessageTooLong  = errors.New("aio: message longer than the maximum length")
	errNotAHandle      = errors.New("aio: the next message is data, not a handle: use Recv or RecvBytes")
	errHandleNotData   = errors.New("aio: the next message is a handle: use RecvHandle")
	errHandoffNotData  = errors.New("aio: the next message is a handed-off connection: use RecvConn")
	errNotAHandoff     = errors.New("aio: the next message is not a handed-off connection: use Recv, RecvBytes or RecvHandle")
	errPollTimeout     = errors.New("aio: poll timed out")
	errCorruptMessage  = errors.New("aio: corrupt message header on the connection")
	errConnInFlux      = errors.New("aio: the connection holds a partly received message and cannot be passed to another process")
	errConnAlreadyTook = errors.New("aio: this Connection reference was received once already: each encoded reference hands its descriptor to one process")
)

// BufferTooShortError is the error of RecvBytesInto with a buffer smaller
// than the message, as Python's BufferTooShort: the message is consumed
// and carried whole in Message. It matches ErrBufferTooShort.
type BufferTooShortError struct {
	Message []byte
}

func (e *BufferTooShortError) Error() string {
	return fmt.Sprintf("%v (%d bytes)", ErrBufferTooShort, len(e.Message))
}

// Is makes errors.Is(err, ErrBufferTooShort) hold.
func (e *BufferTooShortError) Is(target error) bool { return target == ErrBufferTooShort }

const (
	pipeHeader = 16
	maxMessage = 1 << 40 // beyond this a header is taken as corrupt
	maxHandles = 16      // descriptors one message may carry
	cFetch     = opObject
)

// Connection is multiprocessing.connection.Connection (aioprocessing's
// AioConnection), one end of a Pipe: Send and Recv carry values, SendBytes
// and RecvBytes raw messages, SendHandle and RecvHandle descriptors
// (multiprocessing.reduction's send_handle and recv_handle). Every blocking
// method has a Coro twin that takes a task's ctx and never blocks the loop.
// One goroutine at a time reads and one writes; others wait their turn.
//
// Cancellation loses nothing: a cancelled CoroRecv leaves its message, or
// the part of it that had arrived, for the next receive; a CoroSend
// cancelled before its message started to go sends nothing, and once it
// has started sends all of it (a message is never torn), as a cancelled
// asyncio write that reached the transport's buffer.
type Connection struct {
	uc       *net.UnixConn
	rc       syscall.RawConn
	readable bool
	writable bool
	closed   atomic.Bool

	rsem chan struct{} // held by the one reader
	wsem chan struct{} // held by the one writer

	// Messages received for a task and not yet taken by it, in the order
	// they came: a Coro receive's goroutine parks its message here, and
	// the task takes it when it resumes; if the task was cancelled
	// meanwhile the message is freed for the next receive. A task
	// resumes on its loop, which a blocking receive there may hold, so
	// nothing here waits for the loop.
	bmu    sync.Mutex
	parked []*parkedMsg

	// The reader's state, owned by rsem's holder.
	hdr   [pipeHeader]byte
	hn    int    // header bytes received
	body  []byte // the message being received, once the header is whole
	bn    int    // body bytes received
	fdq   []int  // descriptors received, not yet taken by a message
	eof   bool
	oob   []byte
	rerrs error    // a sticky read error (a corrupt header)
	rd    struct { // fill's read: arguments, results, the func rc.Read calls
		p              []byte
		wait           bool
		n, oobn, flags int
		err            error
		fn             func(uintptr) bool
	}

	// Hand-offs (handoff.go): the acknowledgements this end's SendConns
	// wait for, by sequence number, and connections received and
	// acknowledged for a CoroRecvConn whose task had gone, for the next.
	hmu    sync.Mutex
	hseq   uint64
	acks   map[uint64]chan error
	handed []*HandedConn
	wakers map[*byte]context.CancelFunc // of the RecvConns waiting
	// CoroRecvConns waiting on their loops for the end to be readable:
	// Close wakes them.
	loopWaiters map[*byte]func()
	watch       *connWatch // the descriptor those waits watch
}

// pmsg is one received message.
type pmsg struct {
	data []byte
	fds  []int
	kind uint32
}

// Message kinds, the header's last word.
const (
	kindPlain   = 0
	kindHandoff = 1
	kindAck     = 2
)

// want is what a receive takes: a message of data, of handles, a handed
// off connection, or anything (the pump of a SendConn waiting for its
// acknowledgement, which parks what it reads for the receives).
type want uint8

const (
	wantData want = iota
	wantHandle
	wantHandoff
	wantAny
)

// parkedMsg is a received message and the Coro receive it is for (nil:
// free for whoever receives next).
type parkedMsg struct {
	m  pmsg
	op *recvOp
}

// recvOp is one Coro receive; gone once its task stopped waiting for it.
type recvOp struct{ gone bool }

// Pipe is multiprocessing.Pipe: two connected Connections. With duplex
// both ends send and receive; without, the first only receives and the
// second only sends, as Python's (reader, writer).
func Pipe(duplex bool) (*Connection, *Connection, error) {
	fds, err := socketpair()
	if err != nil {
		return nil, nil, fmt.Errorf("aio: Pipe: %w", err)
	}
	if !duplex {
		_ = unix.Shutdown(fds[0], unix.SHUT_WR)
		_ = unix.Shutdown(fds[1], unix.SHUT_RD)
	}
	a, err := newConnection(fds[0], true, duplex)
	if err != nil {
		unix.Close(fds[1])
		return nil, nil, err
	}
	b, err := newConnection(fds[1], duplex, true)
	if err != nil {
		a.Close()
		return nil, nil, err
	}
	return a, b, nil
}

func socketpair() ([2]int, error) {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		return fds, err
	}
	unix.CloseOnExec(fds[0])
	unix.CloseOnExec(fds[1])
	return fds, nil
}

// newConnection takes fd over.
func newConnection(fd int, readable, writable bool) (*Connection, error) {
	f := os.NewFile(uintptr(fd), "aio-connection")
	nc, err := net.FileConn(f) // a duplicate, in the netpoller
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("aio: Connection: %w", err)
	}
	uc, ok := nc.(*net.UnixConn)
	if !ok {
		nc.Close()
		return nil, errors.New("aio: Connection: the descriptor is not a Unix socket")
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		uc.Close()
		return nil, err
	}
	c := &Connection{
		uc: uc, rc: rc, readable: readable, writable: writable,
		rsem: make(chan struct{}, 1), wsem: make(chan struct{}, 1),
		oob: make([]byte, unix.CmsgSpace(4*maxHandles)),
	}
	c.initWatch()
	return c, nil
}

// initWatch gives c its own connWatch. A Connection dropped without
// Close has its socket closed by its netpoller file's finalizer, and the
// duplicate its waits kept must go too, or it would hold the socket open
// (the peer would never see the end).
func (c *Connection) initWatch() {
	c.watch = new(connWatch)
	runtime.AddCleanup(c, func(w *connWatch) {
		if w.fd > 0 {
			unix.Close(w.fd)
		}
	}, c.watch)
}

// connWatch is the duplicate descriptor a Connection's loop waits watch,
// one wait at a time (fd 0: none made yet, -1: closed), and whether a
// wait holds it; guarded by the Connection's hmu.
type connWatch struct {
	fd   int
	held bool
}

// Readable says whether the end receives (Python's readable).
func (c *Connection) Readable() bool { return c.readable }

// Writable says whether the end sends (Python's writable).
func (c *Connection) Writable() bool { return c.writable }

// Closed says whether Close was called (Python's closed).
func (c *Connection) Closed() bool { return c.closed.Load() }

// Close closes this process's end; a receive or send blocked on it returns
// ErrConnClosed. The other end's receives return io.EOF once they have
// read what was sent. Closing twice does nothing.
func (c *Connection) Close() error {
	if c == nil || c.uc == nil || c.closed.Swap(true) {
		return nil
	}
	err := c.uc.Close()
	select { // if no reader holds the state, release what it keeps
	case c.rsem <- struct{}{}:
		c.unlockRead()
	default: // the holder releases it as it lets go
	}
	c.bmu.Lock()
	c.dropFree()
	c.bmu.Unlock()
	c.closeHandoffs()
	c.closeWatchFD()
	return err
}

// dropFree closes the descriptors of the free parked messages of a closed
// Connection; the caller holds bmu.
func (c *Connection) dropFree() {
	out := c.parked[:0]
	for _, e := range c.parked {
		if e.op == nil {
			closeFDs(e.m.fds)
		} else {
			out = append(out, e)
		}
	}
	clear(c.parked[len(out):])
	c.parked = out
}

func (c *Connection) check(read bool) error {
	switch {
	case c == nil || c.uc == nil:
		return errors.New("aio: zero Connection: make it with Pipe")
	case c.closed.Load():
		return ErrConnClosed
	case read && !c.readable:
		return ErrConnWriteOnly
	case !read && !c.writable:
		return ErrConnReadOnly
	}
	return nil
}

func (c *Connection) lockRead(ctx context.Context) error {
	select {
	case c.rsem <- struct{}{}:
		return nil
	default:
	}
	select {
	case c.rsem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *Connection) unlockRead() {
	if c.closed.Load() {
		closeFDs(c.fdq)
		c.fdq = nil
	}
	<-c.rsem
}

// firstFree is the first parked message no receive is waiting to take,
// or nil; the caller holds bmu.
func (c *Connection) firstFree() *parkedMsg {
	for _, e := range c.parked {
		if e.op == nil {
			return e
		}
	}
	return nil
}

// unpark removes e from the parked messages; the caller holds bmu.
func (c *Connection) unpark(e *parkedMsg) {
	for i, x := range c.parked {
		if x == e {
			c.parked = append(c.parked[:i], c.parked[i+1:]...)
			c.parked = c.parked[:len(c.parked):len(c.parked)]
			return
		}
	}
}

func (c *Connection) ownedBy(op *recvOp) *parkedMsg {
	for _, e := range c.parked {
		if e.op == op {
			return e
		}
	}
	return nil
}

// next receives the next message of the sort w; the caller holds rsem. A
// message of another sort is left in place. Acknowledgements of hand-offs
// are taken on the way, whoever reads; with wantAny next returns
// errAckTaken after each. Without wait it reads only what the socket has
// and returns errPollTimeout if that is not a whole message.
func (c *Connection) next(ctx context.Context, w want, wait bool) (pmsg, error) {
	if c.closed.Load() {
		return pmsg{}, ErrConnClosed
	}
	for {
		if c.hn == pipeHeader {
			n := binary.LittleEndian.Uint64(c.hdr[:])
			nfds := int(binary.LittleEndian.Uint32(c.hdr[8:]))
			if c.bn == int(n) && len(c.fdq) >= nfds {
				m := pmsg{data: c.body, fds: c.fdq[:nfds:nfds], kind: binary.LittleEndian.Uint32(c.hdr[12:])}
				if m.kind > kindAck || m.kind == kindAck && (nfds > 0 || n != 8) || m.kind == kindHandoff && nfds < 1 {
					c.rerrs = errCorruptMessage
					return pmsg{}, c.rerrs
				}
				if m.kind == kindAck {
					c.hn, c.body, c.bn = 0, nil, 0
					c.deliverAck(binary.LittleEndian.Uint64(m.data))
					if w == wantAny {
						return pmsg{}, errAckTaken
					}
					continue
				}
				if err := sortOf(m, w); err != nil {
					return pmsg{}, err
				}
				if m.data == nil {
					m.data = []byte{}
				}
				c.fdq = c.fdq[nfds:]
				c.hn, c.body, c.bn = 0, nil, 0
				return m, nil
			}
			if len(c.fdq) < nfds && c.bn == int(n) {
				// the header claimed descriptors that did not come
				c.rerrs = errCorruptMessage
			}
		}
		if c.rerrs != nil {
			return pmsg{}, c.rerrs
		}
		if c.eof {
			if c.hn > 0 {
				return pmsg{}, io.ErrUnexpectedEOF
			}
			return pmsg{}, io.EOF
		}
		if err := c.fill(ctx, time.Time{}, wait); err != nil {
			return pmsg{}, err
		}
	}
}

func sortOf(m pmsg, w want) error {
	switch {
	case w == wantAny:
	case m.kind == kindHandoff && w != wantHandoff:
		return errHandoffNotData
	case w == wantHandoff && m.kind != kindHandoff:
		return errNotAHandoff
	case w == wantHandle && len(m.fds) == 0:
		return errNotAHandle
	case w == wantData && len(m.fds) > 0:
		return errHandleNotData
	}
	return nil
}

// pending says whether a receive would find something without waiting
// for the socket: a free parked message, bytes of one, or the end. The
// caller holds rsem.
func (c *Connection) pending() bool {
	c.bmu.Lock()
	free := c.firstFree() != nil
	c.bmu.Unlock()
	return free || c.hn > 0 || c.eof || c.rerrs != nil
}

// fill reads what the socket has of the current message, waiting for it
// (until ctx ends or deadline, if not zero) if wait is set. It reads no
// further than the message's end.
func (c *Connection) fill(ctx context.Context, deadline time.Time, wait bool) error {
	var p []byte
	if c.hn < pipeHeader {
		p = c.hdr[c.hn:]
	} else {
		if c.body == nil {
			n := binary.LittleEndian.Uint64(c.hdr[:])
			if n > maxMessage || binary.LittleEndian.Uint32(c.hdr[8:]) > maxHandles {
				c.rerrs = errCorruptMessage
				return c.rerrs
			}
			c.body = make([]byte, n)
		}
		p = c.body[c.bn:]
	}
	if !wait {
		deadline = time.Time{} // no earlier one may stop the one read
	} else if d, ok := ctx.Deadline(); ok && (deadline.IsZero() || d.Before(deadline)) {
		deadline = d
	}
	if err := c.uc.SetReadDeadline(deadline); err != nil {
		return c.mapErr(err)
	}
	if wait {
		if ctx.Done() != nil {
			fired := make(chan struct{})
			stop := context.AfterFunc(ctx, func() {
				_ = c.uc.SetReadDeadline(time.Unix(1, 0))
				close(fired)
			})
			defer func() {
				if !stop() {
					<-fired
				}
			}()
		}
	}
	if c.rd.fn == nil {
		c.rd.fn = c.recvOnce // made once: a closure per read cost 7 allocations
	}
	c.rd.p, c.rd.wait = p, wait
	err := c.rc.Read(c.rd.fn)
	n, oobn, flags := c.rd.n, c.rd.oobn, c.rd.flags
	if err == nil {
		err = c.rd.err
	}
	c.rd.p, c.rd.err = nil, nil
	if oobn > 0 {
		c.takeFDs(c.oob[:oobn])
	}
	if flags&unix.MSG_CTRUNC != 0 {
		c.rerrs = errCorruptMessage
	}
	switch {
	case err == unix.EAGAIN:
		return errPollTimeout
	case err != nil:
		if errors.Is(err, os.ErrDeadlineExceeded) {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return errPollTimeout
		}
		return c.mapErr(err)
	case n == 0 && len(p) > 0:
		c.eof = true
	case c.hn < pipeHeader:
		c.hn += n
	default:
		c.bn += n
	}
	return nil
}

// recvOnce is fill's read of the socket, with its arguments and results
// in c.rd.
func (c *Connection) recvOnce(fd uintptr) bool {
	r := &c.rd
	for {
		r.n, r.oobn, r.flags, _, r.err = unix.Recvmsg(int(fd), r.p, c.oob, recvFlags)
		if r.err != unix.EINTR {
			break
		}
	}
	return r.err != unix.EAGAIN || !r.wait
}

func (c *Connection) takeFDs(oob []byte) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return
	}
	for _, m := range msgs {
		fds, err := unix.ParseUnixRights(&m)
		if err != nil {
			continue
		}
		if recvFlags == 0 {
			for _, fd := range fds {
				unix.CloseOnExec(fd)
			}
		}
		c.fdq = append(c.fdq, fds...)
	}
}

func (c *Connection) mapErr(err error) error {
	if errors.Is(err, net.ErrClosed) || c.closed.Load() {
		return ErrConnClosed
	}
	return err
}

// recvMsg is the blocking receive under ctx (any ctx: a task's blocks its
// goroutine; the Coro methods call it from a goroutine of their own, with
// op, and then it parks the message for op's task to take).
func (c *Connection) recvMsg(ctx context.Context, w want, op *recvOp) (pmsg, error) {
	if err := c.check(true); err != nil {
		return pmsg{}, err
	}
	if err := c.lockRead(ctx); err != nil {
		return pmsg{}, err
	}
	defer c.unlockRead()
	c.bmu.Lock()
	if op != nil && op.gone { // its task has stopped waiting: take nothing
		c.bmu.Unlock()
		return pmsg{}, context.Canceled
	}
	if e := c.firstFree(); e != nil {
		defer c.bmu.Unlock()
		if err := sortOf(e.m, w); err != nil {
			return pmsg{}, err
		}
		if op != nil {
			e.op = op
		} else {
			c.unpark(e)
		}
		return e.m, nil
	}
	c.bmu.Unlock()
	m, err := c.next(ctx, w, true)
	if err != nil || op == nil {
		return m, err
	}
	c.bmu.Lock()
	e := &parkedMsg{m: m, op: op}
	if op.gone {
		e.op = nil
	}
	c.parked = append(c.parked, e)
	c.bmu.Unlock()
	return m, nil
}

// coroRecv receives a message on a task's loop without blocking it, and
// consume runs on the message (on the loop's goroutine) if the task is
// still there to take it; else the message is freed for the next
// receive. Off a loop it blocks under ctx.
func coroRecv[R any](ctx context.Context, c *Connection, w want, consume func(pmsg) (R, error)) (R, error) {
	var zero R
	l := taskLoop(ctx)
	if l == nil {
		m, err := c.recvMsg(ctx, w, nil)
		if err != nil {
			return zero, err
		}
		return consume(m)
	}
	op := &recvOp{}
	_, err := onLoop(ctx, l, func(octx context.Context) (struct{}, error) {
		_, err := c.recvMsg(octx, w, op)
		return struct{}{}, err
	}, nil)
	c.bmu.Lock()
	e := c.ownedBy(op)
	if err != nil {
		op.gone = true
		if e != nil {
			e.op = nil
			if c.closed.Load() {
				c.dropFree()
			}
		}
		c.bmu.Unlock()
		return zero, err
	}
	c.unpark(e)
	c.bmu.Unlock()
	return consume(e.m)
}

// taskLoop is the loop of the task ctx belongs to, or nil: the Coro
// methods await there, and block their goroutine under any other ctx.
func taskLoop(ctx context.Context) *loop.Loop {
	if loop.CurrentTask(ctx) == nil {
		return nil
	}
	l, err := loop.RunningLoop(ctx)
	if err != nil {
		return nil
	}
	return l
}

// onLoop runs op on a goroutine of its own and awaits its result on the
// task's loop l. Cancelling the task cancels op's ctx; a result that
// comes anyway, and that the task is no longer there to take, goes to
// undo (nil: dropped).
func onLoop[R any](ctx context.Context, l *loop.Loop, op func(context.Context) (R, error), undo func(R)) (R, error) {
	cf := executor.NewFuture[R]()
	octx, cancel := context.WithCancel(bg)
	cf.AddDoneCallback(func(cf *executor.Future[R]) {
		if cf.Cancelled() {
			cancel()
		}
	})
	go func() {
		defer cancel()
		v, err := op(octx)
		if err != nil {
			_ = cf.SetErr(err)
			return
		}
		if cf.SetResult(v) != nil && undo != nil {
			undo(v)
		}
	}()
	return awaitUndo(ctx, l, cf, undo)
}

// awaitUndo awaits cf on l so that a result never goes astray when the
// await ends without it: cf is cancelled if still pending (an await under
// a derived ctx that ended leaves what it awaits running, as
// wait_for(shield(f))), and a result cf got all the same (granted as the
// task was cancelled, or before it ran again) goes to undo at once, on
// this goroutine. So it is given back before awaitUndo returns, not in a
// later loop callback: a task that goes on to a blocking call (an Acquire
// from the loop's own goroutine) finds the lock it was granted free
// (TestCoroCancelledMidWait/CoroAcquireRaceLock hung one run in four).
func awaitUndo[R any](ctx context.Context, l *loop.Loop, cf *executor.Future[R], undo func(R)) (R, error) {
	lf := loop.WrapFuture(l, cf)
	v, err := lf.Await(ctx)
	if err == nil {
		return v, nil
	}
	if lf.Done() {
		_, _ = lf.Result() // retrieved: nobody is told it was never read
	} else {
		lf.Cancel() // what cf gets later is dropped with it
	}
	if !cf.Cancel() && cf.Done() && undo != nil {
		if v2, err2 := cf.Result(bg); err2 == nil {
			undo(v2)
		}
	}
	return v, err
}

// lockWrite takes wsem; ctx bounds the wait for an earlier sender.
func (c *Connection) lockWrite(ctx context.Context) error {
	select {
	case c.wsem <- struct{}{}:
		return nil
	default:
	}
	select {
	case c.wsem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// sendMsg sends one message: the header (with fds, if any) and data,
// whole. ctx bounds only the wait for an earlier sender.
func (c *Connection) sendMsg(ctx context.Context, data []byte, fds []int) error {
	if err := c.check(false); err != nil {
		return err
	}
	if err := c.lockWrite(ctx); err != nil {
		return err
	}
	defer func() { <-c.wsem }()
	var hdr [pipeHeader]byte
	binary.LittleEndian.PutUint64(hdr[:], uint64(len(data)))
	binary.LittleEndian.PutUint32(hdr[8:], uint32(len(fds)))
	head := hdr[:]
	if len(fds) > 0 {
		n, _, err := c.uc.WriteMsgUnix(head, unix.UnixRights(fds...), nil)
		if err != nil {
			return c.mapErr(err)
		}
		head = head[n:]
	}
	bufs := net.Buffers{head, data}
	if _, err := bufs.WriteTo(c.uc); err != nil {
		return c.mapErr(err)
	}
	return nil
}

// coroSend is sendMsg on a task's loop: a goroutine of its own writes, so
// that the loop never waits on the socket.
func (c *Connection) coroSend(ctx context.Context, data []byte, fds []int) error {
	l := taskLoop(ctx)
	if l == nil {
		return c.sendMsg(ctx, data, fds)
	}
	_, err := onLoop(ctx, l, func(octx context.Context) (struct{}, error) {
		return struct{}{}, c.sendMsg(octx, data, fds)
	}, nil)
	return err
}

// SendBytes sends b as one message (Python's send_bytes; slice b for its
// offset and size). b is not copied and must not change until it returns.
func (c *Connection) SendBytes(b []byte) error { return c.sendMsg(bg, b, nil) }

// CoroSendBytes is SendBytes for a task: it never blocks the loop.
func (c *Connection) CoroSendBytes(ctx context.Context, b []byte) error {
	return c.coroSend(ctx, b, nil)
}

// RecvBytes receives one message's bytes (Python's recv_bytes). With
// maxlength > 0, a longer message is left unread and ErrMessageTooLong
// returned (Python makes the connection unreadable instead). At the end
// of what the other side sent before it closed, it returns io.EOF.
func (c *Connection) RecvBytes(maxlength int) ([]byte, error) {
	return c.CoroRecvBytes(bg, maxlength)
}

// CoroRecvBytes is RecvBytes for a task: it never blocks the loop.
func (c *Connection) CoroRecvBytes(ctx context.Context, maxlength int) ([]byte, error) {
	if maxlength > 0 {
		if err := c.peekLength(ctx, maxlength); err != nil {
			return nil, err
		}
	}
	return coroRecv(ctx, c, wantData, func(m pmsg) ([]byte, error) { return m.data, nil })
}

// peekLength fails with ErrMessageTooLong if the next message is longer
// than maxlength, reading its header if need be.
func (c *Connection) peekLength(ctx context.Context, maxlength int) error {
	l := taskLoop(ctx)
	peek := func(ctx context.Context) (struct{}, error) {
		if err := c.check(true); err != nil {
			return struct{}{}, err
		}
		if err := c.lockRead(ctx); err != nil {
			return struct{}{}, err
		}
		defer c.unlockRead()
		var n uint64
		c.bmu.Lock()
		e := c.firstFree()
		c.bmu.Unlock()
		switch {
		case e != nil:
			n = uint64(len(e.m.data))
		default:
			for c.hn < pipeHeader && !c.eof && c.rerrs == nil {
				if err := c.fill(ctx, time.Time{}, true); err != nil {
					return struct{}{}, err
				}
			}
			if c.hn < pipeHeader {
				return struct{}{}, nil // the receive reports what happened
			}
			n = binary.LittleEndian.Uint64(c.hdr[:])
		}
		if n > uint64(maxlength) {
			return struct{}{}, fmt.Errorf("%w: %d bytes, at most %d wanted", ErrMessageTooLong, n, maxlength)
		}
		return struct{}{}, nil
	}
	if l == nil {
		_, err := peek(ctx)
		return err
	}
	_, err := onLoop(ctx, l, peek, nil)
	return err
}

// RecvBytesInto receives one message into buf and returns its length
// (Python's recv_bytes_into; slice buf for an offset). If buf is too
// short the message is consumed anyway and returned whole in a
// *BufferTooShortError.
func (c *Connection) RecvBytesInto(buf []byte) (int, error) {
	return c.CoroRecvBytesInto(bg, buf)
}

// CoroRecvBytesInto is RecvBytesInto for a task: it never blocks the loop.
func (c *Connection) CoroRecvBytesInto(ctx context.Context, buf []byte) (int, error) {
	return coroRecv(ctx, c, wantData, func(m pmsg) (int, error) {
		if len(m.data) > len(buf) {
			return 0, &BufferTooShortError{Message: m.data}
		}
		return copy(buf, m.data), nil
	})
}

// Send sends v as one message (Python's send). Values are encoded as a
// Queue's items are: scalars, strings and []byte directly, types with
// MarshalBinary by it, the rest with gob; aio's objects (queues, locks,
// Connections) travel as references. A value that cannot be encoded
// fails here and sends nothing.
func (c *Connection) Send(v any) error { return c.CoroSend(bg, v) }

// CoroSend is Send for a task: it never blocks the loop.
func (c *Connection) CoroSend(ctx context.Context, v any) error {
	b, err := encodeAny(v)
	if err != nil {
		return err
	}
	return c.coroSend(ctx, b, nil)
}

// Recv receives one message sent with Send into *ptr (Python's recv).
// ptr must point to a value of the type that was sent: another type
// returns an error matching ErrItemType, with the message consumed and the
// connection still usable. At the end of what the other side sent before
// it closed, it returns io.EOF.
func (c *Connection) Recv(ptr any) error { return c.CoroRecv(bg, ptr) }

// CoroRecv is Recv for a task: it never blocks the loop, and a cancelled
// CoroRecv leaves its message for the next receive.
func (c *Connection) CoroRecv(ctx context.Context, ptr any) error {
	rv := reflect.ValueOf(ptr)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("aio: Recv needs a non-nil pointer, not %T", ptr)
	}
	_, err := coroRecv(ctx, c, wantData, func(m pmsg) (struct{}, error) {
		return struct{}{}, decodeInto(m.data, rv)
	})
	return err
}

// Poll says whether there is something to receive (Python's poll): a
// message, part of one, or the end of the other side. It waits up to
// timeout for it (0: not at all; < 0: as long as it takes).
func (c *Connection) Poll(timeout time.Duration) (bool, error) {
	return c.CoroPoll(bg, timeout)
}

// CoroPoll is Poll for a task: it never blocks the loop.
func (c *Connection) CoroPoll(ctx context.Context, timeout time.Duration) (bool, error) {
	poll := func(ctx context.Context) (bool, error) {
		if err := c.check(true); err != nil {
			return false, err
		}
		if err := c.lockRead(ctx); err != nil {
			return false, err
		}
		defer c.unlockRead()
		if c.pending() {
			return true, nil
		}
		var deadline time.Time
		if timeout > 0 {
			deadline = time.Now().Add(timeout)
		}
		err := c.fill(ctx, deadline, timeout != 0)
		if err == errPollTimeout {
			return false, nil
		}
		return c.pending(), err
	}
	l := taskLoop(ctx)
	if l == nil || timeout == 0 {
		return poll(ctx)
	}
	return onLoop(ctx, l, poll, nil)
}

// SendHandle sends a duplicate of the descriptor fd to the other end, as
// multiprocessing.reduction.send_handle; fd stays the caller's.
func (c *Connection) SendHandle(fd int) error { return c.CoroSendHandle(bg, fd) }

// CoroSendHandle is SendHandle for a task: it never blocks the loop.
func (c *Connection) CoroSendHandle(ctx context.Context, fd int) error {
	if fd < 0 {
		return fmt.Errorf("aio: SendHandle: bad descriptor %d", fd)
	}
	return c.coroSend(ctx, nil, []int{fd})
}

// RecvHandle receives a descriptor sent with SendHandle, as
// multiprocessing.reduction.recv_handle. It is close-on-exec, and the
// caller's to close.
func (c *Connection) RecvHandle() (int, error) { return c.CoroRecvHandle(bg) }

// CoroRecvHandle is RecvHandle for a task: it never blocks the loop, and
// a cancelled CoroRecvHandle leaves the descriptor for the next receive.
func (c *Connection) CoroRecvHandle(ctx context.Context) (int, error) {
	return coroRecv(ctx, c, wantHandle, func(m pmsg) (int, error) {
		closeFDs(m.fds[1:])
		return m.fds[0], nil
	})
}

// Values on a Connection cross as [tag u32][bytes], the tag a hash of the
// Go type's name as a Queue's items carry; []byte and strings directly,
// the rest as a Queue encodes them.
func typeTag(t reflect.Type) uint32 {
	h := fnv.New32a()
	h.Write([]byte(t.String()))
	return h.Sum32()
}

func encodeAny(v any) ([]byte, error) {
	if v == nil {
		return nil, errors.New("aio: Send of a nil value: send a typed value")
	}
	t := reflect.TypeOf(v)
	b := binary.LittleEndian.AppendUint32(make([]byte, 0, 16), typeTag(t))
	switch x := v.(type) {
	case []byte:
		return append(b, x...), nil
	case string:
		return append(b, x...), nil
	}
	if isNilPointer(v) {
		return nil, fmt.Errorf("aio: cannot send a nil %s", t)
	}
	g, err := wire.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("aio: cannot encode a %s: %w", t, err)
	}
	return append(b, g...), nil
}

func decodeInto(b []byte, ptr reflect.Value) error {
	t := ptr.Type().Elem()
	if len(b) < 4 {
		return fmt.Errorf("%w: a corrupt message", ErrItemType)
	}
	if binary.LittleEndian.Uint32(b) != typeTag(t) {
		return fmt.Errorf("%w (this process reads %s)", ErrItemType, t)
	}
	b = b[4:]
	switch p := ptr.Interface().(type) {
	case *[]byte:
		*p = b
		return nil
	case *string:
		*p = string(b)
		return nil
	}
	if err := wire.Unmarshal(b, ptr.Interface()); err != nil {
		return fmt.Errorf("%w: %v", ErrItemType, err)
	}
	return nil
}

// The export of a Connection to whichever process decodes its reference:
// a hosted object holding a duplicate of the descriptor, which it hands
// out once.
type connExport struct {
	mu sync.Mutex
	fd int
	id uint64
}

func (e *connExport) serve(r *request) {
	closeFDs(r.fds)
	if r.op != cFetch {
		r.respond(reply{status: stErr, data: []byte("aio: bad operation on a Connection")})
		return
	}
	e.mu.Lock()
	fd, id := e.fd, e.id
	e.fd = -1
	e.mu.Unlock()
	hostMu.Lock()
	delete(hosted, id)
	hostMu.Unlock()
	if fd < 0 {
		r.respond(reply{status: stErr, data: []byte(errConnAlreadyTook.Error())})
		return
	}
	r.respond(reply{status: stOK, fds: []int{fd}})
}

// exportSinks collects, by goroutine, the exports made while a Process's
// argument is encoded, so that the Process drops those its child did not
// take (it died before it decoded its argument): their descriptors would
// stay open in this process for ever.
var exportSinks sync.Map // goroutine id -> *[]exported

// exported is what a Process's argument made another process's to take:
// a Connection's descriptor, or a queue's pin (ring_linux.go). drop lets
// go of it once the child is gone.
type exported interface{ drop() }

// drop closes an export's descriptor if nobody took it.
func (e *connExport) drop() {
	e.mu.Lock()
	fd, id := e.fd, e.id
	e.fd = -1
	e.mu.Unlock()
	if fd < 0 {
		return
	}
	hostMu.Lock()
	delete(hosted, id)
	hostMu.Unlock()
	unix.Close(fd)
}

func (e *connExport) withdraw(*peer, uint64) {}
func (e *connExport) peerGone(*peer)         {}

// GobEncode makes the Connection cross to another process: a reference to
// a duplicate of its descriptor, which the first process to decode it
// takes (see Pipe). A Connection in the middle of receiving a message
// cannot be passed.
func (c *Connection) GobEncode() ([]byte, error) {
	if err := c.check(c.readable); err != nil {
		return nil, err
	}
	select {
	case c.rsem <- struct{}{}:
	default:
		return nil, errConnInFlux // a receive is under way
	}
	c.bmu.Lock()
	owned := len(c.parked) > 0
	c.bmu.Unlock()
	busy := owned || c.handoffsInFlight() || c.pending() && !c.eof
	c.unlockRead()
	if busy {
		return nil, errConnInFlux
	}
	var dup int
	var derr error
	if err := c.rc.Control(func(fd uintptr) {
		dup, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return nil, c.mapErr(err)
	}
	if derr != nil {
		return nil, fmt.Errorf("aio: cannot pass the Connection: %w", derr)
	}
	e := &connExport{fd: dup}
	e.mu.Lock() // a fetch may come before host returns
	e.id = host(e)
	e.mu.Unlock()
	if sink, ok := exportSinks.Load(goid.Get()); ok {
		*sink.(*[]exported) = append(*sink.(*[]exported), e)
	}
	h := handle{ref: ref{Host: selfToken, ID: e.id, Kind: kindPipe}} // e.id is set for good
	b, err := h.encode()
	if err != nil {
		return nil, err
	}
	var flags byte
	if c.readable {
		flags |= 1
	}
	if c.writable {
		flags |= 2
	}
	return append(b, flags), nil
}

// GobDecode makes a received reference a Connection: it takes the
// descriptor from the process that encoded it.
func (c *Connection) GobDecode(b []byte) error {
	if len(b) != 18 {
		return errors.New("aio: corrupt Connection reference")
	}
	var h handle
	if err := h.decode(b[:17], kindPipe); err != nil {
		return err
	}
	r, err := h.call(bg, cFetch, 0, -1, nil, nil, nil)
	if err != nil {
		return err
	}
	switch {
	case r.status == stOK && len(r.fds) == 1:
	case r.status == stGone:
		closeFDs(r.fds)
		return fmt.Errorf("%w: %s", ErrHostGone, r.data)
	default:
		closeFDs(r.fds)
		return fmt.Errorf("aio: cannot receive the Connection: %s", r.data)
	}
	nc, err := newConnection(r.fds[0], b[17]&1 != 0, b[17]&2 != 0)
	if err != nil {
		return err
	}
	c.uc, c.rc, c.readable, c.writable = nc.uc, nc.rc, nc.readable, nc.writable
	c.rsem, c.wsem, c.oob = nc.rsem, nc.wsem, nc.oob
	c.initWatch() // nc's is nc's, for its cleanup
	return nil
}

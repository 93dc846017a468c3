package aio

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"

	"github.com/asyncgo/asyncgo/loop"
	"golang.org/x/sys/unix"
)

// Connection hand-off: a live connection sent to another process over a
// Connection, with the bytes already read from it, and adopted there on a
// loop, as a transport or streams, or as a net.Conn. Python's
// multiprocessing.reduction.send_handle and recv_handle pass the
// descriptor; the bytes an asyncio transport had read, and who owns the
// connection if the receiver dies on the way, are left to the programmer.
// Here they are the protocol:
//
//   - The hand-off message is [seq u64][prefix] with the descriptor on
//     its SCM_RIGHTS side channel, of kind kindHandoff, so that only
//     RecvConn takes it (Recv and RecvHandle refuse it).
//   - The receiver answers each with an acknowledgement, [seq u64] of
//     kindAck, once it holds the descriptor, and keeps the descriptor only
//     if the acknowledgement went out.
//   - The sender closes its copy when the acknowledgement comes. If the
//     other end closes first (the receiver died, or closed its end with
//     the message unread, and the kernel closed the descriptors in
//     flight), nobody else has the connection: it is still the sender's.
//
// Whoever reads the sender's end takes the acknowledgements on the way
// (a Recv as much as the SendConn waiting for one), so a duplex
// Connection may carry hand-offs one way and other messages both ways.

// Errors of hand-offs.
var (
	// ErrHandoffFailed is a hand-off that did not happen: the
	// receiver is dead, closed its end, or the message could not be sent.
	// The connection is still the sender's, open, to serve or close.
	ErrHandoffFailed = errors.New("aio: hand-off failed: the connection is still the sender's")
	// ErrHandoffUnsettled is a hand-off whose outcome the sender could not
	// wait for: its own end closed while it waited, or CoroSendConn's
	// task was cancelled after it started. The receiver may have the
	// connection: the sender's copy is closed (or will be, once the
	// receiver answers), and it is not the caller's any more.
	ErrHandoffUnsettled = errors.New("aio: hand-off unsettled: the receiver may have the connection; the sender's copy is closed")

	errAckTaken = errors.New("aio: an acknowledgement was taken")
)

// SendConn hands the connection conn to the process at the other end of
// the Connection, with prefix, bytes already read from it and not yet
// consumed, which go first on the other side (in the same message as the
// descriptor). conn is a *net.TCPConn, a *net.UnixConn (any syscall.Conn
// with a Close method: an *os.File too), a *loop.Socket or an int
// descriptor.
//
// It returns once the receiver has acknowledged (RecvConn or
// CoroRecvConn): then it closes the sender's copy, exactly once, and the
// connection is the receiver's. If the receiver is dead or closes its end
// before it acknowledges, it returns an error matching ErrHandoffFailed
// and conn is still the caller's, open: serve it or close it. Any other
// error (ErrHandoffUnsettled) means conn is closed. A *loop.Socket must not
// be watched by a loop meanwhile (take it out of its transport with
// loop.DetachTransport or loop.DetachStreams first); a net.Conn must have
// no read of its own under way. The Connection must be duplex: the
// acknowledgement comes back on it. Several SendConns may wait on one
// Connection at once; one process at a time should send on an end. A
// receiver that lives and never receives keeps SendConn waiting: bound
// the wait with CoroSendConn's ctx.
func (c *Connection) SendConn(conn any, prefix []byte) error {
	return c.CoroSendConn(bg, conn, prefix)
}

// CoroSendConn is SendConn for a task: it never blocks the loop, and it
// closes a *loop.Socket on its loop. Cancelled (or its ctx ended, on a
// loop or off one) before the receiver answered, it returns at once an
// error matching both ctx's error and ErrHandoffUnsettled: the connection
// is no longer the caller's, and is closed once the receiver answers,
// whatever the answer.
func (c *Connection) CoroSendConn(ctx context.Context, conn any, prefix []byte) error {
	src, err := sourceOf(conn)
	if err != nil {
		return err
	}
	l := taskLoop(ctx)
	if l != nil {
		return c.coroSendConnOnLoop(ctx, l, src, prefix)
	}
	if ctx.Done() == nil {
		acked, err := c.handoff(ctx, src.fd, prefix)
		src.sent()
		return src.settle(acked, err)
	}
	// A ctx that can end: the wait for the acknowledgement goes on a
	// goroutine, so that ctx bounds it as the doc says.
	type result struct {
		acked bool
		err   error
	}
	done := make(chan result, 1)
	go func() {
		acked, err := c.handoff(ctx, src.fd, prefix)
		src.sent()
		done <- result{acked, err}
	}()
	select {
	case r := <-done:
		return src.settle(r.acked, r.err)
	case <-ctx.Done():
	}
	go func() { // the caller has given it up: closed once it settles
		<-done
		_ = src.close()
	}()
	return fmt.Errorf("%w: %w", ErrHandoffUnsettled, ctx.Err())
}

// connSource is the connection SendConn hands off: the descriptor to send
// and how to close the caller's copy.
type connSource struct {
	fd     int
	dup    bool         // fd is a duplicate made for the send, closed once sent
	sock   *loop.Socket // or closer, or neither: fd is the caller's own
	closer io.Closer
}

// close closes the caller's copy.
func (s *connSource) close() error {
	switch {
	case s.sock != nil:
		return s.sock.Close()
	case s.closer != nil:
		return s.closer.Close()
	}
	return unix.Close(s.fd)
}

func sourceOf(conn any) (*connSource, error) {
	switch x := conn.(type) {
	case int:
		if x < 0 {
			return nil, fmt.Errorf("%w: bad descriptor %d", ErrHandoffFailed, x)
		}
		return &connSource{fd: x}, nil
	case *loop.Socket:
		if x == nil || x.Fd() < 0 {
			return nil, fmt.Errorf("%w: %w", ErrHandoffFailed, loop.ErrSocketClosed)
		}
		return &connSource{fd: x.Fd(), sock: x}, nil
	case syscall.Conn:
		cl, ok := conn.(io.Closer)
		if !ok {
			return nil, fmt.Errorf("%w: %T has no Close method", ErrHandoffFailed, conn)
		}
		rc, err := x.SyscallConn()
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrHandoffFailed, err)
		}
		dup := -1
		var derr error
		if err := rc.Control(func(fd uintptr) {
			dup, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
		}); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrHandoffFailed, err)
		}
		if derr != nil {
			return nil, fmt.Errorf("%w: %w", ErrHandoffFailed, os.NewSyscallError("fcntl", derr))
		}
		return &connSource{fd: dup, dup: true, closer: cl}, nil
	}
	return nil, fmt.Errorf("%w: cannot hand off a %T: give a net.Conn, *os.File, *loop.Socket or descriptor", ErrHandoffFailed, conn)
}

// sent releases the duplicate made for the send: the kernel holds its own
// reference to a descriptor in flight.
func (s *connSource) sent() {
	if s.dup {
		unix.Close(s.fd)
		s.dup = false
	}
}

// settle closes the caller's copy unless the hand-off failed, and returns
// the error to report.
func (s *connSource) settle(acked bool, err error) error {
	if acked {
		_ = s.close()
		return nil
	}
	if !errors.Is(err, ErrHandoffFailed) {
		_ = s.close()
	}
	return err
}

// closeFrom closes the caller's copy from any goroutine: a loop.Socket on
// its loop (l), unless that loop is closed.
func (s *connSource) closeFrom(l *loop.Loop) {
	if s.sock != nil && l != nil {
		if l.CallSoonThreadsafe(func() { _ = s.close() }) == nil {
			return
		}
	}
	_ = s.close()
}

// handoff sends fd and prefix and waits for the acknowledgement. It reports
// acked, or an error: ErrHandoffFailed (nobody else has the connection)
// or ErrHandoffUnsettled. ctx bounds only the wait for an earlier sender.
func (c *Connection) handoff(ctx context.Context, fd int, prefix []byte) (bool, error) {
	p, err := c.prepareHandoff(prefix)
	if err != nil {
		return false, err
	}
	if err := c.sendRaw(ctx, p.msg, fd); err != nil {
		c.dropAck(p.seq)
		return false, fmt.Errorf("%w: %w", ErrHandoffFailed, err)
	}
	if err := c.awaitAck(p.seq, p.ch); err != nil {
		return false, err
	}
	return true, nil
}

// pendingHandoff is a hand-off message and the acknowledgement it waits
// for, registered before the message goes (any reader may take it).
type pendingHandoff struct {
	seq uint64
	ch  chan error
	msg []byte
}

func (c *Connection) prepareHandoff(prefix []byte) (*pendingHandoff, error) {
	if err := c.check(false); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrHandoffFailed, err)
	}
	if !c.readable {
		return nil, fmt.Errorf("%w: the Connection is write-only, and the acknowledgement comes back on it: use a duplex Pipe", ErrHandoffFailed)
	}
	p := &pendingHandoff{ch: make(chan error, 1), msg: make([]byte, pipeHeader+8+len(prefix))}
	c.hmu.Lock()
	c.hseq++
	p.seq = c.hseq
	if c.acks == nil {
		c.acks = make(map[uint64]chan error)
	}
	c.acks[p.seq] = p.ch
	c.hmu.Unlock()
	binary.LittleEndian.PutUint64(p.msg, uint64(8+len(prefix)))
	binary.LittleEndian.PutUint32(p.msg[8:], 1)
	binary.LittleEndian.PutUint32(p.msg[12:], kindHandoff)
	binary.LittleEndian.PutUint64(p.msg[pipeHeader:], p.seq)
	copy(p.msg[pipeHeader+8:], prefix)
	return p, nil
}

// dropAck forgets the acknowledgement of hand-off seq.
func (c *Connection) dropAck(seq uint64) {
	c.hmu.Lock()
	delete(c.acks, seq)
	c.hmu.Unlock()
}

// coroSendConnOnLoop is CoroSendConn's fast way, on the task's loop: the
// message goes with one non-blocking sendmsg, and the task reads the
// acknowledgement itself, waiting for the end in the loop's poller, as
// CoroRecvConn does. What cannot be done without waiting (the socket
// full, another sender or receiver on the end) goes on from a goroutine.
func (c *Connection) coroSendConnOnLoop(ctx context.Context, l *loop.Loop, src *connSource, prefix []byte) error {
	p, err := c.prepareHandoff(prefix)
	if err != nil {
		src.sent()
		return src.settle(false, err)
	}
	n, held := 0, false
	select {
	case c.wsem <- struct{}{}:
		var werr error
		rights := unix.UnixRights(src.fd)
		if err := c.rc.Write(func(f uintptr) bool {
			n, werr = unix.SendmsgN(int(f), p.msg, rights, nil, 0)
			return true
		}); err != nil {
			werr = err
		}
		n = max(n, 0)
		switch {
		case n == len(p.msg):
			<-c.wsem
			src.sent()
			return c.awaitAckOnLoop(ctx, l, src, p)
		case werr != nil && werr != unix.EAGAIN:
			<-c.wsem
			c.dropAck(p.seq)
			src.sent()
			return src.settle(false, fmt.Errorf("%w: %w", ErrHandoffFailed, c.mapErr(werr)))
		case n > 0:
			held = true // the descriptor went with the first bytes: the rest next, nothing between
		default:
			<-c.wsem
		}
	default:
	}
	return c.settleOffLoop(ctx, l, src, func(octx context.Context) error {
		var err error
		if held {
			_, err = c.uc.Write(p.msg[n:])
			<-c.wsem
			err = c.mapErr(err)
		} else {
			err = c.sendRaw(octx, p.msg, src.fd)
		}
		src.sent()
		if err != nil {
			c.dropAck(p.seq)
			return fmt.Errorf("%w: %w", ErrHandoffFailed, err)
		}
		return c.awaitAck(p.seq, p.ch)
	})
}

// settleOffLoop runs op (the rest of a hand-off: nil once acknowledged)
// on a goroutine and settles src with its outcome on the loop; a task that
// stops waiting leaves src to be closed when op ends.
func (c *Connection) settleOffLoop(ctx context.Context, l *loop.Loop, src *connSource, op func(context.Context) error) error {
	type outcome struct{ err error }
	res, err := onLoop(ctx, l, func(octx context.Context) (outcome, error) {
		return outcome{op(octx)}, nil
	}, func(outcome) { src.closeFrom(l) })
	if err != nil {
		return fmt.Errorf("%w: %w", ErrHandoffUnsettled, err)
	}
	return src.settle(res.err == nil, res.err)
}

// awaitAckOnLoop waits on the loop for the acknowledgement of p, whose
// message went, reading the end itself while no other receive does.
func (c *Connection) awaitAckOnLoop(ctx context.Context, l *loop.Loop, src *connSource, p *pendingHandoff) error {
	for {
		select {
		case err := <-p.ch:
			err = c.ackErr(err)
			return src.settle(err == nil, err)
		default:
		}
		select {
		case c.rsem <- struct{}{}:
		default: // another receive reads, and will take it on its way
			return c.settleOffLoop(ctx, l, src, func(context.Context) error { return c.awaitAck(p.seq, p.ch) })
		}
		var perr error
		for {
			if perr = c.pumpWith(false); perr != nil && perr != errAckTaken {
				break
			}
		}
		c.unlockRead()
		select {
		case err := <-p.ch:
			err = c.ackErr(err)
			return src.settle(err == nil, err)
		default:
		}
		if perr != errPollTimeout {
			c.dropAck(p.seq)
			return src.settle(false, c.endErr(perr))
		}
		if err := c.waitReadable(ctx, l, func() bool { return len(p.ch) > 0 }); err != nil && !errors.Is(err, ErrConnClosed) {
			// The task stopped waiting: the hand-off settles on its own.
			go func() {
				_ = c.awaitAck(p.seq, p.ch)
				src.closeFrom(l)
			}()
			return fmt.Errorf("%w: %w", ErrHandoffUnsettled, err)
		}
	}
}

// sendRaw writes msg, a whole message with its header, with fd on the
// side channel of its first bytes.
func (c *Connection) sendRaw(ctx context.Context, msg []byte, fd int) error {
	if err := c.lockWrite(ctx); err != nil {
		return err
	}
	defer func() { <-c.wsem }()
	n, _, err := c.uc.WriteMsgUnix(msg, unix.UnixRights(fd), nil)
	if err != nil {
		return c.mapErr(err)
	}
	if n < len(msg) {
		if _, err := c.uc.Write(msg[n:]); err != nil {
			return c.mapErr(err)
		}
	}
	return nil
}

// awaitAck waits for the acknowledgement ch stands for: nil once it came.
// While no other receive reads the end, it reads itself, parking other
// messages for the receives.
func (c *Connection) awaitAck(seq uint64, ch chan error) error {
	for {
		select {
		case err := <-ch:
			return c.ackErr(err)
		case c.rsem <- struct{}{}:
		}
		select {
		case err := <-ch:
			c.unlockRead()
			return c.ackErr(err)
		default:
		}
		perr := c.pumpWith(true)
		c.unlockRead()
		if perr == nil || perr == errAckTaken {
			continue
		}
		select {
		case err := <-ch: // it came before the end
			return c.ackErr(err)
		default:
		}
		c.dropAck(seq)
		return c.endErr(perr)
	}
}

// endErr is the outcome of a hand-off whose end stopped (perr) before its
// acknowledgement came.
func (c *Connection) endErr(perr error) error {
	if errors.Is(perr, ErrConnClosed) || errors.Is(perr, errCorruptMessage) {
		return fmt.Errorf("%w: %w", ErrHandoffUnsettled, perr)
	}
	return fmt.Errorf("%w: the receiver closed its end or died before it acknowledged: %w", ErrHandoffFailed, perr)
}

func (c *Connection) ackErr(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrHandoffUnsettled, err)
}

// pumpWith reads the next message for a SendConn waiting for its
// acknowledgement (which holds rsem): an acknowledgement is delivered
// (errAckTaken), another message parked for whoever receives next.
// Without wait, it returns errPollTimeout rather than wait for the socket.
func (c *Connection) pumpWith(wait bool) error {
	if c.closed.Load() {
		return ErrConnClosed
	}
	m, err := c.next(bg, wantAny, wait)
	if err != nil {
		return err
	}
	c.bmu.Lock()
	c.parked = append(c.parked, &parkedMsg{m: m})
	c.bmu.Unlock()
	if m.kind == kindHandoff {
		c.wakeReceivers()
	}
	return nil
}

// wakeReceivers wakes the RecvConns waiting on the socket, for a hand-off
// that is no longer there but parked or kept.
func (c *Connection) wakeReceivers() {
	c.hmu.Lock()
	defer c.hmu.Unlock()
	for _, wake := range c.wakers {
		wake()
	}
	for _, wake := range c.loopWaiters {
		wake()
	}
}

// deliverAck hands the acknowledgement of hand-off seq to its SendConn.
func (c *Connection) deliverAck(seq uint64) {
	c.hmu.Lock()
	ch := c.acks[seq]
	delete(c.acks, seq)
	if ch != nil {
		ch <- nil
		for _, wake := range c.loopWaiters { // a CoroSendConn waiting on its loop for this one
			wake()
		}
	}
	c.hmu.Unlock()
}

// closeHandoffs, at Close, fails the SendConns waiting and closes the
// connections received and not taken.
func (c *Connection) closeHandoffs() {
	c.hmu.Lock()
	for seq, ch := range c.acks {
		select {
		case ch <- ErrConnClosed:
		default: // its acknowledgement is there
		}
		delete(c.acks, seq)
	}
	handed := c.handed
	c.handed = nil
	for _, wake := range c.loopWaiters {
		wake()
	}
	c.hmu.Unlock()
	for _, h := range handed {
		h.Close()
	}
}

func (c *Connection) handoffsInFlight() bool {
	c.hmu.Lock()
	defer c.hmu.Unlock()
	return len(c.acks) > 0 || len(c.handed) > 0
}

// RecvConn receives a connection sent with SendConn, acknowledges it, and
// returns it with the bytes that came with it; the sender has closed its
// copy (or will, as soon as it reads the acknowledgement). If the
// acknowledgement cannot be sent (this end was closed meanwhile, the
// sender is gone) the descriptor is closed and an error returned: the
// sender keeps the connection. Other messages are left in place, and
// Recv, RecvBytes and RecvHandle leave a hand-off in place.
func (c *Connection) RecvConn() (*HandedConn, error) { return c.CoroRecvConn(bg) }

// CoroRecvConn is RecvConn for a task: it never blocks the loop. A
// connection received and acknowledged for a task cancelled meanwhile is
// kept for the next RecvConn, or closed with the Connection.
func (c *Connection) CoroRecvConn(ctx context.Context) (*HandedConn, error) {
	if h := c.takeHanded(); h != nil {
		return h, nil
	}
	l := taskLoop(ctx)
	if l == nil {
		return c.recvConn(ctx)
	}
	if h, done, err := c.recvConnOnLoop(ctx, l); done {
		return h, err
	}
	return onLoop(ctx, l, c.recvConn, c.keepHanded)
}

// recvConnOnLoop is CoroRecvConn's fast way: while no other receive reads
// the end, the task reads it itself on its loop, without blocking, and
// waits for it to be readable in the loop's own poller (a goroutine, the
// netpoller and a threadsafe call back to the loop cost about 30 us per
// hand-off here). done is false if another receive holds the end: then
// the caller waits the usual way.
func (c *Connection) recvConnOnLoop(ctx context.Context, l *loop.Loop) (h *HandedConn, done bool, err error) {
	for {
		if err := c.check(true); err != nil {
			return nil, true, err
		}
		if h := c.takeHanded(); h != nil {
			return h, true, nil
		}
		m, err := c.takeFree(wantHandoff)
		if err == errPollTimeout {
			select {
			case c.rsem <- struct{}{}:
			default:
				return nil, false, nil
			}
			m, err = c.next(ctx, wantHandoff, false)
			c.unlockRead()
		}
		switch {
		case err == nil:
			h, err := c.ackOnLoop(ctx, l, m)
			return h, true, err
		case err != errPollTimeout:
			return nil, true, err
		}
		if err := c.waitReadable(ctx, l, c.handoffWaiting); err != nil {
			return nil, true, err
		}
	}
}

// takeFree takes the first free parked message if it is of the sort w
// (errPollTimeout: there is none). Parked messages come before anything
// still in the socket, so this needs bmu only.
func (c *Connection) takeFree(w want) (pmsg, error) {
	c.bmu.Lock()
	defer c.bmu.Unlock()
	e := c.firstFree()
	if e == nil {
		return pmsg{}, errPollTimeout
	}
	if err := sortOf(e.m, w); err != nil {
		return pmsg{}, err
	}
	c.unpark(e)
	return e.m, nil
}

// waitReadable waits on l until the end is readable, or closed. It
// watches a duplicate of the descriptor, its own to close: the Connection
// may be closed meanwhile, and the loop must never watch a descriptor
// number that another open may reuse. done is the caller's condition,
// checked again once the waiter is registered: what another reader
// delivered in between would wake nobody.
func (c *Connection) waitReadable(ctx context.Context, l *loop.Loop, done func() bool) error {
	fd, err := c.takeWatchFD()
	if err != nil {
		return err
	}
	defer c.giveWatchFD(fd)
	ready := loop.NewFuture[struct{}](l)
	wake := func() {
		if !ready.Done() {
			ready.SetResult(struct{}{})
		}
	}
	if err := l.AddReader(fd, wake); err != nil {
		return err
	}
	defer l.RemoveReader(fd)
	key := new(byte)
	c.hmu.Lock()
	if c.loopWaiters == nil {
		c.loopWaiters = make(map[*byte]func())
	}
	c.loopWaiters[key] = func() { _ = l.CallSoonThreadsafe(wake) }
	c.hmu.Unlock()
	defer func() {
		c.hmu.Lock()
		delete(c.loopWaiters, key)
		c.hmu.Unlock()
	}()
	if c.closed.Load() { // closed before it could wake us
		return ErrConnClosed
	}
	if done() { // came while the caller looked, before we could be woken
		return nil
	}
	_, err = ready.Await(ctx)
	return err
}

// takeWatchFD returns a duplicate of the end's descriptor for one wait
// to watch: the one the Connection keeps for its waits, made at the first
// and closed by Close once no wait holds it, or, while another wait holds
// that, a new one. Keeping it saves a dup and a close per wait (two of
// the six syscalls a wait on a loop cost; a hand-off awaits one on each
// side).
func (c *Connection) takeWatchFD() (int, error) {
	c.hmu.Lock()
	if c.watch.fd > 0 && !c.watch.held {
		c.watch.held = true
		fd := c.watch.fd
		c.hmu.Unlock()
		return fd, nil
	}
	keep := c.watch.fd == 0
	c.hmu.Unlock()
	fd := -1
	var derr error
	if err := c.rc.Control(func(f uintptr) { fd, derr = unix.FcntlInt(f, unix.F_DUPFD_CLOEXEC, 3) }); err != nil {
		return -1, c.mapErr(err)
	}
	if derr != nil {
		return -1, os.NewSyscallError("fcntl", derr)
	}
	if keep {
		c.hmu.Lock()
		if c.watch.fd == 0 && !c.closed.Load() {
			c.watch.fd, c.watch.held = fd, true
		}
		c.hmu.Unlock()
	}
	return fd, nil
}

// giveWatchFD ends a wait's use of fd (after the loop stopped watching
// it): the kept one stays open for the next wait, unless the Connection
// was closed meanwhile; any other is closed.
func (c *Connection) giveWatchFD(fd int) {
	c.hmu.Lock()
	if fd == c.watch.fd {
		c.watch.held = false
		if !c.closed.Load() {
			c.hmu.Unlock()
			return
		}
		c.watch.fd = -1
	}
	c.hmu.Unlock()
	unix.Close(fd)
}

// closeWatchFD closes the kept descriptor at Close, unless a wait holds
// it: then that wait does, as it ends.
func (c *Connection) closeWatchFD() {
	c.hmu.Lock()
	fd := c.watch.fd
	if fd > 0 && !c.watch.held {
		c.watch.fd = -1
	} else {
		fd = -1
	}
	c.hmu.Unlock()
	if fd > 0 {
		unix.Close(fd)
	}
}

// handoffWaiting reports whether a hand-off is there to take without
// reading the socket: one another reader parked, or a free message.
func (c *Connection) handoffWaiting() bool {
	c.hmu.Lock()
	n := len(c.handed)
	c.hmu.Unlock()
	if n > 0 {
		return true
	}
	c.bmu.Lock()
	defer c.bmu.Unlock()
	return c.firstFree() != nil
}

// ackOnLoop acknowledges the hand-off m from the loop: at once if the
// socket takes the 24 bytes, else from a goroutine, awaited.
func (c *Connection) ackOnLoop(ctx context.Context, l *loop.Loop, m pmsg) (*HandedConn, error) {
	closeFDs(m.fds[1:])
	fd := m.fds[0]
	if len(m.data) < 8 {
		unix.Close(fd)
		return nil, errCorruptMessage
	}
	h := &HandedConn{fd: fd}
	if len(m.data) > 8 {
		h.prefix = m.data[8:]
	}
	ack := ackMessage(m.data[:8])
	if err := c.check(false); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("aio: RecvConn: cannot acknowledge the connection: %w", err)
	}
	n, held := 0, false
	select {
	case c.wsem <- struct{}{}:
		var werr error
		if err := c.rc.Write(func(f uintptr) bool {
			n, werr = unix.Write(int(f), ack[:])
			return true
		}); err != nil {
			werr = err
		}
		n = max(n, 0)
		switch {
		case n == len(ack):
			<-c.wsem
			return h, nil
		case werr != nil && werr != unix.EAGAIN:
			<-c.wsem
			unix.Close(fd)
			return nil, fmt.Errorf("aio: RecvConn: cannot acknowledge the connection: %w", c.mapErr(werr))
		case n > 0:
			held = true // part of it went: nobody else may write before the rest
		default:
			<-c.wsem
		}
	default: // another sender writes: wait for it off the loop
	}
	rest := ack[n:]
	return onLoop(ctx, l, func(context.Context) (*HandedConn, error) {
		if !held {
			if err := c.lockWrite(bg); err != nil {
				h.Close()
				return nil, err
			}
		}
		_, err := c.uc.Write(rest)
		<-c.wsem
		if err != nil {
			h.Close()
			return nil, fmt.Errorf("aio: RecvConn: cannot acknowledge the connection: %w", c.mapErr(err))
		}
		return h, nil
	}, c.keepHanded)
}

// ackMessage is the acknowledgement of the hand-off whose sequence number
// is seq (8 bytes).
func ackMessage(seq []byte) [pipeHeader + 8]byte {
	var ack [pipeHeader + 8]byte
	binary.LittleEndian.PutUint64(ack[:], 8)
	binary.LittleEndian.PutUint32(ack[12:], kindAck)
	copy(ack[pipeHeader:], seq)
	return ack
}

// recvConn receives the next hand-off, or takes one kept for the next
// receive: keepHanded wakes a recvConn that waits on the socket meanwhile
// (a CoroRecvConn cancelled while its goroutine acknowledged a hand-off
// gives the hand-off back after another receive had started to wait).
func (c *Connection) recvConn(ctx context.Context) (*HandedConn, error) {
	for {
		wctx, wake := context.WithCancel(ctx)
		key := new(byte)
		c.hmu.Lock()
		if len(c.handed) > 0 {
			h := c.handed[0]
			c.handed = c.handed[1:]
			c.hmu.Unlock()
			wake()
			return h, nil
		}
		if c.wakers == nil {
			c.wakers = make(map[*byte]context.CancelFunc)
		}
		c.wakers[key] = wake
		c.hmu.Unlock()
		// A hand-off parked by a SendConn's pump is taken without the
		// read lock, which that pump may hold while it waits for an
		// acknowledgement that only this receive's would let come.
		m, err := c.takeFree(wantHandoff)
		if err == errPollTimeout {
			m, err = c.recvMsg(wctx, wantHandoff, nil)
		}
		c.hmu.Lock()
		delete(c.wakers, key)
		c.hmu.Unlock()
		woken := wctx.Err() != nil && ctx.Err() == nil
		wake()
		if err != nil && woken {
			continue
		}
		if err != nil {
			return nil, err
		}
		return c.ackConn(m)
	}
}

// ackConn acknowledges the hand-off m and returns its connection.
func (c *Connection) ackConn(m pmsg) (*HandedConn, error) {
	closeFDs(m.fds[1:])
	fd := m.fds[0]
	if len(m.data) < 8 {
		unix.Close(fd)
		return nil, errCorruptMessage
	}
	ack := ackMessage(m.data[:8])
	if err := c.check(false); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("aio: RecvConn: cannot acknowledge the connection: %w", err)
	}
	if err := c.lockWrite(bg); err != nil {
		unix.Close(fd)
		return nil, err
	}
	_, werr := c.uc.Write(ack[:])
	<-c.wsem
	if werr != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("aio: RecvConn: cannot acknowledge the connection: %w", c.mapErr(werr))
	}
	var prefix []byte
	if len(m.data) > 8 {
		prefix = m.data[8:]
	}
	return &HandedConn{fd: fd, prefix: prefix}, nil
}

func (c *Connection) takeHanded() *HandedConn {
	c.hmu.Lock()
	defer c.hmu.Unlock()
	if len(c.handed) == 0 {
		return nil
	}
	h := c.handed[0]
	c.handed = c.handed[1:]
	return h
}

func (c *Connection) keepHanded(h *HandedConn) {
	c.hmu.Lock()
	if !c.closed.Load() {
		c.handed = append(c.handed, h)
		h = nil
	}
	c.hmu.Unlock()
	if h != nil {
		h.Close()
		return
	}
	c.wakeReceivers()
}

// HandedConn is a connection received with RecvConn: its descriptor
// (close-on-exec, this process's own) and the bytes that came with it.
// Adopt it once, with one of Adopt, OpenStreams, Socket, NetConn, File or
// Detach, or Close it; after that Fd is -1. Not for concurrent use.
type HandedConn struct {
	fd     int
	prefix []byte
}

// ErrHandedConnTaken is the error of adopting a HandedConn adopted or
// closed before.
var ErrHandedConnTaken = errors.New("aio: the handed-off connection was adopted or closed already")

// Fd returns the descriptor, or -1 once adopted or closed. It stays the
// HandedConn's.
func (h *HandedConn) Fd() int { return h.fd }

// Prefix returns the bytes read from the connection by the sender and not
// consumed there: what comes first. Adopt and OpenStreams deliver them;
// with Socket, File and Detach they are the caller's to use.
func (h *HandedConn) Prefix() []byte { return h.prefix }

// Detach gives the descriptor up to the caller (socket.detach()).
func (h *HandedConn) Detach() (int, error) {
	if h.fd < 0 {
		return -1, ErrHandedConnTaken
	}
	fd := h.fd
	h.fd = -1
	return fd, nil
}

// Close closes the connection if it has not been adopted. Closing twice
// does nothing.
func (h *HandedConn) Close() error {
	if h.fd < 0 {
		return nil
	}
	fd := h.fd
	h.fd = -1
	return os.NewSyscallError("close", unix.Close(fd))
}

// Socket adopts the connection as a loop Socket (loop.SocketFromFd), for
// the loop's sock_* calls or a transport; the prefix is not in it. On an
// error (the descriptor is not a socket) the HandedConn keeps it.
func (h *HandedConn) Socket() (*loop.Socket, error) {
	if h.fd < 0 {
		return nil, ErrHandedConnTaken
	}
	s, err := loop.SocketFromFd(h.fd)
	if err != nil {
		return nil, err
	}
	h.fd = -1
	return s, nil
}

// Adopt makes the connection a transport on the loop of ctx's task, for a
// protocol from factory, as loop.ConnectAcceptedSocket; the prefix comes
// to the protocol first, in one DataReceived right after ConnectionMade
// (or through GetBuffer and BufferUpdated), before anything read from the
// socket (loop.AttachSocket).
func (h *HandedConn) Adopt(ctx context.Context, factory func() loop.BaseProtocol) (loop.Transport, loop.BaseProtocol, error) {
	l, err := loop.RunningLoop(ctx)
	if err != nil {
		return nil, nil, err
	}
	s, err := h.Socket()
	if err != nil {
		return nil, nil, err
	}
	return l.AttachSocket(ctx, factory, s, h.prefix)
}

// OpenStreams makes the connection a reader and a writer on the loop of
// ctx's task (asyncio.open_connection(sock=...)), the prefix first in the
// reader's buffer (loop.AttachStreams). limit is the reader's limit (<= 0:
// 64 KiB).
func (h *HandedConn) OpenStreams(ctx context.Context, limit int) (*loop.StreamReader, *loop.StreamWriter, error) {
	if _, err := loop.RunningLoop(ctx); err != nil {
		return nil, nil, err
	}
	s, err := h.Socket()
	if err != nil {
		return nil, nil, err
	}
	return loop.AttachStreams(ctx, s, h.prefix, limit)
}

// File adopts the connection as an *os.File; the prefix is not in it.
func (h *HandedConn) File() (*os.File, error) {
	fd, err := h.Detach()
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), "handed-conn"), nil
}

// NetConn adopts the connection as a net.Conn (a *net.TCPConn or
// *net.UnixConn, as net.FileConn makes it) that reads the prefix first: if
// there is one, the net.Conn is a wrapper whose Read returns it before
// anything from the socket, the other methods the connection's own. On an
// error (the descriptor is not a socket) the connection is closed.
func (h *HandedConn) NetConn() (net.Conn, error) {
	f, err := h.File()
	if err != nil {
		return nil, err
	}
	nc, err := net.FileConn(f) // a duplicate, in Go's netpoller
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("aio: NetConn: %w", err)
	}
	if len(h.prefix) == 0 {
		return nc, nil
	}
	return &prefixConn{Conn: nc, prefix: h.prefix}, nil
}

// prefixConn is a net.Conn that reads prefix first.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (p *prefixConn) Read(b []byte) (int, error) {
	if len(p.prefix) > 0 {
		n := copy(b, p.prefix)
		p.prefix = p.prefix[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}

package aio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A peer is the side channel between this process and one other: its
// parent or one of its children (internal/child starts every child with
// one once this package is linked in). It is symmetric: each side hosts
// objects the other may use, so a frame is a request to the receiver's
// objects or a reply to one of its own requests.
//
// Frames are [header][payload]: the header is frameHeader bytes, the
// payload at most maxPayload. File descriptors travel as SCM_RIGHTS with
// the first byte of the frame that names them. A frame is dispatched only
// once it has arrived whole, so a process killed in the middle of one
// (a Put of 2 MiB, say) leaves nothing behind but a connection that
// ends.

const (
	frameHeader = 24
	maxPayload  = 1 << 31
)

// Frame operations. Requests carry an object id; replies the request id.
const (
	opReply  uint8 = iota + 1
	opCancel       // withdraw request req, if it still waits
	opRecall       // give back the items lent of queue obj (qclient.go)
	opBye          // the sender ends normally: what it took of semaphores stays taken
	// Everything from opObject on is an operation of the object's kind.
	opObject
)

// Reply status.
const (
	stOK         uint8 = iota // done; data is the result
	stTimeout                 // a timed or non-blocking wait gave up (ErrEmpty, ErrFull, false)
	stErr                     // data is an error message
	stOwnerDied               // see ErrOwnerDied
	stCancelled               // the request was withdrawn before it was granted
	stBroken                  // ErrBrokenBarrier
	stGone                    // no such object: it was made by a process that has exited, or never existed
	stWrongState              // data is the message of a ValueError-like misuse
)

type header struct {
	n      uint32 // payload length
	op     uint8
	status uint8
	nfds   uint8
	req    uint64
	obj    uint64
}

func (h *header) put(b []byte) {
	binary.LittleEndian.PutUint32(b[0:], h.n)
	b[4], b[5], b[6], b[7] = h.op, h.status, h.nfds, 0
	binary.LittleEndian.PutUint64(b[8:], h.req)
	binary.LittleEndian.PutUint64(b[16:], h.obj)
}

func (h *header) get(b []byte) {
	h.n = binary.LittleEndian.Uint32(b[0:])
	h.op, h.status, h.nfds = b[4], b[5], b[6]
	h.req = binary.LittleEndian.Uint64(b[8:])
	h.obj = binary.LittleEndian.Uint64(b[16:])
}

// reply is what a request ends with.
type reply struct {
	status uint8
	data   []byte
	fds    []int
	err    error // for this process's own requests only: an error itself, which a peer gets as data's text
}

// call is a request of ours that the peer has not answered yet.
type call struct {
	done func(reply)
}

type outFrame struct {
	head []byte // header and the start of the payload
	body []byte // the rest of the payload, not copied
	off  int    // bytes written so far
	fds  []int  // sent with head's first byte, then closed if own
	own  bool

	written chan struct{} // if not nil, closed once the frame is written whole or dropped
}

type peer struct {
	tok uint64
	pid int // the other process's, for the shared-memory locks it held

	posts        atomic.Uint64 // frames posted to the peer, counted once queued
	appliedPosts atomic.Uint64 // of those, how many the peer is known to have applied
	f            *os.File
	rc           syscall.RawConn
	name         string // for errors: "parent" or "child pid N"

	wmu    sync.Mutex
	wq     []outFrame
	wspare []outFrame
	wbusy  bool  // a sender or the flusher owns the socket's writing side
	wlast  int64 // nanotime of the last frame sent with the socket idle
	wburst int   // how many frames in a row came within streamGap
	wdead  bool
	batch  bool // the reader is dispatching a batch: replies wait for its end

	cmu   sync.Mutex
	calls map[uint64]*call
	next  uint64
	dead  bool
	fdq   []int // received descriptors not yet claimed by a frame

	done chan struct{} // closed when the reader has finished

	endsClean atomic.Bool // the peer said it ends normally (opBye)
}

// errPeerGone is the error of a call whose peer went away.
type peerGoneError struct{ name string }

func (e *peerGoneError) Error() string {
	return "aio: the connection to the " + e.name + " ended (the process exited)"
}

func (e *peerGoneError) Is(target error) bool { return target == ErrHostGone }

func newPeer(f *os.File, tok uint64, pid int, name string) (*peer, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	p := &peer{tok: tok, pid: pid, f: f, rc: rc, name: name, calls: map[uint64]*call{}, done: make(chan struct{})}
	go p.readLoop()
	return p, nil
}

// start sends a request and arranges for done to get its reply, or a
// stGone reply if the peer is gone; it returns the request id. The
// request's payload is prefix followed by body, which is not copied (the
// caller must not change it).
func (p *peer) start(obj uint64, op uint8, prefix, body []byte, fds []int, done func(reply)) uint64 {
	p.cmu.Lock()
	if p.dead {
		p.cmu.Unlock()
		done(reply{status: stGone, data: []byte((&peerGoneError{p.name}).Error())})
		return 0
	}
	p.next++
	req := p.next
	if done != nil {
		p.calls[req] = &call{done: done}
	}
	p.cmu.Unlock()
	p.send(header{op: op, req: req, obj: obj}, prefix, body, fds, false)
	return req
}

func (p *peer) isDead() bool {
	p.cmu.Lock()
	defer p.cmu.Unlock()
	return p.dead
}

// post sends a request that gets no reply (req 0): its effects are
// ordered with this process's later requests on the same connection.
func (p *peer) post(obj uint64, op uint8, prefix, body []byte) {
	p.send(header{op: op, obj: obj}, prefix, body, nil, false)
	p.posts.Add(1) // counted once queued: a later request goes behind it
}

// applied waits until the peer has applied what this process posted to
// it so far: a request to no object (object 0), answered at once, comes
// back after every frame queued before it has been dispatched. Posts
// are counted; one such round trip covers every post counted before it
// was queued, for whichever goroutine is waiting.
func (p *peer) applied() {
	target := p.posts.Load()
	if p.appliedPosts.Load() >= target {
		return
	}
	ch := make(chan struct{})
	p.start(0, opObject, plainPrefix, nil, nil, func(reply) { close(ch) })
	<-ch
	for {
		a := p.appliedPosts.Load()
		if a >= target || p.appliedPosts.CompareAndSwap(a, target) {
			return
		}
	}
}

// postedApplied makes what this process posted, to every peer, applied
// before an operation that others see without a message: a shared-memory
// Release or Set (a Put then a Release, in that order, for whoever takes
// the lock next, as when both went through the host).
func postedApplied() {
	settleAll()
	var ps []*peer // allocated only when a post waits: this runs at every shared-memory Put and Release
	peersMu.Lock()
	for _, p := range peers {
		if p.appliedPosts.Load() < p.posts.Load() {
			ps = append(ps, p)
		}
	}
	peersMu.Unlock()
	for _, p := range ps {
		p.applied()
	}
}

// cancel asks the peer to withdraw request req; its reply still comes.
func (p *peer) cancel(obj, req uint64) {
	p.send(header{op: opCancel, req: req, obj: obj}, nil, nil, nil, false)
}

// recall asks the peer to give back what it was lent of queue obj.
func (p *peer) recall(obj uint64) {
	p.send(header{op: opRecall, obj: obj}, nil, nil, nil, false)
}

// answer sends the reply to the peer's request req (none for a posted
// request).
func (p *peer) answer(req uint64, r reply) {
	if req == 0 {
		closeFDs(r.fds)
		return
	}
	p.send(header{op: opReply, status: r.status, req: req}, nil, r.data, r.fds, true)
}

// send queues a frame and writes what the socket takes. The first sender
// to find the socket idle writes every frame queued meanwhile too, in one
// writev where it can; if the socket is full it leaves the rest to a
// flusher goroutine rather than wait, so that the reader, which answers
// requests, never waits on a peer that may be waiting on it.
func (p *peer) send(h header, prefix, body []byte, fds []int, own bool) {
	p.sendFrame(h, prefix, body, fds, own, nil)
}

// postWritten posts like post, and returns a channel closed once the frame
// has been written whole (or dropped, the connection gone): until then
// body is the socket's, and must not change. It spares a copy of a large
// item (a 2 MiB Put: 45% more MB/s).
func (p *peer) postWritten(obj uint64, op uint8, prefix, body []byte) <-chan struct{} {
	written := make(chan struct{})
	p.sendFrame(header{op: op, obj: obj}, prefix, body, nil, false, written)
	p.posts.Add(1)
	return written
}

func (p *peer) sendFrame(h header, prefix, body []byte, fds []int, own bool, written chan struct{}) {
	h.n = uint32(len(prefix) + len(body))
	h.nfds = uint8(len(fds))
	head := make([]byte, frameHeader+len(prefix))
	h.put(head)
	copy(head[frameHeader:], prefix)
	fr := outFrame{head: head, body: body, fds: fds, own: own, written: written}
	p.wmu.Lock()
	if p.wdead {
		p.wmu.Unlock()
		closeOwn(fr)
		return
	}
	p.wq = append(p.wq, fr)
	if p.wbusy || p.batch {
		p.wmu.Unlock()
		return
	}
	p.wbusy = true
	now := nanotime()
	if now-p.wlast < streamGap {
		p.wburst++
	} else {
		p.wburst = 0
	}
	if p.wburst >= streamBurst {
		// Frames are streaming: let a flusher write them together, while
		// more queue up, rather than make a system call for each.
		p.wlast = now
		p.wmu.Unlock()
		go p.flush()
		return
	}
	p.wlast = now
	p.writeQueued()
}

// writeQueued writes the queued frames for the caller, which has set
// wbusy and holds wmu, and hands the writing side back (to a flusher if
// the socket is full); it returns with wmu released.
func (p *peer) writeQueued() {
	for {
		q := p.wq
		p.wq = p.wspare[:0]
		p.wmu.Unlock()
		n, err := p.write(q, false)
		p.wmu.Lock()
		if err != nil {
			p.failWrites(q[n:])
			p.wmu.Unlock()
			return
		}
		if n < len(q) {
			p.wq = append(q[n:], p.wq...)
			p.wmu.Unlock()
			go p.flush()
			return
		}
		clear(q)
		p.wspare = q
		if len(p.wq) == 0 {
			p.wbusy = false
			p.wmu.Unlock()
			return
		}
	}
}

// endBatch writes what the reader queued while it dispatched a batch of
// frames (the replies to the peer's requests in it go out in one write,
// not one each).
func (p *peer) endBatch() {
	p.wmu.Lock()
	p.batch = false
	if p.wbusy || p.wdead || len(p.wq) == 0 {
		p.wmu.Unlock()
		return
	}
	p.wbusy = true
	p.writeQueued()
}

// streamGap and streamBurst: once streamBurst frames in a row have come
// within streamGap of each other, they are taken for a stream, and a
// flusher writes them with those that follow, rather than a system call
// for each. A round trip's few frames go out at once.
const (
	streamGap   = int64(20 * time.Microsecond)
	streamBurst = 4
)

var clockBase = time.Now()

func nanotime() int64 { return int64(time.Since(clockBase)) }

// flushed reports whether every frame queued has been written (or can
// never be).
func (p *peer) flushed() bool {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	return p.wdead || !p.wbusy && len(p.wq) == 0
}

// allPeers is the peers of this process now.
func allPeers() []*peer {
	peersMu.Lock()
	ps := make([]*peer, 0, len(peers))
	for _, p := range peers {
		ps = append(ps, p)
	}
	peersMu.Unlock()
	return ps
}

// sayBye tells every peer that this process ends normally, as the last
// frame it sends them.
func sayBye() {
	for _, p := range allPeers() {
		p.send(header{op: opBye}, nil, nil, nil, false)
	}
}

// flushPeers waits, at most d, until every frame this process queued for
// its peers has been written: what it posted (an Event's Set, a Put) must
// not die with it when it exits.
func flushPeers(d time.Duration) {
	deadline := time.Now().Add(d)
	for _, p := range allPeers() {
		for !p.flushed() && time.Now().Before(deadline) {
			time.Sleep(20 * time.Microsecond)
		}
	}
}

// failWrites ends the writing side after an error; wmu is held.
func (p *peer) failWrites(rest []outFrame) {
	for _, fr := range rest {
		closeOwn(fr)
	}
	for _, fr := range p.wq {
		closeOwn(fr)
	}
	p.wq = nil
	p.wdead = true
	p.wbusy = false
}

// closeOwn ends a frame that was written or dropped: its own
// descriptors are closed and a sender waiting for it is told.
func closeOwn(fr outFrame) {
	if fr.own {
		closeFDs(fr.fds)
	}
	if fr.written != nil {
		close(fr.written)
	}
}

// flush writes the queued frames, waiting for the socket as it must, and
// hands the writing side back when the queue is empty.
func (p *peer) flush() {
	p.wmu.Lock()
	for len(p.wq) > 0 {
		q := p.wq
		p.wq = nil
		p.wmu.Unlock()
		n, err := p.write(q, true)
		p.wmu.Lock()
		if err != nil {
			p.failWrites(q[n:])
			p.wmu.Unlock()
			return
		}
	}
	p.wbusy = false
	p.wmu.Unlock()
}

// write writes frames from q, the first of which may be partly written
// (its off), and returns how many it wrote whole. Without wait it stops
// where the socket is full. A frame with descriptors goes alone, with
// sendmsg; the others go together, with writev.
func (p *peer) write(q []outFrame, wait bool) (int, error) {
	done := 0
	var werr error
	iov := make([][]byte, 0, 2*min(len(q), 512))
	err := p.rc.Write(func(fd uintptr) bool {
		for done < len(q) {
			fr := &q[done]
			var m int
			var e error
			if len(fr.fds) > 0 && fr.off == 0 {
				m, e = unix.SendmsgN(int(fd), fr.head, unix.UnixRights(fr.fds...), nil, 0)
			} else {
				iov = iov[:0]
				for k := done; k < len(q) && len(iov) < cap(iov); k++ {
					f := &q[k]
					if k > done && len(f.fds) > 0 {
						break
					}
					iov = f.segments(iov)
				}
				m, e = writev(int(fd), iov)
			}
			if e == unix.EINTR {
				continue
			}
			if e == unix.EAGAIN {
				return !wait
			}
			if e != nil {
				werr = e
				return true
			}
			// Advance over what was written.
			for m > 0 && done < len(q) {
				m = q[done].advance(m)
				if q[done].finished() {
					closeOwn(q[done])
					done++
				}
			}
		}
		return true
	})
	if err == nil {
		err = werr
	}
	return done, err
}

// segments appends what is left of the frame to iov.
func (f *outFrame) segments(iov [][]byte) [][]byte {
	if f.off < len(f.head) {
		iov = append(iov, f.head[f.off:])
		if len(f.body) > 0 {
			iov = append(iov, f.body)
		}
		return iov
	}
	if rest := f.body[f.off-len(f.head):]; len(rest) > 0 {
		iov = append(iov, rest)
	}
	return iov
}

// advance counts m more bytes written and returns what is left of m.
func (f *outFrame) advance(m int) int {
	left := len(f.head) + len(f.body) - f.off
	if m >= left {
		f.off += left
		return m - left
	}
	f.off += m
	return 0
}

func (f *outFrame) finished() bool { return f.off == len(f.head)+len(f.body) }

// readLoop reads frames until the peer goes, dispatching each.
func (p *peer) readLoop() {
	defer close(p.done)
	buf := make([]byte, 64<<10)
	oob := make([]byte, unix.CmsgSpace(4*64))
	r, w := 0, 0 // buf[r:w] is read and not yet parsed
	read := func(into []byte) (int, error) {
		var n, oobn int
		var rerr error
		err := p.rc.Read(func(fd uintptr) bool {
			for {
				n, oobn, _, _, rerr = unix.Recvmsg(int(fd), into, oob, recvFlags)
				if rerr == unix.EINTR {
					continue
				}
				return rerr != unix.EAGAIN
			}
		})
		if err == nil {
			err = rerr
		}
		if oobn > 0 {
			p.takeFDs(oob[:oobn])
		}
		if err == nil && n == 0 {
			err = io.EOF
		}
		return n, err
	}
	var err error
	for err == nil {
		if w-r >= 2*frameHeader {
			p.wmu.Lock()
			p.batch = true
			p.wmu.Unlock()
		}
		for w-r >= frameHeader {
			var h header
			h.get(buf[r:])
			if h.n > maxPayload {
				err = fmt.Errorf("aio: corrupt frame from the %s", p.name)
				break
			}
			if int(h.n) <= w-r-frameHeader {
				payload := make([]byte, h.n)
				copy(payload, buf[r+frameHeader:])
				r += frameHeader + int(h.n)
				p.dispatch(h, payload)
				continue
			}
			if frameHeader+int(h.n) > len(buf) {
				// A big frame: read its payload straight into its own
				// slice (with what was held for the batch sent first).
				p.endBatch()
				payload := make([]byte, h.n)
				have := copy(payload, buf[r+frameHeader:w])
				r, w = 0, 0
				for have < len(payload) && err == nil {
					var n int
					n, err = read(payload[have:])
					have += n
				}
				if err != nil {
					break
				}
				p.dispatch(h, payload)
				continue
			}
			break
		}
		p.endBatch()
		if err != nil {
			break
		}
		if r > 0 {
			w = copy(buf, buf[r:w])
			r = 0
		}
		var n int
		n, err = read(buf[w:])
		w += n
	}
	p.gone()
}

func (p *peer) takeFDs(oob []byte) {
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
		p.cmu.Lock()
		p.fdq = append(p.fdq, fds...)
		p.cmu.Unlock()
	}
}

func (p *peer) dispatch(h header, payload []byte) {
	var fds []int
	if h.nfds > 0 {
		p.cmu.Lock()
		k := min(int(h.nfds), len(p.fdq))
		fds = append([]int(nil), p.fdq[:k]...)
		p.fdq = p.fdq[k:]
		p.cmu.Unlock()
	}
	switch h.op {
	case opReply:
		p.cmu.Lock()
		c := p.calls[h.req]
		delete(p.calls, h.req)
		p.cmu.Unlock()
		if c == nil {
			closeFDs(fds)
			return
		}
		c.done(reply{status: h.status, data: payload, fds: fds})
	case opCancel:
		if o := hostedObject(h.obj); o != nil {
			o.withdraw(p, h.req)
		}
	case opRecall:
		recallFrom(p, h.obj)
	case opBye:
		p.endsClean.Store(true)
	default:
		o := hostedObject(h.obj)
		if o == nil {
			closeFDs(fds)
			p.answer(h.req, reply{status: stGone, data: []byte(errGoneText)})
			return
		}
		req := &request{p: p, req: h.req, op: h.op, fds: fds}
		if err := req.decode(payload); err != nil {
			closeFDs(fds)
			p.answer(h.req, reply{status: stErr, data: []byte(err.Error())})
			return
		}
		o.serve(req)
	}
}

func closeFDs(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// gone ends the peer: its calls fail, what it held in our objects is
// released (ErrOwnerDied), what it waited for is withdrawn.
func (p *peer) gone() {
	p.cmu.Lock()
	p.dead = true
	calls := p.calls
	p.calls = nil
	fdq := p.fdq
	p.fdq = nil
	p.cmu.Unlock()
	closeFDs(fdq)
	p.wmu.Lock()
	p.wdead = true
	for _, fr := range p.wq {
		closeOwn(fr)
	}
	p.wq = nil
	p.wmu.Unlock()
	msg := []byte((&peerGoneError{p.name}).Error())
	for _, c := range calls {
		c.done(reply{status: stGone, data: msg})
	}
	forgetPeer(p)
	forgetClients(p)
	for _, o := range allHosted() {
		o.peerGone(p)
	}
	// Closing interrupts a flusher waiting to write (os.File's poller
	// does); the descriptor is released once it has let go.
	p.f.Close()
}

var errGoneText = "aio: no such object here: it was made by a process that has exited, or closed"

// ErrHostGone is the error of an operation on an object whose hosting
// process (the one that made it) has exited, or on a connection to a
// process that has.
var ErrHostGone = errors.New("aio: the process that hosts this object has exited")

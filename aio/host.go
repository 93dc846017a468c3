package aio

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/internal/child"
	"github.com/asyncgo/asyncgo/internal/goid"
	"github.com/asyncgo/asyncgo/loop"
)

// The host side: every object lives in the process that made it, which
// serves the operations of other processes on it through their peers, and
// its own directly. This file holds the process's identity, its peers, the
// table of objects it hosts, and the references that name an object in
// another process.

// bg is the ctx of the blocking methods: no loop, no end.
var bg = context.Background()

var (
	selfToken = newToken()

	peersMu sync.Mutex
	peers   = map[uint64]*peer{} // by the other process's token

	hostMu   sync.RWMutex
	hosted   = map[uint64]object{}
	nextObj  atomic.Uint64
	localReq atomic.Uint64
)

func newToken() uint64 {
	var b [8]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			panic(err)
		}
		if t := binary.LittleEndian.Uint64(b[:]); t != 0 {
			return t
		}
	}
}

func init() {
	child.SetSideChannel(selfToken, newToken, adoptChild)
	if f, pt, own := child.InheritedSideChannel(); f != nil {
		selfToken = own
		child.SetSideChannel(selfToken, newToken, adoptChild)
		p, err := newPeer(f, pt, os.Getppid(), "parent process")
		if err == nil {
			peersMu.Lock()
			peers[pt] = p
			peersMu.Unlock()
		}
	}
}

// adoptChild is called by internal/child for each child it starts.
func adoptChild(f *os.File, tok uint64, cp *child.Process) {
	p, err := newPeer(f, tok, cp.Pid(), fmt.Sprintf("child process %d", cp.Pid()))
	if err != nil {
		return
	}
	peersMu.Lock()
	peers[tok] = p
	peersMu.Unlock()
}

func forgetPeer(p *peer) {
	peersMu.Lock()
	if peers[p.tok] == p {
		delete(peers, p.tok)
		exited[p.tok] = true
	}
	peersMu.Unlock()
}

// exited holds the tokens of the peers that have gone (a few bytes each,
// for the life of the process): a reference to an object one of them
// hosted still decodes, and its operations return ErrHostGone, as those
// of a Queue made by a child that has exited since (rather than failing
// the Get that brought the reference).
var exited = map[uint64]bool{}

const errHostExited = "it was made by a process that has exited"

func hasExited(tok uint64) bool {
	peersMu.Lock()
	defer peersMu.Unlock()
	return exited[tok]
}

func peerOf(tok uint64) *peer {
	peersMu.Lock()
	defer peersMu.Unlock()
	return peers[tok]
}

// object is what a hosted object does with the requests of every process.
// serve answers r (now, or later through r.respond); it never calls a reply
// while holding the object's lock.
type object interface {
	serve(r *request)
	withdraw(p *peer, req uint64)
	peerGone(p *peer)
}

func host(o object) uint64 {
	id := nextObj.Add(1)
	hostMu.Lock()
	hosted[id] = o
	hostMu.Unlock()
	return id
}

func hostedObject(id uint64) object {
	hostMu.RLock()
	defer hostMu.RUnlock()
	return hosted[id]
}

func allHosted() []object {
	hostMu.RLock()
	defer hostMu.RUnlock()
	out := make([]object, 0, len(hosted))
	for _, o := range hosted {
		out = append(out, o)
	}
	return out
}

// request is one operation on a hosted object, of this process (p nil) or
// of a peer's.
type request struct {
	p       *peer
	req     uint64
	op      uint8
	owner   uint64        // who acquires: a goroutine or a task, in p's process
	timeout time.Duration // < 0: wait as long as it takes; 0: do not wait
	data    []byte
	fds     []int
	reply   func(reply) // this process's requests; a peer's are answered on its connection
	timer   *time.Timer
	aux     int // kind-specific: a saved recursion count, a barrier's generation
}

// payload layout of a request: owner u64, timeout i64, data.
func requestPrefix(owner uint64, timeout time.Duration) []byte {
	b := make([]byte, 16)
	binary.LittleEndian.PutUint64(b, owner)
	binary.LittleEndian.PutUint64(b[8:], uint64(timeout))
	return b
}

// respond answers r: through its reply function, or to its peer (none
// for a posted request).
func (r *request) respond(rep reply) {
	switch {
	case r.reply != nil:
		r.reply(rep)
	case r.p != nil:
		r.p.answer(r.req, rep)
	default:
		closeFDs(rep.fds)
	}
}

// plainPrefix is the prefix of a request with no owner that waits as
// long as it takes, shared by every such request: a frame copies its
// prefix, so nobody writes to it.
var plainPrefix = requestPrefix(0, -1)

func (r *request) decode(b []byte) error {
	if len(b) < 16 {
		return errors.New("aio: short request")
	}
	r.owner = binary.LittleEndian.Uint64(b)
	r.timeout = time.Duration(binary.LittleEndian.Uint64(b[8:]))
	r.data = b[16:]
	return nil
}

// holder names who holds a lock or semaphore: a process (nil: the host)
// and an owner in it.
type holder struct {
	p     *peer
	owner uint64
}

// outbox collects the replies an object decides on under its lock, to
// send once it has let go.
type outbox []struct {
	r   *request
	rep reply
}

func (b *outbox) add(r *request, rep reply) {
	if r.timer != nil {
		r.timer.Stop()
		r.timer = nil
	}
	*b = append(*b, struct {
		r   *request
		rep reply
	}{r, rep})
}

func (b outbox) send() {
	for _, x := range b {
		x.r.respond(x.rep)
	}
}

// waitq is a FIFO of waiting requests.
type waitq []*request

func (q *waitq) push(r *request) { *q = append(*q, r) }

func (q *waitq) pop() *request {
	if len(*q) == 0 {
		return nil
	}
	r := (*q)[0]
	(*q)[0] = nil
	*q = (*q)[1:]
	return r
}

func (q *waitq) remove(p *peer, req uint64) *request {
	for i, r := range *q {
		if r.p == p && r.req == req {
			*q = append((*q)[:i], (*q)[i+1:]...)
			return r
		}
	}
	return nil
}

// removePeer drops the requests of a peer that has gone (nobody to answer).
func (q *waitq) removePeer(p *peer) {
	out := (*q)[:0]
	for _, r := range *q {
		if r.p != p {
			out = append(out, r)
		} else if r.timer != nil {
			r.timer.Stop()
		}
	}
	clear((*q)[len(out):])
	*q = out
}

// arm starts r's timeout, if it has one: expire runs when it passes.
func arm(r *request, expire func(*request)) {
	if r.timeout > 0 {
		r.timer = time.AfterFunc(r.timeout, func() { expire(r) })
	}
}

// ref names an object in any process: the token of the process that hosts
// it, its id there and its kind. It is what crosses in a gob stream.
type ref struct {
	Host uint64
	ID   uint64
	Kind uint8
}

// handle is a process's way to an object: the object itself in its host,
// the peer to its host elsewhere.
type handle struct {
	ref
	local object
	p     *peer
	gone  bool // its host was a peer, and has exited
}

func newHandle(kind uint8, o object) handle {
	return handle{ref: ref{Host: selfToken, ID: host(o), Kind: kind}, local: o}
}

// resolve turns a ref received from another process into a handle.
func resolve(r ref, kind uint8) (handle, error) {
	if r.Kind != kind {
		return handle{}, fmt.Errorf("aio: the value holds a %s, not a %s", kindName(r.Kind), kindName(kind))
	}
	if r.Host == selfToken {
		o := hostedObject(r.ID)
		if o == nil {
			return handle{}, ErrHostGone
		}
		return handle{ref: r, local: o}, nil
	}
	p := peerOf(r.Host)
	if p == nil && hasExited(r.Host) {
		return handle{ref: r, gone: true}, nil
	}
	if p == nil {
		return handle{}, fmt.Errorf("aio: a %s arrived from a process this one shares no connection with: objects are shared between a process and its parent and children only", kindName(r.Kind))
	}
	return handle{ref: r, p: p}, nil
}

func (h *handle) encode() ([]byte, error) {
	if h.ID == 0 {
		return nil, errors.New("aio: a zero object cannot be sent: make it with its New function")
	}
	b := make([]byte, 17)
	binary.LittleEndian.PutUint64(b, h.Host)
	binary.LittleEndian.PutUint64(b[8:], h.ID)
	b[16] = h.Kind
	return b, nil
}

func (h *handle) decode(b []byte, kind uint8) error {
	if len(b) != 17 {
		return errors.New("aio: corrupt object reference")
	}
	r := ref{Host: binary.LittleEndian.Uint64(b), ID: binary.LittleEndian.Uint64(b[8:]), Kind: b[16]}
	nh, err := resolve(r, kind)
	if err != nil {
		return err
	}
	*h = nh
	return nil
}

// start issues an operation; done receives its reply exactly once. It
// returns the request id, for cancel.
func (h *handle) start(op uint8, owner uint64, timeout time.Duration, data []byte, fds []int, done func(reply)) uint64 {
	if h.local != nil {
		id := localReq.Add(1)
		h.local.serve(&request{req: id, op: op, owner: owner, timeout: timeout, data: data, fds: fds, reply: done})
		return id
	}
	if h.gone {
		done(reply{status: stGone, data: []byte(errHostExited)})
		return 0
	}
	if h.p == nil {
		done(reply{status: stErr, data: []byte("aio: zero object: make it with its New function")})
		return 0
	}
	return h.p.start(h.ID, op, requestPrefix(owner, timeout), data, fds, done)
}

// post issues an operation that needs no answer (an Event's Set, a Put
// to an unbounded queue): a process that uses the object next, this one
// or another, sees its effect, since each connection keeps its order and
// the host applies it before it answers anything after it.
func (h *handle) post(op uint8, data []byte) error {
	if h.local != nil {
		h.local.serve(&request{op: op, timeout: -1, data: data})
		return nil
	}
	if h.gone {
		return fmt.Errorf("%w: %s", ErrHostGone, errHostExited)
	}
	if h.p == nil {
		return errors.New("aio: zero object: make it with its New function")
	}
	if h.p.isDead() {
		return fmt.Errorf("%w: %s", ErrHostGone, &peerGoneError{h.p.name})
	}
	h.p.post(h.ID, op, plainPrefix, data)
	return nil
}

func (h *handle) cancel(req uint64) {
	if h.local != nil {
		h.local.withdraw(nil, req)
		return
	}
	if h.p != nil && req != 0 {
		h.p.cancel(h.ID, req)
	}
}

// call runs an operation and waits for its reply. With a task's ctx it
// awaits on the task's loop, never blocking it; with any other ctx it
// blocks the goroutine until the reply or ctx's end. If the wait ends
// first (cancelled), the request is withdrawn, and a grant that was
// already on its way is given to undo, so that nothing is lost or left
// held; a plain goroutine simply keeps a grant that arrives as its ctx
// ends.
func (h *handle) call(ctx context.Context, op uint8, owner uint64, timeout time.Duration, data []byte, fds []int, undo func(reply)) (reply, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if l := taskLoop(ctx); l != nil {
		return h.await(ctx, l, op, owner, timeout, data, fds, undo)
	}
	ch := make(chan reply, 1)
	req := h.start(op, owner, timeout, data, fds, func(r reply) { ch <- r })
	if ctx.Done() == nil {
		return <-ch, nil
	}
	select {
	case r := <-ch:
		return r, nil
	case <-ctx.Done():
	}
	h.cancel(req)
	r := <-ch
	if r.status == stCancelled {
		return r, ctx.Err()
	}
	return r, nil
}

func (h *handle) await(ctx context.Context, l *loop.Loop, op uint8, owner uint64, timeout time.Duration, data []byte, fds []int, undo func(reply)) (reply, error) {
	cf := executor.NewFuture[reply]()
	giveBack := func(r reply) {
		if r.status == stOK && undo != nil {
			undo(r)
		} else {
			closeFDs(r.fds)
		}
	}
	req := h.start(op, owner, timeout, data, fds, func(r reply) {
		if cf.SetResult(r) != nil {
			giveBack(r)
		}
	})
	cf.AddDoneCallback(func(cf *executor.Future[reply]) {
		if cf.Cancelled() {
			h.cancel(req)
		}
	})
	return awaitUndo(ctx, l, cf, giveBack)
}

// ownerOf names the caller for locks: the task of a loop, or else the
// goroutine.
func ownerOf(ctx context.Context) uint64 {
	if ctx != nil {
		if t := loop.CurrentTask(ctx); t != nil {
			return taskOwner(t)
		}
	}
	return uint64(goid.Get())
}

// taskOwner gives a task an owner id: its address, which no goroutine id
// (small integers) can equal, and which no other task has while it lives.
func taskOwner(t loop.AnyTask) uint64 {
	return uint64(reflect.ValueOf(t).Pointer()) | 1<<63
}

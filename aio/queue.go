package aio

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Object kinds, as references name them.
const (
	kindQueue uint8 = iota + 1
	kindJoinable
	kindSimple
	kindLock
	kindRLock
	kindSemaphore
	kindBounded
	kindEvent
	kindCondition
	kindBarrier
	kindPipe
	kindArena // shared memory (shm_linux.go)
)

func kindName(k uint8) string {
	switch k {
	case kindQueue:
		return "Queue"
	case kindJoinable:
		return "JoinableQueue"
	case kindSimple:
		return "SimpleQueue"
	case kindLock:
		return "Lock"
	case kindRLock:
		return "RLock"
	case kindSemaphore:
		return "Semaphore"
	case kindBounded:
		return "BoundedSemaphore"
	case kindEvent:
		return "Event"
	case kindCondition:
		return "Condition"
	case kindBarrier:
		return "Barrier"
	case kindPipe:
		return "Connection"
	case kindArena:
		return "shared memory"
	}
	return fmt.Sprintf("object of kind %d", k)
}

// Errors of the queues, as Python's queue.Empty, queue.Full and the
// ValueError of a closed queue.
var (
	ErrEmpty  = errors.New("aio: queue is empty")
	ErrFull   = errors.New("aio: queue is full")
	ErrClosed = errors.New("aio: queue is closed")
	// ErrTaskDone is JoinableQueue.TaskDone called more times than items
	// were put (Python's ValueError).
	ErrTaskDone = errors.New("aio: task_done() called too many times")
)

// Queue operations.
const (
	qPut = opObject + iota
	qGet
	qUnget
	qSize
	qTaskDone
	qJoin
)

// queueObj is a queue in its host: the items, encoded, and who waits.
type queueObj struct {
	mu         sync.Mutex
	maxsize    int
	joinable   bool
	items      [][]byte
	head       int
	getters    waitq
	putters    waitq // each holds its item in data
	joiners    waitq
	unfinished int

	id uint64
	// lent: items delivered to a process's lend requests and not yet
	// taken there or given back, by the request they answered (ids grow
	// with each process's requests, so in the order lent).
	lent     map[*peer]map[uint64][]byte
	recalled map[*peer]bool
}

func (q *queueObj) n() int { return len(q.items) - q.head }

// full reports whether the queue is at its bound, counting the items lent
// to processes and not yet taken there: they are still in the queue (Qsize
// counts them), and maxsize bounds what a consumer's standing gets hold.
func (q *queueObj) full() bool { return q.maxsize > 0 && q.n()+q.lentN() >= q.maxsize }

func (q *queueObj) pushItem(b []byte, out *outbox) {
	if g := q.getters.pop(); g != nil {
		q.deliver(g, b, out)
		return
	}
	if q.head > 0 && q.head == len(q.items) {
		q.items, q.head = q.items[:0], 0
	}
	q.items = append(q.items, b)
}

// deliver answers a getter with b; a lend request's item is counted as
// lent to its process.
func (q *queueObj) deliver(g *request, b []byte, out *outbox) {
	if g.op == qLend {
		if q.lent == nil {
			q.lent = map[*peer]map[uint64][]byte{}
		}
		l := q.lent[g.p]
		if l == nil {
			l = map[uint64][]byte{}
			q.lent[g.p] = l
		}
		l[g.req] = b
		if !lentAhead(g) && len(q.getters) > 0 {
			// A request made for a Get that may have gone (it timed out,
			// or an earlier item served it): if a getter elsewhere
			// waits behind it, the item is recalled for that getter.
			q.recallFor(g.p, out)
		}
	}
	out.add(g, reply{data: b})
}

// consume forgets the items lent to p that it took, named by the lend
// requests they answered.
func (q *queueObj) consume(p *peer, ids []uint64) {
	l := q.lent[p]
	for _, id := range ids {
		delete(l, id)
	}
	if len(l) == 0 {
		delete(q.lent, p)
		delete(q.recalled, p)
	}
}

// unlend puts the items lent to p that it gives back (all, for ids nil)
// at the front, in the order they were lent, and answers getters.
func (q *queueObj) unlend(p *peer, ids []uint64, out *outbox) {
	l := q.lent[p]
	if ids == nil {
		for id := range l {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for i := len(ids) - 1; i >= 0; i-- {
		if b, ok := l[ids[i]]; ok {
			delete(l, ids[i])
			q.pushFront(b)
		}
	}
	if len(l) == 0 {
		delete(q.lent, p)
	}
	delete(q.recalled, p)
	for q.n() > 0 && len(q.getters) > 0 {
		q.deliver(q.getters.pop(), q.popItem(), out)
	}
}

// lentIDs decodes a list of lend request ids (false: malformed).
func lentIDs(b []byte) ([]uint64, bool) {
	if len(b)%8 != 0 {
		return nil, false
	}
	ids := make([]uint64, 0, len(b)/8)
	for ; len(b) > 0; b = b[8:] {
		ids = append(ids, binary.LittleEndian.Uint64(b))
	}
	return ids, true
}

func (q *queueObj) pushFront(b []byte) {
	if q.head > 0 {
		q.head--
		q.items[q.head] = b
	} else {
		q.items = append([][]byte{b}, q.items...)
	}
}

// recallFor recalls what holder was lent for the first getter of
// another process that waits for real (not a lend made ahead), if any.
// A getter of holder's own is passed over: recallLent would recall from
// everyone but it.
func (q *queueObj) recallFor(holder *peer, out *outbox) {
	if len(q.lent[holder]) == 0 {
		return
	}
	for _, g := range q.getters {
		if g.p != holder && !lentAhead(g) {
			q.recallLent(g, out)
			return
		}
	}
}

// lentAhead reports whether r is a lend request a process made ahead of
// any Get of its own (qclient.topUp).
func lentAhead(r *request) bool {
	return r.op == qLend && len(r.data) > 0 && r.data[0] == 0
}

// recallLent makes room for r, a getter that has to wait: it asks the
// other processes that sit on lent items for them, and withdraws the
// lend requests they made ahead, which stood before r and would take the
// next items (and those given back) from it.
func (q *queueObj) recallLent(r *request, out *outbox) {
	for p, l := range q.lent {
		if p != r.p && len(l) > 0 && !q.recalled[p] {
			if q.recalled == nil {
				q.recalled = map[*peer]bool{}
			}
			q.recalled[p] = true
			p.recall(q.id) // written now, so before the withdrawals
		}
	}
	kept := q.getters[:0]
	for _, g := range q.getters {
		if g.p != r.p && lentAhead(g) {
			out.add(g, reply{status: stCancelled})
			continue
		}
		kept = append(kept, g)
	}
	clear(q.getters[len(kept):])
	q.getters = kept
}

func (q *queueObj) lentN() int {
	n := 0
	for _, l := range q.lent {
		n += len(l)
	}
	return n
}

func (q *queueObj) popItem() []byte {
	b := q.items[q.head]
	q.items[q.head] = nil
	q.head++
	if q.head > 1024 && q.head*2 > len(q.items) {
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
	return b
}

// admit moves waiting putters in while there is room.
func (q *queueObj) admit(out *outbox) {
	for len(q.putters) > 0 && !q.full() {
		p := q.putters.pop()
		q.put(p.data, out)
		out.add(p, reply{})
	}
}

func (q *queueObj) put(b []byte, out *outbox) {
	if q.joinable {
		q.unfinished++
	}
	q.pushItem(b, out)
}

func (q *queueObj) serve(r *request) {
	var out outbox
	q.mu.Lock()
	switch r.op {
	case qPut:
		switch {
		case !q.full() && len(q.putters) == 0:
			q.put(r.data, &out)
			out.add(r, reply{})
		case r.timeout == 0:
			out.add(r, reply{status: stTimeout})
		default:
			q.putters.push(r)
			arm(r, q.expire)
		}
	case qGet, qLend:
		if r.op == qLend && len(r.data) > 1 {
			if ids, ok := lentIDs(r.data[1:]); ok {
				q.consume(r.p, ids)
				q.admit(&out) // what was taken made room
			}
		}
		switch {
		case q.n() > 0:
			b := q.popItem()
			q.admit(&out)
			q.deliver(r, b, &out)
		case r.timeout == 0:
			out.add(r, reply{status: stTimeout})
			q.recallLent(r, &out)
		default:
			q.getters.push(r)
			arm(r, q.expire)
			if !lentAhead(r) {
				q.recallLent(r, &out)
			}
		}
	case qUnget:
		// A cancelled Get's item comes back, to the front.
		if g := q.getters.pop(); g != nil {
			q.deliver(g, r.data, &out)
		} else {
			q.pushFront(r.data)
		}
		out.add(r, reply{})
	case qConsumed:
		if ids, ok := lentIDs(r.data); ok {
			q.consume(r.p, ids)
			q.admit(&out)
		}
	case qReturn:
		if ids, ok := lentIDs(r.data); ok {
			q.unlend(r.p, ids, &out) // never nil: nil means all
			// What was lent to r.p after its answer to the recall
			// left, or overtaken by the recall, is recalled again
			// while a getter waits.
			q.recallFor(r.p, &out)
		}
	case qSize:
		b := binary.LittleEndian.AppendUint64(nil, uint64(q.n()+q.lentN()))
		b = binary.LittleEndian.AppendUint64(b, uint64(q.maxsize))
		out.add(r, reply{data: b})
	case qTaskDone:
		if q.unfinished <= 0 {
			out.add(r, reply{status: stWrongState, data: []byte(ErrTaskDone.Error())})
			break
		}
		q.unfinished--
		if q.unfinished == 0 {
			for j := q.joiners.pop(); j != nil; j = q.joiners.pop() {
				out.add(j, reply{})
			}
		}
		out.add(r, reply{})
	case qJoin:
		switch {
		case q.unfinished == 0:
			out.add(r, reply{})
		case r.timeout == 0:
			out.add(r, reply{status: stTimeout})
		default:
			q.joiners.push(r)
			arm(r, q.expire)
		}
	default:
		out.add(r, reply{status: stErr, data: []byte("aio: bad queue operation")})
	}
	q.mu.Unlock()
	out.send()
}

// tryPut puts b if the queue has room and nobody waits to put, as a Put
// of the host's own would, without a request: the host's fast path.
func (q *queueObj) tryPut(b []byte) bool {
	var out outbox
	q.mu.Lock()
	ok := !q.full() && len(q.putters) == 0
	if ok {
		q.put(b, &out)
	}
	q.mu.Unlock()
	out.send()
	return ok
}

// tryGet takes the front item if there is one, as a Get of the host's own
// would, without a request.
func (q *queueObj) tryGet() ([]byte, bool) {
	var out outbox
	q.mu.Lock()
	if q.n() == 0 {
		q.mu.Unlock()
		return nil, false
	}
	b := q.popItem()
	q.admit(&out)
	q.mu.Unlock()
	out.send()
	return b, true
}

func (q *queueObj) expire(r *request) {
	var out outbox
	q.mu.Lock()
	for _, w := range []*waitq{&q.getters, &q.putters, &q.joiners} {
		if w.remove(r.p, r.req) == r {
			out.add(r, reply{status: stTimeout})
			break
		}
	}
	q.mu.Unlock()
	out.send()
}

func (q *queueObj) withdraw(p *peer, req uint64) {
	var out outbox
	q.mu.Lock()
	for _, w := range []*waitq{&q.getters, &q.putters, &q.joiners} {
		if r := w.remove(p, req); r != nil {
			out.add(r, reply{status: stCancelled})
			break
		}
	}
	q.admit(&out)
	q.mu.Unlock()
	out.send()
}

func (q *queueObj) peerGone(p *peer) {
	var out outbox
	q.mu.Lock()
	q.getters.removePeer(p)
	q.putters.removePeer(p) // a Put that never completed: nothing of it is in the queue
	q.joiners.removePeer(p)
	if l := q.lent[p]; len(l) > 0 {
		// What it had not taken goes back, in order.
		q.unlend(p, nil, &out)
	}
	delete(q.lent, p)
	delete(q.recalled, p)
	q.admit(&out)
	q.mu.Unlock()
	out.send()
}

func newQueueObj(kind uint8, maxsize int, joinable bool) handle {
	o := &queueObj{maxsize: max(maxsize, 0), joinable: joinable}
	o.mu.Lock() // id is set before anyone can reach it
	defer o.mu.Unlock()
	h := newHandle(kind, o)
	o.id = h.ID
	return h
}

// atMost is the request timeout of a public XxxTimeout(d): d <= 0 does
// not wait, as Python's timeout=0 (and a negative one, which its
// semaphores clamp to 0); the forms without a timeout wait as long as it
// takes.
func atMost(d time.Duration) time.Duration { return max(d, 0) }

// errOf is the error of a reply; ifTimeout is the error of stTimeout.
func errOf(r reply, ifTimeout error) error {
	switch r.status {
	case stOK:
		return nil
	case stTimeout:
		return ifTimeout
	case stOwnerDied:
		return ErrOwnerDied
	case stBroken:
		switch {
		case r.err != nil:
			return fmt.Errorf("%w: its action failed: %w", ErrBrokenBarrier, r.err)
		case len(r.data) > 0: // why this waiter's wait broke it
			return fmt.Errorf("%w: %s", ErrBrokenBarrier, r.data)
		}
		return ErrBrokenBarrier
	case stGone:
		return fmt.Errorf("%w: %s", ErrHostGone, r.data)
	case stCancelled:
		return context.Canceled
	case stWrongState:
		switch string(r.data) {
		case ErrTaskDone.Error():
			return ErrTaskDone
		case ErrNotHeld.Error():
			return ErrNotHeld
		case ErrReleasedTooOften.Error():
			return ErrReleasedTooOften
		case errWaitUnheld, errNotifyUnheld:
			return fmt.Errorf("%w (%s)", ErrNotHeld, r.data)
		}
		return errors.New(string(r.data))
	}
	return errors.New(string(r.data))
}

// Queue is multiprocessing.Queue (and aioprocessing's AioQueue): a FIFO
// queue that every process it is passed to may put to and get from, at
// once. Make one with NewQueue, and pass it to a child inside the
// argument of a Process or of a process pool call, at any depth (a
// field of a struct, an element of a slice): it crosses as a reference to
// the queue.
//
// On Linux the items live in shared memory that every process using the
// queue maps (docs/design.md, "Queues in shared memory"): a Put copies its
// item in and a Get copies it out, in the caller's thread, and a waiter
// sleeps in the kernel until a Put or a Get elsewhere wakes it. Items come
// out in the order they went in, for every process. A process killed in
// the middle of a Put leaves the queue whole, without its item. The memory
// lives while a process maps it: a queue that no value names any more in
// a process is let go of there once collected, as Python closes a
// collected queue's pipe. An item is at most 1 GiB; an unbounded queue
// holding 1 GiB of items makes the next Put wait for room, as a pipe's
// writer waits. Elsewhere (or where the memory cannot be had) the queue
// lives in the process that made it and the others reach it over their
// connection to that process.
//
// Items are encoded by the putter, so a value that cannot be encoded
// fails Put in the caller and puts nothing, and decoded by the getter: an
// item of another type than the getter's T fails that Get with
// ErrItemType and leaves the queue usable. A nil *T crosses as nil (unless
// *T has a MarshalBinary method), so a Queue[*T] may end with nil where
// Python's ends with None. A Put is in the queue when it returns; there is
// no feeder thread, so JoinThread and CancelJoinThread have nothing to do,
// and a process may exit (or be joined) with items it put still unread,
// without Python's deadlock.
//
// The blocking methods (Put, Get and their Timeout and Nowait forms) block
// their goroutine; the Coro ones take a loop task's ctx and await without
// blocking the loop, or take any other ctx and block until it ends. A
// cancelled CoroGet takes no item.
//
// A hosted queue (where shared memory cannot be had) is borrowed from:
// a process that gets from it takes items ahead of its Gets (up to 8 MiB
// of them), and gives back what it has not taken when a getter elsewhere
// waits, when it closes the queue, or as it dies. Each process sees items
// in the order they were put, but across processes an item given back may
// be taken after items put behind it (docs/design.md, "Order, hosted").
type Queue[T any] struct {
	r         *ring // the queue in shared memory (ring_linux.go); nil: hosted (h)
	h         handle
	c         codec[T]
	unbounded bool
	kind      uint8 // kindQueue, kindJoinable or kindSimple
	closed    atomic.Bool
	cl        atomic.Pointer[qclient] // for a queue hosted elsewhere, once this process gets from it
}

// NewQueue returns a queue that holds at most maxsize items; maxsize <= 0
// means no bound (Python's Queue(maxsize=0)).
func NewQueue[T any](maxsize int) *Queue[T] {
	q := &Queue[T]{c: codecOf[T](), unbounded: maxsize <= 0}
	q.init(kindQueue, maxsize)
	return q
}

// hostedQueues makes new queues hosted rather than in shared memory: the
// way elsewhere than on Linux, and the tests' way to run both.
var hostedQueues = !shmSupported

// init makes the queue's storage: its ring in shared memory, or else its
// hosted object.
func (q *Queue[T]) init(kind uint8, maxsize int) {
	q.kind = kind
	if !hostedQueues {
		if r, err := newRing(kind, maxsize); err == nil {
			q.r = r
			return
		}
	}
	q.h = newQueueObj(kind, maxsize, kind == kindJoinable)
}

// bigPut is the size from which a Put of a []byte is written with no copy.
const bigPut = 64 << 10

func (q *Queue[T]) put(ctx context.Context, v T, timeout time.Duration) error {
	if q.closed.Load() {
		return ErrClosed
	}
	if q.r != nil {
		if px, ok := any(&v).(*[]byte); ok {
			var tag [4]byte
			binary.LittleEndian.PutUint32(tag[:], q.c.tag)
			return q.r.put(ctx, tag[:], *px, timeout) // no copy but into the ring
		}
		b, err := q.c.encode(v)
		if err != nil {
			return err
		}
		return q.r.put(ctx, b, nil, timeout)
	}
	if px, ok := any(&v).(*[]byte); ok && len(*px) >= bigPut && q.unbounded && ctx == bg && q.h.local == nil && q.h.p != nil {
		// A large []byte to a queue hosted elsewhere goes out as it is,
		// behind its tag, with no copy; the Put returns once the socket
		// has taken it all, so the caller may change it afterwards.
		// (Only a blocking Put: a task's must not hold up its loop.)
		if q.h.p.isDead() {
			return fmt.Errorf("%w: %s", ErrHostGone, &peerGoneError{q.h.p.name})
		}
		pre := binary.LittleEndian.AppendUint32(requestPrefix(0, -1), q.c.tag)
		<-q.h.p.postWritten(q.h.ID, qPut, pre, *px)
		return nil
	}
	b, err := q.c.encode(v)
	if err != nil {
		return err
	}
	if o, ok := q.h.local.(*queueObj); ok && o.tryPut(b) {
		return nil
	}
	if q.unbounded {
		// Nothing to wait for: the put is posted, in order.
		return q.h.post(qPut, b)
	}
	settle(q.h) // the host counts what this process has taken before it admits the put
	if ctx != bg {
		// A put cannot be undone once the host has taken it: a
		// cancellation withdraws the put and waits for the answer, which
		// says whether the item went in (then the put succeeded) or not.
		wctx := ctx
		if tc := taskContextOf(ctx); tc != nil {
			wctx = tc
		}
		cf := runningFuture()
		req := q.h.start(qPut, 0, timeout, b, nil, func(r reply) { _ = cf.SetResult(r) })
		r, err := awaitReply(ctx, wctx, cf, func() { q.h.cancel(req) })
		if err != nil {
			return err
		}
		return errOf(r, ErrFull)
	}
	r, err := q.h.call(ctx, qPut, 0, timeout, b, nil, nil)
	if err != nil {
		return err
	}
	return errOf(r, ErrFull)
}

func (q *Queue[T]) get(ctx context.Context, timeout time.Duration) (T, error) {
	var zero T
	if q.closed.Load() {
		return zero, ErrClosed
	}
	if q.r != nil {
		b, err := q.r.get(ctx, timeout)
		if err != nil {
			return zero, err
		}
		return q.c.decode(b)
	}
	if q.h.p != nil {
		cl := q.cl.Load()
		if cl == nil {
			cl = clientOf(q.h)
			q.cl.Store(cl)
		}
		b, err := cl.get(ctx, timeout)
		if err != nil {
			return zero, err
		}
		if b == nil {
			return zero, fmt.Errorf("%w: %s", ErrHostGone, &peerGoneError{q.h.p.name})
		}
		return q.c.decode(b)
	}
	if o, ok := q.h.local.(*queueObj); ok {
		if b, ok := o.tryGet(); ok {
			return q.c.decode(b)
		}
	}
	r, err := q.h.call(ctx, qGet, 0, timeout, nil, nil, q.unget)
	if err != nil {
		return zero, err
	}
	if err := errOf(r, ErrEmpty); err != nil {
		return zero, err
	}
	return q.c.decode(r.data)
}

// unget gives back an item a cancelled Get received.
func (q *Queue[T]) unget(r reply) {
	q.h.start(qUnget, 0, -1, r.data, nil, func(reply) {})
}

// Put puts v at the end of the queue, waiting while the queue is full.
func (q *Queue[T]) Put(v T) error { return q.put(bg, v, -1) }

// PutTimeout is Put waiting at most d; then it returns ErrFull. A d <= 0
// does not wait (Python's timeout=0; Put is timeout=None).
func (q *Queue[T]) PutTimeout(v T, d time.Duration) error { return q.put(bg, v, atMost(d)) }

// PutNowait puts v if the queue has room, or returns ErrFull.
func (q *Queue[T]) PutNowait(v T) error { return q.put(bg, v, 0) }

// CoroPut is Put as an await (aioprocessing's coro_put). Cancelled while
// it waits for room, it puts nothing; cancelled as the room comes, when
// the queue's host has already taken the item, it returns nil: the
// item is in (a put cannot be taken back).
func (q *Queue[T]) CoroPut(ctx context.Context, v T) error { return q.put(ctx, v, -1) }

// Get removes and returns the item at the front of the queue, waiting
// while it is empty.
func (q *Queue[T]) Get() (T, error) { return q.get(bg, -1) }

// GetTimeout is Get waiting at most d; then it returns ErrEmpty. A d <= 0
// does not wait (Python's timeout=0; Get is timeout=None).
func (q *Queue[T]) GetTimeout(d time.Duration) (T, error) { return q.get(bg, atMost(d)) }

// GetNowait returns the front item if there is one, or ErrEmpty; also
// ErrEmpty when another process holds the queue's lock for more than a
// moment (stopped, or killed and not yet known to be: Python's
// get(block=False) says Empty at once when the lock is busy).
func (q *Queue[T]) GetNowait() (T, error) { return q.get(bg, 0) }

// CoroGet is Get as an await (aioprocessing's coro_get). Cancelled, it
// takes no item.
func (q *Queue[T]) CoroGet(ctx context.Context) (T, error) { return q.get(ctx, -1) }

func (q *Queue[T]) size() (n, maxsize int) {
	if q.r != nil {
		return q.r.size()
	}
	settle(q.h)
	r, err := q.h.call(bg, qSize, 0, -1, nil, nil, nil)
	if err != nil || r.status != stOK || len(r.data) != 16 {
		return 0, 0
	}
	return int(binary.LittleEndian.Uint64(r.data)), int(binary.LittleEndian.Uint64(r.data[8:]))
}

// Qsize returns the number of items in the queue: approximate, as in
// Python, since other processes put and get at the same time (0 if the
// queue's host has exited).
func (q *Queue[T]) Qsize() int { n, _ := q.size(); return n }

// Empty reports whether the queue holds no item (approximate).
func (q *Queue[T]) Empty() bool { return q.Qsize() == 0 }

// Full reports whether the queue is at its bound (approximate).
func (q *Queue[T]) Full() bool {
	n, m := q.size()
	return m > 0 && n >= m
}

// Close says that this process will use the queue no more: its Puts and
// Gets return ErrClosed from now on. Other processes, and other Queue
// values naming the same queue, are not affected (Python's close is this
// process's too). The queue lives as long as the process that made it.
func (q *Queue[T]) Close() error {
	if cl := q.cl.Load(); !q.closed.Swap(true) && cl != nil {
		cl.release()
	}
	return nil
}

// JoinThread does nothing: a Put is in the queue when it returns, so there
// is no feeder thread to wait for (Python's join_thread).
func (q *Queue[T]) JoinThread() {}

// CancelJoinThread does nothing (Python's cancel_join_thread).
func (q *Queue[T]) CancelJoinThread() {}

// GobEncode makes the queue cross to another process as a reference.
func (q *Queue[T]) GobEncode() ([]byte, error) {
	if q.r != nil {
		b, err := q.r.encode(q.kind)
		if err != nil {
			return nil, err
		}
		if q.unbounded {
			return append(b, 1), nil
		}
		return append(b, 0), nil
	}
	b, err := q.h.encode()
	if err != nil {
		return nil, err
	}
	if q.unbounded {
		return append(b, 1), nil
	}
	return append(b, 0), nil
}

func (q *Queue[T]) decode(b []byte, kind uint8) error {
	if len(b) == 0 {
		return errors.New("aio: corrupt queue reference")
	}
	q.c = codecOf[T]()
	q.unbounded = b[len(b)-1] == 1
	q.kind = kind
	if len(b)-1 == ringRefLen {
		r, err := decodeRing(b[:len(b)-1], kind)
		if err != nil {
			return err
		}
		q.r = r
		return nil
	}
	return q.h.decode(b[:len(b)-1], kind)
}

// GobDecode makes a received reference the queue.
func (q *Queue[T]) GobDecode(b []byte) error { return q.decode(b, kindQueue) }

// JoinableQueue is multiprocessing.JoinableQueue (aioprocessing's
// AioJoinableQueue): a Queue that counts the items put and not yet marked
// done with TaskDone, so that Join can wait until every item has been
// processed.
type JoinableQueue[T any] struct {
	Queue[T]
}

// NewJoinableQueue returns a joinable queue of at most maxsize items (<= 0:
// no bound).
func NewJoinableQueue[T any](maxsize int) *JoinableQueue[T] {
	q := &JoinableQueue[T]{Queue[T]{c: codecOf[T](), unbounded: maxsize <= 0}}
	q.init(kindJoinable, maxsize)
	return q
}

// TaskDone says that an item got earlier is processed. Called more times
// than items were put, it returns ErrTaskDone.
func (q *JoinableQueue[T]) TaskDone() error {
	if q.r != nil {
		return q.r.taskDone()
	}
	r, err := q.h.call(bg, qTaskDone, 0, -1, nil, nil, nil)
	if err != nil {
		return err
	}
	return errOf(r, nil)
}

// Join waits until every item put has been marked done.
func (q *JoinableQueue[T]) Join() error { return q.join(bg) }

// CoroJoin is Join as an await (aioprocessing's coro_join).
func (q *JoinableQueue[T]) CoroJoin(ctx context.Context) error { return q.join(ctx) }

func (q *JoinableQueue[T]) join(ctx context.Context) error {
	if q.r != nil {
		return q.r.join(ctx)
	}
	r, err := q.h.call(ctx, qJoin, 0, -1, nil, nil, nil)
	if err != nil {
		return err
	}
	return errOf(r, nil)
}

// GobDecode makes a received reference the queue.
func (q *JoinableQueue[T]) GobDecode(b []byte) error { return q.decode(b, kindJoinable) }

// SimpleQueue is multiprocessing.SimpleQueue (aioprocessing's
// AioSimpleQueue): an unbounded queue with Put, Get and Empty.
type SimpleQueue[T any] struct {
	q Queue[T]
}

// NewSimpleQueue returns an empty SimpleQueue.
func NewSimpleQueue[T any]() *SimpleQueue[T] {
	q := &SimpleQueue[T]{Queue[T]{c: codecOf[T](), unbounded: true}}
	q.q.init(kindSimple, 0)
	return q
}

// Put puts v at the end of the queue.
func (q *SimpleQueue[T]) Put(v T) error { return q.q.Put(v) }

// Get removes and returns the front item, waiting while there is none.
func (q *SimpleQueue[T]) Get() (T, error) { return q.q.Get() }

// CoroPut is Put as an await.
func (q *SimpleQueue[T]) CoroPut(ctx context.Context, v T) error { return q.q.CoroPut(ctx, v) }

// CoroGet is Get as an await; cancelled, it takes no item.
func (q *SimpleQueue[T]) CoroGet(ctx context.Context) (T, error) { return q.q.CoroGet(ctx) }

// Empty reports whether the queue holds no item.
func (q *SimpleQueue[T]) Empty() bool { return q.q.Empty() }

// Close says this process will use the queue no more.
func (q *SimpleQueue[T]) Close() error { return q.q.Close() }

// GobEncode makes the queue cross to another process as a reference.
func (q *SimpleQueue[T]) GobEncode() ([]byte, error) { return q.q.GobEncode() }

// GobDecode makes a received reference the queue.
func (q *SimpleQueue[T]) GobDecode(b []byte) error { return q.q.decode(b, kindSimple) }

package aio

import (
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"time"

	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/loop"
)

// Gets from a queue hosted elsewhere would cost a round trip each. So a
// process that gets from such a queue keeps get requests standing
// at the host ("lends"): each is an ordinary getter in the host's FIFO,
// so processes share the items fairly, and an item it receives waits in
// the process's buffer for the next Get there. The host counts what it
// lent each process until the process reports it consumed: items a
// process had not taken when it dies go back to the front of the queue,
// and when a getter elsewhere finds the queue empty while a process sits
// on lent items, the host recalls them. A Get cancelled or timed out in
// the process takes nothing from its buffer, so nothing is lost.
//
// How far ahead a process borrows follows the size of the last item it
// received: up to lendAhead bytes of items, at least one and at most
// lendDepth. So a stream of small items keeps 256 standing, and one of
// 2 MiB items keeps 4 on their way while the Get's caller works on the
// fifth (a single consumer of 2 MiB items streamed 1.2 GB/s with none
// ahead and 1.7-1.9 GB/s with 8 MiB; two consumers of one queue did
// 1.4-1.5 GB/s either way, the recall keeping them fair). A recall stops
// the lending until the next Get asks.
const (
	lendDepth = 256
	lendAhead = 8 << 20
)

// More queue operations, for lending.
const (
	qLend     = qJoin + 1 + iota // a standing get; data: a byte, 1 if made for a waiter, and the ids of lend requests whose items were taken since the last report (u64 each)
	qConsumed                    // posted: ids of lend requests whose items were taken
	qReturn                      // posted: ids of lend requests whose items go back
)

// qclient is a process's side of a queue hosted elsewhere, shared by every
// Queue value naming it.
type qclient struct {
	h         handle
	mu        sync.Mutex
	buf       []lentItem
	standing  int // lend requests at the host
	forWaiter int // of them, those made for a waiter
	// recalled: the host asked for what this process borrowed, and it
	// has not waited in a Get since; an item that arrives meanwhile with
	// no waiter for it goes straight back (its reply may have been
	// written after the recall).
	recalled bool
	waiters  []*qwaiter
	consumed []uint64 // lend requests whose items were taken since the last report
	ahead    int      // items to have lent ahead of the waiters: see lendDepth
}

// A lentItem is an item a lend request brought, waiting for a Get here.
type lentItem struct {
	id uint64 // the request's
	b  []byte
}

// A lendReq is one standing lend request.
type lendReq struct {
	id        uint64
	forWaiter bool
}

type qwaiter struct {
	done func(b []byte) bool // false: the waiter is gone, keep the item
}

var (
	qclientsMu sync.Mutex
	qclients   = map[ref]*qclient{}
)

func clientOf(h handle) *qclient {
	qclientsMu.Lock()
	defer qclientsMu.Unlock()
	c := qclients[h.ref]
	if c == nil {
		c = &qclient{h: h, ahead: lendDepth}
		qclients[h.ref] = c
	}
	return c
}

// settle makes what this process has consumed of a queue hosted
// elsewhere known to the host before a request that reads its state
// (Qsize, Full, Empty): a Get that returned has been counted. A delivery
// wakes its getter before it reports the item consumed, under mu, so
// taking mu here waits for that report.
func settle(h handle) {
	if h.local != nil || h.p == nil {
		return
	}
	qclientsMu.Lock()
	c := qclients[h.ref]
	qclientsMu.Unlock()
	if c == nil {
		return
	}
	c.mu.Lock()
	c.report()
	c.mu.Unlock()
}

// settleAll reports, for every queue hosted elsewhere, what this process
// has consumed of it: before a shared-memory Release or Set (see
// postedApplied), so that a Get that returned has been counted at its
// host by the time the next holder of the lock looks, and before a child
// exits (processMain).
func settleAll() {
	qclientsMu.Lock()
	cs := make([]*qclient, 0, len(qclients))
	for _, c := range qclients {
		cs = append(cs, c)
	}
	qclientsMu.Unlock()
	for _, c := range cs {
		c.mu.Lock()
		c.report()
		c.mu.Unlock()
	}
}

// recallFrom answers the host's recall: the items not yet taken go back.
func recallFrom(p *peer, obj uint64) {
	qclientsMu.Lock()
	var c *qclient
	for r, cl := range qclients {
		if r.ID == obj && cl.h.p == p {
			c = cl
			break
		}
	}
	qclientsMu.Unlock()
	if c == nil {
		return
	}
	c.mu.Lock()
	ids := c.bufIDs()
	clear(c.buf)
	c.buf = c.buf[:0]
	c.ahead = 0 // lend no more ahead until a Get asks
	c.recalled = true
	c.report()
	// Always answered, even with nothing, so that the host may recall
	// again.
	c.giveBackLent(ids)
	c.mu.Unlock()
}

// bufIDs lists the requests the buffered items came with; mu is held.
func (c *qclient) bufIDs() []uint64 {
	ids := make([]uint64, len(c.buf))
	for i, it := range c.buf {
		ids[i] = it.id
	}
	return ids
}

func appendIDs(b []byte, ids []uint64) []byte {
	for _, id := range ids {
		b = binary.LittleEndian.AppendUint64(b, id)
	}
	return b
}

// giveBackLent tells the host that the items of the lend requests ids go
// back to the front of the queue (it holds their bytes). Items are named
// by their requests, not counted: one the host lent after another may
// reach this process before it, and more may be on their way. mu is held.
func (c *qclient) giveBackLent(ids []uint64) {
	c.h.p.post(c.h.ID, qReturn, plainPrefix, appendIDs(nil, ids))
}

// forgetClients drops the clients of a peer that has gone.
func forgetClients(p *peer) {
	qclientsMu.Lock()
	defer qclientsMu.Unlock()
	for r, c := range qclients {
		if c.h.p == p {
			delete(qclients, r)
			c.mu.Lock()
			ws := c.waiters
			c.waiters = nil
			c.mu.Unlock()
			for _, w := range ws {
				w.done(nil)
			}
		}
	}
}

// report tells the host what was consumed; mu is held.
func (c *qclient) report() {
	if len(c.consumed) > 0 {
		c.h.p.post(c.h.ID, qConsumed, plainPrefix, appendIDs(nil, c.consumed))
		c.consumed = c.consumed[:0]
	}
}

// topUp keeps enough lend requests standing; mu is held. Each waiter not
// served from the buffer has a request of its own ("for a waiter"), which
// makes the host recall what other processes were lent. One may outlive
// its waiter (timed out, cancelled, or served by an earlier request);
// the host recalls what it brings if a getter elsewhere waits
// (queueObj.deliver). The rest are lent ahead, and the host withdraws
// those when a getter elsewhere has to wait.
func (c *qclient) topUp() {
	for c.forWaiter < len(c.waiters)-len(c.buf) {
		c.lend(true)
	}
	for c.standing < c.ahead-len(c.buf) {
		c.lend(false)
	}
	c.report()
}

// lend makes a lend request stand; mu is held.
func (c *qclient) lend(forWaiter bool) {
	c.standing++
	flag := byte(0)
	if forWaiter {
		c.forWaiter++
		flag = 1
	}
	l := &lendReq{forWaiter: forWaiter}
	data := appendIDs([]byte{flag}, c.consumed)
	reported := len(c.consumed) > 0
	c.consumed = c.consumed[:0]
	l.id = c.h.p.start(c.h.ID, qLend, plainPrefix, data, nil, func(r reply) {
		if r.status == stGone {
			// Maybe answered at once, by start itself, as the host
			// has gone: mu is held here.
			go c.delivered(r, l)
			return
		}
		c.delivered(r, l)
	})
	if reported {
		c.h.p.posts.Add(1) // a report, as a posted one (postedApplied)
	}
}

// delivered receives the answer to a lend request.
func (c *qclient) delivered(r reply, l *lendReq) {
	c.mu.Lock()
	c.standing--
	if l.forWaiter {
		c.forWaiter--
	}
	if r.status == stCancelled {
		// Made ahead, and withdrawn by the host as a getter elsewhere
		// waits: lend no more ahead until an item comes.
		c.ahead = 0
		c.topUp()
		c.mu.Unlock()
		return
	}
	if r.status != stOK {
		// The host has gone (or withdrew it): fail the waiters if no
		// request stands for them any more.
		var ws []*qwaiter
		if c.standing == 0 && len(c.buf) == 0 {
			ws = c.waiters
			c.waiters = nil
		}
		c.mu.Unlock()
		for _, w := range ws {
			w.done(nil)
		}
		return
	}
	b := r.data
	if !c.recalled {
		c.ahead = min(lendDepth, (lendAhead+len(b))/(len(b)+1))
	}
	for len(c.waiters) > 0 {
		w := c.waiters[0]
		c.waiters = c.waiters[1:]
		// done only completes a future (its callbacks post to a loop):
		// safe under mu.
		if w.done(b) {
			c.consumed = append(c.consumed, l.id)
			c.topUp()
			c.mu.Unlock()
			return
		}
	}
	// Kept, even if it came after a recall or for a request whose waiter
	// has left: given back at once, it would go to the front of
	// the queue behind items lent here after it, and a consumer could
	// see a sentinel before an item put ahead of it. The host recalls it
	// if a getter elsewhere waits (queueObj.recallFor).
	c.buf = append(c.buf, lentItem{l.id, b})
	c.mu.Unlock()
}

// get takes an item: from the buffer, or the next delivery. A nil item
// with a nil error means the host has gone.
func (c *qclient) get(ctx context.Context, timeout time.Duration) ([]byte, error) {
	c.mu.Lock()
	if len(c.buf) > 0 {
		return c.take(), nil
	}
	if timeout == 0 {
		c.mu.Unlock()
		b, err := c.getNowait()
		if errors.Is(err, ErrEmpty) {
			// The host answers after the items it lent this process
			// before it: one may have come into the buffer meanwhile (a
			// Put of this process's that went to one of its standing
			// gets).
			c.mu.Lock()
			if len(c.buf) > 0 {
				return c.take(), nil
			}
			c.mu.Unlock()
		}
		return b, err
	}
	// Wait for a delivery, with the task's loop or this goroutine.
	f := executor.NewFuture[[]byte]()
	f.SetRunningOrNotifyCancel()
	w := &qwaiter{done: func(b []byte) bool { return f.SetResult(b) == nil }}
	c.waiters = append(c.waiters, w)
	c.recalled = false
	c.topUp()
	c.mu.Unlock()
	var timer *time.Timer
	if timeout > 0 {
		timer = time.AfterFunc(timeout, func() {
			if c.drop(w) {
				_ = f.SetErr(ErrEmpty)
			}
		})
		defer timer.Stop()
	}
	if ctx == nil {
		ctx = bg
	}
	if l, err := loop.RunningLoop(ctx); err == nil {
		lf := loop.WrapFuture(l, f)
		b, err := lf.Await(ctx)
		if err != nil && !c.drop(w) {
			// Served as it gave up: the item is in f (delivered sets it
			// under mu, where it takes the waiter off). It goes back to
			// the front of the queue before this returns, so a Put or Get
			// the task makes next is ordered after it.
			if v, ferr := f.Result(context.Background()); ferr == nil {
				c.giveBack(v)
			}
		} else if err != nil {
			// Given up with nothing on its way: the loop's future goes
			// first, so the error set to f reaches nobody's "never
			// retrieved" report.
			if lf.Done() {
				_, _ = lf.Result()
			} else {
				lf.Cancel()
			}
			_ = f.SetErr(err)
		}
		return b, err
	}
	select {
	case <-f.DoneChan():
	case <-ctx.Done():
		if c.drop(w) {
			_ = f.SetErr(ctx.Err())
		}
	}
	return f.Result(context.Background())
}

// take takes the front item of the buffer; mu is held, and released.
func (c *qclient) take() []byte {
	it := c.buf[0]
	c.buf[0] = lentItem{}
	c.buf = c.buf[1:]
	c.consumed = append(c.consumed, it.id)
	c.topUp()
	c.mu.Unlock()
	return it.b
}

// giveBack returns an item a cancelled task was handed: it has been
// reported consumed, so it goes back to the host as a new front item.
func (c *qclient) giveBack(b []byte) {
	if b != nil {
		c.h.p.post(c.h.ID, qUnget, plainPrefix, b)
	}
}

// drop removes a waiter that gave up; false if it was served already.
func (c *qclient) drop(w *qwaiter) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, x := range c.waiters {
		if x == w {
			c.waiters = append(c.waiters[:i], c.waiters[i+1:]...)
			return true
		}
	}
	return false
}

// getNowait asks the host itself; mu is not held.
func (c *qclient) getNowait() ([]byte, error) {
	r, err := c.h.call(bg, qGet, 0, 0, nil, nil, nil)
	if err != nil {
		return nil, err
	}
	if err := errOf(r, ErrEmpty); err != nil {
		return nil, err
	}
	return r.data, nil
}

// release gives back the buffer and stops lending: Close.
func (c *qclient) release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	ids := c.bufIDs()
	c.buf = nil
	c.ahead = 0
	c.recalled = true // lend no more ahead until a Get waits
	c.report()
	if len(ids) > 0 {
		c.giveBackLent(ids)
	}
}

package aio

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Event and Barrier operations.
const (
	eSet = opObject + iota
	eClear
	eIsSet
	eWait
	bWait
	bAbort
	bReset
	bInfo
)

type eventObj struct {
	mu      sync.Mutex
	set     bool
	waiters waitq
}

func (e *eventObj) serve(r *request) {
	var out outbox
	e.mu.Lock()
	switch r.op {
	case eSet:
		e.set = true
		for w := e.waiters.pop(); w != nil; w = e.waiters.pop() {
			out.add(w, reply{})
		}
		out.add(r, reply{})
	case eClear:
		e.set = false
		out.add(r, reply{})
	case eIsSet:
		b := []byte{0}
		if e.set {
			b[0] = 1
		}
		out.add(r, reply{data: b})
	case eWait:
		switch {
		case e.set:
			out.add(r, reply{})
		case r.timeout == 0:
			out.add(r, reply{status: stTimeout})
		default:
			e.waiters.push(r)
			arm(r, e.expire)
		}
	default:
		out.add(r, reply{status: stErr, data: []byte("aio: bad event operation")})
	}
	e.mu.Unlock()
	out.send()
}

func (e *eventObj) expire(r *request) {
	var out outbox
	e.mu.Lock()
	if e.waiters.remove(r.p, r.req) == r {
		out.add(r, reply{status: stTimeout})
	}
	e.mu.Unlock()
	out.send()
}

func (e *eventObj) withdraw(p *peer, req uint64) {
	var out outbox
	e.mu.Lock()
	if r := e.waiters.remove(p, req); r != nil {
		out.add(r, reply{status: stCancelled})
	}
	e.mu.Unlock()
	out.send()
}

func (e *eventObj) peerGone(p *peer) {
	e.mu.Lock()
	e.waiters.removePeer(p)
	e.mu.Unlock()
}

// Event is multiprocessing.Event (aioprocessing's AioEvent): a flag that
// processes set, clear and wait for. On Linux its flag lives in shared
// memory (event_shm.go) and a waiter sleeps in the kernel until a Set
// wakes it, in whichever process; elsewhere the process that made it
// hosts it. A waiter woken by a Set returns even if a Clear came right
// after, as threading.Event's does.
type Event struct {
	s *shmEvent // nil: hosted, h
	h handle
}

// NewEvent returns a clear Event.
func NewEvent() *Event {
	if shmSupported {
		if s, err := newShmEvent(); err == nil {
			return &Event{s: s}
		}
	}
	return &Event{h: newHandle(kindEvent, &eventObj{})}
}

// Set sets the flag and wakes every waiter. A Put this process posted to
// a queue in another process is in that queue before the flag is seen set:
// so in shared memory, Set first waits one round trip to each process it
// posted to since (none if it posted nothing), a task's loop included.
// Clear does the same.
func (e *Event) Set() error {
	if e.s != nil {
		return e.s.set()
	}
	return e.h.post(eSet, nil)
}

// Clear clears the flag.
func (e *Event) Clear() error {
	if e.s != nil {
		return e.s.clear()
	}
	return e.h.post(eClear, nil)
}

// IsSet reports whether the flag is set (false if the event cannot be
// reached: a hosted one whose host has exited).
func (e *Event) IsSet() bool {
	if e.s != nil {
		return e.s.isSet()
	}
	r, err := e.h.call(bg, eIsSet, 0, -1, nil, nil, nil)
	return err == nil && r.status == stOK && len(r.data) == 1 && r.data[0] == 1
}

func (e *Event) wait(ctx context.Context, timeout time.Duration) (bool, error) {
	if e.s != nil {
		return e.s.wait(ctx, timeout)
	}
	r, err := e.h.call(ctx, eWait, 0, timeout, nil, nil, nil)
	if err != nil {
		return false, err
	}
	if r.status == stTimeout {
		return false, nil
	}
	return true, errOf(r, nil)
}

// Wait waits until the flag is set.
func (e *Event) Wait() error { _, err := e.wait(bg, -1); return err }

// WaitTimeout waits at most d (d <= 0: not at all) and reports whether
// the flag was set (Python's wait(timeout)).
func (e *Event) WaitTimeout(d time.Duration) (bool, error) { return e.wait(bg, atMost(d)) }

// CoroWait is Wait as an await (coro_wait): with a task's ctx it never
// blocks the loop, and it returns ctx's error if ctx ends first.
func (e *Event) CoroWait(ctx context.Context) error { _, err := e.wait(ctx, -1); return err }

// GobEncode makes the event cross to another process as a reference.
func (e *Event) GobEncode() ([]byte, error) {
	if e.s != nil {
		return e.s.r.encode(kindEvent), nil
	}
	return e.h.encode()
}

// GobDecode makes a received reference the event.
func (e *Event) GobDecode(b []byte) error {
	if len(b) == shmRefLen {
		s, err := decodeShmEvent(b)
		if err != nil {
			return err
		}
		*e = Event{s: s}
		return nil
	}
	return e.h.decode(b, kindEvent)
}

// barrierObj is a Barrier in its host: threading.Barrier's filling and
// draining, done in one step, since the host answers every waiter at once.
type barrierObj struct {
	mu      sync.Mutex
	parties int
	action  func() error
	timeout time.Duration
	waiting waitq
	broken  bool
}

func (b *barrierObj) serve(r *request) {
	var out outbox
	var run func() error
	b.mu.Lock()
	switch r.op {
	case bWait:
		if b.broken {
			out.add(r, reply{status: stBroken})
			break
		}
		if len(b.waiting)+1 < b.parties {
			if r.timeout < 0 && b.timeout > 0 {
				r.timeout = b.timeout
			}
			if r.timeout == 0 {
				// wait(timeout=0) of a party that is not the last: it
				// times out at once, and breaks the barrier.
				out.add(r, reply{status: stBroken, data: []byte(errWaitTimedOut)})
				b.breakLocked(&out)
				break
			}
			b.waiting.push(r)
			arm(r, b.expire)
			break
		}
		// The last party: run the action, then release everyone, each
		// with its arrival index (0 for the first to arrive).
		all := append(b.waiting, r)
		b.waiting = nil
		if b.action != nil {
			run = b.action
			b.mu.Unlock()
			err := callAction(run)
			b.mu.Lock()
			if err != nil {
				// The party that ran it hears why (Python raises the
				// action's exception there); the others, that it broke.
				b.broken = true
				for _, w := range all {
					if w == r {
						out.add(w, reply{status: stBroken, data: []byte("its action failed: " + err.Error()), err: err})
					} else {
						out.add(w, reply{status: stBroken})
					}
				}
				break
			}
		}
		for i, w := range all {
			out.add(w, reply{data: binary.LittleEndian.AppendUint64(nil, uint64(i))})
		}
	case bAbort:
		b.breakLocked(&out)
		out.add(r, reply{})
	case bReset:
		b.breakLocked(&out)
		b.broken = false
		out.add(r, reply{})
	case bInfo:
		d := binary.LittleEndian.AppendUint64(nil, uint64(b.parties))
		d = binary.LittleEndian.AppendUint64(d, uint64(len(b.waiting)))
		if b.broken {
			d = append(d, 1)
		} else {
			d = append(d, 0)
		}
		out.add(r, reply{data: d})
	default:
		out.add(r, reply{status: stErr, data: []byte("aio: bad barrier operation")})
	}
	b.mu.Unlock()
	out.send()
}

// errWaitTimedOut is the reason a waiter whose timeout broke the barrier
// gets, behind ErrBrokenBarrier.
const errWaitTimedOut = "its wait timed out"

func callAction(f func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("aio: the barrier's action panicked: %v", v)
		}
	}()
	return f()
}

func (b *barrierObj) breakLocked(out *outbox) {
	b.broken = true
	for w := b.waiting.pop(); w != nil; w = b.waiting.pop() {
		out.add(w, reply{status: stBroken})
	}
}

// expire: a wait that times out breaks the barrier, as in Python.
func (b *barrierObj) expire(r *request) {
	var out outbox
	b.mu.Lock()
	if b.waiting.remove(r.p, r.req) == r {
		out.add(r, reply{status: stBroken, data: []byte(errWaitTimedOut)})
		b.breakLocked(&out)
	}
	b.mu.Unlock()
	out.send()
}

// withdraw: a cancelled wait leaves, and breaks the barrier for the
// others (threading.Barrier breaks when a waiter is interrupted).
func (b *barrierObj) withdraw(p *peer, req uint64) {
	var out outbox
	b.mu.Lock()
	if r := b.waiting.remove(p, req); r != nil {
		out.add(r, reply{status: stCancelled})
		b.breakLocked(&out)
	}
	b.mu.Unlock()
	out.send()
}

// peerGone: a party that died can never arrive; the barrier breaks.
func (b *barrierObj) peerGone(p *peer) {
	var out outbox
	b.mu.Lock()
	n := len(b.waiting)
	b.waiting.removePeer(p)
	if len(b.waiting) != n {
		b.breakLocked(&out)
	}
	b.mu.Unlock()
	out.send()
}

// Barrier is multiprocessing.Barrier (threading.Barrier shared by
// processes): Wait blocks until parties callers, in any processes, are
// waiting, then releases them all. The action, if any, runs once per
// trip, in the process that made the barrier, before anyone is released
// (Python runs it in one of the waiting threads; a func cannot cross to
// another process); if it fails or panics the barrier breaks, and the
// last to arrive, for which it ran, gets an ErrBrokenBarrier that carries
// the action's error (Python raises it in the thread that ran it). A wait that
// times out, is cancelled, or whose process dies breaks the barrier:
// every waiter gets ErrBrokenBarrier until Reset.
type Barrier struct{ h handle }

// NewBarrier returns a barrier for parties callers (at least 1), with an
// optional action and a default timeout for each Wait (<= 0: none).
func NewBarrier(parties int, action func() error, timeout time.Duration) (*Barrier, error) {
	if parties < 1 {
		return nil, errors.New("aio: a Barrier needs at least one party")
	}
	return &Barrier{newHandle(kindBarrier, &barrierObj{parties: parties, action: action, timeout: timeout})}, nil
}

func (b *Barrier) wait(ctx context.Context, timeout time.Duration) (int, error) {
	r, err := b.h.call(ctx, bWait, 0, timeout, nil, nil, nil)
	if err != nil {
		return 0, err
	}
	if err := errOf(r, nil); err != nil {
		return 0, err
	}
	if len(r.data) != 8 {
		return 0, errors.New("aio: corrupt barrier answer")
	}
	return int(binary.LittleEndian.Uint64(r.data)), nil
}

// Wait waits for the other parties and returns this caller's index, from
// 0 (first to arrive) to parties-1 (the last, which runs the action), as
// threading.Barrier's, or ErrBrokenBarrier.
func (b *Barrier) Wait() (int, error) { return b.wait(bg, -1) }

// WaitTimeout is Wait with a timeout d that replaces the barrier's own; a
// d <= 0 does not wait, so it breaks the barrier unless this caller is
// the last to arrive (Python's wait(timeout=0)).
func (b *Barrier) WaitTimeout(d time.Duration) (int, error) {
	return b.wait(bg, atMost(d))
}

// CoroWait is Wait as an await.
func (b *Barrier) CoroWait(ctx context.Context) (int, error) { return b.wait(ctx, -1) }

// Abort breaks the barrier: waiters and later Waits get ErrBrokenBarrier.
func (b *Barrier) Abort() error { return b.do(bAbort) }

// Reset breaks the barrier for those waiting and makes it whole again.
func (b *Barrier) Reset() error { return b.do(bReset) }

func (b *Barrier) do(op uint8) error {
	r, err := b.h.call(bg, op, 0, -1, nil, nil, nil)
	if err != nil {
		return err
	}
	return errOf(r, nil)
}

func (b *Barrier) info() (parties, waiting int, broken bool) {
	r, err := b.h.call(bg, bInfo, 0, -1, nil, nil, nil)
	if err != nil || r.status != stOK || len(r.data) != 17 {
		return 0, 0, true
	}
	return int(binary.LittleEndian.Uint64(r.data)), int(binary.LittleEndian.Uint64(r.data[8:])), r.data[16] == 1
}

// Parties returns the number of parties the barrier waits for.
func (b *Barrier) Parties() int { p, _, _ := b.info(); return p }

// NWaiting returns the number of callers waiting now (n_waiting).
func (b *Barrier) NWaiting() int { _, n, _ := b.info(); return n }

// Broken reports whether the barrier is broken.
func (b *Barrier) Broken() bool { _, _, x := b.info(); return x }

// GobEncode makes the barrier cross to another process as a reference.
func (b *Barrier) GobEncode() ([]byte, error) { return b.h.encode() }

// GobDecode makes a received reference the barrier.
func (b *Barrier) GobDecode(d []byte) error { return b.h.decode(d, kindBarrier) }

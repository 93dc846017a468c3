package aio

import (
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"time"
)

// Errors of the locks and semaphores.
var (
	// ErrOwnerDied is the error of the first acquire after a process died
	// holding the lock or semaphore (or the Condition's lock): what it
	// held is released, and that acquire returns this error instead of
	// the lock, so that the program learns that the state the lock
	// guarded may be half-changed. The next acquire proceeds as usual. A
	// Process whose function returned keeps what it took of a Semaphore
	// taken, as Python's does (a pool's worker, which ends when its pool
	// does, is taken for dead); a Lock it still held is released as a
	// dead holder's.
	// Python hangs forever here.
	ErrOwnerDied = errors.New("aio: a process died holding the lock")
	// ErrNotHeld is RLock.Release (or a Condition's Wait or Notify) by an
	// owner that does not hold the lock (Python's AssertionError and
	// RuntimeError "cannot release un-acquired lock").
	ErrNotHeld = errors.New("aio: cannot release un-acquired lock")
	// ErrReleasedTooOften is Lock.Release of a free lock, or
	// BoundedSemaphore.Release past its initial value (Python's
	// ValueError "semaphore or lock released too many times").
	ErrReleasedTooOften = errors.New("aio: semaphore or lock released too many times")
	// ErrBrokenBarrier is a Barrier's Wait when the barrier is broken or
	// breaks (Python's threading.BrokenBarrierError).
	ErrBrokenBarrier = errors.New("aio: barrier is broken")
	// ErrTimeout is the error of a Condition or Barrier wait whose timeout
	// passed.
	ErrTimeout = errors.New("aio: timed out")
)

// The texts of a Condition's Wait and Notify by an owner that does not hold
// its lock (Python's RuntimeError), answered as ErrNotHeld.
const (
	errWaitUnheld   = "cannot wait on un-acquired lock"
	errNotifyUnheld = "cannot notify on un-acquired lock"
)

// Lock and semaphore operations; the Condition's share the lock's object.
const (
	sAcquire = opObject + iota
	sRelease
	sValue
	cWait
	cNotify
)

// semObj is a Lock, RLock, Semaphore or BoundedSemaphore in its host.
// A Lock and an RLock are semaphores of one with an owner. A Condition is
// its lock's object too, so that releasing and waiting are one step.
type semObj struct {
	mu        sync.Mutex
	value     int
	bound     int // if bounded, release past it is an error (Lock, BoundedSemaphore)
	bounded   bool
	recursive bool // RLock
	isLock    bool // Lock or RLock: owner is kept
	owner     holder
	depth     int
	held      map[*peer]int // what other processes hold, for their death
	hostHeld  int
	died      bool
	waiters   waitq // acquirers, and notified Condition waiters re-acquiring
	condq     waitq // Condition waiters not yet notified
}

// A request in waiters that re-acquires for a Condition carries in aux
// its saved depth, and in condRes the status to answer once it holds the
// lock (stOK notified, stTimeout timed out, stCancelled withdrawn).
const auxCond = 1 << 20

func (s *semObj) hold(r *request) {
	s.value--
	if s.isLock {
		s.owner = holder{r.p, r.owner}
		s.depth = 1
	}
	if r.p != nil {
		if s.held == nil {
			s.held = map[*peer]int{}
		}
		s.held[r.p]++
	} else {
		s.hostHeld++
	}
}

func (s *semObj) unhold(p *peer) {
	if p != nil && s.held[p] > 0 {
		s.held[p]--
		if s.held[p] == 0 {
			delete(s.held, p)
		}
	} else if s.hostHeld > 0 {
		s.hostHeld--
	} else {
		for q := range s.held {
			// Released by a process other than the acquirer (allowed for
			// a Lock and a Semaphore): the acquirer no longer holds it.
			s.unhold(q)
			break
		}
	}
}

// grant gives the lock to waiters while it is free.
func (s *semObj) grant(out *outbox) {
	for s.value > 0 && len(s.waiters) > 0 {
		w := s.waiters.pop()
		s.hold(w)
		if w.aux >= auxCond {
			s.depth = w.aux - auxCond
			out.add(w, reply{status: w.condRes()})
			continue
		}
		out.add(w, reply{})
	}
}

func (r *request) condRes() uint8 { return uint8(len(r.data)) }

// setCondRes records what a Condition waiter answers once it has the lock
// back: its data is not needed any more, so its length carries it.
func (r *request) setCondRes(st uint8) { r.data = make([]byte, st) }

func (s *semObj) serve(r *request) {
	var out outbox
	s.mu.Lock()
	switch r.op {
	case sAcquire:
		s.acquire(r, &out)
	case sRelease:
		if st, msg := s.release(r); st != stOK {
			out.add(r, reply{status: st, data: []byte(msg)})
		} else {
			s.grant(&out)
			out.add(r, reply{})
		}
	case sValue:
		v := s.value
		if s.isLock && s.value == 0 {
			v = -s.depth // locked, and how deep; for Locked and for debugging
		}
		out.add(r, reply{data: binary.LittleEndian.AppendUint64(nil, uint64(int64(v)))})
	case cWait:
		if !s.owns(r) {
			out.add(r, reply{status: stWrongState, data: []byte(errWaitUnheld)})
			break
		}
		depth := s.depth
		s.depth = 0
		s.value++
		s.unhold(r.p)
		s.owner = holder{}
		r.aux = auxCond + depth
		if r.timeout == 0 {
			// wait(0): nothing can notify it in no time; it takes the
			// lock back and times out.
			r.setCondRes(stTimeout)
			s.waiters.push(r)
		} else {
			s.condq.push(r)
			arm(r, s.expire)
		}
		s.grant(&out)
	case cNotify:
		if !s.owns(r) {
			out.add(r, reply{status: stWrongState, data: []byte(errNotifyUnheld)})
			break
		}
		n := int(int64(binary.LittleEndian.Uint64(r.data)))
		for ; n != 0 && len(s.condq) > 0; n-- {
			w := s.condq.pop()
			if w.timer != nil {
				w.timer.Stop()
				w.timer = nil
			}
			w.setCondRes(stOK)
			s.waiters.push(w)
		}
		out.add(r, reply{})
	default:
		out.add(r, reply{status: stErr, data: []byte("aio: bad lock operation")})
	}
	s.mu.Unlock()
	out.send()
}

func (s *semObj) owns(r *request) bool {
	return s.isLock && s.value == 0 && (s.owner == holder{r.p, r.owner} || s.owner == holder{r.p, anyOwner})
}

func (s *semObj) acquire(r *request, out *outbox) {
	if s.recursive && s.value == 0 && s.owner == (holder{r.p, r.owner}) {
		s.depth++
		out.add(r, reply{})
		return
	}
	if s.died {
		s.died = false
		out.add(r, reply{status: stOwnerDied})
		return
	}
	if s.value > 0 && len(s.waiters) == 0 {
		s.hold(r)
		out.add(r, reply{})
		return
	}
	if r.timeout == 0 {
		out.add(r, reply{status: stTimeout})
		return
	}
	s.waiters.push(r)
	arm(r, s.expire)
}

func (s *semObj) release(r *request) (uint8, string) {
	switch {
	case s.recursive:
		if s.value != 0 || s.owner != (holder{r.p, r.owner}) {
			return stWrongState, ErrNotHeld.Error()
		}
		s.depth--
		if s.depth > 0 {
			return stOK, ""
		}
		s.owner = holder{}
	case s.bounded && s.value >= s.bound:
		return stWrongState, ErrReleasedTooOften.Error()
	case s.isLock:
		s.owner = holder{}
		s.depth = 0
	}
	s.value++
	s.unhold(r.p)
	return stOK, ""
}

func (s *semObj) expire(r *request) {
	var out outbox
	s.mu.Lock()
	if s.waiters.remove(r.p, r.req) == r {
		out.add(r, reply{status: stTimeout})
	} else if s.condq.remove(r.p, r.req) == r {
		// A Condition's wait timed out: it re-acquires, then answers.
		r.timer = nil
		r.setCondRes(stTimeout)
		s.waiters.push(r)
		s.grant(&out)
	}
	s.mu.Unlock()
	out.send()
}

func (s *semObj) withdraw(p *peer, req uint64) {
	var out outbox
	s.mu.Lock()
	if r := s.waiters.remove(p, req); r != nil {
		if r.aux >= auxCond {
			// Re-acquiring for a Condition: it must hold the lock when it
			// answers; keep its place.
			r.setCondRes(stCancelled)
			s.waiters = append(waitq{r}, s.waiters...)
			s.grant(&out)
		} else {
			out.add(r, reply{status: stCancelled})
		}
	} else if r := s.condq.remove(p, req); r != nil {
		if r.timer != nil {
			r.timer.Stop()
			r.timer = nil
		}
		r.setCondRes(stCancelled)
		s.waiters.push(r)
		s.grant(&out)
	}
	s.mu.Unlock()
	out.send()
}

func (s *semObj) peerGone(p *peer) {
	var out outbox
	s.mu.Lock()
	s.waiters.removePeer(p)
	s.condq.removePeer(p)
	if n := s.held[p]; n > 0 && !s.isLock && p.endsClean.Load() {
		// A semaphore has no owner: a process that took units and ended
		// normally has used them (a consumer's acquire), as in Python.
		delete(s.held, p)
	} else if n > 0 {
		delete(s.held, p)
		s.value += n
		if s.isLock {
			s.owner = holder{}
			s.depth = 0
		}
		// The next acquire learns of it: one waiting now, or the next.
		if w := s.waiters.pop(); w != nil {
			if w.aux >= auxCond {
				s.waiters = append(waitq{w}, s.waiters...)
				s.died = true
			} else {
				out.add(w, reply{status: stOwnerDied})
			}
		} else {
			s.died = true
		}
		s.grant(&out)
	}
	s.mu.Unlock()
	out.send()
}

// semaphore is what Lock, RLock, Semaphore and BoundedSemaphore share on
// the caller's side.
type semaphore struct{ h handle }

func (s *semaphore) acquire(ctx context.Context, timeout time.Duration) (bool, error) {
	// The owner is fixed now: the undo runs later, in a loop callback,
	// where ctx's loop runs no task, and an RLock must be released by the
	// owner that acquired it.
	owner := ownerOf(ctx)
	r, err := s.h.call(ctx, sAcquire, owner, timeout, nil, nil, func(reply) { s.undoAcquire(owner) })
	if err != nil {
		return false, err
	}
	if r.status == stTimeout {
		return false, nil
	}
	if err := errOf(r, nil); err != nil {
		return false, err
	}
	return true, nil
}

// undoAcquire releases an acquire a cancelled task was granted.
func (s *semaphore) undoAcquire(owner uint64) {
	s.h.start(sRelease, owner, -1, nil, nil, func(reply) {})
}

func (s *semaphore) release(ctx context.Context) error {
	r, err := s.h.call(bg, sRelease, ownerOf(ctx), -1, nil, nil, nil)
	if err != nil {
		return err
	}
	return errOf(r, nil)
}

func (s *semaphore) value() int {
	r, err := s.h.call(bg, sValue, 0, -1, nil, nil, nil)
	if err != nil || r.status != stOK || len(r.data) != 8 {
		return 0
	}
	return int(int64(binary.LittleEndian.Uint64(r.data)))
}

// Lock is multiprocessing.Lock (aioprocessing's AioLock): a lock shared by
// processes. Any goroutine or task of any process may release it, as in
// Python. Acquire blocks the goroutine; CoroAcquire awaits on a task's
// loop, and a task may hold the lock across its awaits. A cancelled
// CoroAcquire leaves the lock free. If the process holding it dies, the
// next acquire returns ErrOwnerDied.
//
// On Linux the lock is a word in shared memory (lock_shm.go): a blocked
// Acquire sleeps in the kernel and the Release of any process wakes it,
// with no message. NewCondition over the lock moves it into the process
// that made it for good, since a Condition's wait must release it and
// queue in one step. Like multiprocessing's, it does not hand itself to
// waiters in the order they came. Release first waits one round trip to
// each process this one posted to since (see Event.Set), so that what it
// put there is in place for the next holder.
type Lock struct {
	semaphore
	s *shmLock // nil: hosted, semaphore
}

// NewLock returns a free Lock.
func NewLock() *Lock {
	if shmSupported {
		if s, err := newShmLock(); err == nil {
			return &Lock{semaphore: s.sem, s: s}
		}
	}
	return &Lock{semaphore: semaphore{newHandle(kindLock, &semObj{value: 1, bound: 1, bounded: true, isLock: true})}}
}

func (l *Lock) acquire(ctx context.Context, timeout time.Duration) (bool, error) {
	if l.s != nil {
		return l.s.acquire(ctx, timeout)
	}
	return l.semaphore.acquire(ctx, timeout)
}

// Acquire waits until the lock is free and takes it.
func (l *Lock) Acquire() error { _, err := l.acquire(bg, -1); return err }

// AcquireTimeout is acquire(block, timeout): it waits at most d (d <= 0:
// not at all, as TryAcquire) and reports whether it took the lock.
func (l *Lock) AcquireTimeout(d time.Duration) (bool, error) {
	return l.acquire(bg, atMost(d))
}

// TryAcquire takes the lock if it is free (acquire(block=False)).
func (l *Lock) TryAcquire() (bool, error) { return l.acquire(bg, 0) }

// CoroAcquire is Acquire as an await (coro_acquire).
func (l *Lock) CoroAcquire(ctx context.Context) error { _, err := l.acquire(ctx, -1); return err }

// Release frees the lock; releasing a free lock returns
// ErrReleasedTooOften.
func (l *Lock) Release() error {
	if l.s != nil {
		return l.s.release(bg)
	}
	return l.release(bg)
}

// Locked reports whether the lock is held.
func (l *Lock) Locked() bool {
	if l.s != nil {
		return l.s.locked()
	}
	if l.h.ID == 0 {
		return false // a zero Lock: nobody can hold it
	}
	return l.value() <= 0
}

// GobEncode makes the lock cross to another process as a reference.
func (l *Lock) GobEncode() ([]byte, error) {
	if l.s != nil {
		return l.s.encode()
	}
	return l.h.encode()
}

// GobDecode makes a received reference the lock.
func (l *Lock) GobDecode(b []byte) error {
	if len(b) == shmLockRefLen {
		s, err := decodeShmLock(b)
		if err != nil {
			return err
		}
		*l = Lock{semaphore: s.sem, s: s}
		return nil
	}
	return l.h.decode(b, kindLock)
}

// RLock is multiprocessing.RLock: a lock its owner may take again, and
// must release as many times. Its owner is the task (for CoroAcquire, with
// the task's ctx) or the goroutine (for Acquire) in its process, so a task
// re-enters a lock it took with CoroAcquire, as aioprocessing's
// thread-based version cannot.
type RLock struct{ semaphore }

// NewRLock returns a free RLock.
func NewRLock() *RLock {
	return &RLock{semaphore{newHandle(kindRLock, &semObj{value: 1, bound: 1, bounded: true, isLock: true, recursive: true})}}
}

// Acquire takes the lock for the calling goroutine, waiting while another
// owner holds it.
func (l *RLock) Acquire() error { _, err := l.acquire(bg, -1); return err }

// AcquireTimeout waits at most d (d <= 0: not at all) and reports
// whether it took the lock.
func (l *RLock) AcquireTimeout(d time.Duration) (bool, error) {
	return l.acquire(bg, atMost(d))
}

// TryAcquire takes the lock if it is free or already the caller's.
func (l *RLock) TryAcquire() (bool, error) { return l.acquire(bg, 0) }

// CoroAcquire takes the lock for ctx's task, awaiting.
func (l *RLock) CoroAcquire(ctx context.Context) error { _, err := l.acquire(ctx, -1); return err }

// Release releases one level of the calling goroutine's hold; by another
// owner it returns ErrNotHeld.
func (l *RLock) Release() error { return l.release(bg) }

// CoroRelease releases one level of ctx's task's hold.
func (l *RLock) CoroRelease(ctx context.Context) error { return l.release(ctx) }

// GobEncode makes the lock cross to another process as a reference.
func (l *RLock) GobEncode() ([]byte, error) { return l.h.encode() }

// GobDecode makes a received reference the lock.
func (l *RLock) GobDecode(b []byte) error { return l.h.decode(b, kindRLock) }

// Semaphore is multiprocessing.Semaphore: a counter that Acquire takes one
// from, waiting at zero, and Release gives one back to.
type Semaphore struct{ semaphore }

// NewSemaphore returns a semaphore of value n (Python's default is 1).
func NewSemaphore(n int) *Semaphore {
	return &Semaphore{semaphore{newHandle(kindSemaphore, &semObj{value: max(n, 0)})}}
}

// Acquire takes one, waiting while the value is zero.
func (s *Semaphore) Acquire() error { _, err := s.acquire(bg, -1); return err }

// AcquireTimeout waits at most d (d <= 0: not at all) and reports whether
// it took one.
func (s *Semaphore) AcquireTimeout(d time.Duration) (bool, error) {
	return s.acquire(bg, atMost(d))
}

// TryAcquire takes one if the value is above zero.
func (s *Semaphore) TryAcquire() (bool, error) { return s.acquire(bg, 0) }

// CoroAcquire is Acquire as an await.
func (s *Semaphore) CoroAcquire(ctx context.Context) error { _, err := s.acquire(ctx, -1); return err }

// Release gives one back.
func (s *Semaphore) Release() error { return s.release(bg) }

// Value returns the current value (get_value).
func (s *Semaphore) Value() int { return max(s.value(), 0) }

// GobEncode makes the semaphore cross to another process as a reference.
func (s *Semaphore) GobEncode() ([]byte, error) { return s.h.encode() }

// GobDecode makes a received reference the semaphore.
func (s *Semaphore) GobDecode(b []byte) error { return s.h.decode(b, kindSemaphore) }

// BoundedSemaphore is multiprocessing.BoundedSemaphore: a Semaphore whose
// Release past its initial value returns ErrReleasedTooOften.
type BoundedSemaphore struct{ Semaphore }

// NewBoundedSemaphore returns a bounded semaphore of value n.
func NewBoundedSemaphore(n int) *BoundedSemaphore {
	n = max(n, 0)
	return &BoundedSemaphore{Semaphore{semaphore{newHandle(kindBounded, &semObj{value: n, bound: n, bounded: true})}}}
}

// GobDecode makes a received reference the semaphore.
func (s *BoundedSemaphore) GobDecode(b []byte) error { return s.h.decode(b, kindBounded) }

// Condition is multiprocessing.Condition: a condition variable over a
// Lock or an RLock (an RLock of its own by default, as in Python), shared
// by processes. Wait releases the lock, waits for Notify, and takes the
// lock back before it returns, whatever happened, a cancelled CoroWait
// included. It works within one process too, between goroutines or tasks.
type Condition struct {
	h  handle // the lock's object
	lk semaphore
}

// NewCondition returns a condition over lock, which must be a *Lock or an
// *RLock made in this process, or over a new RLock if lock is nil.
func NewCondition(lock any) (*Condition, error) {
	var s semaphore
	switch l := lock.(type) {
	case nil:
		s = NewRLock().semaphore
	case *Lock:
		if l.s != nil {
			if l.s.sem.h.local == nil {
				return nil, errors.New("aio: a Condition's lock must have been made in this process")
			}
			if err := l.s.moveToHost(); err != nil {
				return nil, err
			}
		}
		s = l.semaphore
	case *RLock:
		s = l.semaphore
	default:
		return nil, errors.New("aio: a Condition's lock is a *Lock or an *RLock")
	}
	if s.h.local == nil {
		return nil, errors.New("aio: a Condition's lock must have been made in this process")
	}
	h := s.h
	h.Kind = kindCondition
	return &Condition{h: h, lk: s}, nil
}

// Acquire takes the condition's lock.
func (c *Condition) Acquire() error { _, err := c.lk.acquire(bg, -1); return err }

// CoroAcquire takes the condition's lock for ctx's task.
func (c *Condition) CoroAcquire(ctx context.Context) error {
	_, err := c.lk.acquire(ctx, -1)
	return err
}

// Release releases the condition's lock.
func (c *Condition) Release() error { return c.lk.release(bg) }

// CoroRelease releases the lock held by ctx's task.
func (c *Condition) CoroRelease(ctx context.Context) error { return c.lk.release(ctx) }

func (c *Condition) wait(ctx context.Context, d time.Duration) (bool, error) {
	timeout := d // < 0: as long as it takes
	owner := ownerOf(ctx)
	// The wait must end holding the lock, so its cancellation withdraws
	// it and waits for the answer, which comes once the lock is back.
	wctx := ctx
	if tc := taskContextOf(ctx); tc != nil {
		wctx = tc
	}
	cf := runningFuture()
	req := c.h.start(cWait, owner, timeout, nil, nil, func(r reply) { _ = cf.SetResult(r) })
	r, err := awaitReply(ctx, wctx, cf, func() { c.h.cancel(req) })
	if err != nil {
		return false, err
	}
	switch r.status {
	case stOK:
		return true, nil
	case stTimeout:
		return false, nil
	case stCancelled:
		return false, context.Canceled
	}
	return false, errOf(r, nil)
}

// Wait releases the lock, waits until notified, and takes the lock back.
// The caller must hold the lock, or it returns an error saying so.
func (c *Condition) Wait() error { _, err := c.wait(bg, -1); return err }

// WaitTimeout is Wait for at most d; it reports whether it was notified
// (Python's wait(timeout) returns False on timeout).
func (c *Condition) WaitTimeout(d time.Duration) (bool, error) { return c.wait(bg, atMost(d)) }

// CoroWait is Wait as an await (coro_wait): ctx's task must hold the lock.
// Cancelled, it still takes the lock back before it returns the
// cancellation.
func (c *Condition) CoroWait(ctx context.Context) error { _, err := c.wait(ctx, -1); return err }

// WaitFor waits until predicate returns true, calling Wait between tries,
// for at most d in all (d <= 0: it only asks the predicate, as Python's
// wait_for(predicate, 0)), and returns the predicate's last result.
func (c *Condition) WaitFor(predicate func() bool, d time.Duration) (bool, error) {
	if d <= 0 {
		return predicate(), nil
	}
	return c.waitFor(bg, predicate, d)
}

// CoroWaitFor is WaitFor as an await.
func (c *Condition) CoroWaitFor(ctx context.Context, predicate func() bool) error {
	_, err := c.waitFor(ctx, predicate, 0)
	return err
}

func (c *Condition) waitFor(ctx context.Context, predicate func() bool, d time.Duration) (bool, error) {
	var deadline time.Time
	if d > 0 {
		deadline = time.Now().Add(d)
	}
	for !predicate() {
		left := time.Duration(-1)
		if d > 0 {
			left = time.Until(deadline)
			if left <= 0 {
				return predicate(), nil
			}
		}
		if _, err := c.wait(ctx, left); err != nil {
			return false, err
		}
	}
	return true, nil
}

// Notify wakes up to n waiters (Python's default is 1; n <= 0 wakes none,
// as Python's); the caller must hold the lock.
func (c *Condition) Notify(n int) error { return c.notify(bg, max(n, 0)) }

// NotifyAll wakes every waiter.
func (c *Condition) NotifyAll() error { return c.notify(bg, -1) }

// CoroNotify is Notify by ctx's task, which holds the lock.
func (c *Condition) CoroNotify(ctx context.Context, n int) error { return c.notify(ctx, max(n, 0)) }

// CoroNotifyAll is NotifyAll by ctx's task.
func (c *Condition) CoroNotifyAll(ctx context.Context) error { return c.notify(ctx, -1) }

func (c *Condition) notify(ctx context.Context, n int) error {
	r, err := c.h.call(bg, cNotify, ownerOf(ctx), -1, binary.LittleEndian.AppendUint64(nil, uint64(int64(n))), nil, nil)
	if err != nil {
		return err
	}
	return errOf(r, nil)
}

// GobEncode makes the condition cross to another process as a reference.
func (c *Condition) GobEncode() ([]byte, error) {
	b, err := c.h.encode()
	if err != nil {
		return nil, err
	}
	b[16] = kindCondition
	return b, nil
}

// GobDecode makes a received reference the condition.
func (c *Condition) GobDecode(b []byte) error {
	if err := c.h.decode(b, kindCondition); err != nil {
		return err
	}
	c.lk = semaphore{h: c.h}
	return nil
}

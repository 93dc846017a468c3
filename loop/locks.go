package loop

import (
	"context"
	"errors"
	"fmt"
)

// Errors of the synchronisation primitives; their text follows the rule
// in the package doc.
var (
	// ErrLockNotAcquired is "Lock is not acquired.".
	ErrLockNotAcquired = errors.New("loop: Lock is not acquired")
	// ErrBoundedSemaphoreOverRelease is "BoundedSemaphore released too
	// many times".
	ErrBoundedSemaphoreOverRelease = errors.New("loop: BoundedSemaphore released too many times")
	// ErrConditionNotLocked is "cannot wait on un-acquired lock" and
	// "cannot notify on un-acquired lock".
	ErrConditionNotLocked = errors.New("loop: condition used without holding its lock")
	// ErrBrokenBarrier is asyncio.BrokenBarrierError.
	ErrBrokenBarrier = errors.New("loop: barrier aborted or reset")
	// ErrBarrierParties is "parties must be > 0" (ValueError): NewBarrier
	// returns it for parties < 1, and the zero Barrier, which has no
	// parties, returns it from Wait, Reset and Abort.
	ErrBarrierParties = errors.New("loop: parties must be > 0")
)

// Lock is asyncio.Lock: a mutex for the tasks of one loop. Acquire waits
// in FIFO order; a task that arrives while others wait queues behind them
// even if the lock is momentarily free (no barging). The zero value is an
// unlocked Lock. Like every primitive here, a Lock binds to the first loop
// on which a task has to wait for it, and returns ErrDifferentLoop to tasks
// of any other loop.
//
// Unlike sync.Mutex, holding a Lock does not block the loop: other tasks
// run while a holder awaits.
type Lock struct {
	loopBound
	locked  bool
	waiters waitList
}

// Locked reports whether the lock is held.
func (lk *Lock) Locked() bool { return lk.locked }

// Acquire waits until the lock is free and takes it. An uncontended
// Acquire does not yield to the loop. If the task is cancelled while
// waiting, Acquire returns the cancellation error without the lock, and
// the lock's next waiter is woken if the lock is free.
func (lk *Lock) Acquire(ctx context.Context) error {
	if !lk.locked && !lk.waiters.live() {
		lk.locked = true
		return nil
	}
	if _, err := lk.waiters.block(ctx, &lk.loopBound, "Lock", nil); err != nil {
		if !lk.locked {
			lk.wakeUpFirst()
		}
		return err
	}
	lk.locked = true
	return nil
}

// Release releases the lock and wakes the first waiter. Releasing an
// unlocked Lock returns ErrLockNotAcquired.
func (lk *Lock) Release() error {
	if !lk.locked {
		return ErrLockNotAcquired
	}
	lk.locked = false
	lk.wakeUpFirst()
	return nil
}

func (lk *Lock) wakeUpFirst() {
	if w := lk.waiters.head; w != nil && w.state == statePending {
		w.wake()
	}
}

// Event is asyncio.Event: Set wakes every task in Wait, and Wait returns at
// once while the event is set. The zero value is a clear Event.
type Event struct {
	loopBound
	value   bool
	waiters waitList
}

// IsSet reports whether the event is set.
func (e *Event) IsSet() bool { return e.value }

// Set sets the event and wakes every waiter; they return even if Clear
// follows at once.
func (e *Event) Set() {
	if e.value {
		return
	}
	e.value = true
	e.waiters.wakeN(e.waiters.len())
}

// Clear resets the event.
func (e *Event) Clear() { e.value = false }

// Wait waits until the event is set; if it already is, Wait returns at once
// without yielding.
func (e *Event) Wait(ctx context.Context) error {
	if e.value {
		return nil
	}
	_, err := e.waiters.block(ctx, &e.loopBound, "Event", nil)
	return err
}

// Condition is asyncio.Condition: tasks wait on it, holding its lock, until
// another task notifies them. The zero value has its own Lock; NewCondition
// shares one.
type Condition struct {
	loopBound
	lock    *Lock
	own     Lock
	waiters waitList
}

// NewCondition returns a Condition over lk (asyncio.Condition(lock)); a
// nil lk gives it a Lock of its own.
func NewCondition(lk *Lock) *Condition {
	c := &Condition{}
	c.lock = lk
	return c
}

func (c *Condition) l() *Lock {
	if c.lock == nil {
		c.lock = &c.own
	}
	return c.lock
}

// Acquire acquires the underlying lock.
func (c *Condition) Acquire(ctx context.Context) error { return c.l().Acquire(ctx) }

// Release releases the underlying lock.
func (c *Condition) Release() error { return c.l().Release() }

// Locked reports whether the underlying lock is held.
func (c *Condition) Locked() bool { return c.l().Locked() }

// Wait releases the lock, waits until notified, and re-acquires the lock
// before it returns, whatever happened, cancellation included (and a
// derived ctx ending: it returns that error holding the lock). Without the
// lock it returns ErrConditionNotLocked. (A loop closing under the task
// ends the task at its next await, this re-acquisition included.)
func (c *Condition) Wait(ctx context.Context) error {
	lk := c.l()
	if !lk.Locked() {
		return fmt.Errorf("%w: cannot wait on un-acquired lock", ErrConditionNotLocked)
	}
	released := false
	_, err := c.waiters.block(ctx, &c.loopBound, "Condition", func() {
		_ = lk.Release()
		released = true
	})
	if !released {
		return err // not queued at all (bad ctx, another loop): lock still held
	}
	// Re-acquire even if cancelled; the latest cancellation wins. The
	// task's own ctx does it: a derived ctx that ended must not stop it.
	tctx := context.Context(taskOf(ctx))
	for {
		aerr := lk.Acquire(tctx)
		if aerr == nil {
			break
		}
		err = aerr
		if !isCancellation(aerr) {
			break // not a cancellation: give up rather than spin
		}
	}
	if err != nil {
		// We may have been notified; pass it on (a spurious wake-up is
		// allowed by the protocol).
		c.notify(1)
	}
	return err
}

// WaitFor waits until predicate returns true, calling Wait between tries,
// and returns nil once it does (asyncio returns the predicate's value,
// which is true).
func (c *Condition) WaitFor(ctx context.Context, predicate func() bool) error {
	for !predicate() {
		if err := c.Wait(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Notify wakes up to n waiters, first come first served. Without the lock
// it returns ErrConditionNotLocked.
func (c *Condition) Notify(n int) error {
	if !c.l().Locked() {
		return fmt.Errorf("%w: cannot notify on un-acquired lock", ErrConditionNotLocked)
	}
	c.notify(n)
	return nil
}

// NotifyAll wakes every waiter.
func (c *Condition) NotifyAll() error { return c.Notify(c.waiters.len()) }

func (c *Condition) notify(n int) { c.waiters.wakeN(n) }

// Semaphore is asyncio.Semaphore: a counter that Acquire decrements,
// waiting while it is zero, and Release increments. Waiters are served in
// FIFO order, and a newcomer waits behind them even when the counter is
// positive. Release may raise the counter above its initial value. The
// zero value is asyncio.Semaphore(): its counter is 1.
type Semaphore struct {
	loopBound
	value   int
	bound   int  // the initial value: BoundedSemaphore's bound
	made    bool // value and bound are set; the zero Semaphore's are 1
	waiters waitList
}

// NewSemaphore returns a Semaphore with the counter at value; a negative
// value is an error.
func NewSemaphore(value int) (*Semaphore, error) {
	if value < 0 {
		return nil, errSemaphoreValue
	}
	return &Semaphore{value: value, bound: value, made: true}, nil
}

var errSemaphoreValue = errors.New("loop: Semaphore initial value must be >= 0")

// defaults gives the zero Semaphore asyncio's default value, 1.
func (s *Semaphore) defaults() {
	if !s.made {
		s.value, s.bound, s.made = 1, 1, true
	}
}

// Value returns the counter.
func (s *Semaphore) Value() int {
	s.defaults()
	return s.value
}

// Locked reports whether Acquire would wait: the counter is zero, or tasks
// that are not cancelled are waiting.
func (s *Semaphore) Locked() bool {
	s.defaults()
	return s.value == 0 || s.waiters.live()
}

// Acquire decrements the counter, waiting while it is zero or others wait.
func (s *Semaphore) Acquire(ctx context.Context) error {
	if !s.Locked() {
		s.value--
		return nil
	}
	woken, err := s.waiters.block(ctx, &s.loopBound, "Semaphore", nil)
	if err != nil && woken {
		// Woken (the counter was taken for us) but cancelled before
		// we could use it: give it back.
		s.value++
	}
	// Others may have queued behind us while the counter was positive.
	for s.value > 0 && s.wakeUpNext() {
	}
	return err
}

// Release increments the counter and wakes the first waiter.
func (s *Semaphore) Release() error {
	s.defaults()
	s.value++
	s.wakeUpNext()
	return nil
}

func (s *Semaphore) wakeUpNext() bool {
	if s.waiters.wakeN(1) == 0 {
		return false
	}
	s.value--
	return true
}

// BoundedSemaphore is asyncio.BoundedSemaphore: a Semaphore whose Release
// refuses to raise the counter above its initial value. The zero value is
// asyncio.BoundedSemaphore(): counter and bound 1.
type BoundedSemaphore struct{ Semaphore }

// NewBoundedSemaphore returns asyncio.BoundedSemaphore(value); a negative
// value is an error.
func NewBoundedSemaphore(value int) (*BoundedSemaphore, error) {
	if value < 0 {
		return nil, errSemaphoreValue
	}
	return &BoundedSemaphore{Semaphore{value: value, bound: value, made: true}}, nil
}

// Release increments the counter and wakes the first waiter, or returns
// ErrBoundedSemaphoreOverRelease if the counter is at its initial value.
func (s *BoundedSemaphore) Release() error {
	s.defaults()
	if s.value >= s.bound {
		return ErrBoundedSemaphoreOverRelease
	}
	return s.Semaphore.Release()
}

type barrierState uint8

const (
	barrierFilling barrierState = iota
	barrierDraining
	barrierResetting
	barrierBroken
)

// Barrier is asyncio.Barrier: Wait blocks until parties tasks are waiting,
// then releases them all. Abort breaks it, Reset sends the waiters away
// with ErrBrokenBarrier and makes it usable again.
//
// asyncio.Barrier has no default for parties, and neither has the zero
// Barrier: make one with NewBarrier. The zero Barrier's Wait, Reset and
// Abort return ErrBarrierParties; Parties reports 0.
type Barrier struct {
	cond    Condition
	parties int
	state   barrierState
	count   int
}

// NewBarrier returns a Barrier for parties tasks; parties < 1 is an error.
func NewBarrier(parties int) (*Barrier, error) {
	if parties < 1 {
		return nil, ErrBarrierParties
	}
	return &Barrier{parties: parties}, nil
}

// Parties returns the number of tasks the barrier waits for.
func (b *Barrier) Parties() int { return b.parties }

// NWaiting returns the number of tasks waiting while the barrier fills.
func (b *Barrier) NWaiting() int {
	if b.state == barrierFilling {
		return b.count
	}
	return 0
}

// Broken reports whether the barrier is broken (aborted).
func (b *Barrier) Broken() bool { return b.state == barrierBroken }

// Wait waits until parties tasks are waiting, and returns this task's
// arrival index, 0 to parties-1. It returns ErrBrokenBarrier if the barrier
// is aborted or reset meanwhile, or is broken already.
func (b *Barrier) Wait(ctx context.Context) (index int, err error) {
	if b.parties < 1 {
		return 0, ErrBarrierParties
	}
	if err := b.cond.Acquire(ctx); err != nil {
		return 0, err
	}
	defer func() {
		if rerr := b.cond.Release(); err == nil && rerr != nil {
			err = rerr
		}
	}()
	// Block while the barrier drains or resets.
	if err := b.cond.WaitFor(ctx, func() bool {
		return b.state != barrierDraining && b.state != barrierResetting
	}); err != nil {
		return 0, err
	}
	if b.state == barrierBroken {
		return 0, fmt.Errorf("%w: barrier aborted", ErrBrokenBarrier)
	}
	index = b.count
	b.count++
	defer func() {
		b.count--
		if b.count == 0 {
			if b.state == barrierResetting || b.state == barrierDraining {
				b.state = barrierFilling
			}
			b.cond.notify(b.cond.waiters.len())
		}
	}()
	if index+1 == b.parties {
		b.state = barrierDraining
		b.cond.notify(b.cond.waiters.len())
		return index, nil
	}
	if err := b.cond.WaitFor(ctx, func() bool { return b.state != barrierFilling }); err != nil {
		return 0, err
	}
	if b.state == barrierBroken || b.state == barrierResetting {
		return 0, fmt.Errorf("%w: abort or reset of barrier", ErrBrokenBarrier)
	}
	return index, nil
}

// Reset returns the barrier to its empty state; tasks waiting in it get
// ErrBrokenBarrier.
func (b *Barrier) Reset(ctx context.Context) error {
	if b.parties < 1 {
		return ErrBarrierParties
	}
	if err := b.cond.Acquire(ctx); err != nil {
		return err
	}
	if b.count > 0 {
		b.state = barrierResetting
	} else {
		b.state = barrierFilling
	}
	b.cond.notify(b.cond.waiters.len())
	return b.cond.Release()
}

// Abort breaks the barrier: current and future Wait calls return
// ErrBrokenBarrier.
func (b *Barrier) Abort(ctx context.Context) error {
	if b.parties < 1 {
		return ErrBarrierParties
	}
	if err := b.cond.Acquire(ctx); err != nil {
		return err
	}
	b.state = barrierBroken
	b.cond.notify(b.cond.waiters.len())
	return b.cond.Release()
}

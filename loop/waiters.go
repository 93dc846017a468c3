package loop

import (
	"context"
	"fmt"
)

// waiter is one task blocked in a lock or queue: a future with no value,
// linked into its primitive's FIFO list so it can leave from the middle.
type waiter struct {
	futureCore
	prev, next *waiter
	list       *waitList
}

// waitList is a FIFO of waiters. It also keeps a few finished waiters for
// reuse, so a contended Lock or a queue that keeps filling and emptying
// does not allocate a waiter per wait.
type waitList struct {
	head, tail *waiter
	n          int
	free       *waiter // finished waiters for reuse, linked by next
	nfree      int
}

// maxFree bounds the waiters a waitList keeps for reuse: enough for the
// steady state of a contended primitive (one waiter leaves as another
// arrives), little enough that an Event that woke 100,000 waiters does not
// hold on to them.
const maxFree = 4

// recycle keeps w for a later wait on q once its task is done with it: w
// is woken or cancelled and in no list. A waiter still pending (its task
// was killed with the loop) is left alone.
func (q *waitList) recycle(w *waiter) {
	if w.list != nil || w.state == statePending || q.nfree >= maxFree {
		return
	}
	l := w.loop
	*w = waiter{}
	w.loop = l
	w.internal = true
	w.next = q.free
	q.free = w
	q.nfree++
}

func (q *waitList) len() int { return q.n }

func (q *waitList) push(w *waiter) {
	w.list = q
	w.prev = q.tail
	if q.tail != nil {
		q.tail.next = w
	} else {
		q.head = w
	}
	q.tail = w
	q.n++
}

// remove takes w out of the list if it is still in it.
func (q *waitList) remove(w *waiter) {
	if w.list != q {
		return
	}
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		q.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		q.tail = w.prev
	}
	w.prev, w.next, w.list = nil, nil, nil
	q.n--
}

func (q *waitList) popFront() *waiter {
	w := q.head
	if w != nil {
		q.remove(w)
	}
	return w
}

// wake finishes a waiter so its task resumes in the next iteration.
func (w *waiter) wake() { w.complete(stateFinished, nil) }

// loopBound is asyncio's _LoopBoundMixin: a primitive binds to the first
// loop on which a task has to block on it, and refuses any other.
type loopBound struct{ loop *Loop }

func (b *loopBound) bind(t *taskCore, what string) error {
	l := t.loop
	if b.loop == nil {
		b.loop = l
	} else if b.loop != l {
		return fmt.Errorf("%w: %s is bound to a different event loop", ErrDifferentLoop, what)
	}
	return nil
}

// newWaiter makes a waiter bound to l, reusing one of q's recycled waiters
// if it has one. The caller pushes it on q (or another list) and recycles
// it when done.
func (q *waitList) newWaiter(l *Loop) *waiter {
	w := q.free
	if w != nil {
		q.free = w.next
		w.next = nil
		q.nfree--
	} else {
		w = &waiter{}
		w.internal = true
	}
	w.loop = l
	return w
}

// wait suspends t until w is woken or cancelled. A cancellation of the task
// cancels w (asyncio cancels the future the task awaits), and is returned;
// so is the error of ext, a foreign ctx that ended first (it cancels w).
func (w *waiter) wait(ctx context.Context, t *taskCore, ext context.Context) error {
	w.addWaiter(t)
	t.waitFut = &w.futureCore
	err := t.wait(ctx, ext)
	t.waitFut = nil
	if err != nil {
		return err
	}
	if w.state == stateCancelled {
		return w.err
	}
	return nil
}

// block waits in q for the running task of ctx until a primitive wakes it:
// the waiter is made (or reused), pushed, waited on, taken out and
// recycled. beforeWait, if set, runs once the task is queued (Condition
// releases its lock there). When err is the task's cancellation, or the
// error of a ctx derived from the task's that ended first, woken reports
// whether the waiter had already been woken: the primitive then hands the
// wake-up on, as asyncio's locks and queues do. A derived ctx that has
// already ended returns its error before anything is queued.
func (q *waitList) block(ctx context.Context, b *loopBound, what string, beforeWait func()) (woken bool, err error) {
	t := runningTask(ctx)
	if t == nil {
		return false, ErrNotInTask
	}
	t.enterAwait()
	if err := b.bind(t, what); err != nil {
		return false, err
	}
	ext, err := t.checkCtx(ctx)
	if err != nil {
		return false, err
	}
	w := q.newWaiter(t.loop)
	q.push(w)
	if beforeWait != nil {
		beforeWait()
	}
	err = w.wait(ctx, t, ext)
	woken = w.state == stateFinished
	q.remove(w)
	q.recycle(w)
	return woken, err
}

// wakeN wakes up to n pending waiters, first come first served, leaving
// them in the list (their tasks take themselves out), and returns how many
// it woke.
func (q *waitList) wakeN(n int) int {
	woke := 0
	for w := q.head; w != nil && woke < n; w = w.next {
		if w.state == statePending {
			w.wake()
			woke++
		}
	}
	return woke
}

// popWake takes waiters off the front until it has woken a pending one;
// with all, it wakes every pending waiter. Queues use it: a woken waiter
// leaves the list at once.
func (q *waitList) popWake(all bool) {
	for w := q.popFront(); w != nil; w = q.popFront() {
		if w.state == statePending {
			w.wake()
			if !all {
				return
			}
		}
	}
}

// live reports whether a waiter that is not cancelled is in the list.
func (q *waitList) live() bool {
	for w := q.head; w != nil; w = w.next {
		if w.state != stateCancelled {
			return true
		}
	}
	return false
}

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

// waitList is a FIFO of waiters.
type waitList struct {
	head, tail *waiter
	n          int
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
	l := t.fut.loop
	if b.loop == nil {
		b.loop = l
	} else if b.loop != l {
		return fmt.Errorf("%w: %s is bound to a different event loop", ErrDifferentLoop, what)
	}
	return nil
}

// newWaiter makes a waiter for the running task of ctx, bound to b's loop.
func (b *loopBound) newWaiter(ctx context.Context, what string) (*waiter, *taskCore, error) {
	t := runningTask(ctx)
	if t == nil {
		return nil, nil, ErrNotInTask
	}
	if t.killed {
		return nil, nil, cancelledError("loop closed")
	}
	if err := b.bind(t, what); err != nil {
		return nil, nil, err
	}
	w := &waiter{}
	w.loop = t.fut.loop
	w.internal = true
	return w, t, nil
}

// wait suspends t until w is woken or cancelled. A cancellation of the task
// cancels w (asyncio cancels the future the task awaits), and is returned.
func (w *waiter) wait(t *taskCore) error {
	w.addWaiter(t)
	t.waitFut = &w.futureCore
	t.suspend()
	t.waitFut = nil
	if err := t.resumeErr(); err != nil {
		return err
	}
	if w.state == stateCancelled {
		return w.err
	}
	return nil
}

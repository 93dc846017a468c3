package loop

import (
	"cmp"
	"context"
	"errors"
)

// Errors of the queues, as asyncio's exceptions.
var (
	// ErrQueueEmpty is asyncio.QueueEmpty.
	ErrQueueEmpty = errors.New("loop: queue empty")
	// ErrQueueFull is asyncio.QueueFull.
	ErrQueueFull = errors.New("loop: queue full")
	// ErrQueueShutDown is asyncio.QueueShutDown (Python 3.13).
	ErrQueueShutDown = errors.New("loop: queue shut down")
	// ErrTaskDoneTooMany is "task_done() called too many times".
	ErrTaskDoneTooMany = errors.New("loop: TaskDone() called too many times")
	// ErrPriorityQueueUnordered is what the zero PriorityQueue, which has
	// no order for its items, returns from Put, PutNowait, Get and
	// GetNowait.
	ErrPriorityQueueUnordered = errors.New("loop: zero PriorityQueue has no order: make it with NewPriorityQueue or NewPriorityQueueFunc")
)

// store is the order a queue keeps its items in.
type store[T any] interface {
	put(T)
	get() T
	len() int
}

type lifo[T any] struct{ items []T }

func (q *lifo[T]) len() int { return len(q.items) }
func (q *lifo[T]) put(v T)  { q.items = append(q.items, v) }
func (q *lifo[T]) get() T {
	var zero T
	n := len(q.items) - 1
	v := q.items[n]
	q.items[n] = zero
	q.items = q.items[:n]
	return v
}

// heapStore is a binary min-heap under cmp.
type heapStore[T any] struct {
	items []T
	cmp   func(a, b T) int
}

func (h *heapStore[T]) len() int { return len(h.items) }

func (h *heapStore[T]) put(v T) {
	h.items = append(h.items, v)
	for j := len(h.items) - 1; j > 0; {
		i := (j - 1) / 2
		if h.cmp(h.items[j], h.items[i]) >= 0 {
			break
		}
		h.items[i], h.items[j] = h.items[j], h.items[i]
		j = i
	}
}

func (h *heapStore[T]) get() T {
	var zero T
	v := h.items[0]
	n := len(h.items) - 1
	h.items[0] = h.items[n]
	h.items[n] = zero
	h.items = h.items[:n]
	for i := 0; ; {
		l := 2*i + 1
		if l >= n {
			break
		}
		j := l
		if r := l + 1; r < n && h.cmp(h.items[r], h.items[l]) < 0 {
			j = r
		}
		if h.cmp(h.items[j], h.items[i]) >= 0 {
			break
		}
		h.items[i], h.items[j] = h.items[j], h.items[i]
		i = j
	}
	return v
}

// Queue is asyncio.Queue: a FIFO queue for the tasks of one loop. Put waits
// while the queue is full, Get while it is empty; waiting tasks are served
// in FIFO order, and a cancelled Get never loses an item. maxsize <= 0
// means unbounded. The zero value is an unbounded FIFO queue.
//
// An item is not handed to a waiting getter: a woken getter takes the next
// item when it runs, as in asyncio, so a GetNowait in between may take it.
type Queue[T any] struct {
	loopBound
	maxsize    int
	fifo       ring[T]  // the items of a FIFO queue, kept inline
	items      store[T] // the items of a LIFO or priority queue; nil for FIFO
	getters    waitList
	putters    waitList
	unfinished int
	finished   Event
	shutdown   bool
}

// NewQueue returns asyncio.Queue(maxsize).
func NewQueue[T any](maxsize int) *Queue[T] {
	return &Queue[T]{maxsize: maxsize}
}

// LifoQueue is asyncio.LifoQueue: the last item put is the first got.
// The zero value is an unbounded LifoQueue; its own methods make it LIFO
// on first use (a pointer to its Queue taken before then is a FIFO).
type LifoQueue[T any] struct{ Queue[T] }

// NewLifoQueue returns asyncio.LifoQueue(maxsize).
func NewLifoQueue[T any](maxsize int) *LifoQueue[T] {
	return &LifoQueue[T]{Queue[T]{maxsize: maxsize, items: &lifo[T]{}}}
}

// lifo returns the queue, made LIFO if it is the zero LifoQueue.
func (q *LifoQueue[T]) lifo() *Queue[T] {
	if q.items == nil {
		q.items = &lifo[T]{}
	}
	return &q.Queue
}

// Put is Queue.Put, LIFO.
func (q *LifoQueue[T]) Put(ctx context.Context, v T) error { return q.lifo().Put(ctx, v) }

// PutNowait is Queue.PutNowait, LIFO.
func (q *LifoQueue[T]) PutNowait(v T) error { return q.lifo().PutNowait(v) }

// Get is Queue.Get: it returns the last item put.
func (q *LifoQueue[T]) Get(ctx context.Context) (T, error) { return q.lifo().Get(ctx) }

// GetNowait is Queue.GetNowait: it returns the last item put.
func (q *LifoQueue[T]) GetNowait() (T, error) { return q.lifo().GetNowait() }

// PriorityQueue is asyncio.PriorityQueue: Get returns the smallest item.
// Make one with NewPriorityQueue or NewPriorityQueueFunc: a Go type
// parameter does not say how to order its items, so the zero
// PriorityQueue, unlike asyncio.PriorityQueue(), has no order, and its
// Put, PutNowait, Get and GetNowait return ErrPriorityQueueUnordered.
type PriorityQueue[T any] struct{ Queue[T] }

// NewPriorityQueue returns asyncio.PriorityQueue(maxsize) over an ordered
// type.
func NewPriorityQueue[T cmp.Ordered](maxsize int) *PriorityQueue[T] {
	return NewPriorityQueueFunc[T](maxsize, cmp.Compare[T])
}

// NewPriorityQueueFunc returns a PriorityQueue ordered by compare (negative
// when a comes first), for item types such as (priority, value) structs.
// Items that compare equal come out in no particular order, as from
// Python's heapq.
func NewPriorityQueueFunc[T any](maxsize int, compare func(a, b T) int) *PriorityQueue[T] {
	return &PriorityQueue[T]{Queue[T]{maxsize: maxsize, items: &heapStore[T]{cmp: compare}}}
}

// Put is Queue.Put, in priority order.
func (q *PriorityQueue[T]) Put(ctx context.Context, v T) error {
	if q.items == nil {
		return ErrPriorityQueueUnordered
	}
	return q.Queue.Put(ctx, v)
}

// PutNowait is Queue.PutNowait, in priority order.
func (q *PriorityQueue[T]) PutNowait(v T) error {
	if q.items == nil {
		return ErrPriorityQueueUnordered
	}
	return q.Queue.PutNowait(v)
}

// Get is Queue.Get: it returns the smallest item.
func (q *PriorityQueue[T]) Get(ctx context.Context) (T, error) {
	if q.items == nil {
		var zero T
		return zero, ErrPriorityQueueUnordered
	}
	return q.Queue.Get(ctx)
}

// GetNowait is Queue.GetNowait: it returns the smallest item.
func (q *PriorityQueue[T]) GetNowait() (T, error) {
	if q.items == nil {
		var zero T
		return zero, ErrPriorityQueueUnordered
	}
	return q.Queue.GetNowait()
}

// The FIFO queue, the common case, calls its ring directly rather than
// through the store interface.

func (q *Queue[T]) qlen() int {
	if q.items == nil {
		return q.fifo.n
	}
	return q.items.len()
}

func (q *Queue[T]) qput(v T) {
	if q.items == nil {
		q.fifo.push(v)
	} else {
		q.items.put(v)
	}
}

func (q *Queue[T]) qget() T {
	if q.items == nil {
		return q.fifo.pop()
	}
	return q.items.get()
}

// Qsize returns the number of items in the queue.
func (q *Queue[T]) Qsize() int { return q.qlen() }

// Maxsize returns the queue's bound; <= 0 means unbounded.
func (q *Queue[T]) Maxsize() int { return q.maxsize }

// Empty reports whether the queue holds no items.
func (q *Queue[T]) Empty() bool { return q.qlen() == 0 }

// Full reports whether the queue holds maxsize items; an unbounded queue is
// never full.
func (q *Queue[T]) Full() bool { return q.maxsize > 0 && q.qlen() >= q.maxsize }

// Put puts v into the queue, waiting while it is full. If the task is
// cancelled while waiting, nothing is put. After Shutdown it returns
// ErrQueueShutDown, also to putters waiting when it happens.
func (q *Queue[T]) Put(ctx context.Context, v T) error {
	for q.Full() {
		if q.shutdown {
			return ErrQueueShutDown
		}
		if woken, err := q.putters.block(ctx, &q.loopBound, "Queue", nil); err != nil {
			if woken && !q.Full() {
				// Woken by a get but cancelled: pass the turn on.
				q.putters.popWake(false)
			}
			return err
		}
	}
	return q.PutNowait(v)
}

// PutNowait puts v without waiting, or returns ErrQueueFull (or
// ErrQueueShutDown).
func (q *Queue[T]) PutNowait(v T) error {
	if q.shutdown {
		return ErrQueueShutDown
	}
	if q.Full() {
		return ErrQueueFull
	}
	q.qput(v)
	q.unfinished++
	q.finished.Clear()
	if q.getters.head != nil {
		q.getters.popWake(false)
	}
	return nil
}

// Get removes and returns an item, waiting while the queue is empty. If the
// task is cancelled while waiting it takes nothing, and an item that
// arrived for it is left for the next getter. After Shutdown, Get drains
// the remaining items and then returns ErrQueueShutDown.
func (q *Queue[T]) Get(ctx context.Context) (T, error) {
	for q.Empty() {
		if q.shutdown {
			var zero T
			return zero, ErrQueueShutDown
		}
		if woken, err := q.getters.block(ctx, &q.loopBound, "Queue", nil); err != nil {
			if woken && !q.Empty() {
				q.getters.popWake(false) // the item stays for the next getter
			}
			var zero T
			return zero, err
		}
	}
	return q.GetNowait()
}

// GetNowait returns an item if one is there, or ErrQueueEmpty (or
// ErrQueueShutDown once shut down and drained).
func (q *Queue[T]) GetNowait() (T, error) {
	if q.Empty() {
		var zero T
		if q.shutdown {
			return zero, ErrQueueShutDown
		}
		return zero, ErrQueueEmpty
	}
	v := q.qget()
	if q.putters.head != nil {
		q.putters.popWake(false)
	}
	return v, nil
}

// TaskDone is task_done: a consumer reports that an item it got is fully
// processed. Join returns when every item put has been reported. Calling it
// more times than items were put returns ErrTaskDoneTooMany.
func (q *Queue[T]) TaskDone() error {
	if q.unfinished <= 0 {
		return ErrTaskDoneTooMany
	}
	q.unfinished--
	if q.unfinished == 0 {
		q.finished.Set()
	}
	return nil
}

// Join waits until every item put has been marked done with TaskDone.
func (q *Queue[T]) Join(ctx context.Context) error {
	if q.unfinished > 0 {
		return q.finished.Wait(ctx)
	}
	return nil
}

// Shutdown is Python 3.13's shutdown(immediate): Put fails with
// ErrQueueShutDown from now on, and Get once the queue is empty; waiting
// getters and putters are woken to see it. With immediate the queue is
// emptied at once, each dropped item counting as done for Join.
func (q *Queue[T]) Shutdown(immediate bool) {
	q.shutdown = true
	if immediate {
		for !q.Empty() {
			q.qget()
			if q.unfinished > 0 {
				q.unfinished--
			}
		}
		if q.unfinished == 0 {
			q.finished.Set()
		}
	}
	q.getters.popWake(true)
	q.putters.popWake(true)
}

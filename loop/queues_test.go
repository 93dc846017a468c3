package loop_test

// Ports of CPython's Lib/test/test_asyncio/test_queues.py (and the
// invariants I74-I80 of the asyncio reference) to loop.Queue, LifoQueue
// and PriorityQueue. Every case names the CPython test it mirrors; traces
// are compared whole with cmp.Diff; time is the loop's virtual clock.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/loop"
)

// anyQueue is what Queue, LifoQueue and PriorityQueue have in common, so
// CPython's mixin tests (_QueueJoinTestMixin, _QueueShutdownTestMixin) run
// over the three.
type anyQueue[T any] interface {
	Put(ctx context.Context, v T) error
	Get(ctx context.Context) (T, error)
	PutNowait(v T) error
	GetNowait() (T, error)
	Qsize() int
	Empty() bool
	Full() bool
	Maxsize() int
	TaskDone() error
	Join(ctx context.Context) error
	Shutdown(immediate bool)
}

// queueKind names a constructor of one of the three queues.
type queueKind[T cmp.Ordered] struct {
	name string
	make func(maxsize int) anyQueue[T]
}

func queueKinds[T cmp.Ordered]() []queueKind[T] {
	return []queueKind[T]{
		{"Queue", func(n int) anyQueue[T] { return loop.NewQueue[T](n) }},
		{"LifoQueue", func(n int) anyQueue[T] { return loop.NewLifoQueue[T](n) }},
		{"PriorityQueue", func(n int) anyQueue[T] { return loop.NewPriorityQueue[T](n) }},
	}
}

// forEachKind runs body as a subtest for each kind of queue.
func forEachKind[T cmp.Ordered](t *testing.T, body func(t *testing.T, newQ func(maxsize int) anyQueue[T])) {
	for _, k := range queueKinds[T]() {
		t.Run(k.name, func(t *testing.T) { body(t, k.make) })
	}
}

// ------------------------------------------------------------ basics

// Mirrors test_queues.py QueueBasicTests.test_empty.
func TestQueueEmpty(t *testing.T) {
	var got []string
	runMain(t, func(ctx context.Context) error {
		q := loop.NewQueue[int](0)
		got = append(got, fmt.Sprint(q.Empty()))
		if err := q.Put(ctx, 1); err != nil {
			return err
		}
		got = append(got, fmt.Sprint(q.Empty(), q.Qsize()))
		v, err := q.Get(ctx)
		got = append(got, fmt.Sprint(v, err, q.Empty(), q.Qsize()))
		return nil
	})
	sameAs(t, "states", []string{"true", "false 1", "1 <nil> true 0"}, got)
}

// Mirrors test_queues.py QueueBasicTests.test_full.
func TestQueueFull(t *testing.T) {
	var got []bool
	runMain(t, func(ctx context.Context) error {
		got = append(got, loop.NewQueue[int](0).Full())
		q := loop.NewQueue[int](1)
		if err := q.Put(ctx, 1); err != nil {
			return err
		}
		got = append(got, q.Full())
		return nil
	})
	sameAs(t, "full", []bool{false, true}, got)
}

// Mirrors invariant I74 (Queue(0).full() and Queue(-1).full() are False)
// and QueueBasicTests.test_full: maxsize <= 0 is unbounded, for every kind
// and for the zero value.
func TestQueueUnboundedMaxsize(t *testing.T) {
	forEachKind(t, func(t *testing.T, newQ func(int) anyQueue[int]) {
		var got []string
		runMain(t, func(ctx context.Context) error {
			for _, maxsize := range []int{0, -1} {
				q := newQ(maxsize)
				for i := range 10_000 {
					if err := q.Put(ctx, i); err != nil {
						return err
					}
				}
				got = append(got, fmt.Sprint(q.Maxsize(), q.Qsize(), q.Full(), q.PutNowait(1)))
			}
			var zero loop.Queue[int]
			for i := range 100 {
				zero.PutNowait(i)
			}
			v, err := zero.GetNowait()
			got = append(got, fmt.Sprint("zero value ", zero.Maxsize(), zero.Full(), zero.Qsize(), v, err))
			return nil
		})
		sameAs(t, "states", []string{"0 10000 false <nil>", "-1 10000 false <nil>", "zero value 0 false 99 0 <nil>"}, got)
	})
}

// Mirrors test_queues.py QueueBasicTests.test_order and invariant I75:
// FIFO order.
func TestQueueOrder(t *testing.T) {
	var items []int
	runMain(t, func(ctx context.Context) error {
		q := loop.NewQueue[int](0)
		for _, i := range []int{1, 3, 2} {
			q.Put(ctx, i)
		}
		for range 3 {
			v, err := q.Get(ctx)
			if err != nil {
				return err
			}
			items = append(items, v)
		}
		return nil
	})
	sameAs(t, "items", []int{1, 3, 2}, items)
}

// Mirrors test_queues.py LifoQueueTests.test_order and invariant I75.
func TestLifoQueueOrder(t *testing.T) {
	var items []int
	runMain(t, func(ctx context.Context) error {
		q := loop.NewLifoQueue[int](0)
		for _, i := range []int{1, 3, 2} {
			q.Put(ctx, i)
		}
		for range 3 {
			v, err := q.Get(ctx)
			if err != nil {
				return err
			}
			items = append(items, v)
		}
		return nil
	})
	sameAs(t, "items", []int{2, 3, 1}, items)
}

// Mirrors test_queues.py PriorityQueueTests.test_order and invariant I75,
// then checks the heap against a sort over 1,000 seeded random items.
func TestPriorityQueueOrder(t *testing.T) {
	var items []int
	var drained, sorted []int
	runMain(t, func(ctx context.Context) error {
		q := loop.NewPriorityQueue[int](0)
		for _, i := range []int{1, 3, 2} {
			q.Put(ctx, i)
		}
		for range 3 {
			v, err := q.Get(ctx)
			if err != nil {
				return err
			}
			items = append(items, v)
		}
		rng := rand.New(rand.NewPCG(7, 5))
		for range 1000 {
			v := rng.IntN(500)
			sorted = append(sorted, v)
			q.PutNowait(v)
			if rng.IntN(3) == 0 { // interleave gets with puts
				g, _ := q.GetNowait()
				drained = append(drained, g)
				i := slices.Index(sorted, slices.Min(sorted))
				if sorted[i] != g {
					t.Errorf("got %d, min is %d", g, sorted[i])
				}
				sorted = slices.Delete(sorted, i, i+1)
			}
		}
		drained = drained[:0]
		for !q.Empty() {
			g, _ := q.GetNowait()
			drained = append(drained, g)
		}
		slices.Sort(sorted)
		return nil
	})
	sameAs(t, "items", []int{1, 2, 3}, items)
	sameAs(t, "drained", sorted, drained)
}

// Mirrors test_queues.py PriorityQueueTests.test_order with the
// (priority, value) tuples Python users put in a PriorityQueue:
// NewPriorityQueueFunc orders them by the comparison given.
func TestPriorityQueueFunc(t *testing.T) {
	type job struct {
		prio int
		name string
	}
	var got []string
	runMain(t, func(ctx context.Context) error {
		q := loop.NewPriorityQueueFunc(0, func(a, b job) int {
			return cmp.Or(cmp.Compare(a.prio, b.prio), strings.Compare(a.name, b.name))
		})
		for _, j := range []job{{3, "c"}, {1, "b"}, {2, "x"}, {1, "a"}} {
			q.PutNowait(j)
		}
		for !q.Empty() {
			j, _ := q.Get(ctx)
			got = append(got, fmt.Sprint(j.prio, " ", j.name))
		}
		return nil
	})
	sameAs(t, "order", []string{"1 a", "1 b", "2 x", "3 c"}, got)
}

// Mirrors test_queues.py QueueBasicTests.test_maxsize: the putter blocks
// after filling a Queue(2) and resumes one item per get.
func TestQueueMaxsize(t *testing.T) {
	var trace []string
	runMain(t, func(ctx context.Context) error {
		q := loop.NewQueue[int](2)
		var put []int
		tk := loop.Go(ctx, func(ctx context.Context) error {
			for i := range 3 {
				if err := q.Put(ctx, i); err != nil {
					return err
				}
				put = append(put, i)
			}
			return nil
		})
		sleep0(ctx)
		sleep0(ctx)
		trace = append(trace, fmt.Sprint("maxsize ", q.Maxsize(), " put ", put))
		v, _ := q.Get(ctx)
		trace = append(trace, fmt.Sprint("got ", v))
		sleep0(ctx)
		trace = append(trace, fmt.Sprint("put ", put))
		v1, _ := q.Get(ctx)
		v2, _ := q.Get(ctx)
		trace = append(trace, fmt.Sprint("got ", v1, v2, " done ", tk.Done(), " err ", tk.Err()))
		return nil
	})
	sameAs(t, "trace", []string{"maxsize 2 put [0 1]", "got 0", "put [0 1 2]", "got 1 2 done true err <nil>"}, trace)
}

// ------------------------------------------------------------ get

// Mirrors test_queues.py QueueGetTests.test_blocking_get and
// test_blocking_get_wait: Get on an empty queue waits until a CallLater
// (10ms on the virtual clock) puts an item.
func TestQueueBlockingGetWait(t *testing.T) {
	var trace []string
	runMain(t, func(ctx context.Context) error {
		l, _ := loop.RunningLoop(ctx)
		q := loop.NewQueue[int](0)
		q.PutNowait(1)
		v, err := q.Get(ctx)
		trace = append(trace, fmt.Sprint("blocking_get ", v, err))
		var started loop.Event
		finished := false
		tk := loop.Spawn(ctx, func(ctx context.Context) (int, error) {
			started.Set()
			v, err := q.Get(ctx)
			finished = true
			return v, err
		})
		started.Wait(ctx)
		trace = append(trace, fmt.Sprint("finished ", finished))
		start := l.Time()
		l.CallLater(10*time.Millisecond, func() { q.PutNowait(1) })
		v, err = tk.Await(ctx)
		trace = append(trace, fmt.Sprint("finished ", finished, " got ", v, err, " after ", l.Time().Sub(start)))
		return nil
	})
	sameAs(t, "trace", []string{"blocking_get 1 <nil>", "finished false", "finished true got 1 <nil> after 10ms"}, trace)
}

// Mirrors test_queues.py QueueGetTests.test_nonblocking_get,
// test_nonblocking_get_exception, QueuePutTests.test_nonblocking_put and
// test_nonblocking_put_exception: GetNowait and PutNowait never wait; an
// empty queue gives ErrQueueEmpty, a full one ErrQueueFull.
func TestQueueNowaitErrors(t *testing.T) {
	q := loop.NewQueue[int](1)
	_, errEmpty := q.GetNowait()
	err1 := q.PutNowait(1)
	errFull := q.PutNowait(2)
	v, err2 := q.GetNowait()
	sameAs(t, "results", []string{"true", "<nil>", "true", "1 <nil>"}, []string{
		fmt.Sprint(errors.Is(errEmpty, loop.ErrQueueEmpty)),
		fmt.Sprint(err1),
		fmt.Sprint(errors.Is(errFull, loop.ErrQueueFull)),
		fmt.Sprint(v, " ", err2),
	})
}

// Mirrors test_queues.py QueueGetTests.test_get_with_putters and invariant
// I74 (put() on a full queue blocks until a get frees a slot): a get from a
// full queue wakes the blocked putter.
func TestQueueGetWithPutters(t *testing.T) {
	var trace []string
	runMain(t, func(ctx context.Context) error {
		q := loop.NewQueue[int](1)
		q.Put(ctx, 1)
		putter := loop.Go(ctx, func(ctx context.Context) error { return q.Put(ctx, 2) })
		sleep0(ctx)
		trace = append(trace, fmt.Sprint("putter done ", putter.Done()))
		v, err := q.Get(ctx)
		trace = append(trace, fmt.Sprint("got ", v, err))
		sleep0(ctx)
		trace = append(trace, fmt.Sprint("putter done ", putter.Done(), " err ", putter.Err(), " qsize ", q.Qsize()))
		return nil
	})
	sameAs(t, "trace", []string{"putter done false", "got 1 <nil>", "putter done true err <nil> qsize 1"}, trace)
}

// Mirrors test_queues.py QueueGetTests.test_get_cancelled_race: a getter
// cancelled before any item arrives does not take the item meant for the
// next getter.
func TestQueueGetCancelledRace(t *testing.T) {
	var trace []string
	runMain(t, func(ctx context.Context) error {
		q := loop.NewQueue[string](0)
		t1 := loop.Spawn(ctx, q.Get)
		t2 := loop.Spawn(ctx, q.Get)
		sleep0(ctx)
		t1.Cancel("")
		sleep0(ctx)
		trace = append(trace, fmt.Sprint("t1 done ", t1.Done()))
		q.Put(ctx, "a")
		sleep0(ctx)
		v, err := t2.Await(ctx)
		trace = append(trace, fmt.Sprint("t2 ", v, " ", err, " qsize ", q.Qsize()))
		return nil
	})
	sameAs(t, "trace", []string{"t1 done true", "t2 a <nil> qsize 0"}, trace)
}

// Mirrors test_queues.py QueueGetTests.test_get_with_waiting_putters.
func TestQueueGetWithWaitingPutters(t *testing.T) {
	var got []string
	runMain(t, func(ctx context.Context) error {
		q := loop.NewQueue[string](1)
		loop.Go(ctx, func(ctx context.Context) error { return q.Put(ctx, "a") })
		loop.Go(ctx, func(ctx context.Context) error { return q.Put(ctx, "b") })
		for range 2 {
			v, err := q.Get(ctx)
			if err != nil {
				return err
			}
			got = append(got, v)
		}
		return nil
	})
	sameAs(t, "got", []string{"a", "b"}, got)
}

// Mirrors test_queues.py QueueGetTests.test_why_are_getters_waiting: a
// producer and a consumer through a Queue(1) finish (no lost wake-up).
func TestQueueWhyAreGettersWaiting(t *testing.T) {
	var got []int
	runMain(t, func(ctx context.Context) error {
		q := loop.NewQueue[int](1)
		return loop.WithTaskGroup(ctx, func(ctx context.Context, tg *loop.TaskGroup) error {
			tg.Go(func(ctx context.Context) error {
				for i := range 5 {
					if err := q.Put(ctx, i); err != nil {
						return err
					}
				}
				return nil
			})
			tg.Go(func(ctx context.Context) error {
				for range 5 {
					v, err := q.Get(ctx)
					if err != nil {
						return err
					}
					got = append(got, v)
				}
				return nil
			})
			return nil
		})
	})
	sameAs(t, "got", []int{0, 1, 2, 3, 4}, got)
}

// Mirrors test_queues.py
// QueueGetTests.test_cancelled_getters_not_being_held_in_self_getters: a
// Get cut off by WaitFor's timeout (100ms, virtual) leaves, and the next
// getter receives the next item.
func TestQueueCancelledGettersNotHeld(t *testing.T) {
	var trace []string
	runMain(t, func(ctx context.Context) error {
		q := loop.NewQueue[int](5)
		_, err := loop.WaitFor(ctx, loop.Spawn(ctx, q.Get), 100*time.Millisecond)
		trace = append(trace, fmt.Sprint("timeout ", errors.Is(err, loop.ErrTimeout)))
		g := loop.Spawn(ctx, q.Get)
		sleep0(ctx)
		q.PutNowait(7)
		sleep0(ctx)
		v, err := g.Result()
		trace = append(trace, fmt.Sprint("next getter ", v, err, " qsize ", q.Qsize()))
		return nil
	})
	sameAs(t, "trace", []string{"timeout true", "next getter 7 <nil> qsize 0"}, trace)
}

// Mirrors test_queues.py QueuePutTests.test_get_cancel_drop_one_pending_reader
// and invariant I78: a reader woken by a put and then cancelled does not
// swallow the item: the retry gets 1, not 2.
func TestQueueGetCancelDropOnePendingReader(t *testing.T) {
	var trace []string
	runMain(t, func(ctx context.Context) error {
		q := loop.NewQueue[int](0)
		reader := loop.Spawn(ctx, q.Get)
		sleep0(ctx)
		q.PutNowait(1)
		q.PutNowait(2)
		reader.Cancel("")
		v, err := reader.Await(ctx)
		if isCancelled(err) {
			trace = append(trace, fmt.Sprint("cancelled, qsize ", q.Qsize()))
			v, err = loop.Spawn(ctx, q.Get).Await(ctx)
		}
		trace = append(trace, fmt.Sprint("got ", v, " ", err))
		return nil
	})
	sameAs(t, "trace", []string{"cancelled, qsize 2", "got 1 <nil>"}, trace)
}

// Mirrors test_queues.py QueuePutTests.test_get_cancel_drop_many_pending_readers:
// of three readers, the first two woken by two puts, the first is
// cancelled; its wake-up passes to the third, and the two items go to the
// second and third.
func TestQueueGetCancelDropManyPendingReaders(t *testing.T) {
	var got []int
	var r1err error
	runMain(t, func(ctx context.Context) error {
		q := loop.NewQueue[int](0)
		var r2, r3 *loop.Task[int]
		err := loop.WithTaskGroup(ctx, func(ctx context.Context, tg *loop.TaskGroup) error {
			r1, _ := loop.SpawnIn(tg, q.Get)
			r2, _ = loop.SpawnIn(tg, q.Get)
			r3, _ = loop.SpawnIn(tg, q.Get)
			sleep0(ctx)
			q.PutNowait(1)
			q.PutNowait(2)
			r1.Cancel("")
			_, r1err = r1.Await(ctx)
			_, err := r3.Await(ctx)
			return err
		})
		if err != nil {
			return err
		}
		v2, _ := r2.Result()
		v3, _ := r3.Result()
		got = []int{v2, v3}
		slices.Sort(got)
		return nil
	})
	if !isCancelled(r1err) {
		t.Errorf("reader1: %v", r1err)
	}
	sameAs(t, "items", []int{1, 2}, got)
}

// ------------------------------------------------------------ put

// Mirrors test_queues.py QueuePutTests.test_blocking_put,
// test_blocking_put_wait and test_put_cancelled (a put that completes):
// Put into an unbounded queue never waits; Put into a full Queue(1) waits
// until a CallLater get (10ms, virtual) frees a slot.
func TestQueueBlockingPutWait(t *testing.T) {
	var trace []string
	runMain(t, func(ctx context.Context) error {
		l, _ := loop.RunningLoop(ctx)
		u := loop.NewQueue[int](0)
		u.Put(ctx, 1)
		v, err := u.Get(ctx)
		trace = append(trace, fmt.Sprint("unbounded ", v, err))

		q := loop.NewQueue[int](1)
		var started loop.Event
		finished := false
		l.CallLater(10*time.Millisecond, func() { q.GetNowait() })
		start := l.Time()
		tk := loop.Go(ctx, func(ctx context.Context) error {
			started.Set()
			if err := q.Put(ctx, 1); err != nil {
				return err
			}
			if err := q.Put(ctx, 2); err != nil {
				return err
			}
			finished = true
			return nil
		})
		started.Wait(ctx)
		trace = append(trace, fmt.Sprint("finished ", finished))
		_, err = tk.Await(ctx)
		trace = append(trace, fmt.Sprint("finished ", finished, " ", err, " after ", l.Time().Sub(start)))
		return nil
	})
	sameAs(t, "trace", []string{"unbounded 1 <nil>", "finished false", "finished true <nil> after 10ms"}, trace)
}

// Mirrors test_queues.py QueuePutTests.test_put_cancel_drop and invariant
// I78: a putter woken by a get and then cancelled inserts nothing; the
// retry inserts 2 once.
func TestQueuePutCancelDrop(t *testing.T) {
	var trace []string
	runMain(t, func(ctx context.Context) error {
		q := loop.NewQueue[int](1)
		q.PutNowait(1)
		writer := loop.Go(ctx, func(ctx context.Context) error { return q.Put(ctx, 2) })
		sleep0(ctx)
		v1, _ := q.GetNowait()
		trace = append(trace, fmt.Sprint("value1 ", v1))
		writer.Cancel("")
		if _, err := writer.Await(ctx); isCancelled(err) {
			trace = append(trace, fmt.Sprint("cancelled, qsize ", q.Qsize()))
			writer = loop.Go(ctx, func(ctx context.Context) error { return q.Put(ctx, 2) })
			if _, err := writer.Await(ctx); err != nil {
				return err
			}
		}
		v2, _ := q.GetNowait()
		trace = append(trace, fmt.Sprint("value2 ", v2, " qsize ", q.Qsize()))
		return nil
	})
	sameAs(t, "trace", []string{"value1 1", "cancelled, qsize 0", "value2 2 qsize 0"}, trace)
}

// Mirrors test_queues.py QueuePutTests.test_put_cancelled_race: of three
// putters into a Queue(1), the third is cancelled while waiting; the
// queue sees 'a' then 'b' and never 'X'.
func TestQueuePutCancelledRace(t *testing.T) {
	var trace []string
	runMain(t, func(ctx context.Context) error {
		q := loop.NewQueue[string](1)
		put := func(v string) *loop.Task[struct{}] {
			return loop.Go(ctx, func(ctx context.Context) error { return q.Put(ctx, v) })
		}
		putA, putB, putC := put("a"), put("b"), put("X")
		sleep0(ctx)
		trace = append(trace, fmt.Sprint("a done ", putA.Done(), ", b done ", putB.Done()))
		putC.Cancel("")
		sleep0(ctx)
		trace = append(trace, fmt.Sprint("c done ", putC.Done(), " cancelled ", putC.Cancelled()))
		v, _ := q.GetNowait()
		trace = append(trace, v)
		sleep0(ctx)
		v, _ = q.GetNowait()
		trace = append(trace, v)
		_, err := putB.Await(ctx)
		trace = append(trace, fmt.Sprint("b ", err, " qsize ", q.Qsize()))
		return nil
	})
	sameAs(t, "trace", []string{
		"a done true, b done false", "c done true cancelled true", "a", "b", "b <nil> qsize 0",
	}, trace)
}

// Mirrors test_queues.py QueuePutTests.test_put_with_waiting_getters.
func TestQueuePutWithWaitingGetters(t *testing.T) {
	var got []string
	runMain(t, func(ctx context.Context) error {
		q := loop.NewQueue[string](0)
		g := loop.Spawn(ctx, q.Get)
		sleep0(ctx)
		q.Put(ctx, "a")
		v, err := g.Await(ctx)
		got = append(got, fmt.Sprint(v, err))
		return nil
	})
	sameAs(t, "got", []string{"a<nil>"}, got)
}

// Mirrors test_queues.py QueuePutTests.test_why_are_putters_waiting: a
// getter that empties the queue with GetNowait wakes the waiting putters,
// one per item taken.
func TestQueueWhyArePuttersWaiting(t *testing.T) {
	var got []int
	runMain(t, func(ctx context.Context) error {
		q := loop.NewQueue[int](2)
		err := loop.WithTaskGroup(ctx, func(ctx context.Context, tg *loop.TaskGroup) error {
			tg.Go(func(ctx context.Context) error {
				sleep0(ctx)
				for range q.Qsize() {
					v, err := q.GetNowait()
					if err != nil {
						return err
					}
					got = append(got, v)
				}
				return nil
			})
			for i := range 4 {
				tg.Go(func(ctx context.Context) error { return q.Put(ctx, i) })
			}
			return nil
		})
		if err != nil {
			return err
		}
		for !q.Empty() {
			v, _ := q.GetNowait()
			got = append(got, v)
		}
		return nil
	})
	sameAs(t, "got", []int{0, 1, 2, 3}, got)
}

// Mirrors test_queues.py QueuePutTests.test_cancelled_puts_not_being_held_in_self_putters:
// a putter cancelled while waiting leaves; the queue keeps its one item
// and takes a new one once that is got.
func TestQueueCancelledPutsNotHeld(t *testing.T) {
	var trace []string
	runMain(t, func(ctx context.Context) error {
		q := loop.NewQueue[int](1)
		q.PutNowait(1)
		putTask := loop.Go(ctx, func(ctx context.Context) error { return q.Put(ctx, 2) })
		sleep0(ctx)
		putTask.Cancel("")
		_, err := putTask.Await(ctx)
		trace = append(trace, fmt.Sprint("cancelled ", isCancelled(err), " qsize ", q.Qsize()))
		v, _ := q.GetNowait()
		trace = append(trace, fmt.Sprint("got ", v, " put ", q.PutNowait(3), " qsize ", q.Qsize()))
		return nil
	})
	sameAs(t, "trace", []string{"cancelled true qsize 1", "got 1 put <nil> qsize 1"}, trace)
}

// Mirrors test_queues.py QueuePutTests.test_cancelled_put_silence_value_error_exception:
// a putter already taken off the putters by a GetNowait and then cancelled
// returns the plain cancellation, and puts nothing.
func TestQueueCancelledPutAfterWakeup(t *testing.T) {
	var trace []string
	runMain(t, func(ctx context.Context) error {
		q := loop.NewQueue[int](1)
		q.PutNowait(1)
		putTask := loop.Go(ctx, func(ctx context.Context) error { return q.Put(ctx, 1) })
		sleep0(ctx)
		q.GetNowait()
		putTask.Cancel("")
		_, err := putTask.Await(ctx)
		trace = append(trace, fmt.Sprint("cancelled ", isCancelled(err), " ", putTask.Cancelled(), " qsize ", q.Qsize()))
		return nil
	})
	sameAs(t, "trace", []string{"cancelled true true qsize 0"}, trace)
}

// Mirrors test_queues.py QueuePutTests.test_put_cancel_drop, for the
// wake-up: a putter woken by a get and cancelled before it runs passes
// its turn to the next putter, so the free slot is not lost.
func TestQueueCancelledPutterPassesTurn(t *testing.T) {
	var trace []string
	runMain(t, func(ctx context.Context) error {
		q := loop.NewQueue[string](1)
		q.PutNowait("x")
		p1 := loop.Go(ctx, func(ctx context.Context) error { return q.Put(ctx, "p1") })
		p2 := loop.Go(ctx, func(ctx context.Context) error { return q.Put(ctx, "p2") })
		sleep0(ctx)
		q.GetNowait() // wakes p1
		p1.Cancel("")
		sleep0(ctx)
		sleep0(ctx)
		v, _ := q.GetNowait()
		trace = append(trace, fmt.Sprint("p1 cancelled ", p1.Cancelled(), ", p2 done ", p2.Done(), ", got ", v))
		return nil
	})
	sameAs(t, "trace", []string{"p1 cancelled true, p2 done true, got p2"}, trace)
}

// ------------------------------------------------------ fairness, hand-off

// Mirrors invariant I76 (asyncio's QueueGetTests fairness): blocked
// getters are served in FIFO order: [(0,a) (1,b) (2,c)].
func TestQueueGettersFIFO(t *testing.T) {
	var got []string
	runMain(t, func(ctx context.Context) error {
		q := loop.NewQueue[string](0)
		var ts []*loop.Task[struct{}]
		for i := range 3 {
			ts = append(ts, loop.Go(ctx, func(ctx context.Context) error {
				v, err := q.Get(ctx)
				if err != nil {
					return err
				}
				got = append(got, fmt.Sprintf("(%d,%s)", i, v))
				return nil
			}))
		}
		sleep0(ctx)
		for _, v := range []string{"a", "b", "c"} {
			q.PutNowait(v)
		}
		noErrs(t, awaitAll(ctx, ts...))
		return nil
	})
	sameAs(t, "got", []string{"(0,a)", "(1,b)", "(2,c)"}, got)
}

// Mirrors invariant I76 for putters (test_queues.py
// test_get_with_waiting_putters): putters blocked on a full queue are
// admitted in FIFO order.
func TestQueuePuttersFIFO(t *testing.T) {
	var got []int
	runMain(t, func(ctx context.Context) error {
		q := loop.NewQueue[int](1)
		q.PutNowait(-1)
		var ts []*loop.Task[struct{}]
		for i := range 4 {
			ts = append(ts, loop.Go(ctx, func(ctx context.Context) error { return q.Put(ctx, i) }))
		}
		sleep0(ctx)
		for range 5 {
			v, err := q.Get(ctx)
			if err != nil {
				return err
			}
			got = append(got, v)
		}
		noErrs(t, awaitAll(ctx, ts...))
		return nil
	})
	sameAs(t, "got", []int{-1, 0, 1, 2, 3}, got)
}

// Mirrors invariant I77 (no hand-off; CPython's Queue.get re-checks
// empty() in a loop): an item is not handed to the woken getter; a
// GetNowait in the same iteration takes it and the getter waits again.
func TestQueueNoHandoff(t *testing.T) {
	var trace []string
	runMain(t, func(ctx context.Context) error {
		q := loop.NewQueue[int](0)
		getter := loop.Spawn(ctx, q.Get)
		sleep0(ctx)
		q.PutNowait(1) // wakes the getter
		v, err := q.GetNowait()
		trace = append(trace, fmt.Sprint("main got ", v, err))
		sleep0(ctx)
		trace = append(trace, fmt.Sprint("getter done ", getter.Done()))
		q.PutNowait(2)
		v, err = getter.Await(ctx)
		trace = append(trace, fmt.Sprint("getter got ", v, err))
		return nil
	})
	sameAs(t, "trace", []string{"main got 1 <nil>", "getter done false", "getter got 2 <nil>"}, trace)
}

// Mirrors invariant I78 over a seeded random schedule (test_queues.py's
// cancel-drop cases, generalised): producers and consumers of a Queue(4)
// are cancelled at random and replaced; every item a Put reported as put
// is got exactly once, and no cancelled Put inserts its item.
func TestQueueRandomCancelNoLoss(t *testing.T) {
	rng := rand.New(rand.NewPCG(78, 1))
	for round := range 20 {
		var sent, received []int
		runMain(t, func(ctx context.Context) error {
			q := loop.NewQueue[int](4)
			next := 0
			var retry []int
			producer := func(ctx context.Context) error {
				for {
					var v int
					if len(retry) > 0 {
						v, retry = retry[0], retry[1:]
					} else if next < 200 {
						v = next
						next++
					} else {
						return nil
					}
					if err := q.Put(ctx, v); err != nil {
						retry = append(retry, v)
						return err
					}
					sent = append(sent, v)
				}
			}
			consumer := func(ctx context.Context) error {
				for {
					v, err := q.Get(ctx)
					if err != nil {
						return err
					}
					received = append(received, v)
					if rng.IntN(2) == 0 {
						if err := loop.Sleep(ctx, 0); err != nil {
							return err
						}
					}
				}
			}
			var producers, consumers []*loop.Task[struct{}]
			for range 3 {
				producers = append(producers, loop.Go(ctx, producer))
				consumers = append(consumers, loop.Go(ctx, consumer))
			}
			for step := 0; step < 400; step++ {
				switch rng.IntN(6) {
				case 0:
					i := rng.IntN(len(consumers))
					consumers[i].Cancel("chaos")
					consumers[i] = loop.Go(ctx, consumer)
				case 1:
					i := rng.IntN(len(producers))
					producers[i].Cancel("chaos")
					producers[i] = loop.Go(ctx, producer)
				}
				sleep0(ctx)
			}
			for _, p := range producers {
				if _, err := p.Await(ctx); err != nil && !isCancelled(err) {
					t.Errorf("producer: %v", err)
				}
			}
			for len(retry) > 0 || next < 200 {
				if _, err := loop.Go(ctx, producer).Await(ctx); err != nil {
					return err
				}
			}
			q.Shutdown(false)
			for _, c := range consumers {
				if _, err := c.Await(ctx); err != nil && !errors.Is(err, loop.ErrQueueShutDown) && !isCancelled(err) {
					t.Errorf("consumer: %v", err)
				}
			}
			for {
				v, err := q.GetNowait()
				if err != nil {
					break
				}
				received = append(received, v)
			}
			return nil
		})
		slices.Sort(sent)
		slices.Sort(received)
		want := make([]int, 200)
		for i := range want {
			want[i] = i
		}
		sameAs(t, fmt.Sprintf("round %d sent", round), want, sent)
		sameAs(t, fmt.Sprintf("round %d received", round), want, received)
	}
}

// ------------------------------------------------------ join, task_done

// Mirrors test_queues.py _QueueJoinTestMixin.test_task_done_underflow and
// invariant I79: TaskDone with nothing unfinished is ErrTaskDoneTooMany
// ("task_done() called too many times"), also once every item is done.
func TestQueueTaskDoneUnderflow(t *testing.T) {
	forEachKind(t, func(t *testing.T, newQ func(int) anyQueue[int]) {
		q := newQ(0)
		e1 := q.TaskDone()
		q.PutNowait(1)
		q.GetNowait()
		e2 := q.TaskDone()
		e3 := q.TaskDone()
		sameAs(t, "errors", []string{"true", "<nil>", "true"}, []string{
			fmt.Sprint(errors.Is(e1, loop.ErrTaskDoneTooMany)), fmt.Sprint(e2), fmt.Sprint(errors.Is(e3, loop.ErrTaskDoneTooMany)),
		})
	})
}

// Mirrors test_queues.py _QueueJoinTestMixin.test_task_done: two workers
// process 100 items, calling TaskDone after each; Join returns once all
// are done, with the sum complete.
func TestQueueTaskDone(t *testing.T) {
	forEachKind(t, func(t *testing.T, newQ func(int) anyQueue[int]) {
		var got []int
		runMain(t, func(ctx context.Context) error {
			q := newQ(0)
			for i := range 100 {
				q.PutNowait(i)
			}
			accumulator := 0
			running := true
			return loop.WithTaskGroup(ctx, func(ctx context.Context, tg *loop.TaskGroup) error {
				for range 2 {
					tg.Go(func(ctx context.Context) error {
						for running {
							item, err := q.Get(ctx)
							if err != nil {
								return err
							}
							accumulator += item
							if err := q.TaskDone(); err != nil {
								return err
							}
						}
						return nil
					})
				}
				if err := q.Join(ctx); err != nil {
					return err
				}
				got = append(got, accumulator)
				running = false
				for range 2 {
					q.PutNowait(0)
				}
				return nil
			})
		})
		sameAs(t, "sum", []int{4950}, got)
	})
}

// Mirrors test_queues.py _QueueJoinTestMixin.test_join_empty_queue: Join
// on a queue with nothing unfinished returns at once, twice, without
// yielding.
func TestQueueJoinEmptyQueue(t *testing.T) {
	forEachKind(t, func(t *testing.T, newQ func(int) anyQueue[int]) {
		var trace []string
		runMain(t, func(ctx context.Context) error {
			q := newQ(0)
			other := loop.Go(ctx, func(ctx context.Context) error {
				trace = append(trace, "other")
				return nil
			})
			trace = append(trace, fmt.Sprint(q.Join(ctx)), fmt.Sprint(q.Join(ctx)))
			_, err := other.Await(ctx)
			return err
		})
		sameAs(t, "trace", []string{"<nil>", "<nil>", "other"}, trace)
	})
}

// Mirrors invariant I79 (join() returns once the unfinished count is 0),
// as in test_queues.py _QueueJoinTestMixin.test_task_done: Join waits for
// the last TaskDone, not for the queue to be empty.
func TestQueueJoinWaitsForTaskDone(t *testing.T) {
	var trace []string
	runMain(t, func(ctx context.Context) error {
		q := loop.NewQueue[int](0)
		q.PutNowait(1)
		q.PutNowait(2)
		join := loop.Go(ctx, func(ctx context.Context) error {
			err := q.Join(ctx)
			trace = append(trace, "joined")
			return err
		})
		step := func(label string) {
			sleep0(ctx)
			trace = append(trace, fmt.Sprintf("%s: join done %v", label, join.Done()))
		}
		q.GetNowait()
		q.GetNowait()
		step("empty")
		q.TaskDone()
		step("one done")
		q.TaskDone()
		step("two done")
		return nil
	})
	sameAs(t, "trace", []string{"empty: join done false", "one done: join done false", "joined", "two done: join done true"}, trace)
}

// ------------------------------------------------------------ shutdown

// isShutDown reports whether err is ErrQueueShutDown.
func isShutDown(err error) bool { return errors.Is(err, loop.ErrQueueShutDown) }

// shutdownErrors tries the four operations on a shut-down queue.
func shutdownErrors(ctx context.Context, q anyQueue[string]) string {
	_, getErr := q.Get(ctx)
	_, getNowaitErr := q.GetNowait()
	return fmt.Sprint(isShutDown(q.Put(ctx, "data")), isShutDown(q.PutNowait("data")), isShutDown(getErr), isShutDown(getNowaitErr))
}

// Mirrors test_queues.py _QueueShutdownTestMixin.test_shutdown_empty and
// invariant I80: a blocked getter wakes with ErrQueueShutDown; Join
// returns; Put, PutNowait, Get and GetNowait all fail.
func TestQueueShutdownEmpty(t *testing.T) {
	forEachKind(t, func(t *testing.T, newQ func(int) anyQueue[string]) {
		var trace []string
		runMain(t, func(ctx context.Context) error {
			q := newQ(0)
			getTask := loop.Spawn(ctx, q.Get)
			sleep0(ctx)
			q.Shutdown(false)
			trace = append(trace, fmt.Sprint("qsize ", q.Qsize(), " join ", q.Join(ctx)))
			sleep0(ctx)
			_, err := getTask.Result()
			trace = append(trace, fmt.Sprint("get done ", getTask.Done(), " shut down ", isShutDown(err)))
			trace = append(trace, shutdownErrors(ctx, q))
			return nil
		})
		sameAs(t, "trace", []string{"qsize 0 join <nil>", "get done true shut down true", "true true true true"}, trace)
	})
}

// Mirrors test_queues.py _QueueShutdownTestMixin.test_shutdown_nonempty:
// the blocked putter fails, the queued item can still be got, Join waits
// for its TaskDone, then TaskDone is one too many.
func TestQueueShutdownNonempty(t *testing.T) {
	forEachKind(t, func(t *testing.T, newQ func(int) anyQueue[string]) {
		var trace []string
		runMain(t, func(ctx context.Context) error {
			q := newQ(1)
			q.PutNowait("data")
			joinTask := loop.Go(ctx, q.Join)
			putTask := loop.Go(ctx, func(ctx context.Context) error { return q.Put(ctx, "data2") })
			sleep0(ctx)
			trace = append(trace, fmt.Sprint("put done ", putTask.Done()))
			q.Shutdown(false)
			trace = append(trace, fmt.Sprint("qsize ", q.Qsize()))
			sleep0(ctx)
			trace = append(trace, fmt.Sprint("put done ", putTask.Done(), " shut down ", isShutDown(putTask.Err())))
			v, err := q.Get(ctx)
			trace = append(trace, fmt.Sprint("get ", v, " ", err))
			sleep0(ctx)
			trace = append(trace, fmt.Sprint("join done ", joinTask.Done()))
			trace = append(trace, shutdownErrors(ctx, q))
			trace = append(trace, fmt.Sprint("task_done ", q.TaskDone()))
			sleep0(ctx)
			trace = append(trace, fmt.Sprint("join done ", joinTask.Done(), " ", joinTask.Err()))
			trace = append(trace, fmt.Sprint("too many ", errors.Is(q.TaskDone(), loop.ErrTaskDoneTooMany)))
			return nil
		})
		sameAs(t, "trace", []string{
			"put done false", "qsize 1", "put done true shut down true", "get data <nil>",
			"join done false", "true true true true", "task_done <nil>", "join done true <nil>", "too many true",
		}, trace)
	})
}

// Mirrors test_queues.py _QueueShutdownTestMixin.test_shutdown_immediate:
// the queue is emptied, each dropped item counting as done, so Join
// returns; every operation fails; TaskDone is one too many.
func TestQueueShutdownImmediate(t *testing.T) {
	forEachKind(t, func(t *testing.T, newQ func(int) anyQueue[string]) {
		var trace []string
		runMain(t, func(ctx context.Context) error {
			q := newQ(0)
			q.PutNowait("data")
			joinTask := loop.Go(ctx, q.Join)
			q.Shutdown(true)
			trace = append(trace, fmt.Sprint("qsize ", q.Qsize()))
			sleep0(ctx)
			trace = append(trace, fmt.Sprint("join done ", joinTask.Done(), " ", joinTask.Err()))
			trace = append(trace, shutdownErrors(ctx, q))
			trace = append(trace, fmt.Sprint("too many ", errors.Is(q.TaskDone(), loop.ErrTaskDoneTooMany)))
			return nil
		})
		sameAs(t, "trace", []string{"qsize 0", "join done true <nil>", "true true true true", "too many true"}, trace)
	})
}

// Mirrors test_queues.py
// _QueueShutdownTestMixin.test_shutdown_immediate_with_unfinished: of two
// items one was got; the immediate shutdown drops the other (2 -> 1
// unfinished); Join waits for the got item's TaskDone.
func TestQueueShutdownImmediateWithUnfinished(t *testing.T) {
	forEachKind(t, func(t *testing.T, newQ func(int) anyQueue[string]) {
		var trace []string
		runMain(t, func(ctx context.Context) error {
			q := newQ(0)
			q.PutNowait("data")
			q.PutNowait("data")
			joinTask := loop.Go(ctx, q.Join)
			v, err := q.Get(ctx)
			trace = append(trace, fmt.Sprint("get ", v, " ", err))
			q.Shutdown(true)
			trace = append(trace, fmt.Sprint("qsize ", q.Qsize()))
			sleep0(ctx)
			trace = append(trace, fmt.Sprint("join done ", joinTask.Done()))
			trace = append(trace, shutdownErrors(ctx, q))
			trace = append(trace, fmt.Sprint("task_done ", q.TaskDone()))
			trace = append(trace, fmt.Sprint("too many ", errors.Is(q.TaskDone(), loop.ErrTaskDoneTooMany)))
			sleep0(ctx)
			trace = append(trace, fmt.Sprint("join done ", joinTask.Done(), " ", joinTask.Err()))
			return nil
		})
		sameAs(t, "trace", []string{
			"get data <nil>", "qsize 0", "join done false", "true true true true",
			"task_done <nil>", "too many true", "join done true <nil>",
		}, trace)
	})
}

// Mirrors invariant I80 (blocked putters and getters wake and raise) over
// test_queues.py _QueueShutdownTestMixin: Shutdown wakes every blocked
// getter of an empty queue and every blocked putter of a full one; after a
// non-immediate shutdown the queued items are still drained in order.
func TestQueueShutdownWakesAllWaiters(t *testing.T) {
	var trace []string
	runMain(t, func(ctx context.Context) error {
		empty := loop.NewQueue[int](0)
		var getters []*loop.Task[int]
		for range 3 {
			getters = append(getters, loop.Spawn(ctx, empty.Get))
		}
		full := loop.NewQueue[int](2)
		full.PutNowait(1)
		full.PutNowait(2)
		var putters []*loop.Task[struct{}]
		for i := range 3 {
			putters = append(putters, loop.Go(ctx, func(ctx context.Context) error { return full.Put(ctx, 10+i) }))
		}
		sleep0(ctx)
		empty.Shutdown(false)
		full.Shutdown(false)
		var res []string
		for _, g := range getters {
			_, err := g.Await(ctx)
			res = append(res, fmt.Sprint(isShutDown(err)))
		}
		for _, p := range putters {
			_, err := p.Await(ctx)
			res = append(res, fmt.Sprint(isShutDown(err)))
		}
		trace = append(trace, strings.Join(res, " "))
		var drained []int
		for {
			v, err := full.Get(ctx)
			if err != nil {
				trace = append(trace, fmt.Sprint(drained, " then shut down ", isShutDown(err)))
				break
			}
			drained = append(drained, v)
		}
		return nil
	})
	sameAs(t, "trace", []string{"true true true true true true", "[1 2] then shut down true"}, trace)
}

// Mirrors invariant I73 for queues (CPython's _LoopBoundMixin on Queue): a
// queue a getter blocked on in loop A refuses a waiting getter of loop B
// with ErrDifferentLoop; the non-waiting methods still work there.
func TestQueueDifferentLoop(t *testing.T) {
	q := loop.NewQueue[int](1)
	runMain(t, func(ctx context.Context) error {
		loop.Spawn(ctx, q.Get) // binds q to loop A; Run cancels it
		sleep0(ctx)
		return nil
	})
	var trace []string
	runMain(t, func(ctx context.Context) error {
		_, err := q.Get(ctx)
		trace = append(trace, fmt.Sprint("get: different loop ", errors.Is(err, loop.ErrDifferentLoop)))
		trace = append(trace, fmt.Sprint("put_nowait ", q.PutNowait(1)))
		err = q.Put(ctx, 2)
		trace = append(trace, fmt.Sprint("put (full): different loop ", errors.Is(err, loop.ErrDifferentLoop)))
		v, err := q.Get(ctx)
		trace = append(trace, fmt.Sprint("get (non-empty) ", v, " ", err))
		return nil
	})
	sameAs(t, "trace", []string{
		"get: different loop true", "put_nowait <nil>", "put (full): different loop true", "get (non-empty) 1 <nil>",
	}, trace)
}

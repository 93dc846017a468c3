package loop_test

// Issue 8, items 5 and 6: the zero value of every type of locks.go,
// queues.go, taskgroups.go and events.go either works as asyncio's default
// (Semaphore(), BoundedSemaphore(), Lock(), Event(), Condition(), Queue(),
// LifoQueue(), TaskGroup()) or returns its documented error (Barrier,
// PriorityQueue); and SetDefaultExecutor shuts the executor it replaces
// down.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/internal/exectest"
	"github.com/asyncgo/asyncgo/loop"
)

// zeroOp is one method call on a primitive p by task i of a script; ctx
// ends a few milliseconds of loop time on, so no call waits for ever. It
// returns what the call observed.
type zeroOp[P any] struct {
	name string
	do   func(ctx context.Context, p P, i int) string
}

// step is one planned call of a script: a sleep, then ops[op] with a
// patience of wait.
type step struct {
	sleep, wait time.Duration
	op          int
}

// runScript runs the script plan (one list of steps per task) against p
// on a fresh loop with a virtual clock, and returns its trace: every
// call's loop time, task, name and observation, then every task's error.
func runScript[P any](t *testing.T, p P, ops []zeroOp[P], plan [][]step) []string {
	t.Helper()
	var trace []string
	exectest.Within(t, time.Minute, "a script on a virtual clock", func() {
		_, err := loop.Run(context.Background(), func(ctx context.Context) (struct{}, error) {
			l := loopOf(ctx)
			// Run ahead of the wall clock first: a ctx's deadline also
			// has a wall-clock timer, which must not fire, at a moment no
			// script controls, while the script runs.
			if err := loop.Sleep(ctx, time.Hour); err != nil {
				return struct{}{}, err
			}
			start := l.Time()
			var ts []*loop.Task[struct{}]
			for i, steps := range plan {
				ts = append(ts, loop.Spawn(ctx, func(ctx context.Context) (struct{}, error) {
					for _, s := range steps {
						if err := loop.Sleep(ctx, s.sleep); err != nil {
							return struct{}{}, err
						}
						dctx, cancel := context.WithDeadline(ctx, l.Time().Add(s.wait))
						got := ops[s.op].do(dctx, p, i)
						cancel()
						trace = append(trace, fmt.Sprintf("%v task %d %s: %s", l.Time().Sub(start), i, ops[s.op].name, got))
					}
					return struct{}{}, nil
				}))
			}
			for i, err := range awaitAll(ctx, ts...) {
				trace = append(trace, fmt.Sprintf("task %d: %v", i, err))
				var pe *loop.PanicError
				if errors.As(err, &pe) {
					t.Errorf("task %d panicked: %v", i, err)
				}
			}
			return struct{}{}, nil
		}, loop.WithVirtualClock())
		if err != nil {
			t.Errorf("Run() = %v", err)
		}
	})
	return trace
}

// randomPlan draws a script of three tasks over n ops.
func randomPlan(r *rand.Rand, n int) [][]step {
	plan := make([][]step, 3)
	for i := range plan {
		for range r.IntN(8) + 1 {
			plan[i] = append(plan[i], step{
				sleep: time.Duration(r.IntN(3)) * time.Millisecond,
				wait:  time.Duration(r.IntN(4)) * time.Millisecond,
				op:    r.IntN(n),
			})
		}
	}
	return plan
}

// sameAsMade runs random scripts on the zero value (zero) and on what the
// constructor's default makes (made), and compares their traces whole;
// with made nil it checks only that the zero value neither panics nor
// hangs.
func sameAsMade[P any](t *testing.T, zero, made func() P, ops []zeroOp[P]) {
	t.Helper()
	r := rand.New(rand.NewPCG(8, 5))
	for seed := range 100 {
		plan := randomPlan(r, len(ops))
		got := runScript(t, zero(), ops, plan)
		if made == nil {
			continue
		}
		want := runScript(t, made(), ops, plan)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			checkTrace(t, want, got)
			t.Fatalf("script %d: the zero value's trace differs from the constructor's", seed)
		}
	}
}

func str(err error) string { return fmt.Sprint(err) }

func semaphoreOps[P interface {
	Acquire(context.Context) error
	Release() error
	Value() int
	Locked() bool
}]() []zeroOp[P] {
	return []zeroOp[P]{
		{"Acquire", func(ctx context.Context, s P, _ int) string { return str(s.Acquire(ctx)) }},
		{"Acquire", func(ctx context.Context, s P, _ int) string { return str(s.Acquire(ctx)) }},
		{"Release", func(_ context.Context, s P, _ int) string { return str(s.Release()) }},
		{"Value", func(_ context.Context, s P, _ int) string { return fmt.Sprint(s.Value()) }},
		{"Locked", func(_ context.Context, s P, _ int) string { return fmt.Sprint(s.Locked()) }},
	}
}

func queueOps[P interface {
	Put(context.Context, int) error
	PutNowait(int) error
	Get(context.Context) (int, error)
	GetNowait() (int, error)
	Qsize() int
	Maxsize() int
	Empty() bool
	Full() bool
	TaskDone() error
	Join(context.Context) error
	Shutdown(bool)
}]() []zeroOp[P] {
	return []zeroOp[P]{
		{"Put", func(ctx context.Context, q P, i int) string { return str(q.Put(ctx, i)) }},
		{"PutNowait", func(_ context.Context, q P, i int) string { return str(q.PutNowait(10 + i)) }},
		{"Get", func(ctx context.Context, q P, _ int) string { v, err := q.Get(ctx); return fmt.Sprint(v, err) }},
		{"GetNowait", func(_ context.Context, q P, _ int) string { v, err := q.GetNowait(); return fmt.Sprint(v, err) }},
		{"Qsize", func(_ context.Context, q P, _ int) string {
			return fmt.Sprint(q.Qsize(), q.Maxsize(), q.Empty(), q.Full())
		}},
		{"TaskDone", func(_ context.Context, q P, _ int) string { return str(q.TaskDone()) }},
		{"Join", func(ctx context.Context, q P, _ int) string { return str(q.Join(ctx)) }},
		{"Shutdown", func(_ context.Context, q P, i int) string { q.Shutdown(i == 0); return "" }},
	}
}

// The zero Semaphore is asyncio.Semaphore() (value 1), the zero
// BoundedSemaphore asyncio.BoundedSemaphore() (value and bound 1), the
// zero Condition asyncio.Condition() (a Lock of its own), the zero Queue
// and LifoQueue asyncio.Queue() and LifoQueue() (unbounded): random scripts
// of their methods run on each observe exactly what they observe on the
// constructor's default.
func TestZeroValuesAreAsyncioDefaults(t *testing.T) {
	t.Run("Semaphore", func(t *testing.T) {
		sameAsMade(t, func() *loop.Semaphore { return new(loop.Semaphore) },
			func() *loop.Semaphore { s, _ := loop.NewSemaphore(1); return s }, semaphoreOps[*loop.Semaphore]())
	})
	t.Run("BoundedSemaphore", func(t *testing.T) {
		sameAsMade(t, func() *loop.BoundedSemaphore { return new(loop.BoundedSemaphore) },
			func() *loop.BoundedSemaphore { s, _ := loop.NewBoundedSemaphore(1); return s }, semaphoreOps[*loop.BoundedSemaphore]())
	})
	t.Run("Condition", func(t *testing.T) {
		// Each call that takes the lock gives it back: a Wait whose ctx
		// ended re-acquires the lock whatever it takes (as asyncio's), so
		// a lock kept by a task that has finished would block it for ever.
		locked := func(do func(ctx context.Context, c *loop.Condition) string) func(ctx context.Context, c *loop.Condition, _ int) string {
			return func(ctx context.Context, c *loop.Condition, _ int) string {
				if err := c.Acquire(ctx); err != nil {
					return "Acquire: " + str(err)
				}
				got := do(ctx, c)
				return got + ", Release: " + str(c.Release())
			}
		}
		ops := []zeroOp[*loop.Condition]{
			{"Acquire", locked(func(ctx context.Context, c *loop.Condition) string {
				return fmt.Sprint(c.Locked(), loop.Sleep(ctx, time.Millisecond))
			})},
			{"Release", func(_ context.Context, c *loop.Condition, _ int) string { return str(c.Release()) }},
			{"Locked", func(_ context.Context, c *loop.Condition, _ int) string { return fmt.Sprint(c.Locked()) }},
			{"Wait", locked(func(ctx context.Context, c *loop.Condition) string { return str(c.Wait(ctx)) })},
			{"WaitFor", locked(func(ctx context.Context, c *loop.Condition) string {
				return str(c.WaitFor(ctx, func() bool { return false }))
			})},
			{"Notify", locked(func(_ context.Context, c *loop.Condition) string { return str(c.Notify(1)) })},
			{"NotifyAll", locked(func(_ context.Context, c *loop.Condition) string { return str(c.NotifyAll()) })},
			{"Notify unlocked", func(_ context.Context, c *loop.Condition, _ int) string { return str(c.Notify(1)) }},
		}
		sameAsMade(t, func() *loop.Condition { return new(loop.Condition) },
			func() *loop.Condition { return loop.NewCondition(nil) }, ops)
	})
	t.Run("Queue", func(t *testing.T) {
		sameAsMade(t, func() *loop.Queue[int] { return new(loop.Queue[int]) },
			func() *loop.Queue[int] { return loop.NewQueue[int](0) }, queueOps[*loop.Queue[int]]())
	})
	t.Run("LifoQueue", func(t *testing.T) {
		sameAsMade(t, func() *loop.LifoQueue[int] { return new(loop.LifoQueue[int]) },
			func() *loop.LifoQueue[int] { return loop.NewLifoQueue[int](0) }, queueOps[*loop.LifoQueue[int]]())
	})
	// Lock and Event have no constructor: their zero value is asyncio's
	// Lock() and Event(), checked by the tests of locks_test.go; here
	// scripts only check that no call panics or hangs.
	t.Run("Lock", func(t *testing.T) {
		ops := []zeroOp[*loop.Lock]{
			{"Acquire", func(ctx context.Context, lk *loop.Lock, _ int) string { return str(lk.Acquire(ctx)) }},
			{"Release", func(_ context.Context, lk *loop.Lock, _ int) string { return str(lk.Release()) }},
			{"Locked", func(_ context.Context, lk *loop.Lock, _ int) string { return fmt.Sprint(lk.Locked()) }},
		}
		sameAsMade(t, func() *loop.Lock { return new(loop.Lock) }, nil, ops)
	})
	t.Run("Event", func(t *testing.T) {
		ops := []zeroOp[*loop.Event]{
			{"Wait", func(ctx context.Context, e *loop.Event, _ int) string { return str(e.Wait(ctx)) }},
			{"Set", func(_ context.Context, e *loop.Event, _ int) string { e.Set(); return "" }},
			{"Clear", func(_ context.Context, e *loop.Event, _ int) string { e.Clear(); return "" }},
			{"IsSet", func(_ context.Context, e *loop.Event, _ int) string { return fmt.Sprint(e.IsSet()) }},
		}
		sameAsMade(t, func() *loop.Event { return new(loop.Event) }, nil, ops)
	})
}

// The zero LifoQueue is LIFO, and the zero BoundedSemaphore refuses a
// second Release: what the differential test cannot tell from a
// constructor that got it wrong too.
func TestZeroLifoQueueAndBoundedSemaphore(t *testing.T) {
	var got []string
	runMain(t, func(ctx context.Context) error {
		var q loop.LifoQueue[int]
		for i := range 3 {
			mustOK(t, q.PutNowait(i))
		}
		mustOK(t, q.Put(ctx, 3))
		for range 4 {
			v, err := q.Get(ctx)
			got = append(got, fmt.Sprint(v, err))
		}
		var s loop.BoundedSemaphore
		got = append(got, fmt.Sprint(s.Value(), s.Locked(), errors.Is(s.Release(), loop.ErrBoundedSemaphoreOverRelease)))
		mustOK(t, s.Acquire(ctx))
		got = append(got, fmt.Sprint(s.Value(), s.Locked(), s.Release(), s.Value()))
		var plain loop.Semaphore
		mustOK(t, plain.Release()) // a Semaphore may go above its initial value
		got = append(got, fmt.Sprint(plain.Value()))
		return nil
	})
	sameAs(t, "results", []string{"3 <nil>", "2 <nil>", "1 <nil>", "0 <nil>", "1 false true", "0 true <nil> 1", "2"}, got)
}

// asyncio.Barrier has no default for parties: the zero Barrier's Wait,
// Reset and Abort return ErrBarrierParties, at once, as NewBarrier(0) does.
func TestZeroBarrier(t *testing.T) {
	if _, err := loop.NewBarrier(0); !errors.Is(err, loop.ErrBarrierParties) {
		t.Errorf("NewBarrier(0) = %v; want ErrBarrierParties", err)
	}
	var got []string
	runMain(t, func(ctx context.Context) error {
		var b loop.Barrier
		i, err := b.Wait(ctx)
		got = append(got, fmt.Sprint(i, errors.Is(err, loop.ErrBarrierParties)))
		got = append(got, fmt.Sprint(errors.Is(b.Reset(ctx), loop.ErrBarrierParties), errors.Is(b.Abort(ctx), loop.ErrBarrierParties)))
		got = append(got, fmt.Sprint(b.Parties(), b.NWaiting(), b.Broken()))
		return nil
	})
	sameAs(t, "results", []string{"0 true", "true true", "0 0 false"}, got)
	ops := []zeroOp[*loop.Barrier]{
		{"Wait", func(ctx context.Context, b *loop.Barrier, _ int) string {
			i, err := b.Wait(ctx)
			return fmt.Sprint(i, err)
		}},
		{"Reset", func(ctx context.Context, b *loop.Barrier, _ int) string { return str(b.Reset(ctx)) }},
		{"Abort", func(ctx context.Context, b *loop.Barrier, _ int) string { return str(b.Abort(ctx)) }},
		{"State", func(_ context.Context, b *loop.Barrier, _ int) string {
			return fmt.Sprint(b.Parties(), b.NWaiting(), b.Broken())
		}},
	}
	sameAsMade(t, func() *loop.Barrier { return new(loop.Barrier) }, nil, ops)
}

// A Go type parameter does not say how to order items, so the zero
// PriorityQueue has no order: its item methods return
// ErrPriorityQueueUnordered instead of ordering its items as a FIFO (or
// waiting for ever in Get); the rest work as on an empty queue.
func TestZeroPriorityQueue(t *testing.T) {
	var got []string
	runMain(t, func(ctx context.Context) error {
		var q loop.PriorityQueue[int]
		is := func(err error) bool { return errors.Is(err, loop.ErrPriorityQueueUnordered) }
		_, gerr := q.Get(ctx)
		_, gnerr := q.GetNowait()
		got = append(got, fmt.Sprint(is(q.Put(ctx, 1)), is(q.PutNowait(1)), is(gerr), is(gnerr)))
		got = append(got, fmt.Sprint(q.Qsize(), q.Maxsize(), q.Empty(), q.Full(), q.Join(ctx), errors.Is(q.TaskDone(), loop.ErrTaskDoneTooMany)))
		q.Shutdown(true)
		return nil
	})
	sameAs(t, "results", []string{"true true true true", "0 0 true false <nil> true"}, got)
	ops := queueOps[*loop.PriorityQueue[int]]()
	sameAsMade(t, func() *loop.PriorityQueue[int] { return new(loop.PriorityQueue[int]) }, nil, ops)
}

// The zero TaskGroup is asyncio.TaskGroup(), good for one Do; before it,
// SpawnIn and Go return ErrTaskGroupNotEntered, after it
// ErrTaskGroupFinished, and a second Do ErrTaskGroupEntered.
func TestZeroTaskGroup(t *testing.T) {
	var got []string
	runMain(t, func(ctx context.Context) error {
		var tg loop.TaskGroup
		_, err := loop.SpawnIn(&tg, func(ctx context.Context) (int, error) { return 1, nil })
		got = append(got, fmt.Sprint(errors.Is(err, loop.ErrTaskGroupNotEntered), errors.Is(tg.Go(func(context.Context) error { return nil }), loop.ErrTaskGroupNotEntered)))
		var child *loop.Task[int]
		err = tg.Do(ctx, func(ctx context.Context) error {
			var err error
			child, err = loop.SpawnIn(&tg, func(ctx context.Context) (int, error) { return 2, loop.Sleep(ctx, time.Second) })
			return err
		})
		v, cerr := child.Result()
		got = append(got, fmt.Sprint(err, v, cerr))
		got = append(got, fmt.Sprint(errors.Is(tg.Go(func(context.Context) error { return nil }), loop.ErrTaskGroupFinished),
			errors.Is(tg.Do(ctx, func(context.Context) error { return nil }), loop.ErrTaskGroupEntered)))
		return nil
	})
	sameAs(t, "results", []string{"true true", "<nil> 2 <nil>", "true true"}, got)
}

// The zero Handle and TimerHandle refer to no callback: their methods
// neither panic nor do anything but record a cancellation.
func TestZeroHandles(t *testing.T) {
	var h loop.Handle
	h.Cancel()
	var th loop.TimerHandle
	got := []string{fmt.Sprint(h.Cancelled()), fmt.Sprint(th.When().IsZero(), th.Cancelled())}
	th.Cancel()
	th.Cancel()
	got = append(got, fmt.Sprint(th.Cancelled()))
	sameAs(t, "results", []string{"false", "true false", "true"}, got)
}

// Item 6: SetDefaultExecutor shuts the executor it replaces down, whoever
// made it, without waiting: a call running on it finishes and its result
// reaches the loop, then its goroutines end. Setting the same pool again
// leaves it running; nil goes back to a pool the loop makes, which Run
// shuts down at the end.
func TestSetDefaultExecutorShutsDownTheOldOne(t *testing.T) {
	base := exectest.ThreadPoolWorkers()
	mine := newThreadPool(t, 1)
	runReal(t, func(ctx context.Context) error {
		l := loopOf(ctx)
		g := newGate(l)
		running := loop.RunInExecutor(ctx, nil, g.call("late")) // on the pool the loop made
		if _, err := g.started.Await(ctx); err != nil {
			return err
		}
		l.SetDefaultExecutor(mine)
		close(g.release)
		if v, err := running.Await(ctx); v != "late" || err != nil {
			t.Errorf("call running on the replaced pool = %q, %v; want late, nil", v, err)
		}
		exectest.WaitThreadPoolWorkers(t, base, "the loop's own pool, replaced")

		if v, err := loop.ToThread(ctx, func() (int, error) { return 1, nil }); v != 1 || err != nil {
			t.Errorf("ToThread() on the new default = %d, %v; want 1, nil", v, err)
		}
		l.SetDefaultExecutor(mine) // the same pool: still running
		if v, err := loop.RunInExecutor(ctx, nil, executor.Local(func() (int, error) { return 2, nil })).Await(ctx); v != 2 || err != nil {
			t.Errorf("RunInExecutor() after setting the same pool again = %d, %v; want 2, nil", v, err)
		}

		l.SetDefaultExecutor(nil) // the user's pool, replaced: shut down too
		if _, err := executor.SubmitFunc(mine, func() (int, error) { return 0, nil }); !errors.Is(err, executor.ErrShutdown) {
			t.Errorf("Submit() to the replaced pool = %v; want ErrShutdown", err)
		}
		exectest.WaitThreadPoolWorkers(t, base, "the user's pool, replaced")
		if v, err := loop.ToThread(ctx, func() (int, error) { return 3, nil }); v != 3 || err != nil {
			t.Errorf("ToThread() after SetDefaultExecutor(nil) = %d, %v; want 3, nil", v, err)
		}
		return nil
	})
	exectest.WaitThreadPoolWorkers(t, base, "the pool the loop made last, after Run")
}

package loop_test

// Ports of CPython's Lib/test/test_asyncio/test_locks.py (and the
// invariants I67-I73 of the asyncio reference) to loop.Lock, Event,
// Condition, Semaphore, BoundedSemaphore and Barrier. Every case names the
// CPython test it mirrors; traces are compared whole with cmp.Diff. Time is
// the loop's virtual clock: no test sleeps on the wall clock.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/loop"
	"github.com/google/go-cmp/cmp"
)

// sleep0 is asyncio.sleep(0): one iteration of the loop.
func sleep0(ctx context.Context) {
	_ = loop.Sleep(ctx, 0)
}

// sameAs reports a difference between want and got as a test error.
func sameAs(t *testing.T, what string, want, got any) {
	t.Helper()
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("%s (-want +got):\n%s", what, d)
	}
}

// runMain runs main on a fresh loop with a virtual clock and fails the test
// if main returns an error.
func runMain(t *testing.T, main func(ctx context.Context) error) {
	t.Helper()
	_, err := run(t, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, main(ctx)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// isCancelled reports whether err is a cancellation delivered by the loop.
func isCancelled(err error) bool {
	return errors.Is(err, loop.ErrCancelled) || errors.Is(err, context.Canceled)
}

// awaitAll awaits every task and returns their errors in order.
func awaitAll[T any](ctx context.Context, ts ...*loop.Task[T]) []error {
	errs := make([]error, len(ts))
	for i, tk := range ts {
		_, errs[i] = tk.Await(ctx)
	}
	return errs
}

// noErrs reports the first non-nil error of errs.
func noErrs(t *testing.T, errs []error) {
	t.Helper()
	for i, err := range errs {
		if err != nil {
			t.Errorf("task %d: %v", i, err)
		}
	}
}

// ---------------------------------------------------------------- Lock

// Mirrors test_locks.py LockTests.test_acquire: waiters acquire in FIFO
// order, one per release, and a task created later queues behind them.
func TestLockAcquire(t *testing.T) {
	var trace []string
	runMain(t, func(ctx context.Context) error {
		var lk loop.Lock
		var result []int
		snap := func(label string) { trace = append(trace, fmt.Sprintf("%s %v", label, result)) }
		if err := lk.Acquire(ctx); err != nil {
			return err
		}
		c := func(i int) func(ctx context.Context) error {
			return func(ctx context.Context) error {
				if err := lk.Acquire(ctx); err != nil {
					return err
				}
				result = append(result, i)
				return nil
			}
		}
		t1 := loop.Go(ctx, c(1))
		t2 := loop.Go(ctx, c(2))
		sleep0(ctx)
		snap("started")
		lk.Release()
		sleep0(ctx)
		snap("release1")
		sleep0(ctx)
		snap("idle")
		t3 := loop.Go(ctx, c(3))
		lk.Release()
		sleep0(ctx)
		snap("release2")
		lk.Release()
		sleep0(ctx)
		snap("release3")
		trace = append(trace, fmt.Sprint(t1.Done(), t2.Done(), t3.Done(), lk.Locked()))
		noErrs(t, awaitAll(ctx, t1, t2, t3))
		return nil
	})
	sameAs(t, "trace", []string{
		"started []", "release1 [1]", "idle [1]", "release2 [1 2]", "release3 [1 2 3]",
		"true true true true",
	}, trace)
}

// Mirrors the FIFO invariant I67 (CPython's ordering check over
// LockTests): five waiters, each holding the lock across a yield, get it in
// the order they asked for it.
func TestLockWaitersFIFO(t *testing.T) {
	var trace []string
	runMain(t, func(ctx context.Context) error {
		var lk loop.Lock
		if err := lk.Acquire(ctx); err != nil {
			return err
		}
		var ts []*loop.Task[struct{}]
		for i := range 5 {
			ts = append(ts, loop.Go(ctx, func(ctx context.Context) error {
				if err := lk.Acquire(ctx); err != nil {
					return err
				}
				trace = append(trace, fmt.Sprintf("in %d", i))
				sleep0(ctx)
				trace = append(trace, fmt.Sprintf("out %d", i))
				return lk.Release()
			}))
		}
		sleep0(ctx)
		trace = append(trace, "main releases")
		if err := lk.Release(); err != nil {
			return err
		}
		noErrs(t, awaitAll(ctx, ts...))
		return nil
	})
	sameAs(t, "trace", []string{
		"main releases",
		"in 0", "out 0", "in 1", "out 1", "in 2", "out 2", "in 3", "out 3", "in 4", "out 4",
	}, trace)
}

// Mirrors I67's no-barging rule (CPython LockTests, gh-90155): after a
// release with a waiter, the lock reads as unlocked, yet a fresh Acquire
// by the releaser queues behind the woken waiter.
func TestLockNoBarging(t *testing.T) {
	var trace []string
	runMain(t, func(ctx context.Context) error {
		var lk loop.Lock
		if err := lk.Acquire(ctx); err != nil {
			return err
		}
		waiter := loop.Go(ctx, func(ctx context.Context) error {
			if err := lk.Acquire(ctx); err != nil {
				return err
			}
			trace = append(trace, "waiter")
			return lk.Release()
		})
		sleep0(ctx)
		if err := lk.Release(); err != nil {
			return err
		}
		trace = append(trace, fmt.Sprintf("locked after release: %v", lk.Locked()))
		if err := lk.Acquire(ctx); err != nil {
			return err
		}
		trace = append(trace, "releaser-reacquired")
		if err := lk.Release(); err != nil {
			return err
		}
		_, err := waiter.Await(ctx)
		return err
	})
	sameAs(t, "trace", []string{"locked after release: false", "waiter", "releaser-reacquired"}, trace)
}

// Mirrors I67 (an uncontended acquire() does not yield) and
// LockTests.test_release_no_waiters: other ready tasks do not run during
// an uncontended Acquire, and Release with no waiters unlocks.
func TestLockUncontendedDoesNotYield(t *testing.T) {
	var trace []string
	runMain(t, func(ctx context.Context) error {
		var lk loop.Lock
		other := loop.Go(ctx, func(ctx context.Context) error {
			trace = append(trace, "other ran")
			return nil
		})
		if err := lk.Acquire(ctx); err != nil {
			return err
		}
		trace = append(trace, fmt.Sprintf("acquired, locked %v", lk.Locked()))
		if err := lk.Release(); err != nil {
			return err
		}
		trace = append(trace, fmt.Sprintf("released, locked %v", lk.Locked()))
		_, err := other.Await(ctx)
		return err
	})
	sameAs(t, "trace", []string{"acquired, locked true", "released, locked false", "other ran"}, trace)
}

// Mirrors test_locks.py LockTests.test_acquire_cancel: a waiter cancelled
// by a callback returns the cancellation and leaves no trace: the next
// Acquire after Release takes the lock at once.
func TestLockAcquireCancel(t *testing.T) {
	var trace []string
	runMain(t, func(ctx context.Context) error {
		var lk loop.Lock
		l, err := loop.RunningLoop(ctx)
		if err != nil {
			return err
		}
		if err := lk.Acquire(ctx); err != nil {
			return err
		}
		task := loop.Go(ctx, lk.Acquire)
		l.CallSoon(func() { task.Cancel("") })
		_, err = task.Await(ctx)
		trace = append(trace, fmt.Sprintf("cancelled %v %v, locked %v", isCancelled(err), task.Cancelled(), lk.Locked()))
		if err := lk.Release(); err != nil {
			return err
		}
		trace = append(trace, fmt.Sprintf("locked %v", lk.Locked()))
		return lk.Acquire(ctx)
	})
	sameAs(t, "trace", []string{"cancelled true true, locked true", "locked false"}, trace)
}

// Mirrors test_locks.py LockTests.test_cancel_race: B, first in line, is
// cancelled in the same iteration as A releases; the lock goes to C, never
// to B, and never to two tasks at once.
func TestLockCancelRace(t *testing.T) {
	var trace []string
	runMain(t, func(ctx context.Context) error {
		var lk loop.Lock
		l, err := loop.RunningLoop(ctx)
		if err != nil {
			return err
		}
		holders := 0
		lockit := func(name string, blocker *loop.Future[struct{}]) func(ctx context.Context) error {
			return func(ctx context.Context) error {
				if err := lk.Acquire(ctx); err != nil {
					trace = append(trace, name+" acquire: cancelled "+fmt.Sprint(isCancelled(err)))
					return err
				}
				if holders++; holders > 1 {
					t.Errorf("%s: %d holders", name, holders)
				}
				trace = append(trace, name+" holds")
				defer func() { holders--; lk.Release() }()
				if blocker != nil {
					if _, err := blocker.Await(ctx); err != nil {
						return err
					}
				}
				return nil
			}
		}
		fa := loop.NewFuture[struct{}](l)
		ta := loop.Go(ctx, lockit("A", fa))
		sleep0(ctx)
		trace = append(trace, fmt.Sprintf("locked %v", lk.Locked()))
		tb := loop.Go(ctx, lockit("B", nil))
		sleep0(ctx)
		tc := loop.Go(ctx, lockit("C", nil))
		sleep0(ctx)

		fa.SetResult(struct{}{})
		tb.Cancel("")
		sleep0(ctx)
		trace = append(trace, fmt.Sprintf("locked %v, A done %v, B cancelled %v", lk.Locked(), ta.Done(), tb.Cancelled()))
		_, err = tc.Await(ctx)
		trace = append(trace, fmt.Sprintf("locked %v", lk.Locked()))
		return err
	})
	sameAs(t, "trace", []string{
		"A holds", "locked true",
		"B acquire: cancelled true",
		"locked false, A done true, B cancelled true",
		"C holds", "locked false",
	}, trace)
}

// Mirrors test_locks.py LockTests.test_cancel_release_race (bpo-32734):
// cancelling the first waiter and releasing in one callback lets exactly
// one of the other waiters in.
func TestLockCancelReleaseRace(t *testing.T) {
	var trace []string
	runMain(t, func(ctx context.Context) error {
		var lk loop.Lock
		l, err := loop.RunningLoop(ctx)
		if err != nil {
			return err
		}
		lockCount, callCount := 0, 0
		lockit := func(ctx context.Context) error {
			callCount++
			if err := lk.Acquire(ctx); err != nil {
				return err
			}
			lockCount++
			return nil
		}
		if err := lk.Acquire(ctx); err != nil {
			return err
		}
		t1 := loop.Go(ctx, lockit)
		t2 := loop.Go(ctx, lockit)
		t3 := loop.Go(ctx, lockit)
		sleep0(ctx)
		l.CallSoon(func() {
			t1.Cancel("")
			lk.Release()
		})
		_, err = t1.Await(ctx)
		trace = append(trace, fmt.Sprintf("t1 err cancelled %v; lock_count %d call_count %d; t1 cancelled %v t2 done %v",
			isCancelled(err), lockCount, callCount, t1.Cancelled(), t2.Done()))
		t3.Cancel("")
		sleep0(ctx)
		trace = append(trace, fmt.Sprintf("t3 cancelled %v, lock_count %d", t3.Cancelled(), lockCount))
		return nil
	})
	sameAs(t, "trace", []string{
		"t1 err cancelled true; lock_count 1 call_count 3; t1 cancelled true t2 done true",
		"t3 cancelled true, lock_count 1",
	}, trace)
}

// Mirrors test_locks.py LockTests.test_finished_waiter_cancelled: the
// first waiter is cancelled and the lock released before it runs; the
// second waiter (not yet started) still gets the lock.
func TestLockFinishedWaiterCancelled(t *testing.T) {
	var trace []string
	runMain(t, func(ctx context.Context) error {
		var lk loop.Lock
		if err := lk.Acquire(ctx); err != nil {
			return err
		}
		tb := loop.Go(ctx, lk.Acquire)
		sleep0(ctx)
		tc := loop.Go(ctx, lk.Acquire)
		tb.Cancel("")
		lk.Release()
		sleep0(ctx)
		trace = append(trace, fmt.Sprintf("locked %v, tb cancelled %v", lk.Locked(), tb.Cancelled()))
		_, err := tc.Await(ctx)
		trace = append(trace, fmt.Sprintf("tc err %v, locked %v", err, lk.Locked()))
		return nil
	})
	sameAs(t, "trace", []string{"locked true, tb cancelled true", "tc err <nil>, locked true"}, trace)
}

// Mirrors test_locks.py LockTests.test_release_not_acquired: releasing an
// unlocked Lock is ErrLockNotAcquired (RuntimeError in asyncio), also
// after a proper acquire/release pair.
func TestLockReleaseNotAcquired(t *testing.T) {
	var errs []error
	runMain(t, func(ctx context.Context) error {
		var lk loop.Lock
		errs = append(errs, lk.Release())
		if err := lk.Acquire(ctx); err != nil {
			return err
		}
		errs = append(errs, lk.Release(), lk.Release())
		return nil
	})
	want := []error{loop.ErrLockNotAcquired, nil, loop.ErrLockNotAcquired}
	if len(errs) != len(want) {
		t.Fatalf("errs %v", errs)
	}
	for i := range want {
		if !errors.Is(errs[i], want[i]) || (want[i] == nil) != (errs[i] == nil) {
			t.Errorf("release %d: %v, want %v", i, errs[i], want[i])
		}
	}
}

// Mirrors test_locks.py LockTests.test_cancel_race, generalised: 20 tasks
// contend for a Lock while a seeded random schedule cancels some of them
// waiting and some holding it. At no point are there two holders, every
// task that was not cancelled gets the lock, and the lock ends free.
func TestLockRandomCancelNeverTwoHolders(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 67))
	for round := range 20 {
		var stats [3]int
		runMain(t, func(ctx context.Context) error {
			var lk loop.Lock
			holders, got := 0, 0
			var ts []*loop.Task[struct{}]
			for range 20 {
				ts = append(ts, loop.Go(ctx, func(ctx context.Context) error {
					if err := lk.Acquire(ctx); err != nil {
						return err
					}
					got++
					if holders++; holders > 1 {
						t.Errorf("round %d: %d holders", round, holders)
					}
					defer func() { holders--; lk.Release() }()
					for range rng.IntN(3) {
						if err := loop.Sleep(ctx, 0); err != nil {
							return err
						}
					}
					return nil
				}))
			}
			for range 30 {
				if rng.IntN(4) == 0 {
					ts[rng.IntN(len(ts))].Cancel("chaos")
				}
				sleep0(ctx)
			}
			errs := awaitAll(ctx, ts...)
			for i, err := range errs {
				switch {
				case err == nil:
					stats[0]++
				case isCancelled(err) && ts[i].Cancelled():
					stats[1]++
				default:
					t.Errorf("task %d: %v", i, err)
				}
			}
			stats[2] = got
			if lk.Locked() {
				t.Errorf("round %d: lock left locked", round)
			}
			// The lock still works: not stuck.
			if err := lk.Acquire(ctx); err != nil {
				return err
			}
			return lk.Release()
		})
		if stats[0]+stats[1] != 20 || stats[0] > stats[2] {
			t.Errorf("round %d: ok %d cancelled %d acquired %d", round, stats[0], stats[1], stats[2])
		}
	}
}

// Mirrors test_locks.py ConditionTests.test_ambiguous_loops and invariant
// I73 for Lock: a Lock a task blocked on in loop A refuses a task of loop B
// with ErrDifferentLoop ("is bound to a different event loop").
func TestLockDifferentLoop(t *testing.T) {
	var lk loop.Lock
	runMain(t, func(ctx context.Context) error {
		if err := lk.Acquire(ctx); err != nil {
			return err
		}
		// A waiter binds the lock to this loop; Run cancels it at exit,
		// leaving the lock held.
		loop.Go(ctx, lk.Acquire)
		sleep0(ctx)
		return nil
	})
	var err error
	runMain(t, func(ctx context.Context) error {
		err = lk.Acquire(ctx)
		return nil
	})
	if !errors.Is(err, loop.ErrDifferentLoop) || !strings.Contains(err.Error(), "different event loop") {
		t.Errorf("Acquire from loop B: %v, want ErrDifferentLoop", err)
	}
}

// Mirrors invariant I73's fast path (ConditionTests.test_ambiguous_loops:
// "acquired immediately via the fast-path without interaction with any
// event loop"): a Lock never blocked on binds to no loop, so a second loop
// may use it, and then it binds to that loop.
func TestLockFastPathDoesNotBind(t *testing.T) {
	var lk loop.Lock
	runMain(t, func(ctx context.Context) error {
		if err := lk.Acquire(ctx); err != nil {
			return err
		}
		return lk.Release()
	})
	var trace []string
	runMain(t, func(ctx context.Context) error {
		if err := lk.Acquire(ctx); err != nil {
			return err
		}
		w := loop.Go(ctx, func(ctx context.Context) error {
			if err := lk.Acquire(ctx); err != nil {
				return err
			}
			trace = append(trace, "second loop waiter")
			return lk.Release()
		})
		sleep0(ctx)
		lk.Release()
		_, err := w.Await(ctx)
		return err
	})
	sameAs(t, "trace", []string{"second loop waiter"}, trace)
}

// ---------------------------------------------------------------- Event

// Mirrors test_locks.py EventTests.test_wait: Set wakes every waiter; one
// created just before Set but not yet waiting runs first: [3 1 2].
func TestEventWait(t *testing.T) {
	var result []int
	var trace []string
	runMain(t, func(ctx context.Context) error {
		var ev loop.Event
		trace = append(trace, fmt.Sprintf("is set %v", ev.IsSet()))
		c := func(i int) func(ctx context.Context) error {
			return func(ctx context.Context) error {
				if err := ev.Wait(ctx); err != nil {
					return err
				}
				result = append(result, i)
				return nil
			}
		}
		t1 := loop.Go(ctx, c(1))
		t2 := loop.Go(ctx, c(2))
		sleep0(ctx)
		trace = append(trace, fmt.Sprintf("before set %v", result))
		t3 := loop.Go(ctx, c(3))
		ev.Set()
		sleep0(ctx)
		trace = append(trace, fmt.Sprintf("done %v %v %v", t1.Done(), t2.Done(), t3.Done()))
		noErrs(t, awaitAll(ctx, t1, t2, t3))
		return nil
	})
	sameAs(t, "result", []int{3, 1, 2}, result)
	sameAs(t, "trace", []string{"is set false", "before set []", "done true true true"}, trace)
}

// Mirrors test_locks.py EventTests.test_wait_on_set and invariant I69:
// Wait on a set event returns at once, without yielding.
func TestEventWaitOnSet(t *testing.T) {
	var trace []string
	runMain(t, func(ctx context.Context) error {
		var ev loop.Event
		ev.Set()
		other := loop.Go(ctx, func(ctx context.Context) error {
			trace = append(trace, "other")
			return nil
		})
		err := ev.Wait(ctx)
		trace = append(trace, fmt.Sprintf("wait %v", err))
		_, err = other.Await(ctx)
		return err
	})
	sameAs(t, "trace", []string{"wait <nil>", "other"}, trace)
}

// Mirrors test_locks.py EventTests.test_wait_cancel: a waiter cancelled
// by a callback returns the cancellation; a later Set has no one to wake
// and a new waiter still works.
func TestEventWaitCancel(t *testing.T) {
	var trace []string
	runMain(t, func(ctx context.Context) error {
		var ev loop.Event
		l, err := loop.RunningLoop(ctx)
		if err != nil {
			return err
		}
		wait := loop.Go(ctx, ev.Wait)
		l.CallSoon(func() { wait.Cancel("") })
		_, err = wait.Await(ctx)
		trace = append(trace, fmt.Sprintf("cancelled %v %v", isCancelled(err), wait.Cancelled()))
		w2 := loop.Go(ctx, ev.Wait)
		sleep0(ctx)
		ev.Set()
		_, err = w2.Await(ctx)
		trace = append(trace, fmt.Sprintf("second waiter %v", err))
		return nil
	})
	sameAs(t, "trace", []string{"cancelled true true", "second waiter <nil>"}, trace)
}

// Mirrors test_locks.py EventTests.test_clear: Set and Clear flip IsSet.
func TestEventClear(t *testing.T) {
	var ev loop.Event
	got := []bool{ev.IsSet()}
	ev.Set()
	got = append(got, ev.IsSet())
	ev.Clear()
	got = append(got, ev.IsSet())
	sameAs(t, "IsSet", []bool{false, true, false}, got)
}

// Mirrors test_locks.py EventTests.test_clear_with_waiters and invariant
// I69: a waiter woken by Set returns even though Clear follows at once;
// setting twice more wakes it once.
func TestEventClearWithWaiters(t *testing.T) {
	var trace []string
	runMain(t, func(ctx context.Context) error {
		var ev loop.Event
		var result []int
		tk := loop.Go(ctx, func(ctx context.Context) error {
			if err := ev.Wait(ctx); err != nil {
				return err
			}
			result = append(result, 1)
			return nil
		})
		sleep0(ctx)
		trace = append(trace, fmt.Sprint(result))
		ev.Set()
		ev.Clear()
		trace = append(trace, fmt.Sprintf("is set %v", ev.IsSet()))
		ev.Set()
		ev.Set()
		sleep0(ctx)
		trace = append(trace, fmt.Sprintf("%v done %v", result, tk.Done()))
		_, err := tk.Await(ctx)
		return err
	})
	sameAs(t, "trace", []string{"[]", "is set false", "[1] done true"}, trace)
}

// Mirrors invariant I73 for Event (test_locks.py
// ConditionTests.test_ambiguous_loops): an Event waited on in loop A
// refuses a waiter of loop B.
func TestEventDifferentLoop(t *testing.T) {
	var ev loop.Event
	runMain(t, func(ctx context.Context) error {
		loop.Go(ctx, ev.Wait)
		sleep0(ctx)
		return nil
	})
	var err error
	runMain(t, func(ctx context.Context) error {
		err = ev.Wait(ctx)
		return nil
	})
	if !errors.Is(err, loop.ErrDifferentLoop) {
		t.Errorf("Wait from loop B: %v, want ErrDifferentLoop", err)
	}
}

// ------------------------------------------------------------ Condition

// Mirrors test_locks.py ConditionTests.test_wait: notified waiters return
// only once they hold the lock again, in FIFO order, one per release.
func TestConditionWait(t *testing.T) {
	var trace []string
	runMain(t, func(ctx context.Context) error {
		var cond loop.Condition
		var result []int
		snap := func(label string) {
			trace = append(trace, fmt.Sprintf("%s %v locked=%v", label, result, cond.Locked()))
		}
		c := func(i int) func(ctx context.Context) error {
			return func(ctx context.Context) error {
				if err := cond.Acquire(ctx); err != nil {
					return err
				}
				if err := cond.Wait(ctx); err != nil {
					return err
				}
				result = append(result, i)
				return nil
			}
		}
		t1, t2, t3 := loop.Go(ctx, c(1)), loop.Go(ctx, c(2)), loop.Go(ctx, c(3))
		sleep0(ctx)
		snap("waiting")
		if err := cond.Acquire(ctx); err != nil {
			return err
		}
		cond.Notify(1)
		sleep0(ctx)
		snap("notify(1)")
		cond.Release()
		sleep0(ctx)
		snap("release")
		cond.Notify(2)
		sleep0(ctx)
		snap("notify(2)")
		cond.Release()
		sleep0(ctx)
		snap("release")
		cond.Release()
		sleep0(ctx)
		snap("release")
		noErrs(t, awaitAll(ctx, t1, t2, t3))
		return nil
	})
	sameAs(t, "trace", []string{
		"waiting [] locked=false",
		"notify(1) [] locked=true",
		"release [1] locked=true",
		"notify(2) [1] locked=true",
		"release [1 2] locked=true",
		"release [1 2 3] locked=true",
	}, trace)
}

// Mirrors test_locks.py ConditionTests.test_wait_cancel and invariant
// I70: a task cancelled in Wait gets the cancellation but holds the lock
// again when Wait returns.
func TestConditionWaitCancel(t *testing.T) {
	var trace []string
	runMain(t, func(ctx context.Context) error {
		var cond loop.Condition
		l, err := loop.RunningLoop(ctx)
		if err != nil {
			return err
		}
		if err := cond.Acquire(ctx); err != nil {
			return err
		}
		wait := loop.Go(ctx, func(ctx context.Context) error {
			err := cond.Wait(ctx)
			trace = append(trace, fmt.Sprintf("wait returned cancelled=%v holding=%v", isCancelled(err), cond.Locked()))
			return err
		})
		l.CallSoon(func() { wait.Cancel("") })
		_, err = wait.Await(ctx)
		trace = append(trace, fmt.Sprintf("task cancelled %v %v, locked %v", isCancelled(err), wait.Cancelled(), cond.Locked()))
		// No waiter is left behind: Notify finds no one, and the
		// lock (held by the cancelled task's Wait) can be released.
		if err := cond.Notify(1); err != nil {
			return err
		}
		return cond.Release()
	})
	sameAs(t, "trace", []string{
		"wait returned cancelled=true holding=true",
		"task cancelled true true, locked true",
	}, trace)
}

// Mirrors test_locks.py ConditionTests.test_wait_cancel_contested: the
// waiter is notified, then cancelled while the lock it must re-acquire is
// held by another task; when Wait returns, the waiter holds the lock.
func TestConditionWaitCancelContested(t *testing.T) {
	var trace []string
	runMain(t, func(ctx context.Context) error {
		var cond loop.Condition
		l, err := loop.RunningLoop(ctx)
		if err != nil {
			return err
		}
		if err := cond.Acquire(ctx); err != nil {
			return err
		}
		trace = append(trace, fmt.Sprintf("locked %v", cond.Locked()))
		waitTask := loop.Go(ctx, func(ctx context.Context) error {
			err := cond.Wait(ctx)
			trace = append(trace, fmt.Sprintf("wait returned cancelled=%v locked=%v", isCancelled(err), cond.Locked()))
			return err
		})
		sleep0(ctx)
		trace = append(trace, fmt.Sprintf("locked %v", cond.Locked()))
		if err := cond.Acquire(ctx); err != nil {
			return err
		}
		cond.Notify(1)
		l.CallSoon(func() { waitTask.Cancel("") })
		l.CallSoon(func() { cond.Release() })
		_, err = waitTask.Await(ctx)
		trace = append(trace, fmt.Sprintf("task err cancelled=%v, locked %v", isCancelled(err), cond.Locked()))
		return nil
	})
	sameAs(t, "trace", []string{
		"locked true", "locked false",
		"wait returned cancelled=true locked=true",
		"task err cancelled=true, locked true",
	}, trace)
}

// Mirrors test_locks.py ConditionTests.test_wait_cancel_after_notify
// (bpo-32841): cancelled after being notified, while waiting for the lock,
// the task ends cancelled once it has the lock, and releases it.
func TestConditionWaitCancelAfterNotify(t *testing.T) {
	var trace []string
	runMain(t, func(ctx context.Context) error {
		var cond loop.Condition
		waited := false
		waiter := loop.Go(ctx, func(ctx context.Context) error {
			if err := cond.Acquire(ctx); err != nil {
				return err
			}
			defer cond.Release()
			waited = true
			return cond.Wait(ctx)
		})
		sleep0(ctx)
		if err := cond.Acquire(ctx); err != nil {
			return err
		}
		cond.Notify(1)
		sleep0(ctx)
		waiter.Cancel("")
		sleep0(ctx)
		cond.Release()
		sleep0(ctx)
		trace = append(trace, fmt.Sprintf("cancelled %v, waited %v, locked %v", waiter.Cancelled(), waited, cond.Locked()))
		return nil
	})
	sameAs(t, "trace", []string{"cancelled true, waited true, locked false"}, trace)
}

// Mirrors test_locks.py ConditionTests.test_wait_unacquired,
// test_notify_unacquired, test_notify_all_unacquired and
// test_wait_for_unacquired: without the lock, Wait, Notify, NotifyAll
// and a WaitFor that has to wait return ErrConditionNotLocked; a WaitFor
// whose predicate is already true returns nil.
func TestConditionWithoutLock(t *testing.T) {
	var got []string
	runMain(t, func(ctx context.Context) error {
		var cond loop.Condition
		show := func(name string, err error) {
			got = append(got, fmt.Sprintf("%s: %v", name, errors.Is(err, loop.ErrConditionNotLocked)))
		}
		show("Wait", cond.Wait(ctx))
		show("Notify", cond.Notify(1))
		show("NotifyAll", cond.NotifyAll())
		show("WaitFor(true)", cond.WaitFor(ctx, func() bool { return true }))
		show("WaitFor(false)", cond.WaitFor(ctx, func() bool { return false }))
		got = append(got, fmt.Sprintf("locked %v", cond.Locked()))
		return nil
	})
	sameAs(t, "errors", []string{
		"Wait: true", "Notify: true", "NotifyAll: true", "WaitFor(true): false", "WaitFor(false): true",
		"locked false",
	}, got)
	if err := (&loop.Condition{}).Wait(context.Background()); !strings.Contains(err.Error(), "cannot wait on un-acquired lock") {
		t.Errorf("message %q", err)
	}
	if err := (&loop.Condition{}).Notify(1); !strings.Contains(err.Error(), "cannot notify on un-acquired lock") {
		t.Errorf("message %q", err)
	}
}

// Mirrors test_locks.py ConditionTests.test_wait_for: WaitFor returns
// only after a notification finds the predicate true.
func TestConditionWaitFor(t *testing.T) {
	var trace []string
	runMain(t, func(ctx context.Context) error {
		var cond loop.Condition
		presult := false
		calls := 0
		predicate := func() bool { calls++; return presult }
		var result []int
		tk := loop.Go(ctx, func(ctx context.Context) error {
			if err := cond.Acquire(ctx); err != nil {
				return err
			}
			if err := cond.WaitFor(ctx, predicate); err != nil {
				return err
			}
			result = append(result, 1)
			return cond.Release()
		})
		sleep0(ctx)
		trace = append(trace, fmt.Sprintf("%v calls %d", result, calls))
		for _, p := range []bool{false, true} {
			presult = p
			if err := cond.Acquire(ctx); err != nil {
				return err
			}
			cond.Notify(1)
			cond.Release()
			sleep0(ctx)
			trace = append(trace, fmt.Sprintf("%v calls %d", result, calls))
		}
		_, err := tk.Await(ctx)
		trace = append(trace, fmt.Sprintf("done %v locked %v", err, cond.Locked()))
		return nil
	})
	sameAs(t, "trace", []string{"[] calls 1", "[] calls 2", "[1] calls 3", "done <nil> locked false"}, trace)
}

// Mirrors test_locks.py ConditionTests.test_notify: Notify(1) wakes one
// waiter; Notify(1) then Notify(2048) wake the remaining two, FIFO.
func TestConditionNotify(t *testing.T) {
	var trace []string
	runMain(t, func(ctx context.Context) error {
		var cond loop.Condition
		var result []int
		c := func(i int) func(ctx context.Context) error {
			return func(ctx context.Context) error {
				if err := cond.Acquire(ctx); err != nil {
					return err
				}
				if err := cond.Wait(ctx); err != nil {
					return err
				}
				result = append(result, i)
				return cond.Release()
			}
		}
		ts := []*loop.Task[struct{}]{loop.Go(ctx, c(1)), loop.Go(ctx, c(2)), loop.Go(ctx, c(3))}
		sleep0(ctx)
		trace = append(trace, fmt.Sprint(result))
		cond.Acquire(ctx)
		cond.Notify(1)
		cond.Release()
		sleep0(ctx)
		trace = append(trace, fmt.Sprint(result))
		cond.Acquire(ctx)
		cond.Notify(1)
		cond.Notify(2048)
		cond.Release()
		sleep0(ctx)
		trace = append(trace, fmt.Sprint(result))
		noErrs(t, awaitAll(ctx, ts...))
		return nil
	})
	sameAs(t, "trace", []string{"[]", "[1]", "[1 2 3]"}, trace)
}

// Mirrors invariant I70 ("notify(2) wakes the first two waiters FIFO") over
// test_locks.py ConditionTests.test_notify: of four waiters, Notify(2)
// wakes exactly the first two, in order.
func TestConditionNotifyTwoFIFO(t *testing.T) {
	var result []int
	runMain(t, func(ctx context.Context) error {
		var cond loop.Condition
		var ts []*loop.Task[struct{}]
		for i := range 4 {
			ts = append(ts, loop.Go(ctx, func(ctx context.Context) error {
				if err := cond.Acquire(ctx); err != nil {
					return err
				}
				defer cond.Release()
				if err := cond.Wait(ctx); err != nil {
					return err
				}
				result = append(result, i)
				return nil
			}))
		}
		sleep0(ctx)
		cond.Acquire(ctx)
		cond.Notify(2)
		cond.Release()
		for range 5 {
			sleep0(ctx)
		}
		result = append(result, -1)
		cond.Acquire(ctx)
		cond.NotifyAll()
		cond.Release()
		noErrs(t, awaitAll(ctx, ts...))
		return nil
	})
	sameAs(t, "result", []int{0, 1, -1, 2, 3}, result)
}

// Mirrors test_locks.py ConditionTests.test_notify_all: NotifyAll wakes
// every waiter, in FIFO order.
func TestConditionNotifyAll(t *testing.T) {
	var result []int
	runMain(t, func(ctx context.Context) error {
		var cond loop.Condition
		var ts []*loop.Task[struct{}]
		for i := 1; i <= 2; i++ {
			ts = append(ts, loop.Go(ctx, func(ctx context.Context) error {
				cond.Acquire(ctx)
				if err := cond.Wait(ctx); err != nil {
					return err
				}
				result = append(result, i)
				return cond.Release()
			}))
		}
		sleep0(ctx)
		cond.Acquire(ctx)
		cond.NotifyAll()
		cond.Release()
		sleep0(ctx)
		result = append(result, 0)
		noErrs(t, awaitAll(ctx, ts...))
		return nil
	})
	sameAs(t, "result", []int{1, 2, 0}, result)
}

// Mirrors test_locks.py ConditionTests.test_explicit_lock: a Condition
// over a shared Lock and the Lock itself report the same state, whichever
// is used to acquire.
func TestConditionExplicitLock(t *testing.T) {
	var got []string
	runMain(t, func(ctx context.Context) error {
		var lk loop.Lock
		cond := loop.NewCondition(&lk)
		state := func(label string) { got = append(got, fmt.Sprintf("%s %v %v", label, lk.Locked(), cond.Locked())) }
		state("start")
		cond.Acquire(ctx)
		state("cond acquired")
		cond.Release()
		state("cond released")
		lk.Acquire(ctx)
		state("lock acquired")
		lk.Release()
		state("lock released")
		own := loop.NewCondition(nil)
		own.Acquire(ctx)
		got = append(got, fmt.Sprintf("own lock %v, shared %v", own.Locked(), lk.Locked()))
		return own.Release()
	})
	sameAs(t, "states", []string{
		"start false false", "cond acquired true true", "cond released false false",
		"lock acquired true true", "lock released false false", "own lock true, shared false",
	}, got)
}

// Mirrors test_locks.py ConditionTests.test_ambiguous_loops:
// wrong_loop_in_lock: a free Lock bound to loop A is taken by loop B's fast
// path, but a Condition over it that has to wait for it gets
// ErrDifferentLoop; wrong_loop_in_cond: a Condition bound to loop A
// refuses Wait in loop B, and its lock is still held when Wait returns.
func TestConditionAmbiguousLoops(t *testing.T) {
	var lk loop.Lock
	runMain(t, func(ctx context.Context) error {
		lk.Acquire(ctx)
		w := loop.Go(ctx, func(ctx context.Context) error {
			if err := lk.Acquire(ctx); err != nil { // binds lk to loop A
				return err
			}
			return lk.Release()
		})
		sleep0(ctx)
		lk.Release()
		_, err := w.Await(ctx)
		return err
	})
	var trace []string
	runMain(t, func(ctx context.Context) error {
		err := lk.Acquire(ctx)
		trace = append(trace, fmt.Sprintf("fast path %v", err))
		cond := loop.NewCondition(&lk)
		err = cond.Acquire(ctx)
		trace = append(trace, fmt.Sprintf("cond acquire: different loop %v", errors.Is(err, loop.ErrDifferentLoop)))
		return lk.Release()
	})

	var lk2 loop.Lock
	c := loop.NewCondition(&lk2)
	runMain(t, func(ctx context.Context) error {
		w := loop.Go(ctx, func(ctx context.Context) error {
			c.Acquire(ctx)
			defer c.Release()
			return c.Wait(ctx) // binds c (not lk2) to loop A
		})
		sleep0(ctx)
		c.Acquire(ctx)
		c.Notify(1)
		c.Release()
		_, err := w.Await(ctx)
		return err
	})
	runMain(t, func(ctx context.Context) error {
		err := lk2.Acquire(ctx)
		trace = append(trace, fmt.Sprintf("lock %v", err))
		err = c.Wait(ctx)
		trace = append(trace, fmt.Sprintf("wait: different loop %v, locked %v", errors.Is(err, loop.ErrDifferentLoop), lk2.Locked()))
		return lk2.Release()
	})
	sameAs(t, "trace", []string{
		"fast path <nil>", "cond acquire: different loop true",
		"lock <nil>", "wait: different loop true, locked true",
	}, trace)
}

// Mirrors test_locks.py ConditionTests.test_timeout_in_block: a Wait cut
// short by a timeout returns ErrTimeout, holding the lock.
func TestConditionTimeoutInBlock(t *testing.T) {
	var trace []string
	runMain(t, func(ctx context.Context) error {
		var cond loop.Condition
		cond.Acquire(ctx)
		err := loop.WithTimeout(ctx, 500*time.Millisecond, cond.Wait)
		trace = append(trace, fmt.Sprintf("timeout %v, locked %v", errors.Is(err, loop.ErrTimeout), cond.Locked()))
		return cond.Release()
	})
	sameAs(t, "trace", []string{"timeout true, locked true"}, trace)
}

// Mirrors test_locks.py ConditionTests.test_cancelled_error_wakeup: a
// task cancelled while waiting for the notification gets its own
// cancellation back, message intact.
func TestConditionCancelledErrorWakeup(t *testing.T) {
	var trace []string
	runMain(t, func(ctx context.Context) error {
		var cond loop.Condition
		var raised error
		task := loop.Go(ctx, func(ctx context.Context) error {
			cond.Acquire(ctx)
			defer cond.Release()
			raised = cond.WaitFor(ctx, func() bool { return false })
			return raised
		})
		sleep0(ctx)
		task.Cancel("foo")
		_, err := task.Await(ctx)
		trace = append(trace, fmt.Sprintf("msg %q, same %v, cancelled %v", loop.CancelMessage(err), err == raised, task.Cancelled()))
		return nil
	})
	sameAs(t, "trace", []string{`msg "foo", same true, cancelled true`}, trace)
}

// Mirrors test_locks.py ConditionTests.test_cancelled_error_re_aquire: a
// task cancelled while re-acquiring the lock after a notification gets its
// own cancellation back, once it holds the lock again.
func TestConditionCancelledErrorReacquire(t *testing.T) {
	var trace []string
	runMain(t, func(ctx context.Context) error {
		var cond loop.Condition
		var raised error
		wake := false
		task := loop.Go(ctx, func(ctx context.Context) error {
			cond.Acquire(ctx)
			defer cond.Release()
			raised = cond.WaitFor(ctx, func() bool { return wake })
			trace = append(trace, fmt.Sprintf("holding %v", cond.Locked()))
			return raised
		})
		sleep0(ctx)
		cond.Acquire(ctx)
		wake = true
		cond.Notify(1)
		sleep0(ctx)
		task.Cancel("foo")
		cond.Release()
		_, err := task.Await(ctx)
		trace = append(trace, fmt.Sprintf("msg %q, same %v, cancelled %v", loop.CancelMessage(err), err == raised, task.Cancelled()))
		return nil
	})
	sameAs(t, "trace", []string{"holding true", `msg "foo", same true, cancelled true`}, trace)
}

// condConsumers is the consumer of test_cancelled_wakeup(_relock): it
// takes a unit of state whenever state > 0, and stops when it is < 0.
func condConsumers(ctx context.Context, cond *loop.Condition, state *int) []*loop.Task[struct{}] {
	consumer := func(ctx context.Context) error {
		if err := cond.Acquire(ctx); err != nil {
			return err
		}
		defer cond.Release()
		for {
			if err := cond.WaitFor(ctx, func() bool { return *state != 0 }); err != nil {
				return err
			}
			if *state < 0 {
				return nil
			}
			*state--
		}
	}
	return []*loop.Task[struct{}]{loop.Go(ctx, consumer), loop.Go(ctx, consumer)}
}

// Mirrors test_locks.py ConditionTests.test_cancelled_wakeup: the notified
// consumer is cancelled before it runs; its wake-up passes to the other
// consumer, so the item is consumed (no lost wake-up).
func TestConditionCancelledWakeup(t *testing.T) {
	var trace []string
	runMain(t, func(ctx context.Context) error {
		var cond loop.Condition
		state := 0
		c := condConsumers(ctx, &cond, &state)
		sleep0(ctx)
		cond.Acquire(ctx)
		state++
		cond.Notify(1)
		c[0].Cancel("")
		err := loop.WithTimeout(ctx, 10*time.Millisecond, func(ctx context.Context) error {
			return cond.WaitFor(ctx, func() bool { return state == 0 })
		})
		if err != nil && !errors.Is(err, loop.ErrTimeout) {
			t.Errorf("wait_for: %v", err)
		}
		trace = append(trace, fmt.Sprintf("state %d", state))
		state = -1
		cond.NotifyAll()
		cond.Release()
		_, err = c[1].Await(ctx)
		trace = append(trace, fmt.Sprintf("c1 %v, c0 cancelled %v", err, c[0].Cancelled()))
		return nil
	})
	sameAs(t, "trace", []string{"state 0", "c1 <nil>, c0 cancelled true"}, trace)
}

// Mirrors test_locks.py ConditionTests.test_cancelled_wakeup_relock: the
// notified consumer is cancelled while it waits to re-acquire the lock;
// the wake-up still passes to the other consumer.
func TestConditionCancelledWakeupRelock(t *testing.T) {
	var trace []string
	runMain(t, func(ctx context.Context) error {
		var cond loop.Condition
		state := 0
		c := condConsumers(ctx, &cond, &state)
		sleep0(ctx)
		cond.Acquire(ctx)
		state++
		cond.Notify(1)
		sleep0(ctx) // c[0] wakes and queues for the lock
		c[0].Cancel("")
		err := loop.WithTimeout(ctx, 10*time.Millisecond, func(ctx context.Context) error {
			return cond.WaitFor(ctx, func() bool { return state == 0 })
		})
		if err != nil && !errors.Is(err, loop.ErrTimeout) {
			t.Errorf("wait_for: %v", err)
		}
		trace = append(trace, fmt.Sprintf("state %d", state))
		state = -1
		cond.NotifyAll()
		cond.Release()
		_, err = c[1].Await(ctx)
		trace = append(trace, fmt.Sprintf("c1 %v, c0 cancelled %v", err, c[0].Cancelled()))
		return nil
	})
	sameAs(t, "trace", []string{"state 0", "c1 <nil>, c0 cancelled true"}, trace)
}

// Mirrors Condition.wait's re-acquire loop in CPython's locks.py, which
// retries only on CancelledError "since we don't want any other (fatal)
// errors with the future to cause us to spin": a loop closed under a task
// that waits in Wait while another task holds the lock ends that task
// instead of spinning: Close returns, and the waiting task ends cancelled
// without Wait ever returning success.
func TestConditionWaitLoopClosedDoesNotSpin(t *testing.T) {
	l := loop.New(loop.WithVirtualClock())
	var cond loop.Condition
	var waitErr error
	returned := false
	var waiter *loop.Task[struct{}]
	main := loop.CreateTask(l, func(ctx context.Context) (struct{}, error) {
		cond.Acquire(ctx)
		waiter = loop.Go(ctx, func(ctx context.Context) error {
			cond.Acquire(ctx)
			waitErr = cond.Wait(ctx)
			returned = true
			return waitErr
		})
		cond.Release()
		sleep0(ctx)
		cond.Acquire(ctx)
		cond.Notify(1)
		sleep0(ctx) // the waiter now queues for the lock main keeps
		return struct{}{}, nil
	})
	if err := l.RunUntilComplete(main); err != nil {
		t.Fatal(err)
	}
	l.SetExceptionHandler(func(*loop.Loop, loop.ExceptionContext) {})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if !waiter.Cancelled() || returned && !isCancelled(waitErr) {
		t.Errorf("waiter cancelled %v; Wait returned %v, err %v", waiter.Cancelled(), returned, waitErr)
	}
}

// ------------------------------------------------------------ Semaphore

// Mirrors test_locks.py SemaphoreTests.test_initial_value_zero and
// test_semaphore: Semaphore(0) is locked, Semaphore(1) is not.
func TestSemaphoreInitialValue(t *testing.T) {
	s0, err := loop.NewSemaphore(0)
	if err != nil {
		t.Fatal(err)
	}
	s1, err := loop.NewSemaphore(1)
	if err != nil {
		t.Fatal(err)
	}
	sameAs(t, "locked, value", []any{true, 0, false, 1}, []any{s0.Locked(), s0.Value(), s1.Locked(), s1.Value()})
}

// Mirrors test_locks.py SemaphoreTests.test_semaphore_value and
// BarrierTests.test_barrier_parties: Semaphore(-1), BoundedSemaphore(-1),
// Barrier(0) and Barrier(-4) are errors (ValueError in asyncio).
func TestConstructorValueErrors(t *testing.T) {
	var got []string
	_, err := loop.NewSemaphore(-1)
	got = append(got, fmt.Sprint(err))
	_, err = loop.NewBoundedSemaphore(-1)
	got = append(got, fmt.Sprint(err))
	_, err = loop.NewBarrier(0)
	got = append(got, fmt.Sprint(err))
	_, err = loop.NewBarrier(-4)
	got = append(got, fmt.Sprint(err))
	b, err := loop.NewBarrier(5)
	got = append(got, fmt.Sprint(err, b.Parties()))
	sameAs(t, "errors", []string{
		"loop: Semaphore initial value must be >= 0",
		"loop: Semaphore initial value must be >= 0",
		"loop: parties must be > 0",
		"loop: parties must be > 0",
		"<nil> 5",
	}, got)
}

// Mirrors test_locks.py SemaphoreTests.test_acquire: releases consumed by
// woken waiters keep the value at 0, and a task that arrives meanwhile
// waits behind them.
func TestSemaphoreAcquire(t *testing.T) {
	var trace []string
	runMain(t, func(ctx context.Context) error {
		sem, _ := loop.NewSemaphore(3)
		var result []int
		sem.Acquire(ctx)
		sem.Acquire(ctx)
		trace = append(trace, fmt.Sprintf("locked %v", sem.Locked()))
		c := func(i int) func(ctx context.Context) error {
			return func(ctx context.Context) error {
				if err := sem.Acquire(ctx); err != nil {
					return err
				}
				result = append(result, i)
				return nil
			}
		}
		t1, t2, t3 := loop.Go(ctx, c(1)), loop.Go(ctx, c(2)), loop.Go(ctx, c(3))
		sleep0(ctx)
		trace = append(trace, fmt.Sprintf("%v locked %v value %d", result, sem.Locked(), sem.Value()))
		t4 := loop.Go(ctx, c(4))
		sem.Release()
		sem.Release()
		trace = append(trace, fmt.Sprintf("value %d", sem.Value()))
		sleep0(ctx)
		trace = append(trace, fmt.Sprintf("%v locked %v value %d", result, sem.Locked(), sem.Value()))
		trace = append(trace, fmt.Sprint(t1.Done(), t2.Done(), t3.Done(), t4.Done()))
		sem.Release()
		noErrs(t, awaitAll(ctx, t2, t3, t4))
		trace = append(trace, fmt.Sprint(result))
		return nil
	})
	sameAs(t, "trace", []string{
		"locked false",
		"[1] locked true value 0",
		"value 0",
		"[1 2 3] locked true value 0",
		"true true true false",
		"[1 2 3 4]",
	}, trace)
}

// Mirrors test_locks.py SemaphoreTests.test_acquire_cancel: a cancelled
// waiter leaves the semaphore usable: the next Release goes to the next
// Acquire.
func TestSemaphoreAcquireCancel(t *testing.T) {
	var trace []string
	runMain(t, func(ctx context.Context) error {
		sem, _ := loop.NewSemaphore(1)
		l, _ := loop.RunningLoop(ctx)
		sem.Acquire(ctx)
		acq := loop.Go(ctx, sem.Acquire)
		l.CallSoon(func() { acq.Cancel("") })
		_, err := acq.Await(ctx)
		trace = append(trace, fmt.Sprintf("cancelled %v, locked %v, value %d", isCancelled(err), sem.Locked(), sem.Value()))
		sem.Release()
		trace = append(trace, fmt.Sprintf("locked %v, value %d", sem.Locked(), sem.Value()))
		return sem.Acquire(ctx)
	})
	sameAs(t, "trace", []string{"cancelled true, locked true, value 0", "locked false, value 1"}, trace)
}

// Mirrors test_locks.py SemaphoreTests.test_acquire_cancel_before_awoken:
// two waiters at the head are cancelled before a release; the release goes
// to the third, not the fourth.
func TestSemaphoreAcquireCancelBeforeAwoken(t *testing.T) {
	var trace []string
	runMain(t, func(ctx context.Context) error {
		sem, _ := loop.NewSemaphore(0)
		ts := []*loop.Task[struct{}]{
			loop.Go(ctx, sem.Acquire), loop.Go(ctx, sem.Acquire),
			loop.Go(ctx, sem.Acquire), loop.Go(ctx, sem.Acquire),
		}
		sleep0(ctx)
		ts[0].Cancel("")
		ts[1].Cancel("")
		sem.Release()
		sleep0(ctx)
		sleep0(ctx)
		trace = append(trace, fmt.Sprintf("t3 done %v, t4 done %v, value %d", ts[2].Done(), ts[3].Done(), sem.Value()))
		ts[2].Cancel("")
		ts[3].Cancel("")
		sleep0(ctx)
		trace = append(trace, fmt.Sprintf("t3 err %v, t4 cancelled %v", ts[2].Err(), ts[3].Cancelled()))
		return nil
	})
	sameAs(t, "trace", []string{"t3 done true, t4 done false, value 0", "t3 err <nil>, t4 cancelled true"}, trace)
}

// Mirrors I68 (a waiter cancelled after being woken passes the wake-up on;
// CPython's Semaphore.acquire "undo the bookkeeping"): the release goes to
// the first waiter, which is cancelled before it runs; the unit goes back
// and the second waiter gets it; the value never goes negative or leaks.
func TestSemaphoreAcquireCancelAfterRelease(t *testing.T) {
	var trace []string
	runMain(t, func(ctx context.Context) error {
		sem, _ := loop.NewSemaphore(0)
		t1 := loop.Go(ctx, sem.Acquire)
		t2 := loop.Go(ctx, sem.Acquire)
		t3 := loop.Go(ctx, sem.Acquire)
		sleep0(ctx)
		sem.Release() // wakes t1, taking the unit for it
		trace = append(trace, fmt.Sprintf("after release value %d locked %v", sem.Value(), sem.Locked()))
		t1.Cancel("")
		sleep0(ctx)
		sleep0(ctx)
		trace = append(trace, fmt.Sprintf("t1 cancelled %v, t2 done %v, t3 done %v, value %d",
			t1.Cancelled(), t2.Done(), t3.Done(), sem.Value()))
		sem.Release()
		_, err := t3.Await(ctx)
		trace = append(trace, fmt.Sprintf("t3 %v value %d", err, sem.Value()))
		return nil
	})
	sameAs(t, "trace", []string{
		"after release value 0 locked true",
		"t1 cancelled true, t2 done true, t3 done false, value 0",
		"t3 <nil> value 0",
	}, trace)
}

// Mirrors test_locks.py SemaphoreTests.test_acquire_hang: the first waiter
// is cancelled just before a release; the second gets the unit.
func TestSemaphoreAcquireHang(t *testing.T) {
	var trace []string
	runMain(t, func(ctx context.Context) error {
		sem, _ := loop.NewSemaphore(0)
		t1 := loop.Go(ctx, sem.Acquire)
		t2 := loop.Go(ctx, sem.Acquire)
		sleep0(ctx)
		t1.Cancel("")
		sem.Release()
		sleep0(ctx)
		sleep0(ctx)
		trace = append(trace, fmt.Sprintf("locked %v, t2 done %v, err %v", sem.Locked(), t2.Done(), t2.Err()))
		return nil
	})
	sameAs(t, "trace", []string{"locked true, t2 done true, err <nil>"}, trace)
}

// Mirrors test_locks.py SemaphoreTests.test_acquire_no_hang: a waiter
// cancelled right after the holder releases does not keep the unit.
func TestSemaphoreAcquireNoHang(t *testing.T) {
	var trace []string
	runMain(t, func(ctx context.Context) error {
		sem, _ := loop.NewSemaphore(1)
		var t2 *loop.Task[struct{}]
		t1 := loop.Go(ctx, func(ctx context.Context) error {
			if err := sem.Acquire(ctx); err != nil {
				return err
			}
			sleep0(ctx)
			sem.Release()
			t2.Cancel("")
			return nil
		})
		t2 = loop.Go(ctx, func(ctx context.Context) error {
			if err := sem.Acquire(ctx); err != nil {
				return err
			}
			defer sem.Release()
			t.Error("t2 acquired")
			return nil
		})
		errs := awaitAll(ctx, t1, t2)
		trace = append(trace, fmt.Sprintf("r1 %v, r2 cancelled %v", errs[0], isCancelled(errs[1])))
		_, err := loop.WaitFor(ctx, loop.Go(ctx, sem.Acquire), time.Second)
		trace = append(trace, fmt.Sprintf("acquire %v", err))
		return nil
	})
	sameAs(t, "trace", []string{"r1 <nil>, r2 cancelled true", "acquire <nil>"}, trace)
}

// Mirrors test_locks.py SemaphoreTests.test_release_not_acquired and
// invariant I71: a BoundedSemaphore released above its initial value
// returns ErrBoundedSemaphoreOverRelease (ValueError), and the value
// stays; BoundedSemaphore(0) can never be released.
func TestBoundedSemaphoreOverRelease(t *testing.T) {
	var got []string
	runMain(t, func(ctx context.Context) error {
		sem, _ := loop.NewBoundedSemaphore(1)
		got = append(got, fmt.Sprint(errors.Is(sem.Release(), loop.ErrBoundedSemaphoreOverRelease), sem.Value()))
		sem.Acquire(ctx)
		got = append(got, fmt.Sprint(sem.Release(), sem.Value()))
		got = append(got, fmt.Sprint(errors.Is(sem.Release(), loop.ErrBoundedSemaphoreOverRelease), sem.Value()))
		zero, _ := loop.NewBoundedSemaphore(0)
		got = append(got, fmt.Sprint(errors.Is(zero.Release(), loop.ErrBoundedSemaphoreOverRelease), zero.Value()))
		return nil
	})
	sameAs(t, "results", []string{"true 1", "<nil> 1", "true 1", "true 0"}, got)
}

// Mirrors test_locks.py SemaphoreTests.test_release_no_waiters and
// invariant I71's over-release: a plain Semaphore may be released above
// its initial value (the value goes to 3).
func TestSemaphoreReleaseNoWaiters(t *testing.T) {
	var got []string
	runMain(t, func(ctx context.Context) error {
		sem, _ := loop.NewSemaphore(1)
		sem.Acquire(ctx)
		got = append(got, fmt.Sprint(sem.Locked(), sem.Value()))
		sem.Release()
		got = append(got, fmt.Sprint(sem.Locked(), sem.Value()))
		sem.Release()
		sem.Release()
		got = append(got, fmt.Sprint(sem.Locked(), sem.Value()))
		return nil
	})
	sameAs(t, "locked value", []string{"true 0", "false 1", "false 3"}, got)
}

// Mirrors test_locks.py SemaphoreTests.test_acquire_fifo_order: three tasks
// each take the semaphore twice, holding it across a 10ms sleep (virtual
// clock); the trace is strictly round-robin.
func TestSemaphoreAcquireFIFOOrder(t *testing.T) {
	var result []string
	runMain(t, func(ctx context.Context) error {
		sem, _ := loop.NewSemaphore(1)
		return loop.WithTaskGroup(ctx, func(ctx context.Context, tg *loop.TaskGroup) error {
			for _, tag := range []string{"c1", "c2", "c3"} {
				tg.Go(func(ctx context.Context) error {
					for _, n := range []string{"1", "2"} {
						if err := sem.Acquire(ctx); err != nil {
							return err
						}
						result = append(result, tag+"_"+n)
						if err := loop.Sleep(ctx, 10*time.Millisecond); err != nil {
							return err
						}
						sem.Release()
					}
					return nil
				})
			}
			return nil
		})
	})
	sameAs(t, "result", []string{"c1_1", "c2_1", "c3_1", "c1_2", "c2_2", "c3_2"}, result)
}

// Mirrors test_locks.py SemaphoreTests.test_acquire_fifo_order_2: a task
// that releases and re-acquires goes behind the waiters already queued.
func TestSemaphoreAcquireFIFOOrder2(t *testing.T) {
	var result []int
	runMain(t, func(ctx context.Context) error {
		sem, _ := loop.NewSemaphore(1)
		t1 := loop.Go(ctx, func(ctx context.Context) error {
			if err := sem.Acquire(ctx); err != nil {
				return err
			}
			result = append(result, 1)
			return nil
		})
		t2 := loop.Go(ctx, func(ctx context.Context) error {
			if err := sem.Acquire(ctx); err != nil {
				return err
			}
			result = append(result, 2)
			sem.Release()
			if err := sem.Acquire(ctx); err != nil {
				return err
			}
			result = append(result, 4)
			return nil
		})
		t3 := loop.Go(ctx, func(ctx context.Context) error {
			if err := sem.Acquire(ctx); err != nil {
				return err
			}
			result = append(result, 3)
			return nil
		})
		sleep0(ctx)
		sem.Release()
		sem.Release()
		noErrs(t, awaitAll(ctx, t1, t2, t3))
		return nil
	})
	sameAs(t, "result", []int{1, 2, 3, 4}, result)
}

// Mirrors test_locks.py SemaphoreTests.test_acquire_fifo_order_3: with the
// first waiter cancelled, two releases go to the other two in order.
func TestSemaphoreAcquireFIFOOrder3(t *testing.T) {
	var result []int
	runMain(t, func(ctx context.Context) error {
		sem, _ := loop.NewSemaphore(0)
		c := func(i int) func(ctx context.Context) error {
			return func(ctx context.Context) error {
				if err := sem.Acquire(ctx); err != nil {
					return err
				}
				result = append(result, i)
				return nil
			}
		}
		t1, t2, t3 := loop.Go(ctx, c(1)), loop.Go(ctx, c(2)), loop.Go(ctx, c(3))
		sleep0(ctx)
		t1.Cancel("")
		sleep0(ctx)
		sem.Release()
		sem.Release()
		errs := awaitAll(ctx, t1, t2, t3)
		if !isCancelled(errs[0]) || errs[1] != nil || errs[2] != nil {
			t.Errorf("errs %v", errs)
		}
		return nil
	})
	sameAs(t, "result", []int{2, 3}, result)
}

// Mirrors test_locks.py SemaphoreTests.test_acquire_fifo_order_4: a
// successful Acquire wakes every waiter the value allows, and a task it
// creates runs after them.
func TestSemaphoreAcquireFIFOOrder4(t *testing.T) {
	var result []int
	var trace []string
	runMain(t, func(ctx context.Context) error {
		sem, _ := loop.NewSemaphore(0)
		var t4 *loop.Task[struct{}]
		t1 := loop.Go(ctx, func(ctx context.Context) error {
			trace = append(trace, fmt.Sprintf("c1 value %d", sem.Value()))
			if err := sem.Acquire(ctx); err != nil {
				return err
			}
			trace = append(trace, fmt.Sprintf("c1 woke value %d", sem.Value()))
			t4 = loop.Go(ctx, func(ctx context.Context) error {
				result = append(result, 4)
				return nil
			})
			result = append(result, 1)
			return nil
		})
		t2 := loop.Go(ctx, func(ctx context.Context) error {
			sem.Release()
			sem.Release()
			sem.Release()
			trace = append(trace, fmt.Sprintf("c2 value %d locked %v", sem.Value(), sem.Locked()))
			if err := sem.Acquire(ctx); err != nil {
				return err
			}
			result = append(result, 2)
			return nil
		})
		t3 := loop.Go(ctx, func(ctx context.Context) error {
			if err := sem.Acquire(ctx); err != nil {
				return err
			}
			trace = append(trace, fmt.Sprintf("c3 locked %v", sem.Locked()))
			result = append(result, 3)
			return nil
		})
		sleep0(ctx)
		trace = append(trace, fmt.Sprintf("main value %d", sem.Value()))
		sleep0(ctx)
		noErrs(t, awaitAll(ctx, t1, t2, t3, t4))
		return nil
	})
	sameAs(t, "result", []int{1, 2, 3, 4}, result)
	sameAs(t, "trace", []string{
		"c1 value 0", "c2 value 2 locked true", "main value 2", "c1 woke value 0", "c3 locked true",
	}, trace)
}

// Mirrors invariant I71's no-barging trace ['waiter', 'barger'] (CPython
// gh-90155, SemaphoreTests.test_acquire_fifo_order_4): two releases leave
// the value at 1 while the woken waiter has not run yet; a task acquiring
// then still waits behind it.
func TestSemaphoreNoBarging(t *testing.T) {
	var trace []string
	runMain(t, func(ctx context.Context) error {
		sem, _ := loop.NewSemaphore(0)
		waiter := loop.Go(ctx, func(ctx context.Context) error {
			if err := sem.Acquire(ctx); err != nil {
				return err
			}
			trace = append(trace, "waiter")
			return nil
		})
		sleep0(ctx)
		sem.Release()
		sem.Release()
		trace = append(trace, fmt.Sprintf("value %d locked %v", sem.Value(), sem.Locked()))
		if err := sem.Acquire(ctx); err != nil {
			return err
		}
		trace = append(trace, "barger")
		_, err := waiter.Await(ctx)
		return err
	})
	sameAs(t, "trace", []string{"value 1 locked true", "waiter", "barger"}, trace)
}

// Mirrors invariant I71 on Semaphore.locked() (True when the value is 0
// or non-cancelled waiters exist) as CPython's SemaphoreTests check it
// around test_acquire_fifo_order_4: cancelled waiters do not count.
func TestSemaphoreLockedWithWaiters(t *testing.T) {
	var got []string
	runMain(t, func(ctx context.Context) error {
		sem, _ := loop.NewSemaphore(0)
		w := loop.Go(ctx, sem.Acquire)
		sleep0(ctx)
		sem.Release()
		sem.Release() // value 1, w woken but not yet run
		got = append(got, fmt.Sprintf("value %d locked %v", sem.Value(), sem.Locked()))
		sleep0(ctx)
		got = append(got, fmt.Sprintf("value %d locked %v", sem.Value(), sem.Locked()))
		sem2, _ := loop.NewSemaphore(0)
		w2 := loop.Go(ctx, sem2.Acquire)
		sleep0(ctx)
		w2.Cancel("")
		sem2.Release() // the only waiter is cancelled: value 1, free
		got = append(got, fmt.Sprintf("value %d locked %v", sem2.Value(), sem2.Locked()))
		noErrs(t, awaitAll(ctx, w))
		return nil
	})
	sameAs(t, "states", []string{"value 1 locked true", "value 1 locked false", "value 1 locked false"}, got)
}

// Mirrors invariant I73 for Semaphore: a Semaphore blocked on in loop A
// refuses a waiter of loop B with ErrDifferentLoop; the fast path of
// another loop still works while units are free.
func TestSemaphoreDifferentLoop(t *testing.T) {
	sem, _ := loop.NewSemaphore(1)
	runMain(t, func(ctx context.Context) error {
		sem.Acquire(ctx)
		w := loop.Go(ctx, sem.Acquire) // binds sem to loop A
		sleep0(ctx)
		w.Cancel("")
		if _, err := w.Await(ctx); !isCancelled(err) {
			t.Errorf("waiter: %v", err)
		}
		return sem.Release()
	})
	var got []string
	runMain(t, func(ctx context.Context) error {
		got = append(got, fmt.Sprintf("value %d", sem.Value()))
		got = append(got, fmt.Sprintf("fast path %v", sem.Acquire(ctx)))
		err := sem.Acquire(ctx)
		got = append(got, fmt.Sprintf("different loop %v", errors.Is(err, loop.ErrDifferentLoop)))
		return nil
	})
	sameAs(t, "results", []string{"value 1", "fast path <nil>", "different loop true"}, got)
}

// -------------------------------------------------------------- Barrier

// gatherBarrier runs n tasks of body and returns their results.
func gatherBarrier(ctx context.Context, n int, body func(ctx context.Context) (int, error)) ([]int, []error) {
	ts := make([]*loop.Task[int], n)
	for i := range ts {
		ts[i] = loop.Spawn(ctx, body)
	}
	res := make([]int, n)
	errs := make([]error, n)
	for i, tk := range ts {
		res[i], errs[i] = tk.Await(ctx)
	}
	return res, errs
}

// Mirrors test_locks.py BarrierTests.test_context_manager and invariant
// I72: the tasks passing a Barrier(3) get the distinct indices 0, 1, 2 in
// arrival order; afterwards nothing waits and the barrier is not broken.
func TestBarrierIndices(t *testing.T) {
	var got []string
	runMain(t, func(ctx context.Context) error {
		b, _ := loop.NewBarrier(3)
		res, errs := gatherBarrier(ctx, 3, b.Wait)
		noErrs(t, errs)
		got = append(got, fmt.Sprint(res, b.NWaiting(), b.Broken(), b.Parties()))
		return nil
	})
	sameAs(t, "results", []string{"[0 1 2] 0 false 3"}, got)
}

// Mirrors test_locks.py BarrierTests.test_filling_one_task and
// test_filling_one_task_twice: a Barrier(1) lets each task through alone,
// at index 0.
func TestBarrierFillingOneTask(t *testing.T) {
	var got []string
	runMain(t, func(ctx context.Context) error {
		b, _ := loop.NewBarrier(1)
		i, err := b.Wait(ctx)
		got = append(got, fmt.Sprint(i, err, b.NWaiting(), b.Broken()))
		t1 := loop.Spawn(ctx, b.Wait)
		sleep0(ctx)
		got = append(got, fmt.Sprint(b.NWaiting()))
		t2 := loop.Spawn(ctx, b.Wait)
		sleep0(ctx)
		r1, e1 := t1.Result()
		r2, e2 := t2.Result()
		got = append(got, fmt.Sprint(r1, e1, r2, e2, t1.Done(), t2.Done(), b.NWaiting(), b.Broken()))
		return nil
	})
	sameAs(t, "results", []string{"0 <nil> 0 false", "0", "0 <nil> 0 <nil> true true 0 false"}, got)
}

// Mirrors test_locks.py BarrierTests.test_filling_task_by_task: NWaiting
// counts the tasks arrived so far, and drops to 0 once the last arrives.
func TestBarrierFillingTaskByTask(t *testing.T) {
	var got []int
	runMain(t, func(ctx context.Context) error {
		b, _ := loop.NewBarrier(3)
		var ts []*loop.Task[int]
		for range 3 {
			ts = append(ts, loop.Spawn(ctx, b.Wait))
			sleep0(ctx)
			got = append(got, b.NWaiting())
		}
		for _, tk := range ts {
			i, err := tk.Await(ctx)
			if err != nil {
				return err
			}
			got = append(got, i)
		}
		got = append(got, b.NWaiting())
		return nil
	})
	sameAs(t, "n_waiting then indices", []int{1, 2, 0, 0, 1, 2, 0}, got)
}

// Mirrors test_locks.py BarrierTests.test_filling_tasks_wait_twice,
// test_filling_tasks_check_return_value and test_draining_state: five
// tasks pass the barrier twice; every pass of the second round starts only
// after all five left the first, and indices are 0..4 each time.
func TestBarrierWaitTwice(t *testing.T) {
	var trace []string
	runMain(t, func(ctx context.Context) error {
		b, _ := loop.NewBarrier(5)
		res, errs := gatherBarrier(ctx, 5, func(ctx context.Context) (int, error) {
			i, err := b.Wait(ctx)
			if err != nil {
				return 0, err
			}
			trace = append(trace, fmt.Sprintf("first %d", i))
			j, err := b.Wait(ctx)
			if err != nil {
				return 0, err
			}
			trace = append(trace, "second")
			return j, nil
		})
		noErrs(t, errs)
		slices.Sort(res)
		trace = append(trace, fmt.Sprint(res, b.NWaiting(), b.Broken()))
		return nil
	})
	sameAs(t, "trace", []string{
		"first 4", "first 0", "first 1", "first 2", "first 3",
		"second", "second", "second", "second", "second",
		"[0 1 2 3 4] 0 false",
	}, trace)
}

// Mirrors test_locks.py BarrierTests.test_blocking_tasks_while_draining:
// tasks that come back to the barrier while it drains are held until the
// draining ends, so a second round of 2 completes only with the others.
func TestBarrierBlockingTasksWhileDraining(t *testing.T) {
	runMain(t, func(ctx context.Context) error {
		const n, rewait = 5, 2
		b, _ := loop.NewBarrier(n)
		nowaiting, _ := loop.NewBarrier(n - rewait)
		rewaitN := rewait
		_, errs := gatherBarrier(ctx, n, func(ctx context.Context) (int, error) {
			if _, err := b.Wait(ctx); err != nil {
				return 0, err
			}
			if rewaitN > 0 {
				rewaitN--
				return b.Wait(ctx)
			}
			if _, err := nowaiting.Wait(ctx); err != nil {
				return 0, err
			}
			return b.Wait(ctx)
		})
		noErrs(t, errs)
		if b.NWaiting() != 0 || nowaiting.NWaiting() != 0 || rewaitN != 0 {
			t.Errorf("n_waiting %d %d, rewait %d", b.NWaiting(), nowaiting.NWaiting(), rewaitN)
		}
		return nil
	})
}

// Mirrors test_locks.py BarrierTests.test_filling_tasks_cancel_one: a task
// cancelled while waiting leaves the barrier, NWaiting goes down, and the
// barrier fills with the others.
func TestBarrierFillingTasksCancelOne(t *testing.T) {
	var got []string
	runMain(t, func(ctx context.Context) error {
		b, _ := loop.NewBarrier(3)
		results := 0
		coro := func(ctx context.Context) error {
			if _, err := b.Wait(ctx); err != nil {
				return err
			}
			results++
			return nil
		}
		t1 := loop.Go(ctx, coro)
		sleep0(ctx)
		got = append(got, fmt.Sprint(b.NWaiting()))
		t2 := loop.Go(ctx, coro)
		sleep0(ctx)
		got = append(got, fmt.Sprint(b.NWaiting()))
		t1.Cancel("")
		sleep0(ctx)
		got = append(got, fmt.Sprint(b.NWaiting()))
		_, err := t1.Await(ctx)
		got = append(got, fmt.Sprint(isCancelled(err), t1.Cancelled()))
		t3 := loop.Go(ctx, coro)
		sleep0(ctx)
		got = append(got, fmt.Sprint(b.NWaiting()))
		t4 := loop.Go(ctx, coro)
		noErrs(t, awaitAll(ctx, t2, t3, t4))
		got = append(got, fmt.Sprint(results, b.NWaiting(), b.Broken()))
		return nil
	})
	sameAs(t, "states", []string{"1", "2", "1", "true true", "2", "3 0 false"}, got)
}

// Mirrors test_locks.py BarrierTests.test_reset_barrier and
// test_reset_barrier_while_tasks_waiting: Reset of an empty barrier is a
// no-op; Reset with N-1 tasks waiting gives each ErrBrokenBarrier and
// leaves the barrier filling, not broken.
func TestBarrierResetWhileTasksWaiting(t *testing.T) {
	var got []string
	runMain(t, func(ctx context.Context) error {
		b1, _ := loop.NewBarrier(1)
		loop.Go(ctx, b1.Reset)
		sleep0(ctx)
		got = append(got, fmt.Sprint(b1.NWaiting(), b1.Broken()))

		b, _ := loop.NewBarrier(5)
		broken := 0
		var ts []*loop.Task[struct{}]
		for range 4 {
			ts = append(ts, loop.Go(ctx, func(ctx context.Context) error {
				_, err := b.Wait(ctx)
				if errors.Is(err, loop.ErrBrokenBarrier) {
					broken++
					return nil
				}
				return err
			}))
		}
		sleep0(ctx)
		got = append(got, fmt.Sprint(b.NWaiting()))
		loop.Go(ctx, b.Reset)
		noErrs(t, awaitAll(ctx, ts...))
		got = append(got, fmt.Sprint(broken, b.NWaiting(), b.Broken()))
		// Usable again.
		res, errs := gatherBarrier(ctx, 5, b.Wait)
		noErrs(t, errs)
		got = append(got, fmt.Sprint(res))
		return nil
	})
	sameAs(t, "states", []string{"0 false", "4", "4 0 false", "[0 1 2 3 4]"}, got)
}

// Mirrors test_locks.py BarrierTests.test_reset_barrier_when_tasks_half_draining:
// a Reset by a task that passed, while some have not yet left, does not
// break the ones already released; tasks that wait again after the reset
// get ErrBrokenBarrier only if they were waiting at the reset.
func TestBarrierResetWhenTasksHalfDraining(t *testing.T) {
	var got []string
	runMain(t, func(ctx context.Context) error {
		const n = 5
		b, _ := loop.NewBarrier(n)
		rest := n / 2
		broken, resets := 0, 0
		_, errs := gatherBarrier(ctx, n, func(ctx context.Context) (int, error) {
			_, err := b.Wait(ctx)
			if errors.Is(err, loop.ErrBrokenBarrier) {
				broken++
				return 0, nil
			}
			if err != nil {
				return 0, err
			}
			resets++
			if resets == n-rest {
				return 0, b.Reset(ctx)
			}
			return 0, nil
		})
		noErrs(t, errs)
		got = append(got, fmt.Sprint(broken, b.NWaiting(), b.Broken()))
		return nil
	})
	// CPython: results1 == [True]*rest_of_tasks.
	sameAs(t, "states", []string{"2 0 false"}, got)
}

// Mirrors test_locks.py BarrierTests.test_reset_barrier_when_tasks_half_draining_half_blocking:
// tasks waiting in a second round when a passed task resets get
// ErrBrokenBarrier and wait again; with the resetter they fill the
// barrier, and the tasks still draining are never broken.
func TestBarrierResetHalfDrainingHalfBlocking(t *testing.T) {
	var got []string
	runMain(t, func(ctx context.Context) error {
		const n = 5
		b, _ := loop.NewBarrier(n)
		blocking := n / 2
		count := 0
		var results1, results2 int
		_, errs := gatherBarrier(ctx, n, func(ctx context.Context) (int, error) {
			_, err := b.Wait(ctx)
			if errors.Is(err, loop.ErrBrokenBarrier) {
				results1++
				_, err = b.Wait(ctx)
				return 0, err
			}
			if err != nil {
				return 0, err
			}
			count++
			if count > blocking {
				if err := b.Reset(ctx); err != nil {
					return 0, err
				}
				_, err := b.Wait(ctx)
				return 0, err
			}
			_, err = b.Wait(ctx)
			if errors.Is(err, loop.ErrBrokenBarrier) {
				results2++
				return 0, nil
			}
			return 0, err
		})
		noErrs(t, errs)
		got = append(got, fmt.Sprint(results1, results2, b.NWaiting(), b.Broken()))
		return nil
	})
	// CPython: results1 == [True]*blocking_tasks (the tasks not yet out
	// of the first round at the reset), results2 == [] (tasks blocked
	// while the barrier drains or resets are held, not broken).
	sameAs(t, "states", []string{"2 0 0 false"}, got)
}

// Mirrors test_locks.py BarrierTests.test_reset_barrier_while_tasks_waiting_and_waiting_again:
// N-1 tasks broken by a Reset wait again and pass with the Nth.
func TestBarrierResetWhileWaitingAndWaitingAgain(t *testing.T) {
	var got []string
	runMain(t, func(ctx context.Context) error {
		const n = 5
		b, _ := loop.NewBarrier(n)
		results1, results2 := 0, 0
		var ts []*loop.Task[struct{}]
		for range n - 1 {
			ts = append(ts, loop.Go(ctx, func(ctx context.Context) error {
				if _, err := b.Wait(ctx); errors.Is(err, loop.ErrBrokenBarrier) {
					results1++
				}
				if _, err := b.Wait(ctx); err != nil {
					return err
				}
				results2++
				return nil
			}))
		}
		loop.Go(ctx, b.Reset)
		sleep0(ctx)
		ts = append(ts, loop.Go(ctx, func(ctx context.Context) error {
			if _, err := b.Wait(ctx); err != nil {
				return err
			}
			results2++
			return nil
		}))
		noErrs(t, awaitAll(ctx, ts...))
		got = append(got, fmt.Sprint(b.Broken(), results1, results2, b.NWaiting()))
		return nil
	})
	sameAs(t, "states", []string{"false 4 5 0"}, got)
}

// Mirrors test_locks.py BarrierTests.test_reset_barrier_while_tasks_draining:
// the last task out resets the barrier while the others already wait in
// the next round; those are not broken (the reset of a draining barrier
// with count 0 returns it to filling), and a third round passes.
func TestBarrierResetWhileTasksDraining(t *testing.T) {
	var got []string
	runMain(t, func(ctx context.Context) error {
		const n = 5
		b, _ := loop.NewBarrier(n)
		count := 0
		var results1, results2, results3 int
		_, errs := gatherBarrier(ctx, n, func(ctx context.Context) (int, error) {
			if _, err := b.Wait(ctx); err != nil {
				return 0, err
			}
			count++
			if count == n {
				if err := b.Reset(ctx); err != nil {
					return 0, err
				}
				if _, err := b.Wait(ctx); err != nil {
					return 0, err
				}
			} else {
				if _, err := b.Wait(ctx); err != nil {
					results2++
				} else {
					results1++
				}
			}
			if _, err := b.Wait(ctx); err != nil {
				return 0, err
			}
			results3++
			return 0, nil
		})
		noErrs(t, errs)
		got = append(got, fmt.Sprint(b.Broken(), results1, results2, results3, b.NWaiting()))
		return nil
	})
	sameAs(t, "states", []string{"false 4 0 5 0"}, got)
}

// Mirrors test_locks.py BarrierTests.test_abort_barrier and invariant
// I72: Abort breaks the barrier; tasks waiting in it and tasks arriving
// later get ErrBrokenBarrier.
func TestBarrierAbort(t *testing.T) {
	var got []string
	runMain(t, func(ctx context.Context) error {
		b1, _ := loop.NewBarrier(1)
		loop.Go(ctx, b1.Abort)
		sleep0(ctx)
		got = append(got, fmt.Sprint(b1.NWaiting(), b1.Broken()))

		b, _ := loop.NewBarrier(3)
		w1 := loop.Spawn(ctx, b.Wait)
		w2 := loop.Spawn(ctx, b.Wait)
		sleep0(ctx)
		got = append(got, fmt.Sprint(b.NWaiting()))
		if err := b.Abort(ctx); err != nil {
			return err
		}
		for _, w := range []*loop.Task[int]{w1, w2} {
			_, err := w.Await(ctx)
			got = append(got, fmt.Sprint(errors.Is(err, loop.ErrBrokenBarrier)))
		}
		_, err := b.Wait(ctx)
		got = append(got, fmt.Sprint(errors.Is(err, loop.ErrBrokenBarrier), b.Broken(), b.NWaiting()))
		return nil
	})
	sameAs(t, "states", []string{"0 true", "2", "true", "true", "true true 0"}, got)
}

// Mirrors test_locks.py BarrierTests.test_abort_barrier_when_tasks_half_draining_half_blocking:
// a passed task aborts while the others wait in a second round; they all
// get ErrBrokenBarrier and the barrier stays broken.
func TestBarrierAbortHalfDrainingHalfBlocking(t *testing.T) {
	var got []string
	runMain(t, func(ctx context.Context) error {
		const n = 5
		b, _ := loop.NewBarrier(n)
		blocking := n / 2
		count, results1, results2 := 0, 0, 0
		_, errs := gatherBarrier(ctx, n, func(ctx context.Context) (int, error) {
			_, err := b.Wait(ctx)
			if errors.Is(err, loop.ErrBrokenBarrier) {
				results1++
				return 0, nil
			}
			if err != nil {
				return 0, err
			}
			count++
			if count > blocking {
				return 0, b.Abort(ctx)
			}
			if _, err := b.Wait(ctx); errors.Is(err, loop.ErrBrokenBarrier) {
				results2++
			}
			return 0, nil
		})
		noErrs(t, errs)
		got = append(got, fmt.Sprint(b.Broken(), results1, results2, b.NWaiting()))
		return nil
	})
	// CPython: results1 == [True]*blocking_tasks (still in the first
	// round at the abort), results2 == [True]*(N-blocking_tasks-1).
	sameAs(t, "states", []string{"true 2 2 0"}, got)
}

// Mirrors test_locks.py BarrierTests.test_abort_barrier_when_exception:
// one task fails after the first pass and aborts; every other task's
// second Wait gets ErrBrokenBarrier.
func TestBarrierAbortWhenException(t *testing.T) {
	var got []string
	runMain(t, func(ctx context.Context) error {
		const n = 5
		b, _ := loop.NewBarrier(n)
		results1, results2 := 0, 0
		_, errs := gatherBarrier(ctx, n, func(ctx context.Context) (int, error) {
			i, err := b.Wait(ctx)
			if errors.Is(err, loop.ErrBrokenBarrier) {
				results2++ // still in the first round at the abort
				return 0, nil
			}
			if err != nil {
				return 0, err
			}
			if i == n/2 {
				return 0, b.Abort(ctx) // "raise RuntimeError" then abort
			}
			if _, err := b.Wait(ctx); errors.Is(err, loop.ErrBrokenBarrier) {
				results2++
			} else if err == nil {
				results1++
			}
			return 0, nil
		})
		noErrs(t, errs)
		got = append(got, fmt.Sprint(b.Broken(), results1, results2, b.NWaiting()))
		return nil
	})
	sameAs(t, "states", []string{"true 0 4 0"}, got)
}

// Mirrors test_locks.py BarrierTests.test_abort_barrier_when_exception_then_resetting:
// after an abort, a second barrier synchronises the tasks so one can Reset
// the first, which then works again for all of them.
func TestBarrierAbortThenReset(t *testing.T) {
	var got []string
	runMain(t, func(ctx context.Context) error {
		const n = 5
		b1, _ := loop.NewBarrier(n)
		b2, _ := loop.NewBarrier(n)
		results1, results2, results3 := 0, 0, 0
		_, errs := gatherBarrier(ctx, n, func(ctx context.Context) (int, error) {
			i, err := b1.Wait(ctx)
			switch {
			case errors.Is(err, loop.ErrBrokenBarrier):
				results2++ // still in the first round at the abort
			case err != nil:
				return 0, err
			case i == n/2:
				if err := b1.Abort(ctx); err != nil {
					return 0, err
				}
			default:
				if _, err := b1.Wait(ctx); errors.Is(err, loop.ErrBrokenBarrier) {
					results2++
				} else if err == nil {
					results1++
				}
			}
			i, err = b2.Wait(ctx)
			if err != nil {
				return 0, err
			}
			if i == n/2 {
				if err := b1.Reset(ctx); err != nil {
					return 0, err
				}
			}
			if _, err := b2.Wait(ctx); err != nil {
				return 0, err
			}
			if _, err := b1.Wait(ctx); err != nil {
				return 0, err
			}
			results3++
			return 0, nil
		})
		noErrs(t, errs)
		got = append(got, fmt.Sprint(b1.Broken(), results1, results2, results3, b1.NWaiting()))
		return nil
	})
	sameAs(t, "states", []string{"false 0 4 5 0"}, got)
}

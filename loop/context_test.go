package loop_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/loop"
)

// A task's ctx is a context.Context: every await honours the cancellation
// and the deadline of a ctx derived from it. When the derived ctx ends
// first the await returns its error, the task is not cancelled, and what
// the await waited for is left as wait_for(shield(f)) leaves it: a future
// or task runs on, a lock or queue keeps every item and every wake-up.

// waitCase is one waiting API: setup prepares something that blocks and
// returns the await to run with a derived ctx, and a check, run after that
// await gave up, that nothing was lost.
type waitCase struct {
	name string
	// external: the await waits for work in another goroutine, and
	// virtual time stands still until it arrives (WithVirtualClock), so on
	// the virtual clock only a ctx that has already ended can end it.
	external bool
	setup    func(t *testing.T, ctx context.Context) (await func(c context.Context) error, after func())
}

func waitCases() []waitCase {
	return []waitCase{
		{name: "Sleep", setup: func(t *testing.T, ctx context.Context) (func(context.Context) error, func()) {
			return func(c context.Context) error { return loop.Sleep(c, time.Hour) }, func() {}
		}},
		{name: "SleepZero", setup: func(t *testing.T, ctx context.Context) (func(context.Context) error, func()) {
			// Sleep(0) yields once: it never waits long enough to be
			// ended early, only an ended ctx stops it (see the
			// already-ended variant); here it returns nil.
			return nil, nil
		}},
		{name: "Future.Await", setup: func(t *testing.T, ctx context.Context) (func(context.Context) error, func()) {
			f := loop.NewFuture[int](loopOf(ctx))
			return func(c context.Context) error { _, err := f.Await(c); return err },
				func() {
					if f.Done() {
						t.Errorf("the awaited future is done (cancelled %v); want it pending", f.Cancelled())
					}
					_ = f.SetResult(7)
					if v, err := f.Await(ctx); v != 7 || err != nil {
						t.Errorf("a second Await() = %v, %v; want 7, nil", v, err)
					}
				}
		}},
		{name: "Task.Await", setup: func(t *testing.T, ctx context.Context) (func(context.Context) error, func()) {
			var ev loop.Event
			task := loop.Spawn(ctx, func(ctx context.Context) (int, error) { return 3, ev.Wait(ctx) })
			return func(c context.Context) error { _, err := task.Await(c); return err },
				func() {
					if task.Done() {
						t.Errorf("the awaited task is done (cancelled %v); want it running", task.Cancelled())
					}
					ev.Set()
					if v, err := task.Await(ctx); v != 3 || err != nil {
						t.Errorf("awaiting the task again = %v, %v; want 3, nil", v, err)
					}
				}
		}},
		{name: "Gather", setup: func(t *testing.T, ctx context.Context) (func(context.Context) error, func()) {
			var ev loop.Event
			a := loop.Spawn(ctx, func(ctx context.Context) (int, error) { return 1, ev.Wait(ctx) })
			b := loop.Spawn(ctx, func(ctx context.Context) (int, error) { return 2, ev.Wait(ctx) })
			g := loop.Gather(ctx, a, b)
			return func(c context.Context) error { _, err := g.Await(c); return err },
				func() {
					ev.Set()
					if v, err := g.Await(ctx); err != nil || len(v) != 2 || v[0] != 1 || v[1] != 2 {
						t.Errorf("awaiting the gather again = %v, %v; want [1 2], nil", v, err)
					}
				}
		}},
		{name: "Wait", setup: func(t *testing.T, ctx context.Context) (func(context.Context) error, func()) {
			f := loop.NewFuture[int](loopOf(ctx))
			return func(c context.Context) error {
					_, _, err := loop.Wait(c, []*loop.Future[int]{f}, loop.NoTimeout, loop.AllCompleted)
					return err
				}, func() {
					if f.Done() {
						t.Errorf("the waited future is done; want it pending")
					}
				}
		}},
		{name: "WaitFor", setup: func(t *testing.T, ctx context.Context) (func(context.Context) error, func()) {
			var ev loop.Event
			task := loop.Spawn(ctx, func(ctx context.Context) (int, error) { return 5, ev.Wait(ctx) })
			return func(c context.Context) error { _, err := loop.WaitFor(c, task, time.Hour); return err },
				func() {
					if task.Done() {
						t.Errorf("the task WaitFor gave up on is done (cancelled %v); want it running", task.Cancelled())
					}
					ev.Set()
					if v, err := task.Await(ctx); v != 5 || err != nil {
						t.Errorf("awaiting the task again = %v, %v; want 5, nil", v, err)
					}
				}
		}},
		{name: "AsCompleted", setup: func(t *testing.T, ctx context.Context) (func(context.Context) error, func()) {
			f := loop.NewFuture[int](loopOf(ctx))
			return func(c context.Context) error {
					for _, err := range loop.AsCompleted(c, []*loop.Future[int]{f}, loop.NoTimeout) {
						if err != nil {
							return err
						}
					}
					return errors.New("AsCompleted yielded a future that never completed")
				}, func() {
					if f.Done() {
						t.Errorf("the future is done; want it pending")
					}
				}
		}},
		{name: "TaskGroup", setup: func(t *testing.T, ctx context.Context) (func(context.Context) error, func()) {
			// The group's ctx ending stops its children (structured
			// concurrency): Do still returns only once they are done.
			var children []*loop.Task[struct{}]
			return func(c context.Context) error {
					return loop.WithTaskGroup(c, func(ctx context.Context, tg *loop.TaskGroup) error {
						for range 2 {
							ch, err := loop.SpawnIn(tg, func(ctx context.Context) (struct{}, error) {
								return struct{}{}, loop.Sleep(ctx, time.Hour)
							})
							if err != nil {
								return err
							}
							children = append(children, ch)
						}
						return nil
					})
				}, func() {
					for i, ch := range children {
						if !ch.Cancelled() {
							t.Errorf("child %d: Cancelled() = false after its group's ctx ended", i)
						}
					}
				}
		}},
		{name: "TaskGroupBody", setup: func(t *testing.T, ctx context.Context) (func(context.Context) error, func()) {
			return func(c context.Context) error {
				return loop.WithTaskGroup(c, func(ctx context.Context, tg *loop.TaskGroup) error {
					return loop.Sleep(ctx, time.Hour)
				})
			}, func() {}
		}},
		{name: "Timeout", setup: func(t *testing.T, ctx context.Context) (func(context.Context) error, func()) {
			return func(c context.Context) error {
				return loop.WithTimeout(c, time.Hour, func(ctx context.Context) error { return loop.Sleep(ctx, 2*time.Hour) })
			}, func() {}
		}},
		{name: "Lock.Acquire", setup: func(t *testing.T, ctx context.Context) (func(context.Context) error, func()) {
			var lk loop.Lock
			mustOK(t, lk.Acquire(ctx)) // held by the main task
			return func(c context.Context) error { return lk.Acquire(c) },
				func() {
					mustOK(t, lk.Release())
					if lk.Locked() {
						t.Errorf("Locked() = true after the holder released it: the abandoned Acquire holds it")
					}
					next := loop.Spawn(ctx, func(ctx context.Context) (bool, error) { return true, lk.Acquire(ctx) })
					if ok, err := next.Await(ctx); !ok || err != nil {
						t.Errorf("a later Acquire = %v; want nil", err)
					}
				}
		}},
		{name: "Event.Wait", setup: func(t *testing.T, ctx context.Context) (func(context.Context) error, func()) {
			var ev loop.Event
			return func(c context.Context) error { return ev.Wait(c) }, func() {}
		}},
		{name: "Condition.Wait", setup: func(t *testing.T, ctx context.Context) (func(context.Context) error, func()) {
			var cond loop.Condition
			mustOK(t, cond.Acquire(ctx))
			return func(c context.Context) error { return cond.Wait(c) },
				func() {
					if !cond.Locked() {
						t.Errorf("Condition.Wait returned without its lock")
					}
					mustOK(t, cond.Release())
				}
		}},
		{name: "Semaphore.Acquire", setup: func(t *testing.T, ctx context.Context) (func(context.Context) error, func()) {
			sem, _ := loop.NewBoundedSemaphore(1)
			mustOK(t, sem.Acquire(ctx))
			return func(c context.Context) error { return sem.Acquire(c) },
				func() {
					mustOK(t, sem.Release())
					if v := sem.Value(); v != 1 {
						t.Errorf("Value() = %d after the release; want 1 (nothing taken by the abandoned Acquire)", v)
					}
				}
		}},
		{name: "Barrier.Wait", setup: func(t *testing.T, ctx context.Context) (func(context.Context) error, func()) {
			b, _ := loop.NewBarrier(2)
			return func(c context.Context) error { _, err := b.Wait(c); return err },
				func() {
					if n := b.NWaiting(); n != 0 || b.Broken() {
						t.Errorf("NWaiting() = %d, Broken() = %v; want 0, false", n, b.Broken())
					}
				}
		}},
		{name: "Queue.Get", setup: func(t *testing.T, ctx context.Context) (func(context.Context) error, func()) {
			q := loop.NewQueue[int](0)
			return func(c context.Context) error { _, err := q.Get(c); return err },
				func() {
					mustOK(t, q.PutNowait(9))
					if v, err := q.Get(ctx); v != 9 || err != nil {
						t.Errorf("Get() after an abandoned Get = %v, %v; want 9, nil", v, err)
					}
				}
		}},
		{name: "Queue.Put", setup: func(t *testing.T, ctx context.Context) (func(context.Context) error, func()) {
			q := loop.NewQueue[int](1)
			mustOK(t, q.PutNowait(1))
			return func(c context.Context) error { return q.Put(c, 2) },
				func() {
					if n := q.Qsize(); n != 1 {
						t.Errorf("Qsize() = %d; want 1 (the abandoned Put inserts nothing)", n)
					}
					if v, _ := q.GetNowait(); v != 1 {
						t.Errorf("GetNowait() = %d; want 1", v)
					}
				}
		}},
		{name: "Queue.Join", setup: func(t *testing.T, ctx context.Context) (func(context.Context) error, func()) {
			q := loop.NewQueue[int](0)
			mustOK(t, q.PutNowait(1))
			return func(c context.Context) error { return q.Join(c) },
				func() {
					_, _ = q.GetNowait()
					mustOK(t, q.TaskDone())
					mustOK(t, q.Join(ctx))
				}
		}},
		{name: "ToThread", external: true, setup: func(t *testing.T, ctx context.Context) (func(context.Context) error, func()) {
			release := make(chan struct{})
			ran := make(chan int, 1)
			return func(c context.Context) error {
					_, err := loop.ToThread(c, func() (int, error) { <-release; ran <- 1; return 1, nil })
					return err
				}, func() {
					close(release) // the call runs on: it ends, not cancelled
					if v := <-ran; v != 1 {
						t.Errorf("the call did not finish")
					}
				}
		}},
	}
}

func mustOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

type ending struct {
	name  string
	ended bool // the ctx has ended before the await starts
	want  error
	// derive makes the derived ctx on l; it may end it at once.
	derive func(ctx context.Context, l *loop.Loop) (context.Context, context.CancelFunc)
}

func endings(virtual bool) []ending {
	deadline := func(ctx context.Context, l *loop.Loop) (context.Context, context.CancelFunc) {
		if virtual {
			// On the virtual clock a deadline is loop time.
			return context.WithDeadline(ctx, l.Time().Add(time.Second))
		}
		return context.WithTimeout(ctx, 5*time.Millisecond)
	}
	return []ending{
		{"cancel", false, context.Canceled, func(ctx context.Context, l *loop.Loop) (context.Context, context.CancelFunc) {
			c, cancel := context.WithCancel(ctx)
			l.CallLater(time.Millisecond, cancel) // while the await waits
			return c, cancel
		}},
		{"cancelled already", true, context.Canceled, func(ctx context.Context, l *loop.Loop) (context.Context, context.CancelFunc) {
			c, cancel := context.WithCancel(ctx)
			cancel()
			return c, cancel
		}},
		{"deadline", false, context.DeadlineExceeded, deadline},
		{"deadline passed", true, context.DeadlineExceeded, func(ctx context.Context, l *loop.Loop) (context.Context, context.CancelFunc) {
			return context.WithDeadline(ctx, l.Time().Add(-time.Second))
		}},
		{"value over cancel", false, context.Canceled, func(ctx context.Context, l *loop.Loop) (context.Context, context.CancelFunc) {
			c, cancel := context.WithCancel(ctx)
			l.CallLater(time.Millisecond, cancel)
			return context.WithValue(c, ctxKey{}, "v"), cancel
		}},
	}
}

type ctxKey struct{}

func TestDerivedCtxEndsEveryAwait(t *testing.T) {
	for _, virtual := range []bool{true, false} {
		clock := "real"
		var opts []loop.Option
		if virtual {
			clock = "virtual"
			opts = append(opts, loop.WithVirtualClock())
		}
		for _, wc := range waitCases() {
			for _, e := range endings(virtual) {
				if wc.external && virtual && !e.ended {
					continue
				}
				t.Run(fmt.Sprintf("%s/%s/%s", clock, wc.name, e.name), func(t *testing.T) {
					_, err := loop.Run(context.Background(), func(ctx context.Context) (int, error) {
						l := loopOf(ctx)
						await, after := wc.setup(t, ctx)
						c, cancel := e.derive(ctx, l)
						defer cancel()
						if await == nil { // SleepZero
							err := loop.Sleep(c, 0)
							if e.ended {
								if !errors.Is(err, e.want) {
									t.Errorf("Sleep(ended ctx, 0) = %v; want %v", err, e.want)
								}
							} else if err != nil {
								t.Errorf("Sleep(ctx, 0) = %v; want nil", err)
							}
							return 0, nil
						}
						start := l.Time()
						err := await(c)
						if !errors.Is(err, e.want) {
							t.Errorf("await = %v; want an error matching %v", err, e.want)
						}
						if c.Err() != nil && !errors.Is(err, c.Err()) {
							t.Errorf("await = %v; want it to match ctx.Err() = %v", err, c.Err())
						}
						if virtual && e.name == "deadline" {
							if d := l.Time().Sub(start); d < time.Second || d > time.Second+time.Millisecond {
								t.Errorf("the await ended after %v of loop time; want the deadline's 1s", d)
							}
						}
						if n := loop.CurrentTask(ctx).Cancelling(); n != 0 {
							t.Errorf("Cancelling() = %d; want 0: the task itself is not cancelled", n)
						}
						if err := loop.Sleep(ctx, 0); err != nil {
							t.Errorf("the next await on the task's own ctx = %v; want nil", err)
						}
						after()
						return 0, nil
					}, opts...)
					if err != nil {
						t.Fatalf("Run() = %v", err)
					}
				})
			}
		}
	}
}

// A cancellation of the task itself still wins over its derived ctx, and
// is delivered as asyncio delivers it (to what the task awaits).
func TestDerivedCtxTaskCancelWins(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		var ev loop.Event
		inner := loop.Spawn(ctx, func(ctx context.Context) (int, error) { return 0, ev.Wait(ctx) })
		outer := loop.Spawn(ctx, func(ctx context.Context) (int, error) {
			c, cancel := context.WithTimeout(ctx, time.Hour)
			defer cancel()
			return inner.Await(c)
		})
		mustOK(t, loop.Sleep(ctx, 0))
		outer.Cancel("stop")
		_, err := outer.Await(ctx)
		if !errors.Is(err, loop.ErrCancelled) || loop.CancelMessage(err) != "stop" {
			t.Errorf("outer = %v; want a cancellation with message stop", err)
		}
		if !inner.Cancelled() {
			t.Errorf("inner.Cancelled() = false; want the cancellation forwarded to it")
		}
	})
}

// The task's cancellation reaches a task waiting through a derived ctx
// that never ends: its Done closes with the task's.
func TestDerivedCtxOfCancelledTask(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		child := loop.Spawn(ctx, func(ctx context.Context) (int, error) {
			c, cancel := context.WithCancel(ctx)
			defer cancel()
			return 0, loop.Sleep(c, time.Hour)
		})
		mustOK(t, loop.Sleep(ctx, 0))
		child.Cancel("bye")
		_, err := child.Await(ctx)
		if !errors.Is(err, loop.ErrCancelled) || !child.Cancelled() {
			t.Errorf("child = %v, cancelled %v; want a cancellation", err, child.Cancelled())
		}
	})
}

// Mirrors nothing in asyncio (its timeout is not a context): inside a
// Timeout, the body's ctx reports the deadline and ends with it.
func TestTimeoutBodyCtxDeadline(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		l := loopOf(ctx)
		want := l.Time().Add(5 * time.Second)
		var bodyCtx context.Context
		err := loop.WithTimeout(ctx, 5*time.Second, func(ctx context.Context) error {
			bodyCtx = ctx
			if d, ok := ctx.Deadline(); !ok || !d.Equal(want) {
				t.Errorf("Deadline() = %v, %v; want %v, true", d, ok, want)
			}
			// A derived ctx with a later deadline keeps the Timeout's.
			c, cancel := context.WithTimeout(ctx, time.Hour)
			defer cancel()
			if d, _ := c.Deadline(); !d.Equal(want) {
				t.Errorf("derived Deadline() = %v; want %v", d, want)
			}
			done := ctx.Done()
			err := loop.Sleep(ctx, time.Hour)
			select {
			case <-done:
			default:
				t.Errorf("the body's ctx is not done when its Timeout expired")
			}
			if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
				t.Errorf("body ctx.Err() = %v; want context.DeadlineExceeded", ctx.Err())
			}
			// Cleanup after the expiry still awaits, as in asyncio.
			if err := loop.Sleep(ctx, time.Second); err != nil {
				t.Errorf("an await in cleanup after the expiry = %v; want nil", err)
			}
			return err
		})
		if !errors.Is(err, loop.ErrTimeout) {
			t.Errorf("WithTimeout() = %v; want ErrTimeout", err)
		}
		if ctx.Err() != nil {
			t.Errorf("the task's ctx ended with its Timeout: %v", ctx.Err())
		}
		if bodyCtx.Err() == nil {
			t.Errorf("the body's ctx is still live after Do returned")
		}
		// Reschedule moves the deadline the body sees; the outer
		// deadline wins when it is earlier.
		outer, cancel := context.WithDeadline(ctx, l.Time().Add(time.Minute))
		defer cancel()
		tm := loop.NewTimeout(outer, loop.NoTimeout)
		_ = tm.Do(outer, func(ctx context.Context) error {
			if d, _ := ctx.Deadline(); !d.Equal(l.Time().Add(time.Minute)) {
				t.Errorf("Deadline() without a Timeout deadline = %v; want the outer ctx's", d)
			}
			mustOK(t, tm.Reschedule(l.Time().Add(time.Second)))
			if d, _ := ctx.Deadline(); !d.Equal(l.Time().Add(time.Second)) {
				t.Errorf("Deadline() after Reschedule = %v; want %v", d, l.Time().Add(time.Second))
			}
			return nil
		})
	})
}

// A net/http call made with the body's ctx, on another goroutine through
// ToThread, sees the Timeout's deadline and stops with it.
func TestTimeoutBodyCtxHTTP(t *testing.T) {
	gotDeadline := make(chan bool, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // until the client gives up
	}))
	defer srv.Close()
	_, err := loop.Run(context.Background(), func(ctx context.Context) (int, error) {
		err := loop.WithTimeout(ctx, 20*time.Millisecond, func(ctx context.Context) error {
			_, err := loop.ToThread(ctx, func() (int, error) {
				_, ok := ctx.Deadline()
				gotDeadline <- ok
				req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
				resp, err := srv.Client().Do(req)
				if err == nil {
					resp.Body.Close()
				}
				return 0, err
			})
			return err
		})
		if !errors.Is(err, loop.ErrTimeout) {
			t.Errorf("WithTimeout() = %v; want ErrTimeout", err)
		}
		return 0, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !<-gotDeadline {
		t.Errorf("the ctx in the thread had no deadline")
	}
}

// A task that returns ctx.Err() after Cancel("bye") ends cancelled with
// the message: its error matches ErrCancelled as the docs promise.
func TestTaskReturnsCtxErr(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		task := loop.Spawn(ctx, func(ctx context.Context) (int, error) {
			<-ctx.Done() // plain Go code: no await sees the cancellation
			return 0, ctx.Err()
		})
		task.Cancel("bye") // before it starts would skip its body: let it start
		_, err := task.Await(ctx)
		if !task.Cancelled() || !errors.Is(err, loop.ErrCancelled) || loop.CancelMessage(err) != "bye" {
			t.Errorf("task = %v (cancelled %v); want a CancelledError with message bye", err, task.Cancelled())
		}
		started := loop.Spawn(ctx, func(ctx context.Context) (int, error) {
			if err := loop.Sleep(ctx, time.Hour); err != nil {
				return 0, fmt.Errorf("fetch: %w", context.Canceled)
			}
			return 1, nil
		})
		mustOK(t, loop.Sleep(ctx, 0))
		started.Cancel("bye")
		_, err = started.Await(ctx)
		if !errors.Is(err, loop.ErrCancelled) || loop.CancelMessage(err) != "bye" || !errors.Is(err, context.Canceled) {
			t.Errorf("task = %v; want a CancelledError with message bye", err)
		}
		if got := err.Error(); got != "loop: cancelled: bye" {
			t.Errorf("Error() = %q", got)
		}
	})
}

// A panic whose value is a cancellation error is a panic: the task fails,
// and a TaskGroup reports it as a member of its group.
func TestPanicWithCancellationValue(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		task := loop.Spawn(ctx, func(ctx context.Context) (int, error) { panic(loop.ErrCancelled) })
		_, err := task.Await(ctx)
		var pe *loop.PanicError
		if task.Cancelled() || !errors.As(err, &pe) {
			t.Errorf("task = %v (cancelled %v); want a *PanicError, not cancelled", err, task.Cancelled())
		}
		err = loop.WithTaskGroup(ctx, func(ctx context.Context, tg *loop.TaskGroup) error {
			return tg.Go(func(ctx context.Context) error { panic(context.Canceled) })
		})
		var eg *loop.ExceptionGroup
		if !errors.As(err, &eg) || len(eg.Errs) != 1 || !errors.As(eg.Errs[0], &pe) {
			t.Errorf("TaskGroup = %v; want an ExceptionGroup holding a *PanicError", err)
		}
	})
}

// A bounded stress run under faults: producers and consumers of a bounded
// queue, each holding a Lock and a Semaphore for a while, all awaiting with
// derived ctxs that random deadlines and a chaos task end at random
// moments. Whatever gives up retries with a fresh ctx. Every item must
// arrive exactly once, the lock and semaphore never be over-held, and
// every task end, with the primitives back at rest.
func TestDerivedCtxStress(t *testing.T) {
	for seed := range uint64(20) {
		r := rand.New(rand.NewPCG(seed, 1))
		const items, producers, consumers = 300, 3, 4
		_, err := loop.Run(context.Background(), func(ctx context.Context) (int, error) {
			l := loopOf(ctx)
			q := loop.NewQueue[int](3)
			var lk loop.Lock
			sem, _ := loop.NewBoundedSemaphore(2)
			var cancels []context.CancelFunc
			derive := func(ctx context.Context) context.Context {
				if r.IntN(2) == 0 {
					c, cancel := context.WithDeadline(ctx, l.Time().Add(time.Duration(r.IntN(5))*time.Millisecond))
					cancels = append(cancels, cancel)
					return c
				}
				c, cancel := context.WithCancel(ctx)
				cancels = append(cancels, cancel)
				return c
			}
			chaos := loop.Go(ctx, func(ctx context.Context) error {
				for {
					if err := loop.Sleep(ctx, time.Duration(r.IntN(3))*time.Millisecond); err != nil {
						return nil
					}
					if n := len(cancels); n > 0 {
						i := r.IntN(n)
						cancels[i]()
						cancels[i] = cancels[n-1]
						cancels = cancels[:n-1]
					}
				}
			})
			got := make([]int, items)
			held, semHeld, received, gaveUp := false, 0, 0, 0
			var tasks []*loop.Task[struct{}]
			for p := range producers {
				tasks = append(tasks, loop.Go(ctx, func(ctx context.Context) error {
					for i := p; i < items; i += producers {
						for q.Put(derive(ctx), i) != nil {
							gaveUp++
						}
					}
					return nil
				}))
			}
			for range consumers {
				tasks = append(tasks, loop.Go(ctx, func(ctx context.Context) error {
					for {
						v, err := q.Get(derive(ctx))
						if errors.Is(err, loop.ErrQueueShutDown) {
							return nil
						}
						if err != nil {
							gaveUp++
							continue
						}
						got[v]++
						if received++; received == items {
							q.Shutdown(false)
						}
						mustOK(t, q.TaskDone())
						if lk.Acquire(derive(ctx)) == nil {
							if held {
								t.Errorf("seed %d: the Lock is held twice", seed)
							}
							held = true
							_ = loop.Sleep(ctx, time.Duration(r.IntN(2))*time.Millisecond)
							held = false
							mustOK(t, lk.Release())
						}
						if sem.Acquire(derive(ctx)) == nil {
							if semHeld++; semHeld > 2 {
								t.Errorf("seed %d: the Semaphore(2) is held %d times", seed, semHeld)
							}
							_ = loop.Sleep(ctx, time.Duration(r.IntN(2))*time.Millisecond)
							semHeld--
							mustOK(t, sem.Release())
						}
					}
				}))
			}
			for _, task := range tasks {
				if _, err := task.Await(ctx); err != nil {
					t.Errorf("seed %d: task = %v", seed, err)
				}
			}
			chaos.Cancel("")
			_, _ = chaos.Await(ctx)
			for i, n := range got {
				if n != 1 {
					t.Errorf("seed %d: item %d received %d times; want 1", seed, i, n)
				}
			}
			if lk.Locked() || sem.Value() != 2 || q.Qsize() != 0 {
				t.Errorf("seed %d: at rest: Locked %v, Semaphore %d, Qsize %d; want false, 2, 0", seed, lk.Locked(), sem.Value(), q.Qsize())
			}
			if gaveUp == 0 {
				t.Errorf("seed %d: no await gave up: the faults did not happen", seed)
			}
			for _, cancel := range cancels {
				cancel()
			}
			return 0, q.Join(ctx)
		}, loop.WithVirtualClock())
		if err != nil {
			t.Fatalf("seed %d: Run() = %v", seed, err)
		}
	}
}

// A Cancel that comes after a derived ctx abandoned the await, before the
// task resumed, is the task's own: the abandoned future or task is left
// alone and the task ends cancelled.
func TestDerivedCtxCancelAfterAbandon(t *testing.T) {
	for _, awaitTask := range []bool{false, true} {
		inTask(t, func(ctx context.Context) {
			l := loopOf(ctx)
			var ev loop.Event
			f := loop.NewFuture[int](l)
			inner := loop.Spawn(ctx, func(ctx context.Context) (int, error) { return 3, ev.Wait(ctx) })
			var awaited loop.Awaitable[int] = f
			if awaitTask {
				awaited = inner
			}
			deadline := l.Time().Add(time.Second)
			task := loop.Spawn(ctx, func(ctx context.Context) (int, error) {
				c, cancel := context.WithDeadline(ctx, deadline)
				defer cancel()
				return awaited.Await(c)
			})
			mustOK(t, loop.Sleep(ctx, 0))
			mustOK(t, loop.Sleep(ctx, 0))
			// Scheduled after the await's deadline timer: it runs in the
			// same batch, before the task resumes.
			l.CallAt(deadline, func() { task.Cancel("bye") })
			_, err := task.Await(ctx)
			if awaited.Done() {
				t.Errorf("awaitTask %v: the abandoned awaitable was cancelled by the later Cancel", awaitTask)
			}
			if !task.Cancelled() || loop.CancelMessage(err) != "bye" {
				t.Errorf("awaitTask %v: task = %v (cancelled %v); want cancelled with message bye", awaitTask, err, task.Cancelled())
			}
			ev.Set()
			_, _ = inner.Await(ctx)
		})
	}
}

// A cancellation of the task passed on to the task it awaits wins over a
// derived ctx that ends later: the task waits for the awaited one to
// finish, as asyncio would, and ends cancelled with its message, whether
// it cancelled itself or was cancelled from outside.
func TestDerivedCtxForwardedCancelWins(t *testing.T) {
	for _, self := range []bool{true, false} {
		inTask(t, func(ctx context.Context) {
			l := loopOf(ctx)
			slow := loop.Spawn(ctx, func(ctx context.Context) (int, error) {
				err := loop.Sleep(ctx, time.Hour)
				_ = loop.Sleep(context.WithoutCancel(ctx), 10*time.Second) // slow cleanup
				return 9, err
			})
			mustOK(t, loop.Sleep(ctx, 0))
			var task *loop.Task[int]
			task = loop.Spawn(ctx, func(ctx context.Context) (int, error) {
				if self {
					task.Cancel("stop")
				}
				c, cancel := context.WithDeadline(ctx, l.Time().Add(time.Second))
				defer cancel()
				return slow.Await(c)
			})
			if !self {
				mustOK(t, loop.Sleep(ctx, 0))
				mustOK(t, loop.Sleep(ctx, 0))
				task.Cancel("stop")
			}
			start := l.Time()
			_, err := task.Await(ctx)
			if !task.Cancelled() || loop.CancelMessage(err) != "stop" {
				t.Errorf("self %v: task = %v (cancelled %v); want cancelled with message stop", self, err, task.Cancelled())
			}
			if d := l.Time().Sub(start); d < 10*time.Second {
				t.Errorf("self %v: the task ended after %v; want it to wait for the awaited task's 10s cleanup", self, d)
			}
		})
	}
}

// A ctx derived from the task's own ends at the moment the task is
// cancelled, on the loop: the outcome never depends on goroutine
// scheduling (here: the inner task swallows the forwarded cancellation and
// returns a value, which the outer task gets, as in asyncio).
func TestDerivedCtxOfTaskDeterministic(t *testing.T) {
	for i := range 200 {
		inTask(t, func(ctx context.Context) {
			inner := loop.Spawn(ctx, func(ctx context.Context) (int, error) {
				_ = loop.Sleep(ctx, time.Hour)
				_ = loop.Sleep(context.WithoutCancel(ctx), time.Millisecond)
				return 9, nil
			})
			outer := loop.Spawn(ctx, func(ctx context.Context) (int, error) {
				c, cancel := context.WithCancel(ctx)
				defer cancel()
				return inner.Await(c)
			})
			mustOK(t, loop.Sleep(ctx, 0))
			mustOK(t, loop.Sleep(ctx, 0))
			outer.Cancel("stop")
			if v, err := outer.Await(ctx); v != 9 || err != nil {
				t.Fatalf("run %d: outer = %v, %v; want 9, nil", i, v, err)
			}
		})
	}
}

// A TaskGroup whose derived ctx ended is waiting for its children when the
// task is cancelled: the cancellation is not lost.
func TestTaskGroupDerivedCtxThenCancel(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		l := loopOf(ctx)
		outer := loop.Spawn(ctx, func(ctx context.Context) (int, error) {
			c, cancel := context.WithDeadline(ctx, l.Time().Add(time.Second))
			defer cancel()
			return 0, loop.WithTaskGroup(c, func(ctx context.Context, tg *loop.TaskGroup) error {
				return tg.Go(func(ctx context.Context) error {
					err := loop.Sleep(ctx, time.Hour)
					_ = loop.Sleep(context.WithoutCancel(ctx), 10*time.Second) // slow cleanup
					return err
				})
			})
		})
		mustOK(t, loop.Sleep(ctx, 2*time.Second))
		outer.Cancel("stop")
		if _, err := outer.Await(ctx); !outer.Cancelled() {
			t.Errorf("outer = %v; want it cancelled", err)
		}
	})
}

// On the real clock, a busy loop may see the body ctx's wall-clock timer
// end a derived ctx before the Timeout's own timer runs: the Timeout still
// expires first, and Do returns ErrTimeout.
func TestTimeoutWallClockFirst(t *testing.T) {
	_, err := loop.Run(context.Background(), func(ctx context.Context) (int, error) {
		l := loopOf(ctx)
		f := loop.NewFuture[int](l)
		l.CallLater(5*time.Millisecond, func() { time.Sleep(50 * time.Millisecond) }) // the loop is busy at the deadline
		err := loop.WithTimeout(ctx, 20*time.Millisecond, func(ctx context.Context) error {
			go func() { <-ctx.Done() }() // someone watches the body's ctx: its wall timer is armed
			c, cancel := context.WithCancel(ctx)
			defer cancel()
			_, err := f.Await(c)
			return err
		})
		if !errors.Is(err, loop.ErrTimeout) {
			t.Errorf("WithTimeout = %v; want ErrTimeout", err)
		}
		return 0, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Reschedule moves the deadline a derived ctx inherits from the body's
// ctx, for an await already waiting on the virtual clock.
func TestTimeoutRescheduleDerivedAwait(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		l := loopOf(ctx)
		f := loop.NewFuture[int](l)
		l.CallLater(3*time.Second, func() { _ = f.SetResult(7) })
		tm := loop.NewTimeout(ctx, time.Second)
		l.CallLater(500*time.Millisecond, func() { _ = tm.Reschedule(l.Time().Add(10 * time.Second)) })
		err := tm.Do(ctx, func(ctx context.Context) error {
			c, cancel := context.WithCancel(ctx)
			defer cancel()
			_, err := f.Await(c)
			return err
		})
		if err != nil {
			t.Errorf("Do = %v; want nil (the deadline moved to 10s, the future is done at 3s)", err)
		}
	})
}

// The body's ctx used from other goroutines (Deadline, Err, AfterFunc,
// WithCancel) while the loop reschedules its Timeout: race-free.
func TestTimeoutBodyCtxFromGoroutines(t *testing.T) {
	for range 10 {
		_, err := loop.Run(context.Background(), func(ctx context.Context) (int, error) {
			l := loopOf(ctx)
			tm := loop.NewTimeout(ctx, 50*time.Millisecond)
			stop := make(chan struct{})
			var wg sync.WaitGroup
			err := tm.Do(ctx, func(ctx context.Context) error {
				for range 3 {
					wg.Go(func() {
						for {
							select {
							case <-stop:
								return
							default:
							}
							_, _ = ctx.Deadline()
							_ = ctx.Err()
							context.AfterFunc(ctx, func() {})()
							c, cancel := context.WithCancel(ctx)
							cancel()
							<-c.Done()
						}
					})
				}
				for j := range 20 {
					_ = tm.Reschedule(l.Time().Add(time.Duration(j%3) * 10 * time.Millisecond))
					_ = loop.Sleep(ctx, time.Millisecond)
				}
				return nil
			})
			close(stop)
			wg.Wait()
			return 0, err
		})
		if err != nil && !errors.Is(err, loop.ErrTimeout) {
			t.Fatal(err)
		}
	}
}

// The body's ctx keeps the context contract when its parent ends: once Err
// is not nil, Done is closed.
func TestTimeoutBodyCtxErrImpliesDone(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		outer, cancel := context.WithCancel(ctx)
		_ = loop.WithTimeout(outer, time.Hour, func(ctx context.Context) error {
			cancel()
			if ctx.Err() == nil {
				t.Fatalf("Err() = nil after the parent was cancelled")
			}
			select {
			case <-ctx.Done():
			default:
				t.Errorf("Err() = %v while Done is still open", ctx.Err())
			}
			return nil
		})
	})
}

// A task's awaits with one derived ctx share one registration on it; a ctx
// it no longer awaits with ends nothing, and the one it does still ends the
// await.
func TestDerivedCtxMovesBetweenAwaits(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		l := loopOf(ctx)
		c1, cancel1 := context.WithCancel(ctx)
		c2, cancel2 := context.WithCancel(ctx)
		defer cancel2()
		f := loop.NewFuture[int](l)
		for range 3 {
			mustOK(t, loop.Sleep(c1, time.Millisecond)) // watched and not ended
		}
		l.CallLater(time.Second, cancel1)
		l.CallLater(2*time.Second, cancel2)
		start := l.Time()
		_, err := f.Await(c2)
		if !errors.Is(err, context.Canceled) || l.Time().Sub(start) != 2*time.Second {
			t.Errorf("Await(c2) = %v after %v; want context.Canceled after 2s (c1's end is not c2's)", err, l.Time().Sub(start))
		}
		if f.Done() {
			t.Errorf("the future is done")
		}
	})
}

package loop

import (
	"errors"
	"iter"
	"runtime"
	_ "unsafe" // go:linkname
)

// coro is the goroutine a task runs on, driven by iter.Pull: the loop calls
// next to hand control to the task, the task calls yield to hand it back.
// Only one of them runs at any instant, and the race detector sees every
// switch as a synchronisation. When its task ends the coroutine parks in
// yield, ready to run the next task the loop gives it: creating a coroutine
// costs several times a switch, reusing one costs a switch.
//
// Go's coroutines have one rule the loop must keep: the OS-thread lock of
// the goroutine that switches must match the one that created the
// coroutine, or the runtime aborts the process ("coro: OS thread locking
// must match locking at coroutine creation"). So a task may not await
// while locked to its thread (runtime.LockOSThread): the await releases the
// lock and panics with ErrLockedOSThread instead, and a task that returns
// locked fails the same way. A loop whose tasks were started from a
// goroutine locked to its thread (a GUI program's main, say) must be driven
// by that goroutine for as long as those tasks live; RunForever and Close
// refuse with ErrLockedOSThread otherwise.
//
// A coro is four words (a million parked tasks each have one): whether it
// was made on a locked driver is the task's locked flag, and one whose
// goroutine is leaving through runtime.Goexit has task set to exitingTask.
type coro struct {
	next  func() (struct{}, bool)
	stop  func()
	yield func(struct{}) bool
	task  *taskCore
}

// exitingTask marks a coro whose goroutine is leaving (goexit).
var exitingTask = new(taskCore)

// ErrLockedOSThread is the error of a coroutine switch that the thread
// lock (runtime.LockOSThread) forbids: a task awaited, or returned, while
// locked to its OS thread (the task fails with it; run thread-bound work
// with ToThread instead), or a loop whose tasks were started from a
// goroutine locked to its thread is driven or closed from another.
var ErrLockedOSThread = errors.New("loop: a task's goroutine may not be locked to its OS thread across an await (runtime.LockOSThread): run thread-bound work with loop.ToThread, and drive a loop started from a locked goroutine from that goroutine only")

// lockedOSThread reports whether the calling goroutine is locked to its
// thread. The runtime keeps it reachable for this use (runtime/linkname.go).
//
//go:linkname lockedOSThread runtime.lockedOSThread
func lockedOSThread() bool

// releaseThread undoes the caller's runtime.LockOSThread calls.
func releaseThread() {
	for i := 0; i < 1<<16 && lockedOSThread(); i++ {
		runtime.UnlockOSThread()
	}
}

func newCoro() *coro {
	c := new(coro)
	c.next, c.stop = iter.Pull(func(yield func(struct{}) bool) {
		c.yield = yield
		for {
			t := c.task
			if l := t.loop; debugEver.Load() && l.debug {
				l.taskGID.Store(goid())
			}
			t.self.runBody()
			c.task = nil
			if !yield(struct{}{}) {
				return
			}
		}
	})
	return c
}

// suspend hands control back to the loop until the task is resumed. Close
// resumes a pending task marked killed: this await returns a cancellation
// error, and any later one is refused (enterAwait). (A stop of a suspended
// coroutine, which Close does not do, would mark it killed too.)
func (t *taskCore) suspend() {
	if t.mustCancel {
		t.cancelWait()
	}
	if !t.coro.yield(struct{}{}) {
		t.killed = true
	}
	if l := t.loop; debugEver.Load() && l.debug {
		l.taskGID.Store(goid())
		t.resumedDebug()
	}
}

// maxFreeCoros bounds the coroutines kept for reuse after their task ends.
const maxFreeCoros = 256

// maxKills bounds the cancellations a task being unwound at Close may
// catch and go on from: past it the task's goroutine is made to exit.
const maxKills = 3

// enterAwait is the first step of every await: it refuses a task that the
// loop is unwinding (taskKilled) or that is locked to its OS thread. It is
// on every task switch's path: the check inlines, the refusal does not.
func (t *taskCore) enterAwait() {
	if t.killed || lockedOSThread() != t.locked {
		t.refuseAwait()
	}
	if debugEver.Load() {
		t.awaitDebug()
	}
}

func (t *taskCore) refuseAwait() {
	if t.killed {
		t.kills++
		if t.kills > maxKills {
			// A task that keeps recovering from its unwinding (a
			// "recover and retry" loop) is made to leave: a Goexit
			// cannot be caught (see goexit).
			t.loop.CallExceptionHandler(ExceptionContext{Message: "coroutine ignored GeneratorExit", Task: t.self})
			runtime.Goexit()
		}
		panic(taskKilled{})
	}
	releaseThread()
	panic(ErrLockedOSThread)
}

// takeDriver records the goroutine that is about to drive the loop, and
// refuses it if it cannot switch to the coroutines of the tasks in progress.
func (l *Loop) takeDriver() error {
	locked := lockedOSThread()
	var gid uint64
	if locked {
		gid = goid()
	}
	if l.liveCoros > 0 && (locked != l.coroLocked || gid != l.coroGID) {
		return ErrLockedOSThread
	}
	if locked && len(l.freeCoros) > 0 {
		l.retireFreeCoros() // made unlocked: a locked goroutine cannot run them
	}
	l.driverLocked, l.driverGID = locked, gid
	return nil
}

// retireFreeCoros ends the coroutines kept for reuse, from a goroutine that
// is not locked to its thread, as they were made.
func (l *Loop) retireFreeCoros() {
	free := l.freeCoros
	l.freeCoros = nil
	onPlainGoroutine(func() {
		for _, c := range free {
			c.stop()
		}
	})
}

// onPlainGoroutine runs fn on a new goroutine, not locked to a thread, and
// waits for it to end: for switching to coroutines made unlocked from a
// caller that is locked.
func onPlainGoroutine(fn func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	<-done
}

// step resumes a task until its next await or its end.
func (l *Loop) step(t *taskCore) {
	if t.finished {
		return
	}
	c := t.coro
	if c == nil {
		if t.mustCancel {
			// Cancelled before it started: the body never runs.
			t.mustCancel = false
			t.self.finishCancelled(cancelledError(t.cancelMsg()))
			return
		}
		if n := len(l.freeCoros); n > 0 {
			c = l.freeCoros[n-1]
			l.freeCoros = l.freeCoros[:n-1]
		} else {
			c = newCoro()
		}
		if l.liveCoros == 0 {
			l.coroLocked, l.coroGID = l.driverLocked, l.driverGID
		}
		l.liveCoros++
		c.task = t
		t.coro = c
		// Kept coroutines were made unlocked, and takeDriver drops them
		// for a locked driver: c was made on this driver's lock state.
		t.locked = l.driverLocked
	}
	// current stays set after the step: the next task step overwrites it,
	// and a plain callback or the end of the iteration clears it.
	l.current = t
	c.next()
	if t.finished {
		t.coro = nil
		l.liveCoros--
		if c.task != exitingTask && len(l.freeCoros) < maxFreeCoros && !l.closing && !t.locked {
			l.freeCoros = append(l.freeCoros, c)
		} else {
			l.releaseCoro(c, t.locked)
		}
	}
}

// goexit ends a task whose function called runtime.Goexit (t.Fatal in a
// test, or the loop's own, for a task that swallows its unwinding at
// Close): a Goexit cannot be stopped, only kept off the loop's goroutine,
// to which iter.Pull would pass it on. The task fails with ErrGoexit (or
// ends cancelled, if the loop is closing), and its coroutine hands control
// back to the loop, parked in this deferred call; the loop then lets it go
// on a goroutine of its own (see releaseCoro).
func (t *Task[T]) goexit() {
	tc := &t.tc
	c := tc.coro
	if tc.killed {
		t.finishCancelled(cancelledError("loop closed"))
	} else {
		t.finish(stateFinished, ErrGoexit)
	}
	c.task = exitingTask
	c.yield(struct{}{})
}

// ErrGoexit is the error of a task whose function called runtime.Goexit
// (t.Fatal or t.FailNow in a test, or a log.Fatal-like helper that ends
// the goroutine): the task fails, and the loop goes on.
var ErrGoexit = errors.New("loop: the task's function called runtime.Goexit")

// closeTasks ends every pending task at Close: each is reported to the
// exception handler ("Task was destroyed but it is pending!") and unwound.
func (l *Loop) closeTasks() error {
	if l.liveCoros > 0 && l.coroLocked && (!lockedOSThread() || goid() != l.coroGID) {
		return ErrLockedOSThread
	}
	unwindAll := func() {
		for len(l.tasks) > 0 {
			t := l.tasks[len(l.tasks)-1]
			l.CallExceptionHandler(ExceptionContext{Message: "Task was destroyed but it is pending!", Task: t.self})
			l.unwind(t)
		}
	}
	if l.liveCoros > 0 && !l.coroLocked && lockedOSThread() {
		onPlainGoroutine(unwindAll) // coroutines made unlocked, closed from a locked goroutine
	} else {
		unwindAll()
	}
	if len(l.freeCoros) > 0 {
		l.retireFreeCoros()
	}
	return nil
}

// unwind ends a pending task at Close. Its coroutine is resumed, not
// stopped: the await it is suspended in returns a cancellation error, every
// later await is refused (enterAwait), and a Goexit on the way parks the
// coroutine (goexit) instead of reaching this goroutine.
func (l *Loop) unwind(t *taskCore) {
	c := t.coro
	if c == nil {
		t.self.finishCancelled(cancelledError("loop closed"))
		return
	}
	t.killed = true
	l.current = t
	c.next()
	l.current = nil
	t.coro = nil
	l.liveCoros--
	if !t.finished {
		t.self.finishCancelled(cancelledError("loop closed"))
	}
	l.releaseCoro(c, t.locked)
}

// releaseCoro ends the coroutine of a finished task. One parked in goexit
// leaves on a goroutine of its own, which the Goexit then ends; one made on
// a locked driver cannot be switched to from any other goroutine, so it
// stays parked for good.
func (l *Loop) releaseCoro(c *coro, locked bool) {
	switch {
	case c.task != exitingTask:
		c.stop()
	case !locked:
		go c.stop()
	}
}

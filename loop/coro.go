package loop

import "iter"

// coro is the goroutine a task runs on, driven by iter.Pull: the loop calls
// next to hand control to the task, the task calls yield to hand it back.
// Only one of them runs at any instant, and the race detector sees every
// switch as a synchronisation. When its task ends the coroutine parks in
// yield, ready to run the next task the loop gives it: creating a coroutine
// costs several times a switch, reusing one costs a switch.
type coro struct {
	next  func() (struct{}, bool)
	stop  func()
	yield func(struct{}) bool
	task  *taskCore
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

// suspend hands control back to the loop until the task is resumed. When
// the loop is closing instead, the task is marked killed: this await
// returns a cancellation error, and any later one unwinds the task (see
// taskKilled).
func (t *taskCore) suspend() {
	if t.mustCancel {
		t.cancelWait()
	}
	if !t.coro.yield(struct{}{}) {
		t.killed = true
	}
	if l := t.loop; debugEver.Load() && l.debug {
		l.taskGID.Store(goid())
	}
}

// maxFreeCoros bounds the coroutines kept for reuse after their task ends.
const maxFreeCoros = 256

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
		c.task = t
		t.coro = c
	}
	// current stays set after the step: the next task step overwrites it,
	// and a plain callback or the end of the iteration clears it.
	l.current = t
	c.next()
	if t.finished {
		t.coro = nil
		if len(l.freeCoros) < maxFreeCoros && !l.closing {
			l.freeCoros = append(l.freeCoros, c)
		} else {
			c.stop()
		}
	}
}

// unwind ends a pending task at Close.
func (l *Loop) unwind(t *taskCore) {
	if t.coro == nil {
		t.self.finishCancelled(cancelledError("loop closed"))
		return
	}
	t.killed = true
	c := t.coro
	l.current = t
	c.stop()
	l.current = nil
	t.coro = nil
	if !t.finished {
		// The coroutine ended without the body returning (Goexit).
		t.self.finishCancelled(cancelledError("loop closed"))
	}
}

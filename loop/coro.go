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

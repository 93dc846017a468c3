package loop

import (
	"time"

	"github.com/asyncgo/asyncgo/internal/eventfd"
)

// The loop blocks, when it has nothing to run, in Go's netpoller on an
// internal/eventfd wake-up (an eventfd on Linux, a pipe elsewhere), and
// CallSoonThreadsafe wakes it (asyncio's self-pipe, _write_to_self). A
// goroutine parked in the netpoller is picked up by the next thread looking
// for work, with no extra thread wake-up: waking the loop through a channel
// instead cost about 13µs per wake on a 2-vCPU machine (the scheduler's
// wakep), a third of a round trip to a worker process. The wake-up is
// written only when the loop is actually asleep. If no wake-up can be had
// (out of descriptors), a channel and a timer serve.

func (l *Loop) openSelfPipe() {
	if fd, err := eventfd.New(); err == nil {
		l.wakeFD = fd
	}
}

// wakeUp wakes the loop if it is blocked in poll. Safe from any goroutine.
func (l *Loop) wakeUp() {
	if l.wakeFD == nil {
		select {
		case l.wake <- struct{}{}:
		default:
		}
		return
	}
	if l.sleeping.Load() && l.sleeping.CompareAndSwap(true, false) {
		l.wakeFD.Wake()
	}
}

// block waits until wakeUp or until timeout (< 0: no timeout) has passed.
func (l *Loop) block(timeout int64) {
	if l.wakeFD == nil {
		l.blockChan(timeout)
		return
	}
	l.sleeping.Store(true)
	if l.tsPending.Load() { // arrived between the caller's check and now
		l.sleeping.Store(false)
		return
	}
	var deadline time.Time
	if timeout >= 0 {
		deadline = time.Now().Add(time.Duration(timeout))
	}
	_ = l.wakeFD.Wait(deadline) // a deadline error is the timeout
	l.sleeping.Store(false)
}

func (l *Loop) blockChan(timeout int64) {
	if timeout < 0 {
		<-l.wake
		return
	}
	if l.timer == nil {
		l.timer = time.NewTimer(time.Duration(timeout))
	} else {
		l.timer.Reset(time.Duration(timeout))
	}
	select {
	case <-l.wake:
		l.timer.Stop()
	case <-l.timer.C:
	}
}

func (l *Loop) closeSelfPipe() {
	if l.timer != nil {
		l.timer.Stop()
	}
	if l.wakeFD != nil {
		l.wakeFD.Close()
	}
}

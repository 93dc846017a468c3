package loop

import (
	"encoding/binary"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// The loop blocks, when it has nothing to run, reading an eventfd in Go's
// netpoller; CallSoonThreadsafe writes to it (asyncio's self-pipe,
// _write_to_self). A goroutine parked in the netpoller is picked up by the
// next thread looking for work, with no extra thread wake-up: waking the
// loop through a channel instead cost about 13µs per wake on a 2-vCPU
// machine (the scheduler's wakep), a third of a round trip to a worker
// process. The write happens only when the loop is actually asleep.

func (l *Loop) openSelfPipe() {
	fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return // fall back to the channel
	}
	l.wakeFile = os.NewFile(uintptr(fd), "asyncgo-loop-wakeup")
}

var wakeOne = binary.NativeEndian.AppendUint64(nil, 1)

// wakeUp wakes the loop if it is blocked in poll. Safe from any goroutine.
func (l *Loop) wakeUp() {
	if l.wakeFile == nil {
		select {
		case l.wake <- struct{}{}:
		default:
		}
		return
	}
	if l.sleeping.Load() && l.sleeping.CompareAndSwap(true, false) {
		_, _ = l.wakeFile.Write(wakeOne)
	}
}

// block waits until wakeUp or until timeout (< 0: no timeout) has passed.
func (l *Loop) block(timeout int64) {
	if l.wakeFile == nil {
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
	_ = l.wakeFile.SetReadDeadline(deadline)
	var buf [8]byte
	_, _ = l.wakeFile.Read(buf[:]) // a deadline error is the timeout
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

package executor

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/asyncgo/asyncgo/internal/eventfd"
)

// A waker lets a goroutine wait in the netpoller rather than on a channel,
// for the Result of a future that Job.WaitInNetpoller marked (a process
// pool's).
//
// Why: the goroutine that reads a worker's answer completes the future and
// must wake the caller waiting in Result. Woken through a channel, the
// caller is made runnable by the scheduler's ready(), which also wakes an
// idle P's thread to look for work (wakep): a futex wake, a thread that
// spins and sleeps again, competing for the CPUs with the worker process.
// On a 2-vCPU VM that handoff alone costs about 14µs, against a 17–22µs
// round trip to the child (processpool's BenchmarkPipeFloor and
// BenchmarkPipeFloorHandoff). A goroutine parked in the netpoller is
// instead picked up, with no extra wake, by the thread that next looks for
// work, here the reader's own thread as soon as it parks for the next
// answer: the handoff then costs an eventfd write and read, about 1µs
// (internal/eventfd).
type waker struct {
	fd *eventfd.FD
}

// maxWakers bounds the eventfds in use at once; beyond it, Result waits on
// the channel as for any future.
const maxWakers = 256

var wakers struct {
	mu    sync.Mutex
	free  []*waker
	inUse atomic.Int32
}

// getWaker returns a waker, or nil if none can be had.
func getWaker() *waker {
	if wakers.inUse.Add(1) > maxWakers {
		wakers.inUse.Add(-1)
		return nil
	}
	wakers.mu.Lock()
	if n := len(wakers.free); n > 0 {
		w := wakers.free[n-1]
		wakers.free = wakers.free[:n-1]
		wakers.mu.Unlock()
		return w
	}
	wakers.mu.Unlock()
	fd, err := eventfd.New()
	if err != nil {
		wakers.inUse.Add(-1)
		return nil
	}
	return &waker{fd: fd}
}

// putWaker keeps w for the next waiter. A wake that arrives later (from a
// completion or a context that raced with the waiter's return) leaves a
// count behind: the next waiter wakes once for nothing, checks its future
// and waits again.
func putWaker(w *waker) {
	wakers.mu.Lock()
	wakers.free = append(wakers.free, w)
	wakers.mu.Unlock()
	wakers.inUse.Add(-1)
}

// wake makes the waiter's wait return. Safe from any goroutine.
func (w *waker) wake() { w.fd.Wake() }

// wait parks until wake has been called at least once since the last wait.
func (w *waker) wait() error { return w.fd.Wait(time.Time{}) }

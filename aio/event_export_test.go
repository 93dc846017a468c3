package aio

import "sync/atomic"

// EventSleepers is how many threads, in any process, wait on e's word (0
// for a hosted event or one not mapped here).
func EventSleepers(e *Event) uint32 {
	if e.s == nil {
		return 0
	}
	slot := e.s.slot.Load()
	if slot == nil {
		return 0
	}
	return atomic.LoadUint32(&slot[1])
}

// Watches is how many event and lock watches the process has listed.
func Watches() int {
	watchesMu.Lock()
	n := len(watches)
	watchesMu.Unlock()
	lockWatchesMu.Lock()
	defer lockWatchesMu.Unlock()
	return n + len(lockWatches)
}

// LockWords is a shared-memory Lock's futex word and owner words, for a
// failure's message (nil for a hosted lock).
func LockWords(l *Lock) []uint32 {
	if l.s == nil {
		return nil
	}
	w, err := l.s.words()
	if err != nil {
		return nil
	}
	return []uint32{atomic.LoadUint32(&w[0]), atomic.LoadUint32(&w[2]), atomic.LoadUint32(&w[3])}
}

// SetHostedQueues makes the queues made from now on hosted (true) or in
// shared memory (false, where it can), and returns what restores the
// setting.
func SetHostedQueues(hosted bool) (restore func()) {
	was := hostedQueues
	hostedQueues = hosted || !shmSupported
	return func() { hostedQueues = was }
}

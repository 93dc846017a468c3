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

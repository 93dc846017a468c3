package loop

import "time"

// handleRec is the cancellable part of a scheduled callback. Records of
// CallSoon are pooled: gen changes when one is reused, so an old Handle
// cannot cancel a later callback.
type handleRec struct {
	gen       uint32
	cancelled bool
	pooled    bool
	fired     bool
	next      *handleRec
}

// Handle is asyncio.Handle: a callback scheduled by CallSoon. It is a small
// value; copies refer to the same callback.
//
// Unlike asyncio, Cancel on a handle whose callback has already run does
// nothing, and Cancelled then keeps reporting false. The zero Handle
// refers to no callback: Cancel does nothing, Cancelled reports false.
type Handle struct {
	rec *handleRec
	gen uint32
}

// Cancel stops the callback from running if it has not run yet. Loop
// goroutine only; idempotent.
func (h Handle) Cancel() {
	if h.rec != nil && h.rec.gen == h.gen {
		h.rec.cancelled = true
	}
}

// Cancelled reports whether Cancel was called before the callback ran.
func (h Handle) Cancelled() bool { return h.rec != nil && h.rec.gen == h.gen && h.rec.cancelled }

// TimerHandle is asyncio.TimerHandle: a callback scheduled by CallLater or
// CallAt. The zero TimerHandle refers to no callback: When returns the
// zero time.Time, and Cancel only marks it cancelled.
type TimerHandle struct {
	rec    handleRec
	when   int64
	seq    uint64
	fn     func()
	task   *taskCore // a sleeping task to wake instead of fn
	loop   *Loop
	inHeap bool
}

// When returns the deadline on the loop's clock (TimerHandle.when()).
func (t *TimerHandle) When() time.Time {
	if t.loop == nil {
		return time.Time{}
	}
	return t.loop.epoch.Add(time.Duration(t.when))
}

// Cancel stops the callback from running. Loop goroutine only; idempotent.
func (t *TimerHandle) Cancel() {
	if t.rec.cancelled {
		return
	}
	t.rec.cancelled = true
	if t.inHeap {
		t.loop.cancelledTimers++
	}
}

// Cancelled reports whether Cancel was called.
func (t *TimerHandle) Cancelled() bool { return t.rec.cancelled }

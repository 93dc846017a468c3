package loop

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// The loop makes two kinds of ctx of its own. A task's ctx is the task
// itself: Await finds the running task with one type assertion, and no
// context is allocated per task; its values come from the ctx the task was
// created with (as asyncio copies contextvars), its cancellation is the
// task's own, never its creator's. The ctx Timeout.Do gives its body (and
// so WaitFor's await) is a scope: it reports the Timeout's deadline and
// ends when the deadline passes, for plain Go code such as an http.Request
// made inside; awaits on it are governed by the Timeout itself.
//
// Any other ctx a task awaits with was derived by the user, and is
// watched (see awaitCtx): if it ends first, the await returns its error.

type taskKey struct{}

// ctxEnd is how a Timeout's scope ends: the error, set once, and the Done
// channel and AfterFunc registrations, made the first time anyone asks. A
// task's ctx has the same two parts, as a flag and a state pointer of its
// own (taskCore.ctxDone, ctxs), so that they fit in a task's padding.
// Safe from any goroutine.
type ctxEnd struct {
	err atomic.Pointer[error]
	s   atomic.Pointer[ctxState]
}

// ctxState is the part of a loop's ctx other goroutines wait on.
type ctxState struct {
	mu      sync.Mutex
	done    chan struct{}
	closed  bool
	afters  map[*afterFunc]struct{}
	onClose func() // releases what watches a scope's parent
}

type afterFunc struct{ f func() }

var (
	errCanceled = context.Canceled         // a task's ctx ends with it
	errDeadline = context.DeadlineExceeded // a scope's when its Timeout expires
)

// loadState returns the state *p points to, made on first use; made
// reports whether this call made it (the caller then closes it if the ctx
// has already ended: an end that raced with the making saw no state).
func loadState(p *atomic.Pointer[ctxState]) (s *ctxState, made bool) {
	if s := p.Load(); s != nil {
		return s, false
	}
	s = &ctxState{done: make(chan struct{})}
	if !p.CompareAndSwap(nil, s) {
		return p.Load(), false
	}
	return s, true
}

func (e *ctxEnd) Err() error {
	if p := e.err.Load(); p != nil {
		return *p
	}
	return nil
}

// end ends the ctx with *err (a pointer the caller keeps alive) and
// reports whether it was the first to.
func (e *ctxEnd) end(err *error) bool {
	if !e.err.CompareAndSwap(nil, err) {
		return false
	}
	if s := e.s.Load(); s != nil {
		s.close()
	}
	return true
}

func (e *ctxEnd) state() (s *ctxState, made bool) {
	s, made = loadState(&e.s)
	if made && e.err.Load() != nil {
		s.close()
	}
	return s, made
}

func (s *ctxState) afterFunc(f func()) (stop func() bool) {
	a := &afterFunc{f: f}
	s.mu.Lock()
	if s.closed {
		// In a goroutine, as context.AfterFunc does: the context package
		// calls this holding its child's lock, which f takes.
		s.mu.Unlock()
		go f()
		return func() bool { return false }
	}
	if s.afters == nil {
		s.afters = make(map[*afterFunc]struct{})
	}
	s.afters[a] = struct{}{}
	s.mu.Unlock()
	return func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		_, ok := s.afters[a]
		delete(s.afters, a)
		return ok
	}
}

func (s *ctxState) close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	close(s.done)
	afters, onClose := s.afters, s.onClose
	s.afters, s.onClose = nil, nil
	s.mu.Unlock()
	// Synchronously: the callers are the context package (propagating to
	// a derived ctx, or context.AfterFunc, which itself starts f in a
	// goroutine) and the scope's watch, so a ctx derived from a task's
	// ends at the moment the task is cancelled, on the loop, and what
	// depends on it does not depend on goroutine scheduling.
	for a := range afters {
		a.f()
	}
	if onClose != nil {
		onClose()
	}
}

// Deadline reports no deadline: a task's ctx ends by cancellation only.
// The ctx a Timeout gives its body reports the Timeout's deadline.
func (t *taskCore) Deadline() (time.Time, bool) { return time.Time{}, false }

// Done returns a channel closed when the task is cancelled (Cancel was
// called) or has finished. Safe from any goroutine.
func (t *taskCore) Done() <-chan struct{} { return t.ctxState().done }

func (t *taskCore) ctxState() *ctxState {
	s, made := loadState(&t.ctxs)
	if made && t.ctxDone.Load() {
		s.close()
	}
	return s
}

// Err returns context.Canceled once Done is closed. Safe from any goroutine.
func (t *taskCore) Err() error {
	if t.ctxDone.Load() {
		return context.Canceled
	}
	return nil
}

// Value returns the task for the package's own key, and otherwise the value
// from the ctx the task was created with.
func (t *taskCore) Value(key any) any {
	if key == (taskKey{}) {
		return t
	}
	if t.parent == nil {
		return nil
	}
	return t.parent.Value(key)
}

func (t *taskCore) String() string { return "loop.Task(" + t.name() + ")" }

// AfterFunc lets context.WithCancel and context.AfterFunc on a task's ctx
// work without a watcher goroutine. f runs on the goroutine that ends the
// ctx (the loop's, for a Cancel), at that moment, or in a goroutine of its
// own if the ctx has already ended: the context package, its caller, then
// starts user functions in goroutines of their own.
func (t *taskCore) AfterFunc(f func()) (stop func() bool) { return t.ctxState().afterFunc(f) }

// cancelCtx closes the task's ctx; loop goroutine only.
func (t *taskCore) cancelCtx() {
	if !t.ctxDone.Swap(true) {
		if s := t.ctxs.Load(); s != nil {
			s.close()
		}
	}
}

// scopeCtx is the ctx Timeout.Do gives its body: its parent's values and
// cancellation, and the Timeout's deadline. It ends with
// context.DeadlineExceeded when the Timeout expires, and with
// context.Canceled when Do returns (as the cancel of context.WithTimeout).
type scopeCtx struct {
	parent   context.Context
	task     *taskCore
	tm       *Timeout
	deadline atomic.Pointer[time.Time] // nil: the Timeout has none
	wall     *time.Timer               // real clock: ends the scope at the deadline; under s.mu
	wallEnd  atomic.Bool               // the wall-clock timer ended the scope
	exited   atomic.Bool               // Do returned: the scope is over for good
	ctxEnd
}

// Deadline is the earlier of the Timeout's deadline and the parent's.
func (c *scopeCtx) Deadline() (time.Time, bool) {
	pd, pok := c.parent.Deadline()
	if d := c.deadline.Load(); d != nil && (!pok || d.Before(pd)) {
		return *d, true
	}
	return pd, pok
}

// Done returns a channel closed when the Timeout expires, Do returns, or
// the parent ctx ends. Safe from any goroutine.
func (c *scopeCtx) Done() <-chan struct{} {
	s, made := c.state()
	if made {
		c.watch(s)
	}
	return s.done
}

// Err is the scope's own end, or else its parent's: a parent that has
// ended ends the scope at once, so that Done is closed whenever Err is not
// nil, as the context contract wants.
func (c *scopeCtx) Err() error {
	if err := c.ctxEnd.Err(); err != nil {
		return err
	}
	if err := c.parent.Err(); err != nil {
		c.end(&err)
		return c.ctxEnd.Err()
	}
	return nil
}

// Value looks in the parent: a scope adds no values (but itself, for
// foreignCtx).
func (c *scopeCtx) Value(key any) any {
	if key == (scopeKey{}) {
		return c
	}
	return c.parent.Value(key)
}

// AfterFunc runs f once the scope ends, as a task's ctx's AfterFunc does.
func (c *scopeCtx) AfterFunc(f func()) (stop func() bool) {
	s, made := c.state()
	if made {
		c.watch(s)
	}
	return s.afterFunc(f)
}

func (c *scopeCtx) String() string { return "loop.Timeout(" + c.task.String() + ")" }

// watch arms what ends the scope besides its Timeout, once someone waits
// on its Done: its parent ending, and on the real clock a wall-clock timer
// at the deadline, so that Go code in another goroutine (an http.Request
// made through ToThread) stops on time even while the loop is busy. Both
// are dropped when the scope ends.
func (c *scopeCtx) watch(s *ctxState) {
	parent := c.parent
	end := func() {
		err := parent.Err()
		c.end(&err)
	}
	var stop func() bool
	if af, ok := parent.(interface{ AfterFunc(func()) func() bool }); ok {
		stop = af.AfterFunc(end) // a loop ctx: at once, on the goroutine that ends it
	} else {
		stop = context.AfterFunc(parent, end)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		stop()
		return
	}
	if !c.task.loop.virtual {
		if d := c.deadline.Load(); d != nil {
			c.wall = time.AfterFunc(time.Until(*d), c.wallExpired)
		}
	}
	s.onClose = func() {
		stop()
		s.mu.Lock()
		if c.wall != nil {
			c.wall.Stop()
		}
		s.mu.Unlock()
	}
}

// wallExpired is the wall-clock timer's: the deadline passed, perhaps
// while the loop was too busy to run its Timeout's own timer.
func (c *scopeCtx) wallExpired() {
	c.wallEnd.Store(true)
	c.end(&errDeadline)
}

// expireFirst runs on the loop when an await on a ctx derived from this
// scope (or from scopes around it) sees that ctx end: if a scope ended on
// its wall-clock timer before its Timeout expired on the loop, the Timeout
// expires now, as asyncio would have it, and the await is not abandoned.
func expireFirst(ctx context.Context) bool {
	expired := false
	for s := innerScope(ctx); s != nil; s = innerScope(s.parent) {
		if s.wallEnd.Load() && s.tm.state == timeoutEntered {
			s.tm.cancelHandles()
			s.tm.onTimeout()
			expired = true
		}
	}
	return expired
}

// setDeadline is Reschedule's: it moves the deadline Deadline reports, and
// the wall-clock timer if one is armed. Loop goroutine only.
func (c *scopeCtx) setDeadline(when time.Time) {
	if when.IsZero() {
		c.deadline.Store(nil)
	} else {
		c.deadline.Store(&when)
	}
	s := c.s.Load()
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || c.task.loop.virtual {
		return
	}
	switch {
	case c.wall != nil && when.IsZero():
		c.wall.Stop()
	case c.wall != nil:
		c.wall.Reset(time.Until(when))
	case !when.IsZero():
		c.wall = time.AfterFunc(time.Until(when), c.wallExpired)
	}
}

// taskOf returns the task a ctx belongs to, or nil.
func taskOf(ctx context.Context) *taskCore {
	switch c := ctx.(type) {
	case *taskCore:
		return c
	case *scopeCtx:
		return c.task
	case nil:
		return nil
	}
	t, _ := ctx.Value(taskKey{}).(*taskCore)
	return t
}

// runningTask returns the task of ctx if it is the one running now.
func runningTask(ctx context.Context) *taskCore {
	t := taskOf(ctx)
	if t == nil || t.loop.current != t {
		return nil
	}
	return t
}

// foreignCtx returns the ctx whose end, besides the task's own
// cancellation, ends an await made with ctx: nil for the task's ctx, a
// Timeout's scope over it, or a ctx derived from them by values only
// (context.WithValue: the same Done channel); otherwise the ctx itself
// (context.WithCancel, WithTimeout, WithDeadline, or anything else with a
// Done channel of its own). A scope's own end needs no watching: its
// Timeout cancels the task when it expires.
func foreignCtx(ctx context.Context) context.Context {
	for {
		switch c := ctx.(type) {
		case *taskCore:
			return nil
		case *scopeCtx:
			if c.exited.Load() {
				// Kept past its Do: an ended ctx, as a cancelled
				// WithCancel's, and an await with it returns at once.
				return c
			}
			ctx = c.parent
			continue
		}
		done := ctx.Done()
		if done == nil {
			return nil // context.WithoutCancel: it never ends
		}
		t := taskOf(ctx)
		if t == nil {
			return ctx
		}
		if done == t.Done() {
			return nil // values only, over the task's ctx
		}
		if s := innerScope(ctx); s != nil && done == s.Done() {
			ctx = s.parent // values only, over a scope
			continue
		}
		return ctx
	}
}

type scopeKey struct{}

// innerScope finds the innermost Timeout scope a derived ctx sits on.
func innerScope(ctx context.Context) *scopeCtx {
	s, _ := ctx.Value(scopeKey{}).(*scopeCtx)
	return s
}

// valuesOf is the ctx a new task takes its values from: its creator's
// values without its creator's cancellation. A task spawned from a ctx
// derived from its creator's (context.WithValue(ctx, ...)) keeps that chain,
// and with it the creator, reachable while it lives: Go contexts are
// chains, where asyncio copies a flat context.
func valuesOf(ctx context.Context) context.Context {
	switch c := ctx.(type) {
	case nil:
		return nil
	case *taskCore:
		return c.parent
	case *scopeCtx:
		return valuesOf(c.parent)
	}
	if ctx == context.Background() {
		return nil // no values to see
	}
	return context.WithoutCancel(ctx)
}

// checkCtx is the first step of an await that has to wait: it returns the
// foreign ctx that may end the wait early (nil if none), or, if that ctx
// has already ended or its deadline passed on the loop's clock, its error:
// the await then returns it without waiting.
func (t *taskCore) checkCtx(ctx context.Context) (context.Context, error) {
	if ctx == context.Context(t) {
		return nil, nil // the common case, inlined into every await
	}
	return t.checkDerived(ctx)
}

func (t *taskCore) checkDerived(ctx context.Context) (context.Context, error) {
	if t.mustCancel {
		// The task's own cancellation, requested while it ran, is
		// delivered at this await as in asyncio; it has also ended any
		// ctx derived from the task's, which must not pre-empt it.
		return nil, nil
	}
	var ext context.Context
	if r := t.rare.Load(); r != nil && r.watch != nil && r.watch.from == ctx && r.watch.ctx != nil {
		ext = r.watch.ctx // as the last await found it
	} else if ext = foreignCtx(ctx); ext == nil {
		return nil, nil
	}
	if err := ext.Err(); err != nil {
		return nil, err
	}
	if d, ok := ext.Deadline(); ok && t.loop.toLoopTime(d) <= t.loop.now() {
		return nil, context.DeadlineExceeded
	}
	return ext, nil
}

// ctxWatch ends an await of a task early if its foreign ctx ends first:
// context.AfterFunc brings the news to the loop through CallSoonThreadsafe,
// and on the virtual clock a timer at the ctx's deadline, read as loop
// time, does it without waiting for the wall clock.
//
// A task keeps one watch, and its AfterFunc registration stays in place
// from one await to the next while they use the same ctx (a handler that
// derives one ctx and passes it to every await): such an await allocates
// nothing. The registration moves when the ctx does, and ends with the
// task.
//
// The news from context.AfterFunc arrives from another goroutine, some time
// after the ctx ended. A loop about to sleep, or to move its virtual clock,
// first looks at the ctxs it watches (settleWatches), so that a ctx
// cancelled by the loop's own code ends its awaits before the loop waits
// or time moves: the outcome does not depend on goroutine scheduling.
type ctxWatch struct {
	t       *taskCore
	ctx     context.Context // the foreign ctx watched
	from    context.Context // the ctx the last await was given, which foreignCtx found ctx in
	stop    func() bool     // the AfterFunc registration on ctx
	timer   *TimerHandle    // virtual clock: at the ctx's deadline
	expireF func()          // w.expire, bound once
	active  bool            // an await with ctx is in progress
	idx     int             // in the loop's watches while active
}

// watchFor returns t's watch, registered on ext, found in from.
func (t *taskCore) watchFor(from, ext context.Context) *ctxWatch {
	r := t.getRare()
	w := r.watch
	if w == nil {
		w = &ctxWatch{t: t}
		w.expireF = w.expire
		r.watch = w
	}
	if w.ctx != ext {
		w.release()
		w.ctx = ext
		l := t.loop
		w.stop = context.AfterFunc(ext, func() {
			_ = l.CallSoonThreadsafe(func() { w.ended(ext) })
		})
	}
	w.from = from
	return w
}

// release drops the watch's registration; at the task's end, or when its
// next await watches another ctx.
func (w *ctxWatch) release() {
	if w.stop != nil {
		w.stop()
		w.stop, w.ctx, w.from = nil, nil, nil
	}
}

// wait suspends t until it is woken and returns what the await returns
// then (resumeErr); ext (what checkCtx found in ctx), if set, may end the
// wait early, and its error is returned unless a cancellation of the task
// came too.
func (t *taskCore) wait(ctx, ext context.Context) error {
	if ext == nil {
		t.suspend()
		return t.resumeErr()
	}
	l := t.loop
	w := t.watchFor(ctx, ext)
	w.active = true
	if d, ok := ext.Deadline(); ok && l.virtual {
		w.timer = l.addTimer(l.toLoopTime(d), w.expireF, nil)
	}
	w.idx = len(l.watches)
	l.watches = append(l.watches, w)
	t.forwarded = false
	t.suspend()
	w.active = false
	last := len(l.watches) - 1
	l.watches[w.idx] = l.watches[last]
	l.watches[w.idx].idx = w.idx
	l.watches[last] = nil
	l.watches = l.watches[:last]
	if w.timer != nil {
		w.timer.Cancel()
		w.timer = nil
	}
	err := t.resumeErr()
	if t.abandoned {
		t.abandoned = false
		if err == nil {
			err = t.getRare().ctxErr
		}
		t.getRare().ctxErr = nil
	}
	return err
}

// settleWatches fires the watches whose ctx has ended, and reports whether
// any task woke.
func (l *Loop) settleWatches() bool {
	woke := false
	for i := 0; i < len(l.watches); i++ {
		if w := l.watches[i]; w.active && w.ctx.Err() != nil {
			w.fire(w.ctx.Err())
			woke = woke || !w.active
		}
	}
	return woke
}

// ended runs on the loop once ctx, a ctx this watch was registered on, has
// ended: it ends the await in progress if that await watches ctx.
func (w *ctxWatch) ended(ctx context.Context) {
	if w.active && w.ctx == ctx {
		w.fire(ctx.Err())
	}
}

// expire runs on the loop when the virtual clock reaches the watched
// ctx's deadline, as it was when the timer was armed: it may have moved
// since (a Timeout's Reschedule).
func (w *ctxWatch) expire() {
	w.timer = nil
	if !w.active {
		return
	}
	err := w.ctx.Err()
	if err == nil {
		l := w.t.loop
		d, ok := w.ctx.Deadline()
		if !ok {
			return
		}
		if when := l.toLoopTime(d); when > l.now() {
			w.timer = l.addTimer(when, w.expireF, nil)
			return
		}
		err = context.DeadlineExceeded
	}
	w.fire(err)
}

// fire ends the await in progress with err, unless the Timeout around it
// expires first (expireFirst) or the task was already woken.
func (w *ctxWatch) fire(err error) {
	if expireFirst(w.ctx) {
		return
	}
	if w.t.abandonWait(err) {
		w.active = false
	}
}

// abandonWait wakes the suspended task t with err, taking it off what it
// waits on, unless it has already been woken (the future completed, the
// task was cancelled: that outcome wins, and so does a cancellation of the
// task passed on to what it awaits). What it awaits is left alone, as
// wait_for(shield(f)) would: a future or task runs on, a sleep's timer is
// dropped, and a lock's or queue's waiter is cancelled, so the primitive
// passes on any wake-up it held and nothing is lost.
func (t *taskCore) abandonWait(err error) bool {
	l := t.loop
	switch {
	case t.waitFut != nil:
		f := t.waitFut
		if f.state != statePending || t.forwarded {
			// Done, or the task's own cancellation went to the task or
			// gather it awaits: it waits for that one to finish, as in
			// asyncio.
			return false
		}
		t.getRare().ctxErr = err
		t.abandoned = true
		if f.internal {
			f.cancel("") // wakes t through its callback
		} else {
			f.removeWaiter(t)
			t.waitFut = nil // a Cancel from now on is the task's own
			l.pushSoon(readyItem{task: t})
		}
	case t.waitTimer != nil:
		th := t.waitTimer
		if th.rec.fired || th.rec.cancelled {
			return false
		}
		th.Cancel()
		t.getRare().ctxErr = err
		t.abandoned = true
		l.pushSoon(readyItem{task: t})
	default:
		return false
	}
	return true
}

// TaskContext returns the ctx of the task ctx belongs to, without what was
// derived from it (deadlines, cancellations, values), or nil outside a
// task. Code that must await after a derived ctx ended, as
// Condition.Wait re-acquires its lock whatever happened, awaits with it.
func TaskContext(ctx context.Context) context.Context {
	if t := taskOf(ctx); t != nil {
		return t
	}
	return nil
}

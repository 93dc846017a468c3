package loop

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"weak"
)

type futState uint8

const (
	statePending futState = iota
	stateFinished
	stateCancelled
)

// CallbackID identifies a done callback for RemoveDoneCallback (Go cannot
// compare functions, so the registration is named instead).
type CallbackID uint64

// callback is a done callback: a task to wake, or a function to schedule.
// It is two words, since a future with a million waiting tasks holds a
// million of them.
type callback struct {
	task *taskCore
	fn   *fnCallback
}

type fnCallback struct {
	fn func()
	id CallbackID
}

func (c *callback) empty() bool { return c.fn == nil && c.task == nil }

// canceler redirects Cancel for futures that are tasks or gathers.
type canceler interface{ cancelRequest(msg string) bool }

// futureCore is the part of a Future that does not depend on its type.
type futureCore struct {
	loop     *Loop
	state    futState
	isTask   bool
	internal bool // a lock's or queue's waiter: no DoneChan, skip its upkeep
	err      error
	cb0      callback    // the first callback, stored inline
	cbs      *[]callback // the rest, allocated when a second one comes
	doneCh   atomic.Pointer[chan struct{}]
	owner    canceler
	unret    *unretrieved
}

// Waitable is any Future or Task, whatever its result type: what Wait,
// AsCompleted and RunUntilComplete accept.
type Waitable interface {
	Done() bool
	Cancelled() bool
	Cancel(msg ...string) bool
	Err() error
	base() *futureCore
}

// Awaitable is a Future or Task of T.
type Awaitable[T any] interface {
	Waitable
	Await(ctx context.Context) (T, error)
	Result() (T, error)
}

var closedChan = func() *chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return &ch
}()

func (f *futureCore) addCallback(fn func()) CallbackID {
	f.loop.cbSeq++
	id := CallbackID(f.loop.cbSeq)
	if f.state != statePending {
		f.loop.pushSoon(readyItem{fn: fn}) // call_soon, as asyncio's add_done_callback on a done future
		return id
	}
	f.add(callback{fn: &fnCallback{fn: fn, id: id}})
	return id
}

// addWaiter registers a task to wake when f is done; f is pending.
func (f *futureCore) addWaiter(t *taskCore) {
	f.add(callback{task: t})
}

// removeWaiter takes t off f's callbacks.
func (f *futureCore) removeWaiter(t *taskCore) {
	if f.cb0.task == t {
		f.cb0 = callback{}
		return
	}
	cbs := f.rest()
	for i := range cbs {
		if cbs[i].task == t {
			// Deleted, not blanked: a long-lived future polled with
			// timeouts would grow a slot per poll for ever.
			*f.cbs = slices.Delete(cbs, i, i+1)
			return
		}
	}
}

func (f *futureCore) add(cb callback) {
	switch {
	case f.cbs != nil:
		*f.cbs = append(*f.cbs, cb)
	case f.cb0.empty():
		f.cb0 = cb
	default:
		f.cbs = &[]callback{cb}
	}
}

func (f *futureCore) rest() []callback {
	if f.cbs == nil {
		return nil
	}
	return *f.cbs
}

func (f *futureCore) removeCallback(id CallbackID) int {
	n := 0
	if c := f.cb0.fn; c != nil && c.id == id {
		f.cb0 = callback{}
		n++
	}
	if f.cbs != nil {
		*f.cbs = slices.DeleteFunc(*f.cbs, func(cb callback) bool {
			if c := cb.fn; c != nil && c.id == id {
				n++
				return true
			}
			return false
		})
	}
	return n
}

func (l *Loop) pushCallback(cb callback) {
	if cb.task != nil {
		l.pushSoon(readyItem{task: cb.task})
	} else {
		l.pushSoon(readyItem{fn: cb.fn.fn})
	}
}

// complete moves f out of pending and schedules its callbacks in the order
// they were added, each through the ready queue (never synchronously).
func (f *futureCore) complete(state futState, err error) {
	f.state = state
	f.err = err
	l := f.loop
	if !f.cb0.empty() {
		l.pushCallback(f.cb0)
	}
	for _, cb := range f.rest() {
		if !cb.empty() {
			l.pushCallback(cb)
		}
	}
	f.cb0, f.cbs = callback{}, nil
	if !f.internal {
		if ch := f.doneCh.Swap(closedChan); ch != nil && ch != closedChan {
			close(*ch)
		}
	}
}

func (f *futureCore) cancel(msg string) bool {
	f.markRetrieved()
	if f.state != statePending {
		return false
	}
	f.complete(stateCancelled, cancelledError(msg))
	return true
}

func (f *futureCore) cancelRequest(msg string) bool {
	if f.owner != nil {
		return f.owner.cancelRequest(msg)
	}
	return f.cancel(msg)
}

// errRetrieve is what result() raises, and marks the error retrieved.
func (f *futureCore) errRetrieve() error {
	switch f.state {
	case statePending:
		return invalidState("Result is not set")
	case stateCancelled:
		return f.err
	}
	f.markRetrieved()
	return f.err
}

func (f *futureCore) doneChan() <-chan struct{} {
	if ch := f.doneCh.Load(); ch != nil {
		return *ch
	}
	ch := make(chan struct{})
	if f.doneCh.CompareAndSwap(nil, &ch) {
		return ch
	}
	return *f.doneCh.Load()
}

// markRetrieved silences the "never retrieved" report. The flag lives in
// unret, set before the future's DoneChan closes and atomic, so a
// goroutine that waited on DoneChan may read the result too.
func (f *futureCore) markRetrieved() {
	if f.unret != nil {
		f.unret.retrieved.Store(true)
	}
}

// unretrieved tracks a failed future's error until someone reads it, and
// reports it if nobody does: asyncio's "exception was never retrieved".
// The report comes when the future is garbage-collected (a cleanup: the
// future is gone, so the report carries a finished stand-in with its name
// and error), or, for a future still alive then, when its loop closes
// (Python reports at interpreter exit); see Loop.reportUnretrieved.
type unretrieved struct {
	retrieved atomic.Bool
	loop      *Loop
	err       error
	task      string // the task's name, set when the collector watches it; "" for a plain Future
	ref       weakWaitable
}

// weakWaitable is a weak pointer to the failed Future or Task.
type weakWaitable interface{ get() Waitable }

type weakRef[P any] struct{ p weak.Pointer[P] }

func (w weakRef[P]) get() Waitable {
	if v := w.p.Value(); v != nil {
		return any(v).(Waitable)
	}
	return nil
}

// watchUnretrieved starts tracking f's error; self is f's Future or Task.
// It runs before DoneChan closes: a goroutine that waited on it may read
// the error (and mark it retrieved) at once. The loop holds self for an
// iteration first (most errors are read by then: an awaiting task wakes in
// the next one), and only a future still unread then pays for a weak
// pointer and a cleanup (Loop.ageUnretrieved).
func watchUnretrieved(self collectable, err error) {
	f := self.base()
	u := &unretrieved{loop: f.loop, err: err}
	f.unret = u
	l := f.loop
	if !l.running.Load() { // closed, or between runs: no iteration to wait for
		self.watchCollected(u)
		if !l.closed.Load() {
			l.trackUnretrieved(u)
		}
		return
	}
	l.young = append(l.young, youngUnretrieved{u, self})
}

// collectable is a Future or Task that can be watched by the collector.
type collectable interface {
	Waitable
	watchCollected(u *unretrieved)
}

func (f *Future[T]) watchCollected(u *unretrieved) {
	u.ref = weakRef[Future[T]]{weak.Make(f)}
	runtime.AddCleanup(f, reportCollected, u)
}

func (t *Task[T]) watchCollected(u *unretrieved) {
	u.task = t.tc.name() // for the stand-in, once t is gone
	u.ref = weakRef[Task[T]]{weak.Make(t)}
	runtime.AddCleanup(t, reportCollected, u)
}

// reportCollected is the cleanup of a failed future nobody read.
func reportCollected(u *unretrieved) {
	if u.retrieved.Swap(true) { // also drops u from the loop's list
		return
	}
	l := u.loop
	var stand Waitable
	if u.task != "" {
		stand = finishedStandIn(l, u.task, u.err)
	} else {
		stand = &Future[any]{futureCore: futureCore{loop: l, state: stateFinished, err: u.err}}
	}
	l.postReport(unretrievedContext(stand, u.err))
}

// finishedStandIn is a finished task of l named name that failed with err:
// what a report about a collected task carries in its place. It was never
// scheduled and is in no list of the loop.
func finishedStandIn(l *Loop, name string, err error) *Task[any] {
	t := &Task[any]{}
	t.futureCore = futureCore{loop: l, state: stateFinished, err: err, isTask: true}
	tc := &t.tc
	t.owner = tc
	tc.loop, tc.self, tc.finished = l, t, true
	tc.ctxDone.Store(true)
	tc.getRare().name.Store(&name)
	return t
}

// unretrievedContext is asyncio's report: Future.__del__'s context, with
// the task in Task too when the future is one.
func unretrievedContext(w Waitable, err error) ExceptionContext {
	c := ExceptionContext{Message: "Future exception was never retrieved", Err: err, Future: w}
	if t, ok := w.(AnyTask); ok {
		c.Message = "Task exception was never retrieved"
		c.Task = t
	}
	return c
}

// Future is asyncio.Future: a result of type T that will exist later. It
// belongs to one loop; its methods are for that loop's goroutine (its
// tasks and callbacks), except DoneChan, which any goroutine may use. The
// zero Future belongs to no loop: make one with NewFuture; the zero
// value's SetResult, SetErr and Await return ErrZeroFuture, and Cancel
// returns false.
type Future[T any] struct {
	futureCore
	result T
}

// NewFuture is loop.create_future: a pending future bound to l.
func NewFuture[T any](l *Loop) *Future[T] {
	return &Future[T]{futureCore: futureCore{loop: l}}
}

func (f *futureCore) base() *futureCore { return f }

// Loop returns the loop the future is bound to (get_loop).
func (f *futureCore) Loop() *Loop { return f.loop }

// Done reports whether the future has a result, an error, or was cancelled.
func (f *futureCore) Done() bool { return f.state != statePending }

// Cancelled reports whether the future was cancelled.
func (f *futureCore) Cancelled() bool { return f.state == stateCancelled }

// Err is future.exception(): the error the future finished with (nil on
// success), the cancellation error if it was cancelled, or an
// ErrInvalidState error if it is pending. It marks the error retrieved.
func (f *futureCore) Err() error { return f.errRetrieve() }

// Cancel is future.cancel() or future.cancel(msg): if the future is
// pending it becomes cancelled, its callbacks are scheduled, and Cancel
// returns true. On a task, Cancel requests the task's cancellation
// (Task.Cancel). Several msg arguments are joined with spaces.
func (f *futureCore) Cancel(msg ...string) bool {
	if f.loop == nil {
		return false // a zero Future or Task
	}
	return f.cancelRequest(cancelArg(msg))
}

// cancelArg is the message of Cancel(msg...).
func cancelArg(msg []string) string {
	switch len(msg) {
	case 0:
		return ""
	case 1:
		return msg[0]
	}
	return strings.Join(msg, " ")
}

// DoneChan returns a channel closed when the future is done. Any goroutine
// may select on it; once it is closed, Result and Err may be read from
// that goroutine too.
func (f *futureCore) DoneChan() <-chan struct{} { return f.doneChan() }

// RemoveDoneCallback removes the callback registered as id and returns how
// many were removed (0 or 1).
func (f *futureCore) RemoveDoneCallback(id CallbackID) int { return f.removeCallback(id) }

// Result is future.result(): the value and error the future finished with.
// A pending future returns an ErrInvalidState error, a cancelled one its
// cancellation error. It marks the error retrieved.
func (f *Future[T]) Result() (T, error) {
	if err := f.errRetrieve(); err != nil {
		var zero T
		return zero, err
	}
	return f.result, nil
}

// SetResult is set_result: the future finishes with v. It returns an
// ErrInvalidState error if the future is already done, and ErrTaskSetResult
// on a task.
func (f *Future[T]) SetResult(v T) error {
	if f.loop == nil {
		return ErrZeroFuture
	}
	if f.isTask {
		return ErrTaskSetResult
	}
	if f.state != statePending {
		return invalidState("invalid state")
	}
	f.result = v
	f.complete(stateFinished, nil)
	return nil
}

// SetErr is set_exception: the future finishes with err. A nil err is an
// error. An err matching ErrCancelled is stored as is: the future is done
// with that error but Cancelled reports false, as in asyncio.
func (f *Future[T]) SetErr(err error) error {
	if f.loop == nil {
		return ErrZeroFuture
	}
	if f.isTask {
		return ErrTaskSetResult
	}
	if err == nil {
		return errors.New("loop: SetErr(nil)")
	}
	if f.state != statePending {
		return invalidState("invalid state")
	}
	watchUnretrieved(f, err)
	f.complete(stateFinished, err)
	return nil
}

// AddDoneCallback is add_done_callback: fn(f) is scheduled with CallSoon
// when f is done, or at once if it already is. Callbacks run in the order
// they were added.
func (f *Future[T]) AddDoneCallback(fn func(*Future[T])) CallbackID {
	if f.loop == nil {
		panic(ErrZeroFuture)
	}
	return f.addCallback(func() { fn(f) })
}

// Await waits for the future inside a task and returns its result. ctx must
// be the running task's ctx (or derived from it). A future that is already
// done returns at once, without giving up the loop. If the awaiting task is
// cancelled meanwhile, Await returns the cancellation error (and the
// future, if it is a task or a gather, is cancelled too). If ctx is a
// derived ctx that ends first, Await returns ctx's error and leaves the
// future as it is.
func (f *Future[T]) Await(ctx context.Context) (T, error) {
	if f.state == statePending {
		if err := awaitCore(ctx, &f.futureCore); err != nil {
			var zero T
			return zero, err
		}
	}
	return f.Result()
}

// releaseWaiter is asyncio's _release_waiter: it completes a waiter future
// unless something (a cancellation, an earlier release) already did.
func releaseWaiter(w *Future[struct{}]) {
	if w != nil && w.state == statePending {
		w.complete(stateFinished, nil)
	}
}

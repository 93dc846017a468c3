package loop

import (
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/asyncgo/asyncgo/executor"
)

// taskBody is what the loop needs from a Task of any type.
type taskBody interface {
	AnyTask
	runBody()
	finishCancelled(err error)
}

// taskCore is the part of a Task that does not depend on its type. It is
// also the task's ctx (see context.go).
//
// The fields a task switch touches come first, on one cache line; the Task
// stays small because a million parked tasks each carry one.
type taskCore struct {
	loop       *Loop
	coro       *coro
	mustCancel bool  // deliver a cancellation at the next resume
	killed     bool  // the loop closed under the task
	finished   bool  //
	abandoned  bool  // a foreign ctx ended the await: rare's ctxErr says how
	forwarded  bool  // a cancellation went to what the task awaits (foreign-ctx awaits only)
	locked     bool  // its coroutine was made on a driver locked to its thread (coro.go)
	kills      uint8 // awaits refused since the loop closed under the task
	numCancels int32
	id         uint32
	idx        int32        // in the loop's list of pending tasks
	ctxDone    atomic.Bool  // the task's ctx has ended (context.Canceled)
	waitFut    *futureCore  // the future the task awaits
	waitTimer  *TimerHandle // or the timer it sleeps on
	self       taskBody
	parent     context.Context          // where Value looks beyond the task
	rare       atomic.Pointer[taskRare] // String reads its name from any goroutine
	ctxs       atomic.Pointer[ctxState] // the ctx's Done channel, made on demand
}

// taskRare holds what most tasks never set. Only name may be read from
// other goroutines.
type taskRare struct {
	name      atomic.Pointer[string] // set by WithName or SetName
	cancelMsg string
	ctxErr    error     // the error of the foreign ctx that ended the await
	watch     *ctxWatch // watches the foreign ctx of its awaits (context.go)
	swallow   swallowWatch
}

func (t *taskCore) getRare() *taskRare {
	r := t.rare.Load()
	if r == nil {
		r = &taskRare{}
		t.rare.Store(r)
	}
	return r
}

func (t *taskCore) fut() *futureCore { return t.self.base() }

func (t *taskCore) cancelMsg() string {
	if r := t.rare.Load(); r != nil {
		return r.cancelMsg
	}
	return ""
}

func (t *taskCore) setCancelMsg(msg string) {
	if msg == "" && t.rare.Load() == nil {
		return
	}
	t.getRare().cancelMsg = msg
}

// AnyTask is a Task of any result type, as CurrentTask and AllTasks return
// it.
type AnyTask interface {
	Waitable
	// Name is get_name(): "Task-N" unless set.
	Name() string
	// SetName is set_name().
	SetName(name string)
	// Cancel is Task.cancel() or Task.cancel(msg).
	Cancel(msg ...string) bool
	// Cancelling is Task.cancelling(): pending cancellation requests.
	Cancelling() int
	// Uncancel is Task.uncancel().
	Uncancel() int
	// Loop returns the task's loop.
	Loop() *Loop
	// Context returns the ctx the task's function was given.
	Context() context.Context
}

// Task is asyncio.Task: a function running as a coroutine on a loop. It
// is a Future of the function's result: Await, Result, Err, Done,
// AddDoneCallback work as on a Future. The loop keeps every pending task
// reachable, so a task nobody holds still runs to its end. The zero Task
// belongs to no loop (make one with CreateTask or Spawn): its Await returns
// ErrZeroFuture and its Cancel returns false.
type Task[T any] struct {
	Future[T]
	tc taskCore
	fn func(ctx context.Context) (T, error)
}

// TaskOption configures a task at creation.
type TaskOption struct {
	name string
	ctx  context.Context
}

// WithName names a task (create_task's name=).
func WithName(name string) TaskOption { return TaskOption{name: name} }

// WithContext sets the ctx whose values the task sees (create_task's
// context=). Its cancellation is not inherited.
func WithContext(ctx context.Context) TaskOption { return TaskOption{ctx: ctx} }

// CreateTask is loop.create_task: fn will run as a task of l, starting in
// a later iteration (tasks start lazily, as in asyncio). l need not be
// running. It panics with ErrLoopClosed on a closed loop.
func CreateTask[T any](l *Loop, fn func(ctx context.Context) (T, error), opts ...TaskOption) *Task[T] {
	return createTask(l, fn, nil, opts)
}

func createTask[T any](l *Loop, fn func(ctx context.Context) (T, error), parent context.Context, opts []TaskOption) *Task[T] {
	l.checkOpen()
	t := &Task[T]{fn: fn}
	t.futureCore.loop = l
	t.isTask = true
	tc := &t.tc
	t.owner = tc
	tc.loop = l
	tc.self = t
	tc.parent = parent
	for _, o := range opts {
		if o.name != "" {
			tc.getRare().name.Store(&o.name)
		}
		if o.ctx != nil {
			tc.parent = valuesOf(o.ctx)
		}
	}
	l.taskCount++
	tc.id = l.taskCount
	tc.idx = int32(len(l.tasks))
	l.tasks = append(l.tasks, tc)
	l.pushSoon(readyItem{task: tc})
	return t
}

// Spawn is asyncio.create_task: fn runs as a new task on the loop of ctx,
// which must come from a task (or carry one). The new task sees ctx's
// values but not its cancellation. It panics if ctx has no loop.
func Spawn[T any](ctx context.Context, fn func(ctx context.Context) (T, error), opts ...TaskOption) *Task[T] {
	t := taskOf(ctx)
	if t == nil {
		panic(ErrNoRunningLoop)
	}
	return createTask(t.loop, fn, valuesOf(ctx), opts)
}

// Go is Spawn for a function with no result.
func Go(ctx context.Context, fn func(ctx context.Context) error, opts ...TaskOption) *Task[struct{}] {
	return Spawn(ctx, func(ctx context.Context) (struct{}, error) { return struct{}{}, fn(ctx) }, opts...)
}

func (l *Loop) removeTask(t *taskCore) {
	i, last := t.idx, len(l.tasks)-1
	if i < 0 || int(i) > last || l.tasks[i] != t {
		return
	}
	l.tasks[i] = l.tasks[last]
	l.tasks[i].idx = i
	l.tasks[last] = nil
	l.tasks = l.tasks[:last]
	t.idx = -1
}

func (t *Task[T]) runBody() {
	v, err := t.call()
	tc := &t.tc
	switch {
	case isCancellation(err):
		// A function that returns ctx.Err() (a bare context.Canceled)
		// ends cancelled with the task's own CancelledError, message
		// included, wrapping what it returned.
		tc.mustCancel = false
		if !errors.Is(err, ErrCancelled) {
			err = &CancelledError{Msg: tc.cancelMsg(), cause: err}
		}
		t.finishCancelled(err)
	case err != nil:
		// An error wins over a cancellation not yet delivered, as in
		// asyncio's Task.__step (a TaskGroup's ExceptionGroup needs it).
		tc.mustCancel = false
		t.finish(stateFinished, err)
	case tc.mustCancel:
		tc.mustCancel = false
		t.finishCancelled(cancelledError(tc.cancelMsg()))
	default:
		t.result = v
		t.finish(stateFinished, nil)
	}
}

func (t *Task[T]) call() (v T, err error) {
	returned := false
	defer func() {
		locked := lockedOSThread() != t.tc.locked
		if locked {
			releaseThread() // else the coroutine's next switch aborts the process
		}
		r := recover()
		switch {
		case r != nil:
			if _, killed := r.(taskKilled); killed {
				err = cancelledError("loop closed")
			} else {
				err = newPanicError(r)
			}
		case !returned:
			t.goexit() // runtime.Goexit: it goes on once this returns
		case locked:
			err = ErrLockedOSThread
		}
	}()
	fn := t.fn
	t.fn = nil
	v, err = fn(&t.tc)
	returned = true
	return v, err
}

func (t *Task[T]) finishCancelled(err error) { t.finish(stateCancelled, err) }

func (t *Task[T]) finish(state futState, err error) {
	tc := &t.tc
	tc.finished = true
	tc.waitFut, tc.waitTimer = nil, nil
	if r := tc.rare.Load(); r != nil && r.watch != nil {
		r.watch.release()
	}
	t.loop.removeTask(tc)
	tc.cancelCtx()
	if state == stateFinished && err != nil {
		watchUnretrieved(t, err)
	}
	t.complete(state, err)
}

// name is safe from any goroutine (a ctx may be formatted anywhere).
func (t *taskCore) name() string {
	if r := t.rare.Load(); r != nil {
		if p := r.name.Load(); p != nil && *p != "" {
			return *p
		}
	}
	return "Task-" + strconv.FormatUint(uint64(t.id), 10)
}

// Name is get_name(): "Task-N" unless a name was given.
func (t *Task[T]) Name() string { return t.tc.name() }

// SetName is set_name().
func (t *Task[T]) SetName(name string) { t.tc.getRare().name.Store(&name) }

// Context returns the ctx the task's function receives.
func (t *Task[T]) Context() context.Context { return &t.tc }

// Cancelling is Task.cancelling(): the number of cancellation requests not
// yet withdrawn by Uncancel.
func (t *Task[T]) Cancelling() int { return int(t.tc.numCancels) }

// Uncancel is Task.uncancel(): it withdraws one cancellation request and
// returns the number left. As in Python 3.13, reaching zero also withdraws
// a cancellation not yet delivered.
func (t *Task[T]) Uncancel() int { return t.tc.uncancel() }

func (t *taskCore) uncancel() int {
	if t.numCancels > 0 {
		t.numCancels--
		if t.numCancels == 0 {
			t.mustCancel = false
			if r := t.rare.Load(); r != nil {
				r.swallow.delivered = false
			}
		}
	}
	return int(t.numCancels)
}

// AddDoneCallback is add_done_callback: fn(t) is scheduled when the task is
// done.
func (t *Task[T]) AddDoneCallback(fn func(*Task[T])) CallbackID {
	if t.tc.self == nil {
		panic(ErrZeroFuture)
	}
	return t.addCallback(func() { fn(t) })
}

// Cancel is Task.cancel() or Task.cancel(msg): a request. It returns false
// if the task is done. Otherwise the cancellation is delivered at the
// task's current await, as a CancelledError carrying msg; if the task
// awaits a future or another task, that one is cancelled instead and the
// error comes from it. The task's ctx is cancelled at once. A task that
// catches the error and goes on is not cancelled (Cancelling still counts
// the request); in debug mode, one that awaits again at the same place
// without Uncancel is reported (see Loop.SetDebug).
func (t *Task[T]) Cancel(msg ...string) bool {
	if t.tc.self == nil {
		return false // a zero Task
	}
	return t.tc.cancel(cancelArg(msg), true)
}

func (t *taskCore) cancelRequest(msg string) bool { return t.cancel(msg, true) }

// cancel is Task.cancel; internal cancellations (Timeout, TaskGroup on its
// parent) that will be withdrawn pass external=false and leave the ctx
// alone, since a Go context cannot be un-cancelled.
func (t *taskCore) cancel(msg string, external bool) bool {
	f := t.fut()
	f.markRetrieved()
	if f.state != statePending {
		return false
	}
	t.numCancels++
	if debugEver.Load() && t.loop.debug {
		t.getRare().swallow.requested = true
	}
	if external {
		t.cancelCtx()
	}
	if w := t.waitFut; w != nil {
		if w.cancelRequest(msg) {
			t.forwarded = true
			return true
		}
	} else if th := t.waitTimer; th != nil && !th.rec.fired && !th.rec.cancelled {
		th.Cancel()
		t.mustCancel = true
		t.setCancelMsg(msg)
		f.loop.pushSoon(readyItem{task: t})
		return true
	}
	t.mustCancel = true
	t.setCancelMsg(msg)
	return true
}

// cancelWait delivers a cancellation requested while the task was running
// (it cancelled itself, or was cancelled from a callback it triggered) to
// what it is about to wait on, as asyncio's Task.__step does with
// _must_cancel: the awaited future is cancelled at once, or the sleep's
// timer is dropped and the task resumes in the next iteration with the
// cancellation error.
func (t *taskCore) cancelWait() {
	if w := t.waitFut; w != nil {
		if w.cancelRequest(t.cancelMsg()) {
			t.mustCancel = false
			t.forwarded = true
		}
	} else if th := t.waitTimer; th != nil && !th.rec.cancelled {
		th.Cancel()
		t.loop.pushSoon(readyItem{task: t})
	}
}

// taskKilled is the panic that unwinds a task awaiting again after its
// loop closed under it: the await it was suspended in returned a
// cancellation error, and a task that retries must still end, or Close
// would never return (asyncio throws GeneratorExit into such a coroutine).
// Task.call recovers it; the task ends cancelled.
type taskKilled struct{}

// resumeErr is what an await returns when the task resumes: a cancellation
// delivered by Cancel, if any.
func (t *taskCore) resumeErr() error {
	if t.killed {
		return cancelledError("loop closed")
	}
	if t.mustCancel {
		t.mustCancel = false
		return cancelledError(t.cancelMsg())
	}
	return nil
}

// awaitCore suspends the running task of ctx until f is done.
func awaitCore(ctx context.Context, f *futureCore) error {
	t := runningTask(ctx)
	if t == nil {
		return ErrNotInTask
	}
	if f.loop == nil {
		return ErrZeroFuture
	}
	if f.loop != t.loop {
		return ErrDifferentLoop
	}
	if f == t.fut() {
		return ErrAwaitSelf
	}
	t.enterAwait()
	ext, err := t.checkCtx(ctx)
	if err != nil {
		return err
	}
	f.addWaiter(t)
	t.waitFut = f
	err = t.wait(ctx, ext)
	t.waitFut = nil
	return err
}

// Sleep is asyncio.sleep: the task waits d on the loop's clock. A d <= 0
// yields exactly once: the task resumes in the next iteration, after the
// callbacks already ready. It returns a cancellation error if the task is
// cancelled meanwhile, and ctx's error if ctx is a ctx derived with a
// cancellation or deadline of its own that ends first (or has ended).
func Sleep(ctx context.Context, d time.Duration) error {
	t := runningTask(ctx)
	if t == nil {
		return ErrNotInTask
	}
	t.enterAwait()
	ext, err := t.checkCtx(ctx)
	if err != nil {
		return err
	}
	l := t.loop
	if d <= 0 {
		l.pushSoon(readyItem{task: t})
		t.suspend()
		return t.resumeErr()
	}
	th := l.addTimer(l.after(d), nil, t)
	t.waitTimer = th
	err = t.wait(ctx, ext)
	t.waitTimer = nil
	th.Cancel()
	return err
}

// Time is get_running_loop().time() in one call: the time of the loop of
// the task ctx belongs to (loop time: virtual on a virtual clock). It
// panics with ErrNoRunningLoop if ctx belongs to no task of a running
// loop, as Spawn does.
func Time(ctx context.Context) time.Time {
	l, err := RunningLoop(ctx)
	if err != nil {
		panic(err)
	}
	return l.Time()
}

// RunningLoop is get_running_loop: the loop of the task ctx belongs to, or
// ErrNoRunningLoop.
func RunningLoop(ctx context.Context) (*Loop, error) {
	t := taskOf(ctx)
	if t == nil || !t.loop.IsRunning() {
		return nil, ErrNoRunningLoop
	}
	return t.loop, nil
}

// CurrentTask is current_task: the task running now on ctx's loop, or nil
// (as from a plain callback).
func CurrentTask(ctx context.Context) AnyTask {
	t := taskOf(ctx)
	if t == nil {
		return nil
	}
	return t.loop.CurrentTask()
}

// CurrentTask returns the task running now, or nil inside a plain callback.
func (l *Loop) CurrentTask() AnyTask {
	if c := l.current; c != nil {
		return c.self
	}
	return nil
}

// AllTasks is all_tasks: the loop's pending tasks, in no particular order
// (asyncio returns a set).
func (l *Loop) AllTasks() []AnyTask {
	ts := make([]AnyTask, len(l.tasks))
	for i, t := range l.tasks {
		ts[i] = t.self
	}
	return ts
}

// AllTasks is asyncio.all_tasks for the loop of ctx.
func AllTasks(ctx context.Context) []AnyTask {
	t := taskOf(ctx)
	if t == nil {
		return nil
	}
	return t.loop.AllTasks()
}

// NoTimeout, given as a timeout, means none: wait as long as it takes
// (Python's timeout=None).
const NoTimeout = time.Duration(1<<63 - 1)

// loopFor finds the loop for a combinator: ctx's, or the first future's.
func loopFor(ctx context.Context, fs []*futureCore) *Loop {
	if t := taskOf(ctx); t != nil {
		return t.loop
	}
	if len(fs) > 0 {
		return fs[0].loop
	}
	panic(ErrNoRunningLoop)
}

// gathering is the outer future of a gather: cancelling it cancels the
// children (asyncio's _GatheringFuture).
type gathering struct {
	outer           *futureCore
	children        []*futureCore
	cancelRequested bool
}

func (g *gathering) cancelRequest(msg string) bool {
	if g.outer.state != statePending {
		return false
	}
	ret := false
	for _, c := range g.children {
		if c.cancelRequest(msg) {
			ret = true
		}
	}
	if ret {
		g.cancelRequested = true
	}
	return ret
}

// Result is one outcome in GatherReturnErrors: a value or an error.
type Result[T any] struct {
	Value T
	Err   error
}

// Gather is asyncio.gather: a future of every result, in argument order
// (the same future given twice gives its result twice). The first error,
// or the cancellation of a child, becomes the gather's error at once; the
// other children keep running. Cancelling the returned future cancels every
// child that is not done. With no awaitables, the future is already done
// with an empty slice.
//
// A is any Awaitable of T, so a slice of tasks passes as it is:
// Gather(ctx, tasks...) with tasks a []*Task[T]. Arguments of different
// kinds (a Task and a Future) go in a []Awaitable[T]; with no arguments at
// all, name both types: Gather[T, Awaitable[T]](ctx).
func Gather[T any, A Awaitable[T]](ctx context.Context, aws ...A) *Future[[]T] {
	return gather(ctx, aws, false, func(aw A) T {
		v, _ := aw.Result()
		return v
	})
}

// GatherReturnErrors is gather(..., return_exceptions=True): every outcome
// in argument order, errors (cancellations included) in place of values.
// The future fails only if it is itself cancelled. Its arguments are as
// Gather's.
func GatherReturnErrors[T any, A Awaitable[T]](ctx context.Context, aws ...A) *Future[[]Result[T]] {
	return gather(ctx, aws, true, func(aw A) Result[T] {
		v, err := aw.Result()
		return Result[T]{v, err}
	})
}

func gather[T, R any, A Awaitable[T]](ctx context.Context, aws []A, returnErrors bool, collect func(A) R) *Future[[]R] {
	children := make([]*futureCore, len(aws))
	for i, aw := range aws {
		children[i] = aw.base()
	}
	l := loopFor(ctx, children)
	outer := NewFuture[[]R](l)
	if len(aws) == 0 {
		_ = outer.SetResult([]R{})
		return outer
	}
	g := &gathering{outer: &outer.futureCore, children: children}
	outer.owner = g
	for _, c := range children {
		if c.loop != l {
			_ = outer.SetErr(ErrDifferentLoop)
			return outer
		}
	}
	unique := make(map[*futureCore]bool, len(children))
	for _, c := range children {
		unique[c] = true
	}
	nfuts, nfinished := len(unique), 0
	onDone := func(c *futureCore) {
		nfinished++
		if outer.state != statePending {
			if c.state != stateCancelled {
				_ = c.errRetrieve()
			}
			return
		}
		if !returnErrors {
			if c.state == stateCancelled {
				_ = outer.SetErr(c.err)
				return
			}
			if err := c.errRetrieve(); err != nil {
				_ = outer.SetErr(err)
				return
			}
		}
		if nfinished < nfuts {
			return
		}
		if g.cancelRequested {
			err := c.err
			if c.state != stateCancelled {
				err = cancelledError("")
			}
			_ = outer.SetErr(err)
			return
		}
		res := make([]R, len(aws))
		for i, aw := range aws {
			res[i] = collect(aw)
		}
		_ = outer.SetResult(res)
	}
	for c := range orderedUnique(children) {
		c.addCallback(func() { onDone(c) })
	}
	return outer
}

// orderedUnique yields each future once, in order of first appearance.
func orderedUnique(fs []*futureCore) func(func(*futureCore) bool) {
	return func(yield func(*futureCore) bool) {
		seen := make(map[*futureCore]bool, len(fs))
		for _, f := range fs {
			if seen[f] {
				continue
			}
			seen[f] = true
			if !yield(f) {
				return
			}
		}
	}
}

// ReturnWhen tells Wait when to return.
type ReturnWhen int

// The return_when values of asyncio.wait.
const (
	AllCompleted ReturnWhen = iota
	FirstCompleted
	FirstException
)

// ErrWaitEmpty is "Set of Tasks/Futures is empty."
var ErrWaitEmpty = errors.New("loop: Set of Tasks/Futures is empty")

// Wait is asyncio.wait: it waits until the condition when holds or timeout
// passes (NoTimeout for none), and returns the done and pending futures,
// each once, in the order given. It neither cancels anything nor fails on
// timeout; err is set only for bad input or if the waiting task is
// cancelled. FirstException returns at the first future that fails, and
// otherwise waits for all.
func Wait[F Waitable](ctx context.Context, fs []F, timeout time.Duration, when ReturnWhen) (done, pending []F, err error) {
	if len(fs) == 0 {
		return nil, nil, ErrWaitEmpty
	}
	if when < AllCompleted || when > FirstException {
		return nil, nil, errors.New("loop: Wait: invalid ReturnWhen")
	}
	t := runningTask(ctx)
	if t == nil {
		return nil, nil, ErrNotInTask
	}
	l := t.loop
	var uniq []F
	seen := make(map[*futureCore]bool, len(fs))
	for _, f := range fs {
		fc := f.base()
		if fc.loop != l {
			return nil, nil, ErrDifferentLoop
		}
		if !seen[fc] {
			seen[fc] = true
			uniq = append(uniq, f)
		}
	}
	waiter := NewFuture[struct{}](l)
	release := func() { releaseWaiter(waiter) }
	var th *TimerHandle
	if timeout != NoTimeout {
		th = l.CallLater(timeout, release)
	}
	counter := len(uniq)
	ids := make([]CallbackID, len(uniq))
	for i, f := range uniq {
		fc := f.base()
		ids[i] = fc.addCallback(func() {
			counter--
			if counter <= 0 || when == FirstCompleted ||
				when == FirstException && fc.state == stateFinished && fc.errRetrieve() != nil {
				if th != nil {
					th.Cancel()
				}
				release()
			}
		})
	}
	_, err = waiter.Await(ctx)
	if th != nil {
		th.Cancel()
	}
	for i, f := range uniq {
		f.base().removeCallback(ids[i])
	}
	if err != nil {
		return nil, nil, err
	}
	for _, f := range uniq {
		if f.Done() {
			done = append(done, f)
		} else {
			pending = append(pending, f)
		}
	}
	return done, pending, nil
}

// WaitFor is asyncio.wait_for (Python 3.12): it awaits aw for at most
// timeout (NoTimeout for none). On timeout aw is cancelled and awaited, so
// its cleanup has finished when WaitFor returns a [*TimeoutError] (it
// matches ErrTimeout; its Cause is aw's cancellation). If aw swallows
// the cancellation and returns a value, that value is returned; an error it
// returns while being cancelled is returned as is. Cancelling the awaiting
// task cancels aw too. A timeout <= 0 returns aw's result if it is already
// done, and otherwise cancels it without waiting for the clock.
func WaitFor[T any](ctx context.Context, aw Awaitable[T], timeout time.Duration) (T, error) {
	var zero T
	if timeout <= 0 {
		if aw.Done() {
			return aw.Result()
		}
		if err := cancelAndWait(ctx, aw.base()); err != nil {
			return zero, err
		}
		v, err := aw.Result()
		if errors.Is(err, ErrCancelled) && aw.Cancelled() {
			return zero, timeoutFrom(err)
		}
		return v, err
	}
	var v T
	err := WithTimeout(ctx, timeout, func(ctx context.Context) error {
		var err error
		v, err = aw.Await(ctx)
		return err
	})
	if err != nil {
		return zero, err
	}
	return v, nil
}

// cancelAndWait cancels f and waits until it is done.
func cancelAndWait(ctx context.Context, f *futureCore) error {
	t := runningTask(ctx)
	if t == nil {
		return ErrNotInTask
	}
	if f.loop != t.loop {
		return ErrDifferentLoop
	}
	waiter := NewFuture[struct{}](f.loop)
	id := f.addCallback(func() { releaseWaiter(waiter) })
	f.cancelRequest("")
	_, err := waiter.Await(ctx)
	f.removeCallback(id)
	return err
}

// Shield is asyncio.shield: an awaitable whose cancellation does not reach
// aw. Cancelling the task that awaits the shield cancels only the outer
// future; aw runs on. If aw is already done it is returned as is.
func Shield[T any](aw Awaitable[T]) Awaitable[T] {
	if aw.Done() {
		return aw
	}
	inner := aw.base()
	outer := NewFuture[T](inner.loop)
	innerID := inner.addCallback(func() {
		if outer.Cancelled() {
			if !aw.Cancelled() {
				_ = aw.Err()
			}
			return
		}
		if aw.Cancelled() {
			outer.cancel("")
			return
		}
		v, err := aw.Result()
		if err != nil {
			_ = outer.SetErr(err)
		} else {
			_ = outer.SetResult(v)
		}
	})
	outer.addCallback(func() {
		if !aw.Done() {
			inner.removeCallback(innerID)
		}
	})
	return outer
}

// AsCompleted is asyncio.as_completed (Python 3.13's async iteration): it
// yields each future of fs as it completes, the original future, in
// completion order. Once timeout (NoTimeout for none) has passed it yields
// ErrTimeout and stops; if the task is cancelled it yields the cancellation
// error and stops. Breaking out of the loop early is fine.
func AsCompleted[F Waitable](ctx context.Context, fs []F, timeout time.Duration) func(yield func(F, error) bool) {
	return func(yield func(F, error) bool) {
		var zero F
		t := runningTask(ctx)
		if t == nil {
			yield(zero, ErrNotInTask)
			return
		}
		l := t.loop
		var (
			done     []F
			todo     = map[*futureCore]CallbackID{}
			timedOut bool
			waiter   *Future[struct{}]
			th       *TimerHandle
		)
		wake := func() { releaseWaiter(waiter) }
		for _, f := range fs {
			if f.base().loop != l {
				yield(zero, ErrDifferentLoop)
				return
			}
		}
		for _, f := range fs {
			fc := f.base()
			if _, dup := todo[fc]; dup {
				continue
			}
			todo[fc] = fc.addCallback(func() {
				if _, ok := todo[fc]; !ok {
					return
				}
				delete(todo, fc)
				done = append(done, f)
				if len(todo) == 0 && th != nil {
					th.Cancel()
				}
				wake()
			})
		}
		defer func() {
			for fc, id := range todo {
				fc.removeCallback(id)
			}
			if th != nil {
				th.Cancel()
			}
		}()
		if len(todo) > 0 && timeout != NoTimeout {
			th = l.CallLater(timeout, func() {
				for fc, id := range todo {
					fc.removeCallback(id)
				}
				clear(todo)
				timedOut = true
				wake()
			})
		}
		for len(done) > 0 || len(todo) > 0 || timedOut {
			if len(done) == 0 {
				if timedOut {
					yield(zero, ErrTimeout)
					return
				}
				waiter = NewFuture[struct{}](l)
				if _, err := waiter.Await(ctx); err != nil {
					yield(zero, err)
					return
				}
				continue
			}
			f := done[0]
			done = done[1:]
			if !yield(f, nil) {
				return
			}
		}
	}
}

// RunCoroutineThreadsafe is run_coroutine_threadsafe: from any goroutine,
// it starts fn as a task of l and returns a thread-safe future of its
// result. The future stays pending (not running) while the task runs, so
// Cancel on it succeeds and cancels the task, as in asyncio. A timeout in
// Result does not cancel anything. If l is closed the future fails with
// ErrLoopClosed, as it does if the loop closes before the task is done:
// no goroutine waits forever on it.
func RunCoroutineThreadsafe[T any](l *Loop, fn func(ctx context.Context) (T, error)) *executor.Future[T] {
	cf := executor.NewFuture[T]()
	w := &threadsafeWatch{fail: func(err error) { _ = cf.SetErr(err) }}
	if !l.watchThreadsafe(w) {
		_ = cf.SetErr(ErrLoopClosed)
		return cf
	}
	cf.AddDoneCallback(func(*executor.Future[T]) { l.unwatchThreadsafe(w) })
	err := l.CallSoonThreadsafe(func() {
		if cf.Done() {
			return // cancelled before the task could start
		}
		t := CreateTask(l, fn)
		t.AddDoneCallback(func(t *Task[T]) {
			if t.Cancelled() {
				cf.Cancel()
				return
			}
			if !cf.SetRunningOrNotifyCancel() {
				return
			}
			if v, err := t.Result(); err != nil {
				_ = cf.SetErr(err)
			} else {
				_ = cf.SetResult(v)
			}
		})
		cf.AddDoneCallback(func(cf *executor.Future[T]) {
			if cf.Cancelled() {
				_ = l.CallSoonThreadsafe(func() { t.Cancel("") })
			}
		})
	})
	if err != nil {
		_ = cf.SetErr(err)
	}
	return cf
}

// threadsafeWatch is a RunCoroutineThreadsafe future the loop must settle
// if it closes first: Close drops queued threadsafe callbacks and unwinds
// pending tasks without running their done callbacks.
type threadsafeWatch struct{ fail func(error) }

func (l *Loop) watchThreadsafe(w *threadsafeWatch) bool {
	l.tsMu.Lock()
	defer l.tsMu.Unlock()
	if l.closed.Load() {
		return false
	}
	if l.tsWatched == nil {
		l.tsWatched = map[*threadsafeWatch]struct{}{}
	}
	l.tsWatched[w] = struct{}{}
	return true
}

func (l *Loop) unwatchThreadsafe(w *threadsafeWatch) {
	l.tsMu.Lock()
	delete(l.tsWatched, w)
	l.tsMu.Unlock()
}

package loop

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/internal/eventfd"
)

// ErrCloseRunning is "Cannot close a running event loop".
var ErrCloseRunning = errors.New("loop: Cannot close a running event loop")

// DefaultSlowCallbackDuration is asyncio's slow_callback_duration: in debug
// mode a callback or task step that runs longer is reported.
const DefaultSlowCallbackDuration = 100 * time.Millisecond

// Loop is asyncio's event loop: one goroutine drives it (RunForever,
// RunUntilComplete, Run), and at most one callback or task runs on it at any
// instant. See the package documentation for which methods are safe from
// other goroutines. The zero Loop is not usable: make one with New; its
// methods return or panic with ErrZeroLoop.
type Loop struct {
	ready           ring[readyItem]
	timers          timerHeap
	cancelledTimers int
	timerSeq        uint64

	virtual bool
	epoch   time.Time
	vnow    int64

	debug   bool
	slow    time.Duration
	logger  *slog.Logger
	handler func(*Loop, ExceptionContext)

	running   atomic.Bool
	closed    atomic.Bool
	closing   bool
	stopping  bool
	batchLeft int           // ready items of the current iteration not yet run
	current   *taskCore     // the task whose step is running, if any
	loopGID   atomic.Uint64 // debug: the goroutine running the loop
	taskGID   atomic.Uint64 // debug: the goroutine of the running task

	tasks     []*taskCore // every pending task: a task never vanishes
	taskCount uint32      // names Task-N; wraps after 4 billion tasks, harmlessly
	cbSeq     uint64

	freeRecs  *handleRec
	freeCoros []*coro

	// The goroutine driving the loop, and that of the coroutines of the
	// tasks in progress (see coro.go).
	driverLocked bool
	driverGID    uint64
	liveCoros    int
	coroLocked   bool
	coroGID      uint64

	tsMu      sync.Mutex
	tsq       []func()
	tsSpare   []func()
	tsPending atomic.Bool
	tsWatched map[*threadsafeWatch]struct{} // pending RunCoroutineThreadsafe futures
	wake      chan struct{}                 // wakes a blocked loop if there is no wakeFD
	wakeFD    *eventfd.FD                   // the wake-up a blocked loop waits on (selfpipe.go)
	sleeping  atomic.Bool                   // the loop is blocked on wakeFD
	external  int                           // pending results from other goroutines (WrapFuture)
	watches   []*ctxWatch                   // awaits a foreign ctx may end (context.go)
	timer     *time.Timer

	// Descriptors (selector_events.go): the poller, made on first use, and
	// the registered descriptors by number.
	poll_    poller
	pollOpen bool
	wakeRaw  int // the wake-up's descriptor in the poller's set, or -1
	fds      []*fdEntry
	nfds     int // descriptors the poller watches

	transports map[loopTransport]struct{} // open transports, closed at Close
	rbuf       []byte                     // the read buffer transports share

	signals   map[syscall.Signal]*signalHandler // AddSignalHandler's
	runSigint *sigintHook                       // Run's SIGINT handler, while Run has one

	stopCB func() // l.Stop as a value, made once

	// Errors nobody read (futures.go's unretrieved): the failed futures
	// still tracked, on the loop's goroutine; and the reports of collected
	// ones, posted by cleanups from the runtime's goroutine.
	young        []youngUnretrieved // failed this iteration or the last: held strongly
	youngMark    int                // young[:youngMark] are from before this iteration
	unret        []*unretrieved     // older and unread: weak pointers
	unretPrune   int
	reportMu     sync.Mutex
	reports      []ExceptionContext
	reportDirect bool // closed: a cleanup calls the handler itself

	defaultExec  *executor.ThreadPool
	execShutdown bool
}

// Option configures a Loop made by New or Run.
type Option func(*Loop)

// WithVirtualClock gives the loop a virtual clock: whenever the loop is idle
// (nothing ready, nothing arriving from other goroutines) time jumps to the
// next timer's deadline, so code that sleeps for hours runs instantly and
// in the same order it would in real time. Time starts at the wall-clock
// time of New, so that a deadline derived from the wall clock
// (context.WithTimeout) lands on the loop's clock too; the deadline of a
// ctx an await is given is read as loop time.
// While the loop waits for work running elsewhere (RunInExecutor,
// ToThread, WrapFuture), virtual time stands still until it arrives, as if
// that work took no time.
func WithVirtualClock() Option { return func(l *Loop) { l.virtual = true } }

// WithDebug turns asyncio's debug mode on or off: slow callbacks are logged,
// and calls into the loop from a goroutine that does not run it panic. The
// environment variable ASYNCGO_DEBUG=1 turns it on by default, as
// PYTHONASYNCIODEBUG does.
func WithDebug(on bool) Option { return func(l *Loop) { l.debug = on } }

// WithSlowCallbackDuration sets the duration above which debug mode reports
// a callback or task step (default 100ms).
func WithSlowCallbackDuration(d time.Duration) Option { return func(l *Loop) { l.slow = d } }

// WithLogger sets the logger the default exception handler and debug
// reports write to (default slog.Default()).
func WithLogger(lg *slog.Logger) Option { return func(l *Loop) { l.logger = lg } }

// New returns a loop that is not running. It must be closed with Close.
func New(opts ...Option) *Loop {
	l := &Loop{
		epoch:   time.Now(),
		slow:    DefaultSlowCallbackDuration,
		debug:   os.Getenv("ASYNCGO_DEBUG") == "1",
		wake:    make(chan struct{}, 1),
		logger:  slog.Default(),
		wakeRaw: -1,
	}
	for _, o := range opts {
		o(l)
	}
	l.SetDebug(l.debug)
	l.openSelfPipe()
	l.stopCB = l.Stop
	return l
}

// IsRunning reports whether the loop is running. Safe from any goroutine.
func (l *Loop) IsRunning() bool { return l.running.Load() }

// IsClosed reports whether Close has run. Safe from any goroutine.
func (l *Loop) IsClosed() bool { return l.closed.Load() }

// Time is loop.time(): the loop's clock. With a virtual clock it jumps
// forward whenever the loop is idle.
func (l *Loop) Time() time.Time { return l.epoch.Add(time.Duration(l.now())) }

func (l *Loop) now() int64 {
	if l.virtual {
		return l.vnow
	}
	return int64(time.Since(l.epoch))
}

// after is the loop time d from now, saturating instead of overflowing
// (Sleep(ctx, NoTimeout) sleeps forever, not never).
func (l *Loop) after(d time.Duration) int64 {
	now := l.now()
	if int64(d) > math.MaxInt64-now {
		return math.MaxInt64
	}
	return now + int64(d)
}

func (l *Loop) toLoopTime(t time.Time) int64 { return int64(t.Sub(l.epoch)) }

// checkOpen refuses a closed or zero loop and, in debug mode, a call from
// the wrong goroutine. It inlines into CallSoon: the rare cases go to
// checkOpenSlow.
func (l *Loop) checkOpen() {
	if l.closed.Load() || l.debug || l.stopCB == nil {
		l.checkOpenSlow()
	}
}

func (l *Loop) checkOpenSlow() {
	if l.stopCB == nil {
		panic(ErrZeroLoop)
	}
	if l.closed.Load() {
		panic(ErrLoopClosed)
	}
	if l.debug {
		l.checkThread()
	}
}

// CallSoon is call_soon: fn runs in a later iteration, after every callback
// already scheduled (FIFO). Loop goroutine only (tasks and callbacks of this
// loop); from elsewhere use CallSoonThreadsafe. It panics with
// ErrLoopClosed on a closed loop. In steady state it allocates nothing.
func (l *Loop) CallSoon(fn func()) Handle {
	l.checkOpen()
	if l.tsPending.Load() {
		// Keep arrival order with CallSoonThreadsafe, whose callbacks
		// wait in their own queue until the loop polls: asyncio appends
		// both to one ready queue.
		l.drainThreadsafe()
	}
	rec := l.freeRecs
	if rec == nil {
		rec = &handleRec{pooled: true}
	} else {
		l.freeRecs = rec.next
		rec.next = nil
	}
	l.ready.push(readyItem{fn: fn, rec: rec})
	return Handle{rec: rec, gen: rec.gen}
}

// CallLater is call_later: fn runs once d has passed on the loop's clock.
// A d <= 0 runs it in the next iteration, after the callbacks already ready.
func (l *Loop) CallLater(d time.Duration, fn func()) *TimerHandle {
	l.checkOpen()
	return l.addTimer(l.after(d), fn, nil)
}

// CallAt is call_at: fn runs at when on the loop's clock (see Time).
func (l *Loop) CallAt(when time.Time, fn func()) *TimerHandle {
	l.checkOpen()
	return l.addTimer(l.toLoopTime(when), fn, nil)
}

func (l *Loop) addTimer(when int64, fn func(), t *taskCore) *TimerHandle {
	l.timerSeq++
	th := &TimerHandle{when: when, seq: l.timerSeq, fn: fn, task: t, loop: l, inHeap: true}
	l.timers.push(th)
	return th
}

// CallSoonThreadsafe is call_soon_threadsafe, the door into the loop from
// any goroutine: fn runs on the loop in a later iteration, and a loop
// blocked waiting is woken. It returns ErrLoopClosed if the loop is closed;
// a callback still queued when the loop closes never runs, as in asyncio.
func (l *Loop) CallSoonThreadsafe(fn func()) error {
	if l.stopCB == nil {
		return ErrZeroLoop
	}
	l.tsMu.Lock()
	if l.closed.Load() {
		l.tsMu.Unlock()
		return ErrLoopClosed
	}
	l.tsq = append(l.tsq, fn)
	l.tsPending.Store(true)
	l.tsMu.Unlock()
	l.wakeUp()
	return nil
}

// Stop is loop.stop(): the loop finishes the current iteration and
// RunForever returns. Called before RunForever, the next run does one
// iteration and returns.
func (l *Loop) Stop() { l.stopping = true }

// RunForever is run_forever: runs until Stop.
func (l *Loop) RunForever() error {
	if l.stopCB == nil {
		return ErrZeroLoop
	}
	if l.closed.Load() {
		return ErrLoopClosed
	}
	if !l.running.CompareAndSwap(false, true) {
		return ErrLoopRunning
	}
	if err := l.takeDriver(); err != nil {
		l.running.Store(false)
		return err
	}
	if l.debug {
		l.loopGID.Store(goid())
	}
	defer func() {
		l.stopping = false
		l.loopGID.Store(0)
		l.running.Store(false)
	}()
	for !l.run() {
	}
	return nil
}

// run runs iterations until Stop, and returns true. A panicking callback
// unwinds to here: it is reported to the exception handler and run returns
// false, to be called again, which finishes the interrupted batch first.
// One deferred recover per run, not per iteration or callback.
func (l *Loop) run() (stopped bool) {
	defer func() {
		if r := recover(); r != nil {
			l.current = nil
			l.CallExceptionHandler(ExceptionContext{Message: "Exception in callback", Err: newPanicError(r)})
			// A Stop in the iteration that panicked stops the loop once
			// that iteration's batch is done, as asyncio's does.
			stopped = l.stopping && l.batchLeft == 0
		}
	}()
	if l.batchLeft > 0 {
		l.runBatch()
		if l.stopping {
			return true
		}
	}
	for {
		l.runOnce()
		if l.stopping {
			return true
		}
	}
}

// RunUntilComplete is run_until_complete: runs the loop until f is done and
// returns f's error (nil on success; read the value with f.Result). It
// returns ErrLoopStopped if the loop was stopped first.
func (l *Loop) RunUntilComplete(f Waitable) error {
	if l.stopCB == nil {
		return ErrZeroLoop
	}
	fc := f.base()
	if fc.loop != l {
		return ErrDifferentLoop
	}
	if l.closed.Load() {
		return ErrLoopClosed
	}
	if l.running.Load() {
		return ErrLoopRunning
	}
	id := fc.addCallback(l.stopCB)
	err := l.RunForever()
	fc.removeCallback(id)
	if err != nil {
		return err
	}
	if fc.state == statePending {
		return ErrLoopStopped
	}
	return fc.errRetrieve()
}

// runOnce is one iteration, as asyncio's _run_once.
func (l *Loop) runOnce() {
	if len(l.young) > 0 {
		l.ageUnretrieved()
	}
	if len(l.timers) == 0 && l.ready.len() > 0 && !l.tsPending.Load() && l.nfds == 0 {
		// The common case of a busy loop: nothing to poll, no timers.
		l.batchLeft = l.ready.len()
		l.runBatch()
		return
	}
	if n := len(l.timers); n > 100 && 2*l.cancelledTimers > n {
		l.timers.removeCancelled()
		l.cancelledTimers = 0
	} else {
		for len(l.timers) > 0 && l.timers[0].th.rec.cancelled {
			l.timers.pop().inHeap = false
			l.cancelledTimers--
		}
	}

	timeout := int64(-1)
	if l.ready.len() > 0 || l.stopping {
		timeout = 0
	} else if len(l.timers) > 0 {
		// when may be far in the past (CallAt(time.Time{}) saturates to
		// MinInt64): the subtraction must not overflow.
		if w, now := l.timers[0].when, l.now(); w > now {
			timeout = w - now
		} else {
			timeout = 0
		}
	}
	if timeout != 0 && len(l.young) > 0 {
		// About to wait: nothing reads an error meanwhile.
		l.youngMark = len(l.young)
		l.ageUnretrieved()
	}
	l.poll(timeout)

	if len(l.timers) > 0 {
		now := l.now()
		for len(l.timers) > 0 && l.timers[0].when <= now {
			th := l.timers.pop()
			th.inHeap = false
			if th.rec.cancelled {
				l.cancelledTimers--
				continue
			}
			l.ready.push(readyItem{fn: th.fn, task: th.task, rec: &th.rec})
		}
	}

	l.batchLeft = l.ready.len()
	l.runBatch()
}

func (l *Loop) poll(timeout int64) {
	if timeout != 0 && len(l.watches) > 0 && l.settleWatches() {
		timeout = 0 // a task woke: do not sleep, nor jump the virtual clock
	}
	if l.nfds > 0 {
		l.pollIO(timeout)
		l.drainThreadsafe()
		return
	}
	if !l.tsPending.Load() {
		switch {
		case timeout == 0:
			return
		case l.virtual && timeout > 0 && l.external == 0 && l.jumpToTimer():
			return
		case l.virtual:
			// Work in other goroutines will complete into the loop:
			// virtual time waits for it rather than jump past it.
			l.block(-1)
		default:
			l.block(timeout)
		}
	}
	l.drainThreadsafe()
}

// pushSoon queues it as call_soon does: behind the callbacks that
// CallSoonThreadsafe queued before it, which wait in their own queue
// until the loop drains it (asyncio appends both to one ready deque).
func (l *Loop) pushSoon(it readyItem) {
	if l.tsPending.Load() {
		l.drainThreadsafe()
	}
	l.ready.push(it)
}

// jumpToTimer moves the virtual clock to the first timer, never back, and
// reports whether it did: a timer at the end of time (NoTimeout) never
// comes, so the loop waits for other work instead (asyncio waits on a
// call_later(inf) in its selector, a day at a time).
func (l *Loop) jumpToTimer() bool {
	w := l.timers[0].when
	if w == math.MaxInt64 {
		return false
	}
	l.vnow = max(l.vnow, w)
	return true
}

func (l *Loop) drainThreadsafe() {
	if !l.tsPending.Load() {
		return
	}
	l.tsMu.Lock()
	q := l.tsq
	l.tsq = l.tsSpare[:0]
	l.tsPending.Store(false)
	l.tsMu.Unlock()
	for i, fn := range q {
		l.ready.push(readyItem{fn: fn})
		q[i] = nil
	}
	l.tsSpare = q
}

// runBatch runs the ready items that were there when the iteration
// began: batchLeft of them. What they schedule waits for the next
// iteration.
func (l *Loop) runBatch() {
	for l.batchLeft > 0 {
		it := l.ready.pop()
		l.batchLeft--
		if l.debug {
			l.runItemTimed(it)
		} else {
			l.runItem(it)
		}
	}
	l.current = nil
	if l.ready.len() == 0 && len(l.ready.buf) > 1<<16 {
		l.ready.buf = nil // a burst is over: do not keep its queue
	}
}

func (l *Loop) runItem(it readyItem) {
	if rec := it.rec; rec != nil {
		if rec.cancelled {
			return
		}
		if rec.pooled {
			rec.gen++
			rec.next = l.freeRecs
			l.freeRecs = rec
		} else if it.task != nil {
			// A sleep's timer fired: the task wakes in the next
			// iteration, as asyncio's sleep future would wake it.
			rec.fired = true
			l.pushSoon(readyItem{task: it.task})
			return
		}
	}
	if it.task != nil {
		l.step(it.task)
		return
	}
	l.current = nil
	it.fn()
}

// Close is loop.close(). A running loop returns ErrCloseRunning; closing
// twice does nothing. Pending tasks cannot outlive their loop: each is
// reported to the exception handler ("Task was destroyed but it is
// pending!") and unwound: its current await returns a cancellation error
// at once, as does every await after it. Then the default executor is
// shut down without waiting.
func (l *Loop) Close() error {
	if l.stopCB == nil {
		return ErrZeroLoop
	}
	if l.running.Load() {
		return ErrCloseRunning
	}
	if l.closed.Load() || l.closing {
		return nil // closed, or closing: a Close from the exception handler it calls
	}
	l.closing = true
	if err := l.closeTasks(); err != nil {
		l.closing = false
		return err
	}
	l.reportUnretrieved()
	l.ready.clear()
	l.batchLeft = 0
	l.timers = nil
	l.tsMu.Lock()
	l.closed.Store(true)
	l.tsq = nil
	watched := l.tsWatched
	l.tsWatched = nil
	l.tsMu.Unlock()
	for w := range watched {
		w.fail(ErrLoopClosed)
	}
	l.closing = false
	l.removeSignalHandlers()
	l.closeTransports()
	l.closePoller()
	l.closeSelfPipe()
	if l.defaultExec != nil {
		l.defaultExec.Shutdown(false, false)
		l.defaultExec = nil
	}
	return nil
}

// youngUnretrieved is a failed future whose error may yet be read soon.
type youngUnretrieved struct {
	u    *unretrieved
	self collectable
}

// ageUnretrieved runs at the start of each iteration: the failed futures
// that have waited a whole iteration unread are handed to the collector
// (a weak pointer and a cleanup) and tracked for Close; read ones are
// dropped.
func (l *Loop) ageUnretrieved() {
	old := l.young[:l.youngMark]
	for _, y := range old {
		if !y.u.retrieved.Load() {
			y.self.watchCollected(y.u)
			l.trackUnretrieved(y.u)
		}
	}
	n := copy(l.young, l.young[l.youngMark:])
	clear(l.young[n:])
	l.young = l.young[:n]
	l.youngMark = n
}

// trackUnretrieved keeps u until its error is read, so that Close can
// report it. Read and collected entries are dropped as the list grows, so
// a server whose futures fail and are read keeps a short list.
func (l *Loop) trackUnretrieved(u *unretrieved) {
	if len(l.unret) >= l.unretPrune {
		kept := l.unret[:0]
		for _, v := range l.unret {
			if !v.retrieved.Load() { // a collected one was marked when reported
				kept = append(kept, v)
			}
		}
		clear(l.unret[len(kept):])
		l.unret = kept
		l.unretPrune = max(64, 2*len(kept))
	}
	l.unret = append(l.unret, u)
}

// postReport hands a cleanup's report to the loop's goroutine, or, once the
// loop is closed, calls the handler itself (asyncio's __del__ calls it in
// whatever thread the collector runs). Reports never go around the
// handler the user set, and none is lost: a report still queued when the
// loop closes is made by Close.
func (l *Loop) postReport(c ExceptionContext) {
	l.reportMu.Lock()
	if l.reportDirect {
		defer l.reportMu.Unlock()
		l.CallExceptionHandler(c)
		return
	}
	l.reports = append(l.reports, c)
	first := len(l.reports) == 1
	l.reportMu.Unlock()
	if first {
		_ = l.CallSoonThreadsafe(l.flushReports)
	}
}

// flushReports makes the reports cleanups posted, on the loop's goroutine.
func (l *Loop) flushReports() {
	l.reportMu.Lock()
	rs := l.reports
	l.reports = nil
	l.reportMu.Unlock()
	for _, c := range rs {
		l.CallExceptionHandler(c)
	}
}

// reportUnretrieved is Close's report of every error nobody read: those
// cleanups posted, and those of failed futures that are still alive, each
// with its future or task. From then on cleanups report by themselves.
func (l *Loop) reportUnretrieved() {
	l.reportMu.Lock()
	defer l.reportMu.Unlock()
	l.reportDirect = true
	rs := l.reports
	l.reports = nil
	for _, c := range rs {
		l.CallExceptionHandler(c)
	}
	for _, y := range l.young {
		if !y.u.retrieved.Swap(true) {
			l.CallExceptionHandler(unretrievedContext(y.self, y.u.err))
		}
	}
	clear(l.young)
	l.young, l.youngMark = nil, 0
	tracked := l.unret
	l.unret, l.unretPrune = nil, 0
	for _, u := range tracked {
		if u.retrieved.Load() {
			continue
		}
		if w := u.ref.get(); w != nil && !u.retrieved.Swap(true) {
			l.CallExceptionHandler(unretrievedContext(w, u.err))
		}
	}
}

// ExceptionContext is the context dict asyncio passes to an exception
// handler.
type ExceptionContext struct {
	Message string
	Err     error
	Task    AnyTask  // the task concerned, if any
	Future  Waitable // the future concerned, if any

	// Transport, Protocol and Socket are the network objects concerned,
	// if any (asyncio's 'transport', 'protocol' and 'socket' keys).
	Transport BaseTransport
	Protocol  any
	Socket    *Socket
}

// SetExceptionHandler is set_exception_handler; nil restores the default
// handler, which logs at error level.
func (l *Loop) SetExceptionHandler(h func(*Loop, ExceptionContext)) { l.handler = h }

// ExceptionHandler returns the handler set with SetExceptionHandler, or nil.
func (l *Loop) ExceptionHandler() func(*Loop, ExceptionContext) { return l.handler }

// CallExceptionHandler is call_exception_handler: it calls the handler, or
// the default one. A panic in the handler is logged, never propagated.
func (l *Loop) CallExceptionHandler(c ExceptionContext) {
	if l.handler == nil {
		l.DefaultExceptionHandler(c)
		return
	}
	defer func() {
		if r := recover(); r != nil {
			l.logger.Error("loop: unhandled error in exception handler", "panic", r, "context", c.Message)
			l.DefaultExceptionHandler(c)
		}
	}()
	l.handler(l, c)
}

// DefaultExceptionHandler is default_exception_handler: it logs the context
// at error level.
func (l *Loop) DefaultExceptionHandler(c ExceptionContext) {
	args := []any{}
	if c.Err != nil {
		args = append(args, "err", c.Err)
	}
	if c.Task != nil {
		args = append(args, "task", c.Task.Name())
	}
	if c.Transport != nil {
		args = append(args, "transport", fmt.Sprint(c.Transport))
	}
	if c.Socket != nil {
		args = append(args, "socket", c.Socket.String())
	}
	lg := l.logger
	if lg == nil { // a zero Loop
		lg = slog.Default()
	}
	lg.Error(c.Message, args...)
}

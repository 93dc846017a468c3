package loop

import (
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	goidpkg "github.com/asyncgo/asyncgo/internal/goid"
)

// Debug reports whether debug mode is on.
func (l *Loop) Debug() bool { return l.debug }

// SetDebug turns debug mode on or off.
func (l *Loop) SetDebug(on bool) {
	l.debug = on
	debugEver.Store(debugEver.Load() || on)
}

// debugEver is set once any loop has debug mode on, so a task switch of a
// loop in normal mode tests one global instead of its loop's flag.
var debugEver atomic.Bool

func (l *Loop) runItemTimed(it readyItem) {
	start := time.Now()
	l.runItem(it)
	if d := time.Since(start); d >= l.slow {
		what := "callback"
		if it.task != nil {
			what = "task " + it.task.name()
		}
		l.logger.Warn(fmt.Sprintf("loop: executing %s took %.3f seconds", what, d.Seconds()))
	}
}

// checkThread panics in debug mode when the caller is neither the loop's
// goroutine nor the running task's (asyncio's _check_thread).
func (l *Loop) checkThread() {
	lg := l.loopGID.Load()
	if !l.running.Load() || lg == 0 {
		return
	}
	g := goid()
	if g != lg && g != l.taskGID.Load() {
		panic("loop: non-thread-safe operation invoked on an event loop other than the current one; use CallSoonThreadsafe")
	}
}

// goid returns the calling goroutine's id (debug mode, and the driver of a
// loop started on a locked goroutine).
func goid() uint64 { return goidpkg.Get() }

// swallowWatch is debug mode's watch for a swallowed cancellation: a task
// that catches the CancelledError an await returned and goes on awaiting
// without Uncancel. asyncio makes that explicit (an except clause); in Go
// it is one ignored error, and a later WaitFor or TaskGroup, which count
// on the cancellation coming out, waits for ever. The telling shape is a
// retry loop: the task awaits again at the very place the cancellation
// reached it. A cleanup await elsewhere (a deferred close) is not
// reported, nor are the awaits a TaskGroup or Condition makes on the
// task's behalf while it handles the cancellation.
type swallowWatch struct {
	requested bool    // a cancellation was requested since the last resume
	delivered bool    // a resume delivered it, at site, not uncancelled
	reported  bool    // reported once already: one report per task
	site      uintptr // the caller's pc at the await it reached
}

// resumedDebug runs, in debug mode, each time the task resumes from an
// await: a cancellation requested before is now delivered here.
func (t *taskCore) resumedDebug() {
	r := t.rare.Load()
	if r == nil || !r.swallow.requested {
		return
	}
	r.swallow.requested = false
	if site, ok := awaitSite(); ok {
		r.swallow.delivered, r.swallow.site = true, site
	}
}

// awaitDebug runs, in debug mode, as the task enters an await.
func (t *taskCore) awaitDebug() {
	if !t.loop.debug {
		return
	}
	r := t.rare.Load()
	if r == nil || !r.swallow.delivered || r.swallow.reported || t.numCancels == 0 {
		return
	}
	site, ok := awaitSite()
	if !ok || site != r.swallow.site {
		return
	}
	r.swallow.reported = true
	fr, _ := runtime.CallersFrames([]uintptr{site}).Next()
	t.loop.CallExceptionHandler(ExceptionContext{
		Message: fmt.Sprintf("loop: task %s awaits again at %s (%s:%d) after a cancellation was delivered there and not uncancelled: "+
			"a swallowed cancellation makes WaitFor and TaskGroup wait for ever; return the error, or call Uncancel",
			t.name(), fr.Function, fr.File, fr.Line),
		Err:  ErrCancelled,
		Task: t.self,
	})
}

// awaitSite returns the pc of the user's code at the await in progress:
// the first frame outside this package. It reports false for an await the
// package makes on the task's behalf while handling a cancellation (a
// TaskGroup waiting for its children, a Condition re-acquiring its lock).
func awaitSite() (uintptr, bool) {
	var pcs [32]uintptr
	n := runtime.Callers(3, pcs[:])
	frames := runtime.CallersFrames(pcs[:n])
	for {
		fr, more := frames.Next()
		fn := strings.TrimPrefix(fr.Function, "github.com/asyncgo/asyncgo/loop.")
		switch {
		case fn == fr.Function:
			return fr.PC, true
		case strings.HasPrefix(fn, "(*TaskGroup).exit"), strings.HasPrefix(fn, "(*Condition).Wait"):
			return 0, false
		}
		if !more {
			return 0, false
		}
	}
}

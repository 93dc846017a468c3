package loop

import (
	"fmt"
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

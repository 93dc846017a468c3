package loop

import (
	"context"

	"github.com/asyncgo/asyncgo/executor"
)

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

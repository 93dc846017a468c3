package loop

import (
	"context"
	"errors"
)

// ErrRunNested is "asyncio.run() cannot be called from a running event
// loop". Run detects it from a task's ctx; called from a plain callback
// (which has no ctx) it cannot tell, and runs a second loop inside the
// first, blocking it.
var ErrRunNested = errors.New("loop: Run() cannot be called from a running event loop")

// Run is asyncio.run: it makes a fresh loop, runs main as its main task,
// then cancels every task still pending and waits for them, shuts the
// default executor down, closes the loop, and returns main's result.
//
// Cancelling ctx cancels the main task (its await returns a cancellation
// error); ctx's values are visible to every task. Errors that leftover
// tasks return while being cancelled go to the exception handler, as
// asyncio reports "unhandled exception during asyncio.run() shutdown".
func Run[T any](ctx context.Context, main func(ctx context.Context) (T, error), opts ...Option) (T, error) {
	var zero T
	if t := taskOf(ctx); t != nil && t.loop.IsRunning() {
		return zero, ErrRunNested
	}
	l := New(opts...)
	t := CreateTask(l, main, WithContext(ctx))
	stop := func() bool { return false }
	if ctx.Err() != nil {
		t.tc.cancel(context.Cause(ctx).Error(), true)
	} else {
		stop = context.AfterFunc(ctx, func() {
			_ = l.CallSoonThreadsafe(func() { t.tc.cancel(context.Cause(ctx).Error(), true) })
		})
	}
	err := l.RunUntilComplete(t)
	stop()
	l.cancelAllTasks()
	l.shutdownDefaultExecutor()
	_ = l.Close()
	if errors.Is(err, ErrLoopStopped) {
		return zero, err
	}
	return t.Result()
}

// RunMain is Run for a main that returns only an error, the usual
// `asyncio.run(main())` whose main returns nothing.
func RunMain(ctx context.Context, main func(ctx context.Context) error, opts ...Option) error {
	_, err := Run(ctx, func(ctx context.Context) (struct{}, error) { return struct{}{}, main(ctx) }, opts...)
	return err
}

// cancelAllTasks is asyncio.runners._cancel_all_tasks.
func (l *Loop) cancelAllTasks() {
	tasks := l.AllTasks()
	if len(tasks) == 0 {
		return
	}
	all := NewFuture[struct{}](l)
	left := len(tasks)
	for _, t := range tasks {
		t.Cancel("")
		t.base().addCallback(func() {
			if left--; left == 0 {
				_ = all.SetResult(struct{}{})
			}
		})
	}
	_ = l.RunUntilComplete(all)
	for _, t := range tasks {
		if !t.Done() || t.Cancelled() { // not done: a task stopped the loop
			continue
		}
		if err := t.Err(); err != nil {
			l.CallExceptionHandler(ExceptionContext{
				Message: "unhandled exception during loop.Run() shutdown",
				Err:     err,
				Task:    t,
			})
		}
	}
}

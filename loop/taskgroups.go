package loop

import (
	"context"
	"errors"
)

// Errors of TaskGroup misuse; asyncio raises RuntimeError with these
// messages.
var (
	ErrTaskGroupEntered      = errors.New("loop: TaskGroup has already been entered")
	ErrTaskGroupNotEntered   = errors.New("loop: TaskGroup has not been entered")
	ErrTaskGroupFinished     = errors.New("loop: TaskGroup is finished")
	ErrTaskGroupShuttingDown = errors.New("loop: TaskGroup is shutting down")
)

// TaskGroup is asyncio.TaskGroup: structured concurrency. Do runs a body in
// the running task; tasks started with SpawnIn belong to the group, and Do
// returns only when all of them are done. The first task that fails (not
// merely cancelled) cancels its siblings and the body; Do then returns an
// *ExceptionGroup holding every error, in the order they happened, the
// body's last. The zero value is ready to use, once.
//
// Go has no BaseException: a panic in a task is that task's error like any
// other.
type TaskGroup struct {
	entered, exiting, aborting bool
	loop                       *Loop
	ctx                        context.Context
	parent                     *taskCore
	parentCancelRequested      bool
	tasks                      map[*taskCore]struct{}
	errs                       []error
	onCompleted                *Future[struct{}]
}

// WithTaskGroup runs body with a new TaskGroup: `async with TaskGroup() as
// tg: body`.
func WithTaskGroup(ctx context.Context, body func(ctx context.Context, tg *TaskGroup) error) error {
	tg := new(TaskGroup)
	return tg.Do(ctx, func(ctx context.Context) error { return body(ctx, tg) })
}

// Do enters the group, runs body, and waits for every task of the group.
func (tg *TaskGroup) Do(ctx context.Context, body func(ctx context.Context) error) error {
	if tg.entered {
		return ErrTaskGroupEntered
	}
	t := runningTask(ctx)
	if t == nil {
		return ErrNotInTask
	}
	tg.entered = true
	tg.loop = t.loop
	tg.ctx = ctx
	tg.parent = t
	tg.tasks = make(map[*taskCore]struct{})
	returned := false
	defer func() {
		// A panicking body still cancels and waits for the children (as
		// an exception would), then the panic goes on; so does a body
		// that calls runtime.Goexit.
		r := recover()
		switch {
		case r != nil:
			if _, killed := r.(taskKilled); !killed && !tg.exiting {
				_ = tg.exit(ctx, newPanicError(r))
			}
			panic(r)
		case !returned && !tg.exiting && !t.killed:
			_ = tg.exit(ctx, ErrGoexit)
		}
	}()
	err := body(ctx)
	returned = true
	return tg.exit(ctx, err)
}

func (tg *TaskGroup) exit(ctx context.Context, err error) error {
	tg.exiting = true
	var propagate error
	if isCancellation(err) {
		propagate = err
	}
	if err != nil && !tg.aborting {
		tg.abort()
	}
	waitCtx := ctx
	var ctxErr error
	for len(tg.tasks) > 0 {
		if tg.onCompleted == nil {
			tg.onCompleted = NewFuture[struct{}](tg.loop)
		}
		_, werr := tg.onCompleted.Await(waitCtx)
		switch {
		case werr == nil:
		case !errors.Is(werr, ErrCancelled):
			// A ctx derived from the task's ended: the group stops its
			// children, and still waits for them, on the task's own ctx.
			ctxErr = werr
			waitCtx = tg.parent
			if !tg.aborting {
				tg.abort()
			}
		case !tg.aborting || ctxErr != nil:
			// The parent task is being cancelled while children run
			// (also once the ctx's end made the group stop them).
			propagate = werr
			if !tg.aborting {
				tg.abort()
			}
		}
		tg.onCompleted = nil
	}
	parent := tg.parent
	tg.parent = nil
	if tg.parentCancelRequested && parent.uncancel() == 0 {
		propagate = nil
	}
	if propagate == nil {
		propagate = ctxErr
	}
	if propagate != nil && len(tg.errs) == 0 {
		return propagate
	}
	if err != nil && !isCancellation(err) {
		tg.errs = append(tg.errs, err)
	}
	if len(tg.errs) == 0 {
		return nil
	}
	if parent.numCancels > 0 {
		// Keep an outside cancellation of the parent pending.
		parent.uncancel()
		parent.cancel("", false)
	}
	errs := tg.errs
	tg.errs = nil
	return &ExceptionGroup{Msg: "unhandled errors in a TaskGroup", Errs: errs}
}

func (tg *TaskGroup) abort() {
	tg.aborting = true
	for t := range tg.tasks {
		if !t.finished {
			t.cancel("", true)
		}
	}
}

func (tg *TaskGroup) onTaskDone(t *taskCore) {
	delete(tg.tasks, t)
	if len(tg.tasks) == 0 {
		releaseWaiter(tg.onCompleted)
	}
	if t.fut().state == stateCancelled {
		return
	}
	err := t.fut().errRetrieve()
	if err == nil {
		return
	}
	tg.errs = append(tg.errs, err)
	if tg.parent == nil || tg.parent.finished {
		tg.loop.CallExceptionHandler(ExceptionContext{
			Message: "Task has errored out but its parent task is already completed",
			Err:     err,
			Task:    t.self,
		})
		return
	}
	if !tg.aborting && !tg.parentCancelRequested {
		// Cancel the body too, but only until the group exits: exit
		// withdraws this cancellation (uncancel).
		tg.abort()
		tg.parentCancelRequested = true
		tg.parent.cancel("", false)
	}
}

func (tg *TaskGroup) check() error {
	switch {
	case !tg.entered:
		return ErrTaskGroupNotEntered
	case tg.exiting && len(tg.tasks) == 0:
		return ErrTaskGroupFinished
	case tg.aborting:
		return ErrTaskGroupShuttingDown
	}
	return nil
}

// SpawnIn is TaskGroup.create_task: fn runs as a task of the group. It
// fails before Do has entered the group, after the group has finished, and
// while the group is shutting down after a failure.
func SpawnIn[T any](tg *TaskGroup, fn func(ctx context.Context) (T, error), opts ...TaskOption) (*Task[T], error) {
	if err := tg.check(); err != nil {
		return nil, err
	}
	opts = append([]TaskOption{{ctx: tg.ctx}}, opts...)
	t := CreateTask(tg.loop, fn, opts...)
	tc := &t.tc
	tg.tasks[tc] = struct{}{}
	t.addCallback(func() { tg.onTaskDone(tc) })
	return t, nil
}

// Go is SpawnIn for a function with no result.
func (tg *TaskGroup) Go(fn func(ctx context.Context) error, opts ...TaskOption) error {
	_, err := SpawnIn(tg, func(ctx context.Context) (struct{}, error) { return struct{}{}, fn(ctx) }, opts...)
	return err
}

package loop

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
)

// ErrKeyboardInterrupt is Python's KeyboardInterrupt out of asyncio.run:
// Run returns it when a SIGINT cancelled the main task and the main task
// ended cancelled, or when a second SIGINT stopped the loop.
var ErrKeyboardInterrupt = errors.New("loop: KeyboardInterrupt")

// sigintOwner is held by the Run that handles SIGINT: asyncio installs
// its handler only in the main thread, so one Run at a time here.
var sigintOwner atomic.Bool

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
//
// SIGINT (Ctrl-C), as asyncio.run since Python 3.11: while main runs, the
// first SIGINT cancels the main task, and if main ends cancelled Run
// returns ErrKeyboardInterrupt; a second SIGINT stops the loop at once
// (the remaining tasks are still cancelled and awaited) and Run returns
// ErrKeyboardInterrupt. Python installs this handler only in the main
// thread and only while SIGINT has its default handler; here only one Run
// at a time handles SIGINT (others leave it alone), and none does if the
// program ignores SIGINT (signal.Ignore). Before the cleanup starts SIGINT
// gets its default action back, unless the program asks for it elsewhere.
// A handler the program sets for SIGINT on the loop (AddSignalHandler)
// replaces Run's, as signal.signal replaces the Runner's in Python.
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
	hook := hookSigint(l, &t.tc)
	err := l.RunUntilComplete(t)
	hook.release()
	stop()
	l.cancelAllTasks()
	l.shutdownDefaultExecutor()
	_ = l.Close()
	n := hook.interrupts()
	if errors.Is(err, ErrLoopStopped) {
		if n > 1 {
			return zero, ErrKeyboardInterrupt
		}
		return zero, err
	}
	if n > 0 && t.Cancelled() && t.Uncancel() == 0 {
		return zero, ErrKeyboardInterrupt
	}
	return t.Result()
}

// sigintHook is Runner._on_sigint's handler for one Run: installed while
// main runs, stepped aside from while the program has its own SIGINT
// handler on the loop (AddSignalHandler), back when that is removed.
type sigintHook struct {
	l     *Loop
	tc    *taskCore
	count atomic.Int32
	ch    chan os.Signal
	done  chan struct{}
	wg    sync.WaitGroup
	armed bool // loop goroutine: the hook acts on what it posted
}

// hookSigint installs Run's SIGINT handler, if SIGINT is not ignored and
// no other Run holds it; nil otherwise.
func hookSigint(l *Loop, tc *taskCore) *sigintHook {
	if signal.Ignored(os.Interrupt) || !sigintOwner.CompareAndSwap(false, true) {
		return nil
	}
	h := &sigintHook{l: l, tc: tc}
	h.install()
	l.runSigint = h
	return h
}

func (h *sigintHook) install() {
	if h.ch != nil {
		return
	}
	h.ch = make(chan os.Signal, 2)
	h.done = make(chan struct{})
	h.armed = true
	signal.Notify(h.ch, syscall.SIGINT)
	ch, done := h.ch, h.done
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		for {
			select {
			case <-ch:
				h.l.CallSoonThreadsafe(h.fire)
			case <-done:
				return
			}
		}
	}()
}

// fire is _on_sigint, on the loop: the first SIGINT cancels the main
// task, the next stops the loop. After the hook is uninstalled (Run's
// cleanup has begun) a late one does nothing.
func (h *sigintHook) fire() {
	if !h.armed {
		return
	}
	if h.count.Add(1) == 1 && !h.tc.finished {
		h.tc.cancel("", true)
		return
	}
	h.l.Stop()
}

func (h *sigintHook) uninstall() {
	if h.ch == nil {
		return
	}
	h.armed = false
	signal.Stop(h.ch)
	close(h.done)
	h.wg.Wait()
	h.ch = nil
}

// release ends the hook for good, at the end of Run's main.
func (h *sigintHook) release() {
	if h == nil {
		return
	}
	h.uninstall()
	h.l.runSigint = nil
	sigintOwner.Store(false)
}

func (h *sigintHook) interrupts() int32 {
	if h == nil {
		return 0
	}
	return h.count.Load()
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

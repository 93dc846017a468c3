package loop

import (
	"context"
	"sync"
	"time"
)

// A task's ctx is the task itself: Await finds the running task with one
// type assertion, and no context is allocated per task. Its values come
// from the ctx the task was created with (as asyncio copies contextvars);
// its cancellation is the task's own, never its creator's.

type taskKey struct{}

// ctxState is the part of a task's ctx other goroutines may touch; it is
// allocated the first time Done or AfterFunc is called.
type ctxState struct {
	mu        sync.Mutex
	done      chan struct{}
	cancelled bool
	afters    map[*afterFunc]struct{}
}

type afterFunc struct{ f func() }

// Deadline reports no deadline: a task's ctx ends by cancellation only.
func (t *taskCore) Deadline() (time.Time, bool) { return time.Time{}, false }

// Done returns a channel closed when the task is cancelled (Cancel was
// called) or has finished. Safe from any goroutine.
func (t *taskCore) Done() <-chan struct{} { return t.ctxState().done }

// Err returns context.Canceled once Done is closed. Safe from any goroutine.
func (t *taskCore) Err() error {
	if t.ctxCancelled.Load() {
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
// work without a watcher goroutine; f runs in its own goroutine.
func (t *taskCore) AfterFunc(f func()) (stop func() bool) {
	s := t.ctxState()
	a := &afterFunc{f: f}
	s.mu.Lock()
	if s.cancelled {
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

func (t *taskCore) ctxState() *ctxState {
	if s := t.ctxs.Load(); s != nil {
		return s
	}
	s := &ctxState{done: make(chan struct{})}
	if !t.ctxs.CompareAndSwap(nil, s) {
		return t.ctxs.Load()
	}
	if t.ctxCancelled.Load() {
		s.cancel()
	}
	return s
}

// cancelCtx closes the task's ctx; loop goroutine only.
func (t *taskCore) cancelCtx() {
	if t.ctxCancelled.Swap(true) {
		return
	}
	if s := t.ctxs.Load(); s != nil {
		s.cancel()
	}
}

func (s *ctxState) cancel() {
	s.mu.Lock()
	if s.cancelled {
		s.mu.Unlock()
		return
	}
	s.cancelled = true
	close(s.done)
	afters := s.afters
	s.afters = nil
	s.mu.Unlock()
	for a := range afters {
		go a.f()
	}
}

// taskOf returns the task a ctx belongs to, or nil.
func taskOf(ctx context.Context) *taskCore {
	if t, ok := ctx.(*taskCore); ok {
		return t
	}
	if ctx == nil {
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

// valuesOf is the ctx a new task takes its values from: its creator's
// values without its creator's cancellation. A task spawned from a ctx
// derived from its creator's (context.WithValue(ctx, ...)) keeps that chain,
// and with it the creator, reachable while it lives: Go contexts are
// chains, where asyncio copies a flat context.
func valuesOf(ctx context.Context) context.Context {
	if ctx == nil {
		return nil
	}
	if t, ok := ctx.(*taskCore); ok {
		return t.parent
	}
	if ctx == context.Background() {
		return nil // no values to see
	}
	return context.WithoutCancel(ctx)
}

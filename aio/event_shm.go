package aio

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/loop"
)

// An Event in shared memory (shm_linux.go). Its slot holds two words:
//
//	state:   a generation count << 1 | the flag; each Set of a clear
//	         event counts one, so a waiter that saw the event clear knows
//	         a Set came when the word changes, even if a Clear followed
//	         it (threading.Event's waiter returns True then too)
//	sleepers: how many threads are in, or about to enter, a futex wait on
//	         state; a Set makes the wake system call only if there are any
//
// A waiter counts itself in sleepers before it reads state, and a setter
// writes state before it reads sleepers (both sequentially consistent), so
// no wake is missed.
type shmEvent struct {
	r    shmRef
	h    handle // r's arena, resolved when r arrived
	once sync.Mutex
	slot atomic.Pointer[[8]uint32]
}

func newShmEvent() (*shmEvent, error) {
	r, slot, err := newSlot()
	if err != nil {
		return nil, err
	}
	s := &shmEvent{r: r}
	s.slot.Store(slot)
	return s, nil
}

var errCorruptShmRef = errors.New("aio: corrupt shared-memory reference")

// decodeShmEvent makes a received reference an event: its arena's host
// must be this process or one it shares a connection with.
func decodeShmEvent(b []byte) (*shmEvent, error) {
	r, err := decodeShmRef(b, kindEvent)
	if err != nil {
		return nil, err
	}
	h, err := resolve(r.arena, kindArena)
	if err != nil {
		return nil, err
	}
	return &shmEvent{r: r, h: h}, nil
}

// words maps the event's slot the first time this process uses it.
func (s *shmEvent) words() (state, sleepers *uint32, err error) {
	slot := s.slot.Load()
	if slot == nil {
		s.once.Lock()
		if slot = s.slot.Load(); slot == nil {
			slot, err = mapSlot(s.h, s.r.off)
			if err != nil {
				s.once.Unlock()
				return nil, nil, err
			}
			s.slot.Store(slot)
		}
		s.once.Unlock()
	}
	return &slot[0], &slot[1], nil
}

func (s *shmEvent) set() error {
	state, sleepers, err := s.words()
	if err != nil {
		return err
	}
	postedApplied()
	for {
		v := atomic.LoadUint32(state)
		if v&1 != 0 {
			return nil
		}
		if atomic.CompareAndSwapUint32(state, v, (v+2)|1) {
			break
		}
	}
	if atomic.LoadUint32(sleepers) != 0 {
		futexWakeAll(state)
	}
	return nil
}

func (s *shmEvent) clear() error {
	state, _, err := s.words()
	if err != nil {
		return err
	}
	postedApplied()
	for {
		v := atomic.LoadUint32(state)
		if v&1 == 0 || atomic.CompareAndSwapUint32(state, v, v&^1) {
			return nil
		}
	}
}

func (s *shmEvent) isSet() bool {
	state, _, err := s.words()
	return err == nil && atomic.LoadUint32(state)&1 != 0
}

// wait waits for a Set: with a task's ctx on its loop (through the
// process's watcher of the event), with a ctx that can end on this
// goroutine and that watcher, and otherwise asleep in the kernel itself.
// timeout < 0 waits as long as it takes; 0 does not wait.
func (s *shmEvent) wait(ctx context.Context, timeout time.Duration) (bool, error) {
	state, sleepers, err := s.words()
	if err != nil {
		return false, err
	}
	v0 := atomic.LoadUint32(state)
	if v0&1 != 0 {
		return true, nil
	}
	if timeout == 0 {
		return false, nil
	}
	return waitChange(ctx, state, sleepers, v0, timeout, nil)
}

// waitChange waits until *state is no longer v0 (true), timeout passes
// (false; < 0: no timeout) or ctx ends: with a task's ctx on its loop
// (through the process's watcher of the word), with a ctx that can end
// on this goroutine and that watcher, and otherwise asleep in the kernel
// itself. sleepers counts the threads asleep on state, for the wake;
// keep is kept reachable while the watcher runs (what maps state).
func waitChange(ctx context.Context, state, sleepers *uint32, v0 uint32, timeout time.Duration, keep any) (bool, error) {
	if ctx == nil {
		ctx = bg
	}
	l := taskLoop(ctx)
	if l == nil && ctx.Done() == nil {
		return sleepOn(state, sleepers, v0, timeout), nil
	}
	f := executor.NewFuture[bool]()
	w := watchOf(state, sleepers).add(v0, f, keep)
	if timeout > 0 {
		t := time.AfterFunc(timeout, func() { _ = f.SetResult(false) })
		defer t.Stop()
	}
	var ok bool
	var err error
	if l != nil {
		ok, err = loop.WrapFuture(l, f).Await(ctx)
	} else {
		select {
		case <-f.DoneChan():
			ok, err = f.Result(bg)
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	w.drop()
	return ok, err
}

// sleepOn is a blocking wait on this goroutine's thread: the fastest way,
// since the kernel wakes this very thread.
func sleepOn(state, sleepers *uint32, v0 uint32, timeout time.Duration) bool {
	atomic.AddUint32(sleepers, 1)
	defer atomic.AddUint32(sleepers, ^uint32(0))
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	for {
		if atomic.LoadUint32(state) != v0 {
			return true
		}
		d := time.Duration(-1)
		if timeout > 0 {
			if d = time.Until(deadline); d <= 0 {
				return false
			}
		}
		futexWait(state, v0, d)
	}
}

// An eventWatch is one goroutine per process and event that sleeps on the
// event for the waiters that must not block (tasks, and waits a ctx can
// end) and completes their futures. It sleeps in slices of watchSlice, so
// that it ends soon after its last waiter gave up.
type eventWatch struct {
	state, sleepers *uint32
	mu              sync.Mutex
	waiters         map[*watchWaiter]struct{}
	running         bool
	keep            any // what maps the word, while running
}

type watchWaiter struct {
	w  *eventWatch
	v0 uint32
	f  *executor.Future[bool]
}

const watchSlice = 20 * time.Millisecond

var (
	watchesMu sync.Mutex
	watches   = map[*uint32]*eventWatch{}
)

func watchOf(state, sleepers *uint32) *eventWatch {
	watchesMu.Lock()
	defer watchesMu.Unlock()
	w := watches[state]
	if w == nil {
		w = &eventWatch{state: state, sleepers: sleepers, waiters: map[*watchWaiter]struct{}{}}
		watches[state] = w
	}
	return w
}

// forget drops an idle watch from the table, so that an event waited on
// once costs nothing after; a waiter that found it just before starts it
// again, unlisted, and a later one makes a new one.
func (w *eventWatch) forget() {
	watchesMu.Lock()
	defer watchesMu.Unlock()
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.running && watches[w.state] == w {
		delete(watches, w.state)
	}
}

func (w *eventWatch) add(v0 uint32, f *executor.Future[bool], keep any) *watchWaiter {
	ww := &watchWaiter{w: w, v0: v0, f: f}
	w.mu.Lock()
	w.waiters[ww] = struct{}{}
	start := !w.running
	w.running = true
	if keep != nil {
		w.keep = keep
	}
	w.mu.Unlock()
	if start {
		atomic.AddUint32(w.sleepers, 1)
		go w.run()
	}
	return ww
}

func (ww *watchWaiter) drop() {
	ww.w.mu.Lock()
	delete(ww.w.waiters, ww)
	ww.w.mu.Unlock()
}

func (w *eventWatch) run() {
	for {
		// Read under mu: a waiter added meanwhile read its v0 after this
		// value, and must not be taken as woken by an older one.
		w.mu.Lock()
		v := atomic.LoadUint32(w.state)
		for ww := range w.waiters {
			if v != ww.v0 {
				_ = ww.f.SetResult(true)
				delete(w.waiters, ww)
			}
		}
		if len(w.waiters) == 0 {
			w.running = false
			w.mu.Unlock()
			atomic.AddUint32(w.sleepers, ^uint32(0))
			w.mu.Lock()
			if !w.running { // not started again meanwhile
				w.keep = nil // the last use of the word is behind
			}
			w.mu.Unlock()
			w.forget()
			return
		}
		w.mu.Unlock()
		futexWait(w.state, v, watchSlice)
	}
}

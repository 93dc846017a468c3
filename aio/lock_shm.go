package aio

import (
	"context"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/loop"
)

// A Lock in shared memory (shm_linux.go), with its hosted twin (a semObj)
// for when a Condition is made over it. Its slot holds three words:
//
//	state:  0 free, 1 held, 2 held and maybe waited for (a futex mutex,
//	        Drepper's "Futexes Are Tricky"), 3 moved: the lock now lives in
//	        its host's semObj, for a Condition, and every operation goes
//	        there (NewCondition moves a free lock; nothing moves it back)
//	holder: the pid of the process that took it, written once it has it
//	        and cleared before it lets go
//	died:   1 when the host found the holder's process dead: the host
//	        frees the lock, and the acquire that takes it next frees it
//	        again and returns ErrOwnerDied
//
// The processes that can hold a lock are its host and the host's peers
// (objects cross only between a process and its parent and children), so
// the host sees every holder's death: its side channel ends.
const (
	lkFree = iota
	lkHeld
	lkContended
	lkMoved
)

type shmLock struct {
	r    shmRef
	h    handle // r's arena
	sem  semaphore
	once sync.Mutex
	slot atomic.Pointer[[8]uint32]
}

// lockObj is the hosted object of a shared-memory Lock: its semObj, and
// the host's watch over the holders' deaths.
type lockObj struct {
	*semObj
	l *shmLock
}

func (o lockObj) peerGone(p *peer) {
	o.semObj.peerGone(p)
	if p.pid > 0 {
		o.l.holderGone(uint32(p.pid))
	}
}

func newShmLock() (*shmLock, error) {
	r, slot, err := newSlot()
	if err != nil {
		return nil, err
	}
	l := &shmLock{r: r}
	l.slot.Store(slot)
	obj := &semObj{value: 1, bound: 1, bounded: true, isLock: true}
	l.sem = semaphore{newHandle(kindLock, lockObj{obj, l})}
	return l, nil
}

// encode: the slot's reference, then the hosted twin's.
func (l *shmLock) encode() ([]byte, error) {
	b, err := l.sem.h.encode()
	if err != nil {
		return nil, err
	}
	return append(l.r.encode(kindLock), b...), nil
}

const shmLockRefLen = shmRefLen + 17

func decodeShmLock(b []byte) (*shmLock, error) {
	r, err := decodeShmRef(b[:shmRefLen], kindLock)
	if err != nil {
		return nil, err
	}
	h, err := resolve(r.arena, kindArena)
	if err != nil {
		return nil, err
	}
	l := &shmLock{r: r, h: h}
	if err := l.sem.h.decode(b[shmRefLen:], kindLock); err != nil {
		return nil, err
	}
	if l.sem.h.Host != r.arena.Host {
		return nil, errCorruptShmRef
	}
	return l, nil
}

func (l *shmLock) words() (*[8]uint32, error) {
	slot := l.slot.Load()
	if slot == nil {
		l.once.Lock()
		defer l.once.Unlock()
		if slot = l.slot.Load(); slot == nil {
			var err error
			if slot, err = mapSlot(l.h, l.r.off); err != nil {
				return nil, err
			}
			l.slot.Store(slot)
		}
	}
	return slot, nil
}

var selfPid = uint32(os.Getpid())

// tryLock takes the lock if it is free; moved reports that it lives in the
// host now.
func tryLock(w *[8]uint32) (ok, moved bool) {
	for {
		switch v := atomic.LoadUint32(&w[0]); v {
		case lkFree:
			if atomic.CompareAndSwapUint32(&w[0], lkFree, lkHeld) {
				return true, false
			}
		case lkMoved:
			return false, true
		default:
			return false, false
		}
	}
}

// sleepLock waits on this thread until it takes the lock, timeout passes
// (false) or the lock moves to its host (moved).
func sleepLock(w *[8]uint32, timeout time.Duration) (ok, moved bool) {
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	for {
		v := atomic.LoadUint32(&w[0])
		switch v {
		case lkMoved:
			return false, true
		case lkFree:
			// Taken as contended: others may sleep, and the release
			// must wake one.
			if atomic.CompareAndSwapUint32(&w[0], lkFree, lkContended) {
				return true, false
			}
			continue
		case lkHeld:
			if !atomic.CompareAndSwapUint32(&w[0], lkHeld, lkContended) {
				continue
			}
		}
		d := time.Duration(-1)
		if timeout > 0 {
			if d = time.Until(deadline); d <= 0 {
				return false, false
			}
		}
		futexWait(&w[0], lkContended, d)
	}
}

// took finishes an acquire: it names this process the holder, or, if the
// last holder died, lets go again and reports ErrOwnerDied.
func (l *shmLock) took(w *[8]uint32) error {
	atomic.StoreUint32(&w[1], selfPid)
	if atomic.LoadUint32(&w[2]) != 0 && atomic.CompareAndSwapUint32(&w[2], 1, 0) {
		if err := l.unlock(w); err != nil {
			return err
		}
		return ErrOwnerDied
	}
	return nil
}

func (l *shmLock) acquire(ctx context.Context, timeout time.Duration) (bool, error) {
	w, err := l.words()
	if err != nil {
		return false, err
	}
	ok, moved := tryLock(w)
	if moved {
		return l.sem.acquire(ctx, timeout)
	}
	if ok {
		return true, l.took(w)
	}
	if timeout == 0 {
		return false, nil
	}
	if ctx == nil {
		ctx = bg
	}
	lp := taskLoop(ctx)
	if lp == nil && ctx.Done() == nil {
		ok, moved := sleepLock(w, timeout)
		if moved {
			return l.sem.acquire(ctx, timeout)
		}
		if !ok {
			return false, nil
		}
		return true, l.took(w)
	}
	return l.acquireWatched(ctx, lp, w, timeout)
}

// Results of a watched acquire.
const (
	grantHeld  = iota // the caller holds the lock
	grantMoved        // go to the host
)

// acquireWatched waits through the process's watcher of the lock, for a
// task (on its loop) or a ctx that can end: a grant that comes as the
// wait ends is given back.
func (l *shmLock) acquireWatched(ctx context.Context, lp *loop.Loop, w *[8]uint32, timeout time.Duration) (bool, error) {
	f := executor.NewFuture[int]()
	lw := lockWatchOf(l, w)
	lw.add(f)
	if timeout > 0 {
		t := time.AfterFunc(timeout, func() { f.Cancel() })
		defer t.Stop()
	}
	undo := func(g int) {
		if g == grantHeld {
			_ = l.unlock(w)
		}
	}
	var g int
	var err error
	if lp != nil {
		g, err = awaitUndo(ctx, loop.WrapFutureUndo(lp, f, undo), undo)
	} else {
		select {
		case <-f.DoneChan():
			g, err = f.Result(bg)
		case <-ctx.Done():
			if !f.Cancel() {
				if g2, e2 := f.Result(bg); e2 == nil {
					undo(g2)
				}
			}
			err = ctx.Err()
		}
	}
	lw.drop(f)
	if err != nil {
		if f.Cancelled() && ctx.Err() == nil {
			return false, nil // the timeout
		}
		return false, err
	}
	if g == grantMoved {
		left := time.Duration(-1)
		if timeout > 0 {
			left = timeout // a bound, not exact: the move is once in a lock's life
		}
		return l.sem.acquire(ctx, left)
	}
	return true, nil
}

func (l *shmLock) release(ctx context.Context) error {
	w, err := l.words()
	if err != nil {
		return err
	}
	postedApplied()
	if err := l.unlock(w); err != errMoved {
		return err
	}
	return l.sem.release(ctx)
}

var errMoved = errorString("aio: the lock moved to its host")

type errorString string

func (e errorString) Error() string { return string(e) }

// unlock lets go of the lock (whoever took it, as multiprocessing's);
// errMoved: it lives in the host now.
func (l *shmLock) unlock(w *[8]uint32) error {
	for {
		v := atomic.LoadUint32(&w[0])
		switch v {
		case lkFree:
			return ErrReleasedTooOften
		case lkMoved:
			return errMoved
		}
		atomic.StoreUint32(&w[1], 0)
		if atomic.CompareAndSwapUint32(&w[0], v, lkFree) {
			if v == lkContended {
				futexWakeOne(&w[0])
			}
			return nil
		}
	}
}

func (l *shmLock) locked() bool {
	w, err := l.words()
	if err != nil {
		return false
	}
	switch atomic.LoadUint32(&w[0]) {
	case lkFree:
		return false
	case lkMoved:
		return l.sem.value() <= 0
	}
	return true
}

// holderGone runs in the host when a peer's process has ended: a lock it
// held is freed, and the next acquire learns of it.
func (l *shmLock) holderGone(pid uint32) {
	w := l.slot.Load()
	for {
		v := atomic.LoadUint32(&w[0])
		if v != lkHeld && v != lkContended || atomic.LoadUint32(&w[1]) != pid {
			return
		}
		atomic.StoreUint32(&w[2], 1)
		atomic.StoreUint32(&w[1], 0)
		if atomic.CompareAndSwapUint32(&w[0], v, lkFree) {
			futexWakeAll(&w[0])
			return
		}
	}
}

// moveToHost makes the lock live in its semObj from now on, for a
// Condition: it waits until the lock is free and marks it moved, and a
// died mark goes with it. Only the host calls it.
func (l *shmLock) moveToHost() {
	w := l.slot.Load()
	for {
		ok, moved := sleepLock(w, -1)
		if moved {
			return
		}
		if ok {
			break
		}
	}
	o := l.sem.h.local.(lockObj)
	o.mu.Lock()
	if atomic.SwapUint32(&w[2], 0) != 0 {
		o.died = true
	}
	atomic.StoreUint32(&w[1], 0)
	atomic.StoreUint32(&w[0], lkMoved)
	o.mu.Unlock()
	futexWakeAll(&w[0])
}

// A lockWatch is one goroutine per process and lock that takes the lock
// for the waiters that must not block (tasks, waits a ctx can end), in
// the order they came, and hands it to the first that still wants it.
type lockWatch struct {
	l       *shmLock
	w       *[8]uint32
	mu      sync.Mutex
	waiters []*executor.Future[int]
	running bool
}

var (
	lockWatchesMu sync.Mutex
	lockWatches   = map[*[8]uint32]*lockWatch{}
)

func lockWatchOf(l *shmLock, w *[8]uint32) *lockWatch {
	lockWatchesMu.Lock()
	defer lockWatchesMu.Unlock()
	lw := lockWatches[w]
	if lw == nil {
		lw = &lockWatch{l: l, w: w}
		lockWatches[w] = lw
	}
	return lw
}

func (lw *lockWatch) add(f *executor.Future[int]) {
	lw.mu.Lock()
	lw.waiters = append(lw.waiters, f)
	start := !lw.running
	lw.running = true
	lw.mu.Unlock()
	if start {
		go lw.run()
	}
}

func (lw *lockWatch) drop(f *executor.Future[int]) {
	lw.mu.Lock()
	for i, x := range lw.waiters {
		if x == f {
			lw.waiters = append(lw.waiters[:i], lw.waiters[i+1:]...)
			break
		}
	}
	lw.mu.Unlock()
}

// next pops the first waiter still waiting, or ends the watch.
func (lw *lockWatch) next() *executor.Future[int] {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	for len(lw.waiters) > 0 {
		f := lw.waiters[0]
		lw.waiters = lw.waiters[1:]
		if !f.Done() {
			return f
		}
	}
	return nil
}

func (lw *lockWatch) idle() bool {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	for _, f := range lw.waiters {
		if !f.Done() {
			return false
		}
	}
	lw.waiters = nil
	lw.running = false
	return true
}

func (lw *lockWatch) run() {
	for !lw.idle() {
		ok, moved := sleepLock(lw.w, watchSlice)
		if moved {
			for f := lw.next(); f != nil; f = lw.next() {
				_ = f.SetResult(grantMoved)
			}
			continue
		}
		if !ok {
			continue
		}
		err := lw.l.took(lw.w)
		for {
			f := lw.next()
			if f == nil {
				if err == nil {
					_ = lw.l.unlock(lw.w)
				}
				break
			}
			if err != nil {
				if f.SetErr(err) == nil {
					break
				}
				continue
			}
			if f.SetResult(grantHeld) == nil {
				break
			}
		}
	}
}

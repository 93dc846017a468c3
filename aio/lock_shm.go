package aio

import (
	"context"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/loop"
)

// A Lock in shared memory (shm_linux.go), with its hosted twin (a semObj)
// for when a Condition is made over it. Its slot's first word is a futex
// mutex (Drepper's "Futexes Are Tricky") that names its holder:
//
//	0            free
//	pid<<1 | c   held by the process pid; c: maybe waited for, so the
//	             release must wake one
//	lkDiedFree   free because its holder died: the host found the holder's
//	             process gone and freed it; the acquire that takes it
//	             frees it again and returns ErrOwnerDied
//	lkMoved      the lock lives in its host's semObj now, for a Condition,
//	             and every operation goes there (NewCondition moves it;
//	             nothing moves it back)
//
// The holder is in the same word as the state, so taking, releasing and
// the host's freeing of a dead holder's lock are each one compare-and-swap:
// a process killed at any instant leaves the lock either its own or free,
// and the host frees it only if it is still the dead one's. Words 2 and 3
// hold the owner (the task or goroutine, for a Condition made while the
// lock is held), written once the lock is taken.
//
// The processes that can hold a lock are its host and the host's peers
// (objects cross only between a process and its parent and children), so
// the host sees every holder's death: its side channel ends. Once the host
// has exited, nobody frees the lock of a holder that dies after it.
const (
	lkFree     = 0
	lkDiedFree = 0xFFFFFFFE
	lkMoved    = 0xFFFFFFFF
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

// me is this process's holder value (pids are below 2^22, Linux's limit).
var me = uint32(os.Getpid()) << 1

func isFree(v uint32) bool { return v == lkFree || v == lkDiedFree }

// tryLock takes the lock if it is free; moved reports that it lives in the
// host now, died that its last holder died.
func tryLock(w *[8]uint32) (ok, moved, died bool) {
	for {
		v := atomic.LoadUint32(&w[0])
		switch {
		case v == lkMoved:
			return false, true, false
		case isFree(v):
			if atomic.CompareAndSwapUint32(&w[0], v, me) {
				return true, false, v == lkDiedFree
			}
		default:
			return false, false, false
		}
	}
}

// sleepLock waits on this thread until it takes the lock, timeout passes
// (false) or the lock moves to its host (moved).
func sleepLock(w *[8]uint32, timeout time.Duration) (ok, moved, died bool) {
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	for {
		v := atomic.LoadUint32(&w[0])
		switch {
		case v == lkMoved:
			return false, true, false
		case isFree(v):
			// Taken as waited for: others may sleep, and the release
			// must wake one.
			if atomic.CompareAndSwapUint32(&w[0], v, me|1) {
				return true, false, v == lkDiedFree
			}
			continue
		case v&1 == 0:
			if !atomic.CompareAndSwapUint32(&w[0], v, v|1) {
				continue
			}
			v |= 1
		}
		d := time.Duration(-1)
		if timeout > 0 {
			if d = time.Until(deadline); d <= 0 {
				return false, false, false
			}
		}
		futexWait(&w[0], v, d)
	}
}

// took finishes an acquire by owner: it records the owner, or, if the
// last holder died, lets go again and reports ErrOwnerDied.
func (l *shmLock) took(w *[8]uint32, died bool, owner uint64) error {
	if died {
		l.letGo(w, owner)
		return ErrOwnerDied
	}
	atomic.StoreUint32(&w[2], uint32(owner))
	atomic.StoreUint32(&w[3], uint32(owner>>32))
	return nil
}

func (l *shmLock) acquire(ctx context.Context, timeout time.Duration) (bool, error) {
	w, err := l.words()
	if err != nil {
		return false, err
	}
	owner := lockOwner(ctx)
	ok, moved, died := tryLock(w)
	if moved {
		return l.sem.acquire(ctx, timeout)
	}
	if ok {
		return true, l.took(w, died, owner)
	}
	if timeout == 0 {
		return false, nil
	}
	if ctx == nil {
		ctx = bg
	}
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	lp := taskLoop(ctx)
	if lp == nil && ctx.Done() == nil {
		ok, moved, died := sleepLock(w, timeout)
		if moved {
			return l.sem.acquire(ctx, remaining(deadline))
		}
		if !ok {
			return false, nil
		}
		return true, l.took(w, died, owner)
	}
	return l.acquireWatched(ctx, lp, w, timeout, deadline, owner)
}

// anyOwner stands for "some goroutine of the holding process": a
// goroutine's id costs a stack dump to learn (a few µs, a third of a round
// trip), and a Lock has no owner but for a Condition made while it is
// held, whose Wait and Notify then accept any goroutine of that process.
const anyOwner = 1 << 62

// lockOwner is the owner an acquire records: the task, or anyOwner.
func lockOwner(ctx context.Context) uint64 {
	if ctx != nil {
		if t := loop.CurrentTask(ctx); t != nil {
			return taskOwner(t)
		}
	}
	return anyOwner
}

// remaining is what is left of a timeout that ends at deadline (zero
// time: none): at least a nanosecond, so that it still means "wait".
func remaining(deadline time.Time) time.Duration {
	if deadline.IsZero() {
		return -1
	}
	return max(time.Until(deadline), time.Nanosecond)
}

// Results of a watched acquire.
const (
	grantHeld  = iota // the caller holds the lock
	grantMoved        // go to the host
)

// acquireWatched waits through the process's watcher of the lock, for a
// task (on its loop) or a ctx that can end: a grant that comes as the
// wait ends is given back.
func (l *shmLock) acquireWatched(ctx context.Context, lp *loop.Loop, w *[8]uint32, timeout time.Duration, deadline time.Time, owner uint64) (bool, error) {
	f := executor.NewFuture[int]()
	lw := lockWatchOf(l, w)
	lw.add(f, owner)
	var timedOut atomic.Bool
	if timeout > 0 {
		t := time.AfterFunc(timeout, func() { timedOut.Store(true); f.Cancel() })
		defer t.Stop()
	}
	undo := func(g int) {
		if g == grantHeld {
			l.letGo(w, owner)
		}
	}
	var g int
	var err error
	if lp != nil {
		g, err = awaitUndo(ctx, lp, f, undo)
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
	if f.Done() {
		// A death reported as the wait ended is still this acquire's
		// to report: the watcher has freed the lock for the next one.
		if _, e := f.Result(bg); errors.Is(e, ErrOwnerDied) {
			return false, e
		}
	}
	if err != nil {
		if timedOut.Load() && ctx.Err() == nil {
			return false, nil // the timeout, not a cancellation of the caller
		}
		return false, err
	}
	if g == grantMoved {
		return l.sem.acquire(ctx, remaining(deadline))
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

var errMoved = errors.New("aio: the lock moved to its host")

func clearOwner(w *[8]uint32) {
	atomic.StoreUint32(&w[2], 0)
	atomic.StoreUint32(&w[3], 0)
}

// letGo releases a lock this process took, in its host if it has moved
// there meanwhile (held by this process). It does not wait: it may run in
// a loop callback.
func (l *shmLock) letGo(w *[8]uint32, owner uint64) {
	if err := l.unlock(w); err == errMoved {
		l.sem.undoAcquire(owner)
	}
}

// unlock lets go of the lock (whoever took it, as multiprocessing's);
// errMoved: it lives in the host now.
func (l *shmLock) unlock(w *[8]uint32) error {
	for {
		v := atomic.LoadUint32(&w[0])
		switch {
		case isFree(v):
			return ErrReleasedTooOften
		case v == lkMoved:
			return errMoved
		}
		clearOwner(w) // before it is free: a move then reads no stale owner
		if atomic.CompareAndSwapUint32(&w[0], v, lkFree) {
			if v&1 != 0 {
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
	switch v := atomic.LoadUint32(&w[0]); {
	case isFree(v):
		return false
	case v == lkMoved:
		return l.sem.value() <= 0
	}
	return true
}

// holderGone runs in the host when a peer's process has ended: a lock it
// still holds is freed, marked for the next acquire.
func (l *shmLock) holderGone(pid uint32) {
	w := l.slot.Load() // the host's own: always mapped
	for {
		v := atomic.LoadUint32(&w[0])
		if isFree(v) || v == lkMoved || v>>1 != pid {
			return
		}
		clearOwner(w)
		if atomic.CompareAndSwapUint32(&w[0], v, lkDiedFree) {
			futexWakeAll(&w[0])
			return
		}
	}
}

// moveToHost makes the lock live in its semObj from now on, for a
// Condition. A held lock moves held: its holder (process and owner) holds
// the semObj, and its Release, finding the word moved, releases there.
// Only the host calls it.
func (l *shmLock) moveToHost() error {
	w, err := l.words()
	if err != nil {
		return err
	}
	o := l.sem.h.local.(lockObj)
	o.mu.Lock()
	defer o.mu.Unlock()
	for {
		v := atomic.LoadUint32(&w[0])
		switch {
		case v == lkMoved:
			return nil
		case isFree(v):
			if !atomic.CompareAndSwapUint32(&w[0], v, lkMoved) {
				continue
			}
			o.died = o.died || v == lkDiedFree
		default:
			// The owner words are written just after the lock is taken:
			// read them after the move, which its holder can no longer
			// undo (its Release comes here and waits for o.mu).
			if !atomic.CompareAndSwapUint32(&w[0], v, lkMoved) {
				continue
			}
			owner := uint64(atomic.LoadUint32(&w[2])) | uint64(atomic.LoadUint32(&w[3]))<<32
			if owner == 0 {
				owner = anyOwner // taken, its owner not written yet
			}
			var p *peer
			if pid := int(v >> 1); pid != int(me>>1) {
				if p = peerWithPid(pid); p == nil {
					// Its process is gone (its peer forgotten, its
					// objects not yet told): it moves free, marked.
					o.died = true
					break
				}
			}
			o.value = 0
			o.owner = holder{p, owner}
			o.depth = 1
			if p != nil {
				if o.held == nil {
					o.held = map[*peer]int{}
				}
				o.held[p]++
			} else {
				o.hostHeld++
			}
		}
		futexWakeAll(&w[0])
		return nil
	}
}

func peerWithPid(pid int) *peer {
	peersMu.Lock()
	defer peersMu.Unlock()
	for _, p := range peers {
		if p.pid == pid {
			return p
		}
	}
	return nil
}

// A lockWatch is one goroutine per process and lock that takes the lock
// for the waiters that must not block (tasks, waits a ctx can end), in
// the order they came, and hands it to the first that still wants it.
type lockWatch struct {
	l       *shmLock
	w       *[8]uint32
	mu      sync.Mutex
	waiters []lockWaiter
	running bool
}

type lockWaiter struct {
	f     *executor.Future[int]
	owner uint64
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

func (lw *lockWatch) add(f *executor.Future[int], owner uint64) {
	lw.mu.Lock()
	lw.waiters = append(lw.waiters, lockWaiter{f, owner})
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
		if x.f == f {
			lw.waiters = append(lw.waiters[:i], lw.waiters[i+1:]...)
			break
		}
	}
	lw.mu.Unlock()
}

// next pops the first waiter still waiting (ok false: none).
func (lw *lockWatch) next() (lockWaiter, bool) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	for len(lw.waiters) > 0 {
		x := lw.waiters[0]
		lw.waiters = lw.waiters[1:]
		if !x.f.Done() {
			return x, true
		}
	}
	return lockWaiter{}, false
}

func (lw *lockWatch) idle() bool {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	for _, x := range lw.waiters {
		if !x.f.Done() {
			return false
		}
	}
	lw.waiters = nil
	lw.running = false
	return true
}

// forget drops an idle watch from the table (see eventWatch.forget).
func (lw *lockWatch) forget() {
	lockWatchesMu.Lock()
	defer lockWatchesMu.Unlock()
	lw.mu.Lock()
	defer lw.mu.Unlock()
	if !lw.running && lockWatches[lw.w] == lw {
		delete(lockWatches, lw.w)
	}
}

func (lw *lockWatch) run() {
	defer lw.forget()
	for !lw.idle() {
		ok, moved, died := sleepLock(lw.w, watchSlice)
		if moved {
			for x, ok := lw.next(); ok; x, ok = lw.next() {
				_ = x.f.SetResult(grantMoved)
			}
			continue
		}
		if !ok {
			continue
		}
		lw.hand(died)
	}
}

// hand gives the lock the watcher took to the first waiter that still
// wants it, or, if its last holder died, tells that waiter so; with no
// waiter left it lets go, keeping the mark of a death nobody heard of.
func (lw *lockWatch) hand(died bool) {
	for {
		x, ok := lw.next()
		if !ok {
			// Let go from the value the watcher took it as (me|1), and
			// only that: the lock may have moved to its host (then it is
			// released there) or, released by another process meanwhile
			// as multiprocessing allows, be someone else's now.
			v := uint32(lkFree)
			if died {
				v = lkDiedFree
			}
			clearOwner(lw.w)
			if atomic.CompareAndSwapUint32(&lw.w[0], me|1, v) {
				futexWakeOne(&lw.w[0])
			} else if atomic.LoadUint32(&lw.w[0]) == lkMoved {
				lw.l.sem.undoAcquire(anyOwner)
			}
			return
		}
		if died {
			if x.f.SetErr(ErrOwnerDied) == nil {
				lw.l.letGo(lw.w, x.owner)
				return
			}
			continue
		}
		_ = lw.l.took(lw.w, false, x.owner)
		if x.f.SetResult(grantHeld) == nil {
			return
		}
	}
}

package aio

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
	"weak"

	"github.com/asyncgo/asyncgo/internal/goid"
	"golang.org/x/sys/unix"
)

// A queue in shared memory: its items live in a ring of bytes that every
// process using the queue maps, behind a futex mutex (lock_shm.go's), and
// a getter or putter that must wait sleeps in the kernel on a generation
// word that the other side bumps (as an Event's waiter does). A Put is a
// copy into the ring and a Get a copy out, in the caller's own thread:
// no message, no reader goroutine, no hand-off between goroutines, so a
// round trip between two processes costs about what an Event's does
// (docs/design.md, "Queues in shared memory").
//
// The ring is ringCap bytes of a memfd of its own, which the kernel gives
// pages only as they are touched. Entries are written one after another
// and wrap to the front once past ringSoft, when the getters have freed
// at least that much there, so a queue that never holds more than about
// ringSoft bytes touches only twice that; a backlog beyond it runs on
// towards ringCap, and the pages past ringKeep are given back once the
// ring wraps or empties. An item is at most maxRingItem bytes; an
// unbounded queue that holds ringCap bytes makes its next Put wait for
// room, as a pipe does its writer.
//
// A Put that finds the wrapped ring's front too short for its item waits
// for a Get to make room, as in any ring; if none comes within
// compactAfter (or the Put may not wait: PutNowait), it moves the front
// run behind the rest instead, so that an unbounded queue takes the item,
// as Python's does, even from a process that gets from its own queue
// only after it puts.
//
// The state (where the entries start and end, how many, the unfinished
// count of a JoinableQueue) is written in full to the spare of two copies
// and then made current by one store, so a process killed at any instant,
// even holding the mutex, leaves the last state whole: the entry it was
// copying in was never counted. The host frees the mutex of a holder that
// died, and the next taker carries on.
const (
	ringHeader  = 4096
	ringCap     = 1 << 30
	ringSoft    = 4 << 20
	ringKeep    = 16 << 20
	entryHead   = 8
	maxRingItem = ringCap - 2*entryHead
)

// ringHdr is the first page of the memfd.
type ringHdr struct {
	lock [8]uint32 // the mutex, as a Lock's slot (lock_shm.go)

	// Generation words: a Put bumps nonEmpty, a Get nonFull, the TaskDone
	// that ends the last unfinished item joined; each with a count of the
	// threads asleep on it, which the bump wakes.
	nonEmpty, nonEmptySleepers uint32
	nonFull, nonFullSleepers   uint32
	joined, joinedSleepers     uint32

	kind    uint32 // the queue's kind (kindQueue, kindJoinable, kindSimple)
	maxsize uint32 // 0: no bound
	cur     uint32 // which of st is current
	_       uint32
	st      [2]ringState
}

type ringState struct {
	head, tail uint32 // the first entry; where the next one goes
	end        uint32 // with wrapped: where the entries before the front end
	wrapped    uint32 // the entries run from head to end, then 0 to tail
	count      uint32 // entries
	unfinished uint32 // a JoinableQueue's items not yet marked done
	_          [2]uint32
}

// ring is a process's view of a queue in shared memory: one per queue
// and process, however many Queue values name it there.
type ring struct {
	h    handle // the ringObj: the memfd's host
	mu   sync.Mutex
	mem  atomic.Pointer[[]byte]
	lock shmLock  // its slot is the header's lock, once mapped
	m    *ringMap // what to let go of once the ring is unreachable
}

// ringMap is what a ring holds of the kernel's: the mapping, and in the
// host the memfd and the hosted object's id. Once no Queue of this
// process names the ring, a cleanup lets go of them, as Python closes a
// collected queue's pipe: other processes keep their own mappings, and
// the memory lives while any maps it.
type ringMap struct {
	mu  sync.Mutex
	mem []byte
	fd  int    // the host's memfd; -1 elsewhere
	id  uint64 // the host's ringObj
	key ref    // in rings, elsewhere
}

func (m *ringMap) release() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.id != 0 {
		hostMu.Lock()
		delete(hosted, m.id)
		hostMu.Unlock()
		arenaMu.Lock()
		delete(mapped, ref{Host: selfToken, ID: m.id, Kind: kindArena})
		arenaMu.Unlock()
	}
	ringsMu.Lock()
	if w, ok := rings[m.key]; ok && w.Value() == nil {
		delete(rings, m.key)
	}
	ringsMu.Unlock()
	if m.fd >= 0 {
		unix.Close(m.fd)
	}
	if m.mem != nil {
		_ = unix.Munmap(m.mem)
	}
}

// rings finds the ring of a queue received from another process, so that
// every Queue value naming it here shares its mapping and watchers.
var (
	ringsMu sync.Mutex
	rings   = map[ref]weak.Pointer[ring]{}
)

// ringObj hosts a ring's memfd: it hands its descriptor out (an arena's
// operation) and frees the mutex of a holder whose process ended. It
// holds the ring weakly: the host's table must not keep it alive.
type ringObj struct {
	arenaObj
	r weak.Pointer[ring]
}

func (o ringObj) peerGone(p *peer) {
	r := o.r.Value()
	if r == nil {
		return
	}
	defer runtime.KeepAlive(r)
	if p.pid > 0 {
		r.lock.holderGone(uint32(p.pid))
	}
	// A process killed between its commit and its bump left the
	// waiters asleep on a state that changed: wake them to look again
	// (a Join only if nothing is unfinished: it returns when woken).
	hdr, _, err := r.hdr()
	if err != nil {
		return
	}
	bump(&hdr.nonEmpty, &hdr.nonEmptySleepers)
	bump(&hdr.nonFull, &hdr.nonFullSleepers)
	if atomic.LoadUint32(&hdr.st[atomic.LoadUint32(&hdr.cur)&1].unfinished) == 0 {
		bump(&hdr.joined, &hdr.joinedSleepers)
	}
}

var errRingTooBig = fmt.Errorf("aio: an item of a queue is at most %d bytes", maxRingItem)

// newRing makes the shared memory of a new queue of kind, hosted here.
func newRing(kind uint8, maxsize int) (*ring, error) {
	if maxsize > 1<<31 {
		maxsize = 1 << 31
	}
	r := &ring{}
	arenaMu.Lock()
	a, err := newArena(ringName, ringHeader+ringCap, func(a *arena) object { return ringObj{arenaObj{a}, weak.Make(r)} })
	arenaMu.Unlock()
	if err != nil {
		return nil, err
	}
	r.h = handle{ref: ref{Host: selfToken, ID: a.id, Kind: kindArena}, local: hostedObject(a.id)}
	r.m = &ringMap{mem: a.mem, fd: a.fd, id: a.id}
	runtime.AddCleanup(r, (*ringMap).release, r.m)
	hdr := (*ringHdr)(unsafe.Pointer(&a.mem[0]))
	hdr.kind = uint32(kind)
	hdr.maxsize = uint32(max(maxsize, 0))
	r.setMem(a.mem)
	return r, nil
}

func (r *ring) setMem(mem []byte) {
	r.lock.slot.Store((*[8]uint32)(unsafe.Pointer(&mem[0])))
	r.mem.Store(&mem)
}

// encode names the ring and the queue's kind.
func (r *ring) encode(kind uint8) ([]byte, error) {
	b, err := r.h.encode()
	if err != nil {
		return nil, err
	}
	if r.h.local != nil {
		// Sent to another process: the host keeps it while that process
		// may take it, so that a reference in flight finds it and the
		// host frees a dead holder's mutex. In a Process's argument,
		// until the child is gone; anywhere else (an item of a queue, a
		// pool call's argument), for the host's life, as a hosted queue
		// lives.
		pinnedMu.Lock()
		st := pinned[r]
		if st == nil {
			st = &pinState{}
			pinned[r] = st
		}
		if sink, ok := exportSinks.Load(goid.Get()); ok {
			st.children++
			*sink.(*[]exported) = append(*sink.(*[]exported), ringPin{r})
		} else {
			st.forever = true
		}
		pinnedMu.Unlock()
	}
	return append(b, kind), nil
}

// pinned holds the rings of this process's queues that were sent to
// another process, while it may take them.
var (
	pinnedMu sync.Mutex
	pinned   = map[*ring]*pinState{}
)

type pinState struct {
	children int  // Processes started with it in their argument, not yet gone
	forever  bool // sent some other way
}

// ringPin is a queue in a Process's argument: dropped once the child is
// gone.
type ringPin struct{ r *ring }

func (p ringPin) drop() {
	pinnedMu.Lock()
	defer pinnedMu.Unlock()
	if st := pinned[p.r]; st != nil {
		if st.children--; st.children <= 0 && !st.forever {
			delete(pinned, p.r)
		}
	}
}

const ringRefLen = 18

// ringName names a queue's memfd (in /proc/PID/fd, as /memfd:asyncgo-queue).
const ringName = "asyncgo-queue"

// decodeRing resolves a received ring of a queue of kind; it is mapped
// at its first use.
func decodeRing(b []byte, kind uint8) (*ring, error) {
	if len(b) != ringRefLen {
		return nil, errors.New("aio: corrupt queue reference")
	}
	if b[17] != kind {
		return nil, fmt.Errorf("aio: the value holds a %s, not a %s", kindName(b[17]), kindName(kind))
	}
	var h handle
	if err := h.decode(b[:17], kindArena); err != nil {
		return nil, err
	}
	if h.local != nil {
		o, ok := h.local.(ringObj)
		if !ok {
			return nil, errCorruptShmRef
		}
		if r := o.r.Value(); r != nil {
			return r, nil
		}
		return nil, ErrHostGone // collected: nobody here could have sent it
	}
	ringsMu.Lock()
	defer ringsMu.Unlock()
	if r := rings[h.ref].Value(); r != nil {
		return r, nil
	}
	r := &ring{h: h, m: &ringMap{fd: -1, key: h.ref}}
	rings[h.ref] = weak.Make(r)
	runtime.AddCleanup(r, (*ringMap).release, r.m)
	return r, nil
}

// hdr maps the ring the first time this process uses it.
func (r *ring) hdr() (*ringHdr, []byte, error) {
	mp := r.mem.Load()
	if mp == nil {
		r.mu.Lock()
		if mp = r.mem.Load(); mp == nil {
			mem, err := mapShared(r.h, ringHeader+ringCap)
			if err != nil {
				r.mu.Unlock()
				return nil, nil, err
			}
			r.m.mu.Lock()
			r.m.mem = mem
			r.m.mu.Unlock()
			r.setMem(mem)
			mp = r.mem.Load()
		}
		r.mu.Unlock()
	}
	mem := *mp
	return (*ringHdr)(unsafe.Pointer(&mem[0])), mem[ringHeader:], nil
}

// take locks the ring for ctx's caller (a dead holder's mutex, freed by
// the host, is taken over: the state it left is whole). false: timeout
// passed first.
func (r *ring) take(ctx context.Context, deadline time.Time, nowait bool) (bool, error) {
	for {
		d := remaining(deadline)
		if nowait {
			d = nowaitLock
		}
		ok, err := r.lock.acquire(ctx, d)
		if errors.Is(err, ErrOwnerDied) {
			if ctx != nil && ctx.Err() != nil {
				return false, ctx.Err() // it ended as the death was heard
			}
			continue // acquire let go of it again: take it afresh
		}
		return ok, err
	}
}

func (r *ring) unlock(hdr *ringHdr) { _ = r.lock.unlock(&hdr.lock) }

// nowaitLock is how long a GetNowait waits for the queue's lock: a copy
// in progress ends within it, a holder that is stopped or dead (until its
// host learns of it) does not, and the Get says ErrEmpty, as Python's
// get(block=False) does at once when the lock is busy.
const nowaitLock = time.Millisecond

func align8(n uint32) uint32 { return (n + 7) &^ 7 }

// compactAfter is how long a Put waits for room in the front of a wrapped
// ring before it compacts the ring.
const compactAfter = time.Millisecond

// place finds room for an entry of n bytes (aligned) in s, and moves
// s.tail past it; ok false: no room now. compact allows moving the front
// run of a wrapped ring behind the rest, to make room.
func place(s *ringState, n uint32, data []byte, compact bool) (pos uint32, ok bool) {
	if s.count == 0 {
		*s = ringState{unfinished: s.unfinished}
	}
	if s.wrapped == 0 {
		if s.tail+n > ringSoft && s.head >= max(n+entryHead, ringSoft) {
			// Past the soft end, with room at the front: wrap.
			s.end, s.wrapped, s.tail = s.tail, 1, n
			return 0, true
		}
		if uint64(s.tail)+uint64(n) <= ringCap {
			pos = s.tail
			s.tail += n
			return pos, true
		}
		if compact && s.tail-s.head <= s.head && uint64(s.tail-s.head)+uint64(n) <= ringCap {
			// No room behind, too little in front to wrap: move the
			// entries to the front (the two runs do not overlap, and
			// the front is free, so a death midway leaves the state
			// whole) and put after them.
			copy(data[:s.tail-s.head], data[s.head:s.tail])
			s.head, s.tail = 0, s.tail-s.head
			pos = s.tail
			s.tail += n
			return pos, true
		}
		return 0, false
	}
	// Wrapped: the free run is tail..head, kept a gap short of head.
	if s.tail+n+entryHead <= s.head {
		pos = s.tail
		s.tail += n
		return pos, true
	}
	if compact && uint64(s.end)+uint64(s.tail)+uint64(n) <= ringCap {
		// Too big for the front, which would make an unbounded Put
		// wait while the ring is mostly empty (and for ever, for a
		// process that gets from its own queue after it puts): move the
		// front run behind the rest, unwrapped, and put after it. The
		// run goes where no current entry is, so a death in the middle
		// leaves the state as it was.
		copy(data[s.end:], data[:s.tail])
		s.tail += s.end
		s.end, s.wrapped = 0, 0
		pos = s.tail
		s.tail += n
		return pos, true
	}
	return 0, false
}

// Results of tryPut and tryGet besides ok.
var (
	errRingFull  = errors.New("full")
	errRingEmpty = errors.New("empty")
)

// tryPut copies head and body in as one entry, with the ring locked.
func (r *ring) tryPut(hdr *ringHdr, data []byte, head, body []byte, compact bool) error {
	size := len(head) + len(body)
	if size > maxRingItem {
		return errRingTooBig
	}
	s := hdr.st[hdr.cur&1]
	if hdr.maxsize > 0 && s.count >= hdr.maxsize {
		return errRingFull
	}
	pos, ok := place(&s, align8(entryHead+uint32(size)), data, compact)
	if !ok {
		return errRingFull
	}
	binary.LittleEndian.PutUint64(data[pos:], uint64(size))
	copy(data[pos+entryHead+uint32(copy(data[pos+entryHead:], head)):], body)
	s.count++
	if hdr.kind == uint32(kindJoinable) {
		s.unfinished++
	}
	r.commit(hdr, s)
	return nil
}

// tryGet copies the front entry out, with the ring locked.
func (r *ring) tryGet(hdr *ringHdr, data []byte) ([]byte, error) {
	s := hdr.st[hdr.cur&1]
	if s.count == 0 {
		return nil, errRingEmpty
	}
	if s.wrapped != 0 && s.head == s.end {
		s.head, s.wrapped, s.end = 0, 0, 0
	}
	size := binary.LittleEndian.Uint64(data[s.head:])
	if size > maxRingItem || uint64(s.head)+entryHead+size > ringCap {
		return nil, errors.New("aio: a queue's shared memory is corrupt")
	}
	b := make([]byte, size)
	copy(b, data[s.head+entryHead:])
	s.head += align8(entryHead + uint32(size))
	s.count--
	// Pages past ringKeep that no entry uses any more go back.
	var dropFrom, dropTo uint32
	if s.wrapped != 0 && s.head == s.end {
		dropFrom, dropTo = max(ringKeep, s.tail), s.end // the front run ends at tail
		s.head, s.wrapped, s.end = 0, 0, 0
	}
	if s.count == 0 {
		dropFrom, dropTo = ringKeep, max(dropTo, s.tail)
		s = ringState{unfinished: s.unfinished}
	}
	r.commit(hdr, s)
	if from, to := (dropFrom+4095)&^4095, dropTo&^4095; to > from {
		// Still locked: no entry can be written there before it is gone.
		dropPages(data[from:to])
	}
	return b, nil
}

// commit makes s the current state: one store.
func (r *ring) commit(hdr *ringHdr, s ringState) {
	next := (hdr.cur + 1) & 1
	hdr.st[next] = s
	atomic.StoreUint32(&hdr.cur, next)
}

// bump counts one more of a generation and wakes its sleepers.
func bump(gen, sleepers *uint32) {
	atomic.AddUint32(gen, 1)
	if atomic.LoadUint32(sleepers) != 0 {
		futexWakeAll(gen)
	}
}

// deadlineOf turns a timeout (< 0: none; 0: no wait) into a deadline
// (zero: none).
func deadlineOf(timeout time.Duration) time.Time {
	if timeout > 0 {
		return time.Now().Add(timeout)
	}
	return time.Time{}
}

// put puts the entry head+body, waiting for room as timeout allows (0:
// not at all; then ErrFull).
func (r *ring) put(ctx context.Context, head, body []byte, timeout time.Duration) error {
	defer runtime.KeepAlive(r) // hdr and data point into its mapping, which its cleanup unmaps
	hdr, data, err := r.hdr()
	if err != nil {
		return err
	}
	postedApplied() // what this process posted before is in first
	deadline := deadlineOf(timeout)
	compact := timeout == 0
	for {
		if ok, err := r.take(ctx, deadline, false); err != nil || !ok {
			if err == nil {
				err = ErrFull
			}
			return err
		}
		err := r.tryPut(hdr, data, head, body, compact)
		g := atomic.LoadUint32(&hdr.nonFull)
		r.unlock(hdr)
		if err != errRingFull {
			if err == nil {
				bump(&hdr.nonEmpty, &hdr.nonEmptySleepers)
			}
			return err
		}
		if timeout == 0 {
			return ErrFull
		}
		d := remaining(deadline)
		if !compact && (d < 0 || d > compactAfter) {
			d = compactAfter
		}
		ok, err := waitChange(ctx, &hdr.nonFull, &hdr.nonFullSleepers, g, d, r)
		if err != nil {
			return err
		}
		if !ok {
			if !deadline.IsZero() && !time.Now().Before(deadline) {
				return ErrFull
			}
			compact = true // no Get made room: compact, if that is what it needs
		}
	}
}

// get takes the front entry, waiting for one as timeout allows (0: not
// at all; then ErrEmpty). A wait that ends takes nothing.
func (r *ring) get(ctx context.Context, timeout time.Duration) ([]byte, error) {
	defer runtime.KeepAlive(r) // hdr and data point into its mapping, which its cleanup unmaps
	hdr, data, err := r.hdr()
	if err != nil {
		return nil, err
	}
	deadline := deadlineOf(timeout)
	for {
		if ok, err := r.take(ctx, deadline, timeout == 0); err != nil || !ok {
			if err == nil {
				err = ErrEmpty // Python's get(block=False) too, when the lock is busy
			}
			return nil, err
		}
		b, err := r.tryGet(hdr, data)
		g := atomic.LoadUint32(&hdr.nonEmpty)
		r.unlock(hdr)
		if err != errRingEmpty {
			if err == nil {
				bump(&hdr.nonFull, &hdr.nonFullSleepers)
			}
			return b, err
		}
		if timeout == 0 {
			return nil, ErrEmpty
		}
		if ok, err := waitChange(ctx, &hdr.nonEmpty, &hdr.nonEmptySleepers, g, remaining(deadline), r); err != nil {
			return nil, err
		} else if !ok {
			return nil, ErrEmpty
		}
	}
}

// size reads the current count and bound, without the lock: approximate,
// as Python's qsize is.
func (r *ring) size() (n, maxsize int) {
	defer runtime.KeepAlive(r) // hdr and data point into its mapping, which its cleanup unmaps
	hdr, _, err := r.hdr()
	if err != nil {
		return 0, 0
	}
	cur := atomic.LoadUint32(&hdr.cur) & 1
	return int(atomic.LoadUint32(&hdr.st[cur].count)), int(hdr.maxsize)
}

// taskDone marks one item of a JoinableQueue done.
func (r *ring) taskDone() error {
	defer runtime.KeepAlive(r) // hdr and data point into its mapping, which its cleanup unmaps
	hdr, _, err := r.hdr()
	if err != nil {
		return err
	}
	postedApplied()
	if _, err := r.take(bg, time.Time{}, false); err != nil {
		return err
	}
	s := hdr.st[hdr.cur&1]
	if s.unfinished == 0 {
		r.unlock(hdr)
		return ErrTaskDone
	}
	s.unfinished--
	r.commit(hdr, s)
	r.unlock(hdr)
	if s.unfinished == 0 {
		bump(&hdr.joined, &hdr.joinedSleepers)
	}
	return nil
}

// join waits until every item put has been marked done.
func (r *ring) join(ctx context.Context) error {
	defer runtime.KeepAlive(r) // hdr and data point into its mapping, which its cleanup unmaps
	hdr, _, err := r.hdr()
	if err != nil {
		return err
	}
	g := atomic.LoadUint32(&hdr.joined)
	if ok, err := r.take(ctx, time.Time{}, false); err != nil || !ok {
		return err
	}
	u := hdr.st[hdr.cur&1].unfinished
	r.unlock(hdr)
	if u == 0 {
		return nil
	}
	// Woken by the TaskDone that ended the last unfinished item, it is
	// done, even if more were put since (Python's join returns on that
	// notify_all too).
	_, err = waitChange(ctx, &hdr.joined, &hdr.joinedSleepers, g, -1, r)
	return err
}

package aio

import (
	"encoding/binary"
	"fmt"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Shared memory: an Event's flag lives in a page that every process using
// it maps, and a waiter sleeps in the kernel on that word (a futex), as
// CPython's multiprocessing semaphores do. A set wakes the sleeping
// threads of every process directly: no message, no reader goroutine and
// no hand-off between goroutines, which on a small machine cost several
// times a pipe's round trip (DESIGN.md, Processes).
//
// A process keeps its shared objects in arenas: memfds of arenaSize bytes,
// cut into slots of slotSize bytes. An arena is also a hosted object (kindArena),
// whose one operation hands a duplicate of its descriptor to the asking
// process, which maps it the first time it uses one of its objects. Slots
// are never reused (an object has no end of life another process could
// see): 32,768 Events or Locks share one 1 MiB arena, whose pages the
// kernel gives only as they are touched, and one descriptor.

const (
	shmSupported = true
	arenaSize    = 1 << 20
	slotSize     = 32
)

// aFD is the arena's operation: reply with a duplicate of its descriptor.
const aFD = opObject

type arena struct {
	id  uint64 // the hosted object's id, in its host
	fd  int    // the host keeps its memfd open, to hand out; -1 elsewhere
	mem []byte
}

type arenaObj struct{ a *arena }

func (o arenaObj) serve(r *request) {
	if r.op != aFD {
		r.respond(reply{status: stErr, data: []byte("aio: bad shared-memory operation")})
		return
	}
	fd, err := unix.FcntlInt(uintptr(o.a.fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		r.respond(reply{status: stErr, data: []byte("aio: cannot share the memory: " + err.Error())})
		return
	}
	r.respond(reply{fds: []int{fd}})
}

func (arenaObj) withdraw(*peer, uint64) {}
func (arenaObj) peerGone(*peer)         {}

var (
	arenaMu  sync.Mutex
	ownArena *arena // the one new slots come from
	ownNext  uint32 // its next free slot's offset
	mapped   = map[ref]*arena{}
)

// newSlot returns a zeroed slot of this process's and the reference that
// names it anywhere.
func newSlot() (shmRef, *[8]uint32, error) {
	arenaMu.Lock()
	defer arenaMu.Unlock()
	if ownArena == nil || ownNext+slotSize > arenaSize {
		a, err := newArena("asyncgo-aio", arenaSize, arenaObjOf)
		if err != nil {
			return shmRef{}, nil, err
		}
		ownArena, ownNext = a, 0
	}
	off := ownNext
	ownNext += slotSize
	r := shmRef{arena: ref{Host: selfToken, ID: ownArena.id, Kind: kindArena}, off: off}
	return r, slotAt(ownArena, off), nil
}

func arenaObjOf(a *arena) object { return arenaObj{a} }

// newArena makes a memfd named name of size bytes (its pages given as touched),
// maps it and hosts it as the object obj(a) returns, which must serve
// aFD as arenaObj does. arenaMu is held.
func newArena(name string, size int, obj func(*arena) object) (*arena, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("aio: shared memory: %w", err)
	}
	if err := unix.Ftruncate(fd, int64(size)); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("aio: shared memory: %w", err)
	}
	mem, err := unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("aio: shared memory: %w", err)
	}
	a := &arena{fd: fd, mem: mem}
	a.id = host(obj(a))
	mapped[ref{Host: selfToken, ID: a.id, Kind: kindArena}] = a
	return a, nil
}

func slotAt(a *arena, off uint32) *[8]uint32 {
	return (*[8]uint32)(unsafe.Pointer(&a.mem[off]))
}

// shmRef names a slot in any process: its arena's reference and offset.
type shmRef struct {
	arena ref
	off   uint32
}

// shmRefLen is the length of an encoded shmRef: the arena's reference,
// the offset and the kind of the object in the slot.
const shmRefLen = 17 + 4 + 1

func (r shmRef) encode(kind uint8) []byte {
	h := handle{ref: r.arena}
	b, _ := h.encode() // a slot's arena has an id
	return append(binary.LittleEndian.AppendUint32(b, r.off), kind)
}

func decodeShmRef(b []byte, kind uint8) (shmRef, error) {
	if len(b) != shmRefLen || b[16] != kindArena {
		return shmRef{}, errCorruptShmRef
	}
	if b[21] != kind {
		return shmRef{}, fmt.Errorf("aio: the value holds a %s, not a %s", kindName(b[21]), kindName(kind))
	}
	r := shmRef{
		arena: ref{Host: binary.LittleEndian.Uint64(b), ID: binary.LittleEndian.Uint64(b[8:]), Kind: kindArena},
		off:   binary.LittleEndian.Uint32(b[17:]),
	}
	if r.off%slotSize != 0 || r.off+slotSize > arenaSize {
		return shmRef{}, errCorruptShmRef
	}
	return r, nil
}

// mapSlot finds the slot at off of the arena h names (resolved when its
// reference arrived), mapping the arena the first time.
func mapSlot(h handle, off uint32) (*[8]uint32, error) {
	a, err := mapArena(h)
	if err != nil {
		return nil, err
	}
	return slotAt(a, off), nil
}

// mapArena finds the arena h names, mapping its arenaSize bytes the first
// time: in another process, that asks the arena's host for its
// descriptor. It is never called on a peer's reader goroutine (only by
// the users of an object), since it waits for that reader.
func mapArena(h handle) (*arena, error) {
	arenaMu.Lock()
	a := mapped[h.ref]
	arenaMu.Unlock()
	if a != nil {
		return a, nil
	}
	if h.local != nil {
		return nil, errCorruptShmRef // the host maps its own arenas as it makes them
	}
	mem, err := mapShared(h, arenaSize)
	if err != nil {
		return nil, err
	}
	arenaMu.Lock()
	defer arenaMu.Unlock()
	if a := mapped[h.ref]; a != nil { // another goroutine was first
		_ = unix.Munmap(mem)
		return a, nil
	}
	a = &arena{id: h.ID, fd: -1, mem: mem}
	mapped[h.ref] = a
	return a, nil
}

// mapShared asks the host of the arena h names for its descriptor and
// maps its size bytes.
func mapShared(h handle, size int) ([]byte, error) {
	rep, err := h.call(bg, aFD, 0, -1, nil, nil, nil)
	if err == nil {
		err = errOf(rep, nil)
	}
	if err != nil {
		closeFDs(rep.fds)
		return nil, err
	}
	if len(rep.fds) != 1 {
		closeFDs(rep.fds)
		return nil, fmt.Errorf("aio: the shared memory came without its descriptor")
	}
	fd := rep.fds[0]
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Size != int64(size) {
		return nil, errCorruptShmRef
	}
	mem, err := unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("aio: shared memory: %w", err)
	}
	return mem, nil
}

// dropPages gives the pages of b (page-aligned) back to the kernel, in
// every process that maps them: they read as zeros after.
func dropPages(b []byte) { _ = unix.Madvise(b, unix.MADV_REMOVE) }

// The futex operations (linux/futex.h), without FUTEX_PRIVATE_FLAG.
const (
	futexWaitOp = 0
	futexWakeOp = 1
)

// futexWait sleeps while *addr == val, at most d (d < 0: no limit), or
// until a wake; it may return early for no reason. The word is shared
// between processes: no FUTEX_PRIVATE_FLAG.
func futexWait(addr *uint32, val uint32, d time.Duration) {
	var ts *unix.Timespec
	if d >= 0 {
		t := unix.NsecToTimespec(int64(d))
		ts = &t
	}
	_, _, _ = unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexWaitOp, uintptr(val), uintptr(unsafe.Pointer(ts)), 0, 0)
}

// futexWakeOne wakes one thread sleeping on addr, in any process.
func futexWakeOne(addr *uint32) {
	_, _, _ = unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexWakeOp, 1, 0, 0, 0)
}

// futexWakeAll wakes every thread sleeping on addr, in any process.
func futexWakeAll(addr *uint32) {
	_, _, _ = unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexWakeOp, uintptr(1<<31-1), 0, 0, 0)
}

package aio_test

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/aio"
	"github.com/asyncgo/asyncgo/executor"
)

// queueMemory is the inodes of the queues' memfds this process maps or
// holds a descriptor of: an inode names one queue's memory in every
// process, so a test can watch its own queues while earlier tests' are
// collected around it.
func queueMemory() map[uint64]bool {
	in := map[uint64]bool{}
	if b, err := os.ReadFile("/proc/self/maps"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 6 && strings.HasPrefix(f[5], "/memfd:asyncgo-queue") {
				if ino, err := strconv.ParseUint(f[4], 10, 64); err == nil {
					in[ino] = true
				}
			}
		}
	}
	ents, _ := os.ReadDir("/proc/self/fd")
	for _, e := range ents {
		path := "/proc/self/fd/" + e.Name()
		if l, _ := os.Readlink(path); !strings.HasPrefix(l, "/memfd:asyncgo-queue") {
			continue
		}
		if fi, err := os.Stat(path); err == nil {
			in[fi.Sys().(*syscall.Stat_t).Ino] = true
		}
	}
	return in
}

// newSince is what queueMemory holds now that it did not hold in before.
func newSince(before map[uint64]bool) map[uint64]bool {
	out := map[uint64]bool{}
	for ino := range queueMemory() {
		if !before[ino] {
			out[ino] = true
		}
	}
	return out
}

// waitGone collects until this process neither maps nor holds any of
// inodes, for at most 10 s (cleanups run on their own goroutine, after a
// collection), and reports whether they went.
func waitGone(inodes map[uint64]bool) bool {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		runtime.GC()
		now := queueMemory()
		left := false
		for ino := range inodes {
			left = left || now[ino]
		}
		if !left {
			return true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return false
}

type releaseArgs struct {
	Q   *aio.Queue[int]
	Res *aio.Queue[string]
}

// dropReceivedQueue uses the queue it received, drops it, and reports
// whether its mapping went with it.
var dropReceivedQueue = executor.Register("aio_test.dropReceivedQueue", func(a *releaseArgs) (struct{}, error) {
	before := queueMemory() // Res is mapped already: it was decoded with Q
	if err := a.Q.Put(1); err != nil {
		return struct{}{}, err
	}
	mine := newSince(before)
	if len(mine) != 1 {
		return struct{}{}, a.Res.Put(fmt.Sprintf("%d new queue memfds mapped by a Put, want 1", len(mine)))
	}
	a.Q = nil
	if !waitGone(mine) {
		return struct{}{}, a.Res.Put("the dropped queue is still mapped")
	}
	return struct{}{}, a.Res.Put("released")
})

// A queue's shared memory lives as long as a Queue names it, as a Python
// queue's pipe does: a queue used in its maker only is let go of there
// once collected (its memfd closed, its memory unmapped); a queue a
// child received is unmapped in the child once the child drops it, and
// in its maker once the child is gone and the maker drops it too. (One
// sent in a queue's item stays with its maker: TestSentQueueOutlivesItsValues.)
func TestQueueMemoryReleased(t *testing.T) {
	before := queueMemory()
	var mine map[uint64]bool
	func() {
		q := aio.NewQueue[int](0)
		for i := range 3 {
			if err := q.Put(i); err != nil {
				t.Fatal(err)
			}
			if v, err := q.Get(); err != nil || v != i {
				t.Fatalf("got %d, %v", v, err)
			}
		}
		if mine = newSince(before); len(mine) != 1 {
			t.Fatalf("a new queue: %d new memfds here, want 1", len(mine))
		}
	}()
	if !waitGone(mine) {
		t.Fatal("a collected queue is still mapped here, or its descriptor open")
	}

	before = queueMemory()
	func() {
		a := &releaseArgs{Q: aio.NewQueue[int](0), Res: aio.NewQueue[string](0)}
		if mine = newSince(before); len(mine) != 2 {
			t.Fatalf("two new queues: %d new memfds here, want 2", len(mine))
		}
		p := aio.NewProcess(dropReceivedQueue.Bind(a))
		if err := p.Start(); err != nil {
			t.Fatal(err)
		}
		s, err := a.Res.GetTimeout(30 * time.Second)
		if err := p.Join(); err != nil {
			t.Fatal(err)
		}
		if err != nil || s != "released" {
			t.Fatalf("the child reports %q, %v", s, err)
		}
	}()
	// Queues in a Process's argument are kept for the child while it
	// lives; once it is gone and this process drops them, they go too.
	if !waitGone(mine) {
		t.Fatal("the child's queues are still mapped here once it is gone and they are dropped")
	}
}

type nestArgs struct {
	Outer *aio.Queue[*aio.Queue[int]]
	Res   *aio.Queue[string]
}

var useSentQueue = executor.Register("aio_test.useSentQueue", func(a nestArgs) (struct{}, error) {
	inner, err := a.Outer.Get()
	if err != nil {
		return struct{}{}, a.Res.Put("outer get: " + err.Error())
	}
	err = inner.Put(7)
	return struct{}{}, a.Res.Put(fmt.Sprintf("inner put: %v; qsize %d", err, inner.Qsize()))
})

// A queue its maker sent to another process (here inside another queue's
// item) lives as long as its maker, as a hosted queue does, even once the
// maker holds no value of it (found in review: a child that got it after
// the maker's cleanup found it gone).
func TestSentQueueOutlivesItsValues(t *testing.T) {
	outer, res := aio.NewQueue[*aio.Queue[int]](0), aio.NewQueue[string](0)
	func() {
		if err := outer.Put(aio.NewQueue[int](0)); err != nil {
			t.Fatal(err)
		}
	}()
	for range 5 {
		runtime.GC()
		time.Sleep(5 * time.Millisecond) // cleanups run on their own goroutine
	}
	p := aio.NewProcess(useSentQueue.Bind(nestArgs{Outer: outer, Res: res}))
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	s, err := res.GetTimeout(30 * time.Second)
	if err := p.Join(); err != nil {
		t.Fatal(err)
	}
	if err != nil || s != "inner put: <nil>; qsize 1" {
		t.Fatalf("the child reports %q, %v", s, err)
	}
}

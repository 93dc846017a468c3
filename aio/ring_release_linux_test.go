package aio_test

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/aio"
	"github.com/asyncgo/asyncgo/executor"
)

// queueMemory counts this process's descriptors and mappings of queues'
// shared memory.
func queueMemory(t *testing.T) (fds, maps int) {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if l, _ := os.Readlink("/proc/self/fd/" + e.Name()); strings.HasPrefix(l, "/memfd:asyncgo-queue") {
			fds++
		}
	}
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	return fds, strings.Count(string(b), "/memfd:asyncgo-queue")
}

// queueMaps counts this process's mappings of queues' shared memory.
func queueMaps() int {
	b, _ := os.ReadFile("/proc/self/maps")
	return strings.Count(string(b), "/memfd:asyncgo-queue")
}

// waitQueueMaps collects until this process maps want queues, for at
// most 10 s (cleanups run on their own goroutine, after a collection).
func waitQueueMaps(want int) bool {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		runtime.GC()
		if queueMaps() == want {
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
	m0 := queueMaps() // Res is mapped already: it was decoded with Q
	if err := a.Q.Put(1); err != nil {
		return struct{}{}, err
	}
	if m := queueMaps(); m != m0+1 {
		return struct{}{}, a.Res.Put(fmt.Sprintf("%d mappings in use, %d before", m, m0))
	}
	a.Q = nil
	if !waitQueueMaps(m0) {
		return struct{}{}, a.Res.Put(fmt.Sprintf("the dropped queue is still mapped: %d mappings, %d before", queueMaps(), m0))
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
	runtime.GC()
	time.Sleep(10 * time.Millisecond) // let earlier tests' cleanups run
	fds0, maps0 := queueMemory(t)
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
		if fds, maps := queueMemory(t); fds != fds0+1 || maps != maps0+1 {
			t.Fatalf("a queue in use: %d descriptors and %d mappings, %d and %d before", fds, maps, fds0, maps0)
		}
	}()
	if !waitQueueMaps(maps0) {
		fds, maps := queueMemory(t)
		t.Fatalf("a collected queue left %d descriptors and %d mappings, %d and %d before", fds, maps, fds0, maps0)
	}
	if fds, _ := queueMemory(t); fds != fds0 {
		t.Fatalf("a collected queue left %d descriptors, %d before", fds, fds0)
	}

	func() {
		a := &releaseArgs{Q: aio.NewQueue[int](0), Res: aio.NewQueue[string](0)}
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
	if !waitQueueMaps(maps0) {
		fds, maps := queueMemory(t)
		t.Fatalf("the child's queues left %d descriptors and %d mappings here, %d and %d before", fds, maps, fds0, maps0)
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

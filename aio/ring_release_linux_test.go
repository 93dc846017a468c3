package aio_test

import (
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/aio"
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

// A queue's shared memory lives as long as a Queue names it, as a Python
// queue's pipe does: once the queues a test made (and used with a child)
// are collected, their descriptors are closed and their memory unmapped.
func TestQueueMemoryReleased(t *testing.T) {
	runtime.GC()
	time.Sleep(10 * time.Millisecond) // let earlier tests' cleanups run
	fds0, maps0 := queueMemory(t)
	func() {
		in, out := aio.NewQueue[int](0), aio.NewQueue[int](0)
		p := aio.NewProcess(echoChild.Bind(echoArgs{In: in, Out: out, N: 3}))
		if err := p.Start(); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			if err := in.Put(i); err != nil {
				t.Fatal(err)
			}
			if v, err := out.GetTimeout(10 * time.Second); err != nil || v != 2*i {
				t.Fatalf("got %d, %v", v, err)
			}
		}
		if err := p.Join(); err != nil {
			t.Fatal(err)
		}
		if fds, maps := queueMemory(t); fds != fds0+2 || maps != maps0+2 {
			t.Fatalf("two queues in use: %d descriptors and %d mappings, %d and %d before", fds, maps, fds0, maps0)
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		fds, maps := queueMemory(t)
		if fds == fds0 && maps == maps0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("collected queues left %d descriptors and %d mappings, %d and %d before", fds, maps, fds0, maps0)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

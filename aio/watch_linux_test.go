package aio_test

import (
	"runtime"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/aio"
	"github.com/asyncgo/asyncgo/executor"
	"golang.org/x/sys/unix"
)

// ctrlAfterGC collects garbage in a Process's child, which has let its
// control socket's *os.File go once it read its call, and reports whether
// the descriptor (3) is still open.
var ctrlAfterGC = executor.Register("aio_test.ctrlAfterGC", func(q *aio.Queue[bool]) (struct{}, error) {
	for range 5 {
		runtime.GC()
		time.Sleep(time.Millisecond) // finalizers run on a goroutine of their own
	}
	_, err := unix.FcntlInt(3, unix.F_GETFD, 0)
	return struct{}{}, q.Put(err == nil)
})

// The parent watch keeps the child's control socket open: its finalizer
// closed it at the first garbage collection, and the watch then spun on
// the dead descriptor (a child of a queue benchmark used a whole CPU for
// it) and could no longer see the parent die.
func TestProcessChildKeepsControlSocket(t *testing.T) {
	q := aio.NewQueue[bool](0)
	p := aio.NewProcess(ctrlAfterGC.Bind(q))
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	open, err := q.GetTimeout(30 * time.Second)
	if err != nil || !open {
		t.Errorf("the child's control descriptor after a GC: open %v, %v", open, err)
	}
	if err := p.Join(); err != nil {
		t.Fatal(err)
	}
}

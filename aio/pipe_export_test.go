//go:build linux

package aio_test

import (
	"os"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/aio"
)

// A child killed before it decoded its argument never takes the
// Connections in it: their exported descriptors are closed when the child
// is reaped, not kept in this process for ever.
func TestKilledChildDropsExports(t *testing.T) {
	count := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		return len(ents)
	}
	before := count()
	for range 20 {
		a, b, err := aio.Pipe(true)
		if err != nil {
			t.Fatal(err)
		}
		p := aio.NewProcess(pipeEcho.Bind(pipeArgs{C: b}))
		if err := p.Start(); err != nil {
			t.Fatal(err)
		}
		b.Close()
		_ = p.Kill() // most often before the child has fetched b
		_ = p.Join()
		_ = p.Close()
		a.Close()
	}
	deadline := time.Now().Add(10 * time.Second)
	for count() > before { // fewer: an earlier test's descriptor closed meanwhile
		if time.Now().After(deadline) {
			t.Fatalf("%d descriptors open, %d before", count(), before)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

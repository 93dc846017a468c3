//go:build linux

package aio_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/aio"
	"github.com/asyncgo/asyncgo/executor"
)

type scribbleArgs struct {
	Out  *aio.Queue[[]byte]
	Size int
	N    int
}

// putAndScribble puts one buffer N times, changing every byte of it as
// soon as each Put returns.
var putAndScribble = executor.Register("aio_test.putAndScribble", func(a scribbleArgs) (struct{}, error) {
	buf := make([]byte, a.Size)
	for i := range a.N {
		for k := range buf {
			buf[k] = byte(i)
		}
		if err := a.Out.Put(buf); err != nil {
			return struct{}{}, err
		}
		for k := range buf {
			buf[k] = 0xEE
		}
	}
	return struct{}{}, nil
})

// A large []byte Put to a queue hosted in another process goes out with
// no copy, yet the Put has let go of it when it returns: the caller may
// change it at once, and every item arrives as it was put (sizes around
// the no-copy threshold, and 2 MiB).
func TestBigPutThenChange(t *testing.T) {
	for _, size := range []int{64<<10 - 1, 64 << 10, 300 << 10, 2 << 20} {
		a := scribbleArgs{Out: aio.NewQueue[[]byte](0), Size: size, N: 20}
		p := aio.NewProcess(putAndScribble.Bind(a))
		if err := p.Start(); err != nil {
			t.Fatal(err)
		}
		for i := range a.N {
			got, err := a.Out.GetTimeout(20 * time.Second)
			if err != nil {
				t.Fatal(size, i, err)
			}
			if len(got) != size || !bytes.Equal(got, bytes.Repeat([]byte{byte(i)}, size)) {
				t.Fatalf("size %d item %d: changed after its Put returned", size, i)
			}
		}
		if err := p.Join(); err != nil {
			t.Fatal(err)
		}
	}
}

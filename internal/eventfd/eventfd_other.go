//go:build !linux

package eventfd

import (
	"os"
	"syscall"
)

// Off Linux a pipe serves: a write of one byte wakes the reader, which
// drains up to 64 at a time. A full pipe already holds a wake-up, so the
// write is made directly and dropped if it would block, where os.File's
// Write would wait.
var wakeBytes = []byte{1}

func open() (*FD, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	sc, err := w.SyscallConn()
	if err != nil {
		r.Close()
		w.Close()
		return nil, err
	}
	f := &FD{r: r, w: w}
	f.wake = func() {
		_ = sc.Write(func(fd uintptr) bool {
			_, _ = syscall.Write(int(fd), wakeBytes)
			return true
		})
	}
	return f, nil
}

package loop

import (
	"sync"
	"syscall"
)

// threadWatch is asyncio's ThreadedChildWatcher: a goroutine blocked in
// wait4 for one child, which posts its exit to the loop. It is the
// fallback where the loop cannot watch a pidfd (off Linux, or a kernel
// without pidfds); it holds an OS thread per running child.
type threadWatch struct {
	mu     sync.Mutex
	reaped bool
	code   int
	done   chan struct{}
}

func (w *threadWatch) watch(l *Loop, pid int, exited func(code int)) {
	w.done = make(chan struct{})
	go func() {
		defer close(w.done)
		var ws syscall.WaitStatus
		code := 255
		for {
			_, err := syscall.Wait4(pid, &ws, 0, nil)
			if err == syscall.EINTR {
				continue
			}
			if err == nil {
				code = exitCode(ws)
			}
			break
		}
		w.mu.Lock()
		w.reaped, w.code = true, code
		w.mu.Unlock()
		_ = l.CallSoonThreadsafe(func() { exited(code) })
	}()
}

func (w *threadWatch) signal(pid int, sig syscall.Signal) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.reaped {
		return nil // the pid may be another process's by now
	}
	if err := syscall.Kill(pid, sig); err != nil && err != syscall.ESRCH {
		return err
	}
	return nil
}

func (w *threadWatch) reapBlocking() int {
	<-w.done
	return w.code
}

// exitCode is Python's returncode: the exit status, or minus the signal.
func exitCode(ws syscall.WaitStatus) int {
	switch {
	case ws.Exited():
		return ws.ExitStatus()
	case ws.Signaled():
		return -int(ws.Signal())
	}
	return 255
}

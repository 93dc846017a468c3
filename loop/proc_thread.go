package loop

import (
	"os"
	"strconv"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
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
		// Wait for the exit without reaping where the system can (waitid
		// WNOWAIT), then reap under the lock signal takes: the pid stays
		// the child's while a signal may be sent to it.
		waitExitNoReap(pid)
		var ws syscall.WaitStatus
		code := 255
		w.mu.Lock()
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

// markCloseOnExec marks close-on-exec every descriptor 3 or above that
// is not: what close_fds=True closes in the child. Go opens its own
// descriptors close-on-exec; this catches those this process inherited
// or made with raw syscalls. The child's own descriptors are dup'ed into
// place by the fork, which clears the flag on the copies.
func markCloseOnExec() {
	for _, dir := range []string{"/proc/self/fd", "/dev/fd"} {
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range ents {
			fd, err := strconv.Atoi(e.Name())
			if err != nil || fd < 3 {
				continue
			}
			if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil && flags&unix.FD_CLOEXEC == 0 {
				_, _ = unix.FcntlInt(uintptr(fd), unix.F_SETFD, flags|unix.FD_CLOEXEC)
			}
		}
		return
	}
}

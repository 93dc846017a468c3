//go:build !linux

package loop

import "syscall"

// procWatch learns of a child's exit: off Linux there is no pidfd for the
// poller, so a goroutine waits for each child (threadWatch).
type procWatch struct{ th *threadWatch }

func cloexecPipe() ([2]int, error) {
	var p [2]int
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	if err := syscall.Pipe(p[:]); err != nil {
		return p, err
	}
	syscall.CloseOnExec(p[0])
	syscall.CloseOnExec(p[1])
	return p, nil
}

// closeOnExec is close_fds=True (see markCloseOnExec).
func closeOnExec([]uintptr) { markCloseOnExec() }

// waitExitNoReap cannot wait without reaping here (no waitid WNOWAIT in
// Go's syscall off Linux): the reaper's wait4 is then the wait, and a
// signal sent in the instant between its return and the mark of the
// reap could reach a reused pid.
func waitExitNoReap(int) {}

func spawn(path string, argv []string, attr *syscall.ProcAttr) (int, procWatch, error) {
	pid, _, err := syscall.StartProcess(path, argv, attr)
	return pid, procWatch{th: &threadWatch{}}, err
}

func (w *procWatch) watch(l *Loop, pid int, exited func(code int)) { w.th.watch(l, pid, exited) }

func (w *procWatch) signal(pid int, sig syscall.Signal) error { return w.th.signal(pid, sig) }

func (w *procWatch) reapBlocking(int) int { return w.th.reapBlocking() }

func (w *procWatch) release(*Loop) {}

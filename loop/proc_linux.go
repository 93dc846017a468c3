package loop

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// procWatch learns of a child's exit. On Linux the child is started with
// a pidfd (clone's CLONE_PIDFD), which the loop's poller watches: it polls
// readable when the child exits, and the loop reaps it then, with no
// thread per child. Signals go through the pidfd, so they never reach a
// process that reused the pid. Without a pidfd (an old kernel) it falls
// back to a goroutine in wait4 (threadWatch).
type procWatch struct {
	pidfd  int
	reaped bool
	th     *threadWatch
}

func cloexecPipe() ([2]int, error) {
	var p [2]int
	err := unix.Pipe2(p[:], unix.O_CLOEXEC)
	return p, err
}

// closeOnExec is close_fds=True: one close_range(CLOSE_RANGE_CLOEXEC)
// marks every descriptor 3 and above close-on-exec (Linux 5.11), else
// markCloseOnExec does it one by one. The child's descriptors are dup'ed
// into place by the fork, which clears the flag on the copies.
func closeOnExec([]uintptr) {
	if _, _, e := unix.Syscall(unix.SYS_CLOSE_RANGE, 3, ^uintptr(0), unix.CLOSE_RANGE_CLOEXEC); e != 0 {
		markCloseOnExec()
	}
}

// waitExitNoReap waits for pid's exit and leaves it a zombie.
func waitExitNoReap(pid int) {
	var info unix.Siginfo
	for unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil) == unix.EINTR {
	}
}

func spawn(path string, argv []string, attr *syscall.ProcAttr) (int, procWatch, error) {
	pidfd := -1
	attr.Sys.PidFD = &pidfd
	pid, _, err := syscall.StartProcess(path, argv, attr)
	if err == syscall.ENOSYS || err == syscall.EINVAL || err == syscall.EPERM {
		// A kernel or sandbox without CLONE_PIDFD: start it without.
		attr.Sys.PidFD = nil
		pid, _, err = syscall.StartProcess(path, argv, attr)
		pidfd = -1
	}
	if err != nil {
		return 0, procWatch{}, err
	}
	if pidfd < 0 {
		return pid, procWatch{pidfd: -1, th: &threadWatch{}}, nil
	}
	return pid, procWatch{pidfd: pidfd}, nil
}

func (w *procWatch) watch(l *Loop, pid int, exited func(code int)) {
	if w.th != nil {
		w.th.watch(l, pid, exited)
		return
	}
	if _, err := l.setIO(w.pidfd, evRead, func() {
		code, ok := w.reap(pid, unix.WNOHANG)
		if !ok {
			return
		}
		w.release(l)
		exited(code)
	}, w); err != nil {
		// The poller refused the pidfd: wait in a goroutine instead.
		unix.Close(w.pidfd)
		w.pidfd = -1
		w.th = &threadWatch{}
		w.th.watch(l, pid, exited)
	}
}

// reap is waitpid: ok false if the child has not exited (WNOHANG). A
// child some other code reaped first gets asyncio's 255.
func (w *procWatch) reap(pid int, flags int) (int, bool) {
	if w.reaped {
		return 255, true
	}
	var ws unix.WaitStatus
	for {
		wpid, err := unix.Wait4(pid, &ws, flags, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			w.reaped = true
			return 255, true // ECHILD: "Unknown child process pid"
		}
		if wpid == 0 {
			return 0, false
		}
		w.reaped = true
		return exitCode(syscall.WaitStatus(ws)), true
	}
}

func (w *procWatch) signal(pid int, sig syscall.Signal) error {
	if w.th != nil {
		return w.th.signal(pid, sig)
	}
	if w.reaped || w.pidfd < 0 {
		return nil
	}
	err := unix.PidfdSendSignal(w.pidfd, sig, nil, 0)
	if err == unix.ENOSYS || err == unix.EPERM {
		// A sandbox that refuses pidfd_send_signal: the pid is still the
		// child's, since only the loop's goroutine reaps it, and it is
		// the goroutine signalling.
		err = unix.Kill(pid, sig)
	}
	if err != nil && err != unix.ESRCH {
		return os.NewSyscallError("pidfd_send_signal", err)
	}
	return nil
}

func (w *procWatch) reapBlocking(pid int) int {
	if w.th != nil {
		return w.th.reapBlocking()
	}
	code, _ := w.reap(pid, 0)
	return code
}

// release stops watching and closes the pidfd.
func (w *procWatch) release(l *Loop) {
	if w.pidfd >= 0 {
		l.setIO(w.pidfd, evRead, nil, w)
		unix.Close(w.pidfd)
		w.pidfd = -1
	}
}

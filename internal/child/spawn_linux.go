package child

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

func supported() error { return nil }

// Spawner starts children from one locked OS thread that lives until Close,
// so Pdeathsig cannot fire while the children are wanted. The thread starts
// with the first child: a pool that never starts a worker holds none.
type Spawner struct {
	mu      sync.Mutex // serialises Start's hand-over with Close
	started bool
	closed  bool
	reqs    chan spawnReq
	done    chan struct{}
}

type spawnReq struct {
	argv []string
	attr *os.ProcAttr
	res  chan spawnRes
}

type spawnRes struct {
	proc *os.Process
	err  error
}

// ErrSpawnerClosed is Start's error after Close.
var ErrSpawnerClosed = errors.New("child: the spawner is closed")

// NewSpawner returns a spawner; its thread starts with the first child.
func NewSpawner() *Spawner {
	return &Spawner{reqs: make(chan spawnReq), done: make(chan struct{})}
}

func (s *Spawner) run() {
	runtime.LockOSThread()
	// Not unlocked: the thread ends with the goroutine, so Pdeathsig
	// reaches any child still alive when the spawner closes.
	defer close(s.done)
	for r := range s.reqs {
		// /proc/self/exe is the running binary's inode, even if its
		// path now names another file.
		proc, err := os.StartProcess("/proc/self/exe", r.argv, r.attr)
		r.res <- spawnRes{proc, err}
	}
}

// spawn hands r to the spawner's thread, or refuses after Close.
func (s *Spawner) spawn(r spawnReq) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrSpawnerClosed
	}
	if !s.started {
		s.started = true
		go s.run()
	}
	s.reqs <- r
	return nil
}

// Close stops the spawner. Children still alive receive SIGKILL. Start
// returns ErrSpawnerClosed from now on.
func (s *Spawner) Close() {
	s.mu.Lock()
	started, closed := s.started, s.closed
	s.closed = true
	if started && !closed {
		close(s.reqs)
	}
	s.mu.Unlock()
	if started {
		<-s.done
	}
}

// Process is a started child.
//
// Signals reach it through its os.Process, which on Linux holds a pidfd:
// once the child has been reaped they go nowhere (os.ErrProcessDone),
// never to another process that reused its pid. Its process group has no
// such handle, so the group is signalled only while the leader is
// unreaped: a pid, and so a process group id, cannot be reused before
// then. Wait kills the group and reaps the leader under one lock that
// KillGroup takes too, which keeps that invariant.
type Process struct {
	Ctrl *os.File // the parent's end of the control socket

	proc   *os.Process
	pid    int
	mu     sync.Mutex
	reaped bool
}

// Start re-executes this binary as a child with the given role. The child
// inherits stdout and stderr; stdin is /dev/null. After Close it returns
// ErrSpawnerClosed. In
// a child that never ran Bootstrap it returns ErrNotBootstrapped.
func (s *Spawner) Start(role string) (*Process, error) {
	if err := CanSpawn(); err != nil {
		return nil, fmt.Errorf("child: %w", err)
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("child: socketpair: %w", err)
	}
	// Non-blocking, so the parent's end is pollable: a goroutine reading it
	// parks in the netpoller, and Close interrupts that read.
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		unix.Close(fds[1])
		return nil, fmt.Errorf("child: socketpair: %w", err)
	}
	parentEnd := os.NewFile(uintptr(fds[0]), "asyncgo-control")
	childEnd := os.NewFile(uintptr(fds[1]), "asyncgo-control-child")
	defer childEnd.Close()
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		parentEnd.Close()
		return nil, fmt.Errorf("child: %w", err)
	}
	defer devNull.Close()
	env := childEnv(role)
	files := []*os.File{devNull, os.Stdout, os.Stderr, childEnd}
	sideParent, sideChild, sideEnv, adopt, err := sideChannel()
	if err != nil {
		parentEnd.Close()
		return nil, fmt.Errorf("child: side channel: %w", err)
	}
	if sideChild != nil {
		defer sideChild.Close()
		files = append(files, sideChild)
		env = append(env, sideEnv...)
	}
	attr := &os.ProcAttr{
		Env:   env,
		Files: files,
		Sys:   &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL},
	}
	res := make(chan spawnRes, 1)
	fail := func() {
		parentEnd.Close()
		if sideParent != nil {
			sideParent.Close()
		}
	}
	if err := s.spawn(spawnReq{argv: []string{os.Args[0]}, attr: attr, res: res}); err != nil {
		fail()
		return nil, err
	}
	r := <-res
	if r.err != nil {
		fail()
		return nil, fmt.Errorf("child: start: %w", r.err)
	}
	p := &Process{Ctrl: parentEnd, proc: r.proc, pid: r.proc.Pid}
	if adopt != nil {
		adopt(p)
	}
	return p, nil
}

// Pid returns the child's process id, for display: signal it with Signal.
func (p *Process) Pid() int { return p.pid }

// Signal sends sig to the child (through its pidfd); after the child has
// been reaped it returns os.ErrProcessDone and signals nothing.
func (p *Process) Signal(sig os.Signal) error { return p.proc.Signal(sig) }

// KillGroup sends sig to the child's process group, if the child has not
// been reaped yet (then the group id is still the child's).
func (p *Process) KillGroup(sig syscall.Signal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.reaped {
		_ = syscall.Kill(-p.pid, sig)
	}
}

// Wait waits for the child to exit, kills what is left of its process
// group (anything it started), and only then reaps it: until it is reaped
// its pid, and so its group id, cannot be reused by another process.
func (p *Process) Wait() (*os.ProcessState, error) {
	var info unix.Siginfo
	for {
		// WNOWAIT: the child stays a zombie, its pid ours, until the
		// group is killed below. The pid is safe to name here: only Wait
		// reaps it.
		err := unix.Waitid(unix.P_PID, p.pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.reaped {
		_ = syscall.Kill(-p.pid, syscall.SIGKILL)
	}
	p.reaped = true
	return p.proc.Wait()
}

// WatchParent makes the child exit as soon as the parent's end of ctrl
// closes, whatever the child is doing: a goroutine waits for POLLRDHUP,
// which consumes nothing, so the child's main keeps reading ctrl itself.
func WatchParent(ctrl *os.File) {
	fd := int(ctrl.Fd())
	go func() {
		// ctrl stays reachable while the watch lasts: were it collected,
		// its finalizer would close fd, and poll would report POLLNVAL at
		// once, for ever (a child spun a CPU so, once its caller had let
		// ctrl go).
		defer runtime.KeepAlive(ctrl)
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLRDHUP}}
		for {
			n, err := unix.Poll(fds, -1)
			if err == unix.EINTR {
				continue
			}
			if n > 0 && fds[0].Revents&unix.POLLNVAL != 0 {
				return // closed by its owner: nothing left to watch
			}
			if err != nil || n > 0 && fds[0].Revents&(unix.POLLRDHUP|unix.POLLHUP|unix.POLLERR) != 0 {
				os.Exit(0)
			}
		}
	}()
}

// childEnv is this process's environment for a child of role: the role and
// parent markers, and GORACE with atexit_sleep_ms=0 (a race-enabled child
// would sleep a second at every exit), replacing a GORACE already set.
func childEnv(role string) []string {
	env := make([]string, 0, len(os.Environ())+3)
	gorace := ""
	for _, kv := range os.Environ() {
		if v, ok := strings.CutPrefix(kv, "GORACE="); ok {
			gorace = v
			continue
		}
		env = append(env, kv)
	}
	if !strings.Contains(gorace, "atexit_sleep_ms") {
		gorace = strings.TrimSpace(gorace + " atexit_sleep_ms=0")
	}
	return append(env, "GORACE="+gorace, envRole+"="+role, envParent+"="+strconv.Itoa(os.Getpid()))
}

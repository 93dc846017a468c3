// Package child runs functions of this binary in child processes: the
// parent re-executes its own binary with a marker in the environment and a
// private control socket as file descriptor 3, and the child's main calls
// Bootstrap first thing, which runs the child's role and exits.
//
// A child dies with its parent three ways: Pdeathsig (SIGKILL) fires when
// the parent's spawning thread ends, and the spawning thread is a locked
// goroutine that lives as long as the parent needs its children
// (golang/go#27505); a goroutine in the child exits as soon as the control
// socket reaches EOF, which the kernel delivers when the parent dies however
// it dies; and the child checks at start that its parent is still the
// process that spawned it. Each child leads its own process group, so
// killing the group reaches anything it started.
package child

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Environment variables that mark a child.
const (
	envRole   = "ASYNCGO_CHILD_ROLE"
	envParent = "ASYNCGO_PARENT_PID"
)

var (
	rolesMu sync.Mutex
	roles   = map[string]func(ctrl *os.File) int{}
)

// RegisterRole registers the main of a kind of child. It panics if the role
// is registered twice.
func RegisterRole(role string, main func(ctrl *os.File) int) {
	rolesMu.Lock()
	defer rolesMu.Unlock()
	if _, dup := roles[role]; dup {
		panic("child: role registered twice: " + role)
	}
	roles[role] = main
}

// IsChild reports whether this process was started as a child.
func IsChild() bool { return os.Getenv(envRole) != "" }

// Bootstrap runs this process's role and exits if it was started as a
// child; otherwise it returns at once. Call it first thing in main (and in
// TestMain), after package initialisation has registered every role and
// function.
func Bootstrap() {
	role := os.Getenv(envRole)
	if role == "" {
		return
	}
	parent := os.Getenv(envParent)
	os.Unsetenv(envRole)
	os.Unsetenv(envParent)
	if strconv.Itoa(os.Getppid()) != parent {
		os.Exit(3) // the parent died before we could start
	}
	rolesMu.Lock()
	main := roles[role]
	rolesMu.Unlock()
	if main == nil {
		fmt.Fprintf(os.Stderr, "asyncgo: child role %q is not registered in this binary\n", role)
		os.Exit(2)
	}
	os.Exit(main(os.NewFile(3, "asyncgo-control")))
}

// Spawner starts children from one locked OS thread that lives until Close,
// so Pdeathsig cannot fire while the children are wanted.
type Spawner struct {
	reqs chan spawnReq
	done chan struct{}
}

type spawnReq struct {
	cmd  *exec.Cmd
	errc chan error
}

// NewSpawner starts a spawner.
func NewSpawner() *Spawner {
	s := &Spawner{reqs: make(chan spawnReq), done: make(chan struct{})}
	go func() {
		runtime.LockOSThread()
		// Not unlocked: the thread ends with the goroutine, so Pdeathsig
		// reaches any child still alive when the spawner closes.
		defer close(s.done)
		for r := range s.reqs {
			r.errc <- r.cmd.Start()
		}
	}()
	return s
}

// Close stops the spawner. Children still alive receive SIGKILL.
func (s *Spawner) Close() {
	close(s.reqs)
	<-s.done
}

// Process is a started child.
type Process struct {
	Cmd  *exec.Cmd
	Ctrl *os.File // the parent's end of the control socket
}

// Start re-executes this binary as a child with the given role. The child
// inherits stdout and stderr; stdin is /dev/null. Start must not be called
// after Close (a pool closes its spawner only once no worker can start).
func (s *Spawner) Start(role string) (*Process, error) {
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
	exe, err := os.Executable()
	if err != nil {
		parentEnd.Close()
		return nil, fmt.Errorf("child: cannot find this executable: %w", err)
	}
	cmd := exec.Command(exe)
	cmd.Args = []string{os.Args[0]}
	cmd.Env = append(os.Environ(), envRole+"="+role, envParent+"="+strconv.Itoa(os.Getpid()))
	if g := os.Getenv("GORACE"); !strings.Contains(g, "atexit_sleep_ms") {
		// A race-enabled child would sleep a second at every exit.
		cmd.Env = append(cmd.Env, strings.TrimSpace("GORACE="+g+" atexit_sleep_ms=0"))
	}
	cmd.Stdout = os.Stdout
	cmd.Stderr = os.Stderr
	cmd.ExtraFiles = []*os.File{childEnd}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	errc := make(chan error, 1)
	s.reqs <- spawnReq{cmd: cmd, errc: errc}
	if err := <-errc; err != nil {
		parentEnd.Close()
		return nil, fmt.Errorf("child: start: %w", err)
	}
	return &Process{Cmd: cmd, Ctrl: parentEnd}, nil
}

// Wait waits for the child to exit, kills what is left of its process
// group (anything it started), and only then reaps it: until it is reaped
// its pid, and so its group id, cannot be reused by another process.
func (p *Process) Wait() error {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, p.Cmd.Process.Pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			break
		}
	}
	p.KillGroup(syscall.SIGKILL)
	return p.Cmd.Wait()
}

// KillGroup sends sig to the child's process group.
func (p *Process) KillGroup(sig syscall.Signal) {
	_ = syscall.Kill(-p.Cmd.Process.Pid, sig)
}

// WatchParent makes the child exit as soon as the parent's end of ctrl
// closes, whatever the child is doing: a goroutine waits for POLLRDHUP,
// which consumes nothing, so the child's main keeps reading ctrl itself.
func WatchParent(ctrl *os.File) {
	fd := int(ctrl.Fd())
	go func() {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLRDHUP}}
		for {
			n, err := unix.Poll(fds, -1)
			if err == unix.EINTR {
				continue
			}
			if err != nil || n > 0 && fds[0].Revents&(unix.POLLRDHUP|unix.POLLHUP|unix.POLLERR) != 0 {
				os.Exit(0)
			}
		}
	}()
}

package aio

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/internal/child"
	"github.com/asyncgo/asyncgo/internal/goid"
	"github.com/asyncgo/asyncgo/internal/wire"
	"github.com/asyncgo/asyncgo/loop"
)

const processRole = "aio-process"

func init() { child.RegisterRole(processRole, processMain) }

// procStart is the first frame a Process's child reads, before the
// argument.
type procStart struct {
	Fn   string
	Name string
}

var current struct {
	name string
}

// CurrentName returns the name of this process as its parent's Process
// named it (Python's current_process().name), or "MainProcess".
func CurrentName() string {
	if current.name == "" {
		return "MainProcess"
	}
	return current.name
}

// processMain is a Process's child: it runs one call and exits, 0 if it
// returned nil, 1 if it returned an error or panicked, whose text (with
// the stack of a panic) goes to stderr, as Python prints a traceback.
func processMain(ctrl *os.File) int {
	child.WatchParent(ctrl)
	rd := wire.NewReader(ctrl)
	var st procStart
	if err := rd.Next(); err != nil {
		return 1
	}
	if err := rd.Decode(&st); err != nil {
		fmt.Fprintln(os.Stderr, "aio: bad start frame:", err)
		return 1
	}
	current.name = st.Name
	h := executor.Lookup(st.Fn)
	if h == nil {
		fmt.Fprintf(os.Stderr, "Process %s:\n%s: %q\n", st.Name, executor.ErrNotRegistered, st.Fn)
		return 1
	}
	code := make(chan int, 1)
	go func() {
		done := false
		defer func() {
			if !done {
				fmt.Fprintf(os.Stderr, "Process %s:\n%s\n", st.Name, executor.ErrGoexit)
				code <- 1
			}
		}()
		_, err, argErr := h.Serve(rd)
		done = true
		switch {
		case argErr != nil:
			fmt.Fprintf(os.Stderr, "Process %s:\ncannot decode the argument of %s: %v\n", st.Name, st.Fn, argErr)
			code <- 1
		case err != nil:
			fmt.Fprintf(os.Stderr, "Process %s:\n%v\n", st.Name, err)
			code <- 1
		default:
			code <- 0
		}
	}()
	c := <-code
	// A Get that returned may have been woken before its delivery
	// reported the item consumed (the reader reports it under the
	// queue's lock, after the wake): wait for those reports, or the host
	// would requeue the items as this process's end shows.
	settleAll()
	sayBye()
	flushPeers(10 * time.Second)
	return c
}

// ErrNotStarted is Join, Terminate or Kill of a Process not started yet
// (Python's AssertionError "can only join a started process").
var ErrNotStarted = errors.New("aio: the process has not been started")

// ErrStarted is Start of a Process started before (Python: "cannot start
// a process twice").
var ErrStarted = errors.New("aio: cannot start a process twice")

// ErrRunning is Close of a Process still running (Python's ValueError).
var ErrRunning = errors.New("aio: cannot close a process while it is still running: Join or Kill it first")

// Process is multiprocessing.Process (aioprocessing's AioProcess): a
// registered function (executor.Register) run in a child process, a
// re-execution of this binary, which must call executor.Init first thing
// in main. The objects of this package travel inside its argument.
//
// The child dies with this process, whether Daemon is set or not: Go has
// no atexit to join children at. Daemon says what Shutdown does: it
// terminates daemon children and waits for the others, as Python's exit
// does; call it (defer aio.Shutdown()) at the end of main.
type Process struct {
	// Name is the process's name (Python's name, default "Process-N"), as
	// CurrentName reports it in the child.
	Name string
	// Daemon marks a child that Shutdown terminates rather than waits for.
	Daemon bool

	fn      string
	arg     any
	exports []exported // of Connections and queues in arg, dropped once the child is gone

	mu      sync.Mutex
	started bool
	closed  bool
	sp      *child.Spawner
	cp      *child.Process
	pid     int
	exited  chan struct{}
	code    int
}

var (
	procMu  sync.Mutex
	procN   int
	running = map[*Process]struct{}{}
)

// NewProcess returns a Process that will run call in a child process.
func NewProcess[R any](call executor.Call[R]) *Process {
	procMu.Lock()
	procN++
	n := procN
	procMu.Unlock()
	return &Process{Name: fmt.Sprintf("Process-%d", n), fn: call.Name(), arg: call.Arg(), exited: make(chan struct{})}
}

// Start starts the child. The argument is encoded here: one that cannot
// be (a nil pointer, a func inside an interface) fails Start, and no
// child is left behind.
func (p *Process) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("aio: the process is closed")
	}
	if p.started {
		return ErrStarted
	}
	if p.fn == "" {
		return errors.New("aio: the Process has no function: make it with NewProcess and a registered function's Bind")
	}
	if executor.Lookup(p.fn) == nil {
		return fmt.Errorf("%w: %q", executor.ErrNotRegistered, p.fn)
	}
	// The argument is encoded once, before the child starts, so that a
	// bad one starts no child (and a Connection in it is exported once:
	// each encoding hands a descriptor to the first process to decode it).
	var start bytes.Buffer
	var exports []exported
	gid := goid.Get()
	exportSinks.Store(gid, &exports)
	err := wire.NewWriter(&start).Send(procStart{Fn: p.fn, Name: p.Name}, p.arg)
	exportSinks.Delete(gid)
	p.exports = exports
	if err != nil {
		p.dropExports()
		return fmt.Errorf("aio: cannot encode the argument of %s: %w", p.fn, err)
	}
	sp := child.NewSpawner()
	cp, err := sp.Start(processRole)
	if err != nil {
		sp.Close()
		p.dropExports()
		return fmt.Errorf("aio: %w", err)
	}
	if _, err := cp.Ctrl.Write(start.Bytes()); err != nil {
		_ = cp.Signal(syscall.SIGKILL)
		_, _ = cp.Wait()
		cp.Ctrl.Close()
		sp.Close()
		p.dropExports()
		return fmt.Errorf("aio: cannot send the argument of %s: %w", p.fn, err)
	}
	p.started, p.sp, p.cp, p.pid = true, sp, cp, cp.Pid()
	procMu.Lock()
	running[p] = struct{}{}
	procMu.Unlock()
	go p.reap()
	return nil
}

// dropExports closes the Connections' descriptors exported for the
// child's argument that it did not take.
func (p *Process) dropExports() {
	for _, e := range p.exports {
		e.drop()
	}
	p.exports = nil
}

func (p *Process) reap() {
	st, err := p.cp.Wait()
	code := 1
	if err == nil {
		code = exitCode(st)
	}
	p.cp.Ctrl.Close()
	p.sp.Close()
	p.dropExports()
	p.mu.Lock()
	p.code = code
	p.mu.Unlock()
	procMu.Lock()
	delete(running, p)
	procMu.Unlock()
	close(p.exited)
}

func exitCode(st *os.ProcessState) int {
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return -int(ws.Signal())
	}
	return st.ExitCode()
}

func (p *Process) isStarted() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.started
}

// Join waits for the child to exit.
func (p *Process) Join() error {
	if !p.isStarted() {
		return ErrNotStarted
	}
	<-p.exited
	return nil
}

// JoinTimeout waits at most d for the child to exit and reports whether
// it has (Python's join(timeout); then read ExitCode).
func (p *Process) JoinTimeout(d time.Duration) (bool, error) {
	if !p.isStarted() {
		return false, ErrNotStarted
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.exited:
		return true, nil
	case <-t.C:
		return false, nil
	}
}

// CoroJoin is Join as an await (coro_join): with a loop task's ctx it
// never blocks the loop; with another ctx it blocks until the child exits
// or ctx ends. Cancelling it leaves the child running.
func (p *Process) CoroJoin(ctx context.Context) error {
	if !p.isStarted() {
		return ErrNotStarted
	}
	if l, err := loop.RunningLoop(ctx); err == nil {
		select {
		case <-p.exited:
			return nil
		default:
		}
		f := executor.NewFuture[struct{}]()
		f.SetRunningOrNotifyCancel()
		go func() {
			<-p.exited
			_ = f.SetResult(struct{}{})
		}()
		_, err := loop.WrapFuture(l, f).Await(ctx)
		return err
	}
	select {
	case <-p.exited:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ExitCode returns the child's exit code and true once it has exited: 0,
// 1 if its function returned an error or panicked, or minus the signal
// number that killed it (Python's exitcode; false is Python's None).
func (p *Process) ExitCode() (int, bool) {
	select {
	case <-p.exited:
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.code, true
	default:
		return 0, false
	}
}

// IsAlive reports whether the child has started and not yet exited.
func (p *Process) IsAlive() bool {
	if !p.isStarted() {
		return false
	}
	_, done := p.ExitCode()
	return !done
}

// Pid returns the child's process id, or 0 before Start.
func (p *Process) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pid
}

func (p *Process) signal(sig syscall.Signal) error {
	p.mu.Lock()
	cp := p.cp
	p.mu.Unlock()
	if cp == nil {
		return ErrNotStarted
	}
	if err := cp.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	return nil
}

// Terminate sends the child SIGTERM (a child that has exited is left
// alone: signals go through its pidfd, never to a reused pid).
func (p *Process) Terminate() error { return p.signal(syscall.SIGTERM) }

// Kill sends the child SIGKILL.
func (p *Process) Kill() error { return p.signal(syscall.SIGKILL) }

// Close releases the Process; it fails with ErrRunning while the child
// runs. A Process never started closes at once.
func (p *Process) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started {
		select {
		case <-p.exited:
		default:
			return ErrRunning
		}
	}
	p.closed = true
	return nil
}

// ActiveChildren returns the Processes started and not yet reaped
// (Python's active_children, which also joins those that have ended).
func ActiveChildren() []*Process {
	procMu.Lock()
	defer procMu.Unlock()
	out := make([]*Process, 0, len(running))
	for p := range running {
		out = append(out, p)
	}
	return out
}

// Shutdown does what Python does at exit: it terminates the daemon
// children that are still running and then waits for every child. Go has
// no atexit: call it at the end of main (defer aio.Shutdown()). Children
// die with their parent in any case, so a program that skips it leaves no
// process behind, only children cut short.
func Shutdown() {
	for _, p := range ActiveChildren() {
		if p.Daemon {
			_ = p.Terminate()
		}
	}
	for _, p := range ActiveChildren() {
		_ = p.Join()
	}
}

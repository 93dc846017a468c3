package loop

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// CPython's asyncio/base_subprocess.py: the subprocess transport, and the
// loop's subprocess_exec and subprocess_shell. The OS half (starting the
// child, learning of its exit, signalling it) is in proc_linux.go and
// proc_other.go.

// Stdio says what a child's stdin, stdout or stderr is, as the stdin,
// stdout and stderr arguments of asyncio's subprocess functions. The zero
// Stdio is Python's None: the child inherits this process's descriptor.
type Stdio struct {
	kind stdioKind
	file *os.File
}

type stdioKind uint8

const (
	stdioInherit stdioKind = iota
	stdioPipe
	stdioDevNull
	stdioStdout
	stdioFile
)

// The Stdio values of asyncio.subprocess (the names are Python's).
var (
	// PIPE is asyncio.subprocess.PIPE: a pipe to the child, read or
	// written through the loop (a pipe transport; a StreamReader or
	// StreamWriter on a Process).
	PIPE = Stdio{kind: stdioPipe}
	// DEVNULL is asyncio.subprocess.DEVNULL: /dev/null.
	DEVNULL = Stdio{kind: stdioDevNull}
	// STDOUT is asyncio.subprocess.STDOUT, for Stderr only: the child's
	// stderr goes where its stdout goes.
	STDOUT = Stdio{kind: stdioStdout}
)

// StdioFile is a Stdio of an open file (Python's file object or
// descriptor): the child gets a copy of its descriptor; f stays the
// caller's, to close.
func StdioFile(f *os.File) Stdio { return Stdio{kind: stdioFile, file: f} }

// SubprocessOptions are the keyword arguments of subprocess_exec,
// subprocess_shell and the create_subprocess_* functions; nil means all
// defaults (every stream inherited).
type SubprocessOptions struct {
	Stdin, Stdout, Stderr Stdio
	// Env is the child's environment ("KEY=value" strings); nil means this
	// process's. A program name without a slash is looked up in Env's
	// PATH, as Python's os.get_exec_path(env).
	Env []string
	// Dir is cwd: the child's working directory; "" means this process's.
	Dir string
	// ExtraFiles is pass_fds: descriptors the child inherits as 3, 4, ...
	// Every other descriptor of this process is closed in the child
	// (close_fds=True, Python's default): Go opens its own close-on-exec,
	// and before each start the loop marks close-on-exec any descriptor
	// 3 or above that is not (one this process inherited, or made with a
	// raw syscall), as Python closes them in the child.
	ExtraFiles []*os.File
	// StartNewSession is start_new_session: the child calls setsid.
	StartNewSession bool
	// ProcessGroup is process_group (Python 3.11): if set to 0 or more,
	// the child calls setpgid(0, ProcessGroup). Use -1, or leave
	// SetProcessGroup false, for none.
	ProcessGroup    int
	SetProcessGroup bool
	// Limit is the buffer limit of a Process's StreamReaders (limit=);
	// 0 means DefaultStreamLimit. Ignored by SubprocessExec.
	Limit int
}

// Errors of subprocess creation.
var (
	// ErrBadStdio is asyncio's ValueError for a stream argument that does
	// not apply (STDOUT for stdin or stdout).
	ErrBadStdio = errors.New("loop: invalid stdio argument")
	// ErrEmptyCommand is the error of an empty program or command.
	ErrEmptyCommand = errors.New("loop: program must not be empty")
	// ErrProcessLookup is ProcessLookupError: the process has been closed
	// (its transport's connection is lost), so it cannot be signalled.
	ErrProcessLookup = errors.New("loop: ProcessLookupError")
)

// SubprocessProtocol is asyncio.SubprocessProtocol: the callbacks of a
// child process started with [Loop.SubprocessExec] or
// [Loop.SubprocessShell], all on the loop. fd is 0, 1 or 2 (stdin, stdout,
// stderr). The data of PipeDataReceived is valid only during the call.
// ConnectionLost comes last, once the child has exited and every pipe is
// closed. Embed [NopSubprocessProtocol] for no-op methods.
type SubprocessProtocol interface {
	ConnectionMade(t SubprocessTransport)
	PipeDataReceived(fd int, data []byte)
	PipeConnectionLost(fd int, err error)
	ProcessExited()
	ConnectionLost(err error)
}

// NopSubprocessProtocol has no-op SubprocessProtocol methods, to embed.
type NopSubprocessProtocol struct{}

// ConnectionMade does nothing.
func (NopSubprocessProtocol) ConnectionMade(SubprocessTransport) {}

// PipeDataReceived does nothing.
func (NopSubprocessProtocol) PipeDataReceived(int, []byte) {}

// PipeConnectionLost does nothing.
func (NopSubprocessProtocol) PipeConnectionLost(int, error) {}

// ProcessExited does nothing.
func (NopSubprocessProtocol) ProcessExited() {}

// ConnectionLost does nothing.
func (NopSubprocessProtocol) ConnectionLost(error) {}

// SubprocessTransport is asyncio.SubprocessTransport. Loop goroutine only.
type SubprocessTransport interface {
	BaseTransport
	// Pid is get_pid.
	Pid() int
	// ReturnCode is get_returncode: the exit status once the child has
	// exited (ok true): its exit code, or minus the signal that killed
	// it, as Python's returncode.
	ReturnCode() (code int, ok bool)
	// PipeTransport is get_pipe_transport(fd): the pipe of the child's
	// stdin (0, a WriteTransport), stdout (1) or stderr (2, ReadTransports),
	// nil if that stream is not a PIPE.
	PipeTransport(fd int) BaseTransport
	// SendSignal is send_signal. It does nothing once the child has
	// exited, and returns ErrProcessLookup once the transport is closed
	// and the child reaped.
	SendSignal(sig os.Signal) error
	// Terminate is terminate: SendSignal(SIGTERM).
	Terminate() error
	// Kill is kill: SendSignal(SIGKILL).
	Kill() error
	// BaseTransport's Close is close: it closes the pipes and, if the
	// child is still running, kills it.
}

// subprocessTransport is BaseSubprocessTransport.
type subprocessTransport struct {
	l        *Loop
	proto    SubprocessProtocol
	pid      int
	proc     procWatch
	pipes    [3]*subprocessPipe
	code     int
	exited   bool
	reaped   bool
	closed   bool
	finished bool
	pending  []func() // _pending_calls: callbacks due before ConnectionMade ran
	made     bool
	ended    bool // callConnectionLost ran: Wait returns at once
	waiters  []*Future[int]
}

// subprocessPipe is one of the child's pipes, with the protocol the pipe
// transport calls (ReadSubprocessPipeProto / WriteSubprocessPipeProto).
type subprocessPipe struct {
	NopProtocol
	sp           *subprocessTransport
	fd           int
	t            Transport
	disconnected bool
}

// DataReceived passes the data on; a panic of the protocol is reported as
// a callback's and leaves the pipe open, as asyncio's (which calls
// pipe_data_received through call_soon's handle).
func (p *subprocessPipe) DataReceived(data []byte) {
	p.sp.callProto("protocol.pipe_data_received() call failed.", func() { p.sp.proto.PipeDataReceived(p.fd, data) })
}

func (p *subprocessPipe) ConnectionLost(err error) {
	p.disconnected = true
	p.sp.pipeConnectionLost(p.fd, err)
}

func (p *subprocessPipe) PauseWriting() {
	if f, ok := p.sp.proto.(WriteFlowControl); ok {
		f.PauseWriting()
	}
}

func (p *subprocessPipe) ResumeWriting() {
	if f, ok := p.sp.proto.(WriteFlowControl); ok {
		f.ResumeWriting()
	}
}

// SubprocessExec is subprocess_exec: it starts program with args (argv[0]
// is program; a name without a slash is looked up in PATH) and connects
// protocol to it. It returns once the protocol's ConnectionMade has run.
// Unlike asyncio it takes PIPE only where asked: with nil opts every
// stream is inherited (asyncio's loop method defaults all three to PIPE;
// asyncio.create_subprocess_exec, [CreateSubprocessExec], to None).
//
// The child is reaped by the loop without a thread: on Linux the loop's
// poller watches a pidfd for its exit. A program that cannot be started
// returns the *os.PathError of the exec (errors.Is(err, fs.ErrNotExist)
// for a missing program, as Python's FileNotFoundError).
func (l *Loop) SubprocessExec(ctx context.Context, factory func() SubprocessProtocol, program string, args []string, opts *SubprocessOptions) (SubprocessTransport, SubprocessProtocol, error) {
	if program == "" {
		return nil, nil, ErrEmptyCommand
	}
	return l.subprocess(ctx, factory, program, append([]string{program}, args...), opts)
}

// SubprocessShell is subprocess_shell: cmd runs under /bin/sh -c.
func (l *Loop) SubprocessShell(ctx context.Context, factory func() SubprocessProtocol, cmd string, opts *SubprocessOptions) (SubprocessTransport, SubprocessProtocol, error) {
	if cmd == "" {
		return nil, nil, ErrEmptyCommand
	}
	return l.subprocess(ctx, factory, "/bin/sh", []string{"/bin/sh", "-c", cmd}, opts)
}

func (l *Loop) subprocess(ctx context.Context, factory func() SubprocessProtocol, program string, argv []string, opts *SubprocessOptions) (SubprocessTransport, SubprocessProtocol, error) {
	if runningTask(ctx) == nil {
		return nil, nil, ErrNotInTask
	}
	if l.closed.Load() {
		return nil, nil, ErrLoopClosed
	}
	if opts == nil {
		opts = &SubprocessOptions{}
	}
	if factory == nil {
		return nil, nil, ErrBadProtocol
	}
	proto := factory()
	if proto == nil {
		return nil, nil, ErrBadProtocol
	}
	t, err := l.startSubprocess(proto, program, argv, opts)
	if err != nil {
		return nil, nil, err
	}
	if err := l.awaitMade(ctx, func() {
		// asyncio: close (which kills the child), wait for its end, and
		// only then give up: nothing is left behind. The wait ignores
		// ctx's end (it has ended); the child has been killed.
		t.Close()
		_, _ = t.wait(context.WithoutCancel(ctx))
	}); err != nil {
		return nil, nil, err
	}
	return t, proto, nil
}

// childFiles builds the child's descriptors 0, 1, 2 and ExtraFiles, and
// the parent's ends of the pipes. close closes the child's copies (after
// the fork) and, on failure, the parent's too.
type childFiles struct {
	child   []uintptr
	closeMe []int
	parent  [3]*os.File
	raw     [3]int // parent's descriptors, non-blocking (os.File.Fd would make them blocking)
}

func (c *childFiles) closeChild() {
	for _, fd := range c.closeMe {
		unix.Close(fd)
	}
	c.closeMe = nil
}

func (c *childFiles) closeAll() {
	c.closeChild()
	for i, f := range c.parent {
		if f != nil {
			f.Close()
			c.parent[i] = nil
		}
	}
}

func buildStdio(opts *SubprocessOptions) (*childFiles, error) {
	c := &childFiles{child: make([]uintptr, 3, 3+len(opts.ExtraFiles))}
	devnull := -1
	specs := [3]Stdio{opts.Stdin, opts.Stdout, opts.Stderr}
	if specs[0].kind == stdioStdout || specs[1].kind == stdioStdout {
		return nil, fmt.Errorf("%w: STDOUT is only for stderr", ErrBadStdio)
	}
	for i, s := range specs {
		switch s.kind {
		case stdioInherit:
			c.child[i] = uintptr(i)
		case stdioDevNull:
			if devnull < 0 {
				fd, err := unix.Open(os.DevNull, unix.O_RDWR|unix.O_CLOEXEC, 0)
				if err != nil {
					c.closeAll()
					return nil, &os.PathError{Op: "open", Path: os.DevNull, Err: err}
				}
				devnull = fd
				c.closeMe = append(c.closeMe, fd)
			}
			c.child[i] = uintptr(devnull)
		case stdioStdout:
			c.child[i] = c.child[1]
		case stdioFile:
			if s.file == nil {
				c.closeAll()
				return nil, fmt.Errorf("%w: StdioFile(nil)", ErrBadStdio)
			}
			fd, err := rawFD(s.file)
			if err != nil {
				c.closeAll()
				return nil, err
			}
			c.child[i] = uintptr(fd)
		case stdioPipe:
			p, err := cloexecPipe()
			if err != nil {
				c.closeAll()
				return nil, os.NewSyscallError("pipe2", err)
			}
			mine, theirs := p[0], p[1] // stdout, stderr: the parent reads
			if i == 0 {
				mine, theirs = p[1], p[0]
			}
			if err := unix.SetNonblock(mine, true); err != nil {
				unix.Close(mine)
				unix.Close(theirs)
				c.closeAll()
				return nil, os.NewSyscallError("fcntl", err)
			}
			c.parent[i] = os.NewFile(uintptr(mine), fmt.Sprintf("|%d", i))
			c.raw[i] = mine
			c.closeMe = append(c.closeMe, theirs)
			c.child[i] = uintptr(theirs)
		default:
			c.closeAll()
			return nil, ErrBadStdio
		}
	}
	for _, f := range opts.ExtraFiles {
		if f == nil {
			c.closeAll()
			return nil, fmt.Errorf("%w: nil in ExtraFiles", ErrBadStdio)
		}
		fd, err := rawFD(f)
		if err != nil {
			c.closeAll()
			return nil, err
		}
		c.child = append(c.child, uintptr(fd))
	}
	return c, nil
}

// rawFD is f's descriptor, without the blocking mode os.File.Fd would
// set on a file description the caller may share. The caller keeps f
// alive (it is in the options) until the child has started.
func rawFD(f *os.File) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	if err := rc.Control(func(d uintptr) { fd = int(d) }); err != nil {
		return -1, err
	}
	return fd, nil
}

// defPath is Python's os.defpath, the PATH of an env that has none.
const defPath = "/bin:/usr/bin"

// lookPath finds program as execvpe would: a name with a slash as it is,
// any other in the PATH of env (os.defpath if env has none), or of this
// process when env is nil, as Python's os.get_exec_path(env).
func lookPath(program string, env []string) (string, error) {
	if strings.Contains(program, "/") {
		return program, nil
	}
	path, found := "", false
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path, found = v, true
		}
	}
	switch {
	case found:
	case env != nil:
		path = defPath
	default:
		var ok bool
		if path, ok = os.LookupEnv("PATH"); !ok {
			path = defPath
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, program)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", &os.PathError{Op: "exec", Path: program, Err: syscall.ENOENT}
}

func (l *Loop) startSubprocess(proto SubprocessProtocol, program string, argv []string, opts *SubprocessOptions) (*subprocessTransport, error) {
	path, err := lookPath(program, opts.Env)
	if err != nil {
		return nil, err
	}
	if opts.Dir != "" {
		// Python names the directory in its FileNotFoundError; the exec
		// would report the program.
		if fi, err := os.Stat(opts.Dir); err != nil {
			return nil, err
		} else if !fi.IsDir() {
			return nil, &os.PathError{Op: "chdir", Path: opts.Dir, Err: syscall.ENOTDIR}
		}
	}
	files, err := buildStdio(opts)
	if err != nil {
		return nil, err
	}
	env := opts.Env
	if env == nil {
		env = os.Environ()
	}
	sys := &syscall.SysProcAttr{Setsid: opts.StartNewSession}
	if opts.SetProcessGroup && opts.ProcessGroup >= 0 {
		sys.Setpgid, sys.Pgid = true, opts.ProcessGroup
	}
	attr := &syscall.ProcAttr{Dir: opts.Dir, Env: env, Files: files.child, Sys: sys}
	closeOnExec(files.child)
	pid, w, err := spawn(path, argv, attr)
	files.closeChild()
	for _, f := range opts.ExtraFiles {
		runtime.KeepAlive(f)
	}
	runtime.KeepAlive(opts)
	if err != nil {
		files.closeAll()
		return nil, &os.PathError{Op: "fork/exec", Path: path, Err: err}
	}
	t := &subprocessTransport{l: l, proto: proto, pid: pid, proc: w}
	l.addTransport(t)
	for i, f := range files.parent {
		if f == nil {
			continue
		}
		p := &subprocessPipe{sp: t, fd: i}
		t.pipes[i] = p
		if i == 0 {
			p.t = l.newWritePipe(f, files.raw[i], p)
		} else {
			p.t = l.newReadPipe(f, files.raw[i], p)
		}
	}
	t.proc.watch(l, t.pid, t.processExited)
	l.CallSoon(func() {
		t.made = true
		t.callProto("protocol.connection_made() call failed.", func() { t.proto.ConnectionMade(t) })
		for _, fn := range t.pending {
			l.CallSoon(fn)
		}
		t.pending = nil
	})
	return t, nil
}

func (t *subprocessTransport) String() string {
	state := "running"
	switch {
	case t.closed:
		state = "closed"
	case t.exited:
		state = fmt.Sprintf("returncode=%d", t.code)
	}
	return fmt.Sprintf("<subprocess transport pid=%d %s>", t.pid, state)
}

// callProto runs a protocol callback, reporting a panic as asyncio's
// loop reports a callback's exception.
func (t *subprocessTransport) callProto(msg string, fn func()) {
	defer func() {
		if r := recover(); r != nil {
			t.l.CallExceptionHandler(ExceptionContext{Message: "Exception in callback: " + msg, Err: newPanicError(r), Transport: t})
		}
	}()
	fn()
}

// call is _call: before ConnectionMade has run, callbacks wait for it.
func (t *subprocessTransport) call(fn func()) {
	if !t.made {
		t.pending = append(t.pending, fn)
		return
	}
	t.l.CallSoon(fn)
}

// Pid implements SubprocessTransport.
func (t *subprocessTransport) Pid() int { return t.pid }

// ReturnCode implements SubprocessTransport.
func (t *subprocessTransport) ReturnCode() (int, bool) { return t.code, t.exited }

// PipeTransport implements SubprocessTransport.
func (t *subprocessTransport) PipeTransport(fd int) BaseTransport {
	if fd < 0 || fd > 2 || t.pipes[fd] == nil {
		return nil
	}
	return t.pipes[fd].t
}

// SendSignal implements SubprocessTransport.
func (t *subprocessTransport) SendSignal(sig os.Signal) error {
	s, ok := sig.(syscall.Signal)
	if !ok {
		return fmt.Errorf("%w: %v", ErrInvalidSignal, sig)
	}
	if t.reaped && t.finished {
		return ErrProcessLookup
	}
	if t.exited || t.reaped {
		return nil // Popen.send_signal: the child is gone, nothing to do
	}
	return t.proc.signal(t.pid, s)
}

// Terminate implements SubprocessTransport.
func (t *subprocessTransport) Terminate() error { return t.SendSignal(syscall.SIGTERM) }

// Kill implements SubprocessTransport.
func (t *subprocessTransport) Kill() error { return t.SendSignal(syscall.SIGKILL) }

// IsClosing implements SubprocessTransport.
func (t *subprocessTransport) IsClosing() bool { return t.closed }

// Close implements SubprocessTransport.
func (t *subprocessTransport) Close() {
	if t.closed {
		return
	}
	t.closed = true
	for _, p := range t.pipes {
		if p != nil {
			p.t.Close()
		}
	}
	if !t.exited && !t.reaped {
		_ = t.proc.signal(t.pid, syscall.SIGKILL)
	}
}

// processExited is _process_exited, from the reaper.
func (t *subprocessTransport) processExited(code int) {
	if t.exited {
		return
	}
	t.exited, t.reaped, t.code = true, true, code
	if t.l.debug {
		t.l.logger.Info("subprocess exited", "transport", t.String(), "returncode", code)
	}
	t.call(func() { t.callProto("protocol.process_exited() call failed.", t.proto.ProcessExited) })
	t.tryFinish()
}

// pipeConnectionLost is _pipe_connection_lost.
func (t *subprocessTransport) pipeConnectionLost(fd int, err error) {
	t.call(func() {
		t.callProto("protocol.pipe_connection_lost() call failed.", func() { t.proto.PipeConnectionLost(fd, err) })
	})
	t.tryFinish()
}

// tryFinish is _try_finish.
func (t *subprocessTransport) tryFinish() {
	if t.finished || !t.exited {
		return
	}
	for _, p := range t.pipes {
		if p != nil && !p.disconnected {
			return
		}
	}
	t.finished = true
	t.call(t.callConnectionLost)
}

// callConnectionLost is _call_connection_lost: the protocol hears of the
// end, then Wait's waiters get the return code (asyncio 3.12: wait()
// returns once the pipes are closed too).
func (t *subprocessTransport) callConnectionLost() {
	defer func() {
		t.ended = true
		for _, w := range t.waiters {
			if !w.Done() {
				w.SetResult(t.code)
			}
		}
		t.waiters = nil
		delete(t.l.transports, loopTransport(t))
	}()
	t.callProto("protocol.connection_lost() call failed.", func() { t.proto.ConnectionLost(nil) })
}

// wait is _wait: the return code at once if the child has exited, else
// once it has and its pipes are closed (asyncio wakes the waiters that
// came before the exit in _call_connection_lost). Cancelling it kills
// nothing.
func (t *subprocessTransport) wait(ctx context.Context) (int, error) {
	if t.ended || t.exited {
		return t.code, nil
	}
	w := NewFuture[int](t.l)
	t.waiters = append(t.waiters, w)
	code, err := w.Await(ctx)
	if err != nil {
		for i, x := range t.waiters {
			if x == w {
				t.waiters = append(t.waiters[:i], t.waiters[i+1:]...)
				break
			}
		}
	}
	return code, err
}

// forceClose runs at Loop.Close: a child still running is killed and
// reaped there, so that no zombie is left; the pipes close with the
// loop's other transports.
func (t *subprocessTransport) forceClose() {
	t.closed = true
	if !t.reaped {
		t.proc.signal(t.pid, syscall.SIGKILL)
		t.code = t.proc.reapBlocking(t.pid)
		t.exited, t.reaped = true, true
	}
	t.proc.release(t.l)
	t.finished, t.ended = true, true
	t.waiters = nil // their tasks were unwound before the transports close
	delete(t.l.transports, loopTransport(t))
}

// LocalAddr is nil: a subprocess has no address.
func (t *subprocessTransport) LocalAddr() net.Addr { return nil }

// RemoteAddr is nil: a subprocess has no address.
func (t *subprocessTransport) RemoteAddr() net.Addr { return nil }

// GetExtraInfo is get_extra_info: "pid" is the child's pid (asyncio's
// "subprocess" key holds a Popen, which has no Go counterpart).
func (t *subprocessTransport) GetExtraInfo(name string) any {
	if name == "pid" {
		return t.pid
	}
	return nil
}

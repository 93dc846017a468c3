package loop

import (
	"context"
	"errors"
	"fmt"
	"os"
)

// CPython's asyncio/subprocess.py: Process and the create_subprocess_*
// functions, over the subprocess transport (base_subprocess.go).

// subprocessStreamProtocol is SubprocessStreamProtocol: stdout and stderr
// feed StreamReaders, stdin is a StreamWriter whose Drain follows the
// stdin pipe's water marks.
type subprocessStreamProtocol struct {
	l         *Loop
	limit     int
	stdin     *StreamWriter
	stdout    *StreamReader
	stderr    *StreamReader
	transport SubprocessTransport
	exited    bool
	pipeFds   []int
	flow      *streamProtocol // FlowControlMixin and the stdin close waiter
}

func (p *subprocessStreamProtocol) ConnectionMade(t SubprocessTransport) {
	p.transport = t
	if pt, ok := t.PipeTransport(1).(Transport); ok {
		p.stdout = NewStreamReader(p.limit)
		p.stdout.SetTransport(pt)
		p.pipeFds = append(p.pipeFds, 1)
	}
	if pt, ok := t.PipeTransport(2).(Transport); ok {
		p.stderr = NewStreamReader(p.limit)
		p.stderr.SetTransport(pt)
		p.pipeFds = append(p.pipeFds, 2)
	}
	if pt, ok := t.PipeTransport(0).(Transport); ok {
		p.flow.transport = pt
		p.stdin = &StreamWriter{transport: pt, proto: p.flow}
	}
}

func (p *subprocessStreamProtocol) PipeDataReceived(fd int, data []byte) {
	switch fd {
	case 1:
		if p.stdout != nil {
			p.stdout.FeedData(data)
		}
	case 2:
		if p.stderr != nil {
			p.stderr.FeedData(data)
		}
	}
}

func (p *subprocessStreamProtocol) PipeConnectionLost(fd int, err error) {
	if fd == 0 {
		if p.stdin != nil {
			p.stdin.Close()
		}
		p.flow.ConnectionLost(err) // wakes Drain; WaitClosed returns err
		return
	}
	var r *StreamReader
	switch fd {
	case 1:
		r = p.stdout
	case 2:
		r = p.stderr
	}
	if r != nil {
		if err == nil {
			r.FeedEOF()
		} else {
			r.SetException(err)
		}
	}
	for i, f := range p.pipeFds {
		if f == fd {
			p.pipeFds = append(p.pipeFds[:i], p.pipeFds[i+1:]...)
			break
		}
	}
	p.maybeCloseTransport()
}

func (p *subprocessStreamProtocol) ProcessExited() {
	p.exited = true
	p.maybeCloseTransport()
}

func (p *subprocessStreamProtocol) ConnectionLost(error) {}

func (p *subprocessStreamProtocol) PauseWriting()  { p.flow.PauseWriting() }
func (p *subprocessStreamProtocol) ResumeWriting() { p.flow.ResumeWriting() }

func (p *subprocessStreamProtocol) maybeCloseTransport() {
	if len(p.pipeFds) == 0 && p.exited && p.transport != nil {
		p.transport.Close()
		p.transport = nil
	}
}

// Process is asyncio.subprocess.Process: a child started by
// [CreateSubprocessExec] or [CreateSubprocessShell]. Stdin, Stdout and
// Stderr are nil unless that stream is a PIPE. Loop goroutine only.
type Process struct {
	// Stdin writes to the child's stdin (a pipe transport); close it to
	// send EOF.
	Stdin *StreamWriter
	// Stdout and Stderr read the child's output. A reader that is not
	// read fills to twice its limit and then stops the pipe, and so, once
	// the pipe is full, the child: read them, or use Communicate.
	Stdout, Stderr *StreamReader

	t     *subprocessTransport
	proto *subprocessStreamProtocol
}

// CreateSubprocessExec is asyncio.create_subprocess_exec: it starts
// program with args (argv[0] is program; a name without a slash is looked
// up in PATH) and returns its Process. Streams are inherited unless opts
// says PIPE, DEVNULL, STDOUT (stderr only) or StdioFile. The child is
// reaped by the loop with no thread of its own (a pidfd in the poller, on
// Linux). A program that cannot be started returns the exec's
// *os.PathError (errors.Is(err, fs.ErrNotExist) for a missing one, as
// FileNotFoundError).
func CreateSubprocessExec(ctx context.Context, program string, args []string, opts *SubprocessOptions) (*Process, error) {
	l, err := taskLoop(ctx)
	if err != nil {
		return nil, err
	}
	if program == "" {
		return nil, ErrEmptyCommand
	}
	return l.createProcess(ctx, program, append([]string{program}, args...), opts)
}

// CreateSubprocessShell is asyncio.create_subprocess_shell: cmd runs under
// /bin/sh -c. Quoting the command is the caller's job (Python's
// shlex.quote); a command built from untrusted input is a shell injection.
// The Process is the shell: Kill and Terminate reach the shell only, not
// the commands it started (end cmd with exec, or start a new session and
// signal its group), and Wait waits for every holder of the pipes.
func CreateSubprocessShell(ctx context.Context, cmd string, opts *SubprocessOptions) (*Process, error) {
	l, err := taskLoop(ctx)
	if err != nil {
		return nil, err
	}
	if cmd == "" {
		return nil, ErrEmptyCommand
	}
	return l.createProcess(ctx, "/bin/sh", []string{"/bin/sh", "-c", cmd}, opts)
}

func taskLoop(ctx context.Context) (*Loop, error) {
	t := runningTask(ctx)
	if t == nil {
		return nil, ErrNotInTask
	}
	return t.loop, nil
}

func (l *Loop) createProcess(ctx context.Context, program string, argv []string, opts *SubprocessOptions) (*Process, error) {
	limit := DefaultStreamLimit
	if opts != nil && opts.Limit > 0 {
		limit = opts.Limit
	}
	if opts != nil && opts.Limit < 0 {
		return nil, fmt.Errorf("%w: limit %d", ErrBadStdio, opts.Limit)
	}
	proto := &subprocessStreamProtocol{l: l, limit: limit, flow: newStreamProtocol(l, nil, nil, nil)}
	t, _, err := l.subprocess(ctx, func() SubprocessProtocol { return proto }, program, argv, opts)
	if err != nil {
		return nil, err
	}
	return &Process{Stdin: proto.stdin, Stdout: proto.stdout, Stderr: proto.stderr, t: t.(*subprocessTransport), proto: proto}, nil
}

// String is asyncio's repr: "<Process 1234>".
func (p *Process) String() string { return fmt.Sprintf("<Process %d>", p.t.pid) }

// Pid is pid.
func (p *Process) Pid() int { return p.t.pid }

// ReturnCode is returncode: ok is false while the child runs (Python's
// None); code is the exit status, or minus the signal that killed it.
func (p *Process) ReturnCode() (code int, ok bool) { return p.t.ReturnCode() }

// Transport returns the process's SubprocessTransport.
func (p *Process) Transport() SubprocessTransport { return p.t }

// Wait is wait: it waits for the child to exit and its pipes to close
// (asyncio 3.12) and returns its return code. Cancelling it (or ctx's
// end) kills nothing. With Stdout or Stderr a PIPE that nobody reads, a
// child that writes much blocks on the full pipe and Wait with it, as in
// Python: use Communicate.
func (p *Process) Wait(ctx context.Context) (int, error) { return p.t.wait(ctx) }

// SendSignal is send_signal: nothing happens once the child has exited;
// ErrProcessLookup once the process is closed.
func (p *Process) SendSignal(sig os.Signal) error { return p.t.SendSignal(sig) }

// Terminate is terminate: SIGTERM.
func (p *Process) Terminate() error { return p.t.Terminate() }

// Kill is kill: SIGKILL.
func (p *Process) Kill() error { return p.t.Kill() }

// Communicate is communicate(input): it writes input to stdin and closes
// it (a child that exits without reading all of it is not an error:
// BrokenPipe and ConnectionReset are ignored, as asyncio), reads stdout
// and stderr to EOF at the same time (so a large output cannot deadlock),
// then waits for the child. stdout and stderr are nil for a stream that
// is not a PIPE. Without a stdin PIPE input is ignored, as in asyncio.
//
// Cancelling it kills nothing: the child runs on, what was read is lost,
// as in asyncio; call Kill and Wait to end it.
func (p *Process) Communicate(ctx context.Context, input []byte) (stdout, stderr []byte, err error) {
	l := p.t.l
	var tasks []*Task[[]byte]
	var outT, errT *Task[[]byte]
	if p.Stdin != nil {
		tasks = append(tasks, CreateTask(l, func(ctx context.Context) ([]byte, error) {
			return nil, p.feedStdin(ctx, input)
		}, WithContext(ctx)))
	}
	if p.Stdout != nil {
		outT = CreateTask(l, func(ctx context.Context) ([]byte, error) { return p.readStream(ctx, 1) }, WithContext(ctx))
		tasks = append(tasks, outT)
	}
	if p.Stderr != nil {
		errT = CreateTask(l, func(ctx context.Context) ([]byte, error) { return p.readStream(ctx, 2) }, WithContext(ctx))
		tasks = append(tasks, errT)
	}
	if _, err := Gather[[]byte](ctx, tasks...).Await(ctx); err != nil {
		for _, t := range tasks {
			t.Cancel()
		}
		return nil, nil, err
	}
	if _, err := p.Wait(ctx); err != nil {
		return nil, nil, err
	}
	if outT != nil {
		stdout, _ = outT.Result()
	}
	if errT != nil {
		stderr, _ = errT.Result()
	}
	return stdout, stderr, nil
}

// feedStdin is _feed_stdin.
func (p *Process) feedStdin(ctx context.Context, input []byte) error {
	var err error
	if len(input) > 0 {
		_, err = p.Stdin.Write(input)
	}
	if err == nil {
		err = p.Stdin.Drain(ctx)
	}
	if err != nil && !ignoredStdinError(err) {
		return err
	}
	p.Stdin.Close()
	return nil
}

func ignoredStdinError(err error) bool {
	return errors.Is(err, ErrBrokenPipe) || errors.Is(err, ErrConnectionLost) ||
		errors.Is(err, ErrTransportClosed) || errors.Is(err, ErrWriteAfterEOF)
}

// readStream is _read_stream.
func (p *Process) readStream(ctx context.Context, fd int) ([]byte, error) {
	r := p.Stdout
	if fd == 2 {
		r = p.Stderr
	}
	out, err := r.Read(ctx, -1)
	if err != nil {
		return nil, err
	}
	if t := p.t.PipeTransport(fd); t != nil {
		t.Close()
	}
	if out == nil {
		out = []byte{}
	}
	return out, nil
}

package loop_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/loop"
)

// Subprocess tests: real children (/bin/sh and coreutils), mirroring
// CPython's Lib/test/test_asyncio/test_subprocess.py by name.

func pipes() *loop.SubprocessOptions {
	return &loop.SubprocessOptions{Stdin: loop.PIPE, Stdout: loop.PIPE, Stderr: loop.PIPE}
}

// alive reports whether pid names a process that has not been reaped.
func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// test_stdin_stdout: data written to cat's stdin comes back on stdout.
func TestSubprocessStdinStdout(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		p, err := loop.CreateSubprocessExec(ctx, "cat", nil, &loop.SubprocessOptions{Stdin: loop.PIPE, Stdout: loop.PIPE})
		if err != nil {
			return err
		}
		if p.Stderr != nil {
			t.Error("Stderr is not nil for an inherited stderr")
		}
		if _, err := p.Stdin.Write([]byte("Python The Winner")); err != nil {
			return err
		}
		if err := p.Stdin.Drain(ctx); err != nil {
			return err
		}
		p.Stdin.Close()
		out, err := p.Stdout.Read(ctx, -1)
		if err != nil {
			return err
		}
		code, err := p.Wait(ctx)
		if err != nil {
			return err
		}
		if string(out) != "Python The Winner" || code != 0 {
			t.Errorf("got %q, exit %d", out, code)
		}
		return nil
	})
}

// test_communicate: input in, output out, exit code.
func TestSubprocessCommunicate(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		p, err := loop.CreateSubprocessShell(ctx, "cat; echo err >&2; exit 3", pipes())
		if err != nil {
			return err
		}
		out, errOut, err := p.Communicate(ctx, []byte("Python The Winner"))
		if err != nil {
			return err
		}
		code, _ := p.ReturnCode()
		if string(out) != "Python The Winner" || string(errOut) != "err\n" || code != 3 {
			t.Errorf("got %q %q exit %d", out, errOut, code)
		}
		return nil
	})
}

// test_communicate_none_input: Communicate(nil) closes stdin.
func TestSubprocessCommunicateNoneInput(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		p, err := loop.CreateSubprocessExec(ctx, "cat", nil, pipes())
		if err != nil {
			return err
		}
		out, errOut, err := p.Communicate(ctx, nil)
		if err != nil {
			return err
		}
		if len(out) != 0 || len(errOut) != 0 || out == nil {
			t.Errorf("got %q %q; want two empty outputs", out, errOut)
		}
		return nil
	})
}

// Communicate with 8 MiB in and out: the writer and the readers run at
// once, so neither pipe can fill and deadlock.
func TestSubprocessCommunicateLargeOutput(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		in := bytes.Repeat([]byte("0123456789abcdef"), 512<<10)
		p, err := loop.CreateSubprocessShell(ctx, "cat; head -c 3000000 /dev/zero >&2", pipes())
		if err != nil {
			return err
		}
		out, errOut, err := p.Communicate(ctx, in)
		if err != nil {
			return err
		}
		if !bytes.Equal(out, in) || len(errOut) != 3000000 {
			t.Errorf("stdout %d bytes (equal %v), stderr %d", len(out), bytes.Equal(out, in), len(errOut))
		}
		return nil
	})
}

// test_shell: the exit status of a shell command.
func TestSubprocessShell(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		p, err := loop.CreateSubprocessShell(ctx, "exit 7", nil)
		if err != nil {
			return err
		}
		code, err := p.Wait(ctx)
		if code != 7 || err != nil {
			t.Errorf("Wait = %d, %v; want 7", code, err)
		}
		return nil
	})
}

// test_start_new_session: the child leads a session of its own.
func TestSubprocessStartNewSession(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		p, err := loop.CreateSubprocessExec(ctx, "sh", []string{"-c", "ps -o sid= -p $$"},
			&loop.SubprocessOptions{Stdout: loop.PIPE, StartNewSession: true})
		if err != nil {
			return err
		}
		out, _, err := p.Communicate(ctx, nil)
		if err != nil {
			return err
		}
		if strings.TrimSpace(string(out)) != fmt.Sprint(p.Pid()) {
			t.Errorf("session id %q; want the child's pid %d", out, p.Pid())
		}
		return nil
	})
}

// test_kill: Kill gives -SIGKILL.
func TestSubprocessKill(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		p, err := loop.CreateSubprocessExec(ctx, "sleep", []string{"60"}, nil)
		if err != nil {
			return err
		}
		if err := p.Kill(); err != nil {
			return err
		}
		code, err := p.Wait(ctx)
		if code != -int(syscall.SIGKILL) || err != nil {
			t.Errorf("Wait = %d, %v; want -9", code, err)
		}
		if alive(p.Pid()) {
			t.Error("the child was not reaped")
		}
		return nil
	})
}

// test_terminate: Terminate gives -SIGTERM.
func TestSubprocessTerminate(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		p, err := loop.CreateSubprocessExec(ctx, "sleep", []string{"60"}, nil)
		if err != nil {
			return err
		}
		if err := p.Terminate(); err != nil {
			return err
		}
		code, _ := p.Wait(ctx)
		if code != -int(syscall.SIGTERM) {
			t.Errorf("Wait = %d; want -15", code)
		}
		return nil
	})
}

// test_send_signal: a signal the child handles (it prints and exits).
func TestSubprocessSendSignal(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		p, err := loop.CreateSubprocessShell(ctx, `trap 'echo got HUP; exit 0' HUP; echo ready; while :; do sleep 0.01; done`,
			&loop.SubprocessOptions{Stdout: loop.PIPE})
		if err != nil {
			return err
		}
		line, err := p.Stdout.ReadLine(ctx)
		if err != nil || string(line) != "ready\n" {
			return fmt.Errorf("first line %q, %v", line, err)
		}
		if err := p.SendSignal(syscall.SIGHUP); err != nil {
			return err
		}
		line, _ = p.Stdout.ReadLine(ctx)
		code, _ := p.Wait(ctx)
		if string(line) != "got HUP\n" || code != 0 {
			t.Errorf("after SIGHUP: %q, exit %d", line, code)
		}
		return nil
	})
}

// A child that ignores SIGTERM survives Terminate, and Kill ends it.
func TestSubprocessIgnoresSigterm(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		p, err := loop.CreateSubprocessShell(ctx, `trap '' TERM; echo ready; while :; do sleep 0.01; done`,
			&loop.SubprocessOptions{Stdout: loop.PIPE})
		if err != nil {
			return err
		}
		if line, err := p.Stdout.ReadLine(ctx); err != nil || string(line) != "ready\n" {
			return fmt.Errorf("first line %q, %v", line, err)
		}
		if err := p.Terminate(); err != nil {
			return err
		}
		wctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		_, err = p.Wait(wctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Wait after SIGTERM = %v; the child should still run", err)
		}
		if _, ok := p.ReturnCode(); ok {
			t.Fatal("the child exited on an ignored SIGTERM")
		}
		if err := p.Kill(); err != nil {
			return err
		}
		code, _ := p.Wait(ctx)
		if code != -9 {
			t.Errorf("exit %d; want -9", code)
		}
		return nil
	})
}

// test_stdin_broken_pipe: writing to a child that exited without reading
// fails the drain with a broken pipe (or a lost connection).
func TestSubprocessStdinBrokenPipe(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		p, err := loop.CreateSubprocessExec(ctx, "true", nil, &loop.SubprocessOptions{Stdin: loop.PIPE})
		if err != nil {
			return err
		}
		if _, err := p.Wait(ctx); err != nil {
			return err
		}
		big := make([]byte, 4<<20)
		_, werr := p.Stdin.Write(big)
		derr := p.Stdin.Drain(ctx)
		for derr == nil && werr == nil {
			_, werr = p.Stdin.Write(big)
			derr = p.Stdin.Drain(ctx)
		}
		err = errors.Join(werr, derr)
		if !errors.Is(err, syscall.EPIPE) && !errors.Is(err, loop.ErrConnectionLost) && !errors.Is(err, loop.ErrTransportClosed) {
			t.Errorf("write to a dead child = %v; want a broken pipe", err)
		}
		return nil
	})
}

// test_communicate_ignore_broken_pipe: Communicate ignores a child that
// exits without reading its input.
func TestSubprocessCommunicateIgnoreBrokenPipe(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		p, err := loop.CreateSubprocessExec(ctx, "true", nil, &loop.SubprocessOptions{Stdin: loop.PIPE, Stdout: loop.PIPE})
		if err != nil {
			return err
		}
		out, _, err := p.Communicate(ctx, make([]byte, 8<<20))
		if err != nil || len(out) != 0 {
			t.Errorf("Communicate = %q, %v; want no error", out, err)
		}
		return nil
	})
}

// test_stdin_not_inheritable: the parent's pipe ends do not leak into the
// child: a child with three PIPEs has the same descriptors as one with
// none (Go opens every descriptor close-on-exec; one this process
// inherited without it, from its own parent, is inherited in both).
func TestSubprocessStdinNotInheritable(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		list := func(opts *loop.SubprocessOptions) ([]string, error) {
			p, err := loop.CreateSubprocessExec(ctx, "ls", []string{"/proc/self/fd"}, opts)
			if err != nil {
				return nil, err
			}
			out, _, err := p.Communicate(ctx, nil)
			return strings.Fields(string(out)), err
		}
		f, err := os.CreateTemp(t.TempDir(), "out")
		if err != nil {
			return err
		}
		defer f.Close()
		bare, err := list(&loop.SubprocessOptions{Stdin: loop.DEVNULL, Stdout: loop.PIPE, Stderr: loop.DEVNULL})
		if err != nil {
			return err
		}
		// Open pipes of other children meanwhile, to tempt a leak.
		other, err := loop.CreateSubprocessExec(ctx, "cat", nil, pipes())
		if err != nil {
			return err
		}
		piped, err := list(pipes())
		if err != nil {
			return err
		}
		if len(piped) != len(bare) {
			t.Errorf("descriptors with PIPEs %v, without %v", piped, bare)
		}
		other.Stdin.Close()
		_, err = other.Wait(ctx)
		return err
	})
}

// test_empty_input: Communicate with an empty input.
func TestSubprocessEmptyInput(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		p, err := loop.CreateSubprocessExec(ctx, "cat", nil, pipes())
		if err != nil {
			return err
		}
		out, _, err := p.Communicate(ctx, []byte{})
		if err != nil || len(out) != 0 {
			t.Errorf("Communicate = %q, %v", out, err)
		}
		return nil
	})
}

// test_devnull_input, test_devnull_output, test_devnull_error.
func TestSubprocessDevnull(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		p, err := loop.CreateSubprocessShell(ctx, "cat; echo out; echo err >&2",
			&loop.SubprocessOptions{Stdin: loop.DEVNULL, Stdout: loop.PIPE, Stderr: loop.DEVNULL})
		if err != nil {
			return err
		}
		if p.Stdin != nil || p.Stderr != nil {
			t.Error("DEVNULL streams must be nil")
		}
		out, errOut, err := p.Communicate(ctx, nil)
		if err != nil || string(out) != "out\n" || errOut != nil {
			t.Errorf("Communicate = %q %q %v", out, errOut, err)
		}
		q, err := loop.CreateSubprocessShell(ctx, "echo out; echo err >&2",
			&loop.SubprocessOptions{Stdout: loop.DEVNULL, Stderr: loop.PIPE})
		if err != nil {
			return err
		}
		out, errOut, err = q.Communicate(ctx, nil)
		if err != nil || out != nil || string(errOut) != "err\n" {
			t.Errorf("Communicate = %q %q %v", out, errOut, err)
		}
		return nil
	})
}

// test_subprocess_stderr_redirect_to_stdout: STDOUT merges stderr.
func TestSubprocessStderrRedirectToStdout(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		p, err := loop.CreateSubprocessShell(ctx, "echo out; echo err >&2",
			&loop.SubprocessOptions{Stdout: loop.PIPE, Stderr: loop.STDOUT})
		if err != nil {
			return err
		}
		out, errOut, err := p.Communicate(ctx, nil)
		if err != nil || string(out) != "out\nerr\n" || errOut != nil {
			t.Errorf("Communicate = %q %q %v", out, errOut, err)
		}
		return nil
	})
}

// Every combination of PIPE, DEVNULL, inherit (and STDOUT for stderr)
// runs, and a PIPE gets exactly what the child wrote there.
func TestSubprocessEveryStreamCombination(t *testing.T) {
	kinds := []struct {
		name string
		s    loop.Stdio
	}{{"inherit", loop.Stdio{}}, {"PIPE", loop.PIPE}, {"DEVNULL", loop.DEVNULL}}
	errKinds := append(kinds, struct {
		name string
		s    loop.Stdio
	}{"STDOUT", loop.STDOUT})
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	for _, in := range kinds {
		for _, out := range kinds {
			for _, er := range errKinds {
				name := in.name + "/" + out.name + "/" + er.name
				t.Run(name, func(t *testing.T) {
					opts := &loop.SubprocessOptions{Stdin: in.s, Stdout: out.s, Stderr: er.s}
					if in.s == (loop.Stdio{}) {
						opts.Stdin = loop.DEVNULL // never the test's own stdin
					}
					if out.s == (loop.Stdio{}) {
						opts.Stdout = loop.StdioFile(devnull) // keep go test's output clean
					}
					if er.s == (loop.Stdio{}) {
						opts.Stderr = loop.StdioFile(devnull)
					}
					runNet(t, func(ctx context.Context) error {
						p, err := loop.CreateSubprocessShell(ctx, "cat >/dev/null; echo o; echo e >&2", opts)
						if err != nil {
							return err
						}
						var input []byte
						if p.Stdin != nil {
							input = []byte("in")
						}
						o, e, err := p.Communicate(ctx, input)
						if err != nil {
							return err
						}
						wantO, wantE := "", ""
						if out.s == loop.PIPE {
							wantO = "o\n"
							if er.s == loop.STDOUT {
								wantO = "o\ne\n"
							}
						}
						if er.s == loop.PIPE {
							wantE = "e\n"
						}
						if string(o) != wantO || string(e) != wantE {
							t.Errorf("stdout %q stderr %q; want %q %q", o, e, wantO, wantE)
						}
						if (o != nil) != (out.s == loop.PIPE) || (e != nil) != (er.s == loop.PIPE) {
							t.Errorf("non-PIPE outputs must be nil: %v %v", o != nil, e != nil)
						}
						return nil
					})
				})
			}
		}
	}
}

// test_read_stdout_after_process_exit: output survives the exit.
func TestSubprocessReadStdoutAfterProcessExit(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		p, err := loop.CreateSubprocessShell(ctx, "echo hello; exec 1>&-; exit 0", &loop.SubprocessOptions{Stdout: loop.PIPE})
		if err != nil {
			return err
		}
		// Let the child exit before reading.
		for {
			if _, ok := p.ReturnCode(); ok {
				break
			}
			if err := loop.Sleep(ctx, time.Millisecond); err != nil {
				return err
			}
		}
		out, err := p.Stdout.Read(ctx, -1)
		if err != nil || string(out) != "hello\n" {
			t.Errorf("Read = %q, %v", out, err)
		}
		return nil
	})
}

// test_create_subprocess_exec_with_path and a missing program
// (FileNotFoundError).
func TestSubprocessExecWithPath(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		p, err := loop.CreateSubprocessExec(ctx, "/bin/true", nil, nil)
		if err != nil {
			return err
		}
		if code, _ := p.Wait(ctx); code != 0 {
			t.Errorf("exit %d", code)
		}
		_, err = loop.CreateSubprocessExec(ctx, "no-such-program-asyncgo", nil, pipes())
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("missing program: %v; want fs.ErrNotExist", err)
		}
		_, err = loop.CreateSubprocessExec(ctx, "/nonexistent/prog", nil, pipes())
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("missing path: %v; want fs.ErrNotExist", err)
		}
		return nil
	})
}

// test_subprocess_exec_invalid_args, test_subprocess_shell_invalid_args:
// bad arguments are errors, and start nothing.
func TestSubprocessInvalidArgs(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		if _, err := loop.CreateSubprocessExec(ctx, "", nil, nil); !errors.Is(err, loop.ErrEmptyCommand) {
			t.Errorf("empty program: %v", err)
		}
		if _, err := loop.CreateSubprocessShell(ctx, "", nil); !errors.Is(err, loop.ErrEmptyCommand) {
			t.Errorf("empty command: %v", err)
		}
		if _, err := loop.CreateSubprocessExec(ctx, "true", nil, &loop.SubprocessOptions{Stdin: loop.STDOUT}); !errors.Is(err, loop.ErrBadStdio) {
			t.Errorf("stdin=STDOUT: %v", err)
		}
		if _, err := loop.CreateSubprocessExec(ctx, "true", nil, &loop.SubprocessOptions{Stdout: loop.StdioFile(nil)}); !errors.Is(err, loop.ErrBadStdio) {
			t.Errorf("StdioFile(nil): %v", err)
		}
		if _, err := loop.CreateSubprocessExec(ctx, "true", nil, &loop.SubprocessOptions{Limit: -1}); !errors.Is(err, loop.ErrBadStdio) {
			t.Errorf("negative limit: %v", err)
		}
		p, err := loop.CreateSubprocessExec(ctx, "true", nil, nil)
		if err != nil {
			return err
		}
		// asyncio ignores the input without a stdin PIPE.
		if _, _, err := p.Communicate(ctx, []byte("x")); err != nil {
			t.Errorf("input without a stdin PIPE: %v", err)
		}
		if _, err := loop.CreateSubprocessExec(ctx, "true", nil, &loop.SubprocessOptions{Dir: "/nonexistent-asyncgo"}); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "/nonexistent-asyncgo") {
			t.Errorf("missing cwd: %v; want an error naming it", err)
		}
		_, err = p.Wait(ctx)
		return err
	})
	if _, err := loop.CreateSubprocessExec(context.Background(), "true", nil, nil); !errors.Is(err, loop.ErrNotInTask) {
		t.Errorf("outside a task: %v", err)
	}
}

// test_cancel_process_wait: a cancelled Wait kills nothing; the child
// runs on and a later Wait gets its status.
func TestSubprocessCancelProcessWait(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		p, err := loop.CreateSubprocessShell(ctx, "read x; exit 5", &loop.SubprocessOptions{Stdin: loop.PIPE})
		if err != nil {
			return err
		}
		w := loop.CreateTask(loopOf(ctx), func(ctx context.Context) (int, error) { return p.Wait(ctx) })
		if err := loop.Sleep(ctx, 20*time.Millisecond); err != nil {
			return err
		}
		w.Cancel()
		if _, err := w.Await(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled Wait = %v", err)
		}
		if _, ok := p.ReturnCode(); ok || !alive(p.Pid()) {
			t.Fatal("cancelling Wait ended the child")
		}
		p.Stdin.Write([]byte("go\n"))
		code, err := p.Wait(ctx)
		if code != 5 || err != nil {
			t.Errorf("Wait = %d, %v; want 5", code, err)
		}
		return nil
	})
}

// A Communicate cancelled mid-way kills nothing either.
func TestSubprocessCancelCommunicate(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		p, err := loop.CreateSubprocessShell(ctx, "echo started; exec sleep 60", &loop.SubprocessOptions{Stdout: loop.PIPE})
		if err != nil {
			return err
		}
		cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		_, _, err = p.Communicate(cctx, nil)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Communicate past its deadline = %v", err)
		}
		if _, ok := p.ReturnCode(); ok {
			t.Fatal("the child ended with the Communicate")
		}
		p.Kill()
		code, _ := p.Wait(ctx)
		if code != -9 {
			t.Errorf("exit %d", code)
		}
		return nil
	})
}

// test_subprocess_concurrent_wait: several waiters all get the code.
func TestSubprocessConcurrentWait(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		p, err := loop.CreateSubprocessShell(ctx, "sleep 0.05; exit 4", nil)
		if err != nil {
			return err
		}
		l := loopOf(ctx)
		var ws []*loop.Task[int]
		for range 5 {
			ws = append(ws, loop.CreateTask(l, func(ctx context.Context) (int, error) { return p.Wait(ctx) }))
		}
		codes, err := loop.Gather[int](ctx, ws...).Await(ctx)
		if err != nil {
			return err
		}
		for _, c := range codes {
			if c != 4 {
				t.Errorf("codes %v; want all 4", codes)
				break
			}
		}
		// And one after the end returns at once.
		if c, err := p.Wait(ctx); c != 4 || err != nil {
			t.Errorf("late Wait = %d, %v", c, err)
		}
		return nil
	})
}

// test_close_dont_kill_finished, test_kill_issue43884: signalling a child
// that has exited does nothing; once closed it is ProcessLookupError.
func TestSubprocessCloseDontKillFinished(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		p, err := loop.CreateSubprocessExec(ctx, "true", nil, nil)
		if err != nil {
			return err
		}
		if _, err := p.Wait(ctx); err != nil {
			return err
		}
		if err := p.Kill(); err != nil && !errors.Is(err, loop.ErrProcessLookup) {
			t.Errorf("Kill after the exit = %v", err)
		}
		p.Transport().Close()
		if code, _ := p.ReturnCode(); code != 0 {
			t.Errorf("exit %d after Close; want 0", code)
		}
		if err := p.SendSignal(syscall.SIGTERM); !errors.Is(err, loop.ErrProcessLookup) {
			t.Errorf("SendSignal after Close = %v; want ErrProcessLookup", err)
		}
		return nil
	})
}

// test_create_subprocess_env_shell, test_create_subprocess_env_exec, and
// cwd.
func TestSubprocessEnvAndDir(t *testing.T) {
	dir := t.TempDir()
	runNet(t, func(ctx context.Context) error {
		opts := &loop.SubprocessOptions{Stdout: loop.PIPE, Env: []string{"FOO=bar", "PATH=/usr/bin:/bin"}, Dir: dir}
		p, err := loop.CreateSubprocessShell(ctx, `echo "$FOO"; pwd`, opts)
		if err != nil {
			return err
		}
		out, _, err := p.Communicate(ctx, nil)
		if err != nil {
			return err
		}
		if want := "bar\n" + dir + "\n"; string(out) != want {
			t.Errorf("got %q; want %q", out, want)
		}
		q, err := loop.CreateSubprocessExec(ctx, "env", nil, &loop.SubprocessOptions{Stdout: loop.PIPE, Env: []string{"A=1"}})
		if err == nil {
			out, _, _ = q.Communicate(ctx, nil)
			if string(out) != "A=1\n" {
				t.Errorf("env = %q", out)
			}
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err // env with no PATH may not be found: that is the PATH rule
		}
		return nil
	})
}

// ExtraFiles (pass_fds) reach the child as 3, 4, ...
func TestSubprocessPassFds(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	runNet(t, func(ctx context.Context) error {
		p, err := loop.CreateSubprocessShell(ctx, "echo via-fd3 >&3", &loop.SubprocessOptions{ExtraFiles: []*os.File{w}})
		if err != nil {
			return err
		}
		w.Close()
		_, err = p.Wait(ctx)
		return err
	})
	buf := make([]byte, 64)
	n, _ := r.Read(buf)
	if string(buf[:n]) != "via-fd3\n" {
		t.Errorf("fd 3 got %q", buf[:n])
	}
}

// subprocessEvents records a SubprocessProtocol's calls.
type subprocessEvents struct {
	loop.NopSubprocessProtocol
	events []string
	out    bytes.Buffer
	done   *loop.Future[struct{}]
}

func (p *subprocessEvents) ConnectionMade(t loop.SubprocessTransport) {
	p.events = append(p.events, "made")
}
func (p *subprocessEvents) PipeDataReceived(fd int, data []byte) {
	if fd == 1 {
		p.out.Write(data)
	}
}
func (p *subprocessEvents) PipeConnectionLost(fd int, err error) {
	p.events = append(p.events, fmt.Sprintf("pipe%d lost %v", fd, err))
}
func (p *subprocessEvents) ProcessExited() { p.events = append(p.events, "exited") }
func (p *subprocessEvents) ConnectionLost(err error) {
	p.events = append(p.events, fmt.Sprintf("lost %v", err))
	p.done.SetResult(struct{}{})
}

// test_subprocess_protocol_events, test_subprocess_consistent_callbacks:
// ConnectionMade first, the pipes' ends and the exit in between, and
// ConnectionLost last.
func TestSubprocessProtocolEvents(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		l := loopOf(ctx)
		proto := &subprocessEvents{done: loop.NewFuture[struct{}](l)}
		tr, _, err := l.SubprocessExec(ctx, func() loop.SubprocessProtocol { return proto }, "sh",
			[]string{"-c", "read x; echo \"$x\"; exec 1>&- 2>&-; sleep 0.05; exit 2"},
			&loop.SubprocessOptions{Stdin: loop.PIPE, Stdout: loop.PIPE, Stderr: loop.PIPE})
		if err != nil {
			return err
		}
		if len(proto.events) != 1 || proto.events[0] != "made" {
			t.Errorf("after SubprocessExec: %v; want ConnectionMade to have run", proto.events)
		}
		stdin := tr.PipeTransport(0).(loop.WriteTransport)
		if tr.PipeTransport(3) != nil || tr.PipeTransport(-1) != nil {
			t.Error("PipeTransport of a bad fd is not nil")
		}
		stdin.Write([]byte("hi\n"))
		stdin.Close()
		if _, err := proto.done.Await(ctx); err != nil {
			return err
		}
		ev := proto.events
		if ev[0] != "made" || ev[len(ev)-1] != "lost <nil>" || len(ev) != 6 {
			t.Fatalf("events %v", ev)
		}
		exited := -1
		for i, e := range ev {
			if e == "exited" {
				exited = i
			}
		}
		if exited < 0 || ev[exited-1] == "made" && exited != 1 {
			t.Errorf("events %v", ev)
		}
		if code, ok := tr.ReturnCode(); !ok || code != 2 {
			t.Errorf("ReturnCode = %d, %v", code, ok)
		}
		if proto.out.String() != "hi\n" {
			t.Errorf("stdout %q", proto.out.String())
		}
		tr.Close()
		return nil
	})
}

// A protocol's Close kills a running child (BaseSubprocessTransport.close)
// and the loop still reaps it.
func TestSubprocessTransportCloseKills(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		l := loopOf(ctx)
		proto := &subprocessEvents{done: loop.NewFuture[struct{}](l)}
		tr, _, err := l.SubprocessShell(ctx, func() loop.SubprocessProtocol { return proto }, "exec sleep 60", nil)
		if err != nil {
			return err
		}
		tr.Close()
		if _, err := proto.done.Await(ctx); err != nil {
			return err
		}
		if code, _ := tr.ReturnCode(); code != -9 {
			t.Errorf("exit %d; want -9", code)
		}
		if alive(tr.Pid()) {
			t.Error("not reaped")
		}
		return nil
	})
}

// A loop closed with a child still running kills and reaps it: no zombie,
// no descriptor left (runNet counts them).
func TestSubprocessLoopCloseReaps(t *testing.T) {
	var pid int
	runNet(t, func(ctx context.Context) error {
		p, err := loop.CreateSubprocessExec(ctx, "sleep", []string{"60"}, &loop.SubprocessOptions{Stdout: loop.PIPE})
		if err != nil {
			return err
		}
		pid = p.Pid()
		return nil
	})
	if alive(pid) {
		t.Errorf("pid %d still exists after the loop closed", pid)
	}
}

// test_cancel_make_subprocess_transport_exec: a start whose await is
// cancelled kills the child; nothing leaks.
func TestSubprocessCancelMakeTransport(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		l := loopOf(ctx)
		task := loop.CreateTask(l, func(ctx context.Context) (*loop.Process, error) {
			return loop.CreateSubprocessExec(ctx, "sleep", []string{"60"}, pipes())
		})
		l.CallSoon(func() { task.Cancel() })
		p, err := task.Await(ctx)
		if err == nil {
			// The start won the race (the cancellation came after it):
			// then the child is ours to end.
			p.Kill()
			_, err = p.Wait(ctx)
			return err
		}
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled start = %v", err)
		}
		// Let the kill and the reap happen before the loop closes.
		return loop.Sleep(ctx, 100*time.Millisecond)
	})
}

// A panicking protocol callback is reported, and the child still ends.
func TestSubprocessProtocolPanic(t *testing.T) {
	var reports []string
	l := loop.New()
	l.SetExceptionHandler(func(_ *loop.Loop, c loop.ExceptionContext) {
		reports = append(reports, c.Message)
	})
	defer l.Close()
	task := loop.CreateTask(l, func(ctx context.Context) (struct{}, error) {
		proto := &panicky{done: loop.NewFuture[struct{}](l)}
		_, _, err := l.SubprocessShell(ctx, func() loop.SubprocessProtocol { return proto }, "echo x", &loop.SubprocessOptions{Stdout: loop.PIPE})
		if err != nil {
			return struct{}{}, err
		}
		_, err = proto.done.Await(ctx)
		return struct{}{}, err
	})
	if err := l.RunUntilComplete(task); err != nil {
		t.Fatal(err)
	}
	if _, err := task.Result(); err != nil {
		t.Fatal(err)
	}
	if len(reports) != 1 || !strings.Contains(reports[0], "pipe_data_received") {
		t.Errorf("reports %q", reports)
	}
}

type panicky struct {
	loop.NopSubprocessProtocol
	done *loop.Future[struct{}]
}

func (p *panicky) PipeDataReceived(int, []byte) { panic("boom") }
func (p *panicky) ConnectionLost(error)         { p.done.SetResult(struct{}{}) }

// Stress: 40 children at once, some killed, some cancelled mid-wait,
// some fed and drained: every one ends with the right code, none is left.
var stressN = 40

func TestSubprocessStress(t *testing.T) {
	var pids []int
	runNet(t, func(ctx context.Context) error {
		l := loopOf(ctx)
		var tasks []*loop.Task[int]
		for i := range stressN {
			tasks = append(tasks, loop.CreateTask(l, func(ctx context.Context) (int, error) {
				cmd := fmt.Sprintf("head -c %d; exit %d", i*1000, i%7)
				if i%4 == 0 {
					// Killed: no grandchild may outlive the shell holding
					// its pipes (Wait waits for them, as asyncio 3.12).
					cmd = "exec cat"
				}
				p, err := loop.CreateSubprocessShell(ctx, cmd, pipes())
				if err != nil {
					return 0, err
				}
				pids = append(pids, p.Pid())
				switch i % 4 {
				case 0:
					p.Kill()
					code, err := p.Wait(ctx)
					if code != -9 {
						return 0, fmt.Errorf("killed child %d exit %d", i, code)
					}
					return code, err
				case 1:
					wctx, cancel := context.WithCancel(ctx)
					cancel()
					if _, err := p.Wait(wctx); err == nil {
						return 0, errors.New("a cancelled Wait returned nil")
					}
				}
				out, _, err := p.Communicate(ctx, make([]byte, i*1000+10))
				if err != nil {
					return 0, err
				}
				if len(out) != i*1000 {
					return 0, fmt.Errorf("child %d: %d bytes out", i, len(out))
				}
				code, _ := p.ReturnCode()
				if code != i%7 {
					return 0, fmt.Errorf("child %d: exit %d", i, code)
				}
				return code, nil
			}))
		}
		_, err := loop.Gather[int](ctx, tasks...).Await(ctx)
		return err
	})
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("pid %d left", pid)
		}
	}
}

// Randomized, against the model "stdout is what went into stdin": random
// write sizes (0 to 300 KiB), random Drains, random pauses of the stdout
// reader, through cat. The pipe transports' buffers and flow control
// must lose, duplicate or reorder nothing.
func TestSubprocessPipesRandomized(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 10))
	runNet(t, func(ctx context.Context) error {
		p, err := loop.CreateSubprocessExec(ctx, "cat", nil, &loop.SubprocessOptions{Stdin: loop.PIPE, Stdout: loop.PIPE, Limit: 1 << 12})
		if err != nil {
			return err
		}
		l := loopOf(ctx)
		var sent bytes.Buffer
		reader := loop.CreateTask(l, func(ctx context.Context) ([]byte, error) {
			var got []byte
			for {
				b, err := p.Stdout.Read(ctx, 1+rng.IntN(100<<10))
				if err != nil {
					return got, err
				}
				if len(b) == 0 {
					return got, nil
				}
				got = append(got, b...)
				if rng.IntN(8) == 0 {
					if err := loop.Sleep(ctx, time.Millisecond); err != nil {
						return got, err
					}
				}
			}
		})
		for range 200 {
			chunk := make([]byte, rng.IntN(300<<10))
			for i := range chunk {
				chunk[i] = byte(rng.IntN(256))
			}
			sent.Write(chunk)
			if _, err := p.Stdin.Write(chunk); err != nil {
				return err
			}
			if rng.IntN(3) == 0 {
				if err := p.Stdin.Drain(ctx); err != nil {
					return err
				}
			}
		}
		if err := p.Stdin.Drain(ctx); err != nil {
			return err
		}
		p.Stdin.Close()
		got, err := reader.Await(ctx)
		if err != nil {
			return err
		}
		if !bytes.Equal(got, sent.Bytes()) {
			t.Errorf("received %d bytes, sent %d (equal %v)", len(got), sent.Len(), bytes.Equal(got, sent.Bytes()))
		}
		code, err := p.Wait(ctx)
		if code != 0 || err != nil {
			t.Errorf("Wait = %d, %v", code, err)
		}
		return nil
	})
}

// close_fds=True: a descriptor this process holds without close-on-exec
// (a raw dup) does not reach the child.
func TestSubprocessCloseFds(t *testing.T) {
	fd, err := syscall.Dup(1)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	runNet(t, func(ctx context.Context) error {
		p, err := loop.CreateSubprocessExec(ctx, "ls", []string{"/proc/self/fd"}, &loop.SubprocessOptions{Stdout: loop.PIPE})
		if err != nil {
			return err
		}
		out, _, err := p.Communicate(ctx, nil)
		if err != nil {
			return err
		}
		for _, f := range strings.Fields(string(out)) {
			if f == fmt.Sprint(fd) {
				t.Errorf("the child inherited fd %d: %s", fd, out)
			}
		}
		return nil
	})
}

// A start whose ctx has already ended (a deadline passed) kills the
// child and waits for its end before it returns: no transport, pipe or
// process is left (runNet counts the descriptors).
func TestSubprocessStartCtxEnded(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		l := loopOf(ctx)
		var lost []string
		l.SetExceptionHandler(func(_ *loop.Loop, c loop.ExceptionContext) { lost = append(lost, c.Message) })
		dctx, cancel := context.WithCancel(ctx)
		cancel()
		proto := &subprocessEvents{done: loop.NewFuture[struct{}](l)}
		_, _, err := l.SubprocessExec(dctx, func() loop.SubprocessProtocol { return proto }, "sleep", []string{"60"}, pipes())
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("SubprocessExec with an ended ctx = %v", err)
		}
		if !proto.done.Done() {
			t.Fatal("SubprocessExec returned before ConnectionLost")
		}
		if got := proto.events; got[0] != "made" || got[len(got)-1] != "lost <nil>" {
			t.Errorf("events %v", got)
		}
		if len(lost) != 0 {
			t.Errorf("reports %q", lost)
		}
		return nil
	})
}

// PATH: a name is looked up in Env's PATH, and in os.defpath when Env has
// none (Python's os.get_exec_path(env)).
func TestSubprocessExecPathFromEnv(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		p, err := loop.CreateSubprocessExec(ctx, "true", nil, &loop.SubprocessOptions{Env: []string{"X=1"}})
		if err != nil {
			return fmt.Errorf("true in os.defpath: %w", err)
		}
		if _, err := p.Wait(ctx); err != nil {
			return err
		}
		_, err = loop.CreateSubprocessExec(ctx, "true", nil, &loop.SubprocessOptions{Env: []string{"PATH=" + t.TempDir()}})
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("true with an empty PATH: %v", err)
		}
		return nil
	})
}

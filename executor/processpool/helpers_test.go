//go:build linux

package processpool_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/executor/processpool"
	"golang.org/x/sys/unix"
)

var errOdd = errors.New("odd number")

func init() { executor.RegisterError(errOdd) }

type blob struct {
	Data []byte
	Note string
}

// withFunc holds a func where Register cannot see it (a func field fails
// at Register): gob refuses it when a call sends it.
type withFunc struct{ F any }

// Functions the tests run in workers: registered at package level, so that
// a worker (this test binary re-executed, see TestMain) has them too.
var (
	square   = executor.Register("test.square", func(x int) (int, error) { return x * x, nil })
	evenOnly = executor.Register("test.evenOnly", func(x int) (int, error) {
		if x%2 != 0 {
			return 0, fmt.Errorf("check %d: %w", x, errOdd)
		}
		return x, nil
	})
	boom       = executor.Register("test.boom", func(msg string) (int, error) { panic(msg) })
	pid        = executor.Register("test.pid", func(struct{}) (int, error) { return os.Getpid(), nil })
	echo       = executor.Register("test.echo", func(b blob) (blob, error) { return b, nil })
	badResult  = executor.Register("test.badResult", func(struct{}) (withFunc, error) { return withFunc{F: func() {}}, nil })
	takesFunc  = executor.Register("test.takesFunc", func(withFunc) (int, error) { return 1, nil })
	initCount  = 0
	countInit  = executor.Register("test.init", func(n int) (struct{}, error) { initCount = n; return struct{}{}, nil })
	readInit   = executor.Register("test.readInit", func(struct{}) (int, error) { return initCount, nil })
	failInit   = executor.Register("test.failInit", func(struct{}) (struct{}, error) { return struct{}{}, errors.New("no config") })
	exitWorker = executor.Register("test.exit", func(code int) (int, error) { os.Exit(code); return 0, nil })
	// gated runs until the test releases it (see gate).
	gated = executor.Register("test.gated", func(g gateArg) (int, error) { return g.wait() })
)

func newPool(t *testing.T, opts processpool.Options) *processpool.Pool {
	t.Helper()
	p, err := processpool.New(opts)
	if err != nil {
		t.Fatalf("processpool.New() = %v", err)
	}
	t.Cleanup(func() { p.Shutdown(true, true) })
	return p
}

// res waits for a submitted call; a Submit error is returned as the result.
func res[R any](f *executor.Future[R], err error) (R, error) {
	if err != nil {
		var zero R
		return zero, err
	}
	return f.Result(context.Background())
}

// mustSubmit submits c and fails the test if the pool refuses it.
func mustSubmit[R any](t *testing.T, p executor.Executor, c executor.Call[R]) *executor.Future[R] {
	t.Helper()
	f, err := executor.Submit(p, c)
	if err != nil {
		t.Fatalf("Submit(%s) = %v", c.Name(), err)
	}
	return f
}

// A gate holds calls in the workers until the test releases them, with no
// clock involved: two FIFOs in a temporary directory, which the test holds
// open read-write (so that opening them never blocks). A gated call writes
// a byte to "started" when it runs, then reads a byte from "release"; the
// test reads one byte per call it waits for, and writes one byte per call
// it releases, or closes "release" to let them all return.
type gate struct {
	t                 *testing.T
	arg               gateArg
	started, released *os.File
}

// gateArg is what a gated call receives: the FIFOs' paths.
type gateArg struct {
	Started, Release string
}

// newGate makes a gate; it is opened (every gated call released) when the
// test ends, before the pool's Shutdown, which would otherwise wait for
// them.
func newGate(t *testing.T) *gate {
	t.Helper()
	dir := t.TempDir()
	g := &gate{t: t, arg: gateArg{Started: filepath.Join(dir, "started"), Release: filepath.Join(dir, "release")}}
	for _, path := range []string{g.arg.Started, g.arg.Release} {
		if err := syscall.Mkfifo(path, 0o600); err != nil {
			t.Fatalf("mkfifo: %v", err)
		}
	}
	var err error
	if g.started, err = os.OpenFile(g.arg.Started, os.O_RDWR, 0); err != nil {
		t.Fatal(err)
	}
	if g.released, err = os.OpenFile(g.arg.Release, os.O_RDWR, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.close)
	return g
}

// close opens the gate and releases its files.
func (g *gate) close() {
	g.open()
	g.started.Close()
}

// call is a gated call.
func (g *gate) call() executor.Call[int] { return gated.Bind(g.arg) }

// waitStarted waits until n gated calls have started in their workers. A
// minute is a bound for a broken pool, not a timing the test relies on.
func (g *gate) waitStarted(n int) {
	g.t.Helper()
	if err := g.started.SetReadDeadline(time.Now().Add(time.Minute)); err != nil {
		g.t.Fatal(err)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(g.started, buf); err != nil {
		g.t.Fatalf("waiting for %d gated calls to start: %v", n, err)
	}
}

// release lets n gated calls return. Safe from any goroutine.
func (g *gate) release(n int) {
	g.t.Helper()
	if _, err := g.released.Write(make([]byte, n)); err != nil {
		g.t.Errorf("releasing %d gated calls: %v", n, err)
	}
}

// open lets every gated call return, now and from now on.
func (g *gate) open() { g.released.Close() }

// wait is the gated call, in the worker: it reports that it started and
// waits for a byte, or EOF, on the release FIFO. It returns its pid. Both
// FIFOs are opened non-blocking, so that a call that starts after the test
// closed them does not wait for a peer that is gone.
func (a gateArg) wait() (int, error) {
	if fd, err := syscall.Open(a.Started, syscall.O_WRONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0); err == nil {
		_, _ = syscall.Write(fd, []byte{1})
		syscall.Close(fd)
	}
	fd, err := syscall.Open(a.Release, syscall.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer syscall.Close(fd)
	if err := syscall.SetNonblock(fd, false); err != nil {
		return 0, err
	}
	var b [1]byte
	for {
		_, err := syscall.Read(fd, b[:])
		if err != syscall.EINTR {
			break
		}
	}
	return os.Getpid(), nil
}

// pidfds opens a pidfd for each pid, while the processes are known to be
// unreaped (a pool's live workers), so that the test can watch them without
// naming a pid that may be reused.
func pidfds(t *testing.T, pids []int) []int {
	t.Helper()
	var fds []int
	for _, pid := range pids {
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			t.Fatalf("pidfd_open(%d): %v", pid, err)
		}
		t.Cleanup(func() { unix.Close(fd) })
		fds = append(fds, fd)
	}
	return fds
}

package executor_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/internal/child"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

var errOdd = errors.New("odd number")

func init() { executor.RegisterError(errOdd) }

type blob struct {
	Data []byte
	Note string
}

type withFunc struct{ F func() }

var (
	square   = executor.Register("test.square", func(x int) (int, error) { return x * x, nil })
	evenOnly = executor.Register("test.evenOnly", func(x int) (int, error) {
		if x%2 != 0 {
			return 0, fmt.Errorf("check %d: %w", x, errOdd)
		}
		return x, nil
	})
	boom = executor.Register("test.boom", func(msg string) (int, error) { panic(msg) })
	pid  = executor.Register("test.pid", func(struct{}) (int, error) { return os.Getpid(), nil })
	// block sleeps until its parent kills it or the duration passes.
	block = executor.Register("test.block", func(d time.Duration) (int, error) {
		time.Sleep(d)
		return os.Getpid(), nil
	})
	echo       = executor.Register("test.echo", func(b blob) (blob, error) { return b, nil })
	badResult  = executor.Register("test.badResult", func(struct{}) (withFunc, error) { return withFunc{F: func() {}}, nil })
	takesFunc  = executor.Register("test.takesFunc", func(withFunc) (int, error) { return 1, nil })
	initCount  = 0
	countInit  = executor.Register("test.init", func(n int) (struct{}, error) { initCount = n; return struct{}{}, nil })
	readInit   = executor.Register("test.readInit", func(struct{}) (int, error) { return initCount, nil })
	failInit   = executor.Register("test.failInit", func(struct{}) (struct{}, error) { return struct{}{}, errors.New("no config") })
	exitWorker = executor.Register("test.exit", func(code int) (int, error) { os.Exit(code); return 0, nil })
)

func newPool(t *testing.T, opts executor.ProcessPoolOptions) *executor.ProcessPool {
	t.Helper()
	p, err := executor.NewProcessPool(opts)
	if err != nil {
		t.Fatalf("NewProcessPool() = %v", err)
	}
	t.Cleanup(func() { p.Shutdown(true, true) })
	return p
}

// waitRunning waits until each future has been handed to a worker (its
// state changes when the request is written, with no clock involved; the
// poll only spares a channel in the API).
func waitRunning[R any](t *testing.T, fs ...*executor.Future[R]) {
	t.Helper()
	for _, f := range fs {
		for !f.Running() && !f.Done() {
			runtime.Gosched()
		}
	}
}

// res waits for a submitted call; a Submit error is returned as the result.
func res[R any](f *executor.Future[R], err error) (R, error) {
	if err != nil {
		var zero R
		return zero, err
	}
	return f.Result(context.Background())
}

func TestProcessPoolRoundTrip(t *testing.T) {
	p := newPool(t, executor.ProcessPoolOptions{MaxWorkers: 2})
	var fs []*executor.Future[int]
	for i := range 10 {
		f, err := executor.Submit(p, square.Bind(i))
		if err != nil {
			t.Fatal(err)
		}
		fs = append(fs, f)
	}
	var got []int
	for _, f := range fs {
		v, err := f.Result(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, v)
	}
	if diff := cmp.Diff([]int{0, 1, 4, 9, 16, 25, 36, 49, 64, 81}, got); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
	for _, pid := range p.Pids() {
		if pid == os.Getpid() {
			t.Errorf("work ran in the parent")
		}
	}
}

func TestProcessPoolMap(t *testing.T) {
	p := newPool(t, executor.ProcessPoolOptions{MaxWorkers: 2})
	var got []int
	for v, err := range executor.Map(context.Background(), p, square.Bind, []int{3, 1, 2}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, v)
	}
	if diff := cmp.Diff([]int{9, 1, 4}, got); diff != "" {
		t.Errorf("Map() (-want +got):\n%s", diff)
	}
}

// The error a child returns arrives with its type, message and stack, and a
// registered sentinel still matches with errors.Is.
func TestProcessPoolChildError(t *testing.T) {
	p := newPool(t, executor.ProcessPoolOptions{MaxWorkers: 1})
	_, err := res(executor.Submit(p, evenOnly.Bind(3)))
	var re *executor.RemoteError
	if !errors.As(err, &re) {
		t.Fatalf("Result() = %v; want a *RemoteError", err)
	}
	if re.Type != "*fmt.wrapError" || re.Message != "check 3: odd number" || re.Panic {
		t.Errorf("RemoteError = %+v", re)
	}
	if !strings.Contains(re.Stack, "goroutine") {
		t.Errorf("Stack = %q; want the child's stack", re.Stack)
	}
	if !errors.Is(err, errOdd) {
		t.Errorf("errors.Is(%v, errOdd) = false", err)
	}
}

// A panic in the child is an error with the child's message; the pool
// still works afterwards.
func TestProcessPoolChildPanic(t *testing.T) {
	p := newPool(t, executor.ProcessPoolOptions{MaxWorkers: 1})
	_, err := res(executor.Submit(p, boom.Bind("kaboom")))
	var re *executor.RemoteError
	if !errors.As(err, &re) || !re.Panic || re.Message != "kaboom" || re.Type != "string" {
		t.Fatalf("Result() = %#v; want a remote panic \"kaboom\"", err)
	}
	if !strings.Contains(re.Stack, "panic") {
		t.Errorf("Stack = %q; want the panicking stack", re.Stack)
	}
	if v, err := res(executor.Submit(p, square.Bind(7))); v != 49 || err != nil {
		t.Errorf("after a panic: Result() = %v, %v; want 49, nil", v, err)
	}
}

// lateRegistered registers a function after Init ran (at its first call,
// inside a test; once, so that -count=N works).
var lateRegistered = sync.OnceValue(func() *executor.Func[blob, int] {
	return executor.Register("test.lateRegistered", func(x blob) (int, error) { return len(x.Data), nil })
})

// A function registered after Init ran (here: inside the test) exists in
// the parent only; the child reports it, and the stream stays usable.
func TestProcessPoolUnregistered(t *testing.T) {
	late := lateRegistered()
	p := newPool(t, executor.ProcessPoolOptions{MaxWorkers: 1})
	_, err := res(executor.Submit(p, late.Bind(blob{Data: []byte("abc")})))
	if !errors.Is(err, executor.ErrNotRegistered) {
		t.Fatalf("Result() = %v; want ErrNotRegistered", err)
	}
	// blob's type was in the lost frame: the next use of it must still work.
	v, err := res(executor.Submit(p, echo.Bind(blob{Data: []byte("x"), Note: "n"})))
	if err != nil || v.Note != "n" {
		t.Errorf("after an unknown function: Result() = %v, %v", v, err)
	}
}

// An argument that cannot be encoded fails its future before anything is
// sent, and the worker goes on.
func TestProcessPoolUnencodableArgument(t *testing.T) {
	p := newPool(t, executor.ProcessPoolOptions{MaxWorkers: 1})
	_, err := res(executor.Submit(p, takesFunc.Bind(withFunc{F: func() {}})))
	if err == nil || !strings.Contains(err.Error(), "cannot send the argument") {
		t.Fatalf("Result() = %v; want an encoding error", err)
	}
	_, err = res(executor.Submit(p, badResult.Bind(struct{}{})))
	if err == nil || !strings.Contains(err.Error(), "cannot encode the result") {
		t.Errorf("Result() = %v; want a result encoding error", err)
	}
	if v, err := res(executor.Submit(p, square.Bind(5))); v != 25 || err != nil {
		t.Errorf("afterwards: Result() = %v, %v; want 25, nil", v, err)
	}
}

func TestProcessPoolLargeMessage(t *testing.T) {
	p := newPool(t, executor.ProcessPoolOptions{MaxWorkers: 1})
	data := make([]byte, 2<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	v, err := res(executor.Submit(p, echo.Bind(blob{Data: data})))
	if err != nil || len(v.Data) != len(data) || v.Data[12345] != data[12345] {
		t.Fatalf("echo of 2 MiB: len %d, err %v", len(v.Data), err)
	}
}

// Mirrors Python's test_crash_during_func_exec_on_worker: a worker killed
// mid-task breaks the pool; every pending future fails, nothing hangs.
func TestProcessPoolWorkerKilled(t *testing.T) {
	p := newPool(t, executor.ProcessPoolOptions{MaxWorkers: 2})
	var running []*executor.Future[int]
	for range 2 {
		f, err := executor.Submit(p, block.Bind(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		running = append(running, f)
	}
	queued := make([]*executor.Future[int], 4)
	for i := range queued {
		var err error
		if queued[i], err = executor.Submit(p, block.Bind(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	waitRunning(t, running...)
	victim := p.Pids()[0]
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for _, f := range append(queued, running...) {
		if _, err := f.Result(context.Background()); !errors.Is(err, executor.ErrBrokenProcessPool) {
			t.Errorf("pending future: Result() = %v; want ErrBrokenProcessPool", err)
		}
	}
	if _, err := executor.Submit(p, square.Bind(1)); !errors.Is(err, executor.ErrBrokenProcessPool) {
		t.Errorf("Submit() on a broken pool = %v; want ErrBrokenProcessPool", err)
	}
}

// A worker that exits on its own (os._exit in Python) breaks the pool too.
func TestProcessPoolWorkerExits(t *testing.T) {
	p := newPool(t, executor.ProcessPoolOptions{MaxWorkers: 1})
	if _, err := res(executor.Submit(p, exitWorker.Bind(7))); !errors.Is(err, executor.ErrBrokenProcessPool) {
		t.Fatalf("Result() = %v; want ErrBrokenProcessPool", err)
	}
}

// Mirrors test_max_tasks_per_child: a worker is replaced after N calls.
func TestProcessPoolMaxTasksPerChild(t *testing.T) {
	p := newPool(t, executor.ProcessPoolOptions{MaxWorkers: 1, MaxTasksPerChild: 2})
	var pids []int
	for range 6 {
		v, err := res(executor.Submit(p, pid.Bind(struct{}{})))
		if err != nil {
			t.Fatal(err)
		}
		pids = append(pids, v)
	}
	for i := 0; i < 6; i += 2 {
		if pids[i] != pids[i+1] {
			t.Errorf("pids %v: calls %d and %d ran in different workers", pids, i, i+1)
		}
		if i > 0 && pids[i] == pids[i-1] {
			t.Errorf("pids %v: worker not replaced after 2 calls", pids)
		}
	}
}

func TestProcessPoolInitializer(t *testing.T) {
	p := newPool(t, executor.ProcessPoolOptions{MaxWorkers: 1, Initializer: countInit.Bind(42)})
	if v, err := res(executor.Submit(p, readInit.Bind(struct{}{}))); v != 42 || err != nil {
		t.Errorf("Result() = %v, %v; want 42 set by the initializer", v, err)
	}
	if initCount != 0 {
		t.Errorf("the initializer ran in the parent")
	}
}

func TestProcessPoolInitializerFails(t *testing.T) {
	p := newPool(t, executor.ProcessPoolOptions{MaxWorkers: 1, Initializer: failInit.Bind(struct{}{})})
	if _, err := res(executor.Submit(p, square.Bind(2))); !errors.Is(err, executor.ErrBrokenProcessPool) {
		t.Errorf("Result() = %v; want ErrBrokenProcessPool", err)
	}
}

func TestProcessPoolBadInput(t *testing.T) {
	if _, err := executor.NewProcessPool(executor.ProcessPoolOptions{MaxWorkers: -1}); err == nil {
		t.Error("MaxWorkers -1: no error")
	}
	if _, err := executor.NewProcessPool(executor.ProcessPoolOptions{MaxTasksPerChild: -1}); err == nil {
		t.Error("MaxTasksPerChild -1: no error")
	}
	p := newPool(t, executor.ProcessPoolOptions{MaxWorkers: 1})
	if _, err := executor.SubmitFunc(p, func() (int, error) { return 1, nil }); !errors.Is(err, executor.ErrNotRegisteredCall) {
		t.Errorf("SubmitFunc(closure) = %v; want ErrNotRegisteredCall", err)
	}
	p.Shutdown(true, false)
	if _, err := executor.Submit(p, square.Bind(1)); !errors.Is(err, executor.ErrShutdown) {
		t.Errorf("Submit() after Shutdown = %v; want ErrShutdown", err)
	}
}

// Shutdown with cancelFutures cancels what has not started; the running
// call finishes; no worker process is left, not even a zombie.
func TestProcessPoolShutdown(t *testing.T) {
	p := newPool(t, executor.ProcessPoolOptions{MaxWorkers: 1})
	running, _ := executor.Submit(p, block.Bind(50*time.Millisecond))
	queued, _ := executor.Submit(p, square.Bind(3))
	waitRunning(t, running)
	pids := p.Pids()
	p.Shutdown(true, true)
	if !queued.Cancelled() {
		t.Errorf("queued future not cancelled")
	}
	if _, err := running.Result(context.Background()); err != nil {
		t.Errorf("running future: %v", err)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("worker %d still exists after Shutdown (kill 0: %v)", pid, err)
		}
	}
}

// Cancel succeeds while a call waits in the queue, never once it runs.
func TestProcessPoolCancel(t *testing.T) {
	p := newPool(t, executor.ProcessPoolOptions{MaxWorkers: 1})
	running, _ := executor.Submit(p, block.Bind(20*time.Millisecond))
	queued, _ := executor.Submit(p, square.Bind(3))
	if !queued.Cancel() {
		t.Errorf("Cancel() of a queued call = false")
	}
	if _, err := queued.Result(context.Background()); !errors.Is(err, executor.ErrCancelled) {
		t.Errorf("Result() = %v; want ErrCancelled", err)
	}
	waitRunning(t, running)
	if running.Cancel() {
		t.Errorf("Cancel() of a running call = true")
	}
	if _, err := running.Result(context.Background()); err != nil {
		t.Errorf("running call: %v", err)
	}
}

const parentRole = "executor-test-parent"

func init() {
	child.RegisterRole(parentRole, func(ctrl *os.File) int {
		p, err := executor.NewProcessPool(executor.ProcessPoolOptions{MaxWorkers: 2})
		if err != nil {
			return 1
		}
		a, _ := executor.Submit(p, block.Bind(time.Hour))
		b, _ := executor.Submit(p, block.Bind(time.Hour))
		_ = a
		_ = b
		for len(p.Pids()) < 2 {
			time.Sleep(time.Millisecond)
		}
		fmt.Fprintln(ctrl, strings.Trim(fmt.Sprint(p.Pids()), "[]"))
		select {}
	})
}

// A pool's workers die within a second of their parent's SIGKILL.
func TestProcessPoolParentKilled(t *testing.T) {
	sp := child.NewSpawner()
	defer sp.Close()
	parent, err := sp.Start(parentRole)
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(parent.Ctrl).ReadString('\n')
	if err != nil {
		t.Fatalf("reading worker pids: %v", err)
	}
	var pidfds []int
	for _, f := range strings.Fields(line) {
		pid, _ := strconv.Atoi(f)
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			t.Fatalf("pidfd_open(%d): %v", pid, err)
		}
		defer unix.Close(fd)
		pidfds = append(pidfds, fd)
	}
	if len(pidfds) != 2 {
		t.Fatalf("worker pids %q", line)
	}
	if err := parent.Cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = parent.Cmd.Wait()
	parent.Ctrl.Close()
	deadline := time.Now().Add(time.Second)
	for _, fd := range pidfds {
		ms := int(time.Until(deadline).Milliseconds())
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, max(ms, 0))
		if err != nil || n == 0 {
			t.Errorf("a worker outlived its killed parent by a second (poll: %d, %v)", n, err)
		}
	}
}

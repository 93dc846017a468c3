//go:build linux

package processpool_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/internal/exectest"

	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/executor/processpool"
	"github.com/asyncgo/asyncgo/internal/child"
	"github.com/google/go-cmp/cmp"
)

func TestProcessPoolRoundTrip(t *testing.T) {
	p := newPool(t, processpool.Options{MaxWorkers: 2})
	var fs []*executor.Future[int]
	for i := range 10 {
		fs = append(fs, mustSubmit(t, p, square.Bind(i)))
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
	p := newPool(t, processpool.Options{MaxWorkers: 2})
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
	p := newPool(t, processpool.Options{MaxWorkers: 1})
	_, err := res(executor.Submit(p, evenOnly.Bind(3)))
	var re *executor.RemoteError
	if !errors.As(err, &re) {
		t.Fatalf("Result() = %v; want a *RemoteError", err)
	}
	if re.Type != "*fmt.wrapError" || re.Message != "check 3: odd number" || re.Panic {
		t.Errorf("RemoteError = %+v", re)
	}
	// Issue 8, item 11: the user's text, not the wrapper's Go type.
	if got := err.Error(); got != "check 3: odd number" {
		t.Errorf("Error() = %q; want the child's error text %q", got, "check 3: odd number")
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
	p := newPool(t, processpool.Options{MaxWorkers: 1})
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
	p := newPool(t, processpool.Options{MaxWorkers: 1})
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
	p := newPool(t, processpool.Options{MaxWorkers: 1})
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
	p := newPool(t, processpool.Options{MaxWorkers: 1})
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
	p := newPool(t, processpool.Options{MaxWorkers: 2})
	g := newGate(t)
	var running []*executor.Future[int]
	for range 2 {
		running = append(running, mustSubmit(t, p, g.call()))
	}
	queued := make([]*executor.Future[int], 4)
	for i := range queued {
		queued[i] = mustSubmit(t, p, g.call())
	}
	g.waitStarted(2)
	victim := p.Pids()[0]
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil { // the worker is unreaped: its pid is its own
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
	p := newPool(t, processpool.Options{MaxWorkers: 1})
	if _, err := res(executor.Submit(p, exitWorker.Bind(7))); !errors.Is(err, executor.ErrBrokenProcessPool) {
		t.Fatalf("Result() = %v; want ErrBrokenProcessPool", err)
	}
}

// Mirrors test_max_tasks_per_child: a worker is replaced after N calls.
func TestProcessPoolMaxTasksPerChild(t *testing.T) {
	p := newPool(t, processpool.Options{MaxWorkers: 1, MaxTasksPerChild: 2})
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
	p := newPool(t, processpool.Options{MaxWorkers: 1, Initializer: countInit.Bind(42)})
	if v, err := res(executor.Submit(p, readInit.Bind(struct{}{}))); v != 42 || err != nil {
		t.Errorf("Result() = %v, %v; want 42 set by the initializer", v, err)
	}
	if initCount != 0 {
		t.Errorf("the initializer ran in the parent")
	}
}

func TestProcessPoolInitializerFails(t *testing.T) {
	p := newPool(t, processpool.Options{MaxWorkers: 1, Initializer: failInit.Bind(struct{}{})})
	if _, err := res(executor.Submit(p, square.Bind(2))); !errors.Is(err, executor.ErrBrokenProcessPool) {
		t.Errorf("Result() = %v; want ErrBrokenProcessPool", err)
	}
}

func TestProcessPoolBadInput(t *testing.T) {
	if _, err := processpool.New(processpool.Options{MaxWorkers: -1}); err == nil {
		t.Error("MaxWorkers -1: no error")
	}
	if _, err := processpool.New(processpool.Options{MaxTasksPerChild: -1}); err == nil {
		t.Error("MaxTasksPerChild -1: no error")
	}
	if _, err := processpool.New(processpool.Options{Initializer: executor.Local(func() (struct{}, error) { return struct{}{}, nil })}); !errors.Is(err, executor.ErrNotRegisteredCall) {
		t.Errorf("a Local Initializer: New() = %v; want ErrNotRegisteredCall", err)
	}
	p := newPool(t, processpool.Options{MaxWorkers: 1})
	if _, err := executor.SubmitFunc(p, func() (int, error) { return 1, nil }); !errors.Is(err, executor.ErrNotRegisteredCall) {
		t.Errorf("SubmitFunc(closure) = %v; want ErrNotRegisteredCall", err)
	}
	p.Shutdown(true, false)
	if _, err := executor.Submit(p, square.Bind(1)); !errors.Is(err, executor.ErrShutdown) {
		t.Errorf("Submit() after Shutdown = %v; want ErrShutdown", err)
	}
}

// Mirrors test_cancel_futures (test_shutdown.py): Shutdown with
// cancelFutures cancels what has not started while the running call goes
// on; the running call finishes; no worker process is left, not even a
// zombie.
func TestProcessPoolShutdown(t *testing.T) {
	p := newPool(t, processpool.Options{MaxWorkers: 1})
	g := newGate(t)
	running := mustSubmit(t, p, g.call())
	queued := mustSubmit(t, p, square.Bind(3))
	g.waitStarted(1)
	fds := pidfds(t, p.Pids())
	go func() {
		<-queued.DoneChan() // cancelled by Shutdown, while running is held
		g.release(1)
	}()
	p.Shutdown(true, true)
	if !queued.Cancelled() {
		t.Errorf("queued future not cancelled")
	}
	if _, err := running.Result(context.Background()); err != nil {
		t.Errorf("running future: %v", err)
	}
	for i, fd := range fds {
		if !exectest.Exited(fd, 0) {
			t.Errorf("worker %d still exists after Shutdown", i)
		}
	}
}

// Cancel succeeds while a call waits in the queue, never once it runs.
func TestProcessPoolCancel(t *testing.T) {
	p := newPool(t, processpool.Options{MaxWorkers: 1})
	g := newGate(t)
	running := mustSubmit(t, p, g.call())
	queued := mustSubmit(t, p, square.Bind(3))
	g.waitStarted(1)
	if !queued.Cancel() {
		t.Errorf("Cancel() of a queued call = false")
	}
	if _, err := queued.Result(context.Background()); !errors.Is(err, executor.ErrCancelled) {
		t.Errorf("Result() = %v; want ErrCancelled", err)
	}
	if running.Cancel() {
		t.Errorf("Cancel() of a running call = true")
	}
	g.release(1)
	if _, err := running.Result(context.Background()); err != nil {
		t.Errorf("running call: %v", err)
	}
}

const parentRole = "processpool-test-parent"

func init() {
	// A pool in a child of the test: the test sends it a gate's paths, it
	// starts two gated calls and answers with its workers' pids.
	child.RegisterRole(parentRole, func(ctrl *os.File) int {
		rd := bufio.NewReader(ctrl)
		line, err := rd.ReadString('\n')
		if err != nil {
			return 1
		}
		started, release, _ := strings.Cut(strings.TrimSpace(line), " ")
		p, err := processpool.New(processpool.Options{MaxWorkers: 2})
		if err != nil {
			return 1
		}
		arg := gateArg{Started: started, Release: release}
		for range 2 {
			if _, err := executor.Submit(p, gated.Bind(arg)); err != nil {
				return 1
			}
		}
		fmt.Fprintln(ctrl, "submitted")
		// The test waits for both calls to start, then asks for the pids.
		if _, err := rd.ReadString('\n'); err != nil {
			return 1
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
	g := newGate(t)
	rd := bufio.NewReader(parent.Ctrl)
	fmt.Fprintf(parent.Ctrl, "%s %s\n", g.arg.Started, g.arg.Release)
	if _, err := rd.ReadString('\n'); err != nil {
		t.Fatalf("reading from the parent: %v", err)
	}
	g.waitStarted(2)
	fmt.Fprintln(parent.Ctrl, "pids?")
	line, err := rd.ReadString('\n')
	if err != nil {
		t.Fatalf("reading worker pids: %v", err)
	}
	var pids []int
	for _, f := range strings.Fields(line) {
		pid, _ := strconv.Atoi(f)
		pids = append(pids, pid)
	}
	if len(pids) != 2 {
		t.Fatalf("worker pids %q", line)
	}
	fds := pidfds(t, pids) // the workers are their parent's, unreaped: their pids are theirs
	if err := parent.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, _ = parent.Wait()
	parent.Ctrl.Close()
	deadline := time.Now().Add(time.Second)
	for _, fd := range fds {
		if !exectest.Exited(fd, max(time.Until(deadline), 0)) {
			t.Errorf("a worker outlived its killed parent by a second")
		}
	}
}

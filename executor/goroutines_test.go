package executor_test

import (
	"context"
	"errors"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/internal/exectest"

	"github.com/asyncgo/asyncgo/executor"
	"github.com/sourcegraph/conc/panics"
)

// Item 12: a call that calls runtime.Goexit (t.FailNow, for one) fails
// its future as a panic does; the pool replaces the goroutine it lost and
// goes on, and Shutdown returns.
func TestThreadPoolGoexit(t *testing.T) {
	p := newThreadPool(t, executor.ThreadPoolOptions{MaxWorkers: 1})
	var err error
	exectest.Within(t, time.Minute, "Result of a call that calls runtime.Goexit", func() {
		_, err = res(executor.SubmitFunc(p, func() (int, error) { runtime.Goexit(); return 0, nil }))
	})
	var pe *executor.PanicError
	if !errors.As(err, &pe) || pe.Value != executor.ErrGoexit || !errors.Is(err, executor.ErrGoexit) {
		t.Fatalf("Result() = %v; want a *PanicError of ErrGoexit", err)
	}
	if v, err := res(executor.SubmitFunc(p, func() (int, error) { return 2, nil })); v != 2 || err != nil {
		t.Errorf("after Goexit: Result() = %d, %v; want 2, nil", v, err)
	}
	// Queued calls behind a Goexit run too.
	var fs []*executor.Future[int]
	for i := range 3 {
		f, _ := executor.SubmitFunc(p, func() (int, error) {
			if i == 0 {
				runtime.Goexit()
			}
			return i, nil
		})
		fs = append(fs, f)
	}
	for i, f := range fs[1:] {
		if v, err := f.Result(context.Background()); v != i+1 || err != nil {
			t.Errorf("queued call %d = %d, %v", i+1, v, err)
		}
	}
	exectest.Within(t, time.Minute, "Shutdown", func() { p.Shutdown(true, false) })
	// A registered function called in this process turns Goexit into the
	// same error: Func.Call is callSafely too, but Goexit still ends the
	// calling goroutine, so this runs on a goroutine of its own.
	if _, err := res(executor.Submit(newThreadPool(t, executor.ThreadPoolOptions{}), goexitFunc.Bind(0))); !errors.Is(err, executor.ErrGoexit) {
		t.Errorf("registered function calling Goexit on a ThreadPool: %v; want ErrGoexit", err)
	}
}

var goexitFunc = executor.Register("executor_test.goexit", func(int) (int, error) { runtime.Goexit(); return 0, nil })

// Item 10: Shutdown(wait) from a call running on the pool, or from a done
// callback (which runs on the worker goroutine that completed the future),
// waits for the other workers and returns (Python: "cannot join current
// thread"); queued calls still run.
func TestThreadPoolShutdownFromItsOwnGoroutine(t *testing.T) {
	t.Run("from a call", func(t *testing.T) {
		p := newThreadPool(t, executor.ThreadPoolOptions{MaxWorkers: 2})
		release, submitted := make(chan struct{}), make(chan struct{})
		other, _ := executor.SubmitFunc(p, func() (int, error) { <-release; return 1, nil })
		var shut *executor.Future[bool]
		shut, _ = executor.SubmitFunc(p, func() (bool, error) {
			<-submitted // queued is in before the pool shuts down
			close(release)
			p.Shutdown(true, false)
			return other.Done(), nil
		})
		queued, err := executor.SubmitFunc(p, func() (int, error) { return 3, nil })
		close(submitted)
		if err != nil {
			t.Fatal(err)
		}
		exectest.Within(t, time.Minute, "Shutdown(wait) from a call", func() {
			if otherDone, err := shut.Result(context.Background()); !otherDone || err != nil {
				t.Errorf("Shutdown returned with the other worker's call done = %v (%v); want true", otherDone, err)
			}
			if v, err := queued.Result(context.Background()); v != 3 || err != nil {
				t.Errorf("queued call = %d, %v; want 3, nil", v, err)
			}
		})
		exectest.Within(t, time.Minute, "Shutdown(wait) afterwards", func() { p.Shutdown(true, false) })
	})
	t.Run("from two calls at once", func(t *testing.T) {
		// Each waits for everything but the goroutines that wait too.
		p := newThreadPool(t, executor.ThreadPoolOptions{MaxWorkers: 2})
		start := make(chan struct{})
		var fs []*executor.Future[int]
		for i := range 2 {
			f, _ := executor.SubmitFunc(p, func() (int, error) {
				<-start
				p.Shutdown(true, false)
				return i, nil
			})
			fs = append(fs, f)
		}
		close(start)
		exectest.Within(t, time.Minute, "two Shutdown(wait) calls from two calls", func() {
			for _, f := range fs {
				_, _ = f.Result(context.Background())
			}
		})
	})
	t.Run("from a done callback", func(t *testing.T) {
		p := newThreadPool(t, executor.ThreadPoolOptions{MaxWorkers: 1})
		f, _ := executor.SubmitFunc(p, func() (int, error) { return 1, nil })
		returned := make(chan struct{})
		f.AddDoneCallback(func(*executor.Future[int]) {
			p.Shutdown(true, false)
			close(returned)
		})
		exectest.Within(t, time.Minute, "Shutdown(wait) from a done callback", func() { <-returned })
		exectest.Within(t, time.Minute, "Shutdown(wait) afterwards", func() { p.Shutdown(true, false) })
	})
}

// badJob is a Job with a bug: its Start panics, in the pool's goroutine.
type badJob struct{ f *executor.Future[int] }

func (j *badJob) Name() string                  { return "" }
func (j *badJob) Arg() any                      { return nil }
func (j *badJob) Start() bool                   { panic("start bug") }
func (j *badJob) Cancel() bool                  { return j.f.Cancel() }
func (j *badJob) Fail(err error)                { _ = j.f.SetErr(err) }
func (j *badJob) Decode(executor.Decoder) error { return nil }
func (j *badJob) Succeed()                      {}
func (j *badJob) RunLocal()                     {}
func (j *badJob) WaitInNetpoller()              {}

// Item 22: a panic in a ThreadPool's own goroutine (not in a call: that is
// the call's error) breaks the pool instead of killing the process, and
// Shutdown(wait) re-panics it with its stack.
func TestThreadPoolGoroutinePanicSurfacesInShutdown(t *testing.T) {
	p, err := executor.NewThreadPool(executor.ThreadPoolOptions{MaxWorkers: 1})
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	first, _ := executor.SubmitFunc(p, func() (int, error) { <-release; return 1, nil })
	if err := p.SubmitJob(&badJob{f: executor.NewFuture[int]()}); err != nil {
		t.Fatal(err)
	}
	queued, _ := executor.SubmitFunc(p, func() (int, error) { return 2, nil })
	close(release)
	if v, err := first.Result(context.Background()); v != 1 || err != nil {
		t.Errorf("first call = %d, %v", v, err)
	}
	if _, err := queued.Result(context.Background()); !errors.Is(err, executor.ErrBrokenThreadPool) {
		t.Errorf("call queued behind the panic: Result() = %v; want ErrBrokenThreadPool", err)
	}
	var got any
	func() {
		defer func() { got = recover() }()
		p.Shutdown(true, false)
	}()
	if r, ok := got.(*panics.Recovered); !ok || r.Value != "start bug" || !strings.Contains(string(r.Stack), "badJob") {
		t.Fatalf("Shutdown() panicked with %#v; want the worker's panic with its stack", got)
	}
}

// Item 20: package executor, and so loop, link no process machinery.
func TestImportGraph(t *testing.T) {
	gocmd, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list the import graph: %v", err)
	}
	for _, pkg := range []string{"github.com/asyncgo/asyncgo/executor", "github.com/asyncgo/asyncgo/loop"} {
		out, err := exec.Command(gocmd, "list", "-deps", pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		for _, dep := range strings.Fields(string(out)) {
			switch dep {
			case "os/exec", "encoding/gob", "github.com/asyncgo/asyncgo/internal/wire", "github.com/asyncgo/asyncgo/executor/processpool":
				t.Errorf("%s imports %s", pkg, dep)
			}
		}
	}
}

// An Initializer that calls runtime.Goexit breaks the pool, as one that
// fails does: nothing waits for the goroutine it ended.
func TestThreadPoolInitializerGoexit(t *testing.T) {
	p := newThreadPool(t, executor.ThreadPoolOptions{MaxWorkers: 1, Initializer: func() error { runtime.Goexit(); return nil }})
	var err error
	exectest.Within(t, time.Minute, "a call behind an Initializer that calls Goexit", func() {
		_, err = res(executor.SubmitFunc(p, func() (int, error) { return 1, nil }))
	})
	if !errors.Is(err, executor.ErrBrokenThreadPool) || !errors.Is(err, executor.ErrGoexit) {
		t.Errorf("Result() = %v; want ErrBrokenThreadPool caused by ErrGoexit", err)
	}
}

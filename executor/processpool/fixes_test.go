//go:build linux

package processpool_test

// Regression tests of issue 7's process pool items; each failed before
// the fix it pins.

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/internal/goid"

	"github.com/asyncgo/asyncgo/internal/exectest"

	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/executor/processpool"
	"github.com/sourcegraph/conc/panics"
)

type point struct{ X, Y int }

// holder has an interface field: a value whose concrete type is not
// gob.Register'ed cannot be encoded.
type holder struct{ V any }

type unregistered struct{ N int }

var (
	takesPoint  = executor.Register("test.takesPoint", func(p *point) (int, error) { return 1, nil })
	nilResult   = executor.Register("test.nilResult", func(struct{}) (*point, error) { return nil, nil })
	takesHolder = executor.Register("test.takesHolder", func(holder) (int, error) { return 1, nil })
	bigResult   = executor.Register("test.bigResult", func(n int) ([]byte, error) {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i % 251)
		}
		return b, nil
	})
	goexits = executor.Register("test.goexit", func(struct{}) (int, error) {
		runtime.Goexit()
		return 0, nil
	})
	slowEncoded = executor.Register("test.slowEncoded", func(s slowArg) (int, error) { return s.N, nil })
)

// slowArg's encoding, in the parent, waits until the test closes
// encodeRelease: it stands for a large argument's encoding and write.
type slowArg struct{ N int }

var encodeRelease chan struct{} // made by the test, before the Submit whose encoding reads it

func (s slowArg) GobEncode() ([]byte, error) {
	<-encodeRelease
	return []byte{byte(s.N)}, nil
}

func (s *slowArg) GobDecode(b []byte) error {
	s.N = int(b[0])
	return nil
}

// Item 8, CPython's test_max_tasks_early_shutdown: with MaxTasksPerChild,
// Shutdown(wait, no cancel) runs every queued call before it returns: a
// retired worker is replaced for them.
func TestShutdownRunsQueuedCallsWithMaxTasksPerChild(t *testing.T) {
	for _, maxTasks := range []int{1, 2} {
		p := newPool(t, processpool.Options{MaxWorkers: 1, MaxTasksPerChild: maxTasks})
		var fs []*executor.Future[int]
		for i := range 5 {
			fs = append(fs, mustSubmit(t, p, square.Bind(i)))
		}
		p.Shutdown(true, false)
		for i, f := range fs {
			if !f.Done() {
				t.Fatalf("MaxTasksPerChild %d: call %d not done after Shutdown(wait)", maxTasks, i)
			}
			if v, err := f.Result(context.Background()); v != i*i || err != nil {
				t.Errorf("MaxTasksPerChild %d: call %d = %d, %v; want %d, nil", maxTasks, i, v, err, i*i)
			}
		}
	}
}

// Item 9 (Python: "mark the pool broken first, so that submits fail right
// now"): when a worker dies, a Submit from the failing future's done
// callback, or from a waiter it wakes, is refused; neither starts a worker.
func TestBrokenBeforeFuturesFail(t *testing.T) {
	p := newPool(t, processpool.Options{MaxWorkers: 2})
	g := newGate(t)
	running := mustSubmit(t, p, g.call())
	g.waitStarted(1)
	fromCallback := make(chan error, 1)
	running.AddDoneCallback(func(*executor.Future[int]) {
		_, err := executor.Submit(p, square.Bind(1))
		fromCallback <- err
	})
	fromWaiter := make(chan error, 1)
	go func() {
		running.Result(context.Background())
		_, err := executor.Submit(p, square.Bind(2))
		fromWaiter <- err
	}()
	p.Kill(syscall.SIGKILL)
	if _, err := running.Result(context.Background()); !errors.Is(err, executor.ErrBrokenProcessPool) {
		t.Fatalf("running call: Result() = %v; want ErrBrokenProcessPool", err)
	}
	for what, c := range map[string]chan error{"done callback": fromCallback, "waiter": fromWaiter} {
		if err := <-c; !errors.Is(err, executor.ErrBrokenProcessPool) {
			t.Errorf("Submit() from the failed future's %s = %v; want ErrBrokenProcessPool", what, err)
		}
	}
	p.Shutdown(true, false)
	if pids := p.Pids(); len(pids) != 0 {
		t.Errorf("workers %v alive after Shutdown", pids)
	}
}

// Item 10: Shutdown(wait) from a done callback, which runs on one of the
// pool's goroutines, returns (Python raises "cannot join current thread"
// there) after the pool's other workers have ended, and the pool then ends
// entirely.
func TestShutdownFromDoneCallback(t *testing.T) {
	p := newPool(t, processpool.Options{MaxWorkers: 2})
	g := newGate(t)
	other := mustSubmit(t, p, g.call()) // holds the second worker
	f := mustSubmit(t, p, square.Bind(3))
	g.waitStarted(1)
	returned := make(chan bool, 1)
	f.AddDoneCallback(func(*executor.Future[int]) {
		go g.release(1) // lets the other worker's call, and so Shutdown, end
		p.Shutdown(true, false)
		returned <- other.Done()
	})
	exectest.Within(t, time.Minute, "Shutdown(wait) from a done callback", func() {
		if otherDone := <-returned; !otherDone {
			t.Errorf("Shutdown(wait) from a done callback returned before the other worker's call ended")
		}
	})
	exectest.Within(t, time.Minute, "Shutdown(wait) after it", func() { p.Shutdown(true, false) })
	if pids := p.Pids(); len(pids) != 0 {
		t.Errorf("workers %v alive after Shutdown", pids)
	}
}

// Two done callbacks, each on its own worker's goroutine, both calling
// Shutdown(wait): neither waits for the other.
func TestShutdownFromTwoDoneCallbacks(t *testing.T) {
	p := newPool(t, processpool.Options{MaxWorkers: 2})
	g := newGate(t)
	returned := make(chan struct{}, 2)
	for range 2 {
		f := mustSubmit(t, p, g.call())
		f.AddDoneCallback(func(*executor.Future[int]) {
			p.Shutdown(true, false)
			returned <- struct{}{}
		})
	}
	g.waitStarted(2)
	g.release(2)
	exectest.Within(t, time.Minute, "two Shutdown(wait) calls from done callbacks", func() {
		<-returned
		<-returned
	})
}

// Item 11: a value that cannot be encoded, on either side, fails its
// future with an error saying so, and nothing else: the worker, the pool
// and the parent go on. Large values (beyond a socket buffer, beyond wire's
// 1 MiB buffer policy) cross both ways.
func TestUnencodableValues(t *testing.T) {
	p := newPool(t, processpool.Options{MaxWorkers: 1})
	if _, err := res(executor.Submit(p, square.Bind(1))); err != nil {
		t.Fatal(err)
	}
	workers := p.Pids()
	check := func(what string, err error, want string) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: Result() = %v; want an error containing %q", what, err, want)
		}
	}
	var idle error // an idle worker: Submit sends at once
	exectest.Within(t, time.Minute, "Submit of a nil pointer to an idle worker", func() {
		_, idle = res(executor.Submit(p, takesPoint.Bind(nil)))
	})
	check("nil pointer argument, idle worker", idle, "nil pointer")

	g := newGate(t) // a busy worker: the reader sends the queued call
	busy := mustSubmit(t, p, g.call())
	queued := mustSubmit(t, p, takesPoint.Bind(nil))
	g.waitStarted(1)
	g.release(1)
	if _, err := busy.Result(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, err := queued.Result(context.Background())
	check("nil pointer argument, busy worker", err, "cannot send the argument")

	_, err = res(executor.Submit(p, nilResult.Bind(struct{}{})))
	check("nil pointer result", err, "cannot encode the result")
	// A chan argument fails at Register (registry_types_test.go); in an
	// interface, Register cannot see it.
	_, err = res(executor.Submit(p, takesHolder.Bind(holder{V: make(chan int)})))
	check("chan in an interface", err, "cannot send the argument")
	_, err = res(executor.Submit(p, takesHolder.Bind(holder{V: unregistered{1}})))
	check("unregistered type in an interface", err, "cannot send the argument")

	big := make([]byte, 3<<20)
	big[len(big)-1] = 7
	if v, err := res(executor.Submit(p, echo.Bind(blob{Data: big}))); err != nil || len(v.Data) != len(big) || v.Data[len(big)-1] != 7 {
		t.Errorf("3 MiB argument and result: len %d, %v", len(v.Data), err)
	}
	if v, err := res(executor.Submit(p, bigResult.Bind(5<<20))); err != nil || len(v) != 5<<20 || v[1000] != byte(1000%251) {
		t.Errorf("5 MiB result: len %d, %v", len(v), err)
	}
	if v, err := res(executor.Submit(p, square.Bind(9))); v != 81 || err != nil {
		t.Errorf("afterwards: Result() = %d, %v; want 81, nil", v, err)
	}
	if got := p.Pids(); len(got) != 1 || got[0] != workers[0] {
		t.Errorf("workers %v after the failures; want the same worker %v", got, workers)
	}
}

// Item 12: a registered function that calls runtime.Goexit fails its
// future as a panic does, the worker goes on, and Shutdown returns.
func TestGoexitInWorker(t *testing.T) {
	p := newPool(t, processpool.Options{MaxWorkers: 1})
	before, err := res(executor.Submit(p, pid.Bind(struct{}{})))
	if err != nil {
		t.Fatal(err)
	}
	var goexitErr error
	exectest.Within(t, time.Minute, "a call that calls runtime.Goexit", func() {
		_, goexitErr = res(executor.Submit(p, goexits.Bind(struct{}{})))
	})
	var re *executor.RemoteError
	if !errors.As(goexitErr, &re) || !re.Panic || !errors.Is(goexitErr, executor.ErrGoexit) || !strings.Contains(re.Stack, "Goexit") {
		t.Errorf("Result() = %#v; want a RemoteError matching ErrGoexit, with the stack", goexitErr)
	}
	if after, err := res(executor.Submit(p, pid.Bind(struct{}{}))); after != before || err != nil {
		t.Errorf("after Goexit: pid = %d, %v; want the same worker %d", after, err, before)
	}
	exectest.Within(t, time.Minute, "Shutdown", func() { p.Shutdown(true, false) })
}

// A done callback that calls runtime.Goexit (t.FailNow in a test) runs on
// the goroutine that reads the worker's answers: it ends that goroutine,
// not the worker, nor the pool.
func TestGoexitInDoneCallback(t *testing.T) {
	p := newPool(t, processpool.Options{MaxWorkers: 1})
	before, err := res(executor.Submit(p, pid.Bind(struct{}{})))
	if err != nil {
		t.Fatal(err)
	}
	g := newGate(t)
	ran := make(chan struct{})
	f := mustSubmit(t, p, g.call()) // still running when the callback is added
	g.waitStarted(1)
	f.AddDoneCallback(func(*executor.Future[int]) {
		close(ran)
		runtime.Goexit()
	})
	g.release(1)
	<-ran
	for range 3 {
		if after, err := res(executor.Submit(p, pid.Bind(struct{}{}))); after != before || err != nil {
			t.Fatalf("after a Goexit in a done callback: pid = %d, %v; want the same worker %d", after, err, before)
		}
	}
	exectest.Within(t, time.Minute, "Shutdown", func() { p.Shutdown(true, false) })
}

// Item 19: Submit neither encodes nor writes a call, even to an idle
// worker: it returns while the argument's encoding waits, and the call
// completes once the encoding is released.
func TestSubmitDoesNotEncode(t *testing.T) {
	encodeRelease = make(chan struct{})
	p := newPool(t, processpool.Options{MaxWorkers: 1})
	if _, err := res(executor.Submit(p, square.Bind(1))); err != nil { // the worker is up, and idle
		t.Fatal(err)
	}
	var f *executor.Future[int]
	var err error
	exectest.Within(t, time.Minute, "Submit of a call whose encoding waits", func() {
		f, err = executor.Submit(p, slowEncoded.Bind(slowArg{N: 5}))
	})
	if err != nil {
		t.Fatal(err)
	}
	if f.Done() {
		t.Fatalf("the call completed before its argument could be encoded")
	}
	close(encodeRelease)
	if v, err := f.Result(context.Background()); v != 5 || err != nil {
		t.Errorf("Result() = %d, %v; want 5, nil", v, err)
	}
}

// hidden encodes to a gob error: its one field has no exported fields.
type hidden struct{ X struct{ y int } }

// failJob is a call of square whose argument gob refuses; Fail records
// the goroutine it ran on.
type failJob struct {
	arg    any
	failed chan uint64
}

func (j *failJob) Name() string                  { return square.Name() }
func (j *failJob) Arg() any                      { return j.arg }
func (j *failJob) Start() bool                   { return true }
func (j *failJob) Cancel() bool                  { return false }
func (j *failJob) Fail(error)                    { j.failed <- goid.Get() }
func (j *failJob) Decode(executor.Decoder) error { return nil }
func (j *failJob) Succeed()                      {}
func (j *failJob) RunLocal()                     {}
func (j *failJob) WaitInNetpoller()              {}

// Item 19: a small-looking argument that gob refuses fails its call on
// the worker's goroutine, not the submitter's (which may be a loop's, and
// would then also encode whatever call comes next).
func TestUnencodableSmallArgumentFailsOffTheSubmitter(t *testing.T) {
	p := newPool(t, processpool.Options{MaxWorkers: 1})
	if _, err := res(executor.Submit(p, square.Bind(1))); err != nil { // the worker is up, and idle
		t.Fatal(err)
	}
	for _, arg := range []any{hidden{}, &hidden{}, [1]hidden{}} {
		j := &failJob{arg: arg, failed: make(chan uint64, 1)}
		if err := p.SubmitJob(j); err != nil {
			t.Fatal(err)
		}
		if g := <-j.failed; g == goid.Get() {
			t.Errorf("%T: the call failed on the submitter's goroutine", arg)
		}
	}
	if v, err := res(executor.Submit(p, square.Bind(3))); v != 9 || err != nil {
		t.Errorf("a call after them = %d, %v; want 9, nil", v, err)
	}
}

// badJob is an Executor's Job with a bug: its Decode panics.
type badJob struct {
	f *executor.Future[int]
}

func (j *badJob) Name() string                  { return square.Name() }
func (j *badJob) Arg() any                      { return 4 }
func (j *badJob) Start() bool                   { return j.f.SetRunningOrNotifyCancel() }
func (j *badJob) Cancel() bool                  { return j.f.Cancel() }
func (j *badJob) Fail(err error)                { _ = j.f.SetErr(err) }
func (j *badJob) Decode(executor.Decoder) error { panic("decoder bug") }
func (j *badJob) Succeed()                      {}
func (j *badJob) RunLocal()                     {}
func (j *badJob) WaitInNetpoller()              {}

// Item 22: a panic in one of the pool's own goroutines (here a Job's
// Decode, called by a worker's reader) does not kill the process: the pool
// breaks, every future ends, and Shutdown(wait) re-panics it with its
// stack.
func TestPoolGoroutinePanicSurfacesInShutdown(t *testing.T) {
	p, err := processpool.New(processpool.Options{MaxWorkers: 1})
	if err != nil {
		t.Fatal(err)
	}
	j := &badJob{f: executor.NewFuture[int]()}
	if err := p.SubmitJob(j); err != nil {
		t.Fatal(err)
	}
	queued := mustSubmit(t, p, square.Bind(2))
	if _, err := j.f.Result(context.Background()); !errors.Is(err, executor.ErrBrokenProcessPool) {
		t.Errorf("the bad job's future: Result() = %v; want ErrBrokenProcessPool", err)
	}
	if _, err := queued.Result(context.Background()); err != nil && !errors.Is(err, executor.ErrBrokenProcessPool) {
		t.Errorf("queued call: Result() = %v; want its result or ErrBrokenProcessPool", err)
	}
	var got any
	func() {
		defer func() { got = recover() }()
		p.Shutdown(true, false)
	}()
	r, ok := got.(*panics.Recovered)
	if !ok || r.Value != "decoder bug" || !strings.Contains(string(r.Stack), "badJob") {
		t.Fatalf("Shutdown() panicked with %#v; want the reader's panic with its stack", got)
	}
	if pids := p.Pids(); len(pids) != 0 {
		t.Errorf("workers %v alive after Shutdown", pids)
	}
}

// Item 14: the request sequence and the call in hand are shared by a
// worker's reader and sender and by Submit: under the race detector, many
// concurrent submitters on a few workers, some to idle workers (sent by
// the sender or inline), some queued (sent by the reader).
func TestConcurrentSubmitsRace(t *testing.T) {
	p := newPool(t, processpool.Options{MaxWorkers: 2})
	var wg sync.WaitGroup
	errs := make(chan error, 8*50)
	for w := range 8 {
		wg.Go(func() {
			for i := range 50 {
				x := w*100 + i
				var v int
				var err error
				if i%3 == 0 {
					var b blob
					b, err = res(executor.Submit(p, echo.Bind(blob{Data: make([]byte, 300), Note: "n"}))) // not small: the sender sends it
					v = len(b.Data) - 300 + x*x
				} else {
					v, err = res(executor.Submit(p, square.Bind(x)))
				}
				if err != nil || v != x*x {
					errs <- errors.Join(err, errors.New("wrong result"))
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// Kill is Python 3.14's kill_workers: shutdown(wait=False,
// cancel_futures=True), then the signal. Queued calls are cancelled, the
// running one fails with ErrBrokenProcessPool, and Submit is refused even
// when no worker was alive.
func TestKillShutsDownFirst(t *testing.T) {
	p := newPool(t, processpool.Options{MaxWorkers: 1})
	g := newGate(t)
	running := mustSubmit(t, p, g.call())
	g.waitStarted(1)
	queued := mustSubmit(t, p, square.Bind(3))
	p.Kill(0)
	if !queued.Cancelled() {
		t.Errorf("the queued call is not cancelled by Kill")
	}
	if _, err := running.Result(context.Background()); !errors.Is(err, executor.ErrBrokenProcessPool) {
		t.Errorf("the running call = %v; want ErrBrokenProcessPool", err)
	}
	empty := newPool(t, processpool.Options{MaxWorkers: 1})
	empty.Kill(0)
	if _, err := executor.Submit(empty, square.Bind(1)); !errors.Is(err, executor.ErrShutdown) {
		t.Errorf("Submit after Kill of a pool with no worker = %v; want ErrShutdown", err)
	}
}

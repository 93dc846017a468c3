package natsexec_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/executor/natsexec"
)

func TestRoundTrip(t *testing.T) {
	ex := newExecutor(t, natsexec.Options{MemoryStorage: true})
	serve(t, natsexec.ServeOptions{URL: ex.URL()})
	var fs []*executor.Future[int]
	for i := range 50 {
		fs = append(fs, submit(t, ex, square.Bind(i)))
	}
	for i, f := range fs {
		if v, err := result(t, f); v != i*i || err != nil {
			t.Errorf("square(%d) = %d, %v; want %d, nil", i, v, err, i*i)
		}
	}
}

func TestErrors(t *testing.T) {
	ex := newExecutor(t, natsexec.Options{MemoryStorage: true})
	serve(t, natsexec.ServeOptions{URL: ex.URL()})

	_, err := result(t, submit(t, ex, check.Bind(3)))
	var re *executor.RemoteError
	if !errors.Is(err, errOdd) || !errors.As(err, &re) || err.Error() != "check 3: odd number" {
		t.Errorf("check(3) = %v; want a RemoteError matching errOdd", err)
	}
	_, err = result(t, submit(t, ex, check.Bind(-4)))
	var qe *quotaError
	if !errors.As(err, &qe) || qe.Code != 4 {
		t.Errorf("check(-4) = %v; want a *quotaError with Code 4", err)
	}
	if v, err := result(t, submit(t, ex, check.Bind(8))); v != 8 || err != nil {
		t.Errorf("check(8) = %d, %v; want 8, nil", v, err)
	}
}

// A function the worker does not know, and an argument it cannot decode,
// fail their calls with a clear error; the worker serves on.
func TestBadInput(t *testing.T) {
	ex := newExecutor(t, natsexec.Options{MemoryStorage: true})
	serve(t, natsexec.ServeOptions{URL: ex.URL()})

	f := executor.NewFuture[int]()
	if err := ex.SubmitJob(&rawJob{name: "natsexec_test.nowhere", arg: 1, f: f}); err != nil {
		t.Fatal(err)
	}
	if _, err := result(t, f); !errors.Is(err, executor.ErrNotRegistered) || !strings.Contains(err.Error(), "nowhere") {
		t.Errorf("unregistered call = %v; want ErrNotRegistered naming the function", err)
	}
	f = executor.NewFuture[int]()
	if err := ex.SubmitJob(&rawJob{name: square.Name(), arg: "seven", f: f}); err != nil {
		t.Fatal(err)
	}
	if _, err := result(t, f); err == nil || !strings.Contains(err.Error(), "cannot decode the argument of "+square.Name()) {
		t.Errorf("undecodable argument = %v; want a decoding error naming the function", err)
	}
	if v, err := result(t, submit(t, ex, square.Bind(9))); v != 81 || err != nil {
		t.Errorf("square(9) after bad input = %d, %v; want 81, nil", v, err)
	}
}

// rawJob is a Job whose name and argument are what a test says, not what a
// Func binds: what a caller of another build might send.
type rawJob struct {
	name string
	arg  any
	f    *executor.Future[int]
	v    int
}

func (j *rawJob) Name() string                    { return j.name }
func (j *rawJob) Arg() any                        { return j.arg }
func (j *rawJob) Start() bool                     { return j.f.SetRunningOrNotifyCancel() }
func (j *rawJob) Cancel() bool                    { return j.f.Cancel() }
func (j *rawJob) Fail(err error)                  { _ = j.f.SetErr(err) }
func (j *rawJob) Decode(d executor.Decoder) error { return d.Decode(&j.v) }
func (j *rawJob) Succeed()                        { _ = j.f.SetResult(j.v) }
func (j *rawJob) RunLocal()                       { j.Fail(errors.New("not local")) }
func (j *rawJob) WaitInNetpoller()                {}

// Calls submitted before any worker exists wait in the stream.
func TestLateWorker(t *testing.T) {
	ex := newExecutor(t, natsexec.Options{MemoryStorage: true})
	var fs []*executor.Future[int]
	for i := range 10 {
		fs = append(fs, submit(t, ex, square.Bind(i)))
	}
	serve(t, natsexec.ServeOptions{URL: ex.URL()})
	for i, f := range fs {
		if v, err := result(t, f); v != i*i || err != nil {
			t.Errorf("square(%d) = %d, %v; want %d, nil", i, v, err, i*i)
		}
	}
}

// Arguments and results larger than NATS's max payload go through the
// object store.
func TestLargePayload(t *testing.T) {
	ex := newExecutor(t, natsexec.Options{})
	serve(t, natsexec.ServeOptions{URL: ex.URL(), MaxInFlight: 2})
	for _, n := range []int{1 << 10, 2 << 20, 9 << 20} {
		in := make([]byte, n)
		for i := range in {
			in[i] = byte(i * 7)
		}
		out, err := result(t, submit(t, ex, echo.Bind(in)))
		if err != nil || len(out) != n {
			t.Fatalf("echo(%d bytes) = %d bytes, %v", n, len(out), err)
		}
		for i := range out {
			if out[i] != in[i]^0xff {
				t.Fatalf("echo(%d bytes): byte %d = %#x; want %#x", n, i, out[i], in[i]^0xff)
			}
		}
	}
}

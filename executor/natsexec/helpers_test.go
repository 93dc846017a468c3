package natsexec_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/executor/natsexec"
)

var errOdd = errors.New("odd number")

type quotaError struct{ Code int }

func (e *quotaError) Error() string { return fmt.Sprintf("quota %d", e.Code) }

func init() {
	executor.RegisterError(errOdd)
	executor.RegisterErrorType[*quotaError]()
}

var ran atomic.Int64 // calls of square run in this process

var (
	square = executor.Register("natsexec_test.square", func(x int) (int, error) {
		ran.Add(1)
		return x * x, nil
	})
	check = executor.Register("natsexec_test.check", func(x int) (int, error) {
		if x%2 != 0 {
			return 0, fmt.Errorf("check %d: %w", x, errOdd)
		}
		if x < 0 {
			return 0, fmt.Errorf("upload: %w", &quotaError{Code: -x})
		}
		return x, nil
	})
	echo = executor.Register("natsexec_test.echo", func(b []byte) ([]byte, error) {
		out := make([]byte, len(b))
		for i, c := range b {
			out[i] = c ^ 0xff
		}
		return out, nil
	})
)

// serve runs a worker in this process until the test ends.
func serve(t *testing.T, opts natsexec.ServeOptions) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := natsexec.Serve(ctx, opts); err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
}

// newExecutor makes an Executor shut down with wait when the test ends.
func newExecutor(t *testing.T, opts natsexec.Options) *natsexec.Executor {
	t.Helper()
	ex, err := natsexec.New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { shutdown(t, ex, true) })
	return ex
}

// shutdown is ex.Shutdown(true, cancelFutures), within a bound: a future
// that never resolves fails the test rather than hanging it.
func shutdown(t *testing.T, ex *natsexec.Executor, cancelFutures bool) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		ex.Shutdown(true, cancelFutures)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Errorf("Shutdown(true, %v) still waiting after 30s: a future never resolved", cancelFutures)
	}
}

// waitFor polls cond until it holds, failing the test after 30s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting for %s after 30s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// result waits for f within a bound that only detects a hang.
func result[T any](t *testing.T, f *executor.Future[T]) (T, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, err := f.Result(ctx)
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
		t.Fatalf("future still pending after 30s")
	}
	return v, err
}

func submit[R any](t *testing.T, ex executor.Executor, c executor.Call[R]) *executor.Future[R] {
	t.Helper()
	f, err := executor.Submit(ex, c)
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	return f
}

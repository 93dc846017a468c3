package natsexec_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/executor/natsexec"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A call cancelled before a worker reaches it never runs, and the worker
// serves on.
func TestCancelBeforeStart(t *testing.T) {
	ex := newExecutor(t, natsexec.Options{MemoryStorage: true})
	before := ran.Load()
	f := submit(t, ex, square.Bind(5))
	if !f.Cancel() {
		t.Fatal("Cancel() = false before any worker; want true")
	}
	serve(t, natsexec.ServeOptions{URL: ex.URL(), MaxInFlight: 1})
	if v, err := result(t, submit(t, ex, square.Bind(6))); v != 36 || err != nil {
		t.Fatalf("square(6) = %d, %v; want 36, nil", v, err)
	}
	// One worker, one call at a time, in stream order: the cancelled call
	// was reached first.
	if n := ran.Load() - before; n != 1 {
		t.Errorf("square ran %d times; want 1 (the cancelled call must not run)", n)
	}
	if _, err := f.Result(context.Background()); !errors.Is(err, executor.ErrCancelled) {
		t.Errorf("cancelled future = %v; want ErrCancelled", err)
	}
}

// Shutdown(true, true) with no worker cancels every call and returns.
func TestShutdownCancelFutures(t *testing.T) {
	ex, err := natsexec.New(natsexec.Options{MemoryStorage: true})
	if err != nil {
		t.Fatal(err)
	}
	var fs []*executor.Future[int]
	for i := range 5 {
		fs = append(fs, submit(t, ex, square.Bind(i)))
	}
	shutdown(t, ex, true)
	for i, f := range fs {
		if !f.Cancelled() {
			t.Errorf("future %d not cancelled by Shutdown(true, true)", i)
		}
	}
	if _, err := executor.Submit(ex, square.Bind(1)); !errors.Is(err, executor.ErrShutdown) {
		t.Errorf("Submit after Shutdown = %v; want ErrShutdown", err)
	}
}

// Shutdown(true, false) waits for the calls in flight.
func TestShutdownWaits(t *testing.T) {
	ex, err := natsexec.New(natsexec.Options{MemoryStorage: true})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, natsexec.ServeOptions{URL: ex.URL()})
	var fs []*executor.Future[int]
	for i := range 20 {
		fs = append(fs, submit(t, ex, square.Bind(i)))
	}
	shutdown(t, ex, false)
	for i, f := range fs {
		if !f.Done() {
			t.Fatalf("future %d pending after Shutdown(true, false)", i)
		}
		if v, err := f.Result(context.Background()); v != i*i || err != nil {
			t.Errorf("square(%d) = %d, %v", i, v, err)
		}
	}
}

// A call running longer than AckWait keeps its lease: it runs once.
func TestLongCallKeepsLease(t *testing.T) {
	rel := make(chan struct{})
	release.Store(&rel)
	blockRuns.Store(0)
	ex := newExecutor(t, natsexec.Options{MemoryStorage: true, AckWait: time.Second})
	serve(t, natsexec.ServeOptions{URL: ex.URL()})
	f := submit(t, ex, block.Bind(0))
	waitFor(t, "block to start", f.Running)
	time.Sleep(3 * time.Second) // three AckWaits: a lost lease would redeliver it
	close(rel)
	if v, err := result(t, f); v != 1 || err != nil {
		t.Fatalf("block = %d, %v; want 1, nil", v, err)
	}
	if n := blockRuns.Load(); n != 1 {
		t.Errorf("block ran %d times; want 1", n)
	}
}

// A worker process SIGKILLed mid-call: the call is redelivered after
// AckWait to the other worker and completes, once.
func TestKilledWorker(t *testing.T) {
	ex := newExecutor(t, natsexec.Options{AckWait: 2 * time.Second, LocalWorkers: 2, WorkerInFlight: 1})
	dir := t.TempDir()
	f := submit(t, ex, stallOnce.Bind(dir))
	pid := waitPid(t, filepath.Join(dir, "first"))
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil { // alive: blocked in the call
		t.Fatal(err)
	}
	if v, err := result(t, f); v != 1 || err != nil {
		t.Fatalf("stallOnce after the kill = %d, %v; want 1 (one run before), nil", v, err)
	}
	runs, _ := os.ReadDir(dir)
	if len(runs) != 2 {
		t.Errorf("%d runs recorded; want 2 (the killed one and the redelivery)", len(runs))
	}
}

func waitPid(t *testing.T, path string) int {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
			pid, err := strconv.Atoi(string(b))
			if err != nil {
				t.Fatal(err)
			}
			return pid
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no pid in %s after 60s", path)
	return 0
}

// A call whose every worker dies fails with ErrMaxDeliver after MaxDeliver
// deliveries.
func TestMaxDeliver(t *testing.T) {
	ex := newExecutor(t, natsexec.Options{AckWait: time.Second, MaxDeliver: 2, LocalWorkers: 2, WorkerInFlight: 1})
	_, err := result(t, submit(t, ex, crash.Bind(0)))
	if !errors.Is(err, natsexec.ErrMaxDeliver) {
		t.Fatalf("crash = %v; want ErrMaxDeliver", err)
	}
}

// Calls published before the server restarts (on its file store) survive
// it and complete once a worker comes.
func TestServerRestart(t *testing.T) {
	s := startServer(t)
	ex := newExecutor(t, natsexec.Options{URL: s.url()})
	var fs []*executor.Future[int]
	for i := range 20 {
		fs = append(fs, submit(t, ex, square.Bind(i)))
	}
	waitStored(t, s.url(), 20)
	s.stop()
	s.start()
	serve(t, natsexec.ServeOptions{URL: s.url()})
	for i, f := range fs {
		if v, err := result(t, f); v != i*i || err != nil {
			t.Errorf("square(%d) = %d, %v; want %d, nil", i, v, err, i*i)
		}
	}
}

// waitStored waits until the default stream holds n calls.
func waitStored(t *testing.T, url string, n uint64) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		s, err := js.Stream(ctx, natsexec.DefaultStream)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs >= n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A call whose caller is gone does not hold a worker: it serves the next.
func TestCallerGone(t *testing.T) {
	s := startServer(t)
	ex := newExecutor(t, natsexec.Options{URL: s.url(), MaxDeliver: 2})
	nc, err := nats.Connect(s.url())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg(natsexec.DefaultStream + ".calls")
	m.Header.Set("Nats-Msg-Id", "orphan")
	m.Header.Set("Asyncgo-Reply", natsexec.DefaultStream+".results.nobody")
	m.Header.Set("Asyncgo-Fn", square.Name())
	m.Data = []byte{}
	if _, err := js.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	serve(t, natsexec.ServeOptions{URL: s.url(), MaxInFlight: 1})
	if v, err := result(t, submit(t, ex, square.Bind(4))); v != 16 || err != nil {
		t.Fatalf("square(4) after an orphan call = %d, %v; want 16, nil", v, err)
	}
}

package main

import (
	"context"
	"os"
	"testing"

	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/executor/processpool"
	"github.com/asyncgo/asyncgo/internal/exampletest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	executor.Init() // the pool's worker processes run here and exit
	goleak.VerifyTestMain(m)
}

// The results come back in the order of the calls, whatever order the two
// workers finish in; the refusal is ErrNegative itself, registered.
func TestProcpool(t *testing.T) {
	const want = "primes below 10000: 1229\n" +
		"primes below 100000: 9592\n" +
		"primes below -1: refused: count primes below -1: negative limit\n" +
		"primes below 1000000: 78498\n"
	exampletest.Expect(t, main, want)
}

var pid = executor.Register("cookbook.pid", func(struct{}) (int, error) { return os.Getpid(), nil })

// TestWorkersAreProcesses checks that registered functions run in a worker
// process (this test binary re-executed), not in the parent.
func TestWorkersAreProcesses(t *testing.T) {
	pool, err := processpool.New(processpool.Options{MaxWorkers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Shutdown(true, false)
	f, err := executor.Submit(pool, pid.Bind(struct{}{}))
	if err != nil {
		t.Fatal(err)
	}
	got, err := f.Result(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got == os.Getpid() {
		t.Errorf("the registered function ran in the parent (pid %d)", got)
	}
}

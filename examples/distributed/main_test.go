package main

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/internal/exampletest"
	"github.com/nats-io/nats-server/v2/server"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	executor.Init() // a local worker process runs here and exits
	goleak.VerifyTestMain(m)
}

const wantCalls = `collatz(7) = 16 steps
collatz(27) = 111 steps
collatz(-1): collatz(-1): negative argument (errors.Is errNegative: true)
square(0..999): first [0 1 4 9 16], sum 332833500
`

// With no flag: an embedded server and two local worker processes.
func TestDistributed(t *testing.T) {
	exampletest.Expect(t, main, "distributed: an embedded NATS server, 2 local worker processes\n"+wantCalls)
}

// With -nats, against a nats-server started here, and a worker as -worker
// runs it.
func TestDistributedJoins(t *testing.T) {
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	defer func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	}()
	if !srv.ReadyForConnections(30 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	url := srv.ClientURL()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := serve(ctx, url); err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	defer wg.Wait()
	defer cancel()
	exampletest.Expect(t, func() {
		if err := run(config{url: url, calls: 1000}); err != nil {
			t.Errorf("run: %v", err)
		}
	}, fmt.Sprintf("distributed: NATS at %s, 0 local worker processes\n", url)+wantCalls)
}

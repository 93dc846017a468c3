package natsexec_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/executor"
	"github.com/nats-io/nats-server/v2/server"
)

var (
	// crash kills the worker process that runs it.
	crash = executor.Register("natsexec_test.crash", func(int) (int, error) {
		os.Exit(3)
		return 0, nil
	})
	// stallOnce runs in a local worker process: the first run writes its
	// pid to dir/first and blocks until it is killed; later runs return
	// the number of runs so far.
	stallOnce = executor.Register("natsexec_test.stallOnce", func(dir string) (int, error) {
		f, err := os.OpenFile(filepath.Join(dir, "first"), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err == nil {
			fmt.Fprint(f, os.Getpid())
			f.Close()
			select {} // until SIGKILL
		}
		runs, _ := os.ReadDir(dir)
		return len(runs), os.WriteFile(filepath.Join(dir, "run-"+strconv.Itoa(os.Getpid())), nil, 0o600)
	})
	// block blocks until the channel release holds is closed (in this
	// process).
	block = executor.Register("natsexec_test.block", func(int) (int, error) {
		blockRuns.Add(1)
		<-*release.Load()
		return 1, nil
	})
	release   atomic.Pointer[chan struct{}]
	blockRuns atomic.Int64
)

// natsServer is a nats-server with JetStream started by a test, on a file
// store in dir; restart starts it again on the same port and store.
type natsServer struct {
	t    *testing.T
	dir  string
	port int
	srv  *server.Server
}

func startServer(t *testing.T) *natsServer {
	s := &natsServer{t: t, dir: t.TempDir(), port: server.RANDOM_PORT}
	s.start()
	s.port = s.srv.Addr().(*net.TCPAddr).Port
	t.Cleanup(s.stop)
	return s
}

func (s *natsServer) start() {
	s.t.Helper()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: s.port, JetStream: true, StoreDir: s.dir, NoSigs: true, NoLog: true})
	if err != nil {
		s.t.Fatal(err)
	}
	srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		s.t.Fatal("nats-server did not start")
	}
	s.srv = srv
}

func (s *natsServer) stop() {
	if s.srv != nil {
		s.srv.Shutdown()
		s.srv.WaitForShutdown()
		s.srv = nil
	}
}

func (s *natsServer) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", s.port) }

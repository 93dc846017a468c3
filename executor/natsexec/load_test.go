package natsexec_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/executor/natsexec"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// loadCalls is the number of calls of the load tests: 1,000 by default, to
// fit CI's time; the 10,000 with NATSEXEC_LOAD_CALLS=10000 (a bench
// run).
func loadCalls(t *testing.T) int {
	n := 1000
	if s := os.Getenv("NATSEXEC_LOAD_CALLS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v <= 0 {
			t.Fatalf("NATSEXEC_LOAD_CALLS=%q: want a positive number", s)
		}
		n = v
	}
	return n
}

// slowSquare takes a millisecond, so that a run of calls has some in
// flight on every worker at any time.
var slowSquare = executor.Register("natsexec_test.slowSquare", func(x int) (int, error) {
	time.Sleep(time.Millisecond)
	return x * x, nil
})

// countJob is a call of slowSquare that counts how often the executor
// resolves it: exactly once, however often it runs.
type countJob struct {
	x        int
	f        *executor.Future[int]
	v        int
	resolved atomic.Int32
}

func (j *countJob) Name() string                    { return slowSquare.Name() }
func (j *countJob) Arg() any                        { return j.x }
func (j *countJob) Start() bool                     { return j.f.SetRunningOrNotifyCancel() }
func (j *countJob) Cancel() bool                    { return j.f.Cancel() }
func (j *countJob) Fail(err error)                  { j.resolved.Add(1); _ = j.f.SetErr(err) }
func (j *countJob) Decode(d executor.Decoder) error { return d.Decode(&j.v) }
func (j *countJob) Succeed()                        { j.resolved.Add(1); _ = j.f.SetResult(j.v) }
func (j *countJob) RunLocal()                       { j.Fail(errors.New("not local")) }
func (j *countJob) WaitInNetpoller()                {}

// runLoad submits n calls, paced so that they are in flight over a while,
// calls disrupt once a third of them are done, and checks that every call
// completes with its result, each resolved once.
func runLoad(t *testing.T, ex *natsexec.Executor, n int, disrupt func()) {
	runLoadDiag(t, ex, n, disrupt, nil)
}

// runLoadDiag is runLoad, with diag called to describe a failure.
func runLoadDiag(t *testing.T, ex *natsexec.Executor, n int, disrupt func(), diag func() string) {
	t.Helper()
	jobs := make([]*countJob, n)
	var done atomic.Int64
	var disrupted sync.Once
	var wg sync.WaitGroup
	for i := range jobs {
		j := &countJob{x: i, f: executor.NewFuture[int]()}
		jobs[i] = j
		if err := ex.SubmitJob(j); err != nil {
			t.Fatalf("SubmitJob %d: %v", i, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			_, _ = j.f.Result(ctx)
			if done.Add(1) == int64(n/3) {
				disrupted.Do(disrupt)
			}
		}()
		if i%50 == 49 {
			time.Sleep(5 * time.Millisecond)
		}
	}
	wg.Wait()
	var lost, twice, wrong int
	for i, j := range jobs {
		if !j.f.Done() {
			lost++
			continue
		}
		if r := j.resolved.Load(); r != 1 {
			twice++
			t.Errorf("call %d resolved %d times", i, r)
		}
		if v, err := j.f.Result(context.Background()); v != i*i || err != nil {
			wrong++
			if wrong <= 5 {
				t.Errorf("slowSquare(%d) = %d, %v; want %d, nil", i, v, err, i*i)
			}
		}
	}
	t.Logf("%d calls: %d lost, %d resolved more than once, %d wrong", n, lost, twice, wrong)
	if lost+twice+wrong > 0 {
		if diag != nil {
			t.Log(diag())
		}
		t.Fatalf("%d calls: %d lost (pending after 90s), %d resolved more than once, %d wrong", n, lost, twice, wrong)
	}
}

// A local worker process SIGKILLed in a run of calls: its calls are
// redelivered after AckWait to the others; none is lost, none resolves
// twice.
func TestKilledWorkerUnderLoad(t *testing.T) {
	ex := newExecutor(t, natsexec.Options{MemoryStorage: true, AckWait: 2 * time.Second, LocalWorkers: 3, WorkerInFlight: 8})
	waitFor(t, "3 local workers", func() bool { return len(ex.LocalWorkerPids()) == 3 })
	runLoad(t, ex, loadCalls(t), func() {
		pid := ex.LocalWorkerPids()[0]
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Errorf("kill %d: %v", pid, err)
		}
	})
	if n := len(ex.LocalWorkerPids()); n != 2 {
		t.Errorf("%d local workers alive after the kill; want 2", n)
	}
}

// A 3-node JetStream cluster with the stream on all three (Replicas 3):
// the node that leads the stream is shut down in a run of calls; every
// call completes, none resolves twice.
func TestClusterNodeLoss(t *testing.T) {
	c := startCluster(t, 3)
	// The meta leader may be elected before it knows every peer: the
	// stream's placement fails until then.
	waitFor(t, "a JetStream meta leader that knows 3 peers", func() bool {
		for _, s := range c.srvs {
			if s.JetStreamIsLeader() && len(s.JetStreamClusterPeers()) == 3 {
				return true
			}
		}
		return false
	})
	var ex *natsexec.Executor
	waitFor(t, "the cluster to place a replicated stream", func() bool {
		var err error
		ex, err = natsexec.New(natsexec.Options{URL: c.urls(), Replicas: 3, AckWait: 2 * time.Second})
		return err == nil
	})
	t.Cleanup(func() { shutdown(t, ex, true) })
	serve(t, natsexec.ServeOptions{URL: c.urls(), MaxInFlight: 16})
	serve(t, natsexec.ServeOptions{URL: c.urls(), MaxInFlight: 16})
	runLoadDiag(t, ex, loadCalls(t), func() {
		for i, s := range c.srvs {
			if s.JetStreamIsStreamLeader(server.DEFAULT_GLOBAL_ACCOUNT, natsexec.DefaultStream) {
				t.Logf("shutting down %s, the stream's leader", s.Name())
				c.stop(i)
				return
			}
		}
		t.Logf("no stream leader found: shutting down node 0")
		c.stop(0)
	}, c.describe)
}

// cluster is a JetStream cluster of nats-servers in this process, on
// 127.0.0.1, each with its own store.
type cluster struct {
	srvs []*server.Server
	mu   sync.Mutex
}

func startCluster(t *testing.T, n int) *cluster {
	t.Helper()
	ports := make([]int, n)
	var routes []string
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = l.Addr().(*net.TCPAddr).Port
		l.Close()
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", ports[i]))
	}
	c := &cluster{}
	t.Cleanup(func() {
		for i := range c.srvs {
			c.stop(i)
		}
	})
	for i := range n {
		opts := &server.Options{
			ServerName: fmt.Sprintf("n%d", i),
			Host:       "127.0.0.1",
			Port:       server.RANDOM_PORT,
			JetStream:  true,
			StoreDir:   t.TempDir(),
			Cluster:    server.ClusterOpts{Name: "natsexec-test", Host: "127.0.0.1", Port: ports[i]},
			Routes:     server.RoutesFromStr(strings.Join(routes, ",")),
			NoSigs:     true,
			NoLog:      true,
		}
		s, err := server.NewServer(opts)
		if err != nil {
			t.Fatal(err)
		}
		s.Start()
		c.srvs = append(c.srvs, s)
	}
	for _, s := range c.srvs {
		if !s.ReadyForConnections(30 * time.Second) {
			t.Fatalf("%s did not start", s.Name())
		}
	}
	return c
}

// urls is the client URLs of the servers, for a connection that fails
// over.
func (c *cluster) urls() string {
	var us []string
	for _, s := range c.srvs {
		us = append(us, s.ClientURL())
	}
	return strings.Join(us, ",")
}

func (c *cluster) stop(i int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.srvs[i]; s.Running() {
		s.Shutdown()
		s.WaitForShutdown()
	}
}

// describe is the stream's and the consumer's state, for a failure.
func (c *cluster) describe() string {
	nc, err := nats.Connect(c.urls())
	if err != nil {
		return err.Error()
	}
	defer nc.Close()
	var b strings.Builder
	for _, subj := range []string{"$JS.API.STREAM.INFO." + natsexec.DefaultStream, "$JS.API.CONSUMER.INFO." + natsexec.DefaultStream + ".workers"} {
		m, err := nc.Request(subj, nil, 5*time.Second)
		if err != nil {
			fmt.Fprintf(&b, "%s: %v\n", subj, err)
			continue
		}
		fmt.Fprintf(&b, "%s: %s\n", subj, m.Data)
	}
	return b.String()
}

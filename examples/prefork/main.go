// Command prefork serves the reactor's protocol (see examples/reactor) with
// a prefork group: a master process binds the address and N worker
// processes, each with its own loop, serve it; each worker is recycled
// after -max-requests messages (plus up to -jitter), its replacement
// serving before it stops, so the listener is never unserved; a crashed
// worker is respawned. The master answers gunicorn's signals: SIGTERM and
// SIGINT stop gracefully, SIGHUP restarts every worker in turn, SIGTTIN
// and SIGTTOU add and remove one.
//
//	go run ./examples/prefork -demo          # serve, drive itself, print a summary
//	go run ./examples/prefork -addr 127.0.0.1:8888 -workers 4 -max-requests 10000
//
// A frame is a 4-byte big-endian length and the message; each message is
// answered with a frame of a status byte, 0, and the message's SHA-256
// digest, or 1 and an error text (a message longer than -max-size, after
// which the connection closes). The job runs on the worker's own loop,
// after -cpu of CPU time: a worker is one core, as a gunicorn sync worker
// is, and N workers are N cores. A worker that stops finishes the message
// it is in and closes each connection between messages; the demo's client
// sends a message again on a new connection when its connection closed
// before any byte of the answer (as an HTTP client retries a request on
// a closed keep-alive connection), which is why recycling fails nothing.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/asyncgo/asyncgo/aio"
	"github.com/asyncgo/asyncgo/aio/prefork"
	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/internal/frameproto"
	"github.com/asyncgo/asyncgo/loop"
)

// config is what every worker is told, through prefork.Options.Data.
type config struct {
	MaxSize int
	CPU     time.Duration
}

// server is the workers' body: registered at package level, so that a
// worker process, a re-execution of this binary, knows it before
// executor.Init runs it. Each connection is served by frameproto (the
// reactor's protocol, the job on the worker's loop); draining, each
// closes between messages.
var server = prefork.Register("examples/prefork.reactor", func(ctx context.Context, w *prefork.Worker) error {
	var cfg config
	if err := json.Unmarshal(w.Data(), &cfg); err != nil {
		return err
	}
	conns := frameproto.Set{}
	fc := &frameproto.Config{
		MaxSize:   cfg.MaxSize,
		CPU:       cfg.CPU,
		OnMessage: w.RequestDone,
		Draining: func() bool {
			select {
			case <-w.Stopping():
				return true
			default:
				return false
			}
		},
	}
	return w.Serve(ctx, func() loop.BaseProtocol { return frameproto.New(fc, conns) },
		&prefork.ServeOptions{OnDrain: conns.CloseIdle})
})

func main() {
	executor.Init() // a worker process runs its body here and exits
	defer aio.Shutdown()
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "prefork:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("prefork", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8888", "listen address")
	workers := fs.Int("workers", runtime.NumCPU(), "worker processes")
	maxReq := fs.Int("max-requests", 10000, "messages a worker serves before it is recycled (0: never)")
	jitter := fs.Int("jitter", 0, "up to this many more messages per worker, at random (default: max-requests/10)")
	maxSize := fs.Int("max-size", 2<<20, "largest message, in bytes")
	cpu := fs.Duration("cpu", 0, "CPU time the job spends per message")
	reusePort := fs.Bool("reuseport", false, "a SO_REUSEPORT listener per worker instead of one shared socket")
	demo := fs.Bool("demo", false, "serve on a free port, drive the group with -conns clients for -requests messages, print a summary")
	requests := fs.Int("requests", 20000, "-demo: messages to send")
	conns := fs.Int("conns", 8, "-demo: client connections")
	size := fs.Int("size", 1024, "-demo: message size in bytes")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *size < 8 || *size > *maxSize {
		return fmt.Errorf("-size %d: want 8 to -max-size (%d)", *size, *maxSize)
	}
	if *jitter == 0 {
		*jitter = *maxReq / 10
	}
	data, err := json.Marshal(config{MaxSize: *maxSize, CPU: *cpu})
	if err != nil {
		return err
	}
	opts := prefork.Options{
		Addr: *addr, Workers: *workers, ReusePort: *reusePort,
		MaxRequests: *maxReq, MaxRequestsJitter: *jitter, Data: data,
	}
	if *demo {
		opts.Addr = "127.0.0.1:0"
		return runDemo(opts, *requests, *conns, *size)
	}
	opts.OnWorkerExit = func(wi prefork.WorkerInfo) {
		fmt.Fprintf(os.Stderr, "worker %d.%d (pid %d) exited %d: %s after %d messages\n",
			wi.Slot, wi.Generation, wi.Pid, wi.ExitCode, wi.Reason, wi.Requests)
	}
	m, err := prefork.Start(server, opts)
	if err != nil {
		return err
	}
	fmt.Printf("serving on %s with %d workers (pid %d: SIGHUP restarts them, SIGTTIN/SIGTTOU add/remove one, SIGTERM stops)\n",
		m.Addr(), *workers, os.Getpid())
	return m.Run(context.Background())
}

// runDemo serves on a free port and drives the group with its own client:
// enough messages that every worker is recycled at least once.
func runDemo(opts prefork.Options, requests, conns, size int) error {
	m, err := prefork.Start(server, opts)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := m.Ready(ctx); err != nil {
		_ = m.Stop(0)
		return err
	}
	first := m.Workers()
	mode := "one shared listening socket"
	if opts.ReusePort {
		mode = "a SO_REUSEPORT listener each"
	}
	recycle := "never recycled"
	if opts.MaxRequests > 0 {
		recycle = fmt.Sprintf("recycled after %d-%d messages", opts.MaxRequests, opts.MaxRequests+opts.MaxRequestsJitter)
	}
	fmt.Printf("prefork: %d workers, %s, %s\n", opts.Workers, mode, recycle)
	start := time.Now()
	st := drive(m.Addr().String(), requests, conns, size)
	elapsed := time.Since(start)
	if err := m.Stop(0); err != nil {
		return err
	}
	fmt.Printf("sent %d messages of %d bytes over %d connections: %d answered, %d failed\n",
		requests, size, conns, st.ok, st.failed)
	if st.err != nil {
		fmt.Printf("first failure: %v\n", st.err)
	}
	recycled := map[int]bool{}
	n := 0
	for _, wi := range m.Exited() {
		if wi.Reason == "recycled" {
			recycled[wi.Pid] = true
			n++
		}
	}
	all := true
	for _, wi := range first {
		all = all && recycled[wi.Pid]
	}
	fmt.Printf("every first worker was recycled: %v\n", all)
	fmt.Fprintf(os.Stderr, "%d recycles, %d messages sent again, %.0f messages/s\n",
		n, st.resent, float64(st.ok)/elapsed.Seconds())
	return nil
}

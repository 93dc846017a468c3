// Command reactor is the seed's server, asyncgo's flagship example: one
// asyncio-style loop accepts TCP connections and reads messages of up to
// 2 MiB from them, a pool of worker processes processes the messages in
// parallel, and each reply goes back on its connection, in order. The loop
// never blocks: it only moves bytes and counts; the work, and even the
// encoding of a large message for its worker, happens elsewhere.
//
//	go run ./examples/reactor -demo          # serve, drive itself for 3 s, print a summary
//	go run ./examples/reactor                # serve on 127.0.0.1:8888 until SIGINT/SIGTERM
//	go run ./examples/reactor -cpu 1ms -workers 2
//
// # Wire format
//
// A frame is a 4-byte big-endian length and then that many bytes. The
// client sends messages, one frame each, of at most -max-size bytes (0 is
// a valid message); the server answers each with one frame whose payload
// starts with a status byte: 0 and the job's result, or 1 and a UTF-8 error
// message. Replies come in the order of the messages on their connection;
// a client may send many messages before reading (pipelining).
//
// A frame declared longer than -max-size gets an error reply naming its
// size and the cap, after the replies owed before it, and its connection
// closes: the stream cannot be parsed past a frame the server will not
// read. A connection whose client closes in the middle of a frame is
// closed after the replies owed; no other connection notices either.
// A connection is closed by first shutting its writing side, after the
// last reply, and dropping what the client still sends until its EOF (for
// at most a second): a close with bytes unread would make the kernel
// reset the connection, and a reset can destroy the replies in flight.
//
// # The job
//
// The example's job is process in job.go: the message's 32-byte SHA-256
// digest. -cpu adds a fixed cost per message: the worker hashes until its
// thread has spent that much CPU time (its own clock, so an oversubscribed
// machine makes a message neither cheaper nor dearer). To process messages
// your way, replace process with your own function of a message; its result
// is the reply after the status byte 0, and an error or a panic becomes a
// status-1 reply for that message alone. It runs in the worker processes,
// re-executions of this binary, through batchJob, a function registered
// with executor.Register at package level so that a worker knows it before
// executor.Init runs in main.
//
// # Flags
//
//	-addr ADDR        listen address (127.0.0.1:8888)
//	-workers N        worker processes (the number of CPUs)
//	-max-size BYTES   largest message (2097152, 2 MiB)
//	-cpu DURATION     CPU time the job adds per message (0)
//	-inflight K       messages a connection may have accepted and not yet
//	                  answered (16); at K the server reads no more from it
//	-queue N          messages admitted and not yet processed, over all
//	                  connections (256)
//	-queue-bytes B    their bytes (67108864, 64 MiB)
//	-max-conns N      connections served at once (4096); one more is closed
//	                  as it is accepted, since each waiting connection may
//	                  hold a read (64 KiB) of bytes it cannot parse yet
//	-grace DURATION   how long SIGINT/SIGTERM waits for the replies owed (10s)
//	-demo             serve on a free port and drive the server with the load
//	                  generator (internal/loadgen) for -demo-time (3s): a live
//	                  progress line on a terminal, then its summary table and
//	                  the server's counts, and exit
//
// # Backpressure and memory
//
// Nothing grows without a bound. A connection with K messages unanswered is
// not read from (its messages wait in the kernel's buffers and then in the
// client). A message is admitted to the global bound when its header arrives,
// before its bytes are read, and leaves it when its job ends: -queue bounds
// the messages being read, waiting for a call or in the pool, -queue-bytes
// their bytes, since 2 MiB messages times a large count is a lot of memory (a
// message larger than -queue-bytes is let in alone). A connection that finds
// the bound full waits its turn, first come first served, not read from. A
// client that does not read its replies fills its connection's write buffer
// past the high-water mark, and the server stops reading that connection
// until the client catches up. Message buffers are reused (a stream of 2 MiB
// messages allocates almost nothing per message), and a paused connection
// holds at most one read's worth (64 KiB) of bytes not parsed yet.
//
// A message's body must arrive within 30 s of its header (it holds room
// in the global bound meanwhile): a connection that sends a header and
// stalls is treated as a frame cut short and closed, so that a few stalled
// senders cannot hold the bound, and every other client, for good.
//
// # Failures and shutdown
//
// A worker process that dies (killed, crashed) breaks its pool, as Python's
// ProcessPoolExecutor does: every message pending in it gets an error reply,
// the server replaces the pool once and shuts the broken one down, and goes
// on serving. SIGINT or SIGTERM starts a drain: stop accepting, read nothing
// more, answer every message already read (or, after -grace, close the
// connections still owed replies), shut the pool down, exit 0. A second
// signal closes every connection at once. (The server's SIGINT handler
// replaces loop.Run's, which would cancel the main task, as
// loop.add_signal_handler replaces asyncio.run's.)
//
// # How it is built
//
// Each connection is an asyncio.BufferedProtocol (conn in server.go), not a
// task with streams: the loop reads small frames into one buffer the server
// shares and parses many of them per read, and reads the bulk of a large
// message straight into that message's own buffer, reused afterwards; a
// completion is a callback on the loop. Per message that costs no task, no
// goroutine hand-off and no copy on the loop. The replies ready in one loop
// iteration go out in one write per connection. Measured against the same
// server on streams (a task per connection, ReadExactly for the header and
// ReadInto a reused buffer, the same batching), on two cores: 5-15% more
// messages a second at 1 KiB and 64 KiB, the same at 2 MiB, where the copies
// dominate.
//
// Messages go to the pool in batches: each loop iteration, the messages read
// and waiting are sent in calls of up to 64 messages or 1 MiB, while fewer
// than two calls per worker are in the pool (the second waits there, so that
// a worker never idles while a result crosses the loop). An idle server thus
// sends a message at once, alone, and a busy one shares the cost of a call (a
// wake-up and a write on each side, some 20 µs) among the messages that
// waited together, as ProcessPoolExecutor.map's chunksize does; on two cores
// this took 1 KiB messages from 29,000 to 80,000 a second.
//
// Submitting from a protocol callback uses executor.Submit and
// loop.WrapFuture, the two halves of loop.RunInExecutorOn (run_in_executor
// from a callback), so that a pool found broken at the submit is rebuilt
// and the batch resubmitted at once, rather than failed through its future.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/loop"
)

func main() {
	executor.Init() // in a worker process this serves the pool and never returns

	cfg, demo, demoTime, err := parseFlags(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "reactor:", err)
		os.Exit(2)
	}
	h := hooks{signals: true}
	if demo {
		cfg.addr = "127.0.0.1:0"
		h.drive = func(ctx context.Context, addr string) error {
			return drive(ctx, addr, demoTime, os.Stdout, progressTo(os.Stderr))
		}
	} else {
		h.listening = func(s *server) {
			fmt.Printf("reactor: listening on %v with %d worker processes\n", s.srv.Addrs()[0], s.cfg.workers)
		}
	}
	if err := run(context.Background(), cfg, os.Stderr, h); err != nil {
		fmt.Fprintln(os.Stderr, "reactor:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (cfg config, demo bool, demoTime time.Duration, err error) {
	fs := flag.NewFlagSet("reactor", flag.ContinueOnError)
	fs.StringVar(&cfg.addr, "addr", "127.0.0.1:8888", "listen address")
	fs.IntVar(&cfg.workers, "workers", runtime.NumCPU(), "worker processes")
	fs.IntVar(&cfg.maxSize, "max-size", 2<<20, "largest message, in bytes")
	fs.DurationVar(&cfg.cpu, "cpu", 0, "CPU time the job adds per message")
	fs.IntVar(&cfg.inflight, "inflight", 16, "messages per connection accepted and not yet answered")
	fs.IntVar(&cfg.queue, "queue", 256, "messages admitted and not yet processed, all connections")
	fs.IntVar(&cfg.queueBytes, "queue-bytes", 64<<20, "bytes of the messages admitted and not yet processed")
	fs.IntVar(&cfg.maxConns, "max-conns", 4096, "connections served at once; more are closed as they are accepted")
	fs.DurationVar(&cfg.grace, "grace", 10*time.Second, "how long a drain waits for the replies owed")
	fs.BoolVar(&demo, "demo", false, "serve on a free port, drive the server for -demo-time, print a summary, exit")
	fs.DurationVar(&demoTime, "demo-time", 3*time.Second, "how long -demo drives the server")
	if err = fs.Parse(args); err != nil {
		return
	}
	switch {
	case fs.NArg() > 0:
		err = fmt.Errorf("unexpected arguments %q", fs.Args())
	case cfg.workers < 1 || cfg.inflight < 1 || cfg.queue < 1:
		err = errors.New("-workers, -inflight and -queue must be at least 1")
	case cfg.workers > 1024 || cfg.inflight > 1<<16:
		err = errors.New("-workers must be at most 1024 and -inflight at most 65536")
	case cfg.maxSize < 0 || cfg.maxSize > 1<<30:
		err = errors.New("-max-size must be between 0 and 1 GiB")
	case cfg.maxConns < 1:
		err = errors.New("-max-conns must be at least 1")
	case cfg.queueBytes < 1:
		err = errors.New("-queue-bytes must be at least 1")
	case cfg.cpu < 0 || cfg.grace < 0 || demoTime <= 0:
		err = errors.New("-cpu and -grace must not be negative, -demo-time must be positive")
	}
	return
}

// hooks are what main and the tests add to a run.
type hooks struct {
	signals   bool                                         // SIGINT/SIGTERM drain the server
	listening func(s *server)                              // called on the loop once the server listens
	drive     func(ctx context.Context, addr string) error // run off the loop, then drain (the demo)
	opts      []loop.Option                                // the loop's options
}

// run serves cfg until ctx is done, a signal (h.signals) or the end of
// h.drive, then drains: it returns nil once every connection is closed and
// the pool is shut down.
func run(ctx context.Context, cfg config, log io.Writer, h hooks) error {
	return loop.RunMain(context.WithoutCancel(ctx), func(lctx context.Context) error {
		l, err := loop.RunningLoop(lctx)
		if err != nil {
			return err
		}
		s, err := newServer(l, cfg, log)
		if err != nil {
			return err
		}
		stopSignals := func() {}
		defer func() {
			// Off the loop: Shutdown waits for the worker processes; the
			// results of calls still running reach the loop meanwhile.
			// After an abort nobody waits for the calls still queued:
			// they are cancelled. The signal handlers stay until the
			// workers are gone, so that a signal meanwhile is still ours.
			s.closed = true
			pool, aborted := s.pool, s.aborted
			_, _ = loop.ToThread(lctx, func() (struct{}, error) {
				pool.Shutdown(true, aborted)
				s.retiring.Wait()
				return struct{}{}, nil
			})
			stopSignals()
		}()
		s.srv, err = l.CreateServer(lctx, s.newConn, cfg.addr, nil)
		if err != nil {
			return err
		}
		defer s.srv.Close()
		if h.signals {
			if stopSignals, err = onSignals(l, s.shutdown, s.abort); err != nil {
				stopSignals = func() {}
				return err
			}
		}
		stopWatch := context.AfterFunc(ctx, func() { _ = l.CallSoonThreadsafe(s.shutdown) })
		defer stopWatch()
		if h.listening != nil {
			h.listening(s)
		}
		var driven *loop.Task[struct{}]
		if h.drive != nil {
			addr := s.srv.Addrs()[0].String()
			// A signal ends the drive early, as the drain begins.
			ctx, s.onShutdown = context.WithCancel(ctx)
			driven = loop.Go(lctx, func(tctx context.Context) error {
				defer s.shutdown()
				// drive runs on a goroutine of its own: it gets run's ctx,
				// not the task's, which is the loop's.
				_, err := loop.ToThread(tctx, func() (struct{}, error) { return struct{}{}, h.drive(ctx, addr) })
				return err
			})
		}
		if _, err := s.stopping.Await(lctx); err != nil {
			return err
		}
		err = loop.WithTimeout(lctx, cfg.grace, s.srv.WaitClosed)
		if errors.Is(err, loop.ErrTimeout) {
			fmt.Fprintf(log, "reactor: replies still owed after %v: closing their connections\n", cfg.grace)
			s.abort()
			err = s.srv.WaitClosed(lctx)
		}
		if err != nil {
			return err
		}
		if driven != nil {
			if _, err := driven.Await(lctx); err != nil {
				return err
			}
			s.summary(os.Stdout)
		}
		return nil
	}, h.opts...)
}

// abort closes every connection at once (a second signal, or the end of
// the grace period).
func (s *server) abort() {
	s.aborted = true
	s.shutdown()
	s.srv.AbortClients()
}

// summary prints the server's side of a run.
func (s *server) summary(w io.Writer) {
	st := &s.stats
	fmt.Fprintf(w, "server: %d connections, %d replies (%d errors), %d pool rebuilds, peak %d messages / %.1f MiB admitted\n",
		st.conns.Load(), st.replies.Load()+st.errReplies.Load(), st.errReplies.Load(), st.rebuilds.Load(),
		st.peakJobs.Load(), float64(st.peakBytes.Load())/(1<<20))
}

// Command handoff answers the seed's first obstacle: "you cannot simply
// send a file descriptor to a different process", let alone pull a
// connection out of asyncio without closing it. An acceptor loop reads
// the first line of each client ("ROUTE a") to route it, takes the
// connection out of its loop with the bytes it had read past that line
// (loop.DetachStreams), and hands both to the worker process that owns
// the route (aio.Connection.CoroSendConn, SCM_RIGHTS). Each worker is an
// aio.Process running a loop of its own, which adopts the connection as
// streams (HandedConn.OpenStreams), the pre-read bytes first, and answers
// every line on the same connection with its route and pid. In Python the
// acceptor's side would be:
//
//	async def handle(reader, writer):
//	    route = (await reader.readline()).split()[1]
//	    sock = writer.get_extra_info('socket').dup()   # and reader's buffer?
//	    multiprocessing.reduction.send_handle(conns[route], sock.fileno(), pid)
//	    writer.transport.abort()   # closes the original: the worker has a dup
//
// which loses the bytes the reader had buffered, blocks the loop in
// send_handle, and cannot tell whether the worker got the descriptor.
// Here a hand-off the worker does not acknowledge (it is dead) fails, and
// the connection is still the acceptor's: it puts it back on its loop
// (loop.AttachStreams) and answers itself.
//
// Without flags it starts workers for routes a and b, serves a few
// clients, kills worker b, serves one more client of b, prints every
// exchange in order and exits; with -serve it serves until interrupted.
//
//	go run ./examples/handoff
//	go run ./examples/handoff -serve -addr 127.0.0.1:8888 -routes a,b,c
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/asyncgo/asyncgo/aio"
	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/loop"
)

type workerArgs struct {
	Route string
	C     *aio.Connection // the worker's end: hand-offs come on it
}

// worker runs in a child process: a loop that adopts each connection
// handed to it and answers its lines, until the acceptor closes its end
// of C; then it waits for its connections to end.
var worker = executor.Register("handoff.worker", func(a workerArgs) (struct{}, error) {
	defer a.C.Close()
	return struct{}{}, loop.RunMain(context.Background(), func(ctx context.Context) error {
		return loop.WithTaskGroup(ctx, func(ctx context.Context, tg *loop.TaskGroup) error {
			for {
				h, err := a.C.CoroRecvConn(ctx)
				if errors.Is(err, io.EOF) {
					return nil // the acceptor is done
				}
				if err != nil {
					return err
				}
				pre := bytes.Count(h.Prefix(), []byte("\n")) // whole lines the acceptor had read
				r, w, err := h.OpenStreams(ctx, 0)
				if err != nil {
					return err
				}
				_ = tg.Go(func(ctx context.Context) error { return answer(ctx, a.Route, pre, r, w) })
			}
		})
	})
})

// answer is a worker's side of one connection: "<route> pid=<pid>: line",
// marking the first pre lines, which came with the connection.
func answer(ctx context.Context, route string, pre int, r *loop.StreamReader, w *loop.StreamWriter) error {
	defer w.Close()
	for n := 0; ; n++ {
		line, err := r.ReadLine(ctx)
		if err != nil || len(line) == 0 {
			return nil // EOF or a reset: the client is gone
		}
		note := ""
		if n < pre {
			note = " (pre-read by the acceptor)"
		}
		fmt.Fprintf(w, "%s pid=%d: %s%s\n", route, os.Getpid(), bytes.TrimSuffix(line, []byte("\n")), note)
		if err := w.Drain(ctx); err != nil {
			return nil
		}
	}
}

// acceptor is the parent's side: each route's worker and the end of its
// Connection. Loop-only.
type acceptor struct {
	routes  []string
	workers map[string]*aio.Process
	conns   map[string]*aio.Connection
}

func startWorkers(routes []string) (*acceptor, error) {
	a := &acceptor{routes: routes, workers: map[string]*aio.Process{}, conns: map[string]*aio.Connection{}}
	for _, route := range routes {
		near, far, err := aio.Pipe(true)
		if err != nil {
			return a, err
		}
		p := aio.NewProcess(worker.Bind(workerArgs{Route: route, C: far}))
		p.Name = "worker-" + route
		err = p.Start()
		far.Close() // the child has its own
		if err != nil {
			near.Close()
			return a, err
		}
		a.workers[route], a.conns[route] = p, near
	}
	return a, nil
}

// stop closes the Connections, which ends each worker's receiving, and
// waits for the workers.
func (a *acceptor) stop(ctx context.Context) error {
	var errs []error
	for _, route := range a.routes {
		if c := a.conns[route]; c != nil {
			c.Close()
		}
	}
	for _, route := range a.routes {
		if p := a.workers[route]; p != nil {
			errs = append(errs, p.CoroJoin(ctx))
		}
	}
	return errors.Join(errs...)
}

// handle is the acceptor's task for a connection: route it by its first
// line, hand it off with what the reader holds past that line, and
// answer it here if the route has no worker or its worker is gone.
func (a *acceptor) handle(ctx context.Context, r *loop.StreamReader, w *loop.StreamWriter) error {
	line, err := r.ReadLine(ctx)
	if err != nil {
		return nil
	}
	route, ok := strings.CutPrefix(strings.TrimSpace(string(line)), "ROUTE ")
	c := a.conns[route]
	if !ok || c == nil {
		fmt.Fprintf(w, "acceptor: no worker for route %s\n", route)
		w.Close()
		return nil
	}
	sock, buffered, err := loop.DetachStreams(w)
	if err != nil {
		return err
	}
	err = c.CoroSendConn(ctx, sock, buffered)
	if err == nil {
		return nil // the worker has it; our copy is closed
	}
	if !errors.Is(err, aio.ErrHandoffFailed) {
		return err // not ours any more
	}
	// Still ours, with the bytes we had read: back on this loop.
	r, w, err = loop.AttachStreams(ctx, sock, buffered, 0)
	if err != nil {
		return err
	}
	defer w.Close()
	for {
		line, err := r.ReadLine(ctx)
		if err != nil || len(line) == 0 {
			return nil
		}
		fmt.Fprintf(w, "acceptor: worker %s is gone, so I answer: %s", route, line)
	}
}

func main() {
	executor.Init() // in a child process this runs worker and exits
	defer aio.Shutdown()

	fs := flag.NewFlagSet("handoff", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:0", "address to listen on")
	routes := fs.String("routes", "a,b", "the routes, one worker process each")
	serve := fs.Bool("serve", false, "serve until SIGINT/SIGTERM instead of running the demo")
	fs.Parse(os.Args[1:])

	ctx := context.Background()
	if *serve {
		var stop context.CancelFunc
		ctx, stop = signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
		defer stop()
	}
	var ready func(string)
	if *serve {
		ready = func(addr string) { fmt.Printf("handoff listening on %s, routes %s\n", addr, *routes) }
	}
	if err := run(ctx, *addr, strings.Split(*routes, ","), *serve, ready); err != nil {
		fmt.Fprintln(os.Stderr, "handoff:", err)
		aio.Shutdown()
		os.Exit(1)
	}
}

// run starts the workers and the acceptor's server, runs the demo, or with
// serve calls ready (if not nil) with the server's address and serves
// until serveCtx ends; then it stops the server and the workers.
func run(serveCtx context.Context, addr string, routes []string, serve bool, ready func(addr string)) error {
	return loop.RunMain(context.Background(), func(ctx context.Context) error {
		a, err := startWorkers(routes)
		if err != nil {
			return errors.Join(err, a.stop(ctx))
		}
		srv, err := loop.StartServer(ctx, a.handle, addr, nil)
		if err != nil {
			return errors.Join(err, a.stop(ctx))
		}
		addr = srv.Addrs()[0].String()
		if serve {
			if ready != nil {
				ready(addr)
			}
			serving, stop := context.WithCancel(ctx)
			defer context.AfterFunc(serveCtx, stop)()
			err = srv.ServeForever(serving)
			if serving.Err() != nil {
				err = nil // SIGINT or SIGTERM
			}
			stop()
		} else {
			err = demo(ctx, a, addr)
		}
		srv.Close()
		srv.CloseClients()
		return errors.Join(err, srv.WaitClosed(ctx), a.stop(ctx))
	})
}

// demo runs clients of the server on the same loop, at once, and prints
// their exchanges in client order; then it kills worker b and runs one
// more client of route b, which the acceptor answers itself.
func demo(ctx context.Context, a *acceptor, addr string) error {
	fmt.Printf("workers %s started: a process and a loop each\n", strings.Join(a.routes, " and "))
	clients := []string{"a", "b", "a", "c"}
	out := make([]string, len(clients))
	err := loop.WithTaskGroup(ctx, func(ctx context.Context, tg *loop.TaskGroup) error {
		for i, route := range clients {
			_ = tg.Go(func(ctx context.Context) (err error) {
				out[i], err = client(ctx, a, addr, i+1, route)
				return err
			})
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, s := range out {
		fmt.Print(s)
	}
	if p := a.workers["b"]; p != nil {
		if err := p.Kill(); err != nil {
			return err
		}
		if err := p.CoroJoin(ctx); err != nil {
			return err
		}
		fmt.Println("worker b killed")
		s, err := client(ctx, a, addr, len(clients)+1, "b")
		if err != nil {
			return err
		}
		fmt.Print(s)
	}
	return nil
}

// client sends its route line and a first line in one write (the
// acceptor reads both: the second travels with the connection), reads
// the answer, sends a second line, reads its answer, and closes. A
// worker's pid in an answer must be its route's worker's, not this
// process's; it is shown as "pid of worker <route>".
func client(ctx context.Context, a *acceptor, addr string, n int, route string) (string, error) {
	r, w, err := loop.OpenConnection(ctx, addr, nil)
	if err != nil {
		return "", err
	}
	defer w.Close()
	var b strings.Builder
	msgs := []string{fmt.Sprintf("hello from client %d", n), "bye"}
	w.Write([]byte("ROUTE " + route + "\n" + msgs[0] + "\n"))
	for i, msg := range msgs {
		if i > 0 {
			w.Write([]byte(msg + "\n"))
		}
		if err := w.Drain(ctx); err != nil {
			return "", err
		}
		line, err := r.ReadLine(ctx)
		if err != nil {
			return "", err
		}
		got, err := checkPid(a, strings.TrimSuffix(string(line), "\n"))
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "client %d, route %s: sent %q, got %q\n", n, route, msg, got)
		if strings.HasPrefix(got, "acceptor: no worker") {
			break // the acceptor closed the connection
		}
	}
	w.Close()
	return b.String(), w.WaitClosed(ctx)
}

// checkPid replaces the pid in a worker's answer ("a pid=1234: ...") by
// whose it is, and fails unless it is the pid of its route's worker.
func checkPid(a *acceptor, answer string) (string, error) {
	route, rest, ok := strings.Cut(answer, " pid=")
	if !ok {
		return answer, nil // the acceptor's own answer
	}
	pidText, text, _ := strings.Cut(rest, ": ")
	pid, err := strconv.Atoi(pidText)
	p := a.workers[route]
	if err != nil || p == nil || pid != p.Pid() || pid == os.Getpid() {
		return "", fmt.Errorf("answer %q is not from worker %s's process", answer, route)
	}
	return fmt.Sprintf("%s (pid of worker %s): %s", route, route, text), nil
}

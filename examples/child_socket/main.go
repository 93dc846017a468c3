// Command child_socket answers the seed's follow-up question: how does a
// child process send data on a socket that the parent's loop owns? It
// does not touch the socket. It puts the bytes, with the number of the
// connection they are for, on an aio.Queue, and a task on the parent's
// loop, which owns every socket, writes them there.
//
// The parent serves lines over TCP (loop.StartServer); each line a client
// sends goes to the worker process on a second queue, and the worker
// answers it with its name and the line in upper case ("worker: HELLO").
// In Python:
//
//	def worker(jobs, replies):
//	    while (job := jobs.get()) is not None:
//	        conn, line, eof = job
//	        replies.put((conn, None if eof else answer(line), eof))
//	    replies.put(None)
//
//	async def handle(reader, writer):
//	    conn = next(ids); conns[conn] = writer
//	    while line := await reader.readline():
//	        await jobs.coro_put((conn, line, False))
//	    await jobs.coro_put((conn, None, True))  # the worker's answer closes
//
//	async def write_replies():
//	    while (reply := await replies.coro_get()) is not None:
//	        conn, data, eof = reply
//	        if eof:
//	            conns.pop(conn).close()
//	        else:
//	            conns[conn].write(data)
//
// The end of a connection goes through the worker too, behind the lines
// before it, so the socket closes only once every answer is written.
// Without flags it starts the server on a free port, talks to it as a
// client, prints the exchange and exits; with -serve it serves until
// interrupted.
//
//	go run ./examples/child_socket
//	go run ./examples/child_socket -serve -addr 127.0.0.1:8888
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/asyncgo/asyncgo/aio"
	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/loop"
)

// A job is a line a client sent on connection Conn, or, with EOF set, the
// end of that connection. A reply is the worker's answer to a job. nil
// ends each queue (Python's None).
type job struct {
	Conn int
	Line []byte
	EOF  bool
}

type reply struct {
	Conn int
	Data []byte
	EOF  bool
}

type queues struct {
	Jobs    *aio.Queue[*job]
	Replies *aio.Queue[*reply]
}

// worker runs in the child process. It answers jobs in their order, so
// the answers of one connection come in the order of its lines, and its
// EOF after them.
var worker = executor.Register("child_socket.worker", func(q queues) (struct{}, error) {
	for {
		j, err := q.Jobs.Get()
		if err != nil {
			return struct{}{}, err
		}
		if j == nil {
			return struct{}{}, q.Replies.Put(nil)
		}
		r := &reply{Conn: j.Conn, EOF: j.EOF}
		if !j.EOF {
			line := bytes.TrimSuffix(j.Line, []byte("\n"))
			r.Data = fmt.Appendf(nil, "%s: %s\n", aio.CurrentName(), bytes.ToUpper(line))
		}
		if err := q.Replies.Put(r); err != nil {
			return struct{}{}, err
		}
	}
})

func main() {
	executor.Init() // in the child process this runs worker and exits
	defer aio.Shutdown()

	fs := flag.NewFlagSet("child_socket", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:0", "address to listen on")
	serve := fs.Bool("serve", false, "serve until SIGINT/SIGTERM instead of running the demo")
	fs.Parse(os.Args[1:])

	ctx := context.Background()
	var ready func(string)
	if *serve {
		var stop context.CancelFunc
		ctx, stop = signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
		defer stop()
		ready = func(addr string) { fmt.Println("child_socket listening on", addr) }
	}
	if err := run(ctx, *addr, *serve, ready); err != nil {
		fmt.Fprintln(os.Stderr, "child_socket:", err)
		aio.Shutdown()
		os.Exit(1)
	}
}

// run starts the worker process and the server on addr, then runs the
// demo, or with serve calls ready (if not nil) with the server's address
// and serves until serveCtx ends. It shuts down in order: no more
// connections, the worker's queue ended, its last replies written, the
// worker joined.
func run(serveCtx context.Context, addr string, serve bool, ready func(addr string)) error {
	return loop.RunMain(context.Background(), func(ctx context.Context) error {
		s := &server{
			q:     queues{Jobs: aio.NewQueue[*job](0), Replies: aio.NewQueue[*reply](0)},
			conns: map[int]*loop.StreamWriter{},
		}
		p := aio.NewProcess(worker.Bind(s.q))
		p.Name = "worker"
		if err := p.Start(); err != nil {
			return err
		}
		writer := loop.Spawn(ctx, func(ctx context.Context) (struct{}, error) {
			return struct{}{}, s.writeReplies(ctx)
		})
		err := s.listen(ctx, serveCtx, addr, serve, ready)
		// The worker answers the nil job with a nil reply, after every
		// other: the writer task ends once it has written them all.
		err = errors.Join(err, s.q.Jobs.CoroPut(ctx, nil))
		_, werr := writer.Await(ctx)
		err = errors.Join(err, werr, p.CoroJoin(ctx))
		if code, _ := p.ExitCode(); code != 0 {
			err = errors.Join(err, fmt.Errorf("the worker exited with code %d", code))
		}
		return err
	})
}

// listen runs the server on addr for the demo, or with serve until
// serveCtx ends; then it closes the server and its connections.
func (s *server) listen(ctx, serveCtx context.Context, addr string, serve bool, ready func(addr string)) error {
	srv, err := loop.StartServer(ctx, s.handle, addr, nil)
	if err != nil {
		return err
	}
	defer srv.CloseClients()
	defer srv.Close()
	addr = srv.Addrs()[0].String()
	if !serve {
		return demo(ctx, addr)
	}
	if ready != nil {
		ready(addr)
	}
	// serveCtx ends a ctx derived from the task's, not the task itself,
	// which can then still shut down in order.
	serving, stop := context.WithCancel(ctx)
	defer stop()
	defer context.AfterFunc(serveCtx, stop)()
	if err := srv.ServeForever(serving); serving.Err() == nil {
		return err
	}
	return nil // SIGINT or SIGTERM
}

// server is the parent's side: the connections by number, loop-only
// state that the handlers and the writer task share without a mutex.
type server struct {
	q     queues
	conns map[int]*loop.StreamWriter
	next  int
}

// handle is a connection's task: it hands each line to the worker, and
// the connection's end after them. It leaves the socket open: the
// worker's EOF reply closes it, once the replies before it are written.
func (s *server) handle(ctx context.Context, r *loop.StreamReader, w *loop.StreamWriter) error {
	s.next++
	conn := s.next
	s.conns[conn] = w
	for {
		line, err := r.ReadLine(ctx)
		if err != nil || len(line) == 0 { // an error (a reset, a line over the limit) ends it too
			return s.q.Jobs.CoroPut(ctx, &job{Conn: conn, EOF: true})
		}
		if err := s.q.Jobs.CoroPut(ctx, &job{Conn: conn, Line: line}); err != nil {
			return err
		}
	}
}

// writeReplies is the task that writes the worker's bytes to the sockets,
// until the worker's nil.
func (s *server) writeReplies(ctx context.Context) error {
	for {
		r, err := s.q.Replies.CoroGet(ctx)
		if err != nil || r == nil {
			return err
		}
		w := s.conns[r.Conn]
		if r.EOF {
			delete(s.conns, r.Conn)
			w.Close() // once what was written is sent
			continue
		}
		// Write never waits: the transport keeps what the socket does
		// not take. Awaiting Drain here would let one slow client stall
		// every other; a server for slow clients would give each
		// connection a task and a bounded loop.Queue of its own.
		_, _ = w.Write(r.Data) // an error means that the client is gone
	}
}

// demo is a client of the server on the same loop: it sends lines, reads
// each answer, and sees the server close after its own EOF.
func demo(ctx context.Context, addr string) error {
	r, w, err := loop.OpenConnection(ctx, addr, nil)
	if err != nil {
		return err
	}
	defer w.Close() // on an early return; closing twice does nothing
	for _, msg := range []string{"hello", "the parent owns this socket", "bye"} {
		w.Write([]byte(msg + "\n"))
		if err := w.Drain(ctx); err != nil {
			return err
		}
		line, err := r.ReadLine(ctx)
		if err != nil {
			return err
		}
		fmt.Printf("sent %q, got back %q\n", msg, line)
	}
	w.WriteEOF()
	rest, err := r.Read(ctx, -1) // the worker's EOF reply closes the socket
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return fmt.Errorf("unexpected %q after the last answer", rest)
	}
	fmt.Println("the server closed the connection")
	w.Close()
	return w.WaitClosed(ctx)
}

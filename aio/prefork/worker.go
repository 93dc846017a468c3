package prefork

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asyncgo/asyncgo/aio"
	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/loop"
	"golang.org/x/sys/unix"
)

// Handler is a worker's body. It runs in each worker process, in a task of
// the worker's own loop (loop.RunMain), and usually calls w.Serve; a worker
// is done when it returns. Gunicorn's post_fork and post_worker_init hooks
// are its first lines, worker_exit a defer.
type Handler func(ctx context.Context, w *Worker) error

// Func is a worker body registered with Register, for Start.
type Func struct {
	name string
	fn   *executor.Func[workerArg, struct{}]
}

// Name is the name the body was registered under.
func (f Func) Name() string { return f.name }

// Register registers a worker body under name, in executor's one registry,
// so that a worker process (a re-execution of this binary, which calls
// executor.Init first thing in main) finds it. Call it at package level,
// as executor.Register.
func Register(name string, h Handler) Func {
	if h == nil {
		panic("prefork: Register of a nil Handler")
	}
	fn := executor.Register("prefork:"+name, func(a workerArg) (struct{}, error) {
		return struct{}{}, runWorker(a, h)
	})
	return Func{name: name, fn: fn}
}

// workerArg is what a worker process is started with.
type workerArg struct {
	Ctl         *aio.Connection
	Slot        int
	Gen         int
	MaxRequests int64
	MaxConns    int64
	ReusePort   bool
	Network     string
	Addr        string
	Graceful    time.Duration
	Workers     int // in the group when it started
	Data        []byte
}

// Messages on a worker's control connection. Worker to master: msgReady
// once it serves, msgCount now and then (the requests and connections so
// far), msgRetire when it has reached its limits and wants a replacement.
// Master to worker: msgStop, drain and exit.
const (
	msgReady uint8 = iota + 1
	msgCount
	msgRetire
	msgStop
)

type ctlMsg struct {
	Kind     uint8
	Requests int64
	Conns    int64
}

// Worker is a worker process's view of the prefork group: its listener,
// its counters, and the master's requests to stop.
type Worker struct {
	arg      workerArg
	ln       *loop.Socket
	requests atomic.Int64
	conns    atomic.Int64
	retired  atomic.Bool
	retiring chan struct{} // closed when it reaches its limits
	stop     chan struct{} // closed when the master asks this worker to go
	stopOnce sync.Once
	sendMu   sync.Mutex
}

// Slot is the worker's place in the group, 0 to Workers-1; its
// replacement takes the same slot.
func (w *Worker) Slot() int { return w.arg.Slot }

// Generation counts the workers that have held this slot, from 1.
func (w *Worker) Generation() int { return w.arg.Gen }

// Data is Options.Data, as the master passed it.
func (w *Worker) Data() []byte { return w.arg.Data }

// Listener is the worker's listening socket: the master's, inherited, or
// with Options.ReusePort the worker's own. Serve serves it; a worker that
// serves it otherwise owns it from its first use.
func (w *Worker) Listener() *loop.Socket { return w.ln }

// Requests is the number of requests counted with RequestDone.
func (w *Worker) Requests() int64 { return w.requests.Load() }

// Stopping is closed when the worker should stop: the master asked it to
// (a replacement is serving, a rolling restart, a graceful stop), and
// Serve has stopped accepting.
func (w *Worker) Stopping() <-chan struct{} { return w.stop }

// RequestDone counts one request served. At the worker's MaxRequests (with
// its jitter) the worker asks the master for its replacement and stops
// accepting (on the shared socket; with ReusePort it accepts until it
// stops), and it drains once that one serves: gunicorn's max_requests.
// Any goroutine may call it.
func (w *Worker) RequestDone() {
	n := w.requests.Add(1)
	if w.arg.MaxRequests > 0 && n >= w.arg.MaxRequests {
		w.retire()
	}
}

func (w *Worker) connDone() {
	n := w.conns.Add(1)
	if w.arg.MaxConns > 0 && n >= w.arg.MaxConns {
		w.retire()
	}
}

// retire asks for a replacement, once.
func (w *Worker) retire() {
	if w.retired.CompareAndSwap(false, true) {
		close(w.retiring)
		go w.send(msgRetire)
	}
}

func (w *Worker) send(kind uint8) {
	w.sendMu.Lock()
	defer w.sendMu.Unlock()
	// An error means the master is gone; WatchParent ends this process.
	_ = w.arg.Ctl.Send(ctlMsg{Kind: kind, Requests: w.requests.Load(), Conns: w.conns.Load()})
}

func (w *Worker) stopNow() { w.stopOnce.Do(func() { close(w.stop) }) }

// ServeOptions configure Worker.Serve.
type ServeOptions struct {
	// OnDrain, if set, runs on the loop when the worker starts to drain:
	// the listener is closed and no connection will come; the protocols
	// should finish what they have and close their connections between
	// requests (see Worker.Stopping).
	OnDrain func()
	// Server is passed to CreateServer (Backlog, TLS, Limit...); its
	// Sockets and ReusePort are the Worker's.
	Server loop.ServerOptions
}

// Serve serves the worker's listener on the loop with a protocol from
// factory until the master asks the worker to stop (or ctx ends). Then it
// stops accepting, runs OnDrain, and waits for the connections to close,
// for at most the group's GracefulTimeout, after which it aborts them.
// Each connection accepted counts toward MaxConnections.
func (w *Worker) Serve(ctx context.Context, factory func() loop.BaseProtocol, opts *ServeOptions) error {
	if factory == nil {
		return errors.New("prefork: Serve with a nil protocol factory")
	}
	l, err := loop.RunningLoop(ctx)
	if err != nil {
		return err
	}
	return w.serve(ctx, l, opts, func(so *loop.ServerOptions) (*loop.Server, error) {
		return l.CreateServer(ctx, func() loop.BaseProtocol {
			w.connDone()
			return factory()
		}, "", so)
	})
}

// ServeStreams is Serve for a stream handler, as asyncio.start_server:
// each connection runs handler in a task of its own, which may await
// anything (loop.RunInExecutor with a ThreadPool or a ProcessPool of the
// worker's, say). Draining, the handlers see OnDrain and Stopping; those
// still running after GracefulTimeout have their connections aborted.
func (w *Worker) ServeStreams(ctx context.Context, handler func(ctx context.Context, r *loop.StreamReader, sw *loop.StreamWriter) error, opts *ServeOptions) error {
	if handler == nil {
		return errors.New("prefork: ServeStreams with a nil handler")
	}
	l, err := loop.RunningLoop(ctx)
	if err != nil {
		return err
	}
	return w.serve(ctx, l, opts, func(so *loop.ServerOptions) (*loop.Server, error) {
		return loop.StartServer(ctx, func(ctx context.Context, r *loop.StreamReader, sw *loop.StreamWriter) error {
			w.connDone()
			return handler(ctx, r, sw)
		}, "", so)
	})
}

func (w *Worker) serve(ctx context.Context, l *loop.Loop, opts *ServeOptions, start func(*loop.ServerOptions) (*loop.Server, error)) error {
	if w.ln == nil {
		return errors.New("prefork: the listener is taken (Serve called twice?)")
	}
	if opts == nil {
		opts = &ServeOptions{}
	}
	so := opts.Server
	so.Sockets = []*loop.Socket{w.ln}
	so.ReusePort = false
	if so.Backlog <= 0 {
		so.Backlog = listenBacklog // CreateServer listens again: keep the master's
	}
	if !w.arg.ReusePort && w.arg.Workers > 1 {
		// One connection at a time, and a pause after each, so that a
		// burst of connections is spread over the workers instead of
		// going to the first one woken (which is back at the socket
		// before the others wake): with 16 connections and 1 ms jobs one
		// worker took all 16 (952 msgs/s, 0.48x two cores).
		if so.AcceptPerWake <= 0 {
			so.AcceptPerWake = 1
		}
		if so.AcceptPause <= 0 {
			so.AcceptPause = acceptPause
		}
	}
	w.ln = nil
	srv, err := start(&so)
	if err != nil {
		return err
	}
	go w.send(msgReady) // not on the loop: a send may block
	stop := make(chan struct{})
	go func() { // now and then, the counts; ends with Serve
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		var last int64 = -1
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if n := w.requests.Load() + w.conns.Load(); n != last {
					last = n
					w.send(msgCount)
				}
			}
		}
	}()
	defer close(stop)
	stopping := loop.NewFuture[struct{}](l)
	go func() {
		retiring := w.retiring
		if w.arg.ReusePort {
			retiring = nil // closing its own listener would reset its queue
		}
		for {
			select {
			case <-retiring:
				// Past its limits: it accepts no more (the shared socket
				// keeps them for the others, and for its replacement) and
				// serves what it has until the replacement serves.
				_ = l.CallSoonThreadsafe(srv.Close)
				retiring = nil
				continue
			case <-w.stop:
			case <-ctx.Done():
			case <-stop:
				return
			}
			break
		}
		_ = l.CallSoonThreadsafe(func() { stopping.SetResult(struct{}{}) })
	}()
	_, _ = stopping.Await(context.WithoutCancel(ctx))
	srv.Close()
	if opts.OnDrain != nil {
		opts.OnDrain()
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.arg.Graceful)
	defer cancel()
	if err := srv.WaitClosed(wctx); err != nil {
		srv.AbortClients()
		_ = srv.WaitClosed(context.WithoutCancel(ctx))
	}
	return nil
}

// runWorker is a worker process: it takes its listener, runs h on a
// loop of its own, and reports its counts before it exits.
func runWorker(a workerArg, h Handler) error {
	if a.Ctl == nil {
		return errors.New("prefork: a worker started without its control connection")
	}
	defer a.Ctl.Close()
	w := &Worker{arg: a, stop: make(chan struct{}), retiring: make(chan struct{})}
	var err error
	if a.ReusePort {
		w.ln, err = reusePortListener(a.Network, a.Addr)
	} else {
		var fd int
		fd, err = a.Ctl.RecvHandle()
		if err == nil {
			w.ln, err = loop.SocketFromFd(fd)
			if err != nil {
				unix.Close(fd)
			}
		}
	}
	if err != nil {
		return fmt.Errorf("prefork: worker %d cannot take its listener: %w", a.Slot, err)
	}
	go func() { // the master's requests
		for {
			var m ctlMsg
			if err := a.Ctl.Recv(&m); err != nil {
				w.stopNow() // the master is gone (or closed us): drain and go
				return
			}
			if m.Kind == msgStop {
				w.stopNow()
			}
		}
	}()
	err = loop.RunMain(context.Background(), func(ctx context.Context) error {
		return h(ctx, w)
	})
	if w.ln != nil {
		w.ln.Close()
	}
	w.send(msgCount)
	return err
}

// acceptPause is a shared-socket worker's pause after each accept: about
// a sleeping process's wake-up, and a bound of 20,000 connections a
// second per worker.
const acceptPause = 50 * time.Microsecond

// listenBacklog is the group's listen backlog, the master's socket's and
// each SO_REUSEPORT listener's (Go's net.Listen uses somaxconn, 4096 on
// most hosts; 1024 is enough for bursts and bounded).
const listenBacklog = 1024

// reusePortListener is a worker's own listener on the group's address,
// with SO_REUSEPORT: the kernel spreads connections over the workers'
// listeners.
func reusePortListener(network, addr string) (*loop.Socket, error) {
	s, err := loop.NewSocket(network)
	if err != nil {
		return nil, err
	}
	if err := s.SetsockoptInt(unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.SetsockoptInt(unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.Bind(addr); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.Listen(listenBacklog); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

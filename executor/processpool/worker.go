package processpool

import (
	"errors"
	"fmt"
	"os"

	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/internal/child"
	"github.com/asyncgo/asyncgo/internal/wire"
)

// The worker side: what a worker process runs once executor.Init has found
// its marker, and the protocol it speaks with the pool.
//
// One wire stream per direction on the control socket. The worker opens
// with a hello frame (the start handshake: a worker that never reaches
// executor.Init never sends it). The pool then sends the initializer, if
// any, as request 0, which gets no answer (a failing initializer ends the
// worker), and then one call at a time: a request frame [request, arg]
// answered by [response] or, on success, [response, result].

const workerRole = "executor-worker"

func init() { child.RegisterRole(workerRole, workerMain) }

// hello is the worker's first frame.
type hello struct {
	Pid int
}

// request and response head every frame between a pool and a worker.
type request struct {
	ID uint64 // 0 is the initializer
	Fn string
}

type response struct {
	ID     uint64
	Err    *executor.RemoteError
	Resync bool // the worker could not read the request: restart the stream
	// ErrValue is Err.Err(), the value of a registered error type, as a
	// gob stream of its own (wire.Marshal): one the parent fails to
	// rebuild leaves it the text, and the connection's stream in step.
	ErrValue []byte
}

// server is a worker process serving its pool.
type server struct {
	rd   *wire.Reader
	wr   *wire.Writer
	exit chan int
}

// workerMain is a pool worker: it runs requests one at a time and answers
// each with a response frame followed, on success, by the result.
func workerMain(ctrl *os.File) int {
	child.WatchParent(ctrl)
	s := &server{rd: wire.NewReader(ctrl), wr: wire.NewWriter(ctrl), exit: make(chan int, 1)}
	if err := s.wr.Send(hello{Pid: os.Getpid()}); err != nil {
		return 1
	}
	go s.run()
	return <-s.exit
}

// run serves requests until the pool closes the stream. A call that ends
// its goroutine with runtime.Goexit is answered with an error from a
// deferred function, and a new goroutine takes over the stream.
func (s *server) run() {
	for {
		var req request
		code, ok := s.read(&req)
		if !ok {
			s.exit <- code
			return
		}
		if code, ok := s.serve(req); !ok {
			s.exit <- code
			return
		}
	}
}

// read reads the next request's header.
func (s *server) read(req *request) (code int, ok bool) {
	if err := s.rd.Next(); err != nil {
		return 0, false // the pool closed us
	}
	if err := s.rd.Decode(req); err != nil {
		fmt.Fprintln(os.Stderr, "asyncgo worker: bad request:", err)
		return 1, false
	}
	return 0, true
}

// serve runs one request and answers it; ok is false when the worker must
// exit with code.
func (s *server) serve(req request) (code int, ok bool) {
	returned := false
	defer func() {
		if returned {
			return
		}
		// runtime.Goexit in the call: answer for it, and serve on from
		// another goroutine, as this one is ending.
		err := executor.NewPanicError(0, executor.ErrGoexit)
		if code, ok := s.reply(req, response{Err: executor.NewRemoteError(err)}, nil); !ok {
			s.exit <- code
			return
		}
		go s.run()
	}()
	var resp response
	var result any
	h := executor.Lookup(req.Fn)
	if h == nil {
		resp.Err = &executor.RemoteError{
			Type:     "executor.ErrNotRegistered",
			Message:  fmt.Sprintf("%s: %q", executor.ErrNotRegistered.Error(), req.Fn),
			Sentinel: executor.ErrNotRegistered.Error(),
		}
		resp.Resync = true
	} else {
		r, err, argErr := h.Serve(s.rd)
		switch {
		case argErr != nil:
			resp.Err = executor.NewRemoteError(fmt.Errorf("cannot decode the argument of %s: %w", req.Fn, argErr))
			resp.Resync = true
		case err != nil:
			resp.Err = executor.NewRemoteError(err)
		default:
			result = r
		}
	}
	returned = true
	return s.reply(req, resp, result)
}

// reply answers req; the initializer (request 0) is not answered, and its
// failure ends the worker.
func (s *server) reply(req request, resp response, result any) (code int, ok bool) {
	if req.ID == 0 {
		if resp.Err != nil {
			fmt.Fprintln(os.Stderr, "asyncgo worker: exception in initializer:", resp.Err)
			return 1, false
		}
		return 0, true
	}
	resp.ID = req.ID
	if resp.Err != nil {
		if v := resp.Err.Err(); v != nil {
			// A value gob cannot carry leaves the text alone.
			resp.ErrValue, _ = wire.Marshal(v)
		}
		if s.wr.Send(resp) != nil {
			return 1, false
		}
		return 0, true
	}
	if err := s.wr.Send(resp, result); err != nil {
		var ee *wire.EncodeError
		if !errors.As(err, &ee) {
			return 1, false // the pool is gone
		}
		resp.Err = executor.NewRemoteError(fmt.Errorf("cannot encode the result of %s: %w", req.Fn, ee.Err))
		if s.wr.Send(resp) != nil {
			return 1, false
		}
	}
	return 0, true
}

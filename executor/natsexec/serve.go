package natsexec

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/asyncgo/asyncgo/executor"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ServeOptions configure a worker (Serve).
type ServeOptions struct {
	// URL is the NATS server, or a comma-separated list of a cluster's
	// servers; "" is nats.DefaultURL.
	URL string
	// Stream is the stream of calls, as the callers' Options.Stream; ""
	// is DefaultStream. If it does not exist yet, Serve makes it with the
	// defaults (a caller's New then sets its AckWait and MaxDeliver).
	Stream string
	// MaxInFlight bounds the calls this worker runs at once, and so the
	// calls it holds; 0 is runtime.NumCPU().
	MaxInFlight int
	// NATSOptions are added to the connection's options.
	NATSOptions []nats.Option
}

// startTimeout bounds a worker's wait for a caller's answer to a start
// request; one that does not come puts the call back.
const startTimeout = 10 * time.Second

// callerAwayDelay is how long a call whose caller has no subscriber waits
// before it is delivered again, times its delivery count: with the
// default MaxDeliver, a caller away for 10s (reconnecting to another
// server of a cluster) loses no call.
const callerAwayDelay = time.Second

// resultTimeout bounds a worker's wait for the caller's receipt of a
// result, and resultPatience its tries: a result is sent again until the
// caller confirms it, so that one sent while the caller reconnects is not
// lost; after resultPatience the call is put back to run again.
const (
	resultTimeout  = 5 * time.Second
	resultPatience = 20 * time.Second
)

// A worker's pull requests expire after pullExpiry, and the server sends
// a heartbeat every pullHeartbeat while one waits: a pull request lost
// (its server died, or the consumer's leader moved in a cluster) is
// noticed after two missed heartbeats and renewed, rather than after
// nats.go's default 30s.
const (
	pullExpiry    = 5 * time.Second
	pullHeartbeat = time.Second
)

// Serve runs this process as a worker of opts.Stream until ctx ends: it
// pulls calls, at most opts.MaxInFlight at a time, runs each registered
// function (executor.Register, as a process pool's worker does) and
// publishes its result to the caller. When ctx ends it takes no more calls,
// puts back those it holds but has not started, waits for the running
// ones to publish their results, closes its connection and returns nil.
// It returns an error if it cannot connect or bind to the stream.
//
//	func main() {
//		executor.Init()
//		if *worker {
//			log.Fatal(natsexec.Serve(ctx, natsexec.ServeOptions{URL: *natsURL}))
//		}
//		...
//	}
func Serve(ctx context.Context, opts ServeOptions) error {
	if opts.MaxInFlight < 0 {
		return errors.New("natsexec: negative MaxInFlight")
	}
	if opts.MaxInFlight == 0 {
		opts.MaxInFlight = runtime.NumCPU()
	}
	url := opts.URL
	if url == "" {
		url = nats.DefaultURL
	}
	q := queue{stream: opts.Stream}
	if q.stream == "" {
		q.stream = DefaultStream
	}
	nopts := append(connOptions(), opts.NATSOptions...)
	nc, err := nats.Connect(url, nopts...)
	if err != nil {
		return fmt.Errorf("natsexec: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("natsexec: %w", err)
	}
	cfg := queueConfig{ackWait: DefaultAckWait, maxDeliver: DefaultMaxDeliver, replicas: 1, objectTTL: DefaultObjectTTL}
	setup, cancel := context.WithTimeout(ctx, 30*time.Second)
	cons, obs, err := cfg.ensure(setup, js, q, false)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	w := &worker{ctx: ctx, nc: nc, cons: cons, obs: obs, maxBody: maxBody(nc), sem: make(chan struct{}, opts.MaxInFlight)}
	defer w.wg.Wait()
	return w.pull(opts.MaxInFlight)
}

type worker struct {
	ctx     context.Context
	nc      *nats.Conn
	cons    jetstream.Consumer
	obs     jetstream.ObjectStore
	maxBody int
	sem     chan struct{}
	wg      sync.WaitGroup
}

// pull hands calls to goroutines, at most cap(w.sem) at once.
func (w *worker) pull(batch int) error {
	for w.ctx.Err() == nil {
		it, err := w.cons.Messages(jetstream.PullMaxMessages(batch), jetstream.PullExpiry(pullExpiry), jetstream.PullHeartbeat(pullHeartbeat))
		if err != nil {
			select {
			case <-w.ctx.Done():
			case <-time.After(250 * time.Millisecond): // the server is away: retry
			}
			continue
		}
		// Drain puts back the calls it buffered, but waits (flushes) for
		// a server that is away: then Stop, and the server redelivers them
		// after AckWait.
		stop := context.AfterFunc(w.ctx, func() {
			if w.nc.IsConnected() {
				it.Drain()
			} else {
				it.Stop()
			}
		})
		w.drain(it)
		stop()
		it.Stop()
	}
	return nil
}

// drain serves it until it closes: at ctx's end, after the calls it had
// buffered, which are put back at once for other workers.
func (w *worker) drain(it jetstream.MessagesContext) {
	for {
		select {
		case w.sem <- struct{}{}:
		case <-w.ctx.Done():
			for {
				m, err := it.Next()
				if err != nil {
					return
				}
				_ = m.Nak()
			}
		}
		m, err := it.Next()
		if err != nil {
			<-w.sem
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) || w.ctx.Err() != nil {
				return
			}
			continue // a missed heartbeat while the server is away
		}
		if w.ctx.Err() != nil {
			<-w.sem
			_ = m.Nak()
			continue
		}
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			defer func() { <-w.sem }()
			w.handle(m)
		}()
	}
}

// handle runs one call: it asks the caller whether the call may start,
// keeps the lease while it runs, publishes the result and acks.
func (w *worker) handle(m jetstream.Msg) {
	h := m.Headers()
	id, reply, fn := h.Get(hdrMsgID), h.Get(hdrReply), h.Get(hdrFn)
	if id == "" || reply == "" {
		_ = m.Term() // not a call
		return
	}
	start := nats.NewMsg(reply)
	start.Header.Set(hdrKind, kindStart)
	start.Header.Set(hdrMsgID, id)
	var delivery uint64 = 1
	if md, err := m.Metadata(); err == nil {
		delivery = md.NumDelivered
	}
	start.Header.Set(hdrDelivery, strconv.FormatUint(delivery, 10))
	resp, err := w.nc.RequestMsg(start, startTimeout)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		// The caller is gone, or reconnecting: try again later, and let
		// MaxDeliver drop the calls of a caller that does not come back.
		_ = m.NakWithDelay(callerAwayDelay * time.Duration(delivery))
		return
	case err != nil:
		_ = m.NakWithDelay(time.Second)
		return
	case string(resp.Data) != startOK:
		_ = m.Term() // cancelled, or resolved already
		return
	}
	stopLease := w.keepLease(m, reply, id)
	var head resultHead
	var result any
	body := m.Data()
	argName := h.Get(hdrBlob)
	if argName != "" {
		body, err = w.getObject(argName)
		if err != nil {
			head.Err = executor.NewRemoteError(fmt.Errorf("natsexec: cannot fetch the argument of %s: %w", fn, err))
		}
	}
	if head.Err == nil {
		result, head.Err = run(fn, body)
	}
	if head.Err != nil {
		if v := head.Err.Err(); v != nil {
			head.ErrValue, _ = marshalValue(v)
		}
	}
	perr := w.sendResult(reply, id, fn, head, result)
	stopLease()
	if perr != nil {
		_ = m.Nak() // the caller did not confirm the result: let the call run again
		return
	}
	_ = m.Ack()
	if argName != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = w.obs.Delete(ctx, argName)
		cancel()
	}
}

// keepLease sends in-progress acks every third of the consumer's AckWait
// until the returned function is called, and tells the caller, which
// gives up a call on its last delivery when they stop (see watchdog).
func (w *worker) keepLease(m jetstream.Msg, reply, id string) (stop func()) {
	every := DefaultAckWait / 3
	if info := w.cons.CachedInfo(); info != nil && info.Config.AckWait > 0 {
		every = info.Config.AckWait / 3
	}
	if d, err := time.ParseDuration(m.Headers().Get(hdrAckWait)); err == nil && d > 0 {
		every = min(every, d/3)
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = m.InProgress()
				alive := nats.NewMsg(reply)
				alive.Header.Set(hdrKind, kindAlive)
				alive.Header.Set(hdrMsgID, id)
				_ = w.nc.PublishMsg(alive)
			}
		}
	}()
	return func() { close(done); <-finished }
}

// run runs the registered function fn on the argument in body: its
// result, or its error as the caller receives it. A function that calls
// runtime.Goexit ends only the goroutine run starts for it.
func run(fn string, body []byte) (result any, rerr *executor.RemoteError) {
	handler := executor.Lookup(fn)
	if handler == nil {
		return nil, &executor.RemoteError{
			Type:     "executor.ErrNotRegistered",
			Message:  fmt.Sprintf("%s: %q", executor.ErrNotRegistered.Error(), fn),
			Sentinel: executor.ErrNotRegistered.Error(),
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		returned := false
		defer func() {
			if !returned {
				rerr = executor.NewRemoteError(executor.NewPanicError(0, executor.ErrGoexit))
			}
		}()
		r, err, argErr := handler.Serve(newDecoder(body))
		switch {
		case argErr != nil:
			rerr = executor.NewRemoteError(fmt.Errorf("natsexec: cannot decode the argument of %s: %w", fn, argErr))
		case err != nil:
			rerr = executor.NewRemoteError(err)
		default:
			result = r
		}
		returned = true
	}()
	<-done
	return result, rerr
}

// sendResult sends the call's result, or its error, to the caller,
// through the object store if it is too large for a message, until the
// caller confirms it (resultPatience).
func (w *worker) sendResult(reply, id, fn string, head resultHead, result any) error {
	var body []byte
	var err error
	if head.Err != nil {
		body, err = encodeValues(head)
	} else if body, err = encodeValues(head, result); err != nil {
		head.Err = executor.NewRemoteError(fmt.Errorf("natsexec: cannot encode the result of %s: %w", fn, err))
		body, err = encodeValues(head)
	}
	if err != nil {
		return err
	}
	msg := nats.NewMsg(reply)
	msg.Header.Set(hdrKind, kindResult)
	msg.Header.Set(hdrMsgID, id)
	if len(body) > w.maxBody {
		name := id + ".result"
		if _, err := w.putObject(name, body); err != nil {
			return err
		}
		msg.Header.Set(hdrBlob, name)
		msg.Header.Set(hdrSize, strconv.Itoa(len(body)))
		body = nil
	}
	msg.Data = body
	deadline := time.Now().Add(resultPatience)
	for {
		_, err := w.nc.RequestMsg(msg, resultTimeout)
		if err == nil || w.nc.IsClosed() || time.Now().After(deadline) {
			return err
		}
		// No subscriber (the caller reconnecting, or gone) or no answer.
		select {
		case <-time.After(250 * time.Millisecond):
		case <-w.ctx.Done():
			return err // stopping: another worker runs it again
		}
	}
}

func (w *worker) getObject(name string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return w.obs.GetBytes(ctx, name)
}

func (w *worker) putObject(name string, b []byte) (*jetstream.ObjectInfo, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return w.obs.PutBytes(ctx, name, b)
}

package natsexec

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/asyncgo/asyncgo/executor"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// publishRetry bounds the retries of a call's publish that failed (no
// stream leader, no connection) before its future fails.
const publishRetry = time.Minute

// ErrMaxDeliver is the error of a call that was delivered to workers
// MaxDeliver times without a result: each worker that took it died or
// lost its lease (see the package doc).
var ErrMaxDeliver = errors.New("natsexec: call delivered MaxDeliver times without a result")

// Options configure an Executor.
type Options struct {
	// URL is the NATS server (or a comma-separated list of a cluster's
	// servers) to join. Empty means an embedded server: an in-process
	// nats-server with JetStream, on a file store in StoreDir or a
	// temporary directory, reachable on 127.0.0.1 with a random token,
	// shut down (and its temporary directory removed) by Shutdown.
	URL string
	// StoreDir is the embedded server's store; "" is a fresh temporary
	// directory. Ignored with a URL.
	StoreDir string
	// Stream names the JetStream stream of calls, and with it the subjects,
	// the consumer and the object store bucket; "" is DefaultStream.
	// Callers and workers of one stream must agree on it.
	Stream string
	// AckWait is how long a worker may hold a call without a sign of life
	// before the call is redelivered to another; a worker running a call
	// sends in-progress acks every AckWait/3. 0 is DefaultAckWait.
	AckWait time.Duration
	// MaxDeliver is how many times a call is delivered before its future
	// fails with ErrMaxDeliver; 0 is DefaultMaxDeliver.
	MaxDeliver int
	// Replicas is the replication factor of the stream and of the object
	// store in a JetStream cluster (at most its size; 3 survives the loss
	// of one server); 0 is 1. It applies when this Executor makes them.
	Replicas int
	// MemoryStorage keeps the stream in memory rather than on disk: faster,
	// lost with the server.
	MemoryStorage bool
	// LocalWorkers is a number of worker processes of this binary (see
	// executor.Init) to start on this host, serving the stream until
	// Shutdown; 0 starts none, and workers come from Serve elsewhere.
	LocalWorkers int
	// WorkerInFlight bounds the calls each local worker runs at once; 0 is
	// the default of ServeOptions.MaxInFlight.
	WorkerInFlight int
	// NATSOptions are added to the connection's options (credentials,
	// TLS, a name).
	NATSOptions []nats.Option
}

// Executor is an executor.Executor whose calls run on workers (Serve)
// anywhere that reaches its NATS server: each call is a message of a
// JetStream work-queue stream, its result a message to this Executor's own
// subject. Safe for concurrent use. Make one with New.
type Executor struct {
	q        queue
	emb      *embedded
	url      string
	nc       *nats.Conn
	js       jetstream.JetStream
	obs      jetstream.ObjectStore
	reply    string
	maxBody  int
	ackWait  time.Duration
	maxDeliv int
	// ackWaitHdr is ackWait for hdrAckWait.
	ackWaitHdr string
	sub        *nats.Subscription
	advisory   *nats.Subscription
	local      *localWorkers

	mu       sync.Mutex
	calls    map[string]*call
	bySeq    map[uint64]string
	last     map[*call]time.Time // calls on their last delivery: when to give them up
	outq     []*call
	wake     chan struct{} // the publisher has work
	shutdown bool
	empty    *sync.Cond // calls became empty

	acks     chan pending
	bg       sync.WaitGroup
	closed   chan struct{}
	closeOne sync.Once
}

// call is one submitted call, until its future is done.
type call struct {
	id      string
	job     executor.Job
	started bool
	seq     uint64
}

type pending struct {
	c   *call
	msg *nats.Msg
	fut jetstream.PubAckFuture
}

// New connects to opts.URL, or starts an embedded server, makes the stream
// if it does not exist (and its consumer's AckWait and MaxDeliver
// opts'), and starts opts.LocalWorkers worker processes.
func New(opts Options) (*Executor, error) {
	if opts.LocalWorkers < 0 || opts.MaxDeliver < 0 || opts.AckWait < 0 || opts.Replicas < 0 || opts.WorkerInFlight < 0 {
		return nil, errors.New("natsexec: negative option")
	}
	cfg := queueConfig{ackWait: opts.AckWait, maxDeliver: opts.MaxDeliver, replicas: opts.Replicas, memory: opts.MemoryStorage, objectTTL: DefaultObjectTTL}
	if cfg.ackWait == 0 {
		cfg.ackWait = DefaultAckWait
	}
	if cfg.maxDeliver == 0 {
		cfg.maxDeliver = DefaultMaxDeliver
	}
	if cfg.replicas == 0 {
		cfg.replicas = 1
	}
	e := &Executor{
		q:      queue{stream: opts.Stream},
		url:    opts.URL,
		calls:  make(map[string]*call),
		bySeq:  make(map[uint64]string),
		last:   make(map[*call]time.Time),
		wake:   make(chan struct{}, 1),
		acks:   make(chan pending, 4096),
		closed: make(chan struct{}),
	}
	e.empty = sync.NewCond(&e.mu)
	if e.q.stream == "" {
		e.q.stream = DefaultStream
	}
	if e.url == "" {
		emb, err := startEmbedded(opts.StoreDir)
		if err != nil {
			return nil, err
		}
		e.emb, e.url = emb, emb.url
	}
	ok := false
	defer func() {
		if !ok {
			e.closeAll()
		}
	}()
	nopts := append(connOptions(), opts.NATSOptions...)
	nc, err := nats.Connect(e.url, nopts...)
	if err != nil {
		return nil, fmt.Errorf("natsexec: %w", err)
	}
	e.nc = nc
	e.js, err = jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096), jetstream.WithPublishAsyncTimeout(10*time.Second))
	if err != nil {
		return nil, fmt.Errorf("natsexec: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, e.obs, err = cfg.ensure(ctx, e.js, e.q, true); err != nil {
		return nil, err
	}
	e.maxBody = maxBody(nc)
	e.ackWait, e.maxDeliv = cfg.ackWait, cfg.maxDeliver
	e.ackWaitHdr = e.ackWait.String()
	e.reply = e.q.resultSubject(nuid.Next())
	if e.sub, err = nc.Subscribe(e.reply, e.onReply); err != nil {
		return nil, fmt.Errorf("natsexec: %w", err)
	}
	_ = e.sub.SetPendingLimits(-1, -1)
	if e.advisory, err = nc.Subscribe(e.q.maxDeliverAdvisory(), e.onMaxDeliver); err != nil {
		return nil, fmt.Errorf("natsexec: %w", err)
	}
	if err := nc.Flush(); err != nil {
		return nil, fmt.Errorf("natsexec: %w", err)
	}
	e.bg.Add(3)
	go e.publisher()
	go e.acker()
	go e.watchdog()
	if opts.LocalWorkers > 0 {
		e.local, err = startLocalWorkers(opts.LocalWorkers, ServeOptions{URL: e.url, Stream: e.q.stream, MaxInFlight: opts.WorkerInFlight})
		if err != nil {
			return nil, err
		}
	}
	ok = true
	return e, nil
}

// maxBody is the largest body sent in a message rather than through the
// object store: the server's max payload less room for the headers.
func maxBody(nc *nats.Conn) int {
	return max(int(nc.MaxPayload())-8<<10, 1<<10)
}

// URL returns the server's URL, with its token for an embedded server:
// what a worker elsewhere passes to Serve.
func (e *Executor) URL() string { return e.url }

// LocalWorkerPids returns the process ids of the live local workers, for
// display.
func (e *Executor) LocalWorkerPids() []int {
	if e.local == nil {
		return nil
	}
	return e.local.pids()
}

// SubmitJob implements executor.Executor: executor.Submit calls it. It
// queues the call for a goroutine that encodes and publishes it, so the
// caller never waits for the server or for a large argument.
func (e *Executor) SubmitJob(j executor.Job) error {
	if j.Name() == "" {
		return executor.ErrNotRegisteredCall
	}
	c := &call{id: nuid.Next(), job: j}
	e.mu.Lock()
	if e.shutdown {
		e.mu.Unlock()
		return executor.ErrShutdown
	}
	e.calls[c.id] = c
	e.outq = append(e.outq, c)
	e.mu.Unlock()
	select {
	case e.wake <- struct{}{}:
	default:
	}
	return nil
}

// publisher encodes queued calls and publishes them asynchronously; acker
// reads their acks.
func (e *Executor) publisher() {
	defer e.bg.Done()
	// Ends the publisher's ack goroutine, which the connection's close
	// does not end if an async publish made it after the close.
	defer e.js.CleanupPublisher()
	defer close(e.acks)
	var batch []*call
	for {
		e.mu.Lock()
		batch, e.outq = e.outq, batch[:0]
		e.mu.Unlock()
		if len(batch) == 0 {
			select {
			case <-e.wake:
				continue
			case <-e.closed:
				return
			}
		}
		for i, c := range batch {
			e.publish(c)
			batch[i] = nil
		}
	}
}

func (e *Executor) publish(c *call) {
	e.mu.Lock()
	_, live := e.calls[c.id]
	e.mu.Unlock()
	if !live {
		return // cancelled by Shutdown
	}
	body, err := encodeValues(c.job.Arg())
	if err != nil {
		e.finish(c.id, fmt.Errorf("natsexec: cannot encode the argument of %s: %w", c.job.Name(), err))
		return
	}
	msg := nats.NewMsg(e.q.callSubject())
	msg.Header.Set(hdrMsgID, c.id)
	msg.Header.Set(hdrReply, e.reply)
	msg.Header.Set(hdrFn, c.job.Name())
	msg.Header.Set(hdrAckWait, e.ackWaitHdr)
	if len(body) > e.maxBody {
		name := c.id + ".arg"
		if err := e.putObject(name, body); err != nil {
			e.finish(c.id, fmt.Errorf("natsexec: cannot store the argument of %s: %w", c.job.Name(), err))
			return
		}
		msg.Header.Set(hdrBlob, name)
		msg.Header.Set(hdrSize, strconv.Itoa(len(body)))
		body = nil
	}
	msg.Data = body
	fut, err := e.js.PublishMsgAsync(msg)
	e.acks <- pending{c: c, msg: msg, fut: fut}
	_ = err // retried by the acker, with the same id
}

func (e *Executor) putObject(name string, b []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := e.obs.PutBytes(ctx, name, b)
	return err
}

// acker records each call's stream sequence (for the MaxDeliver advisory)
// and republishes, with the same id, what failed: the stream's dedupe
// window makes a retry of a call that was stored a no-op.
func (e *Executor) acker() {
	defer e.bg.Done()
	for p := range e.acks {
		var ack *jetstream.PubAck
		if p.fut != nil {
			select {
			case ack = <-p.fut.Ok():
			case <-p.fut.Err():
			case <-e.closed:
				// Every call is done (a result can come before its
				// publish's ack): the acks still due will never come.
				continue
			}
		}
		// Retry for publishRetry: a cluster elects a new stream leader
		// in seconds, and the caller reconnects to another server.
		var lastErr error
		for deadline := time.Now().Add(publishRetry); ack == nil && time.Now().Before(deadline); {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			a, err := e.js.PublishMsg(ctx, p.msg)
			cancel()
			if err == nil {
				ack = a
				break
			}
			lastErr = err
			select {
			case <-e.closed:
				deadline = time.Time{}
			case <-time.After(250 * time.Millisecond):
			}
		}
		if ack == nil {
			select {
			case <-e.closed:
				continue
			default:
			}
			e.finish(p.c.id, fmt.Errorf("natsexec: cannot publish the call of %s to stream %s: %w", p.c.job.Name(), e.q.stream, lastErr))
			continue
		}
		e.mu.Lock()
		if _, ok := e.calls[p.c.id]; ok {
			p.c.seq = ack.Sequence
			e.bySeq[ack.Sequence] = p.c.id
		}
		e.mu.Unlock()
	}
}

// onReply handles what workers send to this Executor's subject: a start
// request, answered with whether the call may run (set_running_or_notify
// _cancel on the caller's future), or a result.
func (e *Executor) onReply(m *nats.Msg) {
	id := m.Header.Get(hdrMsgID)
	switch m.Header.Get(hdrKind) {
	case kindStart:
		answer := startOK
		e.mu.Lock()
		c := e.calls[id]
		switch {
		case c == nil:
			answer = startCancel // resolved already, or cancelled
		case !c.started:
			if c.job.Start() {
				c.started = true
			} else {
				e.removeLocked(c)
				answer = startCancel
			}
		}
		if answer == startOK {
			if n, _ := strconv.Atoi(m.Header.Get(hdrDelivery)); n >= e.maxDeliv {
				e.last[c] = e.giveUpAt()
			}
		}
		e.mu.Unlock()
		_ = m.Respond([]byte(answer))
	case kindAlive:
		e.mu.Lock()
		if c := e.calls[id]; c != nil {
			if _, ok := e.last[c]; ok {
				e.last[c] = e.giveUpAt()
			}
		}
		e.mu.Unlock()
	case kindResult:
		e.mu.Lock()
		c := e.calls[id]
		if c != nil {
			e.removeLocked(c)
		}
		e.mu.Unlock()
		// The receipt the worker waits for to ack the call, first: a
		// result held in the object store can take resolve a while to
		// fetch, and a worker that waits too long runs the call again.
		// The call is the caller's from here: a fetch that fails fails
		// its future.
		_ = m.Respond(nil)
		if c != nil {
			e.resolve(c, m)
		} // else a duplicate: the future is done already
	}
}

// resolve completes c's future from its result message.
func (e *Executor) resolve(c *call, m *nats.Msg) {
	body := m.Data
	if name := m.Header.Get(hdrBlob); name != "" {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		b, err := e.obs.GetBytes(ctx, name)
		if err == nil {
			_ = e.obs.Delete(ctx, name)
		}
		cancel()
		if err != nil {
			c.job.Fail(fmt.Errorf("natsexec: cannot fetch the result of %s: %w", c.job.Name(), err))
			return
		}
		body = b
	}
	d := newDecoder(body)
	var head resultHead
	if err := d.Decode(&head); err != nil {
		c.job.Fail(fmt.Errorf("natsexec: cannot decode the result of %s: %w", c.job.Name(), err))
		return
	}
	if head.Err != nil {
		if head.ErrValue != nil {
			_ = head.Err.DecodeErr(marshalled(head.ErrValue))
		}
		c.job.Fail(head.Err)
		return
	}
	if err := c.job.Decode(d); err != nil {
		c.job.Fail(fmt.Errorf("natsexec: cannot decode the result of %s: %w", c.job.Name(), err))
		return
	}
	c.job.Succeed()
}

// onMaxDeliver fails the call the server gave up on.
func (e *Executor) onMaxDeliver(m *nats.Msg) {
	var adv struct {
		Seq        uint64 `json:"stream_seq"`
		Deliveries int    `json:"deliveries"`
	}
	if json.Unmarshal(m.Data, &adv) != nil {
		return
	}
	e.mu.Lock()
	c := e.calls[e.bySeq[adv.Seq]]
	if c != nil {
		e.removeLocked(c)
	}
	e.mu.Unlock()
	if c != nil {
		c.job.Fail(fmt.Errorf("%w: %s was delivered %d times, and no worker returned its result within AckWait", ErrMaxDeliver, c.job.Name(), adv.Deliveries))
	}
}

// giveUpAt is when a call on its last delivery is given up if its worker
// shows no sign of life before: the server's AckWait, and a margin for the
// sign's way here.
func (e *Executor) giveUpAt() time.Time {
	return time.Now().Add(e.ackWait + min(e.ackWait/2, 5*time.Second))
}

// watchdog fails with ErrMaxDeliver the calls whose last delivery's
// worker went silent (died, or lost its connection). The server's
// MAX_DELIVERIES advisory (onMaxDeliver) does it too, but nats-server
// sends it only when it would deliver the call once more, so only while
// some worker asks for calls: without this, a call that killed every
// worker would leave its future pending.
func (e *Executor) watchdog() {
	defer e.bg.Done()
	t := time.NewTicker(max(e.ackWait/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-e.closed:
			return
		case now := <-t.C:
			var dead []*call
			e.mu.Lock()
			for c, at := range e.last {
				if now.After(at) {
					dead = append(dead, c)
				}
			}
			for _, c := range dead {
				e.removeLocked(c)
			}
			e.mu.Unlock()
			for _, c := range dead {
				c.job.Fail(fmt.Errorf("%w: %s was delivered %d times, and its last worker went silent for AckWait (%v)", ErrMaxDeliver, c.job.Name(), e.maxDeliv, e.ackWait))
			}
		}
	}
}

// finish fails the call id, if it is still pending.
func (e *Executor) finish(id string, err error) {
	e.mu.Lock()
	c := e.calls[id]
	if c != nil {
		e.removeLocked(c)
	}
	e.mu.Unlock()
	if c != nil {
		c.job.Fail(err)
	}
}

func (e *Executor) removeLocked(c *call) {
	delete(e.calls, c.id)
	delete(e.last, c)
	if c.seq != 0 {
		delete(e.bySeq, c.seq)
	}
	if len(e.calls) == 0 {
		e.empty.Broadcast()
	}
}

// Shutdown is shutdown(wait, cancel_futures); see executor.Executor. No
// more calls are accepted; with cancelFutures, the calls no worker has
// started are cancelled (a worker that reaches one drops it). The
// connection, the local workers and the embedded server stay until every
// other future is done; with wait, Shutdown returns then, once all of them
// are closed and every goroutine of the Executor has ended. A call that no
// worker ever serves keeps its future, and Shutdown with wait, waiting, as
// a Python call on a pool with no worker would.
func (e *Executor) Shutdown(wait, cancelFutures bool) {
	e.mu.Lock()
	first := !e.shutdown
	e.shutdown = true
	var cancelled []*call
	if cancelFutures {
		for _, c := range e.calls {
			if !c.started && c.job.Cancel() {
				cancelled = append(cancelled, c)
			}
		}
		for _, c := range cancelled {
			e.removeLocked(c)
		}
	}
	e.mu.Unlock()
	if first {
		e.bg.Add(1)
		go func() {
			defer e.bg.Done()
			e.mu.Lock()
			for len(e.calls) > 0 {
				e.empty.Wait()
			}
			e.mu.Unlock()
			e.closeAll()
		}()
	}
	if wait {
		<-e.closed
		e.bg.Wait()
	}
}

// closeAll closes everything the Executor holds, in order: its
// goroutines' inputs, the connection, the local workers, the server.
func (e *Executor) closeAll() {
	e.closeOne.Do(func() {
		if e.nc != nil {
			e.nc.Close()
		}
		close(e.closed)
		if e.local != nil {
			e.local.stop()
		}
		if e.emb != nil {
			e.emb.close()
		}
	})
}

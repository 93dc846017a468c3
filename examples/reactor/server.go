package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/executor/processpool"
	"github.com/asyncgo/asyncgo/loop"
)

// config is the server's settings, the flags parsed.
type config struct {
	addr       string
	workers    int
	maxSize    int           // largest message accepted, bytes
	cpu        time.Duration // the job's added CPU cost per message
	inflight   int           // per connection: messages accepted and not yet answered
	queue      int           // messages admitted and not yet processed, all connections
	queueBytes int           // their bytes
	maxConns   int           // connections served at once; more are closed at accept
	grace      time.Duration // how long a drain waits for replies before it aborts
}

const (
	// readSize is the server's one read buffer, shared by every
	// connection: between the read that fills it and the copy of what
	// is left when a connection stops mid-way there is no await, so no
	// other connection uses it meanwhile.
	readSize = 64 << 10
	// directRead: the rest of a message at least this large is read
	// straight into the message's own buffer, with no copy.
	directRead = 16 << 10
)

// server is the reactor: the listening socket, its connections, the pool
// and the global admission bound. Everything here belongs to the loop's
// goroutine except stats, which anyone may read.
type server struct {
	cfg     config
	l       *loop.Loop
	srv     *loop.Server
	log     io.Writer
	scratch []byte
	free    bufPool

	pool     *processpool.Pool
	gen      int            // pool generation: rebuild once per broken pool
	retiring sync.WaitGroup // goroutines shutting broken pools down

	conns       map[*conn]struct{}
	dirty       []*conn // connections with replies ready, flushed once per loop iteration
	dirtyNext   []*conn
	queued      []*request // read and admitted, waiting for a call: queued[qhead:]
	qhead       int
	dispatching bool    // dispatch is scheduled
	calls       int     // calls in the pool, not finished
	jobs        int     // messages admitted (from their header) and not yet processed
	bytes       int     // their bytes
	waiters     []*conn // connections waiting for admission, first come first served
	draining    bool
	aborted     bool                   // abort ran: calls still queued in the pool are cancelled at the end
	closed      bool                   // the pool is being shut down for good: no rebuild
	stopping    *loop.Future[struct{}] // set when the drain starts
	onShutdown  func()                 // called when the drain starts

	stats stats
}

// stats are counters for the summary and the tests; written on the loop,
// readable from any goroutine.
type stats struct {
	conns, replies, errReplies, dropped, rebuilds atomic.Int64
	refused                                       atomic.Int64 // connections over -max-conns
	jobs, bytes                                   atomic.Int64 // now
	peakJobs, peakBytes                           atomic.Int64
	peakPend                                      atomic.Int64 // the most unparsed bytes a paused connection held
	peakWbuf                                      atomic.Int64 // the largest write buffer a connection had
}

func newServer(l *loop.Loop, cfg config, log io.Writer) (*server, error) {
	s := &server{
		cfg:      cfg,
		l:        l,
		log:      log,
		scratch:  make([]byte, readSize),
		conns:    make(map[*conn]struct{}),
		stopping: loop.NewFuture[struct{}](l),
	}
	s.free.keep = min(cfg.queueBytes, 64<<20)
	var err error
	if s.pool, err = s.newPool(); err != nil {
		return nil, err
	}
	// Start the worker processes now, not on the first messages: an
	// empty batch each (nobody waits for their results).
	for range cfg.workers {
		if _, err := executor.Submit(s.pool, batchJob.Bind(Batch{})); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *server) newPool() (*processpool.Pool, error) {
	return processpool.New(processpool.Options{MaxWorkers: s.cfg.workers})
}

// newConn is the protocol factory: one conn per accepted connection.
func (s *server) newConn() loop.BaseProtocol {
	return &conn{s: s, want: -1, reqs: newRing(s.cfg.inflight)}
}

// admit takes room for a message of size bytes in the global bound, or
// queues c to be given it later (grant) and returns false. A message is
// counted from its header on, so the bound covers messages being read as
// well as those queued in the pool or running there.
func (s *server) admit(c *conn, size int) bool {
	if len(s.waiters) > 0 || !s.fits(size) {
		s.waiters = append(s.waiters, c)
		return false
	}
	s.take(size)
	return true
}

// fits reports whether one more message of size bytes fits the bound; a
// message larger than the whole byte bound is let in alone.
func (s *server) fits(size int) bool {
	return s.jobs < s.cfg.queue && (s.bytes+size <= s.cfg.queueBytes || s.jobs == 0)
}

func (s *server) take(size int) {
	s.jobs++
	s.bytes += size
	s.stats.jobs.Store(int64(s.jobs))
	s.stats.bytes.Store(int64(s.bytes))
	if int64(s.jobs) > s.stats.peakJobs.Load() {
		s.stats.peakJobs.Store(int64(s.jobs))
	}
	if int64(s.bytes) > s.stats.peakBytes.Load() {
		s.stats.peakBytes.Store(int64(s.bytes))
	}
}

// release gives back a message's room and lets waiting connections in.
func (s *server) release(size int) {
	s.jobs--
	s.bytes -= size
	s.stats.jobs.Store(int64(s.jobs))
	s.stats.bytes.Store(int64(s.bytes))
	for len(s.waiters) > 0 && s.fits(s.waiters[0].want) {
		c := s.waiters[0]
		s.waiters[0] = nil
		s.waiters = s.waiters[1:]
		size := c.want
		c.want = -1
		s.take(size)
		c.start(size)
		c.pump()
	}
}

func (s *server) unqueue(r *request) {
	for i, q := range s.queued[s.qhead:] {
		if q == r {
			i += s.qhead
			s.queued = append(s.queued[:i], s.queued[i+1:]...)
			r.queued = false
			return
		}
	}
}

func (s *server) unwait(c *conn) {
	for i, w := range s.waiters {
		if w == c {
			s.waiters = append(s.waiters[:i], s.waiters[i+1:]...)
			return
		}
	}
}

// enqueue queues r, read to its end, for the pool. Messages are sent in
// batches, one call each, by dispatch, once per loop iteration: what
// arrives while the pool is busy goes in the next call together.
func (s *server) enqueue(r *request) {
	r.queued = true
	s.queued = append(s.queued, r)
	if !s.dispatching {
		s.dispatching = true
		s.l.CallSoon(s.dispatch)
	}
}

// dispatch sends the queued messages to the pool while fewer than two
// calls per worker are in it (the second waits in the pool when the first
// ends, so that a worker is never idle while the next call crosses the
// loop), sharing them among the free calls, at most a batch each.
func (s *server) dispatch() {
	s.dispatching = false
	for s.calls < 2*s.cfg.workers && s.qhead < len(s.queued) {
		q := s.queued[s.qhead:]
		// Share what waits among the free calls, so that the workers
		// are busy together rather than one with a long batch.
		free := 2*s.cfg.workers - s.calls
		limit := min(maxBatch, (len(q)+free-1)/free)
		n, size := 0, 0
		for n < len(q) && n < limit && (n == 0 || size+len(q[n].buf) <= maxBatchBytes) {
			size += len(q[n].buf)
			n++
		}
		batch := make([]*request, n)
		copy(batch, q)
		clear(q[:n])
		s.qhead += n
		s.submit(batch)
	}
	if s.qhead == len(s.queued) {
		s.queued, s.qhead = s.queued[:0], 0
	}
}

const (
	maxBatch      = 64      // messages in one call
	maxBatchBytes = 1 << 20 // their bytes; a larger message goes alone
)

// call is one call in the pool: a batch of messages.
type call struct {
	s    *server
	reqs []*request
	gen  int // the pool generation it was submitted to
}

// submit sends a batch to the pool: executor.Submit and WrapFuture, the
// two halves of loop.RunInExecutorOn, kept apart so that a pool found
// broken at the submit is rebuilt and the batch submitted to the new one.
func (s *server) submit(reqs []*request) {
	msgs := make([]Message, len(reqs))
	for i, r := range reqs {
		msgs[i] = r.buf
		r.queued = false
	}
	c := &call{s: s, reqs: reqs}
	s.calls++
	job := batchJob.Bind(Batch{Msgs: msgs, CPU: s.cfg.cpu})
	cf, err := executor.Submit(s.pool, job)
	if errors.Is(err, executor.ErrBrokenExecutor) {
		s.rebuild(s.gen)
		cf, err = executor.Submit(s.pool, job)
	}
	if err != nil {
		s.l.CallSoon(func() { c.end(nil, err, true) })
		return
	}
	c.gen = s.gen
	loop.WrapFuture(s.l, cf).AddDoneCallback(c.onDone)
}

func (c *call) onDone(f *loop.Future[[]Result]) {
	res, err := f.Result()
	if err == nil && len(res) != len(c.reqs) {
		err = fmt.Errorf("reactor: the job returned %d results for %d messages", len(res), len(c.reqs))
	}
	// A call that failed for a worker that died may still be being
	// encoded for it: its buffers are the garbage collector's now.
	c.end(res, err, !errors.Is(err, executor.ErrBrokenProcessPool))
}

// end is the end of a call: each message's room in the bound is given
// back, its buffer reused, its reply queued.
func (c *call) end(res []Result, err error, reuse bool) {
	s := c.s
	s.calls--
	if errors.Is(err, executor.ErrBrokenProcessPool) {
		s.rebuild(c.gen)
		err = fmt.Errorf("reactor: the worker process running this message died: %w", err)
	}
	for i, r := range c.reqs {
		switch {
		case err != nil:
			r.status, r.errMsg = 1, err.Error()
		case res[i].Err != "":
			r.status, r.errMsg = 1, res[i].Err
		default:
			r.result = res[i].Data
		}
		size := len(r.buf)
		if reuse {
			s.free.put(r.buf)
		}
		r.buf, r.done = nil, true
		s.markDirty(r.c)
		s.release(size)
	}
	s.dispatch()
}

// markDirty schedules c's flush. The completions the loop runs in one
// iteration thus send their replies in one write per connection, a
// syscall (and a wake-up of the client) saved for each reply but one.
func (s *server) markDirty(c *conn) {
	if c.dirty {
		return
	}
	c.dirty = true
	s.dirty = append(s.dirty, c)
	if len(s.dirty) == 1 {
		s.l.CallSoon(s.flushDirty)
	}
}

func (s *server) flushDirty() {
	cs := s.dirty
	s.dirty = s.dirtyNext[:0]
	for _, c := range cs {
		c.dirty = false
		c.flush()
	}
	clear(cs)
	s.dirtyNext = cs[:0]
}

// rebuild replaces the pool of generation gen, broken, with a new one, and
// shuts the broken one down off the loop. Every future of a broken pool
// fails, each calling rebuild: only the first, of the current generation,
// rebuilds.
func (s *server) rebuild(gen int) {
	if gen != s.gen || s.closed {
		return
	}
	p, err := s.newPool()
	if err != nil {
		fmt.Fprintf(s.log, "reactor: cannot rebuild the process pool: %v\n", err)
		return
	}
	old := s.pool
	s.pool = p
	s.gen++
	s.stats.rebuilds.Add(1)
	fmt.Fprintln(s.log, "reactor: a worker process died; the process pool is rebuilt")
	s.retiring.Add(1)
	go func() {
		defer s.retiring.Done()
		old.Shutdown(true, false)
	}()
}

// shutdown starts the drain: stop accepting, read no more, answer what was
// accepted, close each connection once it is answered.
func (s *server) shutdown() {
	if s.draining {
		return
	}
	s.draining = true
	if s.onShutdown != nil {
		s.onShutdown()
	}
	s.srv.Close()
	for c := range s.conns {
		c.stop()
	}
	_ = s.stopping.SetResult(struct{}{})
}

// request is one message from its header to its reply.
type request struct {
	c      *conn
	buf    []byte // the message; nil once its job is done
	fill   int    // bytes of buf read so far
	queued bool   // in server.queued, not sent to the pool yet
	done   bool
	status byte
	result []byte // the job's result, for status 0
	errMsg string // or its error, for status 1
}

// conn is one connection's protocol, an asyncio.BufferedProtocol: the
// transport reads into the buffer GetBuffer returns, the server's shared
// one or, for the rest of a large message, the message's own buffer.
type conn struct {
	s    *server
	t    loop.Transport
	reqs ring              // accepted and not yet answered, in order
	cur  *request          // the message being read: the last of reqs
	body *loop.TimerHandle // ends a body that does not arrive in bodyTimeout
	hdr  [4]byte           // a frame header being read
	nhdr int
	want int    // the size of a message waiting for admission, or -1
	pend []byte // bytes read but not parsed while the connection waits

	direct      bool // the last GetBuffer was cur's own buffer
	dirty       bool // in server.dirty
	reading     bool
	writePaused bool // the client reads its replies slower than they come
	closing     bool // no more messages: close once every reply is sent
	lingering   bool // every reply sent: reading and dropping until EOF (finish)
	linger      *loop.TimerHandle
	lost        bool
	out         []byte
}

func (c *conn) ConnectionMade(t loop.Transport) {
	if len(c.s.conns) >= c.s.cfg.maxConns {
		// Each connection may keep a read's worth of bytes while it waits
		// for the global bound: their number bounds that memory.
		c.lost = true
		c.s.stats.refused.Add(1)
		t.Abort()
		return
	}
	c.t, c.reading = t, true
	c.s.conns[c] = struct{}{}
	c.s.stats.conns.Add(1)
	if c.s.draining {
		c.stop()
	}
}

func (c *conn) GetBuffer(int) []byte {
	if r := c.cur; r != nil && len(r.buf)-r.fill >= directRead {
		c.direct = true
		return r.buf[r.fill:]
	}
	c.direct = false
	return c.s.scratch
}

func (c *conn) BufferUpdated(n int) {
	if !c.direct {
		c.consume(c.s.scratch[:n])
		return
	}
	r := c.cur
	if r.fill += n; r.fill == len(r.buf) {
		c.bodyDone()
		c.s.enqueue(r)
	}
	c.update()
}

// consume parses frames out of data. It stops at the per-connection bound
// (K accepted and unanswered), the global one, or a client behind on its
// replies (writePaused), keeping the rest in pend.
func (c *conn) consume(data []byte) {
	for len(data) > 0 && !c.closing {
		if r := c.cur; r != nil {
			k := copy(r.buf[r.fill:], data)
			data = data[k:]
			if r.fill += k; r.fill == len(r.buf) {
				c.bodyDone()
				c.s.enqueue(r)
			}
			continue
		}
		if c.want >= 0 || c.writePaused || c.reqs.len() >= c.s.cfg.inflight {
			break // wait for room: kept in pend until then
		}
		k := copy(c.hdr[c.nhdr:], data)
		data = data[k:]
		if c.nhdr += k; c.nhdr < len(c.hdr) {
			break
		}
		c.nhdr = 0
		c.header(int(binary.BigEndian.Uint32(c.hdr[:])))
	}
	c.keep(data)
	c.update()
}

func (c *conn) header(size int) {
	if size > c.s.cfg.maxSize {
		c.reject(size)
		return
	}
	if !c.s.admit(c, size) {
		c.want = size
		return
	}
	c.start(size)
}

// start begins reading a message of size bytes, admitted.
func (c *conn) start(size int) {
	r := &request{c: c, buf: c.s.free.get(size)}
	c.reqs.push(r)
	if size == 0 {
		c.s.enqueue(r)
		return
	}
	c.cur = r
}

// armBody starts the body's timer when a read ends with a body still
// incomplete (most bodies come whole in the read of their header, and
// pay nothing). An admitted message holds room in the global bound until
// its body is in: a client that sends headers and no bodies would
// otherwise hold the bound, and stall every other client, for as long as
// it stays connected.
func (c *conn) armBody() {
	r := c.cur
	if r == nil || c.body != nil || c.lost {
		return
	}
	c.body = c.s.l.CallLater(bodyTimeout, func() {
		c.body = nil
		if c.cur == r && !c.lost {
			c.stop() // as a frame cut short: dropped, the replies owed sent, closed
		}
	})
}

// bodyTimeout bounds the time from a message's header to the end of its
// body.
var bodyTimeout = 30 * time.Second

// bodyDone ends the wait for the current body.
func (c *conn) bodyDone() {
	c.cur = nil
	if c.body != nil {
		c.body.Cancel()
		c.body = nil
	}
}

// reject answers a frame over the cap with an error, after the replies
// owed before it, and closes the connection: the rest of the stream
// cannot be parsed without reading the frame, which is what the cap
// refuses.
func (c *conn) reject(size int) {
	c.reqs.push(&request{c: c, done: true, status: 1, errMsg: fmt.Sprintf(
		"reactor: frame of %d bytes is over the cap of %d bytes (-max-size)", size, c.s.cfg.maxSize)})
	c.closing = true
	c.pend = nil
	c.flush()
}

// keep holds unparsed bytes until the connection may go on; rest may be
// a tail of pend itself.
func (c *conn) keep(rest []byte) {
	switch {
	case len(rest) == 0 || c.closing:
		c.pend = c.pend[:0]
	case cap(c.pend) >= len(rest):
		c.pend = c.pend[:len(rest)]
		copy(c.pend, rest)
	default:
		c.pend = append([]byte(nil), rest...)
	}
	if n := int64(len(c.pend)); n > c.s.stats.peakPend.Load() {
		c.s.stats.peakPend.Store(n)
	}
}

// pump goes on after a wait: parse what was kept, then read again.
func (c *conn) pump() {
	if c.lost {
		return
	}
	if len(c.pend) > 0 {
		c.consume(c.pend)
		return
	}
	c.update()
}

// update reads from the socket only while the connection may take a
// message: under its bound, not waiting for admission, nothing kept, and
// its client reading its replies.
func (c *conn) update() {
	if c.lost {
		return
	}
	c.armBody()
	// A body already admitted is read even while the client is behind
	// on its replies: it holds room in the global bound until it is in.
	read := c.lingering || !c.closing && len(c.pend) == 0 && c.want < 0 &&
		(c.cur != nil || !c.writePaused && c.reqs.len() < c.s.cfg.inflight)
	if read == c.reading {
		return
	}
	c.reading = read
	if read {
		c.t.ResumeReading()
	} else {
		c.t.PauseReading()
	}
}

// flush writes the replies that are ready, in order, in one write, and
// closes a closing connection once nothing is owed.
func (c *conn) flush() {
	out := c.out[:0]
	var ok, failed int64
	for c.reqs.len() > 0 && c.reqs.first().done {
		r := c.reqs.pop()
		if c.lost {
			c.s.stats.dropped.Add(1) // the client is gone: its result is dropped
			continue
		}
		if r.status == 0 {
			out = binary.BigEndian.AppendUint32(out, uint32(1+len(r.result)))
			out = append(out, 0)
			out = append(out, r.result...)
			ok++
		} else {
			out = binary.BigEndian.AppendUint32(out, uint32(1+len(r.errMsg)))
			out = append(out, 1)
			out = append(out, r.errMsg...)
			failed++
		}
	}
	if cap(out) <= 64<<10 {
		c.out = out[:0]
	}
	if c.lost {
		return
	}
	if len(out) > 0 {
		if _, err := c.t.Write(out); err != nil {
			// The client went away, which a connection not read from
			// (paused) learns only now.
			c.s.stats.dropped.Add(ok + failed)
			return
		}
		c.s.stats.replies.Add(ok)
		c.s.stats.errReplies.Add(failed)
		if n := int64(c.t.WriteBufferSize()); n > c.s.stats.peakWbuf.Load() {
			c.s.stats.peakWbuf.Store(n)
		}
	}
	if c.closing && c.reqs.len() == 0 {
		c.finish()
		return
	}
	c.pump()
}

// lingerTime bounds how long a finished connection reads and drops what
// its client still sends before it closes.
const lingerTime = time.Second

// finish closes a connection whose replies are all written. Its client
// may still be sending (after an oversized frame, or during a drain), and
// closing a socket with bytes unread makes the kernel answer with a
// reset, which can destroy replies not yet delivered. So the writing side
// is shut first (WriteEOF, once the buffered replies are out), what the
// client still sends is read and dropped until its EOF or for at most
// lingerTime, and then the connection closes.
func (c *conn) finish() {
	if c.lingering || c.lost {
		return
	}
	c.lingering = true
	_ = c.t.WriteEOF()
	c.linger = c.s.l.CallLater(lingerTime, c.t.Close)
	c.update()
}

// dropPartial forgets a message not read to its end.
func (c *conn) dropPartial() {
	if r := c.cur; r != nil {
		c.bodyDone()
		c.reqs.dropLast()
		c.s.free.put(r.buf)
		c.s.release(len(r.buf))
	}
	if c.want >= 0 {
		c.want = -1
		c.s.unwait(c)
	}
	c.nhdr = 0
	c.pend = nil
}

// stop is the drain for one connection: it reads nothing more and closes
// once the messages it accepted are answered.
func (c *conn) stop() {
	c.dropPartial()
	c.closing = true
	if c.reqs.len() == 0 {
		c.finish()
		return
	}
	c.update()
}

// EOFReceived: the client has sent all it will. A message cut short is
// dropped; the connection stays open for the replies still owed.
func (c *conn) EOFReceived() bool {
	c.dropPartial()
	c.closing = true
	c.reading = false
	return c.reqs.len() > 0
}

func (c *conn) ConnectionLost(error) {
	c.lost = true
	if c.linger != nil {
		c.linger.Cancel()
	}
	c.dropPartial()
	delete(c.s.conns, c)
	// Messages not sent to the pool yet are dropped now, the results of
	// the others when they come.
	for i := range c.reqs.len() {
		if r := c.reqs.at(i); r.queued {
			c.s.unqueue(r)
			size := len(r.buf)
			c.s.free.put(r.buf)
			r.buf, r.done = nil, true
			c.s.release(size)
		}
	}
	c.s.markDirty(c) // flush counts the results dropped
}

// PauseWriting: the client does not read its replies as fast as they
// come, so read no more of its messages until it has caught up; the
// write buffer then holds at most the high-water mark and K replies.
func (c *conn) PauseWriting() {
	c.writePaused = true
	c.update()
}

func (c *conn) ResumeWriting() {
	c.writePaused = false
	c.pump()
}

// ring is a connection's FIFO of requests, of fixed capacity K.
type ring struct {
	a          []*request
	head, size int
}

func newRing(k int) ring { return ring{a: make([]*request, k)} }

func (q *ring) len() int          { return q.size }
func (q *ring) first() *request   { return q.a[q.head] }
func (q *ring) at(i int) *request { return q.a[(q.head+i)%len(q.a)] }
func (q *ring) push(r *request)   { q.a[(q.head+q.size)%len(q.a)] = r; q.size++ }
func (q *ring) dropLast()         { q.size--; q.a[(q.head+q.size)%len(q.a)] = nil }
func (q *ring) pop() (r *request) {
	r, q.a[q.head] = q.a[q.head], nil
	q.head = (q.head + 1) % len(q.a)
	q.size--
	return r
}

// bufPool keeps message buffers for reuse, by power-of-two size class, up
// to keep bytes in all: a stream of 2 MiB messages reuses the same few
// buffers instead of allocating (and zeroing) 2 MiB for each.
type bufPool struct {
	classes [64][][]byte
	held    int
	keep    int
}

const minClass = 9 // 512 bytes

func class(n int) int { return max(bits.Len(uint(n-1)), minClass) }

func (p *bufPool) get(n int) []byte {
	if n == 0 {
		return nil
	}
	c := class(n)
	if l := p.classes[c]; len(l) > 0 {
		b := l[len(l)-1]
		l[len(l)-1] = nil
		p.classes[c] = l[:len(l)-1]
		p.held -= cap(b)
		return b[:n]
	}
	return make([]byte, n, 1<<c)
}

func (p *bufPool) put(b []byte) {
	if cap(b) == 0 || p.held+cap(b) > p.keep || cap(b)&(cap(b)-1) != 0 {
		return
	}
	c := class(cap(b))
	p.classes[c] = append(p.classes[c], b[:0])
	p.held += cap(b)
}

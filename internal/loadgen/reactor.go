package loadgen

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// payloadBudget is how many bytes of payloads a run generates at most;
// past it, connections share payload sets.
const payloadBudget = 512 << 20

// maxReplySample is how much of a status-1 reply's message a report keeps.
const maxReplySample = 200

// payloadSet is the messages a connection sends, framed and ready to write:
// frame s (header included) carries Sizes[s%len(Sizes)] random bytes, two
// frames per entry of Sizes, and digest[s] is the SHA-256 of its payload.
type payloadSet struct {
	frames  [][]byte
	digests [][sha256.Size]byte
	sizeIdx []int // frame -> index of its size among the run's distinct sizes
}

func newPayloadSet(sizes []int, distinct []int, seed uint64) *payloadSet {
	n := 2 * len(sizes)
	p := &payloadSet{frames: make([][]byte, n), digests: make([][sha256.Size]byte, n), sizeIdx: make([]int, n)}
	rng := rand.NewChaCha8([32]byte{0: byte(seed), 1: byte(seed >> 8), 2: byte(seed >> 16), 3: byte(seed >> 24), 31: 'r'})
	for s := range n {
		size := sizes[s%len(sizes)]
		f := make([]byte, 4+size)
		binary.BigEndian.PutUint32(f, uint32(size))
		_, _ = rng.Read(f[4:])
		p.frames[s] = f
		p.digests[s] = sha256.Sum256(f[4:])
		p.sizeIdx[s] = slices.Index(distinct, size)
	}
	return p
}

// pending is a message on the wire: when it was due (or written, in a
// closed loop) and which frame of the payload set it is.
type pending struct {
	due   time.Time
	frame int
}

// reactorConn is one connection of the reactor mode. Its reader side (the
// only goroutine with InFlight 1) reads and checks the replies; with
// InFlight > 1 a writer goroutine sends the frames ahead of them.
type reactorConn struct {
	count        atomic.Uint64 // messages answered with status 0, warmup included
	replyErrors  atomic.Uint64
	wrongDigests atomic.Uint64
	broken       atomic.Bool // err is set
	_            [36]byte    // keep two connections' counters off one cache line

	index int
	conn  net.Conn
	set   *payloadSet
	br    *bufio.Reader
	hdr   [4]byte
	rbuf  []byte     // a reply's payload; grows up to MaxFrame
	hists []liveHist // latencies of the measured messages, ns, per distinct size

	maxFrame  int
	check     bool
	slots     chan struct{} // InFlight > 1: one token per message on the wire
	fifo      chan pending  // InFlight > 1: the messages on the wire, oldest first
	readerEnd chan struct{} // InFlight > 1: closed when the reader stops
	writerEnd chan struct{} // InFlight > 1: closed when the writer stops
	batch     [][]byte      // InFlight > 1: the frames of one write
	out       net.Buffers   // the same, as WriteTo consumes them

	mu      sync.Mutex
	err     error    // why the connection broke, if it did
	samples []string // the first status-1 replies and wrong digests
}

// fail records why the connection broke (the first reason that is not a
// deadline: the run's end, an interrupt, or the other side of the
// connection breaking) and makes the other goroutine stop.
func (c *reactorConn) fail(err error) {
	_ = c.conn.SetDeadline(time.Now())
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return
	}
	c.mu.Lock()
	if c.err == nil {
		c.err = fmt.Errorf("connection %d: %w", c.index, err)
		c.broken.Store(true)
	}
	c.mu.Unlock()
}

func (c *reactorConn) sample(format string, args ...any) {
	c.mu.Lock()
	if len(c.samples) < maxErrorSamples {
		c.samples = append(c.samples, fmt.Sprintf("connection %d: ", c.index)+fmt.Sprintf(format, args...))
	}
	c.mu.Unlock()
}

// readReply reads one reply frame and checks it against frame s; it
// returns an error only when the connection cannot go on.
func (c *reactorConn) readReply(s int, seq uint64) (ok bool, err error) {
	if _, err := io.ReadFull(c.br, c.hdr[:]); err != nil {
		return false, err
	}
	n := binary.BigEndian.Uint32(c.hdr[:])
	if n == 0 || n > uint32(c.maxFrame) {
		return false, fmt.Errorf("message %d: a reply frame of %d bytes (want 1..%d)", seq, n, c.maxFrame)
	}
	if cap(c.rbuf) < int(n) {
		c.rbuf = make([]byte, n)
	}
	rb := c.rbuf[:n]
	if _, err := io.ReadFull(c.br, rb); err != nil {
		return false, err
	}
	switch rb[0] {
	case 0:
		if c.check && (len(rb) != 1+sha256.Size || !bytes.Equal(rb[1:], c.set.digests[s][:])) {
			if c.wrongDigests.Add(1) <= maxErrorSamples {
				c.sample("message %d of %d bytes: the result (%d bytes) is not its SHA-256 digest", seq, len(c.set.frames[s])-4, len(rb)-1)
			}
			return false, nil
		}
		return true, nil
	case 1:
		if c.replyErrors.Add(1) <= maxErrorSamples {
			msg := rb[1:]
			if len(msg) > maxReplySample {
				msg = msg[:maxReplySample]
			}
			c.sample("message %d of %d bytes: status 1: %s", seq, len(c.set.frames[s])-4, msg)
		}
		return false, nil
	}
	return false, fmt.Errorf("message %d: a reply with status byte %d", seq, rb[0])
}

func (c *reactorConn) done(t timing, p pending, at time.Time) {
	c.count.Add(1)
	if !p.due.Before(t.measureStart) {
		c.hists[c.set.sizeIdx[p.frame]].record(at.Sub(p.due).Nanoseconds())
	}
}

// frameOf is the frame that message seq (from 0) of the connection sends.
func (c *reactorConn) frameOf(seq uint64) int {
	return int((uint64(c.index) + seq) % uint64(len(c.set.frames)))
}

// schedule waits until the next message is due and returns its due time
// (the present, in a closed loop), or false when the run is over.
func schedule(t timing, next *time.Time) (time.Time, bool) {
	if t.interval == 0 {
		now := time.Now()
		return now, now.Before(t.end)
	}
	if !next.Before(t.end) {
		return time.Time{}, false
	}
	if d := time.Until(*next); d > 0 {
		time.Sleep(d)
	}
	due := *next
	*next = next.Add(t.interval)
	return due, true
}

// loop runs the connection with one message on the wire at a time.
func (c *reactorConn) loop(t timing, first time.Time) {
	next := first
	for seq := uint64(0); ; seq++ {
		due, ok := schedule(t, &next)
		if !ok {
			return
		}
		s := c.frameOf(seq)
		if _, err := c.conn.Write(c.set.frames[s]); err != nil {
			c.fail(err)
			return
		}
		good, err := c.readReply(s, seq)
		if err != nil {
			c.fail(err)
			return
		}
		if good {
			c.done(t, pending{due, s}, time.Now())
		}
	}
}

// writer sends frames while fewer than InFlight are unanswered. In a
// closed loop, the messages of every slot that is free go out in one write
// (writev), as the replies of a batch free their slots together: a syscall
// per batch instead of one per message leaves the cores to the server.
func (c *reactorConn) writer(t timing, first time.Time) {
	defer close(c.writerEnd)
	next := first
	var seq uint64
	for {
		due, ok := schedule(t, &next)
		if !ok {
			return
		}
		select {
		case c.slots <- struct{}{}:
		case <-c.readerEnd:
			return
		}
		if t.interval == 0 {
			due = time.Now()
		}
		c.batch = c.batch[:0]
		for {
			s := c.frameOf(seq)
			seq++
			c.fifo <- pending{due, s} // never blocks: a slot is held
			c.batch = append(c.batch, c.set.frames[s])
			if t.interval > 0 || !c.trySlot() {
				break
			}
		}
		c.out = c.batch // WriteTo consumes c.out, not c.batch's array
		if _, err := c.out.WriteTo(c.conn); err != nil {
			c.fail(err)
			return
		}
	}
}

// trySlot takes a free slot, if there is one.
func (c *reactorConn) trySlot() bool {
	select {
	case c.slots <- struct{}{}:
		return true
	default:
		return false
	}
}

// reader takes the replies of the messages the writer sent, in order,
// until the connection's deadline or the writer's end.
func (c *reactorConn) reader(t timing) {
	defer close(c.readerEnd)
	for seq := uint64(0); ; seq++ {
		var p pending
		select {
		case p = <-c.fifo:
		case <-c.writerEnd:
			select { // what it sent before it stopped
			case p = <-c.fifo:
			default:
				return
			}
		}
		good, err := c.readReply(p.frame, seq)
		if err != nil {
			c.fail(err)
			return
		}
		if good {
			c.done(t, p, time.Now())
		}
		<-c.slots
	}
}

func runReactor(cfg Config) (*Report, error) {
	rep := newReport(cfg)
	var distinct []int
	sum := 0
	for _, s := range cfg.Sizes {
		if !slices.Contains(distinct, s) {
			distinct = append(distinct, s)
		}
		sum += 2 * (s + 4)
	}
	nSets := max(1, min(cfg.Conns, payloadBudget/max(sum, 1)))
	sets := make([]*payloadSet, nSets)
	for i := range sets {
		sets[i] = newPayloadSet(cfg.Sizes, distinct, uint64(i))
	}

	conns, dialErrs := dialAll(cfg, cfg.Conns, nil)
	rep.addErrors(dialErrs...)
	rep.FailedConns = len(dialErrs)
	var live []*reactorConn
	for i, nc := range conns {
		if nc == nil {
			continue
		}
		c := &reactorConn{
			index:    i,
			conn:     nc,
			set:      sets[i%nSets],
			br:       bufio.NewReaderSize(nc, 16<<10),
			rbuf:     make([]byte, 64),
			hists:    make([]liveHist, len(distinct)),
			maxFrame: cfg.MaxFrame,
			check:    cfg.Check,
		}
		if cfg.InFlight > 1 {
			c.slots = make(chan struct{}, cfg.InFlight)
			c.fifo = make(chan pending, cfg.InFlight)
			c.readerEnd = make(chan struct{})
			c.writerEnd = make(chan struct{})
			c.batch = make([][]byte, 0, cfg.InFlight)
		}
		live = append(live, c)
	}
	if len(live) == 0 {
		return rep, fmt.Errorf("loadgen: no connection to %s opened: %v", cfg.Addr, dialErrs[0])
	}
	defer func() {
		for _, c := range live {
			c.conn.Close()
		}
	}()

	start := time.Now()
	t := timing{measureStart: start.Add(cfg.Warmup)}
	t.end = t.measureStart.Add(cfg.Duration)
	if cfg.Rate > 0 {
		t.interval = max(time.Duration(float64(len(live))/cfg.Rate*float64(time.Second)), 1)
	}
	for _, c := range live {
		_ = c.conn.SetDeadline(t.end)
	}

	var wg sync.WaitGroup
	for i, c := range live {
		first := start.Add(t.interval * time.Duration(i) / time.Duration(len(live)))
		if cfg.InFlight > 1 {
			wg.Go(func() { c.writer(t, first) })
			wg.Go(func() { c.reader(t) })
		} else {
			wg.Go(func() { c.loop(t, first) })
		}
	}

	finished := make(chan struct{})
	var aux sync.WaitGroup
	endedAt := t.end
	liveConns := make([]net.Conn, len(live))
	for i, c := range live {
		liveConns[i] = c.conn
	}
	watchInterrupt(&aux, cfg.Interrupt, finished, liveConns, rep, &endedAt)
	if cfg.Progress != nil {
		snap := func(h *histogram) (uint64, int64) {
			var n, errs uint64
			for _, c := range live {
				n += c.count.Load()
				errs += c.replyErrors.Load() + c.wrongDigests.Load()
				if c.broken.Load() {
					errs++
				}
				for i := range c.hists {
					c.hists[i].mergeInto(h)
				}
			}
			return n, int64(errs) + int64(len(dialErrs))
		}
		aux.Go(func() { progress(cfg.Progress, "msgs/s", start, snap, finished) })
	}
	wg.Wait()
	close(finished)
	aux.Wait()

	window := endedAt.Sub(t.measureStart)
	perSize := make([]SizeReport, len(distinct))
	hists := make([]histogram, len(distinct))
	var all histogram
	for _, c := range live {
		if c.err != nil {
			rep.FailedConns++
			rep.addErrors(c.err)
		}
		rep.ReplyErrors += c.replyErrors.Load()
		rep.WrongDigests += c.wrongDigests.Load()
		for _, s := range c.samples {
			if len(rep.ErrorSamples) < maxErrorSamples {
				rep.ErrorSamples = append(rep.ErrorSamples, s)
			}
		}
		for i := range c.hists {
			if c.hists[i].h.total > 0 {
				perSize[i].Conns++
			}
			c.hists[i].mergeInto(&hists[i])
			c.hists[i].mergeInto(&all)
		}
	}
	rep.Errors += int(rep.ReplyErrors + rep.WrongDigests)
	for i, size := range distinct {
		sr := &perSize[i]
		sr.Size = size
		sr.fill(&hists[i], window)
		rep.Requests += sr.Requests
		rep.Bytes += sr.Bytes
	}
	rep.PerSize = perSize
	rep.Open = len(live)
	if window > 0 {
		rep.DurationS = window.Seconds()
		rep.ReqPerS = float64(rep.Requests) / window.Seconds()
		rep.MBPerS = float64(rep.Bytes) / 1e6 / window.Seconds()
	}
	lat := latencyOf(&all)
	rep.Latency = &lat
	return rep, nil
}

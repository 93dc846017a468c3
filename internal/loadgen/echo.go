package loadgen

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// bigMessage is the size above which a connection writes in a goroutine of
// its own while it reads the echo: a message larger than what the two
// sockets' buffers hold would otherwise deadlock against a server that
// stops reading while its writes are pending (as asyncio's drain does).
const bigMessage = 64 << 10

// worker is one connection of the echo mode and everything it needs: its
// buffers are allocated once, and the loop allocates nothing per message.
type worker struct {
	count atomic.Uint64 // messages echoed, warmup included (for the progress line)
	_     [56]byte      // keep the counters of two workers off one cache line

	conn       net.Conn
	size       int
	wbuf, rbuf []byte
	hist       liveHist // latencies of the measured messages, ns
	err        error    // why the connection stopped early, if it did

	wstart chan struct{} // big messages: "write wbuf now"
	wdone  chan error    // big messages: the write's result
}

func newWorker(size int) *worker {
	w := &worker{size: size, wbuf: make([]byte, size), rbuf: make([]byte, size)}
	for i := range w.wbuf {
		w.wbuf[i] = byte('a' + i%26)
	}
	if size > bigMessage {
		w.wstart = make(chan struct{})
		w.wdone = make(chan error)
	}
	return w
}

// stamp writes the message's sequence number into its first bytes, so an
// echo of an earlier message (or of another connection's) does not pass.
func stamp(b []byte, seq uint64) {
	if len(b) >= 8 {
		binary.LittleEndian.PutUint64(b, seq)
		return
	}
	for i := range b {
		b[i] = byte(seq >> (8 * i))
	}
}

func (w *worker) writer() {
	for range w.wstart {
		_, err := w.conn.Write(w.wbuf)
		w.wdone <- err
	}
}

// echo sends wbuf and reads its echo into rbuf.
func (w *worker) echo() error {
	if w.wstart == nil {
		if _, err := w.conn.Write(w.wbuf); err != nil {
			return err
		}
		_, err := io.ReadFull(w.conn, w.rbuf)
		return err
	}
	w.wstart <- struct{}{}
	_, rerr := io.ReadFull(w.conn, w.rbuf)
	if rerr != nil {
		// The connection is done for: unblock the writer if it is stuck.
		_ = w.conn.SetDeadline(time.Now())
	}
	werr := <-w.wdone
	if werr != nil {
		return werr
	}
	return rerr
}

// timing is when a run's phases begin and end, shared by its workers.
type timing struct {
	measureStart time.Time     // messages due before this are warmup
	end          time.Time     // the connections' deadline
	interval     time.Duration // per connection, in rate mode; 0 for a closed loop
}

// loop runs one connection until its deadline; first is when its first
// message is due in rate mode.
func (w *worker) loop(t timing, first time.Time, errCount *atomic.Int64) {
	if w.wstart != nil {
		go w.writer()
		defer close(w.wstart)
	}
	next := first
	var seq uint64
	for {
		var due time.Time
		if t.interval > 0 {
			if !next.Before(t.end) {
				return
			}
			if d := time.Until(next); d > 0 {
				time.Sleep(d)
			}
			due = next
			next = next.Add(t.interval)
		}
		seq++
		stamp(w.wbuf, seq)
		t0 := time.Now()
		if t.interval == 0 {
			due = t0
		}
		err := w.echo()
		t1 := time.Now()
		if err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				w.err = fmt.Errorf("message %d, %.3fs before the end: %w", seq, t.end.Sub(t1).Seconds(), err)
				errCount.Add(1)
			}
			return
		}
		if !bytes.Equal(w.rbuf, w.wbuf) {
			i := 0
			for i < len(w.rbuf) && w.rbuf[i] == w.wbuf[i] {
				i++
			}
			w.err = fmt.Errorf("message %d of %d bytes: the echo differs from byte %d on", seq, w.size, i)
			errCount.Add(1)
			return
		}
		w.count.Add(1)
		if !due.Before(t.measureStart) {
			w.hist.record(t1.Sub(due).Nanoseconds())
		}
	}
}

func runEcho(cfg Config) (*Report, error) {
	rep := newReport(cfg)
	workers := make([]*worker, cfg.Conns)
	for i := range workers {
		workers[i] = newWorker(cfg.Sizes[i%len(cfg.Sizes)])
	}
	conns, dialErrs := dialAll(cfg, cfg.Conns, nil)
	rep.addErrors(dialErrs...)
	var live []*worker
	for i, c := range conns {
		if c != nil {
			workers[i].conn = c
			live = append(live, workers[i])
		}
	}
	if len(live) == 0 {
		return rep, fmt.Errorf("loadgen: no connection to %s opened: %v", cfg.Addr, dialErrs[0])
	}
	defer func() {
		for _, w := range live {
			w.conn.Close()
		}
	}()

	start := time.Now()
	t := timing{measureStart: start.Add(cfg.Warmup)}
	t.end = t.measureStart.Add(cfg.Duration)
	if cfg.Rate > 0 {
		t.interval = time.Duration(float64(len(live)) / cfg.Rate * float64(time.Second))
		if t.interval <= 0 {
			t.interval = 1
		}
	}
	for _, w := range live {
		_ = w.conn.SetDeadline(t.end)
	}

	var errCount atomic.Int64
	errCount.Store(int64(len(dialErrs)))
	var wg sync.WaitGroup
	for i, w := range live {
		first := start.Add(t.interval * time.Duration(i) / time.Duration(len(live)))
		wg.Go(func() { w.loop(t, first, &errCount) })
	}

	finished := make(chan struct{})
	var aux sync.WaitGroup
	endedAt := t.end
	liveConns := make([]net.Conn, len(live))
	for i, w := range live {
		liveConns[i] = w.conn
	}
	watchInterrupt(&aux, cfg.Interrupt, finished, liveConns, rep, &endedAt)
	if cfg.Progress != nil {
		snap := func(h *histogram) (uint64, int64) {
			var n uint64
			for _, w := range live {
				n += w.count.Load()
				w.hist.mergeInto(h)
			}
			return n, errCount.Load()
		}
		aux.Go(func() { progress(cfg.Progress, "req/s", start, snap, finished) })
	}
	wg.Wait()
	close(finished)
	aux.Wait()

	window := endedAt.Sub(t.measureStart)
	bySize := map[int]*SizeReport{}
	hists := map[int]*histogram{}
	var all histogram
	for _, w := range live {
		if w.err != nil {
			rep.addErrors(w.err)
		}
		sr := bySize[w.size]
		if sr == nil {
			sr = &SizeReport{Size: w.size}
			bySize[w.size] = sr
			hists[w.size] = new(histogram)
		}
		sr.Conns++
		w.hist.mergeInto(hists[w.size])
		w.hist.mergeInto(&all)
	}
	for _, size := range cfg.Sizes {
		sr := bySize[size]
		if sr == nil {
			continue
		}
		delete(bySize, size) // a size listed twice is reported once
		sr.fill(hists[size], window)
		rep.PerSize = append(rep.PerSize, *sr)
		rep.Requests += sr.Requests
		rep.Bytes += sr.Bytes
	}
	rep.Open = len(live)
	rep.DurationS = window.Seconds()
	if window > 0 {
		rep.ReqPerS = float64(rep.Requests) / window.Seconds()
		rep.MBPerS = float64(rep.Bytes) / 1e6 / window.Seconds()
	}
	lat := latencyOf(&all)
	rep.Latency = &lat
	return rep, nil
}

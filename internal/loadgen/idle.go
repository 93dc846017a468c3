package loadgen

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// pingOnce sends msg on c and checks its echo, read into buf.
func pingOnce(c net.Conn, msg, buf []byte) error {
	if len(msg) == 0 {
		return nil
	}
	if _, err := c.Write(msg); err != nil {
		return err
	}
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if !bytes.Equal(buf, msg) {
		return fmt.Errorf("the echo of %d bytes differs", len(msg))
	}
	return nil
}

// runIdle opens cfg.Conns connections, echoes one message on each, holds
// them for cfg.Hold, reads the server's RSS (with cfg.PID), then checks
// that every one still echoes and closes them all.
func runIdle(cfg Config) (*Report, error) {
	rep := newReport(cfg)
	size := cfg.Sizes[0]
	msg := make([]byte, size)
	for i := range msg {
		msg[i] = byte('a' + i%26)
	}
	// One read buffer per dialing goroutine, not per connection.
	bufs := sync.Pool{New: func() any { b := make([]byte, size); return &b }}
	ping := func(_ int, c net.Conn) error {
		b := bufs.Get().(*[]byte)
		defer bufs.Put(b)
		return pingOnce(c, msg, *b)
	}

	if cfg.PID > 0 {
		kib, err := readRSS(cfg.PID)
		if err != nil {
			return nil, fmt.Errorf("loadgen: the server's RSS: %w", err)
		}
		rep.PID, rep.RSSBeforeKiB = cfg.PID, kib
	}
	start := time.Now()
	conns, errs := dialAll(cfg, cfg.Conns, ping)
	rep.ConnectS = time.Since(start).Seconds()
	rep.addErrors(errs...)
	var open []net.Conn
	for _, c := range conns {
		if c != nil {
			open = append(open, c)
		}
	}
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	rep.Open = len(open)
	if len(open) == 0 {
		return rep, fmt.Errorf("loadgen: no connection to %s opened: %v", cfg.Addr, errs[0])
	}
	if cfg.Progress != nil {
		fmt.Fprintf(cfg.Progress, "%d connections open in %.2fs; holding them for %v\n", len(open), rep.ConnectS, cfg.Hold)
	}

	select {
	case <-time.After(cfg.Hold):
	case <-cfg.Interrupt:
		rep.Interrupted = true
	}
	rep.HoldS = time.Since(start).Seconds() - rep.ConnectS
	if cfg.PID > 0 {
		kib, err := readRSS(cfg.PID)
		if err != nil {
			return nil, fmt.Errorf("loadgen: the server's RSS: %w", err)
		}
		rep.RSSAfterKiB = kib
		rep.RSSBytesPerConn = float64(rep.RSSAfterKiB-rep.RSSBeforeKiB) * 1024 / float64(len(open))
	}

	// Does every connection still echo? Checked after the RSS is read.
	if size > 0 && !rep.Interrupted {
		var mu sync.Mutex
		next := make(chan net.Conn)
		var wg sync.WaitGroup
		for range min(cfg.DialConcurrency, len(open)) {
			wg.Go(func() {
				b := make([]byte, size)
				for c := range next {
					_ = c.SetDeadline(time.Now().Add(cfg.DialTimeout))
					if err := pingOnce(c, msg, b); err != nil {
						mu.Lock()
						rep.addErrors(fmt.Errorf("after the hold: %w", err))
						mu.Unlock()
						continue
					}
					mu.Lock()
					rep.StillOpen++
					mu.Unlock()
				}
			})
		}
		for _, c := range open {
			next <- c
		}
		close(next)
		wg.Wait()
	}
	return rep, nil
}

package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// The demo's load: conns connections, each keeping window messages on
// the wire, message j of connection i of size demoSizes[(i+j)%3].
var demoSizes = []int{1 << 10, 64 << 10, 2 << 20}

const (
	demoConns  = 12
	demoWindow = 4
)

// drive is the demo's client: it loads the server at addr for d, checking
// every reply, with a progress line on progress (nil for none) and a
// summary on out.
func drive(ctx context.Context, addr string, d time.Duration, out, progress io.Writer) error {
	var msgs, bytes atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	start := time.Now()
	end := start.Add(d)
	stopProgress := showProgress(progress, start, &msgs)
	errs := make([]error, demoConns)
	var wg sync.WaitGroup
	for i := range demoConns {
		wg.Go(func() {
			l, err := driveConn(ctx, addr, i, end, &msgs, &bytes)
			errs[i] = err
			mu.Lock()
			lat = append(lat, l...)
			mu.Unlock()
		})
	}
	wg.Wait()
	stopProgress()
	elapsed := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return err
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))].Round(10 * time.Microsecond)
	}
	n := msgs.Load()
	fmt.Fprintf(out, "demo: %d connections, %d messages in flight each, sizes 1 KiB, 64 KiB, 2 MiB\n", demoConns, demoWindow)
	fmt.Fprintf(out, "demo: %d messages answered and checked in %.1f s: %.0f msgs/s, %.1f MB/s, latency p50 %v p99 %v\n",
		n, elapsed.Seconds(), float64(n)/elapsed.Seconds(), float64(bytes.Load())/elapsed.Seconds()/1e6, pct(0.5), pct(0.99))
	return nil
}

// driveConn is one demo connection: it sends until end, then collects the
// replies owed and closes. It returns each message's latency.
func driveConn(ctx context.Context, addr string, i int, end time.Time, msgs, bytes *atomic.Int64) ([]time.Duration, error) {
	var dl net.Dialer
	c, err := dl.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	type sent struct {
		size int
		at   time.Time
	}
	payloads := make([][]byte, len(demoSizes))
	sums := make([][sha256.Size]byte, len(demoSizes))
	for k, n := range demoSizes {
		payloads[k] = make([]byte, n)
		rand.Read(payloads[k])
		sums[k] = sha256.Sum256(payloads[k])
	}
	var lat []time.Duration
	var queue []sent
	br := bufio.NewReader(c)
	var hdr [4]byte
	reply := make([]byte, 1+sha256.Size)
	for j := 0; ; j++ {
		for len(queue) < demoWindow && time.Now().Before(end) && ctx.Err() == nil {
			k := (i + j + len(queue)) % len(demoSizes)
			binary.BigEndian.PutUint32(hdr[:], uint32(len(payloads[k])))
			if _, err := c.Write(hdr[:]); err != nil {
				return lat, err
			}
			if _, err := c.Write(payloads[k]); err != nil {
				return lat, err
			}
			queue = append(queue, sent{k, time.Now()})
		}
		if len(queue) == 0 {
			return lat, nil
		}
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return lat, err
		}
		if n := binary.BigEndian.Uint32(hdr[:]); n != uint32(len(reply)) {
			return lat, fmt.Errorf("reply of %d bytes; want %d", n, len(reply))
		}
		if _, err := io.ReadFull(br, reply); err != nil {
			return lat, err
		}
		s := queue[0]
		queue = queue[1:]
		if reply[0] != 0 || [sha256.Size]byte(reply[1:]) != sums[s.size] {
			return lat, fmt.Errorf("wrong reply %x to a message of %d bytes", reply, demoSizes[s.size])
		}
		lat = append(lat, time.Since(s.at))
		msgs.Add(1)
		bytes.Add(int64(demoSizes[s.size]))
	}
}

// showProgress rewrites a line on w every 500 ms until the returned func
// is called.
func showProgress(w io.Writer, start time.Time, msgs *atomic.Int64) func() {
	if w == nil {
		return func() {}
	}
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				el := time.Since(start).Seconds()
				fmt.Fprintf(w, "\r%5.1f s  %8d messages  %8.0f msgs/s ", el, msgs.Load(), float64(msgs.Load())/el)
			case <-quit:
				fmt.Fprint(w, "\r\033[K")
				return
			}
		}
	}()
	return func() { close(quit); <-done }
}

// progressTo returns f if it is a terminal, for the live progress line,
// and nil otherwise.
func progressTo(f *os.File) io.Writer {
	if _, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS); err != nil {
		return nil
	}
	return f
}

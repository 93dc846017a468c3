package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/loop"
)

// testServer is a reactor served in this process, on its own loop.
type testServer struct {
	addr string
	s    *server // loop-only, but for s.stats and what onLoop runs
	l    *loop.Loop
	log  *syncBuffer // the server's messages and the loop's log records
}

// testConfig is the defaults main would use, with 2 workers and a free
// port.
func testConfig() config {
	cfg, _, _, err := parseFlags([]string{"-addr", "127.0.0.1:0", "-workers", "2"})
	if err != nil {
		panic(err)
	}
	return cfg
}

// startServer serves cfg until the test ends, then drains it and checks
// that run returned nil and that no descriptor is left open.
func startServer(t *testing.T, cfg config) *testServer {
	t.Helper()
	fds := countFds(t)
	ts := &testServer{log: &syncBuffer{}}
	ready := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	logger := slog.New(slog.NewTextHandler(ts.log, nil))
	go func() {
		done <- run(ctx, cfg, ts.log, hooks{
			opts: []loop.Option{loop.WithLogger(logger)},
			listening: func(s *server) {
				ts.s, ts.l, ts.addr = s, s.l, s.srv.Addrs()[0].String()
				close(ready)
			},
		})
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("run = %v before listening", err)
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run = %v; want nil", err)
			}
		case <-time.After(60 * time.Second):
			t.Fatal("the server did not drain within a minute")
		}
		if n := countFds(t); n != fds {
			t.Errorf("%d descriptors open after the server; %d before", n, fds)
		}
	})
	return ts
}

// onLoop runs fn on the server's loop and waits for it.
func (ts *testServer) onLoop(fn func()) {
	done := make(chan struct{})
	if err := ts.l.CallSoonThreadsafe(func() { fn(); close(done) }); err != nil {
		panic(err)
	}
	<-done
}

func (ts *testServer) pids() []int {
	var pids []int
	ts.onLoop(func() { pids = ts.s.pool.Pids() })
	return pids
}

// waitFor polls cond until it holds or d passes: for a state the server
// reaches on its own (a job count back to 0), never for a timing.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v", what, d)
		}
		time.Sleep(time.Millisecond)
	}
}

func countFds(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// syncBuffer is a bytes.Buffer for several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// client is a test connection speaking the reactor's protocol.
type client struct {
	net.Conn
	br *bufio.Reader
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{Conn: c, br: bufio.NewReaderSize(c, 64<<10)}
}

func frame(msg []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(msg))), msg...)
}

func (c *client) send(msg []byte) error {
	_, err := c.Write(frame(msg))
	return err
}

// reply reads one reply frame.
func (c *client) reply() (status byte, body []byte, err error) {
	var hdr [4]byte
	if _, err := io.ReadFull(c.br, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 || n > 1<<20 {
		return 0, nil, fmt.Errorf("reply frame of %d bytes", n)
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(c.br, p); err != nil {
		return 0, nil, err
	}
	return p[0], p[1:], nil
}

// check reads a reply and fails unless it is msg's digest.
func (c *client) check(msg []byte) error {
	status, body, err := c.reply()
	if err != nil {
		return err
	}
	if sum := sha256.Sum256(msg); status != 0 || !bytes.Equal(body, sum[:]) {
		return fmt.Errorf("reply to a %d-byte message: status %d %q; want 0 and its digest", len(msg), status, body)
	}
	return nil
}

// roundTrip sends msg and checks its reply.
func (c *client) roundTrip(msg []byte) error {
	if err := c.send(msg); err != nil {
		return err
	}
	return c.check(msg)
}

// expectEOF fails unless the server closes the connection next.
func (c *client) expectEOF() error {
	if err := c.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
		return err
	}
	b, err := c.br.ReadByte()
	if err == io.EOF {
		return nil
	}
	if err != nil {
		return fmt.Errorf("want EOF; got %v", err)
	}
	return fmt.Errorf("want EOF; got byte %#x", b)
}

// payload is n deterministic bytes that differ with seed.
func payload(n, seed int) []byte {
	p := make([]byte, n)
	x := uint32(seed*2654435761 + 1)
	for i := range p {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		p[i] = byte(x)
	}
	return p
}

func sha256Sum(msg []byte) []byte {
	s := sha256.Sum256(msg)
	return s[:]
}

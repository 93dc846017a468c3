package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/internal/exampletest"
)

// Eight clients pipeline a mix of sizes, 0 bytes and 2 MiB included: every
// reply is its message's digest, in order.
func TestAnswersConcurrentClients(t *testing.T) {
	ts := startServer(t, testConfig())
	sizes := []int{0, 1, 1000, 64 << 10, 2 << 20, 100<<10 + 3, 17, 0}
	const clients, perClient = 8, 24
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range clients {
		c := dial(t, ts.addr)
		msgs := make([][]byte, perClient)
		for j := range msgs {
			msgs[j] = payload(sizes[(i+j)%len(sizes)], i*1000+j)
		}
		wg.Go(func() { // the writer sends all before the reader is done
			for _, m := range msgs {
				if err := c.send(m); err != nil {
					errs <- err
					return
				}
			}
		})
		wg.Go(func() {
			for j, m := range msgs {
				if err := c.check(m); err != nil {
					errs <- fmt.Errorf("client %d, message %d: %w", i, j, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got, want := ts.s.stats.replies.Load(), int64(clients*perClient); got != want {
		t.Errorf("the server counted %d replies; want %d", got, want)
	}
}

// A frame over the cap gets an error reply naming its size and the cap,
// after the reply owed before it, and its connection closes; a connection
// opened before it is untouched.
func TestOversizedFrame(t *testing.T) {
	cfg := testConfig()
	ts := startServer(t, cfg)
	other := dial(t, ts.addr)
	if err := other.roundTrip([]byte("before")); err != nil {
		t.Fatal(err)
	}
	c := dial(t, ts.addr)
	ok := payload(5000, 1)
	big := cfg.maxSize + 1
	stream := frame(ok)
	stream = binary.BigEndian.AppendUint32(stream, uint32(big))
	stream = append(stream, "and some of its bytes"...)
	if _, err := c.Write(stream); err != nil {
		t.Fatal(err)
	}
	if err := c.check(ok); err != nil {
		t.Fatalf("the message before the oversized frame: %v", err)
	}
	status, body, err := c.reply()
	if err != nil {
		t.Fatal(err)
	}
	if status != 1 || !strings.Contains(string(body), fmt.Sprint(big)) || !strings.Contains(string(body), fmt.Sprint(cfg.maxSize)) {
		t.Errorf("reply to the oversized frame: %d %q; want status 1 naming %d and %d", status, body, big, cfg.maxSize)
	}
	if err := c.expectEOF(); err != nil {
		t.Error(err)
	}
	if err := other.roundTrip([]byte("after")); err != nil {
		t.Errorf("the other connection: %v", err)
	}
}

// A client that half-closes or closes in the middle of a frame: the
// messages before it are answered (half-close), the connection closes,
// the room its partial message took is given back, and other clients are
// served.
func TestTruncatedFrame(t *testing.T) {
	ts := startServer(t, testConfig())
	for _, half := range []bool{true, false} {
		c := dial(t, ts.addr)
		first := payload(300, 2)
		stream := frame(first)
		stream = append(stream, frame(payload(100<<10, 3))[:50<<10]...)
		if _, err := c.Write(stream); err != nil {
			t.Fatal(err)
		}
		if half {
			if err := c.Conn.(*net.TCPConn).CloseWrite(); err != nil {
				t.Fatal(err)
			}
			if err := c.check(first); err != nil {
				t.Errorf("half-closed: the whole message before the cut: %v", err)
			}
			if err := c.expectEOF(); err != nil {
				t.Errorf("half-closed: %v", err)
			}
		} else {
			c.Close()
		}
	}
	waitFor(t, 30*time.Second, "the room of the partial messages given back", func() bool {
		return ts.s.stats.jobs.Load() == 0 && ts.s.stats.bytes.Load() == 0
	})
	if err := dial(t, ts.addr).roundTrip([]byte("still here")); err != nil {
		t.Error(err)
	}
}

// A client that disconnects with jobs in flight: their results are
// dropped, nothing is reported as an error, and the server serves on.
func TestDisconnectWithJobsInFlight(t *testing.T) {
	cfg := testConfig()
	cfg.cpu = 50 * time.Millisecond
	ts := startServer(t, cfg)
	c := dial(t, ts.addr)
	var stream []byte
	for j := range cfg.inflight {
		stream = append(stream, frame(payload(1000, j))...)
	}
	if _, err := c.Write(stream); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the messages admitted", func() bool { return ts.s.stats.jobs.Load() == int64(cfg.inflight) })
	c.Conn.(*net.TCPConn).SetLinger(0) // a reset, the rudest way to leave
	c.Close()
	waitFor(t, 30*time.Second, "the jobs ended", func() bool { return ts.s.stats.jobs.Load() == 0 })
	// The first jobs may have been answered before the reset arrived.
	st := &ts.s.stats
	if st.dropped.Load() == 0 || st.replies.Load()+st.dropped.Load() != int64(cfg.inflight) || st.errReplies.Load() != 0 {
		t.Errorf("%d replies, %d errors, %d results dropped; want %d in all, some dropped, no error",
			st.replies.Load(), st.errReplies.Load(), st.dropped.Load(), cfg.inflight)
	}
	if err := dial(t, ts.addr).roundTrip([]byte("next")); err != nil {
		t.Error(err)
	}
	if log := ts.log.String(); log != "" {
		t.Errorf("the server logged:\n%s", log)
	}
}

// A client that sends and never reads its replies: the server stops
// reading it once its write buffer is over the high-water mark, so the
// client's writes stop going through, the server's buffers stay bounded,
// and another client is served meanwhile.
func TestClientNeverReads(t *testing.T) {
	cfg := testConfig()
	ts := startServer(t, cfg)
	c, err := net.DialTCP("tcp", nil, mustResolve(t, ts.addr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadBuffer(4096) // the replies back up sooner
	chunk := bytes.Repeat(frame(nil), 4096)
	sent := 0
	for {
		c.SetWriteDeadline(time.Now().Add(2 * time.Second))
		n, err := c.Write(chunk)
		sent += n
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break // the server no longer reads this client
		}
		if err != nil {
			t.Fatal(err)
		}
		if sent > 1<<30 {
			t.Fatalf("the server took %d bytes of messages whose replies are never read", sent)
		}
	}
	t.Logf("the server stopped reading after %d messages of the client's; its largest write buffer held %d bytes",
		sent/4, ts.s.stats.peakWbuf.Load())
	if err := dial(t, ts.addr).roundTrip(payload(64<<10, 9)); err != nil {
		t.Errorf("another client: %v", err)
	}
	const reply = 4 + 1 + 32
	if got, max := ts.s.stats.peakWbuf.Load(), int64(64<<10+2*cfg.inflight*reply); got > max {
		t.Errorf("a connection's write buffer held %d bytes; want at most %d (high-water mark and 2K replies)", got, max)
	}
	if got := ts.s.stats.peakPend.Load(); got > readSize {
		t.Errorf("a paused connection kept %d bytes; want at most %d", got, readSize)
	}
	if got := ts.s.stats.peakJobs.Load(); got > int64(cfg.queue) {
		t.Errorf("%d messages admitted at once; want at most %d", got, cfg.queue)
	}
}

func mustResolve(t *testing.T, addr string) *net.TCPAddr {
	a, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// Many clients sending large messages at once fill the global bound, in
// count and bytes, never more; all are answered.
func TestGlobalBound(t *testing.T) {
	cfg := testConfig()
	cfg.queue, cfg.queueBytes = 6, 5<<20
	cfg.cpu = 2 * time.Millisecond
	ts := startServer(t, cfg)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 8 {
		c := dial(t, ts.addr)
		msgs := [][]byte{payload(2<<20, i), payload(10, i), payload(1<<20, i), payload(0, i)}
		wg.Go(func() {
			for _, m := range msgs {
				if err := c.send(m); err != nil {
					errs <- err
				}
			}
		})
		wg.Go(func() {
			for _, m := range msgs {
				if err := c.check(m); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := ts.s.stats.peakJobs.Load(); got > int64(cfg.queue) {
		t.Errorf("%d messages admitted at once; want at most %d", got, cfg.queue)
	}
	if got := ts.s.stats.peakBytes.Load(); got > int64(cfg.queueBytes) {
		t.Errorf("%d bytes admitted at once; want at most %d", got, cfg.queueBytes)
	}
	t.Logf("peak %d messages, %d bytes", ts.s.stats.peakJobs.Load(), ts.s.stats.peakBytes.Load())
}

// A worker killed with SIGKILL under load: each message pending in the
// broken pool gets an error reply, every other reply is right, the pool is
// rebuilt once, and the messages after it are answered.
func TestWorkerKilled(t *testing.T) {
	cfg := testConfig()
	cfg.cpu = 10 * time.Millisecond
	ts := startServer(t, cfg)
	const clients = 4
	cs := make([]*client, clients)
	msgs := make([][][]byte, clients)
	for i := range cs {
		cs[i] = dial(t, ts.addr)
		var stream []byte
		for j := range cfg.inflight {
			m := payload(2000+j, i*100+j)
			msgs[i] = append(msgs[i], m)
			stream = append(stream, frame(m)...)
		}
		if _, err := cs[i].Write(stream); err != nil {
			t.Fatal(err)
		}
	}
	// The first reply: the workers are running; 63 messages of 10 ms
	// each are still to go on 2 workers.
	if err := cs[0].check(msgs[0][0]); err != nil {
		t.Fatal(err)
	}
	pids := ts.pids()
	if len(pids) == 0 {
		t.Fatal("no worker process")
	}
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	failed := 0
	for i, c := range cs {
		start := 0
		if i == 0 {
			start = 1
		}
		for j := start; j < len(msgs[i]); j++ {
			status, body, err := c.reply()
			if err != nil {
				t.Fatalf("client %d, reply %d: %v", i, j, err)
			}
			switch sum := sha256Sum(msgs[i][j]); {
			case status == 0 && bytes.Equal(body, sum):
			case status == 1 && strings.Contains(string(body), "worker process running this message died"):
				failed++
			default:
				t.Errorf("client %d, reply %d: status %d %q", i, j, status, body)
			}
		}
	}
	if failed == 0 {
		t.Error("no message failed with the worker")
	}
	if got := ts.s.stats.rebuilds.Load(); got != 1 {
		t.Errorf("the pool was rebuilt %d times; want 1", got)
	}
	for i, c := range cs {
		if err := c.roundTrip(payload(100, 5000+i)); err != nil {
			t.Errorf("client %d after the rebuild: %v", i, err)
		}
	}
	for _, pid := range ts.pids() {
		if pid == pids[0] {
			t.Errorf("the killed worker %d is still in the pool", pid)
		}
	}
	if got := ts.s.stats.rebuilds.Load(); got != 1 {
		t.Errorf("the pool was rebuilt %d times; want 1", got)
	}
	t.Logf("%d of %d messages failed with the worker", failed, clients*cfg.inflight-1)
}

// The demo runs, checks what it gets, and prints its summary.
func TestDemo(t *testing.T) {
	args := os.Args
	t.Cleanup(func() { os.Args = args })
	os.Args = []string{"reactor", "-demo", "-demo-time", "1s", "-workers", "2"}
	out := exampletest.Stdout(t, main)
	for _, want := range []string{"12/12 connections", "digests checked", "2097152", "\nerrors: 0\n", "server: 12 connections", "(0 errors), 0 pool rebuilds"} {
		if !strings.Contains(out, want) {
			t.Errorf("the demo printed:\n%s\nwant a line with %q", out, want)
		}
	}
}

// Clients that send headers and no bodies fill the global bound; their
// bodies time out (bodyTimeout), their connections close, and the other
// clients are served again: a few stalled senders cannot stop the server.
func TestStalledBodiesTimeOut(t *testing.T) {
	old := bodyTimeout
	bodyTimeout = 300 * time.Millisecond
	t.Cleanup(func() { bodyTimeout = old }) // after the server's own cleanup

	cfg := testConfig()
	cfg.queueBytes = 4 << 20
	ts := startServer(t, cfg)
	var stalled []*client
	for range 2 {
		c := dial(t, ts.addr)
		hdr := frame(make([]byte, 2<<20))[:4] // the header alone
		if _, err := c.Write(hdr); err != nil {
			t.Fatal(err)
		}
		stalled = append(stalled, c)
	}
	waitFor(t, 5*time.Second, "the stalled headers to fill the bound", func() bool {
		return ts.s.stats.bytes.Load() >= 4<<20
	})
	c := dial(t, ts.addr)
	if err := c.roundTrip([]byte("served after the stall")); err != nil {
		t.Fatalf("a client behind stalled senders: %v", err)
	}
	for _, s := range stalled {
		if err := s.expectEOF(); err != nil {
			t.Errorf("a stalled sender's connection: %v", err)
		}
	}
}

// Connections over -max-conns are closed as they are accepted; those
// within it are served, and a freed place is taken again.
func TestMaxConns(t *testing.T) {
	cfg := testConfig()
	cfg.maxConns = 2
	ts := startServer(t, cfg)
	a, b := dial(t, ts.addr), dial(t, ts.addr)
	for _, c := range []*client{a, b} {
		if err := c.roundTrip([]byte("within the limit")); err != nil {
			t.Fatal(err)
		}
	}
	over := dial(t, ts.addr)
	if err := over.expectEOF(); err != nil {
		t.Errorf("a connection over -max-conns: %v", err)
	}
	if n := ts.s.stats.refused.Load(); n != 1 {
		t.Errorf("refused %d; want 1", n)
	}
	a.Close()
	waitFor(t, 5*time.Second, "the server to see the close", func() bool {
		n := 0
		ts.onLoop(func() { n = len(ts.s.conns) })
		return n < 2
	})
	c := dial(t, ts.addr)
	if err := c.roundTrip([]byte("a freed place")); err != nil {
		t.Errorf("after a close: %v", err)
	}
}

// A client that keeps sending the body of an oversized frame still gets
// every reply and a clean EOF, never a reset: the server shuts its
// writing side and drops what comes in before it closes (finish).
func TestOversizedFrameNoReset(t *testing.T) {
	cfg := testConfig()
	ts := startServer(t, cfg)
	for round := range 5 {
		c := dial(t, ts.addr)
		msgs := [][]byte{payload(10, round), payload(1000, round), payload(0, round)}
		var stream []byte
		for _, m := range msgs {
			stream = append(stream, frame(m)...)
		}
		stream = append(stream, frame(make([]byte, 4*cfg.maxSize))...) // 8 MiB, all of it sent
		sent := make(chan error, 1)
		go func() {
			_, err := c.Write(stream)
			sent <- err
		}()
		for _, m := range msgs {
			if err := c.check(m); err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if status, _, err := c.reply(); err != nil || status != 1 {
			t.Fatalf("round %d: the oversized frame's reply: %d, %v", round, status, err)
		}
		if err := c.expectEOF(); err != nil {
			t.Fatalf("round %d: after the error reply: %v (want EOF, not a reset)", round, err)
		}
		c.Close()
		<-sent // it may have failed once the server closed: the replies came first
	}
}

package loadgen

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// reactorServer speaks the reactor protocol on 127.0.0.1, a goroutine per
// connection: every frame gets status 0 and its SHA-256 digest, except as
// its knobs say.
type reactorServer struct {
	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []net.Conn
	seqs  [][]int // the sizes each connection received, in order

	wrongEvery int // every wrongEvery-th reply of a connection has a wrong digest
	errorEvery int // every errorEvery-th reply is status 1
	closeAfter int // the first connection is closed after this many replies
	answered   atomic.Int64
}

func startReactorServer(t *testing.T, s *reactorServer) *reactorServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.ln = ln
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			idx := len(s.conns)
			s.conns = append(s.conns, c)
			s.seqs = append(s.seqs, nil)
			s.mu.Unlock()
			s.wg.Go(func() { s.serve(idx, c) })
		}
	})
	t.Cleanup(s.close)
	return s
}

func (s *reactorServer) serve(idx int, c net.Conn) {
	defer c.Close()
	var hdr [4]byte
	buf := make([]byte, 4<<20)
	reply := make([]byte, 0, 64)
	for n := 1; ; n++ {
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return
		}
		size := binary.BigEndian.Uint32(hdr[:])
		if int(size) > len(buf) {
			return
		}
		if _, err := io.ReadFull(c, buf[:size]); err != nil {
			return
		}
		s.mu.Lock()
		if len(s.seqs[idx]) < 1000 {
			s.seqs[idx] = append(s.seqs[idx], int(size))
		}
		s.mu.Unlock()
		reply = reply[:4]
		if s.errorEvery > 0 && n%s.errorEvery == 0 {
			reply = append(reply, 1)
			reply = append(reply, "job failed"...)
		} else {
			d := sha256.Sum256(buf[:size])
			if s.wrongEvery > 0 && n%s.wrongEvery == 0 {
				d[7] ^= 1
			}
			reply = append(reply, 0)
			reply = append(reply, d[:]...)
		}
		binary.BigEndian.PutUint32(reply, uint32(len(reply)-4))
		if _, err := c.Write(reply); err != nil {
			return
		}
		s.answered.Add(1)
		if idx == 0 && s.closeAfter > 0 && n == s.closeAfter {
			return
		}
	}
}

func (s *reactorServer) close() {
	s.ln.Close()
	s.mu.Lock()
	for _, c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func reactorConfig(addr string) Config {
	return Config{
		Mode:     "reactor",
		Addr:     addr,
		Conns:    4,
		Sizes:    []int{1 << 10},
		Duration: 300 * time.Millisecond,
		Warmup:   50 * time.Millisecond,
		Check:    true,
		Label:    "test",
	}
}

// checkReactor fails the test unless the run measured something and its
// counts add up.
func checkReactor(t *testing.T, rep *Report, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	if rep.Requests == 0 || rep.ReqPerS <= 0 || rep.MBPerS <= 0 {
		t.Fatalf("nothing measured: %+v", rep)
	}
	l := rep.Latency
	if l == nil || l.P50 <= 0 || l.P50 > l.P99 || l.P99 > l.P999 || l.P999 > l.Max || l.Min > l.P50 {
		t.Fatalf("latencies out of order: %+v", l)
	}
	var req, bytes uint64
	for _, s := range rep.PerSize {
		req += s.Requests
		bytes += s.Requests * uint64(s.Size)
	}
	if req != rep.Requests || bytes != rep.Bytes {
		t.Errorf("per size: %d messages, %d bytes; the run: %d, %d", req, bytes, rep.Requests, rep.Bytes)
	}
	if want := rep.FailedConns + int(rep.ReplyErrors+rep.WrongDigests); rep.Errors != want {
		t.Errorf("Errors = %d; want %d (failed %d + status 1 %d + wrong %d)", rep.Errors, want, rep.FailedConns, rep.ReplyErrors, rep.WrongDigests)
	}
}

func noErrors(t *testing.T, rep *Report) {
	t.Helper()
	if rep.Errors != 0 || rep.FailedConns != 0 || rep.ReplyErrors != 0 || rep.WrongDigests != 0 {
		t.Fatalf("errors: %d (failed %d, status 1 %d, wrong %d) %q", rep.Errors, rep.FailedConns, rep.ReplyErrors, rep.WrongDigests, rep.ErrorSamples)
	}
}

func TestReactor(t *testing.T) {
	for _, inflight := range []int{1, 8} {
		t.Run(fmt.Sprintf("inflight%d", inflight), func(t *testing.T) {
			s := startReactorServer(t, &reactorServer{})
			cfg := reactorConfig(s.ln.Addr().String())
			cfg.InFlight = inflight
			rep, err := Run(context.Background(), cfg)
			checkReactor(t, rep, err)
			noErrors(t, rep)
			if rep.Open != 4 || rep.InFlight != inflight || !rep.Check || rep.Bytes != rep.Requests*1024 {
				t.Errorf("report: %+v", rep)
			}
			// The server answered every message measured, and the warmup's.
			if got := s.answered.Load(); got < int64(rep.Requests) {
				t.Errorf("the server answered %d, the report counts %d", got, rep.Requests)
			}
			var table bytes.Buffer
			if err := rep.WriteTable(&table); err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"loadgen reactor test", "msgs/s", "p999 µs", "status-1 replies: 0  wrong digests: 0  failed connections: 0", "errors: 0"} {
				if !strings.Contains(table.String(), want) {
					t.Errorf("the table has no %q:\n%s", want, table.String())
				}
			}
		})
	}
}

// Message j of connection i has Sizes[(i+j)%len(Sizes)] bytes.
func TestReactorSizeMix(t *testing.T) {
	s := startReactorServer(t, &reactorServer{})
	cfg := reactorConfig(s.ln.Addr().String())
	cfg.Sizes = []int{100, 1 << 10, 64 << 10, 2 << 20}
	cfg.Conns = 3
	cfg.InFlight = 4
	rep, err := Run(context.Background(), cfg)
	checkReactor(t, rep, err)
	noErrors(t, rep)
	if len(rep.PerSize) != 4 {
		t.Fatalf("per size: %+v", rep.PerSize)
	}
	for i, sr := range rep.PerSize {
		if sr.Size != cfg.Sizes[i] || sr.Requests == 0 || sr.Conns != 3 {
			t.Errorf("size %d: %+v", cfg.Sizes[i], sr)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	firsts := map[int]bool{}
	for c, seq := range s.seqs {
		if len(seq) < 8 {
			t.Fatalf("connection %d sent only %v", c, seq)
		}
		at := slices.Index(cfg.Sizes, seq[0])
		firsts[at] = true
		for j, size := range seq {
			if want := cfg.Sizes[(at+j)%len(cfg.Sizes)]; size != want {
				t.Fatalf("connection %d, message %d: %d bytes; want %d (sizes %v)", c, j, size, want, seq)
			}
		}
	}
	if len(firsts) != 3 {
		t.Errorf("the connections started at sizes %v; want 3 different ones", firsts)
	}
}

func TestReactorWrongDigest(t *testing.T) {
	for _, inflight := range []int{1, 4} {
		s := startReactorServer(t, &reactorServer{wrongEvery: 3})
		cfg := reactorConfig(s.ln.Addr().String())
		cfg.InFlight = inflight
		rep, err := Run(context.Background(), cfg)
		checkReactor(t, rep, err)
		if rep.WrongDigests == 0 || rep.ReplyErrors != 0 || rep.FailedConns != 0 {
			t.Fatalf("inflight %d: wrong %d, status 1 %d, failed %d", inflight, rep.WrongDigests, rep.ReplyErrors, rep.FailedConns)
		}
		if !strings.Contains(rep.ErrorSamples[0], "not its SHA-256 digest") {
			t.Errorf("samples %q", rep.ErrorSamples)
		}
		// About one reply in 3 is wrong; the good ones are counted as usual.
		if ratio := float64(rep.WrongDigests) / float64(rep.WrongDigests+rep.Requests); ratio < 0.2 || ratio > 0.5 {
			t.Errorf("%d wrong of %d", rep.WrongDigests, rep.WrongDigests+rep.Requests)
		}
	}
}

// Without Check a wrong digest passes: only the status byte is read.
func TestReactorNoCheck(t *testing.T) {
	s := startReactorServer(t, &reactorServer{wrongEvery: 2})
	cfg := reactorConfig(s.ln.Addr().String())
	cfg.Check = false
	rep, err := Run(context.Background(), cfg)
	checkReactor(t, rep, err)
	noErrors(t, rep)
}

func TestReactorStatus1(t *testing.T) {
	s := startReactorServer(t, &reactorServer{errorEvery: 5})
	cfg := reactorConfig(s.ln.Addr().String())
	cfg.InFlight = 2
	rep, err := Run(context.Background(), cfg)
	checkReactor(t, rep, err)
	if rep.ReplyErrors == 0 || rep.WrongDigests != 0 || rep.FailedConns != 0 {
		t.Fatalf("status 1 %d, wrong %d, failed %d", rep.ReplyErrors, rep.WrongDigests, rep.FailedConns)
	}
	if !strings.Contains(rep.ErrorSamples[0], "status 1: job failed") {
		t.Errorf("samples %q", rep.ErrorSamples)
	}
}

// A connection the server closes is counted as failed; the others go on
// and Run returns at the end as usual.
func TestReactorServerCloses(t *testing.T) {
	for _, inflight := range []int{1, 4} {
		s := startReactorServer(t, &reactorServer{closeAfter: 10})
		cfg := reactorConfig(s.ln.Addr().String())
		cfg.InFlight = inflight
		cfg.DialConcurrency = 1 // the server's first connection is the client's first
		start := time.Now()
		rep, err := Run(context.Background(), cfg)
		checkReactor(t, rep, err)
		if rep.FailedConns != 1 || rep.Errors != 1 || rep.ReplyErrors != 0 || rep.WrongDigests != 0 {
			t.Fatalf("inflight %d: failed %d, errors %d %q", inflight, rep.FailedConns, rep.Errors, rep.ErrorSamples)
		}
		if !strings.Contains(rep.ErrorSamples[0], "connection 0: ") {
			t.Errorf("samples %q", rep.ErrorSamples)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("Run took %v", d)
		}
	}
}

func TestReactorNoServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	rep, err := Run(context.Background(), reactorConfig(addr))
	if err == nil || rep.FailedConns != 4 || rep.Errors != 4 {
		t.Fatalf("err %v, report %+v", err, rep)
	}
}

// Interrupt, or a cancelled ctx, ends a run early with what it measured.
func TestReactorInterrupt(t *testing.T) {
	for _, how := range []string{"interrupt", "ctx"} {
		for _, inflight := range []int{1, 4} {
			s := startReactorServer(t, &reactorServer{})
			cfg := reactorConfig(s.ln.Addr().String())
			cfg.Duration = time.Hour
			cfg.InFlight = inflight
			ctx, cancel := context.WithCancel(context.Background())
			if how == "interrupt" {
				intr := make(chan struct{})
				cfg.Interrupt = intr
				time.AfterFunc(300*time.Millisecond, func() { close(intr) })
			} else {
				time.AfterFunc(300*time.Millisecond, cancel)
			}
			start := time.Now()
			rep, err := Run(ctx, cfg)
			cancel()
			checkReactor(t, rep, err)
			noErrors(t, rep)
			if d := time.Since(start); !rep.Interrupted || d > 10*time.Second || rep.DurationS > 10 {
				t.Errorf("%s, inflight %d: interrupted %v after %v (%.1fs measured)", how, inflight, rep.Interrupted, d, rep.DurationS)
			}
		}
	}
}

func TestReactorRate(t *testing.T) {
	s := startReactorServer(t, &reactorServer{})
	cfg := reactorConfig(s.ln.Addr().String())
	cfg.Rate = 2000
	cfg.InFlight = 2
	rep, err := Run(context.Background(), cfg)
	checkReactor(t, rep, err)
	noErrors(t, rep)
	// 2,000/s for 0.3 s is 600 messages; a fixed rate cannot exceed its schedule.
	if rep.Requests > 700 || rep.Requests < 100 {
		t.Errorf("%d messages at 2,000/s over %.2fs", rep.Requests, rep.DurationS)
	}
}

// syncBuffer is a bytes.Buffer safe for the progress goroutine and the test.
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

func TestReactorProgress(t *testing.T) {
	s := startReactorServer(t, &reactorServer{})
	cfg := reactorConfig(s.ln.Addr().String())
	cfg.Duration = 1200 * time.Millisecond
	var out syncBuffer
	cfg.Progress = &out
	rep, err := Run(context.Background(), cfg)
	checkReactor(t, rep, err)
	got := out.String()
	// Rewritten about every 500 ms: two lines or so, then cleared.
	if n := strings.Count(got, "msgs/s"); n < 1 || n > 4 || !strings.Contains(got, "µs") || !strings.HasSuffix(got, "\r\033[K") {
		t.Errorf("progress output %q", got)
	}
}

// The client allocates nothing per message: what is allocated is per
// connection and per run (payloads, buffers, histograms, goroutines).
func TestReactorAllocs(t *testing.T) {
	for _, inflight := range []int{1, 8} {
		s := startReactorServer(t, &reactorServer{})
		cfg := reactorConfig(s.ln.Addr().String())
		cfg.Sizes = []int{64, 128 << 10}
		cfg.InFlight = inflight
		// The server allocates a buffer per connection; warm its listener up.
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		rep, err := Run(context.Background(), cfg)
		runtime.ReadMemStats(&after)
		checkReactor(t, rep, err)
		noErrors(t, rep)
		mallocs := after.Mallocs - before.Mallocs
		t.Logf("inflight %d: %d mallocs for %d messages", inflight, mallocs, rep.Requests)
		if mallocs > 1000+rep.Requests/10 {
			t.Errorf("inflight %d: %d allocations for %d messages", inflight, mallocs, rep.Requests)
		}
	}
}

func TestValidate(t *testing.T) {
	good := reactorConfig("127.0.0.1:1")
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*Config){
		"mode":     func(c *Config) { c.Mode = "flood" },
		"addr":     func(c *Config) { c.Addr = "" },
		"conns":    func(c *Config) { c.Conns = 0 },
		"sizes":    func(c *Config) { c.Sizes = nil },
		"size 0":   func(c *Config) { c.Sizes = []int{0} },
		"too big":  func(c *Config) { c.Sizes = []int{MaxSize + 1} },
		"rate":     func(c *Config) { c.Rate = -1 },
		"duration": func(c *Config) { c.Duration = 0 },
		"inflight": func(c *Config) { c.InFlight = -1 },
	} {
		c := good
		mut(&c)
		if err := c.Validate(); err == nil || !strings.HasPrefix(err.Error(), "loadgen: ") {
			t.Errorf("%s: Validate() = %v; want a loadgen error", name, err)
		}
	}
}

func TestParseSizes(t *testing.T) {
	got, err := ParseSizes("64, 4KiB,2MiB,1k,3M", false)
	if want := []int{64, 4096, 2 << 20, 1024, 3 << 20}; err != nil || !slices.Equal(got, want) {
		t.Errorf("ParseSizes = %v, %v; want %v", got, err, want)
	}
	for _, bad := range []string{"0", "x", "65MiB", "-1", ""} {
		if _, err := ParseSizes(bad, false); err == nil {
			t.Errorf("ParseSizes(%q): no error", bad)
		}
	}
	if got, err := ParseSizes("0", true); err != nil || got[0] != 0 {
		t.Errorf("ParseSizes(0, true) = %v, %v", got, err)
	}
}

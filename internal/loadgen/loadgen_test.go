package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// echoServer is a plain goroutine-per-connection echo server on 127.0.0.1;
// corrupt, when set, flips a byte of every echo.
type echoServer struct {
	ln      net.Listener
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   map[net.Conn]bool
	corrupt atomic.Bool
}

func startEchoServer(t *testing.T) *echoServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &echoServer{ln: ln, conns: map[net.Conn]bool{}}
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns[c] = true
			s.mu.Unlock()
			s.wg.Go(func() { s.serve(c) })
		}
	})
	t.Cleanup(s.close)
	return s
}

func (s *echoServer) serve(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if s.corrupt.Load() {
				buf[n-1] ^= 1
			}
			if _, err := c.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (s *echoServer) close() {
	s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *echoServer) addr() string { return s.ln.Addr().String() }

func testConfig(addr string) Config {
	return Config{
		Mode:            "echo",
		Addr:            addr,
		Conns:           4,
		Sizes:           []int{64},
		Duration:        300 * time.Millisecond,
		Warmup:          50 * time.Millisecond,
		Hold:            50 * time.Millisecond,
		DialConcurrency: 8,
		DialTimeout:     5 * time.Second,
		Label:           "test",
	}
}

func checkEcho(t *testing.T, rep *Report, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	if rep.Errors != 0 {
		t.Fatalf("errors: %d %q", rep.Errors, rep.ErrorSamples)
	}
	if rep.Requests == 0 || rep.Bytes == 0 || rep.ReqPerS <= 0 || rep.MBPerS <= 0 {
		t.Fatalf("nothing measured: %+v", rep)
	}
	l := rep.Latency
	if l == nil || l.P50 <= 0 || l.P50 > l.P99 || l.P99 > l.P999 || l.P999 > l.Max || l.Min > l.P50 {
		t.Fatalf("latencies out of order: %+v", l)
	}
	var req uint64
	for _, s := range rep.PerSize {
		if s.Requests == 0 {
			t.Errorf("size %d: no requests", s.Size)
		}
		req += s.Requests
	}
	if req != rep.Requests {
		t.Errorf("per-size requests add up to %d, not %d", req, rep.Requests)
	}
}

func TestEchoClosedLoop(t *testing.T) {
	s := startEchoServer(t)
	cfg := testConfig(s.addr())
	rep, err := Run(context.Background(), cfg)
	checkEcho(t, rep, err)
	if rep.Open != cfg.Conns || len(rep.PerSize) != 1 || rep.PerSize[0].Conns != cfg.Conns {
		t.Errorf("report: %+v", rep)
	}
	if rep.Bytes != rep.Requests*64 {
		t.Errorf("bytes %d for %d requests of 64 B", rep.Bytes, rep.Requests)
	}

	// The JSON report and the table.
	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	b := js.Bytes()
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"req_per_s", "mb_per_s", "latency_us", "per_size", "errors", "requests"} {
		if _, ok := got[k]; !ok {
			t.Errorf("JSON report has no %q: %s", k, b)
		}
	}
	if p999 := got["latency_us"].(map[string]any)["p999"].(float64); p999 <= 0 {
		t.Errorf("JSON p999 %v", p999)
	}
	var table bytes.Buffer
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "p999 µs") || !strings.Contains(table.String(), "errors: 0") {
		t.Errorf("table:\n%s", table.String())
	}
}

// A mix of sizes, one above bigMessage (written by a goroutine of its own).
func TestEchoSizeMix(t *testing.T) {
	s := startEchoServer(t)
	cfg := testConfig(s.addr())
	cfg.Sizes = []int{64, 2 << 20}
	rep, err := Run(context.Background(), cfg)
	checkEcho(t, rep, err)
	if len(rep.PerSize) != 2 || rep.PerSize[0].Size != 64 || rep.PerSize[1].Size != 2<<20 ||
		rep.PerSize[0].Conns != 2 || rep.PerSize[1].Conns != 2 {
		t.Fatalf("per size: %+v", rep.PerSize)
	}
	if want := rep.PerSize[0].Requests*64 + rep.PerSize[1].Requests*(2<<20); rep.Bytes != want {
		t.Errorf("bytes %d, want %d", rep.Bytes, want)
	}
}

func TestEchoRate(t *testing.T) {
	s := startEchoServer(t)
	cfg := testConfig(s.addr())
	cfg.Rate = 2000
	rep, err := Run(context.Background(), cfg)
	checkEcho(t, rep, err)
	// 2,000/s for 0.3 s is 600 messages; a fixed rate cannot exceed its schedule.
	if rep.Requests > 700 {
		t.Errorf("%d requests at 2,000/s over %.2fs", rep.Requests, rep.DurationS)
	}
}

func TestEchoCorrupted(t *testing.T) {
	s := startEchoServer(t)
	s.corrupt.Store(true)
	rep, err := Run(context.Background(), testConfig(s.addr()))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Errors != 4 || !strings.Contains(rep.ErrorSamples[0], "differs") {
		t.Fatalf("errors %d %q, want 4 mismatches", rep.Errors, rep.ErrorSamples)
	}
}

func TestEchoNoServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	rep, err := Run(context.Background(), testConfig(addr))
	if err == nil || rep.Errors != 4 {
		t.Fatalf("err %v, report %+v", err, rep)
	}
}

func TestEchoUnix(t *testing.T) {
	path := filepath.Join(t.TempDir(), "echo.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	s := &echoServer{ln: ln, conns: map[net.Conn]bool{}}
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns[c] = true
			s.mu.Unlock()
			s.wg.Go(func() { s.serve(c) })
		}
	})
	defer s.close()
	rep, err := Run(context.Background(), testConfig("unix:"+path))
	checkEcho(t, rep, err)
}

func TestIdle(t *testing.T) {
	s := startEchoServer(t)
	cfg := testConfig(s.addr())
	cfg.Mode = "idle"
	cfg.Conns = 200
	cfg.PID = os.Getpid() // the test process is the server here
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Errors != 0 || rep.Open != 200 || rep.StillOpen != 200 {
		t.Fatalf("report: %+v", rep)
	}
	if rep.RSSBeforeKiB <= 0 || rep.RSSAfterKiB <= 0 {
		t.Errorf("RSS %d -> %d KiB", rep.RSSBeforeKiB, rep.RSSAfterKiB)
	}
	var table bytes.Buffer
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "bytes per connection") {
		t.Errorf("table:\n%s", table.String())
	}
}

func TestInterrupt(t *testing.T) {
	s := startEchoServer(t)
	cfg := testConfig(s.addr())
	cfg.Duration = time.Hour
	intr := make(chan struct{})
	cfg.Interrupt = intr
	time.AfterFunc(300*time.Millisecond, func() { close(intr) })
	rep, err := Run(context.Background(), cfg)
	checkEcho(t, rep, err)
	if !rep.Interrupted || rep.DurationS > 60 {
		t.Errorf("interrupted %v after %.1fs", rep.Interrupted, rep.DurationS)
	}
}

func TestHistogram(t *testing.T) {
	// Every bucket's bounds tile the values without gaps or overlaps.
	var prev uint64
	for i := range histBuckets {
		lo, hi := histBounds(i)
		if i > 0 && lo != prev+1 {
			t.Fatalf("bucket %d starts at %d, the last ended at %d", i, lo, prev)
		}
		if histIndex(lo) != i || histIndex(hi) != i {
			t.Fatalf("bucket %d [%d, %d]: indexes %d, %d", i, lo, hi, histIndex(lo), histIndex(hi))
		}
		prev = hi
	}
	if prev != 1<<64-1 {
		t.Fatalf("the last bucket ends at %d", prev)
	}

	// Quantiles are within 1% of the exact ones over a wide spread.
	r := rand.New(rand.NewPCG(1, 2))
	vals := make([]int64, 100_000)
	var h, a, b histogram
	for i := range vals {
		vals[i] = int64(r.ExpFloat64()*50_000) + 1_000
		h.record(vals[i])
		if i%2 == 0 {
			a.record(vals[i])
		} else {
			b.record(vals[i])
		}
	}
	a.merge(&b)
	slices.Sort(vals)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 1} {
		exact := vals[int(q*float64(len(vals))+0.5)-1]
		for _, hh := range []*histogram{&h, &a} {
			got := hh.quantile(q)
			if d := float64(got-exact) / float64(exact); d < -0.01 || d > 0.01 {
				t.Errorf("q%v: %d, exact %d", q, got, exact)
			}
		}
	}
	if h.min != vals[0] || h.max != vals[len(vals)-1] || a.total != h.total {
		t.Errorf("min %d max %d total %d", h.min, h.max, a.total)
	}
}

// The client allocates nothing per message (nor does the test's server):
// what is allocated is per connection and per run.
func TestEchoAllocs(t *testing.T) {
	s := startEchoServer(t)
	cfg := testConfig(s.addr())
	cfg.Sizes = []int{64, 128 << 10}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	rep, err := Run(context.Background(), cfg)
	runtime.ReadMemStats(&after)
	checkEcho(t, rep, err)
	mallocs := after.Mallocs - before.Mallocs
	t.Logf("%d mallocs for %d messages", mallocs, rep.Requests)
	// About 250 are the run's own (connections, buffers, goroutines); a
	// slow machine may echo few messages, so allow those 1,000 and then
	// one allocation per ten messages.
	if mallocs > 1000+rep.Requests/10 {
		t.Errorf("%d allocations for %d messages", mallocs, rep.Requests)
	}
}

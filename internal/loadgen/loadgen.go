package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MaxSize is the largest message size a Config may ask for.
const MaxSize = 64 << 20

// DefaultMaxFrame is the reactor protocol's default frame cap, 2 MiB.
const DefaultMaxFrame = 2 << 20

// Config is one run's settings. A zero tuning field (DialConcurrency,
// DialTimeout, InFlight, MaxFrame) takes its default; Mode, Addr, Conns,
// Sizes and, for echo and reactor, Duration must be set.
type Config struct {
	Mode  string // "echo", "idle" or "reactor"; "" is "echo"
	Addr  string // host:port, or unix:/path
	Conns int    // connections

	// Sizes are the message sizes. Echo: connection i sends messages of
	// Sizes[i%len(Sizes)] bytes. Reactor: message j of connection i has
	// Sizes[(i+j)%len(Sizes)] bytes. Idle: Sizes[0], which may be 0 (no
	// echo at all).
	Sizes []int

	Rate     float64       // total messages per second over all connections; 0 is a closed loop
	InFlight int           // reactor: messages on the wire per connection (pipelining); 0 is 1
	Duration time.Duration // measured time (echo, reactor)
	Warmup   time.Duration // unmeasured time before it (echo, reactor)

	// Check makes the reactor mode verify every reply: status 0 and a
	// result equal to the SHA-256 digest of the message. Without it only
	// the status byte is looked at.
	Check bool

	// MaxFrame bounds the reactor replies the client accepts (a longer one
	// fails its connection); 0 is DefaultMaxFrame. The client sends larger
	// messages if Sizes asks, so a test can send an oversized frame.
	MaxFrame int

	Hold            time.Duration // idle: how long the connections are held before the RSS is read
	PID             int           // idle: the server's pid, for its VmRSS; 0 for none
	DialConcurrency int           // connections being opened at once; 0 is 64
	DialTimeout     time.Duration // timeout of one dial and first echo; 0 is 10s

	Label     string          // a name for the server, copied into the report
	Progress  io.Writer       // where a live progress line is rewritten (\r) about every 500 ms; nil for none
	Interrupt <-chan struct{} // closed to end a run early, as a cancelled ctx does; nil for never
}

// Validate reports whether c describes a run, without running it.
func (c Config) Validate() error {
	switch {
	case c.Mode != "" && c.Mode != "echo" && c.Mode != "idle" && c.Mode != "reactor":
		return fmt.Errorf("loadgen: mode %q: want echo, idle or reactor", c.Mode)
	case c.Addr == "":
		return errors.New("loadgen: the address is empty")
	case c.Conns < 1:
		return fmt.Errorf("loadgen: %d connections: want at least 1", c.Conns)
	case len(c.Sizes) == 0:
		return errors.New("loadgen: no message size")
	case c.Rate < 0:
		return fmt.Errorf("loadgen: rate %v: want >= 0", c.Rate)
	case c.Mode != "idle" && c.Duration <= 0:
		return fmt.Errorf("loadgen: duration %v: want > 0", c.Duration)
	case c.Warmup < 0 || c.Hold < 0:
		return errors.New("loadgen: the warmup and the hold must not be negative")
	case c.DialConcurrency < 0 || c.DialTimeout < 0 || c.InFlight < 0 || c.MaxFrame < 0:
		return errors.New("loadgen: the dial concurrency and timeout, in-flight count and frame cap must not be negative")
	}
	for _, s := range c.Sizes {
		if s < 0 || s > MaxSize || (s == 0 && c.Mode != "idle") {
			return fmt.Errorf("loadgen: message size %d out of range (1..%d)", s, MaxSize)
		}
	}
	return nil
}

func (c *Config) setDefaults() {
	if c.Mode == "" {
		c.Mode = "echo"
	}
	if c.DialConcurrency == 0 {
		c.DialConcurrency = 64
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = 10 * time.Second
	}
	if c.InFlight == 0 {
		c.InFlight = 1
	}
	if c.MaxFrame == 0 {
		c.MaxFrame = DefaultMaxFrame
	}
}

// Run performs one run as cfg says and returns its report. It returns when
// the run is over: after cfg.Duration (echo, reactor) or the hold (idle), or
// early when ctx is done or cfg.Interrupt is closed, which marks the report
// Interrupted and keeps what was measured until then. Failed connections
// and wrong answers are counted in the report, not returned as errors; the
// error is for a run that could not start (a bad cfg, no connection opened,
// the server's RSS unreadable).
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	intr, stop := mergeInterrupt(ctx, cfg.Interrupt)
	defer stop()
	cfg.Interrupt = intr
	switch cfg.Mode {
	case "idle":
		return runIdle(cfg)
	case "reactor":
		return runReactor(cfg)
	}
	return runEcho(cfg)
}

// mergeInterrupt returns a channel closed when ctx is done or intr is
// closed, and a stop function that ends the goroutine watching them.
func mergeInterrupt(ctx context.Context, intr <-chan struct{}) (<-chan struct{}, func()) {
	if ctx.Done() == nil {
		return intr, func() {}
	}
	out := make(chan struct{})
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case <-ctx.Done():
		case <-intr:
		case <-quit:
			return
		}
		close(out)
	}()
	return out, func() { close(quit); <-done }
}

// ParseSizes reads a list of message sizes: "64", "64,2097152",
// "4KiB,2MiB" (also K, KB, M, MB, all powers of 1024). Zero is allowed only
// when allowZero (the idle mode: no echo).
func ParseSizes(s string, allowZero bool) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		mult := 1
		lower := strings.ToLower(f)
		for _, suf := range []struct {
			s string
			m int
		}{{"kib", 1 << 10}, {"kb", 1 << 10}, {"k", 1 << 10}, {"mib", 1 << 20}, {"mb", 1 << 20}, {"m", 1 << 20}} {
			if strings.HasSuffix(lower, suf.s) {
				mult, f = suf.m, f[:len(f)-len(suf.s)]
				break
			}
		}
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("loadgen: size %q: %q is not a size", s, f)
		}
		n *= mult
		if n < 0 || n > MaxSize || (n == 0 && !allowZero) {
			return nil, fmt.Errorf("loadgen: size %q: %d out of range (1..%d)", s, n, MaxSize)
		}
		out = append(out, n)
	}
	return out, nil
}

func splitAddr(addr string) (network, address string) {
	if p, ok := strings.CutPrefix(addr, "unix:"); ok {
		return "unix", p
	}
	return "tcp", addr
}

// dialAll opens n connections, at most cfg.DialConcurrency at a time, and
// calls first on each (to do a first echo, say) before the next dial takes
// its slot. It returns the connections that opened and passed first (nil
// where one did not) and the errors, one per failed connection.
func dialAll(cfg Config, n int, first func(i int, c net.Conn) error) ([]net.Conn, []error) {
	network, address := splitAddr(cfg.Addr)
	conns := make([]net.Conn, n)
	errs := make([]error, n)
	d := net.Dialer{Timeout: cfg.DialTimeout}
	next := make(chan int)
	done := make(chan struct{})
	workers := min(cfg.DialConcurrency, n)
	for range workers {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range next {
				c, err := d.Dial(network, address)
				if err == nil && first != nil {
					_ = c.SetDeadline(time.Now().Add(cfg.DialTimeout))
					if err = first(i, c); err == nil {
						err = c.SetDeadline(time.Time{})
					}
					if err != nil {
						c.Close()
					}
				}
				if err != nil {
					errs[i] = fmt.Errorf("connection %d: %w", i, err)
					continue
				}
				conns[i] = c
			}
		}()
	}
	interrupted := false
	for i := 0; i < n && !interrupted; i++ {
		select {
		case next <- i:
		case <-cfg.Interrupt:
			interrupted = true
		}
	}
	close(next)
	for range workers {
		<-done
	}
	var failed []error
	for _, e := range errs {
		if e != nil {
			failed = append(failed, e)
		}
	}
	return conns, failed
}

// readRSS returns a process's resident set size in KiB, from VmRSS in
// /proc/PID/status.
func readRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) == 0 {
				break
			}
			return strconv.ParseInt(f[0], 10, 64)
		}
	}
	return 0, fmt.Errorf("loadgen: /proc/%d/status has no VmRSS", pid)
}

// watchInterrupt ends a run early if interrupt closes before finished:
// every connection's deadline becomes now, which is also the run's end
// (*endedAt), and the report says it was interrupted. Read *endedAt only
// after aux.Wait.
func watchInterrupt(aux *sync.WaitGroup, interrupt, finished <-chan struct{}, conns []net.Conn, rep *Report, endedAt *time.Time) {
	aux.Go(func() {
		select {
		case <-finished:
		case <-interrupt:
			*endedAt = time.Now()
			rep.Interrupted = true
			for _, c := range conns {
				_ = c.SetDeadline(*endedAt)
			}
		}
	})
}

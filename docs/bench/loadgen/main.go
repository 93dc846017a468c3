// Command loadgen drives an echo server over N connections and reports what
// it measured: the load generator of the network benchmarks in docs/bench
// (docs/bench/net.sh runs it against asyncgo's echo server and its peers).
//
// Mode echo (the default): -conns connections each send a message of -size
// bytes, read the whole echo back, check it byte for byte and send the next
// (closed loop), or, with -rate, send on a fixed schedule of that many
// messages a second in total. After -warmup it records for -d: requests/s,
// MB/s (payload echoed, one direction, 1 MB = 10^6 bytes) and latency
// percentiles (p50, p99, p999) from a log-bucket histogram.
//
//	loadgen -addr 127.0.0.1:9000 -conns 50 -size 64 -d 10s
//	loadgen -addr unix:/tmp/echo.sock -conns 4 -size 2MiB -d 10s -json out.json
//	loadgen -addr 127.0.0.1:9000 -size 64,2MiB -rate 20000
//
// Mode idle: open -conns connections, send one -size message on each and read
// its echo (so the server has accepted and served every one), hold them all
// open for -hold, then check that each still echoes. With -pid, loadgen reads
// that process's VmRSS from /proc/PID/status before the first connection and
// after the hold, and reports the growth per connection.
//
//	loadgen -mode idle -addr 127.0.0.1:9000 -conns 10000 -pid 1234
//
// A live progress line goes to stderr when stderr is a terminal; the summary
// table goes to stdout; -json FILE writes the report as JSON. The exit status
// is 1 when a connection failed or an echo was wrong, 2 on bad flags.
//
// In rate mode each connection still has one message in flight at a time; a
// message's latency runs from the time it was due, not the time it could be
// sent, so a server that falls behind is charged for the queue it built.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// config is one run's settings: the flags, parsed.
type config struct {
	Mode            string        // "echo" or "idle"
	Addr            string        // host:port, or unix:/path
	Conns           int           // connections
	Sizes           []int         // message sizes; connection i uses Sizes[i%len(Sizes)]
	Rate            float64       // total messages per second; 0 is a closed loop
	Duration        time.Duration // measured time (echo)
	Warmup          time.Duration // unmeasured time before it (echo)
	Hold            time.Duration // how long idle connections are held before the RSS is read
	PID             int           // the server's pid, for VmRSS (idle); 0 for none
	DialConcurrency int           // dials (and first echoes) in flight at once
	DialTimeout     time.Duration
	Label           string          // a name for the server, copied into the report
	Progress        io.Writer       // where the live progress line goes; nil for none
	Interrupt       <-chan struct{} // closed to end a run early; nil for never
}

const maxSize = 64 << 20

func main() {
	cfg, jsonPath, err := parseFlags(os.Args[1:], os.Stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(2)
	}
	if isTerminal(os.Stderr) {
		cfg.Progress = os.Stderr
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	intr := make(chan struct{})
	go func() { <-ctx.Done(); close(intr) }()
	cfg.Interrupt = intr

	rep, err := run(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
	rep.writeTable(os.Stdout)
	if jsonPath != "" {
		if err := rep.writeJSON(jsonPath); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
			os.Exit(1)
		}
	}
	if rep.Errors > 0 || (rep.Mode == "echo" && rep.Requests == 0) {
		os.Exit(1)
	}
}

func parseFlags(args []string, errOut io.Writer) (config, string, error) {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(errOut)
	var cfg config
	var sizes, jsonPath string
	fs.StringVar(&cfg.Mode, "mode", "echo", "echo (drive the server and measure) or idle (hold -conns open connections)")
	fs.StringVar(&cfg.Addr, "addr", "127.0.0.1:9000", "server address: host:port, or unix:/path")
	fs.IntVar(&cfg.Conns, "conns", 50, "connections")
	fs.StringVar(&sizes, "size", "64", "message size in bytes (suffixes KiB, MiB; a list like 64,2MiB gives connection i the size i mod the list's length)")
	fs.Float64Var(&cfg.Rate, "rate", 0, "total messages per second over all connections (0: closed loop, as fast as the echoes come back)")
	fs.DurationVar(&cfg.Duration, "d", 10*time.Second, "measured duration (echo)")
	fs.DurationVar(&cfg.Warmup, "warmup", time.Second, "unmeasured warmup before -d (echo)")
	fs.DurationVar(&cfg.Hold, "hold", 2*time.Second, "how long to hold the idle connections before reading the server's RSS (idle)")
	fs.IntVar(&cfg.PID, "pid", 0, "the server's pid: report its VmRSS before and after, per connection (idle)")
	fs.IntVar(&cfg.DialConcurrency, "dial-concurrency", 64, "connections being opened at once")
	fs.DurationVar(&cfg.DialTimeout, "dial-timeout", 10*time.Second, "timeout of one dial and first echo")
	fs.StringVar(&cfg.Label, "label", "", "the server's name, copied into the report")
	fs.StringVar(&jsonPath, "json", "", "write the report as JSON to this file")
	if err := fs.Parse(args); err != nil {
		return cfg, "", err
	}
	if fs.NArg() > 0 {
		return cfg, "", fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var err error
	if cfg.Sizes, err = parseSizes(sizes, cfg.Mode == "idle"); err != nil {
		return cfg, "", err
	}
	return cfg, jsonPath, cfg.validate()
}

func (c *config) validate() error {
	switch {
	case c.Mode != "echo" && c.Mode != "idle":
		return fmt.Errorf("-mode %q: want echo or idle", c.Mode)
	case c.Addr == "":
		return errors.New("-addr is empty")
	case c.Conns < 1:
		return fmt.Errorf("-conns %d: want at least 1", c.Conns)
	case len(c.Sizes) == 0:
		return errors.New("no -size")
	case c.Rate < 0:
		return fmt.Errorf("-rate %v: want >= 0", c.Rate)
	case c.Mode == "echo" && c.Duration <= 0:
		return fmt.Errorf("-d %v: want > 0", c.Duration)
	case c.Warmup < 0 || c.Hold < 0:
		return errors.New("-warmup and -hold must not be negative")
	case c.DialConcurrency < 1:
		return fmt.Errorf("-dial-concurrency %d: want at least 1", c.DialConcurrency)
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = 10 * time.Second
	}
	return nil
}

// parseSizes reads "64", "64,2097152", "4KiB,2MiB" (also K, KB, M, MB, all
// powers of 1024). Zero is allowed only when allowZero (idle: no echo).
func parseSizes(s string, allowZero bool) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
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
			return nil, fmt.Errorf("-size %q: %q is not a size", s, f)
		}
		n *= mult
		if n < 0 || n > maxSize || (n == 0 && !allowZero) {
			return nil, fmt.Errorf("-size %q: %d out of range (1..%d)", s, n, maxSize)
		}
		out = append(out, n)
	}
	return out, nil
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// run performs one run as cfg says.
func run(cfg config) (*report, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Mode == "idle" {
		return runIdle(cfg)
	}
	return runEcho(cfg)
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
func dialAll(cfg config, n int, first func(i int, c net.Conn) error) ([]net.Conn, []error) {
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
	return 0, fmt.Errorf("/proc/%d/status has no VmRSS", pid)
}

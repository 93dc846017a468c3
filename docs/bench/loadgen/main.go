// Command loadgen drives a server over N connections and reports what it
// measured: the load generator of the network and reactor benchmarks in
// docs/bench (net.sh runs it against asyncgo's echo servers and their peers,
// reactor.sh against examples/reactor and its Python twins). The engine is
// internal/loadgen; this command is its flags, signals and output.
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
// Mode reactor: the protocol of examples/reactor (a frame is a 4-byte
// big-endian length and its bytes; each message gets one reply frame, in
// order, whose first byte is 0 and the result, or 1 and an error message).
// Each connection keeps -inflight messages on the wire; message j of
// connection i has the size at (i+j) mod the -size list's length. With
// -check (the default) every result must be the message's SHA-256 digest.
// The report counts status-1 replies, wrong digests and failed connections
// apart.
//
//	loadgen -mode reactor -addr 127.0.0.1:8888 -conns 16 -inflight 4 -size 1KiB,64KiB,2MiB
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
// table goes to stdout; -json FILE writes the report as JSON. SIGINT or
// SIGTERM ends the run early and reports what was measured. The exit status
// is 1 when a connection failed or an answer was wrong (or nothing was
// measured), 2 on bad flags.
//
// In rate mode a message's latency runs from the time it was due, not the
// time it could be sent, so a server that falls behind is charged for the
// queue it built.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/asyncgo/asyncgo/internal/loadgen"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var progress io.Writer
	if isTerminal(os.Stderr) {
		progress = os.Stderr
	}
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, progress)
	stop()
	os.Exit(code)
}

// run is the command: it parses args, runs, writes the table to stdout
// (and the JSON file) and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr, progress io.Writer) int {
	cfg, jsonPath, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "loadgen:", strings.TrimPrefix(err.Error(), "loadgen: "))
		return 2
	}
	cfg.Progress = progress
	rep, err := loadgen.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if err := rep.WriteTable(stdout); err != nil {
		fmt.Fprintln(stderr, "loadgen:", err)
		return 1
	}
	if jsonPath != "" {
		if err := writeJSON(rep, jsonPath); err != nil {
			fmt.Fprintln(stderr, "loadgen:", err)
			return 1
		}
	}
	if rep.Errors > 0 || (rep.Mode != "idle" && rep.Requests == 0) {
		return 1
	}
	return 0
}

func writeJSON(rep *loadgen.Report, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := rep.WriteJSON(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func parseFlags(args []string, errOut io.Writer) (loadgen.Config, string, error) {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(errOut)
	var cfg loadgen.Config
	var sizes, jsonPath string
	fs.StringVar(&cfg.Mode, "mode", "echo", "echo (drive an echo server and measure), reactor (the same over the reactor protocol) or idle (hold -conns open connections)")
	fs.StringVar(&cfg.Addr, "addr", "127.0.0.1:9000", "server address: host:port, or unix:/path")
	fs.IntVar(&cfg.Conns, "conns", 50, "connections")
	fs.StringVar(&sizes, "size", "64", "message size in bytes (suffixes KiB, MiB); a list like 64,2MiB gives connection i the size i mod the list's length (echo), or message j of connection i the size (i+j) mod it (reactor)")
	fs.Float64Var(&cfg.Rate, "rate", 0, "total messages per second over all connections (0: closed loop, as fast as the answers come back)")
	fs.IntVar(&cfg.InFlight, "inflight", 1, "messages on the wire per connection (reactor)")
	fs.BoolVar(&cfg.Check, "check", true, "verify that every reply is status 0 and the message's SHA-256 digest (reactor)")
	fs.IntVar(&cfg.MaxFrame, "max-frame", loadgen.DefaultMaxFrame, "the largest reply frame accepted (reactor)")
	fs.DurationVar(&cfg.Duration, "d", 10*time.Second, "measured duration (echo, reactor)")
	fs.DurationVar(&cfg.Warmup, "warmup", time.Second, "unmeasured warmup before -d (echo, reactor)")
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
	if cfg.DialConcurrency < 1 {
		return cfg, "", fmt.Errorf("-dial-concurrency %d: want at least 1", cfg.DialConcurrency)
	}
	if cfg.InFlight < 1 {
		return cfg, "", fmt.Errorf("-inflight %d: want at least 1", cfg.InFlight)
	}
	var err error
	if cfg.Sizes, err = loadgen.ParseSizes(sizes, cfg.Mode == "idle"); err != nil {
		return cfg, "", err
	}
	return cfg, jsonPath, cfg.Validate()
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

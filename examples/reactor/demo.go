package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/asyncgo/asyncgo/internal/loadgen"
)

// The demo's load: demoConns connections, each keeping demoInFlight
// messages on the wire, every one sending the mix of demoSizes in turn.
var demoSizes = []int{1 << 10, 64 << 10, 2 << 20}

const (
	demoConns    = 12
	demoInFlight = 4
)

// drive is the demo's client, the project's load generator in its reactor
// mode: it loads the server at addr for d, checking every reply against
// the message's digest, with a live progress line on progress (nil for
// none) and the summary table on out. A wrong or failed reply fails it.
func drive(ctx context.Context, addr string, d time.Duration, out, progress io.Writer) error {
	rep, err := loadgen.Run(ctx, loadgen.Config{
		Mode:     "reactor",
		Addr:     addr,
		Conns:    demoConns,
		Sizes:    demoSizes,
		InFlight: demoInFlight,
		Duration: d,
		Check:    true,
		Label:    "examples/reactor",
		Progress: progress,
	})
	if err != nil {
		return err
	}
	if err := rep.WriteTable(out); err != nil {
		return err
	}
	if rep.Errors > 0 {
		return fmt.Errorf("the load generator counted %d errors", rep.Errors)
	}
	return nil
}

// progressTo returns f if it is a terminal (a character device), for the
// live progress line, and nil otherwise.
func progressTo(f *os.File) io.Writer {
	if st, err := f.Stat(); err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return nil
	}
	return f
}

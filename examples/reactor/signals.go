package main

import (
	"os"
	"syscall"

	"github.com/asyncgo/asyncgo/loop"
)

// onSignals runs drain on the loop at the first SIGINT or SIGTERM and
// abort at the next one, until stop is called: asyncio's
// loop.add_signal_handler, which runs the callbacks on the loop, never
// inside the signal's delivery. Setting a SIGINT handler also replaces
// loop.Run's own (which would cancel the main task), as in Python.
func onSignals(l *loop.Loop, drain, abort func()) (stop func(), err error) {
	sigs := []os.Signal{os.Interrupt, syscall.SIGTERM}
	n := 0
	handler := func() {
		if n++; n == 1 {
			drain()
		} else {
			abort()
		}
	}
	stop = func() {
		for _, sig := range sigs {
			_, _ = l.RemoveSignalHandler(sig)
		}
	}
	for _, sig := range sigs {
		if err := l.AddSignalHandler(sig, handler); err != nil {
			stop()
			return nil, err
		}
	}
	return stop, nil
}

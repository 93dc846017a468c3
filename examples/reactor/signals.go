package main

import (
	"syscall"

	"github.com/asyncgo/asyncgo/loop"
)

// onSignals runs drain on the loop at the first SIGINT or SIGTERM and
// abort at the next one, until stop is called: asyncio's
// loop.add_signal_handler, which runs the callbacks on the loop, never
// inside the signal's delivery. Setting a SIGINT handler also replaces
// loop.Run's own (which would cancel the main task), as in Python.
func onSignals(l *loop.Loop, drain, abort func()) (stop func()) {
	n := 0
	handler := func() {
		n++
		if n == 1 {
			drain()
		} else {
			abort()
		}
	}
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		if err := l.AddSignalHandler(sig, handler); err != nil {
			panic(err) // only a closed loop refuses, and this one runs
		}
	}
	return func() {
		l.RemoveSignalHandler(syscall.SIGINT)
		l.RemoveSignalHandler(syscall.SIGTERM)
	}
}

package main

import (
	"os"
	"syscall"

	"github.com/asyncgo/asyncgo/loop"
)

// onSignals runs drain on the loop at the first SIGINT or SIGTERM and
// abort at the next one (loop.AddSignalHandler: the callbacks run on the
// loop, never inside the signal's delivery), until stop is called.
//
// loop.Run also hears SIGINT and cancels the main task with it; run
// catches that cancellation and drains (see waitDrain).
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

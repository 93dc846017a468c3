package main

import (
	"os"
	"os/signal"
	"syscall"

	"github.com/asyncgo/asyncgo/loop"
)

// onSignals runs drain on the loop at the first SIGINT or SIGTERM and
// abort at the next one, until stop is called. The signals arrive on a
// goroutine of os/signal's and cross into the loop through
// CallSoonThreadsafe, its one thread-safe door (asyncio's
// loop.add_signal_handler does the same with a self-pipe).
func onSignals(l *loop.Loop, drain, abort func()) (stop func()) {
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for n := 0; ; n++ {
			select {
			case <-ch:
				fn := drain
				if n > 0 {
					fn = abort
				}
				_ = l.CallSoonThreadsafe(fn)
			case <-quit:
				return
			}
		}
	}()
	return func() {
		signal.Stop(ch)
		close(quit)
		<-done
	}
}

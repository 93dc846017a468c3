package loop

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// CPython's asyncio/unix_events.py, signal half: add_signal_handler and
// remove_signal_handler. Go delivers signals to channels (os/signal), never
// to code running inside the signal delivery, so a handler here is a
// channel watched by one goroutine that posts the callback to the loop
// with CallSoonThreadsafe, as asyncio's wakeup fd does.

// Errors of the signal handlers.
var (
	// ErrInvalidSignal is asyncio's ValueError "sig {sig} out of range(1,
	// NSIG)" (or its TypeError for something that is not a signal).
	ErrInvalidSignal = errors.New("loop: invalid signal")
	// ErrSignalUncatchable is asyncio's RuntimeError "sig {sig} cannot be
	// caught": SIGKILL and SIGSTOP.
	ErrSignalUncatchable = errors.New("loop: signal cannot be caught")
)

// signalHandler is one signal's handler on one loop.
type signalHandler struct {
	fn   func()
	ch   chan os.Signal
	done chan struct{}
	wg   sync.WaitGroup
}

// checkSignal is _check_signal.
func checkSignal(sig os.Signal) (syscall.Signal, error) {
	s, ok := sig.(syscall.Signal)
	if !ok || sig == nil {
		return 0, fmt.Errorf("%w: %v", ErrInvalidSignal, sig)
	}
	if s < 1 || s >= 65 {
		return 0, fmt.Errorf("%w: sig %d out of range(1, 65)", ErrInvalidSignal, int(s))
	}
	if s == syscall.SIGKILL || s == syscall.SIGSTOP {
		return 0, fmt.Errorf("%w: sig %d", ErrSignalUncatchable, int(s))
	}
	return s, nil
}

// AddSignalHandler is add_signal_handler: fn runs on the loop, as a
// callback queued by CallSoonThreadsafe, each time sig arrives; a handler
// already set for sig is replaced. Signals that arrive faster than the
// loop runs the callback may be coalesced, as the OS coalesces them.
// A panic in fn goes to the exception handler, as a callback's. It returns
// ErrInvalidSignal or ErrSignalUncatchable for a signal that cannot be
// handled, ErrLoopClosed on a closed loop. From the loop's goroutine only.
//
// Go delivers a signal to every channel registered for it (os/signal), so
// two loops, or a loop and the program's own signal.Notify, each get it.
// While a handler is set the signal's default action (SIGINT and SIGTERM
// end the process) does not happen; RemoveSignalHandler restores it unless
// something else in the program still asks for the signal.
func (l *Loop) AddSignalHandler(sig os.Signal, fn func()) error {
	s, err := checkSignal(sig)
	if err != nil {
		return err
	}
	if fn == nil {
		return fmt.Errorf("%w: nil callback", ErrInvalidSignal)
	}
	if l.stopCB == nil {
		return ErrZeroLoop
	}
	if l.closed.Load() {
		return ErrLoopClosed
	}
	if h := l.signals[s]; h != nil {
		h.fn = fn
		return nil
	}
	if l.signals == nil {
		l.signals = make(map[syscall.Signal]*signalHandler)
	}
	h := &signalHandler{fn: fn, ch: make(chan os.Signal, 8), done: make(chan struct{})}
	l.signals[s] = h
	signal.Notify(h.ch, s)
	if s == syscall.SIGINT && l.runSigint != nil {
		// Replaces Run's SIGINT handler, as signal.signal replaces the
		// Runner's in Python; after ours is listening, so that no SIGINT
		// finds nobody and takes the default action.
		l.runSigint.uninstall()
	}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		for {
			select {
			case <-h.ch:
				_ = l.CallSoonThreadsafe(func() { l.dispatchSignal(s, h) })
			case <-h.done:
				return
			}
		}
	}()
	return nil
}

// dispatchSignal is _handle_signal: it runs the handler set now, if it is
// still the one whose channel saw the signal.
func (l *Loop) dispatchSignal(s syscall.Signal, h *signalHandler) {
	if l.signals[s] != h {
		return // removed (or removed and set again) since the signal came
	}
	h.fn()
}

// RemoveSignalHandler is remove_signal_handler: it reports whether a
// handler was set for sig (and removes it). The signal's default action
// comes back unless the program asks for it elsewhere (signal.Notify).
func (l *Loop) RemoveSignalHandler(sig os.Signal) (bool, error) {
	s, err := checkSignal(sig)
	if err != nil {
		return false, err
	}
	h := l.signals[s]
	if h == nil {
		return false, nil
	}
	delete(l.signals, s)
	if s == syscall.SIGINT && l.runSigint != nil {
		// Python restores default_int_handler, which raises
		// KeyboardInterrupt in the Runner: here Run's handler comes back.
		l.runSigint.install()
	}
	h.stop()
	return true, nil
}

func (h *signalHandler) stop() {
	signal.Stop(h.ch)
	close(h.done)
	h.wg.Wait()
}

// removeSignalHandlers is the unix loop's close(): every handler goes.
func (l *Loop) removeSignalHandlers() {
	for s, h := range l.signals {
		delete(l.signals, s)
		h.stop()
	}
}

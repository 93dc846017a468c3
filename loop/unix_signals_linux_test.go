package loop_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/loop"
)

// Signal handlers, mirroring test_unix_events.py's
// SelectorEventLoopSignalTests and test_runners.py's interrupt cases by
// name. Signals are real: the test process signals itself.

func selfSignal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := syscall.Kill(os.Getpid(), sig); err != nil {
		t.Fatal(err)
	}
}

// unignoreSigint makes SIGINT deliverable for a Run test: a test binary
// started in the background by a shell without job control inherits it
// ignored, and Run leaves an ignored SIGINT alone (as asyncio.run).
// Asking for it (signal.Notify) un-ignores it.
func unignoreSigint(t *testing.T) {
	if !signal.Ignored(syscall.SIGINT) {
		return
	}
	guard := make(chan os.Signal, 4)
	signal.Notify(guard, syscall.SIGINT)
	t.Cleanup(func() { signal.Stop(guard) })
}

// test_check_signal: what cannot be a handled signal is refused.
func TestSignalCheckSignal(t *testing.T) {
	l := loop.New()
	defer l.Close()
	for _, sig := range []os.Signal{nil, syscall.Signal(0), syscall.Signal(65), syscall.Signal(-1)} {
		if err := l.AddSignalHandler(sig, func() {}); !errors.Is(err, loop.ErrInvalidSignal) {
			t.Errorf("AddSignalHandler(%v) = %v; want ErrInvalidSignal", sig, err)
		}
		if _, err := l.RemoveSignalHandler(sig); !errors.Is(err, loop.ErrInvalidSignal) {
			t.Errorf("RemoveSignalHandler(%v) = %v; want ErrInvalidSignal", sig, err)
		}
	}
	// test_add_signal_handler_install_error (EINVAL): SIGKILL and SIGSTOP.
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGSTOP} {
		if err := l.AddSignalHandler(sig, func() {}); !errors.Is(err, loop.ErrSignalUncatchable) {
			t.Errorf("AddSignalHandler(%v) = %v; want ErrSignalUncatchable", sig, err)
		}
	}
	if err := l.AddSignalHandler(syscall.SIGUSR1, nil); !errors.Is(err, loop.ErrInvalidSignal) {
		t.Errorf("nil callback: %v", err)
	}
	var zero loop.Loop
	if err := zero.AddSignalHandler(syscall.SIGUSR1, func() {}); !errors.Is(err, loop.ErrZeroLoop) {
		t.Errorf("zero loop: %v", err)
	}
}

// test_add_signal_handler: the callback runs on the loop (it sets a
// future, which only the loop's goroutine may do), once per signal.
func TestSignalAddSignalHandler(t *testing.T) {
	l := loop.New()
	defer l.Close()
	got := loop.NewFuture[int](l)
	count := 0
	if err := l.AddSignalHandler(syscall.SIGUSR1, func() {
		count++
		if !got.Done() {
			got.SetResult(count)
		}
	}); err != nil {
		t.Fatal(err)
	}
	l.CallSoon(func() { selfSignal(t, syscall.SIGUSR1) })
	if err := l.RunUntilComplete(got); err != nil {
		t.Fatal(err)
	}
	if n, _ := got.Result(); n != 1 {
		t.Errorf("handler ran %d times; want 1", n)
	}
	if ok, err := l.RemoveSignalHandler(syscall.SIGUSR1); !ok || err != nil {
		t.Errorf("RemoveSignalHandler = %v, %v", ok, err)
	}
}

// A second AddSignalHandler replaces the first.
func TestSignalAddSignalHandlerReplaces(t *testing.T) {
	l := loop.New()
	defer l.Close()
	done := loop.NewFuture[string](l)
	l.AddSignalHandler(syscall.SIGUSR2, func() { done.SetResult("old") })
	l.AddSignalHandler(syscall.SIGUSR2, func() { done.SetResult("new") })
	l.CallSoon(func() { selfSignal(t, syscall.SIGUSR2) })
	if err := l.RunUntilComplete(done); err != nil {
		t.Fatal(err)
	}
	if v, _ := done.Result(); v != "new" {
		t.Errorf("ran %q; want the new handler", v)
	}
}

// test_remove_signal_handler, test_remove_signal_handler_2: a removed
// handler no longer runs, and a second remove reports false. A channel
// of the test keeps the signal from killing the process meanwhile.
func TestSignalRemoveSignalHandler(t *testing.T) {
	guard := make(chan os.Signal, 4)
	signal.Notify(guard, syscall.SIGUSR1)
	defer signal.Stop(guard)
	l := loop.New()
	defer l.Close()
	ran := 0
	l.AddSignalHandler(syscall.SIGUSR1, func() { ran++ })
	if ok, err := l.RemoveSignalHandler(syscall.SIGUSR1); !ok || err != nil {
		t.Fatalf("RemoveSignalHandler = %v, %v", ok, err)
	}
	if ok, _ := l.RemoveSignalHandler(syscall.SIGUSR1); ok {
		t.Error("a second RemoveSignalHandler reported true")
	}
	selfSignal(t, syscall.SIGUSR1)
	<-guard // the signal has been delivered
	// Give a stale delivery every chance to run: two loop iterations.
	fut := loop.NewFuture[struct{}](l)
	l.CallSoon(func() { l.CallSoon(func() { fut.SetResult(struct{}{}) }) })
	l.RunUntilComplete(fut)
	if ran != 0 {
		t.Errorf("a removed handler ran %d times", ran)
	}
}

// A panicking handler is reported to the exception handler, as a
// callback's error, and the loop goes on.
func TestSignalHandlerPanic(t *testing.T) {
	l := loop.New()
	defer l.Close()
	var msgs []string
	l.SetExceptionHandler(func(_ *loop.Loop, c loop.ExceptionContext) { msgs = append(msgs, c.Message+": "+c.Err.Error()) })
	done := loop.NewFuture[struct{}](l)
	l.AddSignalHandler(syscall.SIGUSR1, func() {
		l.CallSoon(func() { done.SetResult(struct{}{}) })
		panic("handler boom")
	})
	l.CallSoon(func() { selfSignal(t, syscall.SIGUSR1) })
	if err := l.RunUntilComplete(done); err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || !strings.Contains(msgs[0], "handler boom") {
		t.Errorf("reports %q", msgs)
	}
}

// test_close: Close removes every handler (goleak checks their goroutines
// are gone), and a closed loop refuses new ones.
func TestSignalClose(t *testing.T) {
	l := loop.New()
	l.AddSignalHandler(syscall.SIGUSR1, func() {})
	l.AddSignalHandler(syscall.SIGUSR2, func() {})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if ok, _ := l.RemoveSignalHandler(syscall.SIGUSR1); ok {
		t.Error("a handler survived Close")
	}
	if err := l.AddSignalHandler(syscall.SIGUSR1, func() {}); !errors.Is(err, loop.ErrLoopClosed) {
		t.Errorf("AddSignalHandler after Close = %v", err)
	}
}

// Two loops with a handler for one signal both hear it (os/signal
// delivers to every channel).
func TestSignalTwoLoops(t *testing.T) {
	a, b := loop.New(), loop.New()
	defer a.Close()
	defer b.Close()
	fa, fb := loop.NewFuture[struct{}](a), loop.NewFuture[struct{}](b)
	a.AddSignalHandler(syscall.SIGUSR1, func() { fa.SetResult(struct{}{}) })
	b.AddSignalHandler(syscall.SIGUSR1, func() { fb.SetResult(struct{}{}) })
	selfSignal(t, syscall.SIGUSR1)
	if err := a.RunUntilComplete(fa); err != nil {
		t.Fatal(err)
	}
	if err := b.RunUntilComplete(fb); err != nil {
		t.Fatal(err)
	}
}

// test_runners: test_interrupt_wait: the first SIGINT cancels the main
// task awaiting a future; Run returns ErrKeyboardInterrupt.
func TestRunInterruptWait(t *testing.T) {
	unignoreSigint(t)
	_, err := loop.Run(context.Background(), func(ctx context.Context) (int, error) {
		loopOf(ctx).CallLater(10*time.Millisecond, func() { selfSignal(t, syscall.SIGINT) })
		return loop.NewFuture[int](loopOf(ctx)).Await(ctx)
	})
	if !errors.Is(err, loop.ErrKeyboardInterrupt) {
		t.Errorf("Run = %v; want ErrKeyboardInterrupt", err)
	}
}

// test_interrupt_call_soon: a main task that only yields (Sleep(0)) is
// cancelled too.
func TestRunInterruptCallSoon(t *testing.T) {
	unignoreSigint(t)
	var sawCancel bool
	err := loop.RunMain(context.Background(), func(ctx context.Context) error {
		loopOf(ctx).CallLater(10*time.Millisecond, func() { selfSignal(t, syscall.SIGINT) })
		for {
			if err := loop.Sleep(ctx, 0); err != nil {
				sawCancel = errors.Is(err, context.Canceled)
				return err
			}
		}
	})
	if !errors.Is(err, loop.ErrKeyboardInterrupt) || !sawCancel {
		t.Errorf("Run = %v (cancel seen %v); want ErrKeyboardInterrupt", err, sawCancel)
	}
}

// test_interrupt_cancelled_task: a main task that catches its
// cancellation (and uncancels) and returns a value: Run returns it.
func TestRunInterruptCancelledTask(t *testing.T) {
	unignoreSigint(t)
	v, err := loop.Run(context.Background(), func(ctx context.Context) (string, error) {
		loopOf(ctx).CallLater(10*time.Millisecond, func() { selfSignal(t, syscall.SIGINT) })
		if err := loop.Sleep(ctx, time.Hour); err == nil {
			return "", errors.New("slept through")
		}
		loop.CurrentTask(ctx).Uncancel()
		return "cleaned up", nil
	})
	if err != nil || v != "cleaned up" {
		t.Errorf("Run = %q, %v; want main's own result", v, err)
	}
}

// A second SIGINT stops the loop at once even if main ignores the first;
// the leftover tasks are still cancelled and awaited.
func TestRunSecondInterruptStops(t *testing.T) {
	unignoreSigint(t)
	var bgCancelled bool
	err := loop.RunMain(context.Background(), func(ctx context.Context) error {
		l := loopOf(ctx)
		loop.CreateTask(l, func(ctx context.Context) (int, error) {
			err := loop.Sleep(ctx, time.Hour)
			bgCancelled = errors.Is(err, context.Canceled)
			return 0, err
		})
		l.CallLater(10*time.Millisecond, func() { selfSignal(t, syscall.SIGINT) })
		if err := loop.Sleep(ctx, time.Hour); err != nil {
			// Stubborn once: swallow the first and ask for a second,
			// sent while the handler is surely still installed.
			loop.CurrentTask(ctx).Uncancel()
			selfSignal(t, syscall.SIGINT)
		}
		return loop.Sleep(ctx, time.Hour)
	})
	if !errors.Is(err, loop.ErrKeyboardInterrupt) {
		t.Errorf("Run = %v; want ErrKeyboardInterrupt", err)
	}
	if !bgCancelled {
		t.Error("a leftover task was not cancelled and awaited")
	}
}

// test_signal_install_not_supported_ok: with SIGINT ignored, Run leaves
// it alone (the signal stays ignored, the main task runs to its end).
func TestRunSigintIgnored(t *testing.T) {
	signal.Ignore(syscall.SIGINT)
	defer signal.Reset(syscall.SIGINT)
	v, err := loop.Run(context.Background(), func(ctx context.Context) (int, error) {
		selfSignal(t, syscall.SIGINT)
		if err := loop.Sleep(ctx, 30*time.Millisecond); err != nil {
			return 0, err
		}
		return 42, nil
	})
	if v != 42 || err != nil {
		t.Errorf("Run = %d, %v", v, err)
	}
}

// A SIGINT handler set on Run's loop replaces Run's: the first SIGINT runs
// it and cancels nothing (Python: signal.signal replaces the Runner's).
func TestRunSigintHandlerReplacesRunner(t *testing.T) {
	unignoreSigint(t)
	v, err := loop.Run(context.Background(), func(ctx context.Context) (string, error) {
		l := loopOf(ctx)
		got := loop.NewFuture[string](l)
		if err := l.AddSignalHandler(syscall.SIGINT, func() { got.SetResult("mine") }); err != nil {
			return "", err
		}
		defer l.RemoveSignalHandler(syscall.SIGINT)
		selfSignal(t, syscall.SIGINT)
		v, err := got.Await(ctx)
		if err != nil {
			return "", err
		}
		// Give a cancellation by Run's handler every chance to arrive.
		if err := loop.Sleep(ctx, 20*time.Millisecond); err != nil {
			return "", err
		}
		return v, nil
	})
	if err != nil || v != "mine" {
		t.Errorf("Run = %q, %v; want the program's handler to win", v, err)
	}
}

// Removing the program's SIGINT handler brings Run's back (Python
// restores default_int_handler, whose KeyboardInterrupt the Runner
// handles): the next SIGINT cancels the main task.
func TestRunSigintHandlerRemovedRestoresRunner(t *testing.T) {
	unignoreSigint(t)
	_, err := loop.Run(context.Background(), func(ctx context.Context) (int, error) {
		l := loopOf(ctx)
		if err := l.AddSignalHandler(syscall.SIGINT, func() {}); err != nil {
			return 0, err
		}
		if ok, err := l.RemoveSignalHandler(syscall.SIGINT); !ok || err != nil {
			return 0, fmt.Errorf("RemoveSignalHandler = %v, %v", ok, err)
		}
		selfSignal(t, syscall.SIGINT)
		return loop.NewFuture[int](l).Await(ctx)
	})
	if !errors.Is(err, loop.ErrKeyboardInterrupt) {
		t.Errorf("Run = %v; want ErrKeyboardInterrupt", err)
	}
}

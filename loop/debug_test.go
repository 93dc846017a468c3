package loop_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/loop"
)

// Mirrors test_base_events.py: test_log_slow_callbacks. A callback slower
// than SlowCallbackDuration is reported in debug mode, and a task step
// names its task. (The callback sleeps 20× the threshold: it is slow by
// construction, whatever the machine.)
func TestDebugSlowCallback(t *testing.T) {
	var buf bytes.Buffer
	lg := slog.New(slog.NewTextHandler(&buf, nil))
	_, err := loop.Run(context.Background(), func(ctx context.Context) (int, error) {
		l, _ := loop.RunningLoop(ctx)
		l.CallSoon(func() { time.Sleep(20 * time.Millisecond) })
		slow := loop.Spawn(ctx, func(ctx context.Context) (int, error) {
			time.Sleep(20 * time.Millisecond) // blocks the loop: the sin debug mode reports
			return 0, nil
		}, loop.WithName("sleepy"))
		return slow.Await(ctx)
	}, loop.WithDebug(true), loop.WithSlowCallbackDuration(time.Millisecond), loop.WithLogger(lg))
	if err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.Contains(out, "executing callback took") || !strings.Contains(out, "executing task sleepy took") {
		t.Errorf("log = %q; want reports of the slow callback and the slow task", out)
	}
}

// Without debug mode nothing is reported.
func TestNoDebugNoSlowReport(t *testing.T) {
	var buf bytes.Buffer
	lg := slog.New(slog.NewTextHandler(&buf, nil))
	l := loop.New(loop.WithDebug(false), loop.WithSlowCallbackDuration(time.Millisecond), loop.WithLogger(lg))
	defer l.Close()
	l.CallSoon(func() { time.Sleep(5 * time.Millisecond) })
	l.CallSoon(l.Stop)
	if err := l.RunForever(); err != nil {
		t.Fatal(err)
	}
	if l.Debug() || buf.Len() != 0 {
		t.Errorf("Debug() = %v, log = %q; want false and nothing", l.Debug(), buf.String())
	}
}

// Mirrors test_events.py: test_call_soon_non_thread_safe (debug mode):
// CallSoon from a goroutine that is not the loop's panics with a message
// that names CallSoonThreadsafe; the loop's own tasks may call it.
func TestDebugForeignGoroutinePanics(t *testing.T) {
	l := loop.New(loop.WithDebug(true))
	defer l.Close()
	result := make(chan string)
	task := loop.CreateTask(l, func(ctx context.Context) (int, error) {
		l.CallSoon(func() {}) // the running task's goroutine: allowed
		go func() {
			defer func() { result <- fmt.Sprint(recover()) }()
			l.CallSoon(func() {})
		}()
		return 0, nil
	})
	l.CallSoon(func() {
		// Block the loop until the foreign goroutine reports.
		msg := <-result
		if !strings.Contains(msg, "CallSoonThreadsafe") {
			t.Errorf("panic = %q; want a message naming CallSoonThreadsafe", msg)
		}
	})
	if err := l.RunUntilComplete(task); err != nil {
		t.Fatal(err)
	}
}

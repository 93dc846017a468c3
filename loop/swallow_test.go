package loop_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/loop"
)

// Issue 8, item 10: in debug mode, a task that drops a delivered
// cancellation and awaits again at the same place (a retry loop) is
// reported once, naming the task and the await.
func TestDebugReportsSwallowedCancellation(t *testing.T) {
	l := newLoop(t, loop.WithDebug(true))
	got := recordHandler(l)
	retries := 0
	worker := loop.CreateTask(l, func(ctx context.Context) (int, error) {
		for range 5 {
			if err := loop.Sleep(ctx, time.Second); err != nil {
				retries++ // the bug: the cancellation is dropped
				continue
			}
		}
		return 0, nil
	}, loop.WithName("retrier"))
	main := loop.CreateTask(l, func(ctx context.Context) (int, error) {
		_ = loop.Sleep(ctx, time.Millisecond)
		worker.Cancel()
		_, err := worker.Await(ctx)
		return 0, err
	})
	if err := l.RunUntilComplete(main); err != nil {
		t.Fatal(err)
	}
	var reports []loop.ExceptionContext
	for _, c := range *got {
		if strings.Contains(c.Message, "awaits again") {
			reports = append(reports, c)
		}
	}
	if retries != 1 || len(reports) != 1 {
		t.Fatalf("retries %d, %d swallow reports (%+v); want 1, 1", retries, len(reports), *got)
	}
	c := reports[0]
	if c.Task != loop.AnyTask(worker) || !strings.Contains(c.Message, "retrier") ||
		!strings.Contains(c.Message, "swallow_test.go") || !errors.Is(c.Err, loop.ErrCancelled) {
		t.Errorf("report = %+v; want the task, its name and the await's file", c)
	}
}

// Not reported: a cleanup await elsewhere after catching the
// cancellation (Python's `finally: await close()`), an Uncancel before
// retrying, awaits a TaskGroup makes while its body is cancelled, a
// Condition's re-acquisition, and anything outside debug mode.
func TestDebugSwallowNoFalseReports(t *testing.T) {
	for _, debug := range []bool{true, false} {
		l := newLoop(t, loop.WithDebug(debug))
		got := recordHandler(l)
		var cond loop.Condition
		bodies := map[string]func(ctx context.Context) (int, error){
			"cleanup": func(ctx context.Context) (int, error) {
				err := loop.Sleep(ctx, time.Hour)
				_ = loop.Sleep(ctx, time.Millisecond) // cleanup at another place
				return 0, err
			},
			"uncancel": func(ctx context.Context) (int, error) {
				for i := 0; i < 3; i++ {
					if err := loop.Sleep(ctx, time.Second); err != nil {
						loop.CurrentTask(ctx).Uncancel()
					}
				}
				return 0, nil
			},
			"taskgroup": func(ctx context.Context) (int, error) {
				var tg loop.TaskGroup
				return 0, tg.Do(ctx, func(ctx context.Context) error {
					for range 3 {
						_, _ = loop.SpawnIn(&tg, func(ctx context.Context) (int, error) {
							err := loop.Sleep(ctx, time.Hour)
							_ = loop.Sleep(ctx, time.Second) // slow cleanup: the group waits
							return 0, err
						})
					}
					return loop.Sleep(ctx, time.Hour)
				})
			},
			"timeout": func(ctx context.Context) (int, error) {
				return 0, loop.WithTimeout(ctx, time.Hour, func(ctx context.Context) error {
					return loop.Sleep(ctx, 2*time.Hour)
				})
			},
			"condition": func(ctx context.Context) (int, error) {
				if err := cond.Acquire(ctx); err != nil {
					return 0, err
				}
				defer cond.Release()
				return 0, cond.Wait(ctx)
			},
		}
		holder := loop.CreateTask(l, func(ctx context.Context) (int, error) {
			_ = loop.Sleep(ctx, time.Millisecond)
			if err := cond.Acquire(ctx); err != nil { // the waiter re-acquires behind us
				return 0, err
			}
			_ = loop.Sleep(ctx, time.Second)
			return 0, cond.Release()
		})
		var tasks []*loop.Task[int]
		for name, body := range bodies {
			tasks = append(tasks, loop.CreateTask(l, body, loop.WithName(name)))
		}
		main := loop.CreateTask(l, func(ctx context.Context) (int, error) {
			_ = loop.Sleep(ctx, 2*time.Millisecond)
			for _, tk := range tasks {
				tk.Cancel()
			}
			_, _, err := loop.Wait(ctx, append(tasks, holder), loop.NoTimeout, loop.AllCompleted)
			return 0, err
		})
		if err := l.RunUntilComplete(main); err != nil {
			t.Fatal(err)
		}
		for _, c := range *got {
			if strings.Contains(c.Message, "awaits again") {
				t.Errorf("debug=%v: false report: %s", debug, c.Message)
			}
		}
	}
}

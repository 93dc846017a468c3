package loop_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/loop"
	"github.com/google/go-cmp/cmp"
)

// run runs main on a fresh loop with a virtual clock.
func run[T any](t *testing.T, main func(ctx context.Context) (T, error)) (T, error) {
	t.Helper()
	return loop.Run(context.Background(), main, loop.WithVirtualClock())
}

func TestQuickCancelPropagation(t *testing.T) {
	var trace []string
	_, err := run(t, func(ctx context.Context) (int, error) {
		inner := loop.Spawn(ctx, func(ctx context.Context) (int, error) {
			err := loop.Sleep(ctx, time.Hour)
			trace = append(trace, "inner: "+loop.CancelMessage(err))
			return 0, err
		})
		outer := loop.Spawn(ctx, func(ctx context.Context) (int, error) {
			return inner.Await(ctx)
		})
		loop.Sleep(ctx, 0)
		loop.Sleep(ctx, 0)
		outer.Cancel("stop")
		_, err := outer.Await(ctx)
		trace = append(trace, "outer cancelled: "+loop.CancelMessage(err))
		if !outer.Cancelled() || !inner.Cancelled() {
			t.Errorf("cancelled: outer %v inner %v", outer.Cancelled(), inner.Cancelled())
		}
		return 0, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"inner: stop", "outer cancelled: stop"}, trace); diff != "" {
		t.Errorf("trace (-want +got):\n%s", diff)
	}
}

func TestQuickTaskGroup(t *testing.T) {
	boom := errors.New("boom")
	_, err := run(t, func(ctx context.Context) (int, error) {
		var slowErr error
		err := loop.WithTaskGroup(ctx, func(ctx context.Context, tg *loop.TaskGroup) error {
			tg.Go(func(ctx context.Context) error {
				slowErr = loop.Sleep(ctx, time.Hour)
				return slowErr
			})
			tg.Go(func(ctx context.Context) error {
				loop.Sleep(ctx, time.Second)
				return boom
			})
			return loop.Sleep(ctx, time.Hour)
		})
		if !errors.Is(err, boom) || !errors.Is(slowErr, loop.ErrCancelled) {
			t.Errorf("err %v slowErr %v", err, slowErr)
		}
		if n := loop.CurrentTask(ctx).Cancelling(); n != 0 {
			t.Errorf("cancelling = %d", n)
		}
		return 0, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestQuickWaitFor(t *testing.T) {
	_, err := run(t, func(ctx context.Context) (int, error) {
		cleaned := false
		inner := loop.Spawn(ctx, func(ctx context.Context) (int, error) {
			err := loop.Sleep(ctx, time.Hour)
			loop.Sleep(ctx, time.Second) // cleanup that takes time
			cleaned = true
			return 0, err
		})
		start := loop.CurrentTask(ctx).Loop().Time()
		_, err := loop.WaitFor(ctx, inner, time.Minute)
		if !errors.Is(err, loop.ErrTimeout) || !cleaned {
			t.Errorf("err %v cleaned %v", err, cleaned)
		}
		if d := loop.CurrentTask(ctx).Loop().Time().Sub(start); d != time.Minute+time.Second {
			t.Errorf("elapsed %v", d)
		}
		return 0, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestQuickThreadsafe(t *testing.T) {
	l := loop.New()
	done := make(chan struct{})
	go func() {
		defer close(done)
		cf := loop.RunCoroutineThreadsafe(l, func(ctx context.Context) (int, error) {
			loop.Sleep(ctx, time.Millisecond)
			return 42, nil
		})
		v, err := cf.Result(context.Background())
		if v != 42 || err != nil {
			t.Errorf("got %v %v", v, err)
		}
		l.CallSoonThreadsafe(l.Stop)
	}()
	if err := l.RunForever(); err != nil {
		t.Fatal(err)
	}
	<-done
	l.Close()
}

package loop_test

import (
	"context"
	"testing"

	"github.com/asyncgo/asyncgo/loop"
	"github.com/google/go-cmp/cmp"
)

func TestQuickLockQueue(t *testing.T) {
	var trace []int
	_, err := run(t, func(ctx context.Context) (int, error) {
		var lk loop.Lock
		lk.Acquire(ctx)
		var ts []*loop.Task[struct{}]
		for i := 0; i < 5; i++ {
			ts = append(ts, loop.Go(ctx, func(ctx context.Context) error {
				if err := lk.Acquire(ctx); err != nil {
					return err
				}
				trace = append(trace, i)
				loop.Sleep(ctx, 0)
				return lk.Release()
			}))
		}
		loop.Sleep(ctx, 0)
		lk.Release()
		for _, tk := range ts {
			tk.Await(ctx)
		}
		q := loop.NewQueue[int](2)
		loop.Go(ctx, func(ctx context.Context) error {
			for i := 0; i < 10; i++ {
				q.Put(ctx, 100+i)
			}
			q.Shutdown(false)
			return nil
		})
		for {
			v, err := q.Get(ctx)
			if err != nil {
				break
			}
			trace = append(trace, v)
		}
		return 0, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []int{0, 1, 2, 3, 4, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109}
	if d := cmp.Diff(want, trace); d != "" {
		t.Error(d)
	}
}

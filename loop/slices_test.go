package loop_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/loop"
)

// Issue 8, item 7: a slice of tasks or futures goes to Gather,
// GatherReturnErrors, Wait and AsCompleted as it is (asyncio's
// gather(*tasks), wait(tasks), as_completed(tasks)); mixed kinds go in a
// []Awaitable[T].
func TestSlicesOfTasksPassAsTheyAre(t *testing.T) {
	boom := errors.New("boom")
	inTask(t, func(ctx context.Context) {
		var tasks []*loop.Task[int]
		for i := range 3 {
			tasks = append(tasks, loop.Spawn(ctx, func(ctx context.Context) (int, error) {
				return i * i, loop.Sleep(ctx, time.Duration(3-i)*time.Millisecond)
			}))
		}
		got, err := loop.Gather(ctx, tasks...).Await(ctx)
		sameAs(t, "Gather(tasks...)", []int{0, 1, 4}, got)
		if err != nil {
			t.Fatalf("Gather(tasks...) = %v", err)
		}

		futs := []*loop.Future[int]{loop.NewFuture[int](loopOf(ctx)), loop.NewFuture[int](loopOf(ctx))}
		_ = futs[0].SetResult(7)
		_ = futs[1].SetErr(boom)
		rs, err := loop.GatherReturnErrors(ctx, futs...).Await(ctx)
		if err != nil || len(rs) != 2 || rs[0].Value != 7 || rs[1].Err != boom {
			t.Fatalf("GatherReturnErrors(futs...) = %+v, %v", rs, err)
		}

		mixed := []loop.Awaitable[int]{tasks[0], futs[0]}
		got, err = loop.Gather(ctx, mixed...).Await(ctx)
		sameAs(t, "Gather(mixed...)", []int{0, 7}, got)
		if err != nil {
			t.Fatal(err)
		}

		done, pending, err := loop.Wait(ctx, tasks, loop.NoTimeout, loop.AllCompleted)
		if err != nil || len(done) != 3 || len(pending) != 0 {
			t.Fatalf("Wait(tasks) = %d done, %d pending, %v", len(done), len(pending), err)
		}
		n := 0
		for tk, err := range loop.AsCompleted(ctx, tasks, loop.NoTimeout) {
			if err != nil || !tk.Done() {
				t.Fatalf("AsCompleted yielded %v, %v", tk, err)
			}
			n++
		}
		if n != 3 {
			t.Errorf("AsCompleted yielded %d tasks; want 3", n)
		}
	})
}

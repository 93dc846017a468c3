package aio

import (
	"context"
	"errors"

	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/loop"
)

func taskContextOf(ctx context.Context) context.Context {
	if ctx == nil {
		return nil
	}
	return loop.TaskContext(ctx)
}

// awaitReply waits for the reply on f, a future marked running (so that
// nothing cancels it). If ctx ends first, cancel withdraws the request and
// the wait goes on, with wctx (the task's own ctx) on a loop, for the
// answer that then comes: used where the operation must finish what it
// started (a Condition's wait takes its lock back) before it returns the
// cancellation.
func awaitReply(ctx, wctx context.Context, f *executor.Future[reply], cancel func()) (reply, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if l, err := loop.RunningLoop(ctx); err == nil {
		r, err := loop.WrapFuture(l, f).Await(ctx)
		if err == nil {
			return r, nil
		}
		cancel()
		for {
			r, err2 := loop.WrapFuture(l, f).Await(wctx)
			if err2 == nil {
				if r.status == stCancelled {
					return r, err
				}
				return r, nil
			}
			err = err2
			if !errors.Is(err2, loop.ErrCancelled) && !errors.Is(err2, context.Canceled) {
				return r, err2
			}
		}
	}
	select {
	case <-f.DoneChan():
	case <-ctx.Done():
		cancel()
		<-f.DoneChan()
	}
	r, _ := f.Result(context.Background())
	if r.status == stCancelled {
		return r, ctx.Err()
	}
	return r, nil
}

// runningFuture returns a future that only its setter completes.
func runningFuture() *executor.Future[reply] {
	f := executor.NewFuture[reply]()
	f.SetRunningOrNotifyCancel()
	return f
}

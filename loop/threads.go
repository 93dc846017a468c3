package loop

import (
	"context"

	"github.com/asyncgo/asyncgo/executor"
)

// CPython's asyncio/threads.py: to_thread.

// ToThread is asyncio.to_thread: it runs fn on the loop's default
// ThreadPool and awaits its result.
func ToThread[R any](ctx context.Context, fn func() (R, error)) (R, error) {
	if runningTask(ctx) == nil {
		var zero R
		return zero, ErrNotInTask
	}
	return RunInExecutor(ctx, nil, executor.Local(fn)).Await(ctx)
}

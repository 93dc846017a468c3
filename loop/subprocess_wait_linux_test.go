package loop_test

import (
	"context"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/loop"
)

// Process.wait returns the code once the child has exited, even while a
// grandchild still holds its stdout open (asyncio's _wait returns
// _returncode when it is known; only the waiters that came before the
// exit wait for the pipes to close).
func TestWaitAfterExitWithPipeStillOpen(t *testing.T) {
	_, err := loop.Run(context.Background(), func(ctx context.Context) (struct{}, error) {
		p, err := loop.CreateSubprocessShell(ctx, "sleep 2 & exit 3", &loop.SubprocessOptions{Stdout: loop.PIPE})
		if err != nil {
			return struct{}{}, err
		}
		for {
			if _, ok := p.ReturnCode(); ok {
				break
			}
			if err := loop.Sleep(ctx, 5*time.Millisecond); err != nil {
				return struct{}{}, err
			}
		}
		code, err := loop.WaitFor(ctx, loop.Spawn(ctx, p.Wait), time.Second)
		if err != nil {
			t.Errorf("Wait after the exit: %v (the grandchild holds stdout)", err)
		} else if code != 3 {
			t.Errorf("Wait = %d, want 3", code)
		}
		return struct{}{}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

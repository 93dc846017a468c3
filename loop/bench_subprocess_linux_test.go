package loop_test

import (
	"context"
	"testing"

	"github.com/asyncgo/asyncgo/loop"
)

// BenchmarkSubprocessExecWait: start /bin/true with stdout a PIPE, read
// it to EOF and Wait: asyncio's create_subprocess_exec + communicate.
func BenchmarkSubprocessExecWait(b *testing.B) {
	err := loop.RunMain(context.Background(), func(ctx context.Context) error {
		opts := &loop.SubprocessOptions{Stdout: loop.PIPE}
		for b.Loop() {
			p, err := loop.CreateSubprocessExec(ctx, "/bin/true", nil, opts)
			if err != nil {
				return err
			}
			if _, _, err := p.Communicate(ctx, nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

//go:build linux

package processpool_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"

	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/executor/processpool"
)

var squarePtr = executor.Register("test.squarePtr", func(x *int) (int, error) { return *x * *x, nil })

// Chunks sent ahead, several per worker when they are quick: many
// submitters' chunk calls of every size (small ones the reader sends
// itself, ones over its 8 KiB limit for a second call ahead, ones over 64
// KiB that only the sender sends), some that cannot be encoded (a nil
// element), with MaxTasksPerChild retiring workers in the middle of what
// they were sent ahead, and in one round a worker killed: every future
// ends, every result is the right one for its own call, and a failed
// call fails alone (or, with a killed worker, with ErrBrokenProcessPool).
func TestChunksAhead(t *testing.T) {
	for _, round := range []struct {
		maxTasks int
		kill     bool
	}{{0, false}, {3, false}, {10, false}, {0, true}} {
		t.Run(fmt.Sprintf("maxTasks=%d/kill=%v", round.maxTasks, round.kill), func(t *testing.T) {
			p := newPool(t, processpool.Options{MaxWorkers: 2, MaxTasksPerChild: round.maxTasks})
			r := rand.New(rand.NewPCG(uint64(round.maxTasks), 3))
			type sent struct {
				items []*int
				bad   bool
				f     *executor.Future[[]int]
			}
			var calls []sent
			for i := range 400 {
				n := 1 + r.IntN(100)
				switch r.IntN(20) {
				case 0:
					n = 2000 // about 18 KiB: over the second-ahead limit
				case 1:
					n = 9000 // about 80 KiB: the sender's
				}
				items := make([]*int, n)
				for k := range items {
					v := i*1000 + k
					items[k] = &v
				}
				bad := r.IntN(25) == 0
				if bad {
					items[r.IntN(n)] = nil
				}
				f, err := executor.Submit(p, squarePtr.BindChunk(items))
				if round.kill && errors.Is(err, executor.ErrBrokenProcessPool) {
					break // the pool broke: Submit refuses from now on
				}
				if err != nil {
					t.Fatal(err)
				}
				calls = append(calls, sent{items, bad, f})
				if round.kill && i == 200 {
					w, err := executor.Submit(p, pid.Bind(struct{}{}))
					if errors.Is(err, executor.ErrBrokenProcessPool) {
						break
					}
					if err != nil {
						t.Fatal(err)
					}
					if id, err := w.Result(context.Background()); err == nil {
						_ = syscall.Kill(id, syscall.SIGKILL)
					}
				}
			}
			broken := 0
			for i, c := range calls {
				got, err := c.f.Result(context.Background())
				switch {
				case errors.Is(err, executor.ErrBrokenProcessPool):
					if !round.kill {
						t.Fatalf("call %d: %v", i, err)
					}
					broken++
				case c.bad:
					if err == nil {
						t.Fatalf("call %d with a nil element succeeded", i)
					}
				case err != nil:
					t.Fatalf("call %d: %v", i, err)
				default:
					if len(got) != len(c.items) {
						t.Fatalf("call %d: %d results for %d items", i, len(got), len(c.items))
					}
					for k, v := range got {
						if x := *c.items[k]; v != x*x {
							t.Fatalf("call %d item %d: %d, want %d (another call's result?)", i, k, v, x*x)
						}
					}
				}
			}
			if round.kill && broken == 0 {
				t.Log("the killed worker broke nothing (it was idle)")
			}
		})
	}
}

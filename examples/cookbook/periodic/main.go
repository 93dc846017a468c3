// Command periodic runs a task at a fixed rate, every 100ms of loop time
// whatever each run takes, until it is cancelled; its cleanup, Python's
// `finally:`, is a deferred call.
package main

import (
	"context"
	"fmt"
	"time"

	"github.com/asyncgo/asyncgo/loop"
)

const period = 100 * time.Millisecond

// work is one run: it takes 30ms, then 70ms for the fourth (and the fifth
// does not finish: the ticker is cancelled during it).
func work(ctx context.Context, n int) error {
	d := 30 * time.Millisecond
	if n == 4 {
		d = 70 * time.Millisecond
	}
	return loop.Sleep(ctx, d)
}

// flush is cleanup that is plain Go code taking a ctx (a database call, an
// http request): given the task's ctx after a cancel, it would fail at once.
func flush(ctx context.Context, runs int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	fmt.Printf("flushed %d runs\n", runs)
	return nil
}

// ticker runs work at start + n*period for n = 1, 2, ...: each wake-up is
// computed from the start, never from the previous one, so time spent in
// work does not shift the next run and drift does not accumulate.
func ticker(ctx context.Context) (err error) {
	start := loop.Time(ctx)
	runs := 0
	defer func() { // finally:
		fmt.Printf("cleanup after %v: %v\n", loop.Time(ctx).Sub(start), err)
		// Awaits still work with ctx: the cancellation was delivered once,
		// as in asyncio (await conn.close()).
		if serr := loop.Sleep(ctx, 10*time.Millisecond); serr == nil {
			fmt.Printf("closed at %v\n", loop.Time(ctx).Sub(start))
		}
		// But ctx itself stays cancelled: a plain Go call given it fails at
		// once. Give Go calls a ctx without the cancellation.
		if ferr := flush(context.WithoutCancel(ctx), runs); ferr != nil {
			fmt.Println("flush:", ferr)
		}
	}()
	for n := 1; ; n++ {
		next := start.Add(time.Duration(n) * period)
		if err := loop.Sleep(ctx, next.Sub(loop.Time(ctx))); err != nil {
			return err
		}
		fmt.Printf("run %d at %v\n", n, loop.Time(ctx).Sub(start))
		if err := work(ctx, n); err != nil {
			return err
		}
		runs++
	}
}

func main() {
	err := loop.RunMain(context.Background(), func(ctx context.Context) error {
		tk := loop.Go(ctx, ticker)
		if err := loop.Sleep(ctx, 520*time.Millisecond); err != nil {
			return err
		}
		tk.Cancel()
		_, err := tk.Await(ctx)
		fmt.Println("ticker cancelled:", tk.Cancelled(), err)
		return nil
	}, loop.WithVirtualClock())
	if err != nil {
		fmt.Println("error:", err)
	}
}

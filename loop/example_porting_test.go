package loop_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/asyncgo/asyncgo/loop"
)

// RunMain is asyncio.run(main()) for a main that returns only an error.
func ExampleRunMain() {
	err := loop.RunMain(context.Background(), func(ctx context.Context) error {
		start := loop.Time(ctx)
		if err := loop.Sleep(ctx, time.Minute); err != nil {
			return err
		}
		fmt.Println("slept", loop.Time(ctx).Sub(start))
		return nil
	}, loop.WithVirtualClock())
	fmt.Println("err:", err)
	// Output:
	// slept 1m0s
	// err: <nil>
}

// Split is except*: handle one kind of error from a TaskGroup and return
// the rest.
func ExampleExceptionGroup_Split() {
	errDisk := errors.New("disk full")
	err := loop.RunMain(context.Background(), func(ctx context.Context) error {
		var tg loop.TaskGroup
		err := tg.Do(ctx, func(ctx context.Context) error {
			_ = tg.Go(func(ctx context.Context) error { return loop.ErrTimeout })
			_ = tg.Go(func(ctx context.Context) error { return errDisk })
			return nil
		})
		var eg *loop.ExceptionGroup
		if errors.As(err, &eg) {
			timeouts, rest := eg.Split(loop.Is(loop.ErrTimeout))
			fmt.Println("handled:", timeouts != nil)
			return rest
		}
		return err
	})
	fmt.Println("rest is disk full:", errors.Is(err, errDisk), "has timeout:", errors.Is(err, loop.ErrTimeout))
	// Output:
	// handled: true
	// rest is disk full: true has timeout: false
}

// A timeout carries the cancellation that caused it, as Python's
// `raise TimeoutError from exc`.
func ExampleTimeoutError() {
	_ = loop.RunMain(context.Background(), func(ctx context.Context) error {
		slow := loop.Spawn(ctx, func(ctx context.Context) (int, error) {
			return 0, loop.Sleep(ctx, time.Hour)
		})
		_, err := loop.WaitFor(ctx, slow, time.Second)
		var te *loop.TimeoutError
		if errors.As(err, &te) {
			fmt.Println(err)
			fmt.Println("cause is a cancellation:", errors.Is(te.Cause(), loop.ErrCancelled))
			fmt.Println("err is a cancellation:", errors.Is(err, loop.ErrCancelled))
		}
		return nil
	}, loop.WithVirtualClock())
	// Output:
	// loop: timeout: context deadline exceeded
	// cause is a cancellation: true
	// err is a cancellation: false
}

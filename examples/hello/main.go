// Command hello is the smallest asyncgo program: three tasks sleep on one
// loop; WaitFor gives up on the slow one, Gather collects the others.
package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/asyncgo/asyncgo/loop"
)

func fetch(name string, d time.Duration) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		if err := loop.Sleep(ctx, d); err != nil { // an await: other tasks run meanwhile
			return "", err
		}
		return fmt.Sprintf("%s after %v", name, d), nil
	}
}

func main() {
	got, err := loop.Run(context.Background(), func(ctx context.Context) ([]string, error) {
		a := loop.Spawn(ctx, fetch("a", 20*time.Millisecond))
		b := loop.Spawn(ctx, fetch("b", 10*time.Millisecond))
		slow := loop.Spawn(ctx, fetch("slow", time.Hour))
		if _, err := loop.WaitFor(ctx, slow, 50*time.Millisecond); errors.Is(err, loop.ErrTimeout) {
			fmt.Println("slow timed out; cancelled:", slow.Cancelled())
		}
		return loop.Gather(ctx, a, b).Await(ctx)
	})
	fmt.Println(got, err)
}

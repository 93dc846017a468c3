// Command forgotinit is a program that forgot executor.Init: a worker it
// starts runs this main too. TestForgottenInit runs it. FORGOT_MODE=exit:
// the worker's main gives up when processpool.New refuses; hang: it hangs
// instead, and the pool's start handshake times out.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/executor/processpool"
)

var square = executor.Register("forgotinit.square", func(x int) (int, error) { return x * x, nil })

func main() {
	// No executor.Init() here: the bug under test.
	p, err := processpool.New(processpool.Options{MaxWorkers: 1, StartTimeout: 2 * time.Second})
	if err != nil {
		fmt.Println("pid", os.Getpid(), "New:", err)
		if os.Getenv("FORGOT_MODE") == "hang" {
			time.Sleep(time.Hour)
		}
		os.Exit(1)
	}
	f, err := executor.Submit(p, square.Bind(3))
	if err != nil {
		fmt.Println("Submit:", err)
		os.Exit(1)
	}
	v, err := f.Result(context.Background())
	fmt.Println("Result:", v, err)
	p.Shutdown(true, false)
}

package executor_test

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/asyncgo/asyncgo/executor"
)

// wordCount is a registered function: a process pool runs it in a worker
// process (see package processpool), a ThreadPool in this one. Functions
// are registered at package level, so that a worker, which re-executes
// this binary, registers them too before executor.Init runs.
var wordCount = executor.Register("example.wordCount", func(text string) (int, error) {
	return len(strings.Fields(text)), nil
})

// A ThreadPool runs plain Go functions on at most MaxWorkers goroutines; a
// panic becomes the future's error.
func ExampleThreadPool() {
	pool, err := executor.NewThreadPool(executor.ThreadPoolOptions{MaxWorkers: 4})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pool.Shutdown(true, false)

	f, _ := executor.SubmitFunc(pool, func() (string, error) { return strings.ToUpper("done"), nil })
	fmt.Println(f.Result(context.Background()))

	bad, _ := executor.SubmitFunc(pool, func() (string, error) { panic("out of range") })
	_, err = bad.Result(context.Background())
	var pe *executor.PanicError
	fmt.Println(errors.As(err, &pe), pe.Value)

	pool.Shutdown(true, false)
	_, err = executor.SubmitFunc(pool, func() (string, error) { return "", nil })
	fmt.Println(err)
	// Output:
	// DONE <nil>
	// true out of range
	// executor: cannot schedule new futures after shutdown
}

// Map is executor.map: every call is submitted at once, and the results
// come in argument order. A registered function's Bind works on any
// executor: here a ThreadPool, in this process; on a process pool, in
// worker processes.
func ExampleMap() {
	pool, err := executor.NewThreadPool(executor.ThreadPoolOptions{MaxWorkers: 2})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pool.Shutdown(true, false)

	texts := []string{"a", "a b", "a b c", "a b c d"}
	var counts []int
	for n, err := range executor.Map(context.Background(), pool, wordCount.Bind, texts) {
		if err != nil {
			fmt.Println(err)
			break
		}
		counts = append(counts, n)
	}
	fmt.Println(counts)
	// Output: [1 2 3 4]
}

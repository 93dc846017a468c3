package executor_test

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/asyncgo/asyncgo/executor"
)

// wordCount runs in a worker process. Functions for a ProcessPool are
// registered at package level, so that a worker, which re-executes this
// binary, registers them too before executor.Init runs.
var wordCount = executor.Register("example.wordCount", func(text string) (int, error) {
	return len(strings.Fields(text)), nil
})

// A ProcessPool runs registered functions in worker processes. The program's
// main calls executor.Init first thing (here TestMain does): in a worker,
// Init runs the worker's loop and never returns.
func ExampleProcessPool() {
	pool, err := executor.NewProcessPool(executor.ProcessPoolOptions{MaxWorkers: 2})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pool.Shutdown(true, false)

	f, err := executor.Submit(pool, wordCount.Bind("the quick brown fox"))
	if err != nil {
		fmt.Println(err)
		return
	}
	n, err := f.Result(context.Background())
	fmt.Println(n, err)

	// A closure cannot cross into another process.
	_, err = executor.SubmitFunc(pool, func() (int, error) { return 1, nil })
	fmt.Println(err)
	// Output:
	// 4 <nil>
	// executor: a ProcessPool runs only registered functions, not closures
}

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
// come in argument order. With a registered function's Bind it works on a
// ProcessPool too.
func ExampleMap() {
	pool, err := executor.NewProcessPool(executor.ProcessPoolOptions{MaxWorkers: 2})
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

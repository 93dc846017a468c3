//go:build linux

package processpool_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/executor/processpool"
)

// wordCount runs in a worker process. Functions for a process pool are
// registered at package level, so that a worker, which re-executes this
// binary, registers them too before executor.Init runs.
var wordCount = executor.Register("example.wordCount", func(text string) (int, error) {
	return len(strings.Fields(text)), nil
})

// A Pool runs registered functions in worker processes. The program's main
// calls executor.Init first thing (here TestMain does): in a worker, Init
// runs the worker's loop and never returns.
func Example() {
	pool, err := processpool.New(processpool.Options{MaxWorkers: 2})
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

// executor.Map works on a Pool with a registered function's Bind: every
// call is submitted at once, the results come in argument order.
func Example_map() {
	pool, err := processpool.New(processpool.Options{MaxWorkers: 2})
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

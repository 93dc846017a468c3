//go:build linux

package processpool_test

import (
	"context"
	"errors"
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

// DiskFullError is an error type a worker returns; registered with
// executor.RegisterErrorType, it crosses to the parent as a value.
type DiskFullError struct {
	Need, Free int
}

func (e *DiskFullError) Error() string {
	return fmt.Sprintf("disk full: need %d, %d free", e.Need, e.Free)
}

func init() { executor.RegisterErrorType[*DiskFullError]() }

var store = executor.Register("example.store", func(size int) (int, error) {
	if size > 100 {
		return 0, fmt.Errorf("store %d bytes: %w", size, &DiskFullError{Need: size, Free: 100})
	}
	return size, nil
})

// An error of a type registered with executor.RegisterErrorType, returned
// or wrapped in a worker, reaches the parent as a value that errors.As
// finds; the error prints the worker's text. An error of another type
// arrives as its text only (an *executor.RemoteError).
func Example_errorType() {
	pool, err := processpool.New(processpool.Options{MaxWorkers: 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pool.Shutdown(true, false)

	f, err := executor.Submit(pool, store.Bind(300))
	if err != nil {
		fmt.Println(err)
		return
	}
	_, err = f.Result(context.Background())
	fmt.Println(err)
	var full *DiskFullError
	if errors.As(err, &full) {
		fmt.Println("need", full.Need-full.Free, "more bytes")
	}
	// Output:
	// store 300 bytes: disk full: need 300, 100 free
	// need 200 more bytes
}

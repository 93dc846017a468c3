//go:build linux

package aio_test

import (
	"fmt"

	"github.com/asyncgo/asyncgo/aio"
	"github.com/asyncgo/asyncgo/executor"
)

// cube is registered at package level, so that a worker process (this
// binary re-executed, whose main calls executor.Init first) has it too.
var cube = executor.Register("aio.example.cube", func(x int) (int, error) { return x * x * x, nil })

// Python:
//
//	with multiprocessing.Pool(2) as p:
//	    print(p.map(cube, range(10), chunksize=3))
func ExampleMap() {
	p, err := aio.NewPool(aio.PoolOptions{Processes: 2})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() { p.Terminate(); _ = p.Join() }() // the with-statement's exit
	cubes, err := aio.Map(p, cube, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, 3)
	fmt.Println(cubes, err)

	for v, err := range aio.Imap(p, cube, []int{10, 11}, 0) {
		fmt.Println(v, err)
	}
	// Output:
	// [0 1 8 27 64 125 216 343 512 729] <nil>
	// 1000 <nil>
	// 1331 <nil>
}

// Close lets the work already taken finish; Join then waits for the
// worker processes to exit.
func ExamplePool_Close() {
	p, err := aio.NewPool(aio.PoolOptions{Processes: 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	f := aio.ApplyAsync(p, cube, 4)
	fmt.Println(p.Join()) // still running: Python's ValueError
	p.Close()
	fmt.Println(p.Join(), f.Done())
	_, err = aio.Apply(p, cube, 5)
	fmt.Println(err)
	// Output:
	// aio: Pool is still running
	// <nil> true
	// aio: Pool not running: executor: cannot schedule new futures after shutdown
}

// Command replaced reports which binary its pool's worker runs.
// TestWorkerRunsTheRunningBinary builds it twice, with different versions,
// and replaces the file of the running one before its first call.
package main

import (
	"bufio"
	"context"
	"fmt"
	"os"

	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/executor/processpool"
)

var version = "unset" // set with -ldflags -X main.version=...

var workerVersion = executor.Register("replaced.version", func(struct{}) (string, error) { return version, nil })

func main() {
	executor.Init()
	p, err := processpool.New(processpool.Options{MaxWorkers: 1})
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	defer p.Shutdown(true, false)
	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		fmt.Println(err)
		return
	}
	f, err := executor.Submit(p, workerVersion.Bind(struct{}{}))
	if err != nil {
		fmt.Println(err)
		return
	}
	v, err := f.Result(context.Background())
	fmt.Println("parent", version, "worker", v, err)
}

//go:build linux

package prefork_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/asyncgo/asyncgo/aio/prefork"
)

// A group of two workers on one address, each recycled after 100
// requests; lineServer (registered at package level with
// prefork.Register) answers each line "x" with "<pid> x".
func Example() {
	m, err := prefork.Start(lineServer, prefork.Options{Addr: "127.0.0.1:0", Workers: 2, MaxRequests: 100})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := m.Ready(ctx); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(m.Workers()), "workers serve", "127.0.0.1:port")
	c, err := net.Dial("tcp", m.Addr().String())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Fprintln(c, "hello")
	answer, _ := bufio.NewReader(c).ReadString('\n')
	_, text, _ := strings.Cut(strings.TrimSpace(answer), " ")
	fmt.Println("answer:", text)
	c.Close()
	if err := m.Stop(10 * time.Second); err != nil { // gracefully: SIGTERM in Run
		fmt.Println(err)
	}
	for _, wi := range m.Exited() {
		fmt.Println("worker", wi.Slot, wi.Reason, "exit", wi.ExitCode)
	}
	// Unordered output:
	// 2 workers serve 127.0.0.1:port
	// answer: hello
	// worker 0 stopped exit 0
	// worker 1 stopped exit 0
}

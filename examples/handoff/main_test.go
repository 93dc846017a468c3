package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/internal/exampletest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	executor.Init() // a worker process runs here and exits
	goleak.VerifyTestMain(m)
}

// The demo's output is exact: clients are printed in their order, each
// client's first line travelled with its connection (it came in the
// acceptor's read of the route line), every worker answer carries the pid
// of its route's worker (checkPid fails the run otherwise), and after
// worker b is killed the acceptor still owns the hand-off that failed
// and answers it itself, the pre-read line first.
func TestHandoffDemo(t *testing.T) {
	const want = `workers a and b started: a process and a loop each
client 1, route a: sent "hello from client 1", got "a (pid of worker a): hello from client 1 (pre-read by the acceptor)"
client 1, route a: sent "bye", got "a (pid of worker a): bye"
client 2, route b: sent "hello from client 2", got "b (pid of worker b): hello from client 2 (pre-read by the acceptor)"
client 2, route b: sent "bye", got "b (pid of worker b): bye"
client 3, route a: sent "hello from client 3", got "a (pid of worker a): hello from client 3 (pre-read by the acceptor)"
client 3, route a: sent "bye", got "a (pid of worker a): bye"
client 4, route c: sent "hello from client 4", got "acceptor: no worker for route c"
worker b killed
client 5, route b: sent "hello from client 5", got "acceptor: worker b is gone, so I answer: hello from client 5"
client 5, route b: sent "bye", got "acceptor: worker b is gone, so I answer: bye"
`
	os.Args = []string{"handoff"}
	exampletest.Expect(t, main, want)
}

// Real clients at once, several lines each in one write after the route
// line: every client is answered on its own connection by one worker
// process, its route's, whose pid is the same for every client of the
// route and not the acceptor's; all lines, in order.
func TestHandoffServe(t *testing.T) {
	const clients, lines = 30, 5
	routes := []string{"a", "b", "c"}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, "127.0.0.1:0", routes, true, func(addr string) { addrc <- addr }) }()
	var addr string
	select {
	case addr = <-addrc:
	case err := <-done:
		t.Fatalf("run = %v before serving", err)
	}
	var mu sync.Mutex
	pids := map[string]string{}
	var wg sync.WaitGroup
	for i := range clients {
		route := routes[i%len(routes)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			var req strings.Builder
			fmt.Fprintf(&req, "ROUTE %s\n", route)
			for j := range lines {
				fmt.Fprintf(&req, "client %d line %d\n", i, j)
			}
			if _, err := c.Write([]byte(req.String())); err != nil {
				t.Error(err)
				return
			}
			br := bufio.NewReader(c)
			for j := range lines {
				got, err := br.ReadString('\n')
				if err != nil {
					t.Errorf("client %d: %v", i, err)
					return
				}
				r, rest, _ := strings.Cut(got, " pid=")
				pid, text, _ := strings.Cut(rest, ": ")
				text, _, _ = strings.Cut(strings.TrimSuffix(text, "\n"), " (pre-read")
				if r != route || text != fmt.Sprintf("client %d line %d", i, j) || pid == fmt.Sprint(os.Getpid()) {
					t.Errorf("client %d, route %s: answer %q", i, route, got)
					return
				}
				mu.Lock()
				if p, ok := pids[route]; ok && p != pid {
					t.Errorf("route %s answered by pids %s and %s", route, p, pid)
				}
				pids[route] = pid
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(pids) != len(routes) || pids["a"] == pids["b"] || pids["b"] == pids["c"] || pids["a"] == pids["c"] {
		t.Errorf("worker pids by route: %v; want one distinct process per route", pids)
	}
}

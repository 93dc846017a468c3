package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/internal/exampletest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	executor.Init() // the worker process runs here and exits
	goleak.VerifyTestMain(m)
}

func TestChildSocketDemo(t *testing.T) {
	const want = `sent "hello", got back "worker: HELLO\n"
sent "the parent owns this socket", got back "worker: THE PARENT OWNS THIS SOCKET\n"
sent "bye", got back "worker: BYE\n"
the server closed the connection
`
	os.Args = []string{"child_socket"}
	exampletest.Expect(t, main, want)
}

// Real clients, at once, each sending all its lines before it reads: every
// client gets its own answers, in its order, and then the server's close
// after its own EOF, whatever a client that resets does. Cancelling the
// ctx stops the server cleanly.
func TestChildSocketServe(t *testing.T) {
	const clients, lines = 4, 200
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, "127.0.0.1:0", true, func(addr string) { addrc <- addr }) }()
	var addr string
	select {
	case addr = <-addrc:
	case err := <-done:
		t.Fatalf("run = %v before serving", err)
	}

	// A client that resets its connection with answers on their way
	// costs the others nothing.
	rude, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	for i := range lines {
		fmt.Fprintf(rude, "rude line %d\n", i)
	}
	rude.(*net.TCPConn).SetLinger(0)
	rude.Close()

	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := client(addr, c, lines); err != nil {
				t.Errorf("client %d: %v", c, err)
			}
		}()
	}
	wg.Wait()

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run = %v; want nil", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the server did not stop when its ctx ended")
	}
}

// client sends n lines on one connection, then its EOF, and checks the
// answers and the close that follow.
func client(addr string, c, n int) error {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	sent := make(chan error, 1)
	go func() {
		w := bufio.NewWriter(conn)
		for i := range n {
			fmt.Fprintf(w, "client %d line %d\n", c, i)
		}
		err := w.Flush()
		if err == nil {
			err = conn.(*net.TCPConn).CloseWrite()
		}
		sent <- err
	}()
	br := bufio.NewReader(conn)
	for i := range n {
		got, err := br.ReadString('\n')
		if want := fmt.Sprintf("worker: CLIENT %d LINE %d\n", c, i); got != want || err != nil {
			return fmt.Errorf("answer %d = %q, %v; want %q", i, got, err, want)
		}
	}
	if rest, err := br.ReadString('\n'); rest != "" || err != io.EOF {
		return fmt.Errorf("after the answers: %q, %v; want the server's close (EOF)", rest, err)
	}
	return <-sent
}

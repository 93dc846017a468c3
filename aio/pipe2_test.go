//go:build linux

package aio_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/aio"
	"github.com/asyncgo/asyncgo/executor"
)

// pipeIncr answers one int on its Connection with the int plus one.
var pipeIncr = executor.Register("aio_test.pipeIncr", func(a pipeArgs) (int, error) {
	defer a.C.Close()
	var v int
	if err := a.C.Recv(&v); err != nil {
		return 0, err
	}
	return v, a.C.Send(v + 1)
})

type connQueueArgs struct {
	Q *aio.Queue[*aio.Connection]
}

// connFromQueue takes a Connection from a queue and says hello on it.
var connFromQueue = executor.Register("aio_test.connFromQueue", func(a connQueueArgs) (struct{}, error) {
	c, err := a.Q.Get()
	if err != nil {
		return struct{}{}, err
	}
	defer c.Close()
	return struct{}{}, c.Send("hello through a queue")
})

// A Connection reaches a pool worker that is already running, in a call's
// argument (Python needs a Manager, or the fork start method, for that).
func TestPipeInPoolCall(t *testing.T) {
	p, err := aio.NewPool(aio.PoolOptions{Processes: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { p.Terminate(); _ = p.Join() }()
	if _, err := aio.Apply(p, cube, 2); err != nil { // the worker is up
		t.Fatal(err)
	}
	for i := range 3 {
		a, b, err := aio.Pipe(true)
		if err != nil {
			t.Fatal(err)
		}
		// A pool encodes a call's argument when it sends the call to a
		// worker, so b stays open until the call is done (in Python too).
		f := aio.ApplyAsync(p, pipeIncr, pipeArgs{C: b})
		if err := a.Send(10 * i); err != nil {
			t.Fatal(err)
		}
		var v int
		if err := a.Recv(&v); err != nil || v != 10*i+1 {
			t.Fatalf("Recv = %d, %v", v, err)
		}
		if got, err := f.Result(context.Background()); err != nil || got != 10*i {
			t.Fatalf("the call returned %d, %v", got, err)
		}
		a.Close()
		b.Close()
	}
}

// A Connection travels as a queue's item to a running child.
func TestConnectionThroughQueue(t *testing.T) {
	q := aio.NewQueue[*aio.Connection](0)
	p := aio.NewProcess(connFromQueue.Bind(connQueueArgs{Q: q}))
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	a, b, err := aio.Pipe(true)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := q.Put(b); err != nil {
		t.Fatal(err)
	}
	b.Close()
	var s string
	if err := a.Recv(&s); err != nil || s != "hello through a queue" {
		t.Fatalf("Recv = %q, %v", s, err)
	}
	if ok, err := p.JoinTimeout(10 * time.Second); err != nil || !ok {
		t.Fatal(err)
	}
	if code, _ := p.ExitCode(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

// Python:
//
//	def f(conn):
//	    conn.send([42, None, 'hello'])
//	    conn.close()
//
//	parent_conn, child_conn = Pipe()
//	p = Process(target=f, args=(child_conn,))
//	p.start()
//	print(parent_conn.recv())
//	p.join()
func ExamplePipe() {
	parent, child, err := aio.Pipe(true)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer parent.Close()
	p := aio.NewProcess(sendGreeting.Bind(pipeArgs{C: child}))
	if err := p.Start(); err != nil {
		fmt.Println(err)
		return
	}
	child.Close() // the child has its own
	var got []string
	fmt.Println(parent.Recv(&got), got)
	fmt.Println(p.Join())
	// Output:
	// <nil> [42 hello]
	// <nil>
}

var sendGreeting = executor.Register("aio.example.sendGreeting", func(a pipeArgs) (struct{}, error) {
	defer a.C.Close()
	return struct{}{}, a.C.Send([]string{"42", "hello"})
})

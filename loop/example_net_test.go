package loop_test

import (
	"context"
	"fmt"

	"github.com/asyncgo/asyncgo/loop"
)

// upper is a Protocol that answers each chunk with its upper case.
type upper struct {
	loop.NopProtocol
	t loop.Transport
}

func (u *upper) ConnectionMade(t loop.Transport) { u.t = t }
func (u *upper) DataReceived(p []byte) {
	out := make([]byte, len(p))
	for i, c := range p {
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		out[i] = c
	}
	u.t.Write(out)
}

// client collects what it receives until the server closes.
type client struct {
	loop.NopProtocol
	got  []byte
	done *loop.Future[string]
}

func (c *client) DataReceived(p []byte) { c.got = append(c.got, p...) }
func (c *client) EOFReceived() bool {
	c.done.SetResult(string(c.got))
	return false
}

// A Protocol server and a Protocol client on one loop: asyncio's lower
// layer (loop.create_server, loop.create_connection).
func ExampleLoop_CreateServer() {
	err := loop.RunMain(context.Background(), func(ctx context.Context) error {
		l, _ := loop.RunningLoop(ctx)
		srv, err := l.CreateServer(ctx, func() loop.BaseProtocol { return &upper{} }, "127.0.0.1:0", nil)
		if err != nil {
			return err
		}
		defer srv.Close()

		c := &client{done: loop.NewFuture[string](l)}
		tr, _, err := l.CreateConnection(ctx, func() loop.BaseProtocol { return c }, srv.Addrs()[0].String(), nil)
		if err != nil {
			return err
		}
		tr.Write([]byte("hello, loop"))
		tr.WriteEOF() // the server's transport sees EOF and closes
		reply, err := c.done.Await(ctx)
		fmt.Println(reply)
		return err
	})
	fmt.Println("err:", err)
	// Output:
	// HELLO, LOOP
	// err: <nil>
}

package loop_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/asyncgo/asyncgo/loop"
)

// StartServer is asyncio.start_server: every connection runs the callback
// as a task of its own, with a reader and a writer. This one answers each
// line in capitals until the client closes; OpenConnection is the client.
func ExampleStartServer() {
	err := loop.RunMain(context.Background(), func(ctx context.Context) error {
		srv, err := loop.StartServer(ctx, func(ctx context.Context, r *loop.StreamReader, w *loop.StreamWriter) error {
			defer w.Close()
			for {
				line, err := r.ReadLine(ctx)
				if err != nil || len(line) == 0 {
					return err // EOF: the client is done
				}
				w.Write(bytes.ToUpper(line))
				if err := w.Drain(ctx); err != nil {
					return err
				}
			}
		}, "127.0.0.1:0", nil)
		if err != nil {
			return err
		}
		r, w, err := loop.OpenConnection(ctx, srv.Addrs()[0].String(), nil)
		if err != nil {
			return err
		}
		for _, msg := range []string{"hello\n", "streams\n"} {
			w.Write([]byte(msg))
			reply, err := r.ReadLine(ctx)
			if err != nil {
				return err
			}
			fmt.Printf("client got %q\n", reply)
		}
		w.Close()
		if err := w.WaitClosed(ctx); err != nil {
			return err
		}
		srv.Close()
		return srv.WaitClosed(ctx)
	})
	fmt.Println("done:", err)
	// Output:
	// client got "HELLO\n"
	// client got "STREAMS\n"
	// done: <nil>
}

// OpenConnection is asyncio.open_connection. Here it speaks to a server
// written with package net, reading a header line, then a body of the
// length the header gives.
func ExampleOpenConnection() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		name, _ := bufio.NewReader(c).ReadString('\n')
		body := "hello, " + strings.TrimSpace(name)
		fmt.Fprintf(c, "LEN %d\r\n%s", len(body), body)
	}()

	err = loop.RunMain(context.Background(), func(ctx context.Context) error {
		r, w, err := loop.OpenConnection(ctx, ln.Addr().String(), nil)
		if err != nil {
			return err
		}
		defer w.Close()
		w.Write([]byte("gopher\n"))
		header, err := r.ReadUntil(ctx, []byte("\r\n"))
		if err != nil {
			return err
		}
		var n int
		fmt.Sscanf(string(header), "LEN %d", &n)
		body, err := r.ReadExactly(ctx, n)
		if err != nil {
			return err
		}
		fmt.Printf("header %q, body %q\n", header, body)
		rest, err := r.Read(ctx, -1) // to EOF
		fmt.Printf("then %q, %v, at EOF: %v\n", rest, err, r.AtEOF())
		return nil
	})
	fmt.Println("done:", err)
	// Output:
	// header "LEN 13\r\n", body "hello, gopher"
	// then "", <nil>, at EOF: true
	// done: <nil>
}

// A StreamReader is a buffer a transport feeds; fed by hand, it shows
// asyncio's rules: ReadUntil with several separators returns the shortest
// result that ends with one of them, a separator beyond the limit is a
// *LimitOverrunError that leaves the data in the buffer, and EOF in the
// middle is an *IncompleteReadError with what was left.
func ExampleStreamReader() {
	_, _ = loop.Run(context.Background(), func(ctx context.Context) (struct{}, error) {
		r := loop.NewStreamReader(8)
		r.FeedData([]byte("GET /\r\nHost: x\n"))
		for range 2 {
			line, err := r.ReadUntil(ctx, []byte("\r\n"), []byte("\n"))
			fmt.Printf("%q %v\n", line, err)
		}

		r.FeedData([]byte("a very long line\n"))
		_, err := r.ReadUntil(ctx, []byte("\n"))
		var le *loop.LimitOverrunError
		if errors.As(err, &le) {
			fmt.Printf("%v; consumed %d, still buffered %d\n", err, le.Consumed, r.Buffered())
		}
		skipped, _ := r.ReadExactly(ctx, le.Consumed+1)
		fmt.Printf("skipped %q\n", skipped)

		r.FeedData([]byte("tail"))
		r.FeedEOF()
		_, err = r.ReadUntil(ctx, []byte("\n"))
		var ie *loop.IncompleteReadError
		if errors.As(err, &ie) {
			fmt.Printf("%v: %q\n", err, ie.Partial)
		}
		return struct{}{}, nil
	}, loop.WithVirtualClock())
	// Output:
	// "GET /\r\n" <nil>
	// "Host: x\n" <nil>
	// loop: Separator is found, but chunk is longer than limit; consumed 16, still buffered 17
	// skipped "a very long line\n"
	// loop: 4 bytes read on a total of undefined expected bytes: "tail"
}

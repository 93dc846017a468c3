package main

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	"github.com/asyncgo/asyncgo/loop"
)

// The echo server on streams, asyncio's upper layer: StartServer runs
// handle as a new task for every connection, with a StreamReader and a
// StreamWriter, the way
//
//	async def handle(reader, writer):
//	    while data := await reader.read(262144):
//	        writer.write(data)
//	        await writer.drain()
//	    writer.close()
//	    await writer.wait_closed()
//
// does in Python. It echoes whatever arrives, as soon as it arrives; the
// demo's client reads the echoes line by line (ReadLine).
//
// r.Read(ctx, n) would be the literal port; ReadInto is the same read into
// a buffer of ours, so the echo makes no garbage per read. All the
// handlers of the server share one buffer: between the ReadInto that fills
// it and the Write that copies what the socket does not take there is no
// await, so no other task of the loop runs in between (no mutex needed,
// as in asyncio), and 10,000 idle clients cost no buffer each.
type echoServer struct{ buf []byte }

func (e *echoServer) handle(ctx context.Context, r *loop.StreamReader, w *loop.StreamWriter) error {
	defer func() {
		w.Close()
		w.WaitClosed(ctx)
	}()
	buf := e.buf
	for {
		n, err := r.ReadInto(ctx, buf)
		data := buf[:n]
		if gone(err) {
			return nil // the client reset the connection: its choice
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return nil // EOF: the client closed its side
		}
		w.Write(data) // the transport copies what it cannot send at once
		// Drain waits while the client reads slower than we write, so a
		// slow client cannot make the server buffer without bound.
		if err := w.Drain(ctx); gone(err) {
			return nil
		} else if err != nil {
			return err
		}
	}
}

// gone reports whether err says the client went away abruptly (a reset, a
// broken pipe), which an echo server need not report: a failing handler
// is reported to the loop's exception handler, as asyncio reports
// "Unhandled exception in client_connected_cb".
func gone(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// serveStreams listens on addr and echoes each line back.
func serveStreams(ctx context.Context, addr string) (*loop.Server, error) {
	e := &echoServer{buf: make([]byte, 256<<10)}
	return loop.StartServer(ctx, e.handle, addr, nil)
}

// demo is the client side of the tutorial: open a connection, send lines,
// read each echo, close.
func demo(ctx context.Context, addr string) error {
	r, w, err := loop.OpenConnection(ctx, addr, nil)
	if err != nil {
		return err
	}
	defer w.Close() // on an early return; closing twice does nothing
	for _, msg := range []string{"hello", "asyncio in Go", "bye"} {
		w.Write([]byte(msg + "\n"))
		if err := w.Drain(ctx); err != nil {
			return err
		}
		line, err := r.ReadLine(ctx)
		if err != nil {
			return err
		}
		fmt.Printf("sent %q, got back %q\n", msg, line)
	}
	w.WriteEOF()
	rest, err := r.Read(ctx, -1) // the server closes after our EOF
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return errors.New("unexpected data after the last echo")
	}
	fmt.Println("server closed the connection")
	w.Close()
	return w.WaitClosed(ctx)
}

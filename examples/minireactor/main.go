// Command minireactor is the reactor (examples/reactor) cut to its bones,
// the taste of asyncgo in the README: one loop accepts connections and
// reads length-prefixed frames; each message's SHA-256 is computed in a
// pool of worker processes through RunInExecutor, and the reply goes back
// in order. Ctrl-C cancels the main task, as asyncio.run does.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/executor/processpool"
	"github.com/asyncgo/asyncgo/loop"
)

func main() {
	executor.Init() // a worker process runs here and never returns
	flags := flag.NewFlagSet(os.Args[0], flag.ExitOnError)
	addr := flags.String("addr", "127.0.0.1:8888", "listen address")
	flags.Parse(os.Args[1:])
	if err := run(*addr); err != nil && !errors.Is(err, loop.ErrKeyboardInterrupt) {
		fmt.Fprintln(os.Stderr, "minireactor:", err)
		os.Exit(1)
	}
}

// run serves on addr until SIGINT (Run cancels the main task).
func run(addr string) error {
	pool, err := processpool.New(processpool.Options{MaxWorkers: 2})
	if err != nil {
		return err
	}
	defer pool.Shutdown(true, false)
	return loop.RunMain(context.Background(), func(ctx context.Context) error {
		srv, err := loop.StartServer(ctx, handler(pool), addr, nil)
		if err != nil {
			return err
		}
		fmt.Println("serving on", srv.Addrs()[0])
		return srv.ServeForever(ctx)
	})
}

// digest runs in the worker processes: registered at package level, so
// that a worker (this binary, re-executed) knows it too.
var digest = executor.Register("minireactor.digest", func(msg []byte) ([]byte, error) {
	sum := sha256.Sum256(msg)
	return sum[:], nil
})

// handler serves one connection: frames in, digests out, in order.
func handler(pool executor.Executor) func(context.Context, *loop.StreamReader, *loop.StreamWriter) error {
	return func(ctx context.Context, r *loop.StreamReader, w *loop.StreamWriter) error {
		defer w.Close()
		for {
			hdr, err := r.ReadExactly(ctx, 4) // an await: the loop serves other connections meanwhile
			if err != nil {
				return nil // the client is gone
			}
			n := binary.BigEndian.Uint32(hdr)
			if n > 2<<20 {
				return fmt.Errorf("a frame of %d bytes is over 2 MiB", n) // reported; the connection closes
			}
			msg, err := r.ReadExactly(ctx, int(n))
			if err != nil {
				return nil
			}
			reply := []byte{0}
			sum, err := loop.RunInExecutor(ctx, pool, digest.Bind(msg)).Await(ctx) // in a worker process
			if err != nil {
				reply, sum = []byte{1}, []byte(err.Error())
			}
			w.Write(binary.BigEndian.AppendUint32(nil, uint32(1+len(sum))))
			w.Write(append(reply, sum...))
			if err := w.Drain(ctx); err != nil { // asyncio's drain: waits only while the client is behind
				return nil
			}
		}
	}
}

// Command echo is an echo server on asyncgo's loop, in the two layers
// asyncio offers: streams (StartServer, a task per connection reading
// lines) and a Protocol (callbacks, no task). Without flags it starts the
// server on a free port, talks to it as a client, prints the exchange and
// exits; with -serve it serves until interrupted.
//
//	go run ./examples/echo                      # the demo
//	go run ./examples/echo -serve -addr 127.0.0.1:8888 -layer protocol
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/asyncgo/asyncgo/loop"
)

func main() {
	fs := flag.NewFlagSet("echo", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:0", "address to listen on")
	layer := fs.String("layer", "streams", "streams or protocol")
	serve := fs.Bool("serve", false, "serve until SIGINT/SIGTERM instead of running the demo")
	fs.Parse(os.Args[1:])
	if err := run(*addr, *layer, *serve); err != nil {
		fmt.Fprintln(os.Stderr, "echo:", err)
		os.Exit(1)
	}
}

func run(addr, layer string, serve bool) error {
	ctx := context.Background()
	if serve {
		var stop context.CancelFunc
		ctx, stop = signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
		defer stop()
	}
	return loop.RunMain(ctx, func(ctx context.Context) error {
		var srv *loop.Server
		var err error
		switch layer {
		case "streams":
			srv, err = serveStreams(ctx, addr)
		case "protocol":
			srv, err = serveProtocol(ctx, addr)
		default:
			return fmt.Errorf("unknown layer %q (streams or protocol)", layer)
		}
		if err != nil {
			return err
		}
		defer srv.Close()
		if serve {
			fmt.Printf("echo (%s) listening on %v\n", layer, srv.Addrs()[0])
			err := srv.ServeForever(ctx)
			if ctx.Err() != nil {
				return nil // SIGINT or SIGTERM
			}
			return err
		}
		return demo(ctx, srv.Addrs()[0].String())
	})
}

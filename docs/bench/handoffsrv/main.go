//go:build linux

// Command handoffsrv is the hand-off model of issue 12's benchmark
// (docs/bench/prefork.sh), serving the reactor's protocol
// (internal/frameproto): one acceptor loop accepts every connection and
// hands it, round robin, to one of -workers worker processes
// (aio.Connection.CoroSendConn, SCM_RIGHTS), each of which adopts it on a
// loop of its own (HandedConn.Adopt) and runs the job there. It prints
// "listening on ADDR" and serves until SIGTERM or SIGINT.
//
//	go run ./docs/bench/handoffsrv -addr 127.0.0.1:8888 -workers 2 -cpu 1ms
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/asyncgo/asyncgo/aio"
	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/internal/frameproto"
	"github.com/asyncgo/asyncgo/loop"
)

type workerArgs struct {
	C       *aio.Connection
	MaxSize int
	CPU     time.Duration
}

// worker adopts each connection handed to it until the acceptor closes
// its end.
var worker = executor.Register("handoffsrv.worker", func(a workerArgs) (struct{}, error) {
	defer a.C.Close()
	return struct{}{}, loop.RunMain(context.Background(), func(ctx context.Context) error {
		cfg := &frameproto.Config{MaxSize: a.MaxSize, CPU: a.CPU}
		for {
			h, err := a.C.CoroRecvConn(ctx)
			if err != nil {
				return nil // the acceptor is gone
			}
			if _, _, err := h.Adopt(ctx, func() loop.BaseProtocol { return frameproto.New(cfg, nil) }); err != nil {
				fmt.Fprintln(os.Stderr, "handoffsrv: adopt:", err)
			}
		}
	})
})

func main() {
	executor.Init()
	defer aio.Shutdown()
	addr := flag.String("addr", "127.0.0.1:8888", "listen address")
	workers := flag.Int("workers", runtime.NumCPU(), "worker processes")
	cpu := flag.Duration("cpu", 0, "CPU time the job spends per message")
	maxSize := flag.Int("max-size", 2<<20, "largest message")
	flag.Parse()
	ready := func(a string) { fmt.Println("listening on", a) }
	if err := run(context.Background(), *addr, *workers, *cpu, *maxSize, ready); err != nil {
		fmt.Fprintln(os.Stderr, "handoffsrv:", err)
		os.Exit(1)
	}
}

// run serves until ctx ends (or SIGINT): ready gets the address once the
// workers are started and the socket listens.
func run(ctx context.Context, addr string, workers int, cpu time.Duration, maxSize int, ready func(string)) error {
	conns := make([]*aio.Connection, workers)
	for i := range conns {
		mine, theirs, err := aio.Pipe(true)
		if err != nil {
			return err
		}
		p := aio.NewProcess(worker.Bind(workerArgs{C: theirs, MaxSize: maxSize, CPU: cpu}))
		p.Daemon = true
		if err := p.Start(); err != nil {
			return err
		}
		theirs.Close()
		conns[i] = mine
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	return loop.RunMain(ctx, func(ctx context.Context) error {
		ln, err := loop.Listen("tcp", addr)
		if err != nil {
			return err
		}
		defer ln.Close()
		if err := ln.Listen(1024); err != nil {
			return err
		}
		ready(ln.LocalAddr().String())
		l, err := loop.RunningLoop(ctx)
		if err != nil {
			return err
		}
		for next := 0; ; next = (next + 1) % workers {
			s, _, err := l.SockAccept(ctx, ln)
			if err != nil {
				return nil // SIGINT/SIGTERM ends the main task
			}
			if err := conns[next].CoroSendConn(ctx, s, nil); err != nil {
				fmt.Fprintln(os.Stderr, "handoffsrv: hand-off:", err)
				s.Close()
			}
		}
	})
}

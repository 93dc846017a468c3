package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/internal/exampletest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The demo on both layers prints the same exchange.
func TestEchoDemo(t *testing.T) {
	const want = `sent "hello", got back "hello\n"
sent "asyncio in Go", got back "asyncio in Go\n"
sent "bye", got back "bye\n"
server closed the connection
`
	for _, layer := range []string{"streams", "protocol"} {
		t.Run(layer, func(t *testing.T) {
			os.Args = []string{"echo", "-layer", layer}
			exampletest.Expect(t, main, want)
		})
	}
}

// With -serve the server answers any client until SIGTERM, then exits
// cleanly (run returns nil).
func TestEchoServe(t *testing.T) {
	for _, layer := range []string{"streams", "protocol"} {
		t.Run(layer, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := ln.Addr().String()
			ln.Close()
			done := make(chan error, 1)
			go func() { done <- run(addr, layer, true) }()
			var c net.Conn
			for range 200 {
				if c, err = net.Dial("tcp", addr); err == nil {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			if c == nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(c)
			for i := range 100 {
				msg := fmt.Sprintf("line %d %s\n", i, strings.Repeat("x", i*100))
				c.Write([]byte(msg))
				got, err := br.ReadString('\n')
				if err != nil || got != msg {
					t.Fatalf("echo %d: %q, %v", i, got, err)
				}
			}
			c.Close()
			syscall.Kill(os.Getpid(), syscall.SIGTERM)
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("run = %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("the server did not stop on SIGTERM")
			}
			_ = context.Background
		})
	}
}

// Command plaingo is the plain-Go peer of the network benchmarks
// (docs/bench/net.sh): an echo server with one goroutine per connection,
// each reading into its own buffer, allocated once, and writing back what it
// read. It is what a Go programmer writes without an event loop; the runtime's
// netpoller does the waiting.
//
//	plaingo -addr 127.0.0.1:9000   # or -addr unix:/tmp/echo.sock
//
// It prints "pid N listening on ADDR" and serves until it is killed.
package main

import (
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"strings"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "listen address: host:port, or unix:/path")
	bufSize := flag.Int("buf", 32<<10, "read buffer per connection, bytes (32 KiB is io.Copy's)")
	flag.Parse()

	network, address := "tcp", *addr
	if p, ok := strings.CutPrefix(*addr, "unix:"); ok {
		network, address = "unix", p
		_ = os.Remove(p)
	}
	ln, err := net.Listen(network, address)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("pid %d listening on %s\n", os.Getpid(), *addr)
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			log.Print(err) // EMFILE and the like: keep serving the others
			time.Sleep(10 * time.Millisecond)
			continue
		}
		go serve(c, *bufSize)
	}
}

// serve echoes until the peer closes or an error; io.Copy would not do:
// from one TCPConn to another it splices, and no other server here can.
func serve(c net.Conn, bufSize int) {
	defer c.Close()
	buf := make([]byte, bufSize)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

package loadgen_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/asyncgo/asyncgo/internal/loadgen"
)

// serveDigests answers every reactor frame on ln with status 0 and the
// frame's SHA-256 digest, a goroutine per connection, until ln closes.
func serveDigests(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			var hdr [4]byte
			buf := make([]byte, 64<<10)
			reply := make([]byte, 4+1+sha256.Size)
			binary.BigEndian.PutUint32(reply, 1+sha256.Size)
			for {
				if _, err := io.ReadFull(c, hdr[:]); err != nil {
					return
				}
				n := binary.BigEndian.Uint32(hdr[:])
				if _, err := io.ReadFull(c, buf[:n]); err != nil {
					return
				}
				d := sha256.Sum256(buf[:n])
				copy(reply[5:], d[:])
				if _, err := c.Write(reply); err != nil {
					return
				}
			}
		}()
	}
}

// Drive a server of the reactor protocol: 4 connections, each with 8
// messages of 1 KiB or 4 KiB in flight, every digest checked.
func ExampleRun() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ln.Close()
	go serveDigests(ln)

	rep, err := loadgen.Run(context.Background(), loadgen.Config{
		Mode:     "reactor",
		Addr:     ln.Addr().String(),
		Conns:    4,
		Sizes:    []int{1 << 10, 4 << 10},
		InFlight: 8,
		Duration: 200 * time.Millisecond,
		Warmup:   50 * time.Millisecond,
		Check:    true,
		Progress: nil, // os.Stderr for a live line
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = rep.WriteTable(io.Discard) // os.Stdout for the summary
	_ = rep.WriteJSON(io.Discard)
	fmt.Println("sizes:", len(rep.PerSize), "answered:", rep.Requests > 0, "errors:", rep.Errors)
	// Output: sizes: 2 answered: true errors: 0
}

//go:build linux

package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/executor"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	executor.Init() // a worker process runs here and exits
	goleak.VerifyTestMain(m)
}

// Connections handed to two workers are answered with the digests of
// their messages, pipelined, and one over the cap gets an error frame.
func TestServe(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrs := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, "127.0.0.1:0", 2, 0, 1<<16, func(a string) { addrs <- a }) }()
	addr := <-addrs
	frame := func(msg []byte) []byte {
		return append(binary.BigEndian.AppendUint32(nil, uint32(len(msg))), msg...)
	}
	read := func(rd *bufio.Reader) []byte {
		var hdr [4]byte
		if _, err := io.ReadFull(rd, hdr[:]); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, binary.BigEndian.Uint32(hdr[:]))
		if _, err := io.ReadFull(rd, b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	for c := range 4 {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
		rd := bufio.NewReader(conn)
		var out []byte
		for i := range 10 {
			out = append(out, frame([]byte{byte(c), byte(i)})...)
		}
		if _, err := conn.Write(out); err != nil {
			t.Fatal(err)
		}
		for i := range 10 {
			want := sha256.Sum256([]byte{byte(c), byte(i)})
			if got := read(rd); len(got) != 33 || got[0] != 0 || string(got[1:]) != string(want[:]) {
				t.Fatalf("connection %d, message %d: answer %x", c, i, got)
			}
		}
		if _, err := conn.Write(binary.BigEndian.AppendUint32(nil, 1<<20)); err != nil {
			t.Fatal(err)
		}
		if got := read(rd); got[0] != 1 {
			t.Fatalf("a message over the cap: answer %q", got)
		}
		conn.Close()
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

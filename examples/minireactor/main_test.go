package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/executor"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	executor.Init() // the pool's worker processes run here and exit
	goleak.VerifyTestMain(m)
}

// The server answers each frame with its digest, in order, over several
// connections at once; SIGINT then cancels the main task (asyncio.run's
// Ctrl-C) and main returns cleanly.
func TestMiniReactor(t *testing.T) {
	if signal.Ignored(syscall.SIGINT) {
		// Started in the background by a shell without job control:
		// SIGINT is ignored, and loop.Run leaves an ignored SIGINT alone
		// (as asyncio.run). Asking for it un-ignores it.
		guard := make(chan os.Signal, 1)
		signal.Notify(guard, syscall.SIGINT)
		defer signal.Stop(guard)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = w
	done := make(chan struct{})
	go func() {
		defer close(done)
		os.Args = []string{"minireactor", "-addr", "127.0.0.1:0"}
		main()
	}()
	// os.Stdout stays the pipe until main returns: the pool's spawner
	// reads it for each worker it starts.
	defer func() { os.Stdout = stdout }()
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "serving on ")
	if !ok {
		t.Fatalf("first line %q", line)
	}
	errs := make(chan error, 4)
	for c := range 4 {
		go func() { errs <- client(addr, c) }()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	syscall.Kill(os.Getpid(), syscall.SIGINT)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("main did not return after SIGINT")
	}
	w.Close()
	r.Close()
}

func client(addr string, c int) error {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	msgs := [][]byte{{}, []byte("hello"), bytes.Repeat([]byte{byte(c)}, 2<<20)}
	for _, m := range msgs {
		if _, err := conn.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(m))), m...)); err != nil {
			return err
		}
	}
	for _, m := range msgs {
		var hdr [4]byte
		if _, err := io.ReadFull(conn, hdr[:]); err != nil {
			return err
		}
		reply := make([]byte, binary.BigEndian.Uint32(hdr[:]))
		if _, err := io.ReadFull(conn, reply); err != nil {
			return err
		}
		want := sha256.Sum256(m)
		if reply[0] != 0 || !bytes.Equal(reply[1:], want[:]) {
			return io.ErrUnexpectedEOF
		}
	}
	return nil
}

// TestReadmeShowsMiniReactor keeps the Go block of README.md compiling and
// tested: it must be the tail of this example's main.go, verbatim.
func TestReadmeShowsMiniReactor(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(readme), "```go\n")
	if ok {
		block, _, ok = strings.Cut(block, "```")
	}
	if !ok {
		t.Fatal("README.md has no ```go block")
	}
	if !strings.HasSuffix(string(src), block) || len(block) < 500 {
		t.Errorf("README.md's Go block is not the end of examples/minireactor/main.go; copy it from there")
	}
}

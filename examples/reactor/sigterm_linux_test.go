package main

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// SIGTERM, or SIGINT (whose handler must replace loop.Run's, which would
// cancel the main task), during load, to a server in a process of its own (this test
// binary running main): every message a client sent is answered or its
// connection closed, the process exits 0, and no worker process is left.
func TestSIGTERMDuringLoad(t *testing.T) { testSignalDuringLoad(t, syscall.SIGTERM) }

func TestSIGINTDuringLoad(t *testing.T) { testSignalDuringLoad(t, syscall.SIGINT) }

func testSignalDuringLoad(t *testing.T, sig syscall.Signal) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, "-addr", "127.0.0.1:0", "-workers", "2", "-cpu", "5ms")
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	// The server dies with this test process, even one killed by go
	// test's -timeout: an orphan would keep what it inherited (a lock
	// file's descriptor, say).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := false
	defer func() {
		if !exited {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the server's first line: %v (stderr: %s)", err, stderr.String())
	}
	f := strings.Fields(line) // reactor: listening on ADDR with ...
	if len(f) < 4 || f[1] != "listening" {
		t.Fatalf("the server printed %q", line)
	}
	addr := f[3]

	const clients, perClient = 6, 40 // more than K: some wait in the kernel
	type result struct {
		answered int
		err      error
	}
	results := make([]result, clients)
	firstReply := make(chan struct{}, clients)
	var wg sync.WaitGroup
	for i := range clients {
		c := dial(t, addr)
		c.SetDeadline(time.Now().Add(60 * time.Second)) // a hung server fails the test
		msgs := make([][]byte, perClient)
		for j := range msgs {
			msgs[j] = payload(1000*j, i*1000+j)
		}
		wg.Go(func() {
			for _, m := range msgs {
				if c.send(m) != nil {
					return // closed by the drain: allowed
				}
			}
		})
		wg.Go(func() {
			r := &results[i]
			defer func() {
				if r.answered == 0 {
					firstReply <- struct{}{}
				}
			}()
			for j, m := range msgs {
				status, body, err := c.reply()
				if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
					return // closed: the rest of its messages were not accepted
				}
				if err != nil {
					r.err = err
					return
				}
				if status != 0 || !bytes.Equal(body, sha256Sum(m)) {
					r.err = errors.New("wrong reply " + strconv.Itoa(j) + ": " + string(body))
					return
				}
				if r.answered++; r.answered == 1 {
					firstReply <- struct{}{}
				}
			}
			if err := c.expectEOF(); err != nil {
				r.err = err
			}
		})
	}
	for range clients {
		<-firstReply
	}
	workers := children(t, cmd.Process.Pid)
	if len(workers) == 0 {
		t.Fatal("the server has no worker process under load")
	}
	if err := cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	total := 0
	for i, r := range results {
		if r.err != nil {
			t.Errorf("client %d: %v", i, r.err)
		}
		total += r.answered
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err = <-waited:
	case <-time.After(60 * time.Second):
		cmd.Process.Signal(syscall.SIGQUIT) // its goroutines, on its stderr
		<-waited
		t.Fatalf("the server did not exit a minute after %v; stderr:\n%s", sig, stderr.String())
	}
	exited = true
	if err != nil {
		t.Errorf("the server exited with %v; want 0. stderr:\n%s", err, stderr.String())
	}
	for _, pid := range workers {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("worker process %d is left after the server exited (kill 0: %v)", pid, err)
		}
	}
	t.Logf("%d of %d messages answered after %v; workers %v gone", total, clients*perClient, sig, workers)
}

// children returns the pids of pid's child processes.
func children(t *testing.T, pid int) []int {
	t.Helper()
	files, err := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/children")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // a thread that ended
		}
		for _, s := range strings.Fields(string(b)) {
			n, err := strconv.Atoi(s)
			if err == nil {
				pids = append(pids, n)
			}
		}
	}
	return pids
}

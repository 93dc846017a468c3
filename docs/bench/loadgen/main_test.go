package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestParseFlags(t *testing.T) {
	var out bytes.Buffer
	cfg, js, err := parseFlags([]string{"-addr", "unix:/tmp/x", "-size", "64, 4KiB,2MiB", "-conns", "3", "-rate", "100", "-json", "r.json"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.Sizes, []int{64, 4096, 2 << 20}) || cfg.Conns != 3 || cfg.Rate != 100 || js != "r.json" || cfg.Mode != "echo" {
		t.Errorf("config %+v, json %q", cfg, js)
	}
	cfg, _, err = parseFlags([]string{"-mode", "reactor", "-inflight", "8", "-check=false", "-size", "1KiB"}, &out)
	if err != nil || cfg.Mode != "reactor" || cfg.InFlight != 8 || cfg.Check || cfg.Sizes[0] != 1024 {
		t.Errorf("reactor flags: config %+v, err %v", cfg, err)
	}
	for _, bad := range [][]string{
		{"-size", "0"}, {"-size", "x"}, {"-size", "65MiB"}, {"-conns", "0"}, {"-mode", "flood"}, {"-d", "0s"}, {"extra"},
		{"-inflight", "0"}, {"-dial-concurrency", "0"}, {"-mode", "reactor", "-size", "0"},
	} {
		if _, _, err := parseFlags(bad, &out); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	if cfg, _, err := parseFlags([]string{"-mode", "idle", "-size", "0"}, &out); err != nil || cfg.Sizes[0] != 0 {
		t.Errorf("idle with -size 0: %v %v", cfg.Sizes, err)
	}
	if _, _, err := parseFlags([]string{"-h"}, &out); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v", err)
	}
}

// serve runs handle on every connection accepted on 127.0.0.1 until the
// test ends.
func serve(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { defer c.Close(); handle(c) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

func echo(c net.Conn) { _, _ = io.Copy(c, c) }

// reactor answers every frame with status 0 and its SHA-256 digest.
func reactor(c net.Conn) {
	var hdr [4]byte
	buf := make([]byte, 64<<10)
	reply := make([]byte, 4+1+sha256.Size)
	binary.BigEndian.PutUint32(reply, 1+sha256.Size)
	for {
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if int(n) > len(buf) {
			return
		}
		if _, err := io.ReadFull(c, buf[:n]); err != nil {
			return
		}
		d := sha256.Sum256(buf[:n])
		copy(reply[5:], d[:])
		if _, err := c.Write(reply); err != nil {
			return
		}
	}
}

// runCmd runs the command with args and a JSON file, and returns its exit
// status, its stdout and the JSON report.
func runCmd(t *testing.T, args ...string) (int, string, map[string]any) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "r.json")
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), append(args, "-json", path), &stdout, &stderr, nil)
	if stderr.Len() > 0 {
		t.Logf("stderr: %s", stderr.String())
	}
	var rep map[string]any
	if b, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(b, &rep); err != nil {
			t.Fatal(err)
		}
	}
	return code, stdout.String(), rep
}

// The fields docs/bench/netreport.py and reactorreport.py read.
func TestCommandEcho(t *testing.T) {
	addr := serve(t, echo)
	code, out, rep := runCmd(t, "-addr", addr, "-conns", "2", "-size", "64", "-d", "200ms", "-warmup", "50ms", "-label", "x")
	if code != 0 || !strings.Contains(out, "loadgen echo x") || !strings.Contains(out, "errors: 0") {
		t.Fatalf("exit %d, stdout:\n%s", code, out)
	}
	for _, k := range []string{"mode", "label", "open", "requests", "req_per_s", "mb_per_s", "latency_us", "per_size", "errors"} {
		if _, ok := rep[k]; !ok {
			t.Errorf("JSON report has no %q: %v", k, rep)
		}
	}
	if p99, _ := rep["latency_us"].(map[string]any)["p99"].(float64); p99 <= 0 {
		t.Errorf("p99 %v", rep["latency_us"])
	}
}

func TestCommandIdle(t *testing.T) {
	addr := serve(t, echo)
	code, out, rep := runCmd(t, "-mode", "idle", "-addr", addr, "-conns", "20", "-hold", "50ms", "-pid", "0")
	if code != 0 || rep["still_open"] != 20.0 || rep["open"] != 20.0 {
		t.Fatalf("exit %d, report %v, stdout:\n%s", code, rep, out)
	}
}

func TestCommandReactor(t *testing.T) {
	addr := serve(t, reactor)
	code, out, rep := runCmd(t, "-mode", "reactor", "-addr", addr, "-conns", "2", "-inflight", "4", "-size", "1KiB,64KiB", "-d", "200ms", "-warmup", "50ms")
	if code != 0 || !strings.Contains(out, "status-1 replies: 0  wrong digests: 0  failed connections: 0") {
		t.Fatalf("exit %d, stdout:\n%s", code, out)
	}
	if rep["mode"] != "reactor" || rep["requests"].(float64) <= 0 || rep["inflight"] != 4.0 || len(rep["per_size"].([]any)) != 2 {
		t.Errorf("report %v", rep)
	}
}

// A wrong answer makes the exit status 1; a bad flag 2.
func TestCommandExitStatus(t *testing.T) {
	addr := serve(t, echo) // an echo is not a digest
	if code, out, _ := runCmd(t, "-mode", "reactor", "-addr", addr, "-conns", "1", "-size", "40", "-d", "100ms", "-warmup", "0s"); code != 1 {
		t.Errorf("exit %d for wrong digests, stdout:\n%s", code, out)
	}
	if code, _, _ := runCmd(t, "-conns", "0"); code != 2 {
		t.Errorf("exit %d for -conns 0", code)
	}
}

package main

import (
	"testing"

	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/internal/exampletest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	executor.Init() // a worker process runs here and exits
	goleak.VerifyTestMain(m)
}

// The demo sends enough messages that every worker is recycled at least
// once (2 workers, recycled after 200-220 messages, 3,000 messages), and
// none fails.
func TestDemo(t *testing.T) {
	out := exampletest.Stdout(t, func() {
		if err := run([]string{"-demo", "-workers", "2", "-max-requests", "200", "-jitter", "20", "-requests", "3000", "-conns", "6"}); err != nil {
			t.Error(err)
		}
	})
	want := "prefork: 2 workers, one shared listening socket, recycled after 200-220 messages\n" +
		"sent 3000 messages of 1024 bytes over 6 connections: 3000 answered, 0 failed\n" +
		"every first worker was recycled: true\n"
	if out != want {
		t.Fatalf("the demo printed\n%s\nwant\n%s", out, want)
	}
}

// The same with a SO_REUSEPORT listener per worker and 2 KiB messages.
func TestDemoReusePort(t *testing.T) {
	out := exampletest.Stdout(t, func() {
		if err := run([]string{"-demo", "-reuseport", "-workers", "2", "-max-requests", "0", "-requests", "500", "-size", "2048"}); err != nil {
			t.Error(err)
		}
	})
	want := "prefork: 2 workers, a SO_REUSEPORT listener each, never recycled\n" +
		"sent 500 messages of 2048 bytes over 8 connections: 500 answered, 0 failed\n" +
		"every first worker was recycled: false\n"
	if out != want {
		t.Fatalf("the demo printed\n%s\nwant\n%s", out, want)
	}
}

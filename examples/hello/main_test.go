package main

import (
	"os"
	"strings"
	"testing"

	"github.com/asyncgo/asyncgo/internal/exampletest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// runMain runs main and returns what it printed.
func runMain(t *testing.T) string { return exampletest.Stdout(t, main) }

func TestHello(t *testing.T) {
	const want = "slow timed out; cancelled: true\n" +
		"[a after 20ms b after 10ms] <nil>\n"
	if got := runMain(t); got != want {
		t.Errorf("hello printed:\n%s\nwant:\n%s", got, want)
	}
}

// TestReadmeShowsHello keeps the program in README.md compiling: it must be
// this file's main.go, verbatim.
func TestReadmeShowsHello(t *testing.T) {
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
	if block != string(src) {
		t.Errorf("README.md's Go program differs from examples/hello/main.go; copy main.go into it")
	}
}

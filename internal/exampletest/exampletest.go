// Package exampletest runs the main of an example program inside its own
// test, so the example is checked under -race and goleak like any code.
package exampletest

import (
	"bytes"
	"io"
	"os"
	"testing"
)

// Stdout calls main with os.Stdout redirected into a pipe and returns all
// it printed, up to the pipe's EOF: child processes that inherited the pipe
// (a pool's workers) must have exited too.
func Stdout(t testing.TB, main func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan string)
	go func() {
		var b bytes.Buffer
		_, _ = io.Copy(&b, r)
		r.Close()
		out <- b.String()
	}()
	stdout := os.Stdout
	os.Stdout = w
	func() {
		defer func() {
			os.Stdout = stdout
			w.Close()
		}()
		main()
	}()
	return <-out
}

// Expect runs main, as Stdout does, and fails the test unless it printed
// exactly want.
func Expect(t testing.TB, main func(), want string) {
	t.Helper()
	if got := Stdout(t, main); got != want {
		t.Errorf("the example printed:\n%s\nwant:\n%s", got, want)
	}
}

package aio_test

import (
	"errors"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/aio"
	"github.com/asyncgo/asyncgo/executor"
)

type echoArgs struct {
	In, Out *aio.Queue[int]
	N       int
}

var echoChild = executor.Register("aio_test.echo", func(a echoArgs) (struct{}, error) {
	for i := 0; i < a.N; i++ {
		v, err := a.In.Get()
		if err != nil {
			return struct{}{}, err
		}
		if err := a.Out.Put(v * 2); err != nil {
			return struct{}{}, err
		}
	}
	return struct{}{}, nil
})

var failChild = executor.Register("aio_test.fail", func(msg string) (struct{}, error) {
	if msg == "panic" {
		panic("boom")
	}
	return struct{}{}, errors.New(msg)
})

func TestQueueAcrossProcesses(t *testing.T) {
	in, out := aio.NewQueue[int](0), aio.NewQueue[int](0)
	p := aio.NewProcess(echoChild.Bind(echoArgs{In: in, Out: out, N: 100}))
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		if err := in.Put(i); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 100; i++ {
		v, err := out.GetTimeout(10 * time.Second)
		if err != nil {
			t.Fatal(i, err)
		}
		if v != 2*i {
			t.Fatalf("item %d = %d, want %d", i, v, 2*i)
		}
	}
	if err := p.Join(); err != nil {
		t.Fatal(err)
	}
	if code, ok := p.ExitCode(); !ok || code != 0 {
		t.Fatalf("exit code %d %v", code, ok)
	}
}

func TestProcessExitCodes(t *testing.T) {
	for _, tc := range []struct {
		arg  string
		code int
	}{{"err", 1}, {"panic", 1}} {
		p := aio.NewProcess(failChild.Bind(tc.arg))
		if err := p.Start(); err != nil {
			t.Fatal(err)
		}
		p.Join()
		if code, ok := p.ExitCode(); !ok || code != tc.code {
			t.Errorf("%s: exit code %d %v, want %d", tc.arg, code, ok, tc.code)
		}
	}
}

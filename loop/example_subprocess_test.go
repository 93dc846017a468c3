package loop_test

import (
	"context"
	"fmt"
	"syscall"

	"github.com/asyncgo/asyncgo/loop"
)

// asyncio's create_subprocess_exec with stdin and stdout PIPEs, and
// communicate.
func ExampleCreateSubprocessExec() {
	err := loop.RunMain(context.Background(), func(ctx context.Context) error {
		p, err := loop.CreateSubprocessExec(ctx, "tr", []string{"a-z", "A-Z"},
			&loop.SubprocessOptions{Stdin: loop.PIPE, Stdout: loop.PIPE})
		if err != nil {
			return err
		}
		out, _, err := p.Communicate(ctx, []byte("hello from the loop\n"))
		if err != nil {
			return err
		}
		code, _ := p.ReturnCode()
		fmt.Printf("%s exit %d\n", out, code)
		return nil
	})
	if err != nil {
		fmt.Println(err)
	}
	// Output:
	// HELLO FROM THE LOOP
	//  exit 0
}

// A killed child's return code is minus the signal, as Python's.
func ExampleProcess_Kill() {
	err := loop.RunMain(context.Background(), func(ctx context.Context) error {
		p, err := loop.CreateSubprocessExec(ctx, "sleep", []string{"60"}, nil)
		if err != nil {
			return err
		}
		p.Kill()
		code, err := p.Wait(ctx)
		fmt.Println(code, err)
		return nil
	})
	if err != nil {
		fmt.Println(err)
	}
	// Output: -9 <nil>
}

// add_signal_handler: the callback runs on the loop.
func ExampleLoop_AddSignalHandler() {
	err := loop.RunMain(context.Background(), func(ctx context.Context) error {
		l, _ := loop.RunningLoop(ctx)
		got := loop.NewFuture[string](l)
		if err := l.AddSignalHandler(syscall.SIGUSR1, func() { got.SetResult("SIGUSR1 handled on the loop") }); err != nil {
			return err
		}
		defer l.RemoveSignalHandler(syscall.SIGUSR1)
		syscall.Kill(syscall.Getpid(), syscall.SIGUSR1)
		msg, err := got.Await(ctx)
		fmt.Println(msg)
		return err
	})
	if err != nil {
		fmt.Println(err)
	}
	// Output: SIGUSR1 handled on the loop
}

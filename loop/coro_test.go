package loop_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/loop"
)

// The coroutine model must never abort the process: Go's runtime throws
// (a fatal error, not a panic) when a coroutine is switched to from a
// goroutine whose OS-thread lock differs from its creator's, and iter.Pull
// passes a runtime.Goexit on to the goroutine that drives the coroutine.

// A task that awaits while locked to its thread fails with
// ErrLockedOSThread (as a panic, since the await cannot return an error
// the task would check), instead of aborting the process; so does one
// that returns locked. The loop goes on.
func TestTaskLockedOSThread(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		awaits := loop.Spawn(ctx, func(ctx context.Context) (int, error) {
			runtime.LockOSThread()
			return 0, loop.Sleep(ctx, time.Millisecond)
		})
		_, err := awaits.Await(ctx)
		var pe *loop.PanicError
		if !errors.As(err, &pe) || !errors.Is(err, loop.ErrLockedOSThread) {
			t.Errorf("a task awaiting locked = %v; want a *PanicError of ErrLockedOSThread", err)
		}
		returns := loop.Spawn(ctx, func(ctx context.Context) (int, error) {
			runtime.LockOSThread()
			runtime.LockOSThread()
			return 1, nil
		})
		if _, err := returns.Await(ctx); !errors.Is(err, loop.ErrLockedOSThread) {
			t.Errorf("a task returning locked = %v; want ErrLockedOSThread", err)
		}
		// Locking and unlocking between awaits is fine.
		fine := loop.Spawn(ctx, func(ctx context.Context) (int, error) {
			runtime.LockOSThread()
			runtime.UnlockOSThread()
			return 2, loop.Sleep(ctx, time.Millisecond)
		})
		if v, err := fine.Await(ctx); v != 2 || err != nil {
			t.Errorf("a task that unlocked before awaiting = %v, %v; want 2, nil", v, err)
		}
		// The coroutines of the failed tasks are reused: still usable.
		for i := range 10 {
			task := loop.Spawn(ctx, func(ctx context.Context) (int, error) { return i, loop.Sleep(ctx, 0) })
			if v, err := task.Await(ctx); v != i || err != nil {
				t.Errorf("a later task = %v, %v", v, err)
			}
		}
	})
}

// A loop driven from a goroutine locked to its thread (a GUI program's
// main) works, coroutine reuse included, as long as that goroutine drives
// it; another goroutine is refused with ErrLockedOSThread while tasks
// started there are in progress, for RunForever and for Close.
func TestLoopDrivenFromLockedGoroutine(t *testing.T) {
	l := loop.New(loop.WithVirtualClock())
	// Coroutines made and kept for reuse by an unlocked driver first.
	warm := loop.CreateTask(l, func(ctx context.Context) (int, error) {
		for range 3 {
			_, _ = loop.Spawn(ctx, func(ctx context.Context) (int, error) { return 0, loop.Sleep(ctx, 0) }).Await(ctx)
		}
		return 0, nil
	})
	if err := l.RunUntilComplete(warm); err != nil {
		t.Fatal(err)
	}
	var gate loop.Event
	var parked *loop.Task[int]
	errs := make(chan error, 4)
	// One goroutine, locked to its thread for its whole life, runs what
	// lockedDriver gives it.
	work := make(chan func())
	workDone := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		for fn := range work {
			fn()
			workDone <- struct{}{}
		}
	}()
	defer close(work)
	lockedDriver := func(fn func()) {
		work <- fn
		<-workDone
	}
	lockedDriver(func() {
		main := loop.CreateTask(l, func(ctx context.Context) (int, error) {
			sum := 0
			for i := range 20 {
				v, err := loop.Spawn(ctx, func(ctx context.Context) (int, error) {
					return i, loop.Sleep(ctx, time.Second)
				}).Await(ctx)
				if err != nil {
					return 0, err
				}
				sum += v
			}
			parked = loop.Spawn(ctx, func(ctx context.Context) (int, error) { return 7, gate.Wait(ctx) })
			return sum, loop.Sleep(ctx, 0)
		})
		errs <- l.RunUntilComplete(main)
		if v, _ := main.Result(); v != 190 {
			t.Errorf("sum = %d; want 190", v)
		}
	})
	if err := <-errs; err != nil {
		t.Fatalf("RunUntilComplete from a locked goroutine = %v", err)
	}
	// parked's coroutine was made on the locked goroutine.
	if err := l.RunForever(); !errors.Is(err, loop.ErrLockedOSThread) {
		t.Errorf("RunForever from another goroutine = %v; want ErrLockedOSThread", err)
	}
	if err := l.Close(); !errors.Is(err, loop.ErrLockedOSThread) {
		t.Errorf("Close from another goroutine = %v; want ErrLockedOSThread", err)
	}
	lockedDriver(func() {
		gate.Set()
		errs <- l.RunUntilComplete(parked)
	})
	if err := <-errs; err != nil {
		t.Errorf("RunUntilComplete back on the locked goroutine = %v", err)
	}
	// A task left in progress is unwound by Close on its own goroutine.
	lockedDriver(func() {
		parked = loop.CreateTask(l, func(ctx context.Context) (int, error) { return 0, loop.Sleep(ctx, time.Hour) })
		l.Stop()
		errs <- l.RunForever()
		errs <- l.Close()
	})
	if err := <-errs; err != nil {
		t.Errorf("RunForever = %v", err)
	}
	if err := <-errs; err != nil || !parked.Cancelled() {
		t.Errorf("Close on the locked goroutine = %v, task cancelled %v; want nil, true", err, parked.Cancelled())
	}
}

// runtime.Goexit in a task (t.Fatal in a test) ends that task, with
// ErrGoexit, and not the goroutine that drives the loop; its deferred
// calls run, and the loop stays usable.
func TestTaskGoexit(t *testing.T) {
	deferred := false
	_, err := loop.Run(context.Background(), func(ctx context.Context) (int, error) {
		task := loop.Spawn(ctx, func(ctx context.Context) (int, error) {
			defer func() { deferred = true }()
			if err := loop.Sleep(ctx, time.Millisecond); err != nil {
				return 0, err
			}
			runtime.Goexit()
			return 1, nil
		})
		_, err := task.Await(ctx)
		if !errors.Is(err, loop.ErrGoexit) || task.Cancelled() {
			t.Errorf("a task that called Goexit = %v (cancelled %v); want ErrGoexit", err, task.Cancelled())
		}
		early := loop.Spawn(ctx, func(ctx context.Context) (int, error) { runtime.Goexit(); return 0, nil })
		if _, err := early.Await(ctx); !errors.Is(err, loop.ErrGoexit) {
			t.Errorf("a task that called Goexit before awaiting = %v; want ErrGoexit", err)
		}
		for i := range 5 {
			v, err := loop.Spawn(ctx, func(ctx context.Context) (int, error) { return i, loop.Sleep(ctx, 0) }).Await(ctx)
			if v != i || err != nil {
				t.Errorf("a task after the Goexit = %v, %v", v, err)
			}
		}
		return 0, nil
	}, loop.WithVirtualClock())
	if err != nil {
		t.Fatalf("Run() = %v", err)
	}
	if !deferred {
		t.Errorf("the task's deferred call did not run")
	}
}

// Close terminates even when a task swallows its unwinding ("recover and
// retry"): after a few refused awaits the task is made to leave, and the
// exception handler hears of it, as asyncio reports a coroutine that
// ignored GeneratorExit.
func TestCloseStubbornTask(t *testing.T) {
	l := loop.New(loop.WithVirtualClock())
	got := recordHandler(l)
	attempts := 0
	stubborn := loop.CreateTask(l, func(ctx context.Context) (int, error) {
		for {
			func() {
				defer func() { _ = recover() }()
				attempts++
				_ = loop.Sleep(ctx, time.Hour)
			}()
		}
	})
	runBriefly(t, l)
	if err := l.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if !stubborn.Cancelled() {
		t.Errorf("the stubborn task is not cancelled after Close")
	}
	var msgs []string
	for _, c := range *got {
		msgs = append(msgs, c.Message)
	}
	checkTrace(t, []string{"Task was destroyed but it is pending!", "coroutine ignored GeneratorExit"}, msgs)
	if attempts < 2 || attempts > 10 {
		t.Errorf("the task tried %d awaits; want a few", attempts)
	}
}

// runtime.Goexit in a TaskGroup's body cancels and waits for the group's
// children, as a panic does, before the task ends with ErrGoexit.
func TestTaskGroupBodyGoexit(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		var child *loop.Task[int]
		task := loop.Spawn(ctx, func(ctx context.Context) (int, error) {
			return 0, loop.WithTaskGroup(ctx, func(ctx context.Context, tg *loop.TaskGroup) error {
				child, _ = loop.SpawnIn(tg, func(ctx context.Context) (int, error) { return 0, loop.Sleep(ctx, time.Hour) })
				_ = loop.Sleep(ctx, time.Millisecond)
				runtime.Goexit()
				return nil
			})
		})
		if _, err := task.Await(ctx); !errors.Is(err, loop.ErrGoexit) {
			t.Errorf("task = %v; want ErrGoexit", err)
		}
		if !child.Cancelled() {
			t.Errorf("the group's child is not cancelled after its body called Goexit")
		}
	})
}

// runLeakingChild runs the test named name in a child process of this test
// binary and returns what it printed. The scenarios it is for leave a
// goroutine behind by design (a coroutine made on a locked driver can only
// be switched to from that goroutine, and one parked mid-Goexit can never
// be), which the parent's leak check must not see.
func runLeakingChild(t *testing.T, name string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+name+"$", "-test.v")
	cmd.Env = append(os.Environ(), leakChildEnv+"="+name)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child %s: %v\n%s", name, err, out)
	}
	return string(out)
}

// On a loop driven from a goroutine locked to its thread, Close returns
// even when a task calls runtime.Goexit during its unwinding, or keeps
// swallowing it: Close never passes a Goexit on to its caller.
func TestCloseLockedDriverGoexit(t *testing.T) {
	if os.Getenv(leakChildEnv) != t.Name() {
		out := runLeakingChild(t, t.Name())
		if !strings.Contains(out, "Close returned <nil>, twice") {
			t.Errorf("child output:\n%s", out)
		}
		return
	}
	res := make(chan string, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		defer func() { res <- "the goroutine calling Close ended" }()
		var errs []error
		for _, stubborn := range []bool{false, true} {
			l := loop.New()
			loop.CreateTask(l, func(ctx context.Context) (int, error) {
				for stubborn {
					func() {
						defer func() { _ = recover() }()
						_ = loop.Sleep(ctx, time.Hour)
					}()
				}
				if err := loop.Sleep(ctx, time.Hour); err != nil {
					runtime.Goexit() // t.Fatal(err)
				}
				return 0, nil
			})
			l.Stop()
			_ = l.RunForever()
			l.SetExceptionHandler(func(*loop.Loop, loop.ExceptionContext) {})
			errs = append(errs, l.Close())
		}
		res <- fmt.Sprintf("Close returned %v, twice", errors.Join(errs...))
	}()
	fmt.Println(<-res)
}

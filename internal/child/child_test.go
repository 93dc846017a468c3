//go:build linux

package child_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/internal/exectest"

	"github.com/asyncgo/asyncgo/internal/child"
	"golang.org/x/sys/unix"
)

// Roles of the test binary's children.
const (
	roleEcho       = "child-test-echo"       // echoes lines on ctrl until EOF
	roleExit       = "child-test-exit"       // exits with the code it reads
	roleGrandchild = "child-test-grandchild" // starts a sleeper in its group, reports its pid, waits
	roleExe        = "child-test-exe"        // reports the device and inode of /proc/self/exe
	roleWatch      = "child-test-watch"      // WatchParent, then sleeps
	roleEnv        = "child-test-env"        // reports its GORACE settings
)

func init() {
	child.RegisterRole(roleEcho, func(ctrl *os.File) int {
		rd := bufio.NewReader(ctrl)
		for {
			line, err := rd.ReadString('\n')
			if err != nil {
				return 0
			}
			if _, err := ctrl.WriteString(line); err != nil {
				return 1
			}
		}
	})
	child.RegisterRole(roleExit, func(ctrl *os.File) int {
		line, _ := bufio.NewReader(ctrl).ReadString('\n')
		code, _ := strconv.Atoi(strings.TrimSpace(line))
		return code
	})
	child.RegisterRole(roleGrandchild, func(ctrl *os.File) int {
		p, err := os.StartProcess("/bin/sleep", []string{"sleep", "3600"}, &os.ProcAttr{})
		if err != nil {
			fmt.Fprintln(ctrl, "error", err)
			return 1
		}
		fmt.Fprintln(ctrl, p.Pid)
		_, _ = io.Copy(io.Discard, ctrl) // until the parent closes ctrl
		return 0
	})
	child.RegisterRole(roleExe, func(ctrl *os.File) int {
		var st unix.Stat_t
		if err := unix.Stat("/proc/self/exe", &st); err != nil {
			return 1
		}
		fmt.Fprintln(ctrl, st.Dev, st.Ino)
		return 0
	})
	child.RegisterRole(roleEnv, func(ctrl *os.File) int {
		var gorace []string
		for _, kv := range os.Environ() {
			if strings.HasPrefix(kv, "GORACE=") {
				gorace = append(gorace, kv)
			}
		}
		fmt.Fprintln(ctrl, strings.Join(gorace, "|"))
		return 0
	})
	child.RegisterRole(roleWatch, func(ctrl *os.File) int {
		child.WatchParent(ctrl)
		fmt.Fprintln(ctrl, "watching")
		time.Sleep(time.Hour)
		return 1
	})
}

func start(t *testing.T, sp *child.Spawner, role string) *child.Process {
	t.Helper()
	p, err := sp.Start(role)
	if err != nil {
		t.Fatalf("Start(%s) = %v", role, err)
	}
	return p
}

func spawner(t *testing.T) *child.Spawner {
	sp := child.NewSpawner()
	t.Cleanup(sp.Close)
	return sp
}

// A child runs its role, talks over its control socket, and its exit code
// arrives through Wait.
func TestStartAndWait(t *testing.T) {
	sp := spawner(t)
	p := start(t, sp, roleEcho)
	fmt.Fprintln(p.Ctrl, "hello")
	if line, err := bufio.NewReader(p.Ctrl).ReadString('\n'); line != "hello\n" || err != nil {
		t.Errorf("echo = %q, %v; want hello", line, err)
	}
	p.Ctrl.Close()
	if st, err := p.Wait(); err != nil || st.ExitCode() != 0 {
		t.Errorf("Wait() = %v, %v; want exit 0", st, err)
	}

	p = start(t, sp, roleExit)
	fmt.Fprintln(p.Ctrl, 7)
	st, err := p.Wait()
	p.Ctrl.Close()
	if err != nil || st.ExitCode() != 7 {
		t.Errorf("Wait() = %v, %v; want exit 7", st, err)
	}
}

// Start after Close refuses, instead of panicking on a closed channel; a
// spawner never started closes at once.
func TestStartAfterClose(t *testing.T) {
	idle := child.NewSpawner()
	idle.Close()
	idle.Close() // twice is fine
	sp := child.NewSpawner()
	p := start(t, sp, roleExit)
	fmt.Fprintln(p.Ctrl, 0)
	_, _ = p.Wait()
	p.Ctrl.Close()
	sp.Close()
	for _, s := range []*child.Spawner{idle, sp} {
		if _, err := s.Start(roleExit); !errors.Is(err, child.ErrSpawnerClosed) {
			t.Errorf("Start after Close = %v; want ErrSpawnerClosed", err)
		}
	}
}

// A child gets one GORACE, with atexit_sleep_ms=0 added to the parent's
// settings (a race-enabled child would sleep a second at every exit).
func TestChildGORACE(t *testing.T) {
	t.Setenv("GORACE", "halt_on_error=1")
	sp := spawner(t)
	p := start(t, sp, roleEnv)
	line, _ := bufio.NewReader(p.Ctrl).ReadString('\n')
	_, _ = p.Wait()
	p.Ctrl.Close()
	if want := "GORACE=halt_on_error=1 atexit_sleep_ms=0\n"; line != want {
		t.Errorf("the child's GORACE = %q; want %q", line, want)
	}
}

// Wait kills what is left of the child's process group, so whatever the
// child started dies with it.
func TestWaitKillsTheGroup(t *testing.T) {
	p := start(t, spawner(t), roleGrandchild)
	line, err := bufio.NewReader(p.Ctrl).ReadString('\n')
	pid, perr := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || perr != nil {
		t.Fatalf("grandchild pid: %q, %v", line, err)
	}
	fd, err := unix.PidfdOpen(pid, 0) // the grandchild is its parent's, unreaped
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	p.Ctrl.Close() // the child exits
	if _, err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	if !exectest.Exited(fd, time.Minute) {
		t.Errorf("the grandchild outlived Wait")
	}
}

// Item 7: after Wait, Signal and KillGroup reach nothing, not even a
// process that now has the child's pid, and leads a group of that id. The
// pid is made to be reused by writing ns_last_pid (root only; skipped
// otherwise, or if another process takes the pid first).
func TestNoSignalAfterReap(t *testing.T) {
	p := start(t, spawner(t), roleExit)
	fmt.Fprintln(p.Ctrl, 0)
	if _, err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	p.Ctrl.Close()
	if err := p.Signal(syscall.SIGKILL); !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("Signal() after Wait = %v; want os.ErrProcessDone", err)
	}
	f, err := os.OpenFile("/proc/sys/kernel/ns_last_pid", os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("cannot make the pid reused: %v", err)
	}
	_, err = fmt.Fprint(f, p.Pid()-1)
	f.Close()
	if err != nil {
		t.Skipf("cannot make the pid reused: %v", err)
	}
	other, err := os.StartProcess("/bin/sleep", []string{"sleep", "3600"}, &os.ProcAttr{Sys: &syscall.SysProcAttr{Setpgid: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = other.Kill()
		_, _ = other.Wait()
	}()
	if other.Pid != p.Pid() {
		t.Skipf("another process took pid %d first", p.Pid())
	}
	p.KillGroup(syscall.SIGKILL)
	_ = p.Signal(syscall.SIGKILL)
	if err := other.Signal(syscall.Signal(0)); err != nil {
		t.Errorf("the process that reused pid %d was signalled: %v", p.Pid(), err)
	}
	var info unix.Siginfo
	if err := unix.Waitid(unix.P_PID, other.Pid, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil); err != nil || info.Signo != 0 {
		t.Errorf("the process that reused pid %d exited (%v, signo %d)", p.Pid(), err, info.Signo)
	}
}

// Item 5: a process started as a child that never ran Bootstrap refuses to
// start children of its own, naming the fix.
func TestNotBootstrappedRefuses(t *testing.T) {
	t.Setenv("ASYNCGO_CHILD_ROLE", roleEcho) // as a child sees it before Bootstrap
	if err := child.CanSpawn(); !errors.Is(err, child.ErrNotBootstrapped) {
		t.Errorf("CanSpawn() = %v; want ErrNotBootstrapped", err)
	}
	sp := spawner(t)
	if _, err := sp.Start(roleEcho); !errors.Is(err, child.ErrNotBootstrapped) || !strings.Contains(err.Error(), "executor.Init()") {
		t.Errorf("Start() = %v; want ErrNotBootstrapped naming executor.Init", err)
	}
}

// Item 6: the child is the running binary, /proc/self/exe, whatever its
// path now names.
func TestChildIsTheRunningBinary(t *testing.T) {
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/exe", &st); err != nil {
		t.Fatal(err)
	}
	p := start(t, spawner(t), roleExe)
	line, err := bufio.NewReader(p.Ctrl).ReadString('\n')
	p.Ctrl.Close()
	if _, werr := p.Wait(); werr != nil {
		t.Fatal(werr)
	}
	if want := fmt.Sprintln(st.Dev, st.Ino); line != want || err != nil {
		t.Errorf("the child's /proc/self/exe is %q, %v; want the parent's %q", line, err, want)
	}
}

// A child that watches its parent exits as soon as the parent's end of the
// control socket closes, whatever it is doing.
func TestWatchParent(t *testing.T) {
	p := start(t, spawner(t), roleWatch)
	if line, err := bufio.NewReader(p.Ctrl).ReadString('\n'); line != "watching\n" || err != nil {
		t.Fatalf("child: %q, %v", line, err)
	}
	p.Ctrl.Close()
	if st, err := p.Wait(); err != nil || st.ExitCode() != 0 {
		t.Errorf("Wait() = %v, %v; want exit 0 (WatchParent's)", st, err)
	}
}

// A role this binary does not know ends the child with status 2.
func TestUnknownRole(t *testing.T) {
	p := start(t, spawner(t), "child-test-unknown")
	p.Ctrl.Close()
	if st, err := p.Wait(); err != nil || st.ExitCode() != 2 {
		t.Errorf("Wait() = %v, %v; want exit 2", st, err)
	}
}

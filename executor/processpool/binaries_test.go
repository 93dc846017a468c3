//go:build linux

package processpool_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// buildTestdata builds ./testdata/name into dir and returns the binary's
// path.
func buildTestdata(t *testing.T, name, out string, ldflags ...string) string {
	t.Helper()
	gocmd := goCommand(t)
	args := []string{"build", "-o", out}
	if len(ldflags) > 0 {
		args = append(args, "-ldflags", strings.Join(ldflags, " "))
	}
	args = append(args, "./testdata/"+name)
	if b, err := exec.Command(gocmd, args...).CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", name, err, b)
	}
	return out
}

// goCommand returns the go command: the one on PATH, or GOROOT's.
func goCommand(t *testing.T) string {
	t.Helper()
	if gocmd, err := exec.LookPath("go"); err == nil {
		return gocmd
	}
	if root := os.Getenv("GOROOT"); root != "" {
		return filepath.Join(root, "bin", "go")
	}
	t.Fatal("the go command is needed to build the test programs: none on PATH, and GOROOT is unset")
	return ""
}

// tagged returns the pids of the live processes whose environment holds
// tag (an environment variable set on a command and inherited by
// everything it starts).
func tagged(tag string) []int {
	var pids []int
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", d.Name(), "environ"))
		if err == nil && bytes.Contains(env, []byte(tag)) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// Item 5: a program whose main forgot executor.Init. Its worker runs main
// too; there processpool.New refuses, naming the fix, instead of starting a
// pool of its own (which used to re-exec again, without end: about 1,800
// processes in 5 s). The parent's pool breaks at the worker's exit, or at
// its start handshake's timeout if the worker hangs instead; the program
// ends promptly with ErrBrokenProcessPool and leaves no process behind.
func TestForgottenInit(t *testing.T) {
	bin := buildTestdata(t, "forgotinit", filepath.Join(t.TempDir(), "forgotinit"))
	for _, mode := range []string{"exit", "hang"} {
		t.Run(mode, func(t *testing.T) {
			tag := fmt.Sprintf("ASYNCGO_TEST_TAG=forgotinit-%d-%d", os.Getpid(), time.Now().UnixNano())
			defer func() { // whatever happened, no process of this run survives the test
				for _, pid := range tagged(tag) {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a bound for a runaway, not a timing
			defer cancel()
			cmd := exec.CommandContext(ctx, bin)
			cmd.Env = append(os.Environ(), "FORGOT_MODE="+mode, tag)
			out, err := cmd.CombinedOutput()
			if ctx.Err() != nil {
				t.Fatalf("the program did not end within a minute; output:\n%s", out)
			}
			if err != nil {
				t.Logf("exit: %v", err)
			}
			got := string(out)
			for _, want := range []string{
				"call executor.Init() first thing in main", // the worker's refusal
				"Result: 0 processpool: a process in the process pool was terminated abruptly",
				"did not answer its start handshake: a worker's main must call executor.Init first thing",
			} {
				if !strings.Contains(got, want) {
					t.Errorf("output lacks %q:\n%s", want, got)
				}
			}
			if n := strings.Count(got, "New:"); mode == "exit" && n != 1 {
				t.Errorf("%d processes refused to start a pool; want 1 (the worker):\n%s", n, got)
			}
			if pids := tagged(tag); len(pids) != 0 {
				t.Errorf("processes %v of the program still alive after it ended", pids)
			}
		})
	}
}

// Item 6: a worker re-executes the running binary (/proc/self/exe), not
// the file at the path it was started from: a deploy that replaces the
// file does not put a new binary under an old pool.
func TestWorkerRunsTheRunningBinary(t *testing.T) {
	dir := t.TempDir()
	prog := buildTestdata(t, "replaced", filepath.Join(dir, "prog"), "-X main.version=old")
	next := buildTestdata(t, "replaced", filepath.Join(dir, "prog.next"), "-X main.version=new")
	cmd := exec.Command(prog)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer stdin.Close()
	lines := bufio.NewReader(stdout)
	if line, err := lines.ReadString('\n'); line != "ready\n" || err != nil {
		t.Fatalf("first line = %q, %v; want ready", line, err)
	}
	if err := os.Rename(next, prog); err != nil { // the deploy
		t.Fatal(err)
	}
	fmt.Fprintln(stdin)
	line, err := lines.ReadString('\n')
	if want := "parent old worker old <nil>\n"; line != want || err != nil {
		t.Errorf("after the binary's file was replaced: %q, %v; want %q", line, err, want)
	}
}

// Package child runs functions of this binary in child processes: the
// parent re-executes its own binary with a marker in the environment and a
// private control socket as file descriptor 3, and the child's main calls
// Bootstrap first thing, which runs the child's role and exits.
//
// A child dies with its parent three ways: Pdeathsig (SIGKILL) fires when
// the parent's spawning thread ends, and the spawning thread is a locked
// goroutine that lives as long as the parent needs its children
// (golang/go#27505); a goroutine in the child exits as soon as the control
// socket reaches EOF, which the kernel delivers when the parent dies however
// it dies; and the child checks at start that its parent is still the
// process that spawned it. Each child leads its own process group, so
// killing the group reaches anything it started.
//
// The binary re-executed is the running one, /proc/self/exe, whatever has
// become of the path it was started from: a deploy that replaces the file
// does not put a new binary under an old pool. A child is signalled
// through its os.Process, which holds a pidfd, never through a pid that
// may have been reused; its process group is signalled only while its
// leader is unreaped (see Process).
//
// A child whose main never calls Bootstrap would run the program itself,
// and a program that starts children would start its own, without end:
// in such a process Start (and CanSpawn) refuse with ErrNotBootstrapped.
//
// Child processes need Linux (Pdeathsig, pidfds, POLLRDHUP); elsewhere
// Start returns an error wrapping errors.ErrUnsupported, and Bootstrap and
// the roles work as on Linux.
package child

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
)

// Environment variables that mark a child.
const (
	envRole   = "ASYNCGO_CHILD_ROLE"
	envParent = "ASYNCGO_PARENT_PID"
)

// ErrNotBootstrapped is a process started as a child whose main did not
// call the bootstrap (executor.Init) before it tried to start children of
// its own.
var ErrNotBootstrapped = errors.New("this process was started as an asyncgo worker process, but its main never called executor.Init: call executor.Init() first thing in main (and in TestMain of a test binary that starts pools), after package initialisation")

var (
	rolesMu sync.Mutex
	roles   = map[string]func(ctrl *os.File) int{}
)

// RegisterRole registers the main of a kind of child. It panics if the role
// is registered twice.
func RegisterRole(role string, main func(ctrl *os.File) int) {
	rolesMu.Lock()
	defer rolesMu.Unlock()
	if _, dup := roles[role]; dup {
		panic("child: role registered twice: " + role)
	}
	roles[role] = main
}

// IsChild reports whether this process was started as a child and has not
// run Bootstrap (which clears the marker before it runs the role).
func IsChild() bool { return os.Getenv(envRole) != "" }

// CanSpawn reports whether this process may start children: it returns
// ErrNotBootstrapped in a child that never ran Bootstrap, and an error
// wrapping errors.ErrUnsupported off Linux.
func CanSpawn() error {
	if IsChild() {
		return ErrNotBootstrapped
	}
	return supported()
}

// Bootstrap runs this process's role and exits if it was started as a
// child; otherwise it returns at once. Call it first thing in main (and in
// TestMain), after package initialisation has registered every role and
// function.
func Bootstrap() {
	role := os.Getenv(envRole)
	if role == "" {
		return
	}
	parent := os.Getenv(envParent)
	os.Unsetenv(envRole)
	os.Unsetenv(envParent)
	if strconv.Itoa(os.Getppid()) != parent {
		os.Exit(3) // the parent died before we could start
	}
	rolesMu.Lock()
	main := roles[role]
	rolesMu.Unlock()
	if main == nil {
		fmt.Fprintf(os.Stderr, "asyncgo: child role %q is not registered in this binary\n", role)
		os.Exit(2)
	}
	os.Exit(main(os.NewFile(3, "asyncgo-control")))
}

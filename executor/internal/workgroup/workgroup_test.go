package workgroup_test

import (
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/asyncgo/asyncgo/executor/internal/workgroup"
	"github.com/sourcegraph/conc/panics"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Wait waits for every goroutine; from a member, for every team but its
// own.
func TestWaitFromAMember(t *testing.T) {
	var g workgroup.Group
	var empties atomic.Int32
	g.OnEmpty = func() { empties.Add(1) }
	release := make(chan struct{})
	teamA, teamB := new(int), new(int)
	g.Go(teamB, func() { <-release })
	waited := make(chan bool)
	g.Go(teamA, func() {
		close(release)
		waited <- g.Wait() // returns once team B is gone, not waiting for itself
	})
	g.Go(teamA, func() {}) // the caller's team-mate is not waited for either
	if empty := <-waited; empty {
		t.Errorf("Wait() from a member = true; want false (its own team is alive)")
	}
	if !g.Wait() || g.Len() != 0 {
		t.Errorf("Wait() from outside: Len() = %d; want 0", g.Len())
	}
	if n := empties.Load(); n < 1 {
		t.Errorf("OnEmpty called %d times; want at least 1", n)
	}
}

// A panic in a goroutine is caught, reported to OnPanic, and re-panicked
// by Repanic with its stack; runtime.Goexit counts the goroutine out.
func TestPanicAndGoexit(t *testing.T) {
	var g workgroup.Group
	var reported atomic.Pointer[panics.Recovered]
	g.OnPanic = func(r *panics.Recovered) { reported.Store(r) }
	g.Go(nil, func() { runtime.Goexit() })
	g.Go(nil, func() { panic("bug in the pool") })
	g.Wait()
	if r := reported.Load(); r == nil || r.Value != "bug in the pool" {
		t.Fatalf("OnPanic got %v", r)
	}
	defer func() {
		r, ok := recover().(*panics.Recovered)
		if !ok || r.Value != "bug in the pool" || !strings.Contains(string(r.Stack), "workgroup_test") {
			t.Errorf("Repanic() panicked with %v; want the goroutine's panic with its stack", r)
		}
	}()
	g.Repanic()
	t.Errorf("Repanic() returned")
}

// Two members of different teams waiting at once do not wait for each
// other (two done callbacks that each shut the pool down), and an outside
// waiter still waits for both.
func TestWaitFromTwoMembers(t *testing.T) {
	var g workgroup.Group
	start := make(chan struct{})
	results := make(chan bool, 2)
	for range 2 {
		g.Go(new(int), func() {
			<-start
			results <- g.Wait()
		})
	}
	close(start)
	for range 2 {
		if empty := <-results; empty {
			t.Errorf("Wait() from a member = true; want false")
		}
	}
	if !g.Wait() || g.Len() != 0 {
		t.Errorf("Wait() from outside: Len() = %d; want 0", g.Len())
	}
}

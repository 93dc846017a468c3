//go:build linux

package aio_test

import (
	"errors"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/aio"
	"github.com/asyncgo/asyncgo/executor"
)

type killHammerArgs struct {
	L   *aio.Lock
	Log *aio.Queue[int] // +pid on entering the lock, -pid on leaving it
	N   int
	// HoldAt > 0: the HoldAt-th time it holds the lock (rounds that met
	// ErrOwnerDied do not count), the process stays inside it until
	// it is killed (a victim: the kill then lands inside it for sure,
	// however far the log's reader lags behind).
	HoldAt int
}

// killHammerLock takes the lock N times, logging its entry and exit inside
// it (Puts posted before the Release, so the log's order is the lock's).
var killHammerLock = executor.Register("aio_test.killHammerLock", func(a killHammerArgs) (struct{}, error) {
	pid := os.Getpid()
	held := 0
	for range a.N {
		if err := a.L.Acquire(); err != nil {
			if errors.Is(err, aio.ErrOwnerDied) {
				continue // a sibling died holding it; it is free again
			}
			return struct{}{}, err
		}
		if err := a.Log.Put(pid); err != nil {
			return struct{}{}, err
		}
		if held++; held == a.HoldAt {
			select {} // killed here
		}
		if err := a.Log.Put(-pid); err != nil {
			return struct{}{}, err
		}
		if err := a.L.Release(); err != nil {
			return struct{}{}, err
		}
	}
	return struct{}{}, a.Log.Put(0)
})

// Processes hammer one shared-memory Lock while some of them are
// SIGKILLed inside it, in their 50th round: the log the holders
// write inside it never shows two holders at once, except after a holder
// that was killed there; the survivors all finish (a dead holder's lock is
// freed, never left held); no ErrOwnerDied is lost or doubled in a way
// that would let two in.
func TestLockHammeredWithKills(t *testing.T) {
	const procs, rounds = 6, 300
	l, log := aio.NewLock(), aio.NewQueue[int](0)
	ps := make([]*aio.Process, procs)
	for i := range ps {
		a := killHammerArgs{L: l, Log: log, N: rounds}
		if i == 1 || i == 4 {
			a.HoldAt = 50
		}
		ps[i] = aio.NewProcess(killHammerLock.Bind(a))
		if err := ps[i].Start(); err != nil {
			t.Fatal(err)
		}
	}
	killed := map[int]bool{}
	// Kill two of them once the log shows them at work.
	victims := map[int]bool{ps[1].Pid(): true, ps[4].Pid(): true}
	inside := 0 // the pid holding the lock by the log, 0: none
	finished := 0
	seen := map[int]int{}
	deadline := time.Now().Add(60 * time.Second)
	for finished < procs-len(victims) || len(killed) < len(victims) {
		v, err := log.GetTimeout(time.Until(deadline))
		if err != nil {
			t.Fatalf("the log stopped: %v (finished %d, inside %d)", err, finished, inside)
		}
		switch {
		case v == 0:
			finished++
		case v > 0:
			if inside != 0 && !killed[inside] {
				t.Fatalf("%d entered the lock while %d held it", v, inside)
			}
			inside = v
			seen[v]++
			if victims[v] && seen[v] == 50 && !killed[v] {
				// Inside the lock, by the log: kill it there.
				killed[v] = true
				_ = syscall.Kill(v, syscall.SIGKILL)
			}
		default:
			if inside != -v {
				if !killed[-v] {
					t.Fatalf("%d left the lock that %d held", -v, inside)
				}
			} else {
				inside = 0
			}
		}
	}
	for _, p := range ps {
		if err := p.Join(); err != nil {
			t.Fatal(err)
		}
		code, _ := p.ExitCode()
		if killed[p.Pid()] {
			if code != -9 {
				t.Errorf("victim %d exited %d, want -9", p.Pid(), code)
			}
		} else if code != 0 {
			t.Errorf("survivor %d exited %d", p.Pid(), code)
		}
	}
	// The last victim may have died after the survivors finished: its
	// lock is freed as the host learns of its death, and the next
	// acquire hears of it.
	ok, err := l.AcquireTimeout(20 * time.Second)
	if err != nil && !errors.Is(err, aio.ErrOwnerDied) || err == nil && !ok {
		t.Fatalf("the lock is held after everyone finished: %v, %v", ok, err)
	}
	if ok && err == nil {
		if err := l.Release(); err != nil {
			t.Fatal(err)
		}
	}
}

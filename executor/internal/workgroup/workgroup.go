// Package workgroup owns a pool's goroutines, as conc's WaitGroup does: it
// counts them, catches a panic in one so that the pool's Shutdown re-panics
// it with its stack instead of the process dying, and knows which goroutine
// is whose, so that a Shutdown called from one of the pool's own goroutines
// (a done callback, a call that shuts its own pool down) waits for every
// other goroutine and not for itself.
//
// Why goroutine ids: Go has no goroutine-local state, and a call that
// blocks in Shutdown(wait=true) on the goroutine Shutdown would wait for
// is a deadlock nothing else can detect. Python raises "cannot join
// current thread" there; a pool here finishes without the caller instead.
// An id costs one runtime.Stack call (about a microsecond) per goroutine
// start and per waiting Shutdown, never per call.
package workgroup

import (
	"sync"
	"sync/atomic"

	goidpkg "github.com/asyncgo/asyncgo/internal/goid"

	"github.com/sourcegraph/conc/panics"
)

// Group is a set of goroutines, each belonging to a team: the goroutines
// that serve one worker. Wait from a member waits for every team but the
// caller's. The zero Group is ready to use; it must not be copied.
type Group struct {
	mu       sync.Mutex
	cond     sync.Cond
	n        int
	perTeam  map[any]int
	teamOf   map[uint64]any // goroutine id -> team, for live members
	waiting  map[any]int    // teams with members inside Wait -> how many
	emptying int            // OnEmpty calls still running
	first    atomic.Pointer[panics.Recovered]

	// OnPanic, if set, is called in the panicking goroutine after its panic
	// was caught (a pool breaks, so that none of its futures waits for the
	// dead goroutine). Set it before the first Go.
	OnPanic func(*panics.Recovered)
	// OnEmpty, if set, is called by the last goroutine to end, each time the
	// group becomes empty; a Wait that finds the group empty returns only
	// after it ran, so it must not call Wait. Set it before the first Go.
	OnEmpty func()
}

// Go runs f on a new goroutine of team.
func (g *Group) Go(team any, f func()) {
	g.mu.Lock()
	g.init()
	g.n++
	g.perTeam[team]++
	g.mu.Unlock()
	go g.run(team, f)
}

func (g *Group) init() {
	if g.perTeam == nil {
		g.perTeam = map[any]int{}
		g.teamOf = map[uint64]any{}
		g.waiting = map[any]int{}
		g.cond.L = &g.mu
	}
}

func (g *Group) run(team any, f func()) {
	id := goid()
	g.mu.Lock()
	g.teamOf[id] = team
	g.mu.Unlock()
	// Deferred, so that a goroutine ended by runtime.Goexit is counted out
	// too.
	defer func() {
		g.mu.Lock()
		delete(g.teamOf, id)
		g.n--
		if g.perTeam[team]--; g.perTeam[team] == 0 {
			delete(g.perTeam, team)
		}
		empty := g.n == 0 && g.OnEmpty != nil
		if empty {
			g.emptying++
		}
		g.cond.Broadcast()
		g.mu.Unlock()
		if empty {
			defer func() {
				g.mu.Lock()
				g.emptying--
				g.cond.Broadcast()
				g.mu.Unlock()
			}()
			g.OnEmpty()
		}
	}()
	var caught *panics.Recovered
	func() {
		defer func() {
			if v := recover(); v != nil {
				r := panics.NewRecovered(1, v)
				caught = &r
			}
		}()
		f()
	}()
	if caught != nil {
		g.first.CompareAndSwap(nil, caught)
		if g.OnPanic != nil {
			g.OnPanic(caught)
		}
	}
}

// Wait waits until every goroutine of the group has ended, except those of
// the caller's own team if the caller is a member, and of every other team
// that has a member waiting too (two done callbacks that each shut their
// pool down must not wait for each other). It returns whether the group is
// empty (false: a waiting team is still running); when it is, OnEmpty has
// run.
func (g *Group) Wait() bool {
	id := goid()
	g.mu.Lock()
	defer g.mu.Unlock()
	g.init()
	team, member := g.teamOf[id]
	if member {
		g.waiting[team]++
		g.cond.Broadcast() // others waiting need not wait for this team now
		defer func() {
			if g.waiting[team]--; g.waiting[team] == 0 {
				delete(g.waiting, team)
			}
		}()
	}
	for {
		spared := 0
		if member {
			for t := range g.waiting {
				spared += g.perTeam[t]
			}
		}
		if g.n == spared && (g.n > 0 || g.emptying == 0) {
			return g.n == 0
		}
		g.cond.Wait()
	}
}

// Len returns the number of live goroutines.
func (g *Group) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.n
}

// Repanic re-panics the first panic a goroutine of the group raised, as a
// *panics.Recovered with its value and stack; it does nothing if none did.
func (g *Group) Repanic() {
	if r := g.first.Load(); r != nil {
		panic(r)
	}
}

// goid returns the calling goroutine's id.
func goid() uint64 { return goidpkg.Get() }

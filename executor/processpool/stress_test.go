//go:build linux

package processpool_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/executor/processpool"
	"go.uber.org/goleak"
)

// suicide kills its own worker with SIGKILL: a worker death at a point
// the test chooses, with no pid to race for.
var suicide = executor.Register("test.suicide", func(struct{}) (int, error) {
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {}
})

// A kind of call the stress test makes, and what it must end with.
type callKind int

const (
	kindSquare  callKind = iota // quick, sent inline to an idle worker
	kindEcho                    // 300 bytes: sent by the worker's own goroutine
	kindGated                   // runs until the round opens its gate
	kindNilArg                  // cannot be encoded: fails alone
	kindSuicide                 // kills its worker: the pool breaks
	numKinds
)

type stressCall struct {
	kind callKind
	x    int
	f    *executor.Future[int]
}

type stressRound struct {
	opts             processpool.Options
	wait, cancel     bool
	submitters       int
	calls            int // per submitter
	shutdownAfter    int // submissions before the controller shuts the pool down
	openGateEarly    bool
	deaths           bool // suicide calls allowed
	cancelSomeFuture bool
}

func (r stressRound) String() string {
	return fmt.Sprintf("workers=%d maxTasks=%d wait=%v cancel=%v submitters=%d calls=%d shutdownAfter=%d openGateEarly=%v deaths=%v cancelOne=%v",
		r.opts.MaxWorkers, r.opts.MaxTasksPerChild, r.wait, r.cancel, r.submitters, r.calls, r.shutdownAfter, r.openGateEarly, r.deaths, r.cancelSomeFuture)
}

// Item 8: every future of every pool ends, under every combination of
// Shutdown's flags, MaxTasksPerChild, worker deaths (SIGKILL), cancels and
// concurrent submits; a Shutdown(wait) without deaths returns only once
// every call has run; and nothing is left behind: no goroutine, no file
// descriptor. Randomized and bounded: the seed is logged, and
// ASYNCGO_STRESS_SEED replays it.
func TestEveryFutureEnds(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("ASYNCGO_STRESS_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d (ASYNCGO_STRESS_SEED replays it)", seed)
	rng := rand.New(rand.NewPCG(seed, seed>>32))
	rounds := 24
	if testing.Short() {
		rounds = 6
	}
	// One round first, so that what the process keeps for good (wakers,
	// the race detector's files) is there before the count.
	runStressRound(t, stressRound{opts: processpool.Options{MaxWorkers: 1}, wait: true, submitters: 1, calls: 2})
	fdsBefore := countFDs(t)
	for i := range rounds {
		r := stressRound{
			opts: processpool.Options{
				MaxWorkers:       1 + rng.IntN(3),
				MaxTasksPerChild: rng.IntN(3),
			},
			wait:             rng.IntN(2) == 0,
			cancel:           rng.IntN(2) == 0,
			submitters:       1 + rng.IntN(3),
			calls:            1 + rng.IntN(8),
			openGateEarly:    rng.IntN(2) == 0,
			deaths:           rng.IntN(3) == 0,
			cancelSomeFuture: rng.IntN(2) == 0,
		}
		r.shutdownAfter = rng.IntN(r.submitters*r.calls + 1)
		if !t.Run(fmt.Sprint("round", i), func(t *testing.T) {
			t.Log(r)
			runStressRound(t, r, rng.Uint64())
		}) {
			t.Fatalf("round %d failed (%v); seed %d", i, r, seed)
		}
	}
	if fds := countFDs(t); fds != fdsBefore {
		t.Errorf("%d file descriptors open after the rounds; %d before", fds, fdsBefore)
	}
}

func runStressRound(t *testing.T, r stressRound, seeds ...uint64) {
	t.Helper()
	var seed uint64
	if len(seeds) > 0 {
		seed = seeds[0]
	}
	rng := rand.New(rand.NewPCG(seed, 1))
	p, err := processpool.New(r.opts)
	if err != nil {
		t.Fatal(err)
	}
	g := newGate(t)
	defer g.close()
	// The calls of each submitter, drawn before they start (rng is not
	// safe for concurrent use).
	plans := make([][]stressCall, r.submitters)
	for s := range plans {
		for i := range r.calls {
			k := callKind(rng.IntN(int(numKinds)))
			if k == kindSuicide && !r.deaths {
				k = kindSquare
			}
			plans[s] = append(plans[s], stressCall{kind: k, x: s*100 + i})
		}
	}

	var mu sync.Mutex
	var accepted []*stressCall
	submitted := 0
	shutdownNow := make(chan struct{})
	var shutdownOnce sync.Once
	count := func() {
		mu.Lock()
		submitted++
		n := submitted
		mu.Unlock()
		if n >= r.shutdownAfter {
			shutdownOnce.Do(func() { close(shutdownNow) })
		}
	}
	if r.shutdownAfter == 0 {
		shutdownOnce.Do(func() { close(shutdownNow) })
	}
	var wg sync.WaitGroup
	for s := range plans {
		wg.Go(func() {
			for i := range plans[s] {
				c := &plans[s][i]
				var call executor.Call[int]
				switch c.kind {
				case kindSquare:
					call = square.Bind(c.x)
				case kindEcho:
					call = echoLen.Bind(blob{Data: make([]byte, 300), Note: strconv.Itoa(c.x)})
				case kindGated:
					call = g.call()
				case kindNilArg:
					call = takesPoint.Bind(nil)
				case kindSuicide:
					call = suicide.Bind(struct{}{})
				}
				f, err := executor.Submit(p, call)
				switch {
				case err == nil:
					c.f = f
					mu.Lock()
					accepted = append(accepted, c)
					mu.Unlock()
				case errors.Is(err, executor.ErrShutdown), errors.Is(err, executor.ErrBrokenProcessPool):
				default:
					t.Errorf("Submit() = %v", err)
				}
				count()
			}
		})
	}
	if r.openGateEarly {
		g.open()
	}
	<-shutdownNow
	if r.cancelSomeFuture {
		mu.Lock()
		if len(accepted) > 0 {
			accepted[rng.IntN(len(accepted))].f.Cancel()
		}
		mu.Unlock()
	}
	if r.wait {
		g.open() // Shutdown(wait) waits for the gated calls
	}
	shutdownReturned := make(chan struct{})
	go func() {
		defer close(shutdownReturned)
		p.Shutdown(r.wait, r.cancel)
	}()
	select {
	case <-shutdownReturned:
	case <-time.After(2 * time.Minute):
		t.Fatalf("Shutdown(%v, %v) still blocked after 2 minutes", r.wait, r.cancel)
	}
	g.open()
	wg.Wait()

	mu.Lock()
	calls := accepted
	mu.Unlock()
	died := false
	for _, c := range calls {
		if c.kind == kindSuicide {
			died = true
		}
	}
	if r.wait && !died && !r.cancel {
		// Python's promise: Shutdown(wait) runs every queued call first.
		// (Submits racing the Shutdown may land after it: only those
		// accepted before it count, and a late one is refused.)
		for _, c := range calls {
			select {
			case <-c.f.DoneChan():
			default:
				// Accepted by a Submit that raced Shutdown? Then it was
				// accepted before Shutdown marked the pool, and must be
				// done too.
				t.Errorf("call %d (kind %d) not done when Shutdown(wait) returned", c.x, c.kind)
			}
		}
	}
	deadline := time.After(2 * time.Minute)
	for _, c := range calls {
		select {
		case <-c.f.DoneChan():
		case <-deadline:
			t.Fatalf("call %d (kind %d) never ended", c.x, c.kind)
		}
		v, err := c.f.Result(context.Background())
		switch {
		case c.f.Cancelled():
		case errors.Is(err, executor.ErrBrokenProcessPool) && died:
		case c.kind == kindNilArg:
			if err == nil || !strings.Contains(err.Error(), "cannot send the argument") {
				t.Errorf("nil argument: Result() = %d, %v; want an encoding error", v, err)
			}
		case c.kind == kindSquare && (v != c.x*c.x || err != nil):
			t.Errorf("square(%d) = %d, %v", c.x, v, err)
		case c.kind == kindEcho && (v != c.x || err != nil):
			t.Errorf("echoLen(%d) = %d, %v", c.x, v, err)
		case c.kind == kindGated && err != nil:
			t.Errorf("gated call = %d, %v", v, err)
		case c.kind == kindSuicide && !errors.Is(err, executor.ErrBrokenProcessPool):
			t.Errorf("suicide: Result() = %d, %v; want ErrBrokenProcessPool", v, err)
		}
	}
	p.Shutdown(true, false) // joins a Shutdown(wait=false)
	if pids := p.Pids(); len(pids) != 0 {
		t.Errorf("workers %v alive after Shutdown", pids)
	}
}

// echoLen returns the number in its blob's note: a call whose argument is
// not small enough to be sent inline.
var echoLen = executor.Register("test.echoLen", func(b blob) (int, error) { return strconv.Atoi(b.Note) })

func countFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents) - 1 // the directory's own
}

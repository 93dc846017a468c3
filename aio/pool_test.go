//go:build linux

package aio_test

// Tests of Pool, with real worker processes (this test binary re-executed,
// see TestMain). Their names mirror CPython's _TestPool cases in
// Lib/test/_test_multiprocessing.py, named in a comment where they do.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/asyncgo/asyncgo/aio"
	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/executor/processpool"
	"github.com/asyncgo/asyncgo/loop"
)

var errPoolOdd = errors.New("odd item")

func init() { executor.RegisterError(errPoolOdd) }

// powArgs is starmap's (a, b) tuple as Go passes it: one struct.
type powArgs struct{ Base, Exp int }

// poolFileGate is a call that records that it ran, and waits for a file.
type poolFileGate struct {
	Dir  string
	I    int
	Wait bool // wait for Dir/release, after creating Dir/started
}

var (
	poolSquare = executor.Register("aio.pool_test.square", func(x int) (int, error) { return x * x, nil })
	poolPow    = executor.Register("aio.pool_test.pow", func(a powArgs) (int, error) {
		r := 1
		for range a.Exp {
			r *= a.Base
		}
		return r, nil
	})
	poolPid   = executor.Register("aio.pool_test.pid", func(int) (int, error) { return os.Getpid(), nil })
	poolSleep = executor.Register("aio.pool_test.sleep", func(d time.Duration) (int, error) {
		time.Sleep(d)
		return int(d / time.Millisecond), nil
	})
	// poolOddFails fails on odd items, and panics on 13.
	poolOddFails = executor.Register("aio.pool_test.oddFails", func(x int) (int, error) {
		if x == 13 {
			panic("thirteen")
		}
		if x%2 != 0 {
			return 0, fmt.Errorf("item %d: %w", x, errPoolOdd)
		}
		return x, nil
	})
	// poolSlowOdd is poolOddFails without the panic, which takes 200 ms
	// to fail on 1.
	poolSlowOdd = executor.Register("aio.pool_test.slowOdd", func(x int) (int, error) {
		if x == 1 {
			time.Sleep(200 * time.Millisecond)
		}
		if x%2 != 0 {
			return 0, fmt.Errorf("item %d: %w", x, errPoolOdd)
		}
		return x, nil
	})
	poolAny      = executor.Register("aio.pool_test.any", func(v any) (int, error) { return 1, nil })
	poolAnyEcho  = executor.Register("aio.pool_test.anyEcho", func(v any) (any, error) { return v, nil })
	poolInitVal  = 0
	poolInit     = executor.Register("aio.pool_test.init", func(n int) (struct{}, error) { poolInitVal = n; return struct{}{}, nil })
	poolReadInit = executor.Register("aio.pool_test.readInit", func(int) (int, error) { return poolInitVal, nil })
	poolGate     = executor.Register("aio.pool_test.gate", func(g poolFileGate) (int, error) {
		f, err := os.OpenFile(filepath.Join(g.Dir, "ran"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			return 0, err
		}
		fmt.Fprintln(f, g.I)
		f.Close()
		if g.Wait {
			if err := os.WriteFile(filepath.Join(g.Dir, "started"), nil, 0o600); err != nil {
				return 0, err
			}
			if !waitFile(filepath.Join(g.Dir, "release"), 30*time.Second) {
				return 0, errors.New("never released")
			}
		}
		return g.I, nil
	})
)

// waitFile polls for path for up to d.
func waitFile(path string, d time.Duration) bool {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			return true
		}
	}
	return false
}

func newTestPool(t testing.TB, opts aio.PoolOptions) *aio.Pool {
	t.Helper()
	p, err := aio.NewPool(opts)
	if err != nil {
		t.Fatalf("NewPool(%+v) = %v", opts, err)
	}
	t.Cleanup(func() {
		p.Terminate()
		if err := p.Join(); err != nil {
			t.Errorf("Join() after Terminate = %v", err)
		}
	})
	return p
}

func ints(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

func squares(xs []int) []int {
	out := make([]int, len(xs))
	for i, x := range xs {
		out[i] = x * x
	}
	return out
}

// collect runs an Imap iterator to its end.
func collect[R any](seq func(yield func(R, error) bool)) ([]R, error) {
	var out []R
	for v, err := range seq {
		if err != nil {
			return out, err
		}
		out = append(out, v)
	}
	return out, nil
}

// test_apply
func TestPoolApply(t *testing.T) {
	p := newTestPool(t, aio.PoolOptions{Processes: 2})
	if v, err := aio.Apply(p, poolSquare, 5); v != 25 || err != nil {
		t.Errorf("Apply(square, 5) = %d, %v; want 25, nil", v, err)
	}
	f := aio.ApplyAsync(p, poolPow, powArgs{2, 10})
	if v, err := f.Result(context.Background()); v != 1024 || err != nil {
		t.Errorf("ApplyAsync(pow, 2, 10).Result() = %d, %v; want 1024, nil", v, err)
	}
	_, err := aio.Apply(p, poolOddFails, 3)
	var re *executor.RemoteError
	if !errors.As(err, &re) || !errors.Is(err, errPoolOdd) || re.Item != 0 {
		t.Errorf("Apply(oddFails, 3) = %v; want a RemoteError matching errPoolOdd, Item 0", err)
	}
}

// test_map
func TestPoolMap(t *testing.T) {
	p := newTestPool(t, aio.PoolOptions{Processes: 2})
	for _, n := range []int{1, 10, 100, 1001} {
		got, err := aio.Map(p, poolSquare, ints(n), 0)
		if err != nil {
			t.Fatalf("Map(square, range(%d)) = %v", n, err)
		}
		if diff := cmp.Diff(squares(ints(n)), got); diff != "" {
			t.Errorf("Map(square, range(%d)) mismatch (-want +got):\n%s", n, diff)
		}
	}
	got, err := aio.MapAsync(p, poolSquare, ints(100), 20).Result(context.Background())
	if err != nil || !cmp.Equal(squares(ints(100)), got) {
		t.Errorf("MapAsync(square, range(100), 20).Result() = %v, %v", got, err)
	}
}

// test_map_chunksize: every chunk size gives the same result; with
// MaxTasksPerChild 1 every chunk runs in a process of its own, which shows
// the chunks (test_maxtasksperchild).
func TestPoolMapChunksize(t *testing.T) {
	p := newTestPool(t, aio.PoolOptions{Processes: 2, MaxTasksPerChild: 1})
	for _, tc := range []struct {
		n, chunksize, chunks int
	}{
		{10, 1, 10},
		{10, 3, 4},
		{10, 10, 1},
		{10, 100, 1}, // larger than the input
		{100, 0, 8},  // Python's default: ceil(100 / (4*2)) = 13
		{100, -5, 8}, // so is a negative one
		{7, 0, 7},    // ceil(7/8) = 1
		{33, 0, 7},   // ceil(33/8) = 5
		{1, -1, 1},   // one item
		{16, 16, 1},  // exactly one chunk
		{17, 16, 2},  // and one over
		{2, 1 << 30, 1},
	} {
		pids, err := aio.Map(p, poolPid, ints(tc.n), tc.chunksize)
		if err != nil {
			t.Fatalf("Map(pid, range(%d), %d) = %v", tc.n, tc.chunksize, err)
		}
		if len(pids) != tc.n {
			t.Fatalf("Map(pid, range(%d), %d) gave %d results", tc.n, tc.chunksize, len(pids))
		}
		// Runs of one pid are the chunks; every chunk has a process of
		// its own.
		runs := 0
		seen := map[int]bool{}
		for i, pid := range pids {
			if i == 0 || pid != pids[i-1] {
				runs++
				if seen[pid] {
					t.Errorf("Map(pid, range(%d), %d): pid %d ran two chunks with MaxTasksPerChild 1", tc.n, tc.chunksize, pid)
				}
				seen[pid] = true
			}
		}
		if runs != tc.chunks {
			t.Errorf("Map(pid, range(%d), %d) ran %d chunks; want %d", tc.n, tc.chunksize, runs, tc.chunks)
		}
	}
}

// test_imap
func TestPoolImap(t *testing.T) {
	p := newTestPool(t, aio.PoolOptions{Processes: 2})
	for _, chunksize := range []int{1, 7, 0, 1000} {
		got, err := collect(aio.Imap(p, poolSquare, ints(100), chunksize))
		if err != nil || !cmp.Equal(squares(ints(100)), got) {
			t.Errorf("Imap(square, range(100), %d) = %v, %v", chunksize, got, err)
		}
	}
	// Breaking out early cancels the rest; the pool goes on.
	n := 0
	for v, err := range aio.Imap(p, poolSquare, ints(1000), 1) {
		if err != nil || v != n*n {
			t.Fatalf("Imap item %d = %d, %v", n, v, err)
		}
		if n++; n == 5 {
			break
		}
	}
	if v, err := aio.Apply(p, poolSquare, 9); v != 81 || err != nil {
		t.Errorf("Apply after a broken-off Imap = %d, %v", v, err)
	}
	// Like a Python iterator, it yields once.
	seq := aio.Imap(p, poolSquare, ints(3), 1)
	if got, err := collect(seq); err != nil || !cmp.Equal([]int{0, 1, 4}, got) {
		t.Errorf("Imap(square, range(3)) = %v, %v", got, err)
	}
	if got, err := collect(seq); err != nil || len(got) != 0 {
		t.Errorf("Imap ranged over again = %v, %v; want nothing", got, err)
	}
	useq := aio.ImapUnordered(p, poolSquare, ints(3), 1)
	if got, err := collect(useq); err != nil || len(got) != 3 {
		t.Errorf("ImapUnordered(square, range(3)) = %v, %v", got, err)
	}
	if got, err := collect(useq); err != nil || len(got) != 0 {
		t.Errorf("ImapUnordered ranged over again = %v, %v; want nothing", got, err)
	}
}

// Items and results of interface type cross as the types they hold.
func TestPoolMapInterface(t *testing.T) {
	p := newTestPool(t, aio.PoolOptions{Processes: 2})
	items := []any{1, "two", 3.5, []byte("four"), nil}
	got, err := aio.Map(p, poolAnyEcho, items, 2)
	if diff := cmp.Diff(items, got); err != nil || diff != "" {
		t.Errorf("Map(anyEcho, %v) = %v, %v (-want +got):\n%s", items, got, err, diff)
	}
}

// test_imap_unordered: every result once; a slow chunk comes last.
func TestPoolImapUnordered(t *testing.T) {
	p := newTestPool(t, aio.PoolOptions{Processes: 2})
	got, err := collect(aio.ImapUnordered(p, poolSquare, ints(100), 3))
	slices.Sort(got)
	if err != nil || !cmp.Equal(squares(ints(100)), got) {
		t.Errorf("ImapUnordered(square, range(100), 3), sorted = %v, %v", got, err)
	}
	// Item 0 waits until item 1 has been yielded: in order, it would wait
	// for ever (30 s, then fail).
	dir := t.TempDir()
	items := []poolFileGate{{Dir: dir, I: 0, Wait: true}, {Dir: dir, I: 1}}
	var order []int
	for v, err := range aio.ImapUnordered(p, poolGate, items, 1) {
		if err != nil {
			t.Fatalf("ImapUnordered(gate) = %v", err)
		}
		order = append(order, v)
		if v == 1 {
			if !waitFile(filepath.Join(dir, "started"), 30*time.Second) {
				t.Fatal("item 0 never started")
			}
			if err := os.WriteFile(filepath.Join(dir, "release"), nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	if diff := cmp.Diff([]int{1, 0}, order); diff != "" {
		t.Errorf("ImapUnordered order mismatch (-want +got):\n%s", diff)
	}
}

// test_starmap: Go has no *args; a function of two arguments takes a
// struct, and starmap is Map.
func TestStarmap(t *testing.T) {
	p := newTestPool(t, aio.PoolOptions{Processes: 2})
	args := []powArgs{{2, 0}, {2, 1}, {2, 8}, {3, 3}, {10, 2}}
	got, err := aio.Map(p, poolPow, args, 2)
	if diff := cmp.Diff([]int{1, 2, 256, 27, 100}, got); err != nil || diff != "" {
		t.Errorf("Map(pow, args) = %v, %v (-want +got):\n%s", got, err, diff)
	}
}

// test_async_timeout: a ctx deadline ends the wait, not the call.
func TestPoolAsyncTimeout(t *testing.T) {
	p := newTestPool(t, aio.PoolOptions{Processes: 1})
	f := aio.ApplyAsync(p, poolSleep, 300*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := f.Result(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Result(20ms ctx) = %v; want context.DeadlineExceeded", err)
	}
	if v, err := f.Result(context.Background()); v != 300 || err != nil {
		t.Errorf("Result() after the timeout = %d, %v; want 300, nil", v, err)
	}
	mf := aio.MapAsync(p, poolSleep, []time.Duration{100 * time.Millisecond, 100 * time.Millisecond}, 1)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel2()
	if _, err := mf.Result(ctx2); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("MapAsync Result(20ms ctx) = %v; want context.DeadlineExceeded", err)
	}
	if v, err := mf.Result(context.Background()); !cmp.Equal([]int{100, 100}, v) || err != nil {
		t.Errorf("MapAsync Result() after the timeout = %v, %v", v, err)
	}
}

// test_terminate: every pending call ends, none waits for its sleep.
func TestPoolTerminate(t *testing.T) {
	p, err := aio.NewPool(aio.PoolOptions{Processes: 2})
	if err != nil {
		t.Fatal(err)
	}
	var fs []*executor.Future[int]
	for range 20 {
		fs = append(fs, aio.ApplyAsync(p, poolSleep, 10*time.Second))
	}
	mapDone := make(chan error, 1)
	go func() {
		_, err := aio.Map(p, poolSleep, slices.Repeat([]time.Duration{10 * time.Second}, 10), 1)
		mapDone <- err
	}()
	started := time.Now()
	// Let the workers start and take a call each.
	for deadline := time.Now().Add(30 * time.Second); !fs[0].Running() || !fs[1].Running(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the first calls never started")
		}
	}
	p.Terminate()
	for i, f := range fs {
		_, err := f.Result(context.Background())
		if !errors.Is(err, executor.ErrCancelled) && !errors.Is(err, executor.ErrBrokenProcessPool) {
			t.Errorf("call %d after Terminate = %v; want ErrCancelled or ErrBrokenProcessPool", i, err)
		}
	}
	if err := <-mapDone; !errors.Is(err, executor.ErrCancelled) && !errors.Is(err, executor.ErrBrokenProcessPool) && !errors.Is(err, aio.ErrPoolNotRunning) {
		t.Errorf("Map after Terminate = %v; want ErrCancelled, ErrBrokenProcessPool or ErrPoolNotRunning", err)
	}
	if err := p.Join(); err != nil {
		t.Errorf("Join() = %v", err)
	}
	if d := time.Since(started); d > 5*time.Second {
		t.Errorf("Terminate and Join took %v; want well under the calls' 10 s", d)
	}
	if _, err := aio.Apply(p, poolSquare, 2); !errors.Is(err, aio.ErrPoolNotRunning) {
		t.Errorf("Apply after Terminate = %v; want ErrPoolNotRunning", err)
	}
}

// test_initializer
func TestPoolInitializer(t *testing.T) {
	p := newTestPool(t, aio.PoolOptions{Processes: 2, Initializer: poolInit.Bind(42)})
	got, err := aio.Map(p, poolReadInit, ints(10), 1)
	if err != nil || !cmp.Equal(slices.Repeat([]int{42}, 10), got) {
		t.Errorf("Map(readInit) = %v, %v; want 42 everywhere", got, err)
	}
}

// test_maxtasksperchild: a worker is replaced after that many tasks.
func TestPoolMaxTasksPerChild(t *testing.T) {
	p := newTestPool(t, aio.PoolOptions{Processes: 1, MaxTasksPerChild: 2})
	pids := map[int]int{}
	for range 6 {
		pid, err := aio.Apply(p, poolPid, 0)
		if err != nil {
			t.Fatal(err)
		}
		pids[pid]++
	}
	if len(pids) != 3 {
		t.Errorf("6 calls with MaxTasksPerChild 2 ran in %d processes (%v); want 3", len(pids), pids)
	}
}

// test_map_unplicklable and errors: the first failed item by the items'
// order, with its index; an argument gob cannot send fails the Map.
func TestPoolMapErrors(t *testing.T) {
	p := newTestPool(t, aio.PoolOptions{Processes: 2})
	for _, tc := range []struct {
		name      string
		items     []int
		chunksize int
		item      int // RemoteError.Item
		panic     bool
	}{
		{"one odd", []int{0, 2, 4, 6, 8, 10, 12, 7, 14}, 3, 8, false},
		{"first chunk", []int{1, 2, 4}, 2, 1, false},
		{"chunk of one", []int{0, 2, 4, 5}, 1, 4, false},
		{"two odd", []int{0, 2, 4, 5, 6, 8, 9, 10}, 2, 4, false},
		{"panic", []int{0, 2, 4, 6, 13, 3}, 4, 5, true},
		{"default chunks", append(slices.Repeat([]int{2}, 99), 3), 0, 100, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check := func(what string, err error) {
				t.Helper()
				var re *executor.RemoteError
				if !errors.As(err, &re) {
					t.Fatalf("%s = %v; want a RemoteError", what, err)
				}
				if re.Item != tc.item || re.Panic != tc.panic {
					t.Errorf("%s: RemoteError.Item, Panic = %d, %v; want %d, %v", what, re.Item, re.Panic, tc.item, tc.panic)
				}
				if !tc.panic && (!errors.Is(err, errPoolOdd) || re.Message != fmt.Sprintf("item %d: %v", tc.items[tc.item-1], errPoolOdd)) {
					t.Errorf("%s = %q; want item %d's own error", what, err, tc.items[tc.item-1])
				}
			}
			got, err := aio.Map(p, poolOddFails, tc.items, tc.chunksize)
			if got != nil {
				t.Errorf("Map() = %v with its error; want nil", got)
			}
			check("Map()", err)
			_, err = collect(aio.Imap(p, poolOddFails, tc.items, tc.chunksize))
			check("Imap()", err)
		})
	}
	// A later chunk that fails first (fast) does not hide an earlier one.
	_, err := aio.Map(p, poolSlowOdd, []int{1, 0, 0, 0, 2, 3}, 3)
	var re *executor.RemoteError
	if !errors.As(err, &re) || re.Item != 1 {
		t.Errorf("Map(slowOdd) = %v; want item 0's error (Item 1)", err)
	}
	// test_map_unplicklable: gob cannot send a func.
	_, err = aio.Map(p, poolAny, []any{1, "two", func() {}}, 1)
	if err == nil || !strings.Contains(err.Error(), "cannot send") {
		t.Errorf("Map(any, [1, two, func]) = %v; want an error saying it cannot send the argument", err)
	}
	if v, err := aio.Apply(p, poolSquare, 3); v != 9 || err != nil {
		t.Errorf("Apply after failed Maps = %d, %v; want 9, nil", v, err)
	}
}

// test_empty_iterable
func TestPoolEmptyIterable(t *testing.T) {
	p := newTestPool(t, aio.PoolOptions{Processes: 1})
	for _, items := range [][]int{nil, {}} {
		got, err := aio.Map(p, poolSquare, items, 0)
		if err != nil || got == nil || len(got) != 0 {
			t.Errorf("Map(square, %#v) = %#v, %v; want [], nil", items, got, err)
		}
		if got, err := collect(aio.Imap(p, poolSquare, items, 1)); len(got) != 0 || err != nil {
			t.Errorf("Imap(square, %#v) = %v, %v; want nothing", items, got, err)
		}
		if got, err := collect(aio.ImapUnordered(p, poolSquare, items, 1)); len(got) != 0 || err != nil {
			t.Errorf("ImapUnordered(square, %#v) = %v, %v; want nothing", items, got, err)
		}
	}
}

// test_context: Python's with-statement terminates the pool; work after
// it fails.
func TestPoolContext(t *testing.T) {
	p, err := aio.NewPool(aio.PoolOptions{Processes: 1})
	if err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() { p.Terminate(); _ = p.Join() }()
		if v, err := aio.Apply(p, poolSquare, 4); v != 16 || err != nil {
			t.Errorf("Apply in the block = %d, %v", v, err)
		}
	}()
	if _, err := aio.Apply(p, poolSquare, 4); !errors.Is(err, aio.ErrPoolNotRunning) || !errors.Is(err, executor.ErrShutdown) {
		t.Errorf("Apply after the block = %v; want ErrPoolNotRunning (wrapping ErrShutdown)", err)
	}
	if _, err := aio.Map(p, poolSquare, ints(3), 1); !errors.Is(err, aio.ErrPoolNotRunning) {
		t.Errorf("Map after the block = %v; want ErrPoolNotRunning", err)
	}
	if _, err := collect(aio.Imap(p, poolSquare, ints(3), 1)); !errors.Is(err, aio.ErrPoolNotRunning) {
		t.Errorf("Imap after the block = %v; want ErrPoolNotRunning", err)
	}
	if _, err := collect(aio.ImapUnordered(p, poolSquare, ints(3), 1)); !errors.Is(err, aio.ErrPoolNotRunning) {
		t.Errorf("ImapUnordered after the block = %v; want ErrPoolNotRunning", err)
	}
}

// Join before Close is Python's ValueError("Pool is still running"); after
// Close it waits for the work taken.
func TestPoolJoinBeforeClose(t *testing.T) {
	p, err := aio.NewPool(aio.PoolOptions{Processes: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Join(); !errors.Is(err, aio.ErrPoolRunning) {
		t.Errorf("Join() before Close = %v; want ErrPoolRunning", err)
	}
	f := aio.MapAsync(p, poolSleep, []time.Duration{50 * time.Millisecond, 50 * time.Millisecond, 50 * time.Millisecond}, 1)
	p.Close()
	if _, err := aio.Apply(p, poolSquare, 2); !errors.Is(err, aio.ErrPoolNotRunning) {
		t.Errorf("Apply after Close = %v; want ErrPoolNotRunning", err)
	}
	if err := p.Join(); err != nil {
		t.Errorf("Join() after Close = %v", err)
	}
	if !f.Done() {
		t.Errorf("Join() returned before the Map taken before Close was done")
	}
	if v, err := f.Result(context.Background()); err != nil || !cmp.Equal([]int{50, 50, 50}, v) {
		t.Errorf("Map taken before Close = %v, %v", v, err)
	}
	p.Close() // twice: nothing
	if err := p.Join(); err != nil {
		t.Errorf("second Join() = %v", err)
	}
}

func TestZeroPool(t *testing.T) {
	var p aio.Pool
	if _, err := aio.Apply(&p, poolSquare, 2); !errors.Is(err, aio.ErrPoolNotRunning) {
		t.Errorf("zero Pool: Apply = %v; want ErrPoolNotRunning", err)
	}
	if _, err := aio.Map(&p, poolSquare, ints(3), 0); !errors.Is(err, aio.ErrPoolNotRunning) {
		t.Errorf("zero Pool: Map = %v; want ErrPoolNotRunning", err)
	}
	p.Close()
	p.Terminate()
	if err := p.Join(); err != nil {
		t.Errorf("zero Pool: Join = %v", err)
	}
	if _, err := aio.NewPool(aio.PoolOptions{Processes: -1}); err == nil {
		t.Errorf("NewPool(Processes: -1) = nil error")
	}
	if _, err := aio.NewPool(aio.PoolOptions{MaxTasksPerChild: -1}); err == nil {
		t.Errorf("NewPool(MaxTasksPerChild: -1) = nil error")
	}
}

func TestPoolCoro(t *testing.T) {
	p := newTestPool(t, aio.PoolOptions{Processes: 2})
	if _, err := aio.CoroApply(context.Background(), p, poolSquare, 2); !errors.Is(err, loop.ErrNoRunningLoop) {
		t.Errorf("CoroApply outside a task = %v; want ErrNoRunningLoop", err)
	}
	if _, err := aio.CoroMap(context.Background(), p, poolSquare, ints(2), 0); !errors.Is(err, loop.ErrNoRunningLoop) {
		t.Errorf("CoroMap outside a task = %v; want ErrNoRunningLoop", err)
	}
	_, err := loop.Run(context.Background(), func(ctx context.Context) (struct{}, error) {
		// The loop keeps running tasks while the calls run.
		ticks := 0
		ticker := loop.Spawn(ctx, func(ctx context.Context) (struct{}, error) {
			for {
				if err := loop.Sleep(ctx, time.Millisecond); err != nil {
					return struct{}{}, err
				}
				ticks++
			}
		})
		if v, err := aio.CoroApply(ctx, p, poolSleep, 50*time.Millisecond); v != 50 || err != nil {
			t.Errorf("CoroApply(sleep 50ms) = %d, %v", v, err)
		}
		got, err := aio.CoroMap(ctx, p, poolSquare, ints(1000), 0)
		if err != nil || !cmp.Equal(squares(ints(1000)), got) {
			t.Errorf("CoroMap(square, range(1000)) = %v, %v", got, err)
		}
		if _, err := aio.CoroMap(ctx, p, poolOddFails, []int{2, 3}, 1); !errors.Is(err, errPoolOdd) {
			t.Errorf("CoroMap(oddFails) = %v; want errPoolOdd", err)
		}
		ticker.Cancel()
		_, _ = ticker.Await(ctx)
		if ticks < 10 {
			t.Errorf("the loop ran a 1 ms ticker %d times during a 50 ms CoroApply; want it never blocked", ticks)
		}
		return struct{}{}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Cancelling a task awaiting CoroMap cancels the chunks not yet started.
func TestPoolCoroMapCancel(t *testing.T) {
	p := newTestPool(t, aio.PoolOptions{Processes: 1})
	dir := t.TempDir()
	items := []poolFileGate{{Dir: dir, I: 0, Wait: true}}
	for i := 1; i < 20; i++ {
		items = append(items, poolFileGate{Dir: dir, I: i})
	}
	_, err := loop.Run(context.Background(), func(ctx context.Context) (struct{}, error) {
		task := loop.Spawn(ctx, func(ctx context.Context) ([]int, error) { return aio.CoroMap(ctx, p, poolGate, items, 1) })
		for _, err := os.Stat(filepath.Join(dir, "started")); err != nil; _, err = os.Stat(filepath.Join(dir, "started")) {
			if err := loop.Sleep(ctx, time.Millisecond); err != nil {
				return struct{}{}, err
			}
		}
		task.Cancel()
		if _, err := task.Await(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled CoroMap = %v; want a cancellation", err)
		}
		return struct{}{}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "release"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// One worker, FIFO: once this call returns, any chunk left would have run.
	if v, err := aio.Apply(p, poolSquare, 3); v != 9 || err != nil {
		t.Fatalf("Apply after the cancelled CoroMap = %d, %v", v, err)
	}
	ran, err := os.ReadFile(filepath.Join(dir, "ran"))
	if err != nil {
		t.Fatal(err)
	}
	// Item 1 may have run too: the pool sends a worker the next chunk
	// ahead of the one it runs, and that one has started, as the call
	// CPython's ProcessPoolExecutor queues ahead (EXTRA_QUEUED_CALLS).
	got := strings.Fields(string(ran))
	if !cmp.Equal([]string{"0"}, got) && !cmp.Equal([]string{"0", "1"}, got) {
		t.Errorf("items that ran = %v; want item 0 (and the chunk sent ahead, 1), the rest cancelled", got)
	}
}

// Map, Imap and ImapUnordered against a plain loop, on random inputs and
// chunk sizes.
func TestPoolRandomized(t *testing.T) {
	p := newTestPool(t, aio.PoolOptions{Processes: 2})
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 1))
	for range 40 {
		items := make([]int, r.IntN(300))
		for i := range items {
			items[i] = r.IntN(2000) - 1000
		}
		chunksize := r.IntN(40) - 5
		fails := r.IntN(4) == 0 && len(items) > 0
		if fails {
			for i := range items {
				items[i] &^= 1 // even
			}
			items[r.IntN(len(items))] = 4*r.IntN(50) + 3 // odd, never 13 (a panic)
		}
		fn := poolSquare
		if fails {
			fn = poolOddFails
		}
		// The reference model.
		var want []int
		wantItem := 0
		for i, x := range items {
			if fails && x%2 != 0 {
				wantItem = i + 1
				break
			}
			if fails {
				want = append(want, x)
			} else {
				want = append(want, x*x)
			}
		}
		what := fmt.Sprintf("%d items, chunksize %d, fails %v", len(items), chunksize, fails)
		checkErr := func(fn string, err error) {
			t.Helper()
			var re *executor.RemoteError
			switch {
			case !fails && err != nil:
				t.Errorf("%s(%s) = %v", fn, what, err)
			case fails && (!errors.As(err, &re) || re.Item != wantItem):
				t.Errorf("%s(%s) = %v; want item %d's error", fn, what, err, wantItem)
			}
		}
		got, err := aio.Map(p, fn, items, chunksize)
		checkErr("Map", err)
		if !fails && !cmp.Equal(want, got, cmpEmpty) {
			t.Errorf("Map(%s) mismatch:\n%s", what, cmp.Diff(want, got, cmpEmpty))
		}
		got, err = aio.MapAsync(p, fn, items, chunksize).Result(context.Background())
		checkErr("MapAsync", err)
		if !fails && !cmp.Equal(want, got, cmpEmpty) {
			t.Errorf("MapAsync(%s) mismatch:\n%s", what, cmp.Diff(want, got, cmpEmpty))
		}
		got, err = collect(aio.Imap(p, fn, items, chunksize))
		checkErr("Imap", err)
		if !fails && !cmp.Equal(want, got, cmpEmpty) {
			t.Errorf("Imap(%s) mismatch:\n%s", what, cmp.Diff(want, got, cmpEmpty))
		}
		// Before the error, Imap yields exactly the results before the
		// failing chunk.
		if fails {
			size := max(chunksize, 1) // imap's default chunksize is 1
			n := (wantItem - 1) / size * size
			if !cmp.Equal(want[:n], got, cmpEmpty) {
				t.Errorf("Imap(%s) before its error = %v; want %v", what, got, want[:n])
			}
		}
		got, err = collect(aio.ImapUnordered(p, fn, items, chunksize))
		if !fails {
			checkErr("ImapUnordered", err)
			slices.Sort(got)
			sorted := slices.Sorted(slices.Values(want))
			if !cmp.Equal(sorted, got, cmpEmpty) {
				t.Errorf("ImapUnordered(%s), sorted, mismatch:\n%s", what, cmp.Diff(sorted, got, cmpEmpty))
			}
		} else if !errors.Is(err, errPoolOdd) {
			t.Errorf("ImapUnordered(%s) = %v; want errPoolOdd", what, err)
		}
	}
}

// cmpEmpty makes nil and empty slices equal.
var cmpEmpty = cmp.Comparer(func(a, b []int) bool { return slices.Equal(a, b) })

// Many Maps at once while a worker is SIGKILLed: every one ends, with its
// result or ErrBrokenProcessPool, and nothing hangs.
func TestPoolStress(t *testing.T) {
	for round := range 3 {
		p := newTestPool(t, aio.PoolOptions{Processes: 2})
		pid, err := aio.Apply(p, poolPid, 0)
		if err != nil {
			t.Fatal(err)
		}
		const callers = 8
		var wg sync.WaitGroup
		errs := make(chan error, callers*100)
		start := make(chan struct{})
		for c := range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for i := range 50 {
					items := ints(50 + 37*c + i)
					var got []int
					var err error
					switch i % 3 {
					case 0:
						got, err = aio.Map(p, poolSquare, items, 1+i%7)
					case 1:
						got, err = collect(aio.Imap(p, poolSquare, items, 1+i%7))
					default:
						got, err = collect(aio.ImapUnordered(p, poolSquare, items, 1+i%7))
						slices.Sort(got)
					}
					if err != nil {
						errs <- err
						return
					}
					if !cmp.Equal(squares(items), got) {
						errs <- fmt.Errorf("caller %d map %d: wrong results", c, i)
						return
					}
				}
			}()
		}
		close(start)
		time.Sleep([]time.Duration{time.Millisecond, 15 * time.Millisecond, 50 * time.Millisecond}[round])
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Logf("kill %d: %v (it was replaced already)", pid, err)
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			t.Fatal("Maps still running 60 s after a worker was killed")
		}
		close(errs)
		broken := 0
		for err := range errs {
			if errors.Is(err, executor.ErrBrokenProcessPool) {
				broken++
				continue
			}
			t.Errorf("round %d: a Map ended with %v; want its result or ErrBrokenProcessPool", round, err)
		}
		t.Logf("round %d: %d of %d callers saw the pool break", round, broken, callers)
		if _, err := aio.Apply(p, poolSquare, 1); !errors.Is(err, executor.ErrBrokenProcessPool) {
			t.Errorf("round %d: Apply after a worker was killed = %v; want ErrBrokenProcessPool", round, err)
		}
	}
}

// BenchmarkPoolMap: Map of 100,000 ints (x*x) on 2 warm workers at
// chunksize 100 (Python twin: multiprocessing.Pool(2).map(square,
// range(100_000), chunksize=100), 2.7–3.0 M items/s on this machine).
func BenchmarkPoolMap(b *testing.B) {
	p := newTestPool(b, aio.PoolOptions{Processes: 2})
	items := ints(100_000)
	if _, err := aio.Map(p, poolSquare, items, 100); err != nil { // both workers up
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if _, err := aio.Map(p, poolSquare, items, 100); err != nil {
			b.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N*len(items))/elapsed.Seconds(), "items/s")
}

// BenchmarkPoolMapChunkFloor is BenchmarkPoolMap's work without aio: the
// same 1,000 chunk calls (executor.Func.BindChunk) submitted to a
// processpool.Pool of 2 workers and waited for in order. The difference
// to BenchmarkPoolMap is what Map adds.
func BenchmarkPoolMapChunkFloor(b *testing.B) {
	pp, err := processpool.New(processpool.Options{MaxWorkers: 2})
	if err != nil {
		b.Fatal(err)
	}
	defer pp.Shutdown(true, true)
	items := ints(100_000)
	run := func() {
		fs := make([]*executor.Future[[]int], 0, len(items)/100)
		for lo := 0; lo < len(items); lo += 100 {
			f, err := executor.Submit(pp, poolSquare.BindChunk(items[lo:lo+100]))
			if err != nil {
				b.Fatal(err)
			}
			fs = append(fs, f)
		}
		for _, f := range fs {
			if _, err := f.Result(context.Background()); err != nil {
				b.Fatal(err)
			}
		}
	}
	run() // both workers up
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		run()
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N*len(items))/elapsed.Seconds(), "items/s")
}

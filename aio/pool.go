package aio

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/executor/processpool"
	"github.com/asyncgo/asyncgo/loop"
)

// Errors of a Pool, as the ValueErrors Python's multiprocessing.Pool
// raises.
var (
	// ErrPoolNotRunning is ValueError("Pool not running"): work given to a
	// Pool after Close or Terminate (or to the zero Pool). It wraps
	// executor.ErrShutdown.
	ErrPoolNotRunning = fmt.Errorf("aio: Pool not running: %w", executor.ErrShutdown)
	// ErrPoolRunning is ValueError("Pool is still running"): Join before
	// Close or Terminate.
	ErrPoolRunning = errors.New("aio: Pool is still running")
)

// PoolOptions configure a Pool, as multiprocessing.Pool's arguments.
type PoolOptions struct {
	// Processes is the number of worker processes (processes); 0 means
	// runtime.NumCPU (Python's None: os.process_cpu_count()).
	Processes int
	// Initializer, if set, runs first in each worker process
	// (initializer, with initargs bound: a registered function's Bind). If
	// it fails, the pool breaks: its calls fail with
	// executor.ErrBrokenProcessPool, where Python would restart the worker
	// for ever.
	Initializer executor.Call[struct{}]
	// MaxTasksPerChild, if set, replaces a worker process after it has run
	// that many tasks (maxtasksperchild); as in Python, a chunk of a Map
	// is one task. 0 means never (Python's None).
	MaxTasksPerChild int
}

// Pool is multiprocessing.Pool, and aioprocessing's AioPool: registered
// functions (executor.Register) run in worker processes, re-executions of
// this binary, which must call executor.Init first thing in main. It is a
// thin layer over processpool.Pool, which owns the processes: workers start
// as work arrives, up to Processes, and take tasks from one FIFO queue, one
// at a time; what processpool documents about failures holds here (a
// worker that dies breaks the pool, every pending call then fails with
// executor.ErrBrokenProcessPool, and nothing hangs).
//
// Apply runs one call; Map, Imap and ImapUnordered split their items into
// chunks, each one task that crosses to a worker as one []A and back as
// one []R (executor.Func.BindChunk), which is what makes a map of small
// items fast. An error returned or panicked in a worker arrives as an
// *executor.RemoteError; for an item of a Map, its Item field is 1 + the
// item's index in the input. The Coro twins (CoroApply, CoroMap) await
// from a loop task without blocking the loop.
//
// Items come as a slice, not an iterable: the default chunk size needs
// their number, which Python's map gets by making a list of them. There
// is no Starmap (nor CoroStarmap): Go has no *args, so a function of
// several arguments takes one struct, and Python's starmap(f, [(a, b),
// ...]) is Map(p, f, []Args{{a, b}, ...}, 0) (see TestStarmap).
//
// A task costs a round trip to a worker process, during which that worker
// runs nothing else (processpool gives a worker one call at a time): 20 to
// 45 µs on a 2-core machine with both workers busy. Chunks of about a
// hundred small items amortise it: BenchmarkPoolMap maps 100,000 ints at
// chunksize 100 at about 4 M items/s on 2 workers, where Python's
// Pool.map does 2.8 M.
//
// A Pool is ended by Close or Terminate, then Join, which waits until its
// processes have exited and its goroutines have ended; Python's
// with-statement, which terminates, is a deferred Terminate and Join. All
// methods are safe for concurrent use. The zero Pool is not running: its
// calls fail with ErrPoolNotRunning, and Close, Terminate and Join do
// nothing.
type Pool struct {
	pp      *processpool.Pool
	workers int

	closed atomic.Bool // Close or Terminate was called
}

// NewPool is multiprocessing.Pool(processes, initializer, initargs,
// maxtasksperchild). It fails for a negative Processes or
// MaxTasksPerChild, an Initializer that is not a registered function's
// Bind, in a worker process whose main does not call executor.Init, and
// off Linux (an error wrapping errors.ErrUnsupported); see processpool.New.
// No process starts until work arrives.
func NewPool(opts PoolOptions) (*Pool, error) {
	pp, err := processpool.New(processpool.Options{
		MaxWorkers:       opts.Processes,
		Initializer:      opts.Initializer,
		MaxTasksPerChild: opts.MaxTasksPerChild,
	})
	if err != nil {
		return nil, err
	}
	return &Pool{pp: pp, workers: pp.MaxWorkers()}, nil
}

// Close is Pool.close: the pool takes no more work; what it has already
// taken runs to the end, and then the worker processes exit. Join waits
// for them.
func (p *Pool) Close() {
	if p.pp == nil {
		return
	}
	p.closed.Store(true)
	p.pp.Shutdown(false, false)
}

// Terminate is Pool.terminate: the pool takes no more work and its worker
// processes are killed now (SIGKILL). Every pending call still ends, where
// Python's may wait for ever: one not yet started fails with
// executor.ErrCancelled, one running with executor.ErrBrokenProcessPool,
// and a Map fails with the error of its first unfinished chunk. Join waits
// for the processes to be reaped.
func (p *Pool) Terminate() {
	if p.pp == nil {
		return
	}
	p.closed.Store(true)
	p.pp.Kill(syscall.SIGKILL)
}

// Join is Pool.join: it waits until every worker process has exited and
// every goroutine of the pool has ended, after Close (once the work taken
// has run) or Terminate. Called while the pool is running it returns
// ErrPoolRunning, as Python raises ValueError.
func (p *Pool) Join() error {
	if p.pp == nil {
		return nil
	}
	if !p.closed.Load() {
		return ErrPoolRunning
	}
	p.pp.Shutdown(true, false)
	return nil
}

// submit submits c, or returns why the pool refuses it.
func submit[R any](p *Pool, c executor.Call[R]) (*executor.Future[R], error) {
	if p.pp == nil || p.closed.Load() { // Python says so even of a broken pool
		return nil, ErrPoolNotRunning
	}
	f, err := executor.Submit(p.pp, c)
	if errors.Is(err, executor.ErrShutdown) {
		err = ErrPoolNotRunning
	}
	return f, err
}

func failed[R any](err error) *executor.Future[R] {
	f := executor.NewFuture[R]()
	_ = f.SetErr(err)
	return f
}

// Apply is Pool.apply: f(a) in a worker process; it waits for the result.
func Apply[A, R any](p *Pool, f *executor.Func[A, R], a A) (R, error) {
	return ApplyAsync(p, f, a).Result(context.Background())
}

// ApplyAsync is Pool.apply_async: it submits f(a) and returns the future
// of its result (Python's AsyncResult: Result(ctx) is get(timeout), Done
// is ready; Python's callback and error_callback are its AddDoneCallback).
// The future can be cancelled until a worker takes the call. A pool that
// is not running returns a future failed with ErrPoolNotRunning, a broken
// one a future failed with its executor.ErrBrokenProcessPool error.
func ApplyAsync[A, R any](p *Pool, f *executor.Func[A, R], a A) *executor.Future[R] {
	cf, err := submit(p, f.Bind(a))
	if err != nil {
		return failed[R](err)
	}
	return cf
}

// CoroApply is AioPool.coro_apply: Apply awaited from a loop task, whose
// ctx it takes; the loop runs other tasks meanwhile. Cancelling the
// awaiting task cancels the call if no worker has taken it yet; a running
// call runs on and its result is dropped. ctx must be a task's (else
// loop.ErrNoRunningLoop).
func CoroApply[A, R any](ctx context.Context, p *Pool, f *executor.Func[A, R], a A) (R, error) {
	l, err := loop.RunningLoop(ctx)
	if err != nil {
		var zero R
		return zero, err
	}
	return loop.WrapFuture(l, ApplyAsync(p, f, a)).Await(ctx)
}

// Map is Pool.map: f on every item, in worker processes, the results in
// the items' order. The items go in chunks of chunksize, each one task (one
// call carrying the chunk's items); chunksize <= 0 means Python's default,
// len(items) / (4 * Processes) rounded up. Map fails with the error of the
// first item, in the items' order, that failed (an *executor.RemoteError
// whose Item is 1 + its index; Python's map raises the first to arrive),
// or of the first chunk the pool failed; chunks not yet started are then
// cancelled, and running ones finish unseen. Empty items give an empty
// result.
func Map[A, R any](p *Pool, f *executor.Func[A, R], items []A, chunksize int) ([]R, error) {
	// MapAsync's result, gathered here: waiting for each chunk in turn in
	// the netpoller costs less than completing one future from the
	// chunks' callbacks (4.3 against 3.8 M items/s in BenchmarkPoolMap).
	chunks, size, submitErr := submitChunks(p, f, items, chunksize)
	defer cancelAll(chunks)
	out := make([]R, 0, len(items))
	for k, cf := range chunks {
		v, err := cf.Result(context.Background())
		if err != nil {
			return nil, itemErr(err, k*size)
		}
		out = append(out, v...)
	}
	if submitErr != nil {
		return nil, submitErr
	}
	return out, nil
}

// MapAsync is Pool.map_async: Map's work, submitted at once, and the
// future of its result, completed from the chunks' done callbacks.
// Cancelling the future cancels every chunk not yet started; those
// running finish and their results are dropped. The items are copied (as
// values): the caller may reuse the slice at once.
func MapAsync[A, R any](p *Pool, f *executor.Func[A, R], items []A, chunksize int) *executor.Future[[]R] {
	m := newMapJob[R](p, len(items), chunksize)
	if m.nchunks == 0 {
		return m.agg
	}
	items = slices.Clone(items)
	m.agg.AddDoneCallback(func(agg *executor.Future[[]R]) {
		if agg.Cancelled() {
			m.cancelFrom(-1, true)
		}
	})
	for k := range m.nchunks {
		m.mu.Lock()
		stop := m.finished || m.errAt < k
		m.mu.Unlock()
		if stop {
			break
		}
		lo, hi := m.bounds(k)
		cf, err := submit(p, f.BindChunk(items[lo:hi]))
		if err != nil {
			m.chunkEnded(k, nil, err)
			break
		}
		m.mu.Lock()
		m.chunks[k] = cf
		late := m.finished || m.errAt < k
		m.mu.Unlock()
		if late { // an earlier chunk failed meanwhile
			cf.Cancel()
		}
		cf.AddDoneCallback(func(cf *executor.Future[[]R]) {
			v, err := cf.Result(context.Background()) // done: returns at once
			m.chunkEnded(k, v, err)
		})
	}
	return m.agg
}

// CoroMap is AioPool.coro_map: Map awaited from a loop task, whose ctx it
// takes; the loop runs other tasks meanwhile. Cancelling the awaiting task
// cancels the chunks not yet started; ctx must be a task's (else
// loop.ErrNoRunningLoop).
func CoroMap[A, R any](ctx context.Context, p *Pool, f *executor.Func[A, R], items []A, chunksize int) ([]R, error) {
	l, err := loop.RunningLoop(ctx)
	if err != nil {
		return nil, err
	}
	return loop.WrapFuture(l, MapAsync(p, f, items, chunksize)).Await(ctx)
}

// Imap is Pool.imap: Map's work, submitted at once, its results yielded in
// the items' order as their chunks finish. At the first error (an item's,
// as Map reports it, or a chunk's) it yields the error and stops; it and
// breaking out of the loop cancel the chunks not yet started. Like
// Python's iterator it yields once: ranging over it again yields nothing.
// The items are copied, as MapAsync's are. A chunksize <= 0 is imap's
// default, 1 (Map's default is computed from the number of items).
func Imap[A, R any](p *Pool, f *executor.Func[A, R], items []A, chunksize int) iter.Seq2[R, error] {
	chunks, size, submitErr := submitChunks(p, f, items, imapChunk(chunksize))
	var used atomic.Bool
	return func(yield func(R, error) bool) {
		if used.Swap(true) {
			return
		}
		defer cancelAll(chunks)
		for k, cf := range chunks {
			v, err := cf.Result(context.Background())
			if err != nil {
				var zero R
				yield(zero, itemErr(err, k*size))
				return
			}
			for _, r := range v {
				if !yield(r, nil) {
					return
				}
			}
		}
		if submitErr != nil {
			var zero R
			yield(zero, submitErr)
		}
	}
}

// ImapUnordered is Pool.imap_unordered: Imap, its results yielded chunk
// by chunk in the order the chunks finish (a chunk's own in its items'
// order). The first error to arrive is yielded last; it too yields once.
// A chunksize <= 0 is 1, as Imap's.
func ImapUnordered[A, R any](p *Pool, f *executor.Func[A, R], items []A, chunksize int) iter.Seq2[R, error] {
	type ended struct {
		k  int
		cf *executor.Future[[]R]
	}
	chunks, size, submitErr := submitChunks(p, f, items, imapChunk(chunksize))
	finished := make(chan ended, len(chunks)) // room for every chunk: a callback never blocks
	for k, cf := range chunks {
		cf.AddDoneCallback(func(cf *executor.Future[[]R]) { finished <- ended{k, cf} })
	}
	var used atomic.Bool
	return func(yield func(R, error) bool) {
		if used.Swap(true) {
			return
		}
		defer cancelAll(chunks)
		for range chunks {
			e := <-finished
			v, err := e.cf.Result(context.Background())
			if err != nil {
				var zero R
				yield(zero, itemErr(err, e.k*size))
				return
			}
			for _, r := range v {
				if !yield(r, nil) {
					return
				}
			}
		}
		if submitErr != nil {
			var zero R
			yield(zero, submitErr)
		}
	}
}

// imapChunk is Python's imap chunksize: 1 unless given.
func imapChunk(chunksize int) int { return max(chunksize, 1) }

// submitChunks submits items in chunks for Imap: the chunks' futures in
// order, up to the first the Pool refused (submitErr), and the chunk size.
func submitChunks[A, R any](p *Pool, f *executor.Func[A, R], items []A, chunksize int) (chunks []*executor.Future[[]R], size int, submitErr error) {
	n := len(items)
	size = chunkSize(p, n, chunksize)
	if n == 0 {
		if p.pp == nil || p.closed.Load() {
			return nil, size, ErrPoolNotRunning // Python checks before it looks at the items
		}
		return nil, size, nil
	}
	items = slices.Clone(items)
	chunks = make([]*executor.Future[[]R], 0, (n+size-1)/size)
	for lo := 0; lo < n; lo += size {
		cf, err := submit(p, f.BindChunk(items[lo:min(n, lo+size)]))
		if err != nil {
			return chunks, size, err
		}
		chunks = append(chunks, cf)
	}
	return chunks, size, nil
}

func cancelAll[R any](fs []*executor.Future[R]) {
	for _, f := range fs {
		f.Cancel()
	}
}

// chunkSize is Python's Pool._map_async rule: chunksize, or by default n
// divided by 4 tasks per worker, rounded up.
func chunkSize(p *Pool, n, chunksize int) int {
	if chunksize > 0 {
		return chunksize
	}
	workers := max(p.workers, 1)
	return max(1, (n+4*workers-1)/(4*workers))
}

// itemErr is a chunk's error as Map reports it: a worker's error for one
// item, its Item made the index in the whole input (off is the chunk's
// first item).
func itemErr(err error, off int) error {
	re, ok := err.(*executor.RemoteError)
	if !ok || re.Item == 0 || off == 0 {
		return err
	}
	c := *re // the chunk's future keeps its own
	c.Item += off
	return &c
}

// mapJob gathers MapAsync's chunks into its future, agg: it completes
// once every chunk has succeeded, or with the error of the first failed
// chunk once every chunk before it has succeeded.
type mapJob[R any] struct {
	agg     *executor.Future[[]R]
	size    int
	n       int
	nchunks int

	mu       sync.Mutex
	out      []R
	chunks   []*executor.Future[[]R]
	ended    []bool
	next     int // chunks[:next] have succeeded
	errAt    int // the first failed chunk, or nchunks
	err      error
	finished bool // agg is completed or cancelled
}

func newMapJob[R any](p *Pool, n, chunksize int) *mapJob[R] {
	m := &mapJob[R]{agg: executor.NewFuture[[]R](), n: n, size: chunkSize(p, n, chunksize)}
	if n == 0 {
		if p.pp == nil || p.closed.Load() {
			_ = m.agg.SetErr(ErrPoolNotRunning)
		} else {
			_ = m.agg.SetResult([]R{})
		}
		return m
	}
	m.nchunks = (n + m.size - 1) / m.size
	m.errAt = m.nchunks
	m.out = make([]R, n)
	m.chunks = make([]*executor.Future[[]R], m.nchunks)
	m.ended = make([]bool, m.nchunks)
	return m
}

func (m *mapJob[R]) bounds(k int) (lo, hi int) { return k * m.size, min(m.n, (k+1)*m.size) }

// chunkEnded records chunk k's result v or error err, and completes agg
// if that decides it.
func (m *mapJob[R]) chunkEnded(k int, v []R, err error) {
	m.mu.Lock()
	if m.finished || m.ended[k] {
		m.mu.Unlock()
		return
	}
	m.ended[k] = true
	failedFirst := false
	if err != nil {
		if k < m.errAt {
			m.errAt, m.err = k, itemErr(err, k*m.size)
			failedFirst = true
		}
	} else if k < m.errAt {
		lo, _ := m.bounds(k)
		copy(m.out[lo:], v)
	}
	for m.next < m.errAt && m.ended[m.next] {
		m.next++
	}
	done := m.next == m.errAt
	if done {
		m.finished = true
	}
	out, merr := m.out, m.err
	m.mu.Unlock()
	if failedFirst {
		m.cancelFrom(k, false)
	}
	if !done {
		return
	}
	if merr != nil {
		_ = m.agg.SetErr(merr)
	} else {
		_ = m.agg.SetResult(out) // ErrInvalidState if agg was cancelled meanwhile
	}
}

// cancelFrom cancels the chunks after k (all of them for k = -1), and
// marks agg finished if stop.
func (m *mapJob[R]) cancelFrom(k int, stop bool) {
	m.mu.Lock()
	if stop {
		m.finished = true
	}
	var fs []*executor.Future[[]R]
	for _, cf := range m.chunks[k+1:] {
		if cf != nil {
			fs = append(fs, cf)
		}
	}
	m.mu.Unlock()
	cancelAll(fs) // their callbacks take m.mu
}

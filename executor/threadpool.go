package executor

import (
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/asyncgo/asyncgo/executor/internal/workgroup"
)

// ThreadPoolOptions configure a ThreadPool, as ThreadPoolExecutor's
// arguments.
type ThreadPoolOptions struct {
	// MaxWorkers bounds the goroutines running calls; 0 means Python's
	// default, min(32, NumCPU+4).
	MaxWorkers int
	// Initializer, if set, runs at the start of each worker goroutine; if
	// it fails, the pool breaks: pending futures fail with
	// ErrBrokenThreadPool and Submit refuses new work.
	Initializer func() error
}

// ThreadPool is concurrent.futures.ThreadPoolExecutor: calls run on at
// most MaxWorkers goroutines, started as work arrives and kept until
// Shutdown. Submit never blocks: work waits in a FIFO queue. A panic in a
// call, or runtime.Goexit, becomes its future's *PanicError (a goroutine
// lost to Goexit is replaced). Safe for concurrent use.
//
// The zero ThreadPool is ThreadPoolExecutor(): a pool of
// DefaultThreadWorkers goroutines with no initializer, ready to use. A
// ThreadPool must not be copied after first use.
//
// A ThreadPool dropped without Shutdown does not keep its goroutines:
// once it is unreachable (its idle goroutines do not hold it), the garbage
// collector shuts it down as Shutdown(false, false) would, so queued calls
// still run and every goroutine then ends. Python joins a dropped pool's
// threads at exit instead; Go has no exit hook, and a goroutine kept
// forever is a leak.
type ThreadPool struct {
	p atomic.Pointer[threadPool]
}

// threadPool is a ThreadPool's state. Its worker goroutines refer to it
// and not to the ThreadPool, so that a ThreadPool nobody holds can be
// collected, and its cleanup then shuts this down.
type threadPool struct {
	mu       sync.Mutex
	cond     sync.Cond
	queue    []Job
	max      int
	started  int
	idle     int
	shutdown bool
	broken   error
	init     func() error
	g        workgroup.Group
}

// DefaultThreadWorkers is Python's default for ThreadPoolExecutor.
func DefaultThreadWorkers() int { return min(32, runtime.NumCPU()+4) }

// NewThreadPool returns a ThreadPool. It returns an error for a negative
// MaxWorkers.
func NewThreadPool(opts ThreadPoolOptions) (*ThreadPool, error) {
	if opts.MaxWorkers < 0 {
		return nil, errMaxWorkers
	}
	tp := new(ThreadPool)
	tp.adopt(newThreadPool(opts))
	return tp, nil
}

func newThreadPool(opts ThreadPoolOptions) *threadPool {
	p := &threadPool{max: opts.MaxWorkers, init: opts.Initializer}
	if p.max == 0 {
		p.max = DefaultThreadWorkers()
	}
	p.cond.L = &p.mu
	return p
}

// adopt makes p tp's state, unless tp has one already, and returns tp's
// state.
func (tp *ThreadPool) adopt(p *threadPool) *threadPool {
	if !tp.p.CompareAndSwap(nil, p) {
		return tp.p.Load() // another goroutine's first use of a zero pool won
	}
	runtime.AddCleanup(tp, (*threadPool).release, p)
	return p
}

// pool returns tp's state, making it on the first use of a zero pool.
func (tp *ThreadPool) pool() *threadPool {
	if p := tp.p.Load(); p != nil {
		return p
	}
	return tp.adopt(newThreadPool(ThreadPoolOptions{}))
}

// release is the cleanup of a ThreadPool that became unreachable.
func (p *threadPool) release() { p.Shutdown(false, false) }

// MaxWorkers returns the bound on worker goroutines.
func (tp *ThreadPool) MaxWorkers() int { return tp.pool().max }

// SubmitJob implements Executor: Submit and SubmitFunc call it.
func (tp *ThreadPool) SubmitJob(j Job) error {
	err := tp.pool().SubmitJob(j)
	// tp must not be collected, and shut down by its cleanup, before the
	// job is queued.
	runtime.KeepAlive(tp)
	return err
}

// Shutdown stops the pool; see Executor. Queued calls still run unless
// cancelFutures. With wait, it returns once every worker goroutine has
// ended; called from a worker goroutine (a call, or a done callback run
// there), it waits for all the others, and the caller's goroutine ends
// once its call returns and the queue is empty. If a worker goroutine
// panicked outside a call (a bug in the pool: a panic in a call is that
// call's error), Shutdown with wait re-panics it, with its stack. On a
// zero pool never used it only refuses later work.
func (tp *ThreadPool) Shutdown(wait, cancelFutures bool) { tp.pool().Shutdown(wait, cancelFutures) }

func (p *threadPool) SubmitJob(j Job) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.broken != nil {
		return p.broken
	}
	if p.shutdown {
		return ErrShutdown
	}
	p.queue = append(p.queue, j)
	if p.idle > 0 {
		p.cond.Signal()
	}
	// A signalled worker stays idle until it runs: start another if the
	// queue outnumbers the idle workers.
	if len(p.queue) > p.idle && p.started < p.max {
		p.startWorkerLocked()
	}
	return nil
}

func (p *threadPool) startWorkerLocked() {
	p.started++
	team := new(int) // each worker goroutine is its own team
	p.g.Go(team, p.worker)
}

func (p *threadPool) worker() {
	const (
		starting = iota // running the initializer
		serving
		done
	)
	state := starting
	defer func() {
		switch state {
		case done:
			return
		case starting: // the initializer called runtime.Goexit
			p.breakPool("a thread initializer failed, the thread pool is not usable anymore", NewPanicError(0, ErrGoexit))
			return
		}
		if r := recover(); r != nil {
			// A bug in the pool (a call's own panic is its error): break
			// the pool before anything else runs, then let the group
			// catch the panic for Shutdown.
			p.breakPool("a worker goroutine of the thread pool panicked", NewPanicError(0, r))
			panic(r)
		}
		// runtime.Goexit in a call (RunLocal failed its future): this
		// goroutine ends, so another takes over the queue.
		p.mu.Lock()
		p.started--
		if len(p.queue) > p.idle && p.started < p.max && p.broken == nil {
			p.startWorkerLocked()
		}
		p.mu.Unlock()
	}()
	if p.init != nil {
		if _, err := callSafely(func() (struct{}, error) { return struct{}{}, p.init() }); err != nil {
			state = done
			p.breakPool("a thread initializer failed, the thread pool is not usable anymore", err)
			return
		}
	}
	state = serving
	p.mu.Lock()
	for {
		for len(p.queue) == 0 && !p.shutdown && p.broken == nil {
			p.idle++
			p.cond.Wait()
			p.idle--
		}
		if len(p.queue) == 0 || p.broken != nil {
			p.mu.Unlock()
			state = done
			return
		}
		j := p.queue[0]
		p.queue[0] = nil
		p.queue = p.queue[1:]
		p.mu.Unlock()
		if j.Start() {
			j.RunLocal()
		}
		p.mu.Lock()
	}
}

func (p *threadPool) breakPool(msg string, cause error) {
	p.mu.Lock()
	if p.broken == nil {
		p.broken = &BrokenError{Base: ErrBrokenThreadPool, Msg: "executor: " + msg, Cause: cause}
	}
	q := p.queue
	p.queue = nil
	broken := p.broken
	p.cond.Broadcast()
	p.mu.Unlock()
	for _, j := range q {
		j.Fail(broken)
	}
}

func (p *threadPool) Shutdown(wait, cancelFutures bool) {
	p.mu.Lock()
	p.shutdown = true
	var cancelled []Job
	if cancelFutures {
		cancelled = p.queue
		p.queue = nil
	}
	p.cond.Broadcast()
	p.mu.Unlock()
	for _, j := range cancelled {
		j.Cancel()
	}
	if wait {
		p.g.Wait()
		p.g.Repanic()
	}
}

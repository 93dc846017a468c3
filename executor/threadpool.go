package executor

import (
	"runtime"
	"sync"

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
type ThreadPool struct {
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
	p := &ThreadPool{max: opts.MaxWorkers, init: opts.Initializer}
	if p.max == 0 {
		p.max = DefaultThreadWorkers()
	}
	p.cond.L = &p.mu
	return p, nil
}

// MaxWorkers returns the bound on worker goroutines.
func (p *ThreadPool) MaxWorkers() int { return p.max }

// SubmitJob implements Executor: Submit and SubmitFunc call it.
func (p *ThreadPool) SubmitJob(j Job) error {
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

func (p *ThreadPool) startWorkerLocked() {
	p.started++
	team := new(int) // each worker goroutine is its own team
	p.g.Go(team, p.worker)
}

func (p *ThreadPool) worker() {
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

func (p *ThreadPool) breakPool(msg string, cause error) {
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

// Shutdown stops the pool; see Executor. Queued calls still run unless
// cancelFutures. With wait, it returns once every worker goroutine has
// ended; called from a worker goroutine (a call, or a done callback run
// there), it waits for all the others, and the caller's goroutine ends
// once its call returns and the queue is empty. If a worker goroutine
// panicked outside a call (a bug in the pool: a panic in a call is that
// call's error), Shutdown with wait re-panics it, with its stack.
func (p *ThreadPool) Shutdown(wait, cancelFutures bool) {
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

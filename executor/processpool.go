package executor

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/asyncgo/asyncgo/internal/child"
	"github.com/asyncgo/asyncgo/internal/wire"
	"golang.org/x/sys/unix"
)

// ProcessPoolOptions configure a ProcessPool, as ProcessPoolExecutor's
// arguments.
type ProcessPoolOptions struct {
	// MaxWorkers is the number of worker processes; 0 means NumCPU.
	MaxWorkers int
	// Initializer, if set, runs first in each worker process; if it fails
	// the worker exits and the pool breaks. It must be a registered
	// function's Bind.
	Initializer Call[struct{}]
	// MaxTasksPerChild, if set, replaces a worker process after it has run
	// that many calls (Python 3.11).
	MaxTasksPerChild int
}

// ProcessPool is concurrent.futures.ProcessPoolExecutor: registered
// functions run in worker processes, re-executions of this binary (see
// Init). Workers start as work arrives, up to MaxWorkers, and each runs
// one call at a time; work waits in a FIFO queue and can be cancelled until
// a worker takes it.
//
// If a worker dies (killed, crashed), every pending future fails with
// ErrBrokenProcessPool, the other workers are killed and the pool refuses
// new work, as in Python: nothing hangs. Workers die with the pool's
// process, and Shutdown leaves no process, zombie or goroutine behind.
// Safe for concurrent use.
type ProcessPool struct {
	mu          sync.Mutex
	max         int
	maxTasks    int
	initializer Call[struct{}]
	workers     map[*worker]struct{}
	idle        []*worker
	starting    int
	queue       []job
	shutdown    bool
	broken      error
	spawner     *child.Spawner
	wg          sync.WaitGroup // one per worker goroutine
	closeOnce   sync.Once
}

type worker struct {
	p     *ProcessPool
	proc  *child.Process
	wr    *wire.Writer
	rd    *wire.Reader
	cur   job
	seq   uint64
	tasks int
	dying bool // closed on purpose: EOF is expected
}

// NewProcessPool returns a ProcessPool; no process starts until work is
// submitted. It returns an error for a negative MaxWorkers or
// MaxTasksPerChild, or an Initializer that is not a registered function.
func NewProcessPool(opts ProcessPoolOptions) (*ProcessPool, error) {
	if opts.MaxWorkers < 0 {
		return nil, errMaxWorkers
	}
	if opts.MaxTasksPerChild < 0 {
		return nil, errMaxTasksPerChild
	}
	if opts.Initializer.local != nil && opts.Initializer.name == "" {
		return nil, fmt.Errorf("%w (Initializer)", ErrNotRegisteredCall)
	}
	p := &ProcessPool{
		max:         opts.MaxWorkers,
		maxTasks:    opts.MaxTasksPerChild,
		initializer: opts.Initializer,
		workers:     map[*worker]struct{}{},
		spawner:     child.NewSpawner(),
	}
	if p.max == 0 {
		p.max = runtime.NumCPU()
	}
	return p, nil
}

// MaxWorkers returns the number of worker processes the pool may run.
func (p *ProcessPool) MaxWorkers() int { return p.max }

// Pids returns the process ids of the live workers.
func (p *ProcessPool) Pids() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	var pids []int
	for w := range p.workers {
		pids = append(pids, w.proc.Cmd.Process.Pid)
	}
	return pids
}

func (p *ProcessPool) submit(j job) error {
	if j.callName() == "" {
		return ErrNotRegisteredCall
	}
	j.pollWait()
	p.mu.Lock()
	if p.broken != nil {
		p.mu.Unlock()
		return p.broken
	}
	if p.shutdown {
		p.mu.Unlock()
		return ErrShutdown
	}
	if n := len(p.idle); n > 0 {
		w := p.idle[n-1]
		p.idle = p.idle[:n-1]
		j.start()
		w.cur = j
		p.mu.Unlock()
		w.send(j)
		return nil
	}
	p.queue = append(p.queue, j)
	if len(p.workers)+p.starting < p.max {
		p.startWorkerLocked()
	}
	p.mu.Unlock()
	return nil
}

func (p *ProcessPool) startWorkerLocked() {
	p.starting++
	p.wg.Add(1)
	go p.runWorker()
}

// runWorker starts a worker process and serves it until it ends.
func (p *ProcessPool) runWorker() {
	defer p.wg.Done()
	proc, err := p.spawner.Start(workerRole)
	if err != nil {
		p.mu.Lock()
		p.starting--
		p.mu.Unlock()
		p.breakPool(err)
		return
	}
	w := &worker{p: p, proc: proc, wr: wire.NewWriter(proc.Ctrl), rd: wire.NewReader(proc.Ctrl)}
	if p.initializer.name != "" {
		if err := w.wr.Send(request{ID: 0, Fn: p.initializer.name}, p.initializer.arg); err != nil {
			w.kill()
			w.proc.Ctrl.Close()
			_ = w.proc.Wait()
			p.mu.Lock()
			p.starting--
			p.mu.Unlock()
			p.breakPool(fmt.Errorf("initializer: %w", err))
			return
		}
	}
	p.mu.Lock()
	p.starting--
	p.workers[w] = struct{}{}
	p.mu.Unlock()
	w.next()
	w.serve()
}

// send writes j to the worker; if it cannot be encoded, j fails and the
// worker takes the next job.
func (w *worker) send(j job) {
	w.seq++
	err := w.wr.Send(request{ID: w.seq, Fn: j.callName()}, j.callArg())
	if err == nil {
		return
	}
	var ee *wire.EncodeError
	if errors.As(err, &ee) {
		j.fail(fmt.Errorf("executor: cannot send the argument of %s: %w", j.callName(), ee.Err))
		w.p.mu.Lock()
		w.cur = nil
		w.p.mu.Unlock()
		w.next()
		return
	}
	// A write error means the worker is dead; serve will notice.
}

// next gives the worker the next queued job, or parks it as idle, or
// retires it if the pool is shutting down with nothing left to do.
func (w *worker) next() {
	p := w.p
	p.mu.Lock()
	for len(p.queue) > 0 {
		j := p.queue[0]
		p.queue[0] = nil
		p.queue = p.queue[1:]
		if j.start() {
			w.cur = j
			p.mu.Unlock()
			w.send(j)
			return
		}
	}
	if p.shutdown || p.broken != nil {
		w.dying = true
		p.mu.Unlock()
		w.proc.Ctrl.Close()
		return
	}
	p.idle = append(p.idle, w)
	p.mu.Unlock()
}

// serve reads the worker's responses until it exits.
func (w *worker) serve() {
	p := w.p
	for {
		if err := w.rd.Next(); err != nil {
			break
		}
		var resp response
		if err := w.rd.Decode(&resp); err != nil {
			break
		}
		p.mu.Lock()
		j := w.cur
		w.cur = nil
		p.mu.Unlock()
		if j == nil || resp.ID != w.seq {
			break // protocol error: treat as a dead worker
		}
		if resp.Resync {
			w.wr.Reset()
		}
		failed := resp.Err
		var err error
		unreadable := false
		if failed == nil {
			if derr := j.decode(w.rd); derr != nil {
				// One binary runs on both sides, so the types agree: a
				// stream that still cannot be read means a worker to
				// replace, not a pool to break.
				err = fmt.Errorf("executor: cannot decode the result of %s: %w", j.callName(), derr)
				unreadable = true
			}
		} else {
			err = failed
		}
		// The worker takes its next call before j's future completes: the
		// child starts on it while this goroutine wakes j's waiters, and a
		// waiter that submits again at once finds the worker idle.
		w.tasks++
		retire := unreadable || p.maxTasks > 0 && w.tasks >= p.maxTasks
		if retire {
			p.mu.Lock()
			w.dying = true
			delete(p.workers, w) // so a Submit from now on starts a new one
			replace := len(p.queue) > 0 && !p.shutdown && p.broken == nil
			if replace {
				p.startWorkerLocked()
			}
			p.mu.Unlock()
			w.proc.Ctrl.Close()
		} else {
			w.next()
		}
		if err != nil {
			j.fail(err)
		} else {
			j.succeed()
		}
		if retire {
			break
		}
	}
	w.reap()
}

// reap waits for the worker process and, if it died unexpectedly, breaks
// the pool.
func (w *worker) reap() {
	p := w.p
	p.mu.Lock()
	delete(p.workers, w)
	for i, iw := range p.idle {
		if iw == w {
			p.idle = append(p.idle[:i], p.idle[i+1:]...)
			break
		}
	}
	dying := w.dying
	cur := w.cur
	w.cur = nil
	p.mu.Unlock()
	if !dying {
		w.kill()
	}
	w.proc.Ctrl.Close()
	done := make(chan struct{})
	go func() {
		select {
		case <-done:
		case <-time.After(5 * time.Second): // a graceful exit that never came
			w.proc.KillGroup(syscall.SIGKILL)
		}
	}()
	err := w.proc.Wait() // anything the worker started goes with it
	close(done)
	if !dying {
		cause := fmt.Errorf("worker %d: %v", w.proc.Cmd.Process.Pid, err)
		if cur != nil {
			cur.fail(p.brokenErr(cause))
		}
		p.breakPool(cause)
	}
}

func (w *worker) kill() {
	w.proc.KillGroup(syscall.SIGKILL)
	_ = w.proc.Cmd.Process.Kill()
}

func (p *ProcessPool) brokenErr(cause error) error {
	return &brokenError{base: ErrBrokenProcessPool, msg: "a process in the process pool was terminated abruptly while the future was running or pending", cause: cause}
}

// breakPool marks the pool broken, fails every pending future and kills
// every worker.
func (p *ProcessPool) breakPool(cause error) {
	p.mu.Lock()
	if p.broken == nil {
		p.broken = &brokenError{base: ErrBrokenProcessPool, msg: "a child process terminated abruptly, the process pool is not usable anymore", cause: cause}
	}
	q := p.queue
	p.queue = nil
	var running []job
	var victims []*worker
	for w := range p.workers {
		if w.cur != nil {
			running = append(running, w.cur)
			w.cur = nil
		}
		if !w.dying {
			w.dying = true
			victims = append(victims, w)
		}
	}
	p.idle = nil
	p.mu.Unlock()
	err := p.brokenErr(cause)
	for _, j := range q {
		j.fail(err)
	}
	for _, j := range running {
		j.fail(err)
	}
	for _, w := range victims {
		w.kill()
	}
}

// Shutdown stops the pool; see Executor. Queued calls still run unless
// cancelFutures; then the workers exit. With wait, Shutdown returns once
// every worker process has been reaped.
func (p *ProcessPool) Shutdown(wait, cancelFutures bool) {
	p.mu.Lock()
	p.shutdown = true
	var cancelled []job
	if cancelFutures {
		cancelled = p.queue
		p.queue = nil
	}
	var idle []*worker
	if len(p.queue) == 0 {
		idle = p.idle
		p.idle = nil
		for _, w := range idle {
			w.dying = true
		}
	}
	p.mu.Unlock()
	for _, j := range cancelled {
		j.cancel()
	}
	for _, w := range idle {
		w.proc.Ctrl.Close()
	}
	finish := func() {
		p.wg.Wait()
		p.closeOnce.Do(p.spawner.Close)
	}
	if wait {
		finish()
	} else {
		go finish()
	}
}

// Kill is Python 3.14's kill_workers: it sends sig to every worker
// process (SIGKILL if 0); the pool then breaks as if they had died.
func (p *ProcessPool) Kill(sig syscall.Signal) {
	if sig == 0 {
		sig = syscall.SIGKILL
	}
	p.mu.Lock()
	var pids []int
	for w := range p.workers {
		pids = append(pids, w.proc.Cmd.Process.Pid)
	}
	p.mu.Unlock()
	for _, pid := range pids {
		_ = unix.Kill(pid, sig)
	}
}

package processpool

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/executor/internal/workgroup"
	"github.com/asyncgo/asyncgo/internal/child"
	"github.com/asyncgo/asyncgo/internal/eventfd"
	"github.com/asyncgo/asyncgo/internal/wire"
	"github.com/sourcegraph/conc/panics"
)

// DefaultStartTimeout is how long a new worker may take to answer its start
// handshake when Options.StartTimeout is 0.
const DefaultStartTimeout = 30 * time.Second

// reapGrace is how long a worker whose control socket closed may take to
// exit before it is killed.
const reapGrace = 5 * time.Second

var (
	errMaxWorkers       = errors.New("processpool: max_workers must be greater than 0")
	errMaxTasksPerChild = errors.New("processpool: max_tasks_per_child must be >= 1")
)

// Options configure a Pool, as ProcessPoolExecutor's arguments.
type Options struct {
	// MaxWorkers is the number of worker processes; 0 means NumCPU.
	MaxWorkers int
	// Initializer, if set, runs first in each worker process; if it fails
	// the worker exits and the pool breaks. It must be a registered
	// function's Bind.
	Initializer executor.Call[struct{}]
	// MaxTasksPerChild, if set, replaces a worker process after it has run
	// that many calls (Python 3.11).
	MaxTasksPerChild int
	// StartTimeout bounds the time from starting a worker process to its
	// start handshake, which it sends from executor.Init; 0 means
	// DefaultStartTimeout. A worker that does not answer in time (its main
	// does not call executor.Init first thing, or hangs before it) is
	// killed and the pool breaks.
	StartTimeout time.Duration
}

// ErrZeroPool is what a zero Pool's SubmitJob returns: a Pool is made by
// New.
var ErrZeroPool = errors.New("processpool: zero Pool: make it with New")

// Pool is concurrent.futures.ProcessPoolExecutor: registered functions run
// in worker processes, re-executions of this binary (see executor.Init).
// Workers start as work arrives, up to MaxWorkers, and each runs one call
// at a time; work waits in a FIFO queue and can be cancelled until a
// worker takes it.
//
// If a worker dies (killed, crashed), the pool is marked broken, then every
// pending future fails with ErrBrokenProcessPool, the other workers are
// killed and the pool refuses new work, as in Python: nothing hangs.
// Workers die with the pool's process, and Shutdown leaves no process,
// zombie or goroutine behind. Safe for concurrent use. The zero Pool is
// not usable: make one with New; its SubmitJob returns ErrZeroPool, and
// its Shutdown and Kill do nothing.
type Pool struct {
	mu           sync.Mutex
	max          int
	maxTasks     int
	initName     string
	initArg      any
	startTimeout time.Duration
	workers      map[*worker]struct{}
	idle         []*worker
	starting     int
	queue        []executor.Job
	shutdown     bool
	broken       error
	spawner      *child.Spawner
	g            workgroup.Group // the pool's goroutines; a worker's are one team
	closeOnce    sync.Once
}

// worker is one worker process and the two goroutines that serve it: its
// reader (which started it, reads its answers and gives it queued calls)
// and its sender (which sends a call Submit gave an idle worker, so that
// encoding and writing never happen on the submitter's goroutine: a loop's,
// through loop.RunInExecutor).
type worker struct {
	p    *Pool
	proc *child.Process
	wr   *wire.Writer
	rd   *wire.Reader
	wake *eventfd.FD // the sender waits on it

	// Guarded by p.mu.
	cur    executor.Job // the call the worker runs, or is about to
	seq    uint64       // cur's request id
	unsent bool         // cur is for the sender to send
	dying  bool         // closed on purpose: EOF is expected
	fault  error        // the panic that ended the reader, a bug

	// Calls ahead: while the worker runs a chunk of a Map (cur), the next
	// queued chunks are sent behind it (request ids seq+1, seq+2, ...),
	// so that the worker starts on the next as soon as it has answered
	// cur instead of waiting a round trip for it. Chunks only
	// (executor.IsChunkCall), and only when the queue holds a call per
	// worker: a call sent ahead waits for cur however long that runs, so
	// any other call is left to whichever worker is free first, as
	// Python's pools do (a call that waits for another one's effect must
	// not be stuck behind it). Up to aheadDepth, each provably small
	// (aheadLimit for the first, aheadExtraLimit for the others), written
	// in order by whichever goroutine holds sending.
	ahead   []aheadCall
	noMore  bool   // retire once the calls in flight are answered
	sending uint64 // the token of the goroutine writing a call (0: none): no other takes one ahead meanwhile, to keep their order
	sendTok uint64 // the last token given

	lastAnswer time.Time     // when the last answer came
	span       time.Duration // between the last two answers: short calls may go deeper ahead

	tasks int // calls answered; the reader's own
}

// aheadCall is a call sent ahead of the worker's current one.
type aheadCall struct {
	j   executor.Job
	seq uint64
	tok uint64 // the sending token of whoever writes it
}

// aheadDepth is how many chunks a worker may have sent ahead of the one it
// runs when its calls are short (answers come less than aheadShort apart;
// otherwise one). One hides the round trip only when a chunk runs longer
// than it: with trivial chunks the worker waited for the next most of the
// time (Pool.Map of x*x over 100,000 items, chunksize 100, 2 workers, one
// run: 4.6-5.6 M items/s with one ahead, 7.3-9.9 M with 4, 8.5-10.2 M with
// 8). Long chunks keep one: chunks queued behind a long one wait for it
// while another worker may be idle at the end of a Map.
const (
	aheadDepth = 8
	aheadShort = time.Millisecond
)

// aheadExtraLimit bounds the encoded size of each call ahead after the
// first, so that everything the reader writes ahead (aheadLimit, then at
// most aheadDepth-1 of these) fits in the socket's buffer together.
const aheadExtraLimit = 8 << 10

// takeAheadJobsLocked empties ahead, for the paths that fail its calls.
func (w *worker) takeAheadJobsLocked() []executor.Job {
	var jobs []executor.Job
	for _, a := range w.ahead {
		jobs = append(jobs, a.j)
	}
	clear(w.ahead)
	w.ahead = w.ahead[:0]
	return jobs
}

// New returns a Pool; no process starts until work is submitted. It
// returns an error for a negative MaxWorkers or MaxTasksPerChild, or an
// Initializer that is not a registered function; in a worker process whose
// main never called executor.Init (which would start pools of its own, and
// so on without end) an error that names the fix; and off Linux an error
// wrapping errors.ErrUnsupported.
func New(opts Options) (*Pool, error) {
	if err := child.CanSpawn(); err != nil {
		return nil, fmt.Errorf("processpool: %w", err)
	}
	if opts.MaxWorkers < 0 {
		return nil, errMaxWorkers
	}
	if opts.MaxTasksPerChild < 0 {
		return nil, errMaxTasksPerChild
	}
	if !opts.Initializer.IsZero() && opts.Initializer.Name() == "" {
		return nil, fmt.Errorf("%w (Initializer)", executor.ErrNotRegisteredCall)
	}
	p := &Pool{
		max:          opts.MaxWorkers,
		maxTasks:     opts.MaxTasksPerChild,
		initName:     opts.Initializer.Name(),
		initArg:      opts.Initializer.Arg(),
		startTimeout: opts.StartTimeout,
		workers:      map[*worker]struct{}{},
		spawner:      child.NewSpawner(),
	}
	if p.max == 0 {
		p.max = runtime.NumCPU()
	}
	if p.startTimeout <= 0 {
		p.startTimeout = DefaultStartTimeout
	}
	p.g.OnPanic = func(r *panics.Recovered) {
		p.breakPool(fmt.Errorf("a goroutine of the pool panicked: %w", &executor.PanicError{Recovered: *r}))
	}
	p.g.OnEmpty = p.closeSpawnerIfDone
	return p, nil
}

// MaxWorkers returns the number of worker processes the pool may run.
func (p *Pool) MaxWorkers() int { return p.max }

// Pids returns the process ids of the live workers, for display (signal
// them with Kill).
func (p *Pool) Pids() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	var pids []int
	for w := range p.workers {
		pids = append(pids, w.proc.Pid())
	}
	return pids
}

// SubmitJob implements executor.Executor: executor.Submit calls it. It
// queues the call, or hands it to an idle worker's own goroutine, which
// encodes and writes it: the caller never waits for a large argument. Only
// a provably small argument is sent on the caller's goroutine, a write that
// never blocks (see small.go).
func (p *Pool) SubmitJob(j executor.Job) error {
	if p.spawner == nil {
		return ErrZeroPool
	}
	if j.Name() == "" {
		return executor.ErrNotRegisteredCall
	}
	j.WaitInNetpoller()
	inline := small(j.Arg()) // see small.go; decided before taking the lock
	p.mu.Lock()
	if p.broken != nil {
		p.mu.Unlock()
		return p.broken
	}
	if p.shutdown {
		p.mu.Unlock()
		return executor.ErrShutdown
	}
	if n := len(p.idle); n > 0 {
		w := p.idle[n-1]
		p.idle = p.idle[:n-1]
		j.Start() // nobody else has j yet: it cannot be cancelled
		w.assignLocked(j)
		seq := w.seq
		w.unsent = !inline
		var tok uint64
		if inline {
			tok = w.holdLocked() // no call goes ahead of this one's write
		}
		p.mu.Unlock()
		if inline {
			w.sendInline(j, seq)
			w.sent(tok)
		} else {
			w.wake.Wake()
		}
		return nil
	}
	p.queue = append(p.queue, j)
	if len(p.workers)+p.starting < p.max {
		p.startWorkerLocked()
	}
	p.mu.Unlock()
	return nil
}

func (w *worker) assignLocked(j executor.Job) {
	w.cur = j
	w.seq++
}

func (p *Pool) startWorkerLocked() {
	p.starting++
	w := &worker{p: p}
	p.g.Go(w, w.run)
}

// run starts the worker process and serves it until it ends.
func (w *worker) run() {
	p := w.p
	if err := w.start(); err != nil {
		// One lock: a Submit in between must not start a worker in a
		// pool about to break.
		p.mu.Lock()
		p.starting--
		jobs, victims := p.breakLocked(err)
		p.mu.Unlock()
		p.finishBreak(err, jobs, victims)
		return
	}
	p.mu.Lock()
	p.starting--
	p.workers[w] = struct{}{}
	j, seq, retire := w.takeLocked()
	var tok uint64
	if j != nil {
		tok = w.holdLocked()
	}
	p.mu.Unlock()
	p.g.Go(w, w.sendLoop)
	if retire {
		w.proc.Ctrl.Close()
	}
	if j != nil {
		w.send(j, seq)
		w.sent(tok)
		w.sendAhead()
	}
	w.serveThenReap()
}

// serveThenReap serves the worker and then reaps it, even if serve panics
// (the process is reaped, the sender ends). A done callback that calls
// runtime.Goexit (t.FailNow in a test) ends this goroutine mid-serve, after
// its call completed: another goroutine of the worker's team carries on
// serving, and the worker lives on.
func (w *worker) serveThenReap() {
	returned := false
	defer func() {
		if r := recover(); r != nil {
			w.reap()
			panic(r)
		}
		if !returned {
			w.p.g.Go(w, w.serveThenReap)
			return
		}
		w.reap()
	}()
	w.serve()
	returned = true
}

// start starts the worker process, waits for its start handshake and sends
// the initializer. On failure the process is gone when it returns.
func (w *worker) start() error {
	p := w.p
	proc, err := p.spawner.Start(workerRole)
	if err != nil {
		return err
	}
	w.proc = proc
	w.wr = wire.NewWriter(proc.Ctrl)
	w.rd = wire.NewReader(proc.Ctrl)
	fail := func(what string, err error) error {
		w.kill()
		w.proc.Ctrl.Close()
		st, _ := w.proc.Wait()
		return fmt.Errorf("worker %d %s (%v; %v)", w.proc.Pid(), what, err, st)
	}
	if err := w.handshake(); err != nil {
		return fail("did not answer its start handshake: a worker's main must call executor.Init first thing (and so must TestMain's)", err)
	}
	if p.initName != "" {
		if err := w.wr.Send(request{ID: 0, Fn: p.initName}, p.initArg); err != nil {
			return fail("could not be sent its initializer", err)
		}
	}
	if w.wake, err = eventfd.New(); err != nil {
		return fail("has no wake-up", err)
	}
	return nil
}

// handshake reads the worker's hello, within the pool's StartTimeout.
func (w *worker) handshake() error {
	ctrl := w.proc.Ctrl
	if err := ctrl.SetReadDeadline(time.Now().Add(w.p.startTimeout)); err != nil {
		return err
	}
	if err := w.rd.Next(); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return fmt.Errorf("no answer within %v", w.p.startTimeout)
		}
		return err
	}
	var h hello
	if err := w.rd.Decode(&h); err != nil {
		return err
	}
	if h.Pid != w.proc.Pid() {
		return fmt.Errorf("the hello came from process %d", h.Pid)
	}
	return ctrl.SetReadDeadline(time.Time{})
}

// sendLoop sends the calls Submit gives the worker while it is idle, and
// the calls sent ahead: never the reader, which could then block on a
// write while the worker blocks writing it an answer.
func (w *worker) sendLoop() {
	p := w.p
	for w.wake.Wait(time.Time{}) == nil {
		p.mu.Lock()
		j, seq, ok := w.cur, w.seq, w.unsent
		w.unsent = false
		var tok uint64
		if ok {
			tok = w.holdLocked()
		}
		p.mu.Unlock()
		if ok {
			w.send(j, seq)
			w.sent(tok)
			w.sendAhead() // what the reader could not send meanwhile
		}
	}
}

// takeAheadLocked takes the next queued call as one sent ahead of cur,
// if there is room for it, and returns it (nil if none) for the caller to
// write, holding the write token.
func (w *worker) takeAheadLocked() *aheadCall {
	p := w.p
	depth := 1
	if w.span > 0 && w.span < aheadShort {
		depth = aheadDepth
	}
	if w.dying || w.noMore || w.cur == nil || w.unsent || w.sending != 0 || len(w.ahead) >= depth || p.broken != nil {
		return nil
	}
	if p.maxTasks > 0 && w.tasks+2+len(w.ahead) > p.maxTasks {
		return nil // the worker's last call is in flight
	}
	if !executor.IsChunkCall(w.cur.Name()) {
		return nil
	}
	limit := aheadLimit
	if len(w.ahead) > 0 {
		limit = aheadExtraLimit
	}
	for len(p.queue) > 0 && len(p.queue) >= len(p.workers)+p.starting && executor.IsChunkCall(p.queue[0].Name()) {
		j := p.queue[0]
		inline := fits(j.Arg(), limit)
		if !inline {
			// Only calls provably small, and so encodable, go ahead: a
			// large one is worth its round trip, and one that fails to
			// encode must not leave the worker's stream with a hole.
			return nil
		}
		p.queue[0] = nil
		p.queue = p.queue[1:]
		if j.Start() {
			seq := w.seq + 1
			if n := len(w.ahead); n > 0 {
				seq = w.ahead[n-1].seq + 1
			}
			a := aheadCall{j: j, seq: seq, tok: w.holdLocked()} // the caller writes it, then calls sent
			w.ahead = append(w.ahead, a)
			return &a
		}
	}
	return nil
}

// sendInline is send on the submitter's goroutine, for a small argument.
// If it cannot be encoded after all, the worker's own goroutine takes over:
// it fails the call and sends the next one, which may be large, so neither
// happens on the submitter's goroutine (a loop's, say).
func (w *worker) sendInline(j executor.Job, seq uint64) {
	err := w.wr.Send(request{ID: seq, Fn: j.Name()}, j.Arg())
	var ee *wire.EncodeError
	if err == nil || !errors.As(err, &ee) {
		return // sent, or the worker is dead, which its reader notices
	}
	p := w.p
	p.mu.Lock()
	if w.cur == j && w.seq == seq {
		w.unsent = true
	}
	p.mu.Unlock()
	w.wake.Wake()
}

// send writes request seq for j to the worker. A call whose argument cannot
// be encoded fails, and the worker takes the next; a write error means the
// worker is dead, which its reader notices.
func (w *worker) send(j executor.Job, seq uint64) {
	p := w.p
	for j != nil {
		err := w.wr.Send(request{ID: seq, Fn: j.Name()}, j.Arg())
		if err == nil {
			return
		}
		var ee *wire.EncodeError
		if !errors.As(err, &ee) {
			return
		}
		p.mu.Lock()
		if i := w.aheadIndex(j, seq); i >= 0 { // still ahead: the worker never knew it
			w.ahead = append(w.ahead[:i], w.ahead[i+1:]...)
			p.mu.Unlock()
			j.Fail(fmt.Errorf("processpool: cannot send the argument of %s: %w", j.Name(), ee.Err))
			return
		}
		if w.cur != j || w.seq != seq { // the pool broke and failed j
			p.mu.Unlock()
			return
		}
		w.cur = nil
		var next executor.Job
		var nseq uint64
		retire := false
		if len(w.ahead) > 0 {
			// j was sent ahead and became cur while it was on its way:
			// the next one ahead, sent already, is the worker's now,
			// under its own request id (a new call here would take an
			// id already sent).
			a := w.ahead[0]
			w.ahead = append(w.ahead[:0], w.ahead[1:]...)
			w.cur, w.seq, w.unsent = a.j, a.seq, false
		} else {
			next, nseq, retire = w.takeLocked()
		}
		p.mu.Unlock()
		if retire {
			w.proc.Ctrl.Close()
		}
		j.Fail(fmt.Errorf("processpool: cannot send the argument of %s: %w", j.Name(), ee.Err))
		j, seq = next, nseq
	}
}

// takeLocked gives the worker its next call, the first queued one not
// cancelled, for the caller to send; with none it parks the worker as idle,
// or retires it (the caller closes its control socket) if the pool is
// shutting down or broken.
func (w *worker) takeLocked() (j executor.Job, seq uint64, retire bool) {
	p := w.p
	if w.dying { // being reaped: it takes nothing more
		return nil, 0, false
	}
	for len(p.queue) > 0 {
		j := p.queue[0]
		p.queue[0] = nil
		p.queue = p.queue[1:]
		if j.Start() {
			w.assignLocked(j)
			return j, w.seq, false
		}
	}
	if p.shutdown || p.broken != nil {
		w.dying = true
		return nil, 0, true
	}
	p.idle = append(p.idle, w)
	return nil, 0, false
}

// sent ends the write of the goroutine that holds tok (another may have
// taken over since: then it is its own).
func (w *worker) sent(tok uint64) {
	w.p.mu.Lock()
	if w.sending == tok {
		w.sending = 0
	}
	w.p.mu.Unlock()
}

// holdLocked makes the caller the goroutine writing a call, and returns
// the token that sent gives back.
func (w *worker) holdLocked() uint64 {
	w.sendTok++
	w.sending = w.sendTok
	return w.sending
}

// aheadIndex is the place of (j, seq) among the calls ahead, or -1.
func (w *worker) aheadIndex(j executor.Job, seq uint64) int {
	for i, a := range w.ahead {
		if a.j == j && a.seq == seq {
			return i
		}
	}
	return -1
}

// sendAhead sends calls ahead of cur while some are due: small ones
// here, a large one through the sender.
func (w *worker) sendAhead() {
	for {
		w.p.mu.Lock()
		a := w.takeAheadLocked()
		w.p.mu.Unlock()
		if !w.sentAhead(a) {
			return
		}
	}
}

// sentAhead sends the call takeAheadLocked took, if any; it reports
// whether it did, and so may take another.
func (w *worker) sentAhead(a *aheadCall) bool {
	if a == nil {
		return false
	}
	w.send(a.j, a.seq)
	w.sent(a.tok)
	return true
}

// serve reads the worker's answers until it exits.
func (w *worker) serve() {
	p := w.p
	var inHand executor.Job // taken off w.cur, not completed yet
	defer func() {
		if r := recover(); r != nil {
			// A bug: hand the call back, so that the pool, which breaks,
			// fails its future; reap (deferred by run) reports the panic
			// as the cause, and the group re-panics it in Shutdown.
			p.mu.Lock()
			if inHand != nil {
				w.cur, w.unsent = inHand, false
			}
			w.fault = executor.NewPanicError(0, r)
			p.mu.Unlock()
			panic(r)
		}
	}()
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
		ok := j != nil && !w.unsent && resp.ID == w.seq
		if ok {
			w.cur = nil
			inHand = j
		}
		p.mu.Unlock()
		if !ok {
			break // protocol error: treat as a dead worker
		}
		if resp.Resync {
			w.wr.Reset()
		}
		var err error
		unreadable := false
		if resp.Err != nil {
			if resp.ErrValue != nil {
				// A value this process fails to rebuild leaves the text.
				_ = resp.Err.DecodeErr(marshalled(resp.ErrValue))
			}
			err = resp.Err
		} else if derr := j.Decode(w.rd); derr != nil {
			// One binary runs on both sides, so the types agree: a stream
			// that still cannot be read means a worker to replace, not a
			// pool to break.
			err = fmt.Errorf("processpool: cannot decode the result of %s: %w", j.Name(), derr)
			unreadable = true
		}
		// The worker takes its next call before j's future completes: the
		// child starts on it while this goroutine wakes j's waiters, and a
		// waiter that submits again at once finds the worker idle.
		w.tasks++
		retired := unreadable || p.maxTasks > 0 && w.tasks >= p.maxTasks || w.noMore
		retire := retired
		var next executor.Job
		var seq uint64
		more := false
		var tok uint64
		var lost []executor.Job // sent ahead on a stream that broke
		now := time.Now()
		p.mu.Lock()
		if !w.lastAnswer.IsZero() {
			w.span = now.Sub(w.lastAnswer)
		}
		w.lastAnswer = now
		if unreadable && len(w.ahead) > 0 {
			// Their answers would come on a stream this reader could not
			// follow: fail them, as a worker that died would, and retire.
			lost = w.takeAheadJobsLocked()
		}
		if len(w.ahead) > 0 { // the next call is on its way already
			a := w.ahead[0]
			w.ahead = append(w.ahead[:0], w.ahead[1:]...)
			w.cur, w.seq, w.unsent = a.j, a.seq, false
			if retired { // answer the calls in flight first
				w.noMore, retired, retire = true, false, false
			}
			more = true
		} else if retired {
			w.dying = true
			delete(p.workers, w) // so that a Submit from now on starts a new one
			// Queued calls still run after Shutdown (unless cancelled),
			// so a retired worker is replaced even then.
			if len(p.queue) > 0 && p.broken == nil && len(p.workers)+p.starting < p.max {
				p.startWorkerLocked()
			}
		} else {
			next, seq, retire = w.takeLocked()
			if next != nil {
				tok = w.holdLocked()
			}
		}
		p.mu.Unlock()
		if retire {
			w.proc.Ctrl.Close()
		}
		if next != nil {
			w.send(next, seq)
			w.sent(tok)
			w.sendAhead()
		}
		if more {
			w.sendAhead()
		}
		for _, l := range lost {
			l.Fail(fmt.Errorf("processpool: the worker running %s was retired: the result before it could not be decoded", l.Name()))
		}
		if err != nil {
			j.Fail(err)
		} else {
			j.Succeed()
		}
		inHand = nil
		if retired {
			break
		}
	}
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
	dying := w.dying && w.fault == nil
	w.dying = true
	fault := w.fault
	p.mu.Unlock()
	if !dying {
		w.kill() // a protocol error leaves it alive
	}
	w.proc.Ctrl.Close()
	st := w.wait()
	w.wake.Close() // ends the sender
	if dying {
		return
	}
	// Marked broken before any future fails: a Submit from a failing
	// future's callback, or from a waiter it wakes, is refused.
	cause := fmt.Errorf("worker %d: %v", w.proc.Pid(), st)
	if fault != nil {
		cause = fmt.Errorf("the goroutine serving worker %d panicked: %w", w.proc.Pid(), fault)
	}
	p.mu.Lock()
	jobs, victims := p.breakLocked(cause)
	if w.cur != nil {
		jobs = append(jobs, w.cur)
		w.cur = nil
	}
	jobs = append(jobs, w.takeAheadJobsLocked()...)
	p.mu.Unlock()
	p.finishBreak(cause, jobs, victims)
}

// wait reaps the worker process, killing it if it has not exited
// reapGrace after its control socket closed.
func (w *worker) wait() *os.ProcessState {
	t := time.AfterFunc(reapGrace, func() { w.kill() })
	defer t.Stop()
	st, _ := w.proc.Wait() // anything the worker started goes with it
	return st
}

// kill kills the worker process and what it started. Safe at any time:
// the process is signalled through its pidfd, its group only while it is
// unreaped (see child.Process).
func (w *worker) kill() {
	w.proc.KillGroup(syscall.SIGKILL)
	_ = w.proc.Signal(syscall.SIGKILL)
}

// marshalled decodes a value wire.Marshal encoded, for
// RemoteError.DecodeErr.
type marshalled []byte

func (b marshalled) Decode(v any) error { return wire.Unmarshal(b, v) }

func brokenErr(cause error) error {
	return &executor.BrokenError{Base: executor.ErrBrokenProcessPool, Msg: "processpool: a process in the process pool was terminated abruptly while the future was running or pending", Cause: cause}
}

// breakPool marks the pool broken, fails every pending future and kills
// every worker.
func (p *Pool) breakPool(cause error) {
	p.mu.Lock()
	jobs, victims := p.breakLocked(cause)
	p.mu.Unlock()
	p.finishBreak(cause, jobs, victims)
}

// breakLocked marks the pool broken and takes what finishBreak must fail
// and kill: every queued and running call, and every live worker.
func (p *Pool) breakLocked(cause error) (jobs []executor.Job, victims []*worker) {
	if p.broken == nil {
		p.broken = &executor.BrokenError{Base: executor.ErrBrokenProcessPool, Msg: "processpool: a child process terminated abruptly, the process pool is not usable anymore", Cause: cause}
	}
	jobs = p.queue
	p.queue = nil
	for w := range p.workers {
		if w.cur != nil {
			jobs = append(jobs, w.cur)
			w.cur = nil
			w.unsent = false
		}
		jobs = append(jobs, w.takeAheadJobsLocked()...)
		if !w.dying {
			w.dying = true
			victims = append(victims, w)
		}
	}
	p.idle = nil
	return jobs, victims
}

func (p *Pool) finishBreak(cause error, jobs []executor.Job, victims []*worker) {
	for _, w := range victims {
		w.kill()
	}
	if len(jobs) == 0 {
		return
	}
	err := brokenErr(cause)
	for _, j := range jobs {
		j.Fail(err)
	}
}

// Shutdown stops the pool; see executor.Executor. Queued calls still run
// unless cancelFutures; then the workers exit. With wait, Shutdown returns
// once every worker process has been reaped and every goroutine of the
// pool has ended; called from one of them (a done callback), it waits for
// every other worker and the caller's own ends once the callback returns.
// If a goroutine of the pool panicked (a bug in the pool: a panic in a call
// is that call's error), Shutdown with wait re-panics it, with its stack;
// the pool broke when it happened.
func (p *Pool) Shutdown(wait, cancelFutures bool) {
	if p.spawner == nil {
		return // a zero Pool: nothing to shut down
	}
	p.mu.Lock()
	p.shutdown = true
	var cancelled []executor.Job
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
		j.Cancel()
	}
	for _, w := range idle {
		w.proc.Ctrl.Close()
	}
	if p.g.Len() == 0 {
		p.closeSpawner()
	}
	if wait {
		if p.g.Wait() {
			p.closeSpawner()
		}
		p.g.Repanic()
	}
}

// closeSpawnerIfDone closes the spawner once the pool is shut down and its
// last goroutine has ended: no worker can start any more.
//
// The group may have come back to life since it became empty (a Submit
// before Shutdown started a worker), so both are read under the pool's
// lock, under which every worker is started: once the pool is shut down,
// only a live goroutine of the group can start another, so an empty group
// then stays empty.
func (p *Pool) closeSpawnerIfDone() {
	p.mu.Lock()
	done := p.shutdown && p.g.Len() == 0
	p.mu.Unlock()
	if done {
		p.closeSpawner()
	}
}

func (p *Pool) closeSpawner() { p.closeOnce.Do(p.spawner.Close) }

// Kill is Python 3.14's kill_workers (terminate_workers with SIGTERM): it
// shuts the pool down without waiting and cancels the calls not yet
// started, as Shutdown(false, true), then sends sig (SIGKILL if 0) to every
// live worker process, through its pidfd. A worker that dies of it fails
// its running call with ErrBrokenProcessPool; a worker still starting runs
// nothing and exits.
func (p *Pool) Kill(sig syscall.Signal) {
	if p.spawner == nil {
		return
	}
	if sig == 0 {
		sig = syscall.SIGKILL
	}
	p.Shutdown(false, true)
	p.mu.Lock()
	var procs []*child.Process
	for w := range p.workers {
		procs = append(procs, w.proc)
	}
	p.mu.Unlock()
	for _, proc := range procs {
		_ = proc.Signal(sig)
	}
}

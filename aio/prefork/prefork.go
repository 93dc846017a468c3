// Package prefork runs a server as a group of worker processes, each with
// its own Loop, serving one listening address: gunicorn's arbiter, or
// Apache's prefork, for asyncgo. A master process (Start) binds the
// address and starts Options.Workers workers, re-executions of this
// binary running a body registered with Register (through executor's one
// registry, so main must call executor.Init first). It recycles each
// worker after MaxRequests requests (with jitter) or MaxConnections
// connections, starting the replacement before the old worker stops
// accepting; respawns a crashed worker with backoff, and gives up with
// ErrCrashLoop when workers keep crashing; and answers gunicorn's signals
// (Master.Run): SIGTERM and SIGINT stop gracefully, SIGHUP restarts every
// worker in turn, SIGTTIN and SIGTTOU add and remove one.
//
//	var server = prefork.Register("echo", func(ctx context.Context, w *prefork.Worker) error {
//		return w.Serve(ctx, newEchoProtocol, nil)
//	})
//
//	func main() {
//		executor.Init()
//		m, err := prefork.Start(server, prefork.Options{Addr: "127.0.0.1:8888", Workers: 4, MaxRequests: 10000})
//		...
//		err = m.Run(context.Background()) // until SIGTERM
//	}
//
// # The listener
//
// By default the master binds and listens, and every worker serves a
// duplicate of that one socket (received over its control connection
// with SCM_RIGHTS). Connections wait in the one accept queue while no
// worker accepts, so a worker that stops, crashes or is being replaced
// never costs a connection: recycling and rolling restarts fail no
// request. With Options.ReusePort each worker binds its own SO_REUSEPORT
// listener instead and the kernel spreads connections over them evenly,
// but a worker's listener that closes resets the connections still in
// its own accept queue (unless net.ipv4.tcp_migrate_req is set), so a
// recycle under load can fail the few that were waiting there: the reason
// the shared socket is the default.
//
// # Workers
//
// A worker is an aio.Process: it dies with the master whether or not the
// master exits cleanly (aio's parent watch), so no worker outlives it.
// Its body usually calls Worker.Serve with a protocol factory; protocols
// call Worker.RequestDone for each request, for MaxRequests, and should
// close their connections between requests once Worker.Stopping is
// closed (ServeOptions.OnDrain tells them on the loop). A worker asked to
// stop (its replacement serves, a rolling restart, Stop) stops accepting,
// waits up to GracefulTimeout for its connections, aborts the rest and
// exits; the master kills one that is still there a little later.
//
// Gunicorn's hooks: post_fork and post_worker_init are the body's first
// lines, worker_exit a defer in it; in the master, OnWorkerStart (a
// worker serves) and OnWorkerExit (child_exit, with the exit status).
package prefork

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/asyncgo/asyncgo/aio"
	"github.com/asyncgo/asyncgo/loop"
	"golang.org/x/sys/unix"
)

// ErrCrashLoop is the master's error when workers keep crashing: more than
// Options.CrashLimit crashes within Options.CrashWindow. The master stops
// its other workers and Wait returns it, wrapped with the last crash.
var ErrCrashLoop = errors.New("prefork: workers keep crashing")

// ErrStopped is a command to a master that has stopped.
var ErrStopped = errors.New("prefork: the master has stopped")

// Options configure a prefork group; the zero value of each field is the
// default it names.
type Options struct {
	// Network is "tcp" (the default), "tcp4", "tcp6" or "unix".
	Network string
	// Addr is the address to listen on, "host:port" (port 0 picks one:
	// Master.Addr tells which), or a path for "unix".
	Addr string
	// Workers is the number of worker processes (runtime.NumCPU()).
	Workers int
	// ReusePort gives each worker its own SO_REUSEPORT listener instead of
	// the master's shared socket (see the package doc for the trade).
	ReusePort bool
	// MaxRequests recycles a worker after that many requests
	// (Worker.RequestDone); 0 never (gunicorn's max_requests).
	MaxRequests int
	// MaxRequestsJitter adds a random 0..MaxRequestsJitter to each
	// worker's MaxRequests, so that workers do not all restart at once
	// (max_requests_jitter).
	MaxRequestsJitter int
	// MaxConnections recycles a worker after it has accepted that many
	// connections; 0 never.
	MaxConnections int
	// GracefulTimeout bounds a stopping worker's wait for its
	// connections (30 s, gunicorn's graceful_timeout).
	GracefulTimeout time.Duration
	// StartTimeout is how long a new worker may take to serve before it
	// is killed (counted as a crash); 30 s by default.
	StartTimeout time.Duration
	// Backoff is the first delay before a crashed worker's respawn
	// (100 ms); it doubles with each crash of its slot in a row, up to
	// MaxBackoff (5 s), and starts over once a worker of the slot serves.
	Backoff, MaxBackoff time.Duration
	// CrashLimit and CrashWindow: more than CrashLimit (5) crashes within
	// CrashWindow (10 s) stop the group with ErrCrashLoop; a negative
	// CrashLimit never does.
	CrashLimit  int
	CrashWindow time.Duration
	// Data is passed to every worker (Worker.Data).
	Data []byte
	// OnWorkerStart runs in the master when a worker serves, OnWorkerExit
	// when one has exited (gunicorn's child_exit). They run on the
	// master's supervisor goroutine: keep them short.
	OnWorkerStart func(WorkerInfo)
	OnWorkerExit  func(WorkerInfo)
}

// WorkerInfo is what the master knows of a worker.
type WorkerInfo struct {
	Slot, Generation int
	Pid              int
	// Requests and Connections are the worker's counts, as last reported
	// (every 100 ms while they change, and at its exit).
	Requests, Connections int64
	Started               time.Time
	Ready                 bool // the worker has served
	// Exited, ExitCode and Reason are set once it has exited: the code as
	// aio.Process.ExitCode (minus the signal number when killed); Reason
	// "recycled" (after MaxRequests or MaxConnections), "restarted"
	// (Reload), "stopped" (Stop or Resize), or "crashed".
	Exited   time.Time
	ExitCode int
	Reason   string
}

type proc struct {
	info    WorkerInfo
	p       *aio.Process
	ctl     *aio.Connection
	retired bool   // asked for its replacement
	stopped string // the reason it was asked to stop; "" if not
	timer   *time.Timer
	read    chan struct{} // closed when its messages have all been forwarded
}

type slotState struct {
	cur, next *proc
	respawn   *time.Timer
	backoff   time.Duration
	gen       int
	removed   bool
	served    bool // a worker of the slot has served
}

type event struct {
	p    *proc
	msg  *ctlMsg
	exit bool
	code int
	cmd  func()
}

// Master supervises a prefork group: it holds the listener and starts,
// recycles and respawns the workers. Its methods may be called from any
// goroutine.
type Master struct {
	opts Options
	fn   Func
	ln   *loop.Socket
	addr net.Addr

	events chan event
	done   chan struct{}
	err    error

	mu      sync.Mutex // guards the snapshot below
	live    map[*proc]struct{}
	history []WorkerInfo

	// the supervisor's own state
	slots    []*slotState
	crashes  []time.Time
	rolling  []int // slots still to restart (Reload)
	stopping bool
	target   int           // the number of slots, as workers are told
	ready    chan struct{} // closed once every first worker serves
	readyN   int
}

// Start binds the address and starts the workers; it does not wait for
// them to serve (Ready does).
func Start(fn Func, opts Options) (*Master, error) {
	if fn.fn == nil {
		return nil, errors.New("prefork: Start of a Func not made by Register")
	}
	if opts.Network == "" {
		opts.Network = "tcp"
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.NumCPU()
	}
	if opts.MaxRequests < 0 || opts.MaxRequestsJitter < 0 || opts.MaxConnections < 0 {
		return nil, errors.New("prefork: negative MaxRequests, MaxRequestsJitter or MaxConnections")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&opts.GracefulTimeout, 30*time.Second)
	def(&opts.StartTimeout, 30*time.Second)
	def(&opts.Backoff, 100*time.Millisecond)
	def(&opts.MaxBackoff, 5*time.Second)
	def(&opts.CrashWindow, 10*time.Second)
	if opts.CrashLimit == 0 {
		opts.CrashLimit = 5
	}
	m := &Master{
		opts:   opts,
		fn:     fn,
		events: make(chan event, 64),
		done:   make(chan struct{}),
		live:   map[*proc]struct{}{},
		ready:  make(chan struct{}),
		readyN: opts.Workers,
		target: opts.Workers,
	}
	var err error
	if opts.ReusePort {
		m.ln, err = reserve(opts.Network, opts.Addr)
	} else {
		m.ln, err = loop.Listen(opts.Network, opts.Addr)
		if err == nil {
			err = m.ln.Listen(listenBacklog)
		}
	}
	if err != nil {
		if m.ln != nil {
			m.ln.Close()
		}
		return nil, fmt.Errorf("prefork: %w", err)
	}
	m.addr = m.ln.LocalAddr()
	if opts.ReusePort {
		m.opts.Addr = m.addr.String() // the port chosen, for every worker
	}
	for i := 0; i < opts.Workers; i++ {
		s := &slotState{backoff: opts.Backoff}
		m.slots = append(m.slots, s)
		if err := m.spawn(i); err != nil {
			m.stopAll("stopped")
			m.killAll()
			m.ln.Close()
			return nil, err
		}
	}
	go m.supervise()
	return m, nil
}

// reserve binds an SO_REUSEPORT socket without listening on it: it holds
// the port (and picks one for port 0) while the workers' listeners, bound
// to the same address, take the connections.
func reserve(network, addr string) (*loop.Socket, error) {
	s, err := loop.NewSocket(network)
	if err != nil {
		return nil, err
	}
	_ = s.SetsockoptInt(unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	if err := s.SetsockoptInt(unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.Bind(addr); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Addr is the address the group listens on.
func (m *Master) Addr() net.Addr { return m.addr }

// Done is closed once the master has stopped and every worker has exited.
func (m *Master) Done() <-chan struct{} { return m.done }

// Wait waits until the master has stopped: nil after Stop, or an error
// wrapping ErrCrashLoop.
func (m *Master) Wait() error {
	<-m.done
	return m.err
}

// Ready waits until every worker started by Start serves.
func (m *Master) Ready(ctx context.Context) error {
	select {
	case <-m.ready:
		return nil
	case <-m.done:
		if m.err != nil {
			return m.err
		}
		return ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Workers returns the workers running now (starting, serving or
// stopping), by slot and generation.
func (m *Master) Workers() []WorkerInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]WorkerInfo, 0, len(m.live))
	for p := range m.live {
		out = append(out, p.info)
	}
	slices.SortFunc(out, func(a, b WorkerInfo) int {
		if a.Slot != b.Slot {
			return a.Slot - b.Slot
		}
		return a.Generation - b.Generation
	})
	return out
}

// Exited returns the workers that have exited, in the order they did.
func (m *Master) Exited() []WorkerInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.history)
}

// command runs fn on the supervisor goroutine.
func (m *Master) command(fn func()) error {
	select {
	case <-m.done:
		return ErrStopped
	default:
	}
	select {
	case m.events <- event{cmd: fn}:
		return nil
	case <-m.done:
		return ErrStopped
	}
}

// Reload restarts every worker, one slot at a time: each replacement
// serves before the worker it replaces stops (gunicorn's SIGHUP).
func (m *Master) Reload() error {
	return m.command(func() {
		if m.stopping {
			return
		}
		for i, s := range m.slots {
			if !s.removed && !slices.Contains(m.rolling, i) {
				m.rolling = append(m.rolling, i)
			}
		}
		m.roll()
	})
}

// Resize adds delta workers (negative: removes them, gracefully, the
// highest slots first), keeping at least one: SIGTTIN and SIGTTOU are
// Resize(1) and Resize(-1).
func (m *Master) Resize(delta int) error {
	return m.command(func() {
		if m.stopping {
			return
		}
		m.target = max(m.numSlots()+delta, 1)
		for ; delta > 0; delta-- {
			m.slots = append(m.slots, &slotState{backoff: m.opts.Backoff})
			m.start(len(m.slots) - 1)
		}
		for ; delta < 0 && m.numSlots() > 1; delta++ {
			i := len(m.slots) - 1
			for m.slots[i].removed {
				i--
			}
			s := m.slots[i]
			s.removed = true
			if s.respawn != nil {
				s.respawn.Stop()
			}
			for _, p := range []*proc{s.cur, s.next} {
				if p != nil {
					m.stopProc(p, "stopped")
				}
			}
			m.trimSlots()
		}
	})
}

// trimSlots drops the removed slots at the end whose workers are gone.
func (m *Master) trimSlots() {
	for n := len(m.slots); n > 0 && m.slots[n-1].removed && m.slots[n-1].cur == nil && m.slots[n-1].next == nil; n-- {
		m.slots = m.slots[:n-1]
	}
}

func (m *Master) numSlots() int {
	n := 0
	for _, s := range m.slots {
		if !s.removed {
			n++
		}
	}
	return n
}

// NumWorkers is the number of worker slots (the target, not the processes
// running: see Workers).
func (m *Master) NumWorkers() int {
	n := make(chan int, 1)
	if m.command(func() { n <- m.numSlots() }) != nil {
		return 0
	}
	select {
	case v := <-n:
		return v
	case <-m.done:
		return 0
	}
}

// Stop stops the group gracefully: every worker stops accepting and
// finishes its connections; those still running after timeout are killed
// (0: GracefulTimeout and a second). The listener is closed. It returns
// once every worker has exited, with Wait's error.
func (m *Master) Stop(timeout time.Duration) error {
	if timeout <= 0 {
		timeout = m.opts.GracefulTimeout + time.Second
	}
	_ = m.command(func() {
		if m.stopping {
			return
		}
		m.stopping = true
		m.stopAll("stopped")
		t := time.AfterFunc(timeout, func() { _ = m.command(m.killAll) })
		go func() {
			<-m.done
			t.Stop()
		}()
	})
	return m.Wait()
}

// Run serves until ctx ends or a signal stops the group, handling
// gunicorn's signals: SIGTERM and SIGINT stop gracefully (Stop), SIGHUP
// is Reload, SIGTTIN and SIGTTOU are Resize(1) and Resize(-1). It returns
// Wait's error.
func (m *Master) Run(ctx context.Context) error {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGTTIN, syscall.SIGTTOU)
	defer signal.Stop(sigs)
	for {
		select {
		case <-m.done:
			return m.err
		case <-ctx.Done():
			return m.Stop(0)
		case sig := <-sigs:
			switch sig {
			case syscall.SIGTERM, syscall.SIGINT:
				return m.Stop(0)
			case syscall.SIGHUP:
				_ = m.Reload()
			case syscall.SIGTTIN:
				_ = m.Resize(1)
			case syscall.SIGTTOU:
				_ = m.Resize(-1)
			}
		}
	}
}

// start starts a worker for slot i: its current one, or the replacement
// of the current one. A failure to start counts as a crash.
func (m *Master) start(i int) {
	if err := m.spawn(i); err != nil {
		m.crashed(i, fmt.Errorf("cannot start worker %d: %w", i, err))
	}
}

func (m *Master) spawn(i int) error {
	s := m.slots[i]
	s.gen++
	parent, child, err := aio.Pipe(true)
	if err != nil {
		return err
	}
	maxReq := int64(m.opts.MaxRequests)
	if maxReq > 0 && m.opts.MaxRequestsJitter > 0 {
		maxReq += rand.Int64N(int64(m.opts.MaxRequestsJitter) + 1)
	}
	arg := workerArg{
		Ctl: child, Slot: i, Gen: s.gen,
		MaxRequests: maxReq, MaxConns: int64(m.opts.MaxConnections),
		ReusePort: m.opts.ReusePort, Network: m.opts.Network, Addr: m.opts.Addr,
		Graceful: m.opts.GracefulTimeout, Workers: m.target, Data: m.opts.Data,
	}
	ap := aio.NewProcess(m.fn.fn.Bind(arg))
	ap.Name = fmt.Sprintf("prefork-worker-%d.%d", i, s.gen)
	err = ap.Start()
	child.Close()
	if err != nil {
		parent.Close()
		return err
	}
	if !m.opts.ReusePort {
		if err := parent.SendHandle(m.ln.Fd()); err != nil {
			_ = ap.Kill()
			_ = ap.Join()
			_ = ap.Close()
			parent.Close()
			return err
		}
	}
	p := &proc{p: ap, ctl: parent, read: make(chan struct{}), info: WorkerInfo{Slot: i, Generation: s.gen, Pid: ap.Pid(), Started: time.Now()}}
	if s.cur == nil {
		s.cur = p
	} else {
		s.next = p
	}
	m.mu.Lock()
	m.live[p] = struct{}{}
	m.mu.Unlock()
	p.timer = time.AfterFunc(m.opts.StartTimeout, func() {
		_ = m.command(func() {
			if !p.info.Ready && p.stopped == "" {
				_ = p.p.Kill() // its exit is a crash
			}
		})
	})
	go m.read(p)
	go func() {
		_ = ap.Join()
		code, _ := ap.ExitCode()
		select { // its last counts first: they were sent before it exited
		case <-p.read:
		case <-time.After(time.Second):
		}
		select {
		case m.events <- event{p: p, exit: true, code: code}:
		case <-m.done:
		}
	}()
	return nil
}

// read forwards a worker's messages to the supervisor.
func (m *Master) read(p *proc) {
	defer close(p.read)
	for {
		var msg ctlMsg
		if err := p.ctl.Recv(&msg); err != nil {
			return
		}
		select {
		case m.events <- event{p: p, msg: &msg}:
		case <-m.done:
			return
		}
	}
}

func (m *Master) supervise() {
	for ev := range m.events {
		switch {
		case ev.cmd != nil:
			ev.cmd()
		case ev.msg != nil:
			m.message(ev.p, ev.msg)
		case ev.exit:
			m.exited(ev.p, ev.code)
		}
		if m.stopping && len(m.live) == 0 {
			break
		}
	}
	m.ln.Close()
	close(m.done)
}

func (m *Master) message(p *proc, msg *ctlMsg) {
	m.mu.Lock()
	p.info.Requests, p.info.Connections = msg.Requests, msg.Conns
	m.mu.Unlock()
	s := m.slots[p.info.Slot]
	switch msg.Kind {
	case msgReady:
		p.timer.Stop()
		m.mu.Lock()
		p.info.Ready = true
		m.mu.Unlock()
		if p.stopped != "" {
			m.tell(p, msgStop) // it was asked to stop before it served
			return
		}
		if s.next == p {
			old := s.cur
			s.cur, s.next = p, nil
			if old != nil {
				reason := "recycled"
				if !old.retired {
					reason = "restarted"
				}
				m.stopProc(old, reason)
			}
		}
		if p.retired && s.cur == p && s.next == nil && !m.stopping && !s.removed {
			m.start(p.info.Slot) // it reached its limits before its ready message came
		}
		s.backoff = m.opts.Backoff
		if m.opts.OnWorkerStart != nil {
			m.opts.OnWorkerStart(p.info)
		}
		if !s.served && m.readyN > 0 {
			s.served = true
			m.readyN--
			if m.readyN == 0 {
				close(m.ready)
			}
		}
		m.roll()
	case msgRetire:
		if p.retired || p.stopped != "" || m.stopping || s.removed {
			return
		}
		p.retired = true
		if s.cur == p && s.next == nil {
			m.start(p.info.Slot)
		}
	}
}

// tell sends a message to a worker; one that is gone has exited or will.
func (m *Master) tell(p *proc, kind uint8) {
	_ = p.ctl.Send(ctlMsg{Kind: kind})
}

// stopProc asks a worker to stop, and kills it if it has not exited a
// second after its GracefulTimeout.
func (m *Master) stopProc(p *proc, reason string) {
	if p.stopped != "" {
		return
	}
	p.stopped = reason
	// Even one that has not said it serves: it may be serving already
	// (it accepts before its word arrives), and a signal would cut its
	// connections. One that never gets to read it is killed below.
	m.tell(p, msgStop)
	p.timer.Stop()
	p.timer = time.AfterFunc(m.opts.GracefulTimeout+time.Second, func() { _ = p.p.Kill() })
}

func (m *Master) stopAll(reason string) {
	m.rolling = nil
	for _, s := range m.slots {
		if s.respawn != nil {
			s.respawn.Stop()
			s.respawn = nil
		}
		for _, p := range []*proc{s.cur, s.next} {
			if p != nil {
				m.stopProc(p, reason)
			}
		}
	}
}

func (m *Master) killAll() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for p := range m.live {
		_ = p.p.Kill()
	}
}

func (m *Master) exited(p *proc, code int) {
	p.timer.Stop()
	p.ctl.Close()
	_ = p.p.Close()
	m.mu.Lock()
	delete(m.live, p)
	p.info.Exited, p.info.ExitCode = time.Now(), code
	reason := p.stopped
	if reason == "" && (m.stopping || code == 0 && p.retired) {
		reason = "stopped"
	}
	if reason == "" {
		reason = "crashed"
	}
	p.info.Reason = reason
	m.history = append(m.history, p.info)
	m.mu.Unlock()
	if m.opts.OnWorkerExit != nil {
		m.opts.OnWorkerExit(p.info)
	}
	i := p.info.Slot
	s := m.slots[i]
	switch p {
	case s.cur:
		s.cur, s.next = s.next, nil
	case s.next:
		s.next = nil
	}
	switch {
	case m.stopping || s.removed:
	case reason == "crashed":
		m.crashed(i, fmt.Errorf("worker %d (pid %d) exited with %d", i, p.info.Pid, code))
	case s.cur == nil && s.respawn == nil:
		m.start(i) // it left on its own, with no replacement on its way
	}
	m.trimSlots()
	m.roll()
}

// crashed counts a crash of slot i's worker and respawns it after the
// slot's backoff, or stops the group when crashes come too fast.
func (m *Master) crashed(i int, why error) {
	now := time.Now()
	m.crashes = append(m.crashes, now)
	for len(m.crashes) > 0 && now.Sub(m.crashes[0]) > m.opts.CrashWindow {
		m.crashes = m.crashes[1:]
	}
	if m.opts.CrashLimit >= 0 && len(m.crashes) > m.opts.CrashLimit {
		m.err = fmt.Errorf("%w: %d crashes in %v, the last: %v", ErrCrashLoop, len(m.crashes), m.opts.CrashWindow, why)
		m.stopping = true
		m.stopAll("stopped")
		return
	}
	s := m.slots[i]
	if s.next != nil || s.respawn != nil && s.cur == nil {
		return // a replacement is on its way
	}
	d := s.backoff
	s.backoff = min(2*s.backoff, m.opts.MaxBackoff)
	s.respawn = time.AfterFunc(d, func() {
		_ = m.command(func() {
			s.respawn = nil
			if m.stopping || s.removed || s.next != nil {
				return
			}
			if s.cur == nil || s.cur.retired || s.cur.stopped != "" {
				m.start(i)
			}
		})
	})
}

// roll restarts the next slot of a Reload once no slot is between two
// workers.
func (m *Master) roll() {
	if m.stopping {
		return
	}
	for _, s := range m.slots {
		if s.next != nil {
			return // one at a time
		}
	}
	for len(m.rolling) > 0 {
		i := m.rolling[0]
		m.rolling = m.rolling[1:]
		if i >= len(m.slots) || m.slots[i].removed {
			continue
		}
		s := m.slots[i]
		if s.cur == nil {
			continue // being respawned: it will be new anyway
		}
		m.start(i)
		return
	}
}

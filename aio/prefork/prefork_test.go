//go:build linux

package prefork_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/aio"
	"github.com/asyncgo/asyncgo/aio/prefork"
	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/executor/processpool"
	"github.com/asyncgo/asyncgo/loop"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	executor.Init() // a worker process runs here and exits
	goleak.VerifyTestMain(m)
}

// lineProto answers each line "x" with "<pid> x": one request per line.
// Draining, it closes its connection between requests; its clients send
// one request at a time, so a close never destroys a reply.
type lineProto struct {
	w   *prefork.Worker
	set map[*lineProto]struct{}
	t   loop.Transport
	buf []byte
	pid string
}

func (p *lineProto) ConnectionMade(t loop.Transport) {
	p.t = t
	p.set[p] = struct{}{}
	select {
	case <-p.w.Stopping():
		t.Close() // accepted as the listener closed: the client retries
	default:
	}
}

func (p *lineProto) DataReceived(b []byte) {
	p.buf = append(p.buf, b...)
	for {
		i := strings.IndexByte(string(p.buf), '\n')
		if i < 0 {
			break
		}
		line := string(p.buf[:i])
		p.buf = p.buf[i+1:]
		_, _ = p.t.Write([]byte(p.pid + " " + line + "\n"))
		p.w.RequestDone()
	}
	p.maybeClose()
}

func (p *lineProto) maybeClose() {
	select {
	case <-p.w.Stopping():
		if len(p.buf) == 0 {
			p.t.Close()
		}
	default:
	}
}

func (p *lineProto) EOFReceived() bool { return false }

func (p *lineProto) ConnectionLost(error) { delete(p.set, p) }

// lineServer serves lineProto, and checks once Serve returns that the
// worker has no more goroutines and descriptors than when it started: a
// leak makes it exit 1, which the tests see in its ExitCode.
var lineServer = prefork.Register("test.line", func(ctx context.Context, w *prefork.Worker) error {
	goroutines, fds := runtime.NumGoroutine(), countFDs()
	set := map[*lineProto]struct{}{}
	pid := strconv.Itoa(os.Getpid())
	err := w.Serve(ctx, func() loop.BaseProtocol {
		return &lineProto{w: w, set: set, pid: pid}
	}, &prefork.ServeOptions{OnDrain: func() {
		for p := range set {
			p.maybeClose()
		}
	}})
	if err != nil {
		return err
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > goroutines || countFDs() > fds {
		if time.Now().After(deadline) {
			return fmt.Errorf("worker leaks: %d goroutines (%d at its start), %d descriptors (%d)",
				runtime.NumGoroutine(), goroutines, countFDs(), fds)
		}
		time.Sleep(time.Millisecond)
	}
	return nil
})

func countFDs() int {
	ents, _ := os.ReadDir("/proc/self/fd")
	return len(ents)
}

var failing = prefork.Register("test.fail", func(ctx context.Context, w *prefork.Worker) error {
	return errors.New("this worker cannot start")
})

// load is a client of lineServer: conns connections, each sending one
// request at a time, resending a request that got no reply on a
// connection the server closed (as an HTTP client does with a keep-alive
// connection), on a new one.
type load struct {
	addr     string
	ok       atomic.Int64
	retries  atomic.Int64
	failures atomic.Int64
	mu       sync.Mutex
	pids     map[string]int
	firstErr error
}

func newLoad(addr string) *load { return &load{addr: addr, pids: map[string]int{}} }

func (ld *load) fail(err error) {
	ld.failures.Add(1)
	ld.mu.Lock()
	if ld.firstErr == nil {
		ld.firstErr = err
	}
	ld.mu.Unlock()
}

// run sends n requests over conns connections, or until stop is closed.
func (ld *load) run(conns, n int, stop <-chan struct{}) {
	var wg sync.WaitGroup
	var next atomic.Int64
	for c := 0; c < conns; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var conn net.Conn
			var rd *bufio.Reader
			defer func() {
				if conn != nil {
					conn.Close()
				}
			}()
			seen := map[string]int{}
			defer func() {
				ld.mu.Lock()
				for k, v := range seen {
					ld.pids[k] += v
				}
				ld.mu.Unlock()
			}()
			for {
				i := next.Add(1)
				if n > 0 && i > int64(n) {
					return
				}
				select {
				case <-stop:
					return
				default:
				}
				req := strconv.FormatInt(i, 10)
				var err error
				for try := 0; ; try++ {
					if try == 20 {
						ld.fail(fmt.Errorf("request %s: %d tries, the last: %w", req, try, err))
						break
					}
					if conn == nil {
						conn, err = net.DialTimeout("tcp", ld.addr, 5*time.Second)
						if err != nil {
							conn = nil
							ld.retries.Add(1)
							time.Sleep(10 * time.Millisecond)
							continue
						}
						rd = bufio.NewReader(conn)
					}
					_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
					var line string
					if _, err = conn.Write([]byte(req + "\n")); err == nil {
						line, err = rd.ReadString('\n')
					}
					if err != nil {
						if line != "" || errors.Is(err, os.ErrDeadlineExceeded) {
							ld.fail(fmt.Errorf("request %s: a part of a reply (%q): %w", req, line, err))
							break
						}
						conn.Close() // closed by a worker that stops: again, elsewhere
						conn = nil
						ld.retries.Add(1)
						continue
					}
					pid, got, _ := strings.Cut(strings.TrimSuffix(line, "\n"), " ")
					if got != req {
						ld.fail(fmt.Errorf("request %s: reply %q", req, line))
					} else {
						ld.ok.Add(1)
						seen[pid]++
					}
					break
				}
			}
		}()
	}
	wg.Wait()
}

func fdCount(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// checkFDs waits until this process has as many descriptors open as it
// had (the side channels of the workers that exited close as their
// readers see the end), for at most 10 s.
func checkFDs(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for fdCount(t) != want {
		if time.Now().After(deadline) {
			u, _ := os.ReadFile("/proc/net/unix")
			tc, _ := os.ReadFile("/proc/net/tcp")
			t.Errorf("%d descriptors open after the group stopped, %d before: %s\n%s\n%s", fdCount(t), want, fdList(), u, tc)
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func fdList() string {
	ents, _ := os.ReadDir("/proc/self/fd")
	var out []string
	for _, e := range ents {
		l, _ := os.Readlink("/proc/self/fd/" + e.Name())
		out = append(out, e.Name()+"="+l)
	}
	return strings.Join(out, " ")
}

func startGroup(t *testing.T, fn prefork.Func, opts prefork.Options) *prefork.Master {
	t.Helper()
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	m, err := prefork.Start(fn, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Stop(5 * time.Second) })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := m.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	return m
}

func reasons(infos []prefork.WorkerInfo) map[string]int {
	out := map[string]int{}
	for _, wi := range infos {
		out[wi.Reason]++
	}
	return out
}

// Every worker is recycled after MaxRequests while clients keep sending:
// no request fails, and the replacements serve.
func TestRecycleUnderLoad(t *testing.T) {
	fds := fdCount(t)
	m := startGroup(t, lineServer, prefork.Options{Workers: 2, MaxRequests: 300, MaxRequestsJitter: 50, GracefulTimeout: 5 * time.Second})
	first := m.Workers()
	ld := newLoad(m.Addr().String())
	recycledAll := func() bool {
		n := 0
		for _, wi := range m.Exited() {
			for _, f := range first {
				if wi.Pid == f.Pid && wi.Reason == "recycled" {
					n++
				}
			}
		}
		return n == len(first)
	}
	// Until both first workers are replaced (a replacement's start takes
	// its time on a loaded machine: a fixed count of requests may end
	// before it serves), and at least 3,000 requests.
	deadline := time.Now().Add(60 * time.Second)
	for ld.ok.Load() < 3000 || !recycledAll() {
		if time.Now().After(deadline) {
			t.Fatalf("not recycled after %d requests: exits %+v", ld.ok.Load(), m.Exited())
		}
		ld.run(8, 500, nil)
	}
	if f := ld.failures.Load(); f != 0 {
		t.Fatalf("%d requests failed, the first: %v", f, ld.firstErr)
	}
	if err := m.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	exited := m.Exited()
	recycled := map[int]bool{}
	for _, wi := range exited {
		if wi.Reason == "recycled" {
			recycled[wi.Pid] = true
			if wi.Requests < 300 {
				t.Errorf("worker %d.%d recycled after %d requests, under MaxRequests", wi.Slot, wi.Generation, wi.Requests)
			}
		}
		if wi.ExitCode != 0 { // a leak exits 1
			t.Errorf("worker %+v exited with %d", wi, wi.ExitCode)
		}
	}
	for _, wi := range first {
		if !recycled[wi.Pid] {
			t.Errorf("worker %d (pid %d) was not recycled: exits %v", wi.Slot, wi.Pid, reasons(exited))
		}
	}
	if len(ld.pids) < 4 {
		t.Errorf("replies came from %d processes, want at least 4 (2 workers and their replacements)", len(ld.pids))
	}
	t.Logf("%d ok, %d resent, %d workers over the run, exits %v", ld.ok.Load(), ld.retries.Load(), len(ld.pids), reasons(exited))
	checkFDs(t, fds)
}

// A worker SIGKILLed under load is respawned; the requests after that
// all succeed.
func TestKilledWorkerRespawned(t *testing.T) {
	m := startGroup(t, lineServer, prefork.Options{Workers: 2, Backoff: 10 * time.Millisecond})
	victim := m.Workers()[0]
	ld := newLoad(m.Addr().String())
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { ld.run(4, 0, stop); close(done) }()
	for ld.ok.Load() < 200 {
		pause()
	}
	if err := syscall.Kill(victim.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !respawned(m, victim) {
		if time.Now().After(deadline) {
			t.Fatalf("slot %d not respawned: %+v", victim.Slot, m.Workers())
		}
		time.Sleep(5 * time.Millisecond)
	}
	failedBefore := ld.failures.Load()
	okBefore := ld.ok.Load()
	for ld.ok.Load() < okBefore+500 {
		pause()
	}
	close(stop)
	<-done
	if f := ld.failures.Load() - failedBefore; f != 0 {
		t.Fatalf("%d requests failed after the respawn: %v", f, ld.firstErr)
	}
	ex := m.Exited()
	if len(ex) != 1 || ex[0].Pid != victim.Pid || ex[0].Reason != "crashed" || ex[0].ExitCode != -int(syscall.SIGKILL) {
		t.Fatalf("exits = %+v, want the victim crashed with -9", ex)
	}
	t.Logf("%d ok, %d failed (in flight on the killed worker), %d resent", ld.ok.Load(), ld.failures.Load(), ld.retries.Load())
}

func respawned(m *prefork.Master, victim prefork.WorkerInfo) bool {
	for _, wi := range m.Workers() {
		if wi.Slot == victim.Slot && wi.Pid != victim.Pid && wi.Ready {
			return true
		}
	}
	return false
}

// pause lets the load progress a little.
func pause() { time.Sleep(time.Millisecond) }

// Reload (SIGHUP) replaces every worker under load with no failed
// request.
func TestReloadUnderLoad(t *testing.T) {
	m := startGroup(t, lineServer, prefork.Options{Workers: 2})
	first := m.Workers()
	ld := newLoad(m.Addr().String())
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { ld.run(6, 0, stop); close(done) }()
	for ld.ok.Load() < 200 {
		pause()
	}
	if err := m.Reload(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(m.Exited()) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("not restarted: %+v, exits %+v", m.Workers(), m.Exited())
		}
		time.Sleep(5 * time.Millisecond)
	}
	ok := ld.ok.Load()
	for ld.ok.Load() < ok+200 {
		pause()
	}
	close(stop)
	<-done
	if f := ld.failures.Load(); f != 0 {
		t.Fatalf("%d requests failed: %v", f, ld.firstErr)
	}
	for _, wi := range m.Exited() {
		if wi.Reason != "restarted" || wi.ExitCode != 0 {
			t.Errorf("exit %+v, want restarted with 0", wi)
		}
	}
	now := m.Workers()
	if len(now) != 2 || now[0].Pid == first[0].Pid || now[1].Pid == first[1].Pid {
		t.Errorf("workers before %+v, after %+v", first, now)
	}
}

// SIGTTIN and SIGTTOU's Resize: one more worker, then one fewer.
func TestResize(t *testing.T) {
	m := startGroup(t, lineServer, prefork.Options{Workers: 1})
	if err := m.Resize(1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { w := m.Workers(); return len(w) == 2 && w[1].Ready })
	if n := m.NumWorkers(); n != 2 {
		t.Fatalf("NumWorkers = %d", n)
	}
	ld := newLoad(m.Addr().String())
	ld.run(2, 200, nil)
	if err := m.Resize(-1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return len(m.Workers()) == 1 && len(m.Exited()) == 1 })
	if ex := m.Exited(); ex[0].Slot != 1 || ex[0].Reason != "stopped" {
		t.Fatalf("exits %+v", ex)
	}
	_ = m.Resize(-1) // at least one stays
	ld.run(2, 200, nil)
	if n := m.NumWorkers(); n != 1 || ld.failures.Load() != 0 {
		t.Fatalf("NumWorkers = %d, %d failures: %v", n, ld.failures.Load(), ld.firstErr)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 20 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Workers that crash as they start stop the group with ErrCrashLoop, a
// clear error, instead of respawning for ever.
func TestCrashLoop(t *testing.T) {
	m, err := prefork.Start(failing, prefork.Options{Addr: "127.0.0.1:0", Workers: 2, Backoff: time.Millisecond, CrashLimit: 3})
	if err != nil {
		t.Fatal(err)
	}
	err = m.Wait()
	if !errors.Is(err, prefork.ErrCrashLoop) {
		t.Fatalf("Wait = %v, want ErrCrashLoop", err)
	}
	if n := len(m.Exited()); n < 4 {
		t.Fatalf("%d exits, want more than CrashLimit", n)
	}
	if err := m.Reload(); !errors.Is(err, prefork.ErrStopped) {
		t.Fatalf("Reload after the stop = %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := m.Ready(ctx); !errors.Is(err, prefork.ErrCrashLoop) {
		t.Fatalf("Ready = %v", err)
	}
}

// Stop waits for the requests in flight and closes the listener.
func TestStop(t *testing.T) {
	m := startGroup(t, lineServer, prefork.Options{Workers: 2})
	addr := m.Addr().String()
	ld := newLoad(addr)
	ld.run(2, 100, nil)
	if err := m.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if len(m.Workers()) != 0 || reasons(m.Exited())["stopped"] != 2 {
		t.Fatalf("after Stop: workers %+v, exits %+v", m.Workers(), m.Exited())
	}
	for _, wi := range m.Exited() {
		if wi.ExitCode != 0 {
			t.Errorf("worker %d exited with %d (a leak, or an error: see its stderr)", wi.Slot, wi.ExitCode)
		}
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatal("the listener still accepts after Stop")
	}
}

// With ReusePort every worker listens on its own socket, and connections
// reach them all.
func TestReusePort(t *testing.T) {
	m := startGroup(t, lineServer, prefork.Options{Workers: 2, ReusePort: true})
	ld := newLoad(m.Addr().String())
	for len(ld.pids) < 2 && ld.ok.Load() < 20000 {
		ld.run(8, int(ld.ok.Load())+400, nil)
	}
	if ld.failures.Load() != 0 || len(ld.pids) != 2 {
		t.Fatalf("%d failures (%v), replies from %d workers", ld.failures.Load(), ld.firstErr, len(ld.pids))
	}
}

type masterArgs struct {
	Pids *aio.Queue[int]
}

// groupMaster runs a prefork group in a child process and reports its
// workers' pids, for TestMasterKilled.
var groupMaster = executor.Register("prefork_test.master", func(a masterArgs) (struct{}, error) {
	m, err := prefork.Start(lineServer, prefork.Options{Addr: "127.0.0.1:0", Workers: 2})
	if err != nil {
		return struct{}{}, err
	}
	if err := m.Ready(context.Background()); err != nil {
		return struct{}{}, err
	}
	for _, wi := range m.Workers() {
		if err := a.Pids.Put(wi.Pid); err != nil {
			return struct{}{}, err
		}
	}
	select {} // until killed
})

// The master SIGKILLed: its workers exit within a second, none left.
func TestMasterKilled(t *testing.T) {
	pids := aio.NewQueue[int](0)
	defer pids.Close()
	p := aio.NewProcess(groupMaster.Bind(masterArgs{Pids: pids}))
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	var workers []int
	for range 2 {
		pid, err := pids.GetTimeout(30 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		workers = append(workers, pid)
	}
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = p.Join()
	deadline := time.Now().Add(time.Second)
	for _, pid := range workers {
		for alive(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("worker %d still runs a second after its master was killed", pid)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	_ = p.Close()
}

// alive reports whether pid runs: not gone, and not a zombie waiting for
// whoever inherited it.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

type signalArgs struct {
	Events *aio.Queue[string] // "start <slot> <pid>", "exit <slot> <pid> <reason>", "done <err>"
}

// signalMaster runs a prefork group under Run in a child process and
// reports its workers' starts and exits, for TestSignals.
var signalMaster = executor.Register("prefork_test.signalMaster", func(a signalArgs) (struct{}, error) {
	report := func(s string) { _ = a.Events.Put(s) }
	m, err := prefork.Start(lineServer, prefork.Options{
		Addr: "127.0.0.1:0", Workers: 2,
		OnWorkerStart: func(wi prefork.WorkerInfo) { report(fmt.Sprintf("start %d %d", wi.Slot, wi.Pid)) },
		OnWorkerExit:  func(wi prefork.WorkerInfo) { report(fmt.Sprintf("exit %d %d %s", wi.Slot, wi.Pid, wi.Reason)) },
	})
	if err != nil {
		return struct{}{}, err
	}
	err = m.Run(context.Background())
	report(fmt.Sprintf("done %v", err))
	return struct{}{}, err
})

// gunicorn's signals on the master: SIGTTIN adds a worker, SIGTTOU
// removes one, SIGHUP restarts them all, SIGTERM stops the group and the
// master exits 0.
func TestSignals(t *testing.T) {
	events := aio.NewQueue[string](0)
	defer events.Close()
	p := aio.NewProcess(signalMaster.Bind(signalArgs{Events: events}))
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	expect := func(prefix string, n int) []string {
		t.Helper()
		var got []string
		for len(got) < n {
			ev, err := events.GetTimeout(30 * time.Second)
			if err != nil {
				t.Fatalf("waiting for %d %q: %v (so far %q)", n, prefix, err, got)
			}
			if !strings.HasPrefix(ev, prefix) {
				t.Fatalf("event %q, want %q", ev, prefix)
			}
			got = append(got, ev)
		}
		return got
	}
	expect("start", 2)
	signal := func(sig syscall.Signal) {
		t.Helper()
		if err := syscall.Kill(p.Pid(), sig); err != nil {
			t.Fatal(err)
		}
	}
	signal(syscall.SIGTTIN)
	if ev := expect("start", 1)[0]; !strings.HasPrefix(ev, "start 2 ") {
		t.Fatalf("SIGTTIN: %q, want a worker in slot 2", ev)
	}
	signal(syscall.SIGTTOU)
	if ev := expect("exit", 1)[0]; !strings.HasPrefix(ev, "exit 2 ") || !strings.HasSuffix(ev, " stopped") {
		t.Fatalf("SIGTTOU: %q, want slot 2 stopped", ev)
	}
	signal(syscall.SIGHUP) // two starts, two exits of restarted workers
	hup := map[string]int{}
	for _, ev := range expect("", 4) {
		kind, _, _ := strings.Cut(ev, " ")
		if kind == "exit" && !strings.HasSuffix(ev, " restarted") {
			t.Fatalf("SIGHUP: %q, want restarted", ev)
		}
		hup[kind]++
	}
	if hup["start"] != 2 || hup["exit"] != 2 {
		t.Fatalf("SIGHUP: %v, want 2 starts and 2 exits", hup)
	}
	signal(syscall.SIGTERM)
	for _, ev := range expect("exit", 2) {
		if !strings.HasSuffix(ev, " stopped") {
			t.Fatalf("SIGTERM: %q, want stopped", ev)
		}
	}
	if ev := expect("done", 1)[0]; ev != "done <nil>" {
		t.Fatalf("Run ended with %q", ev)
	}
	if err := p.Join(); err != nil {
		t.Fatal(err)
	}
	if code, _ := p.ExitCode(); code != 0 {
		t.Fatalf("the master exited with %d", code)
	}
}

// The bar: 100,000 requests while workers are recycled (every
// 2,000-2,200 requests) and the whole group restarted (Reload, every
// 20,000), with none failed.
func TestHundredThousandRequests(t *testing.T) {
	m := startGroup(t, lineServer, prefork.Options{Workers: 2, MaxRequests: 2000, MaxRequestsJitter: 200})
	ld := newLoad(m.Addr().String())
	done := make(chan struct{})
	go func() { ld.run(8, 100000, nil); close(done) }()
	reloads := 0
	for next := int64(20000); ; next += 20000 {
		for ld.ok.Load()+ld.failures.Load() < next {
			select {
			case <-done:
			default:
				pause()
				continue
			}
			break
		}
		select {
		case <-done:
		default:
			if err := m.Reload(); err != nil {
				t.Fatal(err)
			}
			reloads++
			continue
		}
		break
	}
	if f := ld.failures.Load(); f != 0 || ld.ok.Load() != 100000 {
		t.Fatalf("%d ok, %d failed, the first: %v", ld.ok.Load(), f, ld.firstErr)
	}
	ex := reasons(m.Exited())
	t.Logf("100000 ok, %d resent, %d reloads, exits %v", ld.retries.Load(), reloads, ex)
	if ex["recycled"] < 10 || ex["restarted"] < 2 || ex["crashed"] != 0 {
		t.Fatalf("exits %v: want recycling and restarts, no crash", ex)
	}
}

// upper runs in a pool: a worker's thread pool or its own process pool.
var upper = executor.Register("prefork_test.upper", func(s string) (string, error) {
	return fmt.Sprintf("%s from %d", strings.ToUpper(s), os.Getpid()), nil
})

// poolServer is a worker with a loop and a ProcessPool of its own: each
// line is upper-cased by the loop's default ThreadPool ("t ...") or by the
// worker's pool process ("p ..."), awaited in the connection's handler
// task (ServeStreams).
var poolServer = prefork.Register("test.pool", func(ctx context.Context, w *prefork.Worker) error {
	pool, err := processpool.New(processpool.Options{MaxWorkers: 1})
	if err != nil {
		return err
	}
	defer pool.Shutdown(true, false)
	return w.ServeStreams(ctx, func(ctx context.Context, r *loop.StreamReader, sw *loop.StreamWriter) error {
		defer sw.Close()
		for {
			line, err := r.ReadLine(ctx)
			if err != nil || len(line) == 0 {
				return nil // EOF: the client is done
			}
			var ex executor.Executor // nil: the loop's default ThreadPool
			if line[0] == 'p' {
				ex = pool
			}
			got, err := loop.RunInExecutor(ctx, ex, upper.Bind(strings.TrimSpace(string(line)))).Await(ctx)
			if err != nil {
				return err
			}
			sw.Write([]byte(fmt.Sprintf("%d %s\n", os.Getpid(), got)))
			if err := sw.Drain(ctx); err != nil {
				return err
			}
		}
	}, nil)
})

// A loop per worker, with pools of its own: a prefork worker awaits calls
// run by its thread pool and by its own worker process.
func TestWorkerWithPools(t *testing.T) {
	m := startGroup(t, poolServer, prefork.Options{Workers: 1})
	worker := m.Workers()[0].Pid
	c, err := net.Dial("tcp", m.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rd := bufio.NewReader(c)
	for _, req := range []string{"t hello", "p hello", "t again", "p again"} {
		if _, err := fmt.Fprintf(c, "%s\n", req); err != nil {
			t.Fatal(err)
		}
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		var served, ran int
		var text string
		if _, err := fmt.Sscanf(line, "%d %s", &served, &text); err != nil || served != worker {
			t.Fatalf("%q: answer %q, want one from worker %d", req, line, worker)
		}
		before, after, _ := strings.Cut(strings.TrimSpace(line), " from ")
		fmt.Sscan(after, &ran)
		if want := strings.ToUpper(req); !strings.HasSuffix(before, want) {
			t.Fatalf("%q: answer %q", req, line)
		}
		if inWorker := ran == worker; inWorker != (req[0] == 't') {
			t.Fatalf("%q ran in pid %d (the worker is %d)", req, ran, worker)
		}
	}
	c.Close()
	if err := m.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if ex := m.Exited(); len(ex) != 1 || ex[0].ExitCode != 0 || ex[0].Connections != 1 {
		t.Fatalf("exits %+v", ex)
	}
}

// MaxConnections recycles a worker after it has accepted that many
// connections, with no request failed.
func TestMaxConnections(t *testing.T) {
	m := startGroup(t, lineServer, prefork.Options{Workers: 1, MaxConnections: 5})
	ld := newLoad(m.Addr().String())
	for range 12 { // a connection each
		ld.run(1, 1, nil)
	}
	if ld.failures.Load() != 0 || ld.ok.Load() != 12 {
		t.Fatalf("%d ok, %d failed: %v", ld.ok.Load(), ld.failures.Load(), ld.firstErr)
	}
	deadline := time.Now().Add(20 * time.Second)
	for reasons(m.Exited())["recycled"] < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("not recycled twice: workers %+v, exits %+v", m.Workers(), m.Exited())
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, wi := range m.Exited() {
		if wi.Reason == "recycled" && wi.Connections < 5 {
			t.Errorf("worker %d.%d recycled after %d connections", wi.Slot, wi.Generation, wi.Connections)
		}
	}
}

//go:build linux

// Command aiobench runs one of the aio benchmarks of issue 11, asyncgo's
// side of the Python twins in docs/bench/peers/aioproc.py, whose docstring
// defines every workload; docs/bench/aio.sh runs it once per workload and
// docs/bench/aioreport.py tabulates what it prints.
//
//	aiobench -workload=queue_small
//	aiobench -workload=pipe_roundtrip -n 1000   # a quick check
//
// Each workload starts its child process once, does an untimed warm-up and
// 3 timed runs of -n items (or round trips; 0 means the workload's default,
// the same count as the multiprocessing twin's), and reports the best of the
// 3. The asyncgo side uses package aio's blocking methods, as the plain
// multiprocessing twin does, on both sides:
//
//	queue_small      ints parent -> child -> parent through two aio.Queues,
//	                 at most 500 outstanding (a putter goroutine takes a
//	                 token before each Put, the getter gives it back after
//	                 each Get); items/s (and µs/item)
//	queue_2mib       the same with one 2 MiB random []byte put N times, at
//	                 most 8 outstanding; MB/s (10^6 bytes/s, one direction)
//	                 and items/s
//	event_roundtrip  two aio.Events: the parent sets e1, the child waiting in
//	                 e1 clears it and sets e2, the parent waiting in e2
//	                 clears it; µs/roundtrip
//	lock_roundtrip   two aio.Locks held by the parent from the start, used as
//	                 binary semaphores: the parent releases l1 and acquires
//	                 l2, the child acquires l1 and releases l2; µs/roundtrip
//	queue_roundtrip  one int in flight q1 -> child -> q2; µs/roundtrip
//	pool_map         aio.Map on aio.NewPool(2) of x*x over 100,000 ints,
//	                 chunksize 100, after an untimed map of 10,000; items/s
//
// and the Go floors (impl "go-raw"), between this process and a child that
// is this binary re-executed with the descriptors it needs (no package aio
// in between), reading and writing them with blocking system calls, as
// Python's raw floors do:
//
//	raw_socketpair_2mib  the 2 MiB items as frames of a 4-byte big-endian
//	                     length and the payload over one AF_UNIX socketpair,
//	                     8 outstanding, a writer goroutine and a reader;
//	                     MB/s and items/s
//	pipe_roundtrip       1 byte to the child over one pipe and 1 byte back
//	                     over another; µs/roundtrip. It also reports
//	                     pipe_roundtrip_netpoll: the same through Go's
//	                     netpoller (non-blocking descriptors, the way aio's
//	                     sockets are read), which aioreport.py keeps in
//	                     aio.json but leaves out of its table.
//
// Results go to stdout as JSON lines in the format of the Python peers:
//
//	{"impl":"asyncgo","name":"event_roundtrip","metric":"µs/roundtrip","unit":"µs/roundtrip","value":61.2}
//
// The exit status is 1 when a workload fails (a wrong item back, a child
// that died), 2 on bad flags.
package main

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/asyncgo/asyncgo/aio"
	"github.com/asyncgo/asyncgo/executor"
)

const (
	repeat         = 3       // timed runs per workload; the best is reported
	smallInflight  = 500     // queue_small's outstanding items
	bigInflight    = 8       // queue_2mib's and raw_socketpair_2mib's
	big            = 2 << 20 // the 2 MiB item
	warmRoundtrips = 500
	warmSmall      = 1000
	warmPool       = 10_000
	poolChunk      = 100
	stopItem       = -1 // ends a queue_echo child, as None ends Python's

	implAsyncgo = "asyncgo"
	implGoRaw   = "go-raw"

	// rawEnv names the floor a re-executed child serves (rawChild).
	rawEnv = "AIOBENCH_RAW_CHILD"
)

// workload is one -workload: its default N (the multiprocessing twin's)
// and the function that measures it.
type workload struct {
	name string
	n    int
	run  func(b *bench, n int) error
}

var workloads = []workload{
	{"queue_small", 200_000, benchQueueSmall},
	{"queue_2mib", 600, benchQueue2MiB},
	{"raw_socketpair_2mib", 2_000, benchRawSocketpair},
	{"event_roundtrip", 20_000, benchEventRoundtrip},
	{"lock_roundtrip", 20_000, benchLockRoundtrip},
	{"queue_roundtrip", 20_000, benchQueueRoundtrip},
	{"pipe_roundtrip", 50_000, benchPipeRoundtrip},
	{"pool_map", 100_000, benchPoolMap},
}

func main() {
	if rawChild() {
		return
	}
	executor.Init() // a child of a Process or a Pool runs here and exits
	code := run(os.Args[1:], os.Stdout, os.Stderr)
	aio.Shutdown()
	os.Exit(code)
}

// run is the command without its process: it parses args, runs the
// workload and returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("aiobench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	name := fs.String("workload", "", "the workload to run: "+workloadNames())
	n := fs.Int("n", 0, "items (or round trips) in one timed run; 0: the workload's default")
	cpuprofile := fs.String("cpuprofile", "", "write this process's CPU profile to the file (go tool pprof)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(stderr, "aiobench:", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "aiobench:", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	if fs.NArg() > 0 || *n < 0 {
		fmt.Fprintf(stderr, "aiobench: bad arguments: %q\n", args)
		return 2
	}
	for _, w := range workloads {
		if w.name != *name {
			continue
		}
		if *n == 0 {
			*n = w.n
		}
		b := &bench{out: stdout}
		if err := w.run(b, *n); err != nil {
			fmt.Fprintf(stderr, "aiobench: %s: %v\n", w.name, err)
			return 1
		}
		return 0
	}
	fmt.Fprintf(stderr, "aiobench: unknown -workload %q (known: %s)\n", *name, workloadNames())
	return 2
}

func workloadNames() string {
	names := make([]string, len(workloads))
	for i, w := range workloads {
		names[i] = w.name
	}
	return strings.Join(names, ", ")
}

// bench is where a workload reports.
type bench struct {
	out io.Writer
}

// result is one JSON line, as common.emit writes it ("unit" repeats
// "metric" for readers of the raw output).
type result struct {
	Impl   string  `json:"impl"`
	Name   string  `json:"name"`
	Metric string  `json:"metric"`
	Unit   string  `json:"unit"`
	Value  float64 `json:"value"`
}

func (b *bench) emit(impl, name, metric string, value float64) {
	line, err := json.Marshal(result{impl, name, metric, metric, value})
	if err != nil {
		panic(err) // a float that JSON cannot carry: a bug of the caller
	}
	fmt.Fprintf(b.out, "%s\n", line)
}

// bestOf returns the shortest of repeat runs of f.
func bestOf(f func() (time.Duration, error)) (time.Duration, error) {
	best := time.Duration(0)
	for i := 0; i < repeat; i++ {
		d, err := f()
		if err != nil {
			return 0, err
		}
		if i == 0 || d < best {
			best = d
		}
	}
	return best, nil
}

// ---- queues: parent -> child -> parent ----

type echoArgs[T any] struct {
	In, Out *aio.Queue[T]
}

// intEcho and bytesEcho are the child of the queue workloads: In -> Out
// until the stop item (-1, or an empty []byte), which they pass on too.
var (
	intEcho = executor.Register("aiobench.intEcho", func(a echoArgs[int]) (struct{}, error) {
		return struct{}{}, echo(a, func(v int) bool { return v == stopItem })
	})
	bytesEcho = executor.Register("aiobench.bytesEcho", func(a echoArgs[[]byte]) (struct{}, error) {
		return struct{}{}, echo(a, func(v []byte) bool { return len(v) == 0 })
	})
)

func echo[T any](a echoArgs[T], stop func(T) bool) error {
	for {
		v, err := a.In.Get()
		if err != nil {
			return err
		}
		if err := a.Out.Put(v); err != nil {
			return err
		}
		if stop(v) {
			return nil
		}
	}
}

// startEcho starts the echo child of two new queues.
func startEcho[T any](f *executor.Func[echoArgs[T], struct{}]) (echoArgs[T], *aio.Process, error) {
	a := echoArgs[T]{In: aio.NewQueue[T](0), Out: aio.NewQueue[T](0)}
	p := aio.NewProcess(f.Bind(a))
	if err := p.Start(); err != nil {
		return a, nil, err
	}
	return a, p, nil
}

// stopEcho sends the stop item through the child and waits for it to exit.
func stopEcho[T any](a echoArgs[T], p *aio.Process, stop T) error {
	if err := a.In.Put(stop); err != nil {
		return err
	}
	if _, err := a.Out.Get(); err != nil {
		return err
	}
	return joinChild(p)
}

// joinChild waits (at most 10 s, as the twin's join(10)) for a child that
// should be exiting, and fails unless it exited with status 0.
func joinChild(p *aio.Process) error {
	ok, err := p.JoinTimeout(10 * time.Second)
	if err != nil {
		return err
	}
	if !ok {
		p.Kill()
		p.Join()
		return errors.New("the child did not exit within 10 s")
	}
	if code, _ := p.ExitCode(); code != 0 {
		return fmt.Errorf("the child exited with status %d", code)
	}
	return p.Close()
}

// stream puts every item into a.In from a putter goroutine, at most
// inflight outstanding (put and not yet got back), gets as many from a.Out
// in this goroutine, and passes each to check. It returns the time from
// the first Put to the last Get.
func stream[T any](a echoArgs[T], items []T, inflight int, check func(i int, v T) error) (time.Duration, error) {
	tokens := make(chan struct{}, inflight)
	done := make(chan struct{})
	var putErr error
	var wg sync.WaitGroup
	start := time.Now()
	wg.Go(func() {
		for _, v := range items {
			select {
			case tokens <- struct{}{}:
			case <-done:
				return
			}
			if err := a.In.Put(v); err != nil {
				putErr = err
				return
			}
		}
	})
	var err error
	for i := range items {
		var v T
		if v, err = a.Out.Get(); err != nil {
			break
		}
		<-tokens
		if err = check(i, v); err != nil {
			break
		}
	}
	elapsed := time.Since(start)
	close(done)
	wg.Wait()
	return elapsed, errors.Join(err, putErr)
}

func benchQueueSmall(b *bench, n int) error {
	a, p, err := startEcho(intEcho)
	if err != nil {
		return err
	}
	items := make([]int, n)
	for i := range items {
		items[i] = i
	}
	inOrder := func(i, v int) error {
		if v != i {
			return fmt.Errorf("item %d came back as %d", i, v)
		}
		return nil
	}
	if _, err := stream(a, items[:min(n, warmSmall)], smallInflight, inOrder); err != nil {
		return err
	}
	best, err := bestOf(func() (time.Duration, error) {
		sum := 0
		d, err := stream(a, items, smallInflight, func(_, v int) error { sum += v; return nil })
		if err == nil && sum != n*(n-1)/2 {
			err = fmt.Errorf("the items came back summing to %d, want %d", sum, n*(n-1)/2)
		}
		return d, err
	})
	if err != nil {
		return err
	}
	if err := stopEcho(a, p, stopItem); err != nil {
		return err
	}
	b.emit(implAsyncgo, "queue_small", "items/s", float64(n)/best.Seconds())
	b.emit(implAsyncgo, "queue_small", "µs/item", float64(best.Nanoseconds())/1e3/float64(n))
	return nil
}

func randomPayload() ([]byte, error) {
	payload := make([]byte, big)
	_, err := rand.Read(payload)
	return payload, err
}

func emitBig(b *bench, impl, name string, n int, best time.Duration) {
	b.emit(impl, name, "MB/s", float64(n)*big/best.Seconds()/1e6)
	b.emit(impl, name, "items/s", float64(n)/best.Seconds())
}

func benchQueue2MiB(b *bench, n int) error {
	payload, err := randomPayload()
	if err != nil {
		return err
	}
	a, p, err := startEcho(bytesEcho)
	if err != nil {
		return err
	}
	repeated := func(k int) [][]byte {
		items := make([][]byte, k)
		for i := range items {
			items[i] = payload
		}
		return items
	}
	if _, err := stream(a, repeated(bigInflight), bigInflight, func(i int, v []byte) error {
		if !bytes.Equal(v, payload) {
			return fmt.Errorf("warm-up item %d came back changed", i)
		}
		return nil
	}); err != nil {
		return err
	}
	items := repeated(n)
	best, err := bestOf(func() (time.Duration, error) {
		return stream(a, items, bigInflight, func(i int, v []byte) error {
			if len(v) != big {
				return fmt.Errorf("item %d came back with %d bytes", i, len(v))
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	if err := stopEcho(a, p, []byte{}); err != nil {
		return err
	}
	emitBig(b, implAsyncgo, "queue_2mib", n, best)
	return nil
}

// ---- round trips ----

// roundtrips times n calls of one (the best of repeat runs, after
// min(n, warmRoundtrips) untimed) and returns µs per call.
func roundtrips(n int, one func(i int) error) (float64, error) {
	for i := 0; i < min(n, warmRoundtrips); i++ {
		if err := one(i); err != nil {
			return 0, err
		}
	}
	best, err := bestOf(func() (time.Duration, error) {
		start := time.Now()
		for i := 0; i < n; i++ {
			if err := one(i); err != nil {
				return 0, err
			}
		}
		return time.Since(start), nil
	})
	return float64(best.Nanoseconds()) / 1e3 / float64(n), err
}

// total is how many round trips roundtrips(n, ...) makes: the child of a
// round-trip workload does as many and exits (Python's loops for ever and
// is terminated).
func total(n int) int { return min(n, warmRoundtrips) + repeat*n }

type eventArgs struct {
	E1, E2 *aio.Event
	N      int
}

var eventChild = executor.Register("aiobench.eventChild", func(a eventArgs) (struct{}, error) {
	for i := 0; i < a.N; i++ {
		if err := a.E1.Wait(); err != nil {
			return struct{}{}, err
		}
		if err := a.E1.Clear(); err != nil {
			return struct{}{}, err
		}
		if err := a.E2.Set(); err != nil {
			return struct{}{}, err
		}
	}
	return struct{}{}, nil
})

func benchEventRoundtrip(b *bench, n int) error {
	e1, e2 := aio.NewEvent(), aio.NewEvent()
	p := aio.NewProcess(eventChild.Bind(eventArgs{E1: e1, E2: e2, N: total(n)}))
	if err := p.Start(); err != nil {
		return err
	}
	us, err := roundtrips(n, func(int) error {
		if err := e1.Set(); err != nil {
			return err
		}
		if err := e2.Wait(); err != nil {
			return err
		}
		return e2.Clear()
	})
	if err != nil {
		p.Kill()
		p.Join()
		return err
	}
	if err := joinChild(p); err != nil {
		return err
	}
	b.emit(implAsyncgo, "event_roundtrip", "µs/roundtrip", us)
	return nil
}

type lockArgs struct {
	L1, L2 *aio.Lock
	N      int
}

var lockChild = executor.Register("aiobench.lockChild", func(a lockArgs) (struct{}, error) {
	for i := 0; i < a.N; i++ {
		if err := a.L1.Acquire(); err != nil {
			return struct{}{}, err
		}
		if err := a.L2.Release(); err != nil {
			return struct{}{}, err
		}
	}
	return struct{}{}, nil
})

func benchLockRoundtrip(b *bench, n int) error {
	l1, l2 := aio.NewLock(), aio.NewLock()
	for _, l := range []*aio.Lock{l1, l2} {
		if ok, err := l.TryAcquire(); !ok || err != nil {
			return fmt.Errorf("a new lock: TryAcquire() = %v, %v; want true, nil", ok, err)
		}
	}
	p := aio.NewProcess(lockChild.Bind(lockArgs{L1: l1, L2: l2, N: total(n)}))
	if err := p.Start(); err != nil {
		return err
	}
	us, err := roundtrips(n, func(int) error {
		if err := l1.Release(); err != nil {
			return err
		}
		return l2.Acquire()
	})
	if err != nil {
		p.Kill()
		p.Join()
		return err
	}
	if err := joinChild(p); err != nil {
		return err
	}
	b.emit(implAsyncgo, "lock_roundtrip", "µs/roundtrip", us)
	return nil
}

func benchQueueRoundtrip(b *bench, n int) error {
	a, p, err := startEcho(intEcho)
	if err != nil {
		return err
	}
	us, err := roundtrips(n, func(i int) error {
		if err := a.In.Put(i); err != nil {
			return err
		}
		v, err := a.Out.Get()
		if err == nil && v != i {
			err = fmt.Errorf("item %d came back as %d", i, v)
		}
		return err
	})
	if err != nil {
		p.Kill()
		p.Join()
		return err
	}
	if err := stopEcho(a, p, stopItem); err != nil {
		return err
	}
	b.emit(implAsyncgo, "queue_roundtrip", "µs/roundtrip", us)
	return nil
}

// ---- Pool.map ----

var square = executor.Register("aiobench.square", func(x int) (int, error) { return x * x, nil })

func benchPoolMap(b *bench, n int) error {
	pool, err := aio.NewPool(aio.PoolOptions{Processes: 2})
	if err != nil {
		return err
	}
	defer func() {
		pool.Terminate()
		pool.Join()
	}()
	items := make([]int, n)
	want := 0
	for i := range items {
		items[i] = i
		want += i * i
	}
	warm := items[:min(n, warmPool)]
	got, err := aio.Map(pool, square, warm, poolChunk)
	if err != nil {
		return err
	}
	for i, v := range got {
		if v != i*i {
			return fmt.Errorf("warm-up: square(%d) = %d", i, v)
		}
	}
	best, err := bestOf(func() (time.Duration, error) {
		start := time.Now()
		got, err := aio.Map(pool, square, items, poolChunk)
		d := time.Since(start)
		if err != nil {
			return 0, err
		}
		sum := 0
		for _, v := range got {
			sum += v
		}
		if len(got) != n || sum != want {
			return 0, fmt.Errorf("aio.Map gave %d results summing to %d, want %d summing to %d", len(got), sum, n, want)
		}
		return d, nil
	})
	if err != nil {
		return err
	}
	b.emit(implAsyncgo, "pool_map", "items/s", float64(n)/best.Seconds())
	return nil
}

// ---- the Go floors: this binary re-executed, raw descriptors ----

// The floors a re-executed child serves, named by rawEnv.
const (
	rawSocket      = "socketpair" // fd 3: a socket to echo frames on
	rawPipe        = "pipe"       // fd 3 to read bytes from, fd 4 to answer on
	rawPipeNetpoll = "pipe-netpoll"
)

// rawChild serves a floor and returns true if this process was started as
// a floor's child (rawEnv set); otherwise it returns false at once. Call it
// first thing in main, and in TestMain.
func rawChild() bool {
	mode, ok := os.LookupEnv(rawEnv)
	if !ok {
		return false
	}
	var err error
	switch mode {
	case rawSocket:
		err = socketEcho(os.NewFile(3, "socket"))
	case rawPipe, rawPipeNetpoll:
		if mode == rawPipeNetpoll {
			// NewFile of a non-blocking descriptor gives a File that
			// the netpoller waits for.
			for _, fd := range []int{3, 4} {
				if err = syscall.SetNonblock(fd, true); err != nil {
					break
				}
			}
		}
		if err == nil {
			err = pipeEcho(os.NewFile(3, "pipe-in"), os.NewFile(4, "pipe-out"))
		}
	default:
		err = fmt.Errorf("unknown %s=%q", rawEnv, mode)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "aiobench: floor child: %v\n", err)
		os.Exit(1)
	}
	return true
}

// startRaw starts this binary as a floor's child with files as its fds
// 3, 4, ... and closes them here (the child holds them now).
func startRaw(mode string, files ...*os.File) (*exec.Cmd, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), rawEnv+"="+mode)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.ExtraFiles = files
	err = cmd.Start()
	for _, f := range files {
		f.Close()
	}
	return cmd, err
}

// waitRaw waits for a floor's child whose input has been closed.
func waitRaw(cmd *exec.Cmd) error {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
		return errors.New("the floor's child did not exit within 10 s")
	}
}

// socketEcho is raw_socketpair_2mib's child: it reads each whole frame
// into its buffer and sends it back, until EOF.
func socketEcho(sock *os.File) error {
	hdr := make([]byte, 4)
	buf := make([]byte, big)
	for {
		if _, err := io.ReadFull(sock, hdr); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		size := int(binary.BigEndian.Uint32(hdr))
		if size > len(buf) {
			buf = make([]byte, size)
		}
		if _, err := io.ReadFull(sock, buf[:size]); err != nil {
			return err
		}
		if _, err := sock.Write(hdr); err != nil {
			return err
		}
		if _, err := sock.Write(buf[:size]); err != nil {
			return err
		}
	}
}

// pipeEcho is pipe_roundtrip's child: a byte back for every byte, until
// EOF.
func pipeEcho(in, out *os.File) error {
	b := make([]byte, 1)
	for {
		if _, err := in.Read(b); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		if _, err := out.Write(b); err != nil {
			return err
		}
	}
}

func socketpair() (*os.File, *os.File, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, os.NewSyscallError("socketpair", err)
	}
	return os.NewFile(uintptr(fds[0]), "socket"), os.NewFile(uintptr(fds[1]), "socket"), nil
}

// pipe returns a pipe whose ends block in read and write (os.Pipe's are
// non-blocking, waited for by the netpoller), or are non-blocking too if
// netpoll is set.
func pipe(netpoll bool) (r, w *os.File, err error) {
	var fds [2]int
	if err := syscall.Pipe2(fds[:], syscall.O_CLOEXEC); err != nil {
		return nil, nil, os.NewSyscallError("pipe2", err)
	}
	if netpoll {
		for _, fd := range fds {
			if err := syscall.SetNonblock(fd, true); err != nil {
				syscall.Close(fds[0])
				syscall.Close(fds[1])
				return nil, nil, err
			}
		}
	}
	return os.NewFile(uintptr(fds[0]), "pipe-r"), os.NewFile(uintptr(fds[1]), "pipe-w"), nil
}

func benchRawSocketpair(b *bench, n int) error {
	payload, err := randomPayload()
	if err != nil {
		return err
	}
	sock, theirs, err := socketpair()
	if err != nil {
		return err
	}
	cmd, err := startRaw(rawSocket, theirs)
	if err != nil {
		sock.Close()
		return err
	}
	hdrOut := binary.BigEndian.AppendUint32(nil, big)
	hdrIn := make([]byte, 4)
	buf := make([]byte, big)
	round := func(count int, check bool) (time.Duration, error) {
		tokens := make(chan struct{}, bigInflight)
		done := make(chan struct{})
		var writeErr error
		var wg sync.WaitGroup
		start := time.Now()
		wg.Go(func() {
			for i := 0; i < count; i++ {
				select {
				case tokens <- struct{}{}:
				case <-done:
					return
				}
				if _, err := sock.Write(hdrOut); err != nil {
					writeErr = err
					return
				}
				if _, err := sock.Write(payload); err != nil {
					writeErr = err
					return
				}
			}
		})
		var err error
		for i := 0; i < count && err == nil; i++ {
			if _, err = io.ReadFull(sock, hdrIn); err != nil {
				break
			}
			if size := binary.BigEndian.Uint32(hdrIn); size != big {
				err = fmt.Errorf("frame %d has length %d", i, size)
				break
			}
			if _, err = io.ReadFull(sock, buf); err == nil && check && !bytes.Equal(buf, payload) {
				err = fmt.Errorf("frame %d came back changed", i)
			}
			<-tokens
		}
		d := time.Since(start)
		close(done)
		if err != nil {
			cmd.Process.Kill() // the writer's write fails instead of blocking
		}
		wg.Wait()
		return d, errors.Join(err, writeErr)
	}
	_, err = round(bigInflight, true)
	var best time.Duration
	if err == nil {
		best, err = bestOf(func() (time.Duration, error) { return round(n, false) })
	}
	sock.Close()
	if err = errors.Join(err, waitRaw(cmd)); err != nil {
		return err
	}
	emitBig(b, implGoRaw, "raw_socketpair_2mib", n, best)
	return nil
}

func benchPipeRoundtrip(b *bench, n int) error {
	for _, netpoll := range []bool{false, true} {
		name, mode := "pipe_roundtrip", rawPipe
		if netpoll {
			name, mode = "pipe_roundtrip_netpoll", rawPipeNetpoll
		}
		us, err := pipeRoundtrip(n, mode, netpoll)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		b.emit(implGoRaw, name, "µs/roundtrip", us)
	}
	return nil
}

func pipeRoundtrip(n int, mode string, netpoll bool) (float64, error) {
	r1, w1, err := pipe(netpoll)
	if err != nil {
		return 0, err
	}
	r2, w2, err := pipe(netpoll)
	if err != nil {
		r1.Close()
		w1.Close()
		return 0, err
	}
	defer r2.Close()
	cmd, err := startRaw(mode, r1, w2)
	if err != nil {
		w1.Close()
		return 0, err
	}
	out, in := []byte{'x'}, make([]byte, 1)
	us, err := roundtrips(n, func(int) error {
		if _, err := w1.Write(out); err != nil {
			return err
		}
		if _, err := r2.Read(in); err != nil {
			return err
		}
		if in[0] != 'x' {
			return fmt.Errorf("read %q, want %q", in, out)
		}
		return nil
	})
	w1.Close()
	return us, errors.Join(err, waitRaw(cmd))
}

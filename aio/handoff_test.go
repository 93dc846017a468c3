//go:build linux

package aio_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/aio"
	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/loop"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

type handoffArgs struct {
	C *aio.Connection
	// Mode is how the worker adopts each connection: "streams"
	// (OpenStreams), "adopt" (a transport and a Protocol), "netconn" (a
	// net.Conn served by a goroutine), or "greet" (streams: it writes
	// "w\n" and closes).
	Mode string
}

// cloexecTag says whether fd is close-on-exec, as the worker reports it.
func cloexecTag(fd int) string {
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	if err == nil && flags&unix.FD_CLOEXEC != 0 {
		return "cloexec"
	}
	return "inherit"
}

// handoffWorker runs a loop that takes connections from its Connection
// until EOF and answers each line of each with the line prefixed by
// whether the received descriptor was close-on-exec.
var handoffWorker = executor.Register("aio_test.handoffWorker", func(a handoffArgs) (struct{}, error) {
	defer a.C.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	return struct{}{}, loop.RunMain(context.Background(), func(ctx context.Context) error {
		return loop.WithTaskGroup(ctx, func(ctx context.Context, tg *loop.TaskGroup) error {
			for {
				h, err := a.C.CoroRecvConn(ctx)
				if errors.Is(err, io.EOF) {
					return nil
				}
				if err != nil {
					return err
				}
				tag := cloexecTag(h.Fd())
				switch a.Mode {
				case "streams", "greet":
					r, w, err := h.OpenStreams(ctx, 0)
					if err != nil {
						return err
					}
					_ = tg.Go(func(ctx context.Context) error {
						defer w.Close()
						if a.Mode == "greet" {
							w.Write([]byte("w\n"))
							return nil
						}
						for {
							line, err := r.ReadLine(ctx)
							if err != nil || len(line) == 0 {
								return err
							}
							w.Write([]byte(tag + " " + string(line)))
						}
					})
				case "adopt":
					if _, _, err := h.Adopt(ctx, func() loop.BaseProtocol { return &lineEcho{tag: tag} }); err != nil {
						return err
					}
				case "netconn":
					nc, err := h.NetConn()
					if err != nil {
						return err
					}
					wg.Add(1)
					go func() {
						defer wg.Done()
						defer nc.Close()
						br := bufio.NewReader(nc)
						for {
							line, err := br.ReadString('\n')
							if err != nil {
								return
							}
							if _, err := nc.Write([]byte(tag + " " + line)); err != nil {
								return
							}
						}
					}()
				default:
					return fmt.Errorf("bad mode %q", a.Mode)
				}
			}
		})
	})
})

// lineEcho is a Protocol that answers each line with tag and the line.
type lineEcho struct {
	loop.NopProtocol
	tag  string
	t    loop.Transport
	part []byte
}

func (p *lineEcho) ConnectionMade(t loop.Transport) { p.t = t }
func (p *lineEcho) DataReceived(data []byte) {
	p.part = append(p.part, data...)
	for {
		i := strings.IndexByte(string(p.part), '\n')
		if i < 0 {
			return
		}
		p.t.Write([]byte(p.tag + " " + string(p.part[:i+1])))
		p.part = p.part[i+1:]
	}
}

// handoffQuit closes its end at once.
var handoffQuit = executor.Register("aio_test.handoffQuit", func(a handoffArgs) (struct{}, error) {
	return struct{}{}, a.C.Close()
})

// countingConn counts the Closes of the connection under it.
type countingConn struct {
	net.Conn
	closes atomic.Int32
	closed chan struct{}
}

func newCounting(c net.Conn) *countingConn {
	return &countingConn{Conn: c, closed: make(chan struct{})}
}

func (c *countingConn) SyscallConn() (syscall.RawConn, error) {
	return c.Conn.(syscall.Conn).SyscallConn()
}

func (c *countingConn) Close() error {
	if c.closes.Add(1) == 1 {
		close(c.closed)
	}
	return c.Conn.Close()
}

// countFDs counts this process's descriptors but for the memfds of
// queues, which are closed as their queues are collected, at the
// collector's pace (TestQueueMemoryReleased checks that they are).
func countFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if l, _ := os.Readlink("/proc/self/fd/" + e.Name()); !strings.HasPrefix(l, "/memfd:asyncgo-queue") {
			n++
		}
	}
	return n
}

// checkFDs fails unless the process is back to before descriptors; the
// reaper of a child closes its side of the child's descriptors just after
// Join returns, so it waits a little for the count to settle.
func checkFDs(t testing.TB, before int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for countFDs(t) != before {
		if time.Now().After(deadline) {
			t.Fatalf("%d descriptors open, %d before", countFDs(t), before)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// startWorker starts fn's child with the far end of a duplex Pipe and
// returns the near end.
func startWorker(t testing.TB, fn *executor.Func[handoffArgs, struct{}], mode string) (*aio.Connection, *aio.Process) {
	t.Helper()
	a, b, err := aio.Pipe(true)
	if err != nil {
		t.Fatal(err)
	}
	p := aio.NewProcess(fn.Bind(handoffArgs{C: b, Mode: mode}))
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	b.Close() // the child has its own
	return a, p
}

func joinWorker(t testing.TB, p *aio.Process, wantCode int) {
	t.Helper()
	if ok, err := p.JoinTimeout(20 * time.Second); err != nil || !ok {
		t.Fatalf("the worker did not exit: %v", err)
	}
	if code, _ := p.ExitCode(); code != wantCode {
		t.Errorf("the worker's exit code is %d; want %d", code, wantCode)
	}
	p.Close()
}

// tcpPair returns a connection accepted on a fresh listener and its
// client's end.
func tcpPair(t testing.TB) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	return server.(*net.TCPConn), client.(*net.TCPConn)
}

// A connection accepted here, its first line read, goes to a worker
// process with the bytes read past the line; the worker answers on it,
// the bytes read here first, and the sender's copy was closed once: for
// each kind of connection SendConn takes and each way of adopting one.
func TestHandoffAcrossProcesses(t *testing.T) {
	before := countFDs(t)
	for _, tc := range []struct{ mode, send string }{
		{"streams", "net.Conn"},
		{"adopt", "loop.Socket"},
		{"netconn", "os.File"},
		{"streams", "fd"},
		{"adopt", "counting"},
	} {
		t.Run(tc.mode+","+tc.send, func(t *testing.T) {
			a, p := startWorker(t, handoffWorker, tc.mode)
			defer joinWorker(t, p, 0)
			defer a.Close()
			server, client := tcpPair(t)
			defer client.Close()
			if _, err := client.Write([]byte("ROUTE a\nhello\nwor")); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(server)
			if line, err := br.ReadString('\n'); err != nil || line != "ROUTE a\n" {
				t.Fatalf("first line %q, %v", line, err)
			}
			// The rest may or may not have come with the line: what the
			// reader holds travels with the connection, the rest is in
			// the socket.
			prefix, _ := br.Peek(br.Buffered())
			var conn any
			var check func()
			switch tc.send {
			case "net.Conn":
				conn = server
				check = func() {
					if err := server.Close(); !errors.Is(err, net.ErrClosed) {
						t.Errorf("Close after the hand-off = %v; want net.ErrClosed (SendConn closed it)", err)
					}
				}
			case "loop.Socket":
				s, err := loop.SocketFromConn(server)
				if err != nil {
					t.Fatal(err)
				}
				conn = s
				check = func() {
					if s.Fd() != -1 {
						t.Errorf("the Socket's Fd is %d after the hand-off; want -1", s.Fd())
					}
				}
			case "os.File":
				f, err := server.File()
				if err != nil {
					t.Fatal(err)
				}
				server.Close()
				conn = f
				check = func() {
					if err := f.Close(); !errors.Is(err, os.ErrClosed) {
						t.Errorf("Close after the hand-off = %v; want os.ErrClosed", err)
					}
				}
			case "fd":
				f, err := server.File()
				if err != nil {
					t.Fatal(err)
				}
				server.Close()
				fd, err := unix.Dup(int(f.Fd()))
				if err != nil {
					t.Fatal(err)
				}
				f.Close()
				conn = fd
				check = func() {
					if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != unix.EBADF {
						t.Errorf("fd %d after the hand-off: F_GETFD = %v; want EBADF", fd, err)
					}
				}
			case "counting":
				cc := newCounting(server)
				conn = cc
				check = func() {
					if n := cc.closes.Load(); n != 1 {
						t.Errorf("the sender's copy was closed %d times; want 1", n)
					}
				}
			}
			if err := a.SendConn(conn, prefix); err != nil {
				t.Fatalf("SendConn = %v", err)
			}
			check()
			if _, err := client.Write([]byte("ld\n")); err != nil {
				t.Fatal(err)
			}
			client.CloseWrite()
			got, err := io.ReadAll(client)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff("cloexec hello\ncloexec world\n", string(got)); diff != "" {
				t.Errorf("the client read (-want +got):\n%s", diff)
			}
		})
	}
	checkFDs(t, before)
}

// A hand-off to a worker that has exited, or was killed, or closed its
// end without receiving, fails with ErrHandoffFailed, and the connection
// is still the sender's: it answers on it itself, and closes it.
func TestHandoffToDeadWorker(t *testing.T) {
	before := countFDs(t)
	for _, how := range []string{"exited", "killed", "closed unread"} {
		t.Run(how, func(t *testing.T) {
			var a *aio.Connection
			var p *aio.Process
			switch how {
			case "exited":
				a, p = startWorker(t, handoffQuit, "")
				joinWorker(t, p, 0)
			case "killed":
				a, p = startWorker(t, handoffWorker, "streams")
				p.Kill()
				joinWorker(t, p, -int(syscall.SIGKILL))
			case "closed unread":
				var b *aio.Connection
				var err error
				a, b, err = aio.Pipe(true)
				if err != nil {
					t.Fatal(err)
				}
				// The message reaches b, which closes with it unread:
				// the kernel closes the descriptor in flight.
				go func() {
					b.Poll(-1)
					b.Close()
				}()
			}
			defer a.Close()
			server, client := tcpPair(t)
			defer client.Close()
			cc := newCounting(server)
			err := a.SendConn(cc, []byte("pre"))
			if !errors.Is(err, aio.ErrHandoffFailed) {
				t.Fatalf("SendConn to a dead worker = %v; want ErrHandoffFailed", err)
			}
			if n := cc.closes.Load(); n != 0 {
				t.Fatalf("the failed hand-off closed the connection %d times", n)
			}
			if _, err := cc.Write([]byte("still mine\n")); err != nil {
				t.Fatalf("Write on the connection after the failed hand-off: %v", err)
			}
			cc.Close()
			got, err := io.ReadAll(client)
			if err != nil || string(got) != "still mine\n" {
				t.Errorf("the client read %q, %v; want only the sender's answer", got, err)
			}
		})
	}
	checkFDs(t, before)
}

// The receiver is SIGKILLed while hand-offs are in flight: each SendConn
// either succeeds, and the sender's copy is closed once, or fails with
// ErrHandoffFailed, and then the connection is the sender's alone: the
// peer reads what the sender writes, and nothing from the worker, then
// EOF when the sender closes it (no copy is left in the dead worker). No
// descriptor leaks.
func TestHandoffRacingReceiverDeath(t *testing.T) {
	before := countFDs(t)
	a, p := startWorker(t, handoffWorker, "greet")
	const senders, killAfter = 4, 40
	var acked, failed atomic.Int32
	kill := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	errs := make(chan error, senders)
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- func() error {
				for fails := 0; fails < 3; {
					fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
					if err != nil {
						return err
					}
					peer := os.NewFile(uintptr(fds[1]), "peer")
					f := os.NewFile(uintptr(fds[0]), "conn")
					nc, err := net.FileConn(f)
					f.Close()
					if err != nil {
						peer.Close()
						return err
					}
					cc := newCounting(nc)
					err = a.SendConn(cc, []byte("p"))
					switch {
					case err == nil:
						if n := cc.closes.Load(); n != 1 {
							return fmt.Errorf("acknowledged, the sender's copy was closed %d times", n)
						}
						got, _ := io.ReadAll(peer)
						if s := string(got); s != "w\n" && s != "" {
							return fmt.Errorf("after an acknowledged hand-off the peer read %q", s)
						}
						if acked.Add(1) == killAfter {
							once.Do(func() { close(kill) })
						}
					case errors.Is(err, aio.ErrHandoffFailed):
						fails++
						failed.Add(1)
						if n := cc.closes.Load(); n != 0 {
							return fmt.Errorf("failed, the sender's copy was closed %d times", n)
						}
						if _, err := cc.Write([]byte("s\n")); err != nil {
							return fmt.Errorf("the sender cannot write after a failed hand-off: %v", err)
						}
						cc.Close()
						got, _ := io.ReadAll(peer)
						if string(got) != "s\n" {
							return fmt.Errorf("after a failed hand-off the peer read %q; want only the sender's s", got)
						}
					default:
						peer.Close()
						cc.Close()
						return fmt.Errorf("SendConn = %v; want nil or ErrHandoffFailed", err)
					}
					peer.Close()
				}
				return nil
			}()
		}()
	}
	<-kill
	p.Kill()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	t.Logf("%d hand-offs acknowledged, %d failed", acked.Load(), failed.Load())
	a.Close()
	joinWorker(t, p, -int(syscall.SIGKILL))
	checkFDs(t, before)
}

// Within one process: the hand-off message is refused by Recv and
// RecvHandle and left for RecvConn; a message the receiver sends before
// it acknowledges reaches the sender's Recv after SendConn; the received
// descriptor is close-on-exec; NetConn reads the prefix first.
func TestHandoffInterleaved(t *testing.T) {
	before := countFDs(t)
	a, b, err := aio.Pipe(true)
	if err != nil {
		t.Fatal(err)
	}
	server, client := tcpPair(t)
	defer client.Close()
	cc := newCounting(server)
	sent := make(chan error, 1)
	go func() { sent <- a.SendConn(cc, []byte("pre ")) }()
	var s string
	if err := b.Recv(&s); err == nil || !strings.Contains(err.Error(), "RecvConn") {
		t.Errorf("Recv of a hand-off = %v; want an error naming RecvConn", err)
	}
	if _, err := b.RecvHandle(); err == nil {
		t.Error("RecvHandle took a hand-off")
	}
	if err := b.Send("before the ack"); err != nil {
		t.Fatal(err)
	}
	h, err := b.RecvConn()
	if err != nil {
		t.Fatal(err)
	}
	if err := <-sent; err != nil {
		t.Fatalf("SendConn = %v", err)
	}
	if n := cc.closes.Load(); n != 1 {
		t.Errorf("the sender's copy was closed %d times; want 1", n)
	}
	if err := a.Recv(&s); err != nil || s != "before the ack" {
		t.Errorf("a.Recv after SendConn = %q, %v", s, err)
	}
	if tag := cloexecTag(h.Fd()); tag != "cloexec" {
		t.Errorf("the received descriptor is %s", tag)
	}
	if string(h.Prefix()) != "pre " {
		t.Errorf("Prefix = %q", h.Prefix())
	}
	nc, err := h.NetConn()
	if err != nil {
		t.Fatal(err)
	}
	if h.Fd() != -1 {
		t.Error("Fd after NetConn is not -1")
	}
	if _, err := h.Socket(); !errors.Is(err, aio.ErrHandedConnTaken) {
		t.Errorf("a second adoption = %v; want ErrHandedConnTaken", err)
	}
	client.Write([]byte("socket\n"))
	line, err := bufio.NewReader(nc).ReadString('\n')
	if err != nil || line != "pre socket\n" {
		t.Errorf("NetConn read %q, %v; want the prefix first", line, err)
	}
	nc.Close()
	client.Close()
	a.Close()
	b.Close()
	checkFDs(t, before)
}

// Several hand-offs wait on one Connection at once; each is acknowledged
// to its own SendConn.
func TestHandoffConcurrentSenders(t *testing.T) {
	before := countFDs(t)
	a, b, err := aio.Pipe(true)
	if err != nil {
		t.Fatal(err)
	}
	const n = 8
	var wg sync.WaitGroup
	conns := make([]*countingConn, n)
	clients := make([]*net.TCPConn, n)
	for i := range n {
		server, client := tcpPair(t)
		conns[i], clients[i] = newCounting(server), client
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := a.SendConn(conns[i], fmt.Appendf(nil, "%d", i)); err != nil {
				t.Errorf("SendConn %d = %v", i, err)
			}
		}()
	}
	seen := map[string]bool{}
	for range n {
		h, err := b.RecvConn()
		if err != nil {
			t.Fatal(err)
		}
		seen[string(h.Prefix())] = true
		h.Close()
	}
	wg.Wait()
	for i, c := range conns {
		if c.closes.Load() != 1 {
			t.Errorf("conn %d closed %d times", i, c.closes.Load())
		}
		clients[i].Close()
	}
	if len(seen) != n {
		t.Errorf("received %d distinct prefixes: %v", len(seen), seen)
	}
	a.Close()
	b.Close()
	checkFDs(t, before)
}

// The sender's end closed while SendConn waits for the acknowledgement:
// ErrHandoffUnsettled, and the connection is closed (the receiver may
// have it). The receiver, whose acknowledgement cannot go, drops its copy.
func TestHandoffSenderClosesWhileWaiting(t *testing.T) {
	before := countFDs(t)
	a, b, err := aio.Pipe(true)
	if err != nil {
		t.Fatal(err)
	}
	server, client := tcpPair(t)
	defer client.Close()
	cc := newCounting(server)
	sent := make(chan error, 1)
	go func() { sent <- a.SendConn(cc, nil) }()
	if ok, err := b.Poll(-1); !ok || err != nil {
		t.Fatalf("Poll = %v, %v", ok, err)
	}
	a.Close()
	if err := <-sent; !errors.Is(err, aio.ErrHandoffUnsettled) {
		t.Errorf("SendConn with its end closed = %v; want ErrHandoffUnsettled", err)
	}
	if n := cc.closes.Load(); n != 1 {
		t.Errorf("the sender's copy was closed %d times; want 1", n)
	}
	if h, err := b.RecvConn(); err == nil {
		h.Close()
		t.Error("RecvConn acknowledged to a closed end")
	}
	b.Close()
	if got, _ := io.ReadAll(client); len(got) != 0 {
		t.Errorf("the client read %q", got)
	}
	client.Close()
	checkFDs(t, before)
}

// CoroSendConn off a loop with a ctx that ends, to a receiver that never
// receives: it returns ErrHandoffUnsettled at the deadline, not never, and
// the sender's copy is closed once, when the hand-off settles (here: the
// receiver's end closes unread).
func TestHandoffSendCtxEnds(t *testing.T) {
	before := countFDs(t)
	a, b, err := aio.Pipe(true)
	if err != nil {
		t.Fatal(err)
	}
	server, client := tcpPair(t)
	defer client.Close()
	cc := newCounting(server)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err = a.CoroSendConn(ctx, cc, nil)
	if !errors.Is(err, aio.ErrHandoffUnsettled) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("CoroSendConn past its deadline = %v; want ErrHandoffUnsettled and the deadline", err)
	}
	b.Close() // unread: the hand-off fails, and the copy is closed for the caller
	deadline := time.Now().Add(10 * time.Second)
	for cc.closes.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := cc.closes.Load(); n != 1 {
		t.Errorf("the sender's copy was closed %d times; want 1", n)
	}
	a.Close()
	client.Close()
	checkFDs(t, before)
}

// On a loop: CoroSendConn and CoroRecvConn; a CoroRecvConn cancelled
// while waiting takes nothing; a CoroSendConn cancelled after its message
// went returns at once with ErrHandoffUnsettled, and the connection is
// closed once the receiver answers; a *loop.Socket is closed on its loop.
func TestHandoffCoro(t *testing.T) {
	before := countFDs(t)
	a, b, err := aio.Pipe(true)
	if err != nil {
		t.Fatal(err)
	}
	err = loop.RunMain(context.Background(), func(ctx context.Context) error {
		l, _ := loop.RunningLoop(ctx)
		// A receive cancelled while nothing came takes nothing.
		rt := loop.CreateTask(l, func(ctx context.Context) (*aio.HandedConn, error) { return b.CoroRecvConn(ctx) })
		if err := loop.Sleep(ctx, 0); err != nil {
			return err
		}
		rt.Cancel("")
		if _, err := rt.Await(ctx); !errors.Is(err, loop.ErrCancelled) {
			t.Errorf("cancelled CoroRecvConn = %v", err)
		}

		// A *loop.Socket on the loop: handed off and adopted as streams.
		server, client := tcpPair(t)
		defer client.Close()
		s, err := loop.SocketFromConn(server)
		if err != nil {
			return err
		}
		recv := loop.CreateTask(l, func(ctx context.Context) (*aio.HandedConn, error) { return b.CoroRecvConn(ctx) })
		if err := a.CoroSendConn(ctx, s, []byte("one\n")); err != nil {
			return fmt.Errorf("CoroSendConn = %w", err)
		}
		if s.Fd() != -1 {
			t.Error("the Socket is open after CoroSendConn")
		}
		h, err := recv.Await(ctx)
		if err != nil {
			return err
		}
		r, w, err := h.OpenStreams(ctx, 0)
		if err != nil {
			return err
		}
		go client.Write([]byte("two\n"))
		for _, want := range []string{"one\n", "two\n"} {
			line, err := r.ReadLine(ctx)
			if err != nil || string(line) != want {
				t.Errorf("ReadLine = %q, %v; want %q", line, err, want)
			}
		}
		w.Close()
		if err := w.WaitClosed(ctx); err != nil {
			return err
		}

		// Cancelled after the message went: unsettled at once; closed
		// once the receiver acknowledges.
		server2, client2 := tcpPair(t)
		defer client2.Close()
		cc := newCounting(server2)
		st := loop.CreateTask(l, func(ctx context.Context) (struct{}, error) {
			return struct{}{}, a.CoroSendConn(ctx, cc, nil)
		})
		arrived := make(chan struct{})
		go func() {
			b.Poll(-1)
			close(arrived)
		}()
		for {
			select {
			case <-arrived:
			default:
				if err := loop.Sleep(ctx, time.Millisecond); err != nil {
					return err
				}
				continue
			}
			break
		}
		st.Cancel("")
		_, err = st.Await(ctx)
		if !errors.Is(err, aio.ErrHandoffUnsettled) || !errors.Is(err, loop.ErrCancelled) {
			t.Errorf("cancelled CoroSendConn = %v; want ErrHandoffUnsettled and ErrCancelled", err)
		}
		if n := cc.closes.Load(); n != 0 {
			t.Errorf("closed %d times before the receiver answered", n)
		}
		h2, err := b.CoroRecvConn(ctx)
		if err != nil {
			return err
		}
		h2.Close()
		done := make(chan struct{})
		go func() {
			<-cc.closed
			close(done)
		}()
		for {
			select {
			case <-done:
				return nil
			default:
				if err := loop.Sleep(ctx, time.Millisecond); err != nil {
					return err
				}
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	b.Close()
	checkFDs(t, before)
}

// A CoroRecvConn waiting on its loop for the end to be readable returns
// ErrConnClosed when the end is closed, and the other end sees EOF: the
// loop watched a descriptor of its own, closed with the wait.
func TestHandoffCoroRecvClosedWhileWaiting(t *testing.T) {
	before := countFDs(t)
	a, b, err := aio.Pipe(true)
	if err != nil {
		t.Fatal(err)
	}
	err = loop.RunMain(context.Background(), func(ctx context.Context) error {
		l, _ := loop.RunningLoop(ctx)
		rt := loop.CreateTask(l, func(ctx context.Context) (*aio.HandedConn, error) { return b.CoroRecvConn(ctx) })
		if err := loop.Sleep(ctx, 0); err != nil { // rt waits
			return err
		}
		b.Close()
		if _, err := rt.Await(ctx); !errors.Is(err, aio.ErrConnClosed) {
			t.Errorf("CoroRecvConn on a closed end = %v; want ErrConnClosed", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var s string
	if err := a.Recv(&s); !errors.Is(err, io.EOF) {
		t.Errorf("Recv from the closed end = %v; want io.EOF", err)
	}
	a.Close()
	checkFDs(t, before)
}

// Hand-offs both ways on one duplex Pipe at once: each end's SendConns
// read (and park) the other's hand-offs while they wait for their
// acknowledgements, and the receives, a loop's CoroRecvConn on one end,
// blocking RecvConns on the other, are woken for what was parked.
func TestHandoffBothWays(t *testing.T) {
	before := countFDs(t)
	a, b, err := aio.Pipe(true)
	if err != nil {
		t.Fatal(err)
	}
	const n = 20
	var wg sync.WaitGroup
	send := func(c *aio.Connection, tag string) {
		defer wg.Done()
		for i := range n {
			fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				t.Error(err)
				return
			}
			unix.Close(fds[1])
			if err := c.SendConn(fds[0], fmt.Appendf(nil, "%s%d", tag, i)); err != nil {
				t.Errorf("%s: SendConn = %v", tag, err)
				unix.Close(fds[0])
			}
		}
	}
	wg.Add(2)
	go send(a, "a")
	go send(b, "b")
	var fromA []string
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range n {
			h, err := a.RecvConn()
			if err != nil {
				t.Errorf("a.RecvConn = %v", err)
				return
			}
			h.Close()
		}
	}()
	err = loop.RunMain(context.Background(), func(ctx context.Context) error {
		for range n {
			h, err := b.CoroRecvConn(ctx)
			if err != nil {
				return err
			}
			fromA = append(fromA, string(h.Prefix()))
			h.Close()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	var want []string
	for i := range n {
		want = append(want, fmt.Sprintf("a%d", i))
	}
	if diff := cmp.Diff(want, fromA); diff != "" {
		t.Errorf("b received (-want +got):\n%s", diff)
	}
	a.Close()
	b.Close()
	checkFDs(t, before)
}

// CoroSendConn's ways off the loop's fast path: a prefix larger than the
// socket takes at once (the rest goes from a goroutine), a Recv of the
// sender's end that takes the acknowledgement on its way, and a receiver
// that closed its end (ErrHandoffFailed: the connection is still ours).
func TestHandoffCoroSendSlowPaths(t *testing.T) {
	before := countFDs(t)
	a, b, err := aio.Pipe(true)
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 4<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}
	got := make(chan []byte, 1)
	go func() {
		h, err := b.RecvConn()
		if err != nil {
			t.Error(err)
			got <- nil
			return
		}
		got <- h.Prefix()
		h.Close()
	}()
	recvd := make(chan string, 1)
	err = loop.RunMain(context.Background(), func(ctx context.Context) error {
		server, client := tcpPair(t)
		defer client.Close()
		cc := newCounting(server)
		if err := a.CoroSendConn(ctx, cc, big); err != nil {
			return fmt.Errorf("CoroSendConn of a 4 MiB prefix = %w", err)
		}
		if p := <-got; !bytes.Equal(p, big) {
			t.Errorf("the 4 MiB prefix arrived as %d bytes, or changed", len(p))
		}
		if cc.closes.Load() != 1 {
			t.Errorf("closed %d times", cc.closes.Load())
		}

		// A Recv holds the sender's end: it takes the acknowledgement.
		go func() {
			var s string
			if err := a.Recv(&s); err != nil {
				t.Error(err)
			}
			recvd <- s
		}()
		server2, client2 := tcpPair(t)
		defer client2.Close()
		cc2 := newCounting(server2)
		go func() {
			h, err := b.RecvConn()
			if err != nil {
				t.Error(err)
				return
			}
			h.Close()
			b.Send("after the ack")
		}()
		if err := a.CoroSendConn(ctx, cc2, []byte("x")); err != nil {
			return fmt.Errorf("CoroSendConn with a Recv on the end = %w", err)
		}
		if cc2.closes.Load() != 1 {
			t.Errorf("closed %d times", cc2.closes.Load())
		}
		if s := <-recvd; s != "after the ack" {
			t.Errorf("the Recv got %q", s)
		}

		// The receiver is gone.
		b.Close()
		server3, client3 := tcpPair(t)
		defer client3.Close()
		cc3 := newCounting(server3)
		if err := a.CoroSendConn(ctx, cc3, nil); !errors.Is(err, aio.ErrHandoffFailed) {
			t.Errorf("CoroSendConn to a closed end = %v; want ErrHandoffFailed", err)
		}
		if cc3.closes.Load() != 0 {
			t.Errorf("a failed hand-off closed the connection")
		}
		cc3.Close()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	checkFDs(t, before)
}

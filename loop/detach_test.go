package loop_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/asyncgo/asyncgo/loop"
	"github.com/google/go-cmp/cmp"
)

// socketPair returns the two ends of a Unix stream socketpair as loop
// Sockets.
func socketPair(t *testing.T) (*loop.Socket, *loop.Socket) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	a, err := loop.SocketFromFd(fds[0])
	if err != nil {
		t.Fatal(err)
	}
	b, err := loop.SocketFromFd(fds[1])
	if err != nil {
		t.Fatal(err)
	}
	return a, b
}

// recorder is a Protocol that records its callbacks in order.
type recorder struct {
	loop.NopProtocol
	calls []string
	data  bytes.Buffer
	got   chan struct{} // closed once data holds want bytes
	want  int
}

func newRecorder(want int) *recorder { return &recorder{got: make(chan struct{}), want: want} }

func (r *recorder) ConnectionMade(loop.Transport) { r.calls = append(r.calls, "made") }
func (r *recorder) DataReceived(p []byte) {
	r.calls = append(r.calls, "data "+string(p))
	r.data.Write(p)
	if r.data.Len() >= r.want && r.want > 0 {
		r.want = 0
		close(r.got)
	}
}
func (r *recorder) EOFReceived() bool { r.calls = append(r.calls, "eof"); return false }
func (r *recorder) ConnectionLost(err error) {
	r.calls = append(r.calls, "lost")
}

// tinyBuffered is a BufferedProtocol with a 3-byte buffer.
type tinyBuffered struct {
	recorder
	buf [3]byte
}

func (b *tinyBuffered) GetBuffer(int) []byte { return b.buf[:] }
func (b *tinyBuffered) BufferUpdated(n int)  { b.DataReceived(b.buf[:n]) }

// mustLoop is the loop of ctx's task.
func mustLoop(ctx context.Context) *loop.Loop {
	l, err := loop.RunningLoop(ctx)
	if err != nil {
		panic(err)
	}
	return l
}

// awaitClosed waits on the loop until ch is closed (by a callback of the
// loop's: the test's protocols run there).
func awaitClosed(ctx context.Context, ch chan struct{}) error {
	for {
		select {
		case <-ch:
			return nil
		default:
		}
		if err := loop.Sleep(ctx, 0); err != nil {
			return err
		}
	}
}

// A detached transport's protocol hears nothing more, its writes fail,
// and the socket, still open and off the poller, goes to a new transport
// whose protocol gets the bytes the old one had read first, then the
// socket's: in the same loop, as in another process.
func TestDetachTransportThenAttach(t *testing.T) {
	for _, buffered := range []bool{false, true} {
		name := "Protocol"
		if buffered {
			name = "BufferedProtocol"
		}
		t.Run(name, func(t *testing.T) {
			runNet(t, func(ctx context.Context) error {
				l := mustLoop(ctx)
				a, peer := socketPair(t)
				defer peer.Close()
				old := newRecorder(5)
				tr, _, err := l.ConnectAcceptedSocket(ctx, func() loop.BaseProtocol { return old }, a, nil)
				if err != nil {
					return err
				}
				if err := l.SockSendall(ctx, peer, []byte("first")); err != nil {
					return err
				}
				if err := awaitClosed(ctx, old.got); err != nil {
					return err
				}
				sock, err := loop.DetachTransport(tr)
				if err != nil {
					t.Fatalf("DetachTransport = %v", err)
				}
				if !tr.IsClosing() {
					t.Error("a detached transport is not closing")
				}
				if _, err := tr.Write([]byte("x")); !errors.Is(err, loop.ErrTransportClosed) {
					t.Errorf("Write after detach = %v; want ErrTransportClosed", err)
				}
				if _, err := loop.DetachTransport(tr); !errors.Is(err, loop.ErrDetachUnsupported) {
					t.Errorf("second DetachTransport = %v; want ErrDetachUnsupported", err)
				}
				// Bytes sent now stay in the socket, for the next owner.
				if err := l.SockSendall(ctx, peer, []byte("second")); err != nil {
					return err
				}
				tr.Close() // does nothing to the socket
				if err := loop.Sleep(ctx, 0); err != nil {
					return err
				}
				if sock.Fd() < 0 {
					t.Fatal("the detached socket is closed")
				}
				var p loop.BaseProtocol
				var rec *recorder
				if buffered {
					b := &tinyBuffered{recorder: *newRecorder(len("left,second"))}
					p, rec = b, &b.recorder
				} else {
					rec = newRecorder(len("left,second"))
					p = rec
				}
				tr2, _, err := l.AttachSocket(ctx, func() loop.BaseProtocol { return p }, sock, []byte("left,"))
				if err != nil {
					return err
				}
				if err := awaitClosed(ctx, rec.got); err != nil {
					return err
				}
				if got := rec.data.String(); got != "left,second" {
					t.Errorf("the new protocol got %q; want %q", got, "left,second")
				}
				if buffered {
					if diff := cmp.Diff([]string{"made", "data lef", "data t,"}, rec.calls[:3]); diff != "" {
						t.Errorf("BufferedProtocol calls (-want +got):\n%s", diff)
					}
				} else if diff := cmp.Diff([]string{"made", "data left,"}, rec.calls[:2]); diff != "" {
					t.Errorf("calls (-want +got):\n%s", diff)
				}
				if _, err := tr2.Write([]byte("reply")); err != nil {
					return err
				}
				got, err := l.SockRecv(ctx, peer, 16)
				if err != nil || string(got) != "reply" {
					t.Errorf("the peer read %q, %v; want reply", got, err)
				}
				tr2.Close()
				if err := loop.Sleep(ctx, 0); err != nil {
					return err
				}
				if err := loop.Sleep(ctx, 0); err != nil {
					return err
				}
				if diff := cmp.Diff([]string{"made", "data first"}, old.calls); diff != "" {
					t.Errorf("the detached protocol's calls (-want +got):\n%s", diff)
				}
				if last := rec.calls[len(rec.calls)-1]; last != "lost" {
					t.Errorf("the new protocol's last call is %q; want lost", last)
				}
				return nil
			})
		})
	}
}

// A transport with unsent bytes is not detached, nor a closing one.
func TestDetachTransportRefuses(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		l := mustLoop(ctx)
		a, peer := socketPair(t)
		defer peer.Close()
		tr, _, err := l.ConnectAcceptedSocket(ctx, func() loop.BaseProtocol { return &loop.NopProtocol{} }, a, nil)
		if err != nil {
			return err
		}
		big := make([]byte, 8<<20) // more than the socket buffers hold
		if _, err := tr.Write(big); err != nil {
			return err
		}
		if tr.WriteBufferSize() == 0 {
			t.Fatal("the kernel took 8 MiB at once")
		}
		if _, err := loop.DetachTransport(tr); !errors.Is(err, loop.ErrDetachUnsent) {
			t.Errorf("DetachTransport with unsent bytes = %v; want ErrDetachUnsent", err)
		}
		tr.Abort()
		if _, err := loop.DetachTransport(tr); !errors.Is(err, loop.ErrDetachUnsupported) {
			t.Errorf("DetachTransport of an aborted transport = %v; want ErrDetachUnsupported", err)
		}
		return loop.Sleep(ctx, 0)
	})
}

// A stream server's connection is taken out after its first line, with
// the bytes the reader had past it; the old pair ends with ErrDetached,
// the server no longer counts it (WaitClosed returns), and the
// connection goes on over streams attached anew: the buffered bytes
// first, then what the client sends next.
func TestDetachStreamsThenAttach(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		type handed struct {
			sock     *loop.Socket
			buffered []byte
		}
		handoff := loop.NewFuture[handed](mustLoop(ctx))
		var oldReader *loop.StreamReader
		var oldWriter *loop.StreamWriter
		srv, err := loop.StartServer(ctx, func(ctx context.Context, r *loop.StreamReader, w *loop.StreamWriter) error {
			line, err := r.ReadLine(ctx)
			if err != nil || string(line) != "ROUTE a\n" {
				t.Errorf("first line %q, %v", line, err)
			}
			sock, buffered, err := loop.DetachStreams(w)
			if err != nil {
				return err
			}
			oldReader, oldWriter = r, w
			handoff.SetResult(handed{sock, buffered})
			return nil
		}, "127.0.0.1:0", nil)
		if err != nil {
			return err
		}
		client := make(chan error, 1)
		reply := make(chan string, 1)
		go func() {
			c, err := net.Dial("tcp", srv.Addrs()[0].String())
			if err != nil {
				client <- err
				return
			}
			defer c.Close()
			if _, err := c.Write([]byte("ROUTE a\nhello\nwor")); err != nil {
				client <- err
				return
			}
			<-reply // the server has the connection out of the loop
			if _, err := c.Write([]byte("ld\n")); err != nil {
				client <- err
				return
			}
			b, err := io.ReadAll(c)
			reply <- string(b)
			client <- err
		}()
		h, err := handoff.Await(ctx)
		if err != nil {
			return err
		}
		if _, err := oldReader.ReadLine(ctx); !errors.Is(err, loop.ErrDetached) {
			t.Errorf("ReadLine of a detached reader = %v; want ErrDetached", err)
		}
		if err := oldWriter.Drain(ctx); !errors.Is(err, loop.ErrDetached) {
			t.Errorf("Drain of a detached writer = %v; want ErrDetached", err)
		}
		if err := oldWriter.WaitClosed(ctx); err != nil {
			t.Errorf("WaitClosed of a detached writer = %v; want nil", err)
		}
		srv.Close()
		if err := srv.WaitClosed(ctx); err != nil {
			return err
		}
		reply <- ""
		r, w, err := loop.AttachStreams(ctx, h.sock, h.buffered, 0)
		if err != nil {
			return err
		}
		var lines []string
		for range 2 {
			line, err := r.ReadLine(ctx)
			if err != nil {
				return err
			}
			lines = append(lines, string(line))
		}
		if diff := cmp.Diff([]string{"hello\n", "world\n"}, lines); diff != "" {
			t.Errorf("lines after the hand-over (-want +got):\n%s", diff)
		}
		w.Write([]byte("bye\n"))
		w.Close()
		if err := w.WaitClosed(ctx); err != nil {
			return err
		}
		if err := awaitChan(ctx, client); err != nil {
			return err
		}
		if got := <-reply; got != "bye\n" {
			t.Errorf("the client read %q; want bye", got)
		}
		return nil
	})
}

// closer closes its transport in ConnectionMade.
type closer struct{ recorder }

func (c *closer) ConnectionMade(t loop.Transport) { c.recorder.ConnectionMade(t); t.Close() }

// A protocol that closes its transport in ConnectionMade is not given the
// bytes the socket came with; a transport over a net.Conn cannot be
// detached.
func TestAttachSocketClosedAtOnce(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		l := mustLoop(ctx)
		a, peer := socketPair(t)
		defer peer.Close()
		c := &closer{recorder: *newRecorder(0)}
		if _, _, err := l.AttachSocket(ctx, func() loop.BaseProtocol { return c }, a, []byte("dropped")); err != nil {
			return err
		}
		for len(c.calls) < 2 {
			if err := loop.Sleep(ctx, 0); err != nil {
				return err
			}
		}
		if diff := cmp.Diff([]string{"made", "lost"}, c.calls); diff != "" {
			t.Errorf("calls (-want +got):\n%s", diff)
		}

		x, y := net.Pipe()
		defer y.Close()
		tr, _, err := l.ConnectNetConn(ctx, func() loop.BaseProtocol { return &loop.NopProtocol{} }, x)
		if err != nil {
			return err
		}
		if _, err := loop.DetachTransport(tr); !errors.Is(err, loop.ErrDetachUnsupported) {
			t.Errorf("DetachTransport of a net.Conn transport = %v; want ErrDetachUnsupported", err)
		}
		tr.Abort()
		return loop.Sleep(ctx, 0)
	})
}

// AttachSocket and AttachStreams outside a task refuse, and close the
// socket they were given: nothing else owns it any more.
func TestAttachOutsideTaskClosesSocket(t *testing.T) {
	a, b := socketPair(t)
	defer b.Close()
	if _, _, err := new(loop.Loop).AttachSocket(context.Background(), nil, a, nil); !errors.Is(err, loop.ErrNotInTask) {
		t.Fatalf("AttachSocket outside a task = %v; want ErrNotInTask", err)
	}
	if a.Fd() != -1 {
		t.Errorf("the socket is still open after AttachSocket refused it")
	}
	c, d := socketPair(t)
	defer d.Close()
	if _, _, err := loop.AttachStreams(context.Background(), c, nil, 0); err == nil {
		t.Fatal("AttachStreams outside a task succeeded")
	}
	if c.Fd() != -1 {
		t.Errorf("the socket is still open after AttachStreams refused it")
	}
}

package loop_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/loop"
	"golang.org/x/sys/unix"
)

// dgramProto records a datagram endpoint's callbacks, as test_events.py's
// MyDatagramProto does with its state ("INITIAL", "INITIALIZED",
// "CLOSED"); with echo set it sends every datagram back to its sender.
type dgramProto struct {
	t       loop.DatagramTransport
	events  []string
	got     [][]byte
	from    []net.Addr
	errs    []error
	lost    *loop.Future[error]
	echo    bool
	paused  int
	resumed int
}

func newDgramProto(l *loop.Loop) *dgramProto {
	return &dgramProto{lost: loop.NewFuture[error](l)}
}

func (p *dgramProto) ConnectionMade(t loop.DatagramTransport) {
	p.t = t
	p.events = append(p.events, "made")
}

func (p *dgramProto) DatagramReceived(data []byte, addr net.Addr) {
	if n := len(p.events); n == 0 || p.events[n-1] != "data" {
		p.events = append(p.events, "data")
	}
	p.got = append(p.got, bytes.Clone(data))
	p.from = append(p.from, addr)
	if p.echo {
		p.t.SendTo(data, addr)
	}
}

func (p *dgramProto) ErrorReceived(err error) {
	p.events = append(p.events, "error")
	p.errs = append(p.errs, err)
}

func (p *dgramProto) ConnectionLost(err error) {
	p.events = append(p.events, "lost")
	p.lost.SetResult(err)
}

// flowDgramProto is a dgramProto that hears of flow control.
type flowDgramProto struct{ *dgramProto }

func (p flowDgramProto) PauseWriting()  { p.paused++ }
func (p flowDgramProto) ResumeWriting() { p.resumed++ }

// waitUntil lets the loop run until cond holds, failing after 5 s.
func waitUntil(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		if err := loop.Sleep(ctx, time.Millisecond); err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
	}
}

// endpoint makes an endpoint with a dgramProto.
func endpoint(ctx context.Context, t *testing.T, opts *loop.DatagramOptions) (loop.DatagramTransport, *dgramProto) {
	t.Helper()
	l := loopOf(ctx)
	tr, p, err := l.CreateDatagramEndpoint(ctx, func() loop.DatagramProtocol { return newDgramProto(l) }, opts)
	if err != nil {
		t.Fatalf("CreateDatagramEndpoint(%+v): %v", opts, err)
	}
	return tr, p.(*dgramProto)
}

// closeWait closes tr and waits for its ConnectionLost.
func closeWait(ctx context.Context, t *testing.T, tr loop.DatagramTransport, p *dgramProto) {
	t.Helper()
	tr.Close()
	if err, aerr := p.lost.Await(ctx); aerr != nil || err != nil {
		t.Errorf("ConnectionLost(%v), await %v; want nil", err, aerr)
	}
}

// Mirrors test_events.py: test_create_datagram_endpoint: an echo server
// and a client connected to it; the callbacks in asyncio's order (made
// before CreateDatagramEndpoint returns, then data, then lost), and the
// extra info of both.
func TestDatagramEchoRoundTrip(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		srv, sp := endpoint(ctx, t, &loop.DatagramOptions{LocalAddr: "127.0.0.1:0"})
		sp.echo = true
		saddr := srv.LocalAddr()
		if ua, ok := saddr.(*net.UDPAddr); !ok || ua.Port == 0 || srv.GetExtraInfo("sockname") != saddr {
			t.Fatalf("server sockname %v", saddr)
		}
		if srv.RemoteAddr() != nil || srv.GetExtraInfo("peername") != nil {
			t.Errorf("server peername %v; want nil", srv.RemoteAddr())
		}
		cli, cp := endpoint(ctx, t, &loop.DatagramOptions{RemoteAddr: saddr.String()})
		if len(cp.events) != 1 || cp.events[0] != "made" || cp.t != cli {
			t.Errorf("events at return %v; want [made], with the transport", cp.events)
		}
		if got := cli.GetExtraInfo("peername"); got == nil || got.(net.Addr).String() != saddr.String() {
			t.Errorf("client peername %v; want %v", got, saddr)
		}
		if s, ok := cli.GetExtraInfo("socket").(*loop.Socket); !ok || s.Fd() < 0 {
			t.Errorf("client socket %v", cli.GetExtraInfo("socket"))
		}
		if cli.GetExtraInfo("nonsense") != nil {
			t.Error("GetExtraInfo of an unknown name is not nil")
		}
		if err := cli.SendTo([]byte("xxx"), nil); err != nil {
			return err
		}
		waitUntil(ctx, t, "the echo", func() bool { return len(cp.got) == 1 })
		if string(sp.got[0]) != "xxx" || sp.from[0].String() != cli.LocalAddr().String() {
			t.Errorf("server got %q from %v; want xxx from %v", sp.got[0], sp.from[0], cli.LocalAddr())
		}
		if string(cp.got[0]) != "xxx" || cp.from[0].String() != saddr.String() {
			t.Errorf("client got %q from %v; want xxx from %v", cp.got[0], cp.from[0], saddr)
		}
		closeWait(ctx, t, cli, cp)
		closeWait(ctx, t, srv, sp)
		if want := "made data lost"; strings.Join(cp.events, " ") != want {
			t.Errorf("client events %v; want %s", cp.events, want)
		}
		if !cli.IsClosing() || cli.GetExtraInfo("socket") != nil {
			t.Error("closed transport: not closing, or still has its socket")
		}
		return nil
	})
}

// Mirrors test_selector_events.py: test_sendto_buffer,
// test_sendto_tryagain and test_sendto_ready_tryagain, with flow control
// (_maybe_pause_protocol): over a Unix datagram socket, whose receiver
// queue fills at once, thousands of datagrams sent in one go are queued in
// order, WriteBufferSize counts them (8 bytes of header each), the
// protocol is paused once and resumed once, and all arrive in order. Then
// the same over UDP in windows (UDP drops what overflows the receiver).
func TestDatagramManyInOrder(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		l := loopOf(ctx)
		dir := t.TempDir()
		rpath := filepath.Join(dir, "r.sock")
		recv, rp := endpoint(ctx, t, &loop.DatagramOptions{Network: "unixgram", LocalAddr: rpath})
		fp := flowDgramProto{newDgramProto(l)}
		send, _, err := l.CreateDatagramEndpoint(ctx, func() loop.DatagramProtocol { return fp },
			&loop.DatagramOptions{Network: "unixgram", LocalAddr: filepath.Join(dir, "s.sock"), RemoteAddr: rpath})
		if err != nil {
			return err
		}
		const n, size = 3000, 100
		var msg []byte // one buffer for every send: the queue keeps copies
		for i := range n {
			msg = fmt.Appendf(msg[:0], "%0*d", size, i)
			if err := send.SendTo(msg, nil); err != nil {
				return err
			}
		}
		queued := send.WriteBufferSize()
		if queued == 0 || queued%(size+8) != 0 || queued > n*(size+8) {
			t.Errorf("WriteBufferSize = %d; want a multiple of %d, > 0", queued, size+8)
		}
		if fp.paused != 1 {
			t.Errorf("PauseWriting called %d times; want 1", fp.paused)
		}
		waitUntil(ctx, t, "every datagram", func() bool { return len(rp.got) == n })
		for i, g := range rp.got {
			if want := fmt.Sprintf("%0*d", size, i); string(g) != want {
				t.Fatalf("datagram %d is %s; want %s", i, strings.TrimLeft(string(g), "0"), strings.TrimLeft(want, "0"))
			}
		}
		if send.WriteBufferSize() != 0 || fp.resumed != 1 {
			t.Errorf("after the flush: WriteBufferSize %d, ResumeWriting %d times; want 0, 1", send.WriteBufferSize(), fp.resumed)
		}
		if rp.from[0] == nil || rp.from[0].String() != send.LocalAddr().String() {
			t.Errorf("sender %v; want %v", rp.from[0], send.LocalAddr())
		}
		closeWait(ctx, t, send, fp.dgramProto)
		closeWait(ctx, t, recv, rp)

		usrv, up := endpoint(ctx, t, &loop.DatagramOptions{LocalAddr: "127.0.0.1:0"})
		ucli, _ := endpoint(ctx, t, &loop.DatagramOptions{LocalAddr: "127.0.0.1:0"})
		const un, window = 600, 50
		for i := 0; i < un; i += window {
			for j := i; j < i+window; j++ {
				if err := ucli.SendTo(fmt.Appendf(nil, "%d", j), usrv.LocalAddr()); err != nil {
					return err
				}
			}
			waitUntil(ctx, t, "a window of UDP datagrams", func() bool { return len(up.got) == i+window })
		}
		for i, g := range up.got {
			if string(g) != fmt.Sprint(i) {
				t.Fatalf("UDP datagram %d is %q", i, g)
			}
		}
		ucli.Close()
		closeWait(ctx, t, usrv, up)
		return nil
	})
}

// Mirrors test_selector_events.py: test_sendto_error_received_connected
// and test_read_ready_oserr: on an endpoint connected to a port nobody
// listens on, the kernel's ICMP port unreachable comes back as
// ECONNREFUSED through ErrorReceived, and the transport stays open and
// usable.
func TestDatagramConnectedRefused(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		gone, gp := endpoint(ctx, t, &loop.DatagramOptions{LocalAddr: "127.0.0.1:0"})
		addr := gone.LocalAddr().String()
		closeWait(ctx, t, gone, gp)

		cli, cp := endpoint(ctx, t, &loop.DatagramOptions{RemoteAddr: addr})
		if err := cli.SendTo([]byte("anyone?"), nil); err != nil {
			return err
		}
		waitUntil(ctx, t, "ErrorReceived", func() bool {
			if len(cp.errs) == 0 {
				cli.SendTo([]byte("again"), nil) // the error may come on a send
				loop.Sleep(ctx, 5*time.Millisecond)
			}
			return len(cp.errs) > 0
		})
		if !errors.Is(cp.errs[0], unix.ECONNREFUSED) {
			t.Errorf("ErrorReceived(%v); want ECONNREFUSED", cp.errs[0])
		}
		if cli.IsClosing() || cp.lost.Done() {
			t.Error("the transport closed after ErrorReceived")
		}
		if err := cli.SendTo([]byte("still open"), nil); err != nil {
			t.Errorf("SendTo after ErrorReceived = %v", err)
		}
		closeWait(ctx, t, cli, cp)
		return nil
	})
}

// Mirrors test_selector_events.py: test_sendto_connected_addr (and
// uvloop's test_udp_sendto_dns, a family mismatch): a connected endpoint
// refuses any address but its remote one, which it accepts in any
// spelling; an unconnected one needs an address of its family.
func TestDatagramSendToWrongAddress(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		srv, sp := endpoint(ctx, t, &loop.DatagramOptions{LocalAddr: "127.0.0.1:0"})
		saddr := srv.LocalAddr().(*net.UDPAddr)
		cli, cp := endpoint(ctx, t, &loop.DatagramOptions{RemoteAddr: saddr.String()})
		other := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: saddr.Port + 1}
		err := cli.SendTo([]byte("x"), other)
		if !errors.Is(err, loop.ErrInvalidAddress) || !strings.Contains(err.Error(), saddr.String()) {
			t.Errorf("SendTo(other address) = %v; want ErrInvalidAddress naming %v", err, saddr)
		}
		same := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1).To16(), Port: saddr.Port}
		if err := cli.SendTo([]byte("same"), same); err != nil {
			t.Errorf("SendTo(the remote address) = %v", err)
		}
		waitUntil(ctx, t, "the datagram", func() bool { return len(sp.got) == 1 })
		if string(sp.got[0]) != "same" {
			t.Errorf("server got %q", sp.got[0])
		}
		if err := srv.SendTo([]byte("x"), nil); err == nil {
			t.Error("SendTo(nil) on an unconnected endpoint = nil; want an error")
		}
		if err := srv.SendTo([]byte("x"), &net.UDPAddr{IP: net.IPv6loopback, Port: 9}); err == nil {
			t.Error("SendTo(an IPv6 address) on an IPv4 endpoint = nil; want an error")
		}
		if len(sp.errs) != 0 || srv.IsClosing() {
			t.Errorf("bad addresses reached ErrorReceived (%v) or closed the transport", sp.errs)
		}
		closeWait(ctx, t, cli, cp)
		closeWait(ctx, t, srv, sp)
		return nil
	})
}

// fillUnixgram makes an endpoint connected to a Unix datagram socket that
// nobody reads and sends into it until datagrams are queued in the
// transport; it returns the endpoint, its protocol, the reader's socket
// and how many datagrams were sent.
func fillUnixgram(ctx context.Context, t *testing.T) (loop.DatagramTransport, *dgramProto, *loop.Socket, int) {
	t.Helper()
	dir := t.TempDir()
	rpath := filepath.Join(dir, "sink.sock")
	sink, err := loop.NewSocket("unixgram")
	if err != nil {
		t.Fatal(err)
	}
	if err := sink.Bind(rpath); err != nil {
		t.Fatal(err)
	}
	tr, p := endpoint(ctx, t, &loop.DatagramOptions{Network: "unixgram", RemoteAddr: rpath})
	n := 0
	for tr.WriteBufferSize() < 5*(8+8) {
		if err := tr.SendTo(fmt.Appendf(nil, "%08d", n), nil); err != nil {
			t.Fatal(err)
		}
		n++
	}
	return tr, p, sink, n
}

// Mirrors test_selector_events.py: test_sendto_ready_closing (and
// test_events.py's close of a transport with data queued): Close stops
// nothing that was queued: the datagrams go out as the reader makes room,
// in order, and only then is ConnectionLost(nil) called and the socket
// closed.
func TestDatagramCloseFlushes(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		l := loopOf(ctx)
		tr, p, sink, n := fillUnixgram(ctx, t)
		defer sink.Close()
		tr.Close()
		tr.Close()
		for range 3 {
			loop.Sleep(ctx, 0)
		}
		if !tr.IsClosing() || p.lost.Done() {
			t.Fatalf("after Close with a queue: closing %v, lost %v; want true, false", tr.IsClosing(), p.lost.Done())
		}
		buf := make([]byte, 64)
		for i := range n {
			k, _, err := l.SockRecvFrom(ctx, sink, buf)
			if err != nil {
				return err
			}
			if want := fmt.Sprintf("%08d", i); string(buf[:k]) != want {
				t.Fatalf("datagram %d = %q; want %q", i, buf[:k], want)
			}
		}
		if err, aerr := p.lost.Await(ctx); err != nil || aerr != nil {
			t.Errorf("ConnectionLost(%v), %v", err, aerr)
		}
		if tr.WriteBufferSize() != 0 || tr.GetExtraInfo("socket") != nil {
			t.Errorf("after the flush: WriteBufferSize %d, socket %v", tr.WriteBufferSize(), tr.GetExtraInfo("socket"))
		}
		if err := tr.SendTo([]byte("late"), nil); !errors.Is(err, loop.ErrTransportClosed) {
			t.Errorf("SendTo after close = %v; want ErrTransportClosed", err)
		}
		return nil
	})
}

// Mirrors test_selector_events.py: test_abort and test_force_close (of
// the transports' common base): Abort drops the queue, ConnectionLost(nil)
// follows in the next iteration, and what was queued never arrives.
func TestDatagramAbort(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		l := loopOf(ctx)
		tr, p, sink, n := fillUnixgram(ctx, t)
		defer sink.Close()
		tr.Abort()
		if tr.WriteBufferSize() != 0 || !tr.IsClosing() {
			t.Errorf("after Abort: WriteBufferSize %d, closing %v", tr.WriteBufferSize(), tr.IsClosing())
		}
		if p.lost.Done() {
			t.Error("ConnectionLost ran inside Abort; want the next iteration")
		}
		if err, aerr := p.lost.Await(ctx); err != nil || aerr != nil {
			t.Errorf("ConnectionLost(%v), %v", err, aerr)
		}
		tr.Abort()
		tr.Close()
		got := 0
		buf := make([]byte, 64)
		for {
			rctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
			_, _, err := l.SockRecvFrom(rctx, sink, buf)
			cancel()
			if err != nil {
				break
			}
			got++
		}
		if got >= n || got == 0 {
			t.Errorf("the reader got %d of %d datagrams; want those the kernel took before the queue", got, n)
		}
		if want := "made lost"; strings.Join(p.events, " ") != want {
			t.Errorf("events %v; want %s", p.events, want)
		}
		return nil
	})
}

// Mirrors test_selector_events.py: test_sendto_closing and uvloop's
// test_send_after_close: once closed, SendTo returns ErrTransportClosed
// (asyncio drops the datagram silently and warns after a few); Close is
// idempotent and ConnectionLost runs once.
func TestDatagramSendAfterClose(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		srv, sp := endpoint(ctx, t, &loop.DatagramOptions{LocalAddr: "127.0.0.1:0"})
		cli, cp := endpoint(ctx, t, &loop.DatagramOptions{RemoteAddr: srv.LocalAddr().String()})
		cli.Close()
		for range 6 {
			if err := cli.SendTo([]byte("x"), nil); !errors.Is(err, loop.ErrTransportClosed) {
				t.Fatalf("SendTo after Close = %v; want ErrTransportClosed", err)
			}
		}
		cli.Close()
		if _, err := cp.lost.Await(ctx); err != nil {
			return err
		}
		cli.Close()
		cli.Abort()
		loop.Sleep(ctx, time.Millisecond)
		if want := "made lost"; strings.Join(cp.events, " ") != want {
			t.Errorf("events %v; want %s (ConnectionLost once)", cp.events, want)
		}
		if len(sp.got) != 0 {
			t.Errorf("the server got %d datagrams sent after Close", len(sp.got))
		}
		closeWait(ctx, t, srv, sp)
		return nil
	})
}

// Loop.Close with an endpoint still open reports it as an unclosed
// transport and closes its socket (asyncio's ResourceWarning); the
// protocol hears nothing more.
func TestDatagramLoopCloseWithOpenEndpoint(t *testing.T) {
	before := openFDs(t)
	l := loop.New()
	var reports []string
	l.SetExceptionHandler(func(_ *loop.Loop, c loop.ExceptionContext) { reports = append(reports, c.Message) })
	var p *dgramProto
	task := loop.CreateTask(l, func(ctx context.Context) (loop.DatagramTransport, error) {
		tr, pr, err := l.CreateDatagramEndpoint(ctx, func() loop.DatagramProtocol { return newDgramProto(l) },
			&loop.DatagramOptions{LocalAddr: "127.0.0.1:0"})
		if err == nil {
			p = pr.(*dgramProto)
		}
		return tr, err
	})
	if err := l.RunUntilComplete(task); err != nil {
		t.Fatal(err)
	}
	tr, _ := task.Result()
	if openFDs(t) <= before {
		t.Error("the endpoint holds no descriptor")
	}
	l.Close()
	if after := openFDs(t); after != before {
		t.Errorf("descriptors: %d before, %d after Close", before, after)
	}
	if len(reports) != 1 || !strings.Contains(reports[0], "unclosed transport <datagram transport") {
		t.Errorf("reports %q; want one unclosed datagram transport", reports)
	}
	if !tr.IsClosing() || tr.GetExtraInfo("socket") != nil {
		t.Error("the endpoint is not closed after Loop.Close")
	}
	if want := "made"; strings.Join(p.events, " ") != want {
		t.Errorf("events %v; want %s", p.events, want)
	}
}

// Mirrors test_selector_events.py: test_sendto_no_data (3.13: an empty
// datagram is sent) and the largest UDP datagram over IPv4 (65507 bytes)
// arriving whole; one byte more is EMSGSIZE, which goes to ErrorReceived.
func TestDatagramZeroAndMaxSize(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		srv, sp := endpoint(ctx, t, &loop.DatagramOptions{LocalAddr: "127.0.0.1:0"})
		cli, cp := endpoint(ctx, t, &loop.DatagramOptions{RemoteAddr: srv.LocalAddr().String()})
		if err := cli.SendTo(nil, nil); err != nil {
			return err
		}
		if err := cli.SendTo([]byte{}, nil); err != nil {
			return err
		}
		big := bytes.Repeat([]byte("0123456789abcdef"), 65507/16+1)[:65507]
		if err := cli.SendTo(big, nil); err != nil {
			return err
		}
		waitUntil(ctx, t, "three datagrams", func() bool { return len(sp.got) == 3 })
		if len(sp.got[0]) != 0 || len(sp.got[1]) != 0 || sp.from[0].String() != cli.LocalAddr().String() {
			t.Errorf("empty datagrams arrived as %q, %q from %v", sp.got[0], sp.got[1], sp.from[0])
		}
		if !bytes.Equal(sp.got[2], big) {
			t.Errorf("the 65507-byte datagram arrived as %d bytes", len(sp.got[2]))
		}
		if err := cli.SendTo(append(big, 'x'), nil); err != nil {
			t.Errorf("SendTo(65508 bytes) = %v; want nil and ErrorReceived", err)
		}
		if len(cp.errs) != 1 || !errors.Is(cp.errs[0], unix.EMSGSIZE) {
			t.Errorf("ErrorReceived %v; want EMSGSIZE", cp.errs)
		}
		if cli.IsClosing() {
			t.Error("EMSGSIZE closed the transport")
		}
		closeWait(ctx, t, cli, cp)
		closeWait(ctx, t, srv, sp)
		return nil
	})
}

// Mirrors test_base_events.py: test_create_datagram_endpoint_addr_error,
// _no_matching_family, _wrong_sock, _sock_sockopts, _cant_bind and
// _connect_err: bad input returns a clear error and leaks no descriptor
// (runNet counts them).
func TestDatagramBadInput(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		l := loopOf(ctx)
		factory := func() loop.DatagramProtocol { return newDgramProto(l) }
		taken, tp := endpoint(ctx, t, &loop.DatagramOptions{LocalAddr: "127.0.0.1:0"})
		stream, err := loop.NewSocket("tcp")
		if err != nil {
			return err
		}
		defer stream.Close()
		dgram, err := loop.NewSocket("udp")
		if err != nil {
			return err
		}
		defer dgram.Close()
		cases := []struct {
			name string
			opts *loop.DatagramOptions
			want string
		}{
			{"unknown network", &loop.DatagramOptions{Network: "udpx", LocalAddr: "127.0.0.1:0"}, `unknown network "udpx"`},
			{"stream network", &loop.DatagramOptions{Network: "tcp", LocalAddr: "127.0.0.1:0"}, "not a datagram network"},
			{"no port", &loop.DatagramOptions{LocalAddr: "localhost"}, "missing port"},
			{"bad port", &loop.DatagramOptions{RemoteAddr: "127.0.0.1:nope"}, "bad address"},
			{"no matching family", &loop.DatagramOptions{LocalAddr: "[::1]:0", RemoteAddr: "127.0.0.1:9"}, "can not get address information"},
			{"udp4 and an IPv6 address", &loop.DatagramOptions{Network: "udp4", LocalAddr: "[::1]:0"}, "can not get address information"},
			{"udp6 and an IPv4 address", &loop.DatagramOptions{Network: "udp6", RemoteAddr: "127.0.0.1:9"}, "can not get address information"},
			{"stream socket", &loop.DatagramOptions{Socket: stream}, "A datagram socket was expected"},
			{"socket and options", &loop.DatagramOptions{Socket: dgram, LocalAddr: "127.0.0.1:0", ReusePort: true}, "socket modifier keyword arguments can not be used when sock is specified. (LocalAddr=\"127.0.0.1:0\", ReusePort=true)"},
			{"address in use", &loop.DatagramOptions{LocalAddr: taken.LocalAddr().String()}, "address already in use"},
			{"no such Unix peer", &loop.DatagramOptions{Network: "unixgram", RemoteAddr: filepath.Join(t.TempDir(), "none")}, "no such file"},
		}
		for _, c := range cases {
			tr, p, err := l.CreateDatagramEndpoint(ctx, factory, c.opts)
			if err == nil || tr != nil || p != nil {
				t.Errorf("%s: CreateDatagramEndpoint = %v, %v, %v; want an error", c.name, tr, p, err)
				if tr != nil {
					tr.Close()
				}
				continue
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s: error %q; want it to say %q", c.name, err, c.want)
			}
		}
		if _, _, err := l.CreateDatagramEndpoint(ctx, nil, nil); err == nil {
			t.Error("a nil factory: no error")
		}
		if _, _, err := l.CreateDatagramEndpoint(ctx, func() loop.DatagramProtocol { return nil }, nil); err == nil {
			t.Error("a factory returning nil: no error")
		}
		if _, _, err := l.CreateDatagramEndpoint(context.Background(), factory, nil); !errors.Is(err, loop.ErrNotInTask) {
			t.Errorf("outside a task: %v; want ErrNotInTask", err)
		}
		if dgram.Fd() < 0 {
			t.Error("a refused Socket was closed")
		}
		closeWait(ctx, t, taken, tp)
		return nil
	})
}

// Mirrors test_base_events.py: test_create_datagram_endpoint_sockopts
// (options are set only when asked for; SO_REUSEADDR never) and
// test_events.py's reuse_port case: two endpoints with ReusePort share a
// port.
func TestDatagramSocketOptions(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		opt := func(tr loop.DatagramTransport, o int) int {
			v, err := unix.GetsockoptInt(tr.GetExtraInfo("socket").(*loop.Socket).Fd(), unix.SOL_SOCKET, o)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		plain, pp := endpoint(ctx, t, &loop.DatagramOptions{LocalAddr: "127.0.0.1:0"})
		if opt(plain, unix.SO_REUSEPORT) != 0 || opt(plain, unix.SO_BROADCAST) != 0 || opt(plain, unix.SO_REUSEADDR) != 0 {
			t.Error("options set that were not asked for")
		}
		closeWait(ctx, t, plain, pp)
		a, ap := endpoint(ctx, t, &loop.DatagramOptions{LocalAddr: "127.0.0.1:0", ReusePort: true, AllowBroadcast: true})
		if opt(a, unix.SO_REUSEPORT) == 0 || opt(a, unix.SO_BROADCAST) == 0 || opt(a, unix.SO_REUSEADDR) != 0 {
			t.Error("ReusePort/AllowBroadcast not set, or SO_REUSEADDR set")
		}
		b, bp := endpoint(ctx, t, &loop.DatagramOptions{LocalAddr: a.LocalAddr().String(), ReusePort: true})
		if b.LocalAddr().String() != a.LocalAddr().String() {
			t.Errorf("second ReusePort endpoint on %v; want %v", b.LocalAddr(), a.LocalAddr())
		}
		closeWait(ctx, t, a, ap)
		closeWait(ctx, t, b, bp)
		return nil
	})
}

// Mirrors test_base_events.py: test_create_datagram_endpoint_allow_broadcast:
// with AllowBroadcast the socket is not connected to RemoteAddr (no
// sock_connect): SendTo(nil) still goes there, and a datagram from a
// third party is read, where a connected socket would filter it.
func TestDatagramAllowBroadcastRemote(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		srv, sp := endpoint(ctx, t, &loop.DatagramOptions{LocalAddr: "127.0.0.1:0"})
		cli, cp := endpoint(ctx, t, &loop.DatagramOptions{RemoteAddr: srv.LocalAddr().String(), AllowBroadcast: true})
		if cli.RemoteAddr() != nil {
			t.Errorf("peername %v; want nil (not connected)", cli.RemoteAddr())
		}
		if err := cli.SendTo([]byte("hi"), nil); err != nil {
			return err
		}
		if err := cli.SendTo([]byte("x"), &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}); !errors.Is(err, loop.ErrInvalidAddress) {
			t.Errorf("SendTo(another address) = %v; want ErrInvalidAddress", err)
		}
		waitUntil(ctx, t, "the datagram", func() bool { return len(sp.got) == 1 })
		third, tp := endpoint(ctx, t, &loop.DatagramOptions{LocalAddr: "127.0.0.1:0"})
		third.SendTo([]byte("from a third"), sp.from[0])
		waitUntil(ctx, t, "the third party's datagram", func() bool { return len(cp.got) == 1 })
		if string(cp.got[0]) != "from a third" || cp.from[0].String() != third.LocalAddr().String() {
			t.Errorf("got %q from %v", cp.got[0], cp.from[0])
		}

		// A connected endpoint does not see the third party.
		conn, cnp := endpoint(ctx, t, &loop.DatagramOptions{RemoteAddr: srv.LocalAddr().String()})
		third.SendTo([]byte("filtered"), conn.LocalAddr())
		srv.SendTo([]byte("from the peer"), conn.LocalAddr())
		waitUntil(ctx, t, "the peer's datagram", func() bool { return len(cnp.got) == 1 })
		if string(cnp.got[0]) != "from the peer" {
			t.Errorf("the connected endpoint got %q", cnp.got[0])
		}
		for _, e := range []struct {
			tr loop.DatagramTransport
			p  *dgramProto
		}{{conn, cnp}, {third, tp}, {cli, cp}, {srv, sp}} {
			closeWait(ctx, t, e.tr, e.p)
		}
		return nil
	})
}

// Mirrors test_base_events.py: test_create_datagram_endpoint_sock: an
// existing datagram Socket becomes the endpoint's, and closing the
// transport closes it.
func TestDatagramExistingSocket(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		s, err := loop.NewSocket("udp")
		if err != nil {
			return err
		}
		if err := s.Bind("127.0.0.1:0"); err != nil {
			s.Close()
			return err
		}
		tr, p := endpoint(ctx, t, &loop.DatagramOptions{Socket: s})
		if tr.GetExtraInfo("socket") != s || tr.LocalAddr().String() != s.LocalAddr().String() {
			t.Errorf("socket %v, sockname %v", tr.GetExtraInfo("socket"), tr.LocalAddr())
		}
		cli, cp := endpoint(ctx, t, &loop.DatagramOptions{RemoteAddr: tr.LocalAddr().String()})
		cli.SendTo([]byte("to the adopted socket"), nil)
		waitUntil(ctx, t, "the datagram", func() bool { return len(p.got) == 1 })
		closeWait(ctx, t, cli, cp)
		closeWait(ctx, t, tr, p)
		if s.Fd() != -1 {
			t.Error("the Socket is still open after the transport closed")
		}
		return nil
	})
}

// Mirrors test_base_events.py: test_create_datagram_endpoint_existing_sock_unix
// (a stale socket file at LocalAddr is removed) and
// test_create_datagram_endpoint_sock_unix, with uvloop's
// test_create_datagram_endpoint_sock_unix_domain echo: a Unix datagram
// echo, and a client with no name, which the server sees as a nil address.
func TestDatagramUnixgram(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		dir := t.TempDir()
		spath := filepath.Join(dir, "srv.sock")
		stale, err := loop.NewSocket("unixgram")
		if err != nil {
			return err
		}
		if err := stale.Bind(spath); err != nil {
			return err
		}
		stale.Close()
		srv, sp := endpoint(ctx, t, &loop.DatagramOptions{Network: "unixgram", LocalAddr: spath})
		sp.echo = true
		if srv.LocalAddr().String() != spath {
			t.Errorf("sockname %v; want %s", srv.LocalAddr(), spath)
		}
		cpath := filepath.Join(dir, "cli.sock")
		cli, cp := endpoint(ctx, t, &loop.DatagramOptions{Network: "unixgram", LocalAddr: cpath, RemoteAddr: spath})
		cli.SendTo([]byte("HELLO"), nil)
		waitUntil(ctx, t, "the echo", func() bool { return len(cp.got) == 1 })
		if string(cp.got[0]) != "HELLO" || sp.from[0].String() != cpath || cp.from[0].String() != spath {
			t.Errorf("echo %q; server saw %v, client saw %v", cp.got[0], sp.from[0], cp.from[0])
		}
		sp.echo = false
		anon, ap := endpoint(ctx, t, &loop.DatagramOptions{Network: "unixgram"})
		if err := anon.SendTo([]byte("anonymous"), &net.UnixAddr{Name: spath, Net: "unixgram"}); err != nil {
			return err
		}
		waitUntil(ctx, t, "the anonymous datagram", func() bool { return len(sp.got) == 2 })
		if sp.from[1] != nil {
			t.Errorf("an unnamed sender's address is %v; want nil", sp.from[1])
		}
		closeWait(ctx, t, anon, ap)
		closeWait(ctx, t, cli, cp)
		closeWait(ctx, t, srv, sp)
		if _, err := os.Stat(spath); err != nil {
			t.Errorf("the socket file: %v (asyncio leaves it)", err)
		}
		return nil
	})
}

// Mirrors test_base_events.py: test_create_datagram_endpoint_ip_addr and
// test_events.py's IPv6 cases: a host name is resolved off the loop, an
// empty host binds every interface of the network's family, and an IPv6
// endpoint (skipped where this machine has no ::1) echoes.
func TestDatagramNamesAndIPv6(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		named, np := endpoint(ctx, t, &loop.DatagramOptions{Network: "udp4", LocalAddr: "localhost:0"})
		if ua := named.LocalAddr().(*net.UDPAddr); !ua.IP.IsLoopback() || ua.IP.To4() == nil {
			t.Errorf("udp4 localhost:0 bound %v; want 127.0.0.1", ua)
		}
		any4, ap := endpoint(ctx, t, &loop.DatagramOptions{LocalAddr: ":0"})
		if ua := any4.LocalAddr().(*net.UDPAddr); !ua.IP.IsUnspecified() || ua.IP.To4() == nil {
			t.Errorf("udp :0 bound %v; want 0.0.0.0", ua)
		}
		closeWait(ctx, t, any4, ap)
		closeWait(ctx, t, named, np)

		l := loopOf(ctx)
		srv, p, err := l.CreateDatagramEndpoint(ctx, func() loop.DatagramProtocol { return newDgramProto(l) },
			&loop.DatagramOptions{Network: "udp6", LocalAddr: "[::1]:0"})
		if err != nil {
			t.Logf("no IPv6 loopback, the IPv6 half is skipped: %v", err)
			return nil
		}
		sp := p.(*dgramProto)
		sp.echo = true
		cli, cp := endpoint(ctx, t, &loop.DatagramOptions{RemoteAddr: srv.LocalAddr().String()})
		if ua := cli.LocalAddr().(*net.UDPAddr); ua.IP.To4() != nil {
			t.Errorf("udp client of [::1] bound %v; want an IPv6 address", ua)
		}
		cli.SendTo([]byte("six"), nil)
		waitUntil(ctx, t, "the IPv6 echo", func() bool { return len(cp.got) == 1 })
		if string(cp.got[0]) != "six" {
			t.Errorf("echo %q", cp.got[0])
		}
		closeWait(ctx, t, cli, cp)
		closeWait(ctx, t, srv, sp)
		return nil
	})
}

// Mirrors create_datagram_endpoint's `await waiter` / `except:
// transport.close(); raise`: an endpoint whose ctx has ended by the time
// it would return is closed, its protocol never told of it, and the
// descriptor released.
func TestDatagramCreateCancelled(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		l := loopOf(ctx)
		var p *dgramProto
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		tr, _, err := l.CreateDatagramEndpoint(cctx, func() loop.DatagramProtocol { p = newDgramProto(l); return p },
			&loop.DatagramOptions{LocalAddr: "127.0.0.1:0"})
		if !errors.Is(err, context.Canceled) || tr != nil {
			t.Fatalf("CreateDatagramEndpoint with an ended ctx = %v, %v; want context.Canceled", tr, err)
		}
		for range 3 {
			loop.Sleep(ctx, 0)
		}
		if len(p.events) != 0 {
			t.Errorf("events %v; want none", p.events)
		}
		return nil
	})
}

// A panic in DatagramReceived goes to the loop's exception handler, as an
// exception in datagram_received does, and the endpoint reads on.
func TestDatagramProtocolPanic(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		l := loopOf(ctx)
		var reports []string
		l.SetExceptionHandler(func(_ *loop.Loop, c loop.ExceptionContext) { reports = append(reports, c.Message) })
		pp := &panicDgram{dgramProto: newDgramProto(l)}
		srv, _, err := l.CreateDatagramEndpoint(ctx, func() loop.DatagramProtocol { return pp },
			&loop.DatagramOptions{LocalAddr: "127.0.0.1:0"})
		if err != nil {
			return err
		}
		cli, cp := endpoint(ctx, t, &loop.DatagramOptions{RemoteAddr: srv.LocalAddr().String()})
		cli.SendTo([]byte("boom"), nil)
		cli.SendTo([]byte("fine"), nil)
		waitUntil(ctx, t, "the second datagram", func() bool { return pp.n == 2 })
		if len(reports) != 1 || srv.IsClosing() {
			t.Errorf("reports %q, closing %v; want one report, open", reports, srv.IsClosing())
		}
		closeWait(ctx, t, srv, pp.dgramProto)
		closeWait(ctx, t, cli, cp)
		return nil
	})
}

// panicDgram panics on the datagram "boom".
type panicDgram struct {
	*dgramProto
	n int
}

func (p *panicDgram) DatagramReceived(data []byte, addr net.Addr) {
	p.n++
	if string(data) == "boom" {
		panic("protocol bug")
	}
}

package loop_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/loop"
	"golang.org/x/sys/unix"
)

// oneIteration runs a single iteration of a loop that is not running.
func oneIteration(t *testing.T, l *loop.Loop) {
	t.Helper()
	l.Stop()
	if err := l.RunForever(); err != nil {
		t.Fatal(err)
	}
}

// The descriptor registry against a reference model: random AddReader,
// RemoveReader, AddWriter and RemoveWriter on a few always-readable,
// always-writable sockets, with iterations in between. In each iteration
// exactly the callbacks registered at that moment run, once each; a
// removed or replaced one never runs; the Remove calls report what the
// model says was there.
func TestFdRegistryRandomized(t *testing.T) {
	before := openFDs(t)
	l := loop.New()
	const n = 5
	var fds [n]int
	var keep []*loop.Socket
	for i := range n {
		a, b := socketpair(t)
		keep = append(keep, a, b)
		unix.Write(b.Fd(), []byte{1}) // a stays readable: nobody reads
		fds[i] = a.Fd()
	}
	var reader, writer [n]int // the model: the id registered, 0 for none
	ran := map[int]int{}      // id -> times run this iteration
	nextID := 0
	rng := rand.New(rand.NewPCG(1, 2))
	for step := range 3000 {
		i := rng.IntN(n)
		switch rng.IntN(5) {
		case 0:
			nextID++
			id := nextID
			if err := l.AddReader(fds[i], func() { ran[id]++ }); err != nil {
				t.Fatal(err)
			}
			reader[i] = id
		case 1:
			nextID++
			id := nextID
			if err := l.AddWriter(fds[i], func() { ran[id]++ }); err != nil {
				t.Fatal(err)
			}
			writer[i] = id
		case 2:
			if got := l.RemoveReader(fds[i]); got != (reader[i] != 0) {
				t.Fatalf("step %d: RemoveReader = %v; model has %d", step, got, reader[i])
			}
			reader[i] = 0
		case 3:
			if got := l.RemoveWriter(fds[i]); got != (writer[i] != 0) {
				t.Fatalf("step %d: RemoveWriter = %v; model has %d", step, got, writer[i])
			}
			writer[i] = 0
		case 4:
			clear(ran)
			oneIteration(t, l)
			want := map[int]int{}
			for j := range n {
				if reader[j] != 0 {
					want[reader[j]] = 1
				}
				if writer[j] != 0 {
					want[writer[j]] = 1
				}
			}
			if fmt.Sprint(want) != fmt.Sprint(ran) {
				t.Fatalf("step %d: callbacks run %v; want %v", step, ran, want)
			}
		}
	}
	for _, s := range keep {
		s.Close()
	}
	l.Close()
	if after := openFDs(t); after != before {
		t.Errorf("descriptors: %d before, %d after", before, after)
	}
}

// A callback that removes another descriptor's reader, due in the same
// iteration, stops it from running (asyncio cancels the handle).
func TestRemoveReaderCancelsQueuedCallback(t *testing.T) {
	l := newLoop(t)
	a1, b1 := socketpair(t)
	a2, b2 := socketpair(t)
	for _, s := range []*loop.Socket{a1, b1, a2, b2} {
		defer s.Close()
	}
	unix.Write(b1.Fd(), []byte{1})
	unix.Write(b2.Fd(), []byte{1})
	var order []string
	l.AddReader(a1.Fd(), func() {
		order = append(order, "1")
		l.RemoveReader(a2.Fd())
		l.RemoveReader(a1.Fd())
	})
	l.AddReader(a2.Fd(), func() {
		order = append(order, "2")
		l.RemoveReader(a1.Fd())
		l.RemoveReader(a2.Fd())
	})
	oneIteration(t, l)
	oneIteration(t, l)
	if len(order) != 1 {
		t.Errorf("callbacks ran %v; want exactly one (the first removes the other)", order)
	}
}

// bufferedProto is a BufferedProtocol with a small buffer of its own.
type bufferedProto struct {
	buf   []byte
	got   bytes.Buffer
	hints []int
	lost  *loop.Future[error]
}

func (b *bufferedProto) ConnectionMade(loop.Transport) {}
func (b *bufferedProto) GetBuffer(hint int) []byte {
	b.hints = append(b.hints, hint)
	return b.buf
}
func (b *bufferedProto) BufferUpdated(n int)      { b.got.Write(b.buf[:n]) }
func (b *bufferedProto) EOFReceived() bool        { return false }
func (b *bufferedProto) ConnectionLost(err error) { b.lost.SetResult(err) }

// Mirrors test_buffered_proto.py: test_buffered_proto_create_connection:
// a BufferedProtocol gets the data through its own buffer, in pieces no
// bigger than it.
func TestBufferedProtocol(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		l := loopOf(ctx)
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		defer ln.Close()
		msg := bytes.Repeat([]byte("abcdefg"), 10000)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write(msg)
			c.Close()
		}()
		bp := &bufferedProto{buf: make([]byte, 100), lost: loop.NewFuture[error](l)}
		_, _, err := l.CreateConnection(ctx, func() loop.BaseProtocol { return bp }, ln.Addr().String(), nil)
		if err != nil {
			return err
		}
		if _, err := bp.lost.Await(ctx); err != nil {
			return err
		}
		if !bytes.Equal(bp.got.Bytes(), msg) {
			t.Errorf("got %d bytes; want %d", bp.got.Len(), len(msg))
		}
		if len(bp.hints) < len(msg)/100 || bp.hints[0] != -1 {
			t.Errorf("GetBuffer called %d times, first hint %v", len(bp.hints), bp.hints[:1])
		}
		return nil
	})
}

// Mirrors test_buffered_proto.py's empty-buffer check: GetBuffer
// returning nothing is a fatal error, reported, and the connection ends.
func TestBufferedProtocolEmptyBuffer(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		l := loopOf(ctx)
		var reports []string
		l.SetExceptionHandler(func(_ *loop.Loop, c loop.ExceptionContext) { reports = append(reports, c.Message) })
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		defer ln.Close()
		go func() {
			c, err := ln.Accept()
			if err == nil {
				c.Write([]byte("x"))
				defer c.Close()
				c.Read(make([]byte, 1))
			}
		}()
		bp := &bufferedProto{lost: loop.NewFuture[error](l)}
		if _, _, err := l.CreateConnection(ctx, func() loop.BaseProtocol { return bp }, ln.Addr().String(), nil); err != nil {
			return err
		}
		lerr, err := bp.lost.Await(ctx)
		if err != nil {
			return err
		}
		if lerr == nil || len(reports) != 1 {
			t.Errorf("ConnectionLost(%v), reports %v; want an error, reported once", lerr, reports)
		}
		return nil
	})
}

// Mirrors test_selector_events.py: test_writelines_send_full and
// test_set_protocol: Writelines sends the buffers in order; after
// SetProtocol the new protocol gets the data; a non-protocol is refused.
func TestTransportWritelinesSetProtocolExtraInfo(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		l := loopOf(ctx)
		srv, err := l.CreateServer(ctx, func() loop.BaseProtocol { return &echoProto{} }, "127.0.0.1:0", nil)
		if err != nil {
			return err
		}
		defer srv.Close()
		first := newRecordProto(l)
		tr, p, err := l.CreateConnection(ctx, func() loop.BaseProtocol { return first }, srv.Addrs()[0].String(), nil)
		if err != nil {
			return err
		}
		if p != loop.BaseProtocol(first) || tr.Protocol() != loop.BaseProtocol(first) {
			t.Error("CreateConnection's protocol is not the factory's")
		}
		if tr.GetExtraInfo("peername").(net.Addr).String() != srv.Addrs()[0].String() ||
			tr.GetExtraInfo("sockname") == nil || tr.GetExtraInfo("socket") == nil || tr.GetExtraInfo("nonsense") != nil {
			t.Errorf("extra info: peername %v sockname %v socket %v", tr.GetExtraInfo("peername"), tr.GetExtraInfo("sockname"), tr.GetExtraInfo("socket"))
		}
		second := newRecordProto(l)
		if err := tr.SetProtocol(second); err != nil {
			return err
		}
		if err := tr.SetProtocol(nil); !errors.Is(err, loop.ErrBadProtocol) {
			t.Errorf("SetProtocol(nil) = %v", err)
		}
		if err := tr.Writelines([][]byte{[]byte("a"), nil, []byte("bc"), []byte("def")}); err != nil {
			return err
		}
		for second.data.Len() < 6 {
			loop.Sleep(ctx, time.Millisecond)
		}
		if second.data.String() != "abcdef" || first.data.Len() != 0 {
			t.Errorf("first got %q, second %q", first.data.String(), second.data.String())
		}
		tr.Close()
		_, err = second.lost.Await(ctx)
		return err
	})
}

// Mirrors test_events.py: test_connect_accepted_socket: a connection
// accepted with SockAccept becomes a transport.
func TestConnectAcceptedSocket(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		l := loopOf(ctx)
		ln, err := loop.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer ln.Close()
		reply := dialRead(t, ln.LocalAddr().String(), []byte("accepted"))
		s, _, err := l.SockAccept(ctx, ln)
		if err != nil {
			return err
		}
		rp := newRecordProto(l)
		rp.keep = true // the client half-closes: answer, then close
		tr, _, err := l.ConnectAcceptedSocket(ctx, func() loop.BaseProtocol { return rp }, s, nil)
		if err != nil {
			return err
		}
		for rp.data.Len() < len("accepted") {
			loop.Sleep(ctx, time.Millisecond)
		}
		tr.Write(rp.data.Bytes())
		tr.Close()
		if _, err := rp.lost.Await(ctx); err != nil {
			return err
		}
		if got := awaitChan(ctx, reply); string(got) != "accepted" {
			t.Errorf("client read %q", got)
		}
		return nil
	})
}

// A protocol whose DataReceived panics: reported as asyncio's "Fatal
// error: protocol.data_received() call failed.", the connection is
// aborted, the server serves the next client.
func TestProtocolPanicClosesConnection(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		l := loopOf(ctx)
		var reports []string
		l.SetExceptionHandler(func(_ *loop.Loop, c loop.ExceptionContext) { reports = append(reports, c.Message) })
		calls := 0
		srv, err := l.CreateServer(ctx, func() loop.BaseProtocol {
			calls++
			if calls == 1 {
				return &panicProto{}
			}
			return &echoProto{}
		}, "127.0.0.1:0", nil)
		if err != nil {
			return err
		}
		defer srv.Close()
		addr := srv.Addrs()[0].String()
		if got := awaitChan(ctx, dialRead(t, addr, []byte("boom"))); len(got) != 0 {
			t.Errorf("first client read %q", got)
		}
		if got := awaitChan(ctx, dialRead(t, addr, []byte("fine"))); string(got) != "fine" {
			t.Errorf("second client read %q", got)
		}
		if len(reports) != 1 || reports[0] != "Fatal error: protocol.data_received() call failed." {
			t.Errorf("reports %q", reports)
		}
		return nil
	})
}

type panicProto struct{ loop.NopProtocol }

func (panicProto) DataReceived([]byte) { panic("protocol bug") }

// Stress under faults: many clients at once, each doing one of: a clean
// echo, an abrupt reset, a close mid-message, or nothing at all; meanwhile
// the server aborts some connections. Every server-side protocol sees
// ConnectionMade then ConnectionLost exactly once, the clean echoes are
// exact, and no descriptor is left.
func TestServerStressFaults(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		l := loopOf(ctx)
		var protos []*recordProto
		srv, err := l.CreateServer(ctx, func() loop.BaseProtocol {
			p := newRecordProto(l)
			protos = append(protos, p)
			return &echoRecorder{p}
		}, "127.0.0.1:0", &loop.ServerOptions{Backlog: 1024})
		if err != nil {
			return err
		}
		addr := srv.Addrs()[0].String()
		const clients = 200
		results := make(chan error, clients)
		for i := range clients {
			go func() { results <- stressClient(addr, i) }()
		}
		done := 0
		for done < clients {
			select {
			case err := <-results:
				if err != nil {
					t.Error(err)
				}
				done++
			default:
				if len(protos) > 0 && rand.IntN(10) == 0 {
					if p := protos[rand.IntN(len(protos))]; p.t != nil {
						p.t.Abort()
					}
				}
				loop.Sleep(ctx, time.Millisecond)
			}
		}
		srv.Close()
		srv.AbortClients()
		if err := srv.WaitClosed(ctx); err != nil {
			return err
		}
		for i, p := range protos {
			if len(p.events) < 2 || p.events[0] != "made" || p.events[len(p.events)-1] != "lost" {
				t.Errorf("protocol %d saw %v", i, p.events)
			}
			lost := 0
			for _, e := range p.events {
				if e == "lost" {
					lost++
				}
			}
			if lost != 1 {
				t.Errorf("protocol %d lost %d times", i, lost)
			}
		}
		return nil
	})
}

// echoRecorder echoes and records.
type echoRecorder struct{ *recordProto }

func (e *echoRecorder) DataReceived(p []byte) {
	e.recordProto.DataReceived(p)
	e.t.Write(p)
}

func stressClient(addr string, i int) error {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	msg := bytes.Repeat([]byte{byte(i)}, 1+i*97)
	switch i % 4 {
	case 0: // clean echo, unless the server aborts it
		if _, err := c.Write(msg); err != nil {
			return nil
		}
		got := make([]byte, len(msg))
		n := 0
		for n < len(got) {
			m, err := c.Read(got[n:])
			if err != nil {
				return nil // aborted by the server: allowed
			}
			n += m
		}
		if !bytes.Equal(got, msg) {
			return fmt.Errorf("client %d: echo differs", i)
		}
	case 1: // reset
		c.(*net.TCPConn).SetLinger(0)
		c.Write(msg)
	case 2: // half a message, then close
		c.Write(msg[:len(msg)/2])
	case 3: // nothing
	}
	return nil
}

// The write buffer against a reference model (the concatenation of all
// writes): random Write and Writelines sizes, a peer that reads in random
// pieces at a random pace, water marks changing on the way. The peer gets
// exactly the bytes written, in order, and the buffer never reports a
// size that disagrees with what the peer still has to read.
func TestTransportWriteBufferRandomized(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		l := loopOf(ctx)
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		defer ln.Close()
		got := make(chan []byte, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				got <- nil
				return
			}
			defer c.Close()
			rng := rand.New(rand.NewPCG(3, 4))
			var all []byte
			buf := make([]byte, 1<<20)
			for {
				n, err := c.Read(buf[:1+rng.IntN(len(buf)-1)])
				all = append(all, buf[:n]...)
				if err != nil {
					got <- all
					return
				}
				if rng.IntN(4) == 0 {
					time.Sleep(time.Duration(rng.IntN(200)) * time.Microsecond)
				}
			}
		}()
		rp := newRecordProto(l)
		tr, _, err := l.CreateConnection(ctx, func() loop.BaseProtocol { return rp }, ln.Addr().String(), nil)
		if err != nil {
			return err
		}
		rng := rand.New(rand.NewPCG(5, 6))
		var model []byte
		var seq byte
		chunk := func(n int) []byte {
			p := make([]byte, n)
			for i := range p {
				seq++
				p[i] = seq
			}
			model = append(model, p...)
			return p
		}
		for len(model) < 16<<20 {
			switch rng.IntN(10) {
			case 0:
				var bufs [][]byte
				for range rng.IntN(5) {
					bufs = append(bufs, chunk(rng.IntN(40<<10)))
				}
				if err := tr.Writelines(bufs); err != nil {
					return err
				}
			case 1:
				tr.SetWriteBufferLimits(rng.IntN(1<<20)+1<<10, -1)
			case 2, 3:
				if err := loop.Sleep(ctx, time.Duration(rng.IntN(300))*time.Microsecond); err != nil {
					return err
				}
			default:
				p := chunk(rng.IntN(300 << 10))
				if n, err := tr.Write(p); err != nil || n != len(p) {
					return fmt.Errorf("Write = %d, %v", n, err)
				}
				clear(p) // the transport must have copied what it kept
			}
			if size := tr.WriteBufferSize(); size < 0 || size > len(model) {
				return fmt.Errorf("WriteBufferSize %d with %d written", size, len(model))
			}
		}
		tr.Close()
		if _, err := rp.lost.Await(ctx); err != nil {
			return err
		}
		all := awaitChan(ctx, got)
		if !bytes.Equal(all, model) {
			t.Errorf("peer got %d bytes, differing from the %d written", len(all), len(model))
		}
		return nil
	})
}

package loop_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/loop"
	"go.uber.org/goleak"
)

// testPKI is a self-signed CA and a server certificate it signed, for
// "localhost" and 127.0.0.1, made at test time (no key is committed).
type testPKI struct {
	roots  *x509.CertPool
	leaf   *x509.Certificate
	server *tls.Config
}

var (
	pkiOnce  sync.Once
	pkiMain  *testPKI
	pkiOther *testPKI // another CA: its roots do not verify pkiMain's server
)

func testCerts(t *testing.T) (main, other *testPKI) {
	t.Helper()
	pkiOnce.Do(func() {
		pkiMain = makePKI(t)
		pkiOther = makePKI(t)
	})
	if pkiMain == nil || pkiOther == nil {
		t.Fatal("no test certificates")
	}
	return pkiMain, pkiOther
}

func makePKI(t *testing.T) *testPKI {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "asyncgo test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	return &testPKI{
		roots: roots,
		leaf:  leaf,
		server: &tls.Config{
			Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}},
		},
	}
}

// client is a client config that verifies the server through p's root
// pool, as "localhost".
func (p *testPKI) client() *tls.Config {
	return &tls.Config{RootCAs: p.roots, ServerName: "localhost"}
}

// tlsWaitUntil yields to the loop until cond holds, or fails after a long
// bound (the conditions are events, the bound only stops a hung test).
func tlsWaitUntil(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		if err := loop.Sleep(ctx, time.Millisecond); err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
	}
}

// pipeProto records its callbacks, for the net.Conn transport tests.
type pipeProto struct {
	t      loop.Transport
	events []string
	data   bytes.Buffer
	lost   []error
	flow   []string
}

func (p *pipeProto) ConnectionMade(t loop.Transport) { p.t = t; p.events = append(p.events, "made") }
func (p *pipeProto) DataReceived(b []byte) {
	if n := len(p.events); n == 0 || p.events[n-1] != "data" {
		p.events = append(p.events, "data")
	}
	p.data.Write(b)
}
func (p *pipeProto) EOFReceived() bool { p.events = append(p.events, "eof"); return false }
func (p *pipeProto) ConnectionLost(err error) {
	p.events = append(p.events, "lost")
	p.lost = append(p.lost, err)
}
func (p *pipeProto) PauseWriting()  { p.flow = append(p.flow, "pause") }
func (p *pipeProto) ResumeWriting() { p.flow = append(p.flow, "resume") }

// ConnectNetConn over net.Pipe: a connection with no descriptor joins the
// loop. The callbacks come in asyncio's order, a paused transport does not
// read (the peer's second write cannot complete until ResumeReading), what
// was read before the pause arrives after it, in order, and the peer's
// close is EOFReceived then one ConnectionLost(nil). Mirrors
// test_selector_events.py's test_pause_resume_reading and
// test_read_ready_eof on a transport over a net.Conn.
func TestConnTransportNetPipe(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	err := loop.RunMain(context.Background(), func(ctx context.Context) error {
		l := loopOf(ctx)
		a, b := net.Pipe()
		defer b.Close()
		pp := &pipeProto{}
		tr, proto, err := l.ConnectNetConn(ctx, func() loop.BaseProtocol { return pp }, a)
		if err != nil {
			return err
		}
		if proto != pp || pp.t != tr {
			t.Fatal("ConnectNetConn returned before ConnectionMade")
		}
		if tr.GetExtraInfo("socket") != nil || tr.GetExtraInfo("ssl_object") != nil {
			t.Error("a plain net.Conn transport has a socket or ssl_object")
		}
		if tr.RemoteAddr() == nil || tr.GetExtraInfo("peername") == nil {
			t.Error("no peername")
		}
		if tr.CanWriteEOF() || !errors.Is(tr.WriteEOF(), loop.ErrWriteEOFUnsupported) {
			t.Error("net.Pipe has no CloseWrite: WriteEOF must be unsupported")
		}
		// Write reaches the peer.
		got := make(chan []byte, 1)
		go func() {
			buf := make([]byte, 5)
			io.ReadFull(b, buf)
			got <- buf
		}()
		tr.Write([]byte("hello"))
		if p := recvOnLoop(ctx, got); string(p) != "hello" {
			t.Errorf("peer read %q", p)
		}
		// Paused: the read under way takes "a", then the reader waits.
		tr.PauseReading()
		if tr.IsReading() {
			t.Error("IsReading after PauseReading")
		}
		first := make(chan error, 1)
		go func() { _, err := b.Write([]byte("a")); first <- err }()
		if err := recvOnLoop(ctx, first); err != nil {
			return err
		}
		second := make(chan error, 1)
		go func() { _, err := b.Write([]byte("b")); second <- err }()
		for range 20 {
			loop.Sleep(ctx, time.Millisecond)
		}
		if pp.data.Len() != 0 {
			t.Errorf("DataReceived(%q) while paused", pp.data.String())
		}
		select {
		case <-second:
			t.Error("a paused transport read the peer's second write")
		default:
		}
		tr.ResumeReading()
		if err := recvOnLoop(ctx, second); err != nil {
			return err
		}
		tlsWaitUntil(ctx, t, "ab", func() bool { return pp.data.Len() == 2 })
		if pp.data.String() != "ab" {
			t.Errorf("data %q; want ab", pp.data.String())
		}
		b.Close()
		tlsWaitUntil(ctx, t, "ConnectionLost", func() bool { return len(pp.lost) > 0 })
		for range 5 {
			loop.Sleep(ctx, time.Millisecond)
		}
		checkTrace(t, []string{"made", "data", "eof", "lost"}, pp.events)
		if pp.lost[0] != nil {
			t.Errorf("ConnectionLost(%v); want nil", pp.lost[0])
		}
		if _, err := tr.Write([]byte("late")); !errors.Is(err, loop.ErrTransportClosed) {
			t.Errorf("Write after the end = %v; want ErrTransportClosed", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	goleak.VerifyNone(t, ignore)
}

// Write flow control on a net.Conn transport: a peer that does not read
// leaves the bytes in the transport's buffer, PauseWriting comes past the
// high mark, ResumeWriting once the peer reads and the writer goroutine
// reports them sent; Close flushes before closing. Mirrors
// test_selector_events.py: test_write_buffer_full and test_transport_close
// (close after the buffer is flushed).
func TestConnTransportWriteFlowControl(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	err := loop.RunMain(context.Background(), func(ctx context.Context) error {
		l := loopOf(ctx)
		a, b := net.Pipe()
		defer b.Close()
		pp := &pipeProto{}
		tr, _, err := l.ConnectNetConn(ctx, func() loop.BaseProtocol { return pp }, a)
		if err != nil {
			return err
		}
		if err := tr.SetWriteBufferLimits(4096, 1024); err != nil {
			return err
		}
		chunk := bytes.Repeat([]byte("z"), 1000)
		total := 0
		for len(pp.flow) == 0 {
			tr.Write(chunk) // the peer does not read: nothing is sent
			total += len(chunk)
		}
		if size := tr.WriteBufferSize(); size <= 4096 {
			t.Errorf("paused at %d bytes; want above the high mark", size)
		}
		tr.Write(chunk)
		total += len(chunk)
		tr.Close() // flushes first
		read := make(chan int, 1)
		go func() {
			n, _ := io.Copy(io.Discard, b)
			read <- int(n)
		}()
		if n := recvOnLoop(ctx, read); n != total {
			t.Errorf("peer read %d bytes; want %d", n, total)
		}
		tlsWaitUntil(ctx, t, "ConnectionLost", func() bool { return len(pp.lost) > 0 })
		checkTrace(t, []string{"pause", "resume"}, pp.flow)
		if tr.WriteBufferSize() != 0 {
			t.Errorf("WriteBufferSize %d after the close", tr.WriteBufferSize())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	goleak.VerifyNone(t, ignore)
}

// ConnectNetConn with a *tls.Conn made elsewhere (over net.Pipe, its peer a
// plain crypto/tls server): the transport shakes hands before
// ConnectionMade and answers the TLS names of get_extra_info. Mirrors
// test_ssl.py: test_create_connection_ssl_1 over a connection made
// elsewhere (sock=).
func TestTLSConnectNetConnPipe(t *testing.T) {
	pki, _ := testCerts(t)
	ignore := goleak.IgnoreCurrent()
	err := loop.RunMain(context.Background(), func(ctx context.Context) error {
		l := loopOf(ctx)
		a, b := net.Pipe()
		srv := tls.Server(b, pki.server)
		defer srv.Close()
		go func() {
			buf := make([]byte, 64)
			n, err := srv.Read(buf)
			if err == nil {
				srv.Write(bytes.ToUpper(buf[:n]))
			}
			io.Copy(io.Discard, srv) // until the client's close_notify
		}()
		pp := &pipeProto{}
		client := tls.Client(a, pki.client())
		tr, _, err := l.ConnectNetConn(ctx, func() loop.BaseProtocol { return pp }, client)
		if err != nil {
			return err
		}
		if tr.GetExtraInfo("ssl_object") != client {
			t.Error("ssl_object is not the *tls.Conn")
		}
		if cert, _ := tr.GetExtraInfo("peercert").(*x509.Certificate); cert == nil || !cert.Equal(pki.leaf) {
			t.Errorf("peercert %v; want the server's certificate", tr.GetExtraInfo("peercert"))
		}
		if name, _ := tr.GetExtraInfo("cipher").(string); name == "" {
			t.Error("no cipher")
		}
		if tr.GetExtraInfo("sslcontext") != nil {
			t.Error("sslcontext of a *tls.Conn made elsewhere is unknown: want nil")
		}
		if tr.CanWriteEOF() {
			t.Error("CanWriteEOF() on TLS")
		}
		tr.Write([]byte("shout"))
		tlsWaitUntil(ctx, t, "the reply", func() bool { return pp.data.Len() == 5 })
		if pp.data.String() != "SHOUT" {
			t.Errorf("reply %q", pp.data.String())
		}
		tr.Close()
		tlsWaitUntil(ctx, t, "ConnectionLost", func() bool { return len(pp.lost) > 0 })
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	goleak.VerifyNone(t, ignore)
}

// Loop.Close with an open net.Conn transport reports it, closes the
// connection and leaves no goroutine behind.
func TestConnTransportLoopClose(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	l := loop.New()
	var reports []string
	l.SetExceptionHandler(func(_ *loop.Loop, c loop.ExceptionContext) { reports = append(reports, c.Message) })
	a, b := net.Pipe()
	pp := &pipeProto{}
	task := loop.CreateTask(l, func(ctx context.Context) (loop.Transport, error) {
		tr, _, err := l.ConnectNetConn(ctx, func() loop.BaseProtocol { return pp }, a)
		if err == nil {
			tr.Write([]byte("never read")) // the writer goroutine blocks
		}
		return tr, err
	})
	if err := l.RunUntilComplete(task); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if len(reports) != 1 {
		t.Errorf("reports %q; want one unclosed transport", reports)
	}
	if _, err := b.Read(make([]byte, 1)); err == nil {
		t.Error("the peer still reads: the pipe was not closed")
	}
	if len(pp.lost) != 0 {
		t.Error("ConnectionLost at Loop.Close: asyncio makes no callbacks there")
	}
	goleak.VerifyNone(t, ignore)
}

// recvOnLoop receives from ch without blocking the loop.
func recvOnLoop[T any](ctx context.Context, ch <-chan T) T {
	for {
		select {
		case v := <-ch:
			return v
		default:
			if err := loop.Sleep(ctx, time.Millisecond); err != nil {
				var zero T
				return zero
			}
		}
	}
}

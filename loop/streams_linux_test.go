package loop_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/loop"
)

// The stream tests of test_streams.py and test_server.py over real
// sockets (127.0.0.1 and Unix sockets), and issue 9's bad-input cases.
// Every one runs under runNet, which fails if a descriptor is left open.

// streamReports makes the loop's exception handler record its reports.
func streamReports(ctx context.Context) *[]loop.ExceptionContext {
	var got []loop.ExceptionContext
	loopOf(ctx).SetExceptionHandler(func(_ *loop.Loop, c loop.ExceptionContext) { got = append(got, c) })
	return &got
}

func checkNoStreamReports(t *testing.T, got *[]loop.ExceptionContext) {
	t.Helper()
	for _, c := range *got {
		t.Errorf("exception handler: %s: %v", c.Message, c.Err)
	}
}

// streamHandleClient is test_streams.py's MyServer.handle_client: a line back,
// then close.
func streamHandleClient(ctx context.Context, r *loop.StreamReader, w *loop.StreamWriter) error {
	data, err := r.ReadLine(ctx)
	if err != nil {
		return err
	}
	w.Write(data)
	if err := w.Drain(ctx); err != nil {
		return err
	}
	w.Close()
	return w.WaitClosed(ctx)
}

// streamLineClient is test_streams.py's client(): it sends a line and reads it
// back.
func streamLineClient(ctx context.Context, r *loop.StreamReader, w *loop.StreamWriter) (string, error) {
	w.Write([]byte("hello world!\n"))
	msg, err := r.ReadLine(ctx)
	w.Close()
	if werr := w.WaitClosed(ctx); err == nil {
		err = werr
	}
	return string(msg), err
}

// Mirrors test_streams.py: test_start_server (the handler as a task,
// given the address and given a listening socket, sock=).
func TestStreamStartServer(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		reports := streamReports(ctx)
		for _, viaSock := range []bool{false, true} {
			addr, opts := "127.0.0.1:0", (*loop.ServerOptions)(nil)
			if viaSock {
				s, err := loop.NewSocket("tcp4")
				if err != nil {
					return err
				}
				if err := s.Bind("127.0.0.1:0"); err != nil {
					s.Close()
					return err
				}
				addr, opts = "", &loop.ServerOptions{Sockets: []*loop.Socket{s}}
			}
			srv, err := loop.StartServer(ctx, streamHandleClient, addr, opts)
			if err != nil {
				return err
			}
			r, w, err := loop.OpenConnection(ctx, srv.Addrs()[0].String(), nil)
			if err != nil {
				return err
			}
			msg, err := streamLineClient(ctx, r, w)
			if err != nil || msg != "hello world!\n" {
				t.Errorf("client got %q, %v", msg, err)
			}
			srv.Close()
			if err := srv.WaitClosed(ctx); err != nil {
				return err
			}
		}
		checkNoStreamReports(t, reports)
		return nil
	})
}

// Mirrors test_streams.py: test_start_unix_server and
// test_open_unix_connection.
func TestStreamStartUnixServer(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		reports := streamReports(ctx)
		path := filepath.Join(t.TempDir(), "sock")
		srv, err := loop.StartUnixServer(ctx, streamHandleClient, path, nil)
		if err != nil {
			return err
		}
		r, w, err := loop.OpenUnixConnection(ctx, path, nil)
		if err != nil {
			return err
		}
		msg, err := streamLineClient(ctx, r, w)
		if err != nil || msg != "hello world!\n" {
			t.Errorf("client got %q, %v", msg, err)
		}
		srv.Close()
		if err := srv.WaitClosed(ctx); err != nil {
			return err
		}
		checkNoStreamReports(t, reports)
		return nil
	})
}

// streamHTTPPeer is test_utils.run_test_server: a plain Go server that answers
// one request with a fixed response and closes.
func streamHTTPPeer(t *testing.T, network, addr string) (net.Listener, <-chan error) {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		buf := make([]byte, 1024)
		var req []byte
		for !bytes.Contains(req, []byte("\r\n\r\n")) {
			n, err := c.Read(buf)
			if err != nil {
				done <- err
				return
			}
			req = append(req, buf[:n]...)
		}
		_, err = c.Write([]byte("HTTP/1.0 200 OK\r\nContent-Length: 12\r\n\r\nTest message"))
		done <- err
	}()
	return ln, done
}

// Mirrors test_streams.py: test_open_connection, test_open_unix_connection,
// test_async_writer_api and test_wait_closed_on_close.
func TestStreamOpenConnection(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			runNet(t, func(ctx context.Context) error {
				reports := streamReports(ctx)
				addr := "127.0.0.1:0"
				if network == "unix" {
					addr = filepath.Join(t.TempDir(), "sock")
				}
				ln, served := streamHTTPPeer(t, network, addr)
				defer ln.Close()
				var r *loop.StreamReader
				var w *loop.StreamWriter
				var err error
				if network == "unix" {
					r, w, err = loop.OpenUnixConnection(ctx, addr, nil)
				} else {
					r, w, err = loop.OpenConnection(ctx, ln.Addr().String(), nil)
				}
				if err != nil {
					return err
				}
				w.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
				line, err := r.ReadLine(ctx)
				checkRead(t, "ReadLine", line, err, "HTTP/1.0 200 OK\r\n")
				data, err := r.Read(ctx, -1)
				if err != nil || !bytes.HasSuffix(data, []byte("\r\n\r\nTest message")) {
					t.Errorf("Read(-1) = %q, %v", data, err)
				}
				if w.IsClosing() {
					t.Error("IsClosing before Close")
				}
				w.Close()
				if !w.IsClosing() {
					t.Error("IsClosing false after Close")
				}
				if err := w.WaitClosed(ctx); err != nil {
					t.Errorf("WaitClosed = %v", err)
				}
				if err := awaitChan(ctx, served); err != nil {
					t.Errorf("peer: %v", err)
				}
				checkNoStreamReports(t, reports)
				return nil
			})
		})
	}
}

// Mirrors test_streams.py: test_wait_closed_on_close_with_unread_data.
func TestStreamWaitClosedWithUnreadData(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		ln, served := streamHTTPPeer(t, "tcp", "127.0.0.1:0")
		defer ln.Close()
		r, w, err := loop.OpenConnection(ctx, ln.Addr().String(), nil)
		if err != nil {
			return err
		}
		w.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
		line, err := r.ReadLine(ctx)
		checkRead(t, "ReadLine", line, err, "HTTP/1.0 200 OK\r\n")
		w.Close()
		if err := w.WaitClosed(ctx); err != nil {
			t.Errorf("WaitClosed = %v", err)
		}
		awaitChan(ctx, served)
		return nil
	})
}

// streamResetPeer accepts one connection, sends data, and resets it (RST, as
// SO_LINGER 0 makes close do).
func streamResetPeer(t *testing.T, send string, wait time.Duration) (net.Listener, <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.Write([]byte(send))
		time.Sleep(wait)
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
	}()
	return ln, done
}

// Mirrors test_streams.py: test_open_connection_error: the connection
// ends with an error; the read returns it, and so do WaitClosed and
// Drain (asyncio 3.12: the reader's exception first).
func TestStreamOpenConnectionError(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		reports := streamReports(ctx)
		ln, done := streamResetPeer(t, "", 50*time.Millisecond)
		defer ln.Close()
		r, w, err := loop.OpenConnection(ctx, ln.Addr().String(), nil)
		if err != nil {
			return err
		}
		if _, err := r.Read(ctx, -1); !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("Read = %v; want ECONNRESET", err)
		}
		if err := w.WaitClosed(ctx); !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("WaitClosed = %v; want ECONNRESET", err)
		}
		if err := w.Drain(ctx); !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("Drain = %v; want ECONNRESET", err)
		}
		w.Close()
		awaitChan(ctx, done)
		checkNoStreamReports(t, reports)
		return nil
	})
}

// Mirrors test_streams.py: test_drain_raises: a peer that closes makes a
// write-and-drain loop fail instead of spinning.
func TestStreamDrainRaises(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		reports := streamReports(ctx)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer ln.Close()
		go func() {
			if c, err := ln.Accept(); err == nil {
				c.Close()
			}
		}()
		_, w, err := loop.OpenConnection(ctx, ln.Addr().String(), nil)
		if err != nil {
			return err
		}
		c, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		for {
			w.Write([]byte("foo\n"))
			err = w.Drain(c)
			if err != nil {
				break
			}
		}
		if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) && !errors.Is(err, loop.ErrConnectionLost) {
			t.Errorf("Drain = %v; want a connection error", err)
		}
		w.Close()
		checkNoStreamReports(t, reports)
		return nil
	})
}

// Mirrors test_streams.py: test_async_writer_api_exception_after_close:
// a Drain after Close returns ErrConnectionLost (ConnectionResetError).
func TestStreamWriterExceptionAfterClose(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		reports := streamReports(ctx)
		ln, served := streamHTTPPeer(t, "tcp", "127.0.0.1:0")
		defer ln.Close()
		r, w, err := loop.OpenConnection(ctx, ln.Addr().String(), nil)
		if err != nil {
			return err
		}
		w.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
		r.ReadLine(ctx)
		r.Read(ctx, -1)
		w.Close()
		w.Write([]byte("data"))
		if err := w.Drain(ctx); !errors.Is(err, loop.ErrConnectionLost) || !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("Drain after Close = %v; want ErrConnectionLost", err)
		}
		awaitChan(ctx, served)
		checkNoStreamReports(t, reports)
		return nil
	})
}

// Mirrors test_streams.py: test_eof_feed_when_closing_writer.
func TestStreamEOFFeedWhenClosingWriter(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		reports := streamReports(ctx)
		ln, served := streamHTTPPeer(t, "tcp", "127.0.0.1:0")
		defer ln.Close()
		r, w, err := loop.OpenConnection(ctx, ln.Addr().String(), nil)
		if err != nil {
			return err
		}
		w.Close()
		if err := w.WaitClosed(ctx); err != nil {
			t.Errorf("WaitClosed = %v", err)
		}
		if !r.AtEOF() {
			t.Error("AtEOF false after WaitClosed")
		}
		data, err := r.Read(ctx, -1)
		checkRead(t, "Read(-1)", data, err, "")
		ln.Close()
		awaitChan(ctx, served)
		checkNoStreamReports(t, reports)
		return nil
	})
}

// Mirrors test_streams.py: test_unhandled_exceptions (3.12): a callback
// that fails is reported as "Unhandled exception in client_connected_cb"
// and its connection closed; a cancelled one closes it silently.
func TestStreamUnhandledCallbackError(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		reports := streamReports(ctx)
		boom := errors.New("boom")
		var handlers []loop.AnyTask
		srv, err := loop.StartServer(ctx, func(ctx context.Context, r *loop.StreamReader, w *loop.StreamWriter) error {
			handlers = append(handlers, loop.CurrentTask(ctx))
			line, err := r.ReadLine(ctx)
			if err != nil {
				return err
			}
			if string(line) == "fail\n" {
				return boom
			}
			return loop.Sleep(ctx, time.Hour)
		}, "127.0.0.1:0", nil)
		if err != nil {
			return err
		}
		defer srv.Close()
		addr := srv.Addrs()[0].String()

		r, w, err := loop.OpenConnection(ctx, addr, nil)
		if err != nil {
			return err
		}
		w.Write([]byte("fail\n"))
		data, err := r.Read(ctx, -1)
		checkRead(t, "client Read(-1)", data, err, "")
		w.Close()
		if len(*reports) != 1 {
			t.Fatalf("reports: %+v", *reports)
		}
		c := (*reports)[0]
		if c.Message != "Unhandled exception in client_connected_cb" || c.Err != boom || c.Transport == nil {
			t.Errorf("report %+v", c)
		}
		*reports = nil

		r, w, err = loop.OpenConnection(ctx, addr, nil)
		if err != nil {
			return err
		}
		w.Write([]byte("sleep\n"))
		for len(handlers) < 2 {
			loop.Sleep(ctx, time.Millisecond)
		}
		loop.Sleep(ctx, 10*time.Millisecond)
		handlers[1].Cancel()
		data, err = r.Read(ctx, -1)
		checkRead(t, "client Read(-1) after cancel", data, err, "")
		w.Close()
		w.WaitClosed(ctx)
		checkNoStreamReports(t, reports)
		srv.Close()
		return srv.WaitClosed(ctx)
	})
}

// streamEchoServer is a StartServer echo of lines, each drained; it counts the
// connections it served to the end.
type streamEchoServer struct {
	srv      *loop.Server
	finished int
	failed   int
}

func startStreamEcho(ctx context.Context, opts *loop.ServerOptions) (*streamEchoServer, error) {
	e := &streamEchoServer{}
	srv, err := loop.StartServer(ctx, func(ctx context.Context, r *loop.StreamReader, w *loop.StreamWriter) error {
		defer func() { e.finished++ }()
		defer w.Close()
		for {
			line, err := r.ReadLine(ctx)
			if err != nil {
				e.failed++
				return nil
			}
			if len(line) == 0 {
				return nil
			}
			w.Write(line)
			if err := w.Drain(ctx); err != nil {
				e.failed++
				return nil
			}
		}
	}, "127.0.0.1:0", opts)
	e.srv = srv
	return e, err
}

func (e *streamEchoServer) addr() string { return e.srv.Addrs()[0].String() }

// streamEchoOnce checks that the server still echoes.
func streamEchoOnce(ctx context.Context, t *testing.T, addr, msg string) {
	t.Helper()
	r, w, err := loop.OpenConnection(ctx, addr, nil)
	if err != nil {
		t.Fatalf("OpenConnection: %v", err)
	}
	w.Write([]byte(msg + "\n"))
	line, err := r.ReadLine(ctx)
	checkRead(t, "echo", line, err, msg+"\n")
	w.Close()
	w.WaitClosed(ctx)
}

// Mirrors test_server.py: test_close_clients and test_abort_clients
// (3.13), and issue 9's "server close while clients are connected":
// Close stops accepting at once, the connections it has go on, WaitClosed
// waits for them, and CloseClients / AbortClients end them.
func TestStreamServerCloseWithClients(t *testing.T) {
	for _, abort := range []bool{false, true} {
		t.Run(fmt.Sprintf("abort=%v", abort), func(t *testing.T) {
			runNet(t, func(ctx context.Context) error {
				e, err := startStreamEcho(ctx, nil)
				if err != nil {
					return err
				}
				addr := e.addr()
				type client struct {
					r *loop.StreamReader
					w *loop.StreamWriter
				}
				var clients []client
				for i := range 3 {
					r, w, err := loop.OpenConnection(ctx, addr, nil)
					if err != nil {
						return err
					}
					w.Write(fmt.Appendf(nil, "hi %d\n", i))
					line, err := r.ReadLine(ctx)
					checkRead(t, "echo", line, err, fmt.Sprintf("hi %d\n", i))
					clients = append(clients, client{r, w})
				}
				e.srv.Close()
				if e.srv.IsServing() {
					t.Error("IsServing after Close")
				}
				if _, _, err := loop.OpenConnection(ctx, addr, nil); !errors.Is(err, syscall.ECONNREFUSED) {
					t.Errorf("OpenConnection after Close = %v; want ECONNREFUSED", err)
				}
				// The connections go on.
				clients[1].w.Write([]byte("still here\n"))
				line, err := clients[1].r.ReadLine(ctx)
				checkRead(t, "echo after Close", line, err, "still here\n")
				// WaitClosed waits for them.
				c, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
				if err := e.srv.WaitClosed(c); !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("WaitClosed with clients = %v; want DeadlineExceeded", err)
				}
				cancel()
				if abort {
					e.srv.AbortClients()
				} else {
					e.srv.CloseClients()
				}
				if err := e.srv.WaitClosed(ctx); err != nil {
					t.Errorf("WaitClosed = %v", err)
				}
				for _, cl := range clients {
					data, err := cl.r.Read(ctx, -1)
					if len(data) != 0 || (err != nil && !errors.Is(err, syscall.ECONNRESET)) {
						t.Errorf("client after %v: %q, %v", map[bool]string{false: "CloseClients", true: "AbortClients"}[abort], data, err)
					}
					cl.w.Close()
					cl.w.WaitClosed(ctx)
				}
				for e.finished < 3 {
					loop.Sleep(ctx, time.Millisecond)
				}
				return nil
			})
		})
	}
}

// streamGoPeer runs fn against a plain Go connection to addr and reports its
// error.
func streamGoPeer(addr string, fn func(c *net.TCPConn) error) <-chan error {
	done := make(chan error, 1)
	go func() {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		done <- fn(c.(*net.TCPConn))
	}()
	return done
}

// streamServeOne starts a server whose callback, run for the first connection,
// is fn; it returns the server and a future of fn's result.
func streamServeOne(ctx context.Context, opts *loop.ServerOptions, fn func(ctx context.Context, r *loop.StreamReader, w *loop.StreamWriter) error) (*loop.Server, *loop.Future[error], error) {
	res := loop.NewFuture[error](loopOf(ctx))
	srv, err := loop.StartServer(ctx, func(ctx context.Context, r *loop.StreamReader, w *loop.StreamWriter) error {
		defer w.Close()
		err := fn(ctx, r, w)
		res.SetResult(err)
		return nil
	}, "127.0.0.1:0", opts)
	return srv, res, err
}

// Issue 9, item 7: a peer that disconnects mid-line: ReadLine returns the
// partial line (asyncio's IncompleteReadError.partial) and then an empty
// one; ReadUntil returns an *IncompleteReadError with it. Mirrors
// test_streams.py: test_readline_eof and test_readuntil_eof over a socket.
func TestStreamPeerDisconnectMidLine(t *testing.T) {
	for _, until := range []bool{false, true} {
		t.Run(fmt.Sprintf("ReadUntil=%v", until), func(t *testing.T) {
			runNet(t, func(ctx context.Context) error {
				srv, res, err := streamServeOne(ctx, nil, func(ctx context.Context, r *loop.StreamReader, w *loop.StreamWriter) error {
					line, err := r.ReadLine(ctx)
					checkRead(t, "first line", line, err, "complete\n")
					if until {
						_, err := r.ReadUntil(ctx, []byte("\r\n"))
						var ie *loop.IncompleteReadError
						if !errors.As(err, &ie) || string(ie.Partial) != "half a li" || ie.Expected != -1 {
							t.Errorf("ReadUntil = %v", err)
						}
					} else {
						line, err = r.ReadLine(ctx)
						checkRead(t, "partial line", line, err, "half a li")
					}
					line, err = r.ReadLine(ctx)
					checkRead(t, "after EOF", line, err, "")
					return nil
				})
				if err != nil {
					return err
				}
				defer srv.Close()
				peer := streamGoPeer(srv.Addrs()[0].String(), func(c *net.TCPConn) error {
					c.Write([]byte("complete\nhalf a "))
					time.Sleep(20 * time.Millisecond)
					_, err := c.Write([]byte("li"))
					return err
				})
				if _, err := res.Await(ctx); err != nil {
					return err
				}
				if err := awaitChan(ctx, peer); err != nil {
					t.Errorf("peer: %v", err)
				}
				srv.Close()
				return srv.WaitClosed(ctx)
			})
		})
	}
}

// Issue 9, item 7: a peer that disconnects mid-ReadExactly: an
// *IncompleteReadError with what came (Expected the size asked); a peer
// that resets instead: its error. Mirrors test_streams.py:
// test_readexactly_eof over a socket.
func TestStreamPeerDisconnectMidReadExactly(t *testing.T) {
	for _, reset := range []bool{false, true} {
		t.Run(fmt.Sprintf("reset=%v", reset), func(t *testing.T) {
			runNet(t, func(ctx context.Context) error {
				srv, res, err := streamServeOne(ctx, nil, func(ctx context.Context, r *loop.StreamReader, w *loop.StreamWriter) error {
					hdr, err := r.ReadExactly(ctx, 4)
					checkRead(t, "header", hdr, err, "0100")
					_, err = r.ReadExactly(ctx, 100000)
					if reset {
						if !errors.Is(err, syscall.ECONNRESET) {
							t.Errorf("ReadExactly = %v; want ECONNRESET", err)
						}
						return nil
					}
					var ie *loop.IncompleteReadError
					if !errors.As(err, &ie) || len(ie.Partial) != 70000 || ie.Expected != 100000 {
						t.Errorf("ReadExactly = %v", err)
					}
					if !r.AtEOF() {
						t.Error("AtEOF false after the IncompleteReadError")
					}
					return nil
				})
				if err != nil {
					return err
				}
				defer srv.Close()
				peer := streamGoPeer(srv.Addrs()[0].String(), func(c *net.TCPConn) error {
					c.Write([]byte("0100"))
					for range 7 {
						if _, err := c.Write(bytes.Repeat([]byte("z"), 10000)); err != nil {
							return err
						}
						time.Sleep(time.Millisecond)
					}
					if reset {
						time.Sleep(20 * time.Millisecond)
						c.SetLinger(0)
					}
					return nil
				})
				if _, err := res.Await(ctx); err != nil {
					return err
				}
				if err := awaitChan(ctx, peer); err != nil {
					t.Errorf("peer: %v", err)
				}
				srv.Close()
				return srv.WaitClosed(ctx)
			})
		})
	}
}

// Issue 9, item 7: a peer that sends more than the limit without a
// separator. ReadUntil returns a *LimitOverrunError and keeps the buffer,
// which flow control holds near 2*limit however much the peer sends;
// ReadLine drops the overlong line and finds the next one. Mirrors
// test_streams.py: test_readline_limit and test_readuntil_limit_found_sep
// over a socket.
func TestStreamPeerOverLimit(t *testing.T) {
	const limit = 1024
	runNet(t, func(ctx context.Context) error {
		srv, res, err := streamServeOne(ctx, &loop.ServerOptions{Limit: limit}, func(ctx context.Context, r *loop.StreamReader, w *loop.StreamWriter) error {
			_, err := r.ReadUntil(ctx, []byte("\n"))
			var le *loop.LimitOverrunError
			if !errors.As(err, &le) || le.Consumed <= limit {
				t.Errorf("ReadUntil = %v", err)
			}
			// The transport is paused: the peer's 4 MiB stay in its
			// socket, not in the reader.
			loop.Sleep(ctx, 50*time.Millisecond)
			if n := r.Buffered(); n > 2*limit+256<<10 {
				t.Errorf("Buffered() = %d with the transport paused", n)
			}
			w.Write([]byte("overrun\n"))
			maxBuf, drops := 0, 0
			for {
				line, err := r.ReadLine(ctx)
				maxBuf = max(maxBuf, r.Buffered())
				if errors.Is(err, loop.ErrLimitOverrun) {
					drops++
					continue
				}
				if err != nil {
					return err
				}
				checkRead(t, "line after the overlong one", line, nil, "ok\n")
				break
			}
			if drops == 0 || maxBuf > 2*limit+256<<10 {
				t.Errorf("%d drops, buffer up to %d", drops, maxBuf)
			}
			w.Write([]byte("done\n"))
			line, err := r.ReadLine(ctx)
			checkRead(t, "last", line, err, "")
			return nil
		})
		if err != nil {
			return err
		}
		defer srv.Close()
		peer := streamGoPeer(srv.Addrs()[0].String(), func(c *net.TCPConn) error {
			go func() {
				// Read the replies as they come.
				io.Copy(io.Discard, c)
			}()
			junk := bytes.Repeat([]byte("x"), 64<<10)
			for range 64 {
				if _, err := c.Write(junk); err != nil {
					return err
				}
			}
			if _, err := c.Write([]byte("\nok\n")); err != nil {
				return err
			}
			return c.CloseWrite()
		})
		if _, err := res.Await(ctx); err != nil {
			return err
		}
		if err := awaitChan(ctx, peer); err != nil {
			t.Errorf("peer: %v", err)
		}
		srv.Close()
		return srv.WaitClosed(ctx)
	})
}

// Issue 9, item 7: a peer that never reads. A writer that drains after
// each write keeps the transport's buffer under the high-water mark plus
// one write, however much it sends; Drain waits (here until its derived
// ctx times out) and resumes when the peer reads. Mirrors test_streams.py:
// test_drain_raises's write-and-drain loop, under pressure.
func TestStreamDrainUnderPressure(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		reports := streamReports(ctx)
		start := make(chan struct{})
		const chunk = 16 << 10
		const total = 32 << 20
		peer := make(chan int64, 1)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer ln.Close()
		go func() {
			c, err := ln.Accept()
			if err != nil {
				peer <- -1
				return
			}
			defer c.Close()
			<-start
			n, _ := io.Copy(io.Discard, c)
			peer <- n
		}()
		_, w, err := loop.OpenConnection(ctx, ln.Addr().String(), nil)
		if err != nil {
			return err
		}
		_, high := w.Transport().WriteBufferLimits()
		data := bytes.Repeat([]byte("p"), chunk)
		sent, maxBuf := 0, 0
		blocked := false
		for sent < total && !blocked {
			w.Write(data)
			sent += chunk
			maxBuf = max(maxBuf, w.Transport().WriteBufferSize())
			c, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			err := w.Drain(c)
			cancel()
			switch {
			case errors.Is(err, context.DeadlineExceeded):
				blocked = true
			case err != nil:
				return err
			}
			if loop.CurrentTask(ctx).Cancelling() != 0 {
				t.Fatal("a timed-out Drain cancelled the task")
			}
		}
		if !blocked {
			t.Errorf("sent %d bytes to a peer that does not read without Drain waiting", sent)
		}
		if maxBuf > high+chunk {
			t.Errorf("write buffer reached %d; high-water mark %d", maxBuf, high)
		}
		close(start)
		// The peer reads now: the Drain that timed out can be done again.
		if err := w.Drain(ctx); err != nil {
			return err
		}
		for sent < total {
			w.Write(data)
			sent += chunk
			maxBuf = max(maxBuf, w.Transport().WriteBufferSize())
			if err := w.Drain(ctx); err != nil {
				return err
			}
		}
		if maxBuf > high+chunk {
			t.Errorf("write buffer reached %d; high-water mark %d", maxBuf, high)
		}
		w.Close()
		if err := w.WaitClosed(ctx); err != nil {
			return err
		}
		if got := awaitChan(ctx, peer); got != int64(sent) {
			t.Errorf("peer got %d bytes; sent %d", got, sent)
		}
		checkNoStreamReports(t, reports)
		return nil
	})
}

// Issue 9, item 7: 1,000 connections opened and dropped at once against
// a StartServer echo server (some closed at once, some reset, some in
// the middle of a line); the server serves every one to its end, keeps
// serving, and leaks no descriptor (runNet counts them).
func TestStreamThousandConnections(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		reports := streamReports(ctx)
		e, err := startStreamEcho(ctx, &loop.ServerOptions{Backlog: 1024})
		if err != nil {
			return err
		}
		addr := e.addr()
		const n = 1000
		var wg sync.WaitGroup
		var mu sync.Mutex
		dialed := 0
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := net.DialTimeout("tcp", addr, 10*time.Second)
				if err != nil {
					return
				}
				mu.Lock()
				dialed++
				mu.Unlock()
				tc := c.(*net.TCPConn)
				switch i % 4 {
				case 1:
					tc.SetLinger(0)
				case 2:
					tc.Write([]byte("half a li"))
				case 3:
					tc.Write([]byte("a line\nand half"))
					tc.SetLinger(0)
				}
				tc.Close()
			}()
		}
		allDone := make(chan struct{})
		go func() { wg.Wait(); close(allDone) }()
		awaitChan(ctx, allDone)
		if dialed != n {
			t.Errorf("%d of %d connections dialled", dialed, n)
		}
		deadline := time.Now().Add(20 * time.Second)
		for e.finished < dialed && time.Now().Before(deadline) {
			loop.Sleep(ctx, 5*time.Millisecond)
		}
		if e.finished != dialed {
			t.Errorf("%d of %d connections served to their end", e.finished, dialed)
		}
		// The server keeps serving.
		for i := range 3 {
			streamEchoOnce(ctx, t, addr, fmt.Sprintf("still serving %d", i))
		}
		e.srv.Close()
		if err := e.srv.WaitClosed(ctx); err != nil {
			return err
		}
		checkNoStreamReports(t, reports)
		return nil
	})
}

// Issue 9, item 5: a read over a socket whose derived ctx times out loses
// nothing: the part of the line that came stays, and the next read gets
// the whole line. Mirrors test_streams.py: test_readline over a socket,
// with a wait_for(shield(...)) in front.
func TestStreamReadTimeoutKeepsData(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		srv, res, err := streamServeOne(ctx, nil, func(ctx context.Context, r *loop.StreamReader, w *loop.StreamWriter) error {
			w.Write([]byte("ready\n"))
			c, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			defer cancel()
			for {
				_, err := r.ReadLine(c)
				if errors.Is(err, context.DeadlineExceeded) {
					break
				}
				if err != nil {
					return err
				}
				t.Error("ReadLine returned before the newline came")
			}
			if r.Buffered() != 3 {
				t.Errorf("Buffered() = %d after the timeout; want 3", r.Buffered())
			}
			w.Write([]byte("go\n"))
			line, err := r.ReadLine(ctx)
			checkRead(t, "ReadLine", line, err, "hello\n")
			return nil
		})
		if err != nil {
			return err
		}
		defer srv.Close()
		r, w, err := loop.OpenConnection(ctx, srv.Addrs()[0].String(), nil)
		if err != nil {
			return err
		}
		line, err := r.ReadLine(ctx)
		checkRead(t, "ready", line, err, "ready\n")
		w.Write([]byte("hel"))
		line, err = r.ReadLine(ctx)
		checkRead(t, "go", line, err, "go\n")
		w.Write([]byte("lo\n"))
		if _, err := res.Await(ctx); err != nil {
			return err
		}
		w.Close()
		w.WaitClosed(ctx)
		srv.Close()
		return srv.WaitClosed(ctx)
	})
}

// Mirrors test_streams.py: test_start_server's handler with WriteEOF: a
// half-closed writer still reads (StreamReaderProtocol.eof_received keeps
// the transport open), and the writer's extra info is the transport's.
func TestStreamWriteEOFAndExtraInfo(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		srv, res, err := streamServeOne(ctx, nil, func(ctx context.Context, r *loop.StreamReader, w *loop.StreamWriter) error {
			data, err := r.Read(ctx, -1)
			if err != nil {
				return err
			}
			// The peer wrote EOF; this side can still write.
			w.Write(bytes.ToUpper(data))
			return w.Drain(ctx)
		})
		if err != nil {
			return err
		}
		defer srv.Close()
		r, w, err := loop.OpenConnection(ctx, srv.Addrs()[0].String(), nil)
		if err != nil {
			return err
		}
		if got := w.GetExtraInfo("peername"); got == nil || got.(net.Addr).String() != srv.Addrs()[0].String() {
			t.Errorf("peername = %v", got)
		}
		if w.GetExtraInfo("socket") == nil || w.GetExtraInfo("nonsense") != nil || w.Transport() == nil {
			t.Error("GetExtraInfo / Transport")
		}
		if !w.CanWriteEOF() {
			t.Error("CanWriteEOF false on TCP")
		}
		if !strings.HasPrefix(w.String(), "<StreamWriter transport=") {
			t.Errorf("String() = %q", w.String())
		}
		if err := w.WriteLines([][]byte{[]byte("half "), []byte("closed")}); err != nil {
			return err
		}
		if err := w.WriteEOF(); err != nil {
			return err
		}
		data, err := r.Read(ctx, -1)
		checkRead(t, "reply", data, err, "HALF CLOSED")
		if _, err := res.Await(ctx); err != nil {
			t.Errorf("server: %v", err)
		}
		if _, err := w.Write([]byte("x")); !errors.Is(err, loop.ErrWriteAfterEOF) {
			t.Errorf("Write after WriteEOF = %v", err)
		}
		w.Close()
		w.WaitClosed(ctx)
		srv.Close()
		return srv.WaitClosed(ctx)
	})
}

// Mirrors test_streams.py: test_open_connection with a large exchange: 2 MiB
// messages framed by ReadExactly both ways, intact.
func TestStreamLargeMessages(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		const size = 2 << 20
		srv, err := loop.StartServer(ctx, func(ctx context.Context, r *loop.StreamReader, w *loop.StreamWriter) error {
			defer w.Close()
			for {
				msg, err := r.ReadExactly(ctx, size)
				if err != nil {
					return nil // the client is done
				}
				w.Write(msg)
				if err := w.Drain(ctx); err != nil {
					return err
				}
			}
		}, "127.0.0.1:0", nil)
		if err != nil {
			return err
		}
		defer srv.Close()
		r, w, err := loop.OpenConnection(ctx, srv.Addrs()[0].String(), nil)
		if err != nil {
			return err
		}
		msg := make([]byte, size)
		for round := range 4 {
			for i := range msg {
				msg[i] = byte(i*7 + round)
			}
			w.Write(msg)
			// Write and read at once: the echo comes back while we send.
			reply := loop.Spawn(ctx, func(ctx context.Context) ([]byte, error) { return r.ReadExactly(ctx, size) })
			if err := w.Drain(ctx); err != nil {
				return err
			}
			got, err := reply.Await(ctx)
			if err != nil || !bytes.Equal(got, msg) {
				t.Fatalf("round %d: %d bytes, %v", round, len(got), err)
			}
		}
		w.Close()
		w.WaitClosed(ctx)
		srv.Close()
		return srv.WaitClosed(ctx)
	})
}

// Mirrors test_streams.py: test_streamreader_constructor_without_loop and
// test_open_connection's error path: StartServer and OpenConnection need a
// running loop's task; a nil callback and a refused connection are errors
// that leave nothing open.
func TestStreamBadCalls(t *testing.T) {
	if _, err := loop.StartServer(context.Background(), streamHandleClient, "127.0.0.1:0", nil); err != loop.ErrNoRunningLoop {
		t.Errorf("StartServer outside a task = %v", err)
	}
	if _, _, err := loop.OpenConnection(context.Background(), "127.0.0.1:1", nil); err != loop.ErrNoRunningLoop {
		t.Errorf("OpenConnection outside a task = %v", err)
	}
	runNet(t, func(ctx context.Context) error {
		if _, err := loop.StartServer(ctx, nil, "127.0.0.1:0", nil); err != loop.ErrNilStreamCallback {
			t.Errorf("StartServer(nil) = %v", err)
		}
		if _, err := loop.StartUnixServer(ctx, nil, filepath.Join(t.TempDir(), "s"), nil); err != loop.ErrNilStreamCallback {
			t.Errorf("StartUnixServer(nil) = %v", err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		addr := ln.Addr().String()
		ln.Close()
		if _, _, err := loop.OpenConnection(ctx, addr, nil); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("OpenConnection to a closed port = %v", err)
		}
		if _, _, err := loop.OpenUnixConnection(ctx, filepath.Join(t.TempDir(), "none"), nil); err == nil {
			t.Error("OpenUnixConnection to nothing succeeded")
		}
		return nil
	})
}

// The limit of OpenConnection's reader is opts.Limit, and a server's
// readers take ServerOptions.Limit (asyncio's limit=).
func TestStreamLimitOption(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		srv, res, err := streamServeOne(ctx, &loop.ServerOptions{Limit: 5}, func(ctx context.Context, r *loop.StreamReader, w *loop.StreamWriter) error {
			if r.Limit() != 5 {
				t.Errorf("server reader limit %d", r.Limit())
			}
			_, err := r.ReadLine(ctx)
			if !errors.Is(err, loop.ErrLimitOverrun) {
				t.Errorf("ReadLine = %v", err)
			}
			return nil
		})
		if err != nil {
			return err
		}
		defer srv.Close()
		r, w, err := loop.OpenConnection(ctx, srv.Addrs()[0].String(), &loop.ConnOptions{Limit: 7})
		if err != nil {
			return err
		}
		if r.Limit() != 7 {
			t.Errorf("client reader limit %d", r.Limit())
		}
		w.Write([]byte("too long a line\n"))
		if _, err := res.Await(ctx); err != nil {
			return err
		}
		r.Read(ctx, -1)
		w.Close()
		w.WaitClosed(ctx)
		srv.Close()
		return srv.WaitClosed(ctx)
	})
}

// Mirrors test_streams.py: test_start_tls (3.11): a plain-text exchange,
// then StreamWriter.StartTLS on both sides (the server's side of the
// handshake in the StartServer callback), then lines over TLS through the
// same reader and writer; and a client that does not trust the server's
// certificate, whose StartTLS fails on both sides.
func TestStreamStartTLS(t *testing.T) {
	pki, other := testCerts(t)
	for _, trusted := range []bool{true, false} {
		t.Run(fmt.Sprintf("trusted=%v", trusted), func(t *testing.T) {
			runNet(t, func(ctx context.Context) error {
				reports := streamReports(ctx)
				srv, res, err := streamServeOne(ctx, nil, func(ctx context.Context, r *loop.StreamReader, w *loop.StreamWriter) error {
					line, err := r.ReadLine(ctx)
					checkRead(t, "server: plain line", line, err, "STARTTLS\n")
					w.Write([]byte("OK\n"))
					if err := w.StartTLS(ctx, pki.server, 0); err != nil {
						return err
					}
					if w.GetExtraInfo("sslcontext") == nil {
						t.Error("server: no sslcontext after StartTLS")
					}
					for {
						line, err := r.ReadLine(ctx)
						if err != nil || len(line) == 0 {
							return err
						}
						w.Write(bytes.ToUpper(line))
						if err := w.Drain(ctx); err != nil {
							return err
						}
					}
				})
				if err != nil {
					return err
				}
				defer srv.Close()
				r, w, err := loop.OpenConnection(ctx, srv.Addrs()[0].String(), &loop.ConnOptions{Limit: 100})
				if err != nil {
					return err
				}
				w.Write([]byte("STARTTLS\n"))
				line, err := r.ReadLine(ctx)
				checkRead(t, "client: plain reply", line, err, "OK\n")
				cfg := pki.client()
				if !trusted {
					cfg = other.client()
				}
				err = w.StartTLS(ctx, cfg, 0)
				if !trusted {
					if err == nil {
						t.Fatal("StartTLS with an untrusted certificate succeeded")
					}
					if _, rerr := r.ReadLine(ctx); rerr == nil {
						t.Error("ReadLine after a failed StartTLS succeeded")
					}
					if serr, _ := res.Await(ctx); serr == nil {
						t.Error("the server's StartTLS succeeded with a client that refused it")
					}
					w.Close()
					w.WaitClosed(ctx)
					srv.Close()
					return srv.WaitClosed(ctx)
				}
				if err != nil {
					return err
				}
				if tc, ok := w.GetExtraInfo("ssl_object").(*tls.Conn); !ok || !tc.ConnectionState().HandshakeComplete {
					t.Errorf("ssl_object %v", w.GetExtraInfo("ssl_object"))
				}
				// Over TLS, and the flow control follows: a reply larger
				// than twice the client's limit pauses the new transport,
				// not the old one.
				big := strings.Repeat("s", 1000) + "\n"
				for _, msg := range []string{"secret\n", big} {
					w.Write([]byte(msg))
					if err := w.Drain(ctx); err != nil {
						return err
					}
					if msg == big {
						deadline := time.Now().Add(10 * time.Second)
						for r.Buffered() < len(big) && time.Now().Before(deadline) {
							loop.Sleep(ctx, time.Millisecond)
						}
						if w.Transport().IsReading() {
							t.Errorf("the TLS transport reads on with %d bytes buffered, limit 100", r.Buffered())
						}
					}
					reply, err := r.ReadExactly(ctx, len(msg))
					checkRead(t, "client: TLS reply", reply, err, strings.ToUpper(msg))
					if !w.Transport().IsReading() {
						t.Error("the TLS transport stays paused after the read")
					}
				}
				w.Close()
				if err := w.WaitClosed(ctx); err != nil {
					t.Errorf("WaitClosed = %v", err)
				}
				if serr, _ := res.Await(ctx); serr != nil {
					t.Errorf("server: %v", serr)
				}
				checkNoStreamReports(t, reports)
				srv.Close()
				return srv.WaitClosed(ctx)
			})
		})
	}
}

// benchStreamEcho runs b.N round trips of a size-byte message over one
// connection to a StartServer echo server (Read, Write, Drain: the
// examples/echo handler), the client reading each echo with ReadExactly.
func benchStreamEcho(b *testing.B, size int) {
	err := loop.RunMain(context.Background(), func(ctx context.Context) error {
		srv, err := loop.StartServer(ctx, func(ctx context.Context, r *loop.StreamReader, w *loop.StreamWriter) error {
			defer w.Close()
			for {
				data, err := r.Read(ctx, 256<<10)
				if err != nil || len(data) == 0 {
					return nil
				}
				w.Write(data)
				if err := w.Drain(ctx); err != nil {
					return nil
				}
			}
		}, "127.0.0.1:0", nil)
		if err != nil {
			return err
		}
		defer srv.Close()
		r, w, err := loop.OpenConnection(ctx, srv.Addrs()[0].String(), nil)
		if err != nil {
			return err
		}
		msg := bytes.Repeat([]byte("e"), size)
		b.SetBytes(int64(size))
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			w.Write(msg)
			if err := w.Drain(ctx); err != nil {
				return err
			}
			if _, err := r.ReadExactly(ctx, size); err != nil {
				return err
			}
		}
		b.StopTimer()
		w.Close()
		w.WaitClosed(ctx)
		srv.Close()
		return srv.WaitClosed(ctx)
	})
	if err != nil {
		b.Fatal(err)
	}
}

func BenchmarkStreamEcho64(b *testing.B)   { benchStreamEcho(b, 64) }
func BenchmarkStreamEcho2MiB(b *testing.B) { benchStreamEcho(b, 2<<20) }

// Mirrors test_streams.py: test_open_connection_no_loop_ssl and
// test_start_server over TLS (ssl=): the same handler and client, the
// handshake done before the callback runs; EOF over TLS closes the
// transport (StreamReaderProtocol.eof_received returns False over SSL).
func TestStreamStartServerTLS(t *testing.T) {
	pki, _ := testCerts(t)
	runNet(t, func(ctx context.Context) error {
		reports := streamReports(ctx)
		srv, err := loop.StartServer(ctx, streamHandleClient, "127.0.0.1:0", &loop.ServerOptions{TLS: pki.server})
		if err != nil {
			return err
		}
		r, w, err := loop.OpenConnection(ctx, srv.Addrs()[0].String(), &loop.ConnOptions{TLS: pki.client()})
		if err != nil {
			return err
		}
		if w.GetExtraInfo("sslcontext") == nil || w.CanWriteEOF() {
			t.Error("not a TLS writer")
		}
		msg, err := streamLineClient(ctx, r, w)
		if err != nil || msg != "hello world!\n" {
			t.Errorf("client got %q, %v", msg, err)
		}
		srv.Close()
		if err := srv.WaitClosed(ctx); err != nil {
			return err
		}
		checkNoStreamReports(t, reports)
		return nil
	})
}

// Mirrors test_server.py: test_start_server_1 (start_serving=False, then
// serve_forever, ended by cancelling its task): connections are served
// only once ServeForever runs, and the server is closed when it ends.
func TestStreamServeForever(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		reports := streamReports(ctx)
		srv, err := loop.StartServer(ctx, streamHandleClient, "127.0.0.1:0", &loop.ServerOptions{NoStartServing: true})
		if err != nil {
			return err
		}
		if srv.IsServing() {
			t.Error("IsServing with NoStartServing")
		}
		serving := loop.Go(ctx, srv.ServeForever)
		loop.Sleep(ctx, 0)
		if !srv.IsServing() {
			t.Error("not serving under ServeForever")
		}
		r, w, err := loop.OpenConnection(ctx, srv.Addrs()[0].String(), nil)
		if err != nil {
			return err
		}
		msg, err := streamLineClient(ctx, r, w)
		if err != nil || msg != "hello world!\n" {
			t.Errorf("client got %q, %v", msg, err)
		}
		serving.Cancel()
		if _, err := serving.Await(ctx); !errors.Is(err, loop.ErrCancelled) {
			t.Errorf("ServeForever = %v; want cancelled", err)
		}
		if srv.IsServing() || len(srv.Sockets()) != 0 {
			t.Error("the server is open after ServeForever was cancelled")
		}
		checkNoStreamReports(t, reports)
		return nil
	})
}

// A ReadExactly of a huge frame (a length a peer chose) allocates with what
// arrives, not with what it asked for: a peer that claims 1 GiB and sends
// 100 kB costs about 100 kB. Mirrors test_streams.py: test_readexactly_eof
// with a frame size no asyncio reader would preallocate either.
func TestStreamReadExactlyHugeFrame(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		var before, after runtime.MemStats
		srv, res, err := streamServeOne(ctx, nil, func(ctx context.Context, r *loop.StreamReader, w *loop.StreamWriter) error {
			runtime.ReadMemStats(&before)
			_, err := r.ReadExactly(ctx, 1<<30)
			runtime.ReadMemStats(&after)
			var ie *loop.IncompleteReadError
			if !errors.As(err, &ie) || len(ie.Partial) != 100000 || ie.Expected != 1<<30 {
				t.Errorf("ReadExactly = %v", err)
			}
			return nil
		})
		if err != nil {
			return err
		}
		defer srv.Close()
		peer := streamGoPeer(srv.Addrs()[0].String(), func(c *net.TCPConn) error {
			for range 10 {
				if _, err := c.Write(bytes.Repeat([]byte("h"), 10000)); err != nil {
					return err
				}
				time.Sleep(time.Millisecond)
			}
			return nil
		})
		if _, err := res.Await(ctx); err != nil {
			return err
		}
		awaitChan(ctx, peer)
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 16<<20 {
			t.Errorf("ReadExactly(1 GiB) of a 100 kB stream allocated %d bytes", grew)
		}
		srv.Close()
		return srv.WaitClosed(ctx)
	})
}

package loop

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// CPython's base_events.py, the network half: create_server,
// create_connection, their Unix twins and the Server they return.

// ServerOptions are create_server's keyword arguments; the zero value (or
// a nil *ServerOptions) is asyncio's defaults.
type ServerOptions struct {
	// Backlog is the listen backlog (0: asyncio's 100).
	Backlog int
	// ReusePort sets SO_REUSEPORT, so that several processes may listen
	// on the same address (reuse_port=True).
	ReusePort bool
	// NoReuseAddress leaves SO_REUSEADDR unset (asyncio sets it on POSIX).
	NoReuseAddress bool
	// Sockets, if set, are listening sockets to serve instead of binding
	// the address, which must then be empty (sock=).
	Sockets []*Socket
	// TLS makes every accepted connection a TLS server connection (ssl=).
	TLS *tls.Config
	// TLSHandshakeTimeout bounds the handshake (0: asyncio's 60 s);
	// TLSShutdownTimeout the closing exchange (0: 30 s).
	TLSHandshakeTimeout time.Duration
	TLSShutdownTimeout  time.Duration
	// NoStartServing makes the server wait for StartServing or
	// ServeForever before it accepts (start_serving=False).
	NoStartServing bool
	// Limit is the StreamReader limit of a stream server (StartServer);
	// 0 means 64 KiB.
	Limit int
	// AcceptPerWake bounds the connections accepted each time a listening
	// socket is ready; 0 means Backlog, asyncio's behaviour. Processes
	// that share one listening socket (aio/prefork's workers) accept one
	// at a time, so that the next connection goes to whichever is idle,
	// not a whole burst to the first one woken.
	AcceptPerWake int
	// AcceptPause, if set, stops accepting for that long after each
	// readiness that accepted a connection (no asyncio twin). Processes
	// sharing a listening socket set it so that the next connection of a
	// burst finds another process polling the socket: a loop that has
	// just accepted is back at the socket before a sleeping one wakes,
	// and would take every connection of the burst.
	AcceptPause time.Duration
}

// ConnOptions are create_connection's keyword arguments; the zero value
// (or nil) is asyncio's defaults.
type ConnOptions struct {
	// LocalAddr binds the socket before it connects (local_addr=).
	LocalAddr string
	// Socket, if set, is an already connected socket to use instead of
	// dialling; the address must then be empty (sock=).
	Socket *Socket
	// TLS makes it a TLS client connection (ssl=); ServerName defaults to
	// the host of the address (server_hostname=).
	TLS                 *tls.Config
	TLSHandshakeTimeout time.Duration
	TLSShutdownTimeout  time.Duration
	// Limit is the StreamReader limit of OpenConnection (0: 64 KiB).
	Limit int
}

// Errors of servers.
var (
	// ErrServerClosed is "server is closed".
	ErrServerClosed = errors.New("loop: server is closed")
	// ErrServeForeverTwice is "server is already being awaited on
	// serve_forever()".
	ErrServeForeverTwice = errors.New("loop: server is already being awaited on serve_forever()")
)

// tlsParams is the TLS part of a transport's creation, nil for none.
type tlsParams struct {
	config           *tls.Config
	server           bool
	handshakeTimeout time.Duration
	shutdownTimeout  time.Duration
}

func (p *tlsParams) timeouts() (hs, sh time.Duration) {
	hs, sh = p.handshakeTimeout, p.shutdownTimeout
	if hs <= 0 {
		hs = 60 * time.Second
	}
	if sh <= 0 {
		sh = 30 * time.Second
	}
	return hs, sh
}

// makeTransport makes the transport of a connected socket: a socket
// transport, or TLS over it.
func (l *Loop) makeTransport(sock *Socket, proto BaseProtocol, waiter *Future[struct{}], srv *Server, tp *tlsParams) (Transport, error) {
	if tp != nil {
		return l.newTLSTransport(sock, proto, waiter, srv, tp)
	}
	t, err := l.newSocketTransport(sock, proto, waiter, srv)
	if err != nil {
		return nil, err
	}
	return t, nil
}

// Server is asyncio.Server: listening sockets that accept connections,
// each given a fresh protocol from the factory. Loop goroutine only.
type Server struct {
	l        *Loop
	sockets  []*Socket // nil once closed
	addrs    []net.Addr
	factory  func() BaseProtocol
	backlog  int
	perWake  int // connections accepted per readiness
	pause    time.Duration
	pausing  bool
	tls      *tlsParams
	serving  bool
	active   int
	clients  map[Transport]struct{}
	waiters  []*Future[struct{}] // nil once woken: closed and no clients
	woken    bool
	forever  *Future[struct{}]
	accepts  []func()
	retrying bool
}

func (s *Server) String() string { return fmt.Sprintf("<Server sockets=%v>", s.addrs) }

// Loop returns the server's loop.
func (s *Server) Loop() *Loop { return s.l }

// Sockets returns the listening sockets; none once closed.
func (s *Server) Sockets() []*Socket { return append([]*Socket(nil), s.sockets...) }

// Addrs returns the addresses the server listens on (the sockname of each
// socket, kept after Close).
func (s *Server) Addrs() []net.Addr { return append([]net.Addr(nil), s.addrs...) }

// IsServing reports whether the server accepts connections.
func (s *Server) IsServing() bool { return s.serving }

// StartServing starts accepting, if not yet (start_serving). It returns
// ErrServerClosed on a closed server.
func (s *Server) StartServing() error {
	if s.sockets == nil {
		return ErrServerClosed
	}
	if s.serving {
		return nil
	}
	s.serving = true
	for i, sock := range s.sockets {
		if _, err := s.l.setIO(sock.fd, evRead, s.accepts[i], s); err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) stopAccepting() {
	for _, sock := range s.sockets {
		s.l.setIO(sock.fd, evRead, nil, s)
	}
}

// Close stops accepting at once and closes the listening sockets;
// connections already accepted stay open (close them with CloseClients).
// Idempotent.
func (s *Server) Close() {
	if s.sockets == nil {
		return
	}
	s.stopAccepting()
	for _, sock := range s.sockets {
		sock.Close()
	}
	s.sockets = nil
	s.serving = false
	delete(s.l.transports, loopTransport(s))
	if s.forever != nil && !s.forever.Done() {
		s.forever.SetResult(struct{}{})
	}
	if s.active == 0 {
		s.wakeup()
	}
}

// CloseClients closes every connection of the server (3.13).
func (s *Server) CloseClients() {
	for t := range s.clients {
		t.Close()
	}
}

// AbortClients aborts every connection of the server (3.13).
func (s *Server) AbortClients() {
	for t := range s.clients {
		t.Abort()
	}
}

// WaitClosed is wait_closed: it returns once the server is closed and
// every connection it accepted is gone.
func (s *Server) WaitClosed(ctx context.Context) error {
	if s.woken {
		return nil
	}
	w := NewFuture[struct{}](s.l)
	s.waiters = append(s.waiters, w)
	_, err := w.Await(ctx)
	return err
}

func (s *Server) wakeup() {
	if s.woken {
		return
	}
	s.woken = true
	ws := s.waiters
	s.waiters = nil
	for _, w := range ws {
		if !w.Done() {
			w.SetResult(struct{}{})
		}
	}
}

// ServeForever is serve_forever: it starts serving if need be and waits
// until the server is closed or ctx's task is cancelled; either way it then
// closes the server and waits for it (WaitClosed: until its last
// connection is gone) before it returns: nil after a Close, the
// cancellation otherwise. asyncio raises CancelledError in both cases.
func (s *Server) ServeForever(ctx context.Context) error {
	if s.forever != nil {
		return fmt.Errorf("%w: %v", ErrServeForeverTwice, s)
	}
	if s.sockets == nil {
		return fmt.Errorf("%w: %v", ErrServerClosed, s)
	}
	if err := s.StartServing(); err != nil {
		return err
	}
	s.forever = NewFuture[struct{}](s.l)
	defer func() { s.forever = nil }()
	_, err := s.forever.Await(ctx) // nil: Close ended it
	s.Close()
	if werr := s.WaitClosed(ctx); werr != nil && err == nil {
		err = werr
	}
	return err
}

func (s *Server) attach(t Transport) {
	s.active++
	if s.clients == nil {
		s.clients = make(map[Transport]struct{})
	}
	s.clients[t] = struct{}{}
}

func (s *Server) detach(t Transport) {
	delete(s.clients, t)
	s.active--
	if s.active == 0 && s.sockets == nil {
		s.wakeup()
	}
}

// forceClose closes the listening sockets at Loop.Close.
func (s *Server) forceClose() { s.Close() }

// accept is _accept_connection: up to backlog connections per readiness
// (or AcceptPerWake), each given a transport at once.
func (s *Server) accept(lsock *Socket) {
	accepted := false
	defer func() {
		if accepted && s.pause > 0 && !s.pausing && s.serving && s.sockets != nil {
			s.pausing = true
			s.stopAccepting()
			s.l.CallLater(s.pause, func() {
				s.pausing = false
				if s.serving && s.sockets != nil && !s.retrying {
					s.serving = false
					s.StartServing()
				}
			})
		}
	}()
	for range s.perWake {
		if lsock.closed {
			return // a factory closed the server meanwhile
		}
		fd, _, err := sysAccept(lsock.fd)
		if err != nil {
			switch err {
			case unix.EAGAIN, unix.EINTR, unix.ECONNABORTED:
				return
			case unix.EMFILE, unix.ENFILE, unix.ENOBUFS, unix.ENOMEM:
				// Out of descriptors or memory: stop accepting for a
				// second, as asyncio, rather than spin.
				s.l.CallExceptionHandler(ExceptionContext{
					Message: "socket.accept() out of system resource",
					Err:     os.NewSyscallError("accept", err), Socket: lsock,
				})
				if !s.retrying {
					s.retrying = true
					s.stopAccepting()
					s.l.CallLater(time.Second, func() {
						s.retrying = false
						if s.serving && s.sockets != nil {
							s.serving = false
							s.StartServing()
						}
					})
				}
				return
			default:
				s.l.CallExceptionHandler(ExceptionContext{Message: "socket.accept() failed", Err: os.NewSyscallError("accept", err), Socket: lsock})
				return
			}
		}
		conn := newSocket(fd, lsock.family, lsock.sotype)
		accepted = true
		s.newConnection(conn)
	}
}

func (s *Server) newConnection(conn *Socket) {
	var proto BaseProtocol
	err := func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = newPanicError(r)
			}
		}()
		proto = s.factory()
		_, err = s.l.makeTransport(conn, proto, nil, s, s.tls)
		return err
	}()
	if err != nil {
		s.l.CallExceptionHandler(ExceptionContext{Message: "Error on transport creation for incoming connection", Err: err, Protocol: proto})
		conn.Close()
	}
}

// CreateServer is create_server: it listens on addr ("host:port"; an empty
// host means every interface, IPv4 and IPv6; a host name is resolved and
// every address bound) and serves each connection with a protocol from
// factory. The server accepts at once unless opts.NoStartServing.
func (l *Loop) CreateServer(ctx context.Context, factory func() BaseProtocol, addr string, opts *ServerOptions) (*Server, error) {
	if opts == nil {
		opts = &ServerOptions{}
	}
	var socks []*Socket
	if len(opts.Sockets) > 0 {
		if addr != "" {
			return nil, errors.New("loop: host/port and sock can not be specified at the same time")
		}
		socks = opts.Sockets
	} else {
		var err error
		socks, err = l.bindTCP(ctx, addr, opts)
		if err != nil {
			return nil, err
		}
	}
	return l.newServer(factory, socks, opts)
}

// CreateUnixServer is create_unix_server: it listens on the Unix socket at
// path (a name starting with "@" is in Linux's abstract namespace). A stale
// socket file left at path by a dead server is removed first, as asyncio
// does; any other file there is an error.
func (l *Loop) CreateUnixServer(ctx context.Context, factory func() BaseProtocol, path string, opts *ServerOptions) (*Server, error) {
	if opts == nil {
		opts = &ServerOptions{}
	}
	if len(opts.Sockets) > 0 {
		if path != "" {
			return nil, errors.New("loop: path and sock can not be specified at the same time")
		}
		return l.newServer(factory, opts.Sockets, opts)
	}
	if path == "" {
		return nil, errors.New("loop: path was not specified, and no sock specified")
	}
	if path[0] != '@' && path[0] != 0 {
		if fi, err := os.Stat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
			os.Remove(path)
		}
	}
	s, err := NewSocket("unix")
	if err != nil {
		return nil, err
	}
	if err := s.Bind(path); err != nil {
		s.Close()
		return nil, err
	}
	return l.newServer(factory, []*Socket{s}, opts)
}

func (l *Loop) newServer(factory func() BaseProtocol, socks []*Socket, opts *ServerOptions) (*Server, error) {
	if factory == nil {
		closeAll(socks)
		return nil, errors.New("loop: nil protocol factory")
	}
	backlog := opts.Backlog
	if backlog <= 0 {
		backlog = 100
	}
	perWake := backlog
	if opts.AcceptPerWake > 0 {
		perWake = opts.AcceptPerWake
	}
	srv := &Server{l: l, sockets: socks, factory: factory, backlog: backlog, perWake: perWake, pause: opts.AcceptPause}
	if opts.TLS != nil {
		srv.tls = &tlsParams{config: opts.TLS, server: true, handshakeTimeout: opts.TLSHandshakeTimeout, shutdownTimeout: opts.TLSShutdownTimeout}
	}
	for _, sock := range socks {
		if sock == nil || sock.closed {
			closeAll(socks)
			return nil, ErrSocketClosed
		}
		if err := sock.Listen(backlog); err != nil {
			closeAll(socks)
			return nil, err
		}
		sock.lp = l
		srv.addrs = append(srv.addrs, sock.LocalAddr())
		ls := sock
		srv.accepts = append(srv.accepts, func() { srv.accept(ls) })
	}
	l.addTransport(srv)
	if !opts.NoStartServing {
		if err := srv.StartServing(); err != nil {
			srv.Close()
			return nil, err
		}
	}
	return srv, nil
}

func closeAll(socks []*Socket) {
	for _, s := range socks {
		if s != nil {
			s.Close()
		}
	}
}

// bindTCP makes the listening sockets of a TCP server.
func (l *Loop) bindTCP(ctx context.Context, addr string, opts *ServerOptions) ([]*Socket, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	pn, err := net.LookupPort("tcp", port)
	if err != nil {
		return nil, err
	}
	var ips []netip.Addr
	switch ip, perr := netip.ParseAddr(host); {
	case host == "":
		ips = []netip.Addr{netip.IPv4Unspecified(), netip.IPv6Unspecified()}
	case perr == nil:
		ips = []netip.Addr{ip}
	default:
		if ips, err = lookupHost(ctx, host); err != nil {
			return nil, err
		}
	}
	var socks []*Socket
	for _, ip := range ips {
		network := "tcp4"
		if !ip.Unmap().Is4() {
			network = "tcp6"
		}
		s, err := NewSocket(network)
		if err != nil {
			if host == "" && network == "tcp6" {
				continue // no IPv6 here
			}
			closeAll(socks)
			return nil, err
		}
		if !opts.NoReuseAddress {
			_ = unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
		}
		if opts.ReusePort {
			if err := unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
				s.Close()
				closeAll(socks)
				return nil, os.NewSyscallError("setsockopt SO_REUSEPORT", err)
			}
		}
		if network == "tcp6" {
			// Disable IPv4-mapped addresses on the IPv6 socket, so that
			// it does not take the port from the IPv4 one (asyncio's
			// IPV6_V6ONLY).
			_ = unix.SetsockoptInt(s.fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1)
		}
		sa, _ := ipSockaddr(s.family, ip, pn)
		if err := unix.Bind(s.fd, sa); err != nil {
			s.Close()
			if host == "" && network == "tcp6" && (err == unix.EADDRNOTAVAIL || err == unix.EAFNOSUPPORT) {
				continue
			}
			closeAll(socks)
			return nil, &net.OpError{Op: "listen", Net: network, Addr: sockaddrToAddr(sa, unix.SOCK_STREAM), Err: os.NewSyscallError("bind", err)}
		}
		if pn == 0 && len(socks) == 0 && host == "" {
			// Port 0 on every interface: take the port the first
			// socket got for the others too.
			if la, ok := s.LocalAddr().(*net.TCPAddr); ok {
				pn = la.Port
			}
		}
		socks = append(socks, s)
	}
	if len(socks) == 0 {
		return nil, fmt.Errorf("loop: no address to listen on for %q", addr)
	}
	return socks, nil
}

// CreateConnection is create_connection: it connects to addr ("host:port",
// a host name resolved off the loop and its addresses tried in turn), and
// returns the transport and the protocol factory made for it once the
// protocol's ConnectionMade has run (and, with TLS, the handshake is done).
func (l *Loop) CreateConnection(ctx context.Context, factory func() BaseProtocol, addr string, opts *ConnOptions) (Transport, BaseProtocol, error) {
	if opts == nil {
		opts = &ConnOptions{}
	}
	if runningTask(ctx) == nil {
		return nil, nil, ErrNotInTask
	}
	sock := opts.Socket
	host := ""
	if sock != nil {
		if addr != "" {
			return nil, nil, errors.New("loop: host/port and sock can not be specified at the same time")
		}
	} else {
		var err error
		host, sock, err = l.dialTCP(ctx, addr, opts.LocalAddr)
		if err != nil {
			return nil, nil, err
		}
	}
	return l.connectSocket(ctx, factory, sock, opts, host)
}

// CreateUnixConnection is create_unix_connection: CreateConnection to the
// Unix socket at path.
func (l *Loop) CreateUnixConnection(ctx context.Context, factory func() BaseProtocol, path string, opts *ConnOptions) (Transport, BaseProtocol, error) {
	if opts == nil {
		opts = &ConnOptions{}
	}
	if runningTask(ctx) == nil {
		return nil, nil, ErrNotInTask
	}
	sock := opts.Socket
	if sock == nil {
		if path == "" {
			return nil, nil, errors.New("loop: no path and sock were specified")
		}
		var err error
		if sock, err = NewSocket("unix"); err != nil {
			return nil, nil, err
		}
		if err := l.sockConnect(ctx, sock, &unix.SockaddrUnix{Name: path}); err != nil {
			sock.Close()
			return nil, nil, err
		}
	} else if path != "" {
		return nil, nil, errors.New("loop: path and sock can not be specified at the same time")
	}
	return l.connectSocket(ctx, factory, sock, opts, "")
}

// ConnectAcceptedSocket is connect_accepted_socket: it wraps a connection
// accepted elsewhere (SockAccept, another process, a net.Conn adopted with
// SocketFromConn) in a transport; with opts.TLS it is the server side.
func (l *Loop) ConnectAcceptedSocket(ctx context.Context, factory func() BaseProtocol, sock *Socket, opts *ServerOptions) (Transport, BaseProtocol, error) {
	if opts == nil {
		opts = &ServerOptions{}
	}
	if runningTask(ctx) == nil {
		return nil, nil, ErrNotInTask
	}
	co := &ConnOptions{Socket: sock, Limit: opts.Limit}
	var tp *tlsParams
	if opts.TLS != nil {
		tp = &tlsParams{config: opts.TLS, server: true, handshakeTimeout: opts.TLSHandshakeTimeout, shutdownTimeout: opts.TLSShutdownTimeout}
	}
	return l.connectWith(ctx, factory, sock, co, tp)
}

func (l *Loop) connectSocket(ctx context.Context, factory func() BaseProtocol, sock *Socket, opts *ConnOptions, host string) (Transport, BaseProtocol, error) {
	var tp *tlsParams
	if opts.TLS != nil {
		cfg := opts.TLS
		if cfg.ServerName == "" && host != "" {
			cfg = cfg.Clone()
			cfg.ServerName = host
		}
		tp = &tlsParams{config: cfg, handshakeTimeout: opts.TLSHandshakeTimeout, shutdownTimeout: opts.TLSShutdownTimeout}
	}
	return l.connectWith(ctx, factory, sock, opts, tp)
}

// protocolFor makes the protocol for a connection on sock, which it
// closes if there is none to make: a nil factory, or one that panics (the
// panic goes on; the socket does not leak).
func protocolFor(sock *Socket, factory func() BaseProtocol) (proto BaseProtocol, err error) {
	if sock == nil || sock.closed {
		return nil, ErrSocketClosed
	}
	if factory == nil {
		sock.Close()
		return nil, errors.New("loop: nil protocol factory")
	}
	defer func() {
		if r := recover(); r != nil {
			sock.Close()
			panic(r)
		}
	}()
	return factory(), nil
}

func (l *Loop) connectWith(ctx context.Context, factory func() BaseProtocol, sock *Socket, opts *ConnOptions, tp *tlsParams) (Transport, BaseProtocol, error) {
	proto, err := protocolFor(sock, factory)
	if err != nil {
		return nil, nil, err
	}
	waiter := NewFuture[struct{}](l)
	t, err := l.makeTransport(sock, proto, waiter, nil, tp)
	if err != nil {
		sock.Close()
		return nil, nil, err
	}
	if _, err := waiter.Await(ctx); err != nil {
		t.Close()
		return nil, nil, err
	}
	return t, proto, nil
}

// dialTCP resolves addr and connects a socket to the first of its
// addresses that answers; it returns the host, for TLS's server name.
func (l *Loop) dialTCP(ctx context.Context, addr, local string) (string, *Socket, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", nil, err
	}
	pn, err := net.LookupPort("tcp", port)
	if err != nil {
		return "", nil, err
	}
	var ips []netip.Addr
	if ip, perr := netip.ParseAddr(host); perr == nil {
		ips = []netip.Addr{ip}
	} else {
		if host == "" {
			host = "localhost"
		}
		if ips, err = lookupHost(ctx, host); err != nil {
			return "", nil, err
		}
	}
	var errs []error
	for _, ip := range ips {
		network := "tcp4"
		if !ip.Unmap().Is4() {
			network = "tcp6"
		}
		s, err := NewSocket(network)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if local != "" {
			if err := s.Bind(local); err != nil {
				s.Close()
				errs = append(errs, err)
				continue
			}
		}
		sa, _ := ipSockaddr(s.family, ip, pn)
		if err := l.sockConnect(ctx, s, sa); err != nil {
			s.Close()
			if ctx.Err() != nil || isCancellation(err) || errors.Is(err, context.DeadlineExceeded) {
				return "", nil, err
			}
			errs = append(errs, err)
			continue
		}
		return host, s, nil
	}
	if len(errs) == 1 {
		return "", nil, errs[0]
	}
	return "", nil, fmt.Errorf("loop: Multiple exceptions: %w", errors.Join(errs...))
}

package loop

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// Socket is a non-blocking socket for the loop: what asyncio's sock_*
// coroutines take (a socket.socket with setblocking(False)), and what a
// transport reads and writes. Make one with [NewSocket], [Listen], or adopt
// one made elsewhere with [SocketFromFd], [SocketFromConn] or
// [SocketFromListener]. A Socket is not safe for concurrent use by several
// goroutines; several tasks of one loop may wait on it at once.
type Socket struct {
	fd     int
	family int
	sotype int
	closed bool

	rq, wq     waitList // tasks waiting for it to be readable, writable
	rreg, wreg bool     // the loop watches it for them
	lp         *Loop    // the loop watching it
	bound      loopBound
	wakeR      func()
	wakeW      func()
}

// ErrSocketClosed is returned by the operations of a closed Socket.
var ErrSocketClosed = errors.New("loop: socket is closed")

func newSocket(fd, family, sotype int) *Socket {
	s := &Socket{fd: fd, family: family, sotype: sotype}
	s.wakeR = func() { s.ready(evRead) }
	s.wakeW = func() { s.ready(evWrite) }
	return s
}

// netFamily maps a Go network name to a socket family and type, as
// Python's socket.socket(family, type) would be called for it. "tcp" and
// "udp" mean IPv4, Python's default; "tcp6" and "udp6" IPv6.
func netFamily(network string) (family, sotype int, err error) {
	switch network {
	case "tcp", "tcp4":
		return unix.AF_INET, unix.SOCK_STREAM, nil
	case "tcp6":
		return unix.AF_INET6, unix.SOCK_STREAM, nil
	case "udp", "udp4":
		return unix.AF_INET, unix.SOCK_DGRAM, nil
	case "udp6":
		return unix.AF_INET6, unix.SOCK_DGRAM, nil
	case "unix":
		return unix.AF_UNIX, unix.SOCK_STREAM, nil
	case "unixgram":
		return unix.AF_UNIX, unix.SOCK_DGRAM, nil
	}
	return 0, 0, fmt.Errorf("loop: unknown network %q", network)
}

// NewSocket makes an unconnected non-blocking socket for network ("tcp",
// "tcp4", "tcp6", "udp", "udp4", "udp6", "unix", "unixgram"), close-on-exec,
// as socket.socket(family, type) followed by setblocking(False).
func NewSocket(network string) (*Socket, error) {
	family, sotype, err := netFamily(network)
	if err != nil {
		return nil, err
	}
	fd, err := sysSocket(family, sotype)
	if err != nil {
		return nil, err
	}
	return newSocket(fd, family, sotype), nil
}

// Listen makes a socket bound to addr and listening, as
// socket.create_server: SO_REUSEADDR is set (not for Unix sockets), the
// backlog is asyncio's 100. For "unix" a stale socket file at the path is
// not removed: remove it first.
func Listen(network, addr string) (*Socket, error) {
	s, err := NewSocket(network)
	if err != nil {
		return nil, err
	}
	if s.family != unix.AF_UNIX {
		_ = unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	}
	if err := s.Bind(addr); err != nil {
		s.Close()
		return nil, err
	}
	if s.sotype == unix.SOCK_STREAM {
		if err := s.Listen(100); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// SocketFromFd adopts fd, a socket made elsewhere (inherited, received
// from another process, or from a C library): it is made non-blocking and
// close-on-exec, and from now on the Socket owns it.
func SocketFromFd(fd int) (*Socket, error) {
	if fd < 0 {
		return nil, fmt.Errorf("%w: %d", ErrBadFd, fd)
	}
	sotype, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return nil, os.NewSyscallError("getsockopt", err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return nil, os.NewSyscallError("getsockname", err)
	}
	family := unix.AF_UNIX
	switch sa.(type) {
	case *unix.SockaddrInet4:
		family = unix.AF_INET
	case *unix.SockaddrInet6:
		family = unix.AF_INET6
	case *unix.SockaddrUnix:
	default:
		return nil, fmt.Errorf("loop: fd %d: unsupported socket family", fd)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		return nil, os.NewSyscallError("fcntl", err)
	}
	unix.CloseOnExec(fd)
	return newSocket(fd, family, sotype), nil
}

// SocketFromConn adopts the socket under c (a *net.TCPConn, *net.UnixConn,
// *net.UDPConn, or anything that is a syscall.Conn over a socket): its
// descriptor is duplicated and c is closed, so the Socket is the one owner
// of the connection from now on. Bytes c had already read into a buffer of
// its own (a bufio.Reader, say) are not in the socket: read them first.
func SocketFromConn(c net.Conn) (*Socket, error) { return adopt(c) }

// SocketFromListener adopts a listening socket as SocketFromConn adopts a
// connection. A *net.UnixListener's socket file is left in place.
func SocketFromListener(ln net.Listener) (*Socket, error) {
	if ul, ok := ln.(*net.UnixListener); ok {
		ul.SetUnlinkOnClose(false)
	}
	return adopt(ln)
}

func adopt(c interface{ Close() error }) (*Socket, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil, fmt.Errorf("loop: %T has no socket descriptor (it is not a syscall.Conn)", c)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, err
	}
	nfd := -1
	var derr error
	if err := rc.Control(func(fd uintptr) {
		nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return nil, err
	}
	if derr != nil {
		return nil, os.NewSyscallError("fcntl", derr)
	}
	s, err := SocketFromFd(nfd)
	if err != nil {
		unix.Close(nfd)
		return nil, err
	}
	c.Close()
	return s, nil
}

// Fd returns the descriptor, or -1 once closed. It stays the Socket's.
func (s *Socket) Fd() int {
	if s.closed {
		return -1
	}
	return s.fd
}

// Detach gives the descriptor up: the Socket is closed without closing it,
// and the caller owns it (socket.detach()).
func (s *Socket) Detach() (int, error) {
	if s.closed {
		return -1, ErrSocketClosed
	}
	fd := s.fd
	s.release(ErrSocketClosed)
	return fd, nil
}

// Close closes the socket. Tasks waiting on it return ErrSocketClosed.
// Closing twice does nothing.
func (s *Socket) Close() error {
	if s.closed {
		return nil
	}
	fd := s.fd
	s.release(ErrSocketClosed)
	return os.NewSyscallError("close", unix.Close(fd))
}

func (s *Socket) release(err error) {
	s.closed = true
	if s.lp != nil {
		if s.rreg {
			s.lp.setIO(s.fd, evRead, nil, s)
		}
		if s.wreg {
			s.lp.setIO(s.fd, evWrite, nil, s)
		}
		s.rreg, s.wreg = false, false
	}
	s.rq.wakeN(s.rq.len())
	s.wq.wakeN(s.wq.len())
	s.fd = -1
}

// Bind is socket.bind: addr is "host:port" for TCP and UDP, a path for
// Unix sockets (a name starting with "@" is in the abstract namespace).
func (s *Socket) Bind(addr string) error {
	if s.closed {
		return ErrSocketClosed
	}
	sa, err := parseSockaddr(s.family, addr)
	if err != nil {
		return err
	}
	if err := unix.Bind(s.fd, sa); err != nil {
		return &net.OpError{Op: "bind", Net: s.network(), Addr: sockaddrToAddr(sa, s.sotype), Err: os.NewSyscallError("bind", err)}
	}
	return nil
}

// Listen is socket.listen.
func (s *Socket) Listen(backlog int) error {
	if s.closed {
		return ErrSocketClosed
	}
	if err := unix.Listen(s.fd, backlog); err != nil {
		return os.NewSyscallError("listen", err)
	}
	return nil
}

// Shutdown is socket.shutdown: how is syscall.SHUT_RD, SHUT_WR or
// SHUT_RDWR.
func (s *Socket) Shutdown(how int) error {
	if s.closed {
		return ErrSocketClosed
	}
	return os.NewSyscallError("shutdown", unix.Shutdown(s.fd, how))
}

// LocalAddr is getsockname, nil if unknown.
func (s *Socket) LocalAddr() net.Addr {
	if s.closed {
		return nil
	}
	sa, err := unix.Getsockname(s.fd)
	if err != nil {
		return nil
	}
	return sockaddrToAddr(sa, s.sotype)
}

// RemoteAddr is getpeername, nil if not connected.
func (s *Socket) RemoteAddr() net.Addr {
	if s.closed {
		return nil
	}
	sa, err := unix.Getpeername(s.fd)
	if err != nil {
		return nil
	}
	return sockaddrToAddr(sa, s.sotype)
}

// SetsockoptInt is socket.setsockopt with an integer value (for example
// unix.SOL_SOCKET, unix.SO_RCVBUF).
func (s *Socket) SetsockoptInt(level, opt, value int) error {
	if s.closed {
		return ErrSocketClosed
	}
	return os.NewSyscallError("setsockopt", unix.SetsockoptInt(s.fd, level, opt, value))
}

func (s *Socket) network() string {
	switch {
	case s.family == unix.AF_UNIX && s.sotype == unix.SOCK_DGRAM:
		return "unixgram"
	case s.family == unix.AF_UNIX:
		return "unix"
	case s.sotype == unix.SOCK_DGRAM:
		return "udp"
	}
	return "tcp"
}

func (s *Socket) String() string {
	return fmt.Sprintf("<Socket fd=%d %s laddr=%v raddr=%v>", s.Fd(), s.network(), s.LocalAddr(), s.RemoteAddr())
}

// ready runs on the loop when the socket is readable or writable for the
// tasks waiting: they all wake and try again, and the loop stops watching
// until one of them has to wait again.
func (s *Socket) ready(ev uint8) {
	q := &s.rq
	if ev == evWrite {
		q = &s.wq
		s.wreg = false
	} else {
		s.rreg = false
	}
	s.lp.setIO(s.fd, ev, nil, s)
	q.wakeN(q.len())
}

// wait suspends the running task until s is ready for ev.
func (s *Socket) wait(ctx context.Context, l *Loop, ev uint8) error {
	if s.closed {
		return ErrSocketClosed
	}
	if s.lp != nil && s.lp != l {
		return fmt.Errorf("%w: socket is used by another loop", ErrDifferentLoop)
	}
	q, reg, fn := &s.rq, &s.rreg, s.wakeR
	if ev == evWrite {
		q, reg, fn = &s.wq, &s.wreg, s.wakeW
	}
	if !*reg {
		if _, err := l.setIO(s.fd, ev, fn, s); err != nil {
			return err
		}
		s.lp = l
		*reg = true
	}
	_, err := q.block(ctx, &s.bound, "Socket", nil)
	if q.len() == 0 && *reg && !s.closed {
		// The last waiter gave up: stop watching.
		l.setIO(s.fd, ev, nil, s)
		*reg = false
	}
	if err == nil && s.closed {
		return ErrSocketClosed
	}
	return err
}

// sockLoop returns the loop of the task running with ctx, which must be l.
func (l *Loop) sockLoop(ctx context.Context, s *Socket) error {
	t := runningTask(ctx)
	if t == nil {
		return ErrNotInTask
	}
	if t.loop != l {
		return ErrDifferentLoop
	}
	if s == nil {
		return errors.New("loop: nil *Socket")
	}
	if s.closed {
		return ErrSocketClosed
	}
	return nil
}

// SockRecv is sock_recv: it waits until s has data and returns up to n
// bytes; an empty result with a nil error is the peer's EOF. A cancelled or
// timed-out call has read nothing.
func (l *Loop) SockRecv(ctx context.Context, s *Socket, n int) ([]byte, error) {
	if n < 0 {
		return nil, fmt.Errorf("loop: negative read size %d", n)
	}
	buf := make([]byte, n)
	got, err := l.SockRecvInto(ctx, s, buf)
	if err != nil {
		return nil, err
	}
	return buf[:got], nil
}

// SockRecvInto is sock_recv_into: it waits until s has data and reads it
// into buf, returning how many bytes; 0 with a nil error is EOF (or an
// empty buf).
func (l *Loop) SockRecvInto(ctx context.Context, s *Socket, buf []byte) (int, error) {
	if err := l.sockLoop(ctx, s); err != nil {
		return 0, err
	}
	for {
		n, err := unix.Read(s.fd, buf)
		switch {
		case err == nil:
			return n, nil
		case err == unix.EINTR:
			continue
		case err != unix.EAGAIN:
			return 0, os.NewSyscallError("recv", err)
		}
		if err := s.wait(ctx, l, evRead); err != nil {
			return 0, err
		}
	}
}

// SockRecvFrom is sock_recvfrom: one datagram into buf, and its sender.
func (l *Loop) SockRecvFrom(ctx context.Context, s *Socket, buf []byte) (int, net.Addr, error) {
	if err := l.sockLoop(ctx, s); err != nil {
		return 0, nil, err
	}
	for {
		n, sa, err := unix.Recvfrom(s.fd, buf, 0)
		switch {
		case err == nil:
			return n, sockaddrToAddr(sa, s.sotype), nil
		case err == unix.EINTR:
			continue
		case err != unix.EAGAIN:
			return 0, nil, os.NewSyscallError("recvfrom", err)
		}
		if err := s.wait(ctx, l, evRead); err != nil {
			return 0, nil, err
		}
	}
}

// SockSendall is sock_sendall: it waits until all of p is sent. If ctx ends
// midway, the error says so and part of p may have been sent, as in
// asyncio (the count is in the *PartialWriteError).
func (l *Loop) SockSendall(ctx context.Context, s *Socket, p []byte) error {
	if err := l.sockLoop(ctx, s); err != nil {
		return err
	}
	sent := 0
	for sent < len(p) {
		n, err := unix.Write(s.fd, p[sent:])
		switch {
		case err == nil:
			sent += n
			continue
		case err == unix.EINTR:
			continue
		case err != unix.EAGAIN:
			return os.NewSyscallError("send", err)
		}
		if err := s.wait(ctx, l, evWrite); err != nil {
			if sent > 0 {
				return &PartialWriteError{Written: sent, Err: err}
			}
			return err
		}
	}
	return nil
}

// PartialWriteError is a SockSendall that ended after sending part of its
// data: Written bytes went out. It unwraps to the reason.
type PartialWriteError struct {
	Written int
	Err     error
}

func (e *PartialWriteError) Error() string {
	return fmt.Sprintf("loop: %d bytes were sent before: %v", e.Written, e.Err)
}

// Unwrap returns the reason the write stopped.
func (e *PartialWriteError) Unwrap() error { return e.Err }

// SockSendTo is sock_sendto: one datagram to addr.
func (l *Loop) SockSendTo(ctx context.Context, s *Socket, p []byte, addr net.Addr) error {
	if err := l.sockLoop(ctx, s); err != nil {
		return err
	}
	sa, err := addrToSockaddr(s.family, addr)
	if err != nil {
		return err
	}
	for {
		err := unix.Sendto(s.fd, p, 0, sa)
		switch {
		case err == nil:
			return nil
		case err == unix.EINTR:
			continue
		case err != unix.EAGAIN:
			return os.NewSyscallError("sendto", err)
		}
		if err := s.wait(ctx, l, evWrite); err != nil {
			return err
		}
	}
}

// SockConnect is sock_connect: it connects s to addr ("host:port", or a
// path for a Unix socket), resolving a host name off the loop first. A
// cancelled connect leaves s unusable: close it.
func (l *Loop) SockConnect(ctx context.Context, s *Socket, addr string) error {
	if err := l.sockLoop(ctx, s); err != nil {
		return err
	}
	sa, err := resolveSockaddr(ctx, s.family, addr)
	if err != nil {
		return err
	}
	return l.sockConnect(ctx, s, sa)
}

func (l *Loop) sockConnect(ctx context.Context, s *Socket, sa unix.Sockaddr) error {
	opErr := func(err error) error {
		return &net.OpError{Op: "dial", Net: s.network(), Addr: sockaddrToAddr(sa, s.sotype), Err: err}
	}
	for {
		err := unix.Connect(s.fd, sa)
		if err == unix.EINTR {
			continue
		}
		if err == nil || err == unix.EISCONN {
			return nil
		}
		if err != unix.EINPROGRESS && err != unix.EALREADY && err != unix.EAGAIN {
			return opErr(os.NewSyscallError("connect", err))
		}
		break
	}
	for {
		if err := s.wait(ctx, l, evWrite); err != nil {
			return err
		}
		soerr, err := unix.GetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_ERROR)
		if err != nil {
			return opErr(os.NewSyscallError("getsockopt", err))
		}
		switch e := syscall.Errno(soerr); e {
		case 0, unix.EISCONN:
			return nil
		case unix.EINPROGRESS, unix.EALREADY, unix.EINTR:
			continue
		default:
			return opErr(os.NewSyscallError("connect", e))
		}
	}
}

// SockAccept is sock_accept: it waits for a connection on the listening
// socket s and returns it, non-blocking and close-on-exec, with the
// peer's address.
func (l *Loop) SockAccept(ctx context.Context, s *Socket) (*Socket, net.Addr, error) {
	if err := l.sockLoop(ctx, s); err != nil {
		return nil, nil, err
	}
	for {
		fd, sa, err := sysAccept(s.fd)
		switch {
		case err == nil:
			return newSocket(fd, s.family, s.sotype), sockaddrToAddr(sa, s.sotype), nil
		case err == unix.EINTR || err == unix.ECONNABORTED:
			continue
		case err != unix.EAGAIN:
			return nil, nil, os.NewSyscallError("accept", err)
		}
		if err := s.wait(ctx, l, evRead); err != nil {
			return nil, nil, err
		}
	}
}

// parseSockaddr parses a numeric address for family: "host:port" with an
// IP literal or an empty host (any address), or a Unix path.
func parseSockaddr(family int, addr string) (unix.Sockaddr, error) {
	if family == unix.AF_UNIX {
		return &unix.SockaddrUnix{Name: addr}, nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	p, err := net.LookupPort("tcp", port)
	if err != nil {
		return nil, err
	}
	var ip netip.Addr
	if host == "" {
		ip = netip.IPv4Unspecified()
		if family == unix.AF_INET6 {
			ip = netip.IPv6Unspecified()
		}
	} else if ip, err = netip.ParseAddr(host); err != nil {
		return nil, &net.AddrError{Err: "not an IP address (resolve it first)", Addr: host}
	}
	return ipSockaddr(family, ip, p)
}

func ipSockaddr(family int, ip netip.Addr, port int) (unix.Sockaddr, error) {
	ip = ip.Unmap()
	switch {
	case family == unix.AF_INET && ip.Is4():
		return &unix.SockaddrInet4{Port: port, Addr: ip.As4()}, nil
	case family == unix.AF_INET6:
		sa := &unix.SockaddrInet6{Port: port, Addr: ip.As16()}
		if z := ip.Zone(); z != "" {
			if ifi, err := net.InterfaceByName(z); err == nil {
				sa.ZoneId = uint32(ifi.Index)
			}
		}
		return sa, nil
	}
	return nil, &net.AddrError{Err: "address family mismatch", Addr: ip.String()}
}

// resolveSockaddr is parseSockaddr with host names resolved, off the loop
// (asyncio's getaddrinfo in the default executor), honouring ctx.
func resolveSockaddr(ctx context.Context, family int, addr string) (unix.Sockaddr, error) {
	sa, err := parseSockaddr(family, addr)
	if err == nil || family == unix.AF_UNIX {
		return sa, err
	}
	var ae *net.AddrError
	if !errors.As(err, &ae) {
		return nil, err
	}
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	ips, err := lookupHost(ctx, host)
	if err != nil {
		return nil, err
	}
	for _, ip := range ips {
		if sa, err := ipSockaddr(family, ip, p); err == nil {
			return sa, nil
		}
	}
	return nil, &net.AddrError{Err: "no address of the socket's family", Addr: host}
}

// lookupHost resolves host on a thread of the default executor.
func lookupHost(ctx context.Context, host string) ([]netip.Addr, error) {
	return ToThread(ctx, func() ([]netip.Addr, error) {
		return net.DefaultResolver.LookupNetIP(context.Background(), "ip", host)
	})
}

func sockaddrToAddr(sa unix.Sockaddr, sotype int) net.Addr {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		ap := netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
		if sotype == unix.SOCK_DGRAM {
			return net.UDPAddrFromAddrPort(ap)
		}
		return net.TCPAddrFromAddrPort(ap)
	case *unix.SockaddrInet6:
		ip := netip.AddrFrom16(a.Addr)
		if a.ZoneId != 0 {
			if ifi, err := net.InterfaceByIndex(int(a.ZoneId)); err == nil {
				ip = ip.WithZone(ifi.Name)
			}
		}
		ap := netip.AddrPortFrom(ip, uint16(a.Port))
		if sotype == unix.SOCK_DGRAM {
			return net.UDPAddrFromAddrPort(ap)
		}
		return net.TCPAddrFromAddrPort(ap)
	case *unix.SockaddrUnix:
		n := "unix"
		if sotype == unix.SOCK_DGRAM {
			n = "unixgram"
		}
		return &net.UnixAddr{Name: a.Name, Net: n}
	}
	return nil
}

func addrToSockaddr(family int, addr net.Addr) (unix.Sockaddr, error) {
	switch a := addr.(type) {
	case nil:
		return nil, nil
	case *net.UDPAddr:
		return ipSockaddr(family, a.AddrPort().Addr(), a.Port)
	case *net.TCPAddr:
		return ipSockaddr(family, a.AddrPort().Addr(), a.Port)
	case *net.UnixAddr:
		return &unix.SockaddrUnix{Name: a.Name}, nil
	}
	return parseSockaddr(family, addr.String())
}

package loop

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// CPython's selector_events.py _SelectorDatagramTransport and
// base_events.py create_datagram_endpoint: UDP and Unix datagram sockets
// read and written by the loop.

// DatagramOptions are create_datagram_endpoint's keyword arguments; the
// zero value (or a nil *DatagramOptions) is asyncio's defaults. There is no
// reuse_address: asyncio removed it for UDP in 3.11 (SO_REUSEADDR lets
// another process take the port's datagrams); use ReusePort.
type DatagramOptions struct {
	// Network is "udp" (the default), "udp4", "udp6" or "unixgram". For
	// "udp" the family follows the addresses (IPv4 first where a host name
	// has both); with neither address it is IPv4, Python's default.
	Network string
	// LocalAddr binds the socket (local_addr=): "host:port" for UDP (an
	// empty host is every interface; port 0 picks a free port), a path for
	// "unixgram" (a name starting with "@" is in Linux's abstract
	// namespace). A stale socket file at the path is removed first, as
	// asyncio does.
	LocalAddr string
	// RemoteAddr connects the socket (remote_addr=): SendTo with a nil
	// address sends to it, SendTo with another address is an error, and
	// the kernel drops datagrams from any other sender. An empty host is
	// localhost.
	RemoteAddr string
	// ReusePort sets SO_REUSEPORT, so that several sockets may bind the
	// same address (reuse_port=True).
	ReusePort bool
	// AllowBroadcast sets SO_BROADCAST (allow_broadcast=True). With a
	// RemoteAddr the socket is then not connected, as asyncio: SendTo
	// still defaults to RemoteAddr, and datagrams from anyone are read.
	AllowBroadcast bool
	// Socket, if set, is a datagram socket to use as it is (sock=); every
	// other field must then be zero. It is closed with the transport, or
	// if the endpoint fails after the Socket was accepted (a factory that
	// returns nil or panics, a ctx that ends).
	Socket *Socket
}

// ErrInvalidAddress is "Invalid address: must be None or <remote
// address>": SendTo on an endpoint made with a RemoteAddr was given
// another address. The error wraps it with both addresses.
var ErrInvalidAddress = errors.New("loop: Invalid address: must be nil or the remote address")

// errNoDestination is a SendTo with no address on an endpoint that has no
// remote address (asyncio fails inside socket.sendto).
var errNoDestination = errors.New("loop: SendTo: no address, and the endpoint has no remote address")

// udpHeaderSize is what asyncio (3.12+) adds per queued datagram to the
// write buffer size, so that even empty datagrams count toward the
// high-water mark.
const udpHeaderSize = 8

// dgram is one datagram waiting for the socket: a copy of the caller's
// bytes and its destination (nil on a connected socket).
type dgram struct {
	data []byte
	sa   unix.Sockaddr
}

// datagramTransport is asyncio's _SelectorDatagramTransport.
type datagramTransport struct {
	l     *Loop
	sock  *Socket
	fd    int
	proto DatagramProtocol
	flowControl

	address net.Addr      // the RemoteAddr asked for: SendTo's only destination
	addrSA  unix.Sockaddr // address as a sockaddr
	peer    bool          // connected: send without an address, read the peer's
	family  int

	queue     []dgram // queue[qhead:] waits for the socket, in order
	qhead     int
	qsize     int // bytes queued, udpHeaderSize per datagram included
	writerOn  bool
	closing   bool
	connLost  int
	connected bool // ConnectionMade ran
	addrs
	onRead  func()
	onWrite func()
}

// CreateDatagramEndpoint is create_datagram_endpoint: it makes a datagram
// socket as opts says (bound to LocalAddr, connected to RemoteAddr, or
// opts.Socket as it is) and a transport over it for a protocol from
// factory. As asyncio, the protocol's ConnectionMade runs in the next
// iteration, reading starts after it, and only then does this return.
// Host names are resolved off the loop, honouring ctx. It must be called
// from a task of l. If ctx ends while it waits, the transport is closed
// and the error returned.
//
// The transport reads one datagram per readiness into the loop's shared
// buffer (up to 256 KiB, asyncio's max_size): DatagramReceived's data is
// valid only during the call, and addr is the sender (the peer's address
// on a connected socket; nil for a Unix sender with no name). SendTo
// sends at once, and queues a copy (in order) if the kernel would block;
// an error of the socket itself (ECONNREFUSED after an ICMP port
// unreachable on a connected socket, EMSGSIZE, ENOBUFS) goes to the
// protocol's ErrorReceived, and the transport stays open. A zero-length
// datagram is a datagram. The transport also has the flow-control methods
// of a stream transport, SetWriteBufferLimits(high, low int) error and
// WriteBufferLimits() (low, high int) (reach them with a type assertion);
// a protocol that implements [WriteFlowControl] is paused above the
// high-water mark and resumed at the low one, counting 8 bytes of header
// per queued datagram as asyncio does.
func (l *Loop) CreateDatagramEndpoint(ctx context.Context, factory func() DatagramProtocol, opts *DatagramOptions) (DatagramTransport, DatagramProtocol, error) {
	if opts == nil {
		opts = &DatagramOptions{}
	}
	task := runningTask(ctx)
	if task == nil {
		return nil, nil, ErrNotInTask
	}
	if task.loop != l {
		return nil, nil, ErrDifferentLoop
	}
	if factory == nil {
		return nil, nil, errors.New("loop: nil protocol factory")
	}
	var sock *Socket
	var remote unix.Sockaddr
	if opts.Socket != nil {
		var err error
		if sock, err = checkDatagramSocket(opts); err != nil {
			return nil, nil, err
		}
	} else {
		var err error
		if sock, remote, err = l.datagramSocket(ctx, opts); err != nil {
			return nil, nil, err
		}
	}
	proto, err := callDatagramFactory(factory, sock)
	if err != nil {
		return nil, nil, err
	}
	waiter := NewFuture[struct{}](l)
	t := l.newDatagramTransport(sock, proto, remote, waiter)
	if _, err := waiter.Await(ctx); err != nil {
		t.Close()
		return nil, nil, err
	}
	return t, proto, nil
}

// callDatagramFactory calls factory; the socket is closed if it panics
// (the panic goes on) or returns nil.
func callDatagramFactory(factory func() DatagramProtocol, sock *Socket) (proto DatagramProtocol, err error) {
	ok := false
	defer func() {
		if !ok {
			sock.Close()
		}
	}()
	proto = factory()
	if proto == nil {
		return nil, errors.New("loop: protocol factory returned nil")
	}
	ok = true
	return proto, nil
}

// checkDatagramSocket is the sock= branch: a datagram socket, and no
// other option with it.
func checkDatagramSocket(opts *DatagramOptions) (*Socket, error) {
	s := opts.Socket
	if s.closed {
		return nil, ErrSocketClosed
	}
	if s.sotype != unix.SOCK_DGRAM {
		return nil, fmt.Errorf("loop: A datagram socket was expected, got %v", s)
	}
	var problems []string
	if opts.Network != "" {
		problems = append(problems, fmt.Sprintf("Network=%q", opts.Network))
	}
	if opts.LocalAddr != "" {
		problems = append(problems, fmt.Sprintf("LocalAddr=%q", opts.LocalAddr))
	}
	if opts.RemoteAddr != "" {
		problems = append(problems, fmt.Sprintf("RemoteAddr=%q", opts.RemoteAddr))
	}
	if opts.ReusePort {
		problems = append(problems, "ReusePort=true")
	}
	if opts.AllowBroadcast {
		problems = append(problems, "AllowBroadcast=true")
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("loop: socket modifier keyword arguments can not be used when sock is specified. (%s)", strings.Join(problems, ", "))
	}
	return s, nil
}

// datagramCandidate is one (family, local, remote) to try, as asyncio's
// addr_pairs_info.
type datagramCandidate struct {
	family        int
	local, remote unix.Sockaddr
}

// datagramSocket makes the socket of an endpoint: the candidates of the
// addresses' families are tried in turn, and the first error is returned
// if none works.
func (l *Loop) datagramSocket(ctx context.Context, opts *DatagramOptions) (*Socket, unix.Sockaddr, error) {
	network := opts.Network
	if network == "" {
		network = "udp"
	}
	family, sotype, err := netFamily(network)
	if err != nil {
		return nil, nil, err
	}
	if sotype != unix.SOCK_DGRAM {
		return nil, nil, fmt.Errorf("loop: network %q is not a datagram network (udp, udp4, udp6 or unixgram)", network)
	}
	var cands []datagramCandidate
	switch {
	case family == unix.AF_UNIX:
		c := datagramCandidate{family: family}
		if opts.LocalAddr != "" {
			removeStaleSocket(opts.LocalAddr)
			c.local = &unix.SockaddrUnix{Name: opts.LocalAddr}
		}
		if opts.RemoteAddr != "" {
			c.remote = &unix.SockaddrUnix{Name: opts.RemoteAddr}
		}
		cands = []datagramCandidate{c}
	case opts.LocalAddr == "" && opts.RemoteAddr == "":
		cands = []datagramCandidate{{family: family}}
	default:
		if cands, err = resolveDatagram(ctx, network, opts.LocalAddr, opts.RemoteAddr); err != nil {
			return nil, nil, err
		}
	}
	var errs []error
	for _, c := range cands {
		s, err := l.tryDatagram(ctx, network, c, opts)
		if err == nil {
			return s, c.remote, nil
		}
		if ctx.Err() != nil || isCancellation(err) {
			return nil, nil, err
		}
		errs = append(errs, err)
	}
	return nil, nil, errs[0]
}

// removeStaleSocket removes a socket file left at path, as asyncio does
// before binding a Unix datagram socket.
func removeStaleSocket(path string) {
	if path[0] == '@' || path[0] == 0 {
		return
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		os.Remove(path)
	}
}

// tryDatagram makes, configures, binds and connects one socket.
func (l *Loop) tryDatagram(ctx context.Context, network string, c datagramCandidate, opts *DatagramOptions) (*Socket, error) {
	fd, err := sysSocket(c.family, unix.SOCK_DGRAM)
	if err != nil {
		return nil, err
	}
	s := newSocket(fd, c.family, unix.SOCK_DGRAM)
	fail := func(err error) (*Socket, error) {
		s.Close()
		return nil, err
	}
	if opts.ReusePort {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
			return fail(os.NewSyscallError("setsockopt SO_REUSEPORT", err))
		}
	}
	if opts.AllowBroadcast {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_BROADCAST, 1); err != nil {
			return fail(os.NewSyscallError("setsockopt SO_BROADCAST", err))
		}
	}
	if c.local != nil {
		if err := unix.Bind(fd, c.local); err != nil {
			return fail(&net.OpError{Op: "bind", Net: network, Addr: sockaddrToAddr(c.local, unix.SOCK_DGRAM), Err: os.NewSyscallError("bind", err)})
		}
	}
	if c.remote != nil && !opts.AllowBroadcast {
		if err := l.sockConnect(ctx, s, c.remote); err != nil {
			return fail(err)
		}
	}
	return s, nil
}

// resolveDatagram resolves the addresses of a UDP endpoint and pairs
// them by family, as create_datagram_endpoint's addr_infos: a family is a
// candidate only if every address given has an address of that family.
func resolveDatagram(ctx context.Context, network string, local, remote string) ([]datagramCandidate, error) {
	var families []int
	switch network {
	case "udp4":
		families = []int{unix.AF_INET}
	case "udp6":
		families = []int{unix.AF_INET6}
	default:
		families = []int{unix.AF_INET, unix.AF_INET6}
	}
	byFamily := map[int]*datagramCandidate{}
	var order []int
	for i, addr := range []string{local, remote} {
		if addr == "" {
			continue
		}
		ips, port, err := resolveDatagramAddr(ctx, addr, i == 0, network)
		if err != nil {
			return nil, err
		}
		for _, ip := range ips {
			fam := unix.AF_INET6
			if ip.Unmap().Is4() {
				fam = unix.AF_INET
			}
			if !containsInt(families, fam) {
				continue
			}
			sa, err := ipSockaddr(fam, ip, port)
			if err != nil {
				continue
			}
			c := byFamily[fam]
			if c == nil {
				c = &datagramCandidate{family: fam}
				byFamily[fam] = c
				order = append(order, fam)
			}
			if i == 0 && c.local == nil {
				c.local = sa
			} else if i == 1 && c.remote == nil {
				c.remote = sa
			}
		}
	}
	var cands []datagramCandidate
	for _, fam := range order {
		c := byFamily[fam]
		if (local != "" && c.local == nil) || (remote != "" && c.remote == nil) {
			continue
		}
		cands = append(cands, *c)
	}
	if len(cands) == 0 {
		return nil, fmt.Errorf("loop: can not get address information (LocalAddr %q, RemoteAddr %q)", local, remote)
	}
	return cands, nil
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// resolveDatagramAddr splits "host:port" and resolves the host: an IP
// literal as it is, an empty host as every interface of the network's
// families (a local address) or localhost (a remote one), a name off the
// loop.
func resolveDatagramAddr(ctx context.Context, addr string, local bool, network string) ([]netip.Addr, int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, 0, fmt.Errorf("loop: bad address %q: %w", addr, err)
	}
	pn, err := net.LookupPort("udp", port)
	if err != nil {
		return nil, 0, fmt.Errorf("loop: bad address %q: %w", addr, err)
	}
	if ip, perr := netip.ParseAddr(host); perr == nil {
		return []netip.Addr{ip}, pn, nil
	}
	if host == "" {
		if local {
			switch network {
			case "udp4":
				return []netip.Addr{netip.IPv4Unspecified()}, pn, nil
			case "udp6":
				return []netip.Addr{netip.IPv6Unspecified()}, pn, nil
			}
			return []netip.Addr{netip.IPv4Unspecified(), netip.IPv6Unspecified()}, pn, nil
		}
		host = "localhost"
	}
	ips, err := lookupHost(ctx, host)
	if err != nil {
		return nil, 0, err
	}
	if len(ips) == 0 {
		return nil, 0, fmt.Errorf("loop: getaddrinfo() returned empty list for %q", host)
	}
	return ips, pn, nil
}

// newDatagramTransport is _SelectorDatagramTransport.__init__: the
// protocol hears of the transport in the next iteration, reading starts
// after that, and then the waiter is resolved.
func (l *Loop) newDatagramTransport(sock *Socket, proto DatagramProtocol, remote unix.Sockaddr, waiter *Future[struct{}]) *datagramTransport {
	t := &datagramTransport{l: l, sock: sock, fd: sock.fd, proto: proto, family: sock.family}
	t.flow, _ = proto.(WriteFlowControl)
	t.high, t.low, _ = setLimits(-1, -1)
	t.laddr, t.raddr = sock.LocalAddr(), sock.RemoteAddr()
	t.peer = t.raddr != nil
	if remote != nil {
		t.addrSA = remote
		t.address = sockaddrToAddr(remote, unix.SOCK_DGRAM)
	}
	t.onRead = t.readReady
	t.onWrite = t.sendtoReady
	sock.lp = l
	l.addTransport(t)
	l.CallSoon(t.connectionMade)
	l.CallSoon(t.startReading)
	if waiter != nil {
		l.CallSoon(func() {
			if !waiter.Done() {
				waiter.SetResult(struct{}{})
			}
		})
	}
	return t
}

func (t *datagramTransport) String() string {
	state := "open"
	switch {
	case t.sock == nil:
		state = "closed"
	case t.closing:
		state = "closing"
	}
	return fmt.Sprintf("<datagram transport fd=%d %s laddr=%v raddr=%v>", t.fd, state, t.laddr, t.raddr)
}

func (t *datagramTransport) connectionMade() {
	if t.connLost > 0 {
		return
	}
	t.connected = true
	t.proto.ConnectionMade(t)
}

func (t *datagramTransport) startReading() {
	if t.closing || t.sock == nil {
		return
	}
	t.l.setIO(t.fd, evRead, t.onRead, t)
}

// readReady is _read_ready: one datagram. A panic in the protocol goes to
// the loop's exception handler, as an exception in datagram_received
// does; the transport stays open.
func (t *datagramTransport) readReady() {
	if t.connLost > 0 {
		return
	}
	buf := t.l.readBuffer()
	var (
		n   int
		sa  unix.Sockaddr
		err error
	)
	for {
		if t.peer {
			// Only the peer's datagrams arrive: its address is known.
			n, err = unix.Read(t.fd, buf)
		} else {
			n, sa, err = unix.Recvfrom(t.fd, buf, 0)
		}
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		if err == unix.EAGAIN {
			return
		}
		t.proto.ErrorReceived(os.NewSyscallError("recvfrom", err))
		return
	}
	addr := t.raddr
	if !t.peer {
		addr = datagramSender(sa)
	}
	t.proto.DatagramReceived(buf[:n], addr)
}

// datagramSender is the address of a datagram's sender; nil for a Unix
// socket with no name, which cannot be answered (Linux reports it as
// "@", an empty abstract name).
func datagramSender(sa unix.Sockaddr) net.Addr {
	if u, ok := sa.(*unix.SockaddrUnix); ok && (u.Name == "" || u.Name == "@") {
		return nil
	}
	if sa == nil {
		return nil
	}
	return sockaddrToAddr(sa, unix.SOCK_DGRAM)
}

// SendTo implements DatagramTransport, as sendto: p goes to addr, or to
// the remote address if addr is nil. It returns ErrInvalidAddress (wrapped)
// for an addr other than the RemoteAddr of a connected endpoint, an error
// for an address the socket's family cannot reach or a nil addr with no
// remote address, and ErrTransportClosed once the transport is closed
// (asyncio drops such datagrams and logs after a few); an error of the
// send itself goes to ErrorReceived and SendTo returns nil. p may be
// reused as soon as SendTo returns.
func (t *datagramTransport) SendTo(p []byte, addr net.Addr) error {
	var sa unix.Sockaddr
	if t.address != nil {
		if addr != nil && !t.sameAddress(addr) {
			return fmt.Errorf("%w: must be nil or %v, not %v", ErrInvalidAddress, t.address, addr)
		}
		sa = t.addrSA
	} else if addr != nil && !t.peer {
		var err error
		if sa, err = addrToSockaddr(t.family, addr); err != nil {
			return fmt.Errorf("loop: SendTo %v: %w", addr, err)
		}
	}
	if t.connLost > 0 {
		t.connLost++
		return ErrTransportClosed
	}
	if !t.peer && sa == nil {
		return errNoDestination
	}
	if t.qhead == len(t.queue) {
		// Nothing waits: try the socket at once.
		err := t.send(p, sa)
		if err == nil {
			return nil
		}
		if err != unix.EAGAIN {
			t.proto.ErrorReceived(os.NewSyscallError("sendto", err))
			return nil
		}
		t.setWriter(true)
	}
	t.queue = append(t.queue, dgram{data: append([]byte(nil), p...), sa: sa})
	t.qsize += len(p) + udpHeaderSize
	t.maybePauseProtocol()
	return nil
}

// sameAddress reports whether addr is the remote address.
func (t *datagramTransport) sameAddress(addr net.Addr) bool {
	sa, err := addrToSockaddr(t.family, addr)
	if err != nil {
		return false
	}
	switch a := t.addrSA.(type) {
	case *unix.SockaddrInet4:
		b, ok := sa.(*unix.SockaddrInet4)
		return ok && a.Port == b.Port && a.Addr == b.Addr
	case *unix.SockaddrInet6:
		b, ok := sa.(*unix.SockaddrInet6)
		return ok && a.Port == b.Port && a.Addr == b.Addr && a.ZoneId == b.ZoneId
	case *unix.SockaddrUnix:
		b, ok := sa.(*unix.SockaddrUnix)
		return ok && a.Name == b.Name
	}
	return false
}

// send is one send or sendto; EINTR is retried.
func (t *datagramTransport) send(p []byte, sa unix.Sockaddr) error {
	if t.peer {
		sa = nil
	}
	for {
		err := unix.Sendto(t.fd, p, 0, sa)
		if err != unix.EINTR {
			return err
		}
	}
}

// sendtoReady is _sendto_ready: the queue is sent in order until the
// kernel would block again.
func (t *datagramTransport) sendtoReady() {
	if t.connLost > 0 {
		return
	}
	for t.qhead < len(t.queue) {
		d := t.queue[t.qhead]
		err := t.send(d.data, d.sa)
		if err == unix.EAGAIN {
			break
		}
		t.queue[t.qhead] = dgram{}
		t.qhead++
		t.qsize -= len(d.data) + udpHeaderSize
		if err != nil {
			t.compact()
			t.proto.ErrorReceived(os.NewSyscallError("sendto", err))
			return
		}
	}
	t.compact()
	t.maybeResumeProtocol() // may queue more
	if t.qhead == len(t.queue) && t.connLost == 0 {
		t.setWriter(false)
		if t.closing {
			t.connLost++
			t.callConnectionLost(nil)
		}
	}
}

// compact drops the sent head of the queue.
func (t *datagramTransport) compact() {
	switch {
	case t.qhead == len(t.queue):
		t.queue, t.qhead = t.queue[:0], 0
		if cap(t.queue) > 1024 {
			t.queue = nil // a burst is over: do not keep its slice
		}
	case t.qhead > 64 && t.qhead > len(t.queue)/2:
		n := copy(t.queue, t.queue[t.qhead:])
		clear(t.queue[n:])
		t.queue, t.qhead = t.queue[:n], 0
	}
}

func (t *datagramTransport) setWriter(on bool) {
	if t.writerOn == on || t.sock == nil {
		return
	}
	t.writerOn = on
	fn := t.onWrite
	if !on {
		fn = nil
	}
	t.l.setIO(t.fd, evWrite, fn, t)
}

// Close implements BaseTransport: reading stops at once, the queued
// datagrams are sent, then ConnectionLost(nil) is called and the socket
// closed. Idempotent.
func (t *datagramTransport) Close() {
	if t.closing {
		return
	}
	t.closing = true
	t.l.setIO(t.fd, evRead, nil, t)
	if t.qhead == len(t.queue) {
		t.connLost++
		t.setWriter(false)
		t.l.CallSoon(func() { t.callConnectionLost(nil) })
	}
}

// Abort implements DatagramTransport: the queue is dropped and the
// transport closes at once; ConnectionLost(nil) follows in the next
// iteration.
func (t *datagramTransport) Abort() { t.forceCloseErr(nil) }

// forceCloseErr is _force_close.
func (t *datagramTransport) forceCloseErr(err error) {
	if t.connLost > 0 {
		return
	}
	t.queue, t.qhead, t.qsize = nil, 0, 0
	t.setWriter(false)
	if !t.closing {
		t.closing = true
		t.l.setIO(t.fd, evRead, nil, t)
	}
	t.connLost++
	t.l.CallSoon(func() { t.callConnectionLost(err) })
}

// callConnectionLost is _call_connection_lost: the protocol hears of the
// end, then the socket is closed, exactly once, even if ConnectionLost
// panics.
func (t *datagramTransport) callConnectionLost(err error) {
	if t.sock == nil {
		return
	}
	defer func() {
		t.l.setIO(t.fd, evRead, nil, t)
		t.setWriter(false)
		t.sock.Close()
		t.sock = nil
		t.queue, t.qhead, t.qsize = nil, 0, 0
		delete(t.l.transports, loopTransport(t))
	}()
	if t.connected {
		t.proto.ConnectionLost(err)
	}
}

// forceClose closes the socket at Loop.Close, with no callbacks.
func (t *datagramTransport) forceClose() {
	if t.sock == nil {
		return
	}
	t.l.setIO(t.fd, evRead, nil, t)
	t.setWriter(false)
	t.sock.Close()
	t.sock = nil
	t.closing = true
	t.connLost++
	t.queue, t.qhead, t.qsize = nil, 0, 0
}

// IsClosing implements BaseTransport.
func (t *datagramTransport) IsClosing() bool { return t.closing }

// GetExtraInfo implements BaseTransport: "peername" (nil if not
// connected), "sockname" and "socket" (the *Socket, nil once closed).
func (t *datagramTransport) GetExtraInfo(name string) any {
	switch name {
	case "peername", "sockname":
		return t.addrInfo(name)
	case "socket":
		if t.sock == nil {
			return nil
		}
		return t.sock
	}
	return nil
}

// WriteBufferSize implements DatagramTransport, as get_write_buffer_size:
// the bytes of the queued datagrams plus asyncio's 8 bytes of header for
// each.
func (t *datagramTransport) WriteBufferSize() int { return t.qsize }

// SetWriteBufferLimits is set_write_buffer_limits, as for a stream
// [Transport].
func (t *datagramTransport) SetWriteBufferLimits(high, low int) error {
	if err := t.setLimits(high, low); err != nil {
		return err
	}
	t.maybePauseProtocol()
	return nil
}

func (t *datagramTransport) maybePauseProtocol() { t.pauseIfAbove(t.qsize, t.l, t, t.proto) }

func (t *datagramTransport) maybeResumeProtocol() { t.resumeIfBelow(t.qsize, t.l, t, t.proto) }

package loop

import (
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The Linux poller is an epoll set of the loop's own, level-triggered as
// asyncio's selectors are. The loop never makes a blocking epoll_wait:
// when it has work it asks with a zero timeout, and when it must sleep it
// parks its goroutine in Go's netpoller until the epoll descriptor itself
// is readable (an epoll set is readable when one of its descriptors is
// ready). So a sleeping loop holds no OS thread, and waking it costs what
// the eventfd wake-up cost before there were sockets (selfpipe.go): the
// loop's wake-up eventfd is one of the set's members.
type poller struct {
	epfd   int
	file   *os.File        // epfd, registered in Go's netpoller
	rc     syscall.RawConn // parks on file's readability
	wakeFD int             // the loop's eventfd, a member of the set
	events []unix.EpollEvent
	n      int // events[:n] came from the last wait
	try    func(uintptr) bool
}

const maxEvents = 256

func (p *poller) open(wakeFD int) error {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return os.NewSyscallError("epoll_create1", err)
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		return os.NewSyscallError("fcntl", err)
	}
	if wakeFD >= 0 {
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wakeFD)}
		if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakeFD, &ev); err != nil {
			unix.Close(epfd)
			return os.NewSyscallError("epoll_ctl", err)
		}
	}
	// Non-blocking, so os.NewFile registers it with the netpoller.
	p.file = os.NewFile(uintptr(epfd), "asyncgo-epoll")
	rc, err := p.file.SyscallConn()
	if err != nil {
		p.file.Close()
		return err
	}
	p.epfd, p.rc, p.wakeFD = epfd, rc, wakeFD
	p.events = make([]unix.EpollEvent, maxEvents)
	p.try = func(uintptr) bool { return p.epollNow() } // made once: no allocation per wait
	return nil
}

func (p *poller) close() {
	if p.file != nil {
		p.file.Close()
		p.file = nil
	}
}

func epollMask(ev uint8) uint32 {
	var m uint32
	if ev&evRead != 0 {
		m |= unix.EPOLLIN
	}
	if ev&evWrite != 0 {
		m |= unix.EPOLLOUT
	}
	return m
}

// ctl changes fd's interest from old to ev (evRead|evWrite bits; 0 removes).
// A descriptor closed and reused behind the loop's back is re-added.
func (p *poller) ctl(fd int, old, ev uint8) error {
	e := unix.EpollEvent{Events: epollMask(ev), Fd: int32(fd)}
	var err error
	switch {
	case ev == 0:
		err = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, fd, nil)
		if err == unix.ENOENT || err == unix.EBADF {
			err = nil // closed already: the kernel forgot it
		}
	case old == 0:
		err = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, &e)
		if err == unix.EEXIST {
			err = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_MOD, fd, &e)
		}
	default:
		err = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_MOD, fd, &e)
		if err == unix.ENOENT {
			err = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, &e)
		}
	}
	if err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	return nil
}

// wait collects ready descriptors: at once if timeout is 0, else parking
// until one is ready, the loop is woken, or timeout (ns; < 0: none) passes.
func (p *poller) wait(timeout int64) {
	p.n = 0
	if timeout == 0 {
		p.epollNow()
		return
	}
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(time.Duration(timeout))
	}
	if err := p.file.SetReadDeadline(deadline); err != nil {
		p.epollNow()
		return
	}
	err := p.rc.Read(p.try)
	if err != nil && p.n == 0 {
		p.epollNow() // the deadline passed: one last look
	}
}

// epollNow polls without waiting and reports whether anything was ready.
func (p *poller) epollNow() bool {
	for {
		n, err := unix.EpollWait(p.epfd, p.events, 0)
		if err == unix.EINTR {
			continue
		}
		if n < 0 {
			n = 0
		}
		p.n = n
		return n > 0
	}
}

// ready returns the i-th ready descriptor of the last wait and what it is
// ready for, as asyncio's EpollSelector reads it: an error or hang-up
// makes a descriptor both readable and writable, so whichever callback is
// registered runs and meets the error.
func (p *poller) ready(i int) (fd int, ev uint8) {
	e := &p.events[i]
	if e.Events&^unix.EPOLLIN != 0 {
		ev |= evWrite
	}
	if e.Events&^unix.EPOLLOUT != 0 {
		ev |= evRead
	}
	return int(e.Fd), ev
}

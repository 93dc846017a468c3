//go:build !linux

package loop

import (
	"math"

	"golang.org/x/sys/unix"
)

// Off Linux the poller is poll(2), asyncio's PollSelector: the set is
// passed whole to every call, and a sleeping loop blocks its goroutine's
// thread in the system call (Go gives its processor to others meanwhile).
// It is the portable fallback: correct everywhere x/sys/unix has Poll, and
// slower than the Linux epoll poller with many descriptors. The loop's
// wake-up pipe is always the first entry.
type poller struct {
	fds   []unix.PollFd
	index map[int]int // fd -> position in fds
	got   []unix.PollFd
	n     int
}

func (p *poller) open(wakeFD int) error {
	p.index = make(map[int]int)
	if wakeFD >= 0 {
		p.fds = append(p.fds, unix.PollFd{Fd: int32(wakeFD), Events: unix.POLLIN})
	}
	return nil
}

func (p *poller) close() { p.fds, p.index = nil, nil }

func (p *poller) ctl(fd int, old, ev uint8) error {
	var m int16
	if ev&evRead != 0 {
		m |= unix.POLLIN
	}
	if ev&evWrite != 0 {
		m |= unix.POLLOUT
	}
	i, ok := p.index[fd]
	switch {
	case ev == 0 && ok:
		last := len(p.fds) - 1
		p.fds[i] = p.fds[last]
		p.index[int(p.fds[i].Fd)] = i
		p.fds = p.fds[:last]
		delete(p.index, fd)
	case ev == 0:
	case ok:
		p.fds[i].Events = m
	default:
		p.index[fd] = len(p.fds)
		p.fds = append(p.fds, unix.PollFd{Fd: int32(fd), Events: m})
	}
	return nil
}

func (p *poller) wait(timeout int64) {
	ms := -1
	if timeout >= 0 {
		ms = int(min((timeout+999_999)/1_000_000, math.MaxInt32)) // poll(2) takes a C int
	}
	p.n = 0
	p.got = p.got[:0]
	for {
		n, err := unix.Poll(p.fds, ms)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n <= 0 {
			return
		}
		break
	}
	for _, f := range p.fds {
		if f.Revents != 0 {
			p.got = append(p.got, f)
		}
	}
	p.n = len(p.got)
}

func (p *poller) ready(i int) (fd int, ev uint8) {
	f := p.got[i]
	if f.Revents&^unix.POLLIN != 0 {
		ev |= evWrite
	}
	if f.Revents&^unix.POLLOUT != 0 {
		ev |= evRead
	}
	return int(f.Fd), ev
}

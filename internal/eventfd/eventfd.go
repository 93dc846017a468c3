// Package eventfd is a wake-up a goroutine waits for in Go's netpoller: an
// eventfd on Linux, a non-blocking pipe elsewhere. The loop sleeps on one
// (asyncio's self-pipe) and ProcessPool futures' waiters park on them.
//
// Why the netpoller rather than a channel: a goroutine woken through a
// channel is made runnable by the scheduler's ready(), which also wakes an
// idle P's thread to look for work (wakep): a futex wake, a thread that
// spins and sleeps again. On a 2-vCPU machine that costs about 13µs per
// wake. A goroutine parked in the netpoller is picked up, with no extra
// wake, by the next thread that looks for work; the hand-off then costs a
// write and a read, about 1µs.
package eventfd

import (
	"errors"
	"os"
	"syscall"
	"time"
)

// FD is a wake-up: Wake makes the next Wait return (or the current one).
// Wakes do not queue beyond one: several Wakes before a Wait make it return
// once. Wake is safe from any goroutine; Wait is for one goroutine at a
// time.
type FD struct {
	r, w *os.File // the same file for an eventfd
	wake func()
}

// New returns a wake-up. Close it when done.
func New() (*FD, error) { return open() }

// Wake makes Wait return. Safe from any goroutine, and after Close (it then
// does nothing).
func (f *FD) Wake() {
	if f.wake != nil {
		f.wake()
		return
	}
	_, _ = f.w.Write(wakeBytes)
}

// Wait parks the goroutine in the netpoller until Wake is called (at least
// once since the last Wait returned) or deadline passes (the zero time: no
// deadline). It returns os.ErrDeadlineExceeded on timeout, os.ErrClosed
// after Close.
func (f *FD) Wait(deadline time.Time) error {
	if err := f.r.SetReadDeadline(deadline); err != nil {
		return os.ErrClosed // its only failure on a pollable fd
	}
	var buf [64]byte
	_, err := f.r.Read(buf[:])
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return os.ErrDeadlineExceeded
	}
	return err
}

// Close releases the descriptors; a Wait in progress returns os.ErrClosed.
func (f *FD) Close() error {
	err := f.r.Close()
	if f.w != f.r {
		if werr := f.w.Close(); err == nil {
			err = werr
		}
	}
	return err
}

// PollFD returns the descriptor Wait reads, for a poller that waits on it
// with others (the loop's epoll or poll set), and Drain consumes the
// wake-ups it holds, without blocking. The descriptor stays owned by f.
func (f *FD) PollFD() (int, error) {
	sc, err := f.r.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	if err := sc.Control(func(p uintptr) { fd = int(p) }); err != nil {
		return -1, err
	}
	return fd, nil
}

// Drain reads every pending wake-up from fd (PollFD's), without blocking.
func Drain(fd int) {
	var buf [64]byte
	for {
		n, err := syscall.Read(fd, buf[:])
		if err == syscall.EINTR {
			continue
		}
		if n < len(buf) || err != nil {
			return
		}
	}
}

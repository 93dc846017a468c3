package child

import (
	"os"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// A side channel is a second socketpair between a parent and each child it
// starts, for package aio: its shared objects are hosted by the process
// that made them and reached over it (see aio's doc). Start makes one only
// once a package has called SetSideChannel, so programs that never import
// aio pay nothing. It is the child's file descriptor 4.

const (
	envSide      = "ASYNCGO_SIDE_FD"
	envSideToken = "ASYNCGO_SIDE_TOKEN" // "parent child": the processes' tokens
	sideFD       = 4
)

var (
	sideMu    sync.Mutex
	sideAdopt func(parentEnd *os.File, childToken uint64, p *Process)
	sideToken func() uint64
	sideOwn   uint64

	inherited struct {
		f                 *os.File
		parentTok, ownTok uint64
	}
)

// SetSideChannel makes every child Start starts from now on get a side
// channel: own is this process's token, token returns a fresh one for each
// child, and adopt receives the parent's end once the child has started.
// Package aio calls it from init.
func SetSideChannel(own uint64, token func() uint64, adopt func(parentEnd *os.File, childToken uint64, p *Process)) {
	sideMu.Lock()
	defer sideMu.Unlock()
	sideOwn, sideToken, sideAdopt = own, token, adopt
}

// InheritedSideChannel returns this process's end of the side channel its
// parent gave it, with the parent's token and the one the parent chose for
// this process, or a nil file if it was started without one. The
// environment that named it is cleared at package initialisation, so that
// a process this one starts does not believe it inherited it too.
func InheritedSideChannel() (f *os.File, parentToken, ownToken uint64) {
	return inherited.f, inherited.parentTok, inherited.ownTok
}

func init() {
	v := os.Getenv(envSide)
	if v == "" {
		return
	}
	toks := os.Getenv(envSideToken)
	os.Unsetenv(envSide)
	os.Unsetenv(envSideToken)
	if v != strconv.Itoa(sideFD) {
		return
	}
	var pt, ot uint64
	for i, s := range splitSpace(toks) {
		n, err := strconv.ParseUint(s, 16, 64)
		if err != nil {
			return
		}
		if i == 0 {
			pt = n
		} else {
			ot = n
		}
	}
	if pt == 0 || ot == 0 {
		return
	}
	// Not inherited by anything this process starts.
	unix.CloseOnExec(sideFD)
	if err := unix.SetNonblock(sideFD, true); err != nil {
		return
	}
	inherited.f = os.NewFile(sideFD, "asyncgo-side")
	inherited.parentTok, inherited.ownTok = pt, ot
}

func splitSpace(s string) []string {
	var out []string
	start := -1
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ' ' {
			if start >= 0 {
				out = append(out, s[start:i])
				start = -1
			}
		} else if start < 0 {
			start = i
		}
	}
	return out
}

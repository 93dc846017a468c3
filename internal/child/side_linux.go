package child

import (
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// sideChannel makes the socketpair for a child about to start, or returns
// nils when no package asked for one.
func sideChannel() (parentEnd, childEnd *os.File, env []string, adopt func(*Process), err error) {
	sideMu.Lock()
	own, tokf, adoptf := sideOwn, sideToken, sideAdopt
	sideMu.Unlock()
	if adoptf == nil {
		return nil, nil, nil, nil, nil
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		unix.Close(fds[1])
		return nil, nil, nil, nil, err
	}
	pe := os.NewFile(uintptr(fds[0]), "asyncgo-side")
	ce := os.NewFile(uintptr(fds[1]), "asyncgo-side-child")
	tok := tokf()
	env = []string{
		envSide + "=" + strconv.Itoa(sideFD),
		envSideToken + "=" + strconv.FormatUint(own, 16) + " " + strconv.FormatUint(tok, 16),
	}
	return pe, ce, env, func(p *Process) { adoptf(pe, tok, p) }, nil
}

//go:build !linux

package aio

import "golang.org/x/sys/unix"

// recvFlags: elsewhere there is no MSG_CMSG_CLOEXEC; takeFDs marks each
// descriptor close-on-exec itself (child processes need Linux anyway).
const recvFlags = 0

// writev writes the first segment only: elsewhere x/sys has no Writev,
// and the caller goes on with the rest.
func writev(fd int, iov [][]byte) (int, error) { return unix.Write(fd, iov[0]) }

//go:build !linux

package aio

// recvFlags: elsewhere there is no MSG_CMSG_CLOEXEC; takeFDs marks each
// descriptor close-on-exec itself (child processes need Linux anyway).
const recvFlags = 0

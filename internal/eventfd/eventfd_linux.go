package eventfd

import (
	"encoding/binary"
	"os"

	"golang.org/x/sys/unix"
)

// An eventfd's counter is added to by each write of an 8-byte integer and
// reset by a read.
var wakeBytes = binary.NativeEndian.AppendUint64(nil, 1)

func open() (*FD, error) {
	fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("eventfd", err)
	}
	f := os.NewFile(uintptr(fd), "asyncgo-eventfd")
	return &FD{r: f, w: f}, nil
}

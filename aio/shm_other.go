//go:build !linux

package aio

import (
	"errors"
	"time"
)

// Elsewhere there is no futex: objects stay hosted (child processes need
// Linux anyway).
const shmSupported = false

var errNoShm = errors.New("aio: shared memory needs Linux")

type shmRef struct {
	arena ref
	off   uint32
}

const shmRefLen = 22

func (shmRef) encode(uint8) []byte { return nil }

func decodeShmRef([]byte, uint8) (shmRef, error) { return shmRef{}, errNoShm }

func newSlot() (shmRef, *[8]uint32, error) { return shmRef{}, nil, errNoShm }

func mapSlot(handle, uint32) (*[8]uint32, error) { return nil, errNoShm }

func futexWait(*uint32, uint32, time.Duration) {}

func futexWakeAll(*uint32) {}

func futexWakeOne(*uint32) {}

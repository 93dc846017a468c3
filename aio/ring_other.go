//go:build !linux

package aio

import (
	"context"
	"time"
)

// Elsewhere queues stay hosted (ring_linux.go): there are no child
// processes to share them with.
type ring struct{}

func newRing(uint8, int) (*ring, error) { return nil, errNoShm }

func decodeRing([]byte, uint8) (*ring, error) { return nil, errNoShm }

const ringRefLen = 18

func (*ring) encode(uint8) ([]byte, error)                             { return nil, errNoShm }
func (*ring) put(context.Context, []byte, []byte, time.Duration) error { return errNoShm }
func (*ring) get(context.Context, time.Duration) ([]byte, error)       { return nil, errNoShm }
func (*ring) size() (n, maxsize int)                                   { return 0, 0 }
func (*ring) taskDone() error                                          { return errNoShm }
func (*ring) join(context.Context) error                               { return errNoShm }

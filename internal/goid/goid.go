// Package goid reads the calling goroutine's id, for the few places that
// must tell goroutines apart (the loop's debug mode, a pool's Shutdown
// called from one of its own goroutines). It costs a runtime.Stack call,
// about a microsecond: never on a hot path.
package goid

import (
	"bytes"
	"runtime"
	"strconv"
)

// Get returns the calling goroutine's id, from the header runtime.Stack
// writes ("goroutine 18 [running]:").
func Get() uint64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	if i := bytes.IndexByte(b, ' '); i > 0 {
		b = b[:i]
	}
	n, _ := strconv.ParseUint(string(b), 10, 64)
	return n
}

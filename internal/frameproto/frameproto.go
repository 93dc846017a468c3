// Package frameproto is the reactor's wire protocol (examples/reactor) as
// a loop.Protocol that runs its job on the loop itself, for servers whose
// worker processes each serve connections with a loop of their own
// (examples/prefork, docs/bench/handoffsrv): a frame is a 4-byte
// big-endian length and a message; each message is answered, in order,
// with a frame of a status byte 0 and the message's SHA-256 digest, after
// CPU of the thread's CPU time, or 1 and an error text for a message over
// MaxSize, after which the connection closes.
package frameproto

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/asyncgo/asyncgo/internal/cpuburn"
	"github.com/asyncgo/asyncgo/loop"
)

// Config is what every connection of a server is served with.
type Config struct {
	MaxSize int
	CPU     time.Duration
	// OnMessage, if set, runs after each answer (prefork counts requests).
	OnMessage func()
	// Draining, if set, reports whether the server is stopping: then a
	// connection closes between messages.
	Draining func() bool
}

// Proto serves one connection: it answers each whole frame in turn, on
// the loop, and writes the answers to one read's frames in one Write.
type Proto struct {
	cfg   *Config
	conns map[*Proto]struct{}
	t     loop.Transport
	buf   []byte
}

// Set holds a server's open connections, for CloseIdle.
type Set map[*Proto]struct{}

// New returns a protocol for one connection, tracked in set (nil: not
// tracked).
func New(cfg *Config, set Set) *Proto { return &Proto{cfg: cfg, conns: set} }

// CloseIdle closes every connection of set that is between messages.
func (s Set) CloseIdle() {
	for p := range s {
		p.closeIfIdle()
	}
}

// ConnectionMade implements loop.Protocol.
func (p *Proto) ConnectionMade(t loop.Transport) {
	p.t = t
	if p.conns != nil {
		p.conns[p] = struct{}{}
	}
	p.closeIfIdle() // accepted as the server began to drain
}

// ConnectionLost implements loop.Protocol.
func (p *Proto) ConnectionLost(error) {
	if p.conns != nil {
		delete(p.conns, p)
	}
}

// EOFReceived implements loop.Protocol: the transport closes.
func (p *Proto) EOFReceived() bool { return false }

// DataReceived implements loop.Protocol.
func (p *Proto) DataReceived(b []byte) {
	p.buf = append(p.buf, b...)
	var out []byte
	used := 0
	for len(p.buf)-used >= 4 {
		n := int(binary.BigEndian.Uint32(p.buf[used:]))
		if n > p.cfg.MaxSize {
			out = appendReply(out, 1, fmt.Appendf(nil, "message of %d bytes is over the %d-byte cap", n, p.cfg.MaxSize))
			_, _ = p.t.Write(out)
			p.t.Close()
			p.buf = nil
			return
		}
		if len(p.buf)-used-4 < n {
			break
		}
		msg := p.buf[used+4 : used+4+n]
		used += 4 + n
		sum := sha256.Sum256(msg)
		if p.cfg.CPU > 0 {
			cpuburn.Burn(p.cfg.CPU, sum)
		}
		out = appendReply(out, 0, sum[:])
		if p.cfg.OnMessage != nil {
			p.cfg.OnMessage()
		}
	}
	if len(out) > 0 {
		_, _ = p.t.Write(out)
	}
	if used == len(p.buf) {
		p.buf = p.buf[:0]
	} else if used > 0 {
		p.buf = append(p.buf[:0], p.buf[used:]...)
	}
	p.closeIfIdle()
}

// appendReply appends an answer frame: its length, the status, data.
func appendReply(out []byte, status byte, data []byte) []byte {
	out = binary.BigEndian.AppendUint32(out, uint32(1+len(data)))
	out = append(out, status)
	return append(out, data...)
}

// closeIfIdle closes the connection if the server drains and no message
// is half read (the answers owed are written first).
func (p *Proto) closeIfIdle() {
	if p.cfg.Draining != nil && p.cfg.Draining() && len(p.buf) == 0 {
		p.t.Close()
	}
}

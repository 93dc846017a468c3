// Package wire frames gob streams between a parent and its child processes.
//
// Each connection carries one gob stream per direction, so type information
// crosses once and a small message costs about a microsecond to encode and
// decode (a fresh encoder per message costs 13–16µs). A value that fails to
// encode would leave a gob encoder believing it had sent type information
// the peer never saw, so every message travels in a frame
// [length uint32][flags uint8][gob bytes], and a frame flagged Reset tells
// the reader to start a new decoder: the writer starts a new encoder after
// any failure, and nothing half-encoded is ever sent.
package wire

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/gob"
	"fmt"
	"io"
	"sync"
)

// MaxFrame bounds a frame, so a corrupt length cannot make a reader
// allocate without limit.
const MaxFrame = 1 << 30

const flagReset = 1

// Writer encodes messages onto w. It is safe for concurrent use; each Send
// is one frame.
type Writer struct {
	mu    sync.Mutex
	w     io.Writer
	buf   bytes.Buffer
	enc   *gob.Encoder
	reset bool
	keep  keeper
}

// NewWriter returns a Writer on w.
func NewWriter(w io.Writer) *Writer {
	wr := &Writer{w: w}
	wr.enc = gob.NewEncoder(&wr.buf)
	return wr
}

// Send encodes the values, in order, as one frame and writes it. If a value
// cannot be encoded (gob returns an error, or panics as it does on a nil
// pointer), Send returns an *EncodeError and writes nothing.
func (wr *Writer) Send(values ...any) error {
	wr.mu.Lock()
	defer wr.mu.Unlock()
	wr.buf.Reset()
	var hdr [5]byte
	wr.buf.Write(hdr[:])
	for _, v := range values {
		if appendRaw(&wr.buf, v) {
			continue
		}
		if err := encode(wr.enc, v); err != nil {
			wr.enc = gob.NewEncoder(&wr.buf)
			wr.reset = true
			return &EncodeError{Err: err}
		}
	}
	b := wr.buf.Bytes()
	n := len(b) - 5
	if n > MaxFrame {
		wr.enc = gob.NewEncoder(&wr.buf)
		wr.reset = true
		return &EncodeError{Err: fmt.Errorf("message of %d bytes is larger than %d", n, MaxFrame)}
	}
	binary.LittleEndian.PutUint32(b, uint32(n))
	if wr.reset {
		b[4] = flagReset
		wr.reset = false
	}
	_, err := wr.w.Write(b)
	if wr.keep.drop(wr.buf.Cap(), len(b)) {
		wr.buf = bytes.Buffer{} // the encoder writes to &wr.buf: still this buffer
	}
	return err
}

// keeper decides when a large buffer is dropped: it is kept while messages
// of its size keep coming (a stream of 2 MiB calls reuses one buffer
// instead of growing a new one for each, which makes the GC run several
// times a second), and dropped once it has served shrinkAfter messages in
// a row that needed less than a quarter of it, so that one large message
// does not pin its buffer for good.
type keeper struct{ small int }

const (
	largeBuffer = 1 << 20
	shrinkAfter = 8
)

func (k *keeper) drop(capacity, used int) bool {
	if capacity <= largeBuffer || used > capacity/4 {
		k.small = 0
		return false
	}
	if k.small++; k.small < shrinkAfter {
		return false
	}
	k.small = 0
	return true
}

// encode is enc.Encode(v) with a panic turned into an error: gob panics on
// a nil pointer instead of failing.
func encode(enc *gob.Encoder, v any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	return enc.Encode(v)
}

// Reset starts a new gob stream: the next frame tells the reader to start
// a new decoder. Use it when the peer reports it lost track of the stream.
func (wr *Writer) Reset() {
	wr.mu.Lock()
	defer wr.mu.Unlock()
	wr.enc = gob.NewEncoder(&wr.buf)
	wr.reset = true
}

// EncodeError is a value that could not be encoded.
type EncodeError struct{ Err error }

// Error returns the encoding failure.
func (e *EncodeError) Error() string { return "wire: cannot encode: " + e.Err.Error() }

// Unwrap returns the gob error.
func (e *EncodeError) Unwrap() error { return e.Err }

// Reader decodes frames from r. It is for one goroutine.
type Reader struct {
	r     *bufio.Reader
	frame bytes.Reader
	buf   []byte
	dec   *gob.Decoder
	keep  keeper
}

// NewReader returns a Reader on r.
func NewReader(r io.Reader) *Reader {
	rd := &Reader{r: bufio.NewReaderSize(r, 64<<10)}
	rd.dec = gob.NewDecoder(&rd.frame)
	return rd
}

// Next reads the next frame; Decode then reads its values. It returns
// io.EOF at a clean end of stream.
func (rd *Reader) Next() error {
	var hdr [5]byte
	if _, err := io.ReadFull(rd.r, hdr[:]); err != nil {
		return err
	}
	n := binary.LittleEndian.Uint32(hdr[:4])
	if n > MaxFrame {
		return fmt.Errorf("wire: frame of %d bytes is too large", n)
	}
	if rd.keep.drop(cap(rd.buf), int(n)) {
		rd.buf = nil // the last frame's bytes are decoded: nothing points here
	}
	if cap(rd.buf) < int(n) {
		rd.buf = make([]byte, n)
	}
	rd.buf = rd.buf[:n]
	if _, err := io.ReadFull(rd.r, rd.buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	rd.frame.Reset(rd.buf)
	if hdr[4]&flagReset != 0 {
		rd.dec = gob.NewDecoder(&rd.frame)
	}
	return nil
}

// Decode decodes the next value of the current frame into v, a pointer. A
// value that gob cannot decode into v is an error, never a panic.
func (rd *Reader) Decode(v any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("wire: cannot decode: %v", r)
		}
	}()
	if b, berr := rd.frame.ReadByte(); berr == nil {
		if b == 0 {
			return decodeRaw(&rd.frame, v)
		}
		_ = rd.frame.UnreadByte()
	}
	return rd.dec.Decode(v)
}

// Rest reports how many bytes of the current frame are unread.
func (rd *Reader) Rest() int { return rd.frame.Len() }

// Marshal encodes v as a gob stream of its own, outside any connection's
// stream: for a value the other side may fail to rebuild (a registered
// error type's value), which must not disturb the stream if it does. A
// panic in gob (on a nil pointer) is an error.
func Marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	if err := encode(gob.NewEncoder(&buf), v); err != nil {
		return nil, &EncodeError{Err: err}
	}
	return buf.Bytes(), nil
}

// Unmarshal decodes b, made by Marshal, into v, a pointer. A value that
// gob cannot decode into v is an error, never a panic.
func Unmarshal(b []byte, v any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("wire: cannot decode: %v", r)
		}
	}()
	return gob.NewDecoder(bytes.NewReader(b)).Decode(v)
}

package wire

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
)

// Slices of fixed-size numbers ([]int, []int64, []float64: a pool's chunks
// of items and of results) cross as their little-endian bytes, not through
// gob, which spends a varint and a branch on each element (a Pool.map of
// 100-int chunks spent a quarter of its parent's time in gob). Such a
// value is written in the frame between gob messages, behind a zero byte,
// which no gob message starts with (a message starts with its length,
// never 0): [0][kind][count uvarint][8 bytes each].
const (
	rawInt = iota + 1
	rawInt64
	rawFloat64
)

// appendRaw writes v to buf raw if it is one of the slices above.
func appendRaw(buf *bytes.Buffer, v any) bool {
	var kind byte
	var n int
	switch x := v.(type) {
	case []int:
		kind, n = rawInt, len(x)
	case []int64:
		kind, n = rawInt64, len(x)
	case []float64:
		kind, n = rawFloat64, len(x)
	default:
		return false
	}
	var hdr [2 + binary.MaxVarintLen64]byte
	hdr[1] = kind
	h := binary.AppendUvarint(hdr[:2], uint64(n))
	buf.Write(h)
	buf.Grow(8 * n)
	var w [8]byte
	switch x := v.(type) {
	case []int:
		for _, e := range x {
			binary.LittleEndian.PutUint64(w[:], uint64(e))
			buf.Write(w[:])
		}
	case []int64:
		for _, e := range x {
			binary.LittleEndian.PutUint64(w[:], uint64(e))
			buf.Write(w[:])
		}
	case []float64:
		for _, e := range x {
			binary.LittleEndian.PutUint64(w[:], math.Float64bits(e))
			buf.Write(w[:])
		}
	}
	return true
}

// decodeRaw reads a raw value from frame (its zero byte already read)
// into v, which must point to a slice of its kind.
func decodeRaw(frame *bytes.Reader, v any) error {
	kind, err := frame.ReadByte()
	if err != nil {
		return fmt.Errorf("wire: cannot decode: %w", err)
	}
	n, err := binary.ReadUvarint(frame)
	if err != nil || n > uint64(frame.Len()/8) {
		return fmt.Errorf("wire: cannot decode: a corrupt slice")
	}
	b := make([]byte, 8*n)
	if _, err := frame.Read(b); err != nil && n > 0 {
		return fmt.Errorf("wire: cannot decode: %w", err)
	}
	switch p := v.(type) {
	case *[]int:
		if kind == rawInt {
			*p = fill(p, b, func(u uint64) int { return int(u) })
			return nil
		}
	case *[]int64:
		if kind == rawInt64 {
			*p = fill(p, b, func(u uint64) int64 { return int64(u) })
			return nil
		}
	case *[]float64:
		if kind == rawFloat64 {
			*p = fill(p, b, math.Float64frombits)
			return nil
		}
	}
	return fmt.Errorf("wire: cannot decode a slice of kind %d into %T", kind, v)
}

// fill makes the slice of b's numbers, reusing *p's array as gob does when
// it has the room.
func fill[E any](p *[]E, b []byte, conv func(uint64) E) []E {
	n := len(b) / 8
	out := *p
	if cap(out) < n {
		out = make([]E, n)
	}
	out = out[:n]
	for i := range out {
		out[i] = conv(binary.LittleEndian.Uint64(b[8*i:]))
	}
	return out
}

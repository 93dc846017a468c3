package aio

import (
	"encoding/binary"
	"time"
)

// PutAndHang does what a Put of b to q does up to the store that counts
// the item in, holding q's lock, then sets ready and hangs there, to be
// killed in the middle of its Put.
func PutAndHang(q *Queue[[]byte], b []byte, ready *Event) error {
	hdr, data, err := q.r.hdr()
	if err != nil {
		return err
	}
	if _, err := q.r.take(bg, time.Time{}); err != nil {
		return err
	}
	s := hdr.st[hdr.cur&1]
	pos, _ := place(&s, align8(entryHead+uint32(len(b))), data, false)
	binary.LittleEndian.PutUint64(data[pos:], uint64(len(b)))
	copy(data[pos+entryHead:], b)
	if err := ready.Set(); err != nil {
		return err
	}
	select {}
}

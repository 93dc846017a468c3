package aio

import (
	"encoding/binary"
	"sync/atomic"
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
	if _, err := q.r.take(bg, time.Time{}, false); err != nil {
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

// CommitAndHang does one operation on q's ring up to and including the
// store that makes its state current, holding the lock, then sets ready
// and hangs: killed there, it died after its commit and before its unlock
// and its wake of the waiters. op is "put" (of b), "get" or "taskdone".
func CommitAndHang(q *JoinableQueue[[]byte], op string, b []byte, ready *Event) error {
	hdr, data, err := q.r.hdr()
	if err != nil {
		return err
	}
	if _, err := q.r.take(bg, time.Time{}, false); err != nil {
		return err
	}
	switch op {
	case "put":
		var tag [4]byte
		binary.LittleEndian.PutUint32(tag[:], q.c.tag)
		err = q.r.tryPut(hdr, data, tag[:], b, false)
	case "get":
		_, err = q.r.tryGet(hdr, data)
	case "taskdone":
		s := hdr.st[hdr.cur&1]
		s.unfinished--
		q.r.commit(hdr, s)
	}
	if err != nil {
		return err
	}
	if err := ready.Set(); err != nil {
		return err
	}
	select {}
}

// QueueSleepers is how many threads sleep on q's words, in any process:
// nonEmpty, nonFull and joined.
func QueueSleepers(q *JoinableQueue[[]byte]) (getters, putters, joiners uint32) {
	hdr, _, err := q.r.hdr()
	if err != nil {
		return 0, 0, 0
	}
	return atomic.LoadUint32(&hdr.nonEmptySleepers), atomic.LoadUint32(&hdr.nonFullSleepers), atomic.LoadUint32(&hdr.joinedSleepers)
}

// HoldLockAndHang takes q's lock, sets ready and hangs holding it.
func HoldLockAndHang(q *Queue[[]byte], ready *Event) error {
	if _, _, err := q.r.hdr(); err != nil {
		return err
	}
	if _, err := q.r.take(bg, time.Time{}, false); err != nil {
		return err
	}
	if err := ready.Set(); err != nil {
		return err
	}
	select {}
}

package aio

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// The ring of a shared-memory queue against a slice: random puts and
// gets of items from empty to 1.5 MiB (so that the ring runs past its
// soft end, wraps, compacts and empties) come out whole and in order, the count
// follows, and a put is refused for room only when the ring holds close
// to its capacity.
func TestRingAgainstModel(t *testing.T) {
	wraps, compactions := 0, 0
	for seed := range uint64(6) {
		rng := rand.New(rand.NewPCG(seed, 7))
		r, err := newRing(kindJoinable, 0)
		if err != nil {
			t.Fatal(err)
		}
		hdr, data, err := r.hdr()
		if err != nil {
			t.Fatal(err)
		}
		var model [][]byte
		live := 0
		next := uint64(0)
		item := func(size int) []byte {
			b := make([]byte, size)
			for i := range b {
				b[i] = byte(next + uint64(i)*7)
			}
			if size >= 8 {
				binary.LittleEndian.PutUint64(b, next)
			}
			next++
			return b
		}
		for op := range 4000 {
			if rng.IntN(100) < 52 {
				var size int
				switch k := rng.IntN(10); {
				case k < 6:
					size = rng.IntN(64)
				case k < 9:
					size = rng.IntN(64 << 10)
				default:
					size = rng.IntN(3 << 19)
				}
				b := item(size)
				split := rng.IntN(len(b) + 1)
				// As a Put does: compact only once a plain put found no room.
				err := r.tryPut(hdr, data, b[:split], b[split:], false)
				if err == errRingFull {
					err = r.tryPut(hdr, data, b[:split], b[split:], true)
					if err == nil {
						compactions++
					}
				}
				if err == errRingFull {
					if live+size < ringCap/2 {
						t.Fatalf("seed %d op %d: a put of %d bytes refused with %d live", seed, op, size, live)
					}
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				model = append(model, b)
				live += size + 2*entryHead
			} else {
				b, err := r.tryGet(hdr, data)
				if len(model) == 0 {
					if err != errRingEmpty {
						t.Fatalf("seed %d op %d: a get of an empty ring: %v", seed, op, err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("seed %d op %d: %v", seed, op, err)
				}
				if !bytes.Equal(b, model[0]) {
					t.Fatalf("seed %d op %d: got %d bytes, want the %d of the front item", seed, op, len(b), len(model[0]))
				}
				live -= len(model[0]) + 2*entryHead
				model = model[1:]
			}
			s := hdr.st[hdr.cur&1]
			wraps += int(s.wrapped)
			if int(s.count) != len(model) {
				t.Fatalf("seed %d op %d: count %d, model %d", seed, op, s.count, len(model))
			}
			if int(s.unfinished) != int(next) {
				t.Fatalf("seed %d op %d: unfinished %d, puts %d", seed, op, s.unfinished, next)
			}
		}
		// Drained, the ring is back at its start.
		for range model {
			if _, err := r.tryGet(hdr, data); err != nil {
				t.Fatal(err)
			}
		}
		if s := hdr.st[hdr.cur&1]; s.head != 0 || s.tail != 0 || s.wrapped != 0 || s.count != 0 {
			t.Fatalf("seed %d: drained, the state is %+v", seed, s)
		}
	}
	if wraps == 0 || compactions == 0 {
		t.Fatalf("the ring wrapped after %d operations and compacted %d times: the test misses a path", wraps, compactions)
	}
	t.Logf("%d operations saw the ring wrapped; %d puts compacted it", wraps, compactions)
}

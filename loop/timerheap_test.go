package loop

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"
)

// The timer heap against a reference model: a plain slice of live timers,
// sorted by (when, seq) when one must fire. Schedules, cancellations,
// compactions and pops come in random order; after every step the heap
// must hold exactly the live timers, and every pop must return the model's
// earliest one. Deadlines are drawn from a small range so ties (FIFO by
// seq) are frequent.
func TestTimerHeapModel(t *testing.T) {
	for seed := range uint64(40) {
		r := rand.New(rand.NewPCG(seed, 0))
		var h timerHeap
		var model []*TimerHandle // live timers, in heap
		var seq uint64
		var fired, want []uint64
		for range 2000 {
			switch op := r.IntN(10); {
			case op < 5: // schedule
				seq++
				th := &TimerHandle{when: int64(r.IntN(50)), seq: seq, inHeap: true}
				h.push(th)
				model = append(model, th)
			case op < 7 && len(model) > 0: // cancel a random live timer
				i := r.IntN(len(model))
				model[i].rec.cancelled = true
				model = slices.Delete(model, i, i+1)
			case op < 8: // compact, as runOnce does past 100 cancelled timers
				h.removeCancelled()
			default: // fire the earliest live timer, skipping cancelled ones
				for len(h) > 0 && h[0].th.rec.cancelled {
					h.pop().inHeap = false
				}
				if len(h) == 0 {
					if len(model) != 0 {
						t.Fatalf("seed %d: heap empty with %d live timers", seed, len(model))
					}
					continue
				}
				th := h.pop()
				th.inHeap = false
				fired = append(fired, th.seq)
				i := slices.IndexFunc(model, func(m *TimerHandle) bool {
					return m == slices.MinFunc(model, byDeadline)
				})
				want = append(want, model[i].seq)
				model = slices.Delete(model, i, i+1)
			}
			live := 0
			for _, e := range h {
				if !e.th.rec.cancelled {
					live++
				}
				if !e.th.inHeap {
					t.Fatalf("seed %d: timer %d in the heap is marked out of it", seed, e.seq)
				}
			}
			if live != len(model) {
				t.Fatalf("seed %d: heap holds %d live timers, model %d", seed, live, len(model))
			}
		}
		if diff := gocmp.Diff(want, fired); diff != "" {
			t.Fatalf("seed %d: firing order (-model +heap):\n%s", seed, diff)
		}
	}
}

func byDeadline(a, b *TimerHandle) int {
	return cmp.Or(cmp.Compare(a.when, b.when), cmp.Compare(a.seq, b.seq))
}

// Compacting a heap whose timers are all cancelled leaves it empty (it
// used to index an empty slice: 101 cancelled timers were enough).
func TestTimerHeapCompactAllCancelled(t *testing.T) {
	for n := range 8 {
		var h timerHeap
		for i := range n {
			th := &TimerHandle{when: int64(i), seq: uint64(i)}
			th.rec.cancelled = true
			h.push(th)
		}
		h.removeCancelled()
		if len(h) != 0 {
			t.Errorf("removeCancelled() of %d cancelled timers left %d", n, len(h))
		}
	}
}

package loop

// timerHeap orders timers by deadline, ties by the order they were
// scheduled (asyncio's heap compares the deadline only; FIFO ties are
// stricter and documented). Entries carry their keys by value so sifting
// never touches the timers themselves, and the heap is 4-ary: half the
// depth of a binary heap for the same comparisons per level.
type timerHeap []timerEntry

type timerEntry struct {
	when int64
	seq  uint64
	th   *TimerHandle
}

func (a *timerEntry) before(b *timerEntry) bool {
	return a.when < b.when || a.when == b.when && a.seq < b.seq
}

func (h *timerHeap) push(th *TimerHandle) {
	*h = append(*h, timerEntry{th.when, th.seq, th})
	h.up(len(*h) - 1)
}

func (h *timerHeap) pop() *TimerHandle {
	old := *h
	n := len(old) - 1
	th := old[0].th
	old[0] = old[n]
	old[n] = timerEntry{}
	*h = old[:n]
	if n > 0 {
		h.down(0)
	}
	return th
}

func (h timerHeap) up(j int) {
	e := h[j]
	for j > 0 {
		i := (j - 1) / 4
		if !e.before(&h[i]) {
			break
		}
		h[j] = h[i]
		j = i
	}
	h[j] = e
}

func (h timerHeap) down(i int) {
	n := len(h)
	e := h[i]
	for {
		c := 4*i + 1
		if c >= n {
			break
		}
		m := c
		for k := c + 1; k < c+4 && k < n; k++ {
			if h[k].before(&h[m]) {
				m = k
			}
		}
		if !h[m].before(&e) {
			break
		}
		h[i] = h[m]
		i = m
	}
	h[i] = e
}

// removeCancelled rebuilds the heap without cancelled timers.
func (h *timerHeap) removeCancelled() {
	old := *h
	kept := old[:0]
	for _, e := range old {
		if e.th.rec.cancelled {
			e.th.inHeap = false
		} else {
			kept = append(kept, e)
		}
	}
	clear(old[len(kept):])
	*h = kept
	// Heapify from the last parent down; with fewer than two timers
	// there is no parent (and (0-2)/4 truncates to 0, not -1).
	if len(kept) < 2 {
		return
	}
	for i := (len(kept) - 2) / 4; i >= 0; i-- {
		kept.down(i)
	}
}

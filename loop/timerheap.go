package loop

// timerHeap orders timers by deadline, ties by the order they were
// scheduled (asyncio's heap compares the deadline only; FIFO ties are
// stricter and documented).
type timerHeap []*TimerHandle

func (h timerHeap) less(i, j int) bool {
	a, b := h[i], h[j]
	if a.when != b.when {
		return a.when < b.when
	}
	return a.seq < b.seq
}

func (h *timerHeap) push(t *TimerHandle) {
	*h = append(*h, t)
	h.up(len(*h) - 1)
}

func (h *timerHeap) pop() *TimerHandle {
	old := *h
	n := len(old) - 1
	t := old[0]
	old[0] = old[n]
	old[n] = nil
	*h = old[:n]
	if n > 0 {
		h.down(0)
	}
	return t
}

func (h timerHeap) up(j int) {
	for j > 0 {
		i := (j - 1) / 2
		if !h.less(j, i) {
			break
		}
		h[i], h[j] = h[j], h[i]
		j = i
	}
}

func (h timerHeap) down(i int) {
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		j := l
		if r := l + 1; r < n && h.less(r, l) {
			j = r
		}
		if !h.less(j, i) {
			return
		}
		h[i], h[j] = h[j], h[i]
		i = j
	}
}

// removeCancelled rebuilds the heap without cancelled timers.
func (h *timerHeap) removeCancelled() {
	old := *h
	kept := old[:0]
	for _, t := range old {
		if t.rec.cancelled {
			t.inHeap = false
		} else {
			kept = append(kept, t)
		}
	}
	for i := len(kept); i < len(old); i++ {
		old[i] = nil
	}
	*h = kept
	for i := len(kept)/2 - 1; i >= 0; i-- {
		kept.down(i)
	}
}

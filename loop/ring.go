package loop

// readyItem is one entry of the ready queue: a callback (fn), a task to
// resume (task), or a fired sleep timer (task and rec both set). rec, when
// set, lets a Handle or TimerHandle cancel the entry while it waits.
type readyItem struct {
	fn   func()
	task *taskCore
	rec  *handleRec
}

// ring is a FIFO of T: a power-of-two ring that grows and never shrinks,
// so steady-state pushes and pops allocate nothing, and an index wraps
// with a mask rather than a division. The loop's ready queue and a Queue's
// items are rings.
type ring[T any] struct {
	buf  []T
	head int
	n    int
}

func (r *ring[T]) len() int { return r.n }

func (r *ring[T]) push(v T) {
	if r.n == len(r.buf) {
		r.grow()
	}
	r.buf[(r.head+r.n)&(len(r.buf)-1)] = v
	r.n++
}

// pop removes the oldest item; the ring must not be empty.
func (r *ring[T]) pop() T {
	var zero T
	i := r.head
	v := r.buf[i]
	r.buf[i] = zero
	r.head = (i + 1) & (len(r.buf) - 1)
	r.n--
	return v
}

func (r *ring[T]) grow() {
	buf := make([]T, max(16, 2*len(r.buf)))
	for i := 0; i < r.n; i++ {
		buf[i] = r.buf[(r.head+i)&(len(r.buf)-1)]
	}
	r.buf, r.head = buf, 0
}

func (r *ring[T]) clear() {
	for r.n > 0 {
		r.pop()
	}
}

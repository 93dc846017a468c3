package loop

// readyItem is one entry of the ready queue: a callback (fn), a task to
// resume (task), or a fired sleep timer (task and rec both set). rec, when
// set, lets a Handle or TimerHandle cancel the entry while it waits.
type readyItem struct {
	fn   func()
	task *taskCore
	rec  *handleRec
}

// ring is the loop's FIFO ready queue: a power-of-two ring that grows and
// never shrinks, so steady-state pushes and pops allocate nothing.
type ring struct {
	buf  []readyItem
	head int
	n    int
}

func (r *ring) len() int { return r.n }

func (r *ring) push(it readyItem) {
	if r.n == len(r.buf) {
		r.grow()
	}
	r.buf[(r.head+r.n)&(len(r.buf)-1)] = it
	r.n++
}

func (r *ring) pop() readyItem {
	i := r.head
	it := r.buf[i]
	r.buf[i] = readyItem{}
	r.head = (i + 1) & (len(r.buf) - 1)
	r.n--
	return it
}

func (r *ring) grow() {
	size := 2 * len(r.buf)
	if size == 0 {
		size = 64
	}
	buf := make([]readyItem, size)
	for i := 0; i < r.n; i++ {
		buf[i] = r.buf[(r.head+i)&(len(r.buf)-1)]
	}
	r.buf, r.head = buf, 0
}

func (r *ring) clear() {
	for r.n > 0 {
		r.pop()
	}
}

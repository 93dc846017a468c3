package loadgen

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// progressEvery is how often the live progress line is rewritten.
const progressEvery = 500 * time.Millisecond

// liveHist is a histogram that the progress line may read while its
// connection records into it: a mutex that only the progress line ever
// contends for, twice a second.
type liveHist struct {
	mu sync.Mutex
	h  histogram
}

func (l *liveHist) record(v int64) {
	l.mu.Lock()
	l.h.record(v)
	l.mu.Unlock()
}

// mergeInto adds l's samples to h.
func (l *liveHist) mergeInto(h *histogram) {
	l.mu.Lock()
	h.merge(&l.h)
	l.mu.Unlock()
}

// snapshot fills h (reset first) with every sample measured so far and
// returns how many messages are done (warmup included) and how many errors
// were counted.
type snapshot func(h *histogram) (done uint64, errors int64)

// progress rewrites one line on out every progressEvery until finished is
// closed, then clears it: elapsed time, the rate over the last interval,
// the p99 of the measured messages so far, the messages done and the
// errors. unit names what is counted ("req/s", "msgs/s").
func progress(out io.Writer, unit string, start time.Time, snap snapshot, finished <-chan struct{}) {
	tick := time.NewTicker(progressEvery)
	defer tick.Stop()
	h := new(histogram)
	var last uint64
	lastAt := start
	for {
		select {
		case <-finished:
			fmt.Fprint(out, "\r\033[K")
			return
		case now := <-tick.C:
			*h = histogram{}
			n, errs := snap(h)
			rate := float64(n-last) / now.Sub(lastAt).Seconds()
			last, lastAt = n, now
			p99 := "-"
			if h.total > 0 {
				p99 = us(float64(h.quantile(0.99)) / 1e3)
			}
			fmt.Fprintf(out, "\r\033[K%6.1fs  %s %s  p99 %s µs  %d done  %d errors",
				now.Sub(start).Seconds(), human(rate), unit, p99, n, errs)
		}
	}
}

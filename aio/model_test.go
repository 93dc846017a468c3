//go:build linux

package aio_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/aio"
	"github.com/asyncgo/asyncgo/executor"
	"github.com/google/go-cmp/cmp"
)

// Randomized tests of Queue and of the semaphores against a reference
// model: a slice with a bound, an int counter. Each sequence is made from
// a fixed seed (logged, so that a failure can be replayed) and run three
// ways: in the process that hosts the object, in a child replaying it on
// an object the test hosts, and in the test on an object a child hosts.
// One process at a time uses the object, so every result is exact: Qsize,
// Empty and Full are approximate in Python only because other processes
// move at once. CPython's counterparts are _TestQueue.test_put,
// test_get and test_qsize, and _TestSemaphore.test_semaphore and
// test_bounded_semaphore, with fixed sequences.

// Queue operations of a model sequence.
const (
	mPutNowait = iota
	mGetNowait
	mPut // blocking, only where the model has room
	mGet // blocking, only where the model has an item
	mPutTimeout
	mGetTimeout
	mQsize
	mEmpty
	mFull
	mQueueOps
)

type modelOp struct {
	Kind int
	V    int
	// Wait is the timeout of a timed operation: short where the model
	// says it times out (nobody else can make it succeed), long where it
	// says it succeeds (it returns as soon as its round trip does), so
	// that no result depends on how fast the machine is.
	Wait time.Duration
}

// waitFor returns the timeout of a timed operation that will or will not
// succeed.
func waitFor(succeeds bool) time.Duration {
	if succeeds {
		return 30 * time.Second
	}
	return time.Millisecond
}

type queueModel struct {
	items   []int
	maxsize int
}

func (m *queueModel) full() bool { return m.maxsize > 0 && len(m.items) >= m.maxsize }

func (m *queueModel) apply(op modelOp) string {
	switch op.Kind {
	case mPutNowait, mPut, mPutTimeout:
		if m.full() {
			return "ErrFull"
		}
		m.items = append(m.items, op.V)
		return "ok"
	case mGetNowait, mGet, mGetTimeout:
		if len(m.items) == 0 {
			return "ErrEmpty"
		}
		v := m.items[0]
		m.items = m.items[1:]
		return fmt.Sprint(v)
	case mQsize:
		return fmt.Sprint(len(m.items))
	case mEmpty:
		return fmt.Sprint(len(m.items) == 0)
	case mFull:
		return fmt.Sprint(m.full())
	}
	return "bad op"
}

// queueOps makes n operations from seed: blocking ones only where they
// would not block.
func queueOps(seed uint64, maxsize, n int) []modelOp {
	r := rand.New(rand.NewPCG(seed, 1))
	m := &queueModel{maxsize: maxsize}
	ops := make([]modelOp, 0, n)
	for v := 0; len(ops) < n; v++ {
		op := modelOp{Kind: r.IntN(mQueueOps), V: v}
		if op.Kind == mPut && m.full() || op.Kind == mGet && len(m.items) == 0 {
			continue
		}
		switch op.Kind {
		case mPutTimeout:
			op.Wait = waitFor(!m.full())
		case mGetTimeout:
			op.Wait = waitFor(len(m.items) > 0)
		}
		m.apply(op)
		ops = append(ops, op)
	}
	return ops
}

func errName(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, aio.ErrEmpty):
		return "ErrEmpty"
	case errors.Is(err, aio.ErrFull):
		return "ErrFull"
	case errors.Is(err, aio.ErrReleasedTooOften):
		return "ErrReleasedTooOften"
	}
	return "error: " + err.Error()
}

// replayQueueOps runs ops on q and returns what each returned.
func replayQueueOps(q *aio.Queue[int], ops []modelOp) []string {
	got := make([]string, len(ops))
	for i, op := range ops {
		var v int
		var err error
		get := false
		switch op.Kind {
		case mPutNowait:
			err = q.PutNowait(op.V)
		case mPut:
			err = q.Put(op.V)
		case mPutTimeout:
			err = q.PutTimeout(op.V, op.Wait)
		case mGetNowait:
			v, err = q.GetNowait()
			get = true
		case mGet:
			v, err = q.Get()
			get = true
		case mGetTimeout:
			v, err = q.GetTimeout(op.Wait)
			get = true
		case mQsize:
			got[i] = fmt.Sprint(q.Qsize())
			continue
		case mEmpty:
			got[i] = fmt.Sprint(q.Empty())
			continue
		case mFull:
			got[i] = fmt.Sprint(q.Full())
			continue
		}
		if get && err == nil {
			got[i] = fmt.Sprint(v)
		} else {
			got[i] = errName(err)
		}
	}
	return got
}

func modelQueue(ops []modelOp, maxsize int) []string {
	m := &queueModel{maxsize: maxsize}
	want := make([]string, len(ops))
	for i, op := range ops {
		want[i] = m.apply(op)
	}
	return want
}

type queueReplayArgs struct {
	Q   *aio.Queue[int]
	Ops []modelOp
}

var (
	// queueReplay replays ops in a child on a queue of its parent's.
	queueReplay = executor.Register("aio_test.queueReplay", func(a queueReplayArgs) ([]string, error) {
		return replayQueueOps(a.Q, a.Ops), nil
	})
	// newChildQueue makes a queue in the child, which hosts it.
	newChildQueue = executor.Register("aio_test.newChildQueue", func(maxsize int) (*aio.Queue[int], error) {
		return aio.NewQueue[int](maxsize), nil
	})
)

func modelPool(t *testing.T) *aio.Pool {
	t.Helper()
	closesItsFDs(t)
	p, err := aio.NewPool(aio.PoolOptions{Processes: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Terminate(); _ = p.Join() })
	return p
}

func TestQueueModel(t *testing.T) {
	pool := modelPool(t)
	for _, maxsize := range []int{0, 1, 3} {
		for seed := uint64(1); seed <= 3; seed++ {
			ops := queueOps(seed, maxsize, 150)
			want := modelQueue(ops, maxsize)
			name := fmt.Sprintf("maxsize%d/seed%d", maxsize, seed)
			t.Run(name+"/host", func(t *testing.T) {
				t.Logf("seed %d, maxsize %d", seed, maxsize)
				got := replayQueueOps(aio.NewQueue[int](maxsize), ops)
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("results (-model +queue):\n%s", diff)
				}
			})
			t.Run(name+"/child", func(t *testing.T) {
				t.Logf("seed %d, maxsize %d", seed, maxsize)
				got, err := aio.Apply(pool, queueReplay, queueReplayArgs{Q: aio.NewQueue[int](maxsize), Ops: ops})
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("results in a child (-model +queue):\n%s", diff)
				}
			})
			t.Run(name+"/childHosted", func(t *testing.T) {
				t.Logf("seed %d, maxsize %d", seed, maxsize)
				q, err := aio.Apply(pool, newChildQueue, maxsize)
				if err != nil {
					t.Fatal(err)
				}
				got := replayQueueOps(q, ops)
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("results on a queue a child hosts (-model +queue):\n%s", diff)
				}
			})
		}
	}
}

// Semaphore operations of a model sequence.
const (
	mTry     = iota
	mAcquire // blocking, only where the model has one
	mAcquireTimeout
	mRelease
	mValue
	mSemOps
)

// semModel is a Semaphore, a BoundedSemaphore (bounded: a release past
// the initial value fails, Python's ValueError) or a Lock (a
// BoundedSemaphore of one whose value reads as Locked).
type semModel struct {
	value, initial int
	bounded, lock  bool
}

func (m *semModel) apply(op modelOp) string {
	switch op.Kind {
	case mTry, mAcquire, mAcquireTimeout:
		if m.value == 0 {
			return "false"
		}
		m.value--
		return "true"
	case mRelease:
		if m.bounded && m.value >= m.initial {
			return "ErrReleasedTooOften"
		}
		m.value++
		return "ok"
	case mValue:
		if m.lock {
			return fmt.Sprint(m.value == 0)
		}
		return fmt.Sprint(m.value)
	}
	return "bad op"
}

func semOps(seed uint64, m semModel, n int) []modelOp {
	r := rand.New(rand.NewPCG(seed, 2))
	ops := make([]modelOp, 0, n)
	for len(ops) < n {
		op := modelOp{Kind: r.IntN(mSemOps)}
		if op.Kind == mAcquire && m.value == 0 {
			continue
		}
		if op.Kind == mAcquireTimeout {
			op.Wait = waitFor(m.value > 0)
		}
		m.apply(op)
		ops = append(ops, op)
	}
	return ops
}

type semKind int

const (
	kindSemaphore semKind = iota
	kindBounded
	kindLock
)

// semObjects holds the one object a sequence runs on.
type semObjects struct {
	S  *aio.Semaphore
	BS *aio.BoundedSemaphore
	L  *aio.Lock
}

func newSemObjects(k semKind, n int) semObjects {
	switch k {
	case kindSemaphore:
		return semObjects{S: aio.NewSemaphore(n)}
	case kindBounded:
		return semObjects{BS: aio.NewBoundedSemaphore(n)}
	}
	return semObjects{L: aio.NewLock()}
}

func replaySemOps(o semObjects, ops []modelOp) []string {
	var try func() (bool, error)
	var timed func(time.Duration) (bool, error)
	var acquire, release func() error
	var value func() string
	switch {
	case o.S != nil:
		try, timed, acquire, release = o.S.TryAcquire, o.S.AcquireTimeout, o.S.Acquire, o.S.Release
		value = func() string { return fmt.Sprint(o.S.Value()) }
	case o.BS != nil:
		try, timed, acquire, release = o.BS.TryAcquire, o.BS.AcquireTimeout, o.BS.Acquire, o.BS.Release
		value = func() string { return fmt.Sprint(o.BS.Value()) }
	default:
		try, timed, acquire, release = o.L.TryAcquire, o.L.AcquireTimeout, o.L.Acquire, o.L.Release
		value = func() string { return fmt.Sprint(o.L.Locked()) }
	}
	got := make([]string, len(ops))
	for i, op := range ops {
		switch op.Kind {
		case mTry, mAcquireTimeout:
			var ok bool
			var err error
			if op.Kind == mAcquireTimeout {
				ok, err = timed(op.Wait)
			} else {
				ok, err = try()
			}
			if err != nil {
				got[i] = errName(err)
			} else {
				got[i] = fmt.Sprint(ok)
			}
		case mAcquire:
			if err := acquire(); err != nil {
				got[i] = errName(err)
			} else {
				got[i] = "true"
			}
		case mRelease:
			got[i] = errName(release())
		case mValue:
			got[i] = value()
		}
	}
	return got
}

type semReplayArgs struct {
	O   semObjects
	Ops []modelOp
}

var (
	// semReplay replays ops in a child on an object of its parent's.
	semReplay = executor.Register("aio_test.semReplay", func(a semReplayArgs) ([]string, error) {
		return replaySemOps(a.O, a.Ops), nil
	})
	// newChildSem makes the object in the child, which hosts it.
	newChildSem = executor.Register("aio_test.newChildSem", func(a [2]int) (semObjects, error) {
		return newSemObjects(semKind(a[0]), a[1]), nil
	})
)

func TestSemaphoreModel(t *testing.T) {
	pool := modelPool(t)
	cases := []struct {
		name string
		kind semKind
		n    int
	}{
		{"Semaphore0", kindSemaphore, 0},
		{"Semaphore1", kindSemaphore, 1},
		{"Semaphore3", kindSemaphore, 3},
		{"BoundedSemaphore0", kindBounded, 0},
		{"BoundedSemaphore1", kindBounded, 1},
		{"BoundedSemaphore3", kindBounded, 3},
		{"Lock", kindLock, 1},
	}
	for _, c := range cases {
		for seed := uint64(1); seed <= 3; seed++ {
			m := semModel{value: c.n, initial: c.n, bounded: c.kind != kindSemaphore, lock: c.kind == kindLock}
			ops := semOps(seed, m, 120)
			want := make([]string, len(ops))
			for i, op := range ops {
				want[i] = m.apply(op)
			}
			name := fmt.Sprintf("%s/seed%d", c.name, seed)
			t.Run(name+"/host", func(t *testing.T) {
				t.Logf("seed %d", seed)
				if diff := cmp.Diff(want, replaySemOps(newSemObjects(c.kind, c.n), ops)); diff != "" {
					t.Errorf("results (-model +%s):\n%s", c.name, diff)
				}
			})
			t.Run(name+"/child", func(t *testing.T) {
				t.Logf("seed %d", seed)
				got, err := aio.Apply(pool, semReplay, semReplayArgs{O: newSemObjects(c.kind, c.n), Ops: ops})
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("results in a child (-model +%s):\n%s", c.name, diff)
				}
			})
			t.Run(name+"/childHosted", func(t *testing.T) {
				t.Logf("seed %d", seed)
				o, err := aio.Apply(pool, newChildSem, [2]int{int(c.kind), c.n})
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(want, replaySemOps(o, ops)); diff != "" {
					t.Errorf("results on an object a child hosts (-model +%s):\n%s", c.name, diff)
				}
			})
		}
	}
}

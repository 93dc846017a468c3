//go:build linux

package aio_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/aio"
	"github.com/asyncgo/asyncgo/executor"
)

type randConsumerArgs struct {
	Q    *aio.Queue[[]byte]
	Out  *aio.Queue[int]
	Seed uint64
}

// randConsumer gets from Q in random ways (Get, GetTimeout with short
// timeouts, GetNowait, now and then a pause with its lend requests
// standing) and reports each item's id to Out, until an empty item: then
// it reports -1 and returns.
var randConsumer = executor.Register("aio_test.randConsumer", func(a randConsumerArgs) (struct{}, error) {
	r := rand.New(rand.NewPCG(a.Seed, 7))
	for {
		var b []byte
		var err error
		switch r.IntN(4) {
		case 0:
			b, err = a.Q.Get()
		case 1:
			b, err = a.Q.GetTimeout(time.Duration(1+r.IntN(3)) * time.Millisecond)
		case 2:
			b, err = a.Q.GetNowait()
		default:
			time.Sleep(time.Duration(r.IntN(3)) * time.Millisecond) // idle, holding what it borrowed
			continue
		}
		if errors.Is(err, aio.ErrEmpty) {
			continue
		}
		if err != nil {
			return struct{}{}, err
		}
		if len(b) == 0 {
			return struct{}{}, a.Out.Put(-1)
		}
		id, err := itemID(b)
		if err != nil {
			return struct{}{}, err
		}
		if err := a.Out.Put(id); err != nil {
			return struct{}{}, err
		}
	}
})

// randItem is item id of size bytes: its id, then bytes derived from it.
func randItem(id, size int) []byte {
	b := make([]byte, max(size, 8))
	binary.LittleEndian.PutUint32(b, uint32(id))
	binary.LittleEndian.PutUint32(b[4:], uint32(len(b)))
	for i := 8; i < len(b); i++ {
		b[i] = byte(id + i)
	}
	return b
}

func itemID(b []byte) (int, error) {
	if len(b) < 8 || int(binary.LittleEndian.Uint32(b[4:])) != len(b) {
		return 0, fmt.Errorf("an item of %d bytes is not one that was put", len(b))
	}
	id := int(binary.LittleEndian.Uint32(b))
	for i := 8; i < len(b); i++ {
		if b[i] != byte(id+i) {
			return 0, fmt.Errorf("item %d is torn at byte %d", id, i)
		}
	}
	return id, nil
}

// Three consumer processes and this one share a queue of items of mixed
// sizes (8 bytes to 2 MiB, so some are lent ahead by the hundred and
// some by the few), getting in random ways and pausing with items
// borrowed, bounded and not: every item is got exactly once, whole, or
// is still in the queue at the end. Against the model of a queue that
// loses and duplicates nothing. Found: items lent and consumed were
// counted off the oldest lent and given back off the newest, so one that
// reached its process out of order, or was on its way during a recall,
// was both requeued and taken (up to 150 items lost or doubled in a run);
// they are named by their lend requests now. And an item a consumer got
// just before it exited was requeued as it ended (one run in 15 under
// -race): its Get had been woken before the report that it was taken.
func TestQueueRandomizedConsumers(t *testing.T) {
	closesItsFDs(t)
	for round, maxsize := range []int{0, 3} {
		seed := uint64(time.Now().UnixNano())
		t.Logf("round %d: maxsize %d, seed %d", round, maxsize, seed)
		r := rand.New(rand.NewPCG(seed, 1))
		q, out := aio.NewQueue[[]byte](maxsize), aio.NewQueue[int](0)
		const consumers, n = 3, 300
		procs := make([]*aio.Process, consumers)
		for i := range procs {
			procs[i] = aio.NewProcess(randConsumer.Bind(randConsumerArgs{Q: q, Out: out, Seed: seed + uint64(i)}))
			if err := procs[i].Start(); err != nil {
				t.Fatal(err)
			}
		}
		seen := make([]int, n)
		got := func(b []byte) {
			id, err := itemID(b)
			if err != nil {
				t.Fatal(err)
			}
			seen[id]++
		}
		sizes := []int{8, 100, 5 << 10, 70 << 10, 300 << 10, 2 << 20}
		for id := range n {
			size := sizes[r.IntN(len(sizes)-1)]
			if r.IntN(20) == 0 {
				size = sizes[len(sizes)-1]
			}
			if err := q.PutTimeout(randItem(id, size), 30*time.Second); err != nil {
				t.Fatalf("Put %d: %v", id, err)
			}
			if r.IntN(5) == 0 { // a getter in the host's process too
				get := q.GetNowait
				if r.IntN(2) == 0 {
					get = func() ([]byte, error) { return q.GetTimeout(time.Millisecond) }
				}
				b, err := get()
				switch {
				case err == nil:
					got(b)
				case !errors.Is(err, aio.ErrEmpty):
					t.Fatal(err)
				}
			}
		}
		for range consumers {
			if err := q.PutTimeout([]byte{}, 30*time.Second); err != nil {
				t.Fatal(err)
			}
		}
		for stopped := 0; stopped < consumers; {
			id, err := out.GetTimeout(30 * time.Second)
			if err != nil {
				t.Fatalf("round %d: waiting for the consumers: %v (seen %d of %d)", round, err, total(seen), n)
			}
			if id < 0 {
				stopped++
				continue
			}
			seen[id]++
		}
		for _, p := range procs {
			if err := p.Join(); err != nil {
				t.Fatal(err)
			}
			if code, _ := p.ExitCode(); code != 0 {
				t.Fatalf("round %d: %s exited with %d", round, p.Name, code)
			}
		}
		var left []int
		for {
			b, err := q.GetNowait()
			if err != nil {
				break
			}
			if len(b) == 0 {
				t.Errorf("round %d: a sentinel was left in the queue: got once and requeued", round)
				continue
			}
			id, err := itemID(b)
			if err != nil {
				t.Fatal(err)
			}
			left = append(left, id)
		}
		// Items a consumer borrowed and gave back (recalled, or as it
		// exited) go to the front of the queue, behind sentinels lent
		// out meanwhile: they may be left when every consumer has had
		// its sentinel (docs/design.md, "Order"). They are there, whole.
		for _, id := range left {
			seen[id]++
		}
		if len(left) > 0 {
			t.Logf("round %d: %d items were left behind the sentinels: %v", round, len(left), left)
		}
		for id, c := range seen {
			if c != 1 {
				t.Errorf("round %d: item %d got %d times; want once", round, id, c)
			}
		}
	}
}

func total(seen []int) int {
	n := 0
	for _, c := range seen {
		n += c
	}
	return n
}

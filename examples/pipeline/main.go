// Command pipeline is a three-stage pipeline of worker processes joined by
// aio.JoinableQueues, with items of 2 MiB: a maker process makes the items,
// two transformer processes invert their bytes, a checksummer process
// takes the CRC-32 of each, and the parent, on its loop, waits for each
// stage with CoroJoin and prints a summary. In Python:
//
//	def make(q1, n):
//	    for i in range(n):
//	        q1.put((i, pattern(i)))
//
//	def transform(q1, q2):
//	    while True:
//	        i, data = q1.get()
//	        q2.put((i, bytes(b ^ 0xff for b in data)))
//	        q1.task_done()
//
//	def checksum(q2, results):
//	    while True:
//	        i, data = q2.get()
//	        results.put((i, len(data), zlib.crc32(data)))
//	        q2.task_done()
//
//	async def main():
//	    q1, q2 = AioJoinableQueue(4), AioJoinableQueue(4)
//	    results = AioQueue()
//	    maker = AioProcess(target=make, args=(q1, 16))
//	    workers = [AioProcess(target=transform, args=(q1, q2), daemon=True)
//	               for _ in range(2)]
//	    workers.append(AioProcess(target=checksum, args=(q2, results), daemon=True))
//	    for p in [maker, *workers]:
//	        p.start()
//	    await maker.coro_join()  # every item is in q1
//	    await q1.coro_join()     # every item is through stage 2, so in q2
//	    await q2.coro_join()     # every item is checksummed
//	    ...                      # read the results, print the summary
//
// A stage marks an item done only after it has put what it made of it on
// the next queue; so when q1's Join returns every item is in q2 or past
// it, and when q2's returns every result is in results. The workers loop
// for ever, as in Python's JoinableQueue examples: they are daemons, which
// aio.Shutdown terminates at the end of main. The queues hold at most 4
// items each, so a fast stage waits for a slow one instead of piling up
// items in the parent, which hosts the queues. A worker that died with an
// item would leave a Join waiting for ever, as in Python: the item is
// never marked done.
package main

import (
	"context"
	"flag"
	"fmt"
	"hash/crc32"
	"os"

	"github.com/asyncgo/asyncgo/aio"
	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/loop"
)

// ItemSize is the size of each item, 2 MiB.
const ItemSize = 2 << 20

// An item is the data of item number Seq; a result is its checksum.
type item struct {
	Seq  int
	Data []byte
}

type result struct {
	Seq, Len int
	CRC      uint32
}

// pattern is item i's data as the maker makes it.
func pattern(i int) []byte {
	data := make([]byte, ItemSize)
	for j := range data {
		data[j] = byte(i*7 + j%251)
	}
	return data
}

// invert is stage 2's work: every byte inverted.
func invert(data []byte) {
	for j := range data {
		data[j] = ^data[j]
	}
}

type makeArgs struct {
	Out *aio.JoinableQueue[item]
	N   int
}

type stageArgs[T any] struct {
	In  *aio.JoinableQueue[item]
	Out T
}

// The three stages, each run in a process of its own: registered by name
// at package level, so that the child, a re-execution of this binary, has
// them too before executor.Init runs one.
var (
	maker = executor.Register("pipeline.make", func(a makeArgs) (struct{}, error) {
		for i := range a.N {
			if err := a.Out.Put(item{Seq: i, Data: pattern(i)}); err != nil {
				return struct{}{}, err
			}
		}
		return struct{}{}, nil
	})

	transformer = executor.Register("pipeline.transform", func(a stageArgs[*aio.JoinableQueue[item]]) (struct{}, error) {
		for {
			it, err := a.In.Get()
			if err != nil {
				return struct{}{}, err
			}
			invert(it.Data)
			if err := a.Out.Put(it); err != nil {
				return struct{}{}, err
			}
			if err := a.In.TaskDone(); err != nil { // after the Put: see the package doc
				return struct{}{}, err
			}
		}
	})

	checksummer = executor.Register("pipeline.checksum", func(a stageArgs[*aio.Queue[result]]) (struct{}, error) {
		for {
			it, err := a.In.Get()
			if err != nil {
				return struct{}{}, err
			}
			r := result{Seq: it.Seq, Len: len(it.Data), CRC: crc32.ChecksumIEEE(it.Data)}
			if err := a.Out.Put(r); err != nil {
				return struct{}{}, err
			}
			if err := a.In.TaskDone(); err != nil {
				return struct{}{}, err
			}
		}
	})
)

func main() {
	executor.Init() // in a child process this runs its stage and exits
	defer aio.Shutdown()

	fs := flag.NewFlagSet("pipeline", flag.ExitOnError)
	n := fs.Int("n", 16, "number of items")
	transformers := fs.Int("transformers", 2, "number of stage 2 processes")
	fs.Parse(os.Args[1:])
	if *n < 1 || *transformers < 1 {
		fmt.Fprintln(os.Stderr, "pipeline: -n and -transformers must be at least 1")
		os.Exit(2)
	}

	results, err := loop.Run(context.Background(), func(ctx context.Context) ([]result, error) {
		return pipeline(ctx, *n, *transformers)
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "pipeline:", err)
		aio.Shutdown()
		os.Exit(1)
	}
	var total int
	sums := crc32.NewIEEE()
	for _, r := range results {
		total += r.Len
		fmt.Fprintf(sums, "%08x", r.CRC)
	}
	fmt.Printf("%d items of %d MiB: made by 1 process, inverted by %d, checksummed by 1\n",
		len(results), ItemSize>>20, *transformers)
	fmt.Printf("item 0: crc32 %08x; item %d: crc32 %08x\n", results[0].CRC, len(results)-1, results[len(results)-1].CRC)
	fmt.Printf("%d MiB checksummed; crc32 of the checksums in item order: %08x\n", total>>20, sums.Sum32())
}

// pipeline runs the stages on n items and returns the results in item
// order.
func pipeline(ctx context.Context, n, transformers int) ([]result, error) {
	q1, q2 := aio.NewJoinableQueue[item](4), aio.NewJoinableQueue[item](4)
	results := aio.NewQueue[result](0)

	m := aio.NewProcess(maker.Bind(makeArgs{Out: q1, N: n}))
	procs := []*aio.Process{m}
	for range transformers {
		procs = append(procs, aio.NewProcess(transformer.Bind(stageArgs[*aio.JoinableQueue[item]]{In: q1, Out: q2})))
	}
	procs = append(procs, aio.NewProcess(checksummer.Bind(stageArgs[*aio.Queue[result]]{In: q2, Out: results})))
	for _, p := range procs {
		p.Daemon = p != m // the workers never end by themselves
		if err := p.Start(); err != nil {
			return nil, err
		}
	}

	if err := m.CoroJoin(ctx); err != nil { // every item is in q1
		return nil, err
	}
	if code, _ := m.ExitCode(); code != 0 {
		return nil, fmt.Errorf("the maker exited with code %d", code)
	}
	if err := q1.CoroJoin(ctx); err != nil { // every item is through stage 2, so in q2
		return nil, err
	}
	if err := q2.CoroJoin(ctx); err != nil { // every item is checksummed
		return nil, err
	}

	// Every result is in the queue now: GetNowait, not a wait.
	out := make([]result, n)
	for range n {
		r, err := results.GetNowait()
		if err != nil {
			return nil, fmt.Errorf("a result missing after the joins: %w", err)
		}
		out[r.Seq] = r
	}
	return out, nil
}

// Command seed_aioprocessing is the seed's second program, aioprocessing's
// README example, ported line for line to package aio and the loop: a
// worker process takes a lock shared with its parent, sets an event, and
// puts each item plus 5 on a queue, pausing before each; on the parent's
// loop one task prints the results until a sentinel and joins the
// process, while another waits for the event, takes the lock (so it waits
// until the worker is done), and puts 78 and the sentinel. In Python:
//
//	def func(queue, event, lock, items):
//	    with lock:
//	        event.set()
//	        for item in items:
//	            time.sleep(3)
//	            queue.put(item+5)
//	    queue.close()
//
//	async def example(queue, event, lock):
//	    l = [1,2,3,4,5]
//	    p = aioprocessing.AioProcess(target=func, args=(queue, event, lock, l))
//	    p.start()
//	    while True:
//	        result = await queue.coro_get()
//	        if result is None:
//	            break
//	        print("Got result {}".format(result))
//	    await p.coro_join()
//
//	async def example2(queue, event, lock):
//	    await event.coro_wait()
//	    async with lock:
//	        await queue.coro_put(78)
//	        await queue.coro_put(None) # Shut down the worker
//
//	if __name__ == "__main__":
//	    loop = asyncio.get_event_loop()
//	    queue = aioprocessing.AioQueue()
//	    lock = aioprocessing.AioLock()
//	    event = aioprocessing.AioEvent()
//	    tasks = [asyncio.ensure_future(example(queue, event, lock)),
//	             asyncio.ensure_future(example2(queue, event, lock))]
//	    loop.run_until_complete(asyncio.wait(tasks))
//	    loop.close()
//
// It prints "Got result 6" to "Got result 10", then "Got result 78".
// The pause is -delay (100 ms by default, Python's is 3 s).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/asyncgo/asyncgo/aio"
	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/loop"
)

// The queue carries *int so that nil can be Python's None, the sentinel
// that ends the stream: a typed port of "an int or None" with no second
// field to keep in step.
type funcArgs struct {
	Queue *aio.Queue[*int]
	Event *aio.Event
	Lock  *aio.Lock
	Items []int
	Delay time.Duration
}

// fn is Python's func. It runs in a child process, a re-execution of this
// binary, so it is registered by name at package level: the child
// registers it too, before executor.Init runs it.
var fn = executor.Register("seed_aioprocessing.func", func(a funcArgs) (struct{}, error) {
	err := func() error { // with lock:
		if err := a.Lock.Acquire(); err != nil {
			return err
		}
		defer a.Lock.Release()
		if err := a.Event.Set(); err != nil {
			return err
		}
		for _, item := range a.Items {
			time.Sleep(a.Delay)
			v := item + 5
			if err := a.Queue.Put(&v); err != nil {
				return err
			}
		}
		return nil
	}()
	if err != nil {
		return struct{}{}, err
	}
	return struct{}{}, a.Queue.Close()
})

func main() {
	executor.Init() // in the child process this runs fn and exits
	defer aio.Shutdown()

	fs := flag.NewFlagSet("seed_aioprocessing", flag.ExitOnError)
	delay := fs.Duration("delay", 100*time.Millisecond, "the worker's pause before each item (Python's is 3s)")
	fs.Parse(os.Args[1:])

	queue := aio.NewQueue[*int](0)
	lock := aio.NewLock()
	event := aio.NewEvent()
	err := loop.RunMain(context.Background(), func(ctx context.Context) error {
		tasks := []*loop.Task[struct{}]{
			loop.Spawn(ctx, func(ctx context.Context) (struct{}, error) {
				return struct{}{}, example(ctx, queue, event, lock, *delay)
			}),
			loop.Spawn(ctx, func(ctx context.Context) (struct{}, error) {
				return struct{}{}, example2(ctx, queue, event, lock)
			}),
		}
		// asyncio.wait returns when both are done and raises nothing;
		// Go reports what went wrong.
		if _, _, err := loop.Wait(ctx, tasks, loop.NoTimeout, loop.AllCompleted); err != nil {
			return err
		}
		return errors.Join(tasks[0].Err(), tasks[1].Err())
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "seed_aioprocessing:", err)
		aio.Shutdown()
		os.Exit(1)
	}
}

func example(ctx context.Context, queue *aio.Queue[*int], event *aio.Event, lock *aio.Lock, delay time.Duration) error {
	l := []int{1, 2, 3, 4, 5}
	p := aio.NewProcess(fn.Bind(funcArgs{Queue: queue, Event: event, Lock: lock, Items: l, Delay: delay}))
	if err := p.Start(); err != nil {
		return err
	}
	for {
		result, err := queue.CoroGet(ctx)
		if err != nil {
			return err
		}
		if result == nil {
			break
		}
		fmt.Printf("Got result %d\n", *result)
	}
	if err := p.CoroJoin(ctx); err != nil {
		return err
	}
	if code, _ := p.ExitCode(); code != 0 {
		return fmt.Errorf("the worker process exited with code %d", code)
	}
	return nil
}

func example2(ctx context.Context, queue *aio.Queue[*int], event *aio.Event, lock *aio.Lock) error {
	if err := event.CoroWait(ctx); err != nil {
		return err
	}
	if err := lock.CoroAcquire(ctx); err != nil { // async with lock:
		return err
	}
	defer lock.Release()
	result := 78
	if err := queue.CoroPut(ctx, &result); err != nil {
		return err
	}
	return queue.CoroPut(ctx, nil) // the sentinel: example stops reading
}

// Command distributed runs the registered functions of executor.Register on
// worker processes anywhere, through NATS JetStream (executor/natsexec):
// Dask's Client.get_executor() or Celery for asyncgo. The caller's code is
// the same as with a local process pool; only the Executor it builds
// changes. In Python with Dask:
//
//	client = Client("tcp://scheduler:8786")  # or LocalCluster()
//	futures = [client.submit(square, x) for x in range(1000)]
//	total = sum(client.gather(futures))
//
// With no flag it needs nothing installed: it starts an embedded nats-server
// (JetStream on a temporary store) and two local worker processes of this
// binary, runs its calls and stops them all.
//
//	go run ./examples/distributed                      # all on this host
//	go run ./examples/distributed -nats nats://h:4222  # join a deployment
//	go run ./examples/distributed -nats nats://h:4222 -worker  # a worker
//
// With -nats and no -worker it starts no local worker unless -workers says
// so: workers run elsewhere with -worker.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/executor/natsexec"
	"github.com/asyncgo/asyncgo/loop"
)

// errNegative is registered, so that errors.Is matches it on the caller
// whichever host the worker that returned it runs on.
var errNegative = errors.New("negative argument")

func init() { executor.RegisterError(errNegative) }

// The functions run on the workers, which are this binary too (or any build
// that registers the same names).
var (
	square = executor.Register("distributed.square", func(x int) (int, error) {
		return x * x, nil
	})
	// collatz counts the steps of x's Collatz sequence down to 1: a little
	// CPU work.
	collatz = executor.Register("distributed.collatz", func(x int) (int, error) {
		if x <= 0 {
			return 0, fmt.Errorf("collatz(%d): %w", x, errNegative)
		}
		steps := 0
		for ; x != 1; steps++ {
			if x%2 == 0 {
				x /= 2
			} else {
				x = 3*x + 1
			}
		}
		return steps, nil
	})
)

type config struct {
	url     string // "" for an embedded server
	workers int    // local worker processes
	calls   int    // calls of square in the batch
}

var (
	natsURL = flag.String("nats", "", "NATS server URL (or a cluster's, comma-separated); empty starts an embedded server")
	worker  = flag.Bool("worker", false, "run as a worker of -nats only, until SIGINT or SIGTERM")
	workers = flag.Int("workers", -1, "local worker processes to start (default 2 with the embedded server, 0 with -nats)")
	nCalls  = flag.Int("calls", 1000, "calls of square in the batch")
)

func main() {
	executor.Init() // in a local worker process this serves and never returns

	flag.Parse()

	if *worker {
		if *natsURL == "" {
			fmt.Fprintln(os.Stderr, "distributed: -worker needs -nats URL")
			os.Exit(2)
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		if err := serve(ctx, *natsURL); err != nil {
			fmt.Fprintln(os.Stderr, "distributed:", err)
			os.Exit(1)
		}
		return
	}
	cfg := config{url: *natsURL, workers: *workers, calls: *nCalls}
	if cfg.workers < 0 {
		cfg.workers = 0
		if cfg.url == "" {
			cfg.workers = 2
		}
	}
	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "distributed:", err)
		os.Exit(1)
	}
}

// serve runs this process as a worker of url until ctx ends.
func serve(ctx context.Context, url string) error {
	fmt.Fprintln(os.Stderr, "distributed: serving", url)
	return natsexec.Serve(ctx, natsexec.ServeOptions{URL: url})
}

// run makes the Executor, runs the calls from a loop, and shuts it down.
func run(cfg config) error {
	ex, err := natsexec.New(natsexec.Options{URL: cfg.url, LocalWorkers: cfg.workers})
	if err != nil {
		return err
	}
	defer ex.Shutdown(true, false) // waits for the local workers and the server
	where := "NATS at " + cfg.url
	if cfg.url == "" {
		where = "an embedded NATS server"
	}
	fmt.Printf("distributed: %s, %d local worker processes\n", where, cfg.workers)

	_, err = loop.Run(context.Background(), func(ctx context.Context) (struct{}, error) {
		return struct{}{}, calls(ctx, ex, cfg.calls)
	})
	return err
}

// calls awaits calls on ex from a loop task, as it would a process pool's.
func calls(ctx context.Context, ex executor.Executor, n int) error {
	// One call at a time.
	for _, x := range []int{7, 27} {
		steps, err := loop.RunInExecutor(ctx, ex, collatz.Bind(x)).Await(ctx)
		if err != nil {
			return err
		}
		fmt.Printf("collatz(%d) = %d steps\n", x, steps)
	}
	// An error crosses as a value errors.Is recognizes.
	_, err := loop.RunInExecutor(ctx, ex, collatz.Bind(-1)).Await(ctx)
	fmt.Printf("collatz(-1): %v (errors.Is errNegative: %v)\n", err, errors.Is(err, errNegative))

	// A batch, all in flight at once, gathered in order.
	fs := make([]*loop.Future[int], n)
	for i := range fs {
		fs[i] = loop.RunInExecutor(ctx, ex, square.Bind(i))
	}
	squares, err := loop.Gather(ctx, fs...).Await(ctx)
	if err != nil {
		return err
	}
	sum := 0
	for _, v := range squares {
		sum += v
	}
	fmt.Printf("square(0..%d): first %v, sum %d\n", n-1, squares[:min(5, n)], sum)
	return nil
}
